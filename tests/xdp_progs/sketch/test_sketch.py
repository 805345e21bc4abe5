"""Tier 1 (test_run on the host kernel): xdp_progs/sketch/sketch.bpf.c, pure-eBPF variant.

Counters are compared exactly with the Python reference (nf/models/sketch.py); accuracy with
the ground truth of generated Zipf traffic; epochs under concurrent traffic; NitroSketch
sampling; per-CPU threshold semantics; per-packet verdicts of the drop/redirect action.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from nf.config import ConfigError, validate
from nf.config.sketch import SketchConfig
from nf.testing.twocpu import one_cpu as pinned_cpu
from nf.datapath import Reason, XdpAction
from nf.models.sketch import CountMin, flow_key, within_bound_fraction
from nf.nfs.sketch import (REASON_CAND_FULL, REASON_HEAVY, REASON_NO_KEY, REASON_SAMPLED_OUT,
                           Sketch, decode_key, module_present)
from nf.bench.sketch import DMAC, SMAC, raw_frame  # one frame builder for tests and benches
from traffic.flows import Flow, uniform, zipf, zipf_probabilities
from traffic.packets import from_flow


def cfg(**kw) -> SketchConfig:
    kw.setdefault("variant", "pure")
    return validate(kw, SketchConfig)


def send_seq(prog, frames, seq) -> list[int]:
    """Run the sequence on ONE CPU: with per-CPU counters the datapath's threshold sees only its
    CPU's share, so a thread migrating mid-run would split flows below the threshold."""
    run = prog.test_run
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(saved)})
    try:
        return [run(frames[i]).retval for i in seq]
    finally:
        os.sched_setaffinity(0, saved)


@pytest.fixture(scope="module")
def zipf100k():
    fs = zipf(10_000, 100_000, 1.1, seed=2024)
    frames = [raw_frame(f) for f in fs.flows]
    return fs, frames


def test_auto_variant_is_pure_without_module():
    if module_present():
        pytest.skip("the enetstl module is loaded here")
    assert Sketch.resolve_variant(SketchConfig().variant, SketchConfig()).value == "pure"
    with pytest.raises(ConfigError, match="module is not loaded"):
        Sketch(cfg(variant="enetstl"))


def test_raw_frames_count_like_scapy_frames():
    flows = [Flow("10.1.2.3", "192.168.0.9", 4000, 53, 17), Flow("10.9.9.9", "192.168.7.7", 5555, 443, 6),
             Flow("fd00::5", "fd01::7", 1000, 2000, 17), Flow("fd00::8", "fd01::9", 3, 4, 6)]
    with Sketch(cfg()).load() as sk:
        for f in flows:
            assert sk.program.test_run(raw_frame(f)).retval == XdpAction.PASS
            assert sk.program.test_run(bytes(from_flow(f))).retval == XdpAction.PASS
        snap = sk.snapshot()
        for f in flows:
            assert snap.estimate(flow_key("five_tuple", f)) == 2, f


def _vlan(frame: bytes) -> bytes:
    """The same frame with an 802.1Q tag (VID 7): the datapath's fast path leaves it to
    parse_pkt."""
    return frame[:12] + b"\x81\x00\x00\x07" + frame[12:]


def _ipv4_options(frame: bytes) -> bytes:
    """The IPv4 frame with 4 bytes of NOP options (IHL 6, total length + 4)."""
    ip = bytearray(frame[14:34])
    ip[0] = 0x46
    ip[2:4] = (int.from_bytes(ip[2:4], "big") + 4).to_bytes(2, "big")
    return frame[:14] + bytes(ip) + b"\x01" * 4 + frame[34:]


def _set(frame: bytes, off: int, fmt_bytes: bytes) -> bytes:
    return frame[:off] + fmt_bytes + frame[off + len(fmt_bytes):]


