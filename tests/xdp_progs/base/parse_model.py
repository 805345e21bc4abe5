"""A Python model of parse.h, written from its specification, used as the oracle of the fuzz
and probe tests. model(frame) -> dict of the pkt_meta fields parse_pkt() must produce (for an
error: rc, err_layer and the TRUNCATED/MALFORMED flag only: other fields are unspecified)."""
from __future__ import annotations

import struct

from nf.datapath import PktFlag as F
from nf.datapath import Reason

OK, TRUNC, MALF, DEEP = Reason.NONE, Reason.TRUNCATED, Reason.MALFORMED, Reason.TOO_DEEP
EXT = {0, 43, 44, 60, 51}


class _Err(Exception):
    def __init__(self, rc: Reason, layer: int):
        self.rc, self.layer = rc, layer


def _be16(b: bytes, off: int) -> int:
    return struct.unpack_from("!H", b, off)[0]


def _l4(b, m, off, proto, limit, v4, frag):
    if proto == 6:
        if off + 20 > limit:
            raise _Err(TRUNC, 4)
        hl = (b[off + 12] >> 4) * 4
        if hl < 20:
            raise _Err(MALF, 4)
        if off + hl > limit:
            raise _Err(TRUNC, 4)
        m.update(sport=_be16(b, off), dport=_be16(b, off + 2))
    elif proto == 17:
        if off + 8 > limit:
            raise _Err(TRUNC, 4)
        hl, ulen = 8, _be16(b, off + 4)
        if not frag:  # a first fragment holds only part of the datagram its length describes
            if ulen < 8:
                raise _Err(MALF, 4)
            if off + ulen > limit:
                raise _Err(TRUNC, 4)
        m.update(sport=_be16(b, off), dport=_be16(b, off + 2))
    elif (proto == 1 and v4) or (proto == 58 and not v4):
        if off + 8 > limit:
            raise _Err(TRUNC, 4)
        hl = 8
        m.update(icmp_type=b[off], icmp_code=b[off + 1])
    else:
        return
    m["payload_off"] = off + hl
    m["flags"] |= F.L4


def _ipv4(b, m, off):
    n = len(b)
    m["flags"] |= F.IPV4
    if off + 20 > n:
        raise _Err(TRUNC, 3)
    if b[off] >> 4 != 4:
        raise _Err(MALF, 3)
    hl, tot = (b[off] & 15) * 4, _be16(b, off + 2)
    if hl < 20 or tot < hl:
        raise _Err(MALF, 3)
    if off + tot > n:
        raise _Err(TRUNC, 3)
    if hl > 20:
        m["flags"] |= F.IP_OPTIONS
    m.update(l3_len=tot, l4_proto=b[off + 9], l4_off=off + hl)
    fo = _be16(b, off + 6)
    frag = bool(fo & 0x3FFF)
    if frag:
        m["flags"] |= F.FRAG
        if fo & 0x1FFF:
            m["flags"] |= F.FRAG_LATER
            return
    _l4(b, m, off + hl, b[off + 9], off + tot, True, frag)


def _ipv6(b, m, off):
    n = len(b)
    m["flags"] |= F.IPV6
    if off + 40 > n:
        raise _Err(TRUNC, 3)
    if b[off] >> 4 != 6:
        raise _Err(MALF, 3)
    m["l3_len"] = 40 + _be16(b, off + 4)
    limit = off + m["l3_len"]
    if limit > n:
        raise _Err(TRUNC, 3)
    nh, cur, frag = b[off + 6], off + 40, False
    for i in range(6):
        if nh not in EXT:
            break
        if nh == 0 and i:
            raise _Err(MALF, 3)
        if cur + 2 > n:
            raise _Err(TRUNC, 3)
        ln = 8 if nh == 44 else (b[cur + 1] + 2) * 4 if nh == 51 else (b[cur + 1] + 1) * 8
        if cur + ln > limit:
            raise _Err(TRUNC, 3)
        m["flags"] |= F.IPV6_EXT
        m["n_ext"] = i + 1
        if nh == 44:
            fo = _be16(b, cur + 2)
            if fo & 0xFFF9:
                m["flags"] |= F.FRAG
                frag = True
            if fo & 0xFFF8:
                m["flags"] |= F.FRAG_LATER
                m.update(l4_proto=b[cur], l4_off=cur + ln)
                return
        nh, cur = b[cur], cur + ln
    if nh in EXT:
        raise _Err(DEEP, 3)
    m.update(l4_proto=nh, l4_off=cur)
    _l4(b, m, cur, nh, limit, False, frag)


def model(b: bytes) -> dict:
    n = len(b)
    m = dict(rc=OK, pkt_len=n, l3_off=0, l4_off=0, payload_off=0, l3_len=0, eth_proto=0,
             vlan_ids=[0, 0], sport=0, dport=0, flags=F(0), n_vlans=0, l4_proto=0, icmp_type=0,
             icmp_code=0, n_ext=0, err_layer=0)
    try:
        if n < 14:
            raise _Err(TRUNC, 2)
        proto, off = _be16(b, 12), 14
        for i in range(3):
            if proto not in (0x8100, 0x88A8):
                break
            if i == 2:
                raise _Err(DEEP, 2)
            if off + 4 > n:
                raise _Err(TRUNC, 2)
            m["vlan_ids"][i] = _be16(b, off) & 0x0FFF
            m["n_vlans"] = i + 1
            m["flags"] |= F.VLAN
            proto, off = _be16(b, off + 2), off + 4
        m.update(eth_proto=proto, l3_off=off)
        if proto == 0x0800:
            _ipv4(b, m, off)
        elif proto == 0x86DD:
            _ipv6(b, m, off)
    except _Err as e:
        return dict(rc=e.rc, err_layer=e.layer,
                    flags=F.TRUNCATED if e.rc == TRUNC else F.MALFORMED)
    return m


def ip_proto_and_dport(b: bytes) -> tuple[Reason, int | None, int | None]:
    """(rc, final IP protocol or None for non-IP, TCP/UDP dport or None): what base's rules see."""
    m = model(b)
    if m["rc"] != OK or not m["flags"] & (F.IPV4 | F.IPV6):
        return m["rc"], None, None
    dport = m["dport"] if m["flags"] & F.L4 and m["l4_proto"] in (6, 17) else None
    return OK, m["l4_proto"], dport
