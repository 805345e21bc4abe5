"""traffic/generators.py: frames are what they claim (sizes, IMIX quotas, ARP/ND fields), the
malformed set is really malformed (each defect checked by an independent Python or scapy check),
and the base program (xdp_progs/base) never misforwards it and counts every defect — through
test_run (tier 1) and natively on a lab port (netns). The veth XDP size limit is re-measured."""
from __future__ import annotations

import collections
import errno
import importlib.util
import struct
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import (ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6ND_RA, ICMPv6ND_RS,
                                ICMPv6NDOptDstLLAddr, ICMPv6NDOptSrcLLAddr, IPv6,
                                IPv6ExtHdrFragment)
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether

from nf.datapath import BaseCfg, Reason, XdpAction, load_base, read_stats
from traffic import flows, generators as g

MALFORMED = g.malformed_set()
REPO = Path(__file__).resolve().parents[2]


def be16(b: bytes, off: int) -> int:
    return struct.unpack_from("!H", b, off)[0]


# ---- fixed sizes and IMIX -------------------------------------------------------------------
@pytest.mark.parametrize("size", [60, 64, 100, 128, 512, 1514, 3520, 9014])
@pytest.mark.parametrize("l3,l4", [("ipv4", "udp"), ("ipv4", "tcp"), ("ipv4", "icmp"),
                                   ("ipv6", "udp"), ("ipv6", "tcp"), ("ipv6", "icmpv6")])
def test_fixed_size_exact(size, l3, l4):
    if l3 == "ipv6" and size < 74:  # 14 + 40 + 20 (TCP)
        if size < {"udp": 62, "tcp": 74, "icmpv6": 62}[l4]:
            with pytest.raises(ValueError, match="smaller than headers"):
                g.fixed_size(size, 1, l3=l3, l4=l4)
            return
    frames = g.fixed_size(size, 5, l3=l3, l4=l4)
    assert [len(f) for f in frames] == [size] * 5
    # IPv4 ID / ICMP seq number the frames; IPv6 UDP/TCP has no such field: identical frames
    assert len(set(frames)) == (1 if l3 == "ipv6" and l4 != "icmpv6" else 5)
    p = Ether(frames[0])
    ip = p[IP] if l3 == "ipv4" else p[IPv6]
    # the IP length fields cover the padding (it is L4 payload, not an Ethernet trailer)
    assert (ip.len if l3 == "ipv4" else ip.plen + 40) == size - 14


@pytest.mark.parametrize("vlans", [(), (7,), (100, 7)])
def test_patched_frames_equal_scapy_builds(vlans):
    """fixed_size/imix patch the IPv4 ID into one template per size: same bytes as scapy."""
    from traffic import packets
    for l4 in ("udp", "tcp", None):
        got = g.fixed_size(100, 300, l4=l4, vlans=vlans)
        for i in (0, 1, 77, 255, 256, 299):
            assert got[i] == packets.frame("ipv4", l4, size=100, ip_id=i, vlans=vlans), (l4, i)


def test_fixed_size_over_flows():
    fs = flows.zipf(50, 400, s=1.2, seed=3)
    frames = g.fixed_size(128, 400, flows=fs)
    assert all(len(f) == 128 for f in frames)
    for f, flow in zip(frames, fs.packets()):
        p = Ether(f)
        l4 = p[UDP] if flow.proto == 17 else p[TCP]
        assert (p[IP].src, p[IP].dst, l4.sport, l4.dport) == (flow.src, flow.dst, flow.sport,
                                                              flow.dport)
    # flow lists are cycled
    frames = g.fixed_size(80, 7, flows=fs.flows[:3])
    assert [Ether(f)[IP].src for f in frames] == [fs.flows[i % 3].src for i in range(7)]


