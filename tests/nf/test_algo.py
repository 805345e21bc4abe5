"""nf.algo: the Python references every kfunc and pure-eBPF algorithm is compared with.
Published test vectors first, then the properties the other tests rely on."""
from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from nf import algo

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("data,seed,want", [
    (b"", 0, 0x02CC5D05),
    (b"", 1, 0x0B2CB792),
    (b"abc", 0, 0x32D153FF),
    (b"Nobody inspects the spammish repetition", 0, 0xE2293B2F),
])
def test_xxh32_vectors(data, seed, want):
    assert algo.xxh32(data, seed) == want


@pytest.mark.parametrize("data,want", [
    (b"123456789", 0xE3069283),          # the CRC-32C check value
    (b"", 0),
    (bytes(32), 0x8A9136AA),             # RFC 3720 B.4: 32 bytes of zeros
    (b"\xff" * 32, 0x62A8AB43),          # RFC 3720 B.4: 32 bytes of ones
    (bytes(range(32)), 0x46DD794E),      # RFC 3720 B.4: incrementing
])
def test_crc32c_vectors(data, want):
    assert algo.crc32c(data) == want


def test_crc32c_seed_chains():
    """The seed is the running CRC: crc(a + b) == crc(b, seed=crc(a))."""
    rnd = random.Random(7)
    for _ in range(50):
        a, b = rnd.randbytes(rnd.randrange(40)), rnd.randbytes(rnd.randrange(40))
        assert algo.crc32c(a + b) == algo.crc32c(b, algo.crc32c(a))


def test_crc32c_tables_match_the_bpf_header():
    """xdp_progs/include/algo/crc32c.h embeds nf.algo.crc32c_tables(): same numbers."""
    text = (ROOT / "xdp_progs/include/algo/crc32c.h").read_text()
    body = text[text.index("algo_crc32c_tab[4][256] = {"):text.index("};")]
    nums = [int(x, 16) for x in re.findall(r"0x[0-9a-f]{8}", body)]
    assert nums == [v for t in algo.crc32c_tables() for v in t]


def test_multi_hash_row_seeds():
    key = b"flow-key-16bytes"
    hs = algo.multi_hash(key, 16, 0xDEADBEEF)
    assert hs == [algo.xxh32(key, (0xDEADBEEF + i * 0x9E3779B1) & 0xFFFFFFFF) for i in range(16)]
    assert len(set(hs)) == 16
    assert algo.multi_hash(key, 3, 5) == hs[:0] + algo.multi_hash(key, 16, 5)[:3]


@pytest.mark.parametrize("d", [0, 17])
def test_multi_hash_rejects_bad_d(d):
    with pytest.raises(ValueError, match="d must be in 1..16"):
        algo.multi_hash(b"k", d)


def test_cm_add_updates_rows_and_returns_min():
    t = [[0] * 8 for _ in range(4)]
    assert algo.cm_add(t, b"a", 1, 3) == 3
    assert algo.cm_add(t, b"a", 1, 2) == 5
    assert sum(map(sum, t)) == 4 * 5
    for i, h in enumerate(algo.multi_hash(b"a", 4, 1)):
        assert t[i][h % 8] == 5


def test_find_and_match():
    lanes = [5, 0, 7, 5, 9, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7]
    assert algo.match_u16(lanes, 5) == 0b101001
    assert algo.find_u16(lanes, 5) == 0
    assert algo.find_u16(lanes, 7) == 2
    assert algo.find_u16(lanes, 9) == 4
    assert algo.find_u16(lanes, 1234) == -1
    assert algo.match_u16(lanes, 0x10005) == 0b101001    # only the low 16 bits count
    assert algo.find_u32([1, 2, 3, 2, 0, 0, 0, 9], 9) == 7
    assert algo.match_u32([1, 2, 3, 2], 2) == 0b1010
    assert algo.min_idx([4, 1, 3, 1]) == 1
    with pytest.raises(ValueError):
        algo.min_idx([])
    with pytest.raises(ValueError):
        algo.match_u16([0] * 17, 0)


def test_bits_defined_for_zero():
    assert (algo.ffs(0), algo.fls(0), algo.ctz(0, 32), algo.ctz(0, 64), algo.popcount(0)) == \
        (0, 0, 32, 64, 0)
    assert (algo.ffs(0b1000), algo.fls(0b1010), algo.ctz(0b1000, 32)) == (4, 4, 3)
    assert (algo.ffs(1 << 63), algo.fls(1 << 63), algo.ctz(1 << 63, 64)) == (64, 64, 63)
    assert algo.popcount(0xFFFFFFFF) == 32


def test_geometric_pmf_sums_to_one():
    assert abs(sum(algo.geometric_pmf(k, 0.3) for k in range(200)) - 1) < 1e-12
