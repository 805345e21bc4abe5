"""Tier 1: parse_pkt()'s full result (struct pkt_meta) through the base/parse_probe program.

Hand-written expectations for chosen frames, then hypothesis: every field equals the Python
model (parse_model.py) for mutated and garbage frames, and bytes read back through xdp_ptr()
at the stored offsets equal the frame's bytes there."""
from __future__ import annotations

import ctypes
import importlib.util
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_Router_Alert
from scapy.layers.inet6 import (ICMPv6EchoReply, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment,
                                IPv6ExtHdrHopByHop, IPv6ExtHdrRouting)
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether
from scapy.packet import Raw

from nf.bpf import BpfObject
from nf.datapath import PROBE_OBJECT, PktFlag as F, ProbeOut, Reason, XdpAction
from nf.testing.harness import run_packet


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_model = _load("parse_model")
_fuzz = _load("test_base_fuzz")

E = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
V4 = IP(src="10.0.0.1", dst="10.0.0.2")
V6 = IPv6(src="fd00::1", dst="fd00::2")


@pytest.fixture(scope="module")
def probe():
    with BpfObject.open_built(PROBE_OBJECT) as obj:
        obj.load()
        yield obj


def parse(probe, frame) -> ProbeOut:
    frame = bytes(frame)
    m = probe.map("probe_out").typed(ctypes.c_uint32, ProbeOut)
    seq = m.lookup(0).seq
    verdict, out = run_packet(probe.program("xdp_parse_probe"), frame)
    o = m.lookup(0)
    assert o.seq == (seq + 1) & 0xFFFF and out == frame
    assert verdict == (XdpAction.PASS if o.rc == 0 else XdpAction.DROP)
    return o


# (description, frame, expected subset of pkt_meta fields)
CASES = [
    ("QinQ IPv4 UDP", E / Dot1AD(vlan=20) / Dot1Q(vlan=10, prio=5) / V4 / UDP(sport=1111, dport=53)
     / Raw(b"Q"), dict(n_vlans=2, vlan_ids=[20, 10], eth_proto=0x0800, l3_off=22, l4_off=42,
                       payload_off=50, l3_len=29, l4_proto=17, sport=1111, dport=53,
                       flags=F.VLAN | F.IPV4 | F.L4, pkt_len=51)),
    ("IPv4 options then TCP", E / IP(options=[IPOption_Router_Alert()]) / TCP(sport=7, dport=8080,
                                                                          dataofs=6, options=[("NOP", None)] * 4)
     / Raw(b"T"), dict(l3_off=14, l4_off=38, payload_off=62, l4_proto=6, sport=7, dport=8080,
                       flags=F.IPV4 | F.IP_OPTIONS | F.L4)),
    ("ICMP time exceeded", E / V4 / ICMP(type=11, code=1) / Raw(b"xy"),
     dict(l4_off=34, payload_off=42, icmp_type=11, icmp_code=1, l4_proto=1, flags=F.IPV4 | F.L4)),
    ("IPv6 three ext headers + ICMPv6", E / V6 / IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting()
     / IPv6ExtHdrDestOpt() / ICMPv6EchoReply() / Raw(b"p"),
     dict(l3_off=14, n_ext=3, l4_off=78, payload_off=86, l4_proto=58, icmp_type=129,
          l3_len=40 + 24 + 8 + 1, flags=F.IPV6 | F.IPV6_EXT | F.L4)),
    ("IPv6 later fragment", E / Dot1Q(vlan=4095) / V6 / IPv6ExtHdrFragment(offset=7, nh=6) / Raw(b"z" * 3),
     dict(n_vlans=1, vlan_ids=[4095, 0], l3_off=18, n_ext=1, l4_off=66, l4_proto=6, sport=0,
          flags=F.VLAN | F.IPV6 | F.IPV6_EXT | F.FRAG | F.FRAG_LATER)),
    ("IPv4 first fragment", E / IP(flags="MF", id=9) / UDP(sport=5, dport=6, len=500),
     dict(l4_off=34, payload_off=42, sport=5, dport=6, flags=F.IPV4 | F.FRAG | F.L4)),
    ("ARP: L2 only", E / ARP(), dict(eth_proto=0x0806, l3_off=14, l4_off=0, flags=F(0))),
    ("bad IHL: error at L3", E / IP(ihl=2) / UDP(), dict(rc=Reason.MALFORMED, err_layer=3,
                                                         flags=F.IPV4 | F.MALFORMED)),
    ("TCP doff 15 past the packet", E / V4 / TCP(dataofs=15), dict(rc=Reason.TRUNCATED, err_layer=4)),
    ("three tags", E / Dot1Q() / Dot1Q() / Dot1Q() / V4, dict(rc=Reason.TOO_DEEP, err_layer=2)),
]


@pytest.mark.parametrize("desc,frame,want", CASES, ids=[c[0] for c in CASES])
def test_parse_fields(probe, desc, frame, want):
    o = parse(probe, frame)
    got = o.meta.as_dict() | {"rc": o.rc}
    for k, v in want.items():
        if k == "flags" and want.get("rc", 0) != 0:
            assert got[k] & v == v, (k, F(got[k]))
        else:
            assert got[k] == v, (k, got[k], v)
    if o.meta.flags & F.L4:
        b = bytes(frame)
        assert bytes(o.l4_head) == b[o.meta.l4_off:o.meta.l4_off + 4]
        assert o.has_payload == (o.meta.payload_off < len(b))
        if o.has_payload:
            assert o.payload_head == b[o.meta.payload_off]


def _check_against_model(probe, frame: bytes) -> None:
    o = parse(probe, frame)
    want = _model.model(frame)
    if want["rc"] != 0:
        assert (o.rc, o.meta.err_layer) == (want["rc"], want["err_layer"]), frame.hex()
        assert o.meta.flags & want["flags"] and not o.meta.flags & (F.TRUNCATED | F.MALFORMED) & ~want["flags"]
        return
    got = o.meta.as_dict() | {"rc": o.rc}
    assert got == want, frame.hex()
    if o.meta.flags & F.L4:
        n = o.meta.l4_off
        assert bytes(o.l4_head) == (frame[n:n + 4] if n + 4 <= len(frame) else bytes(4))
        assert o.has_payload == (o.meta.payload_off < len(frame))


_S = settings(max_examples=400, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])


@_S
@given(frame=_fuzz.mutated())
def test_mutated_frames_match_model(probe, frame):
    _check_against_model(probe, frame)


@_S
@given(frame=_fuzz.garbage)
def test_garbage_frames_match_model(probe, frame):
    _check_against_model(probe, frame)
