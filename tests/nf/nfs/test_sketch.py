"""nf/nfs/sketch.py: rodata from configs, key handling, lifecycle errors; in a veth lab (netns
tier) the drop and redirect actions stop a heavy flow while the others keep arriving."""
from __future__ import annotations

import math
import struct

import pytest

from nf.config import validate
from nf.config.sketch import SketchConfig, Variant
from nf.models.sketch import flow_key
from nf.nfs.sketch import (SK_F_BYTES, SK_F_FRACTION, SK_F_NITRO, SK_F_SHARED, Sketch, decode_key,
                           hashcheck, make_cfg)
from traffic.flows import Flow


def cfg(**kw) -> SketchConfig:
    kw.setdefault("variant", "pure")
    return validate(kw, SketchConfig)


def test_make_cfg_flags_and_fixed_point():
    c = make_cfg(cfg(count="bytes", counters="shared", nitro={"enabled": True, "p": 0.25},
                     threshold={"fraction": 0.02, "min_total": 500}, depth=8, width=512, seed=7,
                     action="drop"), Variant.pure)
    assert c.flags == SK_F_BYTES | SK_F_SHARED | SK_F_NITRO | SK_F_FRACTION
    assert (c.d, c.w, c.action, c.variant) == (8, 512, 1, 0)
    assert "seed" not in dict(c._fields_)     # the key lives in the pinned banks, not in rodata
    assert c.threshold == round(0.02 * 65536) and c.min_total == 500
    assert c.nitro_scale_q16 == 4 << 16 and c.nitro_p_q32 == 1 << 30
    assert c.nitro_neglog_q32 == round(-math.log2(0.75) * 2**32)
    plain = make_cfg(cfg(), Variant.enetstl)
    assert plain.flags == 0 and plain.nitro_scale_q16 == 1 << 16 and plain.nitro_neglog_q32 == 0
    assert plain.variant == 1 and plain.threshold == 1000


def test_keys_and_decoding():
    sk = Sketch(cfg())
    f = Flow("10.0.0.1", "10.0.0.2", 5, 6, 17)
    assert sk.key(f) == sk.key(("10.0.0.1", "10.0.0.2", 5, 6, 17)) == flow_key("five_tuple", f)
    assert sk.key(b"\x01\x02") == b"\x01\x02"
    assert decode_key("five_tuple", sk.key(f)) == ("10.0.0.1", "10.0.0.2", 5, 6, 17)
    f6 = Flow("fd00::1", "fd00::2", 7, 8, 6)
    assert decode_key("five_tuple", flow_key("five_tuple", f6)) == ("fd00::1", "fd00::2", 7, 8, 6)
    assert decode_key("src_dst", flow_key("src_dst", f6)) == ("fd00::1", "fd00::2")
    assert Sketch(cfg(key="dst_ip")).key("10.9.8.7") == bytes([10, 9, 8, 7])
    assert Sketch(cfg(key="src_mac")).key("02:00:00:00:00:05") == bytes([2, 0, 0, 0, 0, 5, 0, 0])
    assert decode_key("src_mac", bytes([2, 0, 0, 0, 0, 5, 0, 0])) == "02:00:00:00:00:05"


def test_keys_are_written_as_the_flow_table_writes_flows():
    from nf.nfs.sketch import key_text
    f6 = Flow("fd00::1", "fd00::2", 7, 8, 6)
    assert key_text("five_tuple", flow_key("five_tuple", Flow("10.0.0.1", "10.0.0.2", 5, 6, 17))) == \
        "udp 10.0.0.1:5 -> 10.0.0.2:6"
    assert key_text("five_tuple", flow_key("five_tuple", f6)) == "tcp [fd00::1]:7 -> [fd00::2]:8"
    assert key_text("src_dst", flow_key("src_dst", f6)) == "fd00::1 -> fd00::2"
    assert key_text("dst_ip", bytes([10, 9, 8, 7])) == "10.9.8.7"


def test_not_loaded_errors():
    sk = Sketch(cfg())
    with pytest.raises(RuntimeError, match="not loaded"):
        sk.point(Flow("10.0.0.1", "10.0.0.2", 5, 6, 17))
    with pytest.raises(RuntimeError, match="not loaded"):
        sk.flip()
    with pytest.raises(TypeError):
        Sketch({"depth": 4})
    with pytest.raises(ValueError, match="key length"):
        hashcheck(None, b"abc", 0)


def test_load_twice_and_down_idempotent():
    sk = Sketch(cfg()).load()
    try:
        with pytest.raises(RuntimeError, match="already loaded"):
            sk.load()
    finally:
        sk.down()
        sk.down()


# ---------------------------------------------------------------------------------------------
# lab