@pytest.mark.parametrize("key", ["five_tuple", "src_ip", "dst_ip", "src_dst", "src_mac"])
def test_fast_path_and_general_parser_agree(key):
    """sketch.bpf.c reads untagged IPv4 (no options, not a fragment) / IPv6 (no extension
    header) TCP/UDP frames with its own fast path and everything else with parse_pkt: the same
    flow through both (plain, VLAN-tagged, IPv4 with options) counts as one key, and frames that
    fail a check get parse_pkt's verdict reason and are not counted."""
    flows = [Flow("10.1.2.3", "192.168.0.9", 4000, 53, 17), Flow("10.9.9.9", "192.168.7.7", 5555, 443, 6),
             Flow("fd00::5", "fd01::7", 1000, 2000, 17), Flow("fd00::8", "fd01::9", 3, 4, 6)]
    mac = ":".join(f"{b:02x}" for b in SMAC)
    with Sketch(cfg(key=key, depth=2, width=1024)).load() as sk:
        sent = {}
        for f in flows:
            fr = raw_frame(f, size=100)
            variants = [fr, _vlan(fr)] + ([_ipv4_options(fr)] if ":" not in f.src else [])
            for v in variants:
                assert sk.program.test_run(v).retval == XdpAction.PASS
            k = flow_key(key, f, mac=mac)
            sent[k] = sent.get(k, 0) + len(variants)
        snap = sk.snapshot()
        for k, n in sent.items():
            assert snap.estimate(k) == n, (key, k.hex())
        assert snap.packets == sum(sent.values())
        # broken frames: the reason parse_pkt gives, nothing counted
        u4, t4 = raw_frame(flows[0], size=100), raw_frame(flows[1], size=100)
        u6 = raw_frame(flows[2], size=100)
        bad = {
            Reason.MALFORMED: [_set(u4, 38, b"\x00\x04"),            # UDP length 4 < 8
                               _set(t4, 46, b"\x40")],               # TCP data offset 4
            Reason.TRUNCATED: [_set(u4, 38, b"\x00\xff"),            # UDP past the IP packet
                               _set(u4, 16, b"\x05\xdc"),            # IPv4 total > frame
                               _set(u6, 18, b"\x05\xdc")],           # IPv6 payload > frame
        }
        before = sk.stats()
        for frames in bad.values():
            for fr in frames:
                assert sk.program.test_run(fr).retval == XdpAction.PASS
        after = sk.stats()
        for reason, frames in bad.items():
            assert after.reasons[reason] - before.reasons[reason] == len(frames), reason
        assert sk.snapshot().packets == sum(sent.values())
        # a first fragment (MF) keeps its ports, a later one has none; ICMP has none
        frag1 = _set(u4, 20, b"\x20\x00")
        later = _set(u4, 20, b"\x00\x10")
        icmp = _set(_set(u4, 23, b"\x01"), 34, b"\x08\x00\x00\x00")
        for fr in (frag1, later, icmp):
            assert sk.program.test_run(fr).retval == XdpAction.PASS
        snap = sk.snapshot()
        f = flows[0]
        if key == "five_tuple":
            assert snap.estimate(flow_key(key, f)) == sent[flow_key(key, f)] + 1
            assert snap.estimate(flow_key(key, src=f.src, dst=f.dst, proto=17)) >= 1
            assert snap.estimate(flow_key(key, src=f.src, dst=f.dst, proto=1)) >= 1
        else:
            assert snap.estimate(flow_key(key, f, mac=mac)) == sent[flow_key(key, f, mac=mac)] + 3
        assert snap.packets == sum(sent.values()) + 3


@pytest.mark.parametrize("key", ["five_tuple", "src_ip", "dst_ip", "src_dst", "src_mac"])
@pytest.mark.parametrize("count", ["packets", "bytes"])
def test_counters_equal_reference_exactly(key, count):
    """Every counter of the bank equals the Python count-min fed the same frames (IPv4 and IPv6,
    TCP and UDP, varying sizes and source MACs)."""
    fs = zipf(300, 3000, 1.0, seed=5)
    fs6 = uniform(50, 500, seed=6, ipv6=True)
    frames, keys = [], []
    for i, f in enumerate(fs.flows):
        mac = bytes([2, 0, 0, 0, i >> 8 & 0xFF, i & 0xFF])
        frames.append(raw_frame(f, size=60 + (i % 7) * 100, smac=mac))
        keys.append(flow_key(key, f, mac=":".join(f"{b:02x}" for b in mac)))
    seq = list(fs.sequence)
    for i, f in enumerate(fs6.flows):
        mac = bytes([2, 0, 0, 1, 0, i & 0xFF])
        frames.append(raw_frame(f, size=90, smac=mac))
        keys.append(flow_key(key, f, mac=":".join(f"{b:02x}" for b in mac)))
    seq += [len(fs.flows) + i for i in fs6.sequence]
    c = cfg(key=key, count=count, depth=3, width=256, seed=0xDEADBEEF,
            threshold={"absolute": 1 << 31})
    ref = CountMin(3, 256, seed=0xDEADBEEF)
    with Sketch(c).load() as sk:
        assert set(send_seq(sk.program, frames, seq)) == {XdpAction.PASS}
        for i in seq:
            ref.add(keys[i], len(frames[i]) if count == "bytes" else 1)
        snap = sk.snapshot()
        assert np.array_equal(snap.table, np.array(ref.table, dtype=np.uint64))
        assert snap.packets == len(seq) and snap.total == ref.total
        # with a per-CPU bank everything ran on whatever CPUs test_run used; summed it is exact
        assert sk.stats().packets[XdpAction.PASS] == len(seq)


