"""traffic/livegen.py + xdp_progs/traffic/{livegen,rxcount,fwd}.bpf.c.

Tier 1 (test_run): mirrors match BTF, the generator restores the frame head byte-exactly, the
test forwarder rewrites MACs/TTL/checksum byte-exactly. Tier 2 (netns): live frames through a
lab, receiver count == generated, exactly."""
import ctypes
import os

import pytest
from scapy.layers.inet import IP
from scapy.layers.l2 import Ether

from nf.bpf import BpfObject
from nf.bpf.build import build
from nf.bpf.layout import check_layout
from nf.net import Lab, LabSpec
from traffic import livegen, packets
from traffic.livegen import (Fwd, FwdCfg, L2Fwd, LiveGen, LivegenCfg, LivegenStats, LivegenTmpl,
                             RxCounter, RxcountCfg, RxcountStats)

XDP_DROP, XDP_PASS, XDP_REDIRECT = 1, 2, 4


@pytest.mark.parametrize("mirror", [LivegenCfg, LivegenTmpl, LivegenStats, RxcountCfg,
                                    RxcountStats, FwdCfg])
def test_mirrors_match_btf(mirror):
    check_layout(mirror, build(mirror.__bpf_object__))


def _tmpl(frame: bytes) -> LivegenTmpl:
    return LivegenTmpl.from_buffer_copy(frame[:128].ljust(128, b"\0"))


@pytest.mark.parametrize("size, restore", [(60, 60), (60, 53), (128, 128), (200, 128), (64, 0)])
def test_generator_restores_head(size, restore):
    tmpl = packets.frame(size=size)
    dirty = bytes(b ^ 0xFF for b in tmpl)  # every byte rewritten by a pretend NF
    with BpfObject.open_built("traffic/livegen") as obj:
        obj.set_rodata("livegen_cfg", LivegenCfg(restore, 1))
        obj.load()
        obj.map("livegen_tmpl").typed(ctypes.c_uint32, LivegenTmpl).update(0, _tmpl(tmpl))
        r = obj.program("xdp_livegen").test_run(dirty)
        # No devmap entry: the redirect falls back to DROP (not counted as redirected).
        assert r.retval == XDP_DROP
        assert r.data_out == tmpl[:restore] + dirty[restore:]
        st = obj.map("livegen_stats").typed(ctypes.c_uint32, LivegenStats).sum(0)
        assert (st.runs, st.redirected) == (1, 0)


def test_generator_cycles_templates():
    frames = [packets.frame(src=f"10.0.0.{i}", size=64) for i in (1, 2, 3)]
    with BpfObject.open_built("traffic/livegen") as obj:
        obj.set_rodata("livegen_cfg", LivegenCfg(64, 3))
        obj.map("livegen_tmpl").set_max_entries(3)
        obj.load()
        tm = obj.map("livegen_tmpl").typed(ctypes.c_uint32, LivegenTmpl)
        for i, f in enumerate(frames):
            tm.update(i, _tmpl(f))
        prog = obj.program("xdp_livegen")
        outs = [prog.test_run(bytes(64)).data_out for _ in range(7)]
    assert outs == [frames[i % 3] for i in range(7)]


def test_rxcount_counts_and_obeys_action():
    for action, verdict in ((XDP_DROP, XDP_DROP), (XDP_PASS, XDP_PASS)):
        with BpfObject.open_built("traffic/rxcount") as obj:
            obj.set_rodata("rxcount_cfg", RxcountCfg(action, 0))
            obj.load()
            r = obj.program("xdp_rxcount").test_run(packets.frame(size=100), repeat=37)
            assert r.retval == verdict and r.data_out == packets.frame(size=100)
            st = obj.map("rxcount_stats").typed(ctypes.c_uint32, RxcountStats).sum(0)
            assert (st.packets, st.bytes) == (37, 3700)


def test_fwd_rewrites_byte_exact():
    f = packets.frame(ttl=64, size=60, smac="02:00:00:00:00:01", dmac="02:00:00:01:00:01")
    with BpfObject.open_built("traffic/fwd") as obj:
        cfg = FwdCfg()
        cfg.dmac[:] = list(bytes.fromhex("020000000002"))
        cfg.smac[:] = list(bytes.fromhex("020000010002"))
        obj.set_rodata("fwd_cfg", cfg)
        obj.load()
        prog = obj.program("xdp_fwd")
        r = prog.test_run(f)
        assert r.retval == XDP_DROP  # no egress in the devmap: the redirect fallback
        exp = Ether(f)
        exp.dst, exp.src = "02:00:00:00:00:02", "02:00:00:01:00:02"
        exp[IP].ttl = 63
        del exp[IP].chksum
        assert r.data_out == bytes(exp)  # checksum equals a full recomputation
        assert prog.test_run(packets.frame(ttl=1)).data_out == packets.frame(ttl=1)
        from nf.datapath import read_stats
        assert read_stats(obj, "fwd_stats").reasons[8] == 1  # TTL reason


