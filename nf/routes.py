"""Routes: prefix parsing, the route file, and the lookup structures built in Python.

Route file (any size; one route a line, ``#`` comments, blank lines ignored)::

    10.0.0.0/8        via 192.0.2.1                 # next hop (ECMP: several ``via``)
    10.1.0.0/16       via 192.0.2.1 via 192.0.2.2
    192.0.2.0/24      dev port0                     # directly connected
    203.0.113.0/24    blackhole
    198.51.100.0/24   unreachable
    2001:db8::/32     group core                    # a next-hop group named in the YAML

Everything after the prefix is the *target*; distinct targets are few, so each is resolved once
(``resolve_target`` callback) and rows carry only a group id. Errors name the line. The file is
read in numpy over its bytes (1M lines in ~0.7 s on these VMs); the exact parser, line by line
through ipaddress, reads every line the fast one cannot vouch for and raises every error.

Lookup structures (the BPF side is xdp_progs/router/router.bpf.c, entry encoding in router.h):

* IPv4 DIR-24-8: ``tbl24`` (2^24 u32, indexed by the top 24 bits) and 256-entry chunks for
  /25../32. Built with numpy in 25 + 8 vectorised passes, shortest prefixes first, so longer
  prefixes overwrite shorter ones (longest match by painting order). 1M routes build in ~0.2 s.
* IPv6: hashed /32 and /48 blocks over flat multibit tries (a 2^16 root, 8-bit strides, subtrees of
  one route as single compares), leaf-pushed; a lookup is one or two hash probes and then at most
  a few reads (a /48 route: the probe alone). Built with numpy, 1M routes in ~0.6 s.
"""
from __future__ import annotations

