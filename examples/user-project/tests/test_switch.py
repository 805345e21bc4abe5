"""The office switch of ../switch.yaml: desks in VLAN 100, a printer in 200, a tagged uplink."""
import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Dot1Q, Ether

pytestmark = pytest.mark.nf_config("../switch.yaml")


def frame(src, dst, *tags):
    pkt = Ether(src=src, dst=dst)
    for vid in tags:
        pkt = pkt / Dot1Q(vlan=vid)
    return pkt / IP(src="10.1.0.1", dst="10.1.0.2") / UDP(sport=7, dport=7) / b"hello"


def test_unknown_unicast_floods_the_vlan_tagged_on_the_trunk(nf_lab):
    desk1 = nf_lab.port("desk1")
    desk1.send(frame(desk1.mac, "02:00:00:00:99:99"))
    nf_lab.expect("desk2", frame(desk1.mac, "02:00:00:00:99:99"))
    nf_lab.expect("uplink", frame(desk1.mac, "02:00:00:00:99:99", 100))
    nf_lab.expect_nothing(["desk1", "printer"])


def test_learned_mac_is_known_unicast(nf_lab):
    desk1, desk2 = nf_lab.port("desk1"), nf_lab.port("desk2")
    desk1.send(frame(desk1.mac, desk2.mac))          # desk1 is learned (if not already)
    nf_lab.flush()
    before = nf_lab.counters()
    desk2.send(frame(desk2.mac, desk1.mac))
    nf_lab.expect("desk1", frame(desk2.mac, desk1.mac))
    nf_lab.expect_nothing()
    nf_lab.assert_counters(before, {"desk2.unicast": 1, "desk1.tx_packets": 1}, timeout=1)


def test_printer_vlan_reaches_only_the_trunk(nf_lab):
    printer = nf_lab.port("printer")
    printer.send(frame(printer.mac, "ff:ff:ff:ff:ff:ff"))
    nf_lab.expect("uplink", frame(printer.mac, "ff:ff:ff:ff:ff:ff", 200))
    nf_lab.expect_nothing(["desk1", "desk2", "printer"])
