"""nf/models/sketch.py: key bytes per kind, the count-min reference and its guarantees."""
from __future__ import annotations

import math

import pytest

from nf import algo
from nf.models.sketch import (CountMin, estimate_from, flow_key, log2_table, neglog2_q32, recall,
                              within_bound_fraction)
from traffic.flows import Flow, zipf


def test_key_bytes_per_kind():
    f4 = Flow("10.0.0.1", "192.168.1.2", 1234, 80, 6)
    assert flow_key("five_tuple", f4) == bytes([10, 0, 0, 1, 192, 168, 1, 2, 0x04, 0xD2, 0, 80, 6, 0, 0, 0])
    assert flow_key("src_ip", f4) == bytes([10, 0, 0, 1])
    assert flow_key("dst_ip", f4) == bytes([192, 168, 1, 2])
    assert flow_key("src_dst", f4) == bytes([10, 0, 0, 1, 192, 168, 1, 2])
    assert flow_key("src_mac", mac="02:00:00:00:00:0a") == bytes([2, 0, 0, 0, 0, 10, 0, 0])
    f6 = Flow("fd00::1", "fd01::2", 5, 6, 17)
    k = flow_key("five_tuple", f6)
    assert len(k) == 40 and k[:16] == bytes.fromhex("fd000000000000000000000000000001")
    assert k[32:] == bytes([0, 5, 0, 6, 17, 0, 0, 0])
    assert len(flow_key("src_dst", f6)) == 32 and len(flow_key("src_ip", f6)) == 16
    # ICMP has no ports in the datapath's key
    assert flow_key("five_tuple", Flow("10.0.0.1", "10.0.0.2", 7, 8, 1))[8:12] == bytes(4)
    with pytest.raises(ValueError):
        flow_key("vlan", f4)
    with pytest.raises(ValueError):
        flow_key("src_dst", src="10.0.0.1", dst="fd00::1")


def test_countmin_matches_algo_and_never_underestimates():
    cm = CountMin(4, 64, seed=99)
    key = b"\x01\x02\x03\x04"
    cols = [h & 63 for h in algo.multi_hash(key, 4, 99)]
    assert cm.add(key, 5) == 5
    assert [cm.table[i][c] for i, c in enumerate(cols)] == [5] * 4
    fs = zipf(500, 5000, 1.0, seed=3)
    cm = CountMin(3, 64)
    for i in fs.sequence:
        cm.add(flow_key("five_tuple", fs.flows[i]))
    assert cm.total == 5000 and all(sum(r) == 5000 for r in cm.table)
    for f, c in zip(fs.flows, fs.counts):
        k = flow_key("five_tuple", f)
        assert cm.estimate(k) >= c
        assert estimate_from(cm.table, k, 3, 64, 0) == cm.estimate(k)


def test_error_bound_holds_for_1_minus_delta():
    fs = zipf(3000, 30000, 1.1, seed=11)
    cm = CountMin(4, 256)
    for i in fs.sequence:
        cm.add(flow_key("src_dst", fs.flows[i]))
    truth = {}
    for f, c in zip(fs.flows, fs.counts):
        k = flow_key("src_dst", f)
        truth[k] = truth.get(k, 0) + c
    est = {k: cm.estimate(k) for k in truth}
    assert within_bound_fraction(est, truth, cm.epsilon() * 30000) >= 1 - cm.delta()
    assert recall([1, 2, 3], [1, 2, 4, 5]) == 0.5


def test_sampling_constants():
    tab = log2_table(1024)
    assert len(tab) == 1024 and all(a < b for a, b in zip(tab, tab[1:]))
    assert tab[0] == round(math.log2(1 + 0.5 / 1024) * 2**32) and tab[-1] < 2**32
    assert neglog2_q32(1.0) == 0
    assert neglog2_q32(0.5) == 2**32
    assert neglog2_q32(1 / 16) == round(-math.log2(15 / 16) * 2**32)
