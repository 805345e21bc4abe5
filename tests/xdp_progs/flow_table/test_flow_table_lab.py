"""The flow table attached natively to a dut port of a veth lab: per-flow drop/redirect applied
to scapy traffic, and the per-flow and per-action counters equal what was sent."""
from __future__ import annotations

import pytest

from nf.datapath import XdpAction
from nf.models.flow_table import Action, Flags, Flow
from nf.net import LabSpec
from nf.nfs.flow_table import FlowTable

pytestmark = pytest.mark.netns


def test_per_flow_actions_on_scapy_traffic(make_lab):
    lab = make_lab(LabSpec.switch(3))
    h1, h2, h3 = lab.host("h1"), lab.host("h2"), lab.host("h3")
    drop = Flow(h1.ip4, h2.ip4, 5000, 53, 17)
    redir = Flow(h1.ip4, h2.ip4, 40000, 80, 6)
    learned = [Flow(h1.ip4, h2.ip4, 6000 + i, 7, 17) for i in range(5)]
    cfg = {"size": 1024, "variant": "pure", "netns": lab.dut, "interfaces": [h1.port],
           "attach": "native", "rules": [
               {"src": drop.src, "dst": drop.dst, "sport": 5000, "dport": 53, "action": "drop"},
               {"src": redir.src, "dst": redir.dst, "proto": "tcp", "sport": 40000, "dport": 80,
                "action": "redirect", "port": h3.port}]}
    from nf.config import validate
    from nf.config.flow_table import FlowTableConfig
    from nf.nfs.flow_table import flow_frame

    def fr(f, i):
        return flow_frame(f, smac=h1.mac, dmac=h3.mac, payload=i.to_bytes(4, "big"), size=64 + i % 50)

    n_drop, n_redir, n_learn = 37, 41, 13
    frames = ([fr(drop, i) for i in range(n_drop)] + [fr(redir, i) for i in range(n_redir)] +
              [fr(learned[i % 5], i) for i in range(n_learn * 5)])
    with FlowTable(validate(cfg, FlowTableConfig)).up() as ft:
        with lab.capture(["h2", "h3"]) as cap:
            assert lab.send("h1", frames) == len(frames)
            got = cap.wait(count=n_redir, timeout=3, quiet=0.5)
        redirected = got[lab.tap("h3")]
        assert sorted(redirected) == sorted(fr(redir, i) for i in range(n_redir))
        assert got[lab.tap("h2")] == []
        ents = {e.flow: e for e in ft.dump()}
        assert (ents[drop].packets, ents[drop].bytes) == (
            n_drop, sum(len(fr(drop, i)) for i in range(n_drop)))
        assert (ents[redir].packets, ents[redir].bytes) == (
            n_redir, sum(len(fr(redir, i)) for i in range(n_redir)))
        for k, f in enumerate(learned):
            e = ents[f]
            assert e.flags == Flags.LEARNED and e.action == Action.PASS
            assert e.packets == n_learn
            assert e.bytes == sum(len(fr(f, i)) for i in range(k, n_learn * 5, 5))
        s = ft.stats()
        assert s.packets[XdpAction.DROP] == n_drop
        assert s.packets[XdpAction.REDIRECT] == n_redir
        assert s.packets[XdpAction.PASS] == n_learn * 5
        m = ft.metrics()
        assert (m["entries"], m["inserts"], m["hits"]) == (7, 7, len(frames) - 5)


@pytest.mark.parametrize("variant", ["pure"])
def test_both_cpus_insert_and_count_exactly(make_lab, variant):
    """Both CPUs send at once (2-queue veths: each CPU runs the table on its own frames): 600
    flows of each CPU's own plus 40 that both send, 25 times each per CPU. Every flow is learned
    exactly once, and its packets and bytes are exact (shared flows: the two CPUs' sum)."""
    from nf.config import validate
    from nf.config.flow_table import FlowTableConfig
    from nf.nfs.flow_table import flow_frame
    from nf.testing.twocpu import send_from_both
    from traffic.labgen import RxCounter

    lab = make_lab(LabSpec.switch(2, queues=2))
    h1, h2 = lab.host("h1"), lab.host("h2")
    own = [[Flow(h1.ip4, h2.ip4, 10000 + 1000 * c + i, 9, 17) for i in range(600)] for c in (0, 1)]
    shared = [Flow(h1.ip4, h2.ip4, 20000 + i, 9, 6) for i in range(40)]
    def frames(c):
        fl = own[c] + shared
        return [flow_frame(f, smac=h1.mac, dmac=h2.mac, size=96) for f in fl]

    cfg = validate({"size": 4096, "variant": variant, "netns": lab.dut, "interfaces": [h1.port],
                    "attach": "native", "learn": True, "default_action": "redirect",
                    "default_port": h2.port}, FlowTableConfig)
    rounds = 25
    with FlowTable(cfg).up() as ft, RxCounter(h2.netns, h2.ifname) as rx:
        # rx: each CPU's frames were received on that CPU, so the table ran on both at once
        send_from_both(lab, [frames(0), frames(1)], rounds, rx=rx)
        ents = {e.flow: e for e in ft.dump()}
        m = ft.metrics()
        st = ft.stats()
    assert len(ents) == 1240 and m["inserts"] == 1240 and m["entries"] == 1240
    for f in own[0] + own[1]:
        assert (ents[f].packets, ents[f].bytes) == (rounds, rounds * 96), f
    for f in shared:
        assert (ents[f].packets, ents[f].bytes) == (2 * rounds, 2 * rounds * 96), f
    assert st.packets[XdpAction.REDIRECT] == 2 * rounds * 640
