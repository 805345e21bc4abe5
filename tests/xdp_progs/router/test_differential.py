"""Differential: 100k random routes with a BGP-like prefix-length mix, 100k addresses, v4 and v6,
for both structures (DIR-24-8 + multibit trie, and the kernel LPM trie). The group id each
address gets from the loaded program's own lookup code (xdp_lookup_batch) must equal the
Python reference LPM's (nf.models.router.Lpm: a dict per prefix length)."""
from __future__ import annotations

import os
import random

import numpy as np
import pytest

from nf.config.router import validate_router_config
from nf.models.router import Lpm
from nf.nfs.router import Router
from nf.routes import RouteSet, chunks_needed_v6, synthetic_v4, synthetic_v6

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="loading BPF needs root")

N_ROUTES = 100_000
N_ADDRS = 100_000


def _cfg(mode: str, v6_chunks: int) -> dict:
    return {
        "mode": mode,
        "interfaces": [
            {"name": "p0", "ifindex": 1, "mac": "02:00:00:00:00:01", "addresses": ["10.255.0.1/24", "fd00::1/64"]},
            {"name": "p1", "ifindex": 1001, "mac": "02:00:00:00:00:02", "addresses": ["10.255.1.1/24", "fd00:1::1/64"]},
        ],
        "sizes": {"v4_chunks": 8192, "v6_chunks": v6_chunks, "trie_entries": N_ROUTES + 64},
    }


@pytest.fixture(scope="module")
def table():
    a4, l4 = synthetic_v4(N_ROUTES, seed=11)
    r6 = synthetic_v6(N_ROUTES, seed=12)
    rnd = random.Random(13)
    # queries: half uniform, half inside routed prefixes (so long prefixes are hit)
    q4 = [rnd.getrandbits(32) for _ in range(N_ADDRS // 2)]
    for i in rnd.sample(range(N_ROUTES), N_ADDRS // 2):
        q4.append(int(a4[i]) | (rnd.getrandbits(32) & ((1 << (32 - int(l4[i]))) - 1)))
    q6 = [(0x2 << 124) | rnd.getrandbits(125) for _ in range(N_ADDRS // 4)]
    q6 += [rnd.getrandbits(128) for _ in range(N_ADDRS // 4)]
    for i in rnd.sample(range(N_ROUTES), N_ADDRS // 2):
        a, n = r6[i]
        q6.append(a | (rnd.getrandbits(128) & ((1 << (128 - n)) - 1)))
    return a4, l4, r6, q4, q6


@pytest.mark.parametrize("mode", ["dir", "trie"])
def test_lookup_matches_reference(table, mode):
    a4, l4, r6, q4, q6 = table
    cfg = validate_router_config(_cfg(mode, v6_chunks=chunks_needed_v6([(a, n, 0) for a, n in r6]) + 64))
    with Router(cfg, tx_ifindex=1) as r:
        r.load()
        gids = [r.resolve_target(f"via 10.255.1.{i}") for i in range(2, 202)]
        gids6 = [r.resolve_target(f"via fd00:1::{i:x}") for i in range(2, 202)]
        rnd = np.random.default_rng(5)
        g4 = np.array(gids, np.uint32)[rnd.integers(0, len(gids), len(a4))]
        g6 = [gids6[int(x)] for x in rnd.integers(0, len(gids6), len(r6))]
        r.replace_routes(RouteSet(a4, l4, g4, [(a, n, g) for (a, n), g in zip(r6, g6)]))

        full = r.all_routes()      # + connected and local routes
        ref4, ref6 = Lpm(32, full.v4_dict()), Lpm(128, full.v6_dict())
        got4 = r.lookup_raw(q4, [4] * len(q4))
        got6 = r.lookup_raw(q6, [6] * len(q6))
        bad4 = [(hex(a), g, ref4.lookup(a)) for a, g in zip(q4, got4) if g != ref4.lookup(a)]
        bad6 = [(hex(a), g, ref6.lookup(a)) for a, g in zip(q6, got6) if g != ref6.lookup(a)]
        assert not bad4[:5] and not bad6[:5], (len(bad4), len(bad6))
        # the test means something: most addresses routed, many distinct groups seen
        assert sum(1 for g in got4 if g) > N_ADDRS // 2
        assert sum(1 for g in got6 if g) > N_ADDRS // 2
        assert len(set(got4)) > 150 and len(set(got6)) > 150
