"""Benchmark (not a timed test; `pytest -m bench`): live frames through the pure-eBPF switch on a
4-host lab, one CPU running generator + switch + receiver, vs the plain forwarder of
traffic/fwd.bpf.c (a devmap redirect with a MAC rewrite: the ceiling) and the Linux bridge.
The measuring code is nf/bench/l2_switch.py (`lab_mpps`, shared with `nf bench`). Prints Mpps;
numbers go to xdp_progs/l2_switch/NOTES.md."""
from __future__ import annotations

import pytest

from nf.bench.l2_switch import BRIDGE_FLOOD, BRIDGE_UNICAST, CEILING, lab_mpps
from nf.net.lab import LabSpec


@pytest.mark.bench
@pytest.mark.netns
def test_bench_switch_vs_forwarder(make_lab):
    out = lab_mpps(make_lab(LabSpec.switch(4)))
    for k, v in out.items():
        print(f"{v:6.2f} Mpps  {k}")
    assert {CEILING, BRIDGE_UNICAST, BRIDGE_FLOOD, "switch known unicast, access ports",
            "switch flood to 3 ports, access ports (counted at one)"} <= set(out)
    assert all(v > 0 for v in out.values())
