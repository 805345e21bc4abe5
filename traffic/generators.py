"""Traffic sets built on traffic.packets: fixed sizes, IMIX, ARP/ND, and a malformed set.

    fixed_size(128, 1000, flows=fs)       # 1000 frames of exactly 128 bytes over a flow set
    imix(1200)                            # simple IMIX 7:4:1 of 60/590/1514 bytes, exact quotas
    arp_nd_set()                          # ARP request/reply/gratuitous, ND NS/NA, RS/RA
    malformed_set()                       # list[Malformed]: what is broken, and what a strict
                                          # parser (xdp_progs/include/parse.h) must say about it

Sizes follow traffic.packets: the frame as XDP sees it, Ethernet header to the last byte, no FCS
(a "64-byte frame" on the wire is 60 here). Every generator is deterministic for its arguments.

## The veth native-XDP frame-size limit (measured on this host: kernel 6.18, 4 KiB pages)
A native XDP program that is not frags-aware (SEC("xdp"), not "xdp.frags") sees at most
VETH_XDP_MAX_FRAME = 3520 bytes of a frame: veth copies each skb into one page-pool page with
XDP_PACKET_HEADROOM (256) in front and struct skb_shared_info (320 bytes aligned) at the end,
4096 - 256 - 320 = 3520. Because of that, attaching such a program caps the *peer's* MTU at
3520 - 14 = VETH_XDP_MAX_MTU (3506; IFLA_MAX_MTU of the peer drops from 65535 to 3506) and
attaching while the peer's MTU is larger fails with ERANGE ("Peer MTU is too large to set XDP").
What happens to larger frames (measure_veth_xdp_limit() re-measures all of it):
- untagged frames of MTU + 14 <= 3520 bytes reach the program whole;
- a sender refuses frames above MTU + 14 (+ 4 when the frame carries a VLAN tag) with EMSGSIZE;
  a frame above the *receiving* veth's MTU + 18, tagged or not, is dropped before XDP (the sender
  sees ENOBUFS): both ends' MTUs must be raised for jumbo frames;
- a VLAN-tagged frame of 3521..3524 bytes (MTU + 18 is allowed for tagged frames) is delivered
  as a multi-buffer xdp_buff: the program sees only the first 3520 bytes (data_end - data = 3520),
  the tail lives in a fragment it cannot read, so the shared parser reports it TRUNCATED (IPv4
  total length past the visible data) and counts 3520 bytes;
- BPF_PROG_TEST_RUN behaves the same way: any frame above 3520 bytes is split into 3520 linear
  bytes plus fragments, also for programs that are not frags-aware.
A frags-aware program (SEC("xdp.frags"), measured with a probe in tests/traffic) lifts the peer's
max MTU to 3506 + MAX_SKB_FRAGS (17) * 4096 = 73138; it still sees 3520 linear bytes
(data_end - data) and reaches the rest only through bpf_xdp_get_buff_len/bpf_xdp_load_bytes.
The NFs parse headers with direct packet access and are not frags-aware, so the cap is
documented instead: jumbo frames on veth need an MTU <= 3506, and oversized frames are counted as
truncated, never forwarded half-read. The malformed set's "oversize" entries exercise exactly that.
"""
from __future__ import annotations

import ipaddress
import random
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_NOP
from scapy.layers.inet6 import (ICMPv6EchoRequest, ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6ND_RA,
                                ICMPv6ND_RS, ICMPv6NDOptPrefixInfo, ICMPv6NDOptSrcLLAddr,
                                ICMPv6NDOptDstLLAddr, IPv6, IPv6ExtHdrDestOpt,
                                IPv6ExtHdrFragment, IPv6ExtHdrHopByHop)
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import Raw

from traffic import packets
from traffic.flows import Flow, FlowSet

ETH_MIN_FRAME = 60          # shortest frame a NIC puts on the wire (without FCS)
# The cap on frames a non-frags native XDP program on veth sees whole (module doc).
PAGE_SIZE = 4096
XDP_PACKET_HEADROOM = 256
SKB_SHARED_INFO_ALIGNED = 320   # SKB_DATA_ALIGN(sizeof(struct skb_shared_info)) on x86-64
VETH_XDP_MAX_FRAME = PAGE_SIZE - XDP_PACKET_HEADROOM - SKB_SHARED_INFO_ALIGNED   # 3520
VETH_XDP_MAX_MTU = VETH_XDP_MAX_FRAME - 14                                      # 3506
MAX_SKB_FRAGS = 17
VETH_XDP_FRAGS_MAX_MTU = VETH_XDP_MAX_MTU + MAX_SKB_FRAGS * PAGE_SIZE             # 73138

