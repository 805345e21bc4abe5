"""nf/bpf/pin.py: per-instance bpffs directories."""
from __future__ import annotations

import ctypes
import uuid

import pytest

from nf.bpf import BpfError, BpfObject, Map, pin


def test_instance_dir_create_list_remove():
    name = f"t-{uuid.uuid4().hex[:8]}"
    d = pin.instance_dir(name)
    assert d == pin.ROOT / name and d.is_dir()
    assert pin.bpffs_mount_of(d) is not None
    assert name in pin.list_instances()
    with BpfObject.open_built("tests/rodata_verdict") as obj:
        obj.pin_maps(d)
        obj.load()
        obj.map("info").typed(ctypes.c_uint32, ctypes.c_uint32)[1] = 11
    assert pin.list_pins(name) == ["flows", "info", "stats"]
    with Map.from_pin(d / "info", ctypes.c_uint32, ctypes.c_uint32) as t:
        assert t[1] == 11
    assert pin.remove_instance(name) is True
    assert not d.exists() and name not in pin.list_instances()
    assert pin.remove_instance(name) is False


@pytest.mark.parametrize("bad", ["", "../etc", "a/b", ".hidden", "x" * 65])
def test_bad_instance_names(bad):
    with pytest.raises(ValueError, match="invalid instance name"):
        pin.instance_dir(bad)


def test_not_bpffs_is_refused(tmp_path):
    assert pin.bpffs_mount_of(tmp_path) is None
    with pytest.raises(BpfError, match="not on a bpffs mount") as ei:
        pin.check_bpffs(tmp_path)
    assert "mount -t bpf" in ei.value.hint
    with BpfObject.open_built("tests/rodata_verdict") as obj:
        with pytest.raises(BpfError, match="does not exist"):
            obj.pin_maps(tmp_path / "missing")
