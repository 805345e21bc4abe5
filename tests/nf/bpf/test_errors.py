"""nf/bpf/errors.py: reason extraction from verifier logs, messages, hints, pickling."""
from __future__ import annotations

import errno
import pickle

from nf.bpf.errors import (KMOD_HINT, BpfError, MissingKfuncError, VerifierError, load_error,
                           verifier_reason)

LOG = """\
func#0 @0
0: R1=ctx() R10=fp0
; int prog(struct xdp_md *ctx) @ x.bpf.c:9
0: (b7) r1 = 0                        ; R1_w=0
1: (71) r0 = *(u8 *)(r1 +0)
R1 invalid mem access 'scalar'
verification time 12 usec
stack depth 0
processed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
"""


def test_reason_is_the_trailing_non_trace_block():
    assert verifier_reason(LOG) == ["R1 invalid mem access 'scalar'"]
    e = VerifierError(errno.EACCES, "prog", LOG)
    assert e.summary == "prog: R1 invalid mem access 'scalar'"
    assert e.excerpt.splitlines()[-1] == "R1 invalid mem access 'scalar'"
    assert "processed" not in e.excerpt and "verification time" not in e.excerpt
    assert e.log == LOG and e.errno == errno.EACCES
    s = str(e)
    assert s.startswith("verifier rejected prog: R1 invalid mem access 'scalar' (EACCES)")
    assert "  | 1: (71) r0 = *(u8 *)(r1 +0)" in s


def test_excerpt_is_bounded():
    log = "".join(f"{i}: (b7) r1 = {i}\n" for i in range(500)) + "BPF program is too large\n"
    e = VerifierError(errno.E2BIG, "big", log)
    assert e.summary == "big: BPF program is too large"
    assert len(e.excerpt.splitlines()) == VerifierError.EXCERPT_LINES


def test_load_error_classification():
    msgs = ("libbpf: extern (func ksym) 'enetstl_hash': not found in kernel or module BTFs\n"
            "libbpf: failed to load object 'cm'\n")
    e = load_error(errno.EINVAL, "cm.o", msgs)
    assert isinstance(e, MissingKfuncError) and e.names == ["enetstl_hash"]
    assert e.hint == KMOD_HINT
    msgs = ("libbpf: prog 'p': BPF program load failed: Permission denied\n"
            "libbpf: prog 'p': -- BEGIN PROG LOAD LOG --\n" + LOG + "-- END PROG LOAD LOG --\n")
    e = load_error(errno.EACCES, "x.o", msgs)
    assert isinstance(e, VerifierError) and e.program == "p"
    assert e.reason == "R1 invalid mem access 'scalar'"
    e = load_error(errno.EINVAL, "x.o", "libbpf: map 'm': failed to create: Invalid argument\n")
    assert type(e) is BpfError and "map 'm': failed to create" in e.message


def test_bpf_error_text_and_hints():
    e = BpfError(errno.EPERM, "bpf_prog_load")
    assert e.errno == errno.EPERM and isinstance(e, OSError)
    assert "root" in e.hint and "(EPERM)" in str(e)
    e = BpfError(errno.ENOENT, "x", hint="do y")
    assert str(e) == "x: No such file or directory (ENOENT)\nhint: do y"


def test_errors_pickle():
    for e in (BpfError(1, "a", "h"), VerifierError(13, "p", LOG),
              MissingKfuncError(22, "m", ["k"])):
        e2 = pickle.loads(pickle.dumps(e))
        assert type(e2) is type(e) and str(e2) == str(e) and e2.errno == e.errno


def test_kernel_internal_enotsupp_is_named():
    e = BpfError(524, "batch")
    assert e.errno_name == "ENOTSUPP" and "operation not supported" in str(e)
