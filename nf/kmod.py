"""The enetstl kernel module from Python: where it is, whether it is loaded, its sysfs counters,
the force_scalar switch, and the seed check.

    python -m nf.kmod seedcheck      # the seed's two checks; prints test:PASS/FAIL lines
    python -m nf.kmod status         # loaded? CPU features, path counters, live objects
    python -m nf.kmod dkms-install   # root: build + install it for this kernel through DKMS
    python -m nf.kmod dkms-remove    #       (make -C kmod dkms-install in a checkout)

The module loads only on a kernel it was built for (in this project: the QEMU guest,
``python -m nf.vm run --insmod -- .venv/bin/python -m nf.kmod seedcheck``). DKMS builds it for
the running kernel and again for every kernel installed later (kmod/dkms.conf).
"""
from __future__ import annotations

import contextlib
import ctypes as C
import os
import platform
import struct
import subprocess
import sys
from pathlib import Path

from nf import __version__, data

ROOT = Path(__file__).resolve().parents[1]
MODULE = "enetstl"
KO_PATH = ROOT / "kmod" / "enetstl.ko"
SYSFS = Path("/sys/kernel/enetstl")
PARAMS = Path("/sys/module/enetstl/parameters")
COUNTERS = ("hash_simd_calls", "hash_scalar_calls", "crc32c_hw_calls", "crc32c_sw_calls",
            "fpu_busy", "cuckoo_cand_calls", "bt_find_calls", "live_lb", "live_rp", "live_mw", "live_mw_nodes")
LIVE = ("live_lb", "live_rp", "live_mw", "live_mw_nodes")


class ModuleNotLoaded(RuntimeError):
    """The enetstl module is not loaded in the running kernel."""


def is_loaded() -> bool:
    return Path("/sys/module", MODULE).is_dir()


def version() -> str | None:
    """MODULE_VERSION of the loaded module (the xdp-nf version it was built from), None if not
    loaded or built before it carried one."""
    try:
        return Path("/sys/module", MODULE, "version").read_text().strip()
    except OSError:
        return None


def install_hint() -> str:
    """One line: how to get the module on this machine."""
    if not os.path.exists("/proc/modules"):
        return "this kernel cannot load modules (CONFIG_MODULES off)"
    needs = f"(needs dkms and linux-headers-{platform.release()})"
    if data.checkout() is not None:
        return f"get it: sudo make -C {data.locate('kmod')} dkms-install {needs}"
    return f"get it: sudo {sys.executable} -m nf.kmod dkms-install {needs}"


def dkms(action: str) -> int:
    """make dkms-install / dkms-remove in the module's source (the checkout's kmod/ or the
    wheel's copy), with this package's version: the one implementation is kmod/Makefile."""
    return subprocess.call(["make", "--no-print-directory", "-C", str(data.locate("kmod")),
                            f"dkms-{action}", f"ENETSTL_VERSION={__version__}"])


def _require() -> None:
    if not is_loaded():
        raise ModuleNotLoaded(f"{MODULE} is not loaded: {install_hint()}")


def counters() -> dict[str, int]:
    """Every counter of /sys/kernel/enetstl/ (path call counts summed over CPUs, live objects)."""
    _require()
    return {name: int((SYSFS / name).read_text()) for name in COUNTERS}


def live() -> dict[str, int]:
    """Live object counts only (all 0 when nothing is allocated)."""
    c = counters()
    return {k: c[k] for k in LIVE}


def features() -> dict[str, int]:
    """{'avx2': 0/1, 'sse4_2': 0/1, 'force_scalar': 0/1} as the module detected them."""
    _require()
    return {k: int(v) for k, v in
            (kv.split("=") for kv in (SYSFS / "features").read_text().split())}


def scalar_forced() -> bool:
    _require()
    return (PARAMS / "force_scalar").read_text().strip() in ("1", "Y", "y")


def set_force_scalar(on: bool) -> None:
    _require()
    (PARAMS / "force_scalar").write_text("1\n" if on else "0\n")


@contextlib.contextmanager
def force_scalar(on: bool = True):
    """Run the block with the scalar paths forced (or released); restores the previous value."""
    before = scalar_forced()
    set_force_scalar(on)
    try:
        yield
    finally:
        set_force_scalar(before)


