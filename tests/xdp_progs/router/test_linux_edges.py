"""Tier 1, byte-exact: the edge cases where the router must do what Linux's forwarding does
(issue 15), through BPF_PROG_TEST_RUN in every lookup mode. Each row is a frame and what the
router must do with it: forward it (these exact bytes), answer it (these exact bytes), drop it, or
leave it to the kernel (XDP_PASS, frame untouched) where Linux's answer needs state the router
does not keep (IP options, link-local addresses, broadcast and anycast delivery, errors that
Linux routes elsewhere). The expected frames are written out here field by field, as Linux sends
them (observed on 6.18; tests/xdp_progs/router/test_router_vs_linux.py checks the same against a
live Linux router), and the reference model must agree.

The router runs loaded, not attached, in the dut netns of a small veth lab whose kernel has the
same addresses, routes and static neighbours (mode fib reads them; test_run of a frame "from"
p1 is an ingress on p1 there).
"""
from __future__ import annotations

import struct

import pytest
from scapy.layers.inet import ICMP, IP, UDP, UDPerror
from scapy.layers.inet6 import (ICMPv6DestUnreach, ICMPv6EchoReply, ICMPv6EchoRequest,
                                ICMPv6ParamProblem, ICMPv6TimeExceeded, IPerror6, IPv6,
                                IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop,
                                IPv6ExtHdrRouting, PadN)
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from nf.models.router import XDP_DROP, XDP_PASS, XDP_REDIRECT, XDP_TX, csum

pytestmark = pytest.mark.netns

H1, H2, H3 = "02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03"
P1, P2, P3 = "02:00:00:01:00:01", "02:00:00:01:00:02", "02:00:00:01:00:03"
OTHER1 = "02:00:00:00:00:33"              # 10.0.1.3 / fd00:1::3, a second host on p1
PMAC = {1: P1, 2: P2, 3: P3}
MTU3 = 1400

ROUTES = [  # (prefix, router target, kernel route)
    ("192.168.0.0/16", {"via": ["10.0.2.2"]}, {"gateway": "10.0.2.2"}),
    ("10.0.2.255/32", {"via": ["10.0.3.2"]}, {"gateway": "10.0.3.2"}),      # a broadcast, covered
    ("10.0.3.128/25", {"unreachable": True}, {"type": "unreachable"}),     # covers 10.0.3.255
    ("172.20.0.0/16", {"via": ["10.0.3.2"]}, {"gateway": "10.0.3.2"}),     # out p3 (MTU 1400)
    ("198.51.100.0/24", {"unreachable": True}, {"type": "unreachable"}),
    ("203.0.113.0/24", {"blackhole": True}, {"type": "blackhole"}),
    ("2001:db8:99::/48", {"via": ["fd00:2::2"]}, {"gateway": "fd00:2::2"}),
    ("2001:db8:97::/48", {"via": ["fd00:3::2"]}, {"gateway": "fd00:3::2"}),
    ("2001:db8:98::/48", {"unreachable": True}, {"type": "unreachable"}),
    ("fd00:2::/128", {"via": ["fd00:3::2"]}, {"gateway": "fd00:3::2"}),    # anycast, covered
]
NEIGHBOURS = [("10.0.1.2", H1, 1), ("10.0.1.3", OTHER1, 1), ("10.0.2.2", H2, 2), ("10.0.3.2", H3, 3),
              ("fd00:1::2", H1, 1), ("fd00:1::3", OTHER1, 1), ("fd00:2::2", H2, 2), ("fd00:3::2", H3, 3)]
KERNEL_ONLY = [("192.0.2.0/24", {"type": "prohibit"}), ("2001:db8:96::/48", {"type": "prohibit"})]


@pytest.fixture(scope="module")
def lab():
    from pyroute2 import IPRoute
    from nf.net import iface
    from nf.net.lab import Lab, LabSpec
    lb = Lab(LabSpec.router(3, ipv6=True, ip_forward=True))
    try:
        with lb.enter("dut"), IPRoute() as ipr:
            idx = {i: ipr.link_lookup(ifname=f"p{i}")[0] for i in (1, 2, 3)}
            ipr.link("set", index=idx[3], mtu=MTU3)
            for a, mac, i in NEIGHBOURS:
                ipr.neigh("add", dst=a, lladdr=mac, ifindex=idx[i], state=0x80, family=10 if ":" in a else 2)
            ipr.neigh("add", dst="fe80::2", lladdr=H1, ifindex=idx[1], state=0x80, family=10)
            for p, _, k in ROUTES:
                ipr.route("add", dst=p, family=10 if ":" in p else 2, **k)
            for p, k in KERNEL_ONLY:
                ipr.route("add", dst=p, family=10 if ":" in p else 2, **k)
        iface.set_sysctl("net.ipv6.conf.all.forwarding", 1, lb.dut)
        yield lb
    finally:
        lb.destroy()