# (frame size, weight). Simple IMIX 7:4:1 (64/594/1518 on the wire with FCS, as TRex's imix
# profile writes it without FCS: 60/590/1514).
IMIX_SIMPLE: tuple[tuple[int, int], ...] = ((60, 7), (590, 4), (1514, 1))


# ---- fixed sizes and IMIX -------------------------------------------------------------------
def _flow_cycle(flows: FlowSet | Sequence[Flow] | None, n: int) -> list[Flow | None]:
    if flows is None:
        return [None] * n
    if isinstance(flows, FlowSet):
        seq = [flows.flows[i] for i in flows.sequence]
    else:
        seq = list(flows)
    if not seq:
        raise ValueError("flows is empty")
    return [seq[i % len(seq)] for i in range(n)]


class _Builder:
    """Frames for (flow or None, size, index), built once per (flow, size) with scapy.

    Without flows the frames differ only in the IPv4 ID (UDP/TCP) or the ICMP sequence number:
    IPv4 UDP/TCP frames are patched from one template per size (the ID is not covered by the
    L4 checksum's pseudo header, so only the IP header checksum changes). The patched bytes are
    what scapy would build (tests compare them)."""

    def __init__(self, l3: str, l4: str | None, kw: dict):
        self.l3, self.l4, self.kw = l3, l4, kw
        self.cache: dict = {}

    def __call__(self, flow: Flow | None, size: int, i: int) -> bytes:
        if flow is not None:
            key = (flow, size)
            if key not in self.cache:
                self.cache[key] = bytes(packets.from_flow(flow, size=size, **self.kw))
            return self.cache[key]
        if self.l3 == "ipv4" and self.l4 in ("udp", "tcp", None) and "ip_id" not in self.kw:
            if size not in self.cache:
                self.cache[size] = packets.frame(self.l3, self.l4, size=size, ip_id=0, **self.kw)
            return _with_ip_id(self.cache[size], i & 0xFFFF)
        extra = {"icmp_seq": i & 0xFFFF} if self.l4 in ("icmp", "icmpv6") else {}
        if self.l3 == "ipv4":
            extra["ip_id"] = i & 0xFFFF
        return packets.frame(self.l3, self.l4, size=size, **extra, **self.kw)


def _with_ip_id(frame: bytes, ip_id: int) -> bytes:
    """The IPv4 frame (L3 after the VLAN tags) with another ID and the header checksum fixed."""
    off, et = 14, struct.unpack_from("!H", frame, 12)[0]
    while et in (0x8100, 0x88A8):
        et, off = struct.unpack_from("!H", frame, off + 2)[0], off + 4
    b = bytearray(frame)
    b[off + 4:off + 6] = struct.pack("!H", ip_id)
    b[off + 10:off + 12] = b"\0\0"
    hl = (b[off] & 15) * 4
    c = sum(struct.unpack(f"!{hl // 2}H", bytes(b[off:off + hl])))
    while c >> 16:
        c = (c & 0xFFFF) + (c >> 16)
    b[off + 10:off + 12] = struct.pack("!H", ~c & 0xFFFF)
    return bytes(b)


def _check_count(n) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"frame count must be a non-negative int, not {n!r}")


def fixed_size(size: int, n: int = 1, *, flows: FlowSet | Sequence[Flow] | None = None,
               l3: str = "ipv4", l4: str | None = "udp", **build_kw) -> list[bytes]:
    """n frames of exactly `size` bytes. With `flows`, frame i is the i-th packet of the flow set
    (its sequence, cycled) or of the flow list (cycled); l3/l4 then come from each flow.
    Without flows all frames are one flow, numbered by the IPv4 ID / ICMP sequence (IPv6 UDP/TCP
    frames have no such field and are identical)."""
    _check_count(n)
    if not isinstance(size, int) or size < 14:
        raise ValueError(f"frame size must be an int >= 14, not {size!r}")
    one = _Builder(l3, l4, build_kw)
    return [one(f, size, i) for i, f in enumerate(_flow_cycle(flows, n))]