# ---- the rows' key (the banks' cm.seed: drawn unless the config gives one) ---------------------
def bank_keys(sk) -> set[tuple[int, int]]:
    """(cm.seed, keyed) of every CPU's header in both banks: the datapath hashes with these."""
    from nf.nfs.sketch import SketchBank
    stride = ((sk.value_size + 7) & ~7) if not sk.shared else sk.value_size
    return {(h.cm.seed, h.keyed) for b in sk.banks for raw in [b.lookup(bytes(4))]
            for c in range(sk._ncpu_slots()) for h in [SketchBank.from_buffer_copy(raw, c * stride)]}


def counted_as_the_model(sk, seed: int, fs) -> None:
    """fs's packets counted on one CPU: the table is the model's under ``seed``, cell for cell."""
    send_seq(sk.program, [raw_frame(f) for f in fs.flows], fs.sequence)
    ref = CountMin(sk.cfg.depth, sk.cfg.width, seed=seed)
    for i in fs.sequence:
        ref.add(flow_key("five_tuple", fs.flows[i]))
    assert np.array_equal(sk.snapshot().table, np.array(ref.table, dtype=np.uint64))


def check_loads_without_a_seed_are_keyed_apart(variant: str):
    from nf.nfs.sketch import SK_KEYED_DRAWN
    fs, seeds = uniform(40, 400, seed=12), []
    for _ in range(2):
        with Sketch(cfg(variant=variant, depth=4, width=256)).load() as sk:
            assert bank_keys(sk) == {(sk.seed, SK_KEYED_DRAWN)}
            assert sk.keying() == {"keyed": True, "by": "drawn"}   # never shown
            counted_as_the_model(sk, sk.seed, fs)
            seeds.append(sk.seed)
    assert seeds[0] != seeds[1]


def check_a_configured_seed_counts_as_the_model(variant: str, seed: int):
    """Exactly the model's counters under that seed; flips and a reset keep the key."""
    from nf.nfs.sketch import SK_KEYED_CONFIG
    fs = uniform(40, 400, seed=13)
    with Sketch(cfg(variant=variant, depth=4, width=256, seed=seed)).load() as sk:
        assert (sk.seed, bank_keys(sk)) == (seed, {(seed, SK_KEYED_CONFIG)})
        assert sk.keying() == {"keyed": True, "by": "config", "seed": seed}
        counted_as_the_model(sk, seed, fs)
        sk.flip()
        sk.flip()
        sk.reset()
        assert bank_keys(sk) == {(seed, SK_KEYED_CONFIG)}
        counted_as_the_model(sk, seed, fs)


