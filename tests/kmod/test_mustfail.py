"""VM tier: programs that misuse the kfuncs are rejected by the verifier with the expected
message (xdp_progs/kmod_tests/must_fail/)."""
from __future__ import annotations

import errno

import pytest

from nf.bpf import BpfObject, VerifierError
from nf.bpf.build import SRC, object_path

pytestmark = pytest.mark.vm


@pytest.mark.parametrize("name,expect", [
    ("acquire_no_release", "Unreleased reference"),
    ("unchecked_null", "Possibly NULL pointer passed to trusted arg0"),
    ("short_buffer", "invalid indirect access to stack R1 off=-8 size=16"),
    ("release_twice", "arg#0 pointer type STRUCT enetstl_rp must point to scalar"),
    # XDP's btf_struct_access (the nf_conn hook) refuses writes to other kernel types with
    # EACCES and no text: the rejected instruction is the last one in the log
    ("node_write_oob", "(73) *(u8 *)(r0 +0) = r1\nprocessed"),
    # kfunc memory arguments are checked for writing too: no rodata (the flow table's hash key)
    ("rodata_hash", "write into map forbidden"),
    # enetstl_bt_find's value: KF_TRUSTED_ARGS refuses NULL, BTF gives its size
    ("bt_null_val", "Possibly NULL pointer passed to trusted arg3"),
    ("bt_short_val", "invalid indirect access to stack R4 off=-8 size=16"),
])
def test_rejected_with_message(enetstl, name, expect):
    obj = BpfObject.open(object_path(SRC / "kmod_tests" / "must_fail" / f"{name}.bpf.c"))
    try:
        with pytest.raises(VerifierError) as ei:
            obj.load()
        assert expect in ei.value.log, ei.value.log[-600:]
        if name == "node_write_oob":
            assert ei.value.errno == errno.EACCES
    finally:
        obj.close()