@pytest.mark.parametrize("n", [0, 1, 11, 12, 1000, 1200, 9999])
def test_imix_exact_proportions(n):
    frames = g.imix(n, seed=n)
    got = collections.Counter(len(f) for f in frames)
    quota = g.mix_quota(n, g.IMIX_SIMPLE)
    assert sum(quota) == n and len(frames) == n
    for (size, w), q in zip(g.IMIX_SIMPLE, quota):
        assert got.get(size, 0) == q
        assert abs(q - n * w / 12) < 1  # largest remainder: never a whole frame off
    if n == 1200:
        assert quota == [700, 400, 100]


def test_imix_order_shuffled_and_deterministic():
    a, b, c = g.imix(120, seed=1), g.imix(120, seed=1), g.imix(120, seed=2)
    assert a == b and [len(x) for x in a] != [len(x) for x in c]
    sizes = [len(x) for x in a]
    assert sizes != sorted(sizes) and sizes != sorted(sizes, reverse=True)


def test_imix_custom_mix_and_errors():
    frames = g.imix(100, mix=((60, 61), (590, 23), (1280, 11), (1514, 5)), l3="ipv4", l4="tcp")
    assert collections.Counter(len(f) for f in frames) == {60: 61, 590: 23, 1280: 11, 1514: 5}
    with pytest.raises(ValueError, match="smaller than headers"):
        g.imix(10, l3="ipv6")  # 60-byte class is below IPv6/UDP's 62 header bytes
    assert collections.Counter(len(f) for f in g.imix(12, mix=((62, 7), (590, 4), (1514, 1)),
                                                      l3="ipv6")) == {62: 7, 590: 4, 1514: 1}
    with pytest.raises(ValueError, match="weight"):
        g.mix_quota(10, [(60, 0)])
    with pytest.raises(ValueError, match="size"):
        g.mix_quota(10, [(10, 1)])
    with pytest.raises(ValueError, match="count"):
        g.imix(-1)


# ---- ARP / ND -------------------------------------------------------------------------------
def test_arp_frames():
    s = g.arp_nd_set()
    for name in ("arp_request", "arp_reply", "gratuitous_arp"):
        assert len(s[name]) == 60 and s[name][42:] == bytes(18), name  # padded with zeros
        assert be16(s[name], 12) == 0x0806
    req, rep, gra = (Ether(s[k]) for k in ("arp_request", "arp_reply", "gratuitous_arp"))
    assert req.dst == "ff:ff:ff:ff:ff:ff" and req[ARP].op == 1
    assert (req[ARP].psrc, req[ARP].pdst, req[ARP].hwdst) == ("10.0.0.1", "10.0.0.2",
                                                              "00:00:00:00:00:00")
    assert rep.dst == "02:00:00:00:00:01" and rep[ARP].op == 2
    assert (rep[ARP].hwsrc, rep[ARP].psrc, rep[ARP].pdst) == ("02:00:00:00:00:02", "10.0.0.2",
                                                              "10.0.0.1")
    assert gra[ARP].psrc == gra[ARP].pdst == "10.0.0.1" and gra.dst == "ff:ff:ff:ff:ff:ff"
    tagged = Ether(g.arp_request("02:00:00:00:00:09", "10.1.0.1", "10.1.0.2", vlans=[100, 7]))
    assert tagged.type == 0x88A8 and tagged[Dot1AD].vlan == 100 and tagged[Dot1Q].vlan == 7
    assert tagged[ARP].pdst == "10.1.0.2"


def _icmp6_csum_ok(p) -> bool:
    layer = p[IPv6].payload
    want = layer.cksum
    layer.cksum = None
    return Ether(bytes(p))[IPv6].payload.cksum == want


