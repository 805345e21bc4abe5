"""Deterministic scapy frame builders: Ethernet (+ one or two 802.1Q tags), IPv4/IPv6,
TCP/UDP/ICMP/ICMPv6, exact frame sizes.

`size` is the frame length as handed to the NIC / seen by XDP: Ethernet header through the last
payload byte, without the 4-byte FCS (a "64-byte frame" on the wire is size=60 here). Padding goes
into the L4 payload, so IP/UDP length fields and checksums cover it (no Ethernet trailer bytes
that an NF might mistake for data).
"""
from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Packet, Raw

TPID_8021Q = 0x8100
TPID_8021AD = 0x88A8

L3 = ("ipv4", "ipv6")
L4 = ("udp", "tcp", "icmp", "icmpv6", None)


def mac(i: int, kind: int = 0) -> str:
    """Deterministic locally administered unicast MAC 02:00:KK:NN:NN:NN (kind 0..255, i < 2**24).

    Kind 0/1 match nf.net.lab's host/port MACs for i < 65536."""
    if not 0 <= i < 1 << 24 or not 0 <= kind < 256:
        raise ValueError(f"mac index {i} / kind {kind} out of range")
    return f"02:00:00:{kind:02x}:{(i >> 8) & 0xff:02x}:{i & 0xff:02x}" if i < 1 << 16 else \
        f"02:00:{kind:02x}:{(i >> 16) & 0xff:02x}:{(i >> 8) & 0xff:02x}:{i & 0xff:02x}"


def _tags(vlans: Sequence, outer_tpid: int | None) -> list[tuple[int, int, int]]:
    """Normalise vlans (outermost first; ints = VIDs or (vid, prio) pairs) to (tpid, vid, prio)."""
    if len(vlans) > 2:
        raise ValueError(f"at most two VLAN tags, got {len(vlans)}")
    out = []
    for i, v in enumerate(vlans):
        vid, prio = (v, 0) if isinstance(v, int) else tuple(v)
        if not 0 <= vid < 4096 or not 0 <= prio < 8:
            raise ValueError(f"bad VLAN tag vid={vid} prio={prio}")
        if i == 0 and len(vlans) == 2:
            tpid = TPID_8021AD if outer_tpid is None else outer_tpid
        elif i == 0 and outer_tpid is not None:
            tpid = outer_tpid
        else:
            tpid = TPID_8021Q
        out.append((tpid, vid, prio))
    return out


def build(l3: str = "ipv4", l4: str | None = "udp", *, src: str | None = None,
          dst: str | None = None, sport: int = 1024, dport: int = 80,
          smac: str | None = None, dmac: str | None = None, vlans: Sequence = (),
          outer_tpid: int | None = None, size: int | None = None, payload: bytes = b"",
          ttl: int = 64, tos: int = 0, ip_id: int = 1, flowlabel: int = 0,
          tcp_flags: str = "S", seq: int = 1, icmp_id: int = 1, icmp_seq: int = 1) -> Packet:
    """One frame as a scapy packet. Defaults are fixed values, so equal arguments give equal bytes.

    vlans: outermost first; one tag uses TPID 0x8100, two tags 0x88a8 outside (QinQ) unless
    outer_tpid says otherwise.
    """
    if l3 not in L3:
        raise ValueError(f"l3 must be one of {L3}, not {l3!r}")
    if l4 not in L4:
        raise ValueError(f"l4 must be one of {L4}, not {l4!r}")
    if l4 == "icmp" and l3 != "ipv4" or l4 == "icmpv6" and l3 != "ipv6":
        raise ValueError(f"{l4} does not go over {l3}")
    smac = smac or mac(1)
    dmac = dmac or mac(2)
    tags = _tags(vlans, outer_tpid)

    ethertype = 0x0800 if l3 == "ipv4" else 0x86DD
    pkt: Packet = Ether(src=smac, dst=dmac, type=tags[0][0] if tags else ethertype)
    for i, (_tpid, vid, prio) in enumerate(tags):
        nxt = tags[i + 1][0] if i + 1 < len(tags) else ethertype
        pkt = pkt / Dot1Q(prio=prio, vlan=vid, type=nxt)

    if l3 == "ipv4":
        src = src or "10.0.0.1"
        dst = dst or "10.0.0.2"
        _check_family(src, dst, 4)
        pkt = pkt / IP(src=src, dst=dst, ttl=ttl, tos=tos, id=ip_id)
    else:
        src = src or "fd00::1"
        dst = dst or "fd00::2"
        _check_family(src, dst, 6)
        pkt = pkt / IPv6(src=src, dst=dst, hlim=ttl, tc=tos, fl=flowlabel)

    if l4 == "udp":
        pkt = pkt / UDP(sport=sport, dport=dport)
    elif l4 == "tcp":
        pkt = pkt / TCP(sport=sport, dport=dport, flags=tcp_flags, seq=seq, window=8192)
    elif l4 == "icmp":
        pkt = pkt / ICMP(type=8, id=icmp_id, seq=icmp_seq)
    elif l4 == "icmpv6":
        pkt = pkt / ICMPv6EchoRequest(id=icmp_id, seq=icmp_seq)

    body = bytes(payload)
    if size is not None:
        hdr = len(pkt)  # headers only, before any payload
        if size < hdr + len(body):
            raise ValueError(f"size {size} is smaller than headers ({hdr}) + payload ({len(body)})")
        # Deterministic filler: a repeating byte ramp, so truncation/corruption shows in bytes.
        fill = size - hdr - len(body)
        body += bytes(i & 0xFF for i in range(fill))
    if l4 == "icmpv6" and body:
        pkt[ICMPv6EchoRequest].data = body
    elif body:
        pkt = pkt / Raw(body)
    out = pkt.__class__(bytes(pkt))  # materialise lengths and checksums
    if size is not None and len(out) != size:
        raise AssertionError(f"built {len(out)} bytes, wanted {size}")
    return out


def _check_family(src: str, dst: str, v: int) -> None:
    for a in (src, dst):
        if ipaddress.ip_address(a).version != v:
            raise ValueError(f"address {a} is not IPv{v}")


def frame(*args, **kw) -> bytes:
    """build(...) as bytes."""
    return bytes(build(*args, **kw))


def udp4(**kw) -> Packet:
    return build("ipv4", "udp", **kw)


def tcp4(**kw) -> Packet:
    return build("ipv4", "tcp", **kw)


def icmp4(**kw) -> Packet:
    return build("ipv4", "icmp", **kw)


def udp6(**kw) -> Packet:
    return build("ipv6", "udp", **kw)


def tcp6(**kw) -> Packet:
    return build("ipv6", "tcp", **kw)


def icmp6(**kw) -> Packet:
    return build("ipv6", "icmpv6", **kw)


def from_flow(flow, **kw) -> Packet:
    """A frame for a traffic.flows.Flow (5-tuple); other build() arguments pass through."""
    l3 = "ipv6" if ":" in flow.src else "ipv4"
    l4 = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6"}.get(flow.proto)
    if l4 is None:
        raise ValueError(f"flow protocol {flow.proto} has no builder")
    if l4 in ("icmp", "icmpv6"):
        kw.setdefault("icmp_id", flow.sport)
        kw.setdefault("icmp_seq", flow.dport)
    return build(l3, l4, src=flow.src, dst=flow.dst, sport=flow.sport, dport=flow.dport, **kw)
