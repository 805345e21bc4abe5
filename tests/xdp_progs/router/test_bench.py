"""Benchmark (pytest -m bench -s): per-lookup ns of DIR-24-8 / multibit trie vs the kernel LPM
trie at 1k, 100k, 1M IPv4 and IPv6 routes, hot (one destination), warm (1,024) and cold (65,536
random), the time to load 1M IPv4 or IPv6 routes from a route file, and whole forward paths. The measuring code (method in its docstring) is nf/bench/router.py, shared with
`nf bench`."""
from __future__ import annotations

import os

import pytest

from nf.bench.router import BENCH_DESTS, bench_frame, bench_router, forward_ns, load_route_file_s, lookup_ns

pytestmark = [pytest.mark.bench, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]


def test_lookup_ns_table():
    table = lookup_ns()
    print("\nfamily routes   case   ours ns  trie ns  trie/ours")
    for (fam, n, kind, mode), ours in table.items():
        if mode == "dir":
            trie = table[(fam, n, kind, "trie")]
            print(f"{fam:6} {n:>8} {kind:5} {ours:8.1f} {trie:8.1f} {trie / max(ours, 0.1):8.1f}x")
    assert len(table) == (3 + 3) * 3 * 2
    assert all(v >= 0 for v in table.values())


@pytest.mark.parametrize("family,sizes", [("IPv4", {"n4": 1_000_000}), ("IPv6", {"n4": 0, "n6": 1_000_000})])
def test_load_1m_from_file(tmp_path, family, sizes):
    dt = load_route_file_s(tmp_path, **sizes)
    print(f"\n1M {family} routes: parse + validate + build + upload + flip {dt:.2f} s "
          f"(target <= 2 s: {'met' if dt <= 2.0 else 'NOT met'}; load average "
          f"{os.getloadavg()[0]:.1f})")
    assert dt > 0


def test_forward_path_ns():
    """Native ns/packet of whole forward paths (test_run repeat 200 on a route whose next hop
    carries the router's own MAC, so the rewrite leaves the frame addressed to the router again,
    TTL 255), minus nothing: the base
    program's figure is printed beside it."""
    import statistics
    from nf.datapath import load_base

    with load_base() as b:
        base = statistics.median(b.program("xdp_base").test_run(bench_frame("v4 /10"), repeat=200,
                                                                ingress_ifindex=1).duration_ns
                                 for _ in range(301))
    print(f"\nforward path ns/packet (test_run, hot), trivial base program {base} ns:")
    for mode in ("dir", "trie"):
        r = bench_router(mode)
        try:
            p = r.obj.program("xdp_router")
            vals = {k: forward_ns(p, k, rounds=301) for k in BENCH_DESTS}
            print(f"  {mode:5}", "  ".join(f"{k} {v}" for k, v in vals.items()))
        finally:
            r.close()
        assert all(v > 0 for v in vals.values())
