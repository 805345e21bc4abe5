"""Benchmark (pytest -m "bench and vm" -s): guest instructions per packet of the router's
forward paths (design notes §6), module loaded: a static IPv4 route, an ECMP group whose flow
hash is the module's CRC-32C kfunc vs the pure-eBPF CRC-32C (use_module: false), IPv6; both
lookup structures. test_run keeps the rewritten frame between repeats (each one decrements the
TTL again, and rewrites the MACs): routes lead to neighbours carrying the router's own MAC
(nf/bench/router.py: bench_router), frames start at TTL 255 and N is small (100 / 200), so every counted
iteration is the same forward. The ICMP paths turn the frame into another one: not measured. Printed and written to /tmp/router-bench-insns.json."""
from __future__ import annotations

import json

import pytest

from nf.bench.router import BENCH_DESTS, bench_frame, bench_router

pytestmark = [pytest.mark.bench, pytest.mark.vm]


def test_router_insns_per_packet(insncount, enetstl):
    rows = {}
    for mode in ("dir", "trie"):
        for use_module in (True, False):
            r = bench_router(mode, use_module=use_module)
            try:
                for name in BENCH_DESTS:
                    f = bench_frame(name)
                    if not use_module and "ecmp" not in name:
                        continue
                    res = insncount.per_packet(r.obj.program("xdp_router").fd, f, n=100, rounds=3)
                    assert res.retval == 4  # XDP_REDIRECT
                    key = f"{mode} {name}" + ("" if use_module else " (pure crc)")
                    rows[key] = round(res.insns_per_packet, 1)
            finally:
                r.close()
    print("\nguest instructions per packet beyond the empty program (router, module loaded):")
    for k, v in rows.items():
        print(f"  {k:34} {v:8.1f}")
    with open("/tmp/router-bench-insns.json", "w") as fh:
        json.dump(rows, fh, indent=1)
    assert all(v > 0 for v in rows.values())
