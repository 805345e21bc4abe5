"""ICMP error quoting, byte-exact: an error carries as much of the invoking packet as fits in 576
bytes for IPv4 (RFC 1812 4.3.2.3) and in the minimum IPv6 MTU, 1,280 bytes (RFC 4443 2.4(c)).
Short originals are quoted whole (never their Ethernet padding), long ones are cut exactly at the
limit, odd lengths exercise the checksum's zero padding; IPv4 packets with options are the kernel's
(Linux checks them, processes them and echoes some in its errors). Every output equals the reference model's and its checksums are recomputed here with
scapy's own routines (independent of nf/models/router.py); both lookup structures."""
from __future__ import annotations

import os
import struct

import pytest
from scapy.layers.inet6 import IPv6, in6_chksum
from scapy.utils import checksum

from nf.models.router import XDP_DROP, XDP_PASS, XDP_TX
from router_topo import H0_MAC, MAC_P0, model_of

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="loading BPF needs root")

ETH4 = bytes.fromhex(MAC_P0.replace(":", "")) + bytes.fromhex(H0_MAC.replace(":", "")) + b"\x08\x00"
ETH6 = ETH4[:12] + b"\x86\xdd"
ME4, ME6 = bytes([10, 0, 0, 1]), IPv6(src="2001:db8::1").src  # p0's addresses
RR40 = b"\x07\x27\x04" + bytes(36) + b"\x00"   # record route filling the 40 option bytes


def pattern(n: int, seed: int = 0) -> bytes:
    """Payload bytes that differ at every offset, so a quote cut one byte off is visible."""
    return bytes((i * 7 + seed) & 0xff for i in range(n))


def ip4(tot: int, dst: str = "192.168.3.4", ttl: int = 1, proto: int = 17, opts: bytes = b"",
        payload: bytes | None = None, pad: int = 0) -> bytes:
    """An Ethernet frame with an IPv4 packet of total length `tot` (header checksum right), then
    `pad` bytes of Ethernet padding."""
    assert len(opts) % 4 == 0
    hlen = 20 + len(opts)
    body = payload if payload is not None else pattern(tot - hlen)
    assert hlen + len(body) == tot
    hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x40 | hlen // 4, 0, tot, 0x4242, 0, ttl, proto, 0,
                                bytes([10, 0, 0, 5]), bytes(int(x) for x in dst.split("."))) + opts)
    hdr[10:12] = struct.pack("!H", checksum(bytes(hdr)))
    return ETH4 + bytes(hdr) + body + b"\xee" * pad


def ip6(length: int, dst: str = "2001:db8:99::1", hlim: int = 1, nh: int = 17, pad: int = 0) -> bytes:
    """An Ethernet frame with an IPv6 packet of `length` bytes (header included)."""
    hdr = IPv6(src="2001:db8::5", dst=dst, hlim=hlim, nh=nh, plen=length - 40)
    return ETH6 + bytes(hdr)[:40] + pattern(length - 40, 3) + b"\xee" * pad


def run(router, frame: bytes):
    verdict, out = router.run(frame)
    m_verdict, m_out, _ = model_of(router).process(frame, 1)
    assert (verdict, out) == (m_verdict, m_out), f"differs from the model:\n{out.hex()}\n{m_out.hex()}"
    return verdict, out


def check_v4_error(f: bytes, out: bytes, typ: int, code: int, rest: bytes = bytes(4)) -> int:
    """Every byte of an ICMPv4 error about frame `f`; returns the quote length."""
    tot = struct.unpack("!H", f[16:18])[0]
    q = min(tot, 576 - 28)
    assert len(out) == 14 + 20 + 8 + q
    assert out[:14] == f[6:12] + f[0:6] + b"\x08\x00"
    hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0xc0, 28 + q, 0, 0, 64, 1, 0, ME4, f[26:30]))
    hdr[10:12] = struct.pack("!H", checksum(bytes(hdr)))
    assert out[14:34] == hdr                 # no options, TOS 0xc0, TTL 64, from p0's address
    icmp = out[34:]
    assert icmp[:2] == bytes([typ, code]) and icmp[4:8] == rest
    assert icmp[8:] == f[14:14 + q]
    # the ICMP checksum, recomputed over the whole message (odd length: zero-padded)
    assert checksum(icmp[:2] + b"\0\0" + icmp[4:]) == struct.unpack("!H", icmp[2:4])[0]
    return q


def check_v6_error(f: bytes, out: bytes, typ: int, code: int, rest: bytes = bytes(4)) -> int:
    plen = struct.unpack("!H", f[18:20])[0]
    q = min(40 + plen, 1280 - 48)
    assert len(out) == 14 + 40 + 8 + q
    assert out[:14] == f[6:12] + f[0:6] + b"\x86\xdd"
    p = IPv6(out[14:54])
    assert (p.version, p.tc, p.fl, p.plen, p.nh, p.hlim) == (6, 0, 0, 8 + q, 58, 64)
    assert (p.src, out[38:54]) == (ME6, f[22:38])
    icmp = out[54:]
    assert icmp[:2] == bytes([typ, code]) and icmp[4:8] == rest
    assert icmp[8:] == f[14:14 + q]
    # pseudo-header checksum recomputed by scapy
    zeroed = icmp[:2] + b"\0\0" + icmp[4:]
    assert in6_chksum(58, IPv6(out[14:54]), zeroed) == struct.unpack("!H", icmp[2:4])[0]
    return q


