"""nf.kmod on a host without the module: clear errors, the canned seed-check packet, the CLI."""
from __future__ import annotations

import platform
import re
import struct
import sys

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
        with pytest.raises(kmod.ModuleNotLoaded, match=f"not loaded: {re.escape(kmod.install_hint())}"):
            fn()
    with pytest.raises(kmod.ModuleNotLoaded):
        with kmod.force_scalar():
            pass


def test_status_cli_without_module(no_module, capsys):
    assert kmod.main(["status"]) == 1
    assert "not loaded" in capsys.readouterr().out


def test_install_hint_is_one_line_for_each_kind_of_machine(monkeypatch):
    """No module support (this host): say so. A checkout: the Makefile target. An installed wheel:
    the same target through this interpreter (it carries the module's DKMS tree)."""
    import os.path
    from nf import data
    real = os.path.exists
    for modules in (False, True):
        monkeypatch.setattr(os.path, "exists", lambda p: modules if p == "/proc/modules" else real(p))
        hint = kmod.install_hint()
        assert "\n" not in hint
        if not modules:
            assert hint == "this kernel cannot load modules (CONFIG_MODULES off)"
            continue
        needs = f"(needs dkms and linux-headers-{platform.release()})"
        assert hint == f"get it: sudo make -C {data.ROOT / 'kmod'} dkms-install {needs}"
        monkeypatch.setattr(data, "checkout", lambda: None)
        assert kmod.install_hint() == f"get it: sudo {sys.executable} -m nf.kmod dkms-install {needs}"


def test_dkms_commands_run_the_makefile_target_with_this_version(monkeypatch):
    from nf import __version__
    calls = []
    monkeypatch.setattr(kmod.subprocess, "call", lambda argv: calls.append(argv) or 0)
    assert kmod.main(["dkms-install"]) == 0 and kmod.main(["dkms-remove"]) == 0
    kdir = str(kmod.data.locate("kmod"))
    assert calls == [["make", "--no-print-directory", "-C", kdir, f"dkms-{a}",
                      f"ENETSTL_VERSION={__version__}"] for a in ("install", "remove")]


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
