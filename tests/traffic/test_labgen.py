"""traffic/labgen.py, livegen.py, tcgen.py + xdp_progs/traffic/{livegen,tcgen,rxcount}.bpf.c.

Tier 1 (test_run): mirrors match BTF; each generator program writes its templates byte-exactly,
cycles them per CPU slot; the probe and the choice of generator; bad names list the usable
ones. Tier 2 (netns): every generator the kernel permits (the `generator` fixture) through a
lab: receiver count == generated, exactly; bytes at the receiver; both CPUs at once."""
import ctypes
import errno
import os

import pytest
from scapy.layers.inet import IP
from scapy.layers.l2 import Ether

from nf.bpf import BpfObject
from nf.bpf.build import build
from nf.bpf.layout import check_layout
from nf.net import LabSpec
from traffic import labgen, packets
from traffic.baselines import Fwd
from traffic.labgen import (GenCfg, GenStats, GenTmpl, GeneratorUnavailable, RxCounter,
                            RxcountCfg, RxcountStats, open_generator)

XDP_DROP, XDP_PASS, XDP_REDIRECT = 1, 2, 4
TC_ACT_SHOT = 2
OBJECTS = {"live": ("traffic/livegen", "xdp_livegen"), "tc": ("traffic/tcgen", "tcgen_clone")}


@pytest.mark.parametrize("mirror,obj", [
    (GenCfg, "traffic/livegen"), (GenTmpl, "traffic/livegen"), (GenStats, "traffic/livegen"),
    (GenCfg, "traffic/tcgen"), (GenTmpl, "traffic/tcgen"), (GenStats, "traffic/tcgen"),
    (RxcountCfg, "traffic/rxcount"), (RxcountStats, "traffic/rxcount")])
def test_mirrors_match_btf(mirror, obj):
    check_layout(mirror, build(obj))


def _tmpl(frame: bytes) -> GenTmpl:
    return GenTmpl.from_buffer_copy(frame[:128].ljust(128, b"\0"))


def _load(kind: str, restore: int, sets: list[list[bytes]], ifindex: int = 0) -> BpfObject:
    obj = BpfObject.open_built(OBJECTS[kind][0])
    n = len(sets[0])
    obj.set_rodata("gen_cfg", GenCfg(restore, n, len(sets), ifindex))
    obj.map("gen_tmpl").set_max_entries(n * len(sets))
    obj.load()
    tm = obj.map("gen_tmpl").typed(ctypes.c_uint32, GenTmpl)
    for s, fs in enumerate(sets):
        for i, f in enumerate(fs):
            tm.update(s * n + i, _tmpl(f))
    return obj


@pytest.mark.parametrize("size, restore", [(60, 60), (60, 53), (128, 128), (200, 128), (64, 0)])
def test_livegen_restores_head(size, restore):
    tmpl = packets.frame(size=size)
    dirty = bytes(b ^ 0xFF for b in tmpl)  # every byte rewritten by a pretend NF
    with _load("live", restore, [[tmpl]]) as obj:
        r = obj.program("xdp_livegen").test_run(dirty)
        # No devmap entry: the redirect falls back to DROP (not counted as sent).
        assert r.retval == XDP_DROP
        assert r.data_out == tmpl[:restore] + dirty[restore:]
        st = obj.map("gen_stats").typed(ctypes.c_uint32, GenStats).sum(0)
        assert (st.runs, st.sent) == (1, 0)


@pytest.mark.parametrize("kind", ["live", "tc"])
def test_generator_cycles_templates_of_its_cpu_slot(kind):
    """Two slots of three templates: the CPU test_run runs on (pinned) picks its slot; the
    frames cycle in order. (tcgen: the skb after the program is the data test_run returns; no
    interface 0, so the clone fails and is counted as an error, not as sent.)"""
    sets = [[packets.frame(src=f"10.0.{s}.{i}", size=100) for i in (1, 2, 3)] for s in (0, 1)]
    cpu = max(os.sched_getaffinity(0))
    saved = os.sched_getaffinity(0)
    with _load(kind, 64, sets) as obj:
        prog = obj.program(OBJECTS[kind][1])
        try:
            os.sched_setaffinity(0, {cpu})
            outs = [prog.test_run(bytes(100)).data_out for _ in range(7)]
        finally:
            os.sched_setaffinity(0, saved)
        st = obj.map("gen_stats").typed(ctypes.c_uint32, GenStats).lookup_percpu(0)[cpu]
    want = [sets[cpu % 2][i % 3][:64] + bytes(36) for i in range(7)]
    assert outs == want
    assert st.runs == 7 and st.sent == 0
    if kind == "tc":
        assert st.error == -errno.EINVAL   # no device 0


