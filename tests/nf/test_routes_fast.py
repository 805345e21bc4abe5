"""nf/routes.py's fast paths against their authorities: the vectorised route-file parser
(_parse_fast) against the exact per-line one (_parse_exact) — same routes, same order, same
error on the same line —, and build_v6 against the words the builder before the load work
produced."""
from __future__ import annotations

import hashlib
import ipaddress
import random

import numpy as np
import pytest

import nf.routes as routes
from nf.routes import RouteError, RouteSet, _parse_exact, build_v6, parse_route_lines, read_route_file

TARGETS = {"via 192.0.2.1": 1, "via 192.0.2.2": 2, "blackhole": 3, "dev p0": 4,
           "via 2001:db8::2": 6, "group core": 7}


def resolve(text: str) -> int:
    if text not in TARGETS:
        raise ValueError(f"cannot resolve {text!r}")
    return TARGETS[text]


def v6_text(rnd: random.Random, a: int, skip: tuple[int, int] | None) -> str:
    """IPv6 address text: groups with random leading zeros and letter case, the groups
    [skip[0], skip[1]) (all zero) written as '::'."""
    groups = [(a >> (112 - 16 * i)) & 0xFFFF for i in range(8)]

    def one(g: int) -> str:
        h = f"{g:x}".rjust(rnd.randint(len(f"{g:x}"), 4), "0")
        return "".join(c.upper() if rnd.random() < 0.4 else c for c in h)
    if skip is None:
        return ":".join(map(one, groups))
    return ":".join(map(one, groups[:skip[0]])) + "::" + ":".join(map(one, groups[skip[1]:]))


def random_v6_line(rnd: random.Random) -> tuple[str, int, int]:
    """A plain IPv6 route line: the '::' (or none) at a random place and length, a random
    prefix length (sometimes with leading zeros), host bits zero."""
    n = rnd.randint(0, 128)
    a = rnd.getrandbits(128) & (((1 << 128) - 1) ^ ((1 << (128 - n)) - 1))
    skip = None
    if rnd.random() < 0.8:
        i = rnd.randint(0, 7)
        j = rnd.randint(i + 1, 8)
        a &= ~sum(0xFFFF << (112 - 16 * k) for k in range(i, j))
        skip = (i, j)
    ln = str(n).rjust(rnd.randint(len(str(n)), 3), "0")
    return f"{v6_text(rnd, a, skip)}/{ln} {rnd.choice(list(TARGETS))}", a, n


def random_v4_line(rnd: random.Random) -> str:
    n = rnd.randint(0, 32)
    a = rnd.getrandbits(32) & ((0xFFFFFFFF << (32 - n)) & 0xFFFFFFFF)
    ln = str(n).rjust(rnd.randint(len(str(n)), 3), "0")
    return f"{ipaddress.IPv4Address(a)}/{ln}{rnd.choice([' ', chr(9)])}{rnd.choice(list(TARGETS))}"


def plain_lines(seed: int, n: int) -> list[str]:
    rnd = random.Random(seed)
    out, seen = [], set()
    while len(out) < n:
        if rnd.random() < 0.6:
            line, a, ln = random_v6_line(rnd)
            key = (6, a, ln)
        else:
            line = random_v4_line(rnd)
            key = (4, str(ipaddress.ip_network(line.split()[0])))
        if key not in seen:
            seen.add(key)
            out.append(line)
    return out


def same(fast: RouteSet, exact: RouteSet) -> None:
    for name in ("v4_addr", "v4_len", "v4_gid", "v4_line", "v6_hi", "v6_lo", "v6_len", "v6_gid", "v6_line"):
        f, e = getattr(fast, name), getattr(exact, name)
        assert f.dtype == e.dtype or name.endswith("_line"), name
        assert f.tolist() == e.tolist(), name


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_plain_lines_are_vouched_for_and_read_as_the_exact_parser_reads_them(seed, monkeypatch):
    lines = plain_lines(seed, 3000)
    exact = _parse_exact(lines, resolve, "<routes>")

    def no_exact(*a, **k):
        raise AssertionError("a plain line went to the exact parser")
    monkeypatch.setattr(routes, "_parse_exact", no_exact)
    monkeypatch.setattr(routes, "_CHUNK_LINES", 512)       # several chunks
    same(parse_route_lines(lines, resolve), exact)


