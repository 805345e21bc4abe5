"""xdp_progs/l2_switch/l2_switch_enetstl.bpf.c: the bucketised FDB, its seqcount protocol and
its timing wheel.

On the host (no module) the object runs its pure-eBPF CRC32-C and compare: table layout, control
operations, the busy-bucket rules and two CPUs learning at once are checked there. In the guest
(@pytest.mark.vm) the same checks run with the module's kfuncs, plus in-kernel aging by the
timing wheel with no controller process alive.
"""
from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Dot1Q, Ether

from nf.models.l2_switch import SwitchModel, efdb_hash
from nf.bpf import BpfError, Map
from nf.config.l2_switch import Variant
from nf.nfs.l2_switch import (ACCESS, ACT_DROP, ACT_FLOOD, ACT_UNICAST, TRUNK, EfdbBucket, PortPlan, SwitchSim,
                              WheelStats, efdb_buckets, fdb_key, keying, module_loaded, now_ns)

ROOT = Path(__file__).resolve().parents[3]
P1, P2, P4, P5 = 11, 12, 14, 15
PORTS = [
    PortPlan("p1", P1, 0, ACCESS, 10, frozenset(), True),
    PortPlan("p2", P2, 1, ACCESS, 10, frozenset(), True),
    PortPlan("p4", P4, 3, TRUNK, 0, frozenset({10, 20}), True),
    PortPlan("p5", P5, 4, TRUNK, 0, frozenset({10}), True),
]
A, B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"
T0 = 1_000 * 10**9
SEED = 0x9E3779B97F4A7C15   # the tables here are keyed by this (placement known to the tests)


def frame(src=A, dst="ff:ff:ff:ff:ff:ff", vid=None):
    e = Ether(src=src, dst=dst)
    if vid is not None:
        e = e / Dot1Q(vlan=vid)
    return bytes(e / IP() / UDP())


