"""traffic/replay.py + xdp_progs/traffic/replay.bpf.c: many flows through one test_run.

Tier 1 (test_run): the mirrors match BTF; a replayed sequence reaches the NF packet for packet in
order (a sketch's counters equal a Python count-min fed the same sequence, IPv4 and IPv6);
without a sequence the flows come in order and wrap; bad input is refused before loading."""
import numpy as np
import pytest

from nf.bench.sketch import raw_frame
from nf.bpf.build import build
from nf.bpf.layout import check_layout
from nf.config import validate
from nf.config.sketch import SketchConfig
from nf.datapath import XdpAction
from nf.models.sketch import CountMin, flow_key
from nf.nfs.sketch import Sketch
from traffic.flows import Flow, uniform, zipf
from traffic.replay import MIRRORS, Replay


@pytest.mark.parametrize("mirror", MIRRORS, ids=lambda m: m.__name__)
def test_mirrors_match_btf(mirror):
    check_layout(mirror, build("traffic/replay"))


@pytest.mark.parametrize("ipv6", [False, True], ids=["v4", "v6"])
def test_sequence_reaches_the_nf_in_order(ipv6):
    fs = zipf(500, 20_000, 1.0, seed=3, ipv6=ipv6, protos=(17,))
    c = validate({"variant": "pure", "depth": 3, "width": 256, "seed": 77,
                  "threshold": {"absolute": 1 << 31}}, SketchConfig)
    ref = CountMin(3, 256, seed=77)
    for i in fs.sequence:
        ref.add(flow_key("five_tuple", fs.flows[i]))
    with Sketch(c).load() as sk, Replay(sk.program, fs.flows, raw_frame(fs.flows[0]),
                                        seq=fs.sequence) as rp:
        r = rp.run(len(fs.sequence), cpu=0)
        assert r.retval == XdpAction.PASS
        snap = sk.snapshot()
        assert np.array_equal(snap.table, np.array(ref.table, dtype=np.uint64))
        assert snap.packets == len(fs.sequence)
        # the cursor wrapped: a second pass counts every packet again
        rp.run(len(fs.sequence), cpu=0)
        assert sk.snapshot().estimate(flow_key("five_tuple", fs.flows[0])) >= 2 * fs.counts[0]


def test_flows_in_order_without_sequence():
    fs = uniform(7, 0, seed=1, protos=(17,))
    c = validate({"variant": "pure", "threshold": {"absolute": 1 << 31}}, SketchConfig)
    with Sketch(c).load() as sk, Replay(sk.program, fs.flows, raw_frame(fs.flows[0])) as rp:
        rp.run(7 * 3 + 2, cpu=0)
        snap = sk.snapshot()
        got = [snap.estimate(flow_key("five_tuple", f)) for f in fs.flows]
        assert got == [4, 4, 3, 3, 3, 3, 3]
        rp.rewind()
        rp.run(1, cpu=0)
        assert sk.snapshot().estimate(flow_key("five_tuple", fs.flows[0])) == 5


def test_bad_input_refused():
    a = Flow("10.0.0.1", "10.0.0.2", 1, 2, 17)
    b6 = Flow("2001:db8::1", "2001:db8::2", 1, 2, 17)
    t = Flow("10.0.0.3", "10.0.0.4", 1, 2, 6)
    with pytest.raises(ValueError, match="family and protocol"):
        Replay(None, [a, b6], raw_frame(a))
    with pytest.raises(ValueError, match="family and protocol"):
        Replay(None, [a, t], raw_frame(a))
    with pytest.raises(ValueError, match="not a frame of flows"):
        Replay(None, [a], raw_frame(t))
    with pytest.raises(ValueError, match="names flow 5"):
        Replay(None, [a], raw_frame(a), seq=[0, 5])
