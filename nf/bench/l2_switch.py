"""The L2 switch's benchmarks (used by nf bench, nf/bench/guest.py and the @bench tests under
tests/xdp_progs/l2_switch/).

- test_run setup: two trunk ports carrying VLAN 10 (so test_run can repeat one tagged frame
  unchanged) and a populated FDB: `PORTS`, `frame`, `mac`, `fill`;
- lab: the switch on a 4-host lab vs the devmap-redirect forwarder of traffic/fwd.bpf.c (the
  ceiling), the bare hash-lookup redirect of traffic/l2fwd.bpf.c and the Linux bridge with
  bridge-nf-call off and at its default (on): `lab_cases`, `lab_rates` (nf/bench/lab.py).
"""
from __future__ import annotations

import contextlib
import os
import struct
import time


# ---- test_run setup ----------------------------------------------------------------------------


def ports():
    """p4 (ifindex 14) and p5 (ifindex 15), trunks of VLAN 10."""
    from nf.nfs.l2_switch import TRUNK, PortPlan
    return [PortPlan("p4", 14, 0, TRUNK, 0, frozenset({10}), True),
            PortPlan("p5", 15, 1, TRUNK, 0, frozenset({10}), True)]


def frame(dst: bytes, src: bytes) -> bytes:
    """A 64-byte frame tagged VLAN 10."""
    return dst + src + struct.pack("!HH", 0x8100, 10) + b"\x08\x00" + bytes(46)


