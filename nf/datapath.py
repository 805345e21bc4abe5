"""Python mirrors of the shared datapath structs (xdp_progs/include/stats.h, xdp_progs/base/base.h).

Layouts are checked against the BTF of the built objects by tests/nf/bpf/test_layout.py
(``__c_struct__`` names the C type, ``__bpf_object__`` the object whose BTF holds it).

    stats = sum_stats(obj.map("base_stats").typed(ctypes.c_uint32, NfStats).lookup_percpu(0))
    stats.packets[XdpAction.PASS], stats.bytes[XdpAction.DROP], stats.reasons[Reason.TRUNCATED]

From a pinned map (another process attached the program):
    sum_stats(Map.from_pin(path, ctypes.c_uint32, NfStats).lookup_percpu(0))
"""
from __future__ import annotations

import ctypes
import enum
from dataclasses import dataclass, field
from typing import Iterable

# stats.h
NF_STATS_ACTIONS = 5
NF_STATS_REASONS = 16
NF_REASON_NF_BASE = 8
# base.h
BASE_MAX_PROTOS = 4
BASE_MAX_PORTS = 4
BASE_OBJECT = "base/base"
BASE_PROGRAM = "xdp_base"
BASE_STATS_MAP = "base_stats"
BASE_CFG_VAR = "base_cfg"


class XdpAction(enum.IntEnum):
    """uapi enum xdp_action; also the index of NfStats.packets/bytes."""
    ABORTED = 0
    DROP = 1
    PASS = 2
    TX = 3
    REDIRECT = 4


class Reason(enum.IntEnum):
    """enum nf_reason (stats.h): index of NfStats.reasons. Parse errors use the same values."""
    NONE = 0
    TRUNCATED = 1
    MALFORMED = 2
    TOO_DEEP = 3
    CONFIG = 4
    INVALID_ACTION = 5

    @staticmethod
    def nf(n: int) -> int:
        """Slot of an NF's own reason n (0..7), like NF_REASON_NF(n) in C."""
        if not 0 <= n < NF_STATS_REASONS - NF_REASON_NF_BASE:
            raise ValueError(f"NF reason {n} out of range 0..{NF_STATS_REASONS - NF_REASON_NF_BASE - 1}")
        return NF_REASON_NF_BASE + n


class NfStats(ctypes.Structure):
    """struct nf_stats: one per-CPU record of every NF's stats map (key 0)."""
    __c_struct__ = "struct nf_stats"
    __bpf_object__ = BASE_OBJECT
    _fields_ = [
        ("packets", ctypes.c_uint64 * NF_STATS_ACTIONS),
        ("bytes", ctypes.c_uint64 * NF_STATS_ACTIONS),
        ("reasons", ctypes.c_uint64 * NF_STATS_REASONS),
    ]


@dataclass
class StatsSummary:
    """NfStats summed over CPUs, as plain ints keyed by action / reason."""
    packets: dict[XdpAction, int] = field(default_factory=lambda: {a: 0 for a in XdpAction})
    bytes: dict[XdpAction, int] = field(default_factory=lambda: {a: 0 for a in XdpAction})
    reasons: dict[int, int] = field(default_factory=lambda: {r: 0 for r in range(NF_STATS_REASONS)})
    cpus: int = 0
    nf_reasons: tuple[str, ...] = ()   # names of the NF's own reasons (its KIND's ``reasons``)

    @property
    def total_packets(self) -> int:
        return sum(self.packets.values())

    def as_dict(self) -> dict:
        """JSON-friendly: action and reason names (an NF's own slots by the names its KIND gives,
        else nf0..nf7), zeros kept; unused shared slots only when counted (never, unless a bug)."""
        def rname(r: int) -> str:
            if r in Reason._value2member_map_:
                return Reason(r).name.lower()
            n = r - NF_REASON_NF_BASE
            if n >= 0:
                return self.nf_reasons[n] if n < len(self.nf_reasons) else f"nf{n}"
            return f"reserved{r}"
        return {
            "packets": {a.name.lower(): v for a, v in self.packets.items()},
            "bytes": {a.name.lower(): v for a, v in self.bytes.items()},
            "reasons": {rname(r): v for r, v in self.reasons.items() if r != Reason.NONE
                        and (v or r in Reason._value2member_map_ or r >= NF_REASON_NF_BASE)},
            "cpus": self.cpus,
        }


def sum_stats(per_cpu: Iterable[NfStats]) -> StatsSummary:
    """Sum per-CPU NfStats records (what Map.lookup_percpu returns) into one summary."""
    s = StatsSummary()
    for rec in per_cpu:
        if not isinstance(rec, NfStats):
            raise TypeError(f"sum_stats expects NfStats records, got {type(rec).__name__}")
        s.cpus += 1
        for a in XdpAction:
            s.packets[a] += rec.packets[a]
            s.bytes[a] += rec.bytes[a]
        for r in range(NF_STATS_REASONS):
            s.reasons[r] += rec.reasons[r]
    return s


def read_stats(obj, map_name: str = BASE_STATS_MAP) -> StatsSummary:
    """Sum the per-CPU stats record of a loaded nf.bpf BpfObject's stats map."""
    m = obj.map(map_name).typed(ctypes.c_uint32, NfStats)
    return sum_stats(m.lookup_percpu(ctypes.c_uint32(0)))


