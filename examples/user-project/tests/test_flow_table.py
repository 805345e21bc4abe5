"""The flow table of ../flow_table.yaml: one blocked service, every other flow learned."""
from pathlib import Path

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from nf.testing import XdpAction

CONFIG = Path(__file__).parents[1] / "flow_table.yaml"


def test_blocked_service(make_nf_lab):
    lab = make_nf_lab(Path(__file__).parents[1] / "flow_table.yaml")    # a fresh lab, this test's own
    in0 = lab.port("in0")
    blocked = Ether(src=in0.mac, dst=in0.dut_mac) / IP(src="192.0.2.10", dst="192.0.2.20") / UDP(sport=5353, dport=53)
    before = lab.counters()
    in0.send(blocked)
    lab.assert_counters(before, {"verdict.drop": 1, "table.hits": 1}, timeout=1)
    assert lab.run_packet("in0", blocked)[0] == XdpAction.DROP     # BPF_PROG_TEST_RUN, same program


def test_other_flows_pass_and_are_learned_once(make_nf_lab):
    lab = make_nf_lab(CONFIG)
    in0 = lab.port("in0")
    other = Ether(src=in0.mac, dst=in0.dut_mac) / IP(src="192.0.2.10", dst="192.0.2.20") / UDP(sport=5353, dport=54)
    before = lab.counters()
    in0.send([other] * 3)
    lab.assert_counters(before, {"verdict.pass": 3, "table.inserts": 1, "table.entries": 1,
                                 "table.hits": 2}, timeout=1)
    lab.expect_nothing()                              # passed frames go to the dut's own stack
