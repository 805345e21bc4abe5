"""traffic/baselines.py + xdp_progs/traffic/{fwd,l2fwd}.bpf.c: the baseline NFs of the lab
benchmarks rewrite byte-exactly (tier 1) and redirect only what they should (tier 2)."""
import pytest
from scapy.layers.inet import IP
from scapy.layers.l2 import Ether

from nf.bpf import BpfObject
from nf.bpf.build import build
from nf.bpf.layout import check_layout
from nf.net import LabSpec
from traffic import packets
from traffic.baselines import FwdCfg, L2Fwd
from traffic.labgen import RxCounter, open_generator

XDP_DROP, XDP_REDIRECT = 1, 4


def test_fwd_cfg_matches_btf():
    check_layout(FwdCfg, build(FwdCfg.__bpf_object__))


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


@pytest.mark.netns
def test_l2fwd_redirects_by_destination_mac_and_drops_unknown(make_lab, generator):
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
            with open_generator(h1.netns, h1.ifname, [f], generator=generator) as gen:
                assert gen.run(n, cpu=0).generated == n
        st = fwd.stats()
        assert (r2.count(), r3.count()) == (n, n)
    assert st.packets[XDP_REDIRECT] == 2 * n and st.total_packets == 3 * n
    assert st.reasons[8] == n                        # L2FWD_REASON_MISS
    with pytest.raises(ValueError, match="at most 8"):
        L2Fwd(lab.dut, h1.port, {f"02:00:00:00:00:{i:02x}": f"x{i}" for i in range(9)})
