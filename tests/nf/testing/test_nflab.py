"""NfLab: the lab follows the config (tier 1: the plan), the checks say what is wrong (tier 2),
and nothing is left behind: not on close, not when deploying fails, not on SIGTERM / SIGINT,
and what a SIGKILLed process left is removed by the next lab."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Dot1Q, Ether

from nf import deploy
from nf.bpf import pin as _pin
from nf.config import ConfigError
from nf.net import netns as _netns
from nf.testing import ExpectationError, Fields, NfLab, XdpAction, deployment
from nf.testing.nflab import lab_spec, plan

ROOT = Path(__file__).resolve().parents[3]
CONFIGS = ROOT / "configs"


def plans(path):
    return {p.port: p for p in plan(*deployment.load(path))}


def test_router_hosts_are_the_configs_next_hops_with_their_macs():
    p = plans(CONFIGS / "router.yaml")
    assert (p["rt0"].addresses, p["rt0"].mac, p["rt0"].gateways) == \
        (["10.0.0.2/24", "2001:db8::2/64"], None, ["10.0.0.1", "2001:db8::1"])
    assert (p["rt1"].addresses, p["rt1"].mac, p["rt1"].port_mac) == \
        (["10.0.1.2/24", "2001:db8:1::2/64"], "02:aa:00:00:00:02", "02:00:00:00:00:02")
    assert p["rt2"].port_addresses == ["10.0.2.1/24", "2001:db8:2::1/64"]
    spec = lab_spec(list(p.values()))
    assert spec.ipv6 and [h.port for h in spec.hosts] == ["rt0", "rt1", "rt2"]


def test_router_subnets_without_a_named_host_get_the_first_free_address(tmp_path):
    f = tmp_path / "router.yaml"
    f.write_text("interfaces:\n"
                 "  - {name: a, addresses: [10.1.0.1/24]}\n"
                 "  - {name: b, addresses: [10.2.0.2/30, 10.3.0.1/32]}\n"
                 "  - {name: c, addresses: [10.4.0.0/31]}\n")
    p = plans(f)
    assert p["a"].addresses == ["10.1.0.2/24"] and p["a"].gateways == ["10.1.0.1"]
    assert p["b"].addresses == ["10.2.0.1/30"] and p["b"].gateways == ["10.2.0.2"]   # /32: no room
    assert p["c"].addresses == ["10.4.0.1/31"]
    assert not lab_spec(list(p.values())).ipv6


def test_generated_host_macs_never_repeat_a_mac_the_config_gives():
    """configs/router.yaml gives rt0 02:00:00:00:00:01, the first host's default MAC."""
    spec = lab_spec(list(plans(CONFIGS / "router.yaml").values()))
    macs = [m for h in spec.hosts for m in (h.mac, h.port_mac)]
    assert len(set(macs)) == len(macs) == 6
    assert [h.mac for h in spec.hosts] == ["02:00:00:00:00:04", "02:aa:00:00:00:02", "02:bb:00:00:00:02"]


def test_router_hosts_have_resolved_the_router_before_the_test_starts():
    """As real hosts do before sending through a gateway; the router learns each host from its
    request (as Linux does), and nothing of it is left in the capture. The dut's kernel has
    no route to 192.168.1.1: the Time Exceeded can only come from XDP."""
    with NfLab(CONFIGS / "router.yaml") as lab:
        assert lab.received("rt0") == [] and lab.received("rt1") == []
        rt0 = lab.port("rt0")
        # the router answers the host's TTL-1 packet from XDP at once: it knows the host
        rt0.send(Ether(src=rt0.mac, dst=rt0.dut_mac) / IP(src=rt0.ip4, dst="192.168.1.1", ttl=1) / UDP())
        got = lab.expect("rt0", Fields({"Ether.dst": rt0.mac, "ICMP.type": 11, "IP.dst": rt0.ip4}))
        assert len(got) == 1
        lab.expect_nothing()


def test_switch_ports_carry_their_vlans():
    p = plans(CONFIGS / "l2_switch.yaml")
    assert [(n, x.vlan, x.vlans, x.addresses) for n, x in p.items()] == [
        ("p1", 10, (), []), ("p2", 10, (), []), ("p3", 20, (), []), ("p4", 30, (10, 20), [])]


def test_a_config_without_interfaces_is_refused_before_anything_is_made():
    with pytest.raises(ConfigError, match="the config names no interface"):
        NfLab(CONFIGS / "sketch.yaml")


