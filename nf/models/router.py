"""Python reference model of the XDP router (xdp_progs/router/router.bpf.c).

``RouterModel.process(frame, ingress_ifindex)`` returns what the datapath must do with one frame:
(XDP action, output bytes, egress port or None). It is written independently of the C: longest
prefix match by a dict per prefix length, checksums recomputed from scratch (the C uses RFC 1624
incremental updates), ICMP errors assembled field by field. Shared by the byte-exact tier-1
tests, the differential tests (``Lpm``) and the lab tests (``ecmp_index``).
"""
from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT = range(5)

KIND_NONE, KIND_FORWARD, KIND_CONNECTED, KIND_BLACKHOLE, KIND_LOCAL, KIND_UNREACHABLE, KIND_KERNEL = range(7)
CLASS_NOROUTE, CLASS_CONNECTED, CLASS_STATIC, CLASS_ECMP, CLASS_BLACKHOLE, CLASS_LOCAL, \
    CLASS_DEFAULT, CLASS_KERNEL = range(8)

M32 = 0xffffffff

# ICMP errors quote as much of the invoking packet as fits in an error datagram of this size:
# RFC 1812 4.3.2.3 (IPv4 routers: 576 bytes) and RFC 4443 2.4(c) (the minimum IPv6 MTU).
V4_ERR_MAX = 576
V6_ERR_MAX = 1280
V4_QUOTE_MAX = V4_ERR_MAX - 20 - 8
V6_QUOTE_MAX = V6_ERR_MAX - 40 - 8
SUM_MAX = 1280        # longest ICMP message the datapath checksums (an echo beyond is the kernel's)
V6_EXT_WALK = 8       # extension headers walked before an ICMPv6 error decision


class Lpm:
    """Longest-prefix match over {(addr, len): value}: one dict per length, longest first."""

    def __init__(self, width: int, routes: dict[tuple[int, int], int] | None = None):
        self.width = width
        self.by_len: dict[int, dict[int, int]] = {}
        for (a, n), v in (routes or {}).items():
            self.add(a, n, v)

    def add(self, a: int, n: int, v: int) -> None:
        self.by_len.setdefault(n, {})[a >> (self.width - n) if n else 0] = v

    def delete(self, a: int, n: int) -> None:
        d = self.by_len.get(n, {})
        d.pop(a >> (self.width - n) if n else 0, None)

    def lookup(self, addr: int, default: int = 0) -> int:
        for n in sorted(self.by_len, reverse=True):
            v = self.by_len[n].get(addr >> (self.width - n) if n else 0)
            if v is not None:
                return v
        return default


# ---- ECMP hash: same arithmetic as flow_hash() in router.bpf.c -----------------------------------
def _fmix(h: int) -> int:
    h ^= h >> 16
    h = (h * 0x85ebca6b) & M32
    h ^= h >> 13
    h = (h * 0xc2b2ae35) & M32
    h ^= h >> 16
    return h


def fold6(a: int) -> int:
    return (a >> 96 ^ a >> 64 ^ a >> 32 ^ a) & M32


def flow_hash(src: int, dst: int, sport: int, dport: int, proto: int, seed: int = 0x5eed) -> int:
    """src/dst: IPv4 as int, IPv6 already folded with fold6(). CRC-32C (nf.algo, the function
    the module's kfunc and algo/crc32c.h compute) of the 16-byte key, then murmur3's fmix32."""
    from nf.algo import crc32c
    key = struct.pack("<4I", src, dst, (sport << 16) | dport, proto)
    return _fmix(crc32c(key, seed))


def ecmp_index(h: int, count: int) -> int:
    return (h * count) >> 32 if count > 1 else 0


# ---- checksums ---------------------------------------------------------------------------------------
def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def ip4_csum_ok(hdr: bytes) -> bool:
    return csum(hdr) == 0


