"""Routes: prefix parsing, the route file, and the lookup structures built in Python.

Route file (any size; one route a line, ``#`` comments, blank lines ignored)::

    10.0.0.0/8        via 192.0.2.1                 # next hop (ECMP: several ``via``)
    10.1.0.0/16       via 192.0.2.1 via 192.0.2.2
    192.0.2.0/24      dev port0                     # directly connected
    203.0.113.0/24    blackhole
    198.51.100.0/24   unreachable
    2001:db8::/32     group core                    # a next-hop group named in the YAML

Everything after the prefix is the *target*; distinct targets are few, so each is resolved once
(``resolve_target`` callback) and rows carry only a group id. Errors name the line.

Lookup structures (the BPF side is xdp_progs/router/router.bpf.c, entry encoding in router.h):

* IPv4 DIR-24-8: ``tbl24`` (2^24 u32, indexed by the top 24 bits) and 256-entry chunks for
  /25../32. Built with numpy in 25 + 8 vectorised passes, shortest prefixes first, so longer
  prefixes overwrite shorter ones (longest match by painting order). 1M routes build in ~0.2 s.
* IPv6 multibit trie: a 2^16 root and 8-bit-stride chunks, leaf-pushed (every entry is a group or
  a chunk pointer, never "keep looking"), so a lookup is at most 15 array reads and a /48 is 5.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

ENTRY_CHUNK = 0x80000000
CHUNK = 256
V4_TBL24 = 1 << 24
V6_ROOT = 1 << 16
V6_ROOT_BITS = 16


class RouteError(ValueError):
    """A route (or route file line) is invalid. ``line`` is 1-based when from a file."""

    def __init__(self, msg: str, line: int | None = None, source: str | None = None):
        self.line, self.source, self.msg = line, source, msg
        where = ""
        if source is not None:
            where = f"{source}:{line}: " if line is not None else f"{source}: "
        elif line is not None:
            where = f"line {line}: "
        super().__init__(where + msg)


# ---- prefixes ----------------------------------------------------------------------------------
def parse_prefix(text: str) -> tuple[int, int, int]:
    """'10.0.0.0/8' -> (4, addr int, 8). Host bits must be zero; a bare address is a /32 or /128."""
    s = text.strip()
    addr, slash, plen = s.partition("/")
    fam = 6 if ":" in addr else 4
    width = 32 if fam == 4 else 128
    try:
        a = int(ipaddress.IPv4Address(addr) if fam == 4 else ipaddress.IPv6Address(addr))
    except ValueError:
        raise RouteError(f"malformed prefix {text!r}: bad address") from None
    if slash:
        if not plen.isdigit() or not 0 <= int(plen) <= width:
            raise RouteError(f"malformed prefix {text!r}: length must be 0..{width}")
        n = int(plen)
    else:
        n = width
    if n < width and a & ((1 << (width - n)) - 1):
        raise RouteError(f"malformed prefix {text!r}: host bits set (did you mean "
                         f"{ipaddress.ip_network(s, strict=False)}?)")
    return fam, a, n


def format_prefix(fam: int, a: int, n: int) -> str:
    return f"{ipaddress.IPv4Address(a) if fam == 4 else ipaddress.IPv6Address(a)}/{n}"


# ---- route file ----------------------------------------------------------------------------------
@dataclass
class RouteSet:
    """Routes as parallel arrays per family (group ids already resolved)."""
    v4_addr: np.ndarray   # uint32
    v4_len: np.ndarray    # uint8
    v4_gid: np.ndarray    # uint32
    v6: list[tuple[int, int, int]]  # (addr, len, gid)
    v4_line: np.ndarray | None = None  # source line per v4 row (errors)

    @classmethod
    def empty(cls) -> "RouteSet":
        z = np.zeros(0, np.uint32)
        return cls(z, np.zeros(0, np.uint8), z.copy(), [])

    def __len__(self) -> int:
        return len(self.v4_addr) + len(self.v6)

    def merged(self, other: "RouteSet") -> "RouteSet":
        """``other`` wins where both have the same prefix (vectorised for IPv4)."""
        a = np.concatenate([self.v4_addr, other.v4_addr]).astype(np.uint32)
        n = np.concatenate([self.v4_len, other.v4_len]).astype(np.uint8)
        g = np.concatenate([self.v4_gid, other.v4_gid]).astype(np.uint32)
        key = (a.astype(np.uint64) << np.uint64(6)) | n.astype(np.uint64)
        _, first_rev = np.unique(key[::-1], return_index=True)
        keep = np.sort(len(key) - 1 - first_rev)
        d6 = {(x, m): y for x, m, y in self.v6}
        d6.update({(x, m): y for x, m, y in other.v6})
        return RouteSet(a[keep], n[keep], g[keep], [(x, m, y) for (x, m), y in d6.items()])

    @classmethod
    def from_dicts(cls, d4: dict[tuple[int, int], int], d6: dict[tuple[int, int], int]) -> "RouteSet":
        k = list(d4.items())
        return cls(np.array([a for (a, _), _ in k], np.uint32), np.array([n for (_, n), _ in k], np.uint8),
                   np.array([g for _, g in k], np.uint32), [(a, n, g) for (a, n), g in d6.items()])

    def v4_dict(self) -> dict[tuple[int, int], int]:
        return {(int(a), int(n)): int(g) for a, n, g in zip(self.v4_addr, self.v4_len, self.v4_gid)}

    def v6_dict(self) -> dict[tuple[int, int], int]:
        return {(a, n): g for a, n, g in self.v6}


def parse_route_lines(lines: Iterable[str], resolve_target: Callable[[str], int],
                      source: str = "<routes>") -> RouteSet:
    """Parse route lines. ``resolve_target(text)`` maps the target text (everything after the
    prefix, whitespace-normalised, comment removed) to a group id, raising ValueError with a
    reason when the target is invalid. Duplicate prefixes and host bits are errors, each with its
    line number.

    Fast path (what makes 1M lines ~1 s): one cheap split per line, each distinct target text
    resolved once, and all IPv4 prefix text converted by one numpy call; any line the fast path
    cannot vouch for sends the whole input through the exact per-line parser, which names it."""
    lines = lines if isinstance(lines, list) else list(lines)
    fast = _parse_fast(lines, resolve_target, source)
    if fast is not None:
        return fast
    return _parse_slow(lines, resolve_target, source)


def _resolve_cached(raw: str, cache: dict[str, int], resolve_target, no: int, source: str) -> int:
    gid = cache.get(raw)
    if gid is None:
        text = raw.split("#", 1)[0]
        norm = " ".join(text.split())
        if not norm:
            raise RouteError("route has no target (via/dev/group/blackhole/unreachable)", no, source)
        try:
            gid = resolve_target(norm)
        except ValueError as e:
            raise RouteError(str(e), no, source) from None
        cache[raw] = gid
    return gid


def _parse_fast(lines: list[str], resolve_target, source: str) -> RouteSet | None:
    pfx4: list[str] = []
    raw4: list[str] = []
    no4: list[int] = []
    other: list[tuple[int, str]] = []
    for no, line in enumerate(lines, 1):
        p, sep, rest = line.partition(" ")
        if not sep or not p or p[0] == "#" or ":" in p or "/" not in p:
            if line.strip() and not line.lstrip().startswith("#"):
                other.append((no, line))
            continue
        pfx4.append(p)
        raw4.append(rest)
        no4.append(no)
    if other:
        # IPv6 routes, bare addresses, tabs, leading blanks: the exact parser takes them
        slow = _parse_slow([line for _, line in other], resolve_target, source,
                           [no for no, _ in other])
    else:
        slow = None
    cache: dict[str, int] = {}
    try:
        for raw in set(raw4):
            _resolve_cached(raw, cache, resolve_target, 0, source)
    except RouteError:
        return None  # the exact parser names the first bad line in file order
    gid = np.fromiter(map(cache.__getitem__, raw4), np.uint32, len(raw4))
    if pfx4:
        try:
            nums = np.fromstring(".".join(pfx4).replace("/", "."), dtype=np.int64, sep=".")
        except ValueError:
            return None
        if len(nums) != 5 * len(pfx4):
            return None
        nums = nums.reshape(-1, 5)
        if (nums < 0).any() or (nums[:, :4] > 255).any() or (nums[:, 4] > 32).any():
            return None
        addr = ((nums[:, 0] << 24) | (nums[:, 1] << 16) | (nums[:, 2] << 8) | nums[:, 3]).astype(np.uint32)
        plen = nums[:, 4].astype(np.uint8)
    else:
        addr, plen = np.zeros(0, np.uint32), np.zeros(0, np.uint8)
    line_no = np.array(no4, np.int64)
    if slow is not None and len(slow.v4_addr):
        addr = np.concatenate([addr, slow.v4_addr])
        plen = np.concatenate([plen, slow.v4_len])
        gid = np.concatenate([gid, slow.v4_gid])
        line_no = np.concatenate([line_no, slow.v4_line])
    check_v4(addr, plen, line_no, source)
    return RouteSet(addr, plen, gid, slow.v6 if slow is not None else [], line_no)


def _parse_slow(lines: list[str], resolve_target, source: str,
                numbers: list[int] | None = None) -> RouteSet:
    a4: list[int] = []
    l4: list[int] = []
    g4: list[int] = []
    n4: list[int] = []
    v6: list[tuple[int, int, int]] = []
    v6_seen: dict[tuple[int, int], int] = {}
    cache: dict[str, int] = {}
    for i, line in enumerate(lines):
        no = numbers[i] if numbers is not None else i + 1
        body = line.split("#", 1)[0].strip()
        if not body:
            continue
        parts = body.split(None, 1)
        pfx, rest = parts[0], (parts[1] if len(parts) > 1 else "")
        if not rest:
            raise RouteError(f"route {pfx!r} has no target (via/dev/group/blackhole/unreachable)",
                             no, source)
        try:
            fam, a, n = parse_prefix(pfx)
        except RouteError as e:
            raise RouteError(e.msg, no, source) from None
        gid = _resolve_cached(rest, cache, resolve_target, no, source)
        if fam == 4:
            a4.append(a)
            l4.append(n)
            g4.append(gid)
            n4.append(no)
        else:
            if (a, n) in v6_seen:
                raise RouteError(f"duplicate route {pfx} (first on line {v6_seen[(a, n)]})", no, source)
            v6_seen[(a, n)] = no
            v6.append((a, n, gid))
    addr = np.array(a4, np.uint32)
    plen = np.array(l4, np.uint8)
    lines_arr = np.array(n4, np.int64)
    check_v4(addr, plen, lines_arr, source)
    return RouteSet(addr, plen, np.array(g4, np.uint32), v6, lines_arr)


def check_v4(addr: np.ndarray, plen: np.ndarray, lines: np.ndarray | None = None,
             source: str | None = None) -> None:
    """Vectorised: host bits zero, no duplicate prefix."""
    if len(addr) == 0:
        return
    hostmask = np.where(plen == 0, np.uint64(0xffffffff),
                        (np.uint64(1) << (np.uint64(32) - plen.astype(np.uint64))) - np.uint64(1))
    bad = np.nonzero(addr.astype(np.uint64) & hostmask)[0]
    if len(bad):
        i = int(bad[0])
        net = ipaddress.ip_network(f"{ipaddress.IPv4Address(int(addr[i]))}/{int(plen[i])}", strict=False)
        raise RouteError(f"malformed prefix {format_prefix(4, int(addr[i]), int(plen[i]))}: host bits "
                         f"set (did you mean {net}?)", int(lines[i]) if lines is not None else None, source)
    key = (addr.astype(np.uint64) << np.uint64(6)) | plen.astype(np.uint64)
    order = np.argsort(key, kind="stable")
    sk = key[order]
    dup = np.nonzero(sk[1:] == sk[:-1])[0]
    if len(dup):
        first, second = int(order[dup[0]]), int(order[dup[0] + 1])
        lf = int(lines[first]) if lines is not None else None
        ls = int(lines[second]) if lines is not None else None
        raise RouteError(f"duplicate route {format_prefix(4, int(addr[second]), int(plen[second]))}"
                         + (f" (first on line {lf})" if lf is not None else ""), ls, source)


def read_route_file(path: str | Path, resolve_target: Callable[[str], int]) -> RouteSet:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise RouteError(f"cannot read: {e.strerror}", None, str(path)) from None
    return parse_route_lines(text.splitlines(), resolve_target, str(path))


# ---- IPv4 DIR-24-8 ---------------------------------------------------------------------------------
def build_v4(addr: np.ndarray, plen: np.ndarray, gid: np.ndarray, chunk_base: int = 0
             ) -> tuple[np.ndarray, np.ndarray]:
    """-> (tbl24 uint32[2^24], tbl8 uint32[n*256]). Chunk pointers are ENTRY_CHUNK | (chunk_base + i)."""
    addr = np.asarray(addr, np.uint32)
    plen = np.asarray(plen, np.uint8)
    gid = np.asarray(gid, np.uint32)
    if len(gid) and (int(gid.max()) & ENTRY_CHUNK):
        raise ValueError("group id collides with the chunk flag")
    tbl24 = np.zeros(V4_TBL24, np.uint32)
    for n in range(0, 25):
        sel = plen == n
        if not sel.any():
            continue
        rows = (addr[sel] >> np.uint32(32 - n)) if n else np.zeros(int(sel.sum()), np.uint32)
        tbl24.reshape(1 << n, 1 << (24 - n))[rows] = gid[sel][:, None]
    long_ = plen > 24
    if not long_.any():
        return tbl24, np.zeros(0, np.uint32)
    s24 = addr[long_] >> np.uint32(8)
    uniq, inv = np.unique(s24, return_inverse=True)
    nch = len(uniq)
    tbl8 = np.empty(nch * CHUNK, np.uint32)
    tbl8.reshape(nch, CHUNK)[:] = tbl24[uniq][:, None]   # leaf-push the covering /0../24 route
    la, ll, lg = addr[long_], plen[long_], gid[long_]
    for n in range(25, 33):
        sel = ll == n
        if not sel.any():
            continue
        k = n - 24
        rows = inv[sel].astype(np.int64) * (1 << k) + ((la[sel] & np.uint32(0xff)) >> np.uint32(32 - n))
        tbl8.reshape(nch << k, 1 << (32 - n))[rows] = lg[sel][:, None]
    tbl24[uniq] = np.uint32(ENTRY_CHUNK) | (np.uint32(chunk_base) + np.arange(nch, dtype=np.uint32))
    return tbl24, tbl8


def lookup_v4(tbl24: np.ndarray, tbl8: np.ndarray, addrs: np.ndarray, chunk_base: int = 0) -> np.ndarray:
    """Vectorised lookup in built tables (what the BPF code does)."""
    addrs = np.asarray(addrs, np.uint32)
    e = tbl24[addrs >> np.uint32(8)]
    ch = (e & np.uint32(ENTRY_CHUNK)) != 0
    if ch.any():
        c = (e[ch] & np.uint32(~ENTRY_CHUNK & 0xffffffff)).astype(np.int64) - chunk_base
        e[ch] = tbl8[c * CHUNK + (addrs[ch] & np.uint32(0xff))]
    return e


# ---- IPv6 multibit trie ------------------------------------------------------------------------------
def build_v6(routes: Iterable[tuple[int, int, int]], chunk_base: int = 0
             ) -> tuple[np.ndarray, np.ndarray]:
    """-> (root uint32[2^16], chunks uint32[n*256]). Routes are (addr int, len, gid)."""
    root = np.zeros(V6_ROOT, np.uint32)
    chunks: list[np.ndarray] = []
    # Shortest first: when a prefix is painted, no longer prefix has created chunks below it yet,
    # so painting never has to descend; a chunk is born filled with its parent's leaf (leaf push).
    for a, n, g in sorted(routes, key=lambda r: r[1]):
        if n <= V6_ROOT_BITS:
            start = (a >> 112) & ~((1 << (V6_ROOT_BITS - n)) - 1) if n else 0
            root[start:start + (1 << (V6_ROOT_BITS - n))] = g
            continue
        table, idx = root, a >> 112
        shift = 112
        bits = V6_ROOT_BITS
        while True:
            e = int(table[idx])
            if e & ENTRY_CHUNK:
                child = chunks[(e & ~ENTRY_CHUNK) - chunk_base]
            else:
                child = np.full(CHUNK, e, np.uint32)
                table[idx] = ENTRY_CHUNK | (chunk_base + len(chunks))
                chunks.append(child)
            shift -= 8
            byte = (a >> shift) & 0xff
            if n <= bits + 8:
                span = 1 << (bits + 8 - n)
                start = byte & ~(span - 1)
                child[start:start + span] = g
                break
            table, idx, bits = child, byte, bits + 8
    flat = np.concatenate(chunks) if chunks else np.zeros(0, np.uint32)
    return root, flat


def lookup_v6_one(root: np.ndarray, chunks: np.ndarray, a: int, chunk_base: int = 0) -> int:
    e = int(root[a >> 112])
    shift = 112
    while e & ENTRY_CHUNK:
        shift -= 8
        e = int(chunks[((e & ~ENTRY_CHUNK) - chunk_base) * CHUNK + ((a >> shift) & 0xff)])
    return e


def chunks_needed_v6(routes: Iterable[tuple[int, int, int]]) -> int:
    """How many chunks build_v6 makes for these routes (distinct interior nodes)."""
    seen: set[tuple[int, int]] = set()
    for a, n, _ in routes:
        bits = V6_ROOT_BITS
        while n > bits:
            seen.add((bits, a >> (128 - bits)))
            bits += 8
    return len(seen)


# ---- synthetic tables (tests, benchmarks, the example route file) -----------------------------------
# Prefix-length mixes shaped like public BGP tables (IPv4: ~60 % /24, IPv6: ~45 % /48) plus a tail
# of longer IGP-style prefixes so the /25../32 chunks and deep trie levels are exercised.
V4_MIX = {8: 0.001, 12: 0.003, 14: 0.005, 16: 0.02, 17: 0.01, 18: 0.015, 19: 0.03, 20: 0.045,
          21: 0.045, 22: 0.1, 23: 0.08, 24: 0.58, 25: 0.003, 26: 0.003, 27: 0.003, 28: 0.003,
          29: 0.002, 30: 0.002, 31: 0.002, 32: 0.002}
V6_MIX = {20: 0.005, 24: 0.005, 28: 0.02, 29: 0.04, 32: 0.1, 36: 0.04, 40: 0.07, 44: 0.08,
          46: 0.02, 47: 0.02, 48: 0.45, 52: 0.01, 56: 0.04, 60: 0.01, 64: 0.06, 96: 0.005,
          127: 0.005, 128: 0.02}


def synthetic_v4(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """n distinct IPv4 prefixes (addr uint32, len uint8) with the V4_MIX length mix."""
    rng = np.random.default_rng(seed)
    lens = np.array(list(V4_MIX), np.uint8)
    p = np.array(list(V4_MIX.values()))
    out_a, out_l, have = [], [], 0
    seen = np.zeros(0, np.uint64)
    while have < n:
        m = int((n - have) * 1.3) + 16
        ln = rng.choice(lens, size=m, p=p / p.sum()).astype(np.uint8)
        a = rng.integers(0x01000000, 0xE0000000, size=m, dtype=np.uint64).astype(np.uint32)
        mask = ((np.uint64(0xffffffff) << (np.uint64(32) - ln.astype(np.uint64))) & np.uint64(0xffffffff))
        a = (a.astype(np.uint64) & mask).astype(np.uint32)
        key = (a.astype(np.uint64) << np.uint64(6)) | ln.astype(np.uint64)
        key, idx = np.unique(key, return_index=True)
        fresh = ~np.isin(key, seen)
        idx = idx[fresh][: n - have]
        seen = np.concatenate([seen, key[fresh][: n - have]])
        out_a.append(a[idx])
        out_l.append(ln[idx])
        have += len(idx)
    return np.concatenate(out_a), np.concatenate(out_l)


def synthetic_v6(n: int, seed: int = 1, allocations: int = 2000) -> list[tuple[int, int]]:
    """n distinct IPv6 prefixes under 2000::/3, clustered below `allocations` /32s as real
    tables are (a uniformly random table would be unlike any real one, and huge in a trie)."""
    import random
    rnd = random.Random(seed)
    allocs = [((0x2 << 124) | (rnd.getrandbits(29) << 96)) for _ in range(allocations)]
    lens, weights = list(V6_MIX), list(V6_MIX.values())
    out: set[tuple[int, int]] = set()
    while len(out) < n:
        ln = rnd.choices(lens, weights)[0]
        a = rnd.choice(allocs) | (rnd.getrandbits(96) >> rnd.choice((0, 8, 12, 16)))
        a &= ((1 << 128) - 1) ^ ((1 << (128 - ln)) - 1)
        out.add((a, ln))
    return sorted(out)
