"""nf/net/lab.py: labs come up and down, forward through a dut, stay quiet, keep VLAN tags."""
import gc
import time

import pytest
from pydantic import ValidationError
from pyroute2 import IPRoute
from scapy.layers.inet import ICMP, IP
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import Dot1Q, Ether

from nf.net import Lab, LabSpec, iface, netns
from nf.net.lab import cleanup_stale

pytestmark = pytest.mark.netns


def _bridge_dut(lab):
    """A Linux bridge over every dut port (just for these tests; NFs replace it)."""
    with lab.enter("dut"), IPRoute() as ipr:
        ipr.link("add", ifname="br0", kind="bridge", br_mcast_snooping=0)
        br = ipr.link_lookup(ifname="br0")[0]
        for p in lab.ports:
            ipr.link("set", index=ipr.link_lookup(ifname=p)[0], master=br)
        ipr.link("set", index=br, state="up")
    iface.set_sysctl("net.ipv6.conf.br0.disable_ipv6", 1, lab.dut)


def test_up_and_down():
    with Lab(LabSpec.switch(3)) as lab:
        names = lab.namespaces()
        assert len(names) == 4 and all(n in netns.list_netns() for n in names)
        assert lab.alive and lab.dut.endswith("-dut")
        assert [lab.host(h).mac for h in ("h1", "h2", "h3")] == [
            "02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03"]
        assert lab.host("h3").port_mac == "02:00:00:01:00:03"
        assert lab.host("h2").ip4 == "10.0.0.2" and lab.ports == ["p1", "p2", "p3"]
        assert {i.name for i in iface.list_interfaces(lab.ns("h2"))} == {"lo", "eth0"}
    assert not lab.alive
    assert not set(names) & set(netns.list_netns())


def test_gone_after_exception_inside():
    names = []
    with pytest.raises(ZeroDivisionError):
        with Lab(2) as lab:
            names = lab.namespaces()
            assert all(netns.exists(n) for n in names)
            1 / 0
    assert len(names) == 3
    assert not set(names) & set(netns.list_netns())


def test_finalizer_cleans_up_forgotten_lab():
    lab = Lab(1)
    names = lab.namespaces()
    assert all(netns.exists(n) for n in names)
    del lab
    gc.collect()
    assert not set(names) & set(netns.list_netns())


def test_stale_labs_of_dead_processes_are_removed():
    pid_max = int(open("/proc/sys/kernel/pid_max").read())
    stale = f"nfl{pid_max + 1}xdead-h1"  # a pid that can never exist
    netns.create(stale)
    try:
        assert stale in cleanup_stale()
        assert not netns.exists(stale)
    finally:
        netns.remove(stale)


def test_parallel_labs_do_not_collide():
    with Lab(2) as a, Lab(2) as b:
        assert a.name != b.name and not set(a.namespaces()) & set(b.namespaces())
        # Same interface names and MACs in both, but separate namespaces.
        assert a.host("h1").mac == b.host("h1").mac
        assert iface.resolve("eth0", a.ns("h1")).name == iface.resolve("eth0", b.ns("h1")).name


def test_veth_rule_and_vlan_offload_settings(lab):
    for h in lab.hosts.values():
        hf = iface.get_features(h.ifname, h.netns)
        pf = iface.get_features(h.port, lab.dut)
        assert hf["rx-gro"] is True  # the far end of every dut port: redirected frames survive
        for f in (hf, pf):
            assert f["tx-vlan-hw-insert"] is False and f["tx-vlan-stag-hw-insert"] is False


def test_ping_through_bridge_byte_exact(lab):
    _bridge_dut(lab)
    h1, h2 = lab.host("h1"), lab.host("h2")
    req = (Ether(src=h1.mac, dst=h2.mac) / IP(src=h1.ip4, dst=h2.ip4, id=1, ttl=64)
           / ICMP(id=0x1234, seq=7) / (b"nf-lab-ping" * 3))
    with lab.capture(["h1", "h2"]) as cap:
        lab.send("h1", [req])
        cap.wait(count=2, timeout=3)  # the request at h2 (+ h2's ARP) and the reply at h1
        got = cap.wait(timeout=0.3)
    at_h2 = [f for f in got[lab.tap("h2")] if f[12:14] == b"\x08\x00"]
    assert at_h2 == [bytes(req)]  # a bridge forwards unchanged
    replies = [Ether(f) for f in got[lab.tap("h1")] if f[12:14] == b"\x08\x00"
               and Ether(f).haslayer(ICMP)]
    assert len(replies) == 1
    r = replies[0]
    assert (r.src, r.dst, r[IP].src, r[IP].dst) == (h2.mac, h1.mac, h2.ip4, h1.ip4)
    assert (r[ICMP].type, r[ICMP].id, r[ICMP].seq) == (0, 0x1234, 7)
    assert bytes(r[ICMP].payload) == b"nf-lab-ping" * 3