def mix_quota(n: int, mix: Sequence[tuple[int, int | float]]) -> list[int]:
    """How many of n frames each class of `mix` gets: the exact proportion, rounded by largest
    remainder (ties to the earlier class), so the counts sum to n and differ from n*w/W by < 1."""
    _check_count(n)
    if not mix:
        raise ValueError("empty mix")
    total = 0.0
    for size, w in mix:
        if not isinstance(size, int) or size < 14:
            raise ValueError(f"mix size must be an int >= 14, not {size!r}")
        if not w > 0:
            raise ValueError(f"mix weight must be positive, not {w!r} (size {size})")
        total += w
    exp = [n * w / total for _, w in mix]
    quota = [int(e) for e in exp]
    for i in sorted(range(len(mix)), key=lambda i: (-(exp[i] - quota[i]), i))[:n - sum(quota)]:
        quota[i] += 1
    return quota


def imix(n: int, *, mix: Sequence[tuple[int, int | float]] = IMIX_SIMPLE,
         flows: FlowSet | Sequence[Flow] | None = None, l3: str = "ipv4",
         l4: str | None = "udp", seed: int = 0, **build_kw) -> list[bytes]:
    """n frames whose sizes follow `mix` exactly (mix_quota), in an order shuffled by `seed`.

    IPv6 UDP needs 62 bytes of headers: a 60-byte class with l3="ipv6" (or IPv6 flows) raises
    ValueError instead of silently growing the frame."""
    quota = mix_quota(n, mix)
    sizes = [size for (size, _), q in zip(mix, quota) for _ in range(q)]
    random.Random(seed).shuffle(sizes)
    one = _Builder(l3, l4, build_kw)
    return [one(f, s, i) for i, (s, f) in enumerate(zip(sizes, _flow_cycle(flows, n)))]


# ---- ARP and IPv6 neighbour discovery -------------------------------------------------------
def _pad(p, pad: bool) -> bytes:
    b = bytes(p)
    return b + bytes(ETH_MIN_FRAME - len(b)) if pad and len(b) < ETH_MIN_FRAME else b


def _l2(smac: str, dmac: str, vlans: Sequence[int], ethertype: int):
    if len(vlans) > 2:
        raise ValueError("at most two VLAN tags (use malformed_set for deeper stacks)")
    tags = list(vlans)
    p = Ether(src=smac, dst=dmac, type=(0x88A8 if len(tags) == 2 else 0x8100) if tags else ethertype)
    for i, vid in enumerate(tags):
        p = p / Dot1Q(vlan=vid, type=0x8100 if i + 1 < len(tags) else ethertype)
    return p


def arp_request(smac: str, sip: str, tip: str, *, vlans: Sequence[int] = (),
                pad: bool = True) -> bytes:
    """Who-has tip? tell sip: broadcast, target MAC zero."""
    return _pad(_l2(smac, "ff:ff:ff:ff:ff:ff", vlans, 0x0806)
                / ARP(op=1, hwsrc=smac, psrc=sip, hwdst="00:00:00:00:00:00", pdst=tip), pad)


def arp_reply(smac: str, sip: str, dmac: str, dip: str, *, vlans: Sequence[int] = (),
              pad: bool = True) -> bytes:
    """sip is-at smac, unicast to dmac/dip."""
    return _pad(_l2(smac, dmac, vlans, 0x0806)
                / ARP(op=2, hwsrc=smac, psrc=sip, hwdst=dmac, pdst=dip), pad)


def gratuitous_arp(mac: str, ip: str, *, vlans: Sequence[int] = (), pad: bool = True) -> bytes:
    """An ARP request for one's own address (sender IP == target IP), broadcast."""
    return arp_request(mac, ip, ip, vlans=vlans, pad=pad)


def solicited_node(addr: str) -> str:
    """ff02::1:ffXX:XXXX for an IPv6 address (RFC 4291 2.7.1)."""
    low = int(ipaddress.IPv6Address(addr)) & 0xFFFFFF
    return str(ipaddress.IPv6Address((0xFF02 << 112) | (1 << 32) | (0xFF << 24) | low))


def multicast_mac(addr6: str) -> str:
    """33:33 + the low 32 bits of an IPv6 multicast address (RFC 2464 7)."""
    low = int(ipaddress.IPv6Address(addr6)) & 0xFFFFFFFF
    return "33:33:" + ":".join(f"{(low >> s) & 0xFF:02x}" for s in (24, 16, 8, 0))


def nd_solicit(smac: str, src: str, target: str, *, vlans: Sequence[int] = ()) -> bytes:
    """Neighbour solicitation for `target` to its solicited-node group, hop limit 255, with the
    source link-layer address option (RFC 4861 4.3)."""
    dst = solicited_node(target)
    return bytes(_l2(smac, multicast_mac(dst), vlans, 0x86DD) / IPv6(src=src, dst=dst, hlim=255)
                 / ICMPv6ND_NS(tgt=target) / ICMPv6NDOptSrcLLAddr(lladdr=smac))


