"""Tier 3 (in the guest, enetstl module loaded): the eNetSTL variant of the sketch.

- the module's multi-hash (SIMD and forced scalar) equals the BPF xxh32 rows and nf.algo;
- pure and eNetSTL variants produce identical counters and verdicts on the same traffic, for
  per-CPU and shared banks and several depths;
- NitroSketch with the module's random pool samples at rate p and keeps heavy flows within 10 %;
- without the module an eNetSTL config is refused and auto falls back to pure.
"""
from __future__ import annotations

import importlib.util
import os
import random
import time
from pathlib import Path

import numpy as np
import pytest

from nf import algo
from nf.config import ConfigError, validate
from nf.config.sketch import SketchConfig, Variant
from nf.models.sketch import CountMin, flow_key
from nf.nfs.sketch import Sketch, hashcheck, module_present, open_hashcheck
from traffic.flows import uniform, zipf, zipf_probabilities

pytestmark = pytest.mark.vm

_spec = importlib.util.spec_from_file_location("_sk_t1", Path(__file__).with_name("test_sketch.py"))
_t1 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_t1)
raw_frame = _t1.raw_frame


def _sys(name: str) -> int:
    return int(Path("/sys/kernel/enetstl", name).read_text())


def cfg(**kw) -> SketchConfig:
    return validate(kw, SketchConfig)


@pytest.mark.parametrize("scalar", [False, True], ids=["simd", "scalar"])
def test_module_hashes_equal_bpf_hashes(enetstl, scalar):
    rng = random.Random(5)
    with enetstl.force_scalar(scalar), open_hashcheck() as obj:
        prog = obj.program("xdp_sketch_hashcheck")
        for n in (4, 8, 16, 32, 40):
            for _ in range(6):
                key = bytes(rng.randrange(256) for _ in range(n))
                seed = rng.randrange(1 << 32)
                r = hashcheck(prog, key, seed)
                want = algo.multi_hash(key, 16, seed)
                assert r.ret == 16
                assert list(r.bpf) == want, (n, seed)
                assert list(r.mod) == want, (n, seed)


def _traffic():
    fs = zipf(400, 3000, 1.1, seed=31)
    fs6 = uniform(40, 300, seed=32, ipv6=True)
    frames = [raw_frame(f, size=60 + 37 * (i % 5)) for i, f in enumerate(fs.flows)]
    frames += [raw_frame(f) for f in fs6.flows]
    keys = [flow_key("five_tuple", f) for f in fs.flows + fs6.flows]
    seq = list(fs.sequence) + [len(fs.flows) + i for i in fs6.sequence]
    random.Random(3).shuffle(seq)
    return frames, keys, seq


@pytest.mark.parametrize("counters,d,w", [("per_cpu", 4, 1024), ("per_cpu", 1, 4096),
                                          ("per_cpu", 8, 512), ("shared", 16, 2048),
                                          ("shared", 5, 256)])
def test_variants_give_identical_counters_and_verdicts(enetstl, counters, d, w):
    frames, keys, seq = _traffic()
    out = {}
    for variant in ("pure", "enetstl"):
        c = cfg(variant=variant, counters=counters, depth=d, width=w, seed=0x1234,
                count="bytes" if d == 5 else "packets", action="drop",
                threshold={"absolute": 100 if d != 5 else 10000})
        pin = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(pin)})
        try:
            with Sketch(c).load() as sk:
                assert sk.variant == Variant(variant)
                calls = _sys("hash_simd_calls") + _sys("hash_scalar_calls")
                verdicts = [sk.program.test_run(frames[i]).retval for i in seq]
                calls = _sys("hash_simd_calls") + _sys("hash_scalar_calls") - calls
                # one fused call per packet in the eNetSTL variant, none in the pure one
                assert calls == (len(seq) if variant == "enetstl" else 0)
                snap = sk.snapshot()
                out[variant] = (verdicts, snap.table.copy(), snap.total, sorted(sk.candidates()),
                                sk.top_flows(), sk.topk(16))
        finally:
            os.sched_setaffinity(0, pin)
    assert out["pure"][0] == out["enetstl"][0]
    assert np.array_equal(out["pure"][1], out["enetstl"][1])
    assert out["pure"][2:] == out["enetstl"][2:]
    assert 1 in out["pure"][0]   # some flows were flagged and dropped
    assert len(out["pure"][4]) == 16     # the top tables (identical above) are full
    ref = CountMin(d, w, seed=0x1234)
    for i in seq:
        ref.add(keys[i], len(frames[i]) if d == 5 else 1)
    assert np.array_equal(out["enetstl"][1], np.array(ref.table, dtype=np.uint64))


