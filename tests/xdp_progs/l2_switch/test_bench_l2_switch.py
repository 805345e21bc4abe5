"""Benchmark (not a timed test; `pytest -m bench`): live frames through the pure-eBPF switch on a
4-host lab, one CPU running generator + switch + receiver, vs the plain forwarder of
traffic/fwd.bpf.c (a devmap redirect with a MAC rewrite: the ceiling) and the Linux bridge.
Prints Mpps; numbers go to xdp_progs/l2_switch/NOTES.md."""
from __future__ import annotations

import contextlib
import os
import time
import statistics

import pytest

from nf.config import validate
from nf.config.l2_switch import L2SwitchConfig
from nf.net.lab import LabSpec
from nf.nfs.l2_switch import L2Switch
from traffic.livegen import Fwd, LiveGen, RxCounter

N = 500_000
ROUNDS = 5


def frame(dst: str, src: str, vid: int | None = None, size: int = 64) -> bytes:
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Dot1Q, Ether

    e = Ether(dst=dst, src=src)
    if vid is not None:
        e = e / Dot1Q(vlan=vid)
    b = bytes(e / IP(src="10.0.0.1", dst="10.0.0.2", ttl=64) / UDP(sport=9, dport=9))
    return b.ljust(size, b"\0")


def run(lab, frames, sinks=("h2", "h3", "h4"), lossless: bool = True) -> float:
    """Median Mpps counted at h2; every other host also drops what it gets in native XDP, so a
    flooded copy costs the same everywhere (no trip up a host's stack)."""
    tx = lab.host("h1")
    with contextlib.ExitStack() as es:
        rxs = {h: es.enter_context(RxCounter(lab.host(h).netns, lab.host(h).ifname)) for h in sinks}
        gen = es.enter_context(LiveGen(tx.netns, tx.ifname, frames))
        gen.run(50_000, cpu=0, rx=rxs["h2"])  # warm-up
        res = [gen.run(N, cpu=0, rx=rxs["h2"]) for _ in range(ROUNDS)]
    if lossless:  # XDP paths deliver every frame; the bridge's backlog may drop some
        assert all(r.received == r.generated == N for r in res), [str(r) for r in res]
    return statistics.median(r.mpps for r in res)


def bridge(lab, up: bool) -> None:
    """A Linux bridge over the dut ports (the baseline a user would pick instead)."""
    from pyroute2 import IPRoute
    from nf.net.netns import enter

    with enter(lab.dut), IPRoute() as ipr:
        if up:
            ipr.link("add", ifname="br0", kind="bridge")
            br = ipr.link_lookup(ifname="br0")[0]
            for p in lab.ports:
                ipr.link("set", index=ipr.link_lookup(ifname=p)[0], master=br)
            ipr.link("set", index=br, state="up")
        else:
            ipr.link("del", index=ipr.link_lookup(ifname="br0")[0])


@pytest.mark.bench
@pytest.mark.netns
def test_bench_switch_vs_forwarder(make_lab):
    lab = make_lab(LabSpec.switch(4))
    h1, h2 = lab.host("h1").mac, lab.host("h2").mac
    out = {}
    with Fwd(lab.dut, "p1", "p2", h2, lab.host("h1").port_mac):
        out["ceiling: devmap redirect (traffic/fwd)"] = run(lab, [frame(h2, h1)])
    access = [{"name": f"p{i}", "vlan": 10} for i in range(1, 5)]
    trunk = [{"name": f"p{i}", "mode": "trunk", "vlans": [10]} for i in range(1, 5)]
    for name, ports, vid, variant in [
        ("access ports", access, None, "pure"),
        ("trunk ports (tagged)", trunk, 10, "pure"),
        ("access ports, eNetSTL table (host: no module, BPF CRC + SWAR)", access, None, "enetstl"),
    ]:
        cfg = validate({"name": f"bench{os.getpid()}", "netns": lab.dut, "attach": "native",
                        "variant": variant, "ports": ports}, L2SwitchConfig)
        with L2Switch(cfg) as sw:
            sw.up()
            lab.send("h2", [frame("ff:ff:ff:ff:ff:ff", h2, vid)])   # learn h2
            assert any(e.mac == h2 for e in sw.fdb())
            out[f"switch known unicast, {name}"] = run(lab, [frame(h2, h1, vid)])
            out[f"switch flood to 3 ports, {name} (counted at one)"] = run(lab, [frame("ff:ff:ff:ff:ff:ff", h1, vid)])
    bridge(lab, True)
    try:
        time.sleep(0.2)
        lab.send("h2", [frame("ff:ff:ff:ff:ff:ff", h2)])             # the bridge learns h2
        time.sleep(0.1)
        out["Linux bridge known unicast"] = run(lab, [frame(h2, h1)], lossless=False)
        out["Linux bridge flood to 3 ports (counted at one)"] = run(lab, [frame("ff:ff:ff:ff:ff:ff", h1)],
                                                                     lossless=False)
    finally:
        bridge(lab, False)
    for k, v in out.items():
        print(f"{v:6.2f} Mpps  {k}")