def check_flows_chosen_for_a_known_seed(variant: str, keyed: bool):
    """The attack a public seed allowed (the sketch's seed was 0 before it was keyed): for each
    of the d rows, 4 flows chosen offline to share the victim's column in that row under seed 0,
    10 packets each. Under seed 0 every row's counter of the victim passes the threshold while no
    attacker flow does: the victim's first packet is dropped (action: drop). Under a drawn key the
    same flows land anywhere: the victim is estimated at about its own count, and passes."""
    from nf import algo
    d, w, thr = 4, 256, 40
    victim = Flow("10.9.9.9", "10.0.0.1", 4242, 53, 17)
    kv = flow_key("five_tuple", victim)
    attackers, i = [], 0
    for row in range(d):
        want, found = algo.xxh32(kv, algo.row_seed(0, row)) & (w - 1), 0
        while found < 4:
            f = Flow(f"10.66.{i >> 8 & 255}.{i & 255}", "10.0.0.1", 1024 + i, 80, 17)
            i += 1
            if algo.xxh32(flow_key("five_tuple", f), algo.row_seed(0, row)) & (w - 1) == want:
                attackers.append(f)
                found += 1
    frames = [raw_frame(f) for f in attackers] + [raw_frame(victim)]
    seq = [j for j in range(len(attackers)) for _ in range(thr // 4)] + [len(attackers)]
    c = cfg(variant=variant, depth=d, width=w, action="drop", threshold={"absolute": thr},
            seed=None if keyed else 0)
    with Sketch(c).load() as sk:
        got = send_seq(sk.program, frames, seq)
        ref = CountMin(d, w, seed=sk.seed)
        for j in seq:
            ref.add(flow_key("five_tuple", (attackers + [victim])[j]))
        est = sk.point(victim)
        assert est == ref.estimate(kv)
        assert set(got[:-1]) == {XdpAction.PASS}            # no attacker flow was flagged
        if keyed:
            assert got[-1] == XdpAction.PASS and est < thr // 2
        else:
            assert got[-1] == XdpAction.DROP and est == thr + 1


def test_loads_without_a_seed_are_keyed_apart():
    check_loads_without_a_seed_are_keyed_apart("pure")


@pytest.mark.parametrize("seed", [0, 0x5EED, 0xFFFFFFFF])
def test_a_configured_seed_counts_as_the_model(seed):
    check_a_configured_seed_counts_as_the_model("pure", seed)


@pytest.mark.parametrize("keyed", [False, True], ids=["seed0", "drawn"])
def test_flows_chosen_for_a_known_seed_inflate_a_victim_only_under_it(keyed):
    check_flows_chosen_for_a_known_seed("pure", keyed)


def test_shared_counters_equal_reference():
    fs = zipf(200, 2000, 1.2, seed=8)
    frames = [raw_frame(f) for f in fs.flows]
    with Sketch(cfg(counters="shared", width=512)).load() as sk:
        ref = CountMin(4, 512, seed=sk.seed)      # the sketch's own key, drawn at load
        send_seq(sk.program, frames, fs.sequence)
        for i in fs.sequence:
            ref.add(flow_key("five_tuple", fs.flows[i]))
        snap = sk.snapshot()
        assert snap.per_cpu.shape[0] == 1
        assert np.array_equal(snap.table, np.array(ref.table, dtype=np.uint64))


def test_frames_without_key_pass_uncounted():
    arp = DMAC + SMAC + b"\x08\x06" + bytes(46)
    trunc = DMAC + SMAC + b"\x08\x00" + bytes(10)
    with Sketch(cfg()).load() as sk:
        assert sk.program.test_run(arp).retval == XdpAction.PASS
        assert sk.program.test_run(trunc).retval == XdpAction.PASS
        s = sk.stats()
        assert s.reasons[Reason.nf(REASON_NO_KEY)] == 1 and s.reasons[Reason.TRUNCATED] == 1
        assert sk.snapshot().packets == 0
    with Sketch(cfg(key="src_mac")).load() as sk:   # a MAC key counts every Ethernet frame
        sk.program.test_run(arp)
        assert sk.point("02:00:00:00:00:01") == 1


def test_accuracy_zipf_100k(zipf100k):
    """Zipf(1.1), 10k flows, 100k packets in order through test_run, default size (d=4, w=1024):
    no estimate below the truth, <= truth + eps*N for >= 1 - delta of the flows, top-10 recall
    >= 0.95 from the candidate table."""
    fs, frames = zipf100k
    c = cfg(threshold={"absolute": 100}, seed=0)   # a fixed key: the bounds below are statistics
    assert (c.depth, c.width) == (4, 1024)
    with Sketch(c).load() as sk:
        t0 = time.monotonic()
        send_seq(sk.program, frames, fs.sequence)
        elapsed = time.monotonic() - t0
        snap = sk.snapshot()
        assert snap.packets == fs.n_packets == int(snap.table[0].sum())
        keys = [flow_key("five_tuple", f) for f in fs.flows]
        est = {k: snap.estimate(k) for k in keys}
        truth = dict(zip(keys, fs.counts))
        under = [k for k in keys if est[k] < truth[k]]
        assert not under
        frac = within_bound_fraction(est, truth, c.epsilon * fs.n_packets)
        assert frac >= 1 - c.delta, frac
        true_top = [flow_key("five_tuple", f) for f, _ in fs.top(10)]
        got = [k for k, _ in sk.topk(10)]
        recall = len(set(got) & set(true_top)) / 10
        assert recall >= 0.95, (recall, sk.topk(10), fs.top(10))
        # heavy hitters (global threshold 100) contain every flow with >= 100 true packets
        hh = {k for k, _ in sk.heavy_hitters()}
        assert {k for k in keys if truth[k] >= 100} <= hh
        assert all(e >= 100 for _, e in sk.heavy_hitters())
        # the candidate table's first-seen and estimate fields are filled
        cands = sk.candidates()
        top1 = cands[true_top[0]]
        assert top1.first_seen_ns > 0 and top1.estimate >= 100 and top1.hits >= truth[true_top[0]] - 100
        assert decode_key("five_tuple", true_top[0]) == fs.flows[0].key()
    print(f"\n100k packets through test_run in {elapsed:.2f} s; within eps*N: {frac:.4f}")


def test_epoch_flip_under_traffic_loses_nothing(zipf100k):
    """A thread runs 30k packets through test_run while the main thread flips epochs every few
    ms: the banks' packets and row sums add up to exactly the packets sent, and per flow the
    estimates summed over epochs never fall below the truth."""
    fs, frames = zipf100k
    seq = list(fs.sequence[:30_000])
    with Sketch(cfg(history=100000)).load() as sk:
        prog = sk.program
        done = threading.Event()

        def traffic():
            try:
                for i in seq:
                    prog.test_run(frames[i])
            finally:
                done.set()

        t = threading.Thread(target=traffic)
        t.start()
        flips = 0
        while not done.is_set():
            time.sleep(0.003)
            sk.flip()
            flips += 1
        t.join()
        sk.flip()
        hist = list(sk.history)
        assert len(hist) == flips + 1 and flips >= 5
        assert [r.epoch for r in hist] == list(range(flips + 1))
        assert sum(r.packets for r in hist) == len(seq)
        assert sum(int(r.snapshot.table[0].sum()) for r in hist) == len(seq)
        assert sum(int(r.snapshot.table[3].sum()) for r in hist) == len(seq)
        assert sum(1 for r in hist if r.packets) >= 3   # traffic really spread over epochs
        assert sk.snapshot().packets == 0               # nothing after the last flip
        truth = {}
        for i in seq:
            truth[i] = truth.get(i, 0) + 1
        for i in list(truth)[:200]:
            k = flow_key("five_tuple", fs.flows[i])
            assert sum(r.snapshot.estimate(k) for r in hist) >= truth[i]


def test_nitro_p16_heavy_flows_within_10_percent():
    """NitroSketch at p = 1/16 (pure-eBPF geometric sampling): every flow with >= 1 % of 4M
    packets (Zipf 1.1 over 100 flows, exact quotas) is estimated within 10 %. Frames are fed
    flow by flow with test_run repeat (a repeat > 1 call costs ~15 ms of XDP dispatcher set-up,
    hence few flows): skip counts are memoryless, so the sampled packets do not depend on order."""
    n_pkts = 4_000_000
    flows = zipf(100, 0, 1.1, seed=77).flows
    counts = [round(p * n_pkts) for p in zipf_probabilities(100, 1.1)]
    c = cfg(counters="shared", depth=4, width=16384, nitro={"enabled": True, "p": 1 / 16},
            threshold={"absolute": 1 << 31})
    with Sketch(c).load() as sk:
        for f, n in zip(flows, counts):
            sk.program.test_run(raw_frame(f), repeat=n)
        snap = sk.snapshot()
        assert snap.packets == sum(counts)
        # sampled fraction ~ p: 4M x 1/16 = 250k samples, sd ~ 480
        assert abs(snap.sampled / sum(counts) - 1 / 16) < 0.002
        assert snap.total == snap.sampled * 16
        heavy = [(f, n) for f, n in zip(flows, counts) if n >= 0.01 * sum(counts)]
        assert len(heavy) >= 10
        for f, n in heavy:
            e = snap.estimate(flow_key("five_tuple", f))
            assert abs(e - n) <= 0.1 * n, (f, n, e)
        s = sk.stats()
        assert s.reasons[Reason.nf(REASON_SAMPLED_OUT)] == sum(counts) - snap.sampled


def _pred(ref: CountMin, key: bytes, thr, frac: bool, min_total: int, shared_total: list) -> bool:
    est = ref.add(key)
    shared_total[0] += 1
    total = shared_total[0]
    if frac:
        return total >= min_total and (est << 16) >= thr * total
    return est >= thr


@pytest.mark.parametrize("threshold", [{"absolute": 40}, {"fraction": 0.05, "min_total": 200}])
def test_drop_verdicts_match_reference(threshold):
    """action: drop. The verdict of every packet equals the reference rule (estimate after the
    update vs the threshold, fraction of the bank total once it reaches min_total); the
    candidate table holds exactly the flows that were ever flagged."""
    fs = zipf(100, 3000, 1.3, seed=21)
    frames = [raw_frame(f) for f in fs.flows]
    c = cfg(action="drop", threshold=threshold, width=256)
    frac = "fraction" in threshold
    thr = c.threshold.q16
    tot = [0]
    pin = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(pin)})   # per-CPU bank: one CPU = the reference's one table
    try:
        with Sketch(c).load() as sk:
            ref = CountMin(4, 256, seed=sk.seed)
            got = send_seq(sk.program, frames, fs.sequence)
            want, flagged = [], set()
            for i in fs.sequence:
                k = flow_key("five_tuple", fs.flows[i])
                heavy = _pred(ref, k, thr, frac, c.threshold.min_total, tot)
                want.append(XdpAction.DROP if heavy else XdpAction.PASS)
                if heavy:
                    flagged.add(k)
            assert got == want
            assert 0 < len(flagged) < 100
            assert set(sk.candidates()) == flagged
            s = sk.stats()
            assert s.packets[XdpAction.DROP] == want.count(XdpAction.DROP)
            assert s.reasons[Reason.nf(REASON_HEAVY)] == want.count(XdpAction.DROP)
    finally:
        os.sched_setaffinity(0, pin)