def mb(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def key_hash(mac: str, vid: int, seed: int = SEED) -> int:
    return efdb_hash(bytes.fromhex(mac.replace(":", "")), vid, seed)


def sig_of(h: int) -> int:
    return (h >> 48) or 1


@pytest.fixture
def sw():
    with SwitchSim(PORTS, fdb_size=64, variant=Variant.enetstl, seed=SEED) as s:
        yield s


def bucket(sw, i: int) -> EfdbBucket:
    return sw.maps.efdb.lookup(i)


# ---- layout and control (host) -------------------------------------------------------------
def test_entry_lands_in_its_bucket_with_its_signature(sw):
    n = efdb_buckets(64)
    assert sw.maps.efdb.map.max_entries == n == 8
    sw.receive(frame(src=A), P1, T0)
    h = key_hash(A, 10)
    b = bucket(sw, h % n)
    assert b.seq == 2                     # one write: taken (1) and released (2)
    assert b.sig[0] == sig_of(h) and list(b.sig[1:]) == [0] * 15
    e = b.e[0]
    assert (bytes(e.key.mac).hex(), e.key.vid, e.ifindex, e.idx, e.flags, e.ts_ns) == \
        (A.replace(":", ""), 10, P1, 0, 0, T0)
    assert all(bucket(sw, i).seq == 0 for i in range(n) if i != h % n)


def test_control_operations(sw):
    m = sw.maps
    m.fdb_add(A, 10, "p2")
    e = m.entry(A, 10)
    assert (e.ifindex, e.flags) == (P2, 1)
    m.fdb_add(A, 10, "p1")                # replace in place
    assert m.entry(A, 10).ifindex == P1 and len(m.fdb(now=T0)) == 1
    sw.receive(frame(src=B), P2, T0)      # one dynamic entry
    assert m.fdb_delete(B, 10) and not m.fdb_delete(B, 10)
    sw.receive(frame(src=B), P2, T0)
    assert m.fdb_flush() == 1 and [x.mac for x in m.fdb(now=T0)] == [A]
    sw.receive(frame(src=B), P2, T0)
    m.set_aging(1)
    assert m.expire(now=T0 + 2 * 10**9) == 1          # B is old, the static A is not
    assert m.fdb_flush(static=True) == 1 and m.fdb(now=T0) == []


def test_signature_collision_finds_each_key():
    """Two MACs whose 16-bit signatures collide in one bucket: the first candidate way holds the
    other key, so the lookup must go on to the second candidate (both directions)."""
    seen, pair = {}, None
    for i in range(1 << 16):
        mac = f"02:00:00:{i >> 16 & 0xff:02x}:{i >> 8 & 0xff:02x}:{i & 0xff:02x}"
        s = sig_of(key_hash(mac, 10))
        if s in seen:
            pair = (seen[s], mac)
            break
        seen[s] = mac
    x, y = pair
    with SwitchSim(PORTS, fdb_size=8, variant=Variant.enetstl, seed=SEED) as sw:  # one bucket, 16 ways
        sw.receive(frame(src=x), P1, T0)
        sw.receive(frame(src=y), P2, T0)
        b = bucket(sw, 0)
        assert b.sig[0] == b.sig[1] == sig_of(key_hash(x, 10))
        assert sw.receive(frame(src=B, dst=y, vid=10), P5, T0).out.keys() == {P2}
        assert sw.receive(frame(src=B, dst=x, vid=10), P5, T0).out.keys() == {P1}
        assert {(e.mac, e.port) for e in sw.maps.fdb(now=T0)} >= {(x, "p1"), (y, "p2")}


def same_bucket(n: int, bucket: int = 0, buckets: int = 8, vid: int = 10, seed: int = SEED) -> list[str]:
    """n MACs whose keys land in one bucket of a table of `buckets` buckets keyed by `seed`."""
    out, i = [], 0
    while len(out) < n:
        mac = f"02:00:00:00:{i >> 8 & 0xff:02x}:{i & 0xff:02x}"
        if key_hash(mac, vid, seed) % buckets == bucket:
            out.append(mac)
        i += 1
    return out


# ---- the table's key (config.seed: drawn unless the config gives one) -------------------------
def placed(sw) -> dict[bytes, int]:
    """MAC -> bucket of every entry in the table."""
    return {bytes(b.e[w].key.mac): i for i in range(sw.maps.efdb.map.max_entries)
            for b in [bucket(sw, i)] for w in range(16) if b.sig[w]}


def check_tables_without_a_seed_are_keyed_apart():
    """Two tables made as `nf up` makes them (no seed) draw different keys from the kernel's random
    source, say so, and place each key where the model places it under that table's own key."""
    macs = [f"02:00:00:00:01:{i:02x}" for i in range(24)]
    seeds, n = [], efdb_buckets(1024)
    for _ in range(2):
        with SwitchSim(PORTS, fdb_size=1024, variant=Variant.enetstl) as sw:
            assert keying(sw.obj.map("config")) == {"keyed": True, "by": "drawn"}   # never shown
            for m in macs:
                sw.receive(frame(src=m), P1, T0)
            model = SwitchModel([], buckets=n, seed=sw.seed)
            assert placed(sw) == {mb(m): model.bucket(mb(m), 10) for m in macs}
            seeds.append(sw.seed)
    assert seeds[0] != seeds[1]


def check_a_configured_seed_gives_the_models_placement(seed: int):
    n = efdb_buckets(1024)
    model = SwitchModel([], buckets=n, seed=seed)
    macs = [f"02:00:00:00:02:{i:02x}" for i in range(24)]
    with SwitchSim(PORTS, fdb_size=1024, variant=Variant.enetstl, seed=seed) as sw:
        assert sw.seed == seed
        assert keying(sw.obj.map("config")) == {"keyed": True, "by": "config", "seed": seed}
        for m in macs:
            sw.receive(frame(src=m), P1, T0)
        want = {mb(m): model.bucket(mb(m), 10) for m in macs}
        assert placed(sw) == want and len(set(want.values())) > 8   # spread, as the model says
        for m in macs:               # and found there: known unicast, not flooded
            r = sw.receive(frame(src=B, dst=m, vid=10), P5, T0)
            assert (r.action, set(r.out)) == (ACT_UNICAST, {P1})


def check_macs_chosen_for_a_known_seed(keyed: bool):
    """The attack a public seed allowed: 17 source MACs chosen offline to share one bucket under
    seed 0 (the table's seed before it was keyed). Under seed 0 the bucket's 16 ways fill, the
    17th is not learned (fdb_full) and frames to it flood; under a drawn key the same MACs spread
    over the buckets and all 17 are learned and reached by unicast."""
    n = efdb_buckets(1024)
    macs = same_bucket(17, bucket=5, buckets=n, seed=0)
    with SwitchSim(PORTS, fdb_size=1024, variant=Variant.enetstl, seed=None if keyed else 0) as sw:
        for m in macs:
            sw.receive(frame(src=m), P1, T0)
        st = sw.maps.stats()["p1"]
        per_bucket = Counter(key_hash(m, 10, sw.seed) % n for m in macs)
        r = sw.receive(frame(src=B, dst=macs[16], vid=10), P5, T0)
        if keyed:
            assert (st["learn"], st["fdb_full"]) == (17, 0)
            assert len(per_bucket) >= 8 and max(per_bucket.values()) <= 4
            assert (r.action, set(r.out)) == (ACT_UNICAST, {P1})
        else:
            assert (st["learn"], st["fdb_full"]) == (16, 1) and per_bucket == {5: 17}
            assert sum(1 for w in range(16) if bucket(sw, 5).sig[w]) == 16
            assert r.action == ACT_FLOOD and set(r.out) == {P1, P2, P4}


def test_tables_without_a_seed_are_keyed_apart():
    check_tables_without_a_seed_are_keyed_apart()


@pytest.mark.parametrize("seed", [0, 0x0123456789ABCDEF, (1 << 64) - 1])
def test_a_configured_seed_gives_the_models_placement(seed):
    check_a_configured_seed_gives_the_models_placement(seed)


@pytest.mark.parametrize("keyed", [False, True], ids=["seed0", "drawn"])
def test_macs_chosen_for_a_known_seed_fill_a_bucket_only_under_it(keyed):
    check_macs_chosen_for_a_known_seed(keyed)


def test_the_pure_variant_is_keyed_by_the_kernel():
    with SwitchSim(PORTS, fdb_size=64, variant=Variant.pure, seed=7) as sw:
        assert keying(sw.obj.map("config")) == {"keyed": True, "by": "kernel"}


def test_full_bucket_refuses_a_static_add_and_counts_learning():
    """fdb_size 64 (8 buckets): 16 keys of one bucket fill it long before the table is full."""
    macs = same_bucket(18)
    with SwitchSim(PORTS, fdb_size=64, variant=Variant.enetstl, seed=SEED) as sw:
        for m in macs[:16]:
            sw.receive(frame(src=m), P1, T0)
        assert sw.maps.stats()["p1"]["learn"] == 16
        r = sw.receive(frame(src=macs[16]), P1, T0)
        assert r.action == ACT_FLOOD and sw.maps.stats()["p1"]["fdb_full"] == 1
        with pytest.raises(BpfError, match="ENOSPC"):
            sw.maps.fdb_add(macs[17], 10, "p2", now=T0)
        assert len(sw.maps.fdb(now=T0)) == 16 and sw.maps.room()["used"] == 16


def test_full_bucket_of_aged_out_entries_makes_room_in_place():
    """A bucket full of aged-out entries in a table that is not full: the learn clears that
    bucket's dead ways itself (no walk over the table); its live ways stay."""
    macs = same_bucket(20)
    with SwitchSim(PORTS, aging_s=2, fdb_size=64, variant=Variant.enetstl, seed=SEED) as sw:
        for m in macs[:12]:
            sw.receive(frame(src=m), P1, T0)
        for m in macs[12:16]:
            sw.receive(frame(src=m), P1, T0 + 2 * 10**9)
        t = T0 + 3 * 10**9
        for m in macs[16:20]:
            sw.receive(frame(src=m), P2, t)
        st = sw.maps.stats()["p2"]
        assert (st["learn"], st["fdb_full"]) == (4, 0)
        assert {e.mac for e in sw.maps.fdb(now=t)} == set(macs[12:20])
        room = sw.maps.room()
        assert (room["walks"], room["reclaimed"], room["used"]) == (0, 12, 8)


def test_a_held_bucket_is_never_misread(sw):
    """A writer on another CPU holds A's bucket (odd seqcount): lookups there flood instead of
    trusting the ways, learning there is skipped and counted, control ops report EBUSY."""
    sw.receive(frame(src=A), P1, T0)
    assert sw.receive(frame(src=B, dst=A), P2, T0).action == ACT_UNICAST
    i = key_hash(A, 10) % 8
    b = bucket(sw, i)
    b.seq += 1                            # "held"
    sw.maps.efdb.update(i, b)
    r = sw.receive(frame(src=B, dst=A), P2, T0)
    assert r.action == ACT_FLOOD and set(r.out) == {P1, P4, P5}
    learn_before = sw.maps.stats()["p1"]["learn"]
    sw.receive(frame(src=A), P2, T0 + 1)  # a move into the held bucket: skipped
    assert sw.maps.stats()["p2"]["fdb_busy"] == 1 and sw.maps.stats()["p2"]["move"] == 0
    assert sw.maps.stats()["p1"]["learn"] == learn_before
    with pytest.raises(BpfError, match="EBUSY"):
        sw.maps.fdb_add(A, 10, "p2")
    b.seq += 1                            # released
    sw.maps.efdb.update(i, b)
    assert sw.receive(frame(src=B, dst=A), P2, T0).out.keys() == {P1}


@pytest.mark.skipif(module_loaded(), reason="the module is loaded: the wheel starts")
def test_no_wheel_without_the_module(sw):
    assert sw.maps.start_wheel() == -2    # -ENOENT: lazy aging + expire() only
    assert sw.maps.wheel_stats()["handle"] == 0


def learn_concurrently(sw, rounds: int = 20000) -> None:
    """CPU 0 sees MAC A on trunk p4, CPU 1 sees it on trunk p5, many times each, at once: every
    frame is a move, so both CPUs write A's bucket continuously."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two CPUs")
    cpus = sorted(os.sched_getaffinity(0))[:2]
    per_cpu = [{} for _ in range(max(cpus) + 1)]
    per_cpu[cpus[0]] = {"ingress_ifindex": P4}
    per_cpu[cpus[1]] = {"ingress_ifindex": P5}
    sw.set_ctl(per_cpu, now_override=T0)
    f = frame(src=A, vid=10)
    errors = []

    def worker(cpu):
        try:
            os.sched_setaffinity(0, {cpu})        # this thread only
            for _ in range(rounds // 1000):
                sw.ingress.test_run(f, repeat=1000)
        except Exception as e:                    # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=worker, args=(c,)) for c in cpus]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=120)
    assert not errors and not any(t.is_alive() for t in ts)


def assert_table_consistent(sw):
    n = sw.maps.efdb.map.max_entries
    seen = {}
    for i in range(n):
        b = bucket(sw, i)
        assert b.seq % 2 == 0, f"bucket {i} left held"
        for w in range(16):
            if not b.sig[w]:
                assert bytes(b.e[w]) == bytes(len(bytes(b.e[w]))), f"free way {i}/{w} not clean"
                continue
            e = b.e[w]
            mac = ":".join(f"{x:02x}" for x in bytes(e.key.mac))
            h = key_hash(mac, e.key.vid)
            assert h % n == i and b.sig[w] == sig_of(h), f"way {i}/{w} in the wrong place"
            assert (mac, e.key.vid) not in seen, "duplicate key"
            seen[(mac, e.key.vid)] = e.ifindex
    return seen


def test_two_cpus_learning_at_once_leave_a_consistent_table(sw):
    learn_concurrently(sw)
    seen = assert_table_consistent(sw)
    assert set(seen) == {(A, 10)} and seen[(A, 10)] in (P4, P5)
    st = sw.maps.stats()
    total = sum(st[p]["rx_packets"] for p in ("p4", "p5"))
    assert total == 40000
    writes = sum(st[p]["move"] + st[p]["learn"] + st[p]["fdb_busy"] for p in ("p4", "p5"))
    assert st["p4"]["learn"] + st["p5"]["learn"] == 1
    # every frame either moved A, found it already on its port, or found the bucket busy
    assert writes <= total and st["p4"]["flood"] + st["p5"]["flood"] == total


# ---- with the module (guest) ---------------------------------------------------------------
@pytest.mark.vm
def test_kfunc_path_builds_the_same_table(enetstl):
    with SwitchSim(PORTS, fdb_size=64, variant=Variant.enetstl, seed=SEED) as sw:
        macs = [f"02:00:00:00:04:{i:02x}" for i in range(40)]
        for i, m in enumerate(macs):
            sw.receive(frame(src=m), P1 if i % 2 else P2, T0)
        seen = assert_table_consistent(sw)    # placed by the module's CRC32-C and SIMD find
        assert set(seen) == {(m, 10) for m in macs}
        for i, m in enumerate(macs):          # and found again by them
            r = sw.receive(frame(src=B, dst=m), P1, T0)
            # learned on p2: unicast there; learned on p1 (the ingress): dropped
            assert r.action == (ACT_UNICAST if i % 2 == 0 else ACT_DROP) and r.vid == 10


@pytest.mark.vm
def test_keyed_table_with_kfuncs(enetstl):
    """The key checks again with the module: every lookup above is enetstl_bt_find, handed the
    table's key from the config map (counted by the module)."""
    from nf import kmod
    before = kmod.counters()["bt_find_calls"]
    check_tables_without_a_seed_are_keyed_apart()
    check_a_configured_seed_gives_the_models_placement(0x0123456789ABCDEF)
    for keyed in (False, True):
        check_macs_chosen_for_a_known_seed(keyed)
    assert kmod.counters()["bt_find_calls"] - before >= 24 + 2 * 17


@pytest.mark.vm
def test_two_cpus_with_kfuncs(enetstl):
    with SwitchSim(PORTS, fdb_size=64, variant=Variant.enetstl, seed=SEED) as sw:
        learn_concurrently(sw)
        seen = assert_table_consistent(sw)
        assert set(seen) == {(A, 10)}


WHEEL_SETUP = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from nf.bpf import BpfObject
    from nf.config.l2_switch import Variant
    from nf.nfs.l2_switch import *
    pin = Path(sys.argv[1]); pin.mkdir(parents=True)
    ports = [PortPlan("p1", 11, 0, ACCESS, 10, frozenset(), True),
             PortPlan("p2", 12, 1, ACCESS, 10, frozenset(), True)]
    obj = BpfObject.open(built(OBJECT_ENETSTL))
    size_object(obj, Variant.enetstl, 64)
    obj.pin_maps(pin)
    obj.load()
    m = make_maps(obj, Variant.enetstl, {11: "p1", 12: "p2"})
    inner = fill_tables(obj, m, ports, real_ports=False)
    m.set_aging(1)
    ret = m.start_wheel()
    assert ret == 0, f"start_wheel: {ret}"
    ctl = obj.map("test_ctl").typed(u32, ProbeCtl)
    vals = ctl.lookup_percpu(0)
    for c in vals:
        c.ingress_ifindex = 11
    ctl.update(0, vals)
    frame = bytes.fromhex("ffffffffffff" "02000000000a" "0800") + bytes(46)
    obj.program(PROG_TEST).test_run(frame)      # learns 02:..:0a at the real (coarse) time
    m.fdb_add("02:00:00:00:00:0b", 10, "p2")      # static: never ages
    print(len(m.fdb()), flush=True)
    # the process exits: only the pins keep the maps, the wheel's timer and its program alive
""")


@pytest.mark.vm
def test_wheel_forgets_a_mac_with_no_controller_alive(enetstl, tmp_path):
    pin = Path("/sys/fs/bpf") / f"l2sw-wheel-{os.getpid()}"
    try:
        out = subprocess.run([sys.executable, "-c", WHEEL_SETUP, str(pin)], cwd=ROOT, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "2"
        efdb = Map.from_pin(str(pin / "efdb")).typed(__import__("ctypes").c_uint32, EfdbBucket)
        ws = Map.from_pin(str(pin / "wheel_stats")).typed(__import__("ctypes").c_uint32, WheelStats)

        def keys():
            out = set()
            for i in range(efdb.map.max_entries):
                b = efdb.lookup(i)
                out |= {bytes(b.e[w].key.mac).hex() for w in range(16) if b.sig[w]}
            return out

        assert keys() == {"02000000000a", "02000000000b"}
        deadline = time.monotonic() + 15
        while "02000000000a" in keys() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert keys() == {"02000000000b"}         # the learned MAC aged out; the static stays
        s = ws.lookup(0)
        assert s.expired == 1 and s.filed >= 1 and s.runs >= 5 and s.handle != 0
    finally:
        subprocess.run(["rm", "-rf", str(pin)], timeout=30)


# ---- the readers' lookup: enetstl_bt_find with the module, the same probe in BPF without ------
# fdb_batch runs FIND (the datapath's lookup: the kfunc when the module is loaded) and FIND_BPF
# (the BPF probe always) on one table; both must give the way and value the table holds.

def _kw(mac: str, vid: int) -> int:
    return int.from_bytes(bytes.fromhex(mac.replace(":", "")) + struct.pack("<H", vid), "little")


def _run_batch(b, reqs: list) -> list:
    """Run FdbReq requests through fdb_batch; the answers, as FdbReq."""
    import numpy as np

    from nf.nfs.l2_switch import FdbReq
    raw = np.frombuffer(b"".join(bytes(r) for r in reqs), np.uint8).reshape(len(reqs), -1)
    b.rows[:len(reqs)] = raw
    b.run(len(reqs))
    return [FdbReq.from_buffer_copy(bytes(b.rows[i])) for i in range(len(reqs))]


def _find(b, op: int, keys: list[int]) -> list[tuple]:
    """(ret, ifindex, idx, flags, ts) per key; (ret,) when absent or busy."""
    from nf.nfs.l2_switch import FdbKey, FdbReq
    out = []
    for a in _run_batch(b, [FdbReq(op=op, key=FdbKey.from_buffer_copy(k.to_bytes(8, "little")))
                             for k in keys]):
        out.append((a.ret, a.ifindex, a.idx, a.flags, a.now_ns) if a.ret >= 0 else (a.ret,))
    return out


def _colliding(n_buckets: int, vid: int, pairs: int) -> list[tuple[str, str]]:
    """Pairs of MACs whose keys share a bucket and a signature: only the key tells them apart."""
    seen, out, i = {}, [], 0
    while len(out) < pairs:
        mac = f"02:5e:{i >> 24 & 0xff:02x}:{i >> 16 & 0xff:02x}:{i >> 8 & 0xff:02x}:{i & 0xff:02x}"
        h = key_hash(mac, vid)
        slot = (h % n_buckets, sig_of(h))
        if slot in seen:
            out.append((seen.pop(slot), mac))
        else:
            seen[slot] = mac
        i += 1
    return out


def seeded_table(sw, b, seed: int):
    """Fill sw's eNetSTL table through the control path (ADD requests): random keys with random
    values (ports, indexes, static or not, timestamps), one bucket filled to its 16 ways, keys
    whose signatures collide (one of a pair present, or both), then a third of the random keys
    deleted (free ways among used ones). Returns (queries, expected answers): every key added,
    the deleted ones, absent keys (among them the colliding partners) - the way computed by
    nf.algo.bt_find over the table read back, the value as added."""
    import random as _r

    from nf import algo
    from nf.nfs.l2_switch import FDB_STATIC, OP_ADD, FdbKey, FdbReq
    rnd = _r.Random(seed)
    nb = sw.maps.efdb.map.max_entries
    vid = 10 + seed
    added: dict[int, tuple] = {}

    def add(kws):
        reqs = [FdbReq(op=OP_ADD, key=FdbKey.from_buffer_copy(k.to_bytes(8, "little")),
                       ifindex=rnd.choice((P1, P2, P4, P5)), idx=rnd.randrange(64),
                       flags=rnd.choice((0, FDB_STATIC)), now_ns=rnd.getrandbits(63)) for k in kws]
        for r, a in zip(reqs, _run_batch(b, reqs)):
            assert a.ret == 0
            added[_kw(":".join(f"{x:02x}" for x in bytes(r.key.mac)), r.key.vid)] = \
                (r.ifindex, r.idx, r.flags, r.now_ns)

    rand = [_kw(":".join(f"{x:02x}" for x in bytes([2] + [rnd.randrange(256) for _ in range(5)])),
                rnd.randrange(1, 4095)) for _ in range(120)]
    add(rand)
    full = [_kw(m, vid) for m in same_bucket(40, bucket=seed % nb, buckets=nb, vid=vid)]
    room = 16 - sum(1 for w in range(16) if bucket(sw, seed % nb).sig[w])
    add(full[:room])
    pairs = _colliding(nb, vid, 4)
    add([_kw(x, vid) for x, _ in pairs] + [_kw(y, vid) for _, y in pairs[:2]])
    gone = rnd.sample(rand, 40)
    for k in gone:
        kb = k.to_bytes(8, "little")
        assert sw.maps.fdb_delete(kb[:6], int.from_bytes(kb[6:], "little"))
        del added[k]
    absent = [_kw(y, vid) for _, y in pairs[2:]] + full[room:] + gone + \
        [rnd.getrandbits(48) & ~(1 << 40) | rnd.randrange(1, 4095) << 48 for _ in range(40)]
    queries = list(added) + absent
    rnd.shuffle(queries)
    want = []
    for k in queries:
        bi, sg = algo.bt_place(k, SEED, nb)
        bk = bucket(sw, bi)
        w = algo.bt_find(list(bk.sig), [int.from_bytes(bytes(e.key), "little") for e in bk.e], k, sg)
        assert (w >= 0) == (k in added)
        want.append((w, *added[k]) if w >= 0 else (-2,))
    assert max(x[0] for x in want) == 15          # a hit in the last way
    return queries, want


def _held(sw, i: int, held: bool) -> None:
    b = bucket(sw, i)
    b.seq += 1 if held else -1
    sw.maps.efdb.update(i, b)


def check_probes(sw, seed: int, ops: list[int], calls=None) -> None:
    """Each op answers every query of a seeded table as the table says; a held bucket (odd
    seqcount) answers -EBUSY for its keys only. calls(): the module's enetstl_bt_find count,
    which must grow by one per FIND query and not at all for FIND_BPF."""
    from nf.bench.scale import Batch
    from nf.nfs.l2_switch import OP_FIND
    b = Batch(sw.obj.program("xdp_l2sw_fdb_batch"), sw.obj.map("fdb_batch"))
    try:
        queries, want = seeded_table(sw, b, seed)
        for op in ops:
            before = calls() if calls else 0
            assert _find(b, op, queries) == want, op
            if calls:
                assert calls() - before == (len(queries) if op == OP_FIND else 0), op
        nb = sw.maps.efdb.map.max_entries
        held = seed % nb
        _held(sw, held, True)
        busy = [(-16,) if key_hash_kw(k) % nb == held else w for k, w in zip(queries, want)]
        for op in ops:
            assert _find(b, op, queries) == busy, op
        _held(sw, held, False)
    finally:
        b.close()


def key_hash_kw(kw: int) -> int:
    kb = kw.to_bytes(8, "little")
    return efdb_hash(kb[:6], int.from_bytes(kb[6:], "little"), SEED)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bpf_probe_answers_as_the_table_holds(seed):
    """Host (no module): FIND and FIND_BPF are both the BPF probe."""
    from nf.nfs.l2_switch import OP_FIND, OP_FIND_BPF
    with SwitchSim(PORTS, fdb_size=256, variant=Variant.enetstl, seed=SEED) as sw:
        check_probes(sw, seed, [OP_FIND, OP_FIND_BPF])


@pytest.mark.vm
@pytest.mark.parametrize("seed", [1, 2])
def test_bt_find_answers_as_the_bpf_probe(enetstl, seed):
    """Guest: FIND is one enetstl_bt_find call per key (the module counts them; the program
    holds the call), FIND_BPF the BPF probe; both answer as the table holds."""
    from nf import kmod
    from nf.nfs.l2_switch import OP_FIND, OP_FIND_BPF
    with SwitchSim(PORTS, fdb_size=256, variant=Variant.enetstl, seed=SEED) as sw:
        xl = subprocess.run(["bpftool", "prog", "dump", "xlated", "id", str(sw.ingress.id)],
                            capture_output=True, text=True, timeout=120, check=True).stdout
        assert "call enetstl_bt_find" in xl             # the datapath's lookup, too
        check_probes(sw, seed, [OP_FIND_BPF, OP_FIND], lambda: kmod.counters()["bt_find_calls"])


def read_while_writing(sw, op: int, seconds: float) -> dict:
    """One CPU deletes MAC A and adds it back through the control path (the writers' protocol),
    with two values X and Y in turn, while the other looks A up, and B of the same bucket, with
    `op`, 4,096 lookups per batch run, for `seconds`. Every answer for A must be X or Y whole,
    absent, or -EBUSY (a writer kept the bucket busy through the tries), never a mix or a
    cleared entry; B's never changes. (A probe without the seqcount checks fails here within
    about a second on the host: it copies entries the writer is clearing.)"""
    import numpy as np

    from nf.bench.scale import Batch
    from nf.nfs.l2_switch import OP_ADD, OP_DEL, FdbReq
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two CPUs")
    cpus = sorted(os.sched_getaffinity(0))[:2]
    bmac, a = same_bucket(2, bucket=1, buckets=sw.maps.efdb.map.max_entries)
    sw.maps.fdb_add(bmac, 10, "p2", now=T0)
    vals = {(P4, 3, 1, T0 + 1), (P5, 4, 1, T0 + 2)}
    reqs = []
    for x, i, f, t in sorted(vals):
        reqs += [bytes(FdbReq(op=OP_ADD, key=fdb_key(a, 10), ifindex=x, idx=i, flags=f, now_ns=t)),
                 bytes(FdbReq(op=OP_DEL, key=fdb_key(a, 10)))]
    assert sw.maps.ctl.test_run(reqs[0]).retval == 2          # A holds X before the writer starts
    batch = Batch(sw.obj.program("xdp_l2sw_fdb_batch"), sw.obj.map("fdb_batch"))
    n = 4096
    way_a, want_b = _find(batch, op, [_kw(a, 10), _kw(bmac, 10)])
    rows = np.zeros((n, batch.rows.shape[1]), np.uint8)
    rows[:, 0:4] = np.frombuffer(np.uint32(op).tobytes(), np.uint8)
    rows[0::2, 8:16] = np.frombuffer(np.uint64(_kw(a, 10)).tobytes(), np.uint8)
    rows[1::2, 8:16] = np.frombuffer(np.uint64(_kw(bmac, 10)).tobytes(), np.uint8)
    stop, errors = threading.Event(), []
    seen = {"busy": 0, "absent": 0, "values": set()}

    def writer():
        try:
            os.sched_setaffinity(0, {cpus[0]})
            while not stop.is_set():
                for r in reqs:
                    sw.maps.ctl.test_run(r)
        except Exception as e:                    # pragma: no cover - reported below
            errors.append(e)

    t = threading.Thread(target=writer)
    t.start()
    try:
        os.sched_setaffinity(0, {cpus[1]})
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            batch.rows[:n] = rows
            batch.run(n)
            got = batch.rows[:n].copy()
            ret = got[:, 4:8].view(np.int32).ravel()
            val = got[:, 16:32]
            busy = ret == -16
            seen["busy"] += int(busy.sum())
            seen["absent"] += int((ret[0::2] == -2).sum())
            ok_b = ~busy[1::2]
            assert (ret[1::2][ok_b] == want_b[0]).all()
            bv = np.frombuffer(struct.pack("<IHHQ", *want_b[1:]), np.uint8)
            assert (val[1::2][ok_b] == bv).all()
            ok_a = ret[0::2] >= 0
            assert set(ret[0::2][~ok_a].tolist()) <= {-2, -16}
            assert (ret[0::2][ok_a] == way_a[0]).all()
            for u in np.unique(val[0::2][ok_a], axis=0):
                x = struct.unpack("<IHHQ", u.tobytes())
                assert x in vals, x                    # one write's values, whole
                seen["values"].add(x)
    finally:
        stop.set()
        t.join(timeout=60)
        batch.close()
        os.sched_setaffinity(0, set(cpus))
    assert not errors and not t.is_alive()
    assert seen["values"] == vals               # the writer changed A while it was read
    return seen


def test_bpf_probe_never_reads_a_torn_entry(sw):
    from nf.nfs.l2_switch import OP_FIND_BPF
    read_while_writing(sw, OP_FIND_BPF, 3)


@pytest.mark.vm
def test_bt_find_never_reads_a_torn_entry(enetstl):
    from nf.nfs.l2_switch import OP_FIND, OP_FIND_BPF
    with SwitchSim(PORTS, fdb_size=64, variant=Variant.enetstl, seed=SEED) as sw:
        read_while_writing(sw, OP_FIND, 12)
        read_while_writing(sw, OP_FIND_BPF, 3)


@pytest.mark.parametrize("variant", [Variant.pure, Variant.enetstl])
def test_fdb_batch_finds_what_the_datapath_learned(variant):
    """xdp_l2sw_fdb_batch (the benchmark's and bulk loads' path): FIND answers as the datapath's
    lookup (the eNetSTL table: the way, and the whole value), ADD (eNetSTL only) places entries
    as the control program does."""
    import numpy as np

    from nf.bench.scale import Batch, _fdb_rows
    from nf.nfs.l2_switch import FDB_STATIC, OP_FIND
    with SwitchSim(PORTS, fdb_size=64, variant=variant, seed=SEED) as s:
        learned = [f"02:00:00:00:05:{i:02x}" for i in range(10)]
        for m in learned:
            s.receive(frame(src=m), P2, T0)
        word = [int.from_bytes(bytes.fromhex(m.replace(":", "")) + struct.pack("<H", 10), "little")
                for m in learned + ["02:00:00:00:06:01"]]
        b = Batch(s.obj.program("xdp_l2sw_fdb_batch"), s.obj.map("fdb_batch"))
        try:
            rows = _fdb_rows(np.array(word, np.uint64), OP_FIND)
            b.rows[:len(rows)] = rows
            b.run(len(rows))
            got = b.rows[:len(rows)].copy().view(np.int32)
            if variant == Variant.enetstl:      # ret: the way the key sits in
                ways = [next(w for w in range(16) if bk.sig[w] and bytes(bk.e[w].key.mac).hex() == m.replace(":", ""))
                        for m in learned for bk in [bucket(s, key_hash(m, 10) % 8)]]
                assert max(ways) > 0                                # not all in way 0
            else:
                ways = [0] * 10
            assert got[:, 1].tolist() == ways + [-2]                # -ENOENT
            assert got[:, 4].tolist() == [P2] * 10 + [0]            # ifindex
            assert got[:10, 5].tolist() == [1 | 0 << 16] * 10       # idx 1 (p2), flags 0
            assert got[:10].view(np.uint64)[:, 3].tolist() == [T0] * 10   # now_ns: the entry's ts
            adds = _fdb_rows(np.array(word[10:], np.uint64), 1, P1, FDB_STATIC)
            b.rows[:1] = adds
            b.run(1)
            ret = int(b.rows[0, 4:8].copy().view(np.int32)[0])
        finally:
            b.close()
        if variant == Variant.enetstl:
            assert ret == 0 and ("02:00:00:00:06:01", 10, P1) in {(e.mac, e.vlan, e.ifindex) for e in s.maps.fdb(now=T0)}
        else:
            assert ret == -95      # the hash map is written by the controller, not the batch