def test_tcgen_single_template_sends_the_test_data_unchanged():
    """With one template per CPU tcgen copies nothing: the caller's data is the frame."""
    f = packets.frame(size=64)
    with _load("tc", 64, [[bytes(64)]]) as obj:
        r = obj.program("tcgen_clone").test_run(f, repeat=3)
        assert r.retval == TC_ACT_SHOT and r.data_out == f


def test_rxcount_counts_and_obeys_action():
    for action, verdict in ((XDP_DROP, XDP_DROP), (XDP_PASS, XDP_PASS)):
        with BpfObject.open_built("traffic/rxcount") as obj:
            obj.set_rodata("rxcount_cfg", RxcountCfg(action, 0))
            obj.load()
            r = obj.program("xdp_rxcount").test_run(packets.frame(size=100), repeat=37)
            assert r.retval == verdict and r.data_out == packets.frame(size=100)
            st = obj.map("rxcount_stats").typed(ctypes.c_uint32, RxcountStats).sum(0)
            assert (st.packets, st.bytes) == (37, 3700)


def test_probe_and_pick():
    """The probe agrees with what running says: a refused generator is refused with the same
    reason when used; pick() takes the first permitted one; tc is permitted wherever test_run
    is (these hosts, the 6.12 guest)."""
    ps = labgen.probes()
    assert [p.name for p in ps] == list(labgen.GENERATORS) == ["live", "tc"]
    assert labgen.probe("tc").ok, labgen.probe("tc")
    assert labgen.pick() == next(p.name for p in ps if p.ok)
    live = labgen.probe("live")
    if not live.ok:
        assert "BPF_F_TEST_XDP_LIVE_FRAMES" in live.why
        with BpfObject.open_built("traffic/rxcount") as obj:
            obj.load()
            with pytest.raises(OSError) as ei:
                obj.program("xdp_rxcount").test_run_live(bytes(60), repeat=1)
        # the hint names what was refused and what the project uses instead, not "needs root"
        assert "refuses BPF_F_TEST_XDP_LIVE_FRAMES" in str(ei.value)
        assert "tc clone-redirect" in str(ei.value) and "needs root" not in str(ei.value)


def test_unknown_or_unavailable_generator_lists_the_usable_ones():
    with pytest.raises(GeneratorUnavailable) as ei:
        labgen.pick("trex")
    msg = str(ei.value)
    assert "unknown traffic generator 'trex'" in msg
    for p in labgen.probes():
        assert f"{p.name}: {'available' if p.ok else 'unavailable'}" in msg
    for p in labgen.probes():
        if not p.ok:
            with pytest.raises(GeneratorUnavailable, match=f"{p.name!r} is unavailable"):
                labgen.pick(p.name)


def test_generator_argument_errors():
    for bad, match in (([bytes(60), bytes(61)], "same length"), ([], "at least one"),
                       ([[bytes(60)], [bytes(60), bytes(60)]], "same number")):
        with pytest.raises(ValueError, match=match):
            open_generator(None, "lo", bad, generator="tc")
    with pytest.raises(ValueError, match="restore_len"):
        open_generator(None, "lo", [bytes(60)], generator="tc", restore_len=61)
    with pytest.raises(ValueError, match="14"):
        open_generator(None, "lo", [bytes(10)], generator="tc")


def test_flow_templates_follow_the_sequence():
    from traffic import flows
    fs = flows.zipf(20, 500, 1.2, seed=4, protos=(flows.PROTO_UDP,))
    t = labgen.flow_templates(fs, limit=100, size=64)
    assert len(t) == 100 and {len(f) for f in t} == {64}
    for f, i in zip(t, fs.sequence[:100]):
        ip = Ether(f)[IP]
        assert (ip.src, ip.dst) == (fs.flows[i].src, fs.flows[i].dst)
    with pytest.raises(ValueError, match="size"):
        labgen.flow_templates(fs)


# ---------------------------------------------------------------------------- tier 2: a lab


def _fwd_lab(lab):
    h1, h2 = lab.host("h1"), lab.host("h2")
    return Fwd(lab.dut, h1.port, h2.port, dmac=h2.mac, smac=h2.port_mac)


