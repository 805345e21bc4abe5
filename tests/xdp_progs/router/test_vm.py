"""VM tier (guest with the eNetSTL module loaded, 6.12 kernel): both lookup structures give the
model's bytes (ICMP errors with long, odd and IPv4-options quotes included) and the reference
LPM's answers there too, and the ECMP hash computed by the
module's enetstl_crc32c kfunc picks the same hop as the pure-eBPF CRC-32C and the model."""
from __future__ import annotations

import os
import random
import sys

import numpy as np
import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

sys.path.insert(0, os.path.dirname(__file__))
from router_topo import H0_MAC, MAC_P0, make_router, model_of  # noqa: E402

from nf.models.router import Lpm  # noqa: E402
from nf.routes import RouteSet, chunks_needed_v6, synthetic_v4, synthetic_v6  # noqa: E402

pytestmark = pytest.mark.vm


def _frames():
    e = Ether(dst=MAC_P0, src=H0_MAC)
    out = [e / IP(src="10.0.0.5", dst=d, ttl=t) / UDP(sport=7, dport=9) / (b"v" * 20)
           for d, t in (("192.168.3.4", 9), ("192.168.7.200", 9), ("192.168.3.4", 1), ("8.8.8.8", 9),
                        ("10.0.1.7", 9), ("198.51.100.1", 9), ("203.0.113.1", 9))]
    out += [e / IPv6(src="2001:db8::5", dst=d, hlim=h) / UDP(sport=7, dport=9) / (b"w" * 20)
            for d, h in (("2001:db8:99::1", 9), ("2001:db8:99:8001::1", 9), ("2001:db8:99::1", 1),
                         ("2001:db8:77::1", 9))]
    # ICMP errors quoting up to 576 / 1,280 bytes (odd lengths, IPv4 options) on the 6.12 verifier
    rr = b"\x07\x27\x04" + bytes(36) + b"\x00"
    out += [e / IP(src="10.0.0.5", dst=d, ttl=t, options=o) / UDP(sport=7, dport=9) / (b"q" * n)
            for d, t, o, n in (("192.168.3.4", 1, b"", 1000), ("192.168.3.4", 1, b"", 101),
                               ("192.168.3.4", 1, b"\x01\x01\x01\x00", 700), ("8.8.8.8", 9, rr, 33),
                               ("192.168.3.4", 9, rr, 33))]
    out += [e / IPv6(src="2001:db8::5", dst="2001:db8:99::1", hlim=1) / UDP(sport=7, dport=9) / (b"W" * n)
            for n in (1400, 101)]
    out += [e / IP(src="10.0.0.5", dst="172.16.5.5") / UDP(sport=1000 + i, dport=4789) for i in range(64)]
    out += [e / IPv6(src="2001:db8::5", dst="2001:db8:aa::5") / UDP(sport=1000 + i, dport=4789) for i in range(64)]
    return [bytes(f) for f in out]


@pytest.mark.parametrize("mode", ["dir", "trie"])
def test_frames_match_model_with_module(enetstl, mode):
    frames = _frames()
    with_mod = make_router(mode)
    pure = make_router(mode, use_module=False)
    try:
        model = model_of(with_mod)
        for f in frames:
            want = model.process(f, 1)[:2]
            assert with_mod.run(f) == want, f.hex()
            assert pure.run(f) == want, f.hex()
    finally:
        with_mod.close()
        pure.close()


@pytest.mark.parametrize("mode", ["dir", "trie"])
def test_differential_in_guest(enetstl, mode):
    from nf.config.router import validate_router_config
    from nf.nfs.router import Router
    a4, l4 = synthetic_v4(20_000, seed=21)
    r6 = synthetic_v6(5_000, seed=22, allocations=200)
    d = {"mode": mode,
         "interfaces": [{"name": "p0", "ifindex": 1, "mac": "02:00:00:00:00:01",
                         "addresses": ["10.255.0.1/24", "fd00::1/64"]}],
         "sizes": {"v4_chunks": 2048, "v6_chunks": chunks_needed_v6([(a, n, 0) for a, n in r6]) + 64,
                   "trie_entries": 20_100}}
    rnd = random.Random(23)
    with Router(validate_router_config(d), tx_ifindex=1) as r:
        r.load()
        gids = [r.resolve_target(f"via 10.255.0.{i}") for i in range(2, 60)]
        g6 = [r.resolve_target(f"via fd00::{i:x}") for i in range(2, 60)]
        r.replace_routes(RouteSet(a4, l4, np.array([gids[i % len(gids)] for i in range(len(a4))], np.uint32),
                                  [(a, n, g6[i % len(g6)]) for i, (a, n) in enumerate(r6)]))
        full = r.all_routes()
        ref4, ref6 = Lpm(32, full.v4_dict()), Lpm(128, full.v6_dict())
        q4 = [int(a4[i]) | (rnd.getrandbits(32) & ((1 << (32 - int(l4[i]))) - 1))
              for i in rnd.sample(range(len(a4)), 5000)] + [rnd.getrandbits(32) for _ in range(5000)]
        q6 = [a | (rnd.getrandbits(128) & ((1 << (128 - n)) - 1)) for a, n in rnd.sample(r6, 3000)]
        assert r.lookup_raw(q4, [4] * len(q4)) == [ref4.lookup(a) for a in q4]
        assert r.lookup_raw(q6, [6] * len(q6)) == [ref6.lookup(a) for a in q6]
