"""Frame expressions of case files: what scapy builds from them, byte for byte, and everything
outside the allowed subset refused with the reason (nothing is ever evaluated as Python)."""
import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether

from nf.testing.scapy_expr import ExprError, Mapping, Vars, check, frame

P1 = Vars("port p1", {"mac": "02:00:00:00:00:01", "dut_mac": "02:00:00:01:00:01", "ip4": "10.0.0.2",
                      "vlan": 10})
NAMES = {"p1": P1, "port": P1, "ports": Mapping("ports", {"p1": P1, "eth-0": P1})}


@pytest.mark.parametrize("text, pkt", [
    ("Ether(src=p1.mac, dst=p1.dut_mac)/IP(src=p1.ip4, dst='10.9.1.1', ttl=1)/UDP(sport=1, dport=2)/('x'*20)",
     Ether(src="02:00:00:00:00:01", dst="02:00:00:01:00:01") / IP(src="10.0.0.2", dst="10.9.1.1", ttl=1)
     / UDP(sport=1, dport=2) / (b"x" * 20)),
    ("Ether()/Dot1Q(vlan=port.vlan)/Dot1Q(vlan=20)/IPv6(dst='2001:db8::1', hlim=-(-3))/ICMPv6EchoRequest(id=7)",
     Ether() / Dot1Q(vlan=10) / Dot1Q(vlan=20) / IPv6(dst="2001:db8::1", hlim=3) / ICMPv6EchoRequest(id=7)),
    ("Ether(dst='ff:ff:ff:ff:ff:ff')/ARP(pdst='10.0.0.9', hwsrc=ports['eth-0'].mac)",
     Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(pdst="10.0.0.9", hwsrc="02:00:00:00:00:01")),
    ("Ether()/IP(options=[], flags='DF', id=3 * 7)/TCP(flags='SA', sport=80 + 8000)/(b'\\x00\\x01' + b'z')",
     Ether() / IP(options=[], flags="DF", id=21) / TCP(flags="SA", sport=8080) / b"\x00\x01z"),
    ("Ether()/IP()/ICMP(type='echo-request')/Raw(load='ping')",
     Ether() / IP() / ICMP(type="echo-request") / b"ping"),
])
def test_allowed_expressions_build_the_same_bytes_as_scapy(text, pkt):
    check(text, tuple(NAMES))
    assert frame(text, NAMES) == bytes(pkt)


def test_bytes_are_a_frame_too():
    assert frame("b'\\x02' * 14", {}) == b"\x02" * 14


@pytest.mark.parametrize("text, why", [
    ("__import__('os').system('true')", "only scapy layers may be called, not \"__import__('os').system\""),
    ("__import__('os')", "only scapy layers may be called, not '__import__'"),
    ("Ether()/3", "'/' stacks layers: Ether / int"),
    ("Ether()/open('/etc/passwd').read()", "only scapy layers may be called"),
    ("Ether()/os", "name 'os' is not allowed"),
    ("Ether.__class__", "attribute .__class__ is not allowed here"),
    ("Ether()/''.join(['a'])", "only scapy layers may be called"),
    ("Ether()/p1.__dict__", "port p1 has no '__dict__'"),
    ("Ether()/[x for x in 'ab']", "listcomp is not allowed"),
    ("(lambda: 1)()", "only scapy layers may be called"),
    ("Ether()/f'{p1}'", "joinedstr is not allowed"),
    ("Ether(**{'dst': 'x'})", "**kwargs is not allowed"),
    ("Ether(*['a'])", "*args is not allowed"),
    ("Ether()/IP() * 3", "'*' repeats a string or bytes"),
    ("Ether()/('x' * 70000)", "repeated string longer than 65535"),
    ("Ether() if 1 else IP()", "ifexp is not allowed"),
    ("Ether()/IP(ttl=2**8)", "operator Pow is not allowed"),
    ("rdpcap('x.pcap')", "only scapy layers may be called, not 'rdpcap'"),
    ("Ether(); IP()", "not an expression"),
    ("Ether(nosuchfield=1)", "Ether has no field 'nosuchfield'"),
    ("ports['p9'].mac", "ports has no 'p9'"),
    ("'not a frame'", "gives str, not a frame"),
])
def test_everything_else_is_refused_with_the_reason(text, why):
    with pytest.raises(ExprError, match=None) as ei:
        check(text, tuple(NAMES))
        frame(text, NAMES)
    assert why in str(ei.value)


def test_static_check_names_the_column_and_needs_no_lab():
    with pytest.raises(ExprError, match=r"name 'rt9' is not allowed: use scapy layers or p1, port, "
                                        r"ports \(column 28\)"):
        check("Ether()/IP(src=p1.ip4, dst=rt9.ip4)", ("p1", "port", "ports"))
    with pytest.raises(ExprError, match="attribute .mac is not allowed here"):
        check("IP.mac", ("p1",))


def test_size_limits():
    with pytest.raises(ExprError, match="longer than 4096"):
        check("Ether()/" + "'x'+" * 1100 + "'x'")
    with pytest.raises(ExprError, match="too large"):
        check("+".join(["1"] * 300))
