"""VM tier: list buckets (listbucket.c): FIFO order across wrap-around, capacity and argument
errors, several independent instances, handles, two CPUs pushing into one set at once, and
release freeing everything (live counter back to 0)."""
from __future__ import annotations

import ctypes as C
import os
import struct

import pytest

from nf import kmod
from nf.testing.kmod import (KO_LB_FREE, KO_LB_LEN, KO_LB_NEW, KO_LB_PEEK, KO_LB_POP,
                             KO_LB_PUSH, KO_LB_PUSH_SEQ, ko_call, open_kmod_test, run_on_cpus,
                             wait_live_zero)

pytestmark = pytest.mark.vm
ENOENT, E2BIG, ENOMEM, ENOSPC, EINVAL = 2, 7, 12, 28, 22


@pytest.fixture(scope="module")
def _obj():
    obj = open_kmod_test("objects")
    yield obj
    obj.close()
    assert wait_live_zero() == {"live_lb": 0, "live_rp": 0, "live_mw": 0, "live_mw_nodes": 0}


@pytest.fixture
def objs(enetstl, _obj):
    """The loaded test object; every list-bucket set it owns is dropped after each test."""
    yield _obj
    for i in range(16):
        ko_call(_obj.program("objects"), KO_LB_FREE, idx=i)
    _obj.map("kt_hist").update(struct.pack("<I", 1), bytes(8 * os.cpu_count()))
    assert wait_live_zero()["live_lb"] == 0


def new(p, slots, cap, vsize, idx=0):
    r = ko_call(p, KO_LB_NEW, a=slots, b=cap, x=vsize, idx=idx)
    assert r.ret > 0, r
    return r.ret


def push(p, h, slot, val: bytes):
    return ko_call(p, KO_LB_PUSH, handle=h, a=slot, b=len(val), vals=val).ret


def pop(p, h, slot, size, op=KO_LB_POP):
    r = ko_call(p, op, handle=h, a=slot, b=size)
    return r.ret, struct.pack("<8Q", *r.vals)[:size]


def test_fifo_with_wraparound(objs):
    p = objs.program("objects")
    h = new(p, slots=3, cap=4, vsize=12)
    expect, n = [], 0
    for rnd in range(6):                  # 6 rounds of 3 pushes / 3 pops: wraps the ring
        for _ in range(3):
            v = struct.pack("<IQ", n, n * 1000003)
            assert push(p, h, 2, v) == 0
            expect.append(v)
            n += 1
        assert ko_call(p, KO_LB_LEN, handle=h, a=2).ret == len(expect)
        assert pop(p, h, 2, 12, KO_LB_PEEK) == (0, expect[0])
        for _ in range(3):
            assert pop(p, h, 2, 12) == (0, expect.pop(0))
    assert ko_call(p, KO_LB_LEN, handle=h, a=2).ret == 0
    assert ko_call(p, KO_LB_LEN, handle=h, a=0).ret == 0      # other slots untouched


def test_capacity_and_empty_errors(objs):
    p = objs.program("objects")
    h = new(p, slots=2, cap=3, vsize=8)
    for i in range(3):
        assert push(p, h, 1, struct.pack("<Q", i)) == 0
    assert push(p, h, 1, struct.pack("<Q", 99)) == -ENOSPC
    assert ko_call(p, KO_LB_LEN, handle=h, a=1).ret == 3
    assert [pop(p, h, 1, 8)[1] for _ in range(3)] == [struct.pack("<Q", i) for i in range(3)]
    assert pop(p, h, 1, 8)[0] == -ENOENT
    assert pop(p, h, 1, 8, KO_LB_PEEK)[0] == -ENOENT


def test_argument_errors(objs):
    p = objs.program("objects")
    h = new(p, slots=2, cap=3, vsize=8)
    assert push(p, h, 2, bytes(8)) == -EINVAL                # slot out of range
    assert push(p, h, 0, bytes(4)) == -EINVAL                # value size != value_size
    assert push(p, h, 0, bytes(9)) == -EINVAL
    assert ko_call(p, KO_LB_LEN, handle=h, a=7).ret == -EINVAL
    assert pop(p, h, 0, 4)[0] == -EINVAL                     # out buffer too small
    assert ko_call(p, KO_LB_LEN, handle=h + 1000, a=0).ret == -ENOENT   # no such handle