def test_nd_frames():
    s = g.arp_nd_set()
    ns = Ether(s["nd_solicit"])
    assert ns[IPv6].dst == "ff02::1:ff00:2" and ns.dst == "33:33:ff:00:00:02"
    assert ns[IPv6].hlim == 255 and ns[ICMPv6ND_NS].tgt == "fd00::2"
    assert ns[ICMPv6NDOptSrcLLAddr].lladdr == "02:00:00:00:00:01" and _icmp6_csum_ok(ns)
    na = Ether(s["nd_advert"])
    assert (na[ICMPv6ND_NA].tgt, na[ICMPv6ND_NA].S, na[ICMPv6ND_NA].O, na[ICMPv6ND_NA].R) == \
        ("fd00::2", 1, 1, 0)
    assert na[ICMPv6NDOptDstLLAddr].lladdr == "02:00:00:00:00:02" and na.dst == "02:00:00:00:00:01"
    assert _icmp6_csum_ok(na)
    rs, ra = Ether(s["router_solicit"]), Ether(s["router_advert"])
    assert rs.haslayer(ICMPv6ND_RS) and rs[IPv6].dst == "ff02::2" and rs.dst == "33:33:00:00:00:02"
    assert ra.haslayer(ICMPv6ND_RA) and ra[IPv6].dst == "ff02::1" and _icmp6_csum_ok(ra)
    assert g.solicited_node("2001:db8::abcd:1234:5678") == "ff02::1:ff34:5678"


# ---- the malformed set: independent checks of every claimed defect ---------------------------
def l2_walk(b: bytes) -> tuple[int | None, int, int]:
    """(EtherType after all VLAN tags or None if cut inside one, L3 offset, tag count)."""
    if len(b) < 14:
        return None, 14, 0
    proto, off, tags = be16(b, 12), 14, 0
    while proto in (0x8100, 0x88A8):
        if off + 4 > len(b):
            return None, off, tags
        proto, off, tags = be16(b, off + 2), off + 4, tags + 1
    return proto, off, tags


L4_MIN = {6: 20, 17: 8, 1: 8, 58: 8}


def _ip(b):
    """(version, l3 off, header len, IP packet len, proto, frame bytes from l3)."""
    proto, off, _ = l2_walk(b)
    avail = len(b) - off
    if proto == 0x0800:
        return 4, off, (b[off] & 15) * 4, be16(b, off + 2), b[off + 9], avail
    assert proto == 0x86DD
    return 6, off, 40, 40 + be16(b, off + 4), b[off + 6], avail


def check_defect(m: g.Malformed) -> bool:
    """True when m.frame really has the defect m.check names (computed from bytes)."""
    b, c = m.frame, m.check
    if c == "eth.len":
        return len(b) < 14
    if c == "frame.len":
        return len(b) > g.VETH_XDP_MAX_FRAME
    proto, off, tags = l2_walk(b)
    if c == "vlan.cut":
        return proto is None
    if c == "vlan.depth":
        return tags > 2
    if c == "ipv4.cut":
        avail = len(b) - off
        return proto == 0x0800 and (avail < 20 or avail < (b[off] & 15) * 4 or avail < be16(b, off + 2))
    if c == "ipv6.cut":
        avail = len(b) - off
        return proto == 0x86DD and (avail < 40 or avail < 40 + be16(b, off + 4))
    if c == "ipv4.version":
        return proto == 0x0800 and b[off] >> 4 != 4
    if c == "ipv6.version":
        return proto == 0x86DD and b[off] >> 4 != 6
    v, off, hl, plen, l4p, avail = _ip(b)
    if c == "ipv4.ihl":
        return hl < 20 or hl > plen or hl > avail
    if c == "ipv4.tot_len":
        if plen < hl or plen > avail:
            return True
        return l4p == 17 and be16(b, off + hl + 4) > plen - hl  # UDP claims more than IP holds
    if c == "ipv6.plen":
        return plen > avail or plen - 40 < L4_MIN.get(l4p, 0)
    if c == "l4.short":  # a consistent IP packet too short for its L4 header
        return plen <= avail and plen - hl < L4_MIN[l4p]
    if c == "tcp.doff":
        doff = (b[off + hl + 12] >> 4) * 4
        return l4p == 6 and (doff < 20 or doff > plen - hl)
    if c == "udp.len":
        ulen = be16(b, off + hl + 4)
        return l4p == 17 and (ulen < 8 or ulen > plen - hl)
    if c == "ipv6.hbh_order":  # hop-by-hop (0) anywhere but first in the chain
        nh, cur, i = b[off + 6], off + 40, 0
        while nh in (0, 43, 60, 51, 44):
            if nh == 0 and i:
                return True
            nxt = b[cur]
            cur += 8 if nh == 44 else (b[cur + 1] + 1) * 8
            nh, i = nxt, i + 1
        return False
    if c == "ipv6.ext_depth":
        nh, cur, n = b[off + 6], off + 40, 0
        while nh in (0, 43, 60, 51, 44):
            nxt = b[cur]
            cur += 8 if nh == 44 else (b[cur + 1] + 1) * 8
            nh, n = nxt, n + 1
        return n > 6
    if c == "ipv4.frag":  # scapy's dissection as the independent reader
        ip = Ether(b)[IP]
        first = "first" in m.name
        return (ip.frag == 0 and ip.flags.MF) if first else ip.frag > 0
    if c == "ipv6.frag":
        fh = Ether(b)[IPv6ExtHdrFragment]
        return (fh.offset == 0 and fh.m == 1) if "first" in m.name else fh.offset > 0
    raise AssertionError(f"no independent check for {c!r}")


