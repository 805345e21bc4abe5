"""VM tier: the seed's two checks, as our own programs (count-min and cuckoo hash through
test_run return XDP_PASS; the module's SIMD hash equals the BPF scalar hash), and the one
documented command that runs them."""
from __future__ import annotations

import io
import subprocess
import sys

import pytest

from nf import kmod

pytestmark = pytest.mark.vm


@pytest.mark.parametrize("scalar", [False, True], ids=["simd", "scalar"])
def test_seedcheck_passes(enetstl, scalar):
    out = io.StringIO()
    with enetstl.force_scalar(scalar):
        assert kmod.seedcheck(out), out.getvalue()
    lines = out.getvalue().splitlines()
    assert [l.split(" ")[0] for l in lines] == [
        "test:PASS:bpf_prog_test_run_opts", "test:PASS:enetstl_countmin_sketch:test_countmin",
        "test:PASS:bpf_prog_test_run_opts", "test:PASS:enetstl_cuckoo_hash:test_cuckoo_hash"]
    assert "module-hash==bpf-scalar-hash True" in lines[1]


def test_seedcheck_command(enetstl):
    p = subprocess.run([sys.executable, "-m", "nf.kmod", "seedcheck"], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count("test:PASS:") == 4 and "FAIL" not in p.stdout
