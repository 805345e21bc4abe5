"""Benchmark (pytest -m bench -s): per-lookup ns of DIR-24-8 / multibit trie vs the kernel LPM
trie at 1k, 100k, 1M IPv4 routes and 1k, 100k IPv6 routes, hot (one destination), warm (1,024)
and cold (65,536 random), plus the time to load 1M IPv4 routes from a route file.

Method: xdp_lookup_batch runs bpf_loop over N probes in one BPF_PROG_TEST_RUN (repeat R); the
kernel reports ns per run; a run with family 0 (loop and probe access, no lookup) is subtracted;
median of 5 rounds. Both structures are measured in the same process, same probes."""
from __future__ import annotations

import ctypes
import mmap
import os
import random
import statistics
import time

import numpy as np
import pytest

from nf.config.router import validate_router_config
from nf.nfs.router import RT_PROBES, Router, RtProbe
from nf.routes import RouteSet, read_route_file, synthetic_v4, synthetic_v6, chunks_needed_v6

pytestmark = [pytest.mark.bench, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]


def _router(mode, n4, n6, r6=None):
    d = {"mode": mode,
         "interfaces": [{"name": "p0", "ifindex": 1, "mac": "02:00:00:00:00:01",
                         "addresses": ["10.255.0.1/24", "fd00::1/64"]}],
         "sizes": {"v4_chunks": 40000, "v6_chunks": (chunks_needed_v6([(a, n, 0) for a, n in r6]) + 64) if r6 else 64,
                   "trie_entries": max(n4, n6) + 64}}
    return Router(validate_router_config(d), tx_ifindex=1).load()