# ---- router model ------------------------------------------------------------------------------------
@dataclass
class PortM:
    idx: int
    ifindex: int
    mac: bytes
    ip4: int = 0
    ip6: int = 0
    up: bool = True
    mtu: int = 0      # largest IP packet sent out of this port; 0 = unchecked


@dataclass
class GroupM:
    kind: int
    cls: int
    hops: list[tuple[int, int]] = field(default_factory=list)  # (port, gateway int)


@dataclass
class RouterModel:
    ports: list[PortM]
    groups: dict[int, GroupM]
    v4: Lpm
    v6: Lpm
    neigh: dict[tuple[int, int, int], bytes]  # (port, family, addr) -> mac
    icmp_errors: bool = True
    echo: bool = True
    seed: int = 0x5eed
    unreach_admin: bool = False   # unreachable routes answer 3/13, 1/1 instead of 3/1, 1/0

    def port_by_ifindex(self, ifindex: int) -> PortM | None:
        return next((p for p in self.ports if p.ifindex == ifindex), None)

    def process(self, frame: bytes, ingress_ifindex: int) -> tuple[int, bytes, int | None]:
        """-> (action, output frame, egress port index for REDIRECT)."""
        inp = self.port_by_ifindex(ingress_ifindex)
        if len(frame) < 14:
            return XDP_DROP, frame, None
        if inp is None:
            return XDP_PASS, frame, None
        dmac, etype = frame[:6], struct.unpack("!H", frame[12:14])[0]
        if etype == 0x0806 or dmac[0] & 1 or dmac != inp.mac:
            return XDP_PASS, frame, None
        if etype == 0x0800:
            return self._v4(frame, inp)
        if etype == 0x86DD:
            return self._v6(frame, inp)
        return XDP_PASS, frame, None

    def _group(self, fam: int, addr: int) -> GroupM | None:
        return self.groups.get((self.v4 if fam == 4 else self.v6).lookup(addr))

    def _reverse(self, fam: int, src: int, smac: bytes, inp: PortM) -> str:
        """Where Linux sends an answer to `src` (it routes it): "tx" = back out of the ingress
        port to this MAC (the router answers; also to an on-link sender with no entry), "none" =
        nowhere (no answer), "self" = one of the router's addresses, broadcasts or anycast
        addresses, "else" = elsewhere (the kernel's)."""
        g = self._group(fam, src)
        if g is None or g.kind in (KIND_NONE, KIND_BLACKHOLE, KIND_UNREACHABLE):
            return "none"
        if g.kind in (KIND_LOCAL, KIND_KERNEL):
            return "self"
        if g.kind not in (KIND_FORWARD, KIND_CONNECTED) or len(g.hops) != 1 or g.hops[0][0] != inp.idx:
            return "else"
        mac = self.neigh.get((inp.idx, fam, src if g.kind == KIND_CONNECTED else g.hops[0][1]))
        if mac is None:   # unknown (reported as a miss): an on-link sender is answered at smac
            return "tx" if g.kind == KIND_CONNECTED else "else"
        return "tx" if mac == smac else "else"

    def _answer(self, f: bytes, inp: PortM, fam: int, src: int):
        """None when the router answers; else the (action, frame, None) it returns instead."""
        r = self._reverse(fam, src, f[6:12], inp)
        if r == "tx":
            return None
        return (XDP_DROP if r == "none" else XDP_PASS), f, None

    # -- IPv4 --
    def _v4(self, f: bytes, inp: PortM):
        ip = f[14:]
        if len(ip) < 20:
            return XDP_DROP, f, None
        if ip[0] >> 4 != 4 or ip[0] & 15 < 5:
            return XDP_DROP, f, None
        hlen = (ip[0] & 15) * 4
        tot = struct.unpack("!H", ip[2:4])[0]
        if tot < 20 or tot > len(ip) or tot < hlen or not ip4_csum_ok(ip[:hlen]):
            return XDP_DROP, f, None
        src, dst = struct.unpack("!II", ip[12:20])
        if dst >> 28 == 0xE or dst == M32:
            return XDP_PASS, f, None
        # martians as Linux finds them; an own address as source is one too
        if src >> 28 == 0xE or src in (0, M32) or src >> 24 == 127 or dst == 0 or dst >> 24 == 127:
            return XDP_DROP, f, None
        own = self._group(4, src)
        if own is not None and own.kind == KIND_LOCAL:
            return XDP_DROP, f, None
        if hlen > 20:                         # options: the kernel's, errors included
            return XDP_PASS, f, None
        ip = ip[:tot]                         # trailing bytes are not part of the packet
        f = f[:14 + tot]
        proto, ttl = ip[9], ip[8]
        g = self._group(4, dst)
        if g is None or g.kind == KIND_NONE:
            return self._err4(f, inp, 3, 0)
        if g.kind == KIND_LOCAL:
            return self._echo4(f, inp)
        if g.kind == KIND_KERNEL:
            return XDP_PASS, f, None
        if g.kind == KIND_BLACKHOLE:
            return XDP_DROP, f, None
        if g.kind == KIND_UNREACHABLE:
            return self._err4(f, inp, 3, 13 if self.unreach_admin else 1)
        if ttl <= 1:
            return self._err4(f, inp, 11, 0)
        h = 0
        if len(g.hops) > 1:
            sport = dport = 0
            frag = struct.unpack("!H", ip[6:8])[0] & 0x3fff
            if proto in (6, 17) and not frag and len(ip) >= 24:
                sport, dport = struct.unpack("!HH", ip[20:24])
            h = flow_hash(src, dst, sport, dport, proto, self.seed)
        port, gw = g.hops[ecmp_index(h, len(g.hops))]
        out = self.ports[port]
        if out.mtu and tot > out.mtu:
            # DF set: Fragmentation Needed, next-hop MTU in the low 16 bits (RFC 1191 4);
            # otherwise the kernel fragments
            if not struct.unpack("!H", ip[6:8])[0] & 0x4000:
                return XDP_PASS, f, None
            return self._err4(f, inp, 3, 4, out.mtu & 0xffff)
        mac = self.neigh.get((port, 4, dst if g.kind == KIND_CONNECTED else gw))
        if mac is None:
            return XDP_PASS, f, None
        if port == inp.idx and self._reverse(4, src, f[6:12], inp) == "self":
            return XDP_DROP, f, None          # hairpin: Linux checks the source in full
        hdr = bytearray(ip[:20])
        hdr[8] -= 1
        hdr[10:12] = b"\0\0"
        hdr[10:12] = struct.pack("!H", csum(bytes(hdr)))
        return XDP_REDIRECT, mac + out.mac + f[12:14] + bytes(hdr) + ip[20:], port

    def _err4(self, f: bytes, inp: PortM, typ: int, code: int, rest: int = 0):
        ip = f[14:]
        frag = struct.unpack("!H", ip[6:8])[0] & 0x1fff
        hlen = (ip[0] & 15) * 4
        # no error about a non-first fragment, an ICMP error or a type Linux does not know
        if frag or (ip[9] == 1 and (len(ip) < hlen + 1 or ip[hlen] in (3, 4, 5, 11, 12) or ip[hlen] > 18)):
            return XDP_DROP, f, None
        src = struct.unpack("!I", ip[12:16])[0]
        other = self._answer(f, inp, 4, src)
        if other is not None:
            return other
        if not self.icmp_errors or not inp.ip4:
            return XDP_DROP, f, None
        tot = struct.unpack("!H", ip[2:4])[0]
        quote = ip[:min(tot, V4_QUOTE_MAX)]   # options included, Ethernet padding never
        icmp = bytearray(struct.pack("!BBHI", typ, code, 0, rest) + quote)
        icmp[2:4] = struct.pack("!H", csum(bytes(icmp)))
        tos = (ip[1] & 0x1E) | 0xC0           # the packet's TOS bits, internetwork control
        hdr = bytearray(struct.pack("!BBHHHBBHII", 0x45, tos, 20 + len(icmp), 0, 0, 64, 1, 0,
                                    inp.ip4, src))
        hdr[10:12] = struct.pack("!H", csum(bytes(hdr)))
        return XDP_TX, f[6:12] + inp.mac + b"\x08\x00" + bytes(hdr) + bytes(icmp), None

    def _echo4(self, f: bytes, inp: PortM):
        ip = f[14:]
        frag = struct.unpack("!H", ip[6:8])[0] & 0x3fff
        if not self.echo or ip[9] != 1 or frag or len(ip) < 28 or ip[20] != 8 or ip[21] != 0 \
                or len(ip) - 20 > SUM_MAX or csum(ip[20:]) != 0:
            return XDP_PASS, f, None
        other = self._answer(f, inp, 4, struct.unpack("!I", ip[12:16])[0])
        if other is not None:
            return other
        # a fresh header as Linux's: TOS kept, ID 0, no flags, TTL 64
        hdr = bytearray(ip[:20])
        hdr[12:16], hdr[16:20] = ip[16:20], ip[12:16]
        hdr[4:8] = b"\0\0\0\0"
        hdr[8] = 64
        hdr[10:12] = b"\0\0"
        hdr[10:12] = struct.pack("!H", csum(bytes(hdr)))
        icmp = bytearray(ip[20:])
        icmp[0] = 0
        icmp[2:4] = b"\0\0"
        icmp[2:4] = struct.pack("!H", csum(bytes(icmp)))
        return XDP_TX, f[6:12] + f[0:6] + f[12:14] + bytes(hdr) + bytes(icmp), None

    # -- IPv6 --
    def _v6(self, f: bytes, inp: PortM):
        ip = f[14:]
        if len(ip) < 40:
            return XDP_DROP, f, None
        if ip[0] >> 4 != 6:
            return XDP_DROP, f, None
        plen = struct.unpack("!H", ip[4:6])[0]
        if 40 + plen > len(ip):
            return XDP_DROP, f, None
        src, dst = int.from_bytes(ip[8:24], "big"), int.from_bytes(ip[24:40], "big")
        if dst >> 120 == 0xFF or dst >> 118 == 0x3FA:
            return XDP_PASS, f, None
        if src >> 120 == 0xFF or 1 in (src, dst):
            return XDP_DROP, f, None
        # the kernel's: unspecified / link-local sources, the unspecified destination, hop-by-hop
        # options, a zero payload length
        if src == 0 or src >> 118 == 0x3FA or dst == 0 or ip[6] == 0 or plen == 0:
            return XDP_PASS, f, None
        ip = ip[:40 + plen]
        f = f[:14 + 40 + plen]
        nh, hl = ip[6], ip[7]
        g = self._group(6, dst)
        if g is None or g.kind == KIND_NONE:
            return self._err6(f, inp, 1, 0)
        if g.kind == KIND_LOCAL:
            return self._echo6(f, inp)
        if g.kind == KIND_KERNEL:
            return XDP_PASS, f, None
        if g.kind == KIND_BLACKHOLE:
            return XDP_DROP, f, None
        if g.kind == KIND_UNREACHABLE:
            return self._err6(f, inp, 1, 1 if self.unreach_admin else 0)
        if hl <= 1:
            return self._err6(f, inp, 3, 0)
        h = 0
        if len(g.hops) > 1:
            sport = dport = 0
            if nh in (6, 17) and len(ip) >= 44:
                sport, dport = struct.unpack("!HH", ip[40:44])
            h = flow_hash(fold6(src), fold6(dst), sport, dport, nh, self.seed)
        port, gw = g.hops[ecmp_index(h, len(g.hops))]
        out = self.ports[port]
        if out.mtu and 40 + plen > out.mtu:
            return self._err6(f, inp, 2, 0, out.mtu)   # Packet Too Big (RFC 4443 3.2)
        mac = self.neigh.get((port, 6, dst if g.kind == KIND_CONNECTED else gw))
        if mac is None:
            return XDP_PASS, f, None
        hdr = bytearray(ip[:40])
        hdr[7] -= 1
        return XDP_REDIRECT, mac + out.mac + f[12:14] + bytes(hdr) + ip[40:], port

    @staticmethod
    def _ineligible(ip: bytes) -> bool | None:
        """RFC 4443 2.4(e) as Linux's is_ineligible(): True = an ICMPv6 error (or a cut-off
        ICMPv6 header outside a fragment) past the extension headers; None = too deep to walk."""
        nh, off, frag = ip[6], 40, 0
        for _ in range(V6_EXT_WALK):
            if nh in (0, 43, 44, 51, 60):
                if len(ip) < off + 4:
                    return False
                if nh == 44:
                    frag = struct.unpack("!H", ip[off + 2:off + 4])[0]
                    if frag & ~7:
                        return False
                    nh, off = ip[off], off + 8
                else:
                    nh, off = ip[off], off + ((ip[off + 1] + 2) * 4 if nh == 51 else (ip[off + 1] + 1) * 8)
                continue
            if nh == 58:
                return frag == 0 if len(ip) <= off else ip[off] < 128
            return False
        return None

    def _err6(self, f: bytes, inp: PortM, typ: int, code: int, rest: int = 0):
        ip = f[14:]
        inel = self._ineligible(ip)
        if inel is None:
            return XDP_PASS, f, None
        if inel:
            return XDP_DROP, f, None
        other = self._answer(f, inp, 6, int.from_bytes(ip[8:24], "big"))
        if other is not None:
            return other
        if not self.icmp_errors or not inp.ip6:
            return XDP_DROP, f, None
        plen = struct.unpack("!H", ip[4:6])[0]
        quote = ip[:min(40 + plen, V6_QUOTE_MAX)]
        src = ip[8:24]
        me = inp.ip6.to_bytes(16, "big")
        body = bytearray(struct.pack("!BBHI", typ, code, 0, rest) + quote)
        pseudo = me + src + struct.pack("!IxxxB", len(body), 58)
        body[2:4] = struct.pack("!H", csum(pseudo + bytes(body)))
        hdr = struct.pack("!IHBB", 0x60000000, len(body), 58, 64) + me + src
        return XDP_TX, f[6:12] + inp.mac + b"\x86\xdd" + hdr + bytes(body), None

    def _echo6(self, f: bytes, inp: PortM):
        ip = f[14:]
        if not self.echo or ip[6] != 58 or len(ip) < 48 or ip[40] != 128 or ip[41] != 0 \
                or len(ip) - 40 > SUM_MAX:
            return XDP_PASS, f, None
        src, dst = ip[8:24], ip[24:40]
        body = bytearray(ip[40:])
        if csum(src + dst + struct.pack("!IxxxB", len(body), 58) + bytes(body)) != 0:
            return XDP_PASS, f, None
        other = self._answer(f, inp, 6, int.from_bytes(src, "big"))
        if other is not None:
            return other
        body[0] = 129
        body[2:4] = b"\0\0"
        pseudo = dst + src + struct.pack("!IxxxB", len(body), 58)
        body[2:4] = struct.pack("!H", csum(pseudo + bytes(body)))
        hdr = ip[:7] + b"\x40" + dst + src
        return XDP_TX, f[6:12] + f[0:6] + f[12:14] + hdr + bytes(body), None


def v4(s: str) -> int:
    return int(ipaddress.IPv4Address(s))


def v6(s: str) -> int:
    return int(ipaddress.IPv6Address(s))
