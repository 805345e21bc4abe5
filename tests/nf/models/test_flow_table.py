"""nf/models/flow_table.py: the reference's hashing, placement and insertion rules, on their own
(the datapath is compared with it in tests/xdp_progs/flow_table)."""
from __future__ import annotations

import ctypes
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nf.algo import crc32c, draw_seed
from nf.models.flow_table import (
    FT_HIST_BINS, FT_KEY_SIZE, CuckooModel, Flow, FtKey, Hash, Rc, alt_bucket,
    flow_key, hash_key, key_hash, n_buckets_for, placement, sig_of,
)


def test_key_bytes_v4_v6():
    k = flow_key("10.0.0.1", "10.0.0.2", 1234, 80, "udp")
    assert len(k) == FT_KEY_SIZE == ctypes.sizeof(FtKey)
    assert k[:4] == bytes([10, 0, 0, 1]) and k[4:16] == bytes(12)
    assert k[16:20] == bytes([10, 0, 0, 2]) and k[20:32] == bytes(12)
    assert k[32:] == (1234).to_bytes(2, "little") + (80).to_bytes(2, "little") + bytes([17, 4, 0, 0])
    k6 = flow_key("2001:db8::1", "2001:db8::2", 0, 0, "icmpv6")
    assert k6[:16] == bytes.fromhex("20010db8000000000000000000000001")
    assert k6[36:38] == bytes([58, 6])
    assert Flow.from_key(k) == Flow("10.0.0.1", "10.0.0.2", 1234, 80, 17)
    assert Flow.from_key(k6) == Flow("2001:db8::1", "2001:db8::2", 0, 0, 58)


@pytest.mark.parametrize("args, msg", [
    (("10.0.0.1", "2001:db8::1"), "different IP versions"),
    (("10.0.0.1", "10.0.0.2", 1, 2, "icmp"), "only TCP and UDP"),
    (("10.0.0.1", "10.0.0.2", 70000, 2, "udp"), "sport 70000"),
    (("10.0.0.1", "10.0.0.2", 1, 2, "sctpx"), "unknown protocol"),
    (("10.0.0.300", "10.0.0.2"), "does not appear to be"),
])
def test_bad_keys_rejected(args, msg):
    with pytest.raises(ValueError, match=msg):
        flow_key(*args)


def test_keyed_hashes_and_placement():
    """Both hashes take the key's five u64 words times the table's multipliers: MUL64 sums and
    folds them, CRC32C is CRC-32C of the products (enetstl.h); placement follows the hash."""
    k = flow_key("10.0.0.1", "10.0.0.2", 1234, 80, "udp")
    hk = hash_key(7)
    p = [int.from_bytes(k[8 * i:8 * i + 8], "little") * hk[i] % 2**64 for i in range(5)]
    assert key_hash(k, hk, Hash.CRC32C) == crc32c(b"".join(x.to_bytes(8, "little") for x in p))
    a = sum(p) % 2**64
    a ^= a >> 32
    a = a * 0x9E3779B97F4A7C15 % 2**64
    assert key_hash(k, hk, Hash.MUL64) == (a ^ a >> 32) & 0xFFFFFFFF
    m = CuckooModel(256, seed=7, hash=Hash.CRC32C)
    b1, b2, sig = m.place(k)
    h = key_hash(k, hk, Hash.CRC32C)
    assert (b1, sig) == (h & 255, h >> 16 or 1)
    assert b2 == alt_bucket(b1, sig, 255)
    assert placement(k, hk, 255, Hash.CRC32C) == (b1, b2, sig)   # the one definition both use
    assert CuckooModel(256, seed=7).place(k) == placement(k, hk, 255, Hash.MUL64) != (b1, b2, sig)
    assert CuckooModel(256, key=hk).place(k) == CuckooModel(256, seed=7).place(k)
    assert sig_of(0x0000FFFF) == 1  # signature 0 is reserved for empty slots


