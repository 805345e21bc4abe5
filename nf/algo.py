"""Python references for the enetstl kfuncs and the pure-eBPF algorithms.

Every function here defines the bits that kmod/ (kfuncs) and xdp_progs/include/algo/ (pure
eBPF) must reproduce exactly; the tests compare all three.

- :func:`xxh32` — XXH32 with a seed.
- :func:`crc32c` — CRC-32C (Castagnoli, reflected 0x82F63B78) with the seed as initial value:
  ``~update(~seed, data)``; ``crc32c(b"123456789") == 0xE3069283``.
- multi-hash seeding: row ``i`` of ``d`` hashes with ``row_seed(seed, i) = seed + i * 0x9E3779B1``
  (mod 2**32); :func:`multi_hash`, :func:`cm_add` (count-min update returning the minimum of the
  updated counters).
- :func:`find_u16` / :func:`match_u16` / :func:`find_u32` / :func:`match_u32` /
  :func:`min_idx` and the bit functions with their defined results for 0.
- :func:`bt_find`: a bucket table's lookup (``enetstl_bt_find``; placement :func:`bt_place`, by
  murmur3's :func:`fmix64`).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache

M32 = 0xFFFFFFFF
P1, P2, P3, P4, P5 = 0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D, 0x27D4EB2F, 0x165667B1
SEED_STEP = 0x9E3779B1
MAX_D = 16


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & M32


def _u32(b: bytes, off: int) -> int:
    return int.from_bytes(b[off:off + 4], "little")


def draw_seed(bits: int = 64) -> int:
    """A table's secret from the kernel's random source (getrandom): what keys every table
    hashed on packet fields when its config gives no seed."""
    return int.from_bytes(os.urandom(8), "little") & ((1 << bits) - 1)


def _check_seed(seed: int) -> None:
    if not 0 <= seed <= M32:
        raise ValueError(f"seed must be a u32, got {seed}")


def xxh32(data: bytes, seed: int = 0) -> int:
    """XXH32 of ``data`` with ``seed``."""
    _check_seed(seed)
    n, i = len(data), 0
    if n >= 16:
        v = [(seed + P1 + P2) & M32, (seed + P2) & M32, seed, (seed - P1) & M32]
        while i + 16 <= n:
            for k in range(4):
                v[k] = (_rotl((v[k] + _u32(data, i + 4 * k) * P2) & M32, 13) * P1) & M32
            i += 16
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)) & M32
    else:
        h = (seed + P5) & M32
    h = (h + n) & M32
    while i + 4 <= n:
        h = (_rotl((h + _u32(data, i) * P3) & M32, 17) * P4) & M32
        i += 4
    while i < n:
        h = (_rotl((h + data[i] * P5) & M32, 11) * P1) & M32
        i += 1
    h ^= h >> 15
    h = (h * P2) & M32
    h ^= h >> 13
    h = (h * P3) & M32
    h ^= h >> 16
    return h


@lru_cache(maxsize=1)
def crc32c_tables(slices: int = 4) -> tuple[tuple[int, ...], ...]:
    """Slice-by-N tables of the reflected CRC-32C polynomial (what algo/crc32c.h embeds)."""
    t0 = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        t0.append(c)
    tabs = [t0]
    for _ in range(1, slices):
        prev = tabs[-1]
        tabs.append([(prev[i] >> 8) ^ t0[prev[i] & 0xFF] for i in range(256)])
    return tuple(tuple(t) for t in tabs)


def crc32c(data: bytes, seed: int = 0) -> int:
    """CRC-32C of ``data``; ``seed`` is the initial value (0 = standard CRC-32C)."""
    _check_seed(seed)
    t0 = crc32c_tables()[0]
    crc = ~seed & M32
    for b in data:
        crc = (crc >> 8) ^ t0[(crc ^ b) & 0xFF]
    return ~crc & M32


def row_seed(seed: int, i: int) -> int:
    """Seed of row ``i`` of a multi-hash: ``seed + i * 0x9E3779B1`` (mod 2**32)."""
    return (seed + i * SEED_STEP) & M32


def multi_hash(key: bytes, d: int, seed: int = 0) -> list[int]:
    """The ``d`` hashes of enetstl_hash_multi: ``xxh32(key, row_seed(seed, i))``."""
    if not 1 <= d <= MAX_D:
        raise ValueError(f"d must be in 1..{MAX_D}, got {d}")
    return [xxh32(key, row_seed(seed, i)) for i in range(d)]


def cm_index(h: int, w: int) -> int:
    """Column of hash ``h`` in a row of ``w`` counters (``h mod w``)."""
    return h % w


def cm_add(table: list[list[int]], key: bytes, seed: int, inc: int) -> int:
    """Count-min update in place (rows = len(table)); returns the min of the updated counters."""
    d, w = len(table), len(table[0])
    vals = []
    for i, h in enumerate(multi_hash(key, d, seed)):
        j = cm_index(h, w)
        table[i][j] = (table[i][j] + inc) & M32
        vals.append(table[i][j])
    return min(vals)


M64 = (1 << 64) - 1
BT_MIX = (0xff51afd7ed558ccd, 0xc4ceb9fe1a85ec53)   # ENETSTL_BT_MIX1, 2
BT_WAYS = 16


def fmix64(h: int) -> int:
    """murmur3's 64-bit finaliser (every output bit depends on every input bit)."""
    for m in BT_MIX:
        h ^= h >> 33
        h = (h * m) & M64
    return h ^ (h >> 33)