def test_livegen_argument_errors():
    with pytest.raises(ValueError, match="same length"):
        LiveGen(None, "lo", [bytes(60), bytes(61)])
    with pytest.raises(ValueError, match="restore_len"):
        LiveGen(None, "lo", [bytes(60)], restore_len=61)
    with pytest.raises(ValueError, match="at least one"):
        LiveGen(None, "lo", [])


# ---------------------------------------------------------------------------- tier 2: a lab


def _fwd_lab(lab):
    h1, h2 = lab.host("h1"), lab.host("h2")
    return Fwd(lab.dut, h1.port, h2.port, dmac=h2.mac, smac=h2.port_mac)


@pytest.mark.netns
def test_live_frames_exact_count_through_rewriting_nf(make_lab):
    """h1 --live frames--> p1 [fwd: MACs, TTL-1, redirect] p2 --> h2 [rxcount, drop]."""
    lab = make_lab(LabSpec.switch(2))
    h1, h2 = lab.host("h1"), lab.host("h2")
    frame = packets.frame(smac=h1.mac, dmac=h1.port_mac, src=h1.ip4, dst=h2.ip4, ttl=64, size=60)
    n = 1_000_003
    with _fwd_lab(lab) as fwd, RxCounter(h2.netns, h2.ifname) as rx, \
            LiveGen(h1.netns, h1.ifname, [frame]) as gen:
        res = gen.run(n, cpu=0, rx=rx)
        st = fwd.stats()
    print(f"\nlive frames, 60 B, fwd NF (MAC+TTL rewrite, devmap redirect): {res}")
    assert res.generated == n
    assert res.received == n, res
    assert st.packets[XDP_REDIRECT] == n and st.total_packets == n
    assert res.mpps > 0


@pytest.mark.netns
def test_l2fwd_redirects_by_destination_mac_and_drops_unknown(make_lab):
    """The switch bench's bare hash-lookup redirect: frames to h2's MAC reach h2 only, frames to
    h3's reach h3 only, an unknown MAC reaches nobody; its exit counters agree."""
    lab = make_lab(LabSpec.switch(3))
    h1, h2, h3 = lab.host("h1"), lab.host("h2"), lab.host("h3")
    to = {m: packets.frame(smac=h1.mac, dmac=m, src=h1.ip4, dst=h2.ip4, size=60)
          for m in (h2.mac, h3.mac, "02:99:00:00:00:01")}
    n = 10_007
    with L2Fwd(lab.dut, h1.port, {h2.mac: h2.port, h3.mac: h3.port}) as fwd, \
            RxCounter(h2.netns, h2.ifname) as r2, RxCounter(h3.netns, h3.ifname) as r3:
        for m, f in to.items():
            with LiveGen(h1.netns, h1.ifname, [f]) as gen:
                assert gen.run(n, cpu=0).generated == n
        st = fwd.stats()
        assert (r2.count(), r3.count()) == (n, n)
    assert st.packets[XDP_REDIRECT] == 2 * n and st.total_packets == 3 * n
    assert st.reasons[8] == n                        # L2FWD_REASON_MISS
    with pytest.raises(ValueError, match="at most 8"):
        L2Fwd(lab.dut, h1.port, {f"02:00:00:00:00:{i:02x}": f"x{i}" for i in range(9)})


@pytest.mark.netns
def test_without_restore_rewrites_accumulate(make_lab):
    """Why the generator restores: pages are recycled without re-copying, so the NF's TTL
    decrement persists round after round until the NF drops the frames (ARCHITECTURE §6)."""
    lab = make_lab(LabSpec.switch(2))
    h1, h2 = lab.host("h1"), lab.host("h2")
    frame = packets.frame(smac=h1.mac, dmac=h1.port_mac, src=h1.ip4, dst=h2.ip4, ttl=64, size=60)
    n = 50_000
    with _fwd_lab(lab) as fwd, RxCounter(h2.netns, h2.ifname) as rx, \
            LiveGen(h1.netns, h1.ifname, [frame], restore_len=0) as gen:
        res = gen.run(n, cpu=0, rx=rx)
        st = fwd.stats()
    assert res.generated == n
    assert res.received < n and st.reasons[8] == n - res.received > 0