# ---------------------------------------------------------------------------------------------
# seed check

class SeedResult(C.Structure):
    """Mirror of struct seed_result (xdp_progs/kmod_tests/seed.h)."""
    __c_struct__ = "struct seed_result"
    __bpf_object__ = ("kmod_tests/seed_countmin", "kmod_tests/seed_cuckoo")
    _fields_ = [("stage", C.c_uint32), ("hashes_equal", C.c_uint32), ("est", C.c_int64),
                ("mismatch_row", C.c_uint32), ("pad", C.c_uint32)]


SEED_STAGES = {0: "not run", 1: "parsed", 2: "module missing", 3: "hashed", 4: "updated",
               5: "done"}
XDP_PASS = 2


def canned_tcp4() -> bytes:
    """Ethernet + IPv4 (valid checksum) + TCP SYN 10.0.0.1:1234 -> 10.0.0.2:80, 64 bytes."""
    tcp = struct.pack("!HHIIBBHHH", 1234, 80, 1, 0, 5 << 4, 0x02, 8192, 0, 0) + b"\0" * 10
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0, 64, 6, 0,
                               bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])))
    s = sum(struct.unpack("!10H", bytes(ip)))
    s = (s & 0xFFFF) + (s >> 16)
    ip[10:12] = struct.pack("!H", ~(s + (s >> 16)) & 0xFFFF)
    return bytes.fromhex("020000000002" "020000000001" "0800") + bytes(ip) + tcp


def _one_check(obj_name: str, prog_name: str, label: str, out) -> bool:
    from nf.bpf import BpfObject, BpfError
    from nf.bpf.build import build

    try:
        path = build(f"kmod_tests/{obj_name}")
        with BpfObject.open(path) as obj:
            obj.load()
            prog = obj.program(prog_name)
            res = prog.test_run(canned_tcp4(), repeat=1)
            print(f"test:PASS:bpf_prog_test_run_opts res 0 {res.duration_ns} nsec", file=out)
            raw = obj.map("seed_res").lookup(struct.pack("<I", 0))
            rec = SeedResult.from_buffer_copy(raw[:C.sizeof(SeedResult)])
    except (BpfError, OSError) as e:
        print(f"test:FAIL:bpf_prog_test_run_opts {e}", file=out)
        return False
    ok = res.retval == XDP_PASS and rec.hashes_equal == 1 and rec.stage == 5
    detail = (f"retval {res.retval} (XDP_PASS={XDP_PASS}) stage {SEED_STAGES.get(rec.stage)} "
              f"module-hash==bpf-scalar-hash {bool(rec.hashes_equal)} est {rec.est}")
    print(f"test:{'PASS' if ok else 'FAIL'}:{label} {res.duration_ns} nsec  # {detail}", file=out)
    return ok


def seedcheck(out=None) -> bool:
    """The seed's two checks: count-min and cuckoo hash through test_run, XDP_PASS expected;
    the count-min one also compares the module's SIMD hashes with the BPF scalar ones."""
    out = out or sys.stdout
    if not is_loaded():
        print(f"test:FAIL:enetstl module not loaded; {install_hint()}", file=out)
        return False
    a = _one_check("seed_countmin", "seed_countmin", "enetstl_countmin_sketch:test_countmin", out)
    b = _one_check("seed_cuckoo", "seed_cuckoo", "enetstl_cuckoo_hash:test_cuckoo_hash", out)
    return a and b


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m nf.kmod", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("seedcheck", help="run the seed's count-min and cuckoo checks")
    sub.add_parser("status", help="module state, CPU features and counters")
    sub.add_parser("dkms-install", help="(root) build and install the module through DKMS for "
                   "the running kernel and every later one, then load it")
    sub.add_parser("dkms-remove", help="(root) remove it from DKMS for every kernel")
    a = ap.parse_args(argv)
    if a.cmd == "seedcheck":
        return 0 if seedcheck() else 1
    if a.cmd.startswith("dkms-"):
        return dkms(a.cmd.removeprefix("dkms-"))
    if not is_loaded():
        print(f"{MODULE}: not loaded; {install_hint()}")
        return 1
    print(f"{MODULE}: loaded; features {features()}")
    for k, v in counters().items():
        print(f"  {k:18} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
