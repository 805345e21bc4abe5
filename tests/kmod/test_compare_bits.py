"""VM tier: compare.c and bits.c kfuncs against nf.algo: no match, several matches, first and
last lane, partial lane counts, two buckets in one call (match2), key equality of any length,
min index ties, bits of 0, a cuckoo table's first candidate, a bucket table's lookup."""
from __future__ import annotations

import ctypes as C
import random
import struct

import pytest

from nf import algo
from nf.testing.kmod import (KT_BITS, KT_FIND16, KT_FIND32, KT_KEYEQ, KT_MIN, kt_call,
                             open_kmod_test)

pytestmark = pytest.mark.vm


@pytest.fixture(scope="module")
def p():
    obj = open_kmod_test("kfuncs")
    yield obj.program("kfuncs")
    obj.close()


def s32(x):
    return C.c_int32(x).value


CASES16 = [
    ([0] * 16, 1), ([7] + [0] * 15, 7), ([0] * 15 + [7], 7),
    ([3, 9, 3, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3], 3), ([0xFFFF] * 16, 0xFFFF),
    ([0x8000, 0x7FFF, 0x0001, 0xFFFE] * 4, 0x7FFF), ([0x0100, 0x0001] * 8, 0x0001),
]


@pytest.mark.parametrize("lanes,v", CASES16)
@pytest.mark.parametrize("n", [16, 13, 4, 1])
def test_find_u16(p, lanes, v, n):
    r = kt_call(p, KT_FIND16, struct.pack("<16H", *lanes), length=n, arg=v)
    assert (s32(r.out[0]), r.out[1]) == (algo.find_u16(lanes[:n], v), algo.match_u16(lanes[:n], v))
    assert r.ret == 0


def test_find_u16_random(p):
    rnd = random.Random(5)
    for _ in range(300):
        n = rnd.randint(1, 16)
        lanes = [rnd.choice([0, 1, 0x8000, 0xFFFF, rnd.getrandbits(16)]) for _ in range(16)]
        v = rnd.choice(lanes[:n] + [rnd.getrandbits(16)])
        r = kt_call(p, KT_FIND16, struct.pack("<16H", *lanes), length=n, arg=v)
        assert (s32(r.out[0]), r.out[1]) == (algo.find_u16(lanes[:n], v),
                                            algo.match_u16(lanes[:n], v))


@pytest.fixture(scope="module")
def p2():
    obj = open_kmod_test("match2")
    yield obj.program("match2")
    obj.close()


def match2(p2, a, b, sigs, la=None, lb=None):
    """enetstl_match2_u16 on a (key[0..32)) and b (key[32..64)), sizes in bytes; returns
    (fused result, the two-call result)."""
    r = kt_call(p2, 0, struct.pack("<16H", *a) + struct.pack("<16H", *b),
                length=32 if la is None else la, arg=32 if lb is None else lb, seed=sigs)
    assert (r.retval, r.ret) == (2, 0)
    return r.out[0], r.out[1]


@pytest.mark.parametrize("a,b,sa,sb", [
    ([0] * 16, [0] * 16, 0, 0),                     # two empty buckets: every slot free
    ([0] * 16, [0] * 16, 1, 1),                     # nothing matches
    ([7] + [0] * 15, [0] * 15 + [9], 7, 9),         # first lane of a, last of b
    ([9] * 16, [7] * 16, 7, 9),                     # each signature only in the other bucket
    ([5] * 16, [5] * 16, 5, 5),                     # all 32 lanes
    ([0x8000, 0x7FFF, 0x0001, 0xFFFE] * 4, [0xFFFE, 0x8000] * 8, 0x7FFF, 0x8000),
    ([3, 9, 3, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3], [0xFFFF] * 16, 3, 0xFFFF),
])
def test_match2_u16(p2, a, b, sa, sb):
    fused, two = match2(p2, a, b, sa | sb << 16)
    assert fused == algo.match_u16(a, sa) | algo.match_u16(b, sb) << 16
    assert fused == two


def test_match2_u16_values(p2):
    # exact masks written out, not only compared with the reference
    a = [1, 2, 1, 0] + [0] * 11 + [1]
    b = [0] * 4 + [2] * 2 + [0] * 10
    assert match2(p2, a, b, 1 | 2 << 16)[0] == 0x0030_8005
    assert match2(p2, a, b, 0)[0] == 0xFFCF_7FF8
    assert match2(p2, a, b, 2 | 1 << 16)[0] == 0x0000_0002


