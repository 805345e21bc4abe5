"""Tier 3 (guest with the enetstl module): the seed's cuckoo example as our own check, on the
eNetSTL variant — insert a canned IPv4/TCP packet's key, run the packet, look it up, the value
matches. The differential/load tests of test_flow_table.py run here too (their enetstl ids)."""
from __future__ import annotations

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from nf.datapath import XdpAction
from nf.models.flow_table import Action, CuckooModel, Flags, Flow
from nf.nfs.flow_table import FlowTable, flow_frame

pytestmark = pytest.mark.vm

PKT = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") /
            IP(src="192.0.2.1", dst="198.51.100.7") / TCP(sport=31337, dport=443, flags="S") /
            b"cuckoo")
FLOW = Flow("192.0.2.1", "198.51.100.7", 31337, 443, 6)


def test_seed_cuckoo_example(enetstl):
    with FlowTable(size=4096, variant="enetstl", learn=False).load() as ft:
        assert ft.prog.name == "xdp_ft_enetstl" and ft.ctl_prog.name == "xdp_ft_ctl_kf"
        w = ft.insert(FLOW, Action.PASS)
        b1, b2, _ = CuckooModel(ft.n_buckets, key=ft.hash_key).place(FLOW.key())
        assert w.bucket == b1  # placed where the Python hash (mul64, the default) says
        r = ft.run(PKT)
        assert r.retval == XdpAction.PASS
        e = ft.lookup(FLOW)
        assert (e.packets, e.bytes, e.action, e.flags) == (1, len(PKT), Action.PASS, Flags.STATIC)
        dp = ft.lookup_datapath(FLOW)
        assert (dp.val.packets, dp.val.bytes, dp.bucket, dp.slot) == (1, len(PKT), e.bucket, e.slot)
        m = ft.metrics()
        assert (m["lookups"], m["hits"], m["misses"]) == (1, 1, 0)


@pytest.mark.parametrize("hash", ["mul64", "crc32c"])
def test_scalar_paths_place_the_same(enetstl, hash):
    """force_scalar switches the module to its scalar code (CRC32-C without SSE4.2): same
    hashes, same placement (one pinned seed for both tables)."""
    flows = [Flow("10.0.0.1", "10.0.0.2", i, 80, 6) for i in range(64)]
    where = {}
    for scalar in (False, True):
        with enetstl.force_scalar(scalar), FlowTable(size=64, variant="enetstl", hash=hash,
                                                     seed=99).load() as ft:
            for f in flows:
                ft.run(flow_frame(f))
            where[scalar] = [(tuple(b.sig), tuple(b.idx)) for b in ft.buckets()]
    assert where[False] == where[True]