@pytest.mark.netns
def test_exact_count_through_rewriting_nf(make_lab, generator):
    """h1 --generator--> p1 [fwd: MACs, TTL-1, redirect] p2 --> h2 [rxcount, drop]."""
    lab = make_lab(LabSpec.switch(2))
    h1, h2 = lab.host("h1"), lab.host("h2")
    frame = packets.frame(smac=h1.mac, dmac=h1.port_mac, src=h1.ip4, dst=h2.ip4, ttl=64, size=60)
    n = 300_007
    with _fwd_lab(lab) as fwd, RxCounter(h2.netns, h2.ifname) as rx, \
            open_generator(h1.netns, h1.ifname, [frame], generator=generator) as gen:
        res = gen.run(n, cpu=0, rx=rx)
        st = fwd.stats()
    print(f"\n{generator}, 60 B, fwd NF (MAC+TTL rewrite, devmap redirect): {res}")
    assert res.generator == generator and res.generated == n
    assert res.received == n, res
    assert st.packets[XDP_REDIRECT] == n and st.total_packets == n
    assert res.received_per_cpu[0] == n        # everything ran on the sending CPU


@pytest.mark.netns
def test_bytes_at_receiver(make_lab, generator):
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
            open_generator(h1.netns, h1.ifname, frames, generator=generator) as gen, \
            lab.capture(["h2"]) as cap:
        res = gen.run(n, cpu=0, rx=rx)
        got = cap.wait(count=n, timeout=3)[lab.tap("h2")]
    assert res.generated == res.received == n
    assert got == [expect[i % 3] for i in range(n)]


@pytest.mark.netns
def test_into_base_program(make_lab, generator):
    """The generator drives the base program (native on the dut port); its per-CPU stats sum
    to exactly what was generated, bytes included."""
    from nf.bpf import XdpMode
    from nf.datapath import BaseCfg, XdpAction, load_base, read_stats
    lab = make_lab(LabSpec.switch(2))
    h1 = lab.host("h1")
    frame = packets.frame(smac=h1.mac, dmac=h1.port_mac, size=60)
    n = 200_003
    with load_base(BaseCfg.make(action=XdpAction.DROP)) as base:
        with lab.enter("dut"):
            link = base.program("xdp_base").attach_xdp(h1.port_ifindex, XdpMode.NATIVE)
        try:
            with open_generator(h1.netns, h1.ifname, [frame], generator=generator) as gen:
                res = gen.run(n, cpu=max(os.sched_getaffinity(0)))
            st = read_stats(base, "base_stats")
        finally:
            link.detach()
    assert res.generated == n
    assert st.packets[XdpAction.DROP] == n and st.total_packets == n
    assert st.bytes[XdpAction.DROP] == 60 * n


@pytest.mark.netns
def test_zipf_mix_counts_at_receiver(make_lab, generator):
    """A Zipf flow sequence as templates: the receiver counts every frame (exact)."""
    from traffic import flows
    lab = make_lab(LabSpec.switch(2))
    h1, h2 = lab.host("h1"), lab.host("h2")
    fs = flows.zipf(64, 1000, 1.1, seed=9, protos=(flows.PROTO_UDP,))
    t = labgen.flow_templates(fs, smac=h1.mac, dmac=h1.port_mac, size=64)
    with _fwd_lab(lab), RxCounter(h2.netns, h2.ifname) as rx, \
            open_generator(h1.netns, h1.ifname, t, generator=generator) as gen:
        res = gen.run(100_003, cpu=0, rx=rx)
    assert res.generated == res.received == 100_003


@pytest.mark.netns
def test_both_cpus_send_their_own_flows_at_once(make_lab, generator):
    """Two-queue veths, one sender per CPU with its own flows: every frame arrives, each CPU's
    share is processed on that CPU (the NF and the receiver ran where the frame was sent), and
    the bytes per flow at the receiver are each CPU's templates, rewritten."""
    cpus = sorted(os.sched_getaffinity(0))[:2]
    if len(cpus) < 2:
        pytest.skip("needs two CPUs")
    lab = make_lab(LabSpec.switch(2, queues=2))
    h1, h2 = lab.host("h1"), lab.host("h2")
    sets = [[packets.frame(smac=h1.mac, dmac=h1.port_mac, src=h1.ip4, dst=h2.ip4,
                           sport=100 * (c + 1) + i, size=64) for i in range(4)] for c in range(2)]
    n = 100_001
    with _fwd_lab(lab) as fwd, RxCounter(h2.netns, h2.ifname) as rx, \
            open_generator(h1.netns, h1.ifname, sets, generator=generator) as gen:
        res = gen.run_cpus(n, cpus, rx=rx)
        st = fwd.stats()
    assert res.generated == res.received == 2 * n, res
    assert [res.received_per_cpu[c] for c in cpus] == [n, n]
    assert st.packets[XDP_REDIRECT] == 2 * n
