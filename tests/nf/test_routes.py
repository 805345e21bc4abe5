"""nf/routes.py: prefix parsing, the route file (errors carry line numbers), and the DIR-24-8 /
IPv6 table builders checked against the reference LPM."""
from __future__ import annotations

import random

import numpy as np
import pytest

from nf.models.router import Lpm
from nf.routes import (CHUNK, ENTRY_CHUNK, V6_HASH_WORDS, V6_HDR_WORDS, V6_LOAD, V6_SKIP_WORDS, V6_SLOT_WORDS,
                       RouteError, RouteSet, _cuckoo, build_v4, build_v6, check_v4, check_v6,
                       chunks_needed_v6, lookup_v4, lookup_v6, parse_prefix, parse_route_lines,
                       synthetic_v4, synthetic_v6, v6_split)


def targets(text: str) -> int:
    table = {"via 192.0.2.1": 1, "via 192.0.2.2": 2, "blackhole": 3, "dev p0": 4,
             "via 192.0.2.1 via 192.0.2.2": 5, "via 2001:db8::2": 6}
    if text not in table:
        raise ValueError(f"cannot resolve {text!r}")
    return table[text]


@pytest.mark.parametrize("text,want", [
    ("10.0.0.0/8", (4, 0x0A000000, 8)), ("0.0.0.0/0", (4, 0, 0)), ("1.2.3.4", (4, 0x01020304, 32)),
    ("2001:db8::/32", (6, 0x20010DB8 << 96, 32)), ("::/0", (6, 0, 0)), ("::1", (6, 1, 128)),
])
def test_parse_prefix(text, want):
    assert parse_prefix(text) == want


@pytest.mark.parametrize("text,why", [
    ("10.0.0.1/8", "host bits set"), ("10.0.0.0/33", "length must be 0..32"),
    ("300.1.1.0/24", "bad address"), ("10.0.0.0/x", "length"), ("2001:db8::/129", "0..128"),
    ("2001:db8::1/64", "host bits"), ("fish", "bad address"),
])
def test_parse_prefix_rejects(text, why):
    with pytest.raises(RouteError, match=why):
        parse_prefix(text)


def test_route_file_parses_all_target_kinds():
    rs = parse_route_lines([
        "# comment", "", "10.0.0.0/8 via 192.0.2.1   # trailing comment",
        "10.1.0.0/16   via 192.0.2.1  via 192.0.2.2", "10.2.0.0/16 blackhole",
        "192.0.2.0/24 dev p0", "2001:db8:5::/48 via 2001:db8::2",
    ], targets)
    assert rs.v4_dict() == {(0x0A000000, 8): 1, (0x0A010000, 16): 5, (0x0A020000, 16): 3,
                            (0xC0000200, 24): 4}
    assert rs.v6_dict() == {(0x20010DB80005 << 80, 48): 6}


@pytest.mark.parametrize("lines,line,why", [
    (["10.0.0.0/8 via 192.0.2.1", "10.0.0.1/8 via 192.0.2.1"], 2, "host bits set"),
    (["10.0.0.0/8 via 192.0.2.1", "", "10.0.0.0/8 via 192.0.2.2"], 3, "duplicate route 10.0.0.0/8 .first on line 1"),
    (["10.0.0.0/8 via 192.0.2.1", "10.0.0.0/40 via 192.0.2.1"], 2, "length must be"),
    (["10.0.0.0/8"], 1, "no target"),
    (["# x", "10.0.0.0/8 via 198.51.100.1"], 2, "cannot resolve"),
    (["2001:db8::/32 via 2001:db8::2", "2001:db8::/32 via 2001:db8::2"], 2, "duplicate"),
    (["10.0.0.0.0/8 blackhole"], 1, "bad address"),
])
def test_route_file_errors_name_the_line(lines, line, why):
    with pytest.raises(RouteError, match=why) as e:
        parse_route_lines(lines, targets, "r.txt")
    assert e.value.line == line and str(e.value).startswith(f"r.txt:{line}: ")


