"""Egress MTU (rt_port.mtu): IPv4 with DF -> ICMP Fragmentation Needed carrying the next-hop MTU
(RFC 792 / RFC 1191 4), IPv4 without DF -> the kernel (it fragments; XDP cannot), IPv6 -> ICMPv6
Packet Too Big with the MTU (RFC 4443 3.2, RFC 8201), all built in XDP; byte-exact against the
reference model (nf/models/router.py) and checked field by field."""
from __future__ import annotations

import ctypes
import os

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import ICMPv6PacketTooBig, IPv6
from scapy.layers.l2 import Ether

from nf.models.router import XDP_PASS, XDP_REDIRECT, XDP_TX, csum
from nf.nfs.router import RtPort, _link_mtu
from router_topo import GW1_MAC, GW6_MAC, H0_MAC, MAC_P0, MAC_P1, model_of

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="loading BPF needs root")

U32 = ctypes.c_uint32
P1 = 1  # port index of p1: 192.168.0.0/16 and 2001:db8:99::/48 leave through it


def set_mtu(router, port: int, mtu: int) -> None:
    m = router.obj.map("rt_ports").typed(U32, RtPort)
    v = m[port]
    v.mtu = mtu
    m[port] = v


@pytest.fixture
def mtu_router(router):
    set_mtu(router, P1, 1400)
    yield router
    set_mtu(router, P1, 0)


def check(router, frame: bytes, mtu: int = 1400):
    verdict, out = router.run(frame)
    model = model_of(router)
    model.ports[P1].mtu = mtu
    m_verdict, m_out, _ = model.process(frame, 1)
    assert verdict == m_verdict, f"verdict {verdict}, model says {m_verdict}"
    assert out == m_out, f"bytes differ from the model:\n{out.hex()}\n{m_out.hex()}"
    return verdict, out


def v4(size: int, df: bool, proto_payload=None):
    """A frame to 192.168.3.4 (out p1) whose IP total length is `size`."""
    pay = b"m" * (size - 20 - 8)
    return bytes(Ether(dst=MAC_P0, src=H0_MAC) /
                 IP(src="10.0.0.5", dst="192.168.3.4", ttl=30, id=0x1234, flags="DF" if df else 0) /
                 UDP(sport=4000, dport=5000) / pay)


def v6(size: int):
    pay = b"s" * (size - 40 - 8)
    return bytes(Ether(dst=MAC_P0, src=H0_MAC) /
                 IPv6(src="2001:db8::5", dst="2001:db8:99:1::1", hlim=30) / UDP(sport=4000, dport=5000) / pay)


@pytest.mark.parametrize("size", [1400, 1000])
def test_v4_at_or_below_mtu_forwarded(mtu_router, size):
    verdict, out = check(mtu_router, v4(size, df=True))
    assert verdict == XDP_REDIRECT and Ether(out).dst == GW1_MAC and Ether(out).src == MAC_P1


def test_v4_df_over_mtu_gets_frag_needed(mtu_router):
    f = v4(1401, df=True)
    verdict, out = check(mtu_router, f)
    assert verdict == XDP_TX
    p = Ether(out)
    assert (p.dst, p.src, p.type) == (H0_MAC, MAC_P0, 0x0800)
    assert (p[IP].src, p[IP].dst, p[IP].proto, p[IP].ttl, p[IP].len) == ("10.0.0.1", "10.0.0.5", 1, 64, 576)
    assert csum(out[14:34]) == 0
    icmp = out[34:]
    assert (icmp[0], icmp[1]) == (3, 4)                       # unreachable, fragmentation needed
    assert icmp[4:6] == b"\0\0" and int.from_bytes(icmp[6:8], "big") == 1400   # next-hop MTU
    assert csum(icmp) == 0
    # as much of the original as fits in 576 bytes (RFC 1812 4.3.2.3)
    assert icmp[8:] == f[14:14 + 548]
    assert len(out) == 14 + 576


def test_v4_no_df_over_mtu_goes_to_kernel(mtu_router):
    f = v4(1401, df=False)
    verdict, out = check(mtu_router, f)
    assert verdict == XDP_PASS and out == f


def test_v4_ttl_expiry_wins_over_mtu(mtu_router):
    """Linux order (ip_forward): the TTL is checked before the MTU."""
    f = bytearray(v4(1401, df=True))
    f[14 + 8] = 1
    f[24:26] = b"\0\0"
    f[24:26] = csum(bytes(f[14:34])).to_bytes(2, "big")
    verdict, out = check(mtu_router, bytes(f))
    assert verdict == XDP_TX and (out[34], out[35]) == (11, 0)


def test_v4_frag_needed_not_about_icmp_errors(mtu_router):
    f = bytearray(v4(1401, df=True))
    f[14 + 9] = 1        # ICMP
    f[34] = 3            # destination unreachable: an error, never answered with one
    f[24:26] = b"\0\0"
    f[24:26] = csum(bytes(f[14:34])).to_bytes(2, "big")
    verdict, _ = check(mtu_router, bytes(f))
    assert verdict == 1  # XDP_DROP


@pytest.mark.parametrize("size", [1400, 1280])
def test_v6_at_or_below_mtu_forwarded(mtu_router, size):
    verdict, out = check(mtu_router, v6(size))
    assert verdict == XDP_REDIRECT and Ether(out).dst == GW6_MAC


def test_v6_over_mtu_gets_packet_too_big(mtu_router):
    f = v6(1401)
    verdict, out = check(mtu_router, f)
    assert verdict == XDP_TX
    p = Ether(out)
    assert (p.dst, p.src) == (H0_MAC, MAC_P0)
    assert (p[IPv6].src, p[IPv6].dst, p[IPv6].nh, p[IPv6].hlim) == ("2001:db8::1", "2001:db8::5", 58, 64)
    ptb = p[ICMPv6PacketTooBig]
    assert (ptb.type, ptb.code, ptb.mtu) == (2, 0, 1400)
    assert out[62 - 8:62 - 6] == b"\x02\x00" and int.from_bytes(out[58:62], "big") == 1400
    # as much of the invoking packet as fits in 1,280 bytes (RFC 4443 2.4(c))
    assert len(out) == 14 + 1280 and out[62:] == f[14:14 + 1232]
    chk = ptb.cksum
    del p[ICMPv6PacketTooBig].cksum
    assert Ether(bytes(p))[ICMPv6PacketTooBig].cksum == chk


def test_mtu_zero_is_unchecked(router):
    set_mtu(router, P1, 0)
    verdict, _ = check(router, v4(1401, df=True), mtu=0)
    assert verdict == XDP_REDIRECT
    verdict, _ = check(router, v6(1401), mtu=0)
    assert verdict == XDP_REDIRECT


def test_controller_reads_link_mtu(router):
    """The controller fills rt_port.mtu from the link (lo's 65536 does not fit: unchecked; a
    missing link: unchecked)."""
    m = router.obj.map("rt_ports").typed(U32, RtPort)
    assert m[0].mtu == 0 and _link_mtu(1) == 0
    assert _link_mtu(1001) == 0 or m[P1].mtu == _link_mtu(1001)