def router_cfg(lab, mode: str, **extra) -> dict:
    d = {"mode": mode,
         "interfaces": [{"name": h.port, "mac": h.port_mac, "addresses": list(h.port_addresses)}
                        for h in lab.hosts.values()],
         "neighbours": [{"address": a, "mac": m} for a, m, _ in NEIGHBOURS],
         "routes": [{"prefix": p, **t} for p, t, _ in ROUTES],
         "icmp": {"rate": 1_000_000, "burst": 1_000_000},
         "sizes": {"v4_chunks": 64, "v6_chunks": 512, "trie_entries": 256, "neighbours": 256}}
    d.update(extra)
    return d


class Loaded:
    def __init__(self, lab, mode: str, **extra):
        from nf.config.router import validate_router_config
        from nf.nfs.router import Router
        self.lab, self.mode = lab, mode
        with lab.enter("dut"):
            self.r = Router(validate_router_config(router_cfg(lab, mode, **extra))).load()

    def run(self, frame: bytes, port: int = 1):
        with self.lab.enter("dut"):
            return self.r.run(frame, f"p{port}")

    def close(self):
        self.r.close()


@pytest.fixture(scope="module", params=["dir", "trie", "fib"])
def rt(request, lab):
    r = Loaded(lab, request.param)
    yield r
    r.close()


# ---- frames and the answers Linux gives ------------------------------------------------------------
def e(port=1, src=None):
    return Ether(dst=PMAC[port], src=src or {1: H1, 2: H2, 3: H3}[port])


def err4(f: bytes, typ: int, code: int, rest: int = 0, port: int = 1) -> bytes:
    """Linux's ICMP error about frame f: to the sender's MAC from the ingress port, from its
    address, TOS = the packet's TOS bits | internetwork control (RFC 1812 4.3.2.5), ID 0 here
    (Linux: a counter, an accepted difference), TTL 64, quoting up to 576 bytes in all."""
    ip = f[14:]
    tot = struct.unpack("!H", ip[2:4])[0]
    body = bytearray(struct.pack("!BBHI", typ, code, 0, rest) + ip[:min(tot, 548)])
    body[2:4] = struct.pack("!H", csum(bytes(body)))
    src = ".".join(str(b) for b in ip[12:16])
    return bytes(Ether(dst=f[6:12], src=PMAC[port]) /
                 IP(src=f"10.0.{port}.1", dst=src, tos=(ip[1] & 0x1e) | 0xc0, id=0, ttl=64, proto=1) /
                 Raw(bytes(body)))


def err6(f: bytes, cls, port: int = 1, **kw) -> bytes:
    ip = f[14:]
    plen = struct.unpack("!H", ip[4:6])[0]
    src = str(IPv6(ip).src)
    return bytes(Ether(dst=f[6:12], src=PMAC[port]) /
                 IPv6(src=f"fd00:{port}::1", dst=src, hlim=64) / cls(**kw) / Raw(ip[:min(40 + plen, 1232)]))


def fwd4(f: bytes, out: int, mac: str) -> bytes:
    """Frame f forwarded out port `out` to `mac`: TTL - 1, checksum, trimmed to the IP length."""
    ip = IP(f[14:14 + struct.unpack("!H", f[16:18])[0]])
    ip.ttl -= 1
    del ip.chksum
    return bytes(Ether(dst=mac, src=PMAC[out]) / ip)


def fwd6(f: bytes, out: int, mac: str) -> bytes:
    ip = f[14:14 + 40 + struct.unpack("!H", f[18:20])[0]]
    return bytes(Ether(dst=mac, src=PMAC[out], type=0x86DD)) + ip[:7] + bytes([ip[7] - 1]) + ip[8:]


