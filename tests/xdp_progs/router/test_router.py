"""Tier 1, byte-exact: every frame through xdp_router (test_run) must equal the reference model's
output, and the fields that matter are also checked directly (TTL, checksums recomputed by
scapy, MACs, ICMP type/code/quote), in both lookup modes (DIR-24-8/multibit trie and LPM trie)."""
from __future__ import annotations

import os
import random
import struct

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror
from scapy.layers.inet6 import (ICMPv6DestUnreach, ICMPv6EchoReply, ICMPv6EchoRequest,
                                ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6NDOptDstLLAddr,
                                ICMPv6NDOptSrcLLAddr, ICMPv6TimeExceeded, IPv6)
from scapy.layers.l2 import ARP, Ether

from nf.nfs.router import CLS, KIND_CONNECTED, KIND_LOCAL
from nf.models.router import XDP_DROP, XDP_PASS, XDP_REDIRECT, XDP_TX, csum
from router_topo import (GW1_MAC, GW2_MAC, GW6_MAC, H0_MAC, H1_MAC, MAC_P0,
                                             MAC_P1, make_router, model_of)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="loading BPF needs root")


def eth(dst=MAC_P0, src=H0_MAC):
    return Ether(dst=dst, src=src)


def v4(dst, ttl=64, src="10.0.0.5", l4=None, **kw):
    return eth() / IP(src=src, dst=dst, ttl=ttl, **kw) / (l4 if l4 is not None else UDP(sport=1234, dport=53) / (b"q" * 18))


def v6(dst, hlim=64, src="2001:db8::5", l4=None):
    return eth() / IPv6(src=src, dst=dst, hlim=hlim) / (l4 if l4 is not None else UDP(sport=1234, dport=53) / (b"q" * 18))


def check_model(router, frame: bytes):
    verdict, out = router.run(frame)
    m_verdict, m_out, _ = model_of(router).process(frame, 1)
    assert verdict == m_verdict, f"verdict {verdict}, model says {m_verdict}"
    assert out == m_out, f"bytes differ from the model:\n{out.hex()}\n{m_out.hex()}"
    return verdict, out


def ip_csum_ok(b: bytes, off=14) -> bool:
    ihl = (b[off] & 15) * 4
    return csum(b[off:off + ihl]) == 0


# ---- IPv4 forwarding -----------------------------------------------------------------------------
def test_forward_v4_ttl_checksum_macs(router):
    f = bytes(v4("192.168.3.4", ttl=17))
    verdict, out = check_model(router, f)
    assert verdict == XDP_REDIRECT
    p = Ether(out)
    assert (p.dst, p.src) == (GW1_MAC, MAC_P1)
    assert p[IP].ttl == 16
    assert ip_csum_ok(out)
    # only the MACs, TTL and checksum changed
    assert out[12:22] + out[23:24] + out[26:] == f[12:22] + f[23:24] + f[26:]


@pytest.mark.parametrize("dst,mac", [("192.168.7.1", GW2_MAC), ("192.168.7.200", GW1_MAC),
                                     ("192.168.8.1", GW1_MAC), ("10.0.1.7", H1_MAC)])
def test_longest_prefix_wins(router, dst, mac):
    verdict, out = check_model(router, bytes(v4(dst)))
    assert verdict == XDP_REDIRECT and Ether(out).dst == mac


def test_incremental_checksum_matches_full_recompute(router):
    """RFC 1624 edge cases: random ids/tos/ttl give checksums across the whole 16-bit range."""
    rnd = random.Random(7)
    for _ in range(200):
        f = bytes(v4("192.168.3.4", ttl=rnd.randint(2, 255), id=rnd.randint(0, 65535),
                     tos=rnd.randint(0, 255)))
        verdict, out = router.run(f)
        assert verdict == XDP_REDIRECT
        assert ip_csum_ok(out), f.hex()
        assert out[22] == f[22] - 1