def test_a_signal_during_the_teardown_waits_for_its_end():
    from nf.testing.nflab import _signals_deferred
    before = signal.getsignal(signal.SIGTERM)
    done = []
    with pytest.raises(KeyboardInterrupt, match="signal 15 .held during the teardown."):
        with _signals_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
            done.append(1)                   # still running: the signal was held
    assert done == [1] and signal.getsignal(signal.SIGTERM) == before


# ---- tier 2 -------------------------------------------------------------------------------------
def _mine() -> tuple[list[str], list[str], list[str]]:
    """This process's lab namespaces, pin directories and records."""
    tag = f"nfl{os.getpid()}x"
    return ([n for n in _netns.list_netns() if n.startswith(tag)], _pin.list_instances(), deploy.names())


@pytest.fixture(scope="module")
def sw():
    with NfLab(CONFIGS / "l2_switch.yaml", quiet=0.1) as lab:
        yield lab
    assert _mine() == ([], [], [])


def udp(src, dst, *vlans, ttl=64):
    pkt = Ether(src=src, dst=dst)
    for v in vlans:
        pkt = pkt / Dot1Q(vlan=v)
    return pkt / IP(src="10.0.0.1", dst="10.0.0.2", ttl=ttl) / UDP(sport=1, dport=2) / b"payload"


@pytest.mark.netns
def test_lab_is_the_config_deployed_under_a_test_name(sw):
    rec = deploy.read(sw.name)
    assert rec.status == "up" and rec.netns == sw.dut and rec.kind == "l2_switch" == sw.kind
    assert sw.name.startswith("l2sw-") and rec.interfaces == ["p1", "p2", "p3", "p4"]
    assert [(p.name, p.mac, p.vlan) for p in sw.ports.values()] == [
        ("p1", "02:00:00:00:00:01", 10), ("p2", "02:00:00:00:00:02", 10),
        ("p3", "02:00:00:00:00:03", 20), ("p4", "02:00:00:00:00:04", 30)]


@pytest.mark.netns
def test_expect_takes_frames_in_order_and_leaves_the_rest(sw):
    p1, p2 = sw.port("p1"), sw.port("p2")
    sw.flush()
    frames = [udp(p1.mac, "02:00:00:00:77:01", ttl=t) for t in (9, 8, 7)]
    p1.send(frames)
    assert sw.expect("p2", frames[:2]) == [bytes(f) for f in frames[:2]]
    assert sw.received("p2") == [bytes(frames[2])]
    sw.expect("p4", [udp(p1.mac, "02:00:00:00:77:01", 10, ttl=t) for t in (9, 8, 7)])
    with pytest.raises(ExpectationError) as ei:
        sw.expect_nothing()
    assert str(ei.value).startswith("p2: expected nothing, 1 frame(s) arrived:\n  "
                                    "49 bytes: Ether / IP / UDP 10.0.0.1:1 > 10.0.0.2:2")
    sw.expect_nothing()                  # the failing check took them


@pytest.mark.netns
def test_expect_failures_are_readable(sw):
    p1 = sw.port("p1")
    sw.flush()
    p1.send(udp(p1.mac, "02:00:00:00:77:02", ttl=64))
    with pytest.raises(ExpectationError) as ei:
        sw.expect("p2", udp(p1.mac, "02:00:00:00:77:02", ttl=63))
    msg = str(ei.value)
    assert msg.startswith("p2: frame 1 of 1 differs (49 bytes: Ether / IP / UDP")
    assert "  IP.ttl: expected 63, got 64" in msg and "  IP.chksum: expected" in msg
    assert "[      IP] exp" in msg
    with pytest.raises(ExpectationError) as ei:
        sw.expect("p3", Fields({"Dot1Q.vlan": 10}), timeout=0.3)
    msg = str(ei.value)
    assert msg.startswith("p3: expected 1 frame(s), 0 arrived within 0.3 s\n  meanwhile at p4: "
                          "53 bytes: Ether / Dot1Q / IP / UDP")
    with pytest.raises(ExpectationError, match=r"p4: frame 1 of 1 differs .*\n  Dot1Q.vlan: expected 20, got 10"):
        sw.expect("p4", Fields({"Dot1Q.vlan": 20}))