def v4(dst, src="10.0.1.2", ttl=64, l4=None, port=1, mac=None, pad=b"", **kw):
    l4 = UDP(sport=4321, dport=53) / b"qqq" if l4 is None else l4
    return bytes(e(port, mac) / IP(src=src, dst=dst, ttl=ttl, id=0x77, **kw) / l4) + pad


def v6(dst, src="fd00:1::2", hlim=64, l4=None, port=1, mac=None, pad=b"", **kw):
    l4 = UDP(sport=4321, dport=53) / b"qqq" if l4 is None else l4
    return bytes(e(port, mac) / IPv6(src=src, dst=dst, hlim=hlim, **kw) / l4) + pad


def echo4(dst, pad=b"", **kw):
    return v4(dst, l4=ICMP(type=8, id=0x4242, seq=7) / b"ping-data", pad=pad, **kw)


def echo6(dst, pad=b"", **kw):
    return v6(dst, l4=ICMPv6EchoRequest(id=0x4242, seq=7, data=b"ping-data"), pad=pad, **kw)


def trimmed(f: bytes) -> bytes:
    if f[12:14] == b"\x08\x00":
        return f[:14 + struct.unpack("!H", f[16:18])[0]]
    if f[12:14] == b"\x86\xdd":
        return f[:14 + 40 + struct.unpack("!H", f[18:20])[0]]
    return f


def bad_csum(f: bytes, off: int) -> bytes:
    b = bytearray(f)
    b[off] ^= 0x5a
    return bytes(b)


def reply4(f: bytes, port: int = 1) -> bytes:
    """Linux's echo reply: a fresh header (TOS kept, ID 0 here, no DF, TTL 64), the ICMP message
    of the request's IP length, type 0."""
    ip = IP(f[14:14 + struct.unpack("!H", f[16:18])[0]])
    icmp = bytearray(bytes(ip[ICMP]))
    icmp[0] = 0
    icmp[2:4] = b"\0\0"
    icmp[2:4] = struct.pack("!H", csum(bytes(icmp)))
    return bytes(Ether(dst=f[6:12], src=f[0:6]) /
                 IP(src=ip.dst, dst=ip.src, tos=ip.tos, id=0, flags=0, ttl=64, proto=1) / Raw(bytes(icmp)))


def reply6(f: bytes) -> bytes:
    ip = IPv6(f[14:14 + 40 + struct.unpack("!H", f[18:20])[0]])
    q = ip[ICMPv6EchoRequest]
    return bytes(Ether(dst=f[6:12], src=f[0:6]) /
                 IPv6(src=ip.dst, dst=ip.src, hlim=64, tc=ip.tc, fl=ip.fl) /
                 ICMPv6EchoReply(id=q.id, seq=q.seq, data=q.data))


PASS, DROP = "pass", "drop"
RR_BAD = b"\x07\x02\x04\x00"            # record route, length 2 (< 3): malformed
RR_OK = b"\x07\x07\x04" + bytes(4) + b"\x00"

# (issue item, description, frame, expected, ingress port). Expected: PASS (frame untouched), DROP,
# (verdict, bytes or a name resolved by expected()), a name alone (XDP_TX), or {mode: ..., "": the
# other modes}. In mode fib the kernel FIB resolves neighbours itself, so a packet to an address
# without one goes to the kernel before its TTL is looked at (the kernel then answers the same).


def case(item, desc, frame, expect, port=1):
    return pytest.param(frame, expect, port, id=f"{item}-{desc}")


