"""VM tier: the module cannot go while a program or map uses it, and rmmod after they are gone
succeeds with nothing left allocated."""
from __future__ import annotations

import subprocess

import pytest

from nf import kmod
from nf.testing.kmod import (KO_LB_NEW, KO_MW_BUILD, KO_MW_NEW, KO_RP_NEW, ko_call,
                             open_kmod_test, wait_live_zero)
from nf.vm.fixtures import ModuleError

pytestmark = pytest.mark.vm


def _kernel_warnings() -> int:
    log = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=30).stdout
    return sum(log.count(w) for w in ("WARNING:", "BUG:", "kmemleak"))


def test_rmmod_refused_while_in_use_then_clean(enetstl):
    warnings_before = _kernel_warnings()
    obj = open_kmod_test("objects")
    p = obj.program("objects")
    assert ko_call(p, KO_LB_NEW, a=4, b=4, x=8).ret > 0
    assert ko_call(p, KO_RP_NEW, x=1 << 30).ret > 0
    h = ko_call(p, KO_MW_NEW, a=100).ret
    assert ko_call(p, KO_MW_BUILD, handle=h, a=50).ret == 50
    live = kmod.live()
    assert live == {"live_lb": 1, "live_rp": 1, "live_mw": 1, "live_mw_nodes": 51}
    with pytest.raises(ModuleError, match="in use"):
        enetstl.unload()                     # the program and its maps hold the module
    assert kmod.is_loaded()
    obj.close()
    assert wait_live_zero() == dict.fromkeys(live, 0)
    # program and maps are released asynchronously; rmmod succeeds once they are
    for _ in range(50):
        try:
            enetstl.unload()
            break
        except ModuleError:
            subprocess.run(["sleep", "0.1"], check=True)
    assert not kmod.is_loaded()
    # no kernel warning on the way out (WARN_ON(!xa_empty(handles)) in enetstl_exit, leaks...)
    assert _kernel_warnings() == warnings_before
    enetstl.load()
    assert kmod.live() == dict.fromkeys(live, 0)


def test_programs_load_without_the_module_in_the_guest(enetstl_absent):
    """The same objects the module tests use load on the 6.12 guest kernel with the module
    removed, and take their bpf_ksym_exists() fallback."""
    from nf.testing.kmod import KT_ABSENT, KT_MULTI, KO_LB_NEW, kt_call

    assert not kmod.is_loaded()
    for name in ("kfuncs", "objects", "skiplist"):
        obj = open_kmod_test(name)
        try:
            prog = obj.program(name)
            r = (kt_call(prog, KT_MULTI, b"k", arg=1) if name == "kfuncs"
                 else ko_call(prog, KO_LB_NEW, a=1, b=1, x=8))
            assert (r.retval, r.ret) == (2, KT_ABSENT)
        finally:
            obj.close()
