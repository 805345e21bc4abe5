"""VM tier: the hash kfuncs (hash.c, hash_simd.c) against nf.algo, on both the AVX2 and the
scalar path (force_scalar), with the sysfs counters showing which path ran."""
from __future__ import annotations

import ctypes as C
import random
import re
import struct
from pathlib import Path

import pytest

from nf import algo, kmod
from nf.testing.kmod import (KT_CM, KT_CRC32C, KT_MULTI, KT_XXH32, KtCmTable, KT_CM_MAX,
                             kt_call, open_kmod_test)

pytestmark = pytest.mark.vm

ROOT = Path(__file__).resolve().parents[2]
SIMD_MIN_D = int(re.search(r"#define ENETSTL_SIMD_MIN_D\s+(\d+)",
                 (ROOT / "kmod/include/enetstl.h").read_text()).group(1))


@pytest.fixture(scope="module")
def prog():
    obj = open_kmod_test("kfuncs")
    yield obj
    obj.close()


@pytest.mark.parametrize("scalar", [False, True], ids=["simd", "scalar"])
def test_every_length_and_d_bit_identical(enetstl, prog, scalar):
    p = prog.program("kfuncs")
    rnd = random.Random(1234 + scalar)
    with enetstl.force_scalar(scalar):
        before = kmod.counters()
        for n in range(65):
            key, seed = rnd.randbytes(n), rnd.getrandbits(32)
            assert kt_call(p, KT_XXH32, key, seed=seed).out[0] == algo.xxh32(key, seed), n
            assert kt_call(p, KT_CRC32C, key, seed=seed).out[0] == algo.crc32c(key, seed), n
            for d in range(1, 17):
                r = kt_call(p, KT_MULTI, key, seed=seed, arg=d)
                assert r.ret == d
                assert r.out[:d] == algo.multi_hash(key, d, seed), (n, d)
                assert r.out[d:] == [0] * (16 - d), "wrote past out__sz"
        after = kmod.counters()
    calls = 65 * 16
    # below ENETSTL_SIMD_MIN_D rows (keys <= 64 bytes, as here) the scalar rows are cheaper
    # than the FPU bracket + 8 lanes, so those calls count as scalar on either setting
    small = 65 * (SIMD_MIN_D - 1)
    feats = kmod.features()
    if scalar or not feats["avx2"]:
        assert after["hash_scalar_calls"] - before["hash_scalar_calls"] == calls
        assert after["hash_simd_calls"] == before["hash_simd_calls"]
    else:
        assert after["hash_simd_calls"] - before["hash_simd_calls"] == calls - small
        assert after["hash_scalar_calls"] - before["hash_scalar_calls"] == small
    crc = "crc32c_sw_calls" if scalar or not feats["sse4_2"] else "crc32c_hw_calls"
    assert after[crc] - before[crc] == 65


def test_cpu_features_detected():
    f = kmod.features()
    assert f["avx2"] == 1 and f["sse4_2"] == 1    # QEMU -cpu max / any x86-64-v3 host


def test_multi_bad_sizes_rejected(prog):
    p = prog.program("kfuncs")
    # d is checked by the program (1..16); 0 and 17 never reach the kfunc
    assert kt_call(p, KT_MULTI, b"k", arg=0).retval == 1
    assert kt_call(p, KT_MULTI, b"k", arg=17).retval == 1


def _table(prog, d, w, seed, flags=0):
    m = prog.map("cm_table")
    t = KtCmTable(d=d, w=w, seed=seed, flags=flags)
    m.update(struct.pack("<I", 0), bytes(t))
    return m


def _read(m, d, w):
    t = KtCmTable.from_buffer_copy(m.lookup(struct.pack("<I", 0))[:C.sizeof(KtCmTable)])
    return [list(t.cnt[i * w:(i + 1) * w]) for i in range(d)]


