"""nf/models/router.py: the reference model on its own (LPM, ECMP hash, checksums, ICMP bytes as
scapy reads them), so the tier-1 comparisons rest on a model that is itself checked."""
from __future__ import annotations

from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.inet6 import ICMPv6TimeExceeded, IPv6
from scapy.layers.l2 import Ether

from nf.models.router import (KIND_CONNECTED, KIND_FORWARD, XDP_REDIRECT, XDP_TX, GroupM, Lpm,
                              PortM, RouterModel, csum, ecmp_index, flow_hash, v4, v6)


def test_lpm_longest_wins_and_delete():
    m = Lpm(32, {(0, 0): 1, (v4("10.0.0.0"), 8): 2, (v4("10.1.0.0"), 16): 3, (v4("10.1.2.3"), 32): 4})
    assert [m.lookup(v4(a)) for a in ("9.9.9.9", "10.9.9.9", "10.1.9.9", "10.1.2.3")] == [1, 2, 3, 4]
    m.delete(v4("10.1.0.0"), 16)
    assert m.lookup(v4("10.1.9.9")) == 2


def test_flow_hash_is_murmur3_shaped_and_stable():
    # pinned values: the BPF flow_hash must produce the same numbers (tier-1 ECMP tests compare)
    h = flow_hash(v4("10.0.0.5"), v4("172.16.5.5"), 1000, 4789, 17)
    assert h == flow_hash(v4("10.0.0.5"), v4("172.16.5.5"), 1000, 4789, 17)
    assert h != flow_hash(v4("10.0.0.5"), v4("172.16.5.5"), 1001, 4789, 17)
    counts = [0, 0]
    for i in range(2000):
        counts[ecmp_index(flow_hash(i, 7, i * 3, 80, 6), 2)] += 1
    assert 850 < counts[0] < 1150
    assert ecmp_index(0xFFFFFFFF, 8) == 7 and ecmp_index(0, 8) == 0


H0 = "02:00:00:00:00:05"     # the sender: 10.0.0.5 / 2001:db8::5 on port 0


def _model():
    ports = [PortM(0, 1, bytes.fromhex("020000000001"), v4("10.0.0.1"), v6("2001:db8::1")),
             PortM(1, 2, bytes.fromhex("020000000002"), v4("10.0.1.1"))]
    groups = {1: GroupM(KIND_FORWARD, 2, [(1, v4("10.0.1.2"))]), 2: GroupM(KIND_CONNECTED, 1, [(1, 0)]),
              3: GroupM(KIND_CONNECTED, 1, [(0, 0)])}
    h0 = bytes.fromhex(H0.replace(":", ""))
    # errors go back only where the sender is: its subnet, its neighbour entry (RouterModel._reverse)
    return RouterModel(ports, groups, Lpm(32, {(v4("192.168.0.0"), 16): 1, (v4("10.0.0.0"), 24): 3}),
                       Lpm(128, {(v6("2001:db8:9::"), 48): 1, (v6("2001:db8::"), 64): 3}),
                       {(1, 4, v4("10.0.1.2")): b"\xaa" * 6, (0, 4, v4("10.0.0.5")): h0,
                        (0, 6, v6("2001:db8::5")): h0})


def test_model_forward_checksum_valid():
    f = bytes(Ether(dst="02:00:00:00:00:01", src=H0) / IP(src="10.0.0.5", dst="192.168.1.1", ttl=9) / UDP())
    act, out, port = _model().process(f, 1)
    assert (act, port) == (XDP_REDIRECT, 1)
    p = Ether(out)
    assert p[IP].ttl == 8 and csum(out[14:34]) == 0 and p.dst == "aa:aa:aa:aa:aa:aa"


def test_model_icmp_errors_parse_with_scapy():
    f = bytes(Ether(dst="02:00:00:00:00:01", src=H0) / IP(src="10.0.0.5", dst="8.8.8.8") / UDP() / b"abc")
    act, out, _ = _model().process(f, 1)
    p = Ether(out)
    assert act == XDP_TX and p[ICMP].type == 3 and p[IP].src == "10.0.0.1"
    chk = p[ICMP].chksum
    del p[ICMP].chksum
    assert Ether(bytes(p))[ICMP].chksum == chk
    f6 = bytes(Ether(dst="02:00:00:00:00:01", src=H0) / IPv6(src="2001:db8::5", dst="2001:db8:9::1", hlim=1) / UDP())
    act, out, _ = _model().process(f6, 1)
    p = Ether(out)
    chk = p[ICMPv6TimeExceeded].cksum
    del p[ICMPv6TimeExceeded].cksum
    assert act == XDP_TX and Ether(bytes(p))[ICMPv6TimeExceeded].cksum == chk


def test_model_quotes_up_to_576_and_1280_bytes():
    """RFC 1812 4.3.2.3 / RFC 4443 2.4(c): as much of the original as fits, cut exactly."""
    from nf.models.router import XDP_PASS
    m = _model()
    big = bytes(Ether(dst="02:00:00:00:00:01", src=H0) / IP(src="10.0.0.5", dst="192.168.1.1", ttl=1) /
                UDP() / (bytes(range(256)) * 4))
    act, out, _ = m.process(big, 1)
    assert act == XDP_TX and len(out) == 14 + 576 and out[42:] == big[14:14 + 548]
    assert csum(out[14:34]) == 0 and csum(out[34:]) == 0
    small = bytes(Ether(dst="02:00:00:00:00:01", src=H0) / IP(src="10.0.0.5", dst="192.168.1.1", ttl=1) /
                  UDP() / b"odd")                     # 31 bytes: an odd quote
    act, out, _ = m.process(small, 1)
    assert act == XDP_TX and out[42:] == small[14:] and csum(out[34:]) == 0
    # options: the kernel's, errors included (Linux checks them and echoes some in its errors)
    opt = IP(src="10.0.0.5", dst="192.168.1.1", ttl=1, options=b"\x01\x01\x01\x00") / UDP()
    f = bytes(Ether(dst="02:00:00:00:00:01", src=H0) / opt)
    assert m.process(f, 1) == (XDP_PASS, f, None)
    f6 = bytes(Ether(dst="02:00:00:00:00:01", src=H0) / IPv6(src="2001:db8::5", dst="2001:db8:9::1", hlim=1) /
               UDP() / (b"v" * 1400))
    act, out, _ = m.process(f6, 1)
    assert act == XDP_TX and len(out) == 14 + 1280 and out[62:] == f6[14:14 + 1232]