CASES = [
    # 1. directed broadcasts: Linux delivers them locally (never forwarded, never an ICMP error)
    case(1, "subnet-host-ttl1", v4("10.0.3.127", ttl=1), {"fib": PASS, "": "err4-ttl"}),
    case(1, "bcast-other-subnet-ttl1", v4("10.0.2.255", ttl=1), PASS),
    case(1, "bcast-covered-by-route", echo4("10.0.2.255"), PASS),
    case(1, "bcast-covered-by-unreachable", v4("10.0.3.255"), PASS),
    case(1, "bcast-ingress-subnet", echo4("10.0.1.255"), PASS),
    case(1, "limited-bcast", v4("255.255.255.255", ttl=1), PASS),
    case(1, "network-address-is-a-host", v4("10.0.2.0", ttl=1), {"fib": PASS, "": "err4-ttl"}),
    # 2. IPv6 subnet-router anycast (RFC 4291 2.6.1): the kernel answers
    case(2, "anycast-echo-hlim1", echo6("fd00:2::", hlim=1), PASS),
    case(2, "anycast-covered-by-route", v6("fd00:2::"), PASS),
    case(2, "anycast-ingress-subnet", echo6("fd00:1::"), PASS),
    # 3. no ICMPv6 error about an ICMPv6 error, wherever it sits (RFC 4443 2.4(e))
    case(3, "error-behind-destopt", v6("2001:db8:99::1", hlim=1, l4=IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\0" * 4)]) /
                                       ICMPv6DestUnreach() / IPerror6() / UDPerror()), DROP),
    case(3, "error-behind-routing", v6("2001:db8:99::1", hlim=1, l4=IPv6ExtHdrRouting(addresses=[]) /
                                       ICMPv6TimeExceeded() / IPerror6()), DROP),
    case(3, "error-behind-first-fragment", v6("2001:db8:99::1", hlim=1, l4=IPv6ExtHdrFragment(m=1, id=5) /
                                              ICMPv6ParamProblem() / IPerror6()), DROP),
    case(3, "error-behind-two-headers", v6("2001:db8:99::1", hlim=1, l4=IPv6ExtHdrDestOpt() / IPv6ExtHdrRouting(addresses=[]) /
                                           ICMPv6DestUnreach() / IPerror6()), DROP),
    case(3, "non-first-fragment-gets-errors", v6("2001:db8:99::1", hlim=1, l4=IPv6ExtHdrFragment(offset=5, id=5, nh=58) /
                                                 Raw(b"\x01\x00\x00\x00\x00\x00\x00\x00")),
         "err6-ttl"),
    case(3, "echo-behind-destopt-gets-errors", v6("2001:db8:99::1", hlim=1, l4=IPv6ExtHdrDestOpt() / ICMPv6EchoRequest()),
         "err6-ttl"),
    case(3, "v4-icmp-type-over-18-is-an-error", v4("192.168.1.1", ttl=1, l4=ICMP(type=40) / (b"x" * 8)), DROP),
    case(3, "v4-icmp-type-18-is-not", v4("192.168.1.1", ttl=1, l4=ICMP(type=18) / (b"x" * 8)), "err4-ttl"),
    # 4. echo requests with a wrong checksum: Linux drops them (the kernel counts them)
    case(4, "v4-echo-bad-checksum", bad_csum(echo4("10.0.2.1"), 14 + 20 + 2), PASS),
    case(4, "v6-echo-bad-checksum", bad_csum(echo6("fd00:2::1"), 14 + 40 + 2), PASS),
    case(4, "v4-echo-fresh-header", echo4("10.0.2.1", tos=0x2c, flags="DF", pad=b"\xee" * 9),
         {"fib": PASS, "": (XDP_TX, "reply4")}),
    case(4, "v6-echo-trimmed", echo6("fd00:2::1", tc=0xfd, fl=0x12345, pad=b"\xee" * 9),
         {"fib": PASS, "": (XDP_TX, "reply6")}),
    # 5. link-local sources: Linux answers 1/2 from its own link-local address, or forwards a
    #    hairpin; the kernel knows that address
    case(5, "v6-link-local-source", v6("2001:db8:99::1", src="fe80::2"), PASS),
    case(5, "v6-link-local-source-hlim1", v6("2001:db8:99::1", src="fe80::2", hlim=1), PASS),
    # 6. loopback and unspecified sources
    case(6, "v6-loopback-source", v6("2001:db8:99::1", src="::1"), DROP),
    case(6, "v6-loopback-source-hlim1", v6("2001:db8:99::1", src="::1", hlim=1), DROP),
    case(6, "v4-loopback-source", v4("192.168.1.1", src="127.0.0.1"), DROP),
    case(6, "v6-unspecified-source", v6("2001:db8:99::1", src="::"), PASS),
    # 7. trailing bytes after the IP packet are not forwarded (nor answered)
    case(7, "v4-padding-trimmed", v4("192.168.1.1", pad=b"\xaa" * 20), (XDP_REDIRECT, "fwd4-p2")),
    case(7, "v6-padding-trimmed", v6("2001:db8:99::1", pad=b"\xaa" * 20), (XDP_REDIRECT, "fwd6-p2")),
    case(7, "v4-padded-past-egress-mtu", v4("172.20.0.9", pad=b"\xa5" * (1500 - 31)), (XDP_REDIRECT, "fwd4-p3")),
    # 8. IPv4 options: checked and processed by the kernel (Parameter Problem, echoed options)
    case(8, "malformed-options-ttl1", v4("192.168.1.1", ttl=1, options=RR_BAD), PASS),
    case(8, "record-route-ttl1", v4("192.168.1.1", ttl=1, options=RR_OK), PASS),
    case(8, "options-no-route", v4("8.8.8.8", options=RR_BAD), PASS),
    case(8, "options-unreachable-route", v4("198.51.100.1", options=RR_OK), PASS),
    # 9. errors only to hosts, and only where Linux would route them: back out the ingress port
    case(9, "v4-own-address-source-ttl1", v4("192.168.1.1", src="10.0.2.1", ttl=1), DROP),
    case(9, "v4-own-address-source", v4("192.168.1.1", src="10.0.2.1"), DROP),
    case(9, "v4-own-address-source-echo", echo4("10.0.2.1", src="10.0.1.1"), DROP),
    case(9, "v4-broadcast-source-ttl1", v4("192.168.1.1", src="10.0.2.255", ttl=1), PASS),
    case(9, "v4-broadcast-source-forwarded", v4("192.168.1.1", src="10.0.3.255"), (XDP_REDIRECT, "fwd4-p2")),
    case(9, "v4-broadcast-source-hairpin", v4("192.168.1.1", src="10.0.2.255", port=2),
         {"fib": PASS, "": DROP}, port=2),
    case(9, "v4-asymmetric-source-ttl1", v4("192.168.1.1", src="10.0.3.2", ttl=1), PASS),
    case(9, "v4-other-mac-source-ttl1", v4("192.168.1.1", src="10.0.1.3", ttl=1), PASS),
    case(9, "v4-unroutable-source-ttl1", v4("192.168.1.1", src="198.18.0.1", ttl=1), {"fib": PASS, "": DROP}),
    case(9, "v4-unroutable-source-no-route", v4("8.8.8.8", src="198.18.0.1"), {"fib": PASS, "": DROP}),
    case(9, "v4-asymmetric-source-echo", echo4("10.0.2.1", src="10.0.3.2"), PASS),
    case(9, "v6-anycast-source-hlim1", v6("2001:db8:99::1", src="fd00:3::", hlim=1), PASS),
    case(9, "v6-own-address-source-hlim1", v6("2001:db8:99::1", src="fd00:2::1", hlim=1), PASS),
    case(9, "v6-own-address-source", v6("2001:db8:99::1", src="fd00:2::1"), (XDP_REDIRECT, "fwd6-p2")),
    case(9, "v6-asymmetric-source-hlim1", v6("2001:db8:99::1", src="fd00:3::2", hlim=1), PASS),
    case(9, "v6-unroutable-source-hlim1", v6("2001:db8:99::1", src="2001:db8:ffff::1", hlim=1),
         {"fib": PASS, "": DROP}),
    case(9, "v4-class-e-source", v4("192.168.1.1", src="240.0.0.7"), (XDP_REDIRECT, "fwd4-p2")),
    case(9, "v4-zero-network-source", v4("192.168.1.1", src="0.1.2.3"), (XDP_REDIRECT, "fwd4-p2")),
    case(9, "v4-zero-source", v4("192.168.1.1", src="0.0.0.0"), DROP),
    # 10. the kernel FIB's "not forwarded" is not "ours": mode fib leaves those to the kernel
    case(10, "echo-unrouted", echo4("8.8.8.8"), {"fib": PASS, "": "err4-3/0"}),
    case(10, "echo-unreachable-route", echo4("198.51.100.1"), "err4-3/1"),
    case(10, "echo-broadcast", echo4("10.0.3.255"), PASS),
    case(10, "v6-echo-unrouted", echo6("2001:db9::1"), {"fib": PASS, "": "err6-1/0"}),
    case(10, "v6-echo-unreachable-route", echo6("2001:db8:98::1"), "err6-1/0"),
    # unreachable routes answer what Linux's unreachable routes answer (3/1, 1/0)
    case("u", "v4-unreachable-route", v4("198.51.100.1"), "err4-3/1"),
    case("u", "v6-unreachable-route", v6("2001:db8:98::1"), "err6-1/0"),
    # the TOS of Linux's errors: the packet's TOS bits | internetwork control
    case("tos", "v4-error-tos", v4("192.168.1.1", ttl=1, tos=0xfd), "err4-ttl"),
    # hop-by-hop options are processed by the kernel before forwarding
    case("hbh", "v6-hop-by-hop", v6("2001:db8:99::1", l4=IPv6ExtHdrHopByHop() / UDP()), PASS),
    case("hbh", "v6-hop-by-hop-hlim1", v6("2001:db8:99::1", hlim=1, l4=IPv6ExtHdrHopByHop() / UDP()), PASS),
]


