"""Tier 1: xdp_progs/base (parse.h + stats.h + rodata config) through BPF_PROG_TEST_RUN.

Tables of (description, scapy input, expected verdict, expected output bytes). The base program
never rewrites, so every expected output is the input, byte-exact (Case.expected None)."""
from __future__ import annotations

import os

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_NOP, IPOption_Router_Alert
from scapy.layers.inet6 import (ICMPv6EchoRequest, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment,
                                IPv6ExtHdrHopByHop, IPv6ExtHdrRouting)
from scapy.layers.ipsec import AH
from scapy.layers.l2 import ARP, LLC, Dot1AD, Dot1Q, Ether
from scapy.packet import Raw

from nf.datapath import BaseCfg, NfStats, Reason, XdpAction, load_base, read_stats
from nf.testing.harness import Case, HarnessError, assert_packet, run_cases, run_packet

PASS, DROP, TX, ABORTED = XdpAction.PASS, XdpAction.DROP, XdpAction.TX, XdpAction.ABORTED
MACS = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
E = Ether(**MACS)
V4 = IP(src="10.0.0.1", dst="10.0.0.2")
V6 = IPv6(src="fd00::1", dst="fd00::2")


def pad60(p) -> bytes:
    """What a NIC delivers for a short frame: Ethernet padding to 60 bytes."""
    b = bytes(p)
    return b + bytes(max(0, 60 - len(b)))


def cut(p, n: int) -> bytes:
    """The first n bytes of a frame (a truncated capture)."""
    return bytes(p)[:n]


def ext(n: int):
    """IPv6 with n extension headers (hop-by-hop first, then destination options) and UDP."""
    p = V6 / IPv6ExtHdrHopByHop() if n else V6
    for _ in range(n - 1):
        p = p / IPv6ExtHdrDestOpt()
    return E / p / UDP(sport=1000, dport=53) / Raw(b"q")


def ah(nh: int):
    """An AH header of 24 bytes: payloadlen (24 / 4) - 2 = 4."""
    return AH(nh=nh, payloadlen=4, spi=1, seq=1, icv=bytes(12))