def nd_advert(smac: str, src: str, dmac: str, dst: str, *, target: str | None = None,
              router: bool = False, solicited: bool = True, override: bool = True,
              vlans: Sequence[int] = ()) -> bytes:
    """Neighbour advertisement of `target` (default: src) with the target link-layer option."""
    return bytes(_l2(smac, dmac, vlans, 0x86DD) / IPv6(src=src, dst=dst, hlim=255)
                 / ICMPv6ND_NA(tgt=target or src, R=int(router), S=int(solicited), O=int(override))
                 / ICMPv6NDOptDstLLAddr(lladdr=smac))


def router_solicit(smac: str, src: str, *, vlans: Sequence[int] = ()) -> bytes:
    return bytes(_l2(smac, multicast_mac("ff02::2"), vlans, 0x86DD)
                 / IPv6(src=src, dst="ff02::2", hlim=255) / ICMPv6ND_RS()
                 / ICMPv6NDOptSrcLLAddr(lladdr=smac))


def router_advert(smac: str, src: str, prefix: str = "fd00::/64", *,
                  vlans: Sequence[int] = ()) -> bytes:
    net = ipaddress.IPv6Network(prefix)
    return bytes(_l2(smac, multicast_mac("ff02::1"), vlans, 0x86DD)
                 / IPv6(src=src, dst="ff02::1", hlim=255) / ICMPv6ND_RA(routerlifetime=1800)
                 / ICMPv6NDOptSrcLLAddr(lladdr=smac)
                 / ICMPv6NDOptPrefixInfo(prefix=str(net.network_address), prefixlen=net.prefixlen))


def arp_nd_set(mac1: str = "02:00:00:00:00:01", mac2: str = "02:00:00:00:00:02",
               ip1: str = "10.0.0.1", ip2: str = "10.0.0.2", ip6_1: str = "fd00::1",
               ip6_2: str = "fd00::2", ll1: str = "fe80::1", vlans: Sequence[int] = ()
               ) -> dict[str, bytes]:
    """One of each resolution frame between two hosts, by name."""
    return {
        "arp_request": arp_request(mac1, ip1, ip2, vlans=vlans),
        "arp_reply": arp_reply(mac2, ip2, mac1, ip1, vlans=vlans),
        "gratuitous_arp": gratuitous_arp(mac1, ip1, vlans=vlans),
        "nd_solicit": nd_solicit(mac1, ip6_1, ip6_2, vlans=vlans),
        "nd_advert": nd_advert(mac2, ip6_2, mac1, ip6_1, vlans=vlans),
        "router_solicit": router_solicit(mac1, ll1, vlans=vlans),
        "router_advert": router_advert(mac2, "fe80::2", vlans=vlans),
    }


# ---- the malformed set ----------------------------------------------------------------------
@dataclass(frozen=True)
class Malformed:
    """One deliberately broken (or tricky) frame.

    kind: "truncated" (the frame or a length field ends inside a header), "bad_field" (a field
    holds an impossible value), "too_deep" (more nesting than a bounded parser walks),
    "fragment" (a well-formed IP fragment: no L4 header, or only part of the datagram),
    "oversize" (above VETH_XDP_MAX_FRAME; well-formed, but an XDP program that is not
    frags-aware sees only the first 3520 bytes).
    layer: "l2" | "l3" | "l4" — where the defect is.
    check: the broken field, named for an independent check (see tests/traffic).
    reason: what parse.h (nf.datapath.Reason name, lower case) reports for the frame as an XDP
    program sees it: "truncated", "malformed", "too_deep", or None (parses fine).
    xdp_ok: False for frames shorter than 14 bytes, which XDP test_run and AF_PACKET refuse.
    """
    name: str
    frame: bytes = field(repr=False)
    kind: str
    layer: str
    check: str
    reason: str | None
    note: str = ""

    @property
    def xdp_ok(self) -> bool:
        return len(self.frame) >= 14