@pytest.mark.parametrize("scalar", [False, True], ids=["simd", "scalar"])
@pytest.mark.parametrize("atomic", [False, True], ids=["plain", "atomic"])
@pytest.mark.parametrize("d,w", [(1, 64), (4, 100), (8, 128), (13, 64), (16, 64)])
def test_count_min_matches_reference(enetstl, prog, scalar, atomic, d, w):
    p = prog.program("kfuncs")
    m = _table(prog, d, w, seed=0xABCD)
    ref = [[0] * w for _ in range(d)]
    rnd = random.Random(d * w)
    keys = [rnd.randbytes(rnd.randrange(0, 65)) for _ in range(12)]
    with enetstl.force_scalar(scalar):
        for i in range(60):
            key, inc = keys[rnd.randrange(len(keys))], rnd.choice([1, 64, 1500])
            r = kt_call(p, KT_CM, key, seed=int(atomic), arg=inc)
            assert r.ret == algo.cm_add(ref, key, 0xABCD, inc)
    assert _read(m, d, w) == ref


@pytest.mark.parametrize("d,w,flags", [
    (0, 64, 0), (17, 64, 0), (4, 0, 0),
    (16, KT_CM_MAX // 16 + 1, 0),     # d * w counters overrun the table passed
    (4, 64, 1),                       # flags must be 0
])
def test_count_min_header_checked_against_table(prog, d, w, flags):
    m = _table(prog, d, w, seed=1, flags=flags)
    r = kt_call(prog.program("kfuncs"), KT_CM, b"key", arg=1)
    assert r.ret == -22
    t = KtCmTable.from_buffer_copy(m.lookup(struct.pack("<I", 0))[:C.sizeof(KtCmTable)])
    assert not any(t.cnt), "a rejected call must not touch a counter"


def test_count_min_largest_table_that_fits(prog):
    d, w = 16, KT_CM_MAX // 16
    m = _table(prog, d, w, seed=9)
    ref = [[0] * w for _ in range(d)]
    r = kt_call(prog.program("kfuncs"), KT_CM, b"edge", arg=7)
    assert r.ret == algo.cm_add(ref, b"edge", 9, 7) == 7
    assert _read(m, d, w) == ref


def test_atomic_count_min_from_two_cpus(enetstl, prog):
    """Both CPUs add 1 for the same key 4,000 times at once into one shared table with
    enetstl_cm_add_atomic: every row's counter ends at exactly 8,000."""
    from nf.testing.kmod import run_on_cpus

    p = prog.program("kfuncs")
    d, w, n = 8, 64, 4000
    m = _table(prog, d, w, seed=77)
    key = b"shared-flow-key!"
    res = run_on_cpus({c: (lambda: kt_call_repeat(p, key, n)) for c in (0, 1)})
    assert all(r == 2 for r in res.values())
    rows = _read(m, d, w)
    for i, h in enumerate(algo.multi_hash(key, d, 77)):
        assert rows[i][h % w] == 2 * n
    assert sum(map(sum, rows)) == d * 2 * n


def kt_call_repeat(p, key: bytes, n: int) -> int:
    from nf.testing.kmod import KtReq

    r = KtReq(op=KT_CM, len=len(key), seed=1, arg=1)      # seed & 1: the atomic kfunc
    C.memmove(r.key, key, len(key))
    return p.test_run(bytes(r), repeat=n).retval


@pytest.mark.parametrize("scalar", [False, True], ids=["simd", "scalar"])
def test_long_inputs(enetstl, prog, scalar):
    """Single hashes over up to 2 KiB and multi-hash keys up to 256 bytes (many stripes)."""
    from nf.testing.kmod import KT_LONG, KT_LONG_MAX

    p = prog.program("kfuncs")
    m = prog.map("kt_long")
    rnd = random.Random(77 + scalar)
    buf = rnd.randbytes(KT_LONG_MAX)
    m.update(struct.pack("<I", 0), buf)
    with enetstl.force_scalar(scalar):
        for n in (65, 100, 255, 256, 257, 1000, 1499, 2047, 2048):
            seed = rnd.getrandbits(32)
            r = kt_call(p, KT_LONG, arg=0, seed=seed, x=n)
            assert (r.ret, r.out[0]) == (0, algo.xxh32(buf[:n], seed)), n
            r = kt_call(p, KT_LONG, arg=1, seed=seed, x=n)
            assert (r.ret, r.out[0]) == (0, algo.crc32c(buf[:n], seed)), n
            r = kt_call(p, KT_LONG, arg=2, seed=seed, x=n)
            if n <= 256:
                assert (r.ret, r.out) == (16, algo.multi_hash(buf[:n], 16, seed)), n
            else:
                assert r.ret == -1               # the program keeps multi-hash keys <= 256


@pytest.mark.parametrize("scalar", [False, True], ids=["simd", "scalar"])
@pytest.mark.parametrize("w", [64, 100], ids=["pow2", "odd"])
def test_count_min_every_specialised_length_and_path(enetstl, prog, scalar, w):
    """The fused scalar rows (straight-line code for key lengths 4, 8, 13, 16, 32, 37, 40; loops
    otherwise; d below ENETSTL_CM_SIMD_MIN_D) and the AVX2 column indices (power-of-two w) all
    give the reference counters, on both sides of every threshold."""
    p = prog.program("kfuncs")
    rnd = random.Random(w + scalar)
    # d * w within the test table (KT_CM_MAX = 1024 counters)
    for d in (1, 2, 3, 4, 5, 8, 9, 10) + ((16,) if w == 64 else ()):
        m = _table(prog, d, w, seed=0x5EED)
        ref = [[0] * w for _ in range(d)]
        with enetstl.force_scalar(scalar):
            for n in (0, 1, 3, 4, 8, 12, 13, 16, 20, 32, 37, 40, 63, 64):
                key, inc = rnd.randbytes(n), rnd.choice([1, 7, 1500])
                r = kt_call(p, KT_CM, key, seed=rnd.getrandbits(1), arg=inc)
                assert r.ret == algo.cm_add(ref, key, 0x5EED, inc), (d, n)
        assert _read(m, d, w) == ref, d


@pytest.mark.parametrize("simd_min_d", [1, 17], ids=["avx2_every_d", "scalar_every_d"])
@pytest.mark.parametrize("atomic", [False, True], ids=["plain", "atomic"])
def test_count_min_crossover_parameter(enetstl, prog, simd_min_d, atomic):
    """cm_simd_min_d moves the AVX2/scalar crossover of enetstl_cm_add*: at 1 every d takes the
    AVX2 rows (8 lanes, the lanes past d dropped: no counter outside the table moves), at 17
    none does; both give the reference counters and the path counters say which one ran."""
    if not kmod.features()["avx2"]:
        pytest.skip("no AVX2 in this guest")
    p = prog.program("kfuncs")
    rnd = random.Random(simd_min_d * 2 + atomic)
    before_param = enetstl.param("cm_simd_min_d")
    enetstl.set_param("cm_simd_min_d", simd_min_d)
    try:
        calls = 0
        before = kmod.counters()
        for d in range(1, 17):
            w = 64
            m = _table(prog, d, w, seed=0xC0FFEE)
            ref = [[0] * w for _ in range(d)]
            for n in (4, 8, 13, 16, 20, 32, 37, 40, 64):
                key, inc = rnd.randbytes(n), rnd.choice([1, 9, 1500])
                r = kt_call(p, KT_CM, key, seed=int(atomic), arg=inc)
                assert r.ret == algo.cm_add(ref, key, 0xC0FFEE, inc), (d, n)
                calls += 1
            assert _read(m, d, w) == ref, d
            t = KtCmTable.from_buffer_copy(m.lookup(struct.pack("<I", 0))[:C.sizeof(KtCmTable)])
            assert not any(t.cnt[d * w:]), d
        after = kmod.counters()
    finally:
        enetstl.set_param("cm_simd_min_d", before_param)
    simd = after["hash_simd_calls"] - before["hash_simd_calls"]
    scalar = after["hash_scalar_calls"] - before["hash_scalar_calls"]
    assert (simd, scalar) == ((calls, 0) if simd_min_d == 1 else (0, calls))