def test_hash_key_from_seed():
    """Five odd multipliers per seed, a fixed function of it (a pinned seed reproduces a
    table); seeds come from the kernel's random source."""
    ks = {s: hash_key(s) for s in (0, 1, 2, 2**64 - 1)}
    assert all(len(k) == 5 and all(x & 1 and 0 < x < 2**64 for x in k) for k in ks.values())
    assert len({x for k in ks.values() for x in k}) == 20
    assert hash_key(1) == ks[1]
    assert hash_key(0)[0] == 0xE220A8397B1DCDAF | 1          # SplitMix64's first output of 0
    assert len({draw_seed() for _ in range(8)}) == 8
    with pytest.raises(ValueError, match="outside"):
        hash_key(2**64)


@pytest.mark.parametrize("kind", [Hash.MUL64, Hash.CRC32C])
def test_first_failure_near_full_for_every_key(kind):
    """The keyed hash keeps cuckoo occupancy: random flows fill 4,096 slots (max_search 256)
    to >= 99.5 % before the first failed insert, under several keys."""
    for seed in (1, 2**63 + 5, 0xdecafbad):
        rnd = random.Random(seed)
        m = CuckooModel(256, seed=seed, max_search=256, hash=kind)
        while True:
            k = flow_key(f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}",
                         "192.168.1.1", rnd.randrange(65536), 443, "tcp")
            rc, _ = m.insert(k)
            if rc not in (Rc.OK, Rc.EXISTS):
                break
        assert m.load_factor >= 0.995, (seed, m.load_factor)


@given(st.integers(1, 0xFFFF), st.integers(1, 20))
def test_alternate_bucket_is_an_involution_and_never_itself(sig, bits):
    mask = (1 << bits) - 1
    for b in (0, mask, mask // 3):
        a = alt_bucket(b, sig, mask)
        assert a != b and 0 <= a <= mask
        assert alt_bucket(a, sig, mask) == b


def test_n_buckets_for():
    assert [n_buckets_for(s) for s in (1, 32, 33, 1000, 65536)] == [2, 2, 4, 64, 4096]
    with pytest.raises(ValueError):
        n_buckets_for(0)
    with pytest.raises(ValueError):
        CuckooModel(3)


@settings(max_examples=80, deadline=None, database=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 99)), max_size=300), st.integers(0, 2**32 - 1))
def test_model_agrees_with_dict(ops, seed):
    rnd = random.Random(seed)
    keys = [flow_key(f"10.0.{rnd.randrange(256)}.{rnd.randrange(1, 255)}", "10.9.9.9",
                     rnd.randrange(65536), 80, "tcp") for _ in range(100)]
    m, ref = CuckooModel(4, seed=seed, max_search=16), set()   # 64 slots for 100 keys
    for ins, i in ops:
        k = keys[i]
        if ins:
            rc, w = m.insert(k)
            if rc == Rc.OK:
                assert k not in ref
                ref.add(k)
                assert m.lookup(k).bucket == w.bucket
            elif rc == Rc.EXISTS:
                assert k in ref
            else:
                assert len(ref) > 0.8 * 64  # fails only when nearly full
        else:
            assert (m.delete(k) == Rc.OK) == (k in ref)
            ref.discard(k)
        assert len(m) == len(ref)
    assert set(m.items()) == ref
    for k in keys:
        assert (k in m) == (k in ref)
    # every entry in one of its two buckets, under its signature
    for k, w in m.items().items():
        b1, b2, sig = m.place(k)
        assert w.bucket in (b1, b2) and m.sig[w.bucket][w.slot] == sig


def test_model_fills_past_95_percent_and_reuses_indices_fifo():
    rnd = random.Random(1)
    m = CuckooModel(256, max_search=256)
    n = 0
    while True:
        k = flow_key(f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.1", "10.0.0.2",
                     rnd.randrange(65536), 53, "udp")
        rc, _ = m.insert(k)
        if rc not in (Rc.OK, Rc.EXISTS):
            break
        n += rc == Rc.OK
    assert n / m.slots >= 0.95
    assert sum(m.hist) == n and m.hist[0] < n and len(m.hist) == FT_HIST_BINS
    # freed indices come back in FIFO order once the fresh ones are gone
    ks = list(m.items())[:3]
    freed = [m.lookup(k).idx for k in ks]
    for k in ks:
        m.delete(k)
    expect = list(range(m.fresh + 1, m.capacity + 1)) + freed   # fresh ones first
    got = []
    for k in ks:
        assert m.insert(k)[0] == Rc.OK
        got.append(m.lookup(k).idx)
    assert got == expect[:3]
