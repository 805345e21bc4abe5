"""Controller of the cuckoo flow table (xdp_progs/flow_table/).

    ft = FlowTable(load("configs/flow_table.yaml", FlowTableConfig)).up()   # load, rules, attach
    ft.insert(Flow("10.0.0.1", "10.0.0.2", 1234, 80, 17), Action.DROP)
    ft.lookup(flow)          # FlowEntry (read from the maps with the datapath's hash) or None
    ft.delete(flow); ft.dump(); ft.expire(); ft.metrics(); ft.stats()
    ft.down()

Mutations (insert/delete) run the datapath's own C code through test_run of the control program
(xdp_ft_ctl / xdp_ft_ctl_kf), under the same writer lock as datapath inserts, so they are safe
while traffic flows and place entries exactly where the datapath looks. Reads (lookup, dump) are
done in Python from the maps: the keyed hash, the bucket pair and the signature come from
nf.models.flow_table, the same definitions the datapath uses, with the table's own secret
multipliers (ft_state.hash: written once when the table's maps are created, from the config's
seed or one drawn from the kernel's random source; read back by every later controller).
"""
from __future__ import annotations

import ctypes
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nf.algo import draw_seed
from nf.config.flow_table import Action as CfgAction, FlowTableConfig, HashKind, Variant
from nf.models.flow_table import (
    FT_BATCH, FT_HIST_BINS, FT_SLOTS, OBJECT, Action, CkHash, Flags, Flow, FtBucket, FtCfg, FtEntry, FtKey,
    Hash, FtMetrics, FtReq, FtState, FtValue, Op, Rc, Where, flow_key, hash_key,
    n_buckets_for, placement,
)
from nf.net import netns
from nf.nfs.kind import Kind, check_system, ifindex_or_0, keyed_by, module_present, one_object

u32 = ctypes.c_uint32
PROG = {Variant.pure: "xdp_ft_pure", Variant.enetstl: "xdp_ft_enetstl"}
CTL = {Variant.pure: "xdp_ft_ctl", Variant.enetstl: "xdp_ft_ctl_kf"}
BATCH = {Variant.pure: "xdp_ft_batch", Variant.enetstl: "xdp_ft_batch_kf"}
_HASH = {HashKind.crc32c: Hash.CRC32C, HashKind.mul64: Hash.MUL64}
_ACT = {CfgAction.pass_: Action.PASS, CfgAction.drop: Action.DROP,
        CfgAction.redirect: Action.REDIRECT}


class FlowTableError(RuntimeError):
    """A control request the table refused (full, busy, bad request)."""

    def __init__(self, rc: int, what: str):
        self.rc = Rc(rc) if rc in Rc._value2member_map_ else rc
        super().__init__(f"{what}: {getattr(self.rc, 'name', self.rc)}")


@dataclass
class FlowEntry:
    flow: Flow
    key: bytes
    packets: int
    bytes: int
    first_seen: int
    last_seen: int
    action: Action
    port: int
    flags: Flags
    bucket: int
    slot: int
    idx: int

    def as_dict(self) -> dict:
        return {"flow": str(self.flow), "packets": self.packets, "bytes": self.bytes,
                "first_seen": self.first_seen, "last_seen": self.last_seen,
                "action": self.action.name.lower(), "port": self.port,
                "flags": [f.name.lower() for f in Flags if f in self.flags],
                "bucket": self.bucket, "slot": self.slot}


def module_loaded() -> bool:
    return module_present()


def _as_key(flow: Flow | bytes) -> bytes:
    k = flow.key() if isinstance(flow, Flow) else bytes(flow)
    if len(k) != ctypes.sizeof(FtKey):
        raise ValueError(f"a flow key is {ctypes.sizeof(FtKey)} bytes, got {len(k)}")
    return k