def test_ttl_expired_builds_time_exceeded(router):
    f = bytes(v4("192.168.3.4", ttl=1))
    verdict, out = check_model(router, f)
    assert verdict == XDP_TX
    p = Ether(out)
    assert (p.dst, p.src) == (H0_MAC, MAC_P0)
    assert (p[IP].src, p[IP].dst, p[IP].proto, p[IP].ttl) == ("10.0.0.1", "10.0.0.5", 1, 64)
    assert ip_csum_ok(out)
    icmp = out[34:]
    assert (icmp[0], icmp[1]) == (11, 0)
    assert csum(icmp) == 0
    assert icmp[8:] == f[14:]                 # the whole original fits in 576 bytes
    assert len(out) == 14 + 20 + 8 + len(f) - 14


def test_no_route_builds_net_unreachable(router):
    f = bytes(v4("8.8.8.8"))
    verdict, out = check_model(router, f)
    assert verdict == XDP_TX
    icmp = out[34:]
    assert (icmp[0], icmp[1]) == (3, 0) and csum(icmp) == 0
    assert icmp[8:] == f[14:]


def test_unreachable_route_is_host_unreachable(router):
    """As Linux's unreachable routes (3/1; prohibit as an option: test_linux_edges.py)."""
    verdict, out = check_model(router, bytes(v4("198.51.100.9")))
    assert verdict == XDP_TX and (out[34], out[35]) == (3, 1)


def test_blackhole_drops(router):
    assert check_model(router, bytes(v4("203.0.113.9")))[0] == XDP_DROP


def test_no_icmp_error_about_icmp_error(router):
    inner = ICMP(type=3, code=1) / IPerror(src="10.0.0.5", dst="1.2.3.4") / (b"\0" * 8)
    verdict, _ = check_model(router, bytes(v4("192.168.3.4", ttl=1, l4=inner)))
    assert verdict == XDP_DROP


def test_short_ip_total_length_quotes_what_exists(router):
    f = bytes(eth() / IP(src="10.0.0.5", dst="8.8.8.8") / b"ab")  # tot_len 22 < 28
    verdict, out = check_model(router, f)
    assert verdict == XDP_TX and out[42:] == f[14:36]


def test_echo_to_router_answered(router):
    f = bytes(v4("10.0.1.1", l4=ICMP(type=8, id=7, seq=3) / b"ping-payload"))
    verdict, out = check_model(router, f)
    assert verdict == XDP_TX
    p = Ether(out)
    assert (p.dst, p.src, p[IP].src, p[IP].dst) == (H0_MAC, MAC_P0, "10.0.1.1", "10.0.0.5")
    assert p[ICMP].type == 0 and (p[ICMP].id, p[ICMP].seq) == (7, 3)
    assert ip_csum_ok(out) and csum(out[34:]) == 0
    assert bytes(p[ICMP].payload) == b"ping-payload"


@pytest.mark.parametrize("desc,frame", [
    ("udp to the router", v4("10.0.0.1")),
    ("tcp to the router", v4("10.0.2.1", l4=TCP(dport=22))),
    ("neighbour missing", v4("10.0.1.99")),
    ("other MAC", eth(dst="02:99:99:99:99:99") / IP(src="10.0.0.5", dst="192.168.3.4") / UDP()),
    ("broadcast", eth(dst="ff:ff:ff:ff:ff:ff") / IP(src="10.0.0.5", dst="10.0.0.255") / UDP()),
    ("multicast dst", v4("224.0.0.5")),
    ("ip options", eth() / IP(src="10.0.0.5", dst="192.168.3.4", options=b"\x94\x04\0\0") / UDP()),
    ("arp", eth(dst="ff:ff:ff:ff:ff:ff") / ARP(psrc="10.0.0.5", pdst="10.0.0.1")),
    ("v6 link-local dst", v6("fe80::1")),
    ("v6 unspecified destination", v6("::")),
    ("v6 unspecified source", v6("2001:db8:99::1", src="::")),
    ("v6 multicast dst", v6("ff02::1")),
    ("v6 neighbour missing", v6("2001:db8:1::99")),
])
def test_kernel_gets(router, desc, frame):
    f = bytes(frame)
    verdict, out = check_model(router, f)
    assert verdict == XDP_PASS and out == f, desc


