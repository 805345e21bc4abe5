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