def test_match2_u16_random(p2):
    rnd = random.Random(11)
    for _ in range(300):
        la, lb = rnd.randint(1, 16), rnd.randint(1, 16)
        pick = [0, 1, 0x8000, 0xFFFF]
        a = [rnd.choice(pick + [rnd.getrandbits(16)]) for _ in range(16)]
        b = [rnd.choice(pick + [rnd.getrandbits(16)]) for _ in range(16)]
        sa = rnd.choice(a[:la] + [rnd.getrandbits(16)])
        sb = rnd.choice(b[:lb] + [rnd.getrandbits(16)])
        fused, two = match2(p2, a, b, sa | sb << 16, 2 * la, 2 * lb)
        assert fused == algo.match_u16(a[:la], sa) | algo.match_u16(b[:lb], sb) << 16
        assert fused == two


@pytest.mark.parametrize("la,lb", [(31, 32), (32, 3), (34, 32), (32, 34), (1, 1)])
def test_match2_u16_bad_size_is_zero(p2, la, lb):
    # odd byte counts and more than 16 lanes on either side: 0, even where lanes would match
    assert match2(p2, [0] * 16, [0] * 16, 0, la, lb)[0] == 0


@pytest.mark.parametrize("lanes,v", [
    ([0] * 8, 5), ([5] + [0] * 7, 5), ([0] * 7 + [5], 5), ([5, 1, 5, 1, 5, 1, 5, 1], 1),
    ([0xFFFFFFFF] * 8, 0xFFFFFFFF),
])
@pytest.mark.parametrize("n", [8, 5, 1])
def test_find_u32(p, lanes, v, n):
    r = kt_call(p, KT_FIND32, struct.pack("<8I", *lanes), length=n, arg=v)
    assert (s32(r.out[0]), r.out[1]) == (algo.find_u32(lanes[:n], v), algo.match_u32(lanes[:n], v))


@pytest.mark.parametrize("la,lb,same", [
    (0, 0, True), (1, 1, True), (7, 7, True), (8, 8, True), (13, 13, True), (32, 32, True),
    (16, 15, True), (5, 6, True), (16, 16, False), (1, 1, False), (31, 31, False),
])
def test_key_eq(p, la, lb, same):
    rnd = random.Random(la * 100 + lb)
    a = rnd.randbytes(32)
    b = bytearray(a)
    if not same:
        b[rnd.randrange(la)] ^= 0x40       # one differing byte, anywhere (also the last)
    r = kt_call(p, KT_KEYEQ, a + bytes(b), length=la, arg=lb)
    assert r.ret == int(la == lb and a[:la] == bytes(b[:lb]))


def test_key_eq_difference_in_last_byte(p):
    a = bytes(range(1, 33))
    for n in (8, 9, 16, 17, 32):
        b = bytearray(a)
        b[n - 1] ^= 1
        assert kt_call(p, KT_KEYEQ, a + bytes(b), length=n, arg=n).ret == 0
        assert kt_call(p, KT_KEYEQ, a + a, length=n, arg=n).ret == 1


@pytest.mark.parametrize("n", [1, 2, 7, 8, 15, 16])
def test_min_idx(p, n):
    rnd = random.Random(n)
    for vals in ([5] * n, list(range(n, 0, -1)), [rnd.getrandbits(32) for _ in range(n)],
                 [9] * (n - 1) + [1], [1] + [9] * (n - 1), ([4, 2, 7, 2] * 4)[:n],
                 [0xFFFFFFFF] * n):
        r = kt_call(p, KT_MIN, struct.pack(f"<{n}I", *vals) + bytes(64 - 4 * n), length=n)
        assert r.ret == algo.min_idx(vals), vals


BITS = [0, 1, 2, 3, 0x80000000, 0xFFFFFFFF, 0x00010000, 1 << 32, 1 << 63,
        0xFFFFFFFFFFFFFFFF, 0x8000000000000001, 0x0000000100000000, 0x1234567890ABCDEF]


@pytest.mark.parametrize("x", BITS + [random.Random(9).getrandbits(64) for _ in range(20)])
def test_bits(p, x):
    lo = x & 0xFFFFFFFF
    r = kt_call(p, KT_BITS, x=x)
    assert r.out[:8] == [algo.ffs(lo), algo.fls(lo), algo.popcount(lo), algo.ctz(lo, 32),
                         algo.ffs(x), algo.fls(x), algo.popcount(x), algo.ctz(x, 64)]


def test_bits_of_zero(p):
    assert kt_call(p, KT_BITS, x=0).out[:8] == [0, 0, 0, 32, 0, 0, 0, 64]


# ---- enetstl_cuckoo_cand: hash + first signature candidate of a cuckoo table ----------------

CK_MORE, CK_ERR = 1 << 30, 1 << 31


