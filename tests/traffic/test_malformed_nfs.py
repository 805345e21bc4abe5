"""The malformed set (traffic/generators.malformed_set) through every NF with BPF_PROG_TEST_RUN:
no crash, no misforward, drops counted — each NF against its own Python reference model, because
"misforward" is per NF (the switch legitimately forwards frames whose IP header is broken; the
router never forwards a broken L2/L3 header, but routes on L3 alone; the sketch passes everything and counts only what parses; the
flow table drops what does not parse and learns only well-formed flows).

Frames shorter than 14 bytes are left out (test_run refuses them, as every NIC does). Frames above
the veth XDP size limit are kept: a program that is not frags-aware sees their first
VETH_XDP_MAX_FRAME bytes, and so does each model here.
"""
from __future__ import annotations

import collections
import dataclasses
import importlib.util
import ipaddress
import os
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from nf.datapath import PktFlag, Reason, XdpAction
from traffic import generators as g

REPO = Path(__file__).resolve().parents[2]
MALFORMED = [m for m in g.malformed_set() if m.xdp_ok]
IDS = [m.name for m in MALFORMED]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="loading BPF needs root")


def _load(rel: str, name: str):
    path = REPO / rel
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def parse(frame: bytes) -> dict:
    """parse.h's verdict on the part of the frame an XDP program sees (the parse model of
    tests/xdp_progs/base, an oracle independent of the C code)."""
    model = _load("tests/xdp_progs/base/parse_model.py", "_pm_malformed").model
    return model(frame[:g.VETH_XDP_MAX_FRAME])


def seen(frame: bytes) -> bytes:
    return frame[:g.VETH_XDP_MAX_FRAME]


def reasons_delta(before, after) -> dict[str, int]:
    out = {}
    for i in range(len(after.reasons)):
        d = after.reasons[i] - before.reasons[i]
        if d:
            out[Reason(i).name.lower() if i in Reason._value2member_map_ else f"nf{i}"] = d
    return out


def test_the_set_exercises_every_parse_outcome():
    rcs = collections.Counter(parse(m.frame)["rc"] for m in MALFORMED)
    assert {Reason.NONE, Reason.TRUNCATED, Reason.MALFORMED, Reason.TOO_DEEP} <= set(rcs)
    assert len(MALFORMED) >= 50


# ---- L2 switch: forwards on L2 alone; the model decides every frame ---------------------------
SW_PORTS = [  # ifindex, idx, mode, pvid, tagged, learning
    (11, 0, 0, 10, (), True),          # access VLAN 10
    (12, 1, 0, 10, (), True),          # access VLAN 10 (where the frames' destination lives)
    (13, 2, 0, 20, (), True),          # access VLAN 20
    (14, 3, 1, 30, (10, 20), True),    # trunk, native 30
]


@pytest.mark.parametrize("variant", ["pure", "enetstl"])
def test_switch(variant):
    from nf.config.l2_switch import Variant
    from nf.models.l2_switch import ACT_DROP, PortModel, SwitchModel
    from nf.nfs.l2_switch import PortPlan, SwitchSim, efdb_buckets, mac_bytes

    v = Variant(variant)
    size = 1024
    if v == Variant.enetstl:
        model = SwitchModel([PortModel(*p[:3], p[3], frozenset(p[4]), p[5]) for p in SW_PORTS],
                            buckets=efdb_buckets(size))
    else:
        model = SwitchModel([PortModel(*p[:3], p[3], frozenset(p[4]), p[5]) for p in SW_PORTS],
                            fdb_size=size)
    now = 10**12
    dst = mac_bytes(g.MACS["dst"])
    learn = b"\xff" * 6 + dst + b"\x08\x00" + bytes(46)   # the destination MAC speaks on p12
    verdicts = collections.Counter()
    with SwitchSim([PortPlan(f"p{p[0]}", *p[:3], p[3], frozenset(p[4]), p[5]) for p in SW_PORTS],
                   fdb_size=size, variant=v) as sim:
        model.seed = sim.seed         # the model places keys by the table's own (drawn) key
        assert sim.receive(learn, 12, now).action == model.receive(learn, 12, now).action
        for ingress in (11, 14):
            for m in MALFORMED:
                f = seen(m.frame)
                want = model.receive(f, ingress, now)
                got = sim.receive(f, ingress, now)
                ctx = f"{m.name} on port {ingress}"
                assert got.action == want.action, ctx
                assert got.verdict == (XdpAction.DROP if want.action == ACT_DROP else XdpAction.REDIRECT), ctx
                if want.action != ACT_DROP:
                    assert (got.vid, got.wire, got.out) == (want.vid, want.wire, want.out), ctx
                verdicts[want.action] += 1
        fdb = {(mac_bytes(e.mac), e.vlan): e.ifindex for e in sim.maps.fdb(now=now)}
        assert fdb == {k: e.ifindex for k, e in model.fdb.items()}
        stats = sim.maps.stats()
        for p in SW_PORTS:
            assert stats[f"p{p[0]}"] == model.stats[p[0]], f"port {p[0]}"
    # both outcomes happen: frames with a bad IP header are switched, bad L2 is dropped
    assert verdicts[ACT_DROP] > 0 and sum(verdicts.values()) - verdicts[ACT_DROP] > 0