def mac(i: int) -> bytes:
    return bytes([2, 0, 0x10, (i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF])


BROADCAST = b"\xff" * 6
# The eNetSTL FDB's key in every benchmark: a fixed placement (a destination's way moves its cost
# by 2 instructions per way), the one every run before the table was keyed had.
SEED = 0


def fill(sw, n_macs: int, now: int = 10**12) -> None:
    """On a SwitchSim over ports(): mac(0..n_macs-1) learned on p5 (ifindex 15), then the sender
    mac(n_macs) on p4 (ifindex 14). Time is pinned to `now` so nothing ages."""
    sw.set_ctl(ingress_ifindex=15, now_override=now)
    for i in range(n_macs):
        sw.ingress.test_run(frame(BROADCAST, mac(i)))
    got = len(sw.maps.fdb(now=now))
    if got != n_macs:
        raise RuntimeError(f"switch bench: {got} MACs learned of {n_macs}")
    sw.set_ctl(ingress_ifindex=14, now_override=now)
    sw.ingress.test_run(frame(BROADCAST, mac(n_macs)))


# ---- lab ---------------------------------------------------------------------------------------

SINKS = ("h2", "h3", "h4")
BARE = "bare hash-lookup redirect (traffic/l2fwd)"
UNICAST = "switch known unicast, access ports"
FLOOD = "switch flood to 3 ports, access ports (counted at one)"
BRIDGE_UNICAST = "Linux bridge known unicast"
BRIDGE_FLOOD = "Linux bridge flood to 3 ports (counted at one)"
NF_CALL_ON = ", bridge-nf-call on (the default)"
BRIDGE_NF_CALL = ("arptables", "iptables", "ip6tables")
CPU2_SRC = "02:00:00:00:01:01"   # the second CPU's sender: its own source MAC (its own FDB entry)


def lab_frame(dst: str, src: str, vid: int | None = None, size: int = 64) -> bytes:
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Dot1Q, Ether

    e = Ether(dst=dst, src=src)
    if vid is not None:
        e = e / Dot1Q(vlan=vid)
    b = bytes(e / IP(src="10.0.0.1", dst="10.0.0.2", ttl=64) / UDP(sport=9, dport=9))
    return b.ljust(size, b"\0")


def bridge_nf_call(lab, on: bool) -> None:
    """Set bridge-nf-call-{arp,ip,ip6}tables in the dut's netns (per netns; a new one starts
    at 1, the kernel default, where every bridged IPv4 frame walks the netfilter hooks)."""
    from nf.net.netns import enter

    with enter(lab.dut):
        for t in BRIDGE_NF_CALL:
            with open(f"/proc/sys/net/bridge/bridge-nf-call-{t}", "w") as f:
                f.write("1" if on else "0")


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


def lab_cases(lab, es=None, generator: str | None = None) -> dict:
    """Cases (nf.bench.lab.Case) on a LabSpec.switch(4, queues=2) lab, h1 sending to h2: the
    generator alone (DROP), the ceiling, the switch (access / trunk ports, pure and eNetSTL
    tables; known unicast and flood), the bare hash-lookup redirect and the Linux bridge with
    bridge-nf-call off and at its default (on). Known unicast of the pure switch and the
    ceiling also run on two CPUs, each CPU sending from its own source MAC."""
    from nf.bench.lab import CEILING, DROP, ONE, TWO, Case, drop_case
    from nf.config import validate
    from nf.config.l2_switch import L2SwitchConfig
    from nf.nfs.l2_switch import L2Switch
    from traffic.baselines import Fwd, L2Fwd

    bc = "ff:ff:ff:ff:ff:ff"
    h1, h2 = lab.host("h1").mac, lab.host("h2").mac

    def two(dst, vid=None):
        return [[lab_frame(dst, h1, vid)], [lab_frame(dst, CPU2_SRC, vid)]]

    @contextlib.contextmanager
    def switch(plist, vid, variant):
        cfg = validate({"name": f"bench{os.getpid()}", "netns": lab.dut, "attach": "native",
                        "variant": variant, "ports": plist}, L2SwitchConfig)
        with L2Switch(cfg) as sw:
            sw.up()
            lab.send("h2", [lab_frame(bc, h2, vid)])   # learn h2
            if not any(e.mac == h2 for e in sw.fdb()):
                raise RuntimeError(f"switch ({variant}, {plist[0]}) did not learn h2")
            yield

    @contextlib.contextmanager
    def linux_bridge(nf_call: bool):
        bridge(lab, True)
        try:
            bridge_nf_call(lab, nf_call)
            time.sleep(0.2)
            lab.send("h2", [lab_frame(bc, h2)])         # the bridge learns h2
            time.sleep(0.1)
            yield
        finally:
            bridge(lab, False)
            bridge_nf_call(lab, True)

    cases = {
        DROP: drop_case(lab, two(h2)),
        CEILING: Case(lambda: Fwd(lab.dut, "p1", "p2", h2, lab.host("h1").port_mac), two(h2),
                      cpu_sets=(ONE, TWO)),
        BARE: Case(lambda: L2Fwd(lab.dut, "p1", {h2: "p2", lab.host("h3").mac: "p3",
                                                  lab.host("h4").mac: "p4"}), two(h2)),
    }
    access = [{"name": f"p{i}", "vlan": 10} for i in range(1, 5)]
    trunk = [{"name": f"p{i}", "mode": "trunk", "vlans": [10]} for i in range(1, 5)]
    for name, plist, vid, variant in [
        ("access ports", access, None, "pure"),
        ("trunk ports (tagged)", trunk, 10, "pure"),
        ("access ports, eNetSTL table (host: no module, BPF CRC + SWAR)", access, None, "enetstl"),
    ]:
        setup = (lambda plist=plist, vid=vid, variant=variant: switch(plist, vid, variant))
        main = name == "access ports"
        cases[f"switch known unicast, {name}"] = Case(setup, two(h2, vid),
                                                      cpu_sets=(ONE, TWO) if main else (ONE,))
        cases[f"switch flood to 3 ports, {name} (counted at one)"] = Case(setup, [[lab_frame(bc, h1, vid)]])
    for on, suffix in ((False, ""), (True, NF_CALL_ON)):
        setup = (lambda on=on: linux_bridge(on))
        # the bridge's backlog may drop: counted, not required
        cases[BRIDGE_UNICAST + suffix] = Case(setup, [[lab_frame(h2, h1)]], None)
        cases[BRIDGE_FLOOD + suffix] = Case(setup, [[lab_frame(bc, h1)]], None)
    return cases


def lab_rates(n: int = 400_000, rounds: int = 5, generator: str | None = None):
    from nf.bench.lab import run
    from nf.net.lab import LabSpec
    return run(LabSpec.switch(4, queues=2), lab_cases, generator=generator, sinks=SINKS, n=n,
               rounds=rounds, warmup=50_000)