@pytest.fixture(scope="module")
def ck():
    obj = open_kmod_test("cuckoo_cand")
    yield obj
    obj.close()


def _ck_call(ck, key: bytes, k: tuple[int, ...], kind: int = 1, table: int = 0):
    """enetstl_cuckoo_cand with the keyed hash (kind, k) in the program's ck_hash map."""
    from nf.models.flow_table import CkHash
    ck.map("ck_hash").update(bytes(4), bytes(CkHash(kind=kind, k=(C.c_uint64 * 5)(*k))))
    r = kt_call(ck.program("cuckoo_cand"), table, key)
    assert (r.retval, r.ret) == (2, 0)
    return r.out[0], r.out[1]


def _ck_fill(ck, rows: dict[int, list[tuple[int, int, int]]]):
    """rows: bucket -> [(slot, sig, idx)]; every other slot empty."""
    m = ck.map("ck_table")
    for b in range(8):
        sig, idx = [0] * 16, [0] * 16
        for s, g, i in rows.get(b, []):
            sig[s], idx[s] = g, i
        m.update(struct.pack("<I", b), struct.pack("<16H16I", *sig, *idx))


@pytest.mark.parametrize("kind", [0, 1])
def test_cuckoo_cand_hash_and_placement(ck, kind):
    """The module's keyed hash equals the Python one (nf.models.flow_table) for random keys and
    random multipliers, and the first candidate follows the placement."""
    from nf.models.flow_table import (Hash, alt_bucket, crc32c_keyed, hash_key, key_hash, mul64,
                                      sig_of)
    rnd = random.Random(kind)
    _ck_fill(ck, {})
    for _ in range(20):
        key, k = rnd.randbytes(40), hash_key(rnd.getrandbits(64))
        h = key_hash(key, k, Hash(kind))
        assert _ck_call(ck, key, k, kind) == (0, h)             # empty table: absent
        sig, b1 = sig_of(h), h & 7
        b2 = alt_bucket(b1, sig, 7)
        # only in the alternate bucket, once: its index, and a mismatch there is a miss
        _ck_fill(ck, {b2: [(9, sig, 1234)], b1: [(0, sig ^ 1 or 2, 55)]})
        assert _ck_call(ck, key, k, kind) == (1234, h)
        # twice in the alternate: the first slot, MORE
        _ck_fill(ck, {b2: [(9, sig, 1234), (3, sig, 99)]})
        assert _ck_call(ck, key, k, kind) == (CK_MORE | 99, h)
        # in the primary (and the alternate): the primary's first slot, MORE (alternate unread)
        _ck_fill(ck, {b1: [(15, sig, 7), (4, sig, 8)], b2: [(0, sig, 1)]})
        assert _ck_call(ck, key, k, kind) == (CK_MORE | 8, h)
    # keys of 0..5 u64 words hash as in Python; any other length is refused
    _ck_fill(ck, {})
    k = hash_key(5)
    fn = crc32c_keyed if kind == 0 else mul64
    for n in (1, 8, 13, 16, 24, 32, 36, 40, 48, 64):
        key = rnd.randbytes(n)
        want = (0, fn(key, k)) if n % 8 == 0 and n <= 40 else (CK_ERR, 0)
        assert _ck_call(ck, key, k, kind) == want, n


def test_cuckoo_cand_refuses_bad_tables_and_hashes(ck):
    from nf.models.flow_table import hash_key
    key, k = bytes(range(40)), hash_key(1)
    assert _ck_call(ck, key, k, 1, table=1) == (CK_ERR, 0)    # 6 buckets: not a power of two
    assert _ck_call(ck, key, k, 1, table=2) == (CK_ERR, 0)    # 8-byte values: not a bucket
    assert _ck_call(ck, key, k, 1, table=3) == (CK_ERR, 0)    # hash argument too short
    assert _ck_call(ck, key, k, 2) == (CK_ERR, 0)             # unknown hash
    assert _ck_call(ck, key[:36], k, 0) == (CK_ERR, 0)        # u64 words only


# ---- enetstl_bt_find: a bucket table's whole lookup (hash, seqcount, ways, key, copy) --------

ENOENT, EBUSY, EINVAL = -2, -16, -22


@pytest.fixture(scope="module")
def bt():
    obj = open_kmod_test("bt_find")
    yield obj
    obj.close()


def _bt_bucket(seq: int = 0, ways=()) -> bytes:
    """A struct enetstl_bt_bucket; ways: (way, sig, key, val0, val1, priv)."""
    sig, ent = [0] * 16, [(0, 0, 0, 0)] * 16
    for w, s, k, v0, v1, pv in ways:
        sig[w], ent[w] = s, (k, v0, v1, pv)
    return struct.pack("<II16H", seq, 0, *sig) + b"".join(struct.pack("<4Q", *e) for e in ent)