@pytest.mark.netns
def test_live_frames_bytes_at_receiver(make_lab):
    """Several templates, small run, rxcount passes: the captured frames are exactly the
    templates as the NF rewrites them, in order."""
    lab = make_lab(LabSpec.switch(2))
    h1, h2 = lab.host("h1"), lab.host("h2")
    frames = [packets.frame(smac=h1.mac, dmac=h1.port_mac, src=h1.ip4, dst=h2.ip4, ttl=64,
                            sport=1000 + i, size=80) for i in range(3)]
    expect = []
    for f in frames:
        e = Ether(f)
        e.dst, e.src = h2.mac, h2.port_mac
        e[IP].ttl = 63
        del e[IP].chksum
        expect.append(bytes(e))
    n = 30
    with _fwd_lab(lab), RxCounter(h2.netns, h2.ifname, action="pass") as rx, \
            LiveGen(h1.netns, h1.ifname, frames) as gen, lab.capture(["h2"]) as cap:
        res = gen.run(n, cpu=0, rx=rx)
        got = cap.wait(count=n, timeout=3)[lab.tap("h2")]
    assert res.generated == res.received == n
    assert got == [expect[i % 3] for i in range(n)]


@pytest.mark.netns
def test_live_frames_into_base_program(make_lab):
    """Done-when of issue 2: the generator drives the base program (native on the dut port,
    here the receiver itself); its per-CPU stats sum to exactly what was generated."""
    from nf.datapath import BaseCfg, XdpAction, load_base, read_stats
    from nf.bpf import XdpMode
    lab = make_lab(LabSpec.switch(2))
    h1 = lab.host("h1")
    frame = packets.frame(smac=h1.mac, dmac=h1.port_mac, size=60)
    n = 200_003
    with load_base(BaseCfg.make(action=XdpAction.DROP)) as base:
        with lab.enter("dut"):
            link = base.program("xdp_base").attach_xdp(h1.port_ifindex, XdpMode.NATIVE)
        try:
            with LiveGen(h1.netns, h1.ifname, [frame]) as gen:
                res = gen.run(n, cpu=max(os.sched_getaffinity(0)))
            st = read_stats(base, "base_stats")
        finally:
            link.detach()
    print(f"\nlive frames into the base program (DROP): {res.mpps_generated:.2f} Mpps generated")
    assert res.generated == n
    assert st.packets[XdpAction.DROP] == n and st.total_packets == n
    assert st.bytes[XdpAction.DROP] == 60 * n


@pytest.mark.netns
@pytest.mark.bench
def test_bench_fwd_mpps(make_lab):
    """Mpps of the rewriting forwarder between two lab hosts: median of 5 runs of 2M frames."""
    import statistics
    lab = make_lab(LabSpec.switch(2))
    h1, h2 = lab.host("h1"), lab.host("h2")
    frame = packets.frame(smac=h1.mac, dmac=h1.port_mac, src=h1.ip4, dst=h2.ip4, size=60)
    with _fwd_lab(lab), RxCounter(h2.netns, h2.ifname) as rx, \
            LiveGen(h1.netns, h1.ifname, [frame]) as gen:
        runs = [gen.run(2_000_000, cpu=0, rx=rx) for _ in range(5)]
    assert all(r.received == r.generated == 2_000_000 for r in runs)
    print(f"\nfwd (MAC+TTL rewrite, devmap redirect), 60 B: median "
          f"{statistics.median(r.mpps for r in runs):.2f} Mpps over {[round(r.mpps, 2) for r in runs]}")


def test_flow_templates_follow_the_sequence():
    from traffic import flows
    fs = flows.zipf(20, 500, 1.2, seed=4, protos=(flows.PROTO_UDP,))
    t = livegen.flow_templates(fs, limit=100, size=64)
    assert len(t) == 100 and {len(f) for f in t} == {64}
    for f, i in zip(t, fs.sequence[:100]):
        ip = Ether(f)[IP]
        assert (ip.src, ip.dst) == (fs.flows[i].src, fs.flows[i].dst)
    with pytest.raises(ValueError, match="size"):
        livegen.flow_templates(fs)


@pytest.mark.netns
def test_live_zipf_mix_counts_at_receiver(make_lab):
    """A Zipf flow sequence as templates: the receiver counts every frame (exact)."""
    from traffic import flows
    lab = make_lab(LabSpec.switch(2))
    h1, h2 = lab.host("h1"), lab.host("h2")
    fs = flows.zipf(64, 1000, 1.1, seed=9, protos=(flows.PROTO_UDP,))
    t = livegen.flow_templates(fs, smac=h1.mac, dmac=h1.port_mac, size=64)
    with _fwd_lab(lab), RxCounter(h2.netns, h2.ifname) as rx, LiveGen(h1.netns, h1.ifname, t) as gen:
        res = gen.run(100_003, cpu=0, rx=rx)
    assert res.generated == res.received == 100_003
