"""The ctypes mirrors of the kmod test / seed-check structs match the BTF of the objects that
use them (sizes, offsets, signedness), and the BPF-visible prefix of the memory-wrapper node
matches the module's BTF."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from nf import kmod
from nf.bpf.build import build
from nf.bpf.layout import check_layout, mirror_objects
from nf.testing import kmod as tk

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("mirror", [tk.KtReq, tk.KtCmTable, tk.KoReq, kmod.SeedResult],
                         ids=lambda m: m.__name__)
def test_mirror_matches_btf(mirror):
    for name in mirror_objects(mirror):
        check_layout(mirror, build(name))


def test_node_prefix_matches_module_btf():
    ko = ROOT / "kmod" / "enetstl.ko"
    base = sorted(Path("/usr/src").glob("linux-headers-6.12*-cloud-amd64/vmlinux"))
    if not ko.exists() or not base:
        pytest.skip("kmod/enetstl.ko or the 6.12 headers' vmlinux missing (make -C kmod)")
    out = subprocess.run(["bpftool", "-B", str(base[-1]), "btf", "dump", "file", str(ko)],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    lines = out.splitlines()
    i = next(n for n, l in enumerate(lines) if "STRUCT 'enetstl_mw_node'" in l)
    members = {l.split("'")[1]: l for l in lines[i + 1:i + 10] if l.startswith("\t'")}
    assert "bits_offset=0" in members["data"]
    assert "bits_offset=512" in members["id"]          # byte 64 = ENETSTL_MW_DATA
