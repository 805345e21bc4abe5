"""VM tier: the module through DKMS (kmod/dkms.conf, `make -C kmod dkms-install`, the kernel
packages' hook). DKMS builds and installs it for the guest's kernel on the host, in overlays
(nf/testing/dkms.py); in the guest `modprobe` finds it where DKMS put it, it is the module of
this checkout's sources, and it passes the seed checks."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nf import __version__, kmod
from nf.testing import dkms
from nf.vm.fixtures import Enetstl

pytestmark = pytest.mark.vm


@pytest.fixture
def dkms_scratch(enetstl_absent):
    """The host's DKMS results (nf/vm/pytest_plugin.py runs dkms.prepare() before the boot), with
    the boot-time module removed; the DKMS one is removed again afterwards."""
    if os.environ.get(dkms.ERROR_ENV):
        pytest.fail(os.environ[dkms.ERROR_ENV], pytrace=False)
    scratch = os.environ.get(dkms.SCRATCH_ENV)
    if not scratch:
        pytest.fail("the host prepared no DKMS tree (nf.vm.pytest_plugin.HOST_PREPARE)", pytrace=False)
    yield Path(scratch)
    Enetstl().unload()                 # enetstl_absent then loads kmod/enetstl.ko again


def _srcversion(ko: str) -> str:
    return subprocess.run(["modinfo", "-F", "srcversion", ko], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_dkms_installs_a_module_that_loads_and_passes_the_seed_checks(dkms_scratch):
    kver = os.uname().release
    log = dkms.host_log(dkms_scratch)
    installed = f"{dkms.PACKAGE}, {kver}, x86_64: installed"
    # the user's command, then a kernel-upgrade rebuild by the kernel hook (AUTOINSTALL)
    assert f"STATUS after make dkms-install: {installed}" in log
    assert f"STATUS after unbuild: {dkms.PACKAGE}: added" in log
    assert f"STATUS after the kernel hook: {installed}" in log
    assert log.count("Building module:") == 2
    assert not kmod.is_loaded()
    r = dkms.guest_shell(dkms_scratch, f"""
modprobe enetstl
echo "MODULE $(modinfo -n enetstl)"
echo "LOADED $(cat /sys/module/enetstl/srcversion)"
echo "INSTALLED $(modinfo -F srcversion enetstl)"
{sys.executable} -m nf.kmod seedcheck
""")
    assert r.returncode == 0, r.stdout + r.stderr
    out = dict(re.findall(r"^(MODULE|LOADED|INSTALLED) (.*)$", r.stdout, re.M))
    assert out["MODULE"] == f"/lib/modules/{kver}/updates/dkms/enetstl.ko.xz"
    # the running module is DKMS's, built from the same sources as kmod/enetstl.ko
    assert out["LOADED"] == out["INSTALLED"] == _srcversion(str(Enetstl().ko))
    assert kmod.is_loaded() and kmod.version() == __version__ and kmod.features()["avx2"] == 1
    checks = re.findall(r"^test:(PASS|FAIL):(\S+)", r.stdout, re.M)
    assert checks == [("PASS", "bpf_prog_test_run_opts"), ("PASS", "enetstl_countmin_sketch:test_countmin"),
                      ("PASS", "bpf_prog_test_run_opts"), ("PASS", "enetstl_cuckoo_hash:test_cuckoo_hash")]
