"""Controller of the heavy-hitter sketch (xdp_progs/sketch/): config -> load -> banks -> attach,
then point / top-k / heavy-hitter queries, epoch flips with history, reset.

    from nf.config import load
    from nf.config.sketch import SketchConfig
    with Sketch(load("configs/sketch.yaml", SketchConfig)).up() as sk:   # attaches cfg.interfaces
        sk.program.test_run(frame)          # or traffic on the interfaces
        sk.point(flow)                      # estimate of a flow in the current epoch
        sk.topk(10)                         # [(key bytes, estimate)], largest first
        sk.heavy_hitters()                  # candidates whose summed estimate passes the threshold
        rec = sk.flip()                     # close the epoch: EpochRecord, kept in sk.history
        sk.reset()

Epochs: two banks (inner maps of the ARRAY_OF_MAPS sk_active). flip() installs the idle bank;
the kernel's map update returns only after synchronize_rcu(), i.e. after every program that
could still hold the old bank has finished, so the old bank is complete when flip() reads it
and nothing added to it is lost; it is then cleared and becomes the next idle bank.
"""
from __future__ import annotations

import ctypes
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nf.config.sketch import Action, Counters, CountWhat, KeyKind, SketchConfig, Variant
from nf.datapath import StatsSummary
from nf.models.flow_table import flow_text
from nf.models.sketch import flow_key, log2_table, neglog2_q32
from nf.net import netns
from nf.nfs.kind import (VARIANTS, Kind, ifindex_or_0, keyed_by, module_present as _module_present,
                         one_object)

OBJECT = "sketch/sketch"
OBJECT_CHAIN = "sketch/sketch_chain"
PROG = "xdp_sketch"
PROG_POOL = "xdp_sketch_pool"
PROG_HASHCHECK = "xdp_sketch_hashcheck"
STATS_MAP = "sk_stats"
EPOCH_PIN = "epochs"        # the epoch log of a pinned sketch (a JSON document in a pinned ARRAY)
EPOCH_LOG_MAX = 1 << 20     # bytes of that document: the oldest epochs go first beyond it

# sketch.h
SKETCH_MAX_D = 16
SKETCH_KEY_MAX = 40
SKETCH_LOG2_TAB = 1024
SKETCH_TOP = 16
SKETCH_TOP_POS = 256
SKETCH_HEAVY_BITS = 65536
SK_F_BYTES, SK_F_SHARED, SK_F_NITRO, SK_F_FRACTION = 1, 2, 4, 8
KEY_KIND = {KeyKind.five_tuple: 0, KeyKind.src_ip: 1, KeyKind.dst_ip: 2, KeyKind.src_dst: 3,
            KeyKind.src_mac: 4}
VARIANT = {Variant.pure: 0, Variant.enetstl: 1}
ACTION = {Action.monitor: 0, Action.drop: 1, Action.redirect: 2}
REASON_NO_KEY, REASON_HEAVY, REASON_CAND_FULL, REASON_SAMPLED_OUT, REASON_NO_BANK = range(5)
# the maps of a deployment besides its banks: pinned at up, reused by every reload
MAPS = ("sk_active", "sk_cand", "sk_top", "sk_heavy", STATS_MAP)


class SketchCfg(ctypes.Structure):
    __c_struct__ = "struct sketch_cfg"
    __bpf_object__ = OBJECT
    _fields_ = [("variant", ctypes.c_uint32), ("key_kind", ctypes.c_uint32),
                ("flags", ctypes.c_uint32), ("d", ctypes.c_uint32), ("w", ctypes.c_uint32),
                ("action", ctypes.c_uint32),
                ("redirect_ifindex", ctypes.c_uint32), ("threshold", ctypes.c_uint64),
                ("min_total", ctypes.c_uint64), ("nitro_scale_q16", ctypes.c_uint32),
                ("candidates", ctypes.c_uint32), ("nitro_neglog_q32", ctypes.c_uint64),
                ("nitro_p_q32", ctypes.c_uint64)]


class CmHdr(ctypes.Structure):
    __c_struct__ = "struct enetstl_cm_hdr"
    __bpf_object__ = OBJECT
    _fields_ = [("d", ctypes.c_uint32), ("w", ctypes.c_uint32), ("seed", ctypes.c_uint32),
                ("flags", ctypes.c_uint32)]


class SketchBank(ctypes.Structure):
    __c_struct__ = "struct sketch_bank"
    __bpf_object__ = OBJECT
    _fields_ = [("id", ctypes.c_uint32), ("epoch", ctypes.c_uint32), ("total", ctypes.c_uint64),
                ("packets", ctypes.c_uint64), ("sampled", ctypes.c_uint64),
                ("top_bar", ctypes.c_uint32), ("keyed", ctypes.c_uint32), ("cm", CmHdr)]


class CandKey(ctypes.Structure):
    __c_struct__ = "struct sketch_cand_key"
    __bpf_object__ = OBJECT
    _fields_ = [("bank", ctypes.c_uint32), ("len", ctypes.c_uint8), ("kind", ctypes.c_uint8),
                ("pad", ctypes.c_uint16), ("key", ctypes.c_uint8 * SKETCH_KEY_MAX)]


class Cand(ctypes.Structure):
    __c_struct__ = "struct sketch_cand"
    __bpf_object__ = OBJECT
    _fields_ = [("estimate", ctypes.c_uint64), ("first_seen_ns", ctypes.c_uint64),
                ("hits", ctypes.c_uint64), ("first_cpu", ctypes.c_uint32), ("pad", ctypes.c_uint32)]


