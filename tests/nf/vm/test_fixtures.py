"""nf/vm/fixtures.py in the guest: the enetstl fixture loads the module and restores
force_scalar; Enetstl.absent()/enetstl_absent remove it and bring it back."""
from __future__ import annotations

from pathlib import Path

import pytest

from nf.vm.fixtures import Enetstl, ModuleError


@pytest.mark.vm
def test_enetstl_loaded_and_force_scalar_restored(enetstl):
    assert enetstl.loaded and Path("/sys/module/enetstl").is_dir()
    before = enetstl.scalar_forced
    with enetstl.force_scalar(True):
        assert enetstl.param("force_scalar") in ("1", "Y")
        with enetstl.force_scalar(False):
            assert enetstl.param("force_scalar") in ("0", "N")
        assert enetstl.scalar_forced
    assert enetstl.scalar_forced == before


@pytest.mark.vm
def test_absent_then_reloaded(enetstl):
    with enetstl.absent():
        assert not Path("/sys/module/enetstl").exists()
        assert "enetstl" not in Path("/proc/modules").read_text().split()
    assert enetstl.loaded


@pytest.mark.vm
def test_enetstl_absent_fixture(enetstl_absent):
    assert not enetstl_absent.loaded


def test_load_reports_a_missing_ko(tmp_path):
    """Host side (the module is never loaded here): a clear error, no insmod attempted."""
    m = Enetstl(tmp_path / "nope.ko")
    if m.loaded:
        pytest.skip("enetstl is loaded in this kernel")
    with pytest.raises(ModuleError, match="nope.ko not built"):
        m.load()
