"""The talkers sketch of ../sketch.yaml (monitor mode): it counts, every frame passes."""
import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

pytestmark = pytest.mark.nf_config("../sketch.yaml")


def test_every_frame_is_counted_and_passes(nf_lab):
    up = nf_lab.port("uplink")
    before = nf_lab.counters()
    up.send([Ether(src=up.mac, dst=up.dut_mac) / IP(src=f"198.51.100.{i % 3}", dst="192.0.2.1") / UDP()
             for i in range(30)])
    nf_lab.assert_counters(before, {"epoch.packets": 30, "verdict.pass": 30}, timeout=1)
    assert nf_lab.delta(before).get("verdict.drop", 0) == 0
