"""Benchmark (pytest -m bench -s): forwarding rate on a 2-host veth lab with live frames
(traffic/livegen.py: generator on h1 pinned to one CPU, native XDP counter on h2), for the router
in each lookup mode with 100k IPv4 routes loaded, Linux IPv4 forwarding (no XDP) and the
router's kernel-FIB mode (a bpf_fib_lookup forwarder). One run, same lab, ratios reported.
The measuring code is nf/bench/router.py (`lab_mpps`), shared with `nf bench`."""
from __future__ import annotations

import pytest

from nf.bench.router import LAB_N, lab_mpps

pytestmark = [pytest.mark.bench, pytest.mark.netns]


def test_lab_mpps():
    out = lab_mpps()
    base = out["linux forwarding"]
    print(f"\nlab forwarding, 64-byte UDP, one CPU (median of 3 x {LAB_N // 1000}k frames):")
    for k, v in out.items():
        print(f"  {k:18} {v:6.2f} Mpps  {v / base:5.2f}x Linux  {v / out['router fib']:5.2f}x fib")
    assert set(out) == {"linux forwarding", "ceiling (fwd)", "router dir", "router trie", "router fib"}
    assert all(v > 0 for v in out.values())