# ---- router: never forwards a defective frame; byte-exact against the model ------------------
ROUTED_ANYWAY = {"ipv6.hbh_order", "ipv6.ext_depth"}   # extension-chain defects (RFC 8200 4)


@pytest.fixture(scope="module", params=["dir", "trie"])
def router(request):
    rt = _load("tests/xdp_progs/router/router_topo.py", "_rt_malformed")
    r = rt.make_router(request.param)
    yield r, rt
    r.close()


def _routed(m: g.Malformed) -> g.Malformed:
    """The same defect addressed to a routed destination with a resolved next hop (the set's
    own 10.0.0.2 / fd00::2 are a neighbour miss / unrouted here): a frame the router wrongly
    accepted would now be forwarded. Untagged IPv4 frames get 192.168.1.1 and their header
    checksum recomputed; IPv6 frames 2001:db8:99::1."""
    f = m.frame
    if f[12:14] == b"\x08\x00" and len(f) >= 34:
        f = g._ipv4_fix_csum(f[:30] + bytes([192, 168, 1, 1]) + f[34:], 14)
    elif f[12:14] == b"\x86\xdd" and len(f) >= 54:
        f = f[:38] + ipaddress.ip_address("2001:db8:99::1").packed + f[54:]
    else:
        return m
    return dataclasses.replace(m, frame=f)


def _from_h0(m: g.Malformed) -> g.Malformed:
    """The same defect sent by h0 (10.0.0.5 / 2001:db8::5, whose MAC the frames carry): the set's
    own source 10.0.0.1 is the router's p0 address in this topology, a martian the router drops
    first (as Linux does), and fd00::1 has no route back for an ICMP error. The IPv4 header
    checksum is adjusted (RFC 1624), not recomputed, so a wrong one stays wrong."""
    f = m.frame
    if f[12:14] == b"\x08\x00" and len(f) >= 34 and f[26:30] == bytes([10, 0, 0, 1]):
        hc = struct.unpack("!H", f[24:26])[0]
        s = (~hc & 0xFFFF) + (~1 & 0xFFFF) + 5            # the word 0x0001 becomes 0x0005
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        f = f[:24] + struct.pack("!H", ~s & 0xFFFF) + f[26:29] + b"\x05" + f[30:]
    elif f[12:14] == b"\x86\xdd" and len(f) >= 54 and f[22:38] == ipaddress.ip_address("fd00::1").packed:
        f = f[:22] + ipaddress.ip_address("2001:db8::5").packed + f[38:]
    return dataclasses.replace(m, frame=f)


@pytest.mark.parametrize("routed", [False, True], ids=["as_generated", "to_routed_dst"])
def test_router(router, routed):
    r, rt = router
    from nf.datapath import read_stats
    frames = [m for m in g.malformed_set(smac=rt.H0_MAC, dmac=rt.MAC_P0) if m.xdp_ok]
    assert [m.name for m in frames] == IDS
    frames = [_from_h0(m) for m in frames]
    if routed:
        frames = [_routed(m) for m in frames]
    model = rt.model_of(r)
    before = read_stats(r.obj, "rt_stats")
    want, dropped = collections.Counter(), collections.Counter()
    for m in frames:
        verdict, out = r.run(m.frame)
        mv, mout, _ = model.process(seen(m.frame), 1)
        assert verdict == mv, f"{m.name}: verdict {verdict}, model says {mv}"
        if len(m.frame) <= g.VETH_XDP_MAX_FRAME:
            assert out == mout, f"{m.name}: bytes differ from the model"
        rc = parse(m.frame)["rc"]
        if rc != Reason.NONE and m.layer in ("l2", "l3") and m.check not in ROUTED_ANYWAY:
            # a broken L2 or IP header is never forwarded nor answered: dropped, or (VLAN-tagged,
            # not IP to this router) left to the kernel. A router routes on the fixed IP header:
            # a frame whose defect is in L4 or deeper in the IPv6 extension chain may be
            # forwarded or get an ICMP error, exactly as the model says (checked above).
            assert verdict in (XdpAction.DROP, XdpAction.PASS), f"{m.name}: verdict {verdict}"
        if rc != Reason.NONE and verdict == XdpAction.DROP:
            dropped[Reason(rc).name.lower()] += 1
        want[verdict] += 1
    after = read_stats(r.obj, "rt_stats")
    for action, n in want.items():
        assert after.packets[action] - before.packets[action] == n, XdpAction(action).name
    # every dropped defect is counted as a defect (the router validates IPv4 itself and files
    # most bad headers as "malformed" where parse.h says "truncated": the total is what matches)
    d = reasons_delta(before, after)
    assert d.get("truncated", 0) + d.get("malformed", 0) + d.get("too_deep", 0) == sum(dropped.values())
    assert sum(dropped.values()) >= 20
    # both kinds of outcome happen: fragments and L4-only defects are routed (or answered)
    assert want[XdpAction.REDIRECT if routed else XdpAction.TX] > 0


