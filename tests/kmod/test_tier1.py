"""Tier 1 (host kernel, no module): the pure-eBPF algorithms of xdp_progs/include/algo/ equal
nf.algo bit for bit through BPF_PROG_TEST_RUN, and programs calling the __weak kfuncs load
without the module and take their bpf_ksym_exists() fallback."""
from __future__ import annotations

import ctypes as C
import random
import struct

import pytest

from nf import algo, kmod
from nf.testing.kmod import (KT_ABSENT, KT_BITS, KT_CM, KT_CRC32C, KT_FIND16, KT_FIND32,
                             KT_KEYEQ, KT_MIN, KT_MULTI, KT_XXH32, KO_LB_NEW, XDP_DROP, XDP_PASS,
                             kt_call, ko_call, open_kmod_test)


@pytest.fixture(scope="module")
def pure():
    obj = open_kmod_test("algo_pure")
    yield obj.program("algo_pure")
    obj.close()


@pytest.mark.parametrize("n", range(65))
def test_xxh32_and_crc32c_every_length(pure, n):
    rnd = random.Random(n)
    for _ in range(3):
        key, seed = rnd.randbytes(n), rnd.getrandbits(32)
        assert kt_call(pure, KT_XXH32, key, seed=seed).out[0] == algo.xxh32(key, seed)
        assert kt_call(pure, KT_CRC32C, key, seed=seed).out[0] == algo.crc32c(key, seed)


def test_seed_zero_check_values(pure):
    assert kt_call(pure, KT_CRC32C, b"123456789").out[0] == 0xE3069283
    assert kt_call(pure, KT_XXH32, b"abc").out[0] == 0x32D153FF


@pytest.mark.parametrize("d", range(1, 17))
@pytest.mark.parametrize("how", ["algo_xxh32_multi", "row_by_row"])
def test_multi_hash_rows(pure, d, how):
    key = random.Random(d).randbytes(16)
    r = kt_call(pure, KT_MULTI, key, seed=0xC0FFEE, arg=d,
                length=1 if how == "row_by_row" else 16)
    assert r.out[:d] == algo.multi_hash(key, d, 0xC0FFEE)
    assert r.out[d:] == [0] * (16 - d)


@pytest.mark.parametrize("op,n,d", [(KT_MULTI + 100, 13, 8), (KT_MULTI + 101, 64, 4)])
def test_multi_hash_other_key_sizes(pure, op, n, d):
    rnd = random.Random(n)
    for _ in range(5):
        key, seed = rnd.randbytes(n), rnd.getrandbits(32)
        assert kt_call(pure, op, key, seed=seed).out[:d] == algo.multi_hash(key, d, seed)


def _u16s(vals):
    return struct.pack("<16H", *vals)


@pytest.mark.parametrize("lanes,v", [
    ([0] * 16, 1),                                   # no match
    ([7] + [0] * 15, 7),                             # first lane
    ([0] * 15 + [7], 7),                             # last lane
    ([3, 9, 3, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3], 3),   # several
    ([0xFFFF] * 16, 0xFFFF),                         # all, top bit set
    ([0x8000, 0x7FFF, 0x0001, 0xFFFE] * 4, 0x7FFF),  # near-miss bit patterns (borrow cases)
    ([0x0100, 0x0001] * 8, 0x0001),
])
def test_find16(pure, lanes, v):
    r = kt_call(pure, KT_FIND16, _u16s(lanes), arg=v)
    assert r.out[1] == algo.match_u16(lanes, v)
    assert C.c_int32(r.out[0]).value == algo.find_u16(lanes, v)


def test_find16_random(pure):
    rnd = random.Random(3)
    for _ in range(200):
        lanes = [rnd.choice([0, 1, 0x8000, 0xFFFF, rnd.getrandbits(16)]) for _ in range(16)]
        v = rnd.choice(lanes + [rnd.getrandbits(16)])
        r = kt_call(pure, KT_FIND16, _u16s(lanes), arg=v)
        assert (C.c_int32(r.out[0]).value, r.out[1]) == (algo.find_u16(lanes, v),
                                                        algo.match_u16(lanes, v))


@pytest.mark.parametrize("lanes,v", [
    ([0] * 8, 5), ([5] + [0] * 7, 5), ([0] * 7 + [5], 5), ([5, 1, 5, 1, 5, 1, 5, 1], 1),
])
def test_find32(pure, lanes, v):
    r = kt_call(pure, KT_FIND32, struct.pack("<8I", *lanes), arg=v)
    assert (C.c_int32(r.out[0]).value, r.out[1]) == (algo.find_u32(lanes, v),
                                                    algo.match_u32(lanes, v))


@pytest.mark.parametrize("n", [8, 16])
def test_min_idx(pure, n):
    rnd = random.Random(n)
    for vals in ([5] * n, list(range(n, 0, -1)), [rnd.getrandbits(32) for _ in range(n)],
                 [9] * (n - 1) + [1], [1] + [9] * (n - 1), [4, 2, 7, 2] * (n // 4)):
        r = kt_call(pure, KT_MIN, struct.pack(f"<{n}I", *vals), length=n)
        assert r.out[0] == algo.min_idx(vals)


# ---- the __weak kfuncs without the module ----

@pytest.fixture(scope="module")
def no_module():
    if kmod.is_loaded():
        pytest.skip("the enetstl module is loaded here; this checks the fallback without it")


@pytest.mark.parametrize("op", [KT_XXH32, KT_CRC32C, KT_MULTI, KT_FIND16, KT_FIND32, KT_MIN,
                                KT_BITS, KT_KEYEQ, KT_CM])
def test_kfunc_program_loads_and_falls_back(no_module, op):
    obj = open_kmod_test("kfuncs")
    try:
        r = kt_call(obj.program("kfuncs"), op, b"abcdefgh", arg=1, length=1)
        assert (r.retval, r.ret) == (XDP_PASS, KT_ABSENT)
    finally:
        obj.close()


def test_bt_find_program_loads_and_falls_back(no_module):
    obj = open_kmod_test("bt_find")
    try:
        r = kt_call(obj.program("bt_find"), 0, x=42)
        assert (r.retval, r.ret) == (XDP_PASS, KT_ABSENT)
    finally:
        obj.close()


def test_object_program_loads_and_falls_back(no_module):
    obj = open_kmod_test("objects")
    try:
        r = ko_call(obj.program("objects"), KO_LB_NEW, a=1, b=1, x=8)
        assert (r.retval, r.ret) == (XDP_PASS, KT_ABSENT)
    finally:
        obj.close()


@pytest.mark.parametrize("name", ["seed_countmin", "seed_cuckoo"])
def test_seed_programs_report_missing_module(no_module, name):
    obj = open_kmod_test(name)
    try:
        res = obj.program(name).test_run(kmod.canned_tcp4())
        rec = kmod.SeedResult.from_buffer_copy(
            obj.map("seed_res").lookup(struct.pack("<I", 0))[:C.sizeof(kmod.SeedResult)])
        assert res.retval == XDP_DROP
        assert rec.stage == 2      # SEED_ST_NO_MODULE
    finally:
        obj.close()


def test_seedcheck_without_module_fails_clearly(no_module, capsys):
    assert kmod.seedcheck() is False
    assert capsys.readouterr().out.startswith("test:FAIL:enetstl module not loaded")
