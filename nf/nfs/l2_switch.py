"""Controller of the L2 learning switch (xdp_progs/l2_switch/).

    cfg = nf.config.load("configs/l2_switch.yaml", L2SwitchConfig)
    with L2Switch(cfg) as sw:          # check -> load -> fill maps -> attach (pinned links)
        sw.up()
        sw.fdb_add("02:00:00:00:00:09", 10, "p1")   # static entry
        sw.fdb()                                     # [FdbEntry(...), ...]
        sw.set_aging(30)                             # runtime, no reload
        sw.expire()                                  # remove aged-out dynamic entries
        sw.stats()                                   # {"p1": {"rx_packets": ..}, ...} summed over CPUs
    # sw.down() detaches every port and removes the pins (also on __exit__ unless keep=True)

    sw = L2Switch.attach(cfg)          # a deployment made by another process (its pins)

Demo (root): `.venv/bin/python -m nf.nfs.l2_switch` builds a 4-host lab, brings the switch of
configs/l2_switch.yaml up on it, sends scapy traffic, prints the FDB and the port counters.

Two FDB variants behind this one API, chosen at load (config `variant`; auto = the variant measured
faster, nf/variants.py): pure eBPF (a preallocated BPF hash map; SwitchMaps) and eNetSTL (a
bucketised table with 16-bit signatures, the module's CRC32-C and SIMD find, and in-kernel aging
by a timing wheel of list buckets driven by a bpf_timer; EfdbMaps). Maps shared by both: ports
(HASH ifindex -> l2sw_port), vlans (ARRAY[4096] of member/untagged port masks), config (ARRAY[1]:
aging time, read per frame, so changing it needs no reload), stats (PERCPU_ARRAY per port),
vlan_ports (ARRAY_OF_MAPS: one DEVMAP_HASH per VLAN for flooding, whose entries carry the egress
program that pops the tag on untagged ports), tx_ports (DEVMAP by port index for known unicast). Every map
is pinned in /sys/fs/bpf/xdp-nf/<name>/ and every link in .../<name>/links/<port>, so a
deployment outlives the process that made it (L2Switch.attach drives it from another process).
"""
from __future__ import annotations

import ctypes
import errno
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from nf.bpf.errors import BpfError
from nf.config.l2_switch import L2SwitchConfig, PortMode, Variant
from nf.config.l2_switch import _mac as _check_mac
from nf.net import netns
from nf.nfs.kind import Kind, check_system, keyed_by

OBJECT = "l2_switch/l2_switch"                   # pure eBPF: BPF hash map FDB
OBJECT_ENETSTL = "l2_switch/l2_switch_enetstl"   # bucketised FDB, module kfuncs + timing wheel
BOTH = (OBJECT, OBJECT_ENETSTL)
PROG_FDB_CTL = "xdp_l2sw_fdb_ctl"
PROG_INGRESS = "xdp_l2sw"
PROG_EGRESS = "xdp_l2sw_egress"
PROG_TEST = "xdp_l2sw_test"
PROG_EGRESS_TEST = "xdp_l2sw_egress_test"
CLOCK_MONOTONIC_COARSE = 6  # what bpf_ktime_get_coarse_ns reads

# l2_switch.h
MAX_PORTS = 64
STATS_SLOTS = MAX_PORTS + 1
IFINDEX_FAST = 4096
VLAN_SLOTS = 4096
ACCESS, TRUNK = 0, 1
FDB_STATIC = 1
GEN_CTL_STEP = 1 << 32   # L2SW_GEN_CTL_STEP: the controller's bump of fdb_gen
PORT_UNTAGGED_ONLY = 1  # enum l2sw_port_flags
ACT_DROP, ACT_UNICAST, ACT_FLOOD, ACT_PASS = 1, 2, 3, 4

u8, u16, u32, u64 = ctypes.c_uint8, ctypes.c_uint16, ctypes.c_uint32, ctypes.c_uint64


class Port(ctypes.Structure):
    __c_struct__ = "struct l2sw_port"
    __bpf_object__ = BOTH
    _fields_ = [("ifindex", u32), ("idx", u16), ("pvid", u16), ("mode", u8), ("learning", u8),
                ("flags", u8), ("pad", u8)]


class Vlan(ctypes.Structure):
    __c_struct__ = "struct l2sw_vlan"
    __bpf_object__ = BOTH
    _fields_ = [("members", u64), ("untagged", u64)]


class FdbKey(ctypes.Structure):
    __c_struct__ = "struct l2sw_fdb_key"
    __bpf_object__ = BOTH
    _fields_ = [("mac", u8 * 6), ("vid", u16)]


class FdbVal(ctypes.Structure):
    __c_struct__ = "struct l2sw_fdb_val"
    __bpf_object__ = OBJECT
    _fields_ = [("ifindex", u32), ("idx", u16), ("flags", u16), ("ts_ns", u64)]


class Config(ctypes.Structure):
    __c_struct__ = "struct l2sw_config"
    __bpf_object__ = BOTH
    _fields_ = [("aging_ns", u64), ("wheel_tick_ns", u64), ("seed", u64), ("keyed", u32),
                ("pad", u32)]


# enum l2sw_keyed: where the FDB's key came from
KEYED_NOT_YET, KEYED_DRAWN, KEYED_CONFIG, KEYED_KERNEL = 0, 1, 2, 3


COUNTERS = ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "unicast", "flood", "drop",
            "drop_vlan", "drop_malformed", "drop_local", "drop_egress", "learn", "move", "fdb_full",
            "fdb_busy", "to_stack", "drop_reserved")


