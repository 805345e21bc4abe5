"""The edge router of ../router.yaml, on a lab built from it: one host on `lan`, one on `wan`."""
import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Ether

from nf.testing import Fields, XdpAction

pytestmark = pytest.mark.nf_config("../router.yaml")


def test_default_route_leaves_by_wan_with_ttl_decremented(nf_lab):
    lan = nf_lab.port("lan")
    before = nf_lab.counters()
    lan.send(Ether(src=lan.mac, dst=lan.dut_mac) / IP(src=lan.ip4, dst="8.8.8.8", ttl=64) / UDP(dport=53))
    nf_lab.expect("wan", Fields({"Ether.dst": "02:ee:00:00:00:01", "IP.ttl": 63}))
    nf_lab.expect_nothing("lan")
    nf_lab.assert_counters(before, {"lan.rx_packets": 1, "wan.tx_packets": 1}, timeout=1)


def test_ttl_1_is_answered_with_time_exceeded(nf_lab):
    lan = nf_lab.port("lan")
    lan.send(Ether(src=lan.mac, dst=lan.dut_mac) / IP(src=lan.ip4, dst="8.8.8.8", ttl=1) / UDP(dport=53))
    nf_lab.expect("lan", Fields({"IP.src": lan.dut_ip4, "ICMP.type": "time-exceeded",
                                 "IPerror.dst": "8.8.8.8"}))
    nf_lab.expect_nothing("wan")


def test_blackhole_drops_silently(nf_lab):
    lan = nf_lab.port("lan")
    before = nf_lab.counters()
    lan.send([Ether(src=lan.mac, dst=lan.dut_mac) / IP(src=lan.ip4, dst="10.1.2.3") / UDP()] * 3)
    nf_lab.expect_nothing()
    nf_lab.assert_counters(before, {"class blackhole.packets": 3, "verdict.drop": 3}, timeout=1)


def test_routed_frame_byte_for_byte_with_prog_test_run(nf_lab):
    """BPF_PROG_TEST_RUN on the program the kernel runs on `lan`: verdict and every output byte."""
    lan, wan = nf_lab.port("lan"), nf_lab.port("wan")
    frame = Ether(src=lan.mac, dst=lan.dut_mac) / IP(src=lan.ip4, dst="8.8.4.4", ttl=64) / UDP(dport=53) / b"q"
    routed = Ether(src=wan.dut_mac, dst=wan.mac) / IP(src=lan.ip4, dst="8.8.4.4", ttl=63) / UDP(dport=53) / b"q"
    nf_lab.assert_packet("lan", frame, XdpAction.REDIRECT, routed)


def test_echo_reply_from_the_router(nf_lab):
    lan = nf_lab.port("lan")
    lan.send(Ether(src=lan.mac, dst=lan.dut_mac) / IP(src=lan.ip4, dst=lan.dut_ip4) / ICMP(id=9) / b"hi")
    nf_lab.expect("lan", Fields({"ICMP.type": "echo-reply", "ICMP.id": 9, "IP.dst": lan.ip4}))
