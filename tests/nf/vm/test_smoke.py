"""vm tier smoke test: runs inside the guest (NF_IN_GUEST=1), proving the tier really boots the
6.12 cloud kernel and that BPF objects built on the host run there."""
from __future__ import annotations

import os
import platform
import re
import struct
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BASE_OBJ = ROOT / "build" / "bpf" / "base" / "base.o"

XDP_DROP, XDP_PASS = 1, 2


def _udp4_frame() -> bytes:
    """Ethernet + IPv4 (checksum filled in) + UDP 1234 -> 5678, 64 bytes."""
    payload = b"\x00" * 18
    udp = struct.pack("!HHHH", 1234, 5678, 8 + len(payload), 0) + payload
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                               bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])))
    s = sum(struct.unpack("!10H", bytes(ip)))
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    ip[10:12] = struct.pack("!H", ~s & 0xFFFF)
    eth = bytes.fromhex("020000000002" "020000000001" "0800")
    return eth + bytes(ip) + udp


def _bpftool_run(pin: str, data: Path) -> int:
    out = subprocess.run(["bpftool", "prog", "run", "pinned", pin, "data_in", str(data),
                          "repeat", "10"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    m = re.search(r"Return value: (\d+)", out.stdout + out.stderr)
    assert m, out.stdout + out.stderr
    return int(m.group(1))


@pytest.mark.vm
def test_guest_runs_the_cloud_kernel():
    assert os.environ.get("NF_IN_GUEST") == "1"
    release = platform.release()
    assert re.fullmatch(r"6\.12\.\d+\+deb12[^-]*-cloud-amd64", release), release
    # the guest root is the host's, read-only; /tmp is the host's, writable
    assert not os.access("/usr", os.W_OK)
    with open("/proc/mounts") as f:
        mounts = f.read()
    assert re.search(r"^hostroot / virtiofs ro", mounts, re.M), mounts
    assert re.search(r"^bpf /sys/fs/bpf bpf", mounts, re.M), mounts


@pytest.mark.vm
def test_built_bpf_program_runs_in_guest(tmp_path):
    assert BASE_OBJ.exists(), "the host builds build/bpf before booting the guest"
    pin = f"/sys/fs/bpf/nf_vm_smoke_{os.getpid()}"
    good, short = tmp_path / "udp4.bin", tmp_path / "short.bin"
    good.write_bytes(_udp4_frame())
    # test_run needs a full Ethernet header; an IPv4 header cut after 8 bytes is malformed
    short.write_bytes(_udp4_frame()[:14 + 8])
    load = subprocess.run(["bpftool", "prog", "load", str(BASE_OBJ), pin, "type", "xdp"],
                          capture_output=True, text=True, timeout=120)
    assert load.returncode == 0, load.stderr[-3000:]
    try:
        assert _bpftool_run(pin, good) == XDP_PASS
        assert _bpftool_run(pin, short) == XDP_DROP
    finally:
        os.unlink(pin)