def test_redirect_action_and_full_candidate_table():
    f_heavy = [Flow("10.0.0.%d" % i, "192.168.0.1", 1000 + i, 80, 17) for i in range(1, 4)]
    c = cfg(action="redirect", redirect_to="lo", threshold={"absolute": 3}, candidates=2, topk=2)
    with Sketch(c).up() as sk:
        verdicts = [[sk.program.test_run(raw_frame(f)).retval for _ in range(4)] for f in f_heavy]
        R, P = XdpAction.REDIRECT, XdpAction.PASS
        assert verdicts == [[P, P, R, R]] * 3   # the 3rd flow is flagged too, table full or not
        assert len(sk.candidates()) == 2        # candidates per epoch; the 3rd has no entry
        s = sk.stats()
        assert s.reasons[Reason.nf(REASON_HEAVY)] + s.reasons[Reason.nf(REASON_CAND_FULL)] == 6


def test_nitro_drop_uses_candidates_for_unsampled_packets():
    heavy, light = Flow("10.0.0.1", "10.0.0.2", 1, 2, 17), Flow("10.0.0.3", "10.0.0.4", 1, 2, 17)
    c = cfg(action="drop", threshold={"absolute": 64}, nitro={"enabled": True, "p": 0.25})
    with Sketch(c).load() as sk:
        first_drop = None
        for n in range(1, 2001):
            if sk.program.test_run(raw_frame(heavy)).retval == XdpAction.DROP and first_drop is None:
                first_drop = n
        assert first_drop is not None and first_drop < 400
        # after the flow is flagged every packet is dropped, sampled or not
        assert all(sk.program.test_run(raw_frame(heavy)).retval == XdpAction.DROP for _ in range(200))
        assert all(sk.program.test_run(raw_frame(light)).retval == XdpAction.PASS for _ in range(10))


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_percpu_threshold_is_per_cpu():
    """Per-CPU banks: the datapath flags a flow when ITS CPU's estimate reaches the threshold.
    A flow split 60/60 over two CPUs (threshold 100) is not flagged though it totals 120;
    the controller's point() sums the CPUs; once one CPU alone sees 100, it is flagged."""
    cpus = sorted(os.sched_getaffinity(0))[:2]
    a, b = Flow("10.0.0.1", "10.0.0.2", 10, 20, 17), Flow("10.0.0.3", "10.0.0.4", 10, 20, 17)
    pin = os.sched_getaffinity(0)
    c = cfg(action="drop", threshold={"absolute": 100})
    try:
        with Sketch(c).load() as sk:
            run = sk.program.test_run
            os.sched_setaffinity(0, {cpus[0]})
            assert {run(raw_frame(a)).retval for _ in range(60)} == {XdpAction.PASS}
            os.sched_setaffinity(0, {cpus[1]})
            assert {run(raw_frame(a)).retval for _ in range(60)} == {XdpAction.PASS}
            ka = flow_key("five_tuple", a)
            assert sk.point(a) == 120 and ka not in sk.candidates()
            snap = sk.snapshot()
            per = [int(min(snap.per_cpu[c_][i, h & 1023] for i, h in
                           enumerate(__import__("nf.algo", fromlist=["x"]).multi_hash(ka, 4, sk.seed))))
                   for c_ in cpus]
            assert per == [60, 60]
            # B all on one CPU: flagged at its 100th packet
            verdicts = [run(raw_frame(b)).retval for _ in range(100)]
            assert verdicts[:99] == [XdpAction.PASS] * 99 and verdicts[99] == XdpAction.DROP
            # A: 40 more on cpus[1] -> that CPU sees 100 -> flagged there
            v = [run(raw_frame(a)).retval for _ in range(40)]
            assert v[-1] == XdpAction.DROP and v[:-1] == [XdpAction.PASS] * 39
            assert sk.point(a) == 160
            assert ka in {k for k, _ in sk.heavy_hitters()}
    finally:
        os.sched_setaffinity(0, pin)