def expected(frame: bytes, exp, mode: str):
    if isinstance(exp, dict):
        exp = exp.get(mode, exp[""])
    if exp == PASS:
        return XDP_PASS, PASS
    if exp == DROP:
        return XDP_DROP, None
    if isinstance(exp, str):
        exp = (XDP_TX, exp)
    verdict, what = exp
    if isinstance(what, bytes):
        return verdict, what
    port = 2 if frame[0:6] == bytes.fromhex(P2.replace(":", "")) else 1
    if what == "err4-ttl":
        return verdict, err4(frame, 11, 0, port=port)
    if what.startswith("err4-"):
        t, c = what[5:].split("/")
        return verdict, err4(frame, int(t), int(c), port=port)
    if what == "err6-ttl":
        return verdict, err6(frame, ICMPv6TimeExceeded, port=port)
    if what.startswith("err6-"):
        return verdict, err6(frame, ICMPv6DestUnreach, port=port, code=int(what.split("/")[1]))
    if what == "reply4":
        return verdict, reply4(frame)
    if what == "reply6":
        return verdict, reply6(frame)
    fam, out = what.split("-p")
    mac = {2: H2, 3: H3}[int(out)]
    return verdict, (fwd4 if fam == "fwd4" else fwd6)(frame, int(out), mac)