def _bad_csum():
    f = bytearray(bytes(v4("192.168.3.4")))
    f[24] ^= 0xff
    return bytes(f)


def _long_tot_len():
    f = bytearray(bytes(v4("192.168.3.4")))
    f[16:18] = struct.pack("!H", len(f))  # claims more than the frame holds
    return bytes(f)


def _ihl4():
    f = bytearray(bytes(v4("192.168.3.4")))
    f[14] = 0x44
    return bytes(f)


def _v6_long_plen():
    f = bytearray(bytes(v6("2001:db8:99::1")))
    f[18:20] = struct.pack("!H", 500)
    return bytes(f)


@pytest.mark.parametrize("desc,frame", [
    ("bad header checksum", _bad_csum()), ("tot_len beyond frame", _long_tot_len()),
    ("ihl 4", _ihl4()), ("truncated ip", bytes(Ether(dst=MAC_P0, src=H0_MAC, type=0x0800) / b"\x45\x00\x00")),
    ("multicast source", bytes(v4("192.168.3.4", src="224.1.1.1"))),
    ("loopback source", bytes(v4("192.168.3.4", src="127.0.0.1"))),
    ("loopback destination", bytes(v4("127.0.0.2"))),
    ("zero destination", bytes(v4("0.0.0.0"))),
    ("v6 loopback destination", bytes(v6("::1"))),
    ("v6 payload length beyond frame", _v6_long_plen()),
    ("v6 truncated", bytes(Ether(dst=MAC_P0, src=H0_MAC, type=0x86DD) / (b"\x60" + b"\0" * 20))),
])
def test_malformed_dropped_never_forwarded(router, desc, frame):
    verdict, out = check_model(router, frame)
    assert verdict == XDP_DROP, desc


# ---- IPv6 ------------------------------------------------------------------------------------------
def test_forward_v6_hop_limit(router):
    f = bytes(v6("2001:db8:99:1::1", hlim=9))
    verdict, out = check_model(router, f)
    assert verdict == XDP_REDIRECT
    p = Ether(out)
    assert (p.dst, p.src, p[IPv6].hlim) == (GW6_MAC, MAC_P1, 8)
    assert out[12:21] + out[22:] == f[12:21] + f[22:]


def test_forward_v6_longer_prefix(router):
    verdict, out = check_model(router, bytes(v6("2001:db8:99:8001::1")))
    assert verdict == XDP_REDIRECT and Ether(out).dst == GW2_MAC


def test_v6_hop_limit_expired(router):
    f = bytes(v6("2001:db8:99::1", hlim=1))
    verdict, out = check_model(router, f)
    assert verdict == XDP_TX
    p = Ether(out)
    assert (p[IPv6].src, p[IPv6].dst, p[IPv6].hlim, p[IPv6].nh) == ("2001:db8::1", "2001:db8::5", 64, 58)
    assert isinstance(p[IPv6].payload, ICMPv6TimeExceeded) and p[ICMPv6TimeExceeded].code == 0
    assert out[62:] == f[14:]                 # the whole invoking packet fits in 1280 bytes
    # scapy recomputes the checksum: equal means ours is right
    chk = p[ICMPv6TimeExceeded].cksum
    del p[ICMPv6TimeExceeded].cksum
    assert Ether(bytes(p))[ICMPv6TimeExceeded].cksum == chk


def test_v6_unreachable_and_quote_cap(router):
    big = v6("2001:db8:77::1", l4=UDP(sport=1, dport=2) / (b"z" * 1400))
    f = bytes(big)
    verdict, out = check_model(router, f)
    assert verdict == XDP_TX
    p = Ether(out)
    assert p[ICMPv6DestUnreach].code == 0
    assert len(out) == 14 + 1280 and out[62:] == f[14:14 + 1232]