def _udp(src: str, dst: str, sport: int, dport: int, smac: str, dmac: str) -> bytes:
    import ipaddress
    s, d = ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed
    l4 = struct.pack("!HHHH", sport, dport, 8 + 18, 0) + bytes(18)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, 0, 64, 17, 0, s, d)
    mac = lambda m: bytes(int(x, 16) for x in m.split(":"))  # noqa: E731
    return mac(dmac) + mac(smac) + b"\x08\x00" + ip + l4


def _traffic(h1_mac: str, p1_mac: str):
    """150 packets of one heavy flow with 50 packets of 10 light flows between them (every 4th):
    (frames, is-heavy flags)."""
    frames, flags = [], []
    for i in range(200):
        light = i % 4 == 3
        sport = 5000 + (i // 4) % 10 if light else 4000
        frames.append(_udp("10.0.0.1", "10.0.0.2", sport, 9, h1_mac, p1_mac))
        flags.append(not light)
    return frames, flags


def _is_heavy(frame: bytes) -> bool:
    return len(frame) >= 38 and frame[12:14] == b"\x08\x00" and frame[34:36] == (4000).to_bytes(2, "big")


@pytest.mark.netns
def test_lab_drop_stops_heavy_flow_others_keep_arriving(lab):
    from nf.net.lab import host_mac, port_mac
    h1 = lab.host("h1")
    frames, flags = _traffic(host_mac(1), port_mac(1))
    n_light = flags.count(False)
    c = cfg(action="drop", counters="shared", threshold={"absolute": 50}, interfaces=[h1.port],
            key="five_tuple")
    with lab.enter("dut"):
        sk = Sketch(c).up()
    try:
        with lab.capture([("dut", h1.port)]) as cap:
            lab.send("h1", frames)
            got = cap.wait(count=49 + n_light, timeout=3, quiet=0.5)[lab.tap("dut", h1.port)]
        heavy = [f for f in got if _is_heavy(f)]
        light = [f for f in got if not _is_heavy(f) and f[12:14] == b"\x08\x00"]
        assert len(heavy) == 49          # the 50th packet crosses the threshold: dropped from there
        assert len(light) == n_light     # every light-flow packet arrived
        key = flow_key("five_tuple", Flow("10.0.0.1", "10.0.0.2", 4000, 9, 17))
        assert sk.point(key) == 150
        assert [k for k, _ in sk.heavy_hitters()] == [key]
        st = sk.stats()
        assert st.packets[1] == 101      # XDP_DROP
    finally:
        with lab.enter("dut"):
            sk.down()


@pytest.mark.netns
def test_lab_redirect_moves_heavy_flow_to_another_port(lab):
    from nf.net.lab import host_mac, port_mac
    h1, h2 = lab.host("h1"), lab.host("h2")
    frames, flags = _traffic(host_mac(1), port_mac(1))
    c = cfg(action="redirect", redirect_to=h2.port, counters="shared",
            threshold={"absolute": 50}, interfaces=[h1.port])
    with lab.enter("dut"):
        sk = Sketch(c).up()
    try:
        with lab.capture([("dut", h1.port), "h2"]) as cap:
            lab.send("h1", frames)
            got = cap.wait(count=49 + flags.count(False) + 101, timeout=3, quiet=0.5)
        at_p1 = [f for f in got[lab.tap("dut", h1.port)] if _is_heavy(f)]
        at_h2 = [f for f in got[lab.tap("h2")] if _is_heavy(f)]
        light_p1 = [f for f in got[lab.tap("dut", h1.port)] if not _is_heavy(f) and f[12:14] == b"\x08\x00"]
        assert len(at_p1) == 49 and len(at_h2) == 101
        assert len(light_p1) == flags.count(False)
        assert not [f for f in got[lab.tap("h2")] if f[12:14] == b"\x08\x00" and not _is_heavy(f)]
    finally:
        with lab.enter("dut"):
            sk.down()


def test_pinned_deployment_is_found_by_another_controller():
    """up(pin=True) pins banks, maps and program under /sys/fs/bpf/xdp-nf/<name>; a second
    controller (as another process would) opens it, sees the traffic, flips, and the first one
    sees the flip; down() of the opener removes the deployment."""
    from nf.bpf import list_instances
    from nf.bpf.pin import bpffs_mount_of
    from nf.testing.tiers import require
    require(bpffs_mount_of("/sys/fs/bpf") is not None, "bpffs not mounted")
    name = f"sktest{__import__('os').getpid()}"
    c = cfg(threshold={"absolute": 3})
    f = Flow("10.0.0.1", "10.0.0.2", 5, 6, 17)
    frame = _udp("10.0.0.1", "10.0.0.2", 5, 6, "02:00:00:00:00:01", "02:00:00:00:00:02")
    owner = Sketch(c, name=name).up(pin=True)
    try:
        assert name in list_instances()
        with pytest.raises(RuntimeError, match="already deployed"):
            Sketch(c, name=name).up(pin=True)
        other = Sketch.open_pinned(c, name=name)
        owner.program.test_run(frame, repeat=4)
        assert other.point(f) == 4 and other.active == 0 and other.epoch == 0
        assert [k for k, _ in other.topk()] == [flow_key("five_tuple", f)]
        rec = other.flip()
        assert (rec.epoch, rec.packets) == (0, 4) and owner.active == 1 and owner.point(f) == 0
        other.program.test_run(frame, repeat=2)       # the pinned program, same datapath
        assert owner.point(f) == 2 and owner.stats().packets[2] == 6
        rec = owner.flip()
        assert (rec.epoch, rec.packets) == (1, 2) and other.active == 0
        with pytest.raises(RuntimeError, match="another depth"):
            Sketch.open_pinned(cfg(width=512), name=name)
        other.down()
        assert name not in list_instances()
    finally:
        owner.down()
    with pytest.raises(RuntimeError, match="no sketch"):
        Sketch.open_pinned(c, name=name)


def check_a_reload_keeps_the_key_and_the_counts(variant: str):
    """A pinned sketch whose program is loaded again on its maps (`nf apply` of a program field,
    `--reload`: engine.swap_program) counts on with the same key: a later controller reads every
    estimate unchanged, and the new program adds the same flows into the same cells (the model
    under that key, fed the traffic twice). A config whose seed is not the banks' is refused by
    the new program's load and by a controller opening the pins."""
    import os

    import numpy as np

    from nf import engine
    from nf.bench.sketch import raw_frame
    from nf.bpf.pin import bpffs_mount_of
    from nf.models.sketch import CountMin
    from nf.nfs.sketch import KIND, SK_KEYED_DRAWN
    from nf.testing.tiers import require
    from traffic.flows import uniform
    require(bpffs_mount_of("/sys/fs/bpf") is not None, "bpffs not mounted")
    name = f"skkey{os.getpid()}"
    c = cfg(variant=variant, depth=4, width=256, threshold={"absolute": 1 << 30}, name=name)
    fs = uniform(30, 300, seed=15)
    frames = [raw_frame(f) for f in fs.flows]
    keys = [flow_key("five_tuple", f) for f in fs.flows]
    sk = Sketch(c).up(pin=True)
    try:
        for i in fs.sequence:
            sk.program.test_run(frames[i])
        before, seed = [sk.point(k) for k in keys], sk.seed
        assert sk.keyed == SK_KEYED_DRAWN and sum(before) >= 300
        assert engine.swap_program(KIND, c.model_copy(update={"variant": Variant(variant)}),
                                   sk.pin_dir) == 0       # no interfaces: the program pin moves
        later = Sketch.open_pinned(c)
        try:
            assert later.seed == seed and [later.point(k) for k in keys] == before
            for i in fs.sequence:
                later.program.test_run(frames[i])
            ref = CountMin(4, 256, seed=seed)
            for i in list(fs.sequence) * 2:
                ref.add(keys[i])
            assert np.array_equal(later.snapshot().table, np.array(ref.table, dtype=np.uint64))
        finally:
            later.release()
        other = c.model_copy(update={"seed": seed ^ 1, "variant": Variant(variant)})
        with pytest.raises(RuntimeError, match="keyed by another seed .* needs down/up"):
            engine.swap_program(KIND, other, sk.pin_dir)
        with pytest.raises(RuntimeError, match="keyed by another seed .* needs down/up"):
            Sketch.open_pinned(other)
    finally:
        sk.down()


def test_a_reload_keeps_the_key_and_the_counts():
    check_a_reload_keeps_the_key_and_the_counts("pure")


def test_a_seed_change_needs_down_up():
    from nf.config import Channel, channel_of
    assert channel_of(SketchConfig, "seed") == Channel.redeploy
    assert SketchConfig.model_fields["seed"].default is None


def test_example_config_brings_up_in_test_run_mode():
    from pathlib import Path
    from nf.config import load
    c = load(Path(__file__).resolve().parents[3] / "configs" / "sketch.yaml", SketchConfig)
    frame = _udp("10.0.0.1", "10.0.0.2", 5, 6, "02:00:00:00:00:01", "02:00:00:00:00:02")
    with Sketch(c) as sk:            # no interfaces: loaded, not attached
        assert sk.links == []
        sk.program.test_run(frame, repeat=2000)
        f = Flow("10.0.0.1", "10.0.0.2", 5, 6, 17)
        assert sk.point(f) == 2000
        # fraction 0.01 of a 2000-packet epoch, min_total 1000: the only flow is heavy
        assert sk.heavy_hitters() == [(flow_key("five_tuple", f), 2000)]


def _idle_is_clean(sk) -> list[str]:
    """What a completed flip must leave in the idle bank, read from the maps: what is not."""
    from nf.nfs.sketch import CandKey, Cand
    act = sk.active
    idle, cur = 1 - act, sk.counters()["epoch"]["epoch"]
    snap = sk.snapshot(idle)
    bad = [] if snap.epoch == cur + 1 else [f"idle bank numbered {snap.epoch}, active {cur}"]
    bad += [] if not (snap.packets or snap.total or snap.table.any()) else ["idle bank counts"]
    k = idle.to_bytes(4, "little")
    bad += [n for n in ("sk_top", "sk_heavy") if sk._maps[n].lookup(k).strip(b"\0")]
    bad += ["candidates"] if any(c.bank == idle for c in sk._maps["sk_cand"].typed(CandKey, Cand).keys()) else []
    return bad


@pytest.mark.parametrize("cut", ["flip", "reset"])
@pytest.mark.parametrize("busy", [False, True], ids=["idle", "busy"])
def test_kill_at_any_write_of_a_flip_or_reset_leaves_an_exact_epoch_log(busy, cut):
    """A controller killed before any one of the writes of a flip (or a reset) of a pinned
    sketch: the next controller's flips repair it, and the epoch log has every epoch once, in
    order, each with exactly the frames and top flows sent in it; its totals plus the current
    epoch are every frame sent; the idle bank is clean. Idle epochs (no frame) included."""
    import itertools
    import os
    from nf.bpf.pin import bpffs_mount_of
    from nf.testing.cuts import Killed, cut_at
    from nf.testing.tiers import require
    require(bpffs_mount_of("/sys/fs/bpf") is not None, "bpffs not mounted")
    c = cfg(threshold={"absolute": 3}, history=100, topk=4)
    name = f"skcut{os.getpid()}"
    cuts = []
    for step in itertools.count():
        sent: dict[int, dict[str, int]] = {}     # epoch (its bank's number when sent) -> flow -> frames

        def send(sk, n: int, sport: int) -> None:
            if busy:
                sk.program.test_run(_udp("10.0.0.1", "10.0.0.2", sport, 9, "02:00:00:00:00:01",
                                         "02:00:00:00:00:02"), repeat=n)
                ep = sent.setdefault(sk.counters()["epoch"]["epoch"], {})
                ep[f"udp 10.0.0.1:{sport} -> 10.0.0.2:9"] = n
        sk = Sketch(c, name=name).up(pin=True)
        try:
            for i in range(3):
                send(sk, 4, 100 + i)
                sk.flip()
            send(sk, 5, 200)
            try:
                with cut_at(step):
                    sk.reset() if cut == "reset" else sk.flip()
            except Killed:
                cuts.append(step)
            else:
                break
            finally:
                sk.release()
            nxt = Sketch.open_pinned(c, name)          # the next controller (a restarted agent)
            try:
                if cut == "reset":     # what the cut reset already zeroed (log, banks) is gone
                    held = {e["epoch"] for e in nxt.epoch_log()["history"]} | \
                        {b.epoch for b in map(nxt.snapshot, (0, 1)) if b.packets}
                    sent = {e: f for e, f in sent.items() if e in held}
                for i in range(3):
                    nxt.flip()
                    send(nxt, 3 + i, 300 + i)
                nxt.flip()
                log = nxt.epoch_log()
                hist = log["history"]
                eps = [e["epoch"] for e in hist]
                where = f"{cut} cut before write {step}: {[(e['epoch'], e['packets']) for e in hist]}"
                assert eps == list(range(eps[0], eps[0] + len(eps))), where
                assert nxt.counters()["epoch"]["epoch"] == eps[-1] + 1, where
                assert sum(e["recovered"] for e in hist) <= 1, where
                for e in hist:
                    want = sent.get(e["epoch"], {})
                    assert e["packets"] == sum(want.values()), where
                    assert {f: n for f, n in e["top"]} == want, where
                assert log["closed"] == len(hist), where
                assert log["closed_packets"] == sum(e["packets"] for e in hist), where
                assert log["closed_packets"] + nxt.counters()["epoch"]["packets"] == \
                    sum(sum(f.values()) for f in sent.values()), where
                assert _idle_is_clean(nxt) == [], where
            finally:
                nxt.release()
        finally:
            Sketch.open_pinned(c, name).down()
    assert len(cuts) >= (5 if cut == "flip" else 7), cuts   # every write of it was a cut point
