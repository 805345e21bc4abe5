"""Tier 2: the router attached (native XDP) to the dut ports of a veth lab. Hosts on different
subnets exchange UDP and ping (v4, v6) through it; TTL 1 returns Time Exceeded from the router's
address; unrouted destinations get Unreachable; an ECMP group spreads flows over two next hops,
each flow on one; counters equal what was sent."""
from __future__ import annotations

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.inet6 import ICMPv6DestUnreach, ICMPv6EchoReply, ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import Ether

from nf.models.router import csum
from router_topo import router_lab

pytestmark = pytest.mark.netns


@pytest.fixture(scope="module")
def rlab():
    yield from router_lab(3)


def _udp(lab, src="h1", dst_ip=None, ttl=64, sport=4000, payload=b"x" * 32):
    h = lab.host(src)
    return Ether(src=h.mac, dst=h.port_mac) / IP(src=h.ip4, dst=dst_ip, ttl=ttl) / \
        UDP(sport=sport, dport=9) / payload


def _exchange(lab, src, frames, taps, count, timeout=2.0):
    with lab.capture(taps) as cap:
        lab.send(src, frames)
        got = cap.wait(count=count, timeout=timeout)
    return got


def test_udp_forwarded_byte_exact_and_counted(rlab):
    lab, r = rlab
    h1, h2 = lab.host("h1"), lab.host("h2")
    before = r.port_stats()
    frames = [bytes(_udp(lab, dst_ip=h2.ip4, sport=5000 + i)) for i in range(13)]
    got = _exchange(lab, "h1", frames, ["h2"], 13)[lab.tap("h2")]
    udp = [f for f in got if len(f) >= 34 and f[23] == 17]
    assert len(udp) == 13
    for sent, recv in zip(frames, udp):
        assert recv[:6] == bytes.fromhex(h2.mac.replace(":", ""))
        assert recv[6:12] == bytes.fromhex(h2.port_mac.replace(":", ""))
        assert recv[22] == sent[22] - 1 and csum(recv[14:34]) == 0
        assert recv[34:] == sent[34:len(recv)]
    after = r.port_stats()
    assert after[h1.port]["rx_packets"] - before[h1.port]["rx_packets"] >= 13
    assert after[h2.port]["tx_packets"] - before[h2.port]["tx_packets"] == 13


@pytest.mark.parametrize("fam", [4, 6])
def test_ping_round_trip(rlab, fam):
    lab, r = rlab
    h1, h2 = lab.host("h1"), lab.host("h2")
    if fam == 4:
        req = Ether(src=h1.mac, dst=h1.port_mac) / IP(src=h1.ip4, dst=h2.ip4) / ICMP(id=77, seq=1) / b"ping"
    else:
        req = Ether(src=h1.mac, dst=h1.port_mac) / IPv6(src=h1.ip6, dst=h2.ip6) / \
            ICMPv6EchoRequest(id=77, seq=1, data=b"ping")
    # h2's kernel answers through its gateway (the router); the reply is captured at h1
    for _ in range(3):  # the first try may wait on h2 resolving its gateway
        got = _exchange(lab, "h1", [bytes(req)], ["h1"], None, timeout=1.0)[lab.tap("h1")]
        replies = [Ether(f) for f in got]
        if fam == 4:
            replies = [p for p in replies if p.haslayer(ICMP) and p[ICMP].type == 0 and p[ICMP].id == 77]
        else:
            replies = [p for p in replies if p.haslayer(ICMPv6EchoReply) and p[ICMPv6EchoReply].id == 77]
        if replies:
            break
    assert replies, "no echo reply came back through the router"
    p = replies[0]
    assert p.src == h1.port_mac and p.dst == h1.mac
    if fam == 4:
        assert p[IP].src == h2.ip4 and p[IP].ttl == 63
    else:
        assert p[IPv6].src == h2.ip6 and p[IPv6].hlim == 63


def test_router_answers_ping_itself(rlab):
    lab, r = rlab
    h1 = lab.host("h1")
    req = Ether(src=h1.mac, dst=h1.port_mac) / IP(src=h1.ip4, dst="10.0.3.1") / ICMP(id=9) / b"me"
    got = _exchange(lab, "h1", [bytes(req)], ["h1"], None, timeout=1.0)[lab.tap("h1")]
    rep = [Ether(f) for f in got if Ether(f).haslayer(ICMP) and Ether(f)[ICMP].type == 0]
    assert rep and rep[0][IP].src == "10.0.3.1" and rep[0][IP].ttl == 64


def test_ttl_1_time_exceeded_from_router(rlab):
    lab, r = rlab
    h1, h2 = lab.host("h1"), lab.host("h2")
    sent = bytes(_udp(lab, dst_ip=h2.ip4, ttl=1))
    got = _exchange(lab, "h1", [sent], ["h1", "h2"], None, timeout=1.0)
    errs = [Ether(f) for f in got[lab.tap("h1")] if Ether(f).haslayer(ICMP)]
    assert len(errs) == 1
    e = errs[0]
    assert e[IP].src == "10.0.1.1" and e[IP].dst == h1.ip4
    assert (e[ICMP].type, e[ICMP].code) == (11, 0)
    assert bytes(e)[42:] == sent[14:]             # all of it: it fits in 576 bytes (RFC 1812)
    assert not [f for f in got[lab.tap("h2")] if len(f) > 23 and f[23] == 17]


def test_unrouted_gets_unreachable(rlab):
    lab, r = rlab
    h1 = lab.host("h1")
    got = _exchange(lab, "h1", [bytes(_udp(lab, dst_ip="198.18.0.1"))], ["h1"], None, timeout=1.0)
    errs = [Ether(f) for f in got[lab.tap("h1")] if Ether(f).haslayer(ICMP)]
    assert errs and (errs[0][ICMP].type, errs[0][ICMP].code) == (3, 0)
    v6 = Ether(src=h1.mac, dst=h1.port_mac) / IPv6(src=h1.ip6, dst="2001:db8:dead::1") / UDP(dport=9)
    got = _exchange(lab, "h1", [bytes(v6)], ["h1"], None, timeout=1.0)
    errs = [Ether(f) for f in got[lab.tap("h1")] if Ether(f).haslayer(ICMPv6DestUnreach)]
    assert errs and errs[0][IPv6].src == h1.port_addresses[1].split("/")[0]


def test_ecmp_spreads_flows_each_on_one_path(rlab):
    lab, r = rlab
    frames = [bytes(_udp(lab, dst_ip="172.16.9.9", sport=20000 + i)) for i in range(64)]
    seen: dict[int, set[str]] = {}
    for rnd in range(2):
        got = _exchange(lab, "h1", frames, ["h2", "h3"], 64)
        for host in ("h2", "h3"):
            for f in got[lab.tap(host)]:
                if len(f) >= 42 and f[23] == 17 and f[30:34] == bytes([172, 16, 9, 9]):
                    seen.setdefault(int.from_bytes(f[34:36], "big"), set()).add(host)
    assert len(seen) == 64
    assert all(len(v) == 1 for v in seen.values()), "a flow took two paths"
    per = {h: sum(1 for v in seen.values() if h in v) for h in ("h2", "h3")}
    assert min(per.values()) >= 16, per
