"""The switch attached natively on a veth lab, both CPUs sending at once (2-queue veths): every
source MAC is learned once on its port, every frame delivered exactly once, the counters exact."""
from __future__ import annotations

import pytest

from nf.config import validate
from nf.config.l2_switch import L2SwitchConfig
from nf.net import LabSpec
from nf.nfs.l2_switch import L2Switch
from traffic.labgen import RxCounter

pytestmark = pytest.mark.netns


def _frame(dst: str, src: str) -> bytes:
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    return bytes(Ether(dst=dst, src=src) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP()).ljust(64, b"\0")


@pytest.mark.parametrize("variant", ["pure", "enetstl"])
def test_both_cpus_learn_and_forward_exactly(make_lab, variant):
    """CPU c sends from 400 MACs of its own and 25 both use, to h2 (learned first): h2 gets
    every frame once, the FDB holds each source exactly once on p1 and nothing else moved."""
    from nf.testing.twocpu import send_from_both
    lab = make_lab(LabSpec.switch(2, queues=2))
    h1, h2 = lab.host("h1"), lab.host("h2")
    macs = [[f"02:10:{c:02x}:00:{i >> 8:02x}:{i & 0xff:02x}" for i in range(400)] +
            [f"02:20:00:00:00:{i:02x}" for i in range(25)] for c in (0, 1)]
    cfg = validate({"name": f"sw2cpu-{variant}", "netns": lab.dut, "attach": "native",
                    "variant": variant, "fdb_size": 4096,
                    "ports": [{"name": h.port, "vlan": 10} for h in (h1, h2)]}, L2SwitchConfig)
    rounds = 40
    with L2Switch(cfg) as sw, RxCounter(h2.netns, h2.ifname) as rx:
        sw.up()
        lab.send("h2", [_frame("ff:ff:ff:ff:ff:ff", h2.mac)])
        assert [e.mac for e in sw.fdb()] == [h2.mac]
        rx.reset()
        res = send_from_both(lab, [[_frame(h2.mac, m) for m in ms] for ms in macs], rounds, rx=rx)
        fdb = {e.mac: e for e in sw.fdb()}
        st = sw.stats()
    assert res.received == 2 * rounds * 425
    want = set(macs[0]) | set(macs[1])
    assert set(fdb) == want | {h2.mac} and len(want) == 825
    assert {fdb[m].port for m in want} == {h1.port} and fdb[h2.mac].port == h2.port
    assert st[h1.port]["rx_packets"] == 2 * rounds * 425
    assert st[h2.port]["tx_packets"] == 2 * rounds * 425
