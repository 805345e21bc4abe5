"""The base program attached natively to a dut port of a lab (issue 2, done-when): scapy frames
sent from a host are counted per CPU, and the per-CPU counts sum to exactly what was sent."""
import ctypes
import os

import pytest

from nf.bpf import XdpMode
from nf.datapath import BaseCfg, NfStats, Reason, XdpAction, load_base
from nf.net import LabSpec
from traffic import packets

pytestmark = pytest.mark.netns

N = 1009  # prime: no batch size or per-CPU split can divide it evenly by accident


def _frames(h1, h2):
    kinds = [dict(l3="ipv4", l4="udp"), dict(l3="ipv4", l4="tcp"), dict(l3="ipv4", l4="icmp"),
             dict(l3="ipv4", l4="udp", vlans=[10]), dict(l3="ipv4", l4="udp", vlans=[100, 20])]
    out = []
    for i in range(N):
        kw = dict(kinds[i % len(kinds)])
        dport = 9 if i % 7 == 0 else 1000 + i  # every 7th frame hits the drop rule
        out.append(packets.frame(**kw, smac=h1.mac, dmac=h2.mac, src=h1.ip4, dst=h2.ip4,
                                 dport=dport, icmp_seq=i, size=60 + i % 64))
    return out


def test_scapy_frames_counted_per_cpu_and_summed(make_lab):
    lab = make_lab(LabSpec.switch(2))
    h1, h2 = lab.host("h1"), lab.host("h2")
    frames = _frames(h1, h2)
    n_drop = sum(1 for i in range(N) if i % 7 == 0 and i % 5 != 2)  # ICMP has no dport
    cpus = sorted(os.sched_getaffinity(0))
    with load_base(BaseCfg.make(action=XdpAction.PASS, drop_dports=[9])) as base:
        with lab.enter("dut"):
            link = base.program("xdp_base").attach_xdp(h1.port_ifindex, XdpMode.NATIVE)
        try:
            # Send from each CPU in turn: veth runs the peer's XDP in NAPI on the sending CPU,
            # so the per-CPU records split the traffic and the sum must still be exact.
            saved = os.sched_getaffinity(0)
            split = [frames[i::len(cpus)] for i in range(len(cpus))]
            try:
                for cpu, part in zip(cpus, split):
                    os.sched_setaffinity(0, {cpu})
                    assert lab.send("h1", part) == len(part)
            finally:
                os.sched_setaffinity(0, saved)
            stats = base.map("base_stats").typed(ctypes.c_uint32, NfStats)
            per_cpu = stats.lookup_percpu(0)
        finally:
            link.detach()
    totals = [sum(rec.packets) for rec in per_cpu]
    print(f"\nper-CPU frame counts: {totals}")
    assert sum(totals) == N
    assert sum(rec.packets[XdpAction.DROP] for rec in per_cpu) == n_drop
    assert sum(rec.packets[XdpAction.PASS] for rec in per_cpu) == N - n_drop
    assert sum(rec.reasons[Reason.CONFIG] for rec in per_cpu) == n_drop
    assert sum(sum(rec.bytes) for rec in per_cpu) == sum(len(f) for f in frames)
    if len(cpus) > 1:
        assert sum(1 for t in totals if t) >= 2  # really counted on more than one CPU