# (case, reason counted when dropped by the default config: None for well-formed frames)
DEFAULT = [
    # well-formed
    (Case("IPv4 TCP", E / V4 / TCP(sport=1234, dport=80), PASS), None),
    (Case("IPv4 UDP", E / V4 / UDP(sport=1234, dport=53) / Raw(b"x" * 20), PASS), None),
    (Case("IPv4 ICMP echo", E / V4 / ICMP() / Raw(b"ping"), PASS), None),
    (Case("IPv4 options (router alert)", E / IP(options=[IPOption_Router_Alert()]) / UDP(), PASS), None),
    (Case("IPv4 options, IHL 15", E / IP(options=[IPOption_NOP()] * 40) / TCP(), PASS), None),
    (Case("IPv4 Ethernet padding", pad60(E / V4 / UDP()), PASS), None),
    (Case("IPv4 GRE, no L4 parse", E / IP(proto=47) / Raw(b"\x00"), PASS), None),
    (Case("IPv4 ICMPv6 proto number: not ICMP", E / IP(proto=58) / Raw(b"\x80"), PASS), None),
    (Case("IPv6 UDP", E / V6 / UDP(dport=53), PASS), None),
    (Case("IPv6 TCP", E / V6 / TCP(dport=443), PASS), None),
    (Case("IPv6 ICMPv6 echo", E / V6 / ICMPv6EchoRequest(), PASS), None),
    (Case("IPv6 HBH+routing+dstopts", E / V6 / IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting()
          / IPv6ExtHdrDestOpt() / UDP(), PASS), None),
    (Case("IPv6 AH then UDP", E / V6 / ah(17) / UDP(), PASS), None),
    (Case("IPv6 6 ext headers (the maximum)", ext(6), PASS), None),
    (Case("IPv6 no next header", E / IPv6(nh=59), PASS), None),
    (Case("one 802.1Q tag", E / Dot1Q(vlan=10) / V4 / UDP(), PASS), None),
    (Case("802.1ad + 802.1Q", E / Dot1AD(vlan=20) / Dot1Q(vlan=10) / V4 / TCP(), PASS), None),
    (Case("two 802.1Q tags, IPv6", E / Dot1Q(vlan=1) / Dot1Q(vlan=4094) / V6 / UDP(), PASS), None),
    (Case("ARP", E / ARP(), PASS), None),
    (Case("802.3 LLC (length field)", E / LLC() / Raw(b"abc"), PASS), None),
    (Case("unknown EtherType, header only", Ether(**MACS, type=0x88b5), PASS), None),
    # fragments
    (Case("IPv4 first fragment", E / IP(flags="MF") / UDP(len=1000) / Raw(b"x" * 16), PASS), None),
    (Case("IPv4 later fragment, 1 byte", E / IP(frag=5, proto=6) / Raw(b"\x01"), PASS), None),
    (Case("IPv4 last fragment", E / IP(frag=100, proto=17) / Raw(b"x" * 8), PASS), None),
    (Case("IPv6 first fragment", E / V6 / IPv6ExtHdrFragment(m=1, nh=17) / UDP(len=900), PASS), None),
    (Case("IPv6 later fragment", E / V6 / IPv6ExtHdrFragment(offset=10, nh=6) / Raw(b"\x01"), PASS), None),
    (Case("IPv6 atomic fragment", E / V6 / IPv6ExtHdrFragment() / UDP(), PASS), None),
    # malformed / truncated / too deep -> dropped and counted by reason
    (Case("IPv4 IHL 4", E / IP(ihl=4) / TCP(), DROP), Reason.MALFORMED),
    (Case("IPv4 IHL 0", E / IP(ihl=0) / UDP(), DROP), Reason.MALFORMED),
    (Case("IPv4 version 6 under 0x0800", E / IP(version=6) / UDP(), DROP), Reason.MALFORMED),
    (Case("IPv4 total length < IHL*4", E / IP(len=19) / UDP(), DROP), Reason.MALFORMED),
    (Case("IPv4 total length > frame", E / IP(len=200) / UDP(), DROP), Reason.TRUNCATED),
    (Case("IPv4 header cut at 12 bytes", cut(E / V4 / UDP(), 26), DROP), Reason.TRUNCATED),
    (Case("EtherType IPv4, no IP header", Ether(**MACS, type=0x0800), DROP), Reason.TRUNCATED),
    (Case("IPv4 options run past the frame", cut(E / IP(options=[IPOption_NOP()] * 40), 40), DROP),
     Reason.TRUNCATED),
    (Case("truncated TCP (10 of 20 bytes)", E / IP(proto=6) / Raw(b"\x00" * 10), DROP), Reason.TRUNCATED),
    (Case("TCP data offset 4", E / V4 / TCP(dataofs=4), DROP), Reason.MALFORMED),
    (Case("TCP data offset past the IP packet", E / V4 / TCP(dataofs=15), DROP), Reason.TRUNCATED),
    (Case("truncated UDP (4 bytes)", E / IP(proto=17) / Raw(b"\x00" * 4), DROP), Reason.TRUNCATED),
    (Case("UDP length 7", E / V4 / UDP(len=7), DROP), Reason.MALFORMED),
    (Case("UDP length past the IP packet", E / V4 / UDP(len=100), DROP), Reason.TRUNCATED),
    (Case("truncated ICMP (4 bytes)", E / IP(proto=1) / Raw(b"\x08\x00\x00\x00"), DROP), Reason.TRUNCATED),
    (Case("IPv4 first fragment without L4 header", E / IP(flags="MF", proto=6) / Raw(b"\0" * 8), DROP),
     Reason.TRUNCATED),
    (Case("IPv6 header cut at 30 bytes", cut(E / V6 / UDP(), 44), DROP), Reason.TRUNCATED),
    (Case("IPv6 payload length > frame", E / IPv6(plen=100) / UDP(), DROP), Reason.TRUNCATED),
    (Case("IPv6 version 4 under 0x86dd", E / IPv6(version=4) / UDP(), DROP), Reason.MALFORMED),
    (Case("IPv6 truncated UDP", E / IPv6(nh=17) / Raw(b"\0" * 6), DROP), Reason.TRUNCATED),
    (Case("IPv6 truncated ICMPv6", E / IPv6(nh=58) / Raw(b"\x80\0"), DROP), Reason.TRUNCATED),
    (Case("IPv6 7 ext headers: too deep", ext(7), DROP), Reason.TOO_DEEP),
    (Case("IPv6 hop-by-hop not first", E / V6 / IPv6ExtHdrDestOpt() / IPv6ExtHdrHopByHop() / UDP(),
          DROP), Reason.MALFORMED),
    (Case("IPv6 ext header longer than packet", E / IPv6(nh=60) / Raw(b"\x11\x0a" + bytes(6)), DROP),
     Reason.TRUNCATED),
    (Case("IPv6 fragment header cut", E / IPv6(nh=44) / Raw(b"\x11\x00\x00\x01"), DROP), Reason.TRUNCATED),
    (Case("three VLAN tags: too deep", E / Dot1AD(vlan=1) / Dot1Q(vlan=2) / Dot1Q(vlan=3) / V4 / UDP(),
          DROP), Reason.TOO_DEEP),
    (Case("VLAN tag cut", Ether(**MACS, type=0x8100) / Raw(b"\x00\x0a"), DROP), Reason.TRUNCATED),
    (Case("VLAN then truncated IPv4", E / Dot1Q(vlan=7) / IP(len=99) / UDP(), DROP), Reason.TRUNCATED),
]
CASES = [c for c, _ in DEFAULT]