class BaseCfg(ctypes.Structure):
    """struct base_cfg (xdp_progs/base/base.h): the base program's rodata config.

    The defaults of BaseCfg() equal the C initializer: action PASS, malformed_action DROP,
    no rules. Use ``BaseCfg.make(...)`` for validated construction from Python values."""
    __c_struct__ = "struct base_cfg"
    __bpf_object__ = BASE_OBJECT
    _fields_ = [
        ("action", ctypes.c_uint32),
        ("malformed_action", ctypes.c_uint32),
        ("drop_fragments", ctypes.c_uint8),
        ("drop_l4_protos", ctypes.c_uint8 * BASE_MAX_PROTOS),
        ("pad", ctypes.c_uint8),
        ("drop_dports", ctypes.c_uint16 * BASE_MAX_PORTS),
    ]

    def __init__(self, *args, **kw):
        kw.setdefault("action", XdpAction.PASS)
        kw.setdefault("malformed_action", XdpAction.DROP)
        super().__init__(*args, **kw)

    @classmethod
    def make(cls, action: XdpAction | int = XdpAction.PASS,
             malformed_action: XdpAction | int = XdpAction.DROP, drop_fragments: bool = False,
             drop_l4_protos: Iterable[int] = (), drop_dports: Iterable[int] = ()) -> "BaseCfg":
        """Validated config; bad values raise ValueError naming the field."""
        for name, a in (("action", action), ("malformed_action", malformed_action)):
            if a not in (XdpAction.ABORTED, XdpAction.DROP, XdpAction.PASS, XdpAction.TX):
                raise ValueError(f"base_cfg.{name}: {a!r} is not ABORTED/DROP/PASS/TX "
                                 "(REDIRECT needs a target the base program does not have)")
        protos, ports = list(drop_l4_protos), list(drop_dports)
        if len(protos) > BASE_MAX_PROTOS or any(not 1 <= p <= 255 for p in protos):
            raise ValueError(f"base_cfg.drop_l4_protos: at most {BASE_MAX_PROTOS} protocol "
                             f"numbers in 1..255, got {protos}")
        if len(ports) > BASE_MAX_PORTS or any(not 1 <= p <= 65535 for p in ports):
            raise ValueError(f"base_cfg.drop_dports: at most {BASE_MAX_PORTS} ports in 1..65535, "
                             f"got {ports}")
        c = cls(action=int(action), malformed_action=int(malformed_action),
                drop_fragments=1 if drop_fragments else 0)
        for i, p in enumerate(protos):
            c.drop_l4_protos[i] = p
        for i, p in enumerate(ports):
            c.drop_dports[i] = p
        return c


def open_base(cfg: BaseCfg | None = None):
    """Open build/bpf/base/base.o (built if stale) with ``cfg`` written to its rodata, not yet
    loaded (set map sizes / pins, then ``.load()``). The caller owns the BpfObject (use ``with``)."""
    from nf.bpf import BpfObject  # lazy: the mirrors above must import without libbpf

    obj = BpfObject.open_built(BASE_OBJECT)
    try:
        if cfg is not None:
            if not isinstance(cfg, BaseCfg):
                raise TypeError(f"cfg must be a BaseCfg, got {type(cfg).__name__}")
            obj.set_rodata(BASE_CFG_VAR, cfg)
    except BaseException:
        obj.close()
        raise
    return obj


def load_base(cfg: BaseCfg | None = None):
    """open_base(cfg) and load it: programs ``xdp_base``, map ``base_stats`` ready."""
    obj = open_base(cfg)
    try:
        obj.load()
    except BaseException:
        obj.close()
        raise
    return obj


# ---- parse.h result (exposed by the test program base/parse_probe) ----
PARSE_MAX_VLANS = 2
PARSE_MAX_EXT_HDRS = 6
PROBE_OBJECT = "base/parse_probe"


class PktFlag(enum.IntFlag):
    """PKT_F_* of struct pkt_meta.flags (parse.h)."""
    VLAN = 1 << 0
    IPV4 = 1 << 1
    IPV6 = 1 << 2
    IP_OPTIONS = 1 << 3
    IPV6_EXT = 1 << 4
    FRAG = 1 << 5
    FRAG_LATER = 1 << 6
    L4 = 1 << 7
    TRUNCATED = 1 << 8
    MALFORMED = 1 << 9


class PktMeta(ctypes.Structure):
    """struct pkt_meta (parse.h): one frame's parse result; offsets from the frame start."""
    __c_struct__ = "struct pkt_meta"
    __bpf_object__ = PROBE_OBJECT
    _fields_ = [
        ("pkt_len", ctypes.c_uint16),
        ("l3_off", ctypes.c_uint16),
        ("l4_off", ctypes.c_uint16),
        ("payload_off", ctypes.c_uint16),
        ("l3_len", ctypes.c_uint16),
        ("eth_proto", ctypes.c_uint16),
        ("vlan_ids", ctypes.c_uint16 * PARSE_MAX_VLANS),
        ("sport", ctypes.c_uint16),
        ("dport", ctypes.c_uint16),
        ("flags", ctypes.c_uint16),
        ("n_vlans", ctypes.c_uint8),
        ("l4_proto", ctypes.c_uint8),
        ("icmp_type", ctypes.c_uint8),
        ("icmp_code", ctypes.c_uint8),
        ("n_ext", ctypes.c_uint8),
        ("err_layer", ctypes.c_uint8),
    ]

    def as_dict(self) -> dict:
        d = {name: getattr(self, name) for name, *_ in self._fields_}
        d["vlan_ids"] = list(self.vlan_ids)
        d["flags"] = PktFlag(self.flags)
        return d


class ProbeOut(ctypes.Structure):
    """struct probe_out (xdp_progs/base/parse_probe.h)."""
    __c_struct__ = "struct probe_out"
    __bpf_object__ = PROBE_OBJECT
    _fields_ = [
        ("meta", PktMeta),
        ("rc", ctypes.c_int32),
        ("l4_head", ctypes.c_uint8 * 4),
        ("payload_head", ctypes.c_uint8),
        ("has_payload", ctypes.c_uint8),
        ("seq", ctypes.c_uint16),
    ]
