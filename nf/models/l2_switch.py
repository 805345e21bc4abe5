"""Python reference model of the L2 switch datapath (FDB + VLAN rules).

``SwitchModel.receive(frame, ingress_ifindex, now_ns)`` says what the XDP switch must do with one
frame: the action, the VLAN, the frame as the ingress program leaves it (known unicast: already in
its final form; flood: 802.1Q tagged, for the egress program of each copy) and, per egress port,
the exact bytes sent. It updates the FDB and per-port counters the
same way xdp_progs/l2_switch/l2_switch.bpf.c does, so random frame sequences can be checked
against the datapath frame by frame (tests/nf/models, tests/xdp_progs/l2_switch).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

ACCESS, TRUNK = 0, 1
ACT_DROP, ACT_UNICAST, ACT_FLOOD = 1, 2, 3
TPID = 0x8100

COUNTERS = ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "unicast", "flood", "drop",
            "drop_vlan", "drop_malformed", "drop_local", "drop_egress", "learn", "move", "fdb_full",
            "fdb_busy")
WAYS = 16


@dataclass
class PortModel:
    ifindex: int
    idx: int
    mode: int = ACCESS
    pvid: int = 0                              # access VLAN / trunk native VLAN; 0 = none
    tagged: frozenset[int] = frozenset()       # trunk: VLANs carried tagged
    learning: bool = True

    def member(self, vid: int) -> bool:
        return vid == self.pvid and vid != 0 or vid in self.tagged

    def untagged(self, vid: int) -> bool:
        return vid == self.pvid and vid != 0


@dataclass
class Entry:
    ifindex: int
    static: bool = False
    ts_ns: int = 0


@dataclass
class Result:
    action: int
    vid: int = 0
    wire: bytes | None = None   # frame as the ingress leaves it: flood tagged, unicast final
    out: dict[int, bytes] = field(default_factory=dict)  # egress ifindex -> bytes on the wire


def push_tag(frame: bytes, vid: int, pcp_dei: int = 0) -> bytes:
    return frame[:12] + struct.pack("!HH", TPID, pcp_dei | vid) + frame[12:]


def pop_tag(frame: bytes) -> bytes:
    return frame[:12] + frame[16:]


class SwitchModel:
    def __init__(self, ports: list[PortModel], aging_ns: int = 300 * 10**9, fdb_size: int = 65536,
                 buckets: int | None = None, seed: int = 0):
        """buckets=None: the pure variant (full at fdb_size entries); buckets=n: the eNetSTL
        variant, whose key lives in bucket crc32c(mac|vid) % n of WAYS ways (full per bucket)."""
        self.ports = {p.ifindex: p for p in ports}
        self.aging_ns = aging_ns
        self.fdb_size = fdb_size
        self.buckets = buckets
        self.seed = seed
        self.fdb: dict[tuple[bytes, int], Entry] = {}
        self.stats = {p.ifindex: dict.fromkeys(COUNTERS, 0) for p in ports}

    def expired(self, e: Entry, now: int) -> bool:
        return not e.static and self.aging_ns != 0 and now - e.ts_ns > self.aging_ns

    def bucket(self, mac: bytes, vid: int) -> int:
        from nf.algo import crc32c
        return crc32c(mac + struct.pack("<H", vid), self.seed) % self.buckets

    def full_for(self, mac: bytes, vid: int) -> bool:
        """No room for a new key (mac, vid)."""
        if self.buckets is None:
            return len(self.fdb) >= self.fdb_size
        b = self.bucket(mac, vid)
        return sum(1 for (m, v) in self.fdb if self.bucket(m, v) == b) >= WAYS

    def add_static(self, mac: bytes, vid: int, ifindex: int) -> None:
        self.fdb[(mac, vid)] = Entry(ifindex, True, 0)

    def _drop(self, st, reason: str | None, vid: int = 0) -> Result:
        st["drop"] += 1
        if reason:
            st[reason] += 1
        return Result(ACT_DROP, vid)

    def _learn(self, src: bytes, vid: int, p: PortModel, st, now: int) -> None:
        e = self.fdb.get((src, vid))
        if e is not None:
            if e.static:
                return
            if e.ifindex == p.ifindex:
                e.ts_ns = now
                return
            st["learn" if self.expired(e, now) else "move"] += 1
            self.fdb[(src, vid)] = Entry(p.ifindex, False, now)
            return
        if self.full_for(src, vid):
            st["fdb_full"] += 1
            return
        self.fdb[(src, vid)] = Entry(p.ifindex, False, now)
        st["learn"] += 1

    def receive(self, frame: bytes, ingress: int, now: int) -> Result:
        p = self.ports.get(ingress)
        if p is None:
            return Result(ACT_DROP)
        st = self.stats[ingress]
        st["rx_packets"] += 1
        st["rx_bytes"] += len(frame)
        if len(frame) < 14:
            return self._drop(st, "drop_malformed")
        dst, src = frame[0:6], frame[6:12]
        if src[0] & 1 or src == bytes(6):
            return self._drop(st, "drop_malformed")
        etype = struct.unpack("!H", frame[12:14])[0]
        tci = 0
        if etype == TPID:
            if len(frame) < 18:
                return self._drop(st, "drop_malformed")
            tci = struct.unpack("!H", frame[14:16])[0]
            vid = tci & 0xFFF
            if vid == 0xFFF:
                return self._drop(st, "drop_malformed")
            if vid:
                if p.mode != TRUNK:
                    return self._drop(st, "drop_vlan", vid)
            else:
                vid = p.pvid
        else:
            vid = p.pvid
        if not vid:
            return self._drop(st, "drop_vlan")
        if not p.member(vid):
            return self._drop(st, "drop_vlan", vid)
        if p.learning:
            self._learn(src, vid, p, st, now)
        has_tag = etype == TPID
        if not dst[0] & 1:
            e = self.fdb.get((dst, vid))
            if e is not None and not self.expired(e, now):
                if e.ifindex == ingress:
                    return self._drop(st, "drop_local", vid)
                q = self.ports.get(e.ifindex)
                if q is None or not q.member(vid):
                    return self._drop(st, "drop_vlan", vid)
                # unicast leaves the ingress in its final form (no egress program)
                out = self._form(frame, has_tag, tci, vid, not q.untagged(vid))
                st["unicast"] += 1
                qs = self.stats[q.ifindex]
                qs["tx_packets"] += 1
                qs["tx_bytes"] += len(out)
                return Result(ACT_UNICAST, vid, out, {q.ifindex: out})
        wire = self._form(frame, has_tag, tci, vid, True)
        st["flood"] += 1
        res = Result(ACT_FLOOD, vid, wire)
        for q in self.ports.values():
            if q.member(vid) and q.ifindex != ingress:
                self._egress(res, q, wire)
        return res

    @staticmethod
    def _form(frame: bytes, has_tag: bool, tci: int, vid: int, want_tag: bool) -> bytes:
        """The frame tagged with vid (PCP/DEI of an existing tag kept) or untagged."""
        if has_tag and want_tag:
            return frame[:14] + struct.pack("!H", (tci & 0xF000) | vid) + frame[16:]
        if has_tag:
            return pop_tag(frame)
        return push_tag(frame, vid) if want_tag else frame

    def egress(self, wire: bytes, out: int) -> bytes | None:
        """What the egress program sends out of port ``out`` for a tagged frame, None = drop."""
        q = self.ports.get(out)
        if q is None:
            return None
        st = self.stats[out]
        if len(wire) < 18 or struct.unpack("!H", wire[12:14])[0] != TPID:
            st["drop_egress"] += 1
            return None
        vid = struct.unpack("!H", wire[14:16])[0] & 0xFFF
        if not q.member(vid):
            st["drop_egress"] += 1
            return None
        b = pop_tag(wire) if q.untagged(vid) else wire
        st["tx_packets"] += 1
        st["tx_bytes"] += len(b)
        return b

    def _egress(self, res: Result, q: PortModel, wire: bytes) -> None:
        b = self.egress(wire, q.ifindex)
        if b is not None:
            res.out[q.ifindex] = b