# ---- sketch: monitor mode passes everything, counts exactly the frames that parse ------------
def _key5(frame: bytes, pm: dict) -> bytes | None:
    from nf.models.sketch import flow_key
    if not pm["flags"] & (PktFlag.IPV4 | PktFlag.IPV6):
        return None
    o = pm["l3_off"]
    if pm["flags"] & PktFlag.IPV4:
        src, dst = ipaddress.ip_address(frame[o + 12:o + 16]), ipaddress.ip_address(frame[o + 16:o + 20])
    else:
        src, dst = ipaddress.ip_address(frame[o + 8:o + 24]), ipaddress.ip_address(frame[o + 24:o + 40])
    return flow_key("five_tuple", src=src, dst=dst, sport=pm["sport"], dport=pm["dport"],
                    proto=pm["l4_proto"])


def test_sketch():
    from nf.config import validate
    from nf.config.sketch import SketchConfig
    from nf.models.sketch import CountMin
    from nf.nfs.sketch import Sketch

    cfg = validate({"variant": "pure", "depth": 4, "width": 256, "seed": 77,
                    "threshold": {"absolute": (1 << 32) - 1}}, SketchConfig)
    ref = CountMin(4, 256, seed=77)
    errs = collections.Counter()
    with Sketch(cfg).load() as sk:
        for m in MALFORMED:
            assert sk.program.test_run(m.frame).retval == XdpAction.PASS, m.name
            pm = parse(m.frame)
            if pm["rc"] != Reason.NONE:
                errs[Reason(pm["rc"]).name.lower()] += 1
                continue
            ref.add(_key5(seen(m.frame), pm))
        snap = sk.snapshot()
        assert np.array_equal(snap.table, np.array(ref.table, dtype=np.uint64))
        assert snap.packets == ref.total == len(MALFORMED) - sum(errs.values()) > 0
        st = sk.stats()
        assert st.packets[XdpAction.PASS] == len(MALFORMED) and st.packets[XdpAction.DROP] == 0
        d = {Reason(i).name.lower(): st.reasons[i] for i in (Reason.TRUNCATED, Reason.MALFORMED,
                                                             Reason.TOO_DEEP) if st.reasons[i]}
        assert d == dict(errs)


# ---- flow table: drops what does not parse, learns exactly the model's flows -----------------
def test_flow_table():
    from nf.models.flow_table import CuckooModel, Rc, n_buckets_for
    from nf.nfs.flow_table import FlowTable

    with FlowTable(size=1024, variant="pure", learn=True, seed=0x5eed).load() as ft:
        model = CuckooModel(n_buckets_for(1024), seed=0x5eed)
        errs = collections.Counter()
        learned = collections.Counter()
        for m in MALFORMED:
            pm = parse(m.frame)
            got = ft.run(m.frame).retval
            if pm["rc"] != Reason.NONE:
                assert got == XdpAction.DROP, m.name
                errs[Reason(pm["rc"]).name.lower()] += 1
                continue
            assert got == XdpAction.PASS, m.name          # default action, learned or not
            key = _ft_key(seen(m.frame), pm)
            learned[key] += 1
            rc, _ = model.insert(key) if key not in model else (Rc.EXISTS, None)
            assert rc in (Rc.OK, Rc.EXISTS), m.name
        ents = {e.key: e.packets for e in ft.dump()}
        assert ents == dict(learned)
        assert set(ents) == set(model.items())
        st = ft.stats()
        assert st.packets[XdpAction.DROP] == sum(errs.values()) > 0
        assert st.packets[XdpAction.PASS] == sum(learned.values())
        d = {Reason(i).name.lower(): st.reasons[i] for i in (Reason.TRUNCATED, Reason.MALFORMED,
                                                             Reason.TOO_DEEP) if st.reasons[i]}
        assert d == dict(errs)
        met = ft.metrics()
        assert met["entries"] == len(learned) and met["insert_failures"] == 0


def _ft_key(frame: bytes, pm: dict) -> bytes:
    """The flow table's key of a frame that parsed: addresses from the IP header, ports only for
    TCP/UDP with an L4 header (nf.models.flow_table.flow_key packs struct ft_key)."""
    from nf.models.flow_table import flow_key
    o = pm["l3_off"]
    if pm["flags"] & PktFlag.IPV4:
        s, d = ipaddress.ip_address(frame[o + 12:o + 16]), ipaddress.ip_address(frame[o + 16:o + 20])
    else:
        s, d = ipaddress.ip_address(frame[o + 8:o + 24]), ipaddress.ip_address(frame[o + 24:o + 40])
    sp = dp = 0
    if pm["flags"] & PktFlag.L4 and pm["l4_proto"] in (6, 17):
        sp, dp = pm["sport"], pm["dport"]
    return flow_key(str(s), str(d), sp, dp, pm["l4_proto"])
