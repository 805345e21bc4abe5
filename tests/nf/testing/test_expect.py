"""Expected frames: Fields compares in wire format, names what differs; exact frames get the
harness's per-layer diff; the kernels' MLD reports are recognised (and only they)."""
import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, UDPerror
from scapy.layers.inet6 import ICMPv6MLReport2, ICMPv6ND_NS, IPv6, IPv6ExtHdrHopByHop, RouterAlert
from scapy.layers.l2 import Dot1Q, Ether

from nf.testing.expect import Fields, FieldsError, is_mld, problems, summary

ROUTED = bytes(Ether(src="02:00:00:00:00:02", dst="02:AA:00:00:00:02") / Dot1Q(vlan=5) / Dot1Q(vlan=20)
               / IP(src="10.0.0.2", dst="10.9.1.1", ttl=63) / TCP(flags="SA") / b"data")


def test_fields_match_in_wire_format():
    assert Fields({"Ether.dst": "02:aa:00:00:00:02", "IP.ttl": 63, "IP.dst": "10.9.1.1",
                   "TCP.flags": "SA", "Dot1Q[2].vlan": 20, "Dot1Q.vlan": 5}).problems(ROUTED) == []
    v6 = bytes(Ether() / IPv6(src="2001:db8::1", dst="2001:db8:0:0::2") / UDP())
    assert Fields({"IPv6.src": "2001:0db8:0::1", "IPv6.dst": "2001:db8::2"}).problems(v6) == []
    err = bytes(Ether() / IP() / ICMP(type=11) / IPerror(dst="192.0.2.9") / UDPerror(dport=53))
    assert Fields({"ICMP.type": "time-exceeded", "IPerror.dst": "192.0.2.9", "UDPerror.dport": 53}
                  ).problems(err) == []
    assert Fields({"ICMP.type": 11}).problems(err) == []


def test_fields_name_what_differs():
    got = Fields({"IP.ttl": 62, "TCP.flags": "S", "Dot1Q[2].vlan": 30, "UDP.dport": 53,
                  "Dot1Q[3].vlan": 1}).problems(ROUTED)
    assert got[0] == "IP.ttl: expected 62, got 63"
    assert got[1] == "TCP.flags: expected 'S', got SA"
    assert got[2] == "Dot1Q[2].vlan: expected 30, got 20"
    assert got[3].startswith("UDP.dport: expected 53, but the frame has no UDP (")
    assert got[4].startswith("Dot1Q[3].vlan: expected 1, but the frame has no Dot1Q #3")


@pytest.mark.parametrize("key, why", [
    ("ttl", "name a field as Layer.field"),
    ("IPX.ttl", "scapy has no layer 'IPX'"),
    ("IP.hops", "layer IP has no field 'hops' (fields: version, ihl"),
    ("IP[0].ttl", "name a field as Layer.field"),
])
def test_bad_field_names_are_refused(key, why):
    with pytest.raises(FieldsError) as ei:
        Fields({key: 1})
    assert why in str(ei.value)
    with pytest.raises(FieldsError, match="at least one field"):
        Fields({})


def test_exact_frames_get_the_per_layer_diff():
    sent = Ether() / IP(dst="10.9.1.1", ttl=64) / UDP()
    assert problems(sent, bytes(sent)) == []
    lines = problems(Ether() / IP(dst="10.9.1.1", ttl=62) / UDP(), bytes(sent))
    assert "IP.ttl: expected 62, got 64" in lines
    assert any(line.startswith("IP.chksum: expected") for line in lines)
    assert any("[      IP] exp" in line for line in lines)
    assert summary(bytes(sent)).startswith("42 bytes: Ether / IP / UDP")


def test_mld_reports_are_recognised_and_nothing_else():
    mld = Ether() / IPv6(dst="ff02::16", hlim=1) / IPv6ExtHdrHopByHop(options=[RouterAlert()]) / ICMPv6MLReport2()
    assert is_mld(bytes(mld))
    assert is_mld(bytes(Ether() / Dot1Q(vlan=3) / IPv6() / IPv6ExtHdrHopByHop() / ICMPv6MLReport2()))
    assert not is_mld(bytes(Ether() / IPv6() / ICMPv6ND_NS(tgt="fe80::1")))
    assert not is_mld(bytes(Ether() / IP() / UDP()))
    assert not is_mld(bytes(mld)[:60])
