"""nf/models/l2_switch.py: the reference model, and the datapath checked against it on random
frame sequences (hypothesis) through BPF_PROG_TEST_RUN: per frame the verdict, VLAN, the tagged
frame between ingress and egress and the exact bytes per egress port; at the end the FDB and every
per-port counter."""
from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from nf.bpf import BpfError
from nf.models.l2_switch import (ACCESS, ACT_DROP, ACT_FLOOD, ACT_PASS, ACT_UNICAST, TRUNK,
                                 PortModel, SwitchModel, push_tag)
from nf.config.l2_switch import Variant
from nf.nfs.l2_switch import COUNTERS, PortPlan, SwitchSim, efdb_buckets, mac_bytes

PORTS = [  # ifindex, idx, mode, pvid, tagged, learning, untagged_only
    (11, 0, ACCESS, 10, (), True, False),
    (12, 1, ACCESS, 10, (), True, False),
    (13, 2, ACCESS, 20, (), True, False),
    (14, 3, TRUNK, 30, (10, 20), True, False),
    (15, 4, TRUNK, 0, (10,), True, False),
    (16, 5, ACCESS, 10, (), False, False),
    (17, 6, ACCESS, 20, (), True, True),
]
FDB_SEED = 0x2545F4914F6CDD1D   # the eNetSTL table's key in these runs: the model places keys by it too
MACS = [bytes([2, 0, 0, 0, 0, i]) for i in range(1, 7)]
SPECIAL_SRC = [b"\x01\x00\x5e\x00\x00\x01", bytes(6)]
RESERVED = [bytes.fromhex(f"0180c20000{x:02x}") for x in (0, 1, 2, 3, 0x0E, 0x0F)] + [
    bytes.fromhex("0180c2000010")]   # 10: just outside the reserved range
DSTS = MACS * 3 + [b"\xff" * 6, b"\x01\x00\x5e\x00\x00\x07", b"\x33\x33\x00\x00\x00\x01"] + RESERVED


def model_ports():
    return [PortModel(i, x, m, pv, frozenset(t), l, u) for i, x, m, pv, t, l, u in PORTS]


def sim_ports():
    return [PortPlan(f"p{i}", i, x, m, pv, frozenset(t), l, u) for i, x, m, pv, t, l, u in PORTS]


def build(dst: bytes, src: bytes, vid, prio: int, ethertype: int, payload: bytes, cut: int | None):
    b = dst + src
    if vid is not None:
        b += struct.pack("!HH", 0x8100, prio << 13 | vid)
    b += struct.pack("!H", ethertype) + payload
    if cut is not None:
        b = b[:max(14, cut)]
    return b


# Weighted so most frames are valid and get learned/forwarded; the rest hit every drop rule.
TRUNKS = {p[0] for p in PORTS if p[2] == TRUNK}
VIDS_ACCESS = [None] * 10 + [0, 10, 20, 4095]
VIDS_TRUNK = [None, None, 0, 10, 10, 20, 20, 30, 99, 4095]
frames = st.sampled_from([p[0] for p in PORTS] * 4 + [77]).flatmap(lambda port: st.tuples(
    st.just(port),                                            # ingress (77: not a port)
    st.sampled_from(MACS * 5 + SPECIAL_SRC),
    st.sampled_from(DSTS),
    st.sampled_from(VIDS_TRUNK if port in TRUNKS else VIDS_ACCESS),
    st.integers(0, 7),
    st.sampled_from([0x0800, 0x86DD, 0x0806, 0x88A8]),
    st.binary(min_size=0, max_size=40),
    st.sampled_from([None] * 15 + [14, 15, 16, 17, 18, 19, 20]),     # truncation
    st.sampled_from([0, 1, 10**6, 10**9, 3 * 10**9]),        # time step
))
control = st.one_of(
    st.tuples(st.just("aging"), st.sampled_from([0, 1, 2, 300])),
    st.tuples(st.just("static"), st.sampled_from(MACS[:3]), st.sampled_from([(10, 12), (20, 13), (10, 14)])),
    st.tuples(st.just("expire")),
)
# about one control event per ten frames
events = st.lists(st.integers(0, 9).flatmap(lambda i: control if i == 0 else frames),
                  min_size=5, max_size=60)


