"""nf/bench/<nf>.py: the measuring modules shared by `nf bench` and the @bench tests build what
they claim (frames, configs, populated tables, redirected forward paths) — checked here without
timing anything."""
from __future__ import annotations

import os

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether

from nf.bench import l2_switch, router, sketch
from nf.testing.tiers import require
from traffic.flows import uniform


@pytest.mark.parametrize("ipv6", [False, True])
def test_sketch_frames_carry_their_flows(ipv6):
    frames = sketch.frames(8, ipv6=ipv6)
    flows = uniform(8, 0, seed=1, protos=(17,), ipv6=ipv6).flows
    assert len(frames) == 8 and len(set(frames)) == 8
    for b, f in zip(frames, flows):
        assert len(b) == (60 if not ipv6 else 62)     # 54-byte IPv6/UDP header + 8 payload
        p = Ether(b)
        l3 = p[IPv6] if ipv6 else p[IP]
        assert (l3.src, l3.dst, p[UDP].sport, p[UDP].dport) == (f.src, f.dst, f.sport, f.dport)
        assert p[UDP].len == len(b) - (54 if ipv6 else 34)


def test_sketch_cfg():
    c = sketch.cfg("pure", 8)
    assert (c.depth, c.width) == (8, sketch.WIDTH)
    assert sketch.DEPTHS == (1, 2, 4, 8, 16)


def test_switch_frame_and_mac():
    f = l2_switch.frame(l2_switch.mac(0x012345), l2_switch.BROADCAST)
    assert len(f) == 64
    p = Ether(f)
    assert p.dst == "02:00:10:01:23:45" and p.src == "ff:ff:ff:ff:ff:ff"
    assert p[Dot1Q].vlan == 10 and p[Dot1Q].type == 0x0800


def test_switch_fill_learns_every_mac():
    require(os.geteuid() == 0, "needs root (BPF)")
    from nf.config.l2_switch import Variant
    from nf.nfs.l2_switch import SwitchSim
    with SwitchSim(l2_switch.ports(), fdb_size=1024, variant=Variant.pure) as sw:
        l2_switch.fill(sw, 200)
        fdb = sw.maps.fdb(now=10**12)
        assert len(fdb) == 201
        assert sw.ingress.test_run(l2_switch.frame(l2_switch.mac(7), l2_switch.mac(200))).retval == 4


def test_router_bench_paths_redirect():
    require(os.geteuid() == 0, "needs root (BPF)")
    r = router.bench_router("dir")
    try:
        p = r.obj.program("xdp_router")
        for name in router.BENCH_DESTS:
            assert router.forward_ns(p, name, repeat=10, rounds=3) > 0
        with pytest.raises(ValueError, match="probe map holds"):
            router.time_probes(r, [1] * (65536 + 1), 4)
    finally:
        r.close()
    frame = Ether(router.bench_frame("v6 /48"))
    assert frame[IPv6].hlim == 255 and frame[IPv6].dst == "2001:db8:77::1"


def test_router_bench_frame_unknown_name():
    with pytest.raises(KeyError):
        router.bench_frame("v5 /8")