def test_every_skip_position_and_length():
    """'::' for every run of zero groups [i, j), '::' alone, and no '::' at all."""
    rnd = random.Random(7)
    lines = []
    for i in range(8):
        for j in range(i + 1, 9):
            a = sum(rnd.randint(1, 0xFFFF) << (112 - 16 * k) for k in range(8) if not i <= k < j)
            lines.append(f"{v6_text(rnd, a, (i, j))}/128 blackhole")
    lines.append(f"{v6_text(rnd, (1 << 128) - 1, None)}/128 blackhole")
    rs = parse_route_lines(lines, resolve)
    same(rs, _parse_exact(lines, resolve, "<routes>"))
    assert len(set(zip(rs.v6_hi.tolist(), rs.v6_lo.tolist()))) == len(lines) == 37


ODD_BUT_VALID = [
    "::ffff:192.0.2.1/128 blackhole",          # IPv4-mapped, a dotted tail
    "::192.0.2.1/128 blackhole",
    "fe80::1%eth0/128 blackhole",              # a zone id
    "2001:db8::1 blackhole",                   # a bare address: /128
    "192.0.2.1 blackhole",                     # a bare address: /32
    "  2001:db8:5::/48   via 2001:db8::2  ",   # leading and trailing blanks
    "2001:db8:6::/0048 blackhole",             # four digits of length
    "2001:db8:7::/48\t\tblackhole # tabs",
    "10.9.0.0/16   via   192.0.2.1",
    "2001:0db8:0000:0000:0000:0000:0000:0008/125 blackhole",    # the longest text: 39 characters
    "2001:db8:8::/４８ blackhole",              # a non-ASCII digit str.isdigit() accepts
    "2001:db8:9::/48 blackhole # ü comment",
    "# a comment", "", "   ", "\t# indented comment",
]


def test_odd_forms_go_to_the_exact_parser_and_agree():
    rnd = random.Random(5)
    lines = plain_lines(11, 200)
    for odd in ODD_BUT_VALID:
        lines.insert(rnd.randint(0, len(lines)), odd)
    same(parse_route_lines(lines, resolve), _parse_exact(lines, resolve, "<routes>"))


BAD = [
    "2001:db8::1/64 blackhole",           # host bits
    "10.0.0.1/8 blackhole",
    "2001:db8::/129 blackhole",           # length
    "10.0.0.0/33 blackhole",
    "2001:db8:::/48 blackhole",           # ':::'
    "1::2::3/128 blackhole",              # two '::'
    # an address the fast path would read as a route if it let the line through (no host
    # bits, a known target): only the check that refuses it stands between
    ":1::/32 blackhole",                  # a leading ':' not part of the '::'
    "::1:/128 blackhole",                 # a trailing ':' not part of the '::'
    ":2:3:4:5:6:7:8/128 blackhole",       # 8 fields, the first empty
    "1:2:3:4:5:6:7:/128 blackhole",       # 8 fields, the last empty
    "1::2:/128 blackhole",
    "1:2:3:4:5:6:7:8:9/128 blackhole",    # 9 groups
    "1:2:3:4:5:6:7::8/128 blackhole",     # '::' and 8 others
    "1:2:3:4:5:6:7/128 blackhole",        # 7 groups, no '::'
    "12345::/16 blackhole",               # 5 digits
    "2001:db8::g/128 blackhole",          # not hex
    "010.0.0.0/8 blackhole",              # a leading zero (ipaddress refuses it)
    "1.2.3/24 blackhole", "1.2.3.4.5/32 blackhole", "256.0.0.0/8 blackhole", "0001.2.3.4/32 blackhole",
    "1.2.3.-4/32 blackhole", "1..3.4/32 blackhole", "/24 blackhole", "10.0.0.0/ blackhole",
    "10.0.0.0/8", "2001:db8::/32", "2001:db8::/32 # no target",   # no target
    "10.0.0.0/8 via 203.0.113.9",         # does not resolve
    "2001:db8::/32 nowhere",
    "10.0.0.0/8x blackhole", "fish blackhole", "2001:db8::/3 2 blackhole",
]