def check_against_model(evts, fdb_size, variant):
    """Run an event sequence through the datapath (test_run) and the model; compare everything."""
    # fdb_size 4 fills up (eNetSTL: one bucket of 16 ways, 4 entries); 64: 8 buckets
    buckets = efdb_buckets(fdb_size) if variant == Variant.enetstl else None
    model = SwitchModel(model_ports(), aging_ns=300 * 10**9, fdb_size=fdb_size, buckets=buckets,
                        seed=FDB_SEED)
    now = 10**12
    with SwitchSim(sim_ports(), aging_s=300, fdb_size=fdb_size, variant=variant,
                   seed=FDB_SEED) as sim:
        for n, ev in enumerate(evts):
            if ev[0] == "aging":
                sim.maps.set_aging(ev[1], now=now)
                model.set_aging(ev[1] * 10**9, now)
                continue
            if ev[0] == "static":
                mac, (vid, port) = ev[1], ev[2]
                if not model.add_static(mac, vid, port, now):
                    with pytest.raises(BpfError, match="E2BIG|ENOSPC"):   # full: refused, nothing changed
                        sim.maps.fdb_add(mac, vid, port, now=now)
                    continue
                sim.maps.fdb_add(mac, vid, port, now=now)
                continue
            if ev[0] == "expire":
                assert sim.maps.expire(now=now) == model.expire(now)
                continue
            port, src, dst, vid, prio, et, payload, cut, step = ev
            now += step
            f = build(dst, src, vid, prio, et, payload, cut)
            want = model.receive(f, port, now)
            got = sim.receive(f, port, now)
            ctx = f"event {n}: {f.hex()} on {port}"
            assert got.action == want.action, ctx
            assert got.verdict == {ACT_DROP: 1, ACT_PASS: 2}.get(want.action, 4), ctx
            if want.action not in (ACT_DROP, ACT_PASS):
                assert got.vid == want.vid, ctx
                assert got.wire == want.wire, ctx
                assert got.out == want.out, ctx
        fdb = {(e.mac, e.vlan): (e.ifindex, e.static) for e in sim.maps.fdb(now=now)}
        fdb = {(mac_bytes(m), v): x for (m, v), x in fdb.items()}
        assert fdb == {k: (e.ifindex, e.static) for k, e in model.fdb.items()}
        ts = {(mac_bytes(e.mac), e.vlan): e.age_s for e in sim.maps.fdb(now=now)}
        assert ts == {k: 0 if e.static else max(0, now - e.ts_ns) / 1e9 for k, e in model.fdb.items()}
        stats = sim.maps.stats()
        for i, *_ in PORTS:
            assert stats[f"p{i}"] == model.stats[i], f"port {i}"
        assert set(COUNTERS) == set(model.stats[11])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events, st.sampled_from([4, 64]))
def test_datapath_matches_model(evts, fdb_size):
    check_against_model(evts, fdb_size, Variant.pure)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events, st.sampled_from([4, 64]))
def test_enetstl_table_matches_model_without_module(evts, fdb_size):
    """The eNetSTL object on the host: bucketised table with the pure-eBPF CRC32-C and compare."""
    check_against_model(evts, fdb_size, Variant.enetstl)


@pytest.mark.vm
def test_enetstl_table_matches_model_with_kfuncs(enetstl):
    """In the guest with the module: the module's CRC32-C and SIMD compare must give the same
    table (same buckets, same ways) as the model. (@given inside: the vm proxy runs plain tests.)"""
    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(events, st.sampled_from([4, 64]))
    def run(evts, fdb_size):
        check_against_model(evts, fdb_size, Variant.enetstl)

    run()


# ---- the model on its own ---------------------------------------------------------------------
def test_model_flood_and_unicast():
    m = SwitchModel(model_ports())
    f = MACS[1] + MACS[0] + b"\x08\x00" + b"x" * 46
    r = m.receive(f, 11, 1)
    assert r.action == ACT_FLOOD and r.vid == 10 and r.wire == push_tag(f, 10)
    assert r.out == {12: f, 14: push_tag(f, 10), 15: push_tag(f, 10), 16: f}
    back = MACS[0] + MACS[1] + b"\x08\x00" + b"y" * 46
    r = m.receive(back, 12, 2)
    assert r.action == ACT_UNICAST and r.out == {11: back}
    assert m.fdb[(MACS[0], 10)].ifindex == 11 and m.fdb[(MACS[1], 10)].ifindex == 12
    assert m.stats[11]["learn"] == 1 and m.stats[12]["unicast"] == 1


def test_model_vlan_rules():
    m = SwitchModel(model_ports())
    tagged = MACS[1] + MACS[0] + struct.pack("!HH", 0x8100, 10) + b"\x08\x00" + b"z" * 46
    other = MACS[1] + MACS[0] + struct.pack("!HH", 0x8100, 20) + b"\x08\x00" + b"z" * 46
    assert m.receive(other, 11, 1).action == ACT_DROP            # another VLAN on access
    assert m.stats[11]["drop_vlan"] == 1
    assert m.receive(tagged, 11, 1).action == ACT_FLOOD          # its own VLAN, tagged
    assert m.receive(other, 17, 1).action == ACT_DROP            # ... on an untagged-only port
    assert m.receive(tagged, 15, 1).action == ACT_FLOOD          # allowed on trunk p5
    untagged = MACS[1] + MACS[0] + b"\x08\x00" + b"z" * 46
    assert m.receive(untagged, 15, 1).action == ACT_DROP         # p5 has no native VLAN
    assert m.egress(push_tag(untagged, 30), 14) == untagged      # native pops
    assert m.egress(push_tag(untagged, 20), 11) is None          # not a member


def test_model_static_and_aging():
    m = SwitchModel(model_ports(), aging_ns=10)
    m.add_static(MACS[0], 10, 12)
    f = MACS[3] + MACS[0] + b"\x08\x00"
    m.receive(f, 11, 5)
    assert m.fdb[(MACS[0], 10)].ifindex == 12 and m.stats[11]["move"] == 0
    m.receive(MACS[4] + MACS[3] + b"\x08\x00", 11, 5)
    probe = MACS[3] + MACS[4] + b"\x08\x00"
    assert m.receive(probe, 12, 15).action == ACT_UNICAST
    assert m.receive(probe, 12, 16).action == ACT_FLOOD           # older than 10 ns


def test_mac_parsing_helper():
    assert mac_bytes("02:00:00:00:00:0A") == bytes([2, 0, 0, 0, 0, 10])