def _bt_fill(bt, buckets: dict[int, bytes]):
    m = bt.map("bt_table")
    for b in range(8):
        m.update(struct.pack("<I", b), buckets.get(b, _bt_bucket()))


def _bt_call(bt, key: int, seed: int, table: int = 0):
    r = kt_call(bt.program("bt_find"), table, x=key, seed=seed & 0xFFFFFFFF, arg=seed >> 32)
    assert r.retval == 2
    return r.ret, struct.unpack("<2Q", struct.pack("<4I", *r.out[:4]))


def test_bt_find_answers_as_the_model(bt):
    """Random buckets - signatures from a small set so they collide, keys from a small set so a
    key also sits under other signatures and in free ways, the queried key planted at a random
    way or not at all - under random 64-bit seeds: the way, the value copied (never the entry's
    last word), -ENOENT, exactly as nf.algo.bt_find over the key's bucket."""
    rnd = random.Random(18)
    for _ in range(300):
        seed, keys = rnd.getrandbits(64), [rnd.getrandbits(64) for _ in range(4)]
        q = rnd.choice(keys)
        b, s = algo.bt_place(q, seed, 8)
        sigs = [rnd.choice((0, s, s ^ 1, 0x8000)) for _ in range(16)]
        ks = [rnd.choice(keys) for _ in range(16)]
        if rnd.random() < 0.7:
            w = rnd.randrange(16)
            sigs[w], ks[w] = s, q
        vals = [(rnd.getrandbits(64), rnd.getrandbits(64), rnd.getrandbits(64)) for _ in range(16)]
        _bt_fill(bt, {b: _bt_bucket(2 * rnd.randrange(1 << 20),
                                    [(w, sigs[w], ks[w], *vals[w]) for w in range(16)])})
        want = algo.bt_find(sigs, ks, q, s)
        ret, val = _bt_call(bt, q, seed)
        assert ret == (want if want >= 0 else ENOENT)
        if want >= 0:
            assert val == vals[want][:2]


def test_bt_find_placement_and_signature_zero(bt):
    """The module's hash and placement are nf.algo.bt_place's: a key found only in its own bucket
    under its own signature; a hash whose top 16 bits are 0 has signature 1 (0 marks a free way,
    so a key filed under 0 is never found)."""
    rnd = random.Random(7)
    for _ in range(40):
        seed, q = rnd.getrandbits(64), rnd.getrandbits(64)
        b, s = algo.bt_place(q, seed, 8)
        other = (b + 1 + rnd.randrange(7)) % 8
        _bt_fill(bt, {other: _bt_bucket(0, [(0, s, q, 1, 2, 3)])})
        assert _bt_call(bt, q, seed)[0] == ENOENT                 # in another bucket
        _bt_fill(bt, {b: _bt_bucket(0, [(5, s, q, 11, 12, 13)])})
        assert _bt_call(bt, q, seed) == (5, (11, 12))
    seed = 99
    q = next(k for k in range(1, 1 << 22) if algo.fmix64(k ^ seed) >> 48 == 0)
    b, s = algo.bt_place(q, seed, 8)
    assert s == 1
    _bt_fill(bt, {b: _bt_bucket(0, [(0, 0, q, 1, 1, 1), (3, 1, q, 7, 8, 9)])})
    assert _bt_call(bt, q, seed) == (3, (7, 8))
    _bt_fill(bt, {b: _bt_bucket(0, [(0, 0, q, 1, 1, 1)])})
    assert _bt_call(bt, q, seed)[0] == ENOENT


def test_bt_find_seqcount_and_bad_tables(bt):
    """A bucket a writer holds (odd seqcount) answers -EBUSY after the tries, whatever it holds;
    an even count of any size reads. Tables that are not a power-of-two array of buckets, whose
    values are not a bucket, or whose values hold a special field are refused."""
    q, seed = 0x000A_0200_0000_0042, 5
    b, s = algo.bt_place(q, seed, 8)
    for seq, want in ((1, EBUSY), (0xFFFFFFFF, EBUSY), (2, 0), (0xFFFFFFFE, 0)):
        _bt_fill(bt, {b: _bt_bucket(seq, [(0, s, q, 4, 5, 6)])})
        assert _bt_call(bt, q, seed)[0] == want, hex(seq)
    _bt_fill(bt, {b: _bt_bucket(0, [(0, s, q, 4, 5, 6)])})
    for table in (1, 2, 3):     # 6 buckets; 8-byte values; a bpf_spin_lock in the values
        assert _bt_call(bt, q, seed, table)[0] == EINVAL