def test_reset_and_history_bound():
    f = Flow("10.0.0.1", "10.0.0.2", 1, 2, 17)
    with Sketch(cfg(history=2, threshold={"absolute": 2})).load() as sk:
        for _ in range(3):
            sk.program.test_run(raw_frame(f), repeat=5)
            rec = sk.flip()
            assert rec.packets == 5 and rec.top == [(flow_key("five_tuple", f), 5)]
            assert rec.heavy == rec.top
        assert [r.epoch for r in sk.history] == [1, 2]
        sk.program.test_run(raw_frame(f), repeat=7)
        assert sk.point(f) == 7 and len(sk.candidates()) == 1
        sk.reset()
        assert sk.point(f) == 0 and sk.candidates() == {} and not sk.history and sk.epoch == 0
        assert sk.snapshot(0).packets == sk.snapshot(1).packets == 0
        sk.program.test_run(raw_frame(f), repeat=3)
        assert sk.point(f) == 3


def test_epoch_timer_flips():
    with Sketch(cfg(epoch_s=0.05)).load() as sk:
        sk.start_epochs()
        time.sleep(0.4)
        sk.stop_epochs()
        assert 3 <= len(sk.history) <= 9


# ---- adversarial traffic: acting without a candidate slot, top k whatever the threshold -----

