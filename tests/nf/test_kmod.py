"""nf.kmod on a host without the module: clear errors, the canned seed-check packet, the CLI."""
from __future__ import annotations

import struct

import pytest

from nf import kmod


@pytest.fixture
def no_module():
    if kmod.is_loaded():
        pytest.skip("enetstl is loaded here")


def test_paths():
    assert kmod.KO_PATH.name == "enetstl.ko" and kmod.KO_PATH.parent.name == "kmod"


def test_readers_raise_without_module(no_module):
    for fn in (kmod.counters, kmod.live, kmod.features, kmod.scalar_forced):
        with pytest.raises(kmod.ModuleNotLoaded, match="insmod"):
            fn()
    with pytest.raises(kmod.ModuleNotLoaded):
        with kmod.force_scalar():
            pass


def test_status_cli_without_module(no_module, capsys):
    assert kmod.main(["status"]) == 1
    assert "not loaded" in capsys.readouterr().out


def test_canned_packet_is_valid_tcp4():
    f = kmod.canned_tcp4()
    assert len(f) == 64 and f[12:14] == b"\x08\x00"
    ip = f[14:34]
    assert ip[0] == 0x45 and ip[9] == 6
    s = sum(struct.unpack("!10H", ip))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    assert s == 0xFFFF                         # header checksum verifies
    assert struct.unpack("!HH", f[34:38]) == (1234, 80)
    assert f[47] == 0x02                       # SYN