@pytest.mark.parametrize("later", [False, True])
@pytest.mark.parametrize("bad", BAD)
def test_a_bad_line_gets_the_exact_parsers_error(bad, later, monkeypatch):
    """The bad line alone (the fast path must find it), or before another bad one (the first
    is named)."""
    monkeypatch.setattr(routes, "_CHUNK_LINES", 64)
    rnd = random.Random(bad)
    lines = plain_lines(13, 300)
    where = rnd.randint(0, len(lines))
    lines.insert(where, bad)
    if later:
        lines.insert(rnd.randint(where + 1, len(lines)), rnd.choice(BAD))
    with pytest.raises(RouteError) as exact:
        _parse_exact(lines, resolve, "r.txt")
    with pytest.raises(RouteError) as fast:
        parse_route_lines(lines, resolve, "r.txt")
    assert exact.value.line == where + 1
    assert (str(fast.value), fast.value.line) == (str(exact.value), exact.value.line)


@pytest.mark.parametrize("family", [4, 6])
def test_duplicates_get_the_exact_parsers_error(family, monkeypatch):
    """IPv6 duplicates are an error of the second line (the exact parser checks per line),
    IPv4 ones are checked after all lines, the smallest prefix first: across chunks too."""
    monkeypatch.setattr(routes, "_CHUNK_LINES", 64)
    lines = [ln for ln in plain_lines(17, 400) if (":" in ln.split()[0]) == (family == 6)]
    rnd = random.Random(family)
    for _ in range(3):
        i = rnd.randrange(len(lines) - 1)
        lines.insert(rnd.randint(i + 1, len(lines)), lines[i].split()[0] + " blackhole")
    with pytest.raises(RouteError, match="duplicate") as exact:
        _parse_exact(lines, resolve, "r.txt")
    with pytest.raises(RouteError) as fast:
        parse_route_lines(lines, resolve, "r.txt")
    assert (str(fast.value), fast.value.line) == (str(exact.value), exact.value.line)


def test_the_first_unresolvable_target_in_a_later_chunk(monkeypatch):
    monkeypatch.setattr(routes, "_CHUNK_LINES", 16)
    lines = plain_lines(19, 200)
    lines[150] = lines[150].split()[0] + " via 198.51.100.7"
    lines[170] = lines[170].split()[0] + " via 198.51.100.8"
    with pytest.raises(RouteError, match="198.51.100.7") as e:
        parse_route_lines(lines, resolve, "r.txt")
    assert e.value.line == 151


def test_long_targets_and_comments_group_by_their_text():
    """Targets longer than the words compared in numpy (64 bytes) and comments that make every
    raw target distinct still resolve once per text and agree."""
    lines = plain_lines(23, 300)
    lines = [ln + (f"  # {'x' * (i % 90)} {i}" if i % 3 else "") for i, ln in enumerate(lines)]
    calls = []

    def counting(text):
        calls.append(text)
        return resolve(text)
    same(parse_route_lines(lines, counting), _parse_exact(lines, resolve, "<routes>"))
    assert len(calls) <= len(set(lines))


def test_route_file_bytes(tmp_path):
    """The file path: CRLF line ends, a final line without a line end, UTF-8 in comments; a
    line break str.splitlines() knows beyond \\n (\\v, \\u2028) sends the text to the exact
    parser with the same numbering."""
    lines = plain_lines(29, 500)
    lines[7] += " # Grüße"
    f = tmp_path / "r.txt"
    for text in ("\r\n".join(lines), "\n".join(lines) + "\n", "\n".join(lines[:3] + ["# a\v# b"] + lines[3:]),
                 "\n".join(lines[:3] + ["# a\u2028# b"] + lines[3:])):
        f.write_bytes(text.encode())
        calls = []
        same(read_route_file(f, lambda t: calls.append(t) or resolve(t)),
             _parse_exact(text.splitlines(), resolve, str(f)))
        if "\v" not in text and "\u2028" not in text:   # the fast path: each raw target text (no \r) once
            assert len(calls) == len({ln.split(None, 1)[1] for ln in lines})
    f.write_bytes(("\r\n".join(lines[:9] + ["2001:db8::1/64 blackhole"] + lines[9:])).encode())
    with pytest.raises(RouteError, match="host bits") as e:
        read_route_file(f, resolve)
    assert e.value.line == 10 and str(e.value).startswith(f"{f}:10: ")


