"""nf/bpf/libbpf.py: the ctypes opts structs match libbpf 1.4's C headers field by field
(sizeof and every offsetof, compiled with the system C compiler), and the print hook works."""
from __future__ import annotations

import ctypes
import shutil
import subprocess

import pytest

from nf.bpf import libbpf as L

STRUCTS = {  # ctypes mirror -> C type; fields starting with "_" are padding stand-ins
    "bpf_object_open_opts": "struct bpf_object_open_opts",
    "bpf_test_run_opts": "struct bpf_test_run_opts",
    "bpf_link_create_opts": "struct bpf_link_create_opts",
    "bpf_link_update_opts": "struct bpf_link_update_opts",
    "bpf_map_batch_opts": "struct bpf_map_batch_opts",
    "bpf_map_create_opts": "struct bpf_map_create_opts",
    "bpf_xdp_query_opts": "struct bpf_xdp_query_opts",
    "bpf_xdp_attach_opts": "struct bpf_xdp_attach_opts",
    "xdp_md": "struct xdp_md",
    "btf_var_secinfo": "struct btf_var_secinfo",
    "btf_type": "struct btf_type",
}
RENAMED = {("bpf_link_create_opts", "u"): "kprobe_multi",   # anonymous union in C
           ("btf_type", "size_or_type"): "size"}


def _c_layout(tmp_path) -> dict[str, int]:
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang-19")
    if not cc:
        pytest.skip("no C compiler to read the libbpf headers with")
    lines = []
    for py, c in STRUCTS.items():
        ct = getattr(L, py)
        lines.append(f'printf("{py} %zu\\n", sizeof({c}));')
        for f, *_ in ct._fields_:
            if f.startswith("_"):
                continue
            cf = RENAMED.get((py, f), f)
            lines.append(f'printf("{py}.{f} %zu\\n", offsetof({c}, {cf}));')
    src = tmp_path / "layout.c"
    src.write_text("#include <stdio.h>\n#include <stddef.h>\n#include <bpf/libbpf.h>\n"
                   "#include <bpf/bpf.h>\n#include <linux/btf.h>\n"
                   "int main(void) {\n" + "\n".join(lines) + "\nreturn 0; }\n")
    exe = tmp_path / "layout"
    subprocess.run([cc, "-o", str(exe), str(src)], check=True, capture_output=True, timeout=60)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True, timeout=10)
    return {k: int(v) for k, v in (ln.split() for ln in out.stdout.splitlines())}


def test_opts_structs_match_libbpf_headers(tmp_path):
    c = _c_layout(tmp_path)
    for py in STRUCTS:
        ct = getattr(L, py)
        assert ctypes.sizeof(ct) == c[py], f"sizeof {py}"
        for f, *_ in ct._fields_:
            if not f.startswith("_"):
                assert getattr(ct, f).offset == c[f"{py}.{f}"], f"offsetof {py}.{f}"


def test_opts_carry_their_size():
    assert L.bpf_test_run_opts().sz == ctypes.sizeof(L.bpf_test_run_opts)
    assert L.bpf_link_create_opts(flags=L.XDP_FLAGS_SKB_MODE).sz == 80


def test_print_hook_captures_libbpf_warnings(tmp_path):
    junk = tmp_path / "junk.o"
    junk.write_bytes(b"\x7fELF" + bytes(60))
    with L.capture_messages() as cap:
        assert not L.bpf_object__open_file(str(junk).encode(), None)
    assert "libbpf:" in cap.text and "elf" in cap.text.lower()


def test_num_possible_cpus_matches_sysfs():
    text = open("/sys/devices/system/cpu/possible").read().strip()
    n = 0
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        n += int(hi or lo) - int(lo) + 1
    assert L.num_possible_cpus() == n