@pytest.mark.parametrize("m", MALFORMED, ids=[m.name for m in MALFORMED])
def test_malformed_entry_has_its_defect(m):
    assert check_defect(m), f"{m.name}: {m.check} is not broken in {m.frame.hex()}"


def test_malformed_set_coverage():
    names = [m.name for m in MALFORMED]
    assert len(names) == len(set(names))
    kinds = collections.Counter(m.kind for m in MALFORMED)
    assert set(kinds) == {"truncated", "bad_field", "too_deep", "fragment", "oversize"}
    # truncated headers at every layer
    assert {m.layer for m in MALFORMED if m.kind == "truncated"} == {"l2", "l3", "l4"}
    checks = {m.check for m in MALFORMED}
    assert {"ipv4.ihl", "ipv4.tot_len", "ipv6.plen", "vlan.depth", "ipv4.frag", "ipv6.frag",
            "frame.len"} <= checks
    assert {len(m.frame) for m in MALFORMED if m.check == "vlan.depth"} and \
        min(l2_walk(m.frame)[2] for m in MALFORMED if m.check == "vlan.depth") == 3
    # first and non-first fragments of both families
    frag = {m.name for m in MALFORMED if m.kind == "fragment"}
    assert {"ipv4.frag_first", "ipv4.frag_middle", "ipv4.frag_last", "ipv6.frag_first",
            "ipv6.frag_middle", "ipv6.frag_last"} <= frag
    over = [m for m in MALFORMED if m.kind == "oversize"]
    assert over and all(len(m.frame) > g.VETH_XDP_MAX_FRAME for m in over)
    # well-formed apart from the size: scapy's own lengths agree with the frame
    for m in over:
        p = Ether(m.frame)
        assert 14 + (4 if p.haslayer(Dot1Q) else 0) + p[IP].len == len(m.frame)
    assert not [m for m in g.malformed_set(include_short=False, include_oversize=False)
                if not m.xdp_ok or m.kind == "oversize"]


def test_fragments_are_fragments_to_scapy():
    for m in MALFORMED:
        if m.kind != "fragment":
            continue
        p = Ether(m.frame)
        if p.haslayer(IP):
            assert p[IP].flags.MF or p[IP].frag > 0, m.name
        else:
            fh = p[IPv6ExtHdrFragment]
            assert fh.m or fh.offset > 0, m.name