def test_v6_blackhole_drops(router):
    assert check_model(router, bytes(v6("2001:db8:bb::1")))[0] == XDP_DROP


def test_v6_echo_answered(router):
    f = bytes(v6("2001:db8:2::1", l4=ICMPv6EchoRequest(id=5, seq=9, data=b"hello")))
    verdict, out = check_model(router, f)
    assert verdict == XDP_TX
    p = Ether(out)
    assert (p[IPv6].src, p[IPv6].dst) == ("2001:db8:2::1", "2001:db8::5")
    assert p[ICMPv6EchoReply].data == b"hello"
    chk = p[ICMPv6EchoReply].cksum
    del p[ICMPv6EchoReply].cksum
    assert Ether(bytes(p))[ICMPv6EchoReply].cksum == chk


# ---- ECMP ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fam", [4, 6])
def test_ecmp_deterministic_and_spread(router, fam):
    seen = {}
    for i in range(64):
        l4 = UDP(sport=1000 + i, dport=4789) / b"e"
        f = bytes(v4("172.16.5.5", l4=l4) if fam == 4 else v6("2001:db8:aa::5", l4=l4))
        v1, o1 = check_model(router, f)
        v2, o2 = router.run(f)
        assert v1 == v2 == XDP_REDIRECT and o1 == o2          # flow-stable
        seen[Ether(o1).dst] = seen.get(Ether(o1).dst, 0) + 1
    assert set(seen) == {GW1_MAC if fam == 4 else GW6_MAC, GW2_MAC}
    assert min(seen.values()) >= 16                           # both paths carry flows


# ---- counters, rate limit, bulk replace, learning ---------------------------------------------------
def test_counters_equal_what_was_sent():
    r = make_router()
    try:
        sent = {"fwd": 7, "ttl": 3, "noroute": 5, "bh": 2}
        sizes = 0
        for _ in range(sent["fwd"]):
            f = bytes(v4("192.168.3.4")); sizes += len(f); r.run(f)
        for _ in range(sent["ttl"]):
            r.run(bytes(v4("192.168.3.4", ttl=1)))
        for _ in range(sent["noroute"]):
            r.run(bytes(v4("8.8.4.4")))
        for _ in range(sent["bh"]):
            r.run(bytes(v4("203.0.113.1")))
        ps, cs = r.port_stats(), r.class_stats()
        total = sum(sent.values())
        assert ps["p0"]["rx_packets"] == total
        assert ps["p1"]["tx_packets"] == sent["fwd"] and ps["p1"]["tx_bytes"] == sizes
        assert ps["p0"]["icmp_out"] == sent["ttl"] + sent["noroute"]
        assert ps["p0"]["drops"] == sent["bh"]
        assert cs["static"]["packets"] == sent["fwd"]
        assert cs["noroute"]["packets"] == sent["noroute"]
        assert cs["blackhole"]["packets"] == sent["bh"]
        st = r.stats()
        assert st.packets[4] == sent["fwd"] and st.packets[3] == sent["ttl"] + sent["noroute"]
    finally:
        r.close()


def test_icmp_rate_limit_per_cpu():
    r = make_router(icmp={"rate": 1, "burst": 3})
    saved = os.sched_getaffinity(0)
    try:
        # the buckets are per CPU: stay on one, or a migration mid-test brings a second bucket
        os.sched_setaffinity(0, {min(saved)})
        verdicts = [r.run(bytes(v4("192.168.3.4", ttl=1)))[0] for _ in range(10)]
        assert verdicts.count(XDP_TX) == 3 and verdicts.count(XDP_DROP) == 7
        assert r.stats().reasons[8 + 5] == 7      # RT_REASON_ICMP_LIMITED
    finally:
        os.sched_setaffinity(0, saved)
        r.close()