@pytest.mark.parametrize("p", [0.25, 1 / 16], ids=["p4", "p16"])
@pytest.mark.parametrize("action", ["drop", "redirect"])
def test_nitro_acts_on_every_packet_of_a_heavy_flow_without_a_candidate_slot(p, action,
                                                                            variant="pure"):
    """NitroSketch, threshold 64, 4 candidates per epoch: 8 flows x 400 packets take the 4
    entries (and 4 more flows are flagged without one), then a new flow sends 20,000 packets:
    from its first acted-on packet every packet of it is acted on, sampled or not, and it is
    acted on near the threshold; a light flow is not. Every flagged flow's packets are acted
    on likewise."""
    c = cfg(action=action, redirect_to="lo" if action == "redirect" else None, variant=variant,
            threshold={"absolute": 64}, candidates=4, nitro={"enabled": True, "p": p})
    hit = XdpAction.DROP if action == "drop" else XdpAction.REDIRECT
    flows = [Flow(f"10.0.0.{i + 1}", "10.1.0.1", 1000, 80, 17) for i in range(9)]
    light = Flow("10.0.0.99", "10.1.0.1", 1000, 80, 17)
    with Sketch(c).up() as sk, pinned_cpu():
        run = sk.program.test_run
        for f in flows[:8]:
            v = [run(raw_frame(f)).retval for _ in range(400)]
            first = v.index(hit)
            assert set(v[first:]) == {hit} and first < 64 + 16 / p, (f, first)
        assert len(sk.candidates()) == 4
        v = [run(raw_frame(flows[8])).retval for _ in range(20_000)]
        first = v.index(hit)
        assert set(v[first:]) == {hit}, v[first:].count(XdpAction.PASS)
        assert first < 64 + 16 / p
        # 3 packets: even all sampled (+16 each at p = 1/16) stay under 64
        assert {run(raw_frame(light)).retval for _ in range(3)} == {XdpAction.PASS}
        s = sk.stats()
        acted = s.reasons[Reason.nf(REASON_HEAVY)] + s.reasons[Reason.nf(REASON_CAND_FULL)]
        assert acted == s.packets[hit] > 20_000 - first
        assert s.reasons[Reason.nf(REASON_CAND_FULL)] > 20_000 - first   # no entry for it
        assert len(sk.candidates()) == 4


