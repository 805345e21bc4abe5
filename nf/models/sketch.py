"""Python reference of the sketch datapath: flow-key bytes and a count-min with the same hashes.

    cm = CountMin(d=4, w=1024, seed=0)
    k = flow_key("five_tuple", flow)       # the exact bytes sketch.bpf.c hashes
    cm.add(k, 1); cm.estimate(k)
    cm.table                               # d lists of w ints == the datapath bank (pure or eNetSTL)

Key bytes (addresses and ports in network order; sketch.h documents the same):
five_tuple v4 src4 dst4 sport2 dport2 proto1 pad3 (16) / v6 src16 dst16 ... (40); src_ip /
dst_ip 4 / 16; src_dst 8 / 32; src_mac mac6 pad2 (8).
"""
from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable

from nf import algo

KEY_KINDS = ("five_tuple", "src_ip", "dst_ip", "src_dst", "src_mac")


def _ip(a) -> bytes:
    return ipaddress.ip_address(a).packed


def flow_key(kind: str, flow=None, *, src=None, dst=None, sport: int = 0, dport: int = 0,
             proto: int = 0, mac: str | None = None) -> bytes:
    """Key bytes for a traffic.flows.Flow (or the fields given one by one)."""
    kind = getattr(kind, "value", kind)
    if flow is not None:
        src, dst, sport, dport, proto = flow.src, flow.dst, flow.sport, flow.dport, flow.proto
    if kind == "src_mac":
        if mac is None:
            raise ValueError("a src_mac key needs mac=")
        b = bytes(int(x, 16) for x in mac.replace("-", ":").split(":"))
        if len(b) != 6:
            raise ValueError(f"bad MAC {mac!r}")
        return b + b"\0\0"
    if kind == "src_ip":
        return _ip(src)
    if kind == "dst_ip":
        return _ip(dst)
    s, d = _ip(src), _ip(dst)
    if len(s) != len(d):
        raise ValueError(f"{src} and {dst} are not the same address family")
    if kind == "src_dst":
        return s + d
    if kind == "five_tuple":
        if proto not in (6, 17):   # the datapath has no ports for other protocols
            sport = dport = 0
        return s + d + sport.to_bytes(2, "big") + dport.to_bytes(2, "big") + bytes([proto, 0, 0, 0])
    raise ValueError(f"unknown key kind {kind!r}; one of {KEY_KINDS}")


class CountMin:
    """Count-min sketch with enetstl's multi-hash: row i, column xxh32(key, seed + i*step) & (w-1)."""

    def __init__(self, d: int, w: int, seed: int = 0):
        if not 1 <= d <= algo.MAX_D:
            raise ValueError(f"d must be in 1..{algo.MAX_D}")
        if w < 1 or w & (w - 1):
            raise ValueError("w must be a power of two")
        self.d, self.w, self.seed = d, w, seed
        self.table = [[0] * w for _ in range(d)]
        self.total = 0
        self._cols: dict[bytes, list[int]] = {}

    def columns(self, key: bytes) -> list[int]:
        c = self._cols.get(key)
        if c is None:
            c = self._cols[key] = [h & (self.w - 1) for h in algo.multi_hash(key, self.d, self.seed)]
        return c

    def add(self, key: bytes, inc: int = 1) -> int:
        """Update; returns the minimum of the updated counters (what the datapath compares)."""
        t = self.table
        m = None
        for i, j in enumerate(self.columns(key)):
            t[i][j] = (t[i][j] + inc) & 0xFFFFFFFF
            m = t[i][j] if m is None else min(m, t[i][j])
        self.total += inc
        return m

    def estimate(self, key: bytes) -> int:
        return min(self.table[i][j] for i, j in enumerate(self.columns(key)))

    def epsilon(self) -> float:
        return math.e / self.w

    def delta(self) -> float:
        return math.exp(-self.d)


def estimate_from(table, key: bytes, d: int, w: int, seed: int) -> int:
    """Count-min query of ``key`` against a d x w table (lists or a numpy array)."""
    return int(min(table[i][h & (w - 1)] for i, h in enumerate(algo.multi_hash(key, d, seed))))


def within_bound_fraction(estimates: dict, truth: dict, eps_n: float) -> float:
    """Fraction of keys whose estimate is <= truth + eps_n."""
    if not truth:
        return 1.0
    ok = sum(1 for k, t in truth.items() if estimates[k] <= t + eps_n)
    return ok / len(truth)


def recall(found: Iterable, true_top: Iterable) -> float:
    t = list(true_top)
    return len(set(found) & set(t)) / len(t) if t else 1.0


def log2_table(n: int = 1024) -> list[int]:
    """Q32 log2(1 + (i + 0.5) / n) for the pure-eBPF geometric draw (sk_log2_tab)."""
    return [min(0xFFFFFFFF, round(math.log2(1 + (i + 0.5) / n) * 2**32)) for i in range(n)]


def neglog2_q32(p: float) -> int:
    """-log2(1 - p) in Q32; 0 for p == 1 (every packet sampled)."""
    if p >= 1:
        return 0
    return max(1, round(-math.log2(1 - p) * 2**32))
