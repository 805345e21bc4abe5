"""nf/bpf/maps.py: raw and typed map operations, per-CPU values, batches, pinning across
processes, map-in-map (tier 1: no interface needed)."""
from __future__ import annotations

import ctypes
import errno
import os
import subprocess
import sys
import textwrap

import pytest

from nf.bpf import (BPF_EXIST, BPF_NOEXIST, BpfError, BpfObject, Map, XdpAction, hashable,
                    num_possible_cpus, sum_values)

PROG = "tests/rodata_verdict"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


@pytest.fixture
def loaded(mirrors):
    with BpfObject.open_built(PROG) as obj:
        obj.map("flows").set_max_entries(4096)
        obj.load()
        yield obj


def test_typed_crud(loaded, mirrors):
    K = hashable(mirrors.FlowKey)        # hashes/compares by bytes, like decoded keys
    t = loaded.map("flows").typed(K, ctypes.c_uint64)
    k1, k2 = K(addr=0x0A000001, port=80, proto=6), K(addr=0x0A000002, port=53, proto=17)
    assert t.lookup(k1) is None and k1 not in t and len(t) == 0
    t.update(k1, 100)
    t[k2] = 200
    assert t[k1] == 100 and t.lookup(k2) == 200 and k1 in t
    with pytest.raises(BpfError) as ei:
        t.update(k1, 1, BPF_NOEXIST)
    assert ei.value.errno == errno.EEXIST
    with pytest.raises(BpfError) as ei:
        t.update(K(addr=9), 1, BPF_EXIST)
    assert ei.value.errno == errno.ENOENT
    t.update(k1, 101, BPF_EXIST)
    assert dict(t.items()) == {k1: 101, k2: 200}
    assert set(t.keys()) == {k1, k2} and sorted(t.values()) == [101, 200]
    got = next(iter(t))
    assert isinstance(got, K) and got in (k1, k2) and got.port in (80, 53)
    assert t.delete(k1) is True and t.delete(k1) is False
    with pytest.raises(KeyError):
        del t[k1]
    with pytest.raises(KeyError):
        t[k1]
    assert list(t.keys()) == [k2]
    # raw bytes view of the same map
    raw = loaded.map("flows")
    assert raw.lookup(bytes(k2)) == (200).to_bytes(8, "little")
    with pytest.raises(ValueError, match="key is 4 bytes"):
        raw.lookup(b"\0" * 4)
    assert t.clear() == 1 and len(t) == 0


def test_typed_rejects_wrong_mirror(loaded, mirrors):
    with pytest.raises(ValueError, match=r"mirror FlowKey/c_uint\w* is 8/4 bytes.*8/8"):
        loaded.map("flows").typed(mirrors.FlowKey, ctypes.c_uint32)
    t = loaded.map("flows").typed(mirrors.FlowKey, ctypes.c_uint64)
    with pytest.raises(TypeError):
        t[mirrors.Counters()] = 1


def test_array_iteration_and_ints(loaded):
    info = loaded.map("info").typed(ctypes.c_uint32, ctypes.c_uint32)
    info[2] = 0xDEADBEEF
    assert list(info.keys()) == [0, 1, 2, 3]
    assert dict(info.items()) == {0: 0, 1: 0, 2: 0xDEADBEEF, 3: 0}
    with pytest.raises(BpfError):
        info[4] = 1          # out of range for a 4-entry array


def test_batch_update_and_batch_lookup(loaded, mirrors):
    K = hashable(mirrors.FlowKey)
    t = loaded.map("flows").typed(K, ctypes.c_uint64)
    keys = [K(addr=i, port=i & 0xFFFF, proto=6) for i in range(3000)]
    assert t.batch_update(keys, [i * 3 for i in range(3000)]) == 3000
    assert t[K(addr=2999, port=2999, proto=6)] == 8997
    got = dict(t.items_batch(chunk=256))
    assert len(got) == 3000 and got == {k: i * 3 for i, k in enumerate(keys)}
    assert dict(t.items()) == got
    with pytest.raises(ValueError, match="3 keys but 2 values"):
        t.batch_update(keys[:3], [1, 2])


def _on_cpu(cpu: int, fn):
    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        return fn()
    finally:
        os.sched_setaffinity(0, old)


def test_percpu_counts_per_cpu(mirrors, frame):
    cpus = sorted(os.sched_getaffinity(0))
    ncpu = num_possible_cpus()
    assert ncpu >= len(cpus)
    with BpfObject.open_built(PROG) as obj:
        obj.set_rodata("cfg", mirrors.Cfg(verdict=XdpAction.DROP))
        obj.load()
        prog = obj.program("xdp_main")
        runs = {cpu: 11 + 6 * i for i, cpu in enumerate(cpus[:2])}     # 11, 17: distinct primes
        for cpu, n in runs.items():
            assert _on_cpu(cpu, lambda: prog.test_run(frame, repeat=n)).retval == XdpAction.DROP
        stats = obj.map("stats").typed(ctypes.c_uint32, mirrors.Counters)
        per_cpu = stats.lookup(int(XdpAction.DROP))
        assert isinstance(per_cpu, list) and len(per_cpu) == ncpu
        assert [c.packets for c in per_cpu] == [runs.get(i, 0) for i in range(ncpu)]
        assert [c.bytes for c in per_cpu] == [runs.get(i, 0) * len(frame) for i in range(ncpu)]
        total = stats.sum(int(XdpAction.DROP))
        assert (total.packets, total.bytes) == (sum(runs.values()), sum(runs.values()) * len(frame))
        assert stats.sum(int(XdpAction.PASS)).packets == 0
        # writes: one value per CPU, or one value for all
        stats[0] = [mirrors.Counters(packets=i, bytes=10 * i) for i in range(ncpu)]
        assert [(c.packets, c.bytes) for c in stats[0]] == [(i, 10 * i) for i in range(ncpu)]
        stats[0] = mirrors.Counters(packets=5)
        assert stats.sum(0).packets == 5 * ncpu
        with pytest.raises(ValueError, match="possible CPUs"):
            stats[0] = [mirrors.Counters()] * (ncpu + 1)
        # raw view: slots are value_size rounded up to 8 (16 here), one per possible CPU
        assert len(obj.map("stats").lookup((0).to_bytes(4, "little"))) == 16 * ncpu
        # batch update of a per-CPU map
        stats.batch_update([1, 2], [mirrors.Counters(packets=1), mirrors.Counters(packets=2)])
        assert stats.sum(2).packets == 2 * ncpu


