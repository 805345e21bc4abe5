"""Tier 2: the egress MTU on a veth lab. The dut's port toward h2 has MTU 1400; the controller
reads it from the link (pyroute2) into rt_port.mtu. From h1: a 1400-byte IPv4 packet with DF is
forwarded, 1450 bytes with DF gets Fragmentation Needed (next-hop MTU 1400) from the router's
address, and an IPv6 packet of 1450 bytes gets Packet Too Big (MTU 1400)."""
from __future__ import annotations

import pytest
from pyroute2 import IPRoute
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.inet6 import ICMPv6PacketTooBig, IPv6
from scapy.layers.l2 import Ether

from nf.models.router import csum
from router_topo import router_lab

pytestmark = pytest.mark.netns


def _h2_mtu_1400(lab):
    with IPRoute() as ipr:
        ipr.link("set", index=lab.host("h2").port_ifindex, mtu=1400)


@pytest.fixture(scope="module")
def mlab():
    yield from router_lab(2, _h2_mtu_1400)


def _exchange(lab, frames, taps):
    with lab.capture(taps) as cap:
        lab.send("h1", frames)
        return cap.wait(count=None, timeout=1.0)


def _v4(lab, size, df=True):
    h1, h2 = lab.host("h1"), lab.host("h2")
    return bytes(Ether(src=h1.mac, dst=h1.port_mac) / IP(src=h1.ip4, dst=h2.ip4, flags="DF" if df else 0) /
                 UDP(sport=4000, dport=9) / (b"m" * (size - 28)))


def test_controller_took_the_link_mtu(mlab):
    lab, r = mlab
    from nf.nfs.router import RtPort
    import ctypes
    ports = r.obj.map("rt_ports").typed(ctypes.c_uint32, RtPort)
    by_name = {p.name: p.idx for p in r.ports}
    assert ports[by_name[lab.host("h2").port]].mtu == 1400
    assert ports[by_name[lab.host("h1").port]].mtu == 1500


def test_v4_df_fits_forwarded(mlab):
    lab, _ = mlab
    got = _exchange(lab, [_v4(lab, 1400)], ["h2"])[lab.tap("h2")]
    assert [f for f in got if len(f) == 14 + 1400 and f[23] == 17]


def test_v4_df_too_big_gets_frag_needed(mlab):
    lab, _ = mlab
    h1 = lab.host("h1")
    sent = _v4(lab, 1450)
    got = _exchange(lab, [sent], ["h1", "h2"])
    errs = [f for f in got[lab.tap("h1")] if Ether(f).haslayer(ICMP)]
    assert len(errs) == 1
    e = errs[0]
    p = Ether(e)
    assert (p[IP].dst, p[ICMP].type, p[ICMP].code) == (h1.ip4, 3, 4)
    assert p[IP].src == h1.port_addresses[0].split("/")[0]
    assert int.from_bytes(e[34 + 6:34 + 8], "big") == 1400 and csum(e[34:]) == 0
    assert e[42:] == sent[14:14 + 548] and len(e) == 14 + 576   # RFC 1812 4.3.2.3
    assert not [f for f in got[lab.tap("h2")] if len(f) > 1000]


def test_v6_too_big_gets_packet_too_big(mlab):
    lab, _ = mlab
    h1, h2 = lab.host("h1"), lab.host("h2")
    sent = bytes(Ether(src=h1.mac, dst=h1.port_mac) / IPv6(src=h1.ip6, dst=h2.ip6) /
                 UDP(sport=4000, dport=9) / (b"s" * (1450 - 48)))
    got = _exchange(lab, [sent], ["h1", "h2"])
    errs = [Ether(f) for f in got[lab.tap("h1")] if Ether(f).haslayer(ICMPv6PacketTooBig)]
    assert len(errs) == 1 and errs[0][ICMPv6PacketTooBig].mtu == 1400
    assert bytes(errs[0])[62:] == sent[14:14 + 1232]
    assert not [f for f in got[lab.tap("h2")] if len(f) > 1000]