@pytest.mark.parametrize("mode", ["dir", "trie"])
def test_bulk_replace_flips_bank(mode):
    from nf.routes import parse_route_lines
    r = make_router(mode)
    try:
        bank = r.bank
        before = r.lookup(["192.168.3.4", "100.64.1.1"])
        rs = parse_route_lines(["100.64.0.0/10 via 10.0.2.2", "2001:db8:cc::/48 via 2001:db8:1::2"],
                               r._resolver())
        r.replace_routes(rs)
        after = r.lookup(["192.168.3.4", "100.64.1.1", "2001:db8:cc::1", "2001:db8:99::1"])
        assert r.bank == 1 - bank
        assert before[0] != 0 and before[1] == 0
        assert after[0] == 0 and after[1] == r.resolve_target("via 10.0.2.2")
        assert after[2] == r.resolve_target("via 2001:db8:1::2") and after[3] == 0
        # connected and local routes survive a replace
        local, conn = r.group_id(KIND_LOCAL, CLS["local"], 4), r.group_id(KIND_CONNECTED, CLS["connected"], 4, ((1, 0),))
        assert r.lookup(["10.0.1.1", "10.0.1.50"]) == [local, conn]
        v, out = r.run(bytes(v4("100.64.1.1")))
        assert v == XDP_REDIRECT and Ether(out).dst == GW2_MAC
        r.add_route("8.0.0.0/8", "via 10.0.1.2")
        assert r.lookup(["8.8.8.8"]) == [r.resolve_target("via 10.0.1.2")]
        assert r.delete_route("8.0.0.0/8") and r.lookup(["8.8.8.8"]) == [0]
    finally:
        r.close()


def test_arp_reply_learned_static_kept():
    r = make_router()
    try:
        reply = Ether(dst=MAC_P0, src="02:12:34:56:78:9a") / ARP(
            op=2, hwsrc="02:12:34:56:78:9a", psrc="10.0.0.77", hwdst=MAC_P0, pdst="10.0.0.1")
        assert r.run(bytes(reply))[0] == XDP_PASS
        assert r.neighbours()[(0, "10.0.0.77")] == ("02:12:34:56:78:9a", 2)
        spoof = Ether(dst=MAC_P0, src="02:66:66:66:66:66") / ARP(
            op=2, hwsrc="02:66:66:66:66:66", psrc="10.0.0.5", hwdst=MAC_P0, pdst="10.0.0.1")
        r.run(bytes(spoof))
        assert r.neighbours()[(0, "10.0.0.5")] == (H0_MAC, 1)   # static entry wins
        # a learned neighbour is used for forwarding right away
        v, out = r.run(bytes(v4("10.0.0.77", src="10.0.1.7")))
        assert v == XDP_REDIRECT and Ether(out).dst == "02:12:34:56:78:9a"
    finally:
        r.close()


def test_arp_request_to_the_router_teaches_the_sender_as_linux_does():
    """Linux makes a STALE entry for the sender of an ARP request to a local address; the router
    learns it too, so the host's next packet is answered in XDP. Probes (sender 0.0.0.0) and
    requests for other addresses teach nothing."""
    r = make_router()
    try:
        def req(src_ip, dst_ip, mac="02:12:34:56:78:9c"):
            return bytes(Ether(dst="ff:ff:ff:ff:ff:ff", src=mac) / ARP(
                op=1, hwsrc=mac, psrc=src_ip, hwdst="00:00:00:00:00:00", pdst=dst_ip))
        assert r.run(req("0.0.0.0", "10.0.0.1"))[0] == XDP_PASS
        assert r.run(req("10.0.0.78", "10.0.0.99"))[0] == XDP_PASS
        assert (0, "10.0.0.78") not in r.neighbours() and (0, "0.0.0.0") not in r.neighbours()
        assert r.run(req("10.0.0.78", "10.0.0.1"))[0] == XDP_PASS   # the kernel answers it
        assert r.neighbours()[(0, "10.0.0.78")] == ("02:12:34:56:78:9c", 2)
        # the TTL-1 packet of that host is answered from XDP, to its MAC
        ttl1 = Ether(dst=MAC_P0, src="02:12:34:56:78:9c") / IP(src="10.0.0.78", dst="10.0.1.7", ttl=1) / UDP()
        v, out = r.run(bytes(ttl1))
        assert v == XDP_TX and Ether(out).dst == "02:12:34:56:78:9c"
        assert Ether(out)[ICMP].type == 11 and Ether(out)[IP].dst == "10.0.0.78"
    finally:
        r.close()