def flow_frame(flow: Flow, *, smac: str = "02:00:00:00:00:01", dmac: str = "02:00:00:00:00:02",
               payload: bytes = b"", size: int = 0) -> bytes:
    """An Ethernet frame of ``flow`` (what the datapath keys as ``flow.key()``), padded to
    ``size`` bytes when given."""
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
    from scapy.layers.l2 import Ether

    l3 = IP(src=flow.src, dst=flow.dst) if ":" not in flow.src else IPv6(src=flow.src, dst=flow.dst)
    if flow.proto == 17:
        l4 = UDP(sport=flow.sport, dport=flow.dport)
    elif flow.proto == 6:
        l4 = TCP(sport=flow.sport, dport=flow.dport, flags="A")
    elif flow.proto == 1:
        l4 = ICMP()
    elif flow.proto == 58:
        l4 = ICMPv6EchoRequest()
    else:
        l3.proto = flow.proto  # IPv4: protocol field; IPv6 handled below
        if ":" in flow.src:
            l3.nh = flow.proto
        l4 = b""
    f = bytes(Ether(src=smac, dst=dmac) / l3 / l4 / payload)
    return f + b"\0" * max(0, size - len(f))


class FlowTable:
    def __init__(self, cfg: FlowTableConfig | None = None, **overrides):
        if cfg is None:
            cfg = FlowTableConfig(**overrides)
        elif overrides:
            cfg = cfg.model_copy(update=overrides)
            cfg = FlowTableConfig.model_validate(cfg.model_dump())
        self.cfg = cfg
        self.n_buckets = n_buckets_for(cfg.size)
        self.capacity = self.n_buckets * FT_SLOTS
        self.mask = self.n_buckets - 1
        self.obj = None
        self.links: list = []
        self.variant: Variant | None = None
        self.ifindexes: dict[str, int] = {}
        # pinned deployment (up(pin=True) / open_pinned): /sys/fs/bpf/xdp-nf/<name>/
        self.pin_dir: Path | None = None
        self._pinned: dict = {}        # maps and programs opened from pins (no object)
        self._keep = False             # opened from pins: leaving a `with` keeps the deployment
        self.hash_key: tuple[int, ...] | None = None   # the table's multipliers (ft_state.hash)

    # -- lifecycle -----------------------------------------------------------------------
    def resolve_variant(self) -> Variant:
        return Variant(KIND.resolve(self.cfg))

    def _resolve_ports(self) -> dict[str, int]:
        """Every interface the config names (attach, default port, rule ports) -> ifindex."""
        return check_system(self.cfg, KIND.interface_fields(self.cfg))

    def _adopt(self, obj, variant) -> "FlowTable":
        self.obj, self.variant = obj, Variant(variant)
        self.prog = obj.program(PROG[self.variant])
        self.ctl_prog = obj.program(CTL[self.variant])
        self.batch_prog = obj.program(BATCH[self.variant])
        self._typed({n: obj.map(n) for n in ("ft_buckets", "ft_entries", "ft_state", "ft_metrics")})
        self.hash_key = tuple(self.state_map[0].hash.k)     # KIND.started() keyed it
        return self

    def load(self) -> "FlowTable":
        """Loaded by the engine with the config's sizes, nothing pinned (no rules, no attach)."""
        from nf import engine
        if self.obj is not None:
            raise RuntimeError(f"flow table {self.cfg.name} is already loaded")
        needs_ports = self.cfg.interfaces or self.cfg.default_port or any(
            r.port for r in self.cfg.rules)
        if needs_ports and not self.ifindexes:
            self.ifindexes = self._resolve_ports()
        variant = self.resolve_variant()
        return self._adopt(engine.load(KIND, KIND.resolved(self.cfg, variant.value)), variant)

    def install_rules(self) -> None:
        for i, r in enumerate(self.cfg.rules):
            flow = Flow(r.src, r.dst, r.sport, r.dport, r.proto)
            port = self.ifindexes.get(r.port or "", 0)
            try:
                self.insert(flow, _ACT[r.action], port, update=True)
            except FlowTableError as e:
                raise FlowTableError(e.rc, f"rules[{i}] '{r.text()}'") from None

    def up(self, pin: bool = False) -> "FlowTable":
        """load(), static rules, attach. With ``pin`` the engine deploys it pinned in
        /sys/fs/bpf/xdp-nf/<name>/ (maps, the datapath and control programs, links), so the
        deployment outlives this process, and this controller drives it through the pins like
        :meth:`open_pinned` in any later process."""
        if pin:
            from nf import engine
            from nf.bpf import instance_dir
            d = instance_dir(self.cfg.name)
            if any(d.iterdir()):
                raise RuntimeError(f"flow table {self.cfg.name!r} is already deployed (pins in "
                                   f"{d}); take it down first")
            try:
                engine.start(KIND, KIND.resolved(self.cfg), d)[0].close()
            except BaseException:
                from nf.deploy import cleanup_pins
                cleanup_pins(self.cfg.name)
                raise
            return self._open_pins(d)
        try:
            self.load()
            self.install_rules()
            self.attach()
        except BaseException:
            self.down()
            raise
        return self

    @classmethod
    def open_pinned(cls, cfg: FlowTableConfig, name: str | None = None) -> "FlowTable":
        """A controller for a table deployed with up(pin=True) by another process (same
        config): insert/delete run the pinned control program; lookup/dump/metrics/stats read
        the pinned maps; down() removes the deployment."""
        from nf.bpf import instance_dir
        if name and name != cfg.name:
            cfg = cfg.model_copy(update={"name": name})
        d = instance_dir(cfg.name, create=False)
        if not (d / "ctl").exists():
            raise RuntimeError(f"no flow table {cfg.name!r} is deployed ({d} has no pins)")
        return cls(cfg)._open_pins(d)

    def _open_pins(self, d: Path) -> "FlowTable":
        from nf.bpf import Map, Program
        ft, cfg = self, self.cfg
        ft.pin_dir, ft._keep = d, True
        try:
            ft._pinned = {n: Map.from_pin(d / n) for n in
                          ("ft_buckets", "ft_entries", "ft_state", "ft_metrics", "ft_stats",
                           "ft_bfs")}
            if ft._pinned["ft_buckets"].max_entries != ft.n_buckets:
                raise RuntimeError(f"pinned flow table {cfg.name!r} has "
                                   f"{ft._pinned['ft_buckets'].max_entries} buckets, this config "
                                   f"{ft.n_buckets} (another size)")
            ft._pinned["prog"] = ft.prog = Program.from_pin(d / "prog")
            ft._pinned["ctl"] = ft.ctl_prog = Program.from_pin(d / "ctl")
            if (d / "batch").exists():      # deployments older than the batch program lack it
                ft._pinned["batch"] = ft.batch_prog = Program.from_pin(d / "batch")
                ft._pinned["ft_batch"] = Map.from_pin(d / "ft_batch")
            if cfg.default_port or any(r.port for r in cfg.rules):
                ft.ifindexes = ft._resolve_ports()
        except BaseException:
            ft.release()
            raise
        ft._typed(ft._pinned)
        ft.hash_key = tuple(ft.state_map[0].hash.k)
        return ft

    def _typed(self, maps) -> None:
        self.buckets_map = maps["ft_buckets"].typed(u32, FtBucket)
        self.entries_map = maps["ft_entries"].typed(u32, FtEntry)
        self.state_map = maps["ft_state"].typed(u32, FtState)
        self.metrics_map = maps["ft_metrics"].typed(u32, FtMetrics)

    def _map(self, name: str):
        return self._pinned[name] if self._pinned else self._loaded().map(name)

    def release(self) -> None:
        """Close this process's fds, leave a pinned deployment running (the CLI's `up`)."""
        for link in self.links:
            link.close()
        self.links = []
        for o in self._pinned.values():
            o.close()
        self._pinned = {}
        if self.obj is not None:
            self.obj.close()
            self.obj = None
        self.pin_dir = None

    def attach(self) -> None:
        """This process's program on cfg.interfaces (unpinned links, held here)."""
        from nf import engine
        self.links += engine.attach(self.prog, self.cfg)

    def down(self) -> None:
        """Detach and release every fd (and unpin a pinned deployment). Idempotent."""
        with netns.enter(self.cfg.netns if self.links else None):
            for link in self.links:
                try:
                    link.detach()
                except Exception:  # noqa: BLE001 - best effort on the way down
                    pass
        self.links = []
        pinned = self.pin_dir
        self.release()
        if pinned is not None:
            from nf.deploy import cleanup_pins
            cleanup_pins(self.cfg.name)

    close = down

    def __enter__(self) -> "FlowTable":
        return self

    def __exit__(self, *exc) -> None:
        if self._keep:
            self.release()
        else:
            self.down()

    def _loaded(self):
        if self._pinned:
            return None
        if self.obj is None:
            raise RuntimeError(f"flow table {self.cfg.name} is not loaded (call load() or up())")
        return self.obj

    # -- control requests (C code via test_run) -------------------------------------------
    def _ctl(self, req: FtReq, retries: int = 100) -> FtReq:
        self._loaded()
        for _ in range(retries):
            out = FtReq.from_buffer_copy(self.ctl_prog.test_run(bytes(req)).data_out)
            if out.ret != Rc.BUSY:
                return out
            time.sleep(0.001)
        return out

    def insert(self, flow: Flow | bytes, action: Action | int = Action.PASS, port: int = 0,
               *, static: bool = True, update: bool = False) -> Where:
        """Insert a flow (STATIC: never expired). EXISTS raises unless ``update`` (then the
        action/port/flags of the present entry are replaced)."""
        action = Action(action)
        if action == Action.REDIRECT and not port:
            raise ValueError("redirect needs a port (ifindex)")
        req = FtReq(op=Op.INSERT, update=int(update),
                    key=FtKey.from_buffer_copy(_as_key(flow)),
                    val=FtValue(action=action, port=port,
                                flags=Flags.STATIC if static else Flags.LEARNED))
        out = self._ctl(req)
        if out.ret == Rc.OK or (out.ret == Rc.EXISTS and update):
            return Where(out.bucket, out.slot, out.idx, out.moves)    # EXISTS: where it is
        raise FlowTableError(out.ret, f"insert {Flow.from_key(_as_key(flow))}")

    def batch(self, reqs: np.ndarray) -> np.ndarray:
        """Run control requests given as rows of struct ft_req bytes (uint8, n x
        sizeof(FtReq)) through xdp_ft_batch, FT_BATCH per test_run: the requests of insert()
        and delete() one after the other, each under the writer lock, with no syscall per
        request. Returns the rows as the table left them (ret, moves, bucket, slot, idx); a
        request that found the lock busy is run again (at most 100 rounds)."""
        import mmap
        rows = np.ascontiguousarray(reqs, np.uint8).reshape(-1, ctypes.sizeof(FtReq)).copy()
        prog = getattr(self, "batch_prog", None)
        if prog is None:
            raise RuntimeError(f"flow table {self.cfg.name}: this deployment has no batch "
                               "program (deployed by an older version: down/up)")
        m = self._map("ft_batch")
        size = -(-m.value_size * m.max_entries // mmap.PAGESIZE) * mmap.PAGESIZE
        mm = mmap.mmap(m.fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        try:
            win = np.frombuffer(mm, np.uint8, count=m.value_size * FT_BATCH).reshape(FT_BATCH, -1)
            todo = np.arange(len(rows))
            for _ in range(100):
                for s in range(0, len(todo), FT_BATCH):
                    part = todo[s:s + FT_BATCH]
                    win[:len(part)] = rows[part]
                    r = prog.test_run(len(part).to_bytes(4, "little") + bytes(60))
                    if r.retval != 2:
                        raise RuntimeError(f"xdp_ft_batch returned {r.retval}")
                    rows[part] = win[:len(part)]
                ret = rows[todo, 4:8].copy().view(np.int32).ravel()
                todo = todo[ret == Rc.BUSY]
                if not len(todo):
                    break
                time.sleep(0.001)
            del win
        finally:
            mm.close()
        return rows

    def insert_many(self, keys, action: Action | int = Action.PASS, port: int = 0, *,
                    static: bool = True, update: bool = False) -> np.ndarray:
        """Insert many flows (Flow objects, 40-byte keys, or a uint8 array n x 40) with one
        action through batch(): returns each request's ft_rc (Rc.OK, EXISTS, FULL...), in order;
        nothing raises for a refused one."""
        action = Action(action)
        if action == Action.REDIRECT and not port:
            raise ValueError("redirect needs a port (ifindex)")
        if isinstance(keys, np.ndarray):
            k = np.ascontiguousarray(keys, np.uint8).reshape(-1, ctypes.sizeof(FtKey))
        else:
            k = np.frombuffer(b"".join(_as_key(f) for f in keys), np.uint8).reshape(-1, ctypes.sizeof(FtKey))
        proto = np.frombuffer(bytes(FtReq(op=Op.INSERT, update=int(update), val=FtValue(
            action=action, port=port, flags=Flags.STATIC if static else Flags.LEARNED))), np.uint8)
        rc = np.empty(len(k), np.int32)
        for s in range(0, len(k), FT_BATCH):      # requests built a batch at a time
            rows = np.empty((min(FT_BATCH, len(k) - s), ctypes.sizeof(FtReq)), np.uint8)
            rows[:] = proto
            rows[:, FtReq.key.offset:FtReq.key.offset + ctypes.sizeof(FtKey)] = k[s:s + FT_BATCH]
            rc[s:s + len(rows)] = self.batch(rows)[:, 4:8].copy().view(np.int32).ravel()
        return rc

    def delete(self, flow: Flow | bytes) -> bool:
        out = self._ctl(FtReq(op=Op.DELETE, key=FtKey.from_buffer_copy(_as_key(flow))))
        if out.ret in (Rc.OK, Rc.NOT_FOUND):
            return out.ret == Rc.OK
        raise FlowTableError(out.ret, "delete")

    def lookup_datapath(self, flow: Flow | bytes) -> FtReq | None:
        """The datapath's own lookup (control program): the request with val/bucket/slot."""
        out = self._ctl(FtReq(op=Op.LOOKUP, key=FtKey.from_buffer_copy(_as_key(flow))))
        return out if out.ret == Rc.OK else None

    def reset(self) -> None:
        """Empty the table and zero its metrics and stats, as freshly loaded. Not safe while
        traffic flows (it rewrites the maps under the datapath): for tests and re-provisioning
        of a detached table. Use delete() on a live one."""
        self._loaded()
        if self.links:
            raise RuntimeError("reset() of an attached table; detach first or delete flows")
        nb = self.n_buckets
        self.buckets_map.batch_update(range(nb), [FtBucket()] * nb)
        self.entries_map.batch_update(range(self.capacity + 1), [FtEntry()] * (self.capacity + 1))
        self.state_map[0] = FtState(hash=self.state_map[0].hash)     # the table keeps its key
        bfs = self._map("ft_bfs")        # search budgets and refused pairs of every CPU
        bfs.update(bytes(4), bytes(bfs.value_buf_size))
        self.metrics_map[0] = FtMetrics()
        from nf.datapath import NfStats
        self._map("ft_stats").typed(u32, NfStats)[0] = NfStats()

    # -- reads (Python, same hash) --------------------------------------------------------
    def place(self, flow: Flow | bytes) -> tuple[int, int, int]:
        """(primary bucket, alternate bucket, signature) of a flow."""
        if self.hash_key is None:
            raise RuntimeError(f"flow table {self.cfg.name} is not loaded: it has no key yet")
        return placement(_as_key(flow), self.hash_key, self.mask, _HASH[self.cfg.hash])

    def _entry(self, e: FtEntry, b: int, s: int, idx: int) -> FlowEntry:
        v = e.val
        key = bytes(e.key)
        return FlowEntry(Flow.from_key(key), key, v.packets, v.bytes, v.first_seen,
                         v.last_seen, Action(v.action), v.port, Flags(v.flags), b, s, idx)

    def _chg(self) -> int:
        return self.state_map[0].chg

    def lookup(self, flow: Flow | bytes) -> FlowEntry | None:
        key = _as_key(flow)
        b1, b2, sig = self.place(key)
        for _ in range(5):
            c0 = self._chg()
            for b in (b1, b2):
                bk = self.buckets_map[b]
                for s in range(FT_SLOTS):
                    if bk.sig[s] == sig and bk.idx[s]:
                        e = self.entries_map[bk.idx[s]]
                        if bytes(e.key) == key:
                            return self._entry(e, b, s, bk.idx[s])
            if self._chg() == c0:
                return None
        return None

    def buckets(self) -> list[FtBucket]:
        self._loaded()
        return [v for _, v in sorted(self.buckets_map.items_batch(), key=lambda kv: kv[0])]

    def dump(self) -> list[FlowEntry]:
        """Every entry, read as a consistent snapshot (repeated while writers moved entries)."""
        self._loaded()
        for _ in range(10):
            c0 = self._chg()
            ents = dict(self.entries_map.items_batch())
            out = []
            for b, bk in sorted(self.buckets_map.items_batch(), key=lambda kv: kv[0]):
                for s in range(FT_SLOTS):
                    if bk.sig[s]:
                        out.append(self._entry(ents[bk.idx[s]], b, s, bk.idx[s]))
            if self._chg() == c0:
                return out
        return out

    def expire(self, idle: float | None = None, now_ns: int | None = None) -> list[Flow]:
        """Delete learned flows idle for more than ``idle`` seconds (the config's idle_timeout
        by default; 0 = never). Static flows never expire. Returns the flows deleted."""
        idle = self.cfg.idle_timeout if idle is None else idle
        if idle <= 0:
            return []
        # CLOCK_MONOTONIC; the datapath's coarse clock (same base) trails it by < 1 tick
        now = time.monotonic_ns() if now_ns is None else now_ns
        limit = int(idle * 1e9)
        gone = []
        for e in self.dump():
            if Flags.STATIC in e.flags:
                continue
            if now - e.last_seen > limit:
                # re-read: a packet may have refreshed it since the dump
                cur = self.lookup(e.key)
                if cur and now - cur.last_seen > limit and self.delete(e.key):
                    gone.append(e.flow)
        return gone

    # -- metrics ---------------------------------------------------------------------------
    def metrics(self) -> dict:
        st = self.state_map[0]
        m = self.metrics_map.sum(0)
        fails = m.fail_full + m.fail_index + m.fail_busy + m.fail_budget + m.fail_cached
        return {
            "entries": st.entries, "slots": self.capacity, "buckets": self.n_buckets,
            "load_factor": st.entries / self.capacity,
            "lookups": m.hits + m.misses, "hits": m.hits, "misses": m.misses, "inserts": m.inserts,
            "insert_failures": fails, "fail_full": m.fail_full, "fail_index": m.fail_index,
            "fail_busy": m.fail_busy, "fail_budget": m.fail_budget, "fail_cached": m.fail_cached,
            "deletes": m.deletes, "retries": m.retries,
            "search_steps": m.search_steps,
            "displacement_hist": list(m.hist)[:FT_HIST_BINS],
        }

    def stats(self):
        from nf.datapath import NfStats, sum_stats
        return sum_stats(self._map("ft_stats").typed(u32, NfStats).lookup_percpu(u32(0)))

    def counters(self) -> dict[str, dict[str, int]]:
        """Per-group counters (the CLI's stats): table occupancy and operation counts, insert
        failures by cause (no path, no key index, lock, this CPU's search budget spent, a bucket
        pair refused lately)."""
        m = self.metrics()
        return {"table": {k: m[k] for k in ("entries", "slots", "lookups", "hits", "misses",
                                             "inserts", "insert_failures", "fail_full",
                                             "fail_index", "fail_busy", "fail_budget",
                                             "fail_cached", "deletes", "retries")}}

    def run(self, frame: bytes, repeat: int = 1):
        """One frame through the datapath program (test_run)."""
        return self.prog.test_run(bytes(frame), repeat=repeat)


def _rule(ft, rule):
    """(Flow, action, port ifindex) of a validated config Rule, ports resolved in the netns."""
    from nf.net.iface import ifindex
    port = ifindex(rule.port, ft.cfg.netns) if rule.port else 0
    return Flow(rule.src, rule.dst, rule.sport, rule.dport, rule.proto), _ACT[rule.action], port


def flow_rows(ft, op: str = "list", rule=None) -> list[dict]:
    """`nf flows`: list every entry; add: insert (or replace) a static flow; del: remove one."""
    if op == "add":
        flow, act, port = _rule(ft, rule)
        w = ft.insert(flow, act, port, update=True)
        return [{"added": rule.text(), "bucket": w.bucket, "slot": w.slot, "moves": w.moves}]
    if op == "del":
        flow, _, _ = _rule(ft, rule)
        if not ft.delete(flow):
            raise KeyError(f"{ft.cfg.name}: no flow {rule.text().rsplit(' ', 1)[0]}")
        return [{"deleted": rule.text().rsplit(" ", 1)[0]}]
    from nf.net.iface import list_interfaces
    names = {i.ifindex: i.name for i in list_interfaces(ft.cfg.netns)}   # egress port by name
    return [{"flow": str(e.flow),
             "action": e.action.name.lower(),
             "port": (names.get(e.port, f"#{e.port}") if e.port else None), "packets": e.packets,
             "bytes": e.bytes, "static": Flags.STATIC in e.flags} for e in ft.dump()]


class FlowTableKind(Kind):
    name = "flow_table"
    noun = "flow table"
    summary = "cuckoo flow table (5-tuple rules, per-flow counters)"
    config = FlowTableConfig
    # one object for both variants: each has its own datapath and control program
    objects = one_object(OBJECT, "flow_table/flow_table_chain")
    programs = {v.value: p for v, p in PROG.items()}
    exit_stats = "ft_stats"
    # mutations from any process: one at a time (ctl), many in one run (batch)
    extra_pins = {v.value: {CTL[v]: "ctl", BATCH[v]: "batch"} for v in CTL}
    verbs = {"flows": flow_rows}
    gauges = {"entries": ("xdpnf_flow_table_entries", "flows in the table"),
              "slots": ("xdpnf_flow_table_slots", "capacity of the table (flows)")}

    def interface_fields(self, cfg):
        return (super().interface_fields(cfg)
                + ([("default_port", cfg.default_port)] if cfg.default_port else [])
                + [(f"rules[{i}].port", r.port) for i, r in enumerate(cfg.rules) if r.port])

    def configure(self, obj, cfg) -> None:
        nb = n_buckets_for(cfg.size)
        cap = nb * FT_SLOTS
        obj.set_rodata("ft_cfg", FtCfg(bucket_mask=nb - 1, capacity=cap,
                                       search_budget=cfg.search_budget,
                                       max_search=cfg.max_search, learn=int(cfg.learn),
                                       default_action=_ACT[cfg.default_action],
                                       default_port=ifindex_or_0(cfg.default_port, cfg.netns),
                                       non_ip_action=_ACT[cfg.non_ip_action], hash=_HASH[cfg.hash]))
        obj.map("ft_buckets").set_max_entries(nb)
        obj.map("ft_entries").set_max_entries(cap + 1)
        obj.map("ft_free").set_max_entries(cap)

    def started(self, obj, cfg) -> None:
        """The one place a table gets its secret (ft_state.hash): new maps (never keyed:
        multipliers are odd) take the config's seed, or one drawn from the kernel's random
        source; maps reused from pins (a reload) keep theirs, which must be of the config's hash
        and pinned seed."""
        state = obj.map("ft_state").typed(u32, FtState)
        st = state[0]
        kind = _HASH[cfg.hash]
        if not st.hash.k[0]:
            seed = cfg.seed if cfg.seed is not None else draw_seed()
            st.hash = CkHash(kind=kind, k=(ctypes.c_uint64 * len(st.hash.k))(*hash_key(seed)))
            state[0] = st
        elif st.hash.kind != kind or (cfg.seed is not None
                                      and tuple(st.hash.k) != hash_key(cfg.seed)):
            raise RuntimeError(f"flow table {cfg.name!r}: the pinned table is keyed by another "
                               "hash or seed than this config's (needs down/up)")

    keyed_table = "flow table"

    def keying(self, rec) -> dict:
        """The pinned table's multipliers (ft_state.hash): the config's seed's, or drawn."""
        from nf.bpf import Map
        with Map.from_pin(rec.pin_dir / "ft_state") as m:
            k = tuple(m.typed(u32, FtState).lookup(0).hash.k)
        seed = rec.config.get("seed")
        return keyed_by(None if not k[0] else "config" if seed is not None and k == hash_key(seed)
                        else "drawn", seed)

    def controller(self, cfg, obj, pin_dir):
        ft = FlowTable(cfg)._adopt(obj, cfg.variant)
        if cfg.default_port or any(r.port for r in cfg.rules):
            ft.ifindexes = ft._resolve_ports()
        return ft

    def fill(self, ft) -> dict:
        ft.install_rules()
        return {}

    def open(self, cfg, pin_dir):
        return FlowTable.open_pinned(cfg, Path(pin_dir).name)

    def runtime(self, ft, old, new) -> list[str]:
        """Static rules change in place through the control program (traffic keeps flowing)."""
        done = []
        key = lambda r: (r.src, r.dst, r.proto, r.sport, r.dport)   # noqa: E731
        o = {key(r): r for r in old.rules}
        n = {key(r): r for r in new.rules}
        for k in o.keys() - n.keys():
            flow, _, _ = _rule(ft, o[k])
            ft.delete(flow)
            done.append(f"rule removed: {o[k].text()}")
        for k, r in n.items():
            if k not in o or o[k] != r:
                flow, act, port = _rule(ft, r)
                ft.insert(flow, act, port, update=True)
                done.append(f"rule set: {r.text()}")
        if old.idle_timeout != new.idle_timeout:
            done.append(f"idle_timeout {old.idle_timeout:g} -> {new.idle_timeout:g} s (controller side)")
        return done

    def refill(self, ft, cfg) -> list[str]:
        """After `nf flows add|del`: the static flows back to exactly the config's rules (learned
        flows stay)."""
        want = {_rule(ft, r)[0].key(): r for r in cfg.rules}
        live = {e.flow.key(): e for e in ft.dump() if Flags.STATIC in e.flags}
        done = []
        for k, e in live.items():
            if k not in want:
                ft.delete(e.flow)
                done.append(f"flow removed: {e.flow}")
        for k, r in want.items():
            flow, act, port = _rule(ft, r)
            if k not in live or (live[k].action, live[k].port) != (act, port):
                ft.insert(flow, act, port, update=True)
                done.append(f"rule set: {r.text()}")
        return done

    def stats(self, ft) -> dict[str, dict[str, int]]:
        return ft.counters()


KIND = FlowTableKind()


__all__ = ["FlowTable", "flow_frame", "FlowTableConfig", "FlowEntry", "FlowTableError", "Flow", "Action",
           "flow_key", "module_loaded"]
