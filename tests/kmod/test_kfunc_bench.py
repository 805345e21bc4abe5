"""Kfunc microbenchmark (-m bench, VM tier): guest instructions per call of every kfunc family,
on the SIMD / hardware path and with force_scalar=1, in one boot (ARCHITECTURE.md §6).

Each program of xdp_progs/kmod_bench/kmod_bench.bpf.c makes one call on fixed inputs; the
per-call figure is (program - b_nop), both counted with nf/vm/insncount.py ((C(2N) - C(N)) / N),
so it includes the BPF call site (argument set-up) and everything the kernel runs for the call.
Object kfuncs are reported beside their get + release pair (the `*_get_release` rows) and net of
it. The table is printed and written to kmod/BENCH.md (from the guest, whose tree is
read-only: /tmp/kmod-BENCH.md, to be copied).
"""
from __future__ import annotations

import datetime
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH_MD = ROOT / "kmod" / "BENCH.md"

# (program, what is measured); programs whose path depends on force_scalar are marked True
PROGS = [
    ("crc32c_13", "enetstl_crc32c, 13 bytes", True),
    ("crc32c_16", "enetstl_crc32c, 16 bytes", True),
    ("crc32c_40", "enetstl_crc32c, 40 bytes", True),
    ("xxh32_16", "enetstl_xxh32, 16 bytes", False),
    ("xxh32_40", "enetstl_xxh32, 40 bytes", False),
    ("hash_multi_16_d1", "enetstl_hash_multi, 16 B key, d=1", True),
    ("hash_multi_16_d2", "enetstl_hash_multi, 16 B key, d=2", True),
    ("hash_multi_16_d4", "enetstl_hash_multi, 16 B key, d=4", True),
    ("hash_multi_16_d8", "enetstl_hash_multi, 16 B key, d=8", True),
    ("hash_multi_16_d16", "enetstl_hash_multi, 16 B key, d=16", True),
    ("cm_add_16_d1", "enetstl_cm_add, 16 B key, d=1, w=64", True),
    ("cm_add_16_d2", "enetstl_cm_add, 16 B key, d=2", True),
    ("cm_add_16_d4", "enetstl_cm_add, 16 B key, d=4", True),
    ("cm_add_16_d8", "enetstl_cm_add, 16 B key, d=8", True),
    ("cm_add_16_d16", "enetstl_cm_add, 16 B key, d=16", True),
    ("cm_add_40_d8", "enetstl_cm_add, 40 B key, d=8", True),
    ("cm_add_atomic_16_d8", "enetstl_cm_add_atomic, 16 B key, d=8", True),
    ("find_u16_16", "enetstl_find_u16, 16 lanes", False),
    ("match_u16_16", "enetstl_match_u16, 16 lanes", False),
    ("match_u16_8", "enetstl_match_u16, 8 lanes", False),
    ("find_u32_8", "enetstl_find_u32, 8 lanes", False),
    ("match_u32_8", "enetstl_match_u32, 8 lanes", False),
    ("key_eq_13", "enetstl_key_eq, 13 bytes", False),
    ("key_eq_16", "enetstl_key_eq, 16 bytes", False),
    ("key_eq_40", "enetstl_key_eq, 40 bytes", False),
    ("min_idx_u32_8", "enetstl_min_idx_u32, 8 values", False),
    ("min_idx_u32_16", "enetstl_min_idx_u32, 16 values", False),
    ("ffs32", "enetstl_ffs32", False),
    ("fls32", "enetstl_fls32", False),
    ("popcnt32", "enetstl_popcnt32", False),
    ("ctz32", "enetstl_ctz32", False),
    ("ffs64", "enetstl_ffs64", False),
    ("fls64", "enetstl_fls64", False),
    ("popcnt64", "enetstl_popcnt64", False),
    ("ctz64", "enetstl_ctz64", False),
    ("lb_get_release", "enetstl_lb_get + enetstl_lb_release", False),
    ("lb_len", "enetstl_lb_len (net of get + release)", False),
    ("lb_push_pop", "enetstl_lb_push + enetstl_lb_pop (net)", False),
    ("rp_get_release", "enetstl_rp_get + enetstl_rp_release", False),
    ("rp_skip", "enetstl_rp_skip (net)", False),
    ("rp_u32", "enetstl_rp_u32 (net)", False),
    ("rp_sample", "enetstl_rp_sample (net)", False),
    ("mw_get_release", "enetstl_mw_get + enetstl_mw_release", False),
    ("mw_count", "enetstl_mw_count (net)", False),
    ("mw_root", "enetstl_mw_root + enetstl_mw_node_release (net)", False),
]
NET_OF = {"lb": "lb_get_release", "rp": "rp_get_release", "mw": "mw_get_release"}
N, ROUNDS = 4000, 2