@pytest.mark.parametrize("slots,cap,vsize", [
    (0, 1, 8), (1, 0, 8), (1, 1, 0), (1, 1, 65), (65537, 1, 1), (1, 4097, 1),
    (4096, 4096, 1),                      # 16 MiB > ENETSTL_LB_MAX_BYTES
])
def test_bad_sizes_refused(objs, slots, cap, vsize):
    r = ko_call(objs.program("objects"), KO_LB_NEW, a=slots, b=cap, x=vsize)
    assert r.ret == -ENOMEM                                  # enetstl_lb_new returned NULL
    assert kmod.live()["live_lb"] == 0


def test_several_instances_are_independent(objs):
    p = objs.program("objects")
    hs = [new(p, slots=4, cap=8, vsize=8, idx=i) for i in range(5)]
    assert len(set(hs)) == 5
    assert kmod.live()["live_lb"] == 5
    for i, h in enumerate(hs):
        for j in range(i + 1):
            assert push(p, h, 3, struct.pack("<Q", i * 100 + j)) == 0
    for i, h in enumerate(hs):
        assert ko_call(p, KO_LB_LEN, handle=h, a=3).ret == i + 1
        assert pop(p, h, 3, 8) == (0, struct.pack("<Q", i * 100))
    # dropping one owner frees that one only; its handle stops resolving
    assert ko_call(p, KO_LB_FREE, idx=2).ret == 0
    assert ko_call(p, KO_LB_FREE, idx=2).ret == -ENOENT
    assert ko_call(p, KO_LB_LEN, handle=hs[2], a=3).ret == -ENOENT
    assert ko_call(p, KO_LB_LEN, handle=hs[3], a=3).ret == 3
    assert wait_live_zero(0.5)["live_lb"] == 4


def test_release_frees_everything(objs):
    p = objs.program("objects")
    for i in range(3):
        h = new(p, slots=16, cap=16, vsize=64, idx=i)
        assert push(p, h, 0, bytes(64)) == 0
    assert kmod.live()["live_lb"] == 3
    for i in range(3):
        assert ko_call(p, KO_LB_FREE, idx=i).ret == 0
    assert wait_live_zero()["live_lb"] == 0


def test_map_dtor_frees_left_objects(enetstl):
    """Objects still owned by the map when the program's object closes are freed by the
    registered destructor."""
    obj = open_kmod_test("objects")
    p = obj.program("objects")
    for i in range(4):
        new(p, slots=2, cap=2, vsize=8, idx=i)
    assert kmod.live()["live_lb"] == 4
    obj.close()
    assert wait_live_zero()["live_lb"] == 0


def test_two_cpus_push_concurrently(objs):
    """CPU 0 and CPU 1 push 1,500 sequence-numbered values each into the same slot at the same
    time through the handle: nothing lost or duplicated, each CPU's values in order."""
    p = objs.program("objects")
    n = 1500
    h = new(p, slots=2, cap=4096, vsize=8)
    res = run_on_cpus({cpu: (lambda: ko_call(p, KO_LB_PUSH_SEQ, handle=h, a=1, repeat=n))
                       for cpu in (0, 1)})
    assert all(r.retval == 2 for r in res.values())
    fails = objs.map("kt_hist").typed(C.c_uint32, C.c_uint64).lookup_percpu(1)
    assert sum(fails) == 0, "a push failed"
    assert ko_call(p, KO_LB_LEN, handle=h, a=1).ret == 2 * n
    seen = {0: [], 1: []}
    for _ in range(2 * n):
        rc, v = pop(p, h, 1, 8)
        assert rc == 0
        x = struct.unpack("<Q", v)[0]
        seen[x >> 32].append(x & 0xFFFFFFFF)
    assert seen == {0: list(range(n)), 1: list(range(n))}


def test_free_while_another_cpu_uses_it(objs):
    """CPU 0 hammers a set through its handle while CPU 1 drops the owning reference: CPU 0's
    lookups start failing cleanly (handle gone), nothing leaks, the kernel logs no warning."""
    import subprocess
    import time

    def warnings():
        log = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=30).stdout
        return log.count("WARNING:") + log.count("BUG:")

    p = objs.program("objects")
    before = warnings()
    for rnd in range(3):
        h = new(p, slots=1, cap=64, vsize=8)

        def user():
            return [ko_call(p, KO_LB_PUSH_SEQ, handle=h, a=0, repeat=2000).ret
                    for _ in range(20)]

        def owner():
            time.sleep(0.02 * rnd)
            return ko_call(p, KO_LB_FREE, idx=0).ret

        res = run_on_cpus({0: user, 1: owner})
        assert res[1] == 0
        assert res[0][-1] == -ENOENT          # after the free, the handle resolves to nothing
        assert set(res[0]) <= {0, -ENOSPC, -ENOENT}
        assert wait_live_zero()["live_lb"] == 0
    assert warnings() == before