def test_sum_values_nested():
    class In(ctypes.Structure):
        _fields_ = [("a", ctypes.c_uint32 * 2)]

    class S(ctypes.Structure):
        _fields_ = [("n", ctypes.c_uint64), ("in_", In), ("name", ctypes.c_char * 4)]

    vals = [S(n=i, in_=In(a=(ctypes.c_uint32 * 2)(i, 2 * i))) for i in range(1, 4)]
    s = sum_values(vals)
    assert (s.n, list(s.in_.a)) == (6, [6, 12])
    assert sum_values([1, 2, 3]) == 6


def test_map_in_map_inner_fd_updates(frame):
    with BpfObject.open_built("tests/map_in_map") as obj:
        obj.load()
        prog, outer = obj.program("xdp_outer"), obj.map("outer")
        assert outer.type_name == "array_of_maps"
        assert prog.test_run(frame).retval == XdpAction.ABORTED        # empty slot
        with Map.create("array", 4, 4, 4, name="inner_a") as a, \
                Map.create("array", 4, 4, 4, name="inner_b") as b:
            ta, tb = a.typed(ctypes.c_uint32, ctypes.c_uint32), b.typed(ctypes.c_uint32,
                                                                        ctypes.c_uint32)
            ta[0], tb[0] = XdpAction.DROP, XdpAction.TX
            to = outer.typed(ctypes.c_uint32, ctypes.c_uint32)
            to[0] = a.fd                                 # plain u32 fd value
            assert prog.test_run(frame).retval == XdpAction.DROP
            to[0] = b                                    # or the Map itself
            assert prog.test_run(frame).retval == XdpAction.TX
            assert to[0] == b.id                         # lookups return the inner map's id
            with outer.inner((0).to_bytes(4, "little")) as inner:
                assert inner.id == b.id and inner.name == "inner_b"
            assert to.delete(0)
            assert prog.test_run(frame).retval == XdpAction.ABORTED
        with pytest.raises(BpfError):
            Map.create("hash", 4, 4, 0)   # max_entries 0 is refused by the kernel


def test_map_pinned_by_one_process_is_reused_by_another(bpffs_dir, mirrors):
    K = hashable(mirrors.FlowKey)
    with BpfObject.open_built(PROG) as obj:
        obj.pin_maps(bpffs_dir)
        obj.load()
        assert sorted(os.listdir(bpffs_dir)) == ["flows", "info", "stats"]   # no .rodata
        flows = obj.map("flows").typed(K, ctypes.c_uint64)
        flows[K(addr=1, port=2, proto=3)] = 4242
        child = textwrap.dedent(f"""
            import ctypes, sys
            sys.path.insert(0, {ROOT!r})
            from nf.bpf import BpfObject, Map
            class K(ctypes.Structure):
                _fields_ = [("addr", ctypes.c_uint32), ("port", ctypes.c_uint16),
                            ("proto", ctypes.c_uint8), ("pad", ctypes.c_uint8)]
            with BpfObject.open_built({PROG!r}) as obj:
                obj.pin_maps({str(bpffs_dir)!r})
                obj.load()                       # reuses the pinned maps
                t = obj.map("flows").typed(K, ctypes.c_uint64)
                print(t[K(addr=1, port=2, proto=3)])
                t[K(addr=7)] = 77
            with Map.from_pin({str(bpffs_dir / 'flows')!r}, K, ctypes.c_uint64) as t:
                t.map  # standalone view of the same map
                print(len(t))
        """)
        out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                             timeout=60, cwd=ROOT)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["4242", "2"]
        assert flows[K(addr=7)] == 77                 # the child's write is visible here
    # the pins outlive both processes
    with Map.from_pin(bpffs_dir / "flows", K, ctypes.c_uint64) as t:
        assert dict(t.items()) == {K(addr=1, port=2, proto=3): 4242, K(addr=7): 77}
        assert t.map.pin_path == str(bpffs_dir / "flows")


def test_incompatible_pinned_map_is_refused(bpffs_dir):
    with BpfObject.open_built(PROG) as obj:
        obj.pin_maps(bpffs_dir)
        obj.load()
    with BpfObject.open_built(PROG) as obj:
        obj.pin_maps(bpffs_dir)
        obj.map("flows").set_max_entries(99)         # differs from the pinned map
        with pytest.raises(BpfError) as ei:
            obj.load()
        assert ei.value.errno == errno.EINVAL


def test_from_pin_errors(tmp_path, bpffs_dir):
    with pytest.raises(BpfError, match="cannot open pinned map"):
        Map.from_pin(bpffs_dir / "nothing")
    with pytest.raises(TypeError):
        Map.from_pin(bpffs_dir / "nothing", ctypes.c_uint32)
