"""The datapath's per-CPU neighbour cache (rt_ncache) never serves a stale MAC: a neighbour
changed by the controller (set_neighbour) or learned from an ARP reply is used by the very next
forwarded packet."""
from __future__ import annotations

import os

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Ether

from nf.models.router import XDP_PASS, XDP_REDIRECT
from router_topo import GW1_MAC, H0_MAC, MAC_P0, make_router

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="loading BPF needs root")

NEW_MAC = "02:aa:bb:cc:dd:01"
LEARNED_MAC = "02:aa:bb:cc:dd:02"


def frame(dst="192.168.3.4", src="10.0.1.7"):
    return bytes(Ether(dst=MAC_P0, src=H0_MAC) / IP(src=src, dst=dst, ttl=9) /
                 UDP(sport=1, dport=2) / (b"x" * 18))


@pytest.mark.parametrize("mode", ["dir", "trie"])
def test_controller_change_seen_by_next_packet(mode):
    r = make_router(mode)
    try:
        for _ in range(3):   # fill the cache
            v, out = r.run(frame())
            assert v == XDP_REDIRECT and Ether(out).dst == GW1_MAC
        r.set_neighbour(1, "10.0.1.2", NEW_MAC)          # learned-class entry, port p1
        v, out = r.run(frame())
        assert v == XDP_REDIRECT and Ether(out).dst == NEW_MAC
        r.set_neighbour(1, "10.0.1.2", GW1_MAC, static=True)
        v, out = r.run(frame())
        assert v == XDP_REDIRECT and Ether(out).dst == GW1_MAC
    finally:
        r.close()


def test_arp_learned_change_seen_by_next_packet():
    r = make_router("dir")
    try:
        # 10.0.0.9 is on p0's connected subnet (test_run ingress: lo) with no neighbour entry yet
        v, _ = r.run(frame("10.0.0.9"))
        assert v == XDP_PASS
        arp = bytes(Ether(dst=MAC_P0, src=NEW_MAC) /
                    ARP(op=2, hwsrc=NEW_MAC, psrc="10.0.0.9", hwdst=MAC_P0, pdst="10.0.0.1"))
        r.run(arp)
        v, out = r.run(frame("10.0.0.9"))
        assert v == XDP_REDIRECT and Ether(out).dst == NEW_MAC
        arp2 = bytes(Ether(dst=MAC_P0, src=LEARNED_MAC) /
                     ARP(op=2, hwsrc=LEARNED_MAC, psrc="10.0.0.9", hwdst=MAC_P0, pdst="10.0.0.1"))
        r.run(arp2)
        v, out = r.run(frame("10.0.0.9"))
        assert v == XDP_REDIRECT and Ether(out).dst == LEARNED_MAC
    finally:
        r.close()
