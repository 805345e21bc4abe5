"""nf/chain.py + xdp_progs/chain/: NFs in a declared order behind one dispatcher (tail calls).

Two instances of the chainable base NF with different rodata rules stand in for two NFs: each
keeps its own exit-point counters, a frame stops at the first non-PASS verdict, the last NF's
PASS goes to the kernel, and a rebuilt chain (reordered, same maps) swapped into the interface's
link changes the order atomically with the counters carried on."""
from __future__ import annotations

import time

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether

from nf.bpf import XdpAction, xdp_query
from nf.chain import Chain, ChainStats
from nf.datapath import BaseCfg, read_stats

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
DNS = bytes(ETH / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1000, dport=53) / (b"q" * 20))
PING = bytes(ETH / IP(src="10.0.0.1", dst="10.0.0.2") / ICMP() / (b"p" * 20))
WEB = bytes(ETH / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1000, dport=80) / (b"w" * 20))
NTP = bytes(ETH / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1000, dport=123) / (b"t" * 20))
CFG_A = BaseCfg.make(drop_dports=[53])          # NF "A": drops DNS
CFG_B = BaseCfg.make(drop_l4_protos=[17, 1])    # NF "B": drops UDP and ICMP


def test_layout_matches_btf():
    from nf.bpf.build import build
    from nf.bpf.layout import check_layout
    check_layout(ChainStats, build("chain/chain"))


def make(chain, cfgs, reuse_stats=None):
    objs = []
    for pos, cfg in enumerate(cfgs, 1):
        o = chain.member("chain/base_chain", pos)
        o.set_rodata("base_cfg", cfg)
        if reuse_stats:
            o.map("base_stats").reuse(reuse_stats[pos - 1])
        o.load()
        objs.append(o)
    chain.install([o.program("xdp_base") for o in objs])
    return objs


@pytest.fixture
def ab():
    chain = Chain()
    objs = make(chain, [CFG_A, CFG_B])
    yield chain, objs[0], objs[1]
    for o in objs:
        o.close()
    chain.close()


def run(chain, frame, n=1):
    return chain.prog.test_run(frame, repeat=n).retval


def test_order_and_per_nf_counters(ab):
    chain, a, b = ab
    assert run(chain, DNS, 3) == XdpAction.DROP       # A drops it: B never sees it
    assert run(chain, PING, 5) == XdpAction.DROP      # A passes, B drops
    assert run(chain, WEB, 7) == XdpAction.PASS       # both pass: to the kernel
    sa, sb = read_stats(a, "base_stats"), read_stats(b, "base_stats")
    assert (sa.packets[XdpAction.DROP], sa.packets[XdpAction.PASS]) == (3, 12)
    assert (sb.packets[XdpAction.DROP], sb.packets[XdpAction.PASS]) == (5, 7)
    assert sa.bytes[XdpAction.DROP] == 3 * len(DNS) and sb.bytes[XdpAction.PASS] == 7 * len(WEB)
    assert chain.stats() == {"entered": 15, "empty": 0}
    assert chain.programs() == [a.program("xdp_base").id, b.program("xdp_base").id]


def test_standalone_chainable_object_is_not_chained():
    """Position 0 (not in a chain): the chainable build behaves exactly like the plain NF."""
    from nf.bpf import BpfObject
    with BpfObject.open_built("chain/base_chain") as o:
        o.set_rodata("base_cfg", CFG_A)
        o.load()
        p = o.program("xdp_base")
        assert p.test_run(DNS).retval == XdpAction.DROP and p.test_run(WEB).retval == XdpAction.PASS


def test_empty_chain_passes_and_is_counted():
    with Chain() as c:
        assert run(c, WEB, 2) == XdpAction.PASS
        assert c.stats() == {"entered": 2, "empty": 2}
        with pytest.raises(ValueError, match="1..8"):
            c.install([])
        with pytest.raises(ValueError, match="outside 1..8"):
            c.member("chain/base_chain", 9)
        with pytest.raises(ValueError, match="not chainable"):
            c.member("base/base", 1)


def test_reorder_keeps_counters(ab):
    """A new chain [B, A] whose members reuse A's and B's stats maps: order changes, counts go on."""
    chain, a, b = ab
    assert run(chain, DNS) == XdpAction.DROP           # A drops
    new = Chain()
    objs = make(new, [CFG_B, CFG_A], reuse_stats=[b.map("base_stats"), a.map("base_stats")])
    try:
        assert run(new, DNS) == XdpAction.DROP         # now B (first) drops it
        assert run(new, WEB) == XdpAction.PASS
        sa, sb = read_stats(a, "base_stats"), read_stats(b, "base_stats")
        assert sa.packets[XdpAction.DROP] == 1 and sa.packets[XdpAction.PASS] == 1
        assert sb.packets[XdpAction.DROP] == 1 and sb.packets[XdpAction.PASS] == 1
    finally:
        for o in objs:
            o.close()
        new.close()


@pytest.mark.netns
def test_chain_on_an_interface_swapped_atomically(lab, ab):
    """The dispatcher holds p1 through a bpf_link; the reordered chain's dispatcher is swapped in
    with one bpf_link_update (same link id, new program); frames from h1 land in the right NF."""
    chain, a, b = ab

    def wait(pred):
        deadline = time.monotonic() + 3
        while not pred() and time.monotonic() < deadline:
            time.sleep(0.02)
        return pred()

    with lab.enter("dut"):
        link = chain.attach(lab.port_ifindex("h1"))
    new = objs = None
    try:
        lab.send("h1", [DNS] * 4 + [WEB] * 2)
        assert wait(lambda: read_stats(b, "base_stats").packets[XdpAction.PASS] == 2)
        assert read_stats(a, "base_stats").packets[XdpAction.DROP] == 4
        new = Chain()
        objs = make(new, [CFG_B, CFG_A], reuse_stats=[b.map("base_stats"), a.map("base_stats")])
        link_id = link.id
        link.update_program(new.prog)
        with lab.enter("dut"):
            assert xdp_query("p1").prog_id == new.prog.id and link.id == link_id
        lab.send("h1", [DNS] * 3)
        assert wait(lambda: read_stats(b, "base_stats").packets[XdpAction.DROP] == 3)
        assert read_stats(a, "base_stats").packets[XdpAction.DROP] == 4   # A no longer sees DNS
        assert new.stats()["entered"] == 3 and chain.stats()["entered"] == 6
    finally:
        link.detach()
        for o in objs or []:
            o.close()
        if new:
            new.close()