def test_vlan_tags_survive_byte_exact(lab):
    _bridge_dut(lab)
    h1, h2 = lab.host("h1"), lab.host("h2")
    one = Ether(src=h1.mac, dst=h2.mac) / Dot1Q(vlan=10, prio=3) / IP(src="1.1.1.1", dst="2.2.2.2") / (b"a" * 30)
    two = (Ether(src=h1.mac, dst=h2.mac, type=0x88a8) / Dot1Q(vlan=100) / Dot1Q(vlan=20)
           / IP(src="1.1.1.1", dst="2.2.2.2") / (b"b" * 30))
    with lab.capture(["h2"]) as cap:
        lab.send("h1", [one, two])
        got = cap.wait(count=2, timeout=3)[lab.tap("h2")]
    assert got == [bytes(one), bytes(two)]


def test_ipv6_off_means_no_frames(make_lab):
    lab = make_lab(LabSpec.switch(2))
    with lab.capture(["h1", "h2", ("dut", "p1"), ("dut", "p2")], outgoing=True) as cap:
        # Flap the links: a fresh/up interface with IPv6 on sends DAD/RS/MLD at once.
        for node, ifn in (("h1", "eth0"), ("h2", "eth0"), ("dut", "p1"), ("dut", "p2")):
            with lab.enter(node), IPRoute() as ipr:
                idx = ipr.link_lookup(ifname=ifn)[0]
                ipr.link("set", index=idx, state="down")
                ipr.link("set", index=idx, state="up")
        got = cap.wait(timeout=1.5)
    frames = [f for fs in got.values() for f in fs]
    assert [f for f in frames if f[12:14] == b"\x86\xdd"] == []
    assert iface.get_sysctl("net.ipv6.conf.eth0.disable_ipv6", lab.ns("h1")) == "1"
    assert iface.get_sysctl("net.ipv6.conf.p1.disable_ipv6", lab.dut) == "1"


def test_ipv6_on_sends_its_mld_reports_within_the_build(make_lab):
    """The kernels' unsolicited MLD reports (by default up to ~1 s after the build: measured
    0.7 s) all leave while the lab is built, so nothing arrives later to disturb counters."""
    lab = make_lab(LabSpec.router(2, ipv6=True))
    with lab.capture(["h1", "h2", ("dut", "p1"), ("dut", "p2")], outgoing=True) as cap:
        time.sleep(1.5)
        got = cap.take()
        assert cap.take() == {t: [] for t in got}           # take() empties the capture
    assert [f[:14].hex() for fs in got.values() for f in fs] == []
    # 1 ms asked, read back as one jiffy
    assert int(iface.get_sysctl("net.ipv6.conf.eth0.mldv2_unsolicited_report_interval", lab.ns("h1"))) <= 10