@pytest.mark.netns
def test_counters_and_their_failures(sw):
    p3, p4 = sw.port("p3"), sw.port("p4")
    before = sw.counters()
    p3.send([udp(p3.mac, "ff:ff:ff:ff:ff:ff")] * 2)
    sw.expect("p4", [udp(p3.mac, "ff:ff:ff:ff:ff:ff", 20)] * 2)
    d = sw.assert_counters(before, {"p3.rx_packets": 2, "p3.flood": 2, "p4.tx_packets": 2}, timeout=1)
    assert d["verdict.redirect"] == 2 and sw.delta(before)["p3.rx_packets"] == 2
    with pytest.raises(ExpectationError) as ei:
        sw.assert_counters(before, {"p3.rx_packets": 3, "p3.rx_packet": 1, "p9.nothing_like_it": 1})
    lines = str(ei.value).splitlines()
    assert lines[:2] == ["counters:", "  p3.rx_packets: expected +3, got +2 (%d -> %d)"
                         % (before["p3.rx_packets"], before["p3.rx_packets"] + 2)]
    assert lines[2].startswith("  no counter 'p3.rx_packet' (did you mean p3.rx_packets, ")
    assert lines[3].startswith("  no counter 'p9.nothing_like_it' (counters: ") and " p1.drop, " in lines[3]
    p4.send(udp(p4.mac, p3.mac, 20))                  # p3 was learned: known unicast, tag removed
    sw.expect("p3", udp(p4.mac, p3.mac))


@pytest.mark.netns
def test_prog_test_run_on_the_deployed_program(sw):
    p1, p2 = sw.port("p1"), sw.port("p2")
    verdict, out = sw.run_packet("p1", udp(p1.mac, p2.mac))
    assert verdict in (XdpAction.REDIRECT, XdpAction.PASS) and len(out) >= 14
    sw.assert_packet("p3", udp(p2.mac, p1.mac, 99), XdpAction.DROP)     # VLAN 99 is not p3's
    with pytest.raises(AssertionError, match="verdict: expected XDP_PASS, got XDP_DROP"):
        sw.assert_packet("p3", udp(p2.mac, p1.mac, 99), XdpAction.PASS)


@pytest.mark.netns
def test_a_failed_deployment_leaves_nothing(monkeypatch):
    def refused(*a, **kw):
        raise RuntimeError("refused")
    monkeypatch.setattr(deployment, "up", refused)
    had = _mine()
    with pytest.raises(RuntimeError, match="refused"):
        NfLab(CONFIGS / "router.yaml")
    assert _mine() == had


_CHILD = """
import sys, time
from nf.testing import NfLab
lab = NfLab(sys.argv[1])
print(lab.lab.name, lab.name, flush=True)
time.sleep(60)
"""


def _child(config):
    p = subprocess.Popen([sys.executable, "-c", _CHILD, str(config)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline().split()
    assert len(line) == 2, p.stderr.read()
    return p, line[0], line[1]


def _left(labname, inst):
    return ([n for n in _netns.list_netns() if n.startswith(labname)],
            [n for n in _pin.list_instances() if n == inst], [n for n in deploy.names() if n == inst])


@pytest.mark.netns
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_process_tears_its_lab_down(sig):
    p, labname, inst = _child(CONFIGS / "flow_table.yaml")
    assert _left(labname, inst) == ([f"{labname}-dut", f"{labname}-h1", f"{labname}-h2"], [inst], [inst])
    p.send_signal(sig)
    p.wait(timeout=30)
    assert _left(labname, inst) == ([], [], [])


@pytest.mark.netns
def test_what_a_killed_process_left_is_removed_by_the_next_lab():
    p, labname, inst = _child(CONFIGS / "sketch_redirect.yaml")
    p.kill()
    p.wait(timeout=30)
    assert _left(labname, inst)[1:] == ([inst], [inst])
    with NfLab(CONFIGS / "flow_table.yaml"):
        assert _left(labname, inst) == ([], [], [])


@pytest.mark.netns
def test_a_chain_is_deployed_whole_with_its_members_counters_prefixed():
    with NfLab(CONFIGS / "chain_full.yaml") as lab:
        assert lab.kind == "chain" and list(lab.ports) == ["p1", "p2", "p3"]
        p1, p2 = lab.port("p1"), lab.port("p2")
        assert (p2.ip4, p2.mac) == ("10.0.2.2", "02:00:00:00:00:02")    # the router member's neighbour
        before = lab.counters()
        p1.send(Ether(src=p1.mac, dst=p1.dut_mac) / IP(src=p1.ip4, dst="10.9.1.1") / UDP(sport=9, dport=9))
        lab.expect("p2", Fields({"IP.ttl": 63, "Ether.dst": p2.mac}))
        lab.assert_counters(before, {"dispatcher.entered": 1, "edge3-ft/table.inserts": 1,
                                     "edge3-sk/epoch.packets": 1, "edge3-rt/class static.packets": 1,
                                     "edge3-rt/verdict.redirect": 1}, timeout=1)