@pytest.mark.parametrize("frame,exp,port", CASES)
def test_like_linux(rt, frame, exp, port):
    verdict, out = rt.run(frame, port)
    want_v, want = expected(frame, exp, rt.mode)
    assert verdict == want_v, f"verdict {verdict}, want {want_v}"
    if want == PASS:     # to the kernel as it came, or cut to the IP length (the kernel cuts it too)
        assert out in (frame, trimmed(frame)), f"\n got  {out.hex()}\n sent {frame.hex()}"
    elif want is not None:
        assert out == want, f"\n got  {out.hex()}\n want {want.hex()}"
    if rt.mode != "fib":      # the reference model agrees (it has no kernel FIB)
        from router_topo import model_of
        mv, mo, _ = model_of(rt.r).process(frame, rt.r.by_name[f"p{port}"].ifindex)
        assert mv == verdict and (want is None or mo == out)


# ---- unreachable routes as "prohibit" (the option) and the kernel's prohibit routes (fib) ------
PROHIBIT = {"icmp": {"rate": 1_000_000, "burst": 1_000_000, "unreachable_routes": "prohibit"}}


@pytest.mark.parametrize("mode,extra,dst4,dst6", [
    ("dir", PROHIBIT, "198.51.100.1", "2001:db8:98::1"),      # unreachable routes, the option
    ("trie", PROHIBIT, "198.51.100.1", "2001:db8:98::1"),
    ("fib", {}, "192.0.2.1", "2001:db8:96::1"),               # the kernel's prohibit routes
])
def test_prohibited(lab, mode, extra, dst4, dst6):
    r = Loaded(lab, mode, **extra)
    try:
        f = v4(dst4)
        assert r.run(f) == (XDP_TX, err4(f, 3, 13))
        f = v6(dst6)
        assert r.run(f) == (XDP_TX, err6(f, ICMPv6DestUnreach, code=1))
    finally:
        r.close()


def test_padding_trimmed_counts_what_is_sent(lab):
    """A short packet padded past p3's MTU is sent trimmed and counted with its sent size."""
    r = Loaded(lab, "dir")
    try:
        f = v4("172.20.0.9", pad=b"\xa5" * (1500 - 31))
        v, out = r.run(f)
        assert v == XDP_REDIRECT and len(out) == 14 + 31
        st = r.r.port_stats()["p3"]
        assert (st["tx_packets"], st["tx_bytes"]) == (1, 14 + 31)
        assert r.r.port_stats()["p1"]["rx_bytes"] == len(f)
    finally:
        r.close()