def _random_v4(rnd, n):
    d = {}
    for _ in range(n):
        ln = rnd.choice([0, 1, 7, 8, 15, 16, 22, 23, 24, 24, 24, 25, 26, 27, 28, 29, 30, 31, 32])
        a = rnd.getrandbits(32) & ((0xFFFFFFFF << (32 - ln)) & 0xFFFFFFFF) if ln else 0
        d[(a, ln)] = rnd.randint(1, 4000)
    return d


def test_dir24_8_matches_reference():
    rnd = random.Random(3)
    d = _random_v4(rnd, 20000)
    a = np.array([k[0] for k in d], np.uint32)
    n = np.array([k[1] for k in d], np.uint8)
    g = np.array(list(d.values()), np.uint32)
    t24, t8 = build_v4(a, n, g, chunk_base=100)
    assert len(t24) == 1 << 24 and len(t8) % CHUNK == 0
    # every chunk pointer names a chunk of this bank
    ptr = t24[(t24 & ENTRY_CHUNK) != 0] & 0x7FFFFFFF
    assert ptr.min() >= 100 and ptr.max() < 100 + len(t8) // CHUNK
    ref = Lpm(32, d)
    q = [rnd.getrandbits(32) for _ in range(20000)] + [x | rnd.getrandbits(8) for x, l in d if l >= 24]
    got = lookup_v4(t24, t8, np.array(q, np.uint32), chunk_base=100)
    assert [int(x) for x in got] == [ref.lookup(x) for x in q]


def test_dir24_8_edges():
    # /0 fills everything; /32 inside a /25 inside a /24; the last address of the space
    d = {(0, 0): 1, (0xC0A80100, 24): 2, (0xC0A80180, 25): 3, (0xC0A801FF, 32): 4, (0xFFFFFFFF, 32): 5}
    t24, t8 = build_v4(np.array([k[0] for k in d], np.uint32), np.array([k[1] for k in d], np.uint8),
                       np.array(list(d.values()), np.uint32))
    q = np.array([0, 0xC0A80101, 0xC0A80180, 0xC0A801FE, 0xC0A801FF, 0xFFFFFFFE, 0xFFFFFFFF], np.uint32)
    assert lookup_v4(t24, t8, q).tolist() == [1, 2, 3, 3, 4, 1, 5]


def _random_v6(rnd, n):
    """Routes of every length class around the datapath's boundaries (the /32 and /48 pivots,
    the root's 16 bits, bit 64), clustered so that blocks hold several routes (tries, not just
    single-route records) and nested chains cross the pivots."""
    d = {}
    lens = [0, 1, 3, 15, 16, 17, 24, 29, 30, 31, 32, 33, 40, 43, 44, 45, 47, 48, 48, 49, 55, 56, 63, 64, 65,
            96, 127, 128]
    for _ in range(n):
        ln = rnd.choice(lens)
        a = rnd.getrandbits(128)
        if rnd.random() < 0.8:       # inside a few /16s, /32s and /48s
            a = (a & ((1 << 112) - 1)) | (rnd.choice((0x2001, 0x2a00, 0xfd00)) << 112)
            if rnd.random() < 0.6:
                a = (a & ((1 << 96) - 1)) | (rnd.choice((0x2001_0db8, 0x2a00_1450)) << 96)
                if rnd.random() < 0.5:
                    a = (a & ((1 << 80) - 1)) | (rnd.choice((0x2001_0db8_0001, 0x2001_0db8_00ff)) << 80)
        a &= ((1 << 128) - 1) ^ ((1 << (128 - ln)) - 1)
        d[(a, ln)] = rnd.randint(1, 4000)
    return d


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_v6_table_matches_reference(seed):
    rnd = random.Random(seed)
    d = _random_v6(rnd, 6000)
    hi, lo = v6_split([a for a, _ in d])
    n = np.array([x for _, x in d], np.int64)
    g = np.array(list(d.values()), np.uint32)
    check_v6(hi, lo, n)
    words = build_v6(hi, lo, n, g, base=777, seed=seed)
    ref = Lpm(128, d)
    q = ([rnd.getrandbits(128) for _ in range(3000)] + [a | rnd.getrandbits(8) for a, n in d if n <= 120] +
         [a for a, _ in d] + [a ^ (1 << (128 - n)) for a, n in d if n] +       # first bit outside
         [a | ((1 << (128 - n)) - 1) for a, n in d if n])                      # last address
    qh, ql = v6_split(q)
    assert lookup_v6(words, qh, ql, base=777).tolist() == [ref.lookup(x) for x in q]