@pytest.fixture(scope="module")
def default_base():
    with load_base() as obj:
        yield obj


@pytest.mark.parametrize("case,reason", DEFAULT, ids=[c.desc for c in CASES])
def test_default_config(default_base, case, reason):
    """Well-formed frames pass, malformed ones drop; each drop counted under its parse reason."""
    before = read_stats(default_base)
    assert_packet(default_base.program("xdp_base"), case.pkt, case.verdict, case.expected,
                  desc=case.desc)
    after = read_stats(default_base)
    delta = {r: after.reasons[r] - before.reasons[r] for r in after.reasons}
    want = {r: 0 for r in delta}
    if reason is not None:
        want[reason] = 1
    assert delta == want, case.desc
    assert after.packets[case.verdict] - before.packets[case.verdict] == 1
    assert after.bytes[case.verdict] - before.bytes[case.verdict] == len(bytes(case.pkt))


def _cfg_cases(cfg: BaseCfg, cases: list[Case]):
    with load_base(cfg) as obj:
        run_cases(obj.program("xdp_base"), cases)
        return read_stats(obj)


def test_drop_by_l4_proto():
    s = _cfg_cases(BaseCfg.make(drop_l4_protos=[17, 47]), [
        Case("UDP dropped", E / V4 / UDP(), DROP),
        Case("TCP passes", E / V4 / TCP(), PASS),
        Case("GRE dropped", E / IP(proto=47) / Raw(b"\0" * 4), DROP),
        Case("IPv6 UDP after 3 ext headers dropped", E / V6 / IPv6ExtHdrHopByHop()
             / IPv6ExtHdrRouting() / IPv6ExtHdrDestOpt() / UDP(), DROP),
        Case("later UDP fragment dropped (proto from the IP header)", E / IP(frag=9, proto=17)
             / Raw(b"x"), DROP),
        Case("IPv6 later UDP fragment dropped", E / V6 / IPv6ExtHdrFragment(offset=3, nh=17)
             / Raw(b"x"), DROP),
        Case("ARP passes (not IP)", E / ARP(), PASS),
        Case("malformed UDP still a parse drop", E / V4 / UDP(len=3), DROP),
    ])
    assert s.reasons[Reason.CONFIG] == 5 and s.reasons[Reason.MALFORMED] == 1
    assert s.packets[DROP] == 6 and s.packets[PASS] == 2


def test_drop_by_dst_port():
    s = _cfg_cases(BaseCfg.make(drop_dports=[53, 8080]), [
        Case("UDP dport 53", E / V4 / UDP(dport=53), DROP),
        Case("TCP dport 8080", E / V4 / TCP(dport=8080), DROP),
        Case("TCP sport 53 passes", E / V4 / TCP(sport=53, dport=80), PASS),
        Case("dport 53 behind 40 bytes of IPv4 options", E / IP(options=[IPOption_NOP()] * 40)
             / UDP(dport=53), DROP),
        Case("dport 53 behind two VLAN tags", E / Dot1AD(vlan=5) / Dot1Q(vlan=6) / V4 / UDP(dport=53),
             DROP),
        Case("IPv6 dport 8080 behind AH", E / V6 / ah(6) / TCP(dport=8080), DROP),
        Case("IPv6 dport 53 behind 6 ext headers", ext(6), DROP),
        Case("later fragment: no ports, passes", E / IP(frag=9, proto=17) / Raw(b"\x00\x35" * 4), PASS),
        Case("ICMP passes", E / V4 / ICMP(), PASS),
        Case("UDP dport 54 passes", E / V6 / UDP(dport=54), PASS),
    ])
    assert s.reasons[Reason.CONFIG] == 6 and s.packets[PASS] == 4, s.as_dict()


def test_drop_fragments():
    _cfg_cases(BaseCfg.make(drop_fragments=True), [
        Case("IPv4 first fragment", E / IP(flags="MF") / UDP(), DROP),
        Case("IPv4 later fragment", E / IP(frag=1) / Raw(b"x"), DROP),
        Case("IPv6 first fragment", E / V6 / IPv6ExtHdrFragment(m=1) / UDP(), DROP),
        Case("IPv6 later fragment", E / V6 / IPv6ExtHdrFragment(offset=1) / Raw(b"x"), DROP),
        Case("IPv6 atomic fragment is no fragment", E / V6 / IPv6ExtHdrFragment() / UDP(), PASS),
        Case("IPv4 DF set, not a fragment", E / IP(flags="DF") / UDP(), PASS),
    ])


