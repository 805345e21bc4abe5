"""The sketch attached natively to a dut port of a veth lab, both CPUs sending at once: every
counter equals the Python count-min fed the same frames (per-CPU banks summed, or the shared
bank's atomic adds), and the packet totals are exact."""
from __future__ import annotations

import ctypes

import numpy as np
import pytest

from nf.bench.sketch import raw_frame
from nf.config import validate
from nf.config.sketch import SketchConfig
from nf.models.sketch import CountMin, flow_key
from nf.net import LabSpec
from nf.nfs.sketch import Sketch
from nf.datapath import NfStats
from nf.testing.twocpu import two_cpus
from traffic.flows import Flow

pytestmark = pytest.mark.netns


@pytest.mark.parametrize("counters", ["per_cpu", "shared"])
def test_both_cpus_count_exactly(make_lab, counters):
    from nf.testing.twocpu import send_from_both
    lab = make_lab(LabSpec.switch(2, queues=2))
    h1, h2 = lab.host("h1"), lab.host("h2")
    # CPU c: 300 flows of its own and 30 both send (a flow counted by both CPUs)
    flows = [[Flow(h1.ip4, h2.ip4, 1000 + 500 * c + i, 53, 17) for i in range(300)] +
             [Flow(h1.ip4, h2.ip4, 3000 + i, 80, 6) for i in range(30)] for c in (0, 1)]
    sets = [[raw_frame(f, size=64) for f in fl] for fl in flows]
    c = validate({"name": "sk2cpu", "netns": lab.dut, "interfaces": [h1.port], "attach_mode": "native",
                  "variant": "pure", "depth": 4, "width": 512, "seed": 77, "counters": counters,
                  "threshold": {"absolute": 1 << 31}}, SketchConfig)
    rounds = 30
    ref = CountMin(4, 512, seed=77)
    for fl in flows:
        for f in fl:
            ref.add(flow_key("five_tuple", f), rounds)
    with Sketch(c) as sk:
        send_from_both(lab, sets, rounds)
        snap = sk.snapshot()
        # the sketch ran on both CPUs at once: each CPU's exits are that CPU's frames
        per_cpu = sk.obj.map("sk_stats").typed(ctypes.c_uint32, NfStats).lookup_percpu(0)
        cpus = two_cpus()
        assert [sum(per_cpu[i].packets) for i in cpus] == [rounds * 330] * 2
    assert snap.packets == 2 * rounds * 330
    assert np.array_equal(snap.table, np.array(ref.table, dtype=np.uint64))
    if counters == "per_cpu":      # and each CPU counted into its own bank
        assert [int(snap.per_cpu[i].sum()) for i in cpus] == [4 * rounds * 330] * 2
