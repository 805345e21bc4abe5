"""Driver for the kmod test programs (xdp_progs/kmod_tests/): the struct kt_req mirror and a
one-call runner.  Shared by tests/kmod/, tests/nf/test_algo.py and `python -m nf.kmod seedcheck`."""
from __future__ import annotations

import ctypes as C
from dataclasses import dataclass

KT_XXH32, KT_CRC32C, KT_MULTI, KT_FIND16, KT_FIND32, KT_MIN, KT_BITS, KT_KEYEQ, KT_CM, \
    KT_LONG = range(1, 11)
KT_LONG_MAX = 2048
KT_ABSENT = 0xAB5E
XDP_ABORTED, XDP_DROP, XDP_PASS = 0, 1, 2


class KtReq(C.Structure):
    """Mirror of struct kt_req (xdp_progs/kmod_tests/kmod_tests.h)."""
    __c_struct__ = "struct kt_req"
    __bpf_object__ = "kmod_tests/algo_pure"     # its BTF has it (a subprogram takes one)
    _fields_ = [
        ("op", C.c_uint32), ("len", C.c_uint32), ("seed", C.c_uint32), ("arg", C.c_uint32),
        ("x", C.c_uint64), ("ret", C.c_int64),
        ("key", C.c_uint8 * 64), ("out", C.c_uint32 * 16),
    ]


KT_CM_MAX = 1024


class KtCmTable(C.Structure):
    """Mirror of struct kt_cm_table."""
    __c_struct__ = "struct kt_cm_table"
    __bpf_object__ = "kmod_tests/kfuncs"
    _fields_ = [("d", C.c_uint32), ("w", C.c_uint32), ("seed", C.c_uint32),
                ("flags", C.c_uint32), ("cnt", C.c_uint32 * KT_CM_MAX)]


@dataclass
class KtResult:
    retval: int
    out: list[int]
    ret: int


def kt_call(prog, op: int, key: bytes = b"", *, length: int | None = None, seed: int = 0,
            arg: int = 0, x: int = 0) -> KtResult:
    """Run one request through `prog` (an nf.bpf Program) with BPF_PROG_TEST_RUN."""
    if len(key) > 64:
        raise ValueError("key is at most 64 bytes")
    r = KtReq(op=op, len=len(key) if length is None else length, seed=seed, arg=arg, x=x)
    C.memmove(r.key, key, len(key))
    res = prog.test_run(bytes(r))
    back = KtReq.from_buffer_copy(res.data_out[:C.sizeof(KtReq)])
    return KtResult(res.retval, list(back.out), back.ret)


KO_LB_NEW, KO_LB_FREE, KO_LB_PUSH, KO_LB_POP, KO_LB_PEEK, KO_LB_LEN, KO_LB_PUSH_SEQ, \
    KO_RP_NEW, KO_RP_FREE, KO_RP_SKIP, KO_RP_SAMPLE, KO_RP_U32, \
    KO_MW_NEW, KO_MW_FREE, KO_MW_BUILD, KO_MW_WALK, KO_MW_REMOVE, KO_MW_COUNT = range(1, 19)
KO_HIST = 64


class KoReq(C.Structure):
    """Mirror of struct ko_req (xdp_progs/kmod_tests/kmod_tests.h)."""
    __c_struct__ = "struct ko_req"
    __bpf_object__ = "kmod_tests/objects"
    _fields_ = [
        ("op", C.c_uint32), ("handle", C.c_uint32), ("a", C.c_uint32), ("b", C.c_uint32),
        ("idx", C.c_uint32), ("pad", C.c_uint32), ("x", C.c_uint64), ("ret", C.c_int64),
        ("vals", C.c_uint64 * 8),
    ]


@dataclass
class KoResult:
    retval: int
    ret: int
    vals: list[int]


def ko_call(prog, op: int, *, handle: int = 0, a: int = 0, b: int = 0, idx: int = 0, x: int = 0,
            vals: bytes = b"", repeat: int = 1) -> KoResult:
    """Run one object request through objects.bpf.c's program."""
    r = KoReq(op=op, handle=handle, a=a, b=b, idx=idx, x=x)
    C.memmove(r.vals, vals, min(len(vals), 64))
    res = prog.test_run(bytes(r), repeat=repeat)
    back = KoReq.from_buffer_copy(res.data_out[:C.sizeof(KoReq)])
    return KoResult(res.retval, back.ret, list(back.vals))


def open_kmod_test(name: str):
    """Build (if stale) and load xdp_progs/kmod_tests/<name>.bpf.c; the caller closes it."""
    from nf.bpf import BpfObject
    from nf.bpf.build import build, object_path, SRC

    src = SRC / "kmod_tests" / f"{name}.bpf.c"
    try:
        path = build(f"kmod_tests/{name}")
    except OSError:          # read-only tree (the guest): use what the host built
        path = object_path(src)
    obj = BpfObject.open(path)
    try:
        obj.load()
    except BaseException:
        obj.close()
        raise
    return obj


def wait_live_zero(timeout: float = 5.0) -> dict[str, int]:
    """Poll the module's live-object counters until all are 0 (map frees and RCU callbacks are
    deferred); returns the last reading."""
    import time
    from nf import kmod

    end = time.monotonic() + timeout
    while True:
        live = kmod.live()
        if not any(live.values()) or time.monotonic() > end:
            return live
        time.sleep(0.05)


def run_on_cpus(fns_by_cpu: dict[int, "callable"]) -> dict[int, object]:
    """Run fn() for each {cpu: fn} in its own thread pinned to that CPU, all started together;
    returns {cpu: result}.  ctypes drops the GIL in the bpf() syscall, so the BPF programs
    really run at the same time on the CPUs."""
    import os
    import threading

    barrier = threading.Barrier(len(fns_by_cpu))
    results: dict[int, object] = {}
    errors: list[BaseException] = []

    def worker(cpu, fn):
        try:
            os.sched_setaffinity(0, {cpu})
            if os.sched_getaffinity(0) != {cpu}:
                raise RuntimeError(f"could not pin a thread to CPU {cpu}")
            barrier.wait()
            results[cpu] = fn()
        except BaseException as e:  # re-raised in the caller
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(c, f)) for c, f in fns_by_cpu.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    if errors:
        raise errors[0]
    return results
