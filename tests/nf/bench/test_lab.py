"""nf/bench/lab.py: the interleaved lab measurement (netns tier, tiny sizes: the mechanics, not
the rates) and, as benchmarks (`pytest -m bench`), every NF's lab cases of nf bench."""
from __future__ import annotations

import contextlib

import pytest

from nf.bench import lab as bl
from nf.net import LabSpec

pytestmark = pytest.mark.netns


def _cases(lab):
    f = bl.udp_flows(lab)
    h1 = lab.host("h1")
    from traffic.labgen import RxCounter
    return {bl.DROP: bl.drop_case(lab, f), bl.CEILING: bl.ceiling_case(lab, f),
            # nothing reaches h2 (the dut port drops everything) but frames are let off
            "drops at the port, no check": bl.Case(lambda: RxCounter(lab.dut, h1.port), f, None),
            "idle": bl.Case(contextlib.nullcontext, f, 0.5)}


def test_measure_interleaves_and_checks_delivery(make_lab):
    lab = make_lab(LabSpec.switch(2, queues=2))
    cases = _cases(lab)
    del cases["idle"]
    v = bl.measure(lab, cases, n=3000, rounds=2, warmup=100)
    assert set(v.mpps) == {(bl.DROP, 1), (bl.DROP, 2), (bl.CEILING, 1), (bl.CEILING, 2),
                           ("drops at the port, no check", 1)}
    assert all(len(r) == 2 for r in v.runs.values())           # one run per round
    assert v.generator in ("live", "tc")
    # Mpps counts at the receiver: nothing arrives through a port that drops
    assert v.mpps.pop(("drops at the port, no check", 1)) == 0
    assert all(m > 0 for m in v.mpps.values())
    assert v.net_ns(bl.CEILING) == pytest.approx(1e3 / v.mpps[(bl.CEILING, 1)]
                                                 - 1e3 / v.mpps[(bl.DROP, 1)])


def test_measure_refuses_lost_frames_and_missing_drop_case(make_lab):
    """A case that must deliver half its frames but delivers none fails the run; without the
    DROP case there is no net cost to compute; an unknown generator fails before any work."""
    from traffic.labgen import GeneratorUnavailable
    lab = make_lab(LabSpec.switch(2))
    cases = _cases(lab)
    with pytest.raises(AssertionError, match="under 50% delivered"):
        bl.measure(lab, {bl.DROP: cases[bl.DROP], "idle": cases["idle"]}, n=500, rounds=1,
                   warmup=10)
    with pytest.raises(ValueError, match="DROP"):
        bl.measure(lab, {bl.CEILING: cases[bl.CEILING]}, n=500, rounds=1)
    with pytest.raises(GeneratorUnavailable, match="unknown traffic generator 'pktgen'"):
        bl.measure(lab, cases, generator="pktgen", n=500, rounds=1)


@pytest.mark.bench
@pytest.mark.parametrize("nf", ["l2_switch", "router", "sketch", "flow_table"])
def test_bench_lab(nf, lab_generator):
    """Each NF's lab cases as `nf bench` runs them (fewer frames): Mpps, net cost, 2 CPUs."""
    import importlib
    mod = importlib.import_module(f"nf.bench.{nf}")
    v = mod.lab_rates(n=200_000, rounds=3, generator=lab_generator)
    print(f"\n{nf}, {v.generator} generator:")
    for (case, ncpu), mpps in sorted(v.mpps.items()):
        net = f"net {v.net_ns(case):6.0f} ns" if ncpu == 1 and case != bl.DROP else ""
        print(f"  {mpps:6.2f} Mpps  {ncpu} CPU  {net:16} {case}")
    assert (bl.DROP, 1) in v.mpps and (bl.CEILING, 2) in v.mpps
