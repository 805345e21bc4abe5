"""traffic/packets.py: exact sizes, tags and bytes."""
import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from traffic import flows, packets


def test_udp4_default_bytes_are_fixed():
    b = packets.frame("ipv4", "udp", size=60)
    assert len(b) == 60
    assert b[:14] == bytes.fromhex("020000000002" "020000000001" "0800")
    ip = b[14:34]
    assert ip[0] == 0x45 and int.from_bytes(ip[2:4], "big") == 46 and ip[8] == 64 and ip[9] == 17
    assert ip[12:16] == bytes([10, 0, 0, 1]) and ip[16:20] == bytes([10, 0, 0, 2])
    assert b[34:38] == (1024).to_bytes(2, "big") + (80).to_bytes(2, "big")
    assert int.from_bytes(b[38:40], "big") == 26  # UDP length covers the padding
    assert b[42:] == bytes(range(18))             # deterministic filler ramp
    assert packets.frame("ipv4", "udp", size=60) == b  # deterministic


@pytest.mark.parametrize("l3, l4", [("ipv4", "udp"), ("ipv4", "tcp"), ("ipv4", "icmp"),
                                    ("ipv6", "udp"), ("ipv6", "tcp"), ("ipv6", "icmpv6"),
                                    ("ipv4", None), ("ipv6", None)])
@pytest.mark.parametrize("size", [60, 64, 128, 1514])
@pytest.mark.parametrize("vlans", [(), (10,), (100, 20)])
def test_sizes_and_checksums(l3, l4, size, vlans):
    try:  # small sizes cannot hold every header combination (e.g. QinQ + IPv6 + TCP = 82)
        p = packets.build(l3, l4, size=size, vlans=vlans)
    except ValueError as e:
        assert "smaller than headers" in str(e) and size < 14 + 8 + 40 + 20
        return
    b = bytes(p)
    assert len(b) == size
    # Re-dissect and rebuild with checksums recomputed: identical bytes means they were right.
    q = Ether(b)
    for layer in (IP, TCP, UDP):
        if q.haslayer(layer):
            del q[layer].chksum
    if q.haslayer(IP):
        del q[IP].len
        assert q[IP].ttl == 64
    if q.haslayer(IPv6):
        del q[IPv6].plen
    assert bytes(Ether(bytes(q))) == b


def test_vlan_tags_on_the_wire():
    one = packets.frame(vlans=[(10, 5)], size=64)
    assert one[12:18] == bytes.fromhex("8100") + ((5 << 13) | 10).to_bytes(2, "big") + bytes.fromhex("0800")
    two = packets.frame("ipv6", "udp", vlans=[100, 20], size=100)
    assert two[12:22] == bytes.fromhex("88a8 0064 8100 0014 86dd")
    qq = packets.frame(vlans=[100, 20], outer_tpid=0x8100)
    assert qq[12:22] == bytes.fromhex("8100 0064 8100 0014 0800")
    assert len(packets.frame(vlans=[1, 2])) == len(packets.frame()) + 8


def test_fields_and_payload():
    p = packets.tcp6(src="2001:db8::1", dst="2001:db8::2", sport=5, dport=6, ttl=7,
                     smac="02:00:00:00:00:aa", dmac="02:00:00:00:00:bb", payload=b"hello",
                     tcp_flags="SA")
    b = bytes(p)
    assert b[:12] == bytes.fromhex("0200000000bb0200000000aa")
    assert b[14 + 7] == 7 and b[14 + 6] == 6  # hop limit, next header TCP
    assert b.endswith(b"hello") and b[14 + 40 + 13] == 0x12
    assert len(b) == 14 + 40 + 20 + 5


def test_from_flow():
    fs = flows.uniform(4, 4, seed=2, protos=(flows.PROTO_UDP,))
    f = fs.flows[0]
    b = bytes(packets.from_flow(f, size=80))
    q = Ether(b)
    assert (q[IP].src, q[IP].dst, q[UDP].sport, q[UDP].dport) == (f.src, f.dst, f.sport, f.dport)
    assert len(b) == 80


def test_macs_match_the_lab():
    from nf.net.lab import host_mac, port_mac
    assert packets.mac(7) == host_mac(7) and packets.mac(300, kind=1) == port_mac(300)
    assert packets.mac(1 << 20) == "02:00:00:10:00:00"


@pytest.mark.parametrize("kw, match", [
    (dict(l3="ipx"), "l3 must be"), (dict(l4="sctp"), "l4 must be"),
    (dict(l3="ipv6", l4="icmp"), "does not go over"), (dict(size=20), "smaller than headers"),
    (dict(vlans=[1, 2, 3]), "at most two"), (dict(vlans=[5000]), "bad VLAN"),
    (dict(src="fd00::1"), "not IPv4"),
])
def test_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        packets.build(**kw)