def test_candidates_are_per_epoch():
    """`candidates` entries per epoch (bank): 8 flows crossing the threshold take 4, the others
    are acted on without one; the next epoch has its own 4 while the closed one's are read."""
    c = cfg(action="drop", threshold={"absolute": 5}, candidates=4)
    flows = [Flow(f"10.0.1.{i + 1}", "10.1.0.1", 7, 9, 17) for i in range(16)]
    with Sketch(c).load() as sk, pinned_cpu():
        for f in flows[:8]:
            assert sk.program.test_run(raw_frame(f), repeat=6).retval == XdpAction.DROP
        old = sk.active
        assert len(sk.candidates(old)) == 4
        s = sk.stats()
        # packets 5 and 6 of each flow are over the threshold
        assert (s.reasons[Reason.nf(REASON_HEAVY)], s.reasons[Reason.nf(REASON_CAND_FULL)]) == (8, 8)
        # the other bank: its own 4, even with the first bank's entries still in the map
        sk._maps["sk_active"].update(bytes(4), sk.banks[1 - old])
        for f in flows[8:]:
            sk.program.test_run(raw_frame(f), repeat=6)
        assert len(sk.candidates(1 - old)) == 4 and len(sk.candidates(old)) == 4


def _recall(sk, fs, k=10) -> float:
    true = {flow_key("five_tuple", f) for f, _ in fs.top(k)}
    return len(true & {key for key, _ in sk.topk(k)}) / k


@pytest.mark.parametrize("ipv6", [False, True], ids=["v4", "v6"])
def test_topk_recall_low_skew_whatever_the_threshold(ipv6):
    """The shipped config (1 % threshold: no flow of Zipf(0.6) over 200k flows gets near it),
    1M packets through traffic.replay, under 8 keys: every key recalls >= 8 of the true top 10
    from the CPU's top table and the mean is >= 0.9; nothing is a heavy hitter. The keys are
    fixed (seeds 0-7): recall is a statistic of the key, so a drawn one would make this test
    fail at random (16 keys measured: min 0.8, mean 0.92 for both families; a miss is a flow
    2-94 packets behind the 10th's 750-769, far inside the sketch's eps * N = 2,655)."""
    from nf.config import load
    from traffic.replay import Replay
    fs = zipf(200_000, 1_000_000, 0.6, seed=16, ipv6=ipv6, protos=(17,))
    shipped = load(Path(__file__).parents[3] / "configs" / "sketch.yaml", SketchConfig)
    assert (shipped.depth, shipped.width, shipped.threshold.fraction) == (4, 1024, 0.01)
    recalls = []
    for seed in range(8):
        c = shipped.model_copy(update={"variant": "pure", "seed": seed})
        with Sketch(c).load() as sk, Replay(sk.program, fs.flows, raw_frame(fs.flows[0]),
                                            seq=fs.sequence) as rp:
            rp.run(len(fs.sequence), cpu=min(os.sched_getaffinity(0)))
            assert sk.snapshot().packets == 1_000_000
            recalls.append(_recall(sk, fs))
            assert sk.heavy_hitters() == [] and sk.candidates() == {}
            assert len(sk.topk(16)) == 16
    print(f"\nZipf 0.6 {'v6' if ipv6 else 'v4'}: top-10 recall per key {recalls}")
    assert min(recalls) >= 0.8 and sum(recalls) / len(recalls) >= 0.9, recalls


@pytest.mark.parametrize("counters", ["per_cpu", "shared"])
def test_topk_is_the_k_largest_with_no_flow_over_the_threshold(counters):
    """40 flows of 1..40 packets (exact: few flows, no collisions in the default size), sent
    interleaved, threshold never reached: topk(k) is the k largest, for every k up to 16."""
    import random
    flows = [Flow(f"10.3.0.{i + 1}", "10.1.0.1", 5, 6, 17) for i in range(40)]
    seq = [i for i in range(40) for _ in range(i + 1)]
    random.Random(4).shuffle(seq)
    with Sketch(cfg(threshold={"absolute": 1 << 20}, counters=counters)).load() as sk, \
            pinned_cpu():
        for i in seq:
            sk.program.test_run(raw_frame(flows[i]))
        for k in (1, 5, 10, 16):
            want = [(flow_key("five_tuple", flows[39 - j]), 40 - j) for j in range(k)]
            assert sk.topk(k) == want
        assert sk.candidates() == {}
        rec = sk.flip()
        assert rec.top == [(flow_key("five_tuple", flows[39 - j]), 40 - j) for j in range(10)]
        assert sk.top_flows() == {}      # the new epoch starts empty