def test_default_action_and_malformed_action():
    _cfg_cases(BaseCfg.make(action=DROP, malformed_action=PASS), [
        Case("well-formed dropped", E / V4 / TCP(), DROP),
        Case("malformed passed", E / IP(ihl=3) / TCP(), PASS),
        Case("too deep passed", ext(7), PASS),
    ])
    s = _cfg_cases(BaseCfg.make(action=TX, malformed_action=ABORTED), [
        Case("well-formed bounced", E / V6 / UDP(), TX),
        Case("truncated aborted", cut(E / V6 / UDP(), 40), ABORTED),
    ])
    assert s.packets[TX] == 1 and s.packets[ABORTED] == 1 and s.reasons[Reason.TRUNCATED] == 1


def test_out_of_range_action_becomes_aborted():
    """A raw config with action 9 (BaseCfg.make refuses it): xdp_exit turns it into ABORTED."""
    with load_base(BaseCfg(action=9)) as obj:
        v, out = run_packet(obj.program("xdp_base"), E / V4 / UDP())
        s = read_stats(obj)
    assert v == ABORTED and out == bytes(E / V4 / UDP())
    assert s.packets[ABORTED] == 1 and s.reasons[Reason.INVALID_ACTION] == 1


def test_cfg_validation():
    with pytest.raises(ValueError, match="base_cfg.action"):
        BaseCfg.make(action=XdpAction.REDIRECT)
    with pytest.raises(ValueError, match="drop_dports"):
        BaseCfg.make(drop_dports=[0])
    with pytest.raises(ValueError, match="drop_l4_protos"):
        BaseCfg.make(drop_l4_protos=[1, 2, 3, 4, 5])
    assert (BaseCfg().action, BaseCfg().malformed_action) == (PASS, DROP)


def test_short_frame_refused_by_harness(default_base):
    with pytest.raises(HarnessError, match="at least 14"):
        run_packet(default_base.program("xdp_base"), b"\x00" * 13)


def test_stats_exact_per_cpu_and_summed():
    """Frames run pinned on each CPU in turn: every CPU's record holds exactly its own frames
    (packets and bytes per action, reasons), and the sum is their total."""
    cpus = sorted(os.sched_getaffinity(0))
    plan = [  # (frame, verdict, reason) — prime counts per kind
        *[(E / V4 / UDP(sport=1000, dport=2000) / Raw(b"x" * i), PASS, None) for i in range(7)],
        *[(E / IP(ihl=4) / TCP(), DROP, Reason.MALFORMED)] * 5,
        *[(E / IP(len=300) / UDP(), DROP, Reason.TRUNCATED)] * 3,
        *[(ext(7), DROP, Reason.TOO_DEEP)] * 2,
        *[(E / V4 / UDP(dport=53), DROP, Reason.CONFIG)] * 11,
    ]
    saved = os.sched_getaffinity(0)
    want = {c: NfStats() for c in cpus}
    try:
        with load_base(BaseCfg.make(drop_dports=[53])) as obj:
            prog = obj.program("xdp_base")
            for i, (pkt, verdict, reason) in enumerate(plan):
                cpu = cpus[i % len(cpus)]
                os.sched_setaffinity(0, {cpu})
                assert run_packet(prog, pkt)[0] == verdict
                w = want[cpu]
                w.packets[verdict] += 1
                w.bytes[verdict] += len(bytes(pkt))
                if reason is not None:
                    w.reasons[reason] += 1
            per_cpu = obj.map("base_stats").typed(__import__("ctypes").c_uint32, NfStats).lookup_percpu(0)
            total = read_stats(obj)
    finally:
        os.sched_setaffinity(0, saved)
    for cpu, rec in enumerate(per_cpu):
        w = want.get(cpu, NfStats())
        assert bytes(rec) == bytes(w), f"CPU {cpu}: {list(rec.packets)} vs {list(w.packets)}"
    assert total.packets[PASS] == 7 and total.packets[DROP] == 21
    assert total.bytes[PASS] == sum(len(bytes(p)) for p, v, _ in plan if v == PASS)
    assert total.bytes[DROP] == sum(len(bytes(p)) for p, v, _ in plan if v == DROP)
    assert (total.reasons[Reason.MALFORMED], total.reasons[Reason.TRUNCATED],
            total.reasons[Reason.TOO_DEEP], total.reasons[Reason.CONFIG]) == (5, 3, 2, 11)
    assert total.cpus == len(per_cpu)
