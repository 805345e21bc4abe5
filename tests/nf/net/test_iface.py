"""nf/net/iface.py: resolve by name/ifindex inside a netns, ethtool features, sysctls."""
import pytest

from nf.net import iface

pytestmark = pytest.mark.netns


def test_resolve_by_name_and_index(lab):
    h1 = lab.host("h1")
    by_name = iface.resolve("eth0", h1.netns)
    assert by_name.ifindex == h1.ifindex and by_name.mac == "02:00:00:00:00:01"
    assert by_name.up and by_name.mtu == 1500
    assert iface.resolve(h1.ifindex, h1.netns).name == "eth0"
    assert iface.resolve("p2", lab.dut).ifindex == lab.port_ifindex("h2")
    assert {i.name for i in iface.list_interfaces(lab.dut)} == {"lo", "p1", "p2"}


def test_unknown_interface_is_a_clear_error(lab):
    with pytest.raises(iface.InterfaceError, match=r"no interface 'p9' in netns .*known: lo, p1, p2"):
        iface.resolve("p9", lab.dut)
    with pytest.raises(iface.InterfaceError, match="no interface 999"):
        iface.resolve(999, lab.dut)
    with pytest.raises(TypeError):
        iface.resolve(1.5, lab.dut)


def test_set_features_applies_and_rejects_unknown(lab):
    ns = lab.ns("h1")
    assert iface.set_features("eth0", {"rx-gro": False}, ns)["rx-gro"] is False
    assert iface.get_features("eth0", ns)["rx-gro"] is False
    assert iface.set_features("eth0", {"rx-gro": True}, ns)["rx-gro"] is True
    with pytest.raises(iface.InterfaceError, match="unknown ethtool feature"):
        iface.set_features("eth0", {"no-such-feature": True}, ns)


def test_sysctl_is_per_netns(lab):
    iface.set_sysctl("net.ipv4.ip_forward", 1, lab.dut)
    assert iface.get_sysctl("net.ipv4.ip_forward", lab.dut) == "1"
    assert iface.get_sysctl("net.ipv4.ip_forward", lab.ns("h1")) == "0"


def test_ethtool_stats(lab):
    st = iface.ethtool_stats("p1", lab.dut)
    assert st["peer_ifindex"] == lab.host("h1").ifindex
    assert "rx_queue_0_drops" in st
