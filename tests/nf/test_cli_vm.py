"""VM tier: what `nf check`, `nf show` and `nf metrics` say when the enetstl module is loaded."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from nf.cli import app

pytestmark = pytest.mark.vm


def test_check_reports_the_module_and_its_simd_paths(enetstl):
    r = CliRunner().invoke(app, ["check", "--json", "--no-probe"])
    assert r.exit_code == 0, r.output
    m = json.loads(r.output)["module"]
    assert m["loaded"] is True
    assert m["features"]["avx2"] == 1 and m["features"]["sse4_2"] == 1   # QEMU -cpu max
    assert set(m["counters"]) >= {"hash_simd_calls", "hash_scalar_calls", "crc32c_hw_calls"}
    with enetstl.force_scalar(True):
        m = json.loads(CliRunner().invoke(app, ["check", "--json", "--no-probe"]).output)["module"]
        assert m["scalar_forced"] is True


def test_metrics_expose_the_module_counters(enetstl):
    out = CliRunner().invoke(app, ["metrics"]).output
    assert "xdpnf_kmod_loaded 1" in out
    assert "# TYPE xdpnf_kmod_hash_simd_calls_total counter" in out


def test_demo_passes_with_the_enetstl_variants(enetstl):
    """The README's demo with the module loaded: the switch runs its eNetSTL FDB (variant auto)
    and the sketch its fused multi-hash kfunc; every check still equals the model."""
    r = CliRunner().invoke(app, ["demo"])
    assert r.exit_code == 0, r.output
    assert "variant enetstl" in r.output
    assert "sketch up on every host's interface: enetstl" in r.output
    assert r.output.rstrip().endswith("demo: PASS")
