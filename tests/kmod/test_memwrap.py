"""VM tier: the memory wrapper (memwrap.c): a 1,000-node list built and walked from BPF, a
removed node's incoming edge reads NULL, releasing the container frees every node, two CPUs
building in one container, and a skip-list key-value store built in BPF (4,096 keys) that
agrees with a Python dict."""
from __future__ import annotations

import random

import pytest

from nf import kmod
from nf.testing.kmod import (KO_MW_BUILD, KO_MW_COUNT, KO_MW_FREE, KO_MW_NEW, KO_MW_REMOVE,
                             KO_MW_WALK, ko_call, open_kmod_test, run_on_cpus, wait_live_zero)

pytestmark = pytest.mark.vm
SL_NEW, SL_FREE, SL_INSERT, SL_LOOKUP, SL_DELETE, SL_COUNT = range(1, 7)


@pytest.fixture(scope="module")
def _obj():
    obj = open_kmod_test("objects")
    yield obj
    obj.close()


@pytest.fixture
def objs(enetstl, _obj):
    yield _obj
    for i in range(16):
        ko_call(_obj.program("objects"), KO_MW_FREE, idx=i)
    live = wait_live_zero()
    assert (live["live_mw"], live["live_mw_nodes"]) == (0, 0)


def test_thousand_node_list(objs):
    p = objs.program("objects")
    h = ko_call(p, KO_MW_NEW, a=2000).ret
    assert h > 0
    assert kmod.live()["live_mw_nodes"] == 1                    # the root
    assert ko_call(p, KO_MW_BUILD, handle=h, a=1000).ret == 1000
    w = ko_call(p, KO_MW_WALK, handle=h)
    assert w.vals[:3] == [1000, 1000 * 1001 // 2, 1000]        # nodes, sum of keys, last key
    assert ko_call(p, KO_MW_COUNT, handle=h).ret == 1000
    assert kmod.live()["live_mw_nodes"] == 1001


def test_removed_node_incoming_edge_reads_null(objs):
    p = objs.program("objects")
    h = ko_call(p, KO_MW_NEW, a=100).ret
    ko_call(p, KO_MW_BUILD, handle=h, a=10)
    r = ko_call(p, KO_MW_REMOVE, handle=h, a=4)
    assert (r.ret, r.vals[0]) == (1, 4)          # removed key 4; prev -> it now reads NULL
    w = ko_call(p, KO_MW_WALK, handle=h)
    assert w.vals[:3] == [3, 6, 3]               # the chain ends at node 3
    assert ko_call(p, KO_MW_COUNT, handle=h).ret == 9          # 5..10 still owned
    assert kmod.live()["live_mw_nodes"] == 10                  # 9 + root (4 freed)
    assert ko_call(p, KO_MW_REMOVE, handle=h, a=9).ret == -2   # beyond the chain


def test_capacity_limit(objs):
    p = objs.program("objects")
    h = ko_call(p, KO_MW_NEW, a=5).ret
    assert ko_call(p, KO_MW_BUILD, handle=h, a=8).ret == 5
    assert ko_call(p, KO_MW_NEW, a=0, idx=1).ret == -12
    assert ko_call(p, KO_MW_NEW, a=(1 << 20) + 1, idx=1).ret == -12


def test_release_frees_all_nodes(objs):
    p = objs.program("objects")
    hs = [ko_call(p, KO_MW_NEW, a=600, idx=i).ret for i in range(3)]
    for h in hs:
        assert ko_call(p, KO_MW_BUILD, handle=h, a=500).ret == 500
    assert kmod.live()["live_mw_nodes"] == 3 * 501
    assert ko_call(p, KO_MW_FREE, idx=1).ret == 0
    assert wait_live_zero(0.5)["live_mw_nodes"] == 2 * 501
    assert ko_call(p, KO_MW_WALK, handle=hs[1]).ret == -2      # handle gone
    for i in (0, 2):
        assert ko_call(p, KO_MW_FREE, idx=i).ret == 0
    assert wait_live_zero()["live_mw_nodes"] == 0


def test_two_cpus_build_in_one_container(objs):
    """CPU 0 and CPU 1 each build a 600-node chain (root edge slots 0 and 1) in one container
    at the same time, through the handle."""
    p = objs.program("objects")
    h = ko_call(p, KO_MW_NEW, a=1200).ret
    res = run_on_cpus({c: (lambda c=c: ko_call(p, KO_MW_BUILD, handle=h, a=600, b=c))
                       for c in (0, 1)})
    assert [res[c].ret for c in (0, 1)] == [600, 600]
    for slot in (0, 1):
        assert ko_call(p, KO_MW_WALK, handle=h, b=slot).vals[:2] == [600, 600 * 601 // 2]
    assert ko_call(p, KO_MW_COUNT, handle=h).ret == 1200


def test_skiplist_kv_store_agrees_with_dict(enetstl):
    obj = open_kmod_test("skiplist")
    try:
        p = obj.program("skiplist")
        h = ko_call(p, SL_NEW, a=5000).ret
        assert h > 0
        rnd = random.Random(2024)
        keys = rnd.sample(range(1, 1 << 48), 4096)
        ref: dict[int, int] = {}

        def check(ks):
            for k in ks:
                r = ko_call(p, SL_LOOKUP, handle=h, x=k)
                assert (r.ret, r.vals[0] if r.ret == 1 else None) == \
                    ((1, ref[k]) if k in ref else (0, None)), k

        for k in keys:
            v = rnd.getrandbits(63)
            assert ko_call(p, SL_INSERT, handle=h, x=k, vals=v.to_bytes(8, "little")).ret == 1
            ref[k] = v
        assert ko_call(p, SL_COUNT, handle=h).ret == 4096
        check(keys)
        check([rnd.randrange(1 << 48) for _ in range(200)])      # (almost surely) absent
        for k in rnd.sample(keys, 300):                           # updates keep one node
            v = rnd.getrandbits(63)
            assert ko_call(p, SL_INSERT, handle=h, x=k, vals=v.to_bytes(8, "little")).ret == 0
            ref[k] = v
        gone = rnd.sample(keys, 2048)
        for k in gone:
            assert ko_call(p, SL_DELETE, handle=h, x=k).ret == 1
            del ref[k]
        assert ko_call(p, SL_DELETE, handle=h, x=gone[0]).ret == 0
        assert ko_call(p, SL_COUNT, handle=h).ret == len(ref) == 2048
        check(keys)
        assert kmod.live()["live_mw_nodes"] == 2048 + 1
        assert ko_call(p, SL_FREE).ret == 0
    finally:
        obj.close()
    live = wait_live_zero()
    assert (live["live_mw"], live["live_mw_nodes"]) == (0, 0)
