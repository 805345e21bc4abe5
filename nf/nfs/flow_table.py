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
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from nf.config.base import ConfigError
from nf.config.flow_table import (Action as CfgAction, AttachMode, FlowTableConfig, HashKind,
                                  Variant)
from nf.models.flow_table import (
    FT_HIST_BINS, FT_SLOTS, OBJECT, Action, CkHash, Flags, Flow, FtBucket, FtCfg, FtEntry, FtKey,
    Hash, FtMetrics, FtReq, FtState, FtValue, Op, Rc, Where, draw_seed, flow_key, hash_key,
    n_buckets_for, placement,
)

u32 = ctypes.c_uint32
PROG = {Variant.pure: "xdp_ft_pure", Variant.enetstl: "xdp_ft_enetstl"}
CTL = {Variant.pure: "xdp_ft_ctl", Variant.enetstl: "xdp_ft_ctl_kf"}
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
    return Path("/sys/module/enetstl").is_dir()


def _netns_ctx(netns: str | None):
    if netns is None:
        return nullcontext()
    from nf.net import netns as _netns
    return _netns.enter(netns)


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
        if self.cfg.variant == Variant.auto:
            return Variant.enetstl if module_loaded() else Variant.pure
        if self.cfg.variant == Variant.enetstl and not module_loaded():
            raise ConfigError(self.cfg.name, [("variant", "enetstl needs the enetstl module "
                                                          "loaded (use 'pure' or 'auto')")])
        return self.cfg.variant

    def _resolve_ports(self) -> dict[str, int]:
        from nf.net.iface import InterfaceError, ifindex
        names = list(self.cfg.interfaces)
        if self.cfg.default_port:
            names.append(self.cfg.default_port)
        names += [r.port for r in self.cfg.rules if r.port]
        out, errors = {}, []
        for n in dict.fromkeys(names):
            try:
                out[n] = ifindex(n, self.cfg.netns)
            except (InterfaceError, OSError) as e:
                errors.append(("interfaces" if n in self.cfg.interfaces else "rules",
                               f"interface {n!r}: {e}"))
        if errors:
            raise ConfigError(self.cfg.name, errors)
        return out

    def rodata(self) -> FtCfg:
        c = self.cfg
        return FtCfg(bucket_mask=self.mask, capacity=self.capacity,
                     search_budget=c.search_budget, max_search=c.max_search, learn=int(c.learn),
                     default_action=_ACT[c.default_action],
                     default_port=self.ifindexes.get(c.default_port or "", 0),
                     non_ip_action=_ACT[c.non_ip_action], hash=_HASH[c.hash])

    def _open_object(self):
        """The object load() configures; a chain member (nf/chain.py) opens its chainable one."""
        from nf.bpf import BpfObject
        return BpfObject.open_built(OBJECT)

    def load(self) -> "FlowTable":
        """Open and load the object with the config's sizes (no rules, no attach)."""
        from nf.bpf import BpfObject

        if self.obj is not None:
            raise RuntimeError(f"flow table {self.cfg.name} is already loaded")
        needs_ports = self.cfg.interfaces or self.cfg.default_port or any(
            r.port for r in self.cfg.rules)
        if needs_ports and not self.ifindexes:
            self.ifindexes = self._resolve_ports()
        self.variant = self.resolve_variant()
        obj = self._open_object()
        try:
            obj.set_rodata("ft_cfg", self.rodata())
            obj.map("ft_buckets").set_max_entries(self.n_buckets)
            obj.map("ft_entries").set_max_entries(self.capacity + 1)
            obj.map("ft_free").set_max_entries(self.capacity)
            if self.pin_dir is not None:
                # every non-internal map, pinned at load (a chain member's PROG_ARRAY is the
                # chain's: its own pin alone decides its lifetime)
                obj.pin_maps(self.pin_dir, [n for n in obj.maps if n != "nf_chain" and "." not in n])
            obj.load()
        except BaseException:
            obj.close()
            raise
        self.obj = obj
        self.prog = obj.program(PROG[self.variant])
        self.ctl_prog = obj.program(CTL[self.variant])
        self._typed({n: obj.map(n) for n in ("ft_buckets", "ft_entries", "ft_state", "ft_metrics")})
        try:
            self._key_table()
        except BaseException:
            self.release()
            raise
        return self

    def _key_table(self) -> None:
        """The one place a table gets its secret: new maps (never keyed: multipliers are odd)
        take the config's seed, or one drawn from the kernel's random source; maps reused from
        pins (a reload) keep theirs, which must be of the config's hash and pinned seed."""
        st = self.state_map[0]
        kind = _HASH[self.cfg.hash]
        if not st.hash.k[0]:
            seed = self.cfg.seed if self.cfg.seed is not None else draw_seed()
            st.hash = CkHash(kind=kind, k=(ctypes.c_uint64 * len(st.hash.k))(*hash_key(seed)))
            self.state_map[0] = st
        elif st.hash.kind != kind or (self.cfg.seed is not None
                                      and tuple(st.hash.k) != hash_key(self.cfg.seed)):
            raise RuntimeError(f"flow table {self.cfg.name!r}: the pinned table is keyed by "
                               f"another hash or seed than this config's (needs down/up)")
        self.hash_key = tuple(st.hash.k)

    def install_rules(self) -> None:
        for i, r in enumerate(self.cfg.rules):
            flow = Flow(r.src, r.dst, r.sport, r.dport, r.proto)
            port = self.ifindexes.get(r.port or "", 0)
            try:
                self.insert(flow, _ACT[r.action], port, update=True)
            except FlowTableError as e:
                raise FlowTableError(e.rc, f"rules[{i}] '{r.text()}'") from None

    def up(self, pin: bool = False) -> "FlowTable":
        """load(), static rules, attach. With ``pin`` the maps, the datapath and control
        programs and the links are pinned in /sys/fs/bpf/xdp-nf/<name>/, so the deployment
        outlives this process and :meth:`open_pinned` drives it from another one."""
        if pin:
            from nf.bpf import instance_dir
            d = instance_dir(self.cfg.name)
            if any(d.iterdir()):
                raise RuntimeError(f"flow table {self.cfg.name!r} is already deployed (pins in "
                                   f"{d}); take it down first")
            self.pin_dir = d
        try:
            self.load()
            if pin:
                self.prog.pin(self.pin_dir / "prog")
                self.ctl_prog.pin(self.pin_dir / "ctl")   # mutations from another process
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
        from nf.bpf import Map, Program, instance_dir
        if name and name != cfg.name:
            cfg = cfg.model_copy(update={"name": name})
        ft = cls(cfg)
        d = instance_dir(cfg.name, create=False)
        if not (d / "ctl").exists():
            raise RuntimeError(f"no flow table {cfg.name!r} is deployed ({d} has no pins)")
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

    @staticmethod
    def remove_pinned(name: str) -> bool:
        """Tear down a pinned deployment from its pins alone (nf.bpf.pin.remove_deployment)."""
        from nf.bpf.pin import remove_deployment
        return remove_deployment(name, ("links/*",))

    def attach(self) -> None:
        from nf.bpf import XdpMode
        mode = {AttachMode.auto: XdpMode.AUTO, AttachMode.native: XdpMode.NATIVE,
                AttachMode.generic: XdpMode.GENERIC}[self.cfg.attach]
        links = None
        if self.pin_dir is not None and self.cfg.interfaces:
            links = self.pin_dir / "links"
            links.mkdir(exist_ok=True)
        with _netns_ctx(self.cfg.netns):
            for name in self.cfg.interfaces:
                self.links.append(self.prog.attach_xdp(
                    self.ifindexes[name], mode=mode, pin=str(links / name) if links else None))

    def down(self) -> None:
        """Detach and release every fd. Idempotent."""
        with _netns_ctx(self.cfg.netns) if self.links else nullcontext():
            for link in self.links:
                try:
                    link.detach()
                except Exception:  # noqa: BLE001 - best effort on the way down
                    pass
        self.links = []
        pinned = self.pin_dir
        self.release()
        if pinned is not None:
            self.remove_pinned(self.cfg.name)

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


__all__ = ["FlowTable", "flow_frame", "FlowTableConfig", "FlowEntry", "FlowTableError", "Flow", "Action",
           "flow_key", "module_loaded"]