def test_v6_table_edges():
    """/0 everywhere; a /48 block's own route with a longer one inside and a /32 default; a /32
    block without deeper routes; the last address of the space."""
    d = {(0, 0): 1, (0x2001_0db8 << 96, 32): 2, (0x2001_0db8_0001 << 80, 48): 3,
         ((0x2001_0db8_0001 << 80) | (5 << 64), 64): 4, ((1 << 128) - 1, 128): 5, (0x2a00 << 112, 16): 6}
    hi, lo = v6_split([a for a, _ in d])
    words = build_v6(hi, lo, np.array([x for _, x in d]), np.array(list(d.values()), np.uint32))
    q = [0, 0x2001_0db8 << 96, (0x2001_0db8_0002 << 80) | 9, (0x2001_0db8_0001 << 80) | 9,
         (0x2001_0db8_0001 << 80) | (5 << 64) | 7, (0x2001_0db8_0001 << 80) | (6 << 64), (1 << 128) - 1,
         (1 << 128) - 2, (0x2a00 << 112) | 1, 0x2a01 << 112]
    qh, ql = v6_split(q)
    assert lookup_v6(words, qh, ql).tolist() == [1, 2, 2, 3, 4, 3, 5, 1, 6, 1]


def test_v6_expansion_keeps_the_longest_match():
    """Routes just below a pivot (V6_EXPAND) become pivot-length blocks: a real pivot-length route
    keeps its block, a longer expanded route beats a shorter one, and the addresses beside the
    expanded routes keep the covering route."""
    b32 = 0x2001_0db8 << 96
    b48 = 0x2001_0db8_0010 << 80
    d = {(0x2001 << 112, 16): 1, (b32, 30): 2, (b32, 31): 3, (b32 | (1 << 96), 32): 4,
         (b48, 44): 5, (b48, 46): 6, (b48 | (1 << 80), 48): 7, ((b48 | (1 << 80)) | (3 << 72), 56): 8,
         (b48 | (2 << 80), 47): 9}
    hi, lo = v6_split([a for a, _ in d])
    n = np.array([x for _, x in d], np.int64)
    words = build_v6(hi, lo, n, np.array(list(d.values()), np.uint32))
    ref = Lpm(128, d)
    q = [b32, b32 | (1 << 96), b32 | (2 << 96), b32 | (3 << 96) | 5, b32 | (4 << 96), b48, b48 | (1 << 80),
         b48 | (1 << 80) | (3 << 72) | 1, b48 | (2 << 80), b48 | (3 << 80), b48 | (4 << 80), b48 | (15 << 80),
         0x2001_0db8_0020 << 80, 0x2001 << 112]
    qh, ql = v6_split(q)
    assert lookup_v6(words, qh, ql).tolist() == [ref.lookup(x) for x in q] == \
        [3, 4, 2, 2, 1, 6, 7, 8, 9, 9, 5, 5, 3, 1]


