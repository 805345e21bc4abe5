"""nf/testing/harness.py: run_packet through a real program, diff messages by layer."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw

from nf.datapath import BaseCfg, XdpAction, load_base
from nf.testing.harness import (Case, HarnessError, assert_packet, describe_diff, run_cases,
                                run_packet, verdict_name)

E = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
PKT = E / IP(src="10.0.0.1", dst="10.0.0.2", ttl=64) / UDP(sport=1, dport=2) / Raw(b"abcd")


@pytest.fixture(scope="module")
def prog():
    with load_base(BaseCfg.make(drop_dports=[2])) as obj:
        yield obj.program("xdp_base")


def test_run_packet_returns_verdict_and_bytes(prog):
    assert run_packet(prog, PKT) == (XdpAction.DROP, bytes(PKT))
    ok = E / IP() / TCP(dport=80)
    assert run_packet(prog, bytes(ok)) == (XdpAction.PASS, bytes(ok))


def test_short_frame_and_non_verdict():
    with pytest.raises(HarnessError, match="at least 14"):
        run_packet(SimpleNamespace(), b"\x00" * 13)
    fake = SimpleNamespace(test_run=lambda data, repeat=1: SimpleNamespace(retval=7, data_out=data))
    with pytest.raises(HarnessError, match="returned 7"):
        run_packet(fake, bytes(PKT))
    assert verdict_name(2) == "XDP_PASS" and verdict_name(9) == "invalid verdict 9"


def test_diff_names_fields_by_layer():
    other = E / IP(src="10.0.0.1", dst="10.0.0.2", ttl=63) / UDP(sport=1, dport=3) / Raw(b"abcd")
    d = describe_diff(bytes(PKT), bytes(other))
    lines = d.splitlines()
    assert "IP.ttl: expected 64, got 63" in lines
    assert any(line.startswith("IP.chksum: expected") for line in lines)
    assert any(line.startswith("UDP.dport: expected") for line in lines)
    # hex rows tagged with the layer of their first differing byte; carets under those bytes
    assert any(line.startswith("  0010 [      IP] exp") for line in lines), d
    assert describe_diff(bytes(PKT), bytes(PKT)) == ""


def test_diff_layer_mismatch_and_length():
    tagged = E / Dot1Q(vlan=5) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2) / Raw(b"abcd")
    d = describe_diff(bytes(PKT), bytes(tagged))
    assert "length: expected 46, got 50 bytes" in d
    assert "layer 1: expected IP, got Dot1Q" in d
    d = describe_diff(bytes(PKT), bytes(PKT)[:-2])
    assert "length: expected 46, got 44 bytes" in d and "Raw: payload differs (4 vs 2 bytes)" in d


def test_assert_packet_message(prog):
    with pytest.raises(AssertionError) as ei:
        assert_packet(prog, PKT, XdpAction.PASS, PKT.copy().__class__(bytes(PKT)), desc="udp 2")
    assert str(ei.value).startswith("udp 2: verdict: expected XDP_PASS, got XDP_DROP")
    with pytest.raises(AssertionError) as ei:
        run_cases(prog, [Case("a", PKT, XdpAction.DROP), Case("b", PKT, XdpAction.TX),
                         Case("c", PKT, XdpAction.DROP, bytes(PKT)[:-1] + b"x")])
    msg = str(ei.value)
    assert msg.startswith("2 case(s) failed") and "b: verdict" in msg and "c: output bytes differ" in msg
