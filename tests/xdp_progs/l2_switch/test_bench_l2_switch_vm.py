"""Benchmark (pytest -m "bench and vm" -s): guest instructions per packet of the switch's FDB
variants in one boot, module loaded (design notes §6: under TCG only instruction counts compare).

A table of 10,000 learned MACs (VLAN 10, trunk ports, so test_run can repeat one frame unchanged),
then a known-unicast frame whose source is also known (the learning lookup + the destination
lookup in a populated table). Both variants run the *_test entry (ports from test_ctl), the same
for both. Printed and written to /tmp/l2sw-bench-insns.json."""
from __future__ import annotations

import json
import struct

import pytest

from nf.config.l2_switch import Variant
from nf.nfs.l2_switch import EFDB_KFUNC_CRC, EFDB_KFUNC_FIND, TRUNK, PortPlan, SwitchSim

pytestmark = [pytest.mark.bench, pytest.mark.vm]
PORTS = [PortPlan("p4", 14, 0, TRUNK, 0, frozenset({10}), True),
         PortPlan("p5", 15, 1, TRUNK, 0, frozenset({10}), True)]
N_MACS = 10_000


def frame(dst: bytes, src: bytes) -> bytes:
    return dst + src + struct.pack("!HH", 0x8100, 10) + b"\x08\x00" + bytes(46)


def mac(i: int) -> bytes:
    return bytes([2, 0, 0x10, (i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF])


def test_fdb_variants_insns_per_packet(insncount, enetstl):
    rows, tops = {}, {}
    both = EFDB_KFUNC_CRC | EFDB_KFUNC_FIND
    for variant, scalar, flags, name in (
            (Variant.pure, False, None, "pure (BPF hash map)"),
            (Variant.enetstl, False, both, "eNetSTL table, kfunc CRC + kfunc SIMD find"),
            (Variant.enetstl, True, both, "eNetSTL table, kfuncs forced scalar"),
            (Variant.enetstl, False, EFDB_KFUNC_CRC, "eNetSTL table, kfunc CRC + BPF SWAR find"),
            (Variant.enetstl, False, 0, "eNetSTL table, BPF CRC + BPF SWAR find")):
        with SwitchSim(PORTS, fdb_size=16384, variant=variant, efdb_flags=flags) as sw, \
                enetstl.force_scalar(scalar):
            sw.set_ctl(ingress_ifindex=15, now_override=10**12)
            for i in range(N_MACS):                     # learned on p5
                sw.ingress.test_run(frame(b"\xff" * 6, mac(i)))
            assert len(sw.maps.fdb(now=10**12)) == N_MACS
            sw.set_ctl(ingress_ifindex=14, now_override=10**12)
            sw.ingress.test_run(frame(b"\xff" * 6, mac(N_MACS)))   # the sender, on p4
            f = frame(mac(1234), mac(N_MACS))
            res = insncount.per_packet(sw.ingress.fd, f, n=2000, rounds=3)
            assert res.retval == 4                      # XDP_REDIRECT (unicast to p5)
            rows[f"{name}: known unicast, 10k MACs"] = round(res.insns_per_packet, 1)
            tops[name] = [(k, round(v, 1)) for k, v in res.top]
            flood = frame(b"\xff" * 6, mac(N_MACS))
            res = insncount.per_packet(sw.ingress.fd, flood, n=2000, rounds=3)
            rows[f"{name}: broadcast (learn refresh + flood)"] = round(res.insns_per_packet, 1)
    print("\nguest instructions per packet beyond the empty program (l2 switch ingress):")
    for k, v in rows.items():
        print(f"  {k:70} {v:8.1f}")
    with open("/tmp/l2sw-bench-insns.json", "w") as fh:
        json.dump({"insns_per_packet": rows, "top_functions_unicast": tops}, fh, indent=1)
    assert all(v > 0 for v in rows.values())