def test_router_lab_forwards_ipv4_and_ipv6(make_lab):
    """Linux forwarding in the dut (a baseline setup): a scapy echo from h1 gets h2's reply."""
    lab = make_lab(LabSpec.router(2, ipv6=True, ip_forward=True))
    h1, h2 = lab.host("h1"), lab.host("h2")
    assert h1.ip6 == "fd00:1::2" and h1.port_addresses == ("10.0.1.1/24", "fd00:1::1/64")
    e = Ether(src=h1.mac, dst=h1.port_mac)
    v4 = e / IP(src=h1.ip4, dst=h2.ip4, ttl=9) / ICMP(id=4, seq=1) / b"v4"
    v6 = e / IPv6(src=h1.ip6, dst=h2.ip6, hlim=9) / ICMPv6EchoRequest(id=6, seq=1, data=b"v6")
    with lab.capture(["h1", "h2"]) as cap:
        lab.send("h1", [v4, v6])
        got = cap.wait(count=8, timeout=3)
    at_h2 = [Ether(f) for f in got[lab.tap("h2")]]
    fwd4 = [p for p in at_h2 if p.haslayer(ICMP) and p[ICMP].type == 8]
    fwd6 = [p for p in at_h2 if p.haslayer(ICMPv6EchoRequest)]
    assert len(fwd4) == 1 and fwd4[0][IP].ttl == 8 and fwd4[0].src == h2.port_mac
    assert len(fwd6) == 1 and fwd6[0][IPv6].hlim == 8 and fwd6[0].dst == h2.mac
    at_h1 = [Ether(f) for f in got[lab.tap("h1")]]
    assert [p[ICMP].id for p in at_h1 if p.haslayer(ICMP) and p[ICMP].type == 0] == [4]
    assert [p[ICMPv6EchoReply].data for p in at_h1 if p.haslayer(ICMPv6EchoReply)] == [b"v6"]


def test_per_host_ipv6_override(make_lab):
    spec = LabSpec.model_validate({
        "ipv6": True,
        "hosts": [{"name": "a", "addresses": ["10.1.0.1/24", "fd01::1/64"]},
                  {"name": "b", "addresses": ["10.1.0.2/24"], "ipv6": False, "port": "pb",
                   "mac": "02:aa:00:00:00:02"}]})
    lab = make_lab(spec)
    assert lab.host("b").mac == "02:aa:00:00:00:02" and lab.ports == ["p1", "pb"]
    assert iface.get_sysctl("net.ipv6.conf.eth0.disable_ipv6", lab.ns("a")) == "0"
    assert iface.get_sysctl("net.ipv6.conf.eth0.disable_ipv6", lab.ns("b")) == "1"
    assert iface.get_sysctl("net.ipv6.conf.pb.disable_ipv6", lab.dut) == "1"


@pytest.mark.parametrize("bad, match", [
    ({"hosts": []}, "at least 1"),
    ({"hosts": [{"name": "h1"}], "bogus": 1}, "Extra inputs"),
    ({"hosts": [{"name": "h1"}, {"name": "h1"}]}, "unique"),
    ({"hosts": [{"name": "h1", "mac": "zz"}]}, "pattern"),
    ({"hosts": [{"name": "h1", "addresses": ["10.0.0.300/24"]}]}, "addresses"),
])
def test_spec_validation(bad, match):
    with pytest.raises(ValidationError, match=match):
        LabSpec.model_validate(bad)


def test_ipv6_address_with_ipv6_off_is_refused():
    before = set(netns.list_netns())
    with pytest.raises(ValueError, match="ipv6 is off"):
        Lab({"hosts": [{"name": "h1", "addresses": ["fd00::1/64"]}]})
    assert set(netns.list_netns()) == before  # a failed build leaves nothing behind


def test_lab_from_yaml(tmp_path):
    p = tmp_path / "lab.yaml"
    p.write_text("""
hosts:
  - name: client
    addresses: [10.9.0.2/24]
    gateways: [10.9.0.1]
  - name: server
    addresses: [10.9.1.2/24]
    gateways: [10.9.1.1]
    port: srv
""")
    spec = LabSpec.from_yaml(p)
    assert [h.name for h in spec.hosts] == ["client", "server"]
    with Lab(str(p)) as lab:
        assert lab.ports == ["p1", "srv"] and lab.host("server").ip4 == "10.9.1.2"
    bad = tmp_path / "bad.yaml"
    bad.write_text("hosts:\n  - name: h1\n    addreses: [10.0.0.1/24]\n")
    from nf.config import ConfigError
    with pytest.raises(ConfigError, match=r"hosts\[0\]\.addreses"):
        LabSpec.from_yaml(bad)


def test_process_exit_without_destroy_cleans_up():
    """A lab left alive when the interpreter exits is removed by its finalizer (atexit)."""
    import subprocess
    import sys
    from pathlib import Path
    code = "from nf.net import Lab; lab = Lab(2); print(' '.join(lab.namespaces()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=str(Path(__file__).resolve().parents[3]))
    assert out.returncode == 0, out.stderr
    names = out.stdout.split()
    assert len(names) == 3
    assert not set(names) & set(netns.list_netns())