def test_lines_holding_line_breaks_keep_their_numbers():
    lines = ["10.0.0.0/8 blackhole", "10.1.0.0/16 blackhole\r", "# x\ny", "2001:db8::1/64 blackhole"]
    with pytest.raises(RouteError, match="host bits") as e:
        parse_route_lines(lines, resolve)
    assert e.value.line == 4


def test_empty_and_comment_only_inputs():
    for lines in ([], [""], ["# only a comment"], ["", "  ", "#"]):
        rs = parse_route_lines(lines, resolve)
        assert len(rs) == 0 and rs.v4_line.tolist() == [] and rs.v6_line.tolist() == []


# ---- build_v6: the same words as the builder before the load work ------------------------------
class _Rng:
    """The cuckoo multipliers drawn by Python's random instead of numpy's Generator, whose
    integers() may change between numpy versions: the digests below depend on the builder only."""

    def __init__(self, seed):
        self.r = random.Random(seed)

    def integers(self, low, high, size, dtype):
        return np.array([self.r.randrange(low, high) for _ in range(size)], dtype)


def every_length(n: int, seed: int) -> list[tuple[int, int]]:
    """n distinct prefixes of every length 0..128, clustered under a few /16s, /32s and /48s
    (blocks with deep tries, expansions below both pivots, records)."""
    rnd = random.Random(seed)
    out: set[tuple[int, int]] = set()
    while len(out) < n:
        ln, a = rnd.randint(0, 128), rnd.getrandbits(128)
        for bits, tops in ((16, (0x2001, 0xfd00)), (32, (0x2001_0db8, 0x2a00_1450)), (48, (0x2001_0db8_0001,))):
            if rnd.random() < 0.7:
                a = (a & ((1 << (128 - bits)) - 1)) | (rnd.choice(tops) << (128 - bits))
        out.add((a & (((1 << 128) - 1) ^ ((1 << (128 - ln)) - 1)), ln))
    return sorted(out)


# sha256 of build_v6's words for these tables (group ids i % 7 + 1, the rows reversed, at word
# offset `base`, seed 3), made by the builder of commit 182f0fb (main before the issue-18 load
# work) with _Rng; a change of the table's layout replaces them.
BUILT = {("synthetic", 3000, 2, 0): "e28a0f3e9a1e4f9b93a80203bac2a64971a4d58bf39199e2a75fbcfcca5c907a",
         ("synthetic", 20000, 5, 777): "8c0bbd6dea5a0b768249beb5a32950eec05b2e16c569d80b1d6fcd14f3774fe9",
         ("synthetic", 100000, 8, 123456): "679a95d8fd7f29e1b05c8254be5de65d7c96a87b31d5da9c0e65e33ad97ab87a",
         ("every_length", 20000, 9, 4242): "9bb7cc3cab6f8d55c92a5d8cbd540a6cc9573a0579998976f0d0461153ade7c2"}


@pytest.mark.parametrize("table,n,seed,base", list(BUILT))
def test_build_v6_words_are_the_previous_builders(table, n, seed, base, monkeypatch):
    monkeypatch.setattr(np.random, "default_rng", _Rng)
    r6 = routes.synthetic_v6(n, seed=seed) if table == "synthetic" else every_length(n, seed)
    hi, lo = routes.v6_split(a for a, _ in r6)
    plen = np.array([x for _, x in r6], np.int64)
    rev = np.arange(n)[::-1]               # any input order
    gid = (np.arange(n) % 7 + 1).astype(np.uint32)
    w = build_v6(hi[rev], lo[rev], plen[rev], gid[rev], base=base, seed=3)
    assert hashlib.sha256(w.tobytes()).hexdigest() == BUILT[(table, n, seed, base)]
