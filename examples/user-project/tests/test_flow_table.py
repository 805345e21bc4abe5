"""The flow table of ../flow_table.yaml: one blocked service, every other flow learned."""
from pathlib import Path

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from nf.testing import XdpAction


def test_blocked_service_and_learning(make_nf_lab):
    lab = make_nf_lab(Path(__file__).parents[1] / "flow_table.yaml")    # a fresh lab, this test's own
    in0 = lab.port("in0")
    blocked = Ether(src=in0.mac, dst=in0.dut_mac) / IP(src="192.0.2.10", dst="192.0.2.20") / UDP(sport=5353, dport=53)
    other = Ether(src=in0.mac, dst=in0.dut_mac) / IP(src="192.0.2.10", dst="192.0.2.20") / UDP(sport=5353, dport=54)
    before = lab.counters()
    in0.send([blocked, other, other])
    lab.assert_counters(before, {"verdict.drop": 1, "verdict.pass": 2, "table.inserts": 1,
                                 "table.entries": 1}, timeout=1)
    verdict, _ = lab.run_packet("in0", blocked)       # BPF_PROG_TEST_RUN on the deployed table
    assert verdict == XdpAction.DROP