def bt_place(key: int, seed: int, buckets: int) -> tuple[int, int]:
    """(bucket, signature) of a u64 key in a bucket table of ``buckets`` (a power of two):
    h = fmix64(key ^ seed), bucket = h & (buckets - 1), signature = h >> 48, or 1 if that is 0."""
    h = fmix64((key ^ seed) & M64)
    return h & (buckets - 1), (h >> 48) or 1


def bt_find(sigs: Sequence[int], keys: Sequence[int], key: int, sig: int) -> int:
    """The way a bucket table's lookup answers in one bucket (its 16 signatures and keys): the
    lowest way whose signature is ``sig`` and whose key is ``key``, -1 if none."""
    return next((w for w in range(BT_WAYS) if sigs[w] == sig and keys[w] == key), -1)


def match_u16(arr: Sequence[int], v: int) -> int:
    """Bit i set iff ``arr[i] == v`` (u16 lanes, at most 16)."""
    if len(arr) > 16:
        raise ValueError("at most 16 u16 lanes")
    return sum(1 << i for i, x in enumerate(arr) if x & 0xFFFF == v & 0xFFFF)


def find_u16(arr: Sequence[int], v: int) -> int:
    """Index of the first ``arr[i] == v``, -1 if none."""
    m = match_u16(arr, v)
    return (m & -m).bit_length() - 1 if m else -1


def match_u32(arr: Sequence[int], v: int) -> int:
    if len(arr) > 8:
        raise ValueError("at most 8 u32 lanes")
    return sum(1 << i for i, x in enumerate(arr) if x & M32 == v & M32)


def find_u32(arr: Sequence[int], v: int) -> int:
    m = match_u32(arr, v)
    return (m & -m).bit_length() - 1 if m else -1


def min_idx(vals: Sequence[int]) -> int:
    """Index of the first minimum."""
    if not vals:
        raise ValueError("min_idx of an empty sequence")
    return min(range(len(vals)), key=lambda i: (vals[i], i))


def ffs(x: int) -> int:
    """1 + index of the lowest set bit; 0 for 0."""
    return (x & -x).bit_length()


def fls(x: int) -> int:
    """1 + index of the highest set bit; 0 for 0."""
    return x.bit_length()


def ctz(x: int, bits: int) -> int:
    """Trailing zeros; ``bits`` for 0."""
    return (x & -x).bit_length() - 1 if x else bits


def popcount(x: int) -> int:
    return bin(x).count("1")


def geometric_pmf(k: int, p: float) -> float:
    """P(skip == k) for the random pool: k failures before the first success."""
    return (1.0 - p) ** k * p