def test_v6_table_into_a_bank_too_small():
    r6 = synthetic_v6(3000, seed=2)
    hi, lo = v6_split([a for a, _ in r6])
    n, g = np.array([x for _, x in r6]), np.ones(len(r6), np.uint32)
    need = len(build_v6(hi, lo, n, g))
    out = np.zeros(need, np.uint32)
    assert len(build_v6(hi, lo, n, g, out=out)) == need
    with pytest.raises(RouteError, match="IPv6 table needs"):
        build_v6(hi, lo, n, g, out=np.zeros(need - 1, np.uint32))
    assert chunks_needed_v6([(a, x, 1) for a, x in r6]) == -(-(need - V6_HDR_WORDS - (1 << 16)) // CHUNK)


def test_v6_word_layouts_are_the_headers():
    from nf.nfs.router import RtV6Bank, RtV6Hash, RtV6Skip, RtV6Slot
    import ctypes
    assert [ctypes.sizeof(c) // 4 for c in (RtV6Bank, RtV6Hash, RtV6Slot, RtV6Skip)] == \
        [V6_HDR_WORDS, V6_HASH_WORDS, V6_SLOT_WORDS, V6_SKIP_WORDS]
    assert RtV6Bank.root.offset == 4 * (V6_HDR_WORDS - 1)


@pytest.mark.parametrize("n", [0, 1, 50, 5000])
def test_cuckoo_places_every_key_in_a_candidate(n):
    keys = np.unique(np.random.default_rng(n).integers(0, 1 << 48, n, dtype=np.uint64))
    c1, c2, size, slot = _cuckoo(keys, np.random.default_rng(1))
    assert len(np.unique(slot)) == len(keys) and (slot < size).all()
    assert size <= max(16, 1.2 * len(keys) / V6_LOAD)      # sized to the keys, no power of two
    cand = [((((keys * np.uint64(c)) >> np.uint64(32)) * np.uint64(size)) >> np.uint64(32)).astype(np.int64)
            for c in (c1, c2)]
    assert ((slot == cand[0]) | (slot == cand[1])).all()


def test_v6_fast_parser_equals_the_exact_one():
    from nf.routes import _parse_exact as _parse_slow
    lines = [f"{parse_v6_text(a, n)} via 2001:db8::2" for (a, n) in
             _random_v6(random.Random(9), 400)]
    fast = parse_route_lines(lines, targets)
    slow = _parse_slow(lines, targets, "<routes>")
    assert fast.v6_dict() == slow.v6_dict() and len(fast.v6_dict()) == len(lines)


def parse_v6_text(a: int, n: int) -> str:
    import ipaddress
    return f"{ipaddress.IPv6Address(a)}/{n}"


@pytest.mark.parametrize("lines,line,why", [
    (["2001:db8::/32 via 2001:db8::2", "2001:db8:1::1/48 via 2001:db8::2"], 2, "host bits set"),
    (["2001:db8::/32 via 2001:db8::2", "10.0.0.0/8 blackhole", "2001:db8:0::/32 blackhole"], 3,
     "duplicate route 2001:db8:0::/32 .first on line 1"),      # as written on the line
    (["2001:db8::/129 blackhole"], 1, "0..128"),
    (["2001:db8:::/32 blackhole"], 1, "bad address"),
])
def test_v6_route_file_errors_name_the_line(lines, line, why):
    with pytest.raises(RouteError, match=why) as e:
        parse_route_lines(lines, targets, "r.txt")
    assert e.value.line == line


def test_check_v4_vectorised():
    with pytest.raises(RouteError, match="host bits"):
        check_v4(np.array([0x0A000001], np.uint32), np.array([24], np.uint8))
    with pytest.raises(RouteError, match="duplicate"):
        check_v4(np.array([0x0A000000, 0x0A000000], np.uint32), np.array([8, 8], np.uint8))
    check_v4(np.array([0x0A000000, 0x0A000000], np.uint32), np.array([8, 16], np.uint8))


def test_merged_later_wins():
    a = RouteSet(np.array([1 << 24, 2 << 24], np.uint32), np.array([8, 8], np.uint8),
                 np.array([1, 2], np.uint32), [(5, 128, 1)])
    b = RouteSet(np.array([2 << 24], np.uint32), np.array([8], np.uint8), np.array([9], np.uint32),
                 [(5, 128, 7)])
    m = a.merged(b)
    assert m.v4_dict() == {(1 << 24, 8): 1, (2 << 24, 8): 9} and m.v6_dict() == {(5, 128): 7}


def test_synthetic_tables_have_the_mix():
    a, n = synthetic_v4(50000, seed=2)
    assert len(set(zip(a.tolist(), n.tolist()))) == 50000
    assert 0.5 < np.mean(n == 24) < 0.66 and np.mean(n > 24) > 0.01
    r6 = synthetic_v6(5000, seed=2)
    assert len(set(r6)) == 5000 and all(a >> 125 == 1 for a, _ in r6)
    assert 0.35 < sum(1 for _, l in r6 if l == 48) / 5000 < 0.55
