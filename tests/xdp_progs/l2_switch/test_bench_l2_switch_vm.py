"""Benchmark (pytest -m "bench and vm" -s): guest instructions per packet of the switch's FDB
variants in one boot, module loaded (design notes §6: under TCG only instruction counts compare).

A table of 10,000 learned MACs (VLAN 10, trunk ports, so test_run can repeat one frame unchanged),
then a known-unicast frame whose source is also known (the learning lookup + the destination
lookup in a populated table). Both variants run the *_test entry (ports from test_ctl), the same
for both. Setup shared with `nf bench` (nf/bench/l2_switch.py). Printed and written to /tmp/l2sw-bench-insns.json."""
from __future__ import annotations

import json

import pytest

from nf.bench.l2_switch import BROADCAST, SEED, fill, frame, mac, ports
from nf.config.l2_switch import Variant
from nf.nfs.l2_switch import SwitchSim

pytestmark = [pytest.mark.bench, pytest.mark.vm]
N_MACS = 10_000


def test_fdb_variants_insns_per_packet(insncount, enetstl):
    rows, tops = {}, {}
    for variant, name in ((Variant.pure, "pure (BPF hash map)"),
                          (Variant.enetstl, "eNetSTL table (enetstl_bt_find)")):
        with SwitchSim(ports(), fdb_size=16384, variant=variant, seed=SEED) as sw:
            fill(sw, N_MACS)                # learned on p5; the sender mac(N_MACS) on p4
            assert len(sw.maps.fdb(now=10**12)) == N_MACS + 1
            f = frame(mac(1234), mac(N_MACS))
            res = insncount.per_packet(sw.ingress.fd, f, n=2000, rounds=3)
            assert res.retval == 4                      # XDP_REDIRECT (unicast to p5)
            rows[f"{name}: known unicast, 10k MACs"] = round(res.insns_per_packet, 1)
            tops[name] = [(k, round(v, 1)) for k, v in res.top]
            flood = frame(BROADCAST, mac(N_MACS))
            res = insncount.per_packet(sw.ingress.fd, flood, n=2000, rounds=3)
            rows[f"{name}: broadcast (learn refresh + flood)"] = round(res.insns_per_packet, 1)
    print("\nguest instructions per packet beyond the empty program (l2 switch ingress):")
    for k, v in rows.items():
        print(f"  {k:70} {v:8.1f}")
    with open("/tmp/l2sw-bench-insns.json", "w") as fh:
        json.dump({"insns_per_packet": rows, "top_functions_unicast": tops}, fh, indent=1)
    assert all(v > 0 for v in rows.values())
