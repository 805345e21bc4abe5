"""The router's benchmarks (nf bench, nf/bench/guest.py and the @bench tests under
tests/xdp_progs/router/).

- `lookup_ns`: per-lookup ns of our tables (IPv4 DIR-24-8; IPv6 hashed /32 and /48 blocks over
  multibit tries) vs the kernel LPM trie, for IPv4 and IPv6 the same way. xdp_lookup_batch runs
  bpf_loop over N probes in one BPF_PROG_TEST_RUN (repeat R); the kernel reports ns per run; a
  run with family 0 (loop and probe access, no lookup) is subtracted; median of rounds. Both
  structures in the same process, same probes: hot (one destination), warm (1,024), cold (65,536
  destinations in as many random routes: the tables' working set leaves the caches and TLBs).
- `load_route_file_s`: seconds to load 1M IPv4 or IPv6 routes from a route file (parse +
  validate + build + upload + flip).
- `bench_router` / `bench_frame` / `forward_ns`: whole forward paths under test_run repeat. The
  routes lead out of p1 (its devmap entry is lo, as p0's) to neighbours whose MAC is p0's own, so
  the rewritten frame is again addressed to the router, identical but for the TTL and the source
  MAC (start 255, repeat < 255). Not out of p0: a packet leaving by the port it came in on gets
  Linux's full source check (reverse_path), which is not the ordinary forward path.
- `lab_mpps`: live-frames rate on a 2-host lab of each lookup mode with 100k routes vs Linux
  forwarding, the bpf_fib_lookup forwarder (mode fib) and the devmap-redirect ceiling.
"""
from __future__ import annotations

import ctypes
import mmap
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# ---- lookup cost -------------------------------------------------------------------------------


def make_router(mode: str, n4: int, n6: int, r6=None):
    """A router on one interface (p0 = ifindex 1), tables sized for n4 IPv4 / n6 IPv6 routes
    (r6: the IPv6 routes, to size the v6 chunk pool)."""
    from nf.config.router import validate_router_config
    from nf.nfs.router import Router
    from nf.routes import chunks_needed_v6
    d = {"mode": mode,
         "interfaces": [{"name": "p0", "ifindex": 1, "mac": "02:00:00:00:00:01",
                         "addresses": ["10.255.0.1/24", "fd00::1/64"]}],
         "sizes": {"v4_chunks": 40000,
                   "v6_chunks": (chunks_needed_v6([(a, n, 0) for a, n in r6]) + 64) if r6 else 64,
                   "trie_entries": max(n4, n6) + 64}}
    return Router(validate_router_config(d), tx_ifindex=1).load()


