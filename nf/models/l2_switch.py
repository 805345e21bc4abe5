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

from nf.algo import fmix64
from nf.nfs.l2_switch import COUNTERS  # the datapath's counters (its mirror is checked against BTF)

ACCESS, TRUNK = 0, 1
ACT_DROP, ACT_UNICAST, ACT_FLOOD, ACT_PASS = 1, 2, 3, 4
TPID = 0x8100
TPID_AD = 0x88A8
RESERVED = bytes.fromhex("0180c20000")   # 01:80:c2:00:00:0X, IEEE 802.1Q reserved group addresses
WAYS = 16


@dataclass
class PortModel:
    ifindex: int
    idx: int
    mode: int = ACCESS
    pvid: int = 0                              # access VLAN / trunk native VLAN; 0 = none
    tagged: frozenset[int] = frozenset()       # trunk: VLANs carried tagged
    learning: bool = True
    untagged_only: bool = False                # access: frames tagged with a VLAN are dropped

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


def efdb_hash(mac: bytes, vid: int, seed: int = 0) -> int:
    """The eNetSTL FDB's hash of a key (efdb_hash in l2_switch_enetstl.bpf.c; the module's bucket
    table, nf.algo.bt_place): murmur3's fmix64 of the key word (mac, then vid little-endian) xor
    the seed; bucket = h & mask, the way's signature = h >> 48 (0 -> 1)."""
    return fmix64(int.from_bytes(mac + struct.pack("<H", vid), "little") ^ seed)


class SwitchModel:
    def __init__(self, ports: list[PortModel], aging_ns: int = 300 * 10**9, fdb_size: int = 65536,
                 buckets: int | None = None, seed: int = 0):
        """At most fdb_size entries, static ones included. buckets=None: the pure variant;
        buckets=n: the eNetSTL variant, whose key lives in bucket efdb_hash(mac, vid) % n of
        WAYS ways (so a full bucket refuses a key too)."""
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
        return efdb_hash(mac, vid, self.seed) % self.buckets

    def bucket_full(self, mac: bytes, vid: int) -> bool:
        if self.buckets is None:
            return False
        b = self.bucket(mac, vid)
        return sum(1 for (m, v) in self.fdb if self.bucket(m, v) == b) >= WAYS

    def full_for(self, mac: bytes, vid: int) -> bool:
        """No room for a new key (mac, vid)."""
        return len(self.fdb) >= self.fdb_size or self.bucket_full(mac, vid)

    def expire(self, now: int) -> int:
        """Remove every aged-out entry (the controller's expire(), the datapath's reclaim walk)."""
        gone = [k for k, e in self.fdb.items() if self.expired(e, now)]
        for k in gone:
            del self.fdb[k]
        return len(gone)

    def set_aging(self, aging_ns: int, now: int) -> None:
        """Raising the aging time first removes what aged out under the old one."""
        if self.aging_ns and (aging_ns == 0 or aging_ns > self.aging_ns):
            self.expire(now)
        self.aging_ns = aging_ns

    def add_static(self, mac: bytes, vid: int, ifindex: int, now: int = 0) -> bool:
        """False: no room (the controller removed aged-out entries first, as it does)."""
        if (mac, vid) not in self.fdb and self.full_for(mac, vid):
            self.expire(now)
            if self.full_for(mac, vid):
                return False
        self.fdb[(mac, vid)] = Entry(ifindex, True, 0)
        return True

    def _make_room(self, mac: bytes, vid: int, now: int) -> bool:
        """A new key to learn: the datapath reclaims aged-out entries when the table is full
        (every one of them, one walk) or, in the eNetSTL table, when the key's bucket is (that
        bucket's)."""
        if len(self.fdb) >= self.fdb_size:
            self.expire(now)
        if self.bucket_full(mac, vid):
            b = self.bucket(mac, vid)
            for k in [k for k, e in self.fdb.items()
                      if self.bucket(*k) == b and self.expired(e, now)]:
                del self.fdb[k]
        return not self.full_for(mac, vid)

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
                if e.ts_ns != now and self.expired(e, now):
                    st["learn"] += 1          # it had aged out: learned again
                e.ts_ns = now
                return
            st["learn" if self.expired(e, now) else "move"] += 1
            self.fdb[(src, vid)] = Entry(p.ifindex, False, now)
            return
        if not self._make_room(src, vid, now):
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
        etype = struct.unpack("!H", frame[12:14])[0]
        if etype in (TPID, TPID_AD) and len(frame) < 20:   # the kernel's receive path drops these
            return self._drop(st, "drop_malformed")
        if src[0] & 1 or src == bytes(6):
            return self._drop(st, "drop_malformed")
        rsv = dst[5] if dst[:5] == RESERVED and dst[5] < 16 else None
        if rsv == 1:                                       # MAC control (PAUSE)
            return self._drop(st, "drop_reserved")
        local = rsv is not None and rsv >= 2               # to the port's own stack

        def refuse(reason: str, vid: int = 0) -> Result:
            if local:
                return self._to_stack(st)
            return self._drop(st, reason, vid)

        tci = 0
        if etype == TPID:
            tci = struct.unpack("!H", frame[14:16])[0]
            vid = tci & 0xFFF
            if vid == 0xFFF:
                return refuse("drop_malformed")
            if not vid:
                vid = p.pvid
            elif p.untagged_only:
                return refuse("drop_vlan", vid)
        else:
            vid = p.pvid
        if not vid or not p.member(vid):
            return refuse("drop_vlan", vid)
        if p.learning:
            self._learn(src, vid, p, st, now)
        if local:
            return self._to_stack(st, vid)
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
    def _to_stack(st, vid: int = 0) -> Result:
        st["to_stack"] += 1
        return Result(ACT_PASS, vid)

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