def test_neighbour_solicitation_for_the_router_teaches_the_sender():
    r = make_router()
    try:
        def ns(src, tgt, mac="02:12:34:56:78:9d"):
            return bytes(Ether(dst="33:33:ff:00:00:01", src=mac) / IPv6(src=src, dst="ff02::1:ff00:1", hlim=255) /
                         ICMPv6ND_NS(tgt=tgt) / ICMPv6NDOptSrcLLAddr(lladdr=mac))
        r.run(ns("::", "2001:db8::1"))                  # DAD probe
        r.run(ns("2001:db8::43", "2001:db8::99"))       # not the router's address
        assert not {k for k in r.neighbours() if k[1] in ("::", "2001:db8::43")}
        assert r.run(ns("2001:db8::43", "2001:db8::1"))[0] == XDP_PASS
        assert r.neighbours()[(0, "2001:db8::43")] == ("02:12:34:56:78:9d", 2)
    finally:
        r.close()


def test_an_unknown_on_link_sender_is_answered_at_its_mac_and_reported():
    """With the sender unresolved Linux queues its answer behind an ARP and sends it to the MAC
    that answers; XDP cannot hold the packet, so an on-link sender is answered at its frame's
    source MAC at once (both families), and reported as a miss for the controller to resolve."""
    r = make_router()
    try:
        ttl1 = Ether(dst=MAC_P0, src="02:12:34:56:78:9e") / IP(src="10.0.0.79", dst="10.0.1.7", ttl=1) / UDP()
        v, out = check_model(r, bytes(ttl1))           # the model answers the same, byte for byte
        assert v == XDP_TX and Ether(out).dst == "02:12:34:56:78:9e" and Ether(out)[ICMP].type == 11
        assert Ether(out)[IP].src == "10.0.0.1" and Ether(out)[IP].dst == "10.0.0.79"
        hl1 = Ether(dst=MAC_P0, src="02:12:34:56:78:9f") / IPv6(src="2001:db8::79", dst="2001:db8:1::7", hlim=1) / UDP()
        v, out = check_model(r, bytes(hl1))
        assert v == XDP_TX and Ether(out).dst == "02:12:34:56:78:9f" and ICMPv6TimeExceeded in Ether(out)
        assert {(0, "10.0.0.79"), (0, "2001:db8::79")} <= set(r.misses())
        ping = Ether(dst=MAC_P0, src="02:12:34:56:78:9e") / IP(src="10.0.0.79", dst="10.0.0.1") / ICMP(id=3, seq=4)
        v, out = check_model(r, bytes(ping))
        assert v == XDP_TX and Ether(out).dst == "02:12:34:56:78:9e" and Ether(out)[ICMP].type == 0
    finally:
        r.close()


def test_neighbour_advertisement_learned():
    r = make_router()
    try:
        na = Ether(dst=MAC_P0, src="02:12:34:56:78:9b") / IPv6(src="2001:db8::42", dst="2001:db8::1", hlim=255) / \
            ICMPv6ND_NA(tgt="2001:db8::42", R=0, S=1, O=1) / ICMPv6NDOptDstLLAddr(lladdr="02:12:34:56:78:9b")
        r.run(bytes(na))
        assert r.neighbours()[(0, "2001:db8::42")] == ("02:12:34:56:78:9b", 2)
    finally:
        r.close()