class Stats(ctypes.Structure):
    __c_struct__ = "struct l2sw_stats"
    __bpf_object__ = BOTH
    _fields_ = [(n, u64) for n in COUNTERS]

    def as_dict(self) -> dict[str, int]:
        return {n: getattr(self, n) for n in COUNTERS}


class FdbRoom(ctypes.Structure):
    __c_struct__ = "struct l2sw_fdb_room"
    __bpf_object__ = BOTH
    _fields_ = [("oldest_ns", u64), ("used", u64), ("walks", u64), ("reclaimed", u64)]

    def as_dict(self) -> dict[str, int]:
        return {n: getattr(self, n) for n, _ in self._fields_}


class ProbeCtl(ctypes.Structure):
    __c_struct__ = "struct l2sw_test_ctl"
    __bpf_object__ = BOTH
    _fields_ = [("now_override", u64), ("ingress_ifindex", u32), ("egress_ifindex", u32),
                ("seq", u32), ("action", u32), ("out_ifindex", u32), ("vid", u16), ("pad", u16)]


class DevmapVal(ctypes.Structure):
    """uapi struct bpf_devmap_val: target ifindex + fd of the egress program (0 = none)."""
    _fields_ = [("ifindex", u32), ("prog_fd", ctypes.c_int32)]


# ---- eNetSTL variant (l2_switch.h) ----
WAYS = 16
WHEEL_SLOTS = 256
OP_ADD, OP_DEL, OP_FLUSH, OP_EXPIRE, OP_WHEEL_START = 1, 2, 3, 4, 5
OP_FIND, OP_FIND_BPF = 6, 7    # fdb_batch: the datapath's lookup; the BPF probe even with the module


class EfdbEntry(ctypes.Structure):
    __c_struct__ = "struct l2sw_efdb_entry"
    __bpf_object__ = OBJECT_ENETSTL
    _fields_ = [("key", FdbKey), ("ifindex", u32), ("idx", u16), ("flags", u16), ("ts_ns", u64),
                ("filed", u32), ("pad", u32)]


class EfdbBucket(ctypes.Structure):
    __c_struct__ = "struct l2sw_efdb_bucket"
    __bpf_object__ = OBJECT_ENETSTL
    _fields_ = [("seq", u32), ("pad", u32), ("sig", u16 * WAYS), ("e", EfdbEntry * WAYS)]


class EfdbCfg(ctypes.Structure):
    __c_struct__ = "struct l2sw_efdb_cfg"
    __bpf_object__ = OBJECT_ENETSTL
    _fields_ = [("bucket_mask", u32), ("max_entries", u32)]


class WheelItem(ctypes.Structure):
    __c_struct__ = "struct l2sw_wheel_item"
    __bpf_object__ = OBJECT_ENETSTL
    _fields_ = [("key", FdbKey), ("tick", u32), ("pad", u32)]


class WheelStats(ctypes.Structure):
    __c_struct__ = "struct l2sw_wheel_stats"
    __bpf_object__ = OBJECT_ENETSTL
    _fields_ = [("handle", u32), ("pad", u32), ("next_tick", u64), ("runs", u64), ("filed", u64),
                ("expired", u64), ("refiled", u64), ("stale", u64), ("push_fail", u64), ("busy", u64)]

    def as_dict(self) -> dict[str, int]:
        return {n: getattr(self, n) for n, _ in self._fields_ if n != "pad"}


class FdbReq(ctypes.Structure):
    __c_struct__ = "struct l2sw_fdb_req"
    __bpf_object__ = OBJECT_ENETSTL
    _fields_ = [("op", u32), ("ret", ctypes.c_int32), ("key", FdbKey), ("ifindex", u32), ("idx", u16),
                ("flags", u16), ("now_ns", u64), ("count", u64), ("busy", u64)]


def efdb_buckets(fdb_size: int) -> int:
    """Buckets for an FDB of fdb_size entries: a power of two with room for 2x fdb_size, so a
    bucket (16 ways) is rarely full before the table is."""
    n = 1
    while n * WAYS < 2 * fdb_size:
        n *= 2
    return n


def module_loaded() -> bool:
    return os.path.isdir("/sys/module/enetstl")


def mac_bytes(mac: str | bytes) -> bytes:
    if isinstance(mac, (bytes, bytearray)):
        if len(mac) != 6:
            raise ValueError(f"MAC must be 6 bytes, got {len(mac)}")
        return bytes(mac)
    return bytes.fromhex(_check_mac(mac).replace(":", ""))