def time_probes(r, addrs, fam: int, rounds: int = 5, repeat: int = 20) -> float:
    """ns per lookup of `addrs` (ints; fam 4 or 6) through xdp_lookup_batch, the no-lookup
    run subtracted."""
    from nf.nfs.router import RT_PROBES, RtProbe
    m = r.obj.map("rt_probes")
    prog = r.obj.program("xdp_lookup_batch")
    stride = ctypes.sizeof(RtProbe)
    n = len(addrs)
    if n > RT_PROBES:
        raise ValueError(f"{n} probes, the probe map holds {RT_PROBES}")
    size = (stride * RT_PROBES + mmap.PAGESIZE - 1) // mmap.PAGESIZE * mmap.PAGESIZE
    mm = mmap.mmap(m.fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    buf = bytearray(stride * n)
    w = 4 if fam == 4 else 16
    for i, a in enumerate(addrs):
        buf[i * stride:i * stride + w] = a.to_bytes(w, "big")
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


def lookup_ns(sizes4=(1_000, 100_000, 1_000_000), sizes6=(1_000, 100_000, 1_000_000), ncold: int = 65536,
              rounds: int = 5, repeat: int = 20, seed: int = 1) -> dict[tuple, float]:
    """{(family "v4"/"v6", routes, "hot"/"warm"/"cold", "dir"/"trie"): ns per lookup} over
    synthetic route sets (seed 3: nf.routes.synthetic_v4 / synthetic_v6, BGP-like length mixes);
    cold = `ncold` destinations."""
    import numpy as np
    from nf.routes import RouteSet, synthetic_v4, synthetic_v6
    rnd = random.Random(seed)
    table: dict = {}
    for n in sizes4:
        a4, l4 = synthetic_v4(n, seed=3)
        sets = {}
        try:
            for mode in ("dir", "trie"):
                r = make_router(mode, n, 0)
                sets[mode] = r
                gid = r.resolve_target("dev p0")
                r.replace_routes(RouteSet(a4, l4, np.full(len(a4), gid, np.uint32), []))
            routed = [int(a4[i]) | (rnd.getrandbits(32) & ((1 << (32 - int(l4[i]))) - 1))
                      for i in rnd.sample(range(len(a4)), min(len(a4), ncold))]
            cases = {"hot": [routed[0]] * 1024, "warm": routed[:1024],
                     "cold": [routed[i % len(routed)] ^ rnd.getrandbits(12) for i in range(ncold)]}
            for kind, addrs in cases.items():
                for m, r in sets.items():
                    table[("v4", n, kind, m)] = time_probes(r, addrs, 4, rounds=rounds, repeat=repeat)
        finally:
            for r in sets.values():
                r.close()
    for n in sizes6:
        r6 = synthetic_v6(n, seed=3)
        sets = {}
        try:
            for mode in ("dir", "trie"):
                r = make_router(mode, 0, n, r6)
                sets[mode] = r
                gid = r.resolve_target("dev p0")
                r.replace_routes(RouteSet(np.zeros(0, np.uint32), np.zeros(0, np.uint8),
                                          np.zeros(0, np.uint32), [(a, l, gid) for a, l in r6]))
            routed = [r6[i][0] | (rnd.getrandbits(128) & ((1 << (128 - r6[i][1])) - 1))
                      for i in rnd.sample(range(len(r6)), min(len(r6), ncold))]
            cases = {"hot": [routed[0]] * 1024, "warm": routed[:1024],
                     "cold": [routed[i % len(routed)] for i in range(ncold)]}
            for kind, addrs in cases.items():
                for m, r in sets.items():
                    table[("v6", n, kind, m)] = time_probes(r, addrs, 6, rounds=rounds, repeat=repeat)
        finally:
            for r in sets.values():
                r.close()
    return table


# ---- loading a route file ----------------------------------------------------------------------


def load_route_file_s(workdir: Path, n4: int = 1_000_000, n6: int = 0) -> float:
    """Generate a route file of n4 IPv4 and n6 IPv6 routes (configs/gen_router_routes.py) in
    `workdir`, then time Router.replace_routes(file) on a 3-port router with ECMP groups. Checks
    that the file's first route is installed."""
    from nf.config.router import validate_router_config
    from nf.nfs.router import Router
    f = Path(workdir) / "routes.txt"
    subprocess.run([sys.executable, str(ROOT / "configs/gen_router_routes.py"), str(f), "--v4", str(n4),
                    "--v6", str(n6)], check=True, cwd=ROOT)
    d = {"interfaces": [{"name": "p0", "ifindex": 1, "mac": "02:00:00:00:00:01",
                         "addresses": ["10.0.0.1/24", "2001:db8::1/64"]},
                        {"name": "p1", "ifindex": 1001, "mac": "02:00:00:00:00:02",
                         "addresses": ["10.0.1.1/24", "2001:db8:1::1/64"]},
                        {"name": "p2", "ifindex": 1002, "mac": "02:00:00:00:00:03",
                         "addresses": ["10.0.2.1/24", "2001:db8:2::1/64"]}],
         "groups": [{"name": "uplinks", "via": ["10.0.1.2", "10.0.2.2"]},
                    {"name": "uplinks6", "via": ["2001:db8:1::2", "2001:db8:2::2"]}],
         "sizes": {"v4_chunks": 32768, "v6_chunks": 200 * (n6 // 1000) + 64}}
    with Router(validate_router_config(d), tx_ifindex=1) as r:
        r.load()
        t = time.perf_counter()
        r.replace_routes(f)
        dt = time.perf_counter() - t
        first = f.read_text().splitlines()[1].split()[0].split("/")[0]
        if r.lookup([first]) == [0]:
            raise RuntimeError(f"route file loaded but {first} has no route")
    return dt


# ---- forward paths under test_run --------------------------------------------------------------

MAC_P0 = "02:00:00:00:00:01"
H0_MAC = "02:dd:00:00:00:05"     # the sender's
HAIRPIN4, HAIRPIN6 = ("10.0.1.9", "10.0.1.10"), ("2001:db8:1::9", "2001:db8:1::a")
BENCH_ROUTES = [
    {"prefix": "100.64.0.0/10", "via": ["10.0.1.9"]},
    {"prefix": "100.64.7.128/25", "via": ["10.0.1.9"]},
    {"prefix": "100.128.0.0/16", "group": "hairpin"},
    {"prefix": "2001:db8:77::/48", "via": ["2001:db8:1::9"]},
    {"prefix": "2001:db8:78::/48", "group": "hairpin6"},
]
BENCH_DESTS = {"v4 /10": ("100.65.1.1", 4), "v4 /25 (tbl8)": ("100.64.7.200", 4),
               "v4 ecmp": ("100.128.5.5", 4), "v6 /48": ("2001:db8:77::1", 6),
               "v6 ecmp": ("2001:db8:78::1", 6)}


def bench_config(mode: str = "dir", **extra) -> dict:
    """p0 (ifindex 1 = lo, the test_run ingress and the tx), the sender 10.0.0.5 / 2001:db8::5
    behind it, BENCH_ROUTES out of p1 (tx lo too) to neighbours that carry p0's own MAC."""
    d = {"mode": mode,
         "interfaces": [{"name": "p0", "ifindex": 1, "mac": MAC_P0,
                         "addresses": ["10.0.0.1/24", "2001:db8::1/64"]},
                        {"name": "p1", "ifindex": 1001, "mac": "02:00:00:00:00:02",
                         "addresses": ["10.0.1.1/24", "2001:db8:1::1/64"]}],
         "groups": [{"name": "hairpin", "via": list(HAIRPIN4)},
                    {"name": "hairpin6", "via": list(HAIRPIN6)}],
         "routes": BENCH_ROUTES,
         "neighbours": [{"address": "10.0.0.5", "mac": H0_MAC}, {"address": "2001:db8::5", "mac": H0_MAC}]
         + [{"address": a, "mac": MAC_P0} for a in HAIRPIN4 + HAIRPIN6],
         "sizes": {"v4_chunks": 64, "v6_chunks": 256, "trie_entries": 1024, "neighbours": 1024}}
    d.update(extra)
    return d


def bench_router(mode: str = "dir", **extra):
    """The bench_config() router loaded (extra: config keys such as use_module)."""
    from nf.config.router import validate_router_config
    from nf.nfs.router import Router
    return Router(validate_router_config(bench_config(mode, **extra)), tx_ifindex=1).load()


def bench_frame(name: str) -> bytes:
    """A UDP frame from 10.0.0.5 (2001:db8::5) to BENCH_DESTS[name], TTL 255."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether
    dst, fam = BENCH_DESTS[name]
    e = Ether(dst=MAC_P0, src=H0_MAC)
    u = UDP(sport=1234, dport=4789) / (b"\0" * 18)
    l3 = IP(src="10.0.0.5", dst=dst, ttl=255) if fam == 4 else IPv6(src="2001:db8::5", dst=dst, hlim=255)
    return bytes(e / l3 / u)


def forward_ns(prog, name: str, repeat: int = 200, rounds: int = 101) -> float:
    """Median over rounds of the kernel-reported ns/packet of `prog` on bench_frame(name);
    raises unless the verdict is XDP_REDIRECT."""
    f = bench_frame(name)
    if prog.test_run(f, repeat=repeat, ingress_ifindex=1).retval != 4:
        raise RuntimeError(f"router bench frame {name!r} was not redirected")
    return statistics.median(prog.test_run(f, repeat=repeat, ingress_ifindex=1).duration_ns
                             for _ in range(rounds))


# ---- lab ---------------------------------------------------------------------------------------

LAB_ROUTES = 100_000
LINUX = "Linux IPv4 forwarding"
FIB = "bpf_fib_lookup forwarder (router mode: fib)"
DIR = "router DIR-24-8"
TRIE = "router LPM trie"


def lab_cases(lab, es, generator: str, routes: int = LAB_ROUTES) -> dict:
    """Cases (nf.bench.lab.Case) on a LabSpec.router(2, ip_forward=True, queues=2) lab, 64-byte
    UDP h1 -> h2 (the second CPU: its own source port and destination): the generator alone
    (DROP), the ceiling (fixed MAC rewrite + redirect, no lookup), the router in dir and trie
    mode with `routes` synthetic IPv4 routes, its fib mode (the bpf_fib_lookup forwarder), and
    Linux forwarding. Every router is loaded once (into the ExitStack `es`) and attached only
    for its turns. Frames from the live generator reach a veth's stack only through a native
    XDP program on it, so for Linux forwarding under that generator the ingress port gets the
    least one (rxcount: count, XDP_PASS); tc frames are skbs and need none."""
    import contextlib

    import numpy as np
    from pyroute2 import IPRoute
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    from nf.bench.lab import CEILING, DROP, ONE, TWO, Case, ceiling_case, drop_case
    from nf.bpf import XdpMode
    from nf.config.router import validate_router_config
    from nf.nfs.router import Router
    from nf.routes import RouteSet, synthetic_v4
    from traffic.labgen import RxCounter

    h1, h2 = lab.host("h1"), lab.host("h2")
    dst2 = h2.ip4.rsplit(".", 1)[0] + ".9"        # the second CPU's destination, same subnet
    frames = [[bytes(Ether(src=h1.mac, dst=h1.port_mac) / IP(src=h1.ip4, dst=d, ttl=64) /
                     UDP(sport=sp, dport=9) / (b"\0" * 18))] for d, sp in ((h2.ip4, 1234), (dst2, 1235))]
    # the receiver's counter drops everything, ARP included: give the dut's kernel (Linux
    # forwarding, bpf_fib_lookup) permanent neighbour entries for both destinations
    with lab.enter("dut"), IPRoute() as ipr:
        for d in (h2.ip4, dst2):
            ipr.neigh("add", dst=d, lladdr=h2.mac, ifindex=h2.port_ifindex, state=0x80)
    a4, l4 = synthetic_v4(routes, seed=5)
    keep = (a4 >> 24) != 10          # leave the lab's own 10/8 to the connected routes
    hosts = list(lab.hosts.values())
    routers = {}
    for mode in ("dir", "trie", "fib"):
        cfg = {"mode": mode,
               "interfaces": [{"name": h.port, "mac": h.port_mac, "addresses": list(h.port_addresses)}
                              for h in hosts],
               "neighbours": [{"address": a.split("/")[0], "mac": h.mac}
                              for h in hosts for a in h.addresses] +
                             [{"address": dst2, "mac": h2.mac}],
               "sizes": {"v4_chunks": 4096, "v6_chunks": 64, "trie_entries": routes + 100}}
        with lab.enter("dut"):
            r = es.enter_context(Router(validate_router_config(cfg)))
            r.load()
            if mode != "fib":
                gid = r.resolve_target(f"via {h2.ip4}")
                r.replace_routes(RouteSet(a4[keep], l4[keep],
                                          np.full(int(keep.sum()), gid, np.uint32), []))
        routers[mode] = r

    @contextlib.contextmanager
    def attached(r):
        with lab.enter("dut"):
            r.attach(XdpMode.NATIVE)
        try:
            yield
        finally:
            r.detach()

    linux = ((lambda: RxCounter(lab.dut, h1.port, action="pass")) if generator == "live"
             else contextlib.nullcontext)
    return {
        DROP: drop_case(lab, frames),
        CEILING: ceiling_case(lab, frames),
        DIR: Case(lambda: attached(routers["dir"]), frames, cpu_sets=(ONE, TWO)),
        TRIE: Case(lambda: attached(routers["trie"]), frames),
        FIB: Case(lambda: attached(routers["fib"]), frames),
        LINUX: Case(linux, frames, 0.95),
    }


def lab_rates(n: int = 400_000, rounds: int = 5, generator: str | None = None):
    from nf.bench.lab import run
    from nf.net.lab import LabSpec
    return run(LabSpec.router(2, ip_forward=True, queues=2), lab_cases, generator=generator,
               n=n, rounds=rounds)