# ---- IPv4 -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("tot", [28, 29, 56, 57, 91, 92, 93, 101, 547, 548])
def test_v4_short_original_quoted_whole(router, tot):
    """tot <= 548: the whole packet, any length (odd ones exercise the checksum padding; 92/93
    make the summed ICMP message end at / one past a 64-byte copy block)."""
    f = ip4(tot)
    verdict, out = run(router, f)
    assert verdict == XDP_TX
    assert check_v4_error(f, out, 11, 0) == tot


@pytest.mark.parametrize("tot", [549, 550, 577, 1000, 1499, 1500])
def test_v4_long_original_cut_at_576(router, tot):
    f = ip4(tot)
    verdict, out = run(router, f)
    assert verdict == XDP_TX
    assert check_v4_error(f, out, 11, 0) == 548
    assert len(out) - 14 == 576 and struct.unpack("!H", out[16:18])[0] == 576


def test_v4_ethernet_padding_never_quoted(router):
    f = ip4(30, pad=30)                      # a 60-byte frame whose IP packet is 30 bytes
    verdict, out = run(router, f)
    assert verdict == XDP_TX
    assert check_v4_error(f, out, 11, 0) == 30 and b"\xee" not in out


@pytest.mark.parametrize("dst,code", [("8.8.8.8", 0), ("198.51.100.9", 1)])
@pytest.mark.parametrize("tot", [333, 1200])
def test_v4_unreachable_quotes_the_same(router, dst, code, tot):
    f = ip4(tot, dst=dst, ttl=64)
    verdict, out = run(router, f)
    assert verdict == XDP_TX
    assert check_v4_error(f, out, 3, code) == min(tot, 548)


@pytest.mark.parametrize("desc,frame,verdict", [
    # every packet with options is the kernel's, whatever happens to it: it checks the options
    # (Parameter Problem), processes them and echoes record route / timestamps in its errors
    ("ttl 1", ip4(100, opts=RR40), XDP_PASS),
    ("ttl 1, 4 option bytes", ip4(1000, opts=b"\x01\x01\x01\x00"), XDP_PASS),
    ("no route", ip4(700, dst="8.8.8.8", ttl=64, opts=RR40), XDP_PASS),
    ("forwardable", ip4(100, ttl=64, opts=RR40), XDP_PASS),
    ("echo to the router", ip4(28 + 4, dst="10.0.0.1", ttl=64, proto=1, opts=b"\x01\x01\x01\x00",
                               payload=bytes([8, 0, 0xf7, 0xff, 0, 0, 0, 0])), XDP_PASS),
    ("about an icmp error", ip4(60, proto=1, opts=b"\x01\x01\x01\x00",
                                payload=bytes([3, 1, 0, 0]) + pattern(32)), XDP_PASS),
])
def test_v4_options_are_the_kernels(router, desc, frame, verdict):
    v, out = run(router, frame)
    assert v == verdict and out == frame, desc


def test_v4_options_bad_header_checksum_dropped(router):
    f = bytearray(ip4(100, opts=RR40))
    f[14 + 30] ^= 0x10                       # inside the options: only a whole-header sum sees it
    verdict, _ = run(router, bytes(f))
    assert verdict == XDP_DROP


def test_v4_options_header_longer_than_packet_dropped(router):
    f = bytearray(ip4(100, opts=RR40))
    f[16:18] = struct.pack("!H", 40)         # total length below the 60-byte header
    f[24:26] = b"\0\0"
    f[24:26] = struct.pack("!H", checksum(bytes(f[14:74])))
    verdict, _ = run(router, bytes(f))
    assert verdict == XDP_DROP


# ---- IPv6 -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("length", [41, 48, 49, 103, 104, 1231, 1232])
def test_v6_short_original_quoted_whole(router, length):
    f = ip6(length)
    verdict, out = run(router, f)
    assert verdict == XDP_TX
    assert check_v6_error(f, out, 3, 0) == length


@pytest.mark.parametrize("length", [1233, 1234, 1281, 1500])
def test_v6_long_original_cut_at_1280(router, length):
    f = ip6(length)
    verdict, out = run(router, f)
    assert verdict == XDP_TX
    assert check_v6_error(f, out, 3, 0) == 1232 and len(out) - 14 == 1280


def test_v6_padding_never_quoted_and_no_route(router):
    f = ip6(61, dst="2001:db8:77::1", hlim=64, pad=9)
    verdict, out = run(router, f)
    assert verdict == XDP_TX
    assert check_v6_error(f, out, 1, 0) == 61 and b"\xee" not in out


def test_v6_zero_payload_length_is_the_kernels(router):
    """Payload length 0 belongs to a jumbogram (RFC 2675): the kernel's, as hop-by-hop options."""
    f = ip6(40)
    assert run(router, f) == (XDP_PASS, f)