def _time_probes(r: Router, addrs, fam, rounds=5, repeat=20) -> float:
    m = r.obj.map("rt_probes")
    prog = r.obj.program("xdp_lookup_batch")
    stride = ctypes.sizeof(RtProbe)
    size = (stride * RT_PROBES + mmap.PAGESIZE - 1) // mmap.PAGESIZE * mmap.PAGESIZE
    mm = mmap.mmap(m.fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    n = len(addrs)
    buf = bytearray(stride * n)
    for i, a in enumerate(addrs):
        o = i * stride
        w = 4 if fam == 4 else 16
        buf[o:o + w] = a.to_bytes(w, "big")
    frame = n.to_bytes(4, "little") + bytes(60)

    def run(f):
        for i in range(n):
            buf[i * stride + 16] = f
        mm[:len(buf)] = bytes(buf)
        return statistics.median(prog.test_run(frame, repeat=repeat).duration_ns for _ in range(rounds))
    try:
        base = run(0)
        full = run(fam)
    finally:
        mm.close()
    return max(full - base, 0) / n


def test_lookup_ns_table(tmp_path):
    rnd = random.Random(1)
    rows = []
    for n in (1_000, 100_000, 1_000_000):
        a4, l4 = synthetic_v4(n, seed=3)
        sets = {}
        for mode in ("dir", "trie"):
            r = _router(mode, n, 0)
            gid = r.resolve_target("dev p0")
            r.replace_routes(RouteSet(a4, l4, np.full(len(a4), gid, np.uint32), []))
            sets[mode] = r
        routed = [int(a4[i]) | (rnd.getrandbits(32) & ((1 << (32 - int(l4[i]))) - 1))
                  for i in rnd.sample(range(len(a4)), min(len(a4), 65536))]
        cases = {"hot": [routed[0]] * 1024, "warm": routed[:1024],
                 "cold": [routed[i % len(routed)] ^ (rnd.getrandbits(12)) for i in range(65536)]}
        for kind, addrs in cases.items():
            res = {m: _time_probes(r, addrs, 4) for m, r in sets.items()}
            rows.append(("v4", n, kind, res["dir"], res["trie"]))
        for r in sets.values():
            r.close()
    for n in (1_000, 100_000):
        r6 = synthetic_v6(n, seed=3)
        sets = {}
        for mode in ("dir", "trie"):
            r = _router(mode, 0, n, r6)
            gid = r.resolve_target("dev p0")
            r.replace_routes(RouteSet(np.zeros(0, np.uint32), np.zeros(0, np.uint8), np.zeros(0, np.uint32),
                                      [(a, l, gid) for a, l in r6]))
            sets[mode] = r
        routed = [r6[i][0] | (rnd.getrandbits(128) & ((1 << (128 - r6[i][1])) - 1))
                  for i in rnd.sample(range(len(r6)), min(len(r6), 65536))]
        cases = {"hot": [routed[0]] * 1024, "warm": routed[:1024],
                 "cold": [routed[i % len(routed)] for i in range(65536)]}
        for kind, addrs in cases.items():
            res = {m: _time_probes(r, addrs, 6) for m, r in sets.items()}
            rows.append(("v6", n, kind, res["dir"], res["trie"]))
        for r in sets.values():
            r.close()
    print("\nfamily routes   case   ours ns  trie ns  trie/ours")
    for fam, n, kind, ours, trie in rows:
        print(f"{fam:6} {n:>8} {kind:5} {ours:8.1f} {trie:8.1f} {trie / max(ours, 0.1):8.1f}x")


def test_load_1m_from_file(tmp_path):
    import subprocess
    import sys
    f = tmp_path / "routes.txt"
    subprocess.run([sys.executable, "configs/gen_router_routes.py", str(f), "--v4", "1000000"], check=True)
    d = {"interfaces": [{"name": "p0", "ifindex": 1, "mac": "02:00:00:00:00:01", "addresses": ["10.0.0.1/24"]},
                        {"name": "p1", "ifindex": 1001, "mac": "02:00:00:00:00:02", "addresses": ["10.0.1.1/24"]},
                        {"name": "p2", "ifindex": 1002, "mac": "02:00:00:00:00:03", "addresses": ["10.0.2.1/24"]}],
         "groups": [{"name": "uplinks", "via": ["10.0.1.2", "10.0.2.2"]}],
         "sizes": {"v4_chunks": 32768, "v6_chunks": 64}}
    with Router(validate_router_config(d), tx_ifindex=1) as r:
        r.load()
        t = time.perf_counter()
        r.replace_routes(f)
        dt = time.perf_counter() - t
        print(f"\n1M IPv4 routes: parse + validate + build + upload + flip {dt:.2f} s "
              f"(target <= 2 s: {'met' if dt <= 2.0 else 'NOT met'}; load average "
              f"{os.getloadavg()[0]:.1f})")
        first = f.read_text().splitlines()[1].split()[0].split("/")[0]
        assert r.lookup([first]) != [0]


def test_forward_path_ns():
    """Native ns/packet of whole forward paths (test_run repeat 200 on a hairpin route whose
    rewrite leaves the frame addressed to the router again, TTL 255), minus nothing: the base
    program's figure is printed beside it."""
    import sys
    sys.path.insert(0, os.path.dirname(__file__))
    from router_topo import BENCH_DESTS, bench_frame, bench_router
    from nf.datapath import load_base

    def med(prog, f):
        return statistics.median(prog.test_run(f, repeat=200, ingress_ifindex=1).duration_ns
                                 for _ in range(301))
    with load_base() as b:
        base = med(b.program("xdp_base"), bench_frame("v4 /10"))
        print(f"\nforward path ns/packet (test_run, hot), trivial base program {base} ns:")
        for mode in ("dir", "trie"):
            r = bench_router(mode)
            try:
                p = r.obj.program("xdp_router")
                for name in BENCH_DESTS:
                    assert p.test_run(bench_frame(name), repeat=200, ingress_ifindex=1).retval == 4
                print(f"  {mode:5}", "  ".join(f"{k} {med(p, bench_frame(k))}" for k in BENCH_DESTS))
            finally:
                r.close()