def mac_str(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


def fdb_key(mac: str | bytes, vid: int) -> FdbKey:
    k = FdbKey()
    k.mac[:] = list(mac_bytes(mac))
    k.vid = vid
    return k


def now_ns() -> int:
    return time.clock_gettime_ns(CLOCK_MONOTONIC_COARSE)


@dataclass(frozen=True)
class FdbEntry:
    mac: str
    vlan: int
    port: str          # port name ("#<ifindex>" when the port is not configured)
    ifindex: int
    static: bool
    age_s: float       # seconds since last seen (0 for static)
    expired: bool      # older than the aging time: ignored by the datapath, removed by expire()


@dataclass(frozen=True)
class PortPlan:
    name: str
    ifindex: int
    idx: int
    mode: int
    pvid: int
    tagged: frozenset[int]
    learning: bool
    untagged_only: bool = False


def plan_ports(cfg: L2SwitchConfig, ifindexes: dict[str, int]) -> list[PortPlan]:
    """Port table of a config (port index = position in the config)."""
    out = []
    for i, p in enumerate(cfg.ports):
        out.append(PortPlan(p.name, ifindexes[p.name], i, TRUNK if p.mode == PortMode.trunk else ACCESS,
                            p.pvid, frozenset(p.tagged_vlans()), p.learning, p.untagged_only))
    return out


def vlan_table(plans: list[PortPlan]) -> dict[int, Vlan]:
    """VID -> member/untagged masks, for every VLAN some port carries."""
    out: dict[int, Vlan] = {}
    for p in plans:
        bit = 1 << p.idx
        for vid in p.tagged | ({p.pvid} if p.pvid else set()):
            v = out.setdefault(vid, Vlan())
            v.members |= bit
            if vid == p.pvid:
                v.untagged |= bit
    return out


class SwitchMaps:
    """Typed views of a loaded (or pinned) switch's maps: every runtime operation goes here, so
    a deployment can be driven by the process that made it or by any later one."""

    MAPS = ("ports", "port_by_ifindex", "vlans", "fdb", "config", "stats", "vlan_ports", "tx_ports",
            "fdb_gen", "fdb_room")
    variant = Variant.pure

    def __init__(self, maps: dict, port_names: dict[int, str] | None = None):
        self.ports = maps["ports"].typed(u32, Port)
        self.port_by_ifindex = maps["port_by_ifindex"].typed(u32, Port)
        self.vlans = maps["vlans"].typed(u32, Vlan)
        self.fdb_map = maps["fdb"].typed(FdbKey, FdbVal) if "fdb" in maps else None
        self.config = maps["config"].typed(u32, Config)
        self.stats_map = maps["stats"].typed(u32, Stats)
        self.vlan_ports = maps["vlan_ports"]
        self.gen = maps["fdb_gen"].typed(u32, u64)
        self.room_map = maps["fdb_room"].typed(u32, FdbRoom)
        self.raw = maps
        self.port_names = port_names or {}

    # -- ports / VLANs -------------------------------------------------------------------
    def _name(self, ifindex: int) -> str:
        return self.port_names.get(ifindex, f"#{ifindex}")

    def _ifindex(self, port: str | int) -> int:
        if isinstance(port, int):
            return port
        for i, n in self.port_names.items():
            if n == port:
                return i
        raise KeyError(f"no switch port {port!r} (ports: {', '.join(self.port_names.values())})")

    # -- FDB -----------------------------------------------------------------------------
    def _changed(self) -> None:
        """After a change to the FDB: every CPU's learn memo is stale (l2_switch_dp.h). A new
        high word, so the value differs from any the datapath's +1 per move has produced."""
        g = self.gen.lookup(0) or 0
        self.gen.update(0, ((g // GEN_CTL_STEP) + 1) * GEN_CTL_STEP)

    def aging_ns(self) -> int:
        return self.config.lookup(0).aging_ns

    def set_aging(self, seconds: float, now: int | None = None) -> None:
        """Change the aging time (runtime, no reload). Raising it first removes what aged out
        under the old time: an aged-out entry is gone for good (the Linux bridge deletes it when
        it expires), never brought back by a longer aging time."""
        if seconds < 0:
            raise ValueError("aging time must be >= 0 seconds (0 = never age)")
        new = int(seconds * 1e9)
        old = self.aging_ns()
        if old and (new == 0 or new > old):
            self.expire(now)
        c = self.config.lookup(0)
        c.aging_ns = new
        self.config.update(0, c)

    def keying(self) -> dict:
        """How the FDB is keyed (the kernel's copy of the key): nf.nfs.kind.keyed_by."""
        return keying(self.raw["config"])

    def room(self) -> dict[str, int]:
        """How the datapath made room in a full table (l2sw_fdb_room)."""
        return self.room_map.lookup(0).as_dict()

    def entry(self, mac: str | bytes, vlan: int):
        """The raw entry of (mac, vlan): ifindex, idx, flags, ts_ns; None when absent."""
        return self.fdb_map.lookup(fdb_key(mac, vlan))

    def fdb(self, now: int | None = None) -> list[FdbEntry]:
        now = now_ns() if now is None else now
        aging = self.aging_ns()
        out = []
        for k, v in self.fdb_map.items_batch():
            out.append(self._row(bytes(k.mac), k.vid, v, now, aging))
        return sorted(out, key=lambda e: (e.vlan, e.mac))

    def _static_port(self, port: str | int, vlan: int) -> tuple[int, "Port"]:
        """(ifindex, port record) for a static entry on `port` in `vlan`, or a clear error."""
        ifindex = self._ifindex(port)
        p = self.ports.lookup(ifindex)
        if p is None:
            raise KeyError(f"ifindex {ifindex} is not a switch port")
        if not 1 <= vlan <= 4094:
            raise ValueError(f"VLAN {vlan} outside 1-4094")
        vl = self.vlans.lookup(vlan)
        if vl is None or not vl.members & (1 << p.idx):
            raise ValueError(f"port {self._name(ifindex)} does not carry VLAN {vlan}")
        return ifindex, p

    def _row(self, mac: bytes, vid: int, e, now: int, aging: int) -> FdbEntry:
        static = bool(e.flags & FDB_STATIC)
        age = 0 if static else max(0, now - e.ts_ns)
        return FdbEntry(mac_str(mac), vid, self._name(e.ifindex), e.ifindex, static, age / 1e9,
                        (not static) and aging != 0 and age > aging)

    def fdb_add(self, mac: str | bytes, vlan: int, port: str | int, now: int | None = None) -> None:
        """Add (or replace) a static entry: never learned over, never aged (the Linux bridge's
        `static sticky`). A table full of aged-out entries makes room (expire) first."""
        ifindex, p = self._static_port(port, vlan)
        v = FdbVal()
        v.ifindex, v.idx, v.flags, v.ts_ns = ifindex, p.idx, FDB_STATIC, 0
        try:
            self.fdb_map.update(fdb_key(mac, vlan), v)
        except BpfError as e:
            if e.errno != errno.E2BIG or not self.expire(now):
                raise
            self.fdb_map.update(fdb_key(mac, vlan), v)
        self._changed()

    def fdb_delete(self, mac: str | bytes, vlan: int) -> bool:
        gone = self.fdb_map.delete(fdb_key(mac, vlan))
        self._changed()
        return gone

    def fdb_flush(self, static: bool = False) -> int:
        """Delete every dynamic entry (and the static ones too when static=True)."""
        n = 0
        for k, v in list(self.fdb_map.items()):
            if static or not v.flags & FDB_STATIC:
                n += bool(self.fdb_map.delete(k))
        self._changed()
        return n

    def expire(self, now: int | None = None) -> int:
        """Remove dynamic entries older than the aging time; returns how many. The datapath
        already ignores them; an entry refreshed between our read and delete is relearned by its
        next frame (one extra flood), never misforwarded."""
        aging = self.aging_ns()
        if not aging:
            return 0
        now = now_ns() if now is None else now
        n = 0
        for k, v in list(self.fdb_map.items()):
            if not v.flags & FDB_STATIC and now - v.ts_ns > aging:
                cur = self.fdb_map.lookup(k)
                if cur is not None and cur.ts_ns == v.ts_ns:  # not refreshed meanwhile
                    n += bool(self.fdb_map.delete(k))
        if n:
            self._changed()
        return n

    # -- stats ---------------------------------------------------------------------------
    def stats(self) -> dict[str, dict[str, int]]:
        """Counters per port name, summed over CPUs (plus "<unknown>" for unconfigured ifindexes)."""
        idx_name = {}
        for ifindex, p in self.ports.items():
            idx_name[p.idx] = self._name(ifindex)
        out = {}
        for idx in list(idx_name) + [MAX_PORTS]:
            per_cpu = self.stats_map.lookup_percpu(idx) or []
            tot = dict.fromkeys(COUNTERS, 0)
            for s in per_cpu:
                for n in COUNTERS:
                    tot[n] += getattr(s, n)
            out[idx_name.get(idx, "<unknown>")] = tot
        return out


class EfdbMaps(SwitchMaps):
    """The same operations on the eNetSTL variant's bucketised table. Reads go straight to the
    bucket array (a bucket is taken only when its seqcount is even and unchanged across the
    read); every write goes through xdp_l2sw_fdb_ctl (test_run), so it follows the datapath's
    writer protocol (per-bucket try-lock by cmpxchg) instead of racing it from user space."""

    MAPS = ("ports", "port_by_ifindex", "vlans", "efdb", "config", "stats", "vlan_ports", "tx_ports",
            "fdb_gen", "fdb_room", "wheel", "wheel_stats")
    variant = Variant.enetstl

    def __init__(self, maps: dict, port_names: dict[int, str] | None, ctl):
        super().__init__(maps, port_names)
        self.efdb = maps["efdb"].typed(u32, EfdbBucket)
        self.wheel = maps["wheel_stats"].typed(u32, WheelStats)
        self.ctl = ctl

    def request(self, op: int, **fields) -> FdbReq:
        """Run one control request; bucket-busy answers (-EBUSY) are retried briefly."""
        count = 0
        for _ in range(200):
            r = FdbReq(op=op, **fields)
            res = self.ctl.test_run(bytes(r))
            a = FdbReq.from_buffer_copy(res.data_out[:ctypes.sizeof(FdbReq)])
            count += a.count
            if a.ret != -errno.EBUSY:
                a.count = count
                return a
            time.sleep(0.001)
        raise BpfError(errno.EBUSY, f"FDB op {op}: buckets stayed busy")

    def _bucket(self, i: int) -> EfdbBucket | None:
        for _ in range(100):
            b = self.efdb.lookup(i)
            if b is None or b.seq & 1:
                continue
            again = self.efdb.lookup(i)
            if again is not None and again.seq == b.seq:
                return b
        return None  # a writer kept it: skipped in this listing

    def entries(self) -> list[tuple[bytes, int, EfdbEntry]]:
        out = []
        # One batch read of every bucket; only buckets holding entries (or held by a writer) are
        # read again, one by one, to get a copy whose seqcount is even and unchanged.
        for i, snap in self.efdb.items_batch(chunk=1024):
            if not (snap.seq & 1 or any(snap.sig)):
                continue
            b = self._bucket(i)
            if b is None:
                continue
            for w in range(WAYS):
                if b.sig[w]:
                    e = b.e[w]
                    out.append((bytes(e.key.mac), e.key.vid, e))
        return out

    def entry(self, mac: str | bytes, vlan: int):
        want = mac_bytes(mac)
        for m, vid, e in self.entries():
            if m == want and vid == vlan:
                return e
        return None

    def fdb(self, now: int | None = None) -> list[FdbEntry]:
        now = now_ns() if now is None else now
        aging = self.aging_ns()
        out = []
        for mac, vid, e in self.entries():
            out.append(self._row(mac, vid, e, now, aging))
        return sorted(out, key=lambda x: (x.vlan, x.mac))

    def fdb_add(self, mac: str | bytes, vlan: int, port: str | int, now: int | None = None) -> None:
        ifindex, p = self._static_port(port, vlan)
        add = dict(key=fdb_key(mac, vlan), ifindex=ifindex, idx=p.idx, flags=FDB_STATIC)
        a = self.request(OP_ADD, **add)
        if a.ret == -errno.ENOSPC and self.expire(now):   # room held by aged-out entries
            a = self.request(OP_ADD, **add)
        if a.ret:
            raise BpfError(-a.ret, f"cannot add {mac_str(mac_bytes(mac))} on VLAN {vlan}",
                           hint="the table holds fdb_size entries, or its bucket's 16 ways are taken"
                           if a.ret == -errno.ENOSPC else None)

    def fdb_delete(self, mac: str | bytes, vlan: int) -> bool:
        return self.request(OP_DEL, key=fdb_key(mac, vlan)).ret == 0

    def fdb_flush(self, static: bool = False) -> int:
        return self.request(OP_FLUSH, flags=FDB_STATIC if static else 0).count

    def expire(self, now: int | None = None) -> int:
        if not self.aging_ns():
            return 0
        return self.request(OP_EXPIRE, now_ns=now_ns() if now is None else now).count

    def wheel_stats(self) -> dict[str, int]:
        return self.wheel.lookup(0).as_dict()

    def start_wheel(self) -> int:
        """Create the timing wheel and start its timer (needs the module); returns 0 or -errno."""
        return self.request(OP_WHEEL_START).ret


def built(name: str) -> Path:
    """The object for xdp_progs/<name>.bpf.c, rebuilt when stale; on a read-only tree (the VM
    guest shares the host's root read-only) the object the host built is used as it is."""
    from nf.bpf.build import SRC, build, object_path

    try:
        return build(name)
    except OSError:
        obj = object_path(SRC / f"{name}.bpf.c")
        if not obj.exists():
            raise
        return obj




def size_object(obj, variant: Variant | str, fdb_size: int) -> None:
    """Before load: the FDB's size (the hash map's max_entries; the eNetSTL table's buckets and
    entry limit) and the eNetSTL table's rodata. The one place a switch object is sized (KIND's
    configure and the test_run harness)."""
    if Variant(variant) == Variant.enetstl:
        nb = efdb_buckets(fdb_size)
        obj.map("efdb").set_max_entries(nb)
        obj.set_rodata("efdb_cfg", EfdbCfg(nb - 1, fdb_size))
    else:
        obj.map("fdb").set_max_entries(fdb_size)


def key_table(config_map, variant: Variant | str, seed: int | None) -> None:
    """The one place a switch's FDB gets its key (struct l2sw_config.seed, l2_switch.h), after
    every load and before anything is attached. A new table (keyed 0) takes the config's seed,
    or one drawn from the kernel's random source; the pure variant's hash map keys itself (the
    kernel seeds every hash map at random), which is recorded. A table reused from its pins (a
    program reload or swap, a chain rebuild) keeps its key: every program of the deployment
    reads this one pinned value, and a config seed that disagrees with it is refused (RuntimeError
    before the new program is attached anywhere)."""
    from nf.algo import draw_seed
    m = config_map.typed(u32, Config)
    c = m.lookup(0)
    if c.keyed == KEYED_NOT_YET:
        if Variant(variant) == Variant.enetstl:
            c.seed, c.keyed = (seed, KEYED_CONFIG) if seed is not None else (draw_seed(), KEYED_DRAWN)
        else:
            c.keyed = KEYED_KERNEL
        m.update(0, c)
    elif Variant(variant) == Variant.enetstl and seed is not None and \
            (c.keyed == KEYED_KERNEL or c.seed != seed):
        raise RuntimeError(f"the pinned FDB is keyed by another seed than this config's {seed} "
                           "(a seed change needs down/up)")


def keying(config_map) -> dict:
    """How a switch's FDB is keyed, from the kernel's copy (nf show): ``keyed``, ``by`` (drawn /
    config / kernel) and ``seed`` only when the config gave it (a drawn one is a secret)."""
    c = config_map.typed(u32, Config).lookup(0)
    return keyed_by({KEYED_DRAWN: "drawn", KEYED_CONFIG: "config", KEYED_KERNEL: "kernel"}.get(c.keyed),
                    c.seed)


def make_maps(obj, variant: Variant, names: dict[int, str]) -> SwitchMaps:
    if variant == Variant.enetstl:
        return EfdbMaps({n: obj.map(n) for n in EfdbMaps.MAPS}, names, obj.program(PROG_FDB_CTL))
    return SwitchMaps({n: obj.map(n) for n in SwitchMaps.MAPS}, names)


DEFAULT_TICK_NS = 100_000_000


def fill_tables(obj, m: SwitchMaps, plans: list[PortPlan], real_ports: bool = True) -> dict[int, object]:
    """Ports, VLANs, tx_ports and one DEVMAP_HASH per VLAN (returned by VID; the caller closes
    them). Run in the ports' netns: devmap ifindexes resolve in the caller's. Without real ports
    (test_run) the devmaps stay empty."""
    from nf.bpf import Map

    for p in plans:
        v = Port()
        v.ifindex, v.idx, v.pvid, v.mode, v.learning = p.ifindex, p.idx, p.pvid, p.mode, int(p.learning)
        v.flags = PORT_UNTAGGED_ONLY if p.untagged_only else 0
        m.ports.update(p.ifindex, v)
        if p.ifindex < IFINDEX_FAST:
            m.port_by_ifindex.update(p.ifindex, v)
    egress_fd = obj.program(PROG_EGRESS).fd
    if real_ports:
        tx = obj.map("tx_ports")
        for p in plans:  # known unicast: no egress program, the ingress did the tagging
            tx.update(bytes(u32(p.idx)), bytes(u32(p.ifindex)))
    inner = {}
    for vid, vl in sorted(vlan_table(plans).items()):
        m.vlans.update(vid, vl)
        dm = Map.create("devmap_hash", 4, ctypes.sizeof(DevmapVal), MAX_PORTS, name=f"l2sw_v{vid}")
        inner[vid] = dm
        if real_ports:
            for p in plans:
                if vl.members & (1 << p.idx):
                    dm.update(bytes(u32(p.ifindex)), bytes(DevmapVal(p.ifindex, egress_fd)))
        m.vlan_ports.update(bytes(u32(vid)), dm)
    c = m.config.lookup(0)
    c.wheel_tick_ns = DEFAULT_TICK_NS
    m.config.update(0, c)
    return inner


class L2Switch:
    """One switch instance from its config (see module doc)."""

    def __init__(self, cfg: L2SwitchConfig, pin_dir: str | Path | None = None, keep: bool = False):
        from nf.bpf.pin import instance_dir

        self.cfg = cfg
        # one bpffs directory per deployed instance: /sys/fs/bpf/xdp-nf/<name>
        self.pin_dir = Path(pin_dir) if pin_dir else instance_dir(cfg.name, create=False)
        self.keep = keep
        self.obj = None
        self.inner: dict[int, object] = {}
        self.maps: SwitchMaps | None = None
        self.ifindexes: dict[str, int] = {}
        self.variant: Variant | None = None

    # -- preflight -----------------------------------------------------------------------
    def check(self) -> dict[str, int]:
        """Resolve every port in the switch's netns; ConfigError naming ports[i].name if one is
        missing. Nothing is loaded before this passes."""
        return check_system(self.cfg, KIND.interface_fields(self.cfg))

    def resolve_variant(self) -> Variant:
        """auto -> the variant measured faster (nf/variants.py) when the module is loaded, else pure
        eBPF. 'enetstl' without the module still loads (the object falls back to the pure-eBPF CRC32-C and compare) but has no
        in-kernel aging: the lazy check and expire() remain, as in the pure variant."""
        return Variant(KIND.resolve(self.cfg))

    # -- lifecycle -----------------------------------------------------------------------
    def up(self) -> "L2Switch":
        """Deploy the switch through the engine (maps, programs and links pinned in pin_dir),
        then drive it through its pins like any later process."""
        from nf import engine
        if self.maps is not None:
            raise RuntimeError(f"switch {self.cfg.name} is already up")
        self.check()
        self.variant = self.resolve_variant()
        if self.pin_dir.exists() and any(self.pin_dir.iterdir()):
            raise RuntimeError(f"switch {self.cfg.name} is already deployed (pins in {self.pin_dir}); "
                               f"take it down first")
        try:
            obj, _ = engine.start(KIND, KIND.resolved(self.cfg, self.variant.value), self.pin_dir)
            obj.close()
            self._open_pins()
        except BaseException:
            self.down()
            raise
        return self

    def fill(self) -> None:
        """The maps' first contents from the config (in the ports' netns: devmap ifindexes
        resolve in the caller's): ports, VLANs and their flood devmaps, aging, static entries,
        and the eNetSTL table's timing wheel when the module is there."""
        names = {v: k for k, v in self.ifindexes.items()}
        self.maps = m = make_maps(self.obj, self.variant, names)
        with netns.enter(self.cfg.netns):
            self.inner = fill_tables(self.obj, m, plan_ports(self.cfg, self.ifindexes))
        m.set_aging(self.cfg.aging_time)
        for e in self.cfg.static_entries:
            m.fdb_add(e.mac, e.vlan, e.port)
        if isinstance(m, EfdbMaps) and module_loaded():
            ret = m.start_wheel()
            if ret:
                raise BpfError(-ret, "cannot start the timing wheel of the eNetSTL FDB")

    def release(self) -> None:
        """Close this process's fds; a pinned deployment keeps running."""
        for dm in self.inner.values():
            dm.close()
        self.inner = {}
        if self.maps is not None and self.obj is None:
            for m in self.maps.raw.values():
                m.close()
            if isinstance(self.maps, EfdbMaps):
                self.maps.ctl.close()
        self.maps = None
        if self.obj is not None:
            self.obj.close()
            self.obj = None

    def down(self) -> None:
        """Detach every port, drop the pins and release every fd. Idempotent."""
        from nf.bpf import Link

        self.release()
        links_dir = self.pin_dir / "links"
        if links_dir.exists():
            with netns.enter(self.cfg.netns):
                for pin in links_dir.iterdir():
                    try:
                        Link.from_pin(str(pin)).detach()
                    except Exception:
                        pass
        if self.pin_dir.exists():
            shutil.rmtree(self.pin_dir, ignore_errors=True)

    def __enter__(self) -> "L2Switch":
        return self

    def __exit__(self, *exc) -> None:
        if self.keep:
            self.release()
        else:
            self.down()

    @classmethod
    def attach(cls, cfg: L2SwitchConfig, pin_dir: str | Path | None = None) -> "L2Switch":
        """Drive a deployment made by another process through its pinned maps."""
        sw = cls(cfg, pin_dir, keep=True)
        if not ((sw.pin_dir / "fdb").exists() or (sw.pin_dir / "efdb").exists()):
            raise FileNotFoundError(f"switch {cfg.name} is not deployed (no pins in {sw.pin_dir})")
        sw._open_pins()
        return sw

    def _open_pins(self) -> None:
        from nf.bpf import Map, Program
        self.ifindexes = self.check()
        names = {v: k for k, v in self.ifindexes.items()}
        enetstl = (self.pin_dir / "efdb").exists()
        maps = {n: Map.from_pin(str(self.pin_dir / n))
                for n in (EfdbMaps if enetstl else SwitchMaps).MAPS}
        self.variant = Variant.enetstl if enetstl else Variant.pure
        self.maps = EfdbMaps(maps, names, Program.from_pin(self.pin_dir / PROG_FDB_CTL)) \
            if enetstl else SwitchMaps(maps, names)

    # -- runtime (delegated to the maps) ---------------------------------------------------
    def _m(self) -> SwitchMaps:
        if self.maps is None:
            raise RuntimeError(f"switch {self.cfg.name} is not up")
        return self.maps

    def fdb(self) -> list[FdbEntry]:
        return self._m().fdb()

    def fdb_add(self, mac, vlan: int, port) -> None:
        self._m().fdb_add(mac, vlan, port)

    def fdb_delete(self, mac, vlan: int) -> bool:
        return self._m().fdb_delete(mac, vlan)

    def fdb_flush(self, static: bool = False) -> int:
        return self._m().fdb_flush(static)

    def set_aging(self, seconds: float) -> None:
        self._m().set_aging(seconds)

    def expire(self) -> int:
        return self._m().expire()

    def stats(self) -> dict[str, dict[str, int]]:
        return self._m().stats()


@dataclass
class SimResult:
    verdict: int                  # XDP verdict of the ingress program
    action: int                   # ACT_DROP / ACT_UNICAST / ACT_FLOOD
    vid: int                      # VLAN the frame was classified to (0 = none)
    wire: bytes                   # the frame as the ingress program left it (tagged)
    out: dict[int, bytes]         # egress ifindex -> bytes its egress program sends


class SwitchSim:
    """The real datapath object driven by BPF_PROG_TEST_RUN, with no interfaces: the *_test entry
    points take the ingress/egress ifindex and the clock from the test_ctl map. Known unicast
    leaves the ingress program in its final form; flood targets are the VLAN's member ports but
    the ingress, exactly what the controller puts in the VLAN's devmap, and each copy goes
    through the egress entry. Used by tier-1 tests and to check
    the reference model (nf/models/l2_switch.py) against the datapath."""

    def __init__(self, ports: list[PortPlan], aging_s: float = 300, fdb_size: int = 65536,
                 variant: Variant = Variant.pure, seed: int | None = None):
        from nf.bpf import BpfObject
        self.plans = {p.ifindex: p for p in ports}
        self.variant = variant
        self.obj = BpfObject.open(built(OBJECT_ENETSTL if variant == Variant.enetstl else OBJECT))
        self.inner = {}
        try:
            size_object(self.obj, variant, fdb_size)
            self.obj.load()
            key_table(self.obj.map("config"), variant, seed)     # None: drawn, as `nf up` does
            self.seed = self.obj.map("config").typed(u32, Config).lookup(0).seed
            self.maps = make_maps(self.obj, variant, {p.ifindex: p.name for p in ports})
            self.inner = fill_tables(self.obj, self.maps, ports, real_ports=False)
            self.vlans = vlan_table(ports)
            self.maps.set_aging(aging_s)
            self.ctl = self.obj.map("test_ctl").typed(u32, ProbeCtl)
            self.ingress = self.obj.program(PROG_TEST)
            self.egress_prog = self.obj.program(PROG_EGRESS_TEST)
        except BaseException:
            self.close()
            raise

    def set_ctl(self, per_cpu: list[dict] | None = None, **kw) -> list[ProbeCtl]:
        """Set test_ctl fields on every CPU (kw) or per CPU (per_cpu[i] for CPU i)."""
        vals = self.ctl.lookup_percpu(0)
        for i, c in enumerate(vals):
            for k, v in {**kw, **(per_cpu[i] if per_cpu and i < len(per_cpu) else {})}.items():
                setattr(c, k, v)
        self.ctl.update(0, vals)
        return vals

    def egress(self, wire: bytes, ifindex: int) -> tuple[int, bytes]:
        self.set_ctl(egress_ifindex=ifindex)
        r = self.egress_prog.test_run(wire)
        return r.retval, bytes(r.data_out)

    def receive(self, frame: bytes, ingress: int, now_ns: int = 10**12) -> SimResult:
        before = [c.seq for c in self.set_ctl(ingress_ifindex=ingress, now_override=now_ns)]
        r = self.ingress.test_run(frame)
        ran = [c for c, b in zip(self.ctl.lookup_percpu(0), before) if c.seq != b]
        if len(ran) != 1:
            raise AssertionError(f"ingress run recorded no decision (verdict {r.retval})")
        c = ran[0]
        res = SimResult(r.retval, c.action, c.vid, bytes(r.data_out), {})
        if c.action == ACT_PASS:  # to the port's own stack: no copy anywhere
            return res
        if c.action == ACT_FLOOD:
            members = self.vlans[c.vid].members
            targets = [i for i, p in self.plans.items() if members >> p.idx & 1 and i != ingress]
        else:
            targets = []
        if c.action == ACT_UNICAST:  # already in its final form; tx_ports runs no program
            res.out[c.out_ifindex] = res.wire
            return res
        for i in targets:
            v, b = self.egress(res.wire, i)
            if v == 2:  # XDP_PASS: the devmap sends the copy
                res.out[i] = b
        return res

    def close(self) -> None:
        for dm in self.inner.values():
            dm.close()
        self.inner = {}
        if self.obj is not None:
            self.obj.close()
            self.obj = None

    def __enter__(self) -> "SwitchSim":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def fdb_rows(sw) -> list[dict]:
    """`nf fdb`: one row per FDB entry."""
    return [{"mac": e.mac, "vlan": e.vlan, "port": e.port, "static": e.static,
             "age_s": round(e.age_s, 1), "expired": e.expired} for e in sw.fdb()]


class L2SwitchKind(Kind):
    name, noun = "l2_switch", "switch"
    summary = "L2 learning switch (VLANs, in-kernel flooding, FDB aging)"
    config = L2SwitchConfig
    objects = {("pure", False): OBJECT, ("enetstl", False): OBJECT_ENETSTL,
               ("pure", True): "chain/l2_switch_chain",
               ("enetstl", True): "chain/l2_switch_enetstl_chain"}
    programs = {"pure": PROG_INGRESS, "enetstl": PROG_INGRESS}
    exit_stats = "nf_stats"
    extra_pins = {"enetstl": {PROG_FDB_CTL: PROG_FDB_CTL}}   # FDB writes from any process
    verbs = {"fdb": fdb_rows}
    enetstl_needs_module = False      # loads anyway: pure-eBPF CRC32-C and compare, lazy aging
    interfaces_in_chain = True        # ports carry VLANs: in a chain, exactly the chain's

    def interface_fields(self, cfg):
        return [(f"ports[{i}].name", p.name) for i, p in enumerate(cfg.ports)]

    def configure(self, obj, cfg) -> None:
        size_object(obj, cfg.variant, cfg.fdb_size)

    def started(self, obj, cfg) -> None:
        key_table(obj.map("config"), cfg.variant, cfg.seed)

    keyed_table = "FDB"

    def keying(self, rec) -> dict:
        from nf.bpf import Map
        with Map.from_pin(rec.pin_dir / "config") as m:
            return keying(m)

    def controller(self, cfg, obj, pin_dir):
        sw = L2Switch(cfg, pin_dir, keep=True)
        sw.obj, sw.variant = obj, Variant(cfg.variant)
        sw.ifindexes = sw.check()
        return sw

    def fill(self, sw) -> dict:
        sw.fill()
        return {}

    def open(self, cfg, pin_dir):
        return L2Switch.attach(cfg, pin_dir)

    def runtime(self, sw, old, new) -> list[str]:
        done = []
        if old.aging_time != new.aging_time:
            sw.set_aging(new.aging_time)
            done.append(f"aging_time {old.aging_time:g} -> {new.aging_time:g} s")
        o = {(e.mac, e.vlan): e.port for e in old.static_entries}
        n = {(e.mac, e.vlan): e.port for e in new.static_entries}
        for k in o.keys() - n.keys():
            sw.fdb_delete(*k)
            done.append(f"static entry {k[0]} vlan {k[1]} removed")
        for k, port in n.items():
            if o.get(k) != port:
                sw.fdb_add(k[0], k[1], port)
                done.append(f"static entry {k[0]} vlan {k[1]} -> {port}")
        return done

    def stats(self, sw) -> dict[str, dict[str, int]]:
        return sw.stats()


KIND = L2SwitchKind()


def demo(config: str | Path | None = None, variant: str | None = None) -> int:
    """A 4-host veth lab with this switch (configs/l2_switch.yaml, its netns replaced by the lab's
    switch netns), scapy traffic through it, and the FDB and port counters printed. Needs root.

        sudo .venv/bin/python -m nf.nfs.l2_switch [--variant pure|enetstl|auto] [config.yaml]
    """
    from scapy.layers.l2 import Dot1Q, Ether

    from nf.config import load
    from nf.net.lab import Lab, LabSpec

    path = Path(config) if config else Path(__file__).resolve().parents[2] / "configs" / "l2_switch.yaml"
    cfg = load(path, L2SwitchConfig)
    with Lab(LabSpec.switch(len(cfg.ports))) as lab:
        # the lab's dut ports are p1..pN: map the config's ports onto them in order
        names = {p.name: f"p{i}" for i, p in enumerate(cfg.ports, 1)}
        data = cfg.model_dump(mode="json")
        data["netns"] = lab.dut
        data["name"] = f"demo{os.getpid()}"
        for p in data["ports"]:
            p["name"] = names[p["name"]]
        for e in data["static_entries"]:
            e["port"] = names[e["port"]]
        if variant:
            data["variant"] = variant
        from nf.config import validate
        cfg = validate(data, L2SwitchConfig, str(path))
        hosts = [f"h{i}" for i in range(1, len(cfg.ports) + 1)]
        with L2Switch(cfg) as sw:
            sw.up()
            print(f"switch {cfg.name}: variant {sw.variant.value}, ports "
                  + ", ".join(f"{p.name}({p.mode.value} {sorted(p.member_vlans())})" for p in cfg.ports))
            with lab.capture(hosts) as cap:
                for h, p in zip(hosts, cfg.ports):
                    pkt = Ether(src=lab.host(h).mac, dst="ff:ff:ff:ff:ff:ff", type=0x88B5)
                    if p.mode == PortMode.trunk and p.tagged_vlans():
                        pkt = Ether(src=lab.host(h).mac, dst="ff:ff:ff:ff:ff:ff") / \
                            Dot1Q(vlan=min(p.tagged_vlans()), type=0x88B5)
                    lab.send(h, [pkt / (b"hello from " + h.encode())])
                for a, b in zip(hosts, hosts[1:]):
                    lab.send(a, [Ether(src=lab.host(a).mac, dst=lab.host(b).mac, type=0x88B5) / b"unicast"])
                got = cap.wait(timeout=1.0)
            for h in hosts:
                print(f"  {h} received {len(got[lab.tap(h)])} frame(s)")
            print("FDB:")
            for e in sw.fdb():
                print(f"  {e.mac} vlan {e.vlan:4} -> {e.port:4} {'static' if e.static else f'age {e.age_s:.1f}s'}")
            print("port counters (summed over CPUs):")
            for port, st in sw.stats().items():
                nz = {k: v for k, v in st.items() if v}
                if nz:
                    print(f"  {port}: " + " ".join(f"{k}={v}" for k, v in nz.items()))
    return 0


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="L2 switch demo on a veth lab (needs root)")
    ap.add_argument("config", nargs="?", help="switch config (default configs/l2_switch.yaml)")
    ap.add_argument("--variant", choices=[v.value for v in Variant])
    args = ap.parse_args()
    raise SystemExit(demo(args.config, args.variant))