class SketchTop(ctypes.Structure):
    __c_struct__ = "struct sketch_top"
    __bpf_object__ = OBJECT
    _fields_ = [("n", ctypes.c_uint32), ("min", ctypes.c_uint32), ("bar", ctypes.c_uint32),
                ("pad", ctypes.c_uint32), ("est", ctypes.c_uint32 * SKETCH_TOP),
                ("len", ctypes.c_uint8 * SKETCH_TOP),
                ("pos", ctypes.c_uint8 * SKETCH_TOP_POS),
                ("key", (ctypes.c_uint64 * (SKETCH_KEY_MAX // 8)) * SKETCH_TOP)]


class SketchHeavy(ctypes.Structure):
    __c_struct__ = "struct sketch_heavy"
    __bpf_object__ = OBJECT
    _fields_ = [("cands", ctypes.c_uint32), ("pad", ctypes.c_uint32),
                ("bits", ctypes.c_uint64 * (SKETCH_HEAVY_BITS // 64))]


class HashCheck(ctypes.Structure):
    __c_struct__ = "struct sketch_hashcheck"
    __bpf_object__ = OBJECT
    _fields_ = [("len", ctypes.c_uint32), ("seed", ctypes.c_uint32),
                ("key", ctypes.c_uint8 * SKETCH_KEY_MAX), ("bpf", ctypes.c_uint32 * SKETCH_MAX_D),
                ("mod", ctypes.c_uint32 * SKETCH_MAX_D), ("ret", ctypes.c_int32),
                ("pad", ctypes.c_uint32)]


BANK_HDR = ctypes.sizeof(SketchBank)  # 56
# enum sketch_keyed: where a bank's cm.seed (the sketch's secret) came from
SK_KEYED_NOT_YET, SK_KEYED_DRAWN, SK_KEYED_CONFIG = 0, 1, 2


def choose_key(cfg: SketchConfig, pinned: tuple[int, int] | None = None) -> tuple[int, int]:
    """The one place a sketch gets its secret, (cm.seed, keyed) of its banks (sketch.h): new
    banks take the config's seed, or one drawn from the kernel's random source; banks reused
    from pins (a program reload or swap, a chain rebuild, a later controller) keep theirs, and a
    config seed that disagrees with them is refused (before a new program is attached)."""
    from nf.algo import draw_seed
    if pinned is None or pinned[1] == SK_KEYED_NOT_YET:
        return (cfg.seed, SK_KEYED_CONFIG) if cfg.seed is not None else (draw_seed(32), SK_KEYED_DRAWN)
    if cfg.seed is not None and pinned[0] != cfg.seed:
        raise RuntimeError(f"sketch {cfg.name!r}: the pinned banks are keyed by another seed than "
                           f"this config's {cfg.seed} (a seed change needs down/up)")
    return pinned


def bank_key(bank) -> tuple[int, int]:
    """(cm.seed, keyed) of a bank map, from its first header (the controller writes every CPU's
    header alike)."""
    h = SketchBank.from_buffer_copy(bank.lookup(bytes(4)))
    return h.cm.seed, h.keyed


def active_key(sk_active) -> tuple[int, int] | None:
    """The key of the bank sk_active holds; None while it holds none (a deployment being made)."""
    from nf.bpf import Map
    raw = sk_active.lookup(bytes(4))
    if raw is None:
        return None
    with Map.from_id(int.from_bytes(raw[:4], "little")) as bank:
        return bank_key(bank)


def keying_of(key: tuple[int, int]) -> dict:
    """`nf show`'s view of a key: how it was chosen, the seed only when the config gave it."""
    seed, keyed = key
    return keyed_by({SK_KEYED_DRAWN: "drawn", SK_KEYED_CONFIG: "config"}.get(keyed), seed)


def module_present() -> bool:
    """The enetstl module is loaded (its kfuncs can be resolved at load)."""
    return _module_present()


def make_cfg(cfg: SketchConfig, variant: Variant, redirect_ifindex: int = 0) -> SketchCfg:
    """The rodata struct for a validated config and a resolved variant."""
    flags = 0
    if cfg.count == CountWhat.bytes:
        flags |= SK_F_BYTES
    if cfg.counters == Counters.shared:
        flags |= SK_F_SHARED
    if cfg.nitro.enabled:
        flags |= SK_F_NITRO
    if cfg.threshold.fraction is not None:
        flags |= SK_F_FRACTION
    p = cfg.nitro.p if cfg.nitro.enabled else 1.0
    return SketchCfg(variant=VARIANT[variant], key_kind=KEY_KIND[cfg.key], flags=flags,
                     d=cfg.depth, w=cfg.width, action=ACTION[cfg.action],
                     redirect_ifindex=redirect_ifindex, threshold=cfg.threshold.q16,
                     min_total=cfg.threshold.min_total, nitro_scale_q16=round(65536 / p),
                     candidates=cfg.candidates,
                     nitro_neglog_q32=neglog2_q32(p), nitro_p_q32=min(1 << 32, max(1, round(p * 2**32))))


def decode_key(kind: KeyKind | str, raw: bytes):
    """Readable form of key bytes: five_tuple -> (src, dst, sport, dport, proto); src_dst ->
    (src, dst); src_ip/dst_ip -> address; src_mac -> 'aa:bb:..'."""
    import ipaddress
    kind = KeyKind(kind)
    if kind == KeyKind.src_mac:
        return ":".join(f"{b:02x}" for b in raw[:6])
    if kind in (KeyKind.src_ip, KeyKind.dst_ip):
        return str(ipaddress.ip_address(raw))
    alen = 16 if len(raw) in (32, 40) else 4
    s, d = str(ipaddress.ip_address(raw[:alen])), str(ipaddress.ip_address(raw[alen:2 * alen]))
    if kind == KeyKind.src_dst:
        return (s, d)
    o = 2 * alen
    return (s, d, int.from_bytes(raw[o:o + 2], "big"), int.from_bytes(raw[o + 2:o + 4], "big"), raw[o + 4])


def key_text(kind: KeyKind | str, raw: bytes) -> str:
    """A key as every command writes it: a five-tuple as the flow table writes a flow
    ("udp 10.0.0.1:1000 -> 10.0.0.2:2000", "tcp [fd00::1]:7 -> [fd00::2]:8"), a pair as
    "src -> dst", an address or MAC as itself."""
    k = decode_key(kind, raw)
    if not isinstance(k, tuple):
        return k
    if len(k) == 2:
        return f"{k[0]} -> {k[1]}"
    s, d, sport, dport, proto = k
    return flow_text(proto, s, sport, d, dport)


@dataclass
class BankSnapshot:
    """A bank read out: counters summed over CPUs (and per CPU), header sums."""
    bank: int
    epoch: int
    table: np.ndarray           # d x w uint64, summed over CPUs
    per_cpu: np.ndarray         # ncpu x d x w uint32 (1 x d x w for shared counters)
    total: int
    packets: int
    sampled: int
    d: int
    w: int
    seed: int

    def estimate(self, key: bytes) -> int:
        from nf import algo
        rows = self.table
        return int(min(rows[i, h & (self.w - 1)] for i, h in enumerate(algo.multi_hash(key, self.d, self.seed))))


@dataclass
class EpochRecord:
    epoch: int
    bank: int
    started: float
    ended: float
    total: int
    packets: int
    sampled: int
    top: list[tuple[bytes, int]]
    heavy: list[tuple[bytes, int]]
    snapshot: BankSnapshot | None = field(default=None, repr=False)
    recovered: bool = False     # closed by _recover_idle: a flip cut short by a killed process


class Sketch:
    def __init__(self, cfg: SketchConfig, variant: Variant | str | None = None,
                 name: str | None = None):
        if not isinstance(cfg, SketchConfig):
            raise TypeError(f"cfg must be a SketchConfig, got {type(cfg).__name__}")
        self.cfg = cfg
        self.name = name or cfg.name
        self._keep = False          # opened from pins: leaving a `with` releases fds, keeps pins
        self.variant = self.resolve_variant(Variant(variant) if variant else cfg.variant, cfg)
        self.obj = None
        self.banks: list = []
        self._maps: dict = {}
        self._bank_ids: list[int] = []
        self.pin_dir: Path | None = None
        self._prog = None
        self.epoch = 0
        self.epoch_started = 0.0
        self.history: deque[EpochRecord] = deque(maxlen=cfg.history or None) if cfg.history else deque(maxlen=0)
        self.links: list = []
        self._lock = threading.Lock()
        self._timer: threading.Thread | None = None
        self._stop = threading.Event()
        self.shared = cfg.counters == Counters.shared
        self.value_size = BANK_HDR + cfg.depth * cfg.width * 4
        self.seed, self.keyed = 0, SK_KEYED_NOT_YET    # the banks' key (choose_key)

    # -- variant -----------------------------------------------------------------------------
    @staticmethod
    def resolve_variant(v: Variant, cfg: SketchConfig | None = None) -> Variant:
        """What ``v`` runs as for ``cfg`` (auto decides by the config's depth: nf/variants.py)."""
        return Variant(KIND.resolve((cfg or SketchConfig()).model_copy(update={"variant": v})))

    # -- lifecycle ---------------------------------------------------------------------------
    def _new_bank(self, i: int):
        from nf.bpf import Map
        kind = "array" if self.shared else "percpu_array"
        return Map.create(kind, 4, self.value_size, 1, name=f"sk_bank{i}")

    def _open_object(self):
        """The object load() configures (None: the kind's own; a benchmark opens a build variant)."""
        return None

    def _adopt(self, obj, pin_dir: Path | None) -> "Sketch":
        self.obj, self.pin_dir = obj, pin_dir
        self._maps = {n: obj.map(n) for n in MAPS}
        return self

    def load(self) -> "Sketch":
        """Loaded by the engine and filled, nothing pinned, no attach: test_run-only mode."""
        from nf import engine
        if self.obj is not None:
            raise RuntimeError("sketch already loaded")
        self._adopt(engine.load(KIND, KIND.resolved(self.cfg, self.variant.value),
                                obj=self._open_object()), None)
        try:
            self.fill()
        except BaseException:
            self.down()
            raise
        return self

    def fill(self) -> None:
        """A fresh sketch's state: two cleared banks (pinned as bank0/bank1 in a pinned
        deployment), bank 0 active in epoch 0, and a pinned deployment's epoch log."""
        self.banks = [self._new_bank(0), self._new_bank(1)]
        if self.pin_dir is not None:
            for i, b in enumerate(self.banks):
                b.pin(self.pin_dir / f"bank{i}")
        self._bank_ids = [b.id for b in self.banks]
        self.seed, self.keyed = choose_key(self.cfg)
        for i in (0, 1):
            self._clear(i, epoch=i)
        self.epoch = 0
        self._maps["sk_active"].update(bytes(4), self.banks[0])
        self.epoch_started = time.time()
        if self.pin_dir is not None:
            self._write_log(self._empty_log())

    def up(self, pin: bool = False) -> "Sketch":
        """load() and attach to cfg.interfaces (none: test_run only). With ``pin`` the engine
        deploys it pinned in /sys/fs/bpf/xdp-nf/<name>/ (banks, maps, program, links), so the
        deployment outlives this process, and this controller drives it through the pins like
        :meth:`open_pinned` in any later process."""
        if pin:
            from nf import engine
            from nf.bpf import instance_dir
            d = instance_dir(self.name)
            if any(d.iterdir()):
                raise RuntimeError(f"sketch {self.name!r} is already deployed (pins in {d}); "
                                   "take it down first")
            cfg = self.cfg.model_copy(update={"name": self.name})
            try:
                obj, _ = engine.start(KIND, KIND.resolved(cfg, self.variant.value), d)
                obj.close()
            except BaseException:
                from nf.deploy import cleanup_pins
                cleanup_pins(self.name)
                raise
            return self._open(d)
        self.load()
        try:
            with netns.enter(self.cfg.netns):     # attach acts in the calling thread's netns
                for name in self.cfg.interfaces:
                    self.attach(name)
        except BaseException:
            self.down()
            raise
        return self

    def release(self) -> None:
        """Close this process's fds but leave a pinned deployment running (the CLI's `up`)."""
        if self.pin_dir is None:
            raise RuntimeError("release() keeps pins: only for a sketch brought up with pin=True")
        self.stop_epochs()
        for link in self.links:
            link.close()
        self.links = []
        if self._prog is not None:
            self._prog.close()
            self._prog = None
        if self.obj is None:
            for m in self._maps.values():
                m.close()
        self._maps = {}
        if self.obj is not None:
            self.obj.close()
            self.obj = None
        for b in self.banks:
            b.close()
        self.banks = []
        self.pin_dir = None

    def keying(self) -> dict:
        """How the rows are keyed (the banks' key, read at load or open): nf.nfs.kind.keyed_by."""
        return keying_of((self.seed, self.keyed))

    def counters(self) -> dict[str, dict[str, int]]:
        """Per-group counters (the CLI's stats): the current epoch's bank header and candidates."""
        self._need()
        i = self.active
        raw = self.banks[i].lookup(bytes(4))
        n = self._ncpu_slots()
        stride = ((self.value_size + 7) & ~7) if not self.shared else self.value_size
        tot = pk = sm = ep = 0
        for c in range(n):
            h = SketchBank.from_buffer_copy(raw, c * stride)
            tot, pk, sm, ep = tot + h.total, pk + h.packets, sm + h.sampled, h.epoch
        return {"epoch": {"epoch": ep, "bank": i, "packets": pk, "sampled": sm, "total": tot,
                          "candidates": len(self.candidates(i))}}

    @classmethod
    def open_pinned(cls, cfg: SketchConfig, name: str | None = None) -> "Sketch":
        """A controller for a sketch deployed with up(pin=True) by another process (same
        config): queries, flips and reset act on the pinned maps; down() removes the
        deployment. The epoch history is the opener's own."""
        from nf.bpf import instance_dir
        name = name or cfg.name
        d = instance_dir(name, create=False)
        if not (d / "sk_active").exists():
            raise RuntimeError(f"no sketch {name!r} is deployed ({d} has no pins)")
        return cls(cfg, variant=Variant.pure, name=name)._open(d)   # variant: the deployer's

    def _open(self, d: Path) -> "Sketch":
        from nf.bpf import Map, Program
        sk, name = self, self.name
        sk.variant = None
        sk._keep = True
        sk.pin_dir = d
        sk._maps = {n: Map.from_pin(d / n) for n in MAPS}
        sk.banks = [Map.from_pin(d / "bank0"), Map.from_pin(d / "bank1")]
        sk._bank_ids = [b.id for b in sk.banks]
        if sk.banks[0].value_size != sk.value_size or sk.banks[0].percpu == sk.shared:
            raise RuntimeError(f"pinned sketch {name!r} was deployed with another depth/width/"
                               "counters than this config")
        sk.seed, sk.keyed = choose_key(sk.cfg, bank_key(sk.banks[sk.active]))
        sk._prog = Program.from_pin(d / "prog")
        sk.epoch = SketchBank.from_buffer_copy(sk.banks[sk.active].lookup(bytes(4))).epoch
        sk.epoch_started = sk.epoch_log().get("epoch_started") or 0.0
        return sk

    def attach(self, iface: str | int, mode=None):
        """Attach this process's program to one more interface (an unpinned link, held here)."""
        from nf.bpf import XdpMode
        m = XdpMode[str(getattr(mode or self.cfg.attach, "value", mode or self.cfg.attach)).upper()]
        link = self.program.attach_xdp(iface, mode=m)
        self.links.append(link)
        return link

    def down(self) -> None:
        """Detach, drop the pins (if deployed pinned) and release every fd. Idempotent."""
        from nf.deploy import cleanup_pins
        self.stop_epochs()
        if self.pin_dir is not None:
            cleanup_pins(self.name)          # its pinned links detach, everything is unpinned
        for link in self.links:
            try:
                link.detach()
            except Exception:
                pass
        self.links = []
        self.pin_dir = None
        if self._prog is not None:
            self._prog.close()
            self._prog = None
        for m in self._maps.values():
            if self.obj is None:
                m.close()
        self._maps = {}
        if self.obj is not None:
            self.obj.close()
            self.obj = None
        for b in self.banks:
            b.close()
        self.banks = []

    close = down

    def __enter__(self) -> "Sketch":
        if not self._maps:
            self.up()
        return self

    def __exit__(self, *exc) -> None:
        if self._keep:
            self.release()
        else:
            self.down()

    @property
    def program(self):
        self._need()
        return self._prog if self._prog is not None else self.obj.program(PROG)

    def _need(self) -> None:
        if not self._maps:
            raise RuntimeError("sketch is not loaded: call load() or up()")

    @property
    def active(self) -> int:
        """Index of the bank the datapath writes now (read from sk_active, so a flip made by
        another process is seen)."""
        self._need()
        raw = self._maps["sk_active"].lookup(bytes(4))
        return self._bank_ids.index(int.from_bytes(raw[:4], "little"))

    # -- banks -------------------------------------------------------------------------------
    def _ncpu_slots(self) -> int:
        return self.banks[0].ncpus if not self.shared else 1

    def _clear(self, i: int, epoch: int) -> None:
        cfg = self.cfg
        hdr = SketchBank(id=i, epoch=epoch & 0xFFFFFFFF, keyed=self.keyed,
                         cm=CmHdr(d=cfg.depth, w=cfg.width, seed=self.seed, flags=0))
        one = bytes(hdr) + bytes(self.value_size - BANK_HDR)
        stride = (self.value_size + 7) & ~7
        one = one + bytes(stride - len(one))
        val = one * self._ncpu_slots() if not self.shared else bytes(hdr) + bytes(self.value_size - BANK_HDR)
        self.banks[i].update(bytes(4), val)
        for n in ("sk_top", "sk_heavy"):    # the bank's top tables and flagged flows
            m = self._maps[n]
            m.update(i.to_bytes(4, "little"), bytes(m.value_buf_size))

    def snapshot(self, bank: int | None = None) -> BankSnapshot:
        """Read a bank (default: the active one, still being written)."""
        self._need()
        i = self.active if bank is None else bank
        raw = self.banks[i].lookup(bytes(4))
        cfg = self.cfg
        n = self._ncpu_slots()
        stride = ((self.value_size + 7) & ~7) if not self.shared else self.value_size
        per, tot, pk, sm, ep = [], 0, 0, 0, 0
        for c in range(n):
            base = c * stride
            h = SketchBank.from_buffer_copy(raw, base)
            tot, pk, sm, ep = tot + h.total, pk + h.packets, sm + h.sampled, h.epoch
            seed = h.cm.seed            # what the datapath hashed this bank with
            per.append(np.frombuffer(raw, dtype=np.uint32, count=cfg.depth * cfg.width,
                                     offset=base + BANK_HDR).reshape(cfg.depth, cfg.width))
        per_cpu = np.stack(per)
        return BankSnapshot(bank=i, epoch=ep, table=per_cpu.sum(axis=0, dtype=np.uint64),
                            per_cpu=per_cpu, total=tot, packets=pk, sampled=sm, d=cfg.depth,
                            w=cfg.width, seed=seed)

    def candidates(self, bank: int | None = None) -> dict[bytes, Cand]:
        """Candidate table of a bank: key bytes -> struct sketch_cand."""
        self._need()
        i = self.active if bank is None else bank
        t = self._maps["sk_cand"].typed(CandKey, Cand)
        out = {}
        for k, v in t.items():
            if k.bank == i:
                out[bytes(k.key)[:k.len]] = v
        return out

    def top_flows(self, bank: int | None = None) -> dict[bytes, int]:
        """The flows of a bank's top tables (every CPU's): key bytes -> the largest estimate a
        CPU recorded for it."""
        self._need()
        i = self.active if bank is None else bank
        t = self._maps["sk_top"].typed(ctypes.c_uint32, SketchTop)
        out: dict[bytes, int] = {}
        for top in t.lookup_percpu(ctypes.c_uint32(i)) or []:
            for j in range(SKETCH_TOP):
                if top.len[j]:
                    k = bytes(top.key[j])[:top.len[j]]
                    out[k] = max(out.get(k, 0), top.est[j])
        return out

    def _drop_candidates(self, bank: int) -> int:
        t = self._maps["sk_cand"].typed(CandKey, Cand)
        ks = [k for k in t.keys() if k.bank == bank]
        for k in ks:
            t.delete(k)
        return len(ks)

    # -- queries -----------------------------------------------------------------------------
    def key(self, flow=None, **kw) -> bytes:
        """Key bytes of the configured kind: a traffic Flow, bytes, (src,dst,sport,dport,proto)
        tuple, or keyword fields (src=, dst=, sport=, dport=, proto=, mac=)."""
        if isinstance(flow, (bytes, bytearray)):
            return bytes(flow)
        if isinstance(flow, tuple):
            names = ("src", "dst", "sport", "dport", "proto")
            kw.update(dict(zip(names, flow)))
            flow = None
        if isinstance(flow, str) and self.cfg.key == KeyKind.src_mac:
            kw["mac"], flow = flow, None
        elif isinstance(flow, str):
            kw["src" if self.cfg.key != KeyKind.dst_ip else "dst"], flow = flow, None
        return flow_key(self.cfg.key, flow, **kw)

    def point(self, flow, snap: BankSnapshot | None = None) -> int:
        """Count-min estimate of one flow in the current epoch (all CPUs)."""
        return (snap or self.snapshot()).estimate(self.key(flow))

    def _threshold_for(self, total: int) -> float:
        t = self.cfg.threshold
        if t.absolute is not None:
            return t.absolute
        if total < t.min_total:
            return math.inf
        return t.q16 * total / 65536

    def _known(self, bank: int) -> set[bytes]:
        """Every flow the datapath kept for a bank: its CPUs' top tables and its candidates."""
        return set(self.top_flows(bank)) | set(self.candidates(bank))

    def topk(self, k: int | None = None, bank: int | None = None,
             snap: BankSnapshot | None = None) -> list[tuple[bytes, int]]:
        """The k flows with the largest estimates (counters summed over CPUs), whatever the
        threshold: every CPU's top table (the SKETCH_TOP largest it saw) and the heavy-hitter
        candidates, re-estimated."""
        k = self.cfg.topk if k is None else k
        snap = snap or self.snapshot(bank)
        est = [(key, snap.estimate(key)) for key in self._known(snap.bank)]
        est.sort(key=lambda kv: (-kv[1], kv[0]))
        return est[:k]

    def heavy_hitters(self, bank: int | None = None,
                      snap: BankSnapshot | None = None) -> list[tuple[bytes, int]]:
        """Flows whose estimate over all CPUs passes the threshold (global semantics): the
        candidates, and top-table flows spread over CPUs that no CPU flagged alone."""
        snap = snap or self.snapshot(bank)
        thr = self._threshold_for(snap.total)
        out = [(key, e) for key, e in ((k, snap.estimate(k)) for k in self._known(snap.bank))
               if e >= thr]
        out.sort(key=lambda kv: (-kv[1], kv[0]))
        return out

    def stats(self) -> StatsSummary:
        self._need()
        from nf.datapath import NfStats, sum_stats
        m = self._maps[STATS_MAP].typed(ctypes.c_uint32, NfStats)
        return sum_stats(m.lookup_percpu(ctypes.c_uint32(0)))

    # -- epochs ------------------------------------------------------------------------------
    def _empty_log(self) -> dict:
        return {"epoch_started": self.epoch_started or time.time(), "closed": 0, "closed_packets": 0,
                "closed_total": 0, "last_epoch": None, "history": []}

    def epoch_log(self) -> dict:
        """The pinned epoch log (a sketch deployed with pin=True): ``epoch_started`` of the
        current epoch, ``closed`` epochs so far with their summed ``closed_packets`` /
        ``closed_total``, ``last_epoch`` recorded and ``history`` (the last cfg.history epochs:
        epoch, bank, started, ended, packets, total, sampled, top, heavy, recovered). Every
        flip of any process appends to it; `nf topk --history` and the metrics read it."""
        if self.pin_dir is None:
            raise RuntimeError("only a pinned sketch keeps an epoch log")
        from nf.deploy import read_doc
        return read_doc(self.pin_dir / EPOCH_PIN) or self._empty_log()

    def _write_log(self, log: dict) -> None:
        import json
        from nf.deploy import write_doc
        keep = self.cfg.history
        log["history"] = log["history"][-keep:] if keep else []
        while log["history"] and len(json.dumps(log)) > EPOCH_LOG_MAX:
            log["history"] = log["history"][len(log["history"]) // 8 + 1:]
        write_doc(self.pin_dir / EPOCH_PIN, log, name="sk_epochs")

    def _flows(self, pairs) -> list:
        return [[key_text(self.cfg.key, key), int(est)] for key, est in pairs]

    def _log_epoch(self, rec: EpochRecord) -> None:
        log = self.epoch_log()
        log["history"].append({"epoch": rec.epoch, "bank": rec.bank, "started": rec.started,
                               "ended": rec.ended, "packets": rec.packets, "total": rec.total,
                               "sampled": rec.sampled, "top": self._flows(rec.top),
                               "heavy": self._flows(rec.heavy), "recovered": rec.recovered})
        log["closed"] += 1
        log["closed_packets"] += rec.packets
        log["closed_total"] += rec.total
        log["last_epoch"] = rec.epoch
        log["epoch_started"] = rec.ended
        self._write_log(log)

    def _bank_sums(self, i: int) -> tuple[int, int, int, int]:
        """(epoch, packets, total, sampled) of a bank's headers, summed over CPUs."""
        raw = self.banks[i].lookup(bytes(4))
        stride = ((self.value_size + 7) & ~7) if not self.shared else self.value_size
        ep = pk = tot = sm = 0
        for c in range(self._ncpu_slots()):
            h = SketchBank.from_buffer_copy(raw, c * stride)
            ep, pk, tot, sm = h.epoch, pk + h.packets, tot + h.total, sm + h.sampled
        return ep, pk, tot, sm

    def _last_recorded(self) -> int | None:
        """The number of the last epoch recorded (the pinned log's, else this process's history)."""
        if self.pin_dir is not None:
            return self.epoch_log()["last_epoch"]
        return self.history[-1].epoch if self.history else None

    def _idle_clean(self, idle: int, nxt: int) -> bool:
        """The idle bank is what a completed flip leaves: numbered ``nxt``, no counts, and no top
        table, heavy bits or candidates of its own (the datapath reads those: a stale top table
        keeps its flows, a stale candidate count takes their slots)."""
        ep, pk, tot, sm = self._bank_sums(idle)
        if ep != nxt or pk or tot or sm:
            return False
        k = idle.to_bytes(4, "little")
        if any(self._maps[n].lookup(k).strip(b"\0") for n in ("sk_top", "sk_heavy")):
            return False
        return not any(c.bank == idle for c in self._maps["sk_cand"].typed(CandKey, Cand).keys())

    def _recover_idle(self) -> EpochRecord | None:
        """A flip cut short (its process killed anywhere after the swap, before the clear of the
        old bank ended) leaves in the idle bank the epoch it closed, recorded or not, with or
        without packets; installing that bank again would reuse its number and counts. So before
        every flip (and the flip's own steps are ordered for it: swap, record, clear) an idle bank
        that is not clean is repaired: if it holds the epoch before the active one and the log
        does not have it yet, that epoch is recorded (recovered: ``ended`` is now, the swap's time
        is lost); then its candidates go and it is cleared for the next epoch. Its header's
        number decides, not its counts: an idle epoch is an epoch too."""
        act = self.active
        idle, cur = 1 - act, self._bank_sums(act)[0]
        nxt = (cur + 1) & 0xFFFFFFFF
        if self._idle_clean(idle, nxt):
            return None
        rec = None
        ep = self._bank_sums(idle)[0]
        if ep == (cur - 1) & 0xFFFFFFFF and self._last_recorded() != ep:
            log = self.epoch_log() if self.pin_dir is not None else None
            snap = self.snapshot(idle)
            rec = EpochRecord(epoch=ep, bank=idle, started=log["epoch_started"] if log else 0.0,
                              ended=time.time(), total=snap.total, packets=snap.packets,
                              sampled=snap.sampled, top=self.topk(self.cfg.topk, snap=snap),
                              heavy=self.heavy_hitters(snap=snap), recovered=True)
            if log is not None:
                self._log_epoch(rec)
            elif self.history.maxlen != 0:
                self.history.append(rec)
        self._drop_candidates(idle)
        self._clear(idle, epoch=nxt)
        return rec

    def flip(self, keep_snapshot: bool = True) -> EpochRecord:
        """End the epoch: install the idle bank, wait (inside the map update) for programs still
        using the old one, read it into an EpochRecord (appended to history, and to the pinned
        epoch log of a pinned sketch), clear it. Callers in several processes serialise flips
        themselves (the CLI: deploy.locked())."""
        self._need()
        with self._lock:
            self._recover_idle()
            old, new = self.active, 1 - self.active
            self._maps["sk_active"].update(bytes(4), self.banks[new])  # synchronize_rcu inside
            ended = time.time()
            snap = self.snapshot(old)
            if self.pin_dir is not None:      # the log's start of this epoch, whoever flipped last
                self.epoch_started = self.epoch_log().get("epoch_started") or self.epoch_started
            rec = EpochRecord(epoch=snap.epoch, bank=old, started=self.epoch_started, ended=ended,
                              total=snap.total, packets=snap.packets, sampled=snap.sampled,
                              top=self.topk(self.cfg.topk, snap=snap),
                              heavy=self.heavy_hitters(snap=snap),
                              snapshot=snap if keep_snapshot else None)
            if self.pin_dir is not None:      # recorded before the bank is cleared (see _recover_idle)
                self._log_epoch(rec)
            self.epoch = snap.epoch + 1   # the bank's header: right even after another process flipped
            self.epoch_started = ended
            self._drop_candidates(old)
            self._clear(old, epoch=self.epoch + 1)
            if self.history.maxlen != 0:
                self.history.append(rec)
            return rec

    def reset(self) -> None:
        """Zero both banks and the candidate table, forget history; epoch numbering restarts.
        The active bank is swapped out first so no in-flight update lands in a cleared bank.
        The pinned log is emptied first: cut short anywhere after that, the log starts over and
        the next flip (its _recover_idle) records whatever epoch the banks hold, with no gap."""
        self._need()
        with self._lock:
            self.epoch = 0
            self.epoch_started = time.time()
            self.history.clear()
            if self.pin_dir is not None:
                self._write_log(self._empty_log())
            act = self.active
            for i, ep in ((act, 0), (1 - act, 1)):      # each bank out of use while cleared
                self._maps["sk_active"].update(bytes(4), self.banks[1 - i])
                self._drop_candidates(i)
                self._clear(i, epoch=ep)

    def start_epochs(self) -> None:
        """Flip every cfg.epoch_s seconds in a background thread (stop_epochs / down stop it)."""
        if self._timer is not None:
            return
        self._stop.clear()

        def loop():
            while not self._stop.wait(self.cfg.epoch_s):
                self.flip()
        self._timer = threading.Thread(target=loop, name="sketch-epochs", daemon=True)
        self._timer.start()

    def stop_epochs(self) -> None:
        if self._timer is not None:
            self._stop.set()
            self._timer.join(timeout=10)
            self._timer = None


def uses_pool(cfg: SketchConfig) -> bool:
    """NitroSketch on the eNetSTL variant samples through the module's random pool."""
    return cfg.nitro.enabled and Variant(cfg.variant) == Variant.enetstl


def topk_rows(sk, k: int | None = None, flip: bool = False) -> list[dict]:
    """`nf topk`: the top flows of the current epoch (or, with ``flip``, of the epoch this call
    closes)."""
    if flip:
        r = sk.flip(keep_snapshot=False)
        top, heavy, ep = r.top[:k] if k else r.top, {key for key, _ in r.heavy}, r.epoch
    else:
        snap = sk.snapshot()
        top = sk.topk(k, snap=snap)
        heavy, ep = {key for key, _ in sk.heavy_hitters(snap=snap)}, snap.epoch
    return [{"flow": key_text(sk.cfg.key, key), "estimate": int(est), "heavy": key in heavy,
             "epoch": ep} for key, est in top]


class SketchKind(Kind):
    name = "sketch"
    summary = "heavy-hitter count-min sketch (top-k, epochs, NitroSketch)"
    config = SketchConfig
    objects = one_object(OBJECT, OBJECT_CHAIN)    # the variant is rodata (sk_cfg.variant)
    programs = dict.fromkeys(VARIANTS, PROG)
    exit_stats = STATS_MAP
    reasons = ("no_key", "heavy", "candidates_full", "sampled_out", "no_bank")   # REASON_*
    verbs = {"topk": topk_rows}
    # the current epoch's values (reset by each flip)
    gauges = {"epoch": ("xdpnf_sketch_epoch", "number of the sketch's current epoch"),
              "bank": ("xdpnf_sketch_active_bank", "bank (0/1) the datapath counts into now"),
              "packets": ("xdpnf_sketch_epoch_packets", "frames counted in the current epoch"),
              "sampled": ("xdpnf_sketch_epoch_sampled", "frames sampled in the current epoch"),
              "total": ("xdpnf_sketch_epoch_sum", "count-min increments (packets or bytes) in "
                                                  "the current epoch"),
              "candidates": ("xdpnf_sketch_epoch_candidates", "heavy-hitter candidates of the "
                                                             "current epoch")}

    def interface_fields(self, cfg):
        return super().interface_fields(cfg) + ([("redirect_to", cfg.redirect_to)]
                                                if cfg.redirect_to else [])

    def configure(self, obj, cfg) -> None:
        from nf.bpf import Map
        variant = Variant(cfg.variant)
        obj.set_rodata("sk_cfg", make_cfg(cfg, variant, ifindex_or_0(cfg.redirect_to, cfg.netns)))
        obj.set_rodata("sk_log2_tab", (ctypes.c_uint32 * SKETCH_LOG2_TAB)(*log2_table(SKETCH_LOG2_TAB)))
        obj.map("sk_cand").set_max_entries(2 * cfg.candidates)
        # the banks' shape (sk_active's inner maps); the banks themselves come with fill()
        shared = cfg.counters == Counters.shared
        tmpl = Map.create("array" if shared else "percpu_array", 4,
                          BANK_HDR + cfg.depth * cfg.width * 4, 1, name="sk_tmpl")
        obj.map("sk_active").set_inner_map(obj.own(tmpl))
        obj.program(PROG_HASHCHECK).set_autoload(False)
        obj.program(PROG_POOL).set_autoload(uses_pool(cfg))

    def started(self, obj, cfg) -> None:
        """A new program on pinned banks: their key must be the config's seed when it gives one
        (choose_key; fresh banks are keyed by fill()). Every load of an eNetSTL NitroSketch
        creates its random pool (the handle is in this program's .bss, so a new program on
        pinned maps needs its own)."""
        pinned = active_key(obj.map("sk_active"))
        if pinned is not None:
            choose_key(cfg, pinned)
        if uses_pool(cfg):
            r = obj.program(PROG_POOL).test_run(bytes(64))
            if r.retval != 2:
                raise RuntimeError(f"cannot create the module random pool (retval {r.retval})")

    keyed_table = "count-min rows"

    def keying(self, rec) -> dict:
        from nf.bpf import Map
        with Map.from_pin(rec.pin_dir / "sk_active") as m:
            return keying_of(active_key(m) or (0, SK_KEYED_NOT_YET))

    def controller(self, cfg, obj, pin_dir):
        return Sketch(cfg, variant=cfg.variant)._adopt(obj, pin_dir)

    def fill(self, sk) -> dict:
        sk.fill()
        return {}

    def open(self, cfg, pin_dir):
        return Sketch.open_pinned(cfg, Path(pin_dir).name)

    def runtime(self, sk, old, new) -> list[str]:
        # read by the controller only (`nf topk` defaults, the agent's epochs)
        return [f"{f} {getattr(old, f)} -> {getattr(new, f)} (controller side)"
                for f in ("topk", "epoch_s", "history") if getattr(old, f) != getattr(new, f)]

    def stats(self, sk) -> dict[str, dict[str, int]]:
        return sk.counters()

    # ---- after `nf up`: the agent flips the epochs; show and the metrics read the epoch log ----
    tick_what = "flip"
    agent_does = "flips sketch epochs"
    without_agent = "sketch epochs do not flip"

    @staticmethod
    def _log(rec) -> dict:
        from nf.deploy import read_doc
        try:
            return read_doc(rec.pin_dir / EPOCH_PIN) or {}
        except Exception:  # noqa: BLE001 - show and the metrics must not fail on one bad log
            return {}

    def due(self, rec, cfg) -> float:
        """When `nf agent` flips this sketch next (unix time)."""
        from nf.deploy import read_doc
        return ((read_doc(rec.pin_dir / EPOCH_PIN) or {}).get("epoch_started") or rec.created) \
            + cfg.epoch_s

    def tick(self, sk) -> str:
        r = sk.flip(keep_snapshot=False)
        top = ", ".join(f"{f} {e}" for f, e in sk._flows(r.top[:3]))
        return (f"epoch {r.epoch} closed: {r.packets} packets" + (f", top {top}" if top else "")
                + (" (recovered)" if r.recovered else ""))

    def show(self, rec) -> dict:
        """`nf show --json`: the epoch log's state and the agent's pid."""
        from nf.agent import running
        log = self._log(rec)
        return {"epochs": {"epoch_started": log.get("epoch_started"), "closed": log.get("closed", 0),
                           "closed_packets": log.get("closed_packets", 0), "agent": running()}}

    def show_line(self, rec) -> str:
        log = self._log(rec)
        st = log.get("epoch_started")
        age = f"{time.time() - st:.0f} s ago" if st else "?"
        return (f"{rec.name}: epoch started {age}, every {rec.config.get('epoch_s')} s; "
                f"{log.get('closed', 0)} closed ({log.get('closed_packets', 0)} packets)")

    def metrics(self, rec, exp) -> None:
        """From the epoch log: closed epochs and the frames counted over all epochs (closed +
        current: a real counter, unlike the per-epoch gauges), when the epoch began."""
        from nf.deploy import read_doc
        log = read_doc(rec.pin_dir / EPOCH_PIN)
        if log is None:
            return
        lab = {"instance": rec.name}
        cur = exp.fams.get("xdpnf_sketch_epoch_packets")
        now = sum(v for la, v in (cur.samples if cur else []) if la["instance"] == rec.name)
        exp.add("xdpnf_sketch_packets_total", "counter", "frames counted by the sketch over every "
                "epoch (closed epochs of the log + the current one)", lab, log["closed_packets"] + now)
        exp.add("xdpnf_sketch_epochs_closed_total", "counter", "epochs closed (bank flips)", lab,
                log["closed"])
        if log.get("epoch_started"):
            exp.add("xdpnf_sketch_epoch_started_timestamp_seconds", "gauge", "when the current "
                    "epoch began (unix time)", lab, round(log["epoch_started"], 3))


KIND = SketchKind()


def hashcheck(obj_or_prog, key: bytes, seed: int) -> HashCheck:
    """Run xdp_sketch_hashcheck on one key (VM tier): BPF rows vs the module's multi-hash."""
    if len(key) not in (4, 8, 16, 32, 40):
        raise ValueError("key length must be 4, 8, 16, 32 or 40")
    r = HashCheck(len=len(key), seed=seed)
    ctypes.memmove(r.key, key, len(key))
    res = obj_or_prog.test_run(bytes(r))
    if res.retval != 2:
        raise RuntimeError(f"hashcheck returned {res.retval}")
    return HashCheck.from_buffer_copy(res.data_out[:ctypes.sizeof(HashCheck)])


def open_hashcheck():
    """A loaded object with only xdp_sketch_hashcheck (plus the maps it needs)."""
    from nf.bpf import BpfObject, Map
    obj = BpfObject.open_built(OBJECT)
    try:
        inner = Map.create("percpu_array", 4, BANK_HDR + 4 * 4 * 1024, 1, name="sk_tmpl")
        obj.map("sk_active").set_inner_map(inner)
        obj.program(PROG).set_autoload(False)
        obj.program(PROG_POOL).set_autoload(False)
        obj.load()
        inner.close()
    except BaseException:
        obj.close()
        raise
    return obj