def test_enetstl_nitro_uses_module_pool(enetstl):
    # a 1 % flow of 4M packets gets 2,500 samples: sd 1.9 %, so 10 % is > 5 sd
    n_pkts = 4_000_000
    flows = zipf(50, 0, 1.1, seed=9).flows
    counts = [round(p * n_pkts) for p in zipf_probabilities(50, 1.1)]
    live_before = _sys("live_rp")
    c = cfg(variant="enetstl", counters="shared", depth=4, width=8192,
            nitro={"enabled": True, "p": 1 / 16}, threshold={"absolute": 1 << 31})
    with Sketch(c).load() as sk:
        assert _sys("live_rp") == live_before + 1   # xdp_sketch_pool created the pool
        for f, n in zip(flows, counts):
            sk.program.test_run(raw_frame(f), repeat=n)
        snap = sk.snapshot()
        assert snap.packets == sum(counts)
        # 250k samples expected, sd ~ 480
        assert abs(snap.sampled / sum(counts) - 1 / 16) < 0.002, snap.sampled
        for f, n in zip(flows, counts):
            if n >= 0.01 * sum(counts):
                e = snap.estimate(flow_key("five_tuple", f))
                assert abs(e - n) <= 0.1 * n, (n, e)
    for _ in range(100):   # the map's dtor drops the pool; the free is RCU-deferred
        if _sys("live_rp") == live_before:
            break
        time.sleep(0.05)
    assert _sys("live_rp") == live_before


@pytest.mark.parametrize("p", [0.25, 1 / 16], ids=["p4", "p16"])
def test_enetstl_nitro_acts_on_every_packet_without_a_candidate_slot(enetstl, p):
    """The tier-1 repro on the eNetSTL variant (its skips come from the module's random pool)."""
    _t1.test_nitro_acts_on_every_packet_of_a_heavy_flow_without_a_candidate_slot(
        p, "drop", variant="enetstl")


def test_without_module_enetstl_is_refused_and_auto_is_pure(enetstl_absent):
    assert not module_present()
    with pytest.raises(ConfigError, match="not loaded"):
        Sketch(cfg(variant="enetstl"))
    with Sketch(cfg(variant="auto")).load() as sk:
        assert sk.variant == Variant.pure
        sk.program.test_run(raw_frame(zipf(1, 0, 1.0).flows[0]), repeat=3)
        assert sk.snapshot().packets == 3


@pytest.mark.parametrize("variant", ["pure", "enetstl"])
def test_every_key_kind_and_mode_verifies_on_guest_kernel(enetstl, variant):
    """The 6.12 verifier accepts every key kind x count x action x NitroSketch combination, and
    the counters of the non-sampled ones equal the reference."""
    frames, flows = [], uniform(20, 0, seed=4).flows + uniform(10, 0, seed=5, ipv6=True).flows
    for i, f in enumerate(flows):
        frames.append(raw_frame(f, size=64 + i, smac=bytes([2, 0, 0, 0, 0, i])))
    for key in ("five_tuple", "src_ip", "dst_ip", "src_dst", "src_mac"):
        for count, action, nitro in (("packets", "monitor", False), ("bytes", "drop", False),
                                     ("packets", "drop", True)):
            c = cfg(variant=variant, key=key, count=count, action=action, depth=3, width=128,
                    nitro={"enabled": nitro, "p": 0.5}, threshold={"absolute": 1 << 30})
            with Sketch(c).load() as sk:
                for fr in frames:
                    assert sk.program.test_run(fr).retval == 2
                snap = sk.snapshot()
                assert snap.packets == len(frames)
                if nitro:
                    continue
                ref = CountMin(3, 128, seed=sk.seed)
                for i, (f, fr) in enumerate(zip(flows, frames)):
                    mac = ":".join(f"{b:02x}" for b in (2, 0, 0, 0, 0, i))
                    ref.add(flow_key(key, f, mac=mac), len(fr) if count == "bytes" else 1)
                assert np.array_equal(snap.table, np.array(ref.table, dtype=np.uint64)), (key, count)


def test_keyed_rows_with_the_module(enetstl):
    """The key checks of the host tiers again with the module's fused count-min (its multi-hash
    reads the banks' cm.seed): drawn keys differ, a configured seed counts as the model, flows
    chosen for seed 0 inflate a victim only under seed 0, a reload keeps key and counts."""
    from nf import kmod
    spec = importlib.util.spec_from_file_location(
        "_sk_nfs", Path(__file__).parents[2] / "nf" / "nfs" / "test_sketch.py")
    nfs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(nfs)
    c = kmod.counters()
    calls = lambda: sum(kmod.counters()[k] - c[k] for k in ("hash_simd_calls", "hash_scalar_calls"))  # noqa: E731
    _t1.check_loads_without_a_seed_are_keyed_apart("enetstl")
    _t1.check_a_configured_seed_counts_as_the_model("enetstl", 0x5EED)
    for keyed in (False, True):
        _t1.check_flows_chosen_for_a_known_seed("enetstl", keyed)
    nfs.check_a_reload_keeps_the_key_and_the_counts("enetstl")
    assert calls() >= 2 * 400 + 2 * 400 + 2 * 161 + 2 * 300