def _frame() -> bytes:
    # any well-formed frame: the programs never read it
    return bytes(range(6)) * 2 + b"\x08\x00" + bytes(46)


def _kfunc_insns(top, prog: str) -> float:
    """Instructions in module functions (not the BPF program, not test_run) per packet."""
    return sum(v for n, v in top if n.endswith("[enetstl]"))


@pytest.mark.bench
@pytest.mark.vm
def test_kfunc_insns_per_call(insncount, enetstl):
    from nf.bpf import BpfObject
    frame = _frame()
    rows: dict[str, dict] = {}
    with BpfObject.open_built("kmod_bench/kmod_bench") as obj:
        obj.load()
        assert obj.program("b_setup").test_run(frame).retval == 2   # objects made
        nop = insncount.per_packet(obj.program("b_nop").fd, frame, n=N, rounds=ROUNDS,
                                   baseline=False)
        assert nop.retval == 2
        for scalar in (False, True):
            with enetstl.force_scalar(scalar):
                for prog, what, path_dep in PROGS:
                    if scalar and not path_dep:
                        continue
                    r = insncount.per_packet(obj.program("b_" + prog).fd, frame, n=N,
                                             rounds=ROUNDS, baseline=False)
                    assert r.retval == 2, (prog, r.retval)
                    row = rows.setdefault(prog, {"what": what})
                    row["scalar" if scalar else "simd"] = r.raw_per_packet - nop.raw_per_packet
                    row.setdefault("top", r.top[:6])
    for prog, row in rows.items():
        fam = prog.split("_")[0]
        if fam in NET_OF and prog != NET_OF[fam]:
            base = rows[NET_OF[fam]]["simd"]
            row["simd"] -= base
    # sanity: every call costs something, the bits are a handful, SIMD hashing beats scalar at d=16
    assert all(r["simd"] > 0 for r in rows.values()), rows
    assert rows["popcnt32"]["simd"] < 40, rows["popcnt32"]
    assert rows["hash_multi_16_d16"]["simd"] < rows["hash_multi_16_d16"]["scalar"]

    lines = [
        "# enetstl kfunc microbenchmark",
        "",
        "Guest instructions per call (TCG plugin, `nf/vm/insncount.py`, (C(2N) − C(N))/N, "
        f"N = {N}, min of {ROUNDS} rounds), one boot, minus the `b_nop` program (same result store, no "
        "call): the BPF call site is included. Object rows marked *(net)* subtract their get + "
        "release pair. *scalar* = `force_scalar=1` (table CRC, scalar xxh32 rows); blank where "
        "the path does not depend on it. Produced by "
        "`pytest -m bench tests/kmod/test_kfunc_bench.py -s` "
        f"({datetime.date.today().isoformat()}).",
        "",
        "| program | call | SIMD / hw path | scalar path |",
        "|---|---|---|---|",
    ]
    for prog, what, _ in PROGS:
        r = rows[prog]
        sc = f"{r['scalar']:.1f}" if "scalar" in r else ""
        lines.append(f"| `b_{prog}` | {what} | {r['simd']:.1f} | {sc} |")
    lines += ["", "## Where the instructions go (SIMD / hw path, per call, top functions of the "
              "counted region: test_run's loop and the program itself included)", ""]
    for prog, _, _ in PROGS:
        top = ", ".join(f"{n.split(' ')[0]} {v:.0f}" for n, v in rows[prog]["top"])
        lines.append(f"- `b_{prog}`: {top}")
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    # the tree is read-only in the guest; /tmp is shared with the host
    out = BENCH_MD if os.access(BENCH_MD.parent, os.W_OK) else Path("/tmp/kmod-BENCH.md")
    out.write_text(text)
    print(f"written to {out} (copy to kmod/BENCH.md when it is /tmp)")