def _parse_model():
    """The Python model of parse.h in tests/xdp_progs/base (a second, independent oracle)."""
    path = REPO / "tests" / "xdp_progs" / "base" / "parse_model.py"
    if not path.exists():
        pytest.skip(f"{path} is gone")
    spec = importlib.util.spec_from_file_location("_parse_model_for_traffic", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.model


def test_expected_reasons_match_the_parse_model():
    model = _parse_model()
    for m in MALFORMED:
        if not m.xdp_ok:
            continue
        # an XDP program that is not frags-aware sees at most VETH_XDP_MAX_FRAME bytes
        rc = model(m.frame[:g.VETH_XDP_MAX_FRAME])["rc"]
        want = Reason.NONE if m.reason is None else Reason[m.reason.upper()]
        assert rc == want, f"{m.name}: model says {rc.name}, set says {m.reason}"


# ---- through the base program (tier 1, test_run) ----------------------------------------------
@pytest.mark.parametrize("cfg", [BaseCfg.make(action=XdpAction.TX),
                                 BaseCfg.make(action=XdpAction.PASS)], ids=["tx", "pass"])
def test_malformed_through_base(cfg):
    """Never misforwarded: every defective frame gets the malformed verdict (DROP), never the
    forwarding one; fragments (well-formed) get the forwarding verdict. Every drop is counted
    under its reason, with the bytes the program saw; the frame is not rewritten."""
    want = collections.Counter()
    with load_base(cfg) as obj:
        prog = obj.program("xdp_base")
        for m in MALFORMED:
            if not m.xdp_ok:
                continue
            before = read_stats(obj)
            r = prog.test_run(m.frame)
            after = read_stats(obj)
            verdict = XdpAction.DROP if m.reason else XdpAction(cfg.action)
            assert r.retval == verdict, f"{m.name}: verdict {r.retval}, want {verdict.name}"
            assert bytes(r.data_out) == m.frame, m.name
            delta = {Reason(i).name.lower(): after.reasons[i] - before.reasons[i]
                     for i in range(6) if after.reasons[i] != before.reasons[i]}
            assert delta == ({m.reason: 1} if m.reason else {}), m.name
            seen = min(len(m.frame), g.VETH_XDP_MAX_FRAME)
            assert after.bytes[verdict] - before.bytes[verdict] == seen, m.name
            want[verdict] += 1
        total = read_stats(obj)
    assert total.packets[XdpAction.DROP] == want[XdpAction.DROP] == \
        sum(1 for m in MALFORMED if m.xdp_ok and m.reason)
    assert total.packets[XdpAction(cfg.action)] == want[XdpAction(cfg.action)] > 0


# ---- netns: the veth limit, and the set replayed into a lab ----------------------------------
@pytest.mark.netns
def test_veth_xdp_limit_measured():
    lim = g.measure_veth_xdp_limit()
    print("\nveth native XDP limit:", lim.summary())
    assert lim.max_mtu == g.VETH_XDP_MAX_MTU == 3506
    assert lim.max_frame == g.VETH_XDP_MAX_FRAME == 3520
    assert lim.attach_above_errno == errno.ERANGE
    # untagged MTU + 14 arrives whole; tagged frames up to MTU + 18 arrive, cut to 3520 visible
    assert lim.seen == {3520: 3520, 3521: 3520, 3524: 3520}
    assert lim.send_errors == {3525: "EMSGSIZE"}


FRAGS_PROBE = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");
SEC("xdp.frags")
int xdp_frags_probe(struct xdp_md *ctx)
{
	__u32 k0 = 0, k1 = 1;
	__u64 lin = ctx->data_end - ctx->data, tot = bpf_xdp_get_buff_len(ctx);

	bpf_map_update_elem(&seen, &k0, &lin, 0);
	bpf_map_update_elem(&seen, &k1, &tot, 0);
	return XDP_DROP;
}
"""


@pytest.mark.netns
def test_veth_frags_aware_program_for_comparison(make_lab, tmp_path):
    """What the documented cap would become with frags-aware NFs: a SEC("xdp.frags") probe
    raises the peer's max MTU to VETH_XDP_FRAGS_MAX_MTU and gets the whole length of a jumbo
    frame, but still only VETH_XDP_MAX_FRAME linear bytes for direct access."""
    import ctypes
    import socket
    import subprocess
    import time

    from pyroute2 import IPRoute

    from nf.bpf import BpfObject, XdpMode
    from nf.bpf.build import CFLAGS, clang
    from nf.net import LabSpec
    from nf.net import netns as _netns
    from traffic import packets

    src, obj_path = tmp_path / "probe.bpf.c", tmp_path / "probe.o"
    src.write_text(FRAGS_PROBE)
    subprocess.run([clang(), *CFLAGS, "-c", str(src), "-o", str(obj_path)], check=True,
                   capture_output=True, timeout=120)

    def link(ns, ifn, **kw):
        with _netns.enter(ns), IPRoute() as ipr:
            idx = ipr.link_lookup(ifname=ifn)[0]
            if kw:
                ipr.link("set", index=idx, **kw)
            return ipr.get_links(idx)[0]

    lab = make_lab(LabSpec.switch(1))
    h = lab.host("h1")
    with BpfObject.open(obj_path) as obj:
        obj.load()
        seen = obj.map("seen").typed(ctypes.c_uint32, ctypes.c_uint64)
        with lab.enter("dut"):
            lk = obj.program("xdp_frags_probe").attach_xdp(h.port_ifindex, XdpMode.NATIVE)
        try:
            assert link(h.netns, h.ifname).get("IFLA_MAX_MTU") == g.VETH_XDP_FRAGS_MAX_MTU
            link(h.netns, h.ifname, mtu=9000)
            link(lab.dut, h.port, mtu=9000)
            with _netns.enter(h.netns):
                s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            try:
                s.bind((h.ifname, 0))
                for size in (g.VETH_XDP_MAX_FRAME, g.VETH_XDP_MAX_FRAME + 1, 9014):
                    seen[1] = 0
                    s.send(packets.frame("ipv4", "udp", size=size))
                    for _ in range(200):
                        if seen.lookup(1):
                            break
                        time.sleep(0.005)
                    linear = min(size, g.VETH_XDP_MAX_FRAME)
                    assert (seen.lookup(0), seen.lookup(1)) == (linear, size)
            finally:
                s.close()
        finally:
            lk.detach()


@pytest.mark.netns
def test_malformed_pcap_replayed_into_base_on_a_lab_port(make_lab, tmp_path):
    """The sendable part of the set (>= 14 bytes, <= MTU) written to pcap, replayed from a host,
    through the base program attached natively on its dut port: exact counts per reason."""
    from nf.bpf import XdpMode
    from nf.net import LabSpec
    from traffic import pcap

    sendable = [m for m in MALFORMED if m.xdp_ok and len(m.frame) <= 1514 + 4]
    path = tmp_path / "malformed.pcap"
    pcap.write_pcap(path, [m.frame for m in sendable], pps=1000)
    lab = make_lab(LabSpec.switch(1))
    h = lab.host("h1")
    with load_base(BaseCfg.make(action=XdpAction.PASS)) as obj:
        with lab.enter("dut"):
            link = obj.program("xdp_base").attach_xdp(h.port_ifindex, XdpMode.NATIVE)
        try:
            res = pcap.replay_into_lab(lab, "h1", path, pps=5000)
            assert res.sent == len(sendable)
            want = collections.Counter(m.reason for m in sendable if m.reason)
            for _ in range(100):
                s = read_stats(obj)
                if s.total_packets >= len(sendable):
                    break
                __import__("time").sleep(0.01)
        finally:
            link.detach()
    assert s.total_packets == len(sendable)
    assert s.packets[XdpAction.DROP] == sum(want.values())
    assert s.packets[XdpAction.PASS] == len(sendable) - sum(want.values())
    for reason, n in want.items():
        assert s.reasons[Reason[reason.upper()]] == n, reason
