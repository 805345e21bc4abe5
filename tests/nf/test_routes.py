"""nf/routes.py: prefix parsing, the route file (errors carry line numbers), and the DIR-24-8 /
multibit-trie builders checked against the reference LPM."""
from __future__ import annotations

import random

import numpy as np
import pytest

from nf.models.router import Lpm
from nf.routes import (CHUNK, ENTRY_CHUNK, RouteError, RouteSet, build_v4, build_v6, check_v4,
                       chunks_needed_v6, lookup_v4, lookup_v6_one, parse_prefix, parse_route_lines,
                       synthetic_v4, synthetic_v6)


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


def test_v6_trie_matches_reference():
    rnd = random.Random(4)
    d = {}
    for _ in range(5000):
        ln = rnd.choice([0, 3, 16, 17, 24, 31, 32, 40, 47, 48, 48, 56, 64, 100, 127, 128])
        a = rnd.getrandbits(128) & (((1 << 128) - 1) ^ ((1 << (128 - ln)) - 1))
        d[(a, ln)] = rnd.randint(1, 4000)
    root, ch = build_v6([(a, n, g) for (a, n), g in d.items()], chunk_base=7)
    assert len(ch) // CHUNK == chunks_needed_v6([(a, n, g) for (a, n), g in d.items()])
    ref = Lpm(128, d)
    q = [rnd.getrandbits(128) for _ in range(5000)] + [a | rnd.getrandbits(4) for a, n in d if n <= 124]
    assert [lookup_v6_one(root, ch, x, 7) for x in q] == [ref.lookup(x) for x in q]


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