import gc
import ipaddress
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
class RouteSet:
    """Routes as parallel numpy arrays per family (group ids already resolved): IPv4 address /
    length / group, IPv6 address as two uint64 halves (hi, lo) / length / group. ``v6`` may be
    given as (addr int, len, gid) tuples or as the tuple of arrays (hi, lo, len, gid)."""

    def __init__(self, v4_addr, v4_len, v4_gid, v6=(), v4_line: np.ndarray | None = None):
        self.v4_addr = np.asarray(v4_addr, np.uint32)
        self.v4_len = np.asarray(v4_len, np.uint8)
        self.v4_gid = np.asarray(v4_gid, np.uint32)
        self.v4_line = v4_line
        self.v6_line: np.ndarray | None = None   # source line per v6 row (errors)
        if isinstance(v6, tuple) and len(v6) == 4 and isinstance(v6[0], np.ndarray):
            hi, lo, n, g = v6
        else:
            rows = list(v6)
            hi, lo = v6_split(a for a, _, _ in rows)
            n = np.fromiter((x for _, x, _ in rows), np.uint8, len(rows))
            g = np.fromiter((x for _, _, x in rows), np.uint32, len(rows))
        self.v6_hi = np.asarray(hi, np.uint64)
        self.v6_lo = np.asarray(lo, np.uint64)
        self.v6_len = np.asarray(n, np.uint8)
        self.v6_gid = np.asarray(g, np.uint32)

    @classmethod
    def empty(cls) -> "RouteSet":
        return cls(np.zeros(0, np.uint32), np.zeros(0, np.uint8), np.zeros(0, np.uint32))

    @property
    def v6_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return self.v6_hi, self.v6_lo, self.v6_len, self.v6_gid

    @property
    def v6(self) -> list[tuple[int, int, int]]:
        """IPv6 routes as (addr int, len, gid) tuples (a copy; the arrays are the storage)."""
        return [((h << 64) | lo, n, g) for h, lo, n, g in
                zip(self.v6_hi.tolist(), self.v6_lo.tolist(), self.v6_len.tolist(), self.v6_gid.tolist())]

    @property
    def n6(self) -> int:
        return len(self.v6_len)

    def __len__(self) -> int:
        return len(self.v4_addr) + self.n6

    def with_v6(self, hi, lo, n, g) -> "RouteSet":
        """The same IPv4 routes with these IPv6 arrays."""
        return RouteSet(self.v4_addr, self.v4_len, self.v4_gid, (hi, lo, n, g))

    def with_v4(self, a, n, g) -> "RouteSet":
        return RouteSet(a, n, g, self.v6_arrays)

    def v6_match(self, a: int, n: int) -> np.ndarray:
        """Boolean mask of the IPv6 rows with prefix (a, n)."""
        return (self.v6_hi == np.uint64(a >> 64)) & (self.v6_lo == np.uint64(a & M64)) & (self.v6_len == n)

    def merged(self, other: "RouteSet") -> "RouteSet":
        """``other`` wins where both have the same prefix (vectorised)."""
        a = np.concatenate([self.v4_addr, other.v4_addr]).astype(np.uint32)
        n = np.concatenate([self.v4_len, other.v4_len]).astype(np.uint8)
        g = np.concatenate([self.v4_gid, other.v4_gid]).astype(np.uint32)
        key = (a.astype(np.uint64) << np.uint64(6)) | n.astype(np.uint64)
        _, first_rev = np.unique(key[::-1], return_index=True)
        keep = np.sort(len(key) - 1 - first_rev)
        hi, lo, n6, g6 = (np.concatenate([x, y]) for x, y in zip(self.v6_arrays, other.v6_arrays))
        # last occurrence of each (hi, lo, len) wins: stable sort, keep the end of each run
        order = np.lexsort((n6, lo, hi))
        h, l, m = hi[order], lo[order], n6[order]
        last = np.r_[(h[1:] != h[:-1]) | (l[1:] != l[:-1]) | (m[1:] != m[:-1]), True] if len(m) else \
            np.zeros(0, bool)
        k6 = np.sort(order[last])
        return RouteSet(a[keep], n[keep], g[keep], (hi[k6], lo[k6], n6[k6], g6[k6]))

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
    line number. The lines go through the vectorised parser (parse_route_text) as one text, or
    through the exact one when a line holds a line break of its own."""
    lines = lines if isinstance(lines, list) else list(lines)
    text = "\n".join(lines)
    if "\r" not in text and text.count("\n") == max(len(lines) - 1, 0):
        return parse_route_text(text.encode("utf-8"), resolve_target, source, lambda n: lines[:n])
    return _parse_exact(lines, resolve_target, source)


def parse_route_text(raw: bytes, resolve_target: Callable[[str], int], source: str = "<routes>",
                     head: Callable[[int], list[str]] | None = None) -> RouteSet:
    """Parse a route file's bytes (UTF-8, lines as str.splitlines() splits them): the
    vectorised parser (_parse_fast) with the exact per-line parser as the authority. Every line
    the fast path cannot vouch for is parsed by the exact parser; when anything is wrong, the
    exact parser reads the file up to the first line found wrong and raises its own error, so
    both paths name the same line with the same words. ``head(n)``: the first n lines as str
    (default: split from ``raw``)."""
    if head is None:
        def head(n: int) -> list[str]:
            return raw.decode("utf-8").splitlines()[:n]
    paused = gc.isenabled()
    gc.disable()   # the exact parser's millions of short-lived objects cannot form a cycle
    try:
        fast = _parse_fast(raw, resolve_target, source)
        if isinstance(fast, RouteSet):
            return fast
        if fast is not None:   # the first line found wrong: the exact parser raises there
            _parse_exact(head(fast), resolve_target, source)
        return _parse_exact(head(1 << 62), resolve_target, source)
    finally:
        if paused:
            gc.enable()


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


# Line breaks of str.splitlines() beyond ASCII: a text holding one goes to the exact parser.
_BREAKS_UTF8 = tuple(c.encode() for c in "\x85\u2028\u2029")
_WORD_MASK = np.array([(1 << 8 * i) - 1 for i in range(9)], np.uint64)   # the first i bytes
_ADDR = 40     # bytes of a line read for its address and '/': the longest IPv6 text is 39
_CHUNK_LINES = 1 << 16   # lines a numpy pass takes: its temporaries stay small, cached and
                         # reused (fresh memory costs a page fault per page, dear on these VMs)
_KEEP = np.array([0, 0xFF000000, 0xFFFF0000, 0xFFFFFF00, 0xFFFFFFFF], np.uint32)   # the last n bytes
_POW10 = np.array([0, 0, 10, 100, 1000])         # the least value of n digits without a leading 0
_B80 = np.uint32(0x80808080)


def _at(buf: np.ndarray, dtype: str) -> np.ndarray:
    """The little-endian word starting at every byte of buf (a view: word i = buf[i:i+size])."""
    size = np.dtype(dtype).itemsize
    return np.ndarray((len(buf) - size + 1,), dtype, buf, 0, (1,))


def _parse_fast(raw: bytes, resolve_target, source: str) -> RouteSet | int | None:
    """The route file as numpy arrays over its bytes (a Python step per line costs ~1 s at 1M
    lines). -> the routes, or the number of a line found wrong (the exact parser names the first
    wrong one up to there), or None when the exact parser must read the whole text.

    Lines are split at '\\n'. A line is vouched for (_vouch) when it is `prefix` blank `target`
    with the prefix in a plain form the exact parser (ipaddress) accepts; the target texts are
    grouped by their bytes and each distinct one resolved once (_targets). Other lines (comments
    aside) go to the exact parser one by one; host bits and duplicates are checked on all rows at
    the end. Lines are taken _CHUNK_LINES at a time: every temporary stays small."""
    if not raw.isascii() and any(c in raw for c in _BREAKS_UTF8):
        return None
    buf = np.zeros(len(raw) + 80, np.uint8)      # 8 bytes before the text, the words read past it
    b = buf[8:8 + len(raw)]
    b[:] = np.frombuffer(raw, np.uint8)
    ctl = np.concatenate([np.zeros(0, np.int64)] + [np.flatnonzero(b[i:i + (1 << 22)] < 32) + i
                                                    for i in range(0, len(b), 1 << 22)])
    kind = b[ctl]
    nl, cr = ctl[kind == 10], ctl[kind == 13]
    # other line breaks of str.splitlines() (\v \f \x1c-\x1e), or a \r not before \n: the exact parser
    if len(nl) + len(cr) + int((kind == 9).sum()) < len(ctl) or (buf[cr + 9] != 10).any():
        return None
    starts, ends = np.r_[0, nl + 1], np.r_[nl - np.isin(nl - 1, cr) if len(cr) else nl, len(b)]
    if not raw or raw.endswith(b"\n"):
        starts, ends = starts[:-1], ends[:-1]
    u64, u32 = _at(buf, "<u8"), _at(buf, "<u4")
    cache: dict[str, int] = {}
    parts, gids, bad_line = [], [], 1 << 62
    for i in range(0, len(starts), _CHUNK_LINES):
        parts.append(_vouch(u64, u32, starts[i:i + _CHUNK_LINES], ends[i:i + _CHUNK_LINES], i))
        row, t0 = parts[-1][0], parts[-1][3]
        if bad_line == 1 << 62:                   # the first target that fails ends the resolving
            g, bad_line = _targets(raw, u64, t0, ends[row] - t0, row, resolve_target, source, cache)
            gids.append(g)
    row, fam6, plen = (np.concatenate([np.zeros(0, x[0].dtype)] + list(x)) for x in list(zip(*parts))[:3]) \
        if parts else (np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(0, np.int64))
    # every other line (comments and blank lines aside) through the exact parser
    vouched = np.zeros(len(starts), bool)
    vouched[row] = True
    other = np.flatnonzero(~vouched & (ends > starts))
    other = other[b[starts[other]] != ord("#")]
    texts = [raw[starts[i]:ends[i]].decode("utf-8") for i in other.tolist()]
    keep = [i for i, t in enumerate(texts) if t.strip() and not t.lstrip().startswith("#")]
    slow = None
    if keep:
        try:
            slow = _parse_exact([texts[i] for i in keep], resolve_target, source,
                                [int(other[i]) + 1 for i in keep], check=False)
        except RouteError as e:
            bad_line = min(bad_line, e.line)
    if bad_line < (1 << 62):
        return int(bad_line)
    gid = np.concatenate([np.zeros(0, np.uint32)] + gids)
    lines = row + 1
    a4 = np.concatenate([np.zeros(0, np.uint32)] + [p[4] for p in parts])
    h6 = np.concatenate([np.zeros(0, np.uint64)] + [p[5] for p in parts])
    o6 = np.concatenate([np.zeros(0, np.uint64)] + [p[6] for p in parts])
    n4, g4, l4 = plen[~fam6], gid[~fam6], lines[~fam6]
    n6, g6, l6 = plen[fam6], gid[fam6], lines[fam6]
    if slow is not None:     # in line order, as the exact parser has them
        a4, n4, g4, l4 = (np.r_[x, y] for x, y in zip((a4, n4, g4, l4), (slow.v4_addr, slow.v4_len,
                                                                         slow.v4_gid, slow.v4_line)))
        h6, o6, n6, g6, l6 = (np.r_[x, y] for x, y in zip((h6, o6, n6, g6, l6), (*slow.v6_arrays, slow.v6_line)))
        o = np.argsort(l4, kind="stable")
        a4, n4, g4, l4 = a4[o], n4[o], g4[o], l4[o]
        o = np.argsort(l6, kind="stable")
        h6, o6, n6, g6, l6 = h6[o], o6[o], n6[o], g6[o], l6[o]
    a4, n4, g4, n6 = a4.astype(np.uint32), n4.astype(np.uint8), g4.astype(np.uint32), n6.astype(np.int64)
    # host bits (both families) and IPv6 duplicates are errors of their line in the exact parser
    bad_line = min(_first_wrong_line(a4.astype(np.uint64) << np.uint64(32), np.zeros(len(a4), np.uint64),
                                     n4.astype(np.int64), l4, dup=False),
                   _first_wrong_line(h6, o6, n6, l6, dup=True))
    if bad_line < (1 << 62):
        return int(bad_line)
    check_v4(a4, n4, l4, source)                  # duplicates: the exact parser checks at the end
    rs = RouteSet(a4, n4, g4, (h6, o6, n6.astype(np.uint8), g6.astype(np.uint32)), l4)
    rs.v6_line = l6
    return rs


def _vouch(u64: np.ndarray, u32: np.ndarray, starts: np.ndarray, ends: np.ndarray, first_line: int):
    """The lines [starts, ends) (offsets into the text, at offset 8 of the buffer u64 / u32 read)
    this parser vouches for: `prefix` blank `target`, the prefix a dotted quad without leading
    zeros or 1-4 hex digits a group with at most one '::' (the plain forms ipaddress accepts),
    then '/' and 1-3 digits. Each field of an address (between the '.' or ':') is read as the
    word of its last 4 bytes and checked and converted bytewise in that word. -> (line index,
    is IPv6, prefix length, target's offset) per vouched line, and the IPv4 addresses, IPv6 hi
    and lo halves in line order."""
    n = len(starts)
    at = starts + 8                               # a line's first byte in the buffer
    m = np.empty((n, _ADDR // 8), np.uint64)
    for k in range(_ADDR // 8):
        m[:, k] = u64[at + 8 * k]
    m = m.view(np.uint8)
    slash = (m == ord("/")).argmax(1)
    rows = np.arange(n)
    ok = (m[rows, slash] == ord("/")) & (slash > 0) & (slash < ends - starts)
    d = u32[at + slash + 1].view(np.uint8).reshape(-1, 4)
    dig = (d - np.uint8(48)) < 10
    nd = dig[:, 0] * (1 + dig[:, 1] * (1 + dig[:, 2].astype(np.int64)))    # digits after the '/'
    blank = d[rows, nd]
    ok &= (nd > 0) & ((blank == 32) | (blank == 9)) & (slash + 1 + nd < ends - starts)
    dv = d.astype(np.int64) - 48
    plen = np.where(nd == 1, dv[:, 0], np.where(nd == 2, dv[:, 0] * 10 + dv[:, 1],
                                                 dv[:, 0] * 100 + dv[:, 1] * 10 + dv[:, 2]))
    cand = np.flatnonzero(ok)
    if len(cand) < n:
        m, at, slash, plen, nd = m[cand], at[cand], slash[cand], plen[cand], nd[cand]
    c = len(cand)
    # fields end at each ':' (IPv6: one in the first 5 bytes) or '.' before the '/', and at it
    fam6 = ((m[:, :8] == ord(":")).view("<u8")[:, 0] & np.uint64(0xFF_FFFF_FFFF)) != 0   # a ":" in 5 bytes
    sep = (m == np.where(fam6, ord(":"), ord(".")).astype(np.uint8)[:, None]) & (np.arange(_ADDR) < slash[:, None])
    words = sep.view(np.uint64)                   # 0/1 bytes: summed per byte, then across the word
    nsep = ((words.sum(1, dtype=np.uint64) * np.uint64(0x0101010101010101)) >> np.uint64(56)).astype(np.int64)
    nf = nsep + 1
    last = np.cumsum(nf) - 1                      # each row's last field
    first = last - nsep
    fend = np.empty(int(last[-1]) + 1 if c else 0, np.int64)     # a field's end in the buffer
    inner = np.ones(len(fend), bool)
    inner[last] = False
    fend[inner] = np.repeat(at - _ADDR * np.arange(c), nsep) + np.flatnonzero(sep)
    fend[last] = at + slash
    flen = np.empty_like(fend)
    flen[1:] = fend[1:] - fend[:-1] - 1
    flen[first] = fend[first] - at
    keep = _KEEP[np.minimum(flen, 4)]             # a field's last 4 bytes, those before it as '0'
    x = (u32[fend - 4] & keep) | (np.uint32(0x30303030) & ~keep)
    digits = _between(x, 0x30, 0x39)
    v4, v6 = ~fam6 & (nsep == 3) & (plen <= 32), fam6 & (nsep >= 2) & (nsep <= 8) & (plen <= 128)
    addr4 = np.zeros(0, np.uint32)
    if v4.any():   # 4 fields of 1-3 digits, no leading zero, <= 255
        f = v4[np.repeat(np.arange(c), nf)] if not v4.all() else slice(None)
        y = x[f] - np.uint32(0x30303030)
        y = (y * np.uint32(10) + (y >> np.uint32(8))) & np.uint32(0x00FF00FF)   # 2 digits a half
        val = ((y & np.uint32(0xFF)) * np.uint32(100) + (y >> np.uint32(16))).astype(np.int64)
        n4 = flen[f]
        good = (digits[f] == _B80) & (n4 >= 1) & (n4 <= 3) & (val >= _POW10[np.minimum(n4, 4)]) & \
            (val <= 255)
        val, good = val.reshape(-1, 4), good.reshape(-1, 4).all(1)
        v4[v4] = good
        val = val[good]
        addr4 = ((val[:, 0] << 24) | (val[:, 1] << 16) | (val[:, 2] << 8) | val[:, 3]).astype(np.uint32)
    hi6 = lo6 = np.zeros(0, np.uint64)
    if v6.any():
        f = v6[np.repeat(np.arange(c), nf)] if not v6.all() else slice(None)
        hexd = (digits[f] | _between(x[f] | np.uint32(0x20202020), 0x61, 0x66)) == _B80
        good, hi6, lo6 = _groups6(nf[v6], flen[f], x[f], hexd)
        v6[v6] = good
        hi6, lo6 = hi6[good], lo6[good]
    good = v4 | v6
    t0 = at[good] - 8 + slash[good] + nd[good] + 2
    return cand[good] + first_line, v6[good], plen[good], t0, addr4, hi6, lo6


def _between(x: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Per byte of uint32 words: 0x80 where lo <= byte <= hi (ASCII lo, hi), else 0. A byte
    >= 0x80 is never in range (its carry may move the next byte's range by one: a word holding
    one fails anyway)."""
    return (x + np.uint32(0x01010101 * (0x80 - lo))) & ~(x + np.uint32(0x01010101 * (0x7F - hi))) & _B80


def _groups6(nf, flen, x, hexd):
    """IPv6 addresses from their fields (per row the field count, per field its length, its
    last 4 characters as a word, '0' before the field, and whether they are hex digits) ->
    (valid, hi, lo) per row. Valid as ipaddress has it: 1-4 hex digits a field; one empty field
    inside at most (the '::'), an empty first or last field only as part of it, and then at most
    7 others; else exactly 8 fields."""
    k = len(nf)
    last = np.cumsum(nf) - 1
    first = last - nf + 1
    ok = np.ones(k, bool)
    ok[np.searchsorted(last, np.flatnonzero(~hexd | (flen > 4)))] = False
    empty = np.flatnonzero(flen == 0)
    er = np.searchsorted(last, empty)             # the row of each empty field
    at_first, at_last = empty == first[er], empty == last[er]
    inner = ~at_first & ~at_last
    skip = np.full(k, -1, np.int64)               # the inner empty field (the '::'), by field index
    skip[er[inner]] = empty[inner]
    lead, trail = np.zeros(k, bool), np.zeros(k, bool)
    lead[er[at_first]] = True
    trail[er[at_last]] = True
    n_skip = np.bincount(er[inner], minlength=k)
    ok &= np.where(n_skip == 0, (nf == 8) & ~lead & ~trail,
                   (n_skip == 1) & (~lead | (skip == first + 1)) & (~trail | (skip == last - 1))
                   & (nf - 1 - lead - trail <= 7))
    # the value: hex digit nibbles, then two bytes of two nibbles each, then 16 bits
    v = (x & np.uint32(0x0F0F0F0F)) + np.uint32(9) * ((x >> np.uint32(6)) & np.uint32(0x01010101))
    v = ((v << np.uint32(4)) | (v >> np.uint32(8))) & np.uint32(0x00FF00FF)
    val = (((v & np.uint32(0xFF)) << np.uint32(8)) | (v >> np.uint32(16))).astype(np.uint16)
    # group slot: fields up to the '::' count from the left, those after it from the right;
    # slot 8 of a row takes its empty fields (and an invalid row's strays)
    cnt_l = np.where(skip >= 0, skip - first + 1, nf)
    where = np.repeat(np.c_[np.arange(k) * 9 - first, np.arange(k) * 9 + 7 - last].reshape(-1),
                      np.c_[cnt_l, nf - cnt_l].reshape(-1)) + np.arange(len(flen))
    where[empty] = er * 9 + 8
    grp = np.zeros((k, 9), np.uint16)
    grp.reshape(-1)[where] = val                  # -1: the last row's slot 8
    big = grp[:, :8].astype(">u2").view(">u8")   # the groups as two big-endian 64-bit halves
    return ok, big[:, 0].astype(np.uint64), big[:, 1].astype(np.uint64)


def _targets(raw: bytes, u64: np.ndarray, t0: np.ndarray, tlen: np.ndarray, row: np.ndarray,
             resolve_target, source: str, cache: dict[str, int]) -> tuple[np.ndarray, int]:
    """Group id of each target text raw[t0:t0+tlen] (t0 ascending; `row`: its line index), each
    distinct text resolved once (`cache`: by text): texts of up to 64 bytes grouped by their
    words in numpy, longer ones by a dict. -> (gid per text, the line of the first text that
    does not resolve, or 2^62)."""
    gid = np.zeros(len(t0), np.uint32)
    fails: list[int] = []

    def resolve(i: int) -> int:
        try:
            return _resolve_cached(raw[t0[i]:t0[i] + tlen[i]].decode("utf-8"), cache, resolve_target,
                                   int(row[i]) + 1, source)
        except RouteError as e:
            fails.append(e.line)
            return 0
    long_ = tlen > 64
    short = np.flatnonzero(~long_)
    if len(short):
        ts, tl = t0[short], tlen[short]
        nw = max(1, -(-int(tl.max()) // 8))
        words = np.empty((len(short), nw), np.uint64)
        h = tl.astype(np.uint64)
        for j in range(nw):
            words[:, j] = u64[ts + 8 + 8 * j] & _WORD_MASK[np.clip(tl - 8 * j, 0, 8)]
            h = (h ^ words[:, j]) * np.uint64(0x9E3779B97F4A7C15)
            h ^= h >> np.uint64(29)
        _, first, inv = np.unique(h, return_index=True, return_inverse=True)
        rep, rep_len = words[first], tl[first]
        if not all((words[:, j] == rep[inv, j]).all() for j in range(nw)) or \
                not (tl == rep_len[inv]).all():      # a hash collision
            _, first, inv = np.unique(np.c_[tl.astype(np.uint64), words], axis=0,
                                      return_index=True, return_inverse=True)
        g = np.zeros(len(first), np.uint32)
        for u in np.argsort(first).tolist():      # in line order: the first that fails is the one
            g[u] = resolve(int(short[first[u]]))
            if fails:
                break
        gid[short] = g[inv.reshape(-1)]
    for i in np.flatnonzero(long_).tolist():
        gid[i] = resolve(i)
        if fails:
            break
    return gid, min(fails, default=1 << 62)


def _first_wrong_line(hi: np.ndarray, lo: np.ndarray, plen: np.ndarray, lines: np.ndarray, dup: bool) -> int:
    """The first line (lines ascending) of a prefix with host bits set, or (dup) the second
    line naming a prefix already named; 2^62 when none. 128-bit prefixes as (hi, lo) halves."""
    if len(plen) == 0:
        return 1 << 62
    host_hi = np.where(plen == 0, np.uint64(M64), np.where(
        plen >= 64, np.uint64(0), (np.uint64(1) << np.clip(64 - plen, 1, 63).astype(np.uint64)) - np.uint64(1)))
    host_lo = np.where(plen <= 64, np.uint64(M64), np.where(
        plen == 128, np.uint64(0), (np.uint64(1) << np.clip(128 - plen, 1, 63).astype(np.uint64)) - np.uint64(1)))
    bad = np.flatnonzero((hi & host_hi) | (lo & host_lo))
    found = [int(lines[bad[0]])] if len(bad) else []
    h = np.sort((hi * np.uint64(0x9E3779B97F4A7C15)) ^ (lo * np.uint64(0xC2B2AE3D27D4EB4F)) ^ plen.astype(np.uint64))
    if dup and (h[1:] == h[:-1]).any():          # equal hashes: maybe the same prefix twice
        order = np.lexsort((plen, lo, hi))       # stable: lines stay ascending within a prefix
        h, l, p = hi[order], lo[order], plen[order]
        again = np.flatnonzero((h[1:] == h[:-1]) & (l[1:] == l[:-1]) & (p[1:] == p[:-1]))
        if len(again):
            found.append(int(lines[order[again + 1]].min()))
    return min(found, default=1 << 62)


def _parse_exact(lines: list[str], resolve_target, source: str,
                 numbers: list[int] | None = None, check: bool = True) -> RouteSet:
    """The exact parser, line by line (ipaddress for every prefix): the authority on what a
    line means and which error it has. ``numbers``: the lines' numbers (default 1, 2, ...);
    ``check=False`` leaves the IPv4 duplicate check (the last check, over all rows) to the caller."""
    a4: list[int] = []
    l4: list[int] = []
    g4: list[int] = []
    n4: list[int] = []
    v6: list[tuple[int, int, int]] = []
    n6: list[int] = []
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
            n6.append(no)
    addr = np.array(a4, np.uint32)
    plen = np.array(l4, np.uint8)
    lines_arr = np.array(n4, np.int64)
    if check:
        check_v4(addr, plen, lines_arr, source)
    rs = RouteSet(addr, plen, np.array(g4, np.uint32), v6, lines_arr)
    rs.v6_line = np.array(n6, np.int64)
    return rs


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
        raw = path.read_bytes()
    except OSError as e:
        raise RouteError(f"cannot read: {e.strerror}", None, str(path)) from None
    if not raw.isascii():
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise RouteError(f"byte 0x{raw[e.start]:02x} is not UTF-8 (a route file is text)",
                             raw.count(b"\n", 0, e.start) + 1, str(path)) from None
    if b"\0" in raw:
        raise RouteError("a NUL byte: a route file is text", raw.count(b"\n", 0, raw.index(b"\0")) + 1,
                         str(path))
    return parse_route_text(raw, resolve_target, str(path))


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


# ---- IPv6: hashed /32 and /48 blocks over flat multibit tries -----------------------------------
# One bank of the flat rt_v6 array (u32 words; entries hold absolute word offsets):
#   header  struct rt_v6_bank: per pivot (/32, /48) the hash multipliers, slot count and offset,
#           and the root's offset
#   root    2^16 entries: the trie of the routes shorter than /32
#   slots   per pivot p a 2-choice cuckoo hash of the p-bit blocks that hold routes of length p up
#           to the next pivot; a slot (key, entry) is the block's own route (a leaf) or roots the
#           block's trie (8-bit steps from p), and carries the best shorter route as its default
#   nodes and single-route records of every trie, depth-first by address
# A lookup probes the /48 table, then the /32 one; the first hit resolves the address within its
# block; a miss everywhere leaves the routes shorter than /32 to the root trie. Routes just
# shorter than a pivot (V6_EXPAND) are expanded into its blocks first, so that the probe alone
# answers their addresses. The datapath's
# shape is fixed (router.h RT_V6_*, mirrored here); xdp_progs/router/NOTES.md says why.
V6_LEVELS = (16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120, 128)
V6_PIVOTS = (32, 48)
V6_EXPAND = (30, 44)      # per pivot p: routes of this length up to p are expanded to p bits
V6_NODE = 0x80000000      # entry: node at word offset (e & V6_OFF), 2^stride entries
V6_SKIP = 0x40000000      # entry: single-route record at word offset (e & V6_OFF)
V6_OFF = 0x3FFFFFFF
V6_SKIP_WORDS = 8         # struct rt_v6_skip: key hi, key lo (LE u64), shifts + len, gid, gid_else, pad
V6_HASH_WORDS = 6         # struct rt_v6_hash: c1, c2 (LE u64), n, slots
V6_HDR_WORDS = 16         # struct rt_v6_bank: a struct rt_v6_hash per pivot, root, padding
V6_SLOT_WORDS = 4         # struct rt_v6_slot: key (LE u64), entry, pad
V6_LOAD = 0.4             # cuckoo load bound (2 choices of 1 slot settle below 0.5)
M64 = (1 << 64) - 1


def _bits(hi: np.ndarray, lo: np.ndarray, b: int, e: int) -> np.ndarray:
    """Bits [b, e) of 128-bit addresses given as two uint64 halves (a range within one half)."""
    mask = np.uint64((1 << (e - b)) - 1)
    if e <= 64:
        return (hi >> np.uint64(64 - e)) & mask
    if b < 64:
        raise ValueError(f"bits [{b}, {e}) straddle bit 64")
    return (lo >> np.uint64(128 - e)) & mask


def v6_split(addrs: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
    """128-bit ints -> (hi, lo) uint64 arrays."""
    a = list(addrs)
    return (np.fromiter((x >> 64 for x in a), np.uint64, len(a)),
            np.fromiter((x & M64 for x in a), np.uint64, len(a)))


def _mask(b: int) -> tuple[np.uint64, np.uint64]:
    """(hi, lo) masks of the first b bits."""
    return (np.uint64(M64 ^ ((1 << (64 - min(b, 64))) - 1)),
            np.uint64(M64 ^ ((1 << (128 - b)) - 1) if b > 64 else 0))


def _plan(hi, lo, plen, gid, levels, slot):
    """First pass over sorted routes that all start below level levels[0]: per level, each
    subtree below a parent entry (a run of routes) becomes a single-route record or a node.
    `slot` names each route's entry in the root (the trie root or a hash slot)."""
    plan, keys = [], []
    par = np.full(len(hi), -1, np.int64)          # parent node (index in its level), -1 = root
    for b, e in zip(levels, levels[1:]):
        if not len(slot):
            break
        s = e - b
        start = np.flatnonzero(np.r_[True, (slot[1:] != slot[:-1]) | (par[1:] != par[:-1])])
        count = np.diff(np.r_[start, len(slot)])
        single = count == 1
        one = start[single]
        multi = ~single
        nn = int(multi.sum())
        group_of = np.repeat(np.arange(len(start)), count)
        keep = multi[group_of]
        node = (np.cumsum(multi) - 1)[group_of[keep]]
        rec = (hi[one], lo[one], plen[one], gid[one])
        mh, ml = _mask(b)                         # depth-first key: the subtree's prefix
        kh, kl = hi[start] & mh, lo[start] & ml
        keys.append((np.r_[kh[single], kh[multi]], np.r_[kl[single], kl[multi]], b,
                     np.r_[np.full(len(one), V6_SKIP_WORDS), np.full(nn, 1 << s)]))
        hi, lo, plen, gid = hi[keep], lo[keep], plen[keep], gid[keep]
        paint = []
        for n in range(b + 1, e + 1):
            sel = plen == n
            if sel.any():
                rows = (node[sel] << (n - b)) | _bits(hi[sel], lo[sel], b, n).astype(np.int64)
                paint.append((n, rows, gid[sel]))
        plan.append((s, e, par[start], slot[start], single, rec, nn, paint))
        deeper = plen > e
        hi, lo, plen, gid = hi[deeper], lo[deeper], plen[deeper], gid[deeper]
        par, slot = node[deeper], _bits(hi, lo, b, e).astype(np.int64)
    return plan, keys


def _rows(w: np.ndarray, width: int) -> np.ndarray:
    """w as overlapping rows of `width` words, row i starting at word i: `_rows(w, k)[offs] = x`
    writes a block of k words at each offset without an index per word."""
    return np.lib.stride_tricks.as_strided(w, (len(w) - width + 1, width), (w.strides[0], w.strides[0]))


def _write(w, plan, offs, root_at, base):
    """Second pass: write a plan's records and nodes at their offsets (`offs`: per level, the
    records' then the nodes' offsets), level by level so that each level's defaults are read
    from its parent once that is painted. `root_at` = (start, stride): root entry i is at word
    start + stride * i."""
    prev = None
    for (s, e, gpar, gslot, single, (rh, rl, rn, rg), nn, paint), lvl in zip(plan, offs):
        at = root_at[0] + root_at[1] * gslot if prev is None else prev[gpar] + gslot
        default = w[at]
        rec_off, node_off = lvl[:len(rn)], lvl[len(rn):]
        if len(rn):
            rec = np.zeros((len(rn), V6_SKIP_WORDS), np.uint32)
            rec[:, 0] = (rh & np.uint64(0xFFFFFFFF)).astype(np.uint32)
            rec[:, 1] = (rh >> np.uint64(32)).astype(np.uint32)
            rec[:, 2] = (rl & np.uint64(0xFFFFFFFF)).astype(np.uint32)
            rec[:, 3] = (rl >> np.uint64(32)).astype(np.uint32)
            sh_lo = 128 - np.maximum(rn, 64)
            rec[:, 4] = (64 - np.minimum(rn, 64)) | (np.minimum(sh_lo, 63) << 8) | \
                ((sh_lo - np.minimum(sh_lo, 63)) << 16) | (rn << 24)
            rec[:, 5] = rg
            rec[:, 6] = default[single]
            _rows(w, V6_SKIP_WORDS)[rec_off] = rec
            w[at[single]] = V6_SKIP | (base + rec_off).astype(np.uint32)
        if nn:
            _rows(w, 1 << s)[node_off] = default[~single][:, None]   # leaf push
            for n, rows, g in paint:          # shortest first: longer prefixes paint over
                span = 1 << (e - n)           # a route's entries: a run in its node
                first = rows << (e - n)
                _rows(w, span)[node_off[first >> s] + (first & ((1 << s) - 1))] = g[:, None]
            w[at[~single]] = V6_NODE | (base + node_off).astype(np.uint32)
        prev = node_off


def _slot_of(keys: np.ndarray, c, n: int) -> np.ndarray:
    """Candidate slot of uint64 keys under multiplier c in a table of n slots (v6_probe)."""
    x = keys * np.uint64(c)
    x >>= np.uint64(32)
    x *= np.uint64(n)
    x >>= np.uint64(32)
    return x.view(np.int64)


def _cuckoo(keys: np.ndarray, rng: np.random.Generator) -> tuple[int, int, int, np.ndarray]:
    """Places distinct uint64 keys into n slots, each in one of its two candidates
    (multiply-shift hashes with odd multipliers c1, c2, mapped onto n) -> (c1, c2, n, slot per
    key). Parallel rounds: every homeless key claims its current candidate (one claimant wins a
    slot, and evicts the owner), the others switch candidates; new multipliers if it does not
    settle."""
    n = len(keys)
    size = max(16, int(np.ceil(max(n, 1) / V6_LOAD)))
    for attempt in range(64):
        c = rng.integers(0, 1 << 63, 2, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
        cand = np.empty((2, n), np.int32)        # int32 throughout: half the memory to touch
        cand[0], cand[1] = _slot_of(keys, c[0], size), _slot_of(keys, c[1], size)
        owner = np.full(size, -1, np.int32)
        choice = np.zeros(n, np.int32)
        homeless = np.arange(n, dtype=np.int32)
        for _round in range(200):
            if not len(homeless):
                return int(c[0]), int(c[1]), size, np.where(choice == 0, cand[0], cand[1]).astype(np.int64)
            if _round == 0:                       # every slot free, every key at its first candidate
                owner[cand[0]] = homeless
                won = owner[cand[0]] == homeless
                homeless = homeless[~won]
                choice[homeless] ^= 1
                continue
            pos = cand.reshape(-1)[choice[homeless].astype(np.int64) * n + homeless]
            evicted = owner[pos]
            owner[pos] = homeless                 # one of the claimants of a slot wins
            won = owner[pos] == homeless
            # distinct: the losers, and the one previous owner of each slot won
            homeless = np.r_[homeless[~won], evicted[won & (evicted >= 0)]]
            choice[homeless] ^= 1
        size += size // 16 if attempt % 8 == 7 else 0
    raise RouteError(f"cannot place {n} blocks in an IPv6 hash table")


def _expand(hi, lo, plen, gid, first: int, to: int) -> tuple[np.ndarray, np.ndarray]:
    """The `to`-bit blocks of a pivot: its own routes (length `to`) and, by controlled prefix
    expansion, every route of length first..to-1 as the 2^(to-len) blocks it covers, unless a
    route of length `to` (or a longer expanded one) names the same block; LPM answers are
    unchanged for every address. A pivot's probe then ends the lookup of these addresses
    instead of a walk down the shorter routes' trie. -> (block numbers sorted, group ids)."""
    sel = (plen >= first) & (plen < to)
    real = plen == to
    n = plen[sel]
    cnt = np.int64(1) << (to - n)
    rep = np.repeat(np.arange(len(n)), cnt)
    sub = np.arange(len(rep)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    eh = hi[sel][rep] | (sub.astype(np.uint64) << np.uint64(64 - to))
    # candidates for each block: the real one first, then the longest expanded one (sorted by
    # block, then `to` - length: distinct, no two routes of a length cover one block)
    ch = np.r_[hi[real], eh] >> np.uint64(64 - to)
    rank = np.r_[np.zeros(int(real.sum()), np.uint64), (to - n[rep]).astype(np.uint64)]
    cg = np.r_[gid[real], gid[sel][rep]]
    order = np.argsort((ch << np.uint64(8)) | rank) if to <= 56 else np.lexsort((rank, ch))
    ch, cg = ch[order], cg[order]
    first_of = np.r_[True, ch[1:] != ch[:-1]] if len(ch) else np.zeros(0, bool)
    return ch[first_of], cg[first_of]


def build_v6(hi: np.ndarray, lo: np.ndarray, plen: np.ndarray, gid: np.ndarray, base: int = 0,
             out: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """The IPv6 table of one bank as uint32 words, the first one at word offset `base` of the
    datapath's flat array. Prefixes must be distinct with host bits zero (check_v6). With `out`
    (e.g. the idle bank of the mmapped map) the words are written there, no copy of a table
    that is ~100 MB at 1M routes, and the used part returned; RouteError when it is too small.

    Entries: a route group id (0 = none), V6_NODE | offset of a node of 2^stride entries indexed
    by the next address bits, or V6_SKIP | offset of a record for a subtree holding one route:
    (prefix, length, group, group otherwise). Leaf-pushed (a node is born filled with the
    covering route's group, a record and a hash slot carry it), so a lookup never backtracks.
    Built with numpy in two passes (routes sorted by address make every subtree a run of
    consecutive routes): the first finds the slots, nodes and records of every trie and lays
    them out depth-first (a subtree's nodes share pages: fewer TLB misses), the second writes
    them, each pivot's slots after the shorter routes they default to."""
    levels, pivots = V6_LEVELS, V6_PIVOTS
    hi = np.asarray(hi, np.uint64)
    lo = np.asarray(lo, np.uint64)
    plen = np.asarray(plen, np.int64)
    gid = np.asarray(gid, np.uint32)
    if len(gid) and int(gid.max()) >= V6_SKIP:
        raise ValueError("group id collides with the entry flags")
    rng = np.random.default_rng(seed)
    r = levels[0]
    root = V6_HDR_WORDS
    cur = root + (1 << r)

    def sorted_routes(sel):           # the routes of a mask, sorted by address, then length
        i = np.flatnonzero(sel)
        i = i[np.lexsort((plen[i], lo[i], hi[i]))]
        return hi[i], lo[i], plen[i], gid[i]
    # the root trie: routes shorter than the first pivot's expansion
    sh, sl, sn, sg = sorted_routes(plen < V6_EXPAND[0])
    top = sn <= r
    root_paint = [(n, _bits(sh[sel], sl[sel], 0, n).astype(np.int64) if n else np.zeros(int(sel.sum()), np.int64),
                   sg[sel]) for n in range(r + 1) if (sel := top & (sn == n)).any()]
    plans = [_plan(sh[~top], sl[~top], sn[~top], sg[~top], levels[:levels.index(pivots[0]) + 1],
                   _bits(sh[~top], sl[~top], 0, r).astype(np.int64))]
    # per pivot: its blocks (own and expanded routes) and those holding longer routes, up to
    # the next pivot's expansion
    tables = []
    for i, p in enumerate(pivots):
        end = V6_EXPAND[i + 1] if i + 1 < len(pivots) else 129
        own, own_gid = _expand(hi, lo, plen, gid, V6_EXPAND[i], p)
        h, l, n, g = sorted_routes((plen > p) & (plen < end))
        blk = h >> np.uint64(64 - p)
        keys = np.sort(np.r_[own, blk], kind="stable")      # two sorted runs: a merge
        keys = keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys
        c1, c2, size, slot = _cuckoo(keys, rng)
        slots = cur
        cur += V6_SLOT_WORDS * size
        stop = levels.index(pivots[i + 1]) + 1 if i + 1 < len(pivots) else len(levels)
        plans.append(_plan(h, l, n, g, levels[levels.index(p):stop], slot[np.searchsorted(keys, blk)]))
        tables.append((p, c1, c2, size, slots, keys, slot, np.searchsorted(keys, own), own_gid))
    # layout: every record and node after the slots, depth-first (prefix, then depth)
    keys = [k for _, ks in plans for k in ks]
    offs = []
    if keys:
        kh, kl, dep, size = (np.concatenate(x) for x in zip(*[(h, l, np.full(len(h), b), z)
                                                                for h, l, b, z in keys]))
        order = np.lexsort((dep, kl, kh))
        off = np.empty(len(order), np.int64)
        off[order] = cur + np.cumsum(size[order]) - size[order]
        cur += int(size.sum())
        bounds = np.cumsum([0] + [len(h) for h, _, _, _ in keys])
        offs = [off[bounds[i]:bounds[i + 1]] for i in range(len(keys))]
    if base + cur > V6_OFF:
        raise RouteError(f"IPv6 table of {cur} words exceeds the {V6_OFF + 1}-word offset space")
    if out is None:
        out = np.zeros(cur, np.uint32)
    elif len(out) < cur:
        raise RouteError(f"IPv6 table needs {cur} words ({-(-cur // 256)} KiB); the bank holds "
                         f"{len(out)}")
    w = out[:cur]
    w[:root + (1 << r)] = 0
    for i, (p, c1, c2, size, slots, *_rest) in enumerate(tables):
        w[V6_HASH_WORDS * i:V6_HASH_WORDS * (i + 1)] = [c1 & 0xFFFFFFFF, c1 >> 32, c2 & 0xFFFFFFFF,
                                                      c2 >> 32, size, base + slots]
        w[slots:slots + V6_SLOT_WORDS * size] = 0
    w[V6_HDR_WORDS - 1] = base + root
    for n, rows, g in root_paint:      # shortest first: longer prefixes paint over shorter ones
        w[root:root + (1 << r)].reshape(1 << n, 1 << (r - n))[rows] = g[:, None]
    used = len(plans[0][1])
    _write(w, plans[0][0], offs[:used], (root, 1), base)
    for (plan, ks), (p, c1, c2, size, slots, bkeys, slot, own_block, own_gid) in zip(plans[1:], tables):
        key = bkeys << np.uint64(64 - p)
        rows = np.zeros((len(key), V6_SLOT_WORDS), np.uint32)    # per block: its slot's words
        rows[:, 0] = (key & np.uint64(0xFFFFFFFF)).astype(np.uint32)      # little-endian u64
        rows[:, 1] = (key >> np.uint64(32)).astype(np.uint32)
        # the default: the block's own route, else what the table answers so far (shorter
        # pivots and the root trie; this table's slots are still empty)
        has = np.zeros(len(key), bool)
        has[own_block] = True
        rows[own_block, 2] = own_gid
        rows[~has, 2] = _walk(w, key[~has], np.zeros(int((~has).sum()), np.uint64), base, levels, pivots)
        w[slots:slots + V6_SLOT_WORDS * size].reshape(-1, V6_SLOT_WORDS)[slot] = rows
        _write(w, plan, offs[used:used + len(ks)], (slots + 2, V6_SLOT_WORDS), base)
        used += len(ks)
    return w


def _walk(w, hi, lo, base, levels, pivots):
    """What the datapath computes (lookup6 in router.bpf.c), vectorised over addresses."""
    r = levels[0]
    e = np.zeros(len(hi), np.uint32)
    start = np.full(len(hi), -1)
    for i in reversed(range(len(pivots))):     # longest pivot first; an empty table never hits
        p = pivots[i]
        h = w[V6_HASH_WORDS * i:V6_HASH_WORDS * (i + 1)].astype(np.uint64)
        blk = hi >> np.uint64(64 - p)
        key = blk << np.uint64(64 - p)
        for c in (h[0] | (h[1] << np.uint64(32)), h[2] | (h[3] << np.uint64(32))):
            at = int(h[5]) - base + V6_SLOT_WORDS * _slot_of(blk, c, int(h[4]))
            k = w[at].astype(np.uint64) | (w[at + 1].astype(np.uint64) << np.uint64(32))
            hit = (start < 0) & (k == key) & (w[at + 2] != 0)
            e[hit] = w[at + 2][hit]
            start[hit] = levels.index(p)
    miss = start < 0
    e[miss] = w[int(w[V6_HDR_WORDS - 1]) - base + _bits(hi[miss], lo[miss], 0, r).astype(np.int64)]
    start[miss] = 0
    for i, (b, en) in enumerate(zip(levels, levels[1:])):
        node = ((e & np.uint32(V6_NODE)) != 0) & (start <= i)
        if node.any():
            off = (e[node] & np.uint32(V6_OFF)).astype(np.int64) - base
            e[node] = w[off + _bits(hi[node], lo[node], b, en).astype(np.int64)]
    rec = (e & np.uint32(V6_NODE | V6_SKIP)) == V6_SKIP
    if rec.any():
        o = (e[rec] & np.uint32(V6_OFF)).astype(np.int64) - base
        x = w[o[:, None] + np.arange(V6_SKIP_WORDS)].astype(np.uint64)
        k_hi, k_lo = x[:, 0] | (x[:, 1] << np.uint64(32)), x[:, 2] | (x[:, 3] << np.uint64(32))
        sh = x[:, 4]
        d_lo = ((lo[rec] ^ k_lo) >> ((sh >> np.uint64(8)) & np.uint64(63))) >> ((sh >> np.uint64(16)) & np.uint64(1))
        hit = (((hi[rec] ^ k_hi) >> (sh & np.uint64(63))) | d_lo) == 0
        e[rec] = np.where(hit, x[:, 5], x[:, 6]).astype(np.uint32)
    return e


def lookup_v6(words: np.ndarray, hi: np.ndarray, lo: np.ndarray, base: int = 0) -> np.ndarray:
    """Vectorised lookup in a built table (what the BPF code does) -> group ids."""
    return _walk(words, np.asarray(hi, np.uint64), np.asarray(lo, np.uint64), base, V6_LEVELS, V6_PIVOTS)


def chunks_needed_v6(routes: Iterable[tuple[int, int, int]]) -> int:
    """sizes.v6_chunks (KiB beyond header and root) these (addr, len, gid) routes need."""
    rows = list(routes)
    hi, lo = v6_split(a for a, _, _ in rows)
    n = np.array([x for _, x, _ in rows], np.int64)
    words = len(build_v6(hi, lo, n, np.ones(len(rows), np.uint32)))
    return -(-(words - V6_HDR_WORDS - (1 << V6_LEVELS[0])) // CHUNK)


def check_v6(hi: np.ndarray, lo: np.ndarray, plen: np.ndarray, lines: np.ndarray | None = None,
             source: str | None = None) -> None:
    """Vectorised: host bits zero, no duplicate prefix."""
    if len(plen) == 0:
        return
    p = np.asarray(plen, np.int64)
    host_hi = np.where(p == 0, np.uint64(M64), np.where(
        p >= 64, np.uint64(0), (np.uint64(1) << np.clip(64 - p, 1, 63).astype(np.uint64)) - np.uint64(1)))
    host_lo = np.where(p <= 64, np.uint64(M64), np.where(
        p == 128, np.uint64(0), (np.uint64(1) << np.clip(128 - p, 1, 63).astype(np.uint64)) - np.uint64(1)))
    bad = np.flatnonzero((hi & host_hi) | (lo & host_lo))
    if len(bad):
        i = int(bad[0])
        a = (int(hi[i]) << 64) | int(lo[i])
        net = ipaddress.ip_network(f"{ipaddress.IPv6Address(a)}/{int(p[i])}", strict=False)
        raise RouteError(f"malformed prefix {format_prefix(6, a, int(p[i]))}: host bits set (did you "
                         f"mean {net}?)", int(lines[i]) if lines is not None else None, source)
    order = np.lexsort((p, lo, hi))
    same = (hi[order][1:] == hi[order][:-1]) & (lo[order][1:] == lo[order][:-1]) & (p[order][1:] == p[order][:-1])
    dup = np.flatnonzero(same)
    if len(dup):
        first, second = sorted((int(order[dup[0]]), int(order[dup[0] + 1])))
        a = (int(hi[second]) << 64) | int(lo[second])
        lf = int(lines[first]) if lines is not None else None
        ls = int(lines[second]) if lines is not None else None
        raise RouteError(f"duplicate route {format_prefix(6, a, int(p[second]))}"
                         + (f" (first on line {lf})" if lf is not None else ""), ls, source)


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


def synthetic_v6(n: int, seed: int = 1, allocations: int | None = None) -> list[tuple[int, int]]:
    """n distinct IPv6 prefixes under 2000::/3, clustered below random /32 allocations as real
    tables are (a uniformly random table would be unlike any real one, and huge in a trie):
    `allocations` of them, by default max(2000, n / 20) (the public table has ~7 routes per
    origin AS; 20 keeps allocations dense at every size)."""
    import random
    allocations = allocations or max(2000, n // 20)
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