MACS = dict(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
_V4 = dict(src="10.0.0.1", dst="10.0.0.2")
_V6 = dict(src="fd00::1", dst="fd00::2")


def _set16(b: bytes, off: int, v: int) -> bytes:
    return b[:off] + struct.pack("!H", v) + b[off + 2:]


def _ipv4_fix_csum(b: bytes, off: int) -> bytes:
    """Recompute the IPv4 header checksum at `off` (IHL from the header, clamped to the frame),
    so a broken length field is the only defect."""
    hl = max(20, (b[off] & 15) * 4)
    hdr = bytearray(b[off:off + hl])
    hdr[10:12] = b"\0\0"
    if len(hdr) % 2:
        hdr += b"\0"
    s = sum(struct.unpack(f"!{len(hdr) // 2}H", bytes(hdr)))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return _set16(b, off + 10, ~s & 0xFFFF)


def malformed_set(*, include_short: bool = True, include_oversize: bool = True,
                  smac: str = MACS["src"], dmac: str = MACS["dst"]) -> list[Malformed]:
    """The malformed set (see Malformed). Names are unique; order is fixed.

    include_short=False leaves out the frames shorter than 14 bytes (nothing can send them),
    include_oversize=False the frames above VETH_XDP_MAX_FRAME."""
    E = Ether(src=smac, dst=dmac)
    out: list[Malformed] = []

    def add(name, frame, kind, layer, check, reason, note=""):
        out.append(Malformed(name, bytes(frame), kind, layer, check, reason, note))

    u4 = bytes(E / IP(**_V4) / UDP(sport=1000, dport=2000) / Raw(b"x" * 18))
    t4 = bytes(E / IP(**_V4) / TCP(sport=1000, dport=80, flags="S"))
    i4 = bytes(E / IP(**_V4) / ICMP() / Raw(b"ping"))
    u6 = bytes(E / IPv6(**_V6) / UDP(sport=1000, dport=2000) / Raw(b"x" * 8))
    t6 = bytes(E / IPv6(**_V6) / TCP(sport=1000, dport=443))
    i6 = bytes(E / IPv6(**_V6) / ICMPv6EchoRequest())
    v4 = bytes(E / Dot1Q(vlan=10) / IP(**_V4) / UDP(sport=1, dport=2))
    qq = bytes(Ether(src=smac, dst=dmac, type=0x88A8) / Dot1Q(vlan=20) / Dot1Q(vlan=10)
               / IP(**_V4) / UDP(sport=1, dport=2))

    # -- truncated: the frame ends inside a header (length fields still claim the rest) --
    if include_short:
        add("eth.cut6", u4[:6], "truncated", "l2", "eth.len", "truncated",
            "shorter than an Ethernet header: refused by test_run and AF_PACKET")
        add("eth.cut13", u4[:13], "truncated", "l2", "eth.len", "truncated",
            "one byte short of an Ethernet header")
    add("vlan.cut_tci", v4[:16], "truncated", "l2", "vlan.cut", "truncated")
    add("vlan.cut_inner", qq[:20], "truncated", "l2", "vlan.cut", "truncated",
        "outer 802.1ad tag whole, inner 802.1Q tag cut")
    add("ipv4.cut_header", u4[:14 + 12], "truncated", "l3", "ipv4.cut", "truncated")
    add("ipv4.ethertype_only", u4[:14], "truncated", "l3", "ipv4.cut", "truncated",
        "EtherType IPv4 and nothing after it")
    add("ipv4.cut_options", bytes(E / IP(**_V4, options=[IPOption_NOP()] * 20) / UDP())[:14 + 30],
        "truncated", "l3", "ipv4.cut", "truncated", "IHL 10, frame ends after 30 header bytes")
    add("ipv4_vlan.cut_header", v4[:18 + 10], "truncated", "l3", "ipv4.cut", "truncated")
    add("ipv6.cut_header", u6[:14 + 30], "truncated", "l3", "ipv6.cut", "truncated")
    add("ipv6.cut_hbh", bytes(E / IPv6(**_V6) / IPv6ExtHdrHopByHop() / UDP())[:14 + 40 + 1],
        "truncated", "l3", "ipv6.cut", "truncated", "hop-by-hop header cut after 1 byte")
    add("ipv6.cut_frag_hdr", bytes(E / IPv6(**_V6) / IPv6ExtHdrFragment(m=1) / UDP())[:14 + 40 + 4],
        "truncated", "l3", "ipv6.cut", "truncated", "fragment header cut after 4 of 8 bytes")
    for nm, fr, l3o, l3n in (("ipv4.udp", u4, 34, 8), ("ipv4.tcp", t4, 34, 20),
                             ("ipv4.icmp", i4, 34, 8), ("ipv6.udp", u6, 54, 8),
                             ("ipv6.tcp", t6, 54, 20), ("ipv6.icmpv6", i6, 54, 8)):
        add(f"{nm}.cut_l4", fr[:l3o + l3n // 2], "truncated", "l4",
            f"{nm.split('.')[0]}.cut", "truncated",
            "frame cut inside the L4 header; the IP length still claims the rest")
    # -- truncated L4 inside a consistent IP packet (lengths match the frame) --
    add("ipv4.tcp.short", E / IP(**_V4, proto=6) / Raw(b"\0" * 10), "truncated", "l4",
        "l4.short", "truncated", "IP packet holds 10 of TCP's 20 header bytes")
    add("ipv4.udp.short", E / IP(**_V4, proto=17) / Raw(b"\0" * 4), "truncated", "l4",
        "l4.short", "truncated")
    add("ipv4.icmp.short", E / IP(**_V4, proto=1) / Raw(b"\x08\0\0\0"), "truncated", "l4",
        "l4.short", "truncated")
    add("ipv6.tcp.short", E / IPv6(**_V6, nh=6) / Raw(b"\0" * 12), "truncated", "l4",
        "l4.short", "truncated")
    add("ipv6.udp.short", E / IPv6(**_V6, nh=17) / Raw(b"\0" * 6), "truncated", "l4",
        "l4.short", "truncated")
    add("ipv6.icmpv6.short", E / IPv6(**_V6, nh=58) / Raw(b"\x80\0"), "truncated", "l4",
        "l4.short", "truncated")
    add("ipv4.tcp.options_past_packet", E / IP(**_V4) / TCP(dataofs=15), "truncated", "l4",
        "tcp.doff", "truncated", "data offset 15 (60 bytes) in a 20-byte TCP segment")

    # -- bad IHL --
    for ihl in (0, 1, 4):
        b = bytes(E / IP(**_V4, ihl=ihl) / UDP(sport=1, dport=2))
        add(f"ipv4.ihl{ihl}", b, "bad_field", "l3", "ipv4.ihl", "malformed", "IHL below 5")
    add("ipv4.ihl15_short_packet", E / IP(**_V4, ihl=15, len=48) / Raw(b"\0" * 28), "bad_field",
        "l3", "ipv4.ihl", "malformed", "IHL 15 (60 bytes) but total length 48")
    add("ipv4.ihl15_cut", bytes(E / IP(**_V4, options=[IPOption_NOP()] * 40) / UDP())[:14 + 50],
        "truncated", "l3", "ipv4.cut", "truncated", "IHL 15, the frame ends 50 bytes into the header")

    # -- bad IPv4 total length / IPv6 payload length --
    add("ipv4.totlen0", _ipv4_fix_csum(_set16(u4, 16, 0), 14), "bad_field", "l3",
        "ipv4.tot_len", "malformed", "total length 0")
    add("ipv4.totlen19", _ipv4_fix_csum(_set16(u4, 16, 19), 14), "bad_field", "l3",
        "ipv4.tot_len", "malformed", "total length below the 20-byte header")
    add("ipv4.totlen_lt_ihl", bytes(E / IP(**_V4, options=[IPOption_NOP()] * 8, len=24) / UDP()),
        "bad_field", "l3", "ipv4.tot_len", "malformed", "IHL 7 (28 bytes), total length 24")
    add("ipv4.totlen_past_frame", _ipv4_fix_csum(_set16(u4, 16, len(u4) - 14 + 1), 14),
        "bad_field", "l3", "ipv4.tot_len", "truncated", "total length one byte past the frame")
    add("ipv4.totlen_max", _ipv4_fix_csum(_set16(u4, 16, 0xFFFF), 14), "bad_field", "l3",
        "ipv4.tot_len", "truncated", "total length 65535 in a short frame")
    add("ipv4.totlen_short_of_udp", _ipv4_fix_csum(_set16(u4, 16, 20 + 8 + 4), 14), "bad_field",
        "l4", "ipv4.tot_len", "truncated",
        "total length ends inside the UDP payload that the UDP length claims")
    add("ipv6.plen_past_frame", _set16(u6, 18, len(u6) - 54 + 1), "bad_field", "l3",
        "ipv6.plen", "truncated", "payload length one byte past the frame")
    add("ipv6.plen_max", _set16(u6, 18, 0xFFFF), "bad_field", "l3", "ipv6.plen", "truncated")
    add("ipv6.plen0_udp", _set16(u6, 18, 0), "bad_field", "l4", "ipv6.plen", "truncated",
        "payload length 0 (no jumbogram option) with a UDP header behind it")
    add("ipv6.plen4_udp", _set16(u6, 18, 4), "bad_field", "l4", "ipv6.plen", "truncated",
        "payload length shorter than the UDP header")
    # -- other impossible fields --
    add("ipv4.version6", bytes(E / IP(**_V4, version=6) / UDP()), "bad_field", "l3",
        "ipv4.version", "malformed", "IPv4 EtherType, version 6")
    add("ipv6.version4", bytes(E / IPv6(**_V6, version=4) / UDP()), "bad_field", "l3",
        "ipv6.version", "malformed", "IPv6 EtherType, version 4")
    add("ipv4.udp.len7", bytes(E / IP(**_V4) / UDP(len=7)), "bad_field", "l4", "udp.len",
        "malformed", "UDP length below its 8-byte header")
    add("ipv4.udp.len_past_packet", bytes(E / IP(**_V4) / UDP(len=200)), "bad_field", "l4",
        "udp.len", "truncated")
    add("ipv4.tcp.doff4", bytes(E / IP(**_V4) / TCP(dataofs=4)), "bad_field", "l4", "tcp.doff",
        "malformed", "TCP data offset below 5")
    add("ipv6.hbh_not_first", bytes(E / IPv6(**_V6) / IPv6ExtHdrDestOpt() / IPv6ExtHdrHopByHop()
                                    / UDP()), "bad_field", "l3", "ipv6.hbh_order", "malformed",
        "hop-by-hop options after another extension header (RFC 8200 4.3)")

    # -- too deep: VLAN stacks deeper than 2, IPv6 extension chains longer than 6 --
    for depth in (3, 4, 8):
        p = Ether(src=smac, dst=dmac, type=0x88A8)
        for d in range(depth):
            p = p / Dot1Q(vlan=100 + d, type=0x8100 if d + 1 < depth else 0x0800)
        add(f"vlan.depth{depth}", p / IP(**_V4) / UDP(sport=1, dport=2), "too_deep", "l2",
            "vlan.depth", "too_deep", f"{depth} stacked VLAN tags (the parser walks 2)")
    p = Ether(src=smac, dst=dmac, type=0x8100)
    for d in range(3):
        p = p / Dot1Q(vlan=7, type=0x8100 if d < 2 else 0x86DD)
    add("vlan.depth3_ipv6", p / IPv6(**_V6) / UDP(), "too_deep", "l2", "vlan.depth", "too_deep",
        "three 802.1Q (0x8100) tags, IPv6 inside")
    p = IPv6(**_V6) / IPv6ExtHdrHopByHop()
    for _ in range(6):
        p = p / IPv6ExtHdrDestOpt()
    add("ipv6.ext7", E / p / UDP(), "too_deep", "l3", "ipv6.ext_depth", "too_deep",
        "7 extension headers (the parser walks 6)")

    # -- fragments: well-formed, but no (whole) L4 header --
    add("ipv4.frag_first", E / IP(**_V4, flags="MF", id=7) / UDP(sport=1000, dport=2000, len=1008)
        / Raw(b"x" * 16), "fragment", "l3", "ipv4.frag", None,
        "offset 0, MF: L4 header present, UDP length covers the whole datagram")
    add("ipv4.frag_middle", E / IP(**_V4, flags="MF", frag=3, id=7, proto=17) / Raw(b"x" * 24),
        "fragment", "l3", "ipv4.frag", None, "offset 24 bytes, MF: no L4 header")
    add("ipv4.frag_last", E / IP(**_V4, frag=6, id=7, proto=17) / Raw(b"x" * 8), "fragment", "l3",
        "ipv4.frag", None, "offset 48 bytes, last fragment")
    add("ipv6.frag_first", E / IPv6(**_V6) / IPv6ExtHdrFragment(m=1, id=9, nh=17)
        / UDP(sport=1000, dport=2000, len=900) / Raw(b"x" * 16), "fragment", "l3", "ipv6.frag",
        None)
    add("ipv6.frag_middle", E / IPv6(**_V6) / IPv6ExtHdrFragment(offset=3, m=1, id=9, nh=17)
        / Raw(b"x" * 24), "fragment", "l3", "ipv6.frag", None)
    add("ipv6.frag_last", E / IPv6(**_V6) / IPv6ExtHdrFragment(offset=6, id=9, nh=17)
        / Raw(b"x" * 8), "fragment", "l3", "ipv6.frag", None)
    add("ipv4.frag_first_no_l4", E / IP(**_V4, flags="MF", proto=6) / Raw(b"\0" * 8), "truncated",
        "l4", "l4.short", "truncated", "a first fragment too short for its TCP header")

    # -- above the veth XDP frame limit --
    if include_oversize:
        for size, vl in ((VETH_XDP_MAX_FRAME + 1, ()), (VETH_XDP_MAX_FRAME + 4, (5,)),
                         (4000, ()), (9014, ())):
            add(f"oversize.{size}{'.vlan' if vl else ''}",
                packets.frame("ipv4", "udp", size=size, vlans=vl, smac=smac, dmac=dmac,
                              src=_V4["src"], dst=_V4["dst"]),
                "oversize", "l2", "frame.len", "truncated",
                f"{size} bytes: a non-frags XDP program sees the first {VETH_XDP_MAX_FRAME}")
    names = [m.name for m in out]
    assert len(names) == len(set(names)), "malformed_set names must be unique"
    return out


def malformed_frames(**kw) -> list[bytes]:
    return [m.frame for m in malformed_set(**kw)]


# ---- measuring the veth limit ---------------------------------------------------------------
@dataclass
class VethXdpLimit:
    max_mtu: int                 # peer IFLA_MAX_MTU while a non-frags program is attached
    max_frame: int               # max_mtu + 14
    attach_above_errno: int      # errno attaching while the peer MTU > max_mtu (ERANGE)
    seen: dict[int, int]         # frame size sent -> bytes the program saw (0: never reached it)
    send_errors: dict[int, str]  # frame size -> errno name at the sender

    def summary(self) -> str:
        parts = [f"max MTU {self.max_mtu}, max whole frame {self.max_frame}, attach above: "
                 f"errno {self.attach_above_errno}"]
        parts += [f"{s} B -> {'XDP saw ' + str(v) + ' B' if v else 'not seen'}"
                  for s, v in sorted(self.seen.items())]
        parts += [f"{s} B -> send {e}" for s, e in sorted(self.send_errors.items())]
        return "; ".join(parts)


def measure_veth_xdp_limit() -> VethXdpLimit:
    """Measure the limit in a throwaway one-host lab (needs root): attach the base program
    natively to the dut port, read the peer's max MTU, raise both MTUs to it, send frames around
    the limit (untagged and tagged) and record the bytes the program saw per frame; finally try
    attaching while the peer's MTU is above the limit."""
    import errno as _errno
    import socket
    import time

    from pyroute2 import IPRoute

    from nf.bpf import BpfError, XdpMode
    from nf.datapath import load_base, read_stats
    from nf.net import netns as _netns
    from nf.net.lab import Lab, LabSpec

    def link(ns, ifn, **kw):
        with _netns.enter(ns), IPRoute() as ipr:
            idx = ipr.link_lookup(ifname=ifn)[0]
            if kw:
                ipr.link("set", index=idx, **kw)
            return ipr.get_links(idx)[0]

    seen: dict[int, int] = {}
    errs: dict[int, str] = {}
    with Lab(LabSpec.switch(1)) as lab:
        h = lab.host("h1")
        with load_base() as base:
            with lab.enter("dut"):
                lk = base.program("xdp_base").attach_xdp(h.port_ifindex, XdpMode.NATIVE)
            try:
                max_mtu = link(h.netns, h.ifname).get("IFLA_MAX_MTU")
                link(h.netns, h.ifname, mtu=max_mtu)
                link(lab.dut, h.port, mtu=max_mtu)
                with _netns.enter(h.netns):
                    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
                try:
                    s.bind((h.ifname, 0))
                    for size, vl in ((max_mtu + 14, ()), (max_mtu + 15, (5,)),
                                     (max_mtu + 18, (5,)), (max_mtu + 19, (5,))):
                        before = read_stats(base)
                        try:
                            s.send(packets.frame("ipv4", "udp", size=size, vlans=vl))
                        except OSError as e:
                            errs[size] = _errno.errorcode.get(e.errno, str(e.errno))
                            continue
                        for _ in range(200):  # up to 1 s for the veth NAPI to run
                            after = read_stats(base)
                            if after.total_packets > before.total_packets:
                                break
                            time.sleep(0.005)
                        seen[size] = sum(after.bytes.values()) - sum(before.bytes.values())
                finally:
                    s.close()
            finally:
                lk.detach()
            link(h.netns, h.ifname, mtu=max_mtu + 1)  # allowed again once detached
            attach_errno = 0
            with lab.enter("dut"):
                try:
                    base.program("xdp_base").attach_xdp(h.port_ifindex, XdpMode.NATIVE).detach()
                except BpfError as e:
                    attach_errno = e.errno
    return VethXdpLimit(max_mtu, max_mtu + 14, attach_errno, seen, errs)
