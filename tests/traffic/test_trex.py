"""traffic/trex: every STL profile loads with trex-stl-lib (STLProfile.load_py, in a subprocess so
its `from scapy.all import *` and sys.path edits stay out of this process) and every stream's
packet is built offline; the packets equal the profiles' own plain-scapy builders byte for byte,
and the field-engine programs, expanded offline (traffic.trex.fe), produce exactly the frames
the builders make for every flow index (so the flows vary as each profile claims)."""
from __future__ import annotations

import ipaddress
import json
import subprocess
import sys

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether

from nf.testing.tiers import require
from traffic import trex
from traffic.trex import fe

L2 = trex.profile_module("l2_switch")
RT = trex.profile_module("router")
SK = trex.profile_module("sketch")
FT = trex.profile_module("flow_table")

# (profile, tunables) — each loaded for direction 0 and 1
CASES = [
    ("l2_switch", {}),
    ("l2_switch", {"n_macs": 16, "size": 128, "vlan": 10}),
    ("router", {}),
    ("router", {"n_dst": 8, "ipv6": 1}),
    ("router", {"n_dst": 5, "stride": 65536, "size": 100, "dut_mac": "02:00:00:01:00:07"}),
    ("sketch", {}),
    ("sketch", {"n_heavy": 4, "heavy_share": 0.8, "s": 1.0, "n_background": 100, "pps": 1000}),
    ("flow_table", {}),
    ("flow_table", {"n_flows": 300, "proto": "tcp", "size": 64}),
]

_LOADER = r"""
import json, sys
from trex_stl_lib.api import STLProfile
out = []
for path, kw, direction in json.load(sys.stdin):
    prof = STLProfile.load_py(path, direction=direction, **kw)
    streams = []
    for s in prof.get_streams():
        j = s.to_json()
        streams.append({"name": s.get_name(), "pkt": bytes(s.get_pkt()).hex(),
                        "vm": j["vm"]["instructions"], "mode": j["mode"]})
    out.append(streams)
json.dump(out, sys.stdout)
"""


def _have_trex() -> bool:
    r = subprocess.run([sys.executable, "-c", "import trex_stl_lib.api"], capture_output=True,
                       text=True, timeout=120)
    return r.returncode == 0


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """{(profile, tunables json, direction): [stream dicts]} for every case."""
    if sys.version_info >= (3, 12):
        pytest.skip("trex-stl-lib 0.3 imports the `imp` module, removed in Python 3.12")
    require(_have_trex(), "trex-stl-lib is not installed (pip install -e .[dev])")
    jobs = [(str(trex.profile_path(p)), kw, d) for p, kw in CASES for d in (0, 1)]
    r = subprocess.run([sys.executable, "-c", _LOADER], input=json.dumps(jobs), text=True,
                       capture_output=True, timeout=300, cwd=tmp_path_factory.mktemp("trex"))
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout)
    return {(p, json.dumps(kw, sort_keys=True), d): s
            for (p, kw), (_, _, d), s in zip([(p, kw) for p, kw in CASES for _ in (0, 1)], jobs, res)}


def _streams(loaded, profile, kw, d):
    return loaded[(profile, json.dumps(kw, sort_keys=True), d)]


def _sample(n: int) -> list[int]:
    """Indices checked against the (slow, scapy) builder: the first 100, some inside, the last."""
    return sorted(set(range(min(n, 100))) | {n // 3, n // 2, n - 2, n - 1} - {-1})


def _expand(stream, n):
    return fe.expand(bytes.fromhex(stream["pkt"]), stream["vm"], n)


def test_every_profile_loads(loaded):
    names = {p for p, _kw in CASES}
    assert names == set(trex.PROFILES)
    for p, kw in CASES:
        for d in (0, 1):
            streams = _streams(loaded, p, kw, d)
            assert streams, (p, kw, d)
            for s in streams:
                assert s["mode"]["type"] == "continuous" and s["mode"]["rate"]["type"] == "pps"
                assert len(bytes.fromhex(s["pkt"])) >= 60


@pytest.mark.parametrize("kw", [c[1] for c in CASES if c[0] == "l2_switch"], ids=str)
@pytest.mark.parametrize("d", [0, 1])
def test_l2_switch(loaded, kw, d):
    (s,) = _streams(loaded, "l2_switch", kw, d)
    n = kw.get("n_macs", 1024)
    size, vlan = kw.get("size", 60), kw.get("vlan")
    assert bytes.fromhex(s["pkt"]) == bytes(L2.build_packet(d, 0, size, vlan))
    frames = _expand(s, n + 1)
    # one frame per MAC pair, byte-identical to the builder's, then the cycle restarts
    assert len(set(frames[:n])) == n and frames[n] == frames[0]
    for i in _sample(n):
        assert frames[i] == bytes(L2.build_packet(d, i, size, vlan)), i
    p = Ether(frames[n - 1])
    a, b = L2._mac(L2.MAC_A, n - 1), L2._mac(L2.MAC_B, n - 1)
    assert (p.src, p.dst) == ((a, b) if d == 0 else (b, a))
    assert len(p) == size and (p[Dot1Q].vlan == vlan if vlan else not p.haslayer(Dot1Q))


@pytest.mark.parametrize("kw", [c[1] for c in CASES if c[0] == "router"], ids=str)
@pytest.mark.parametrize("d", [0, 1])
def test_router(loaded, kw, d):
    (s,) = _streams(loaded, "router", kw, d)
    n, stride, v6 = kw.get("n_dst", 4096), kw.get("stride", 256), bool(kw.get("ipv6", 0))
    size = kw.get("size", RT.default_size(v6))
    args = dict(size=size, ipv6=v6, stride=stride, dut_mac=kw.get("dut_mac", RT.DUT_MAC))
    assert bytes.fromhex(s["pkt"]) == bytes(RT.build_packet(d, 0, **args))
    frames = _expand(s, n + 1)
    assert frames[n] == frames[0]
    # checksums fixed by the field engine equal scapy's: the frames are the builder's, exactly
    for i in _sample(n):
        assert frames[i] == bytes(RT.build_packet(d, i, **args)), i
    frames = frames[:n]
    dsts = [Ether(f)[IPv6 if v6 else IP].dst for f in frames]
    nets = {ipaddress.ip_network(f"{a}/{120 if v6 else 24}", strict=False) for a in dsts}
    assert len(nets) == n  # one address per distinct /24 (/120)
    p = Ether(frames[-1])
    assert p.dst == args["dut_mac"] and len(p) == size
    assert (p[IPv6].hlim if v6 else p[IP].ttl) == 64


@pytest.mark.parametrize("kw", [c[1] for c in CASES if c[0] == "sketch"], ids=str)
def test_sketch(loaded, kw):
    streams = _streams(loaded, "sketch", kw, 0)
    assert streams == _streams(loaded, "sketch", kw, 1)  # one-directional profile
    n_heavy, pps = kw.get("n_heavy", 8), kw.get("pps", 1e6)
    heavy, bg = SK.heavy_rates(pps, n_heavy, kw.get("heavy_share", 0.5), kw.get("s", 1.1))
    assert [s["name"] for s in streams] == [f"heavy_{k}" for k in range(1, n_heavy + 1)] + ["background"]
    for k, (s, rate) in enumerate(zip(streams, heavy), 1):
        assert bytes.fromhex(s["pkt"]) == bytes(SK.build_packet(k))
        assert s["vm"] == [] and s["mode"]["rate"]["value"] == pytest.approx(rate)
        p = Ether(bytes.fromhex(s["pkt"]))
        assert (p[IP].src, p[IP].dst, p[UDP].sport, p[UDP].dport, p[IP].proto) == SK.heavy_flow(k)
    rates = [s["mode"]["rate"]["value"] for s in streams]
    assert sum(rates) == pytest.approx(pps)
    assert rates[:-1] == sorted(rates[:-1], reverse=True)  # Zipf: rank 1 heaviest
    assert rates[0] / rates[1] == pytest.approx(2 ** kw.get("s", 1.1))
    assert rates[-1] == pytest.approx(bg)
    back = streams[-1]
    assert bytes.fromhex(back["pkt"]) == bytes(SK.build_packet(None))
    n_bg = kw.get("n_background", 65536)
    lo = int(ipaddress.IPv4Address(SK.BACKGROUND_SRC))
    pkts = [Ether(f) for f in _expand(back, 500)]
    srcs = {int(ipaddress.IPv4Address(p[IP].src)) - lo for p in pkts}
    assert min(srcs) >= 0 and max(srcs) < n_bg and len(srcs) > min(n_bg, 500) * 0.6
    assert all(1024 <= p[UDP].sport <= 65535 for p in pkts)
    for p in pkts[:20]:  # header checksum fixed after the rewrite
        c = p[IP].chksum
        del p[IP].chksum
        assert IP(bytes(p[IP])).chksum == c


@pytest.mark.parametrize("kw", [c[1] for c in CASES if c[0] == "flow_table"], ids=str)
@pytest.mark.parametrize("d", [0, 1])
def test_flow_table(loaded, kw, d):
    (s,) = _streams(loaded, "flow_table", kw, d)
    n, proto, size = kw.get("n_flows", 65536), kw.get("proto", "udp"), kw.get("size", 60)
    assert bytes.fromhex(s["pkt"]) == bytes(FT.build_packet(d, 0, size, proto))
    frames = _expand(s, n + 1)
    assert len(set(frames[:n])) == n and frames[n] == frames[0]  # exactly n flows, then again
    for i in _sample(n):
        assert frames[i] == bytes(FT.build_packet(d, i, size, proto)), i
    if n <= 2000:
        two = _expand(s, 2 * n)
        tuples = [FT.flow_tuple(d, i % n, proto) for i in range(2 * n)]
        got = []
        for f in two:
            p = Ether(f)
            l4 = p[UDP] if proto == "udp" else p[TCP]
            got.append((p[IP].src, p[IP].dst, l4.sport, l4.dport, p[IP].proto))
        assert got == tuples and len(set(got)) == n  # exactly n flows, each once per pass


# ---- without TRex: the builders alone ------------------------------------------------------
def test_builders_without_trex_sizes_and_errors():
    assert len(L2.build_packet(0, 5, 200, 3)) == 200
    assert len(RT.build_packet(1, 9, None, True)) == 62 and len(RT.build_packet(0, 9)) == 60
    assert len(SK.build_packet(3, 1514)) == 1514 and len(FT.build_packet(1, 7, 128, "tcp")) == 128
    with pytest.raises(ValueError, match="n_macs"):
        L2._check(70000, 60, None)
    with pytest.raises(ValueError, match="size"):
        RT.build_packet(0, 0, 60, True)
    with pytest.raises(ValueError, match="32 address bits"):
        RT._check(1 << 20, 1 << 16, 60, False)
    with pytest.raises(ValueError, match="proto"):
        FT.build_packet(0, 0, 60, "sctp")
    with pytest.raises(ValueError, match="heavy_share"):
        SK._check(4, 1.5, 1.0, 10, 60)
    with pytest.raises(ValueError, match="unknown TRex profile"):
        trex.profile_path("nat")


def test_builders_loaded_without_trex_side_effects():
    """profile_module hides trex_stl_lib (its api runs `from scapy.all import *`)."""
    assert "trex_stl_lib.api" not in sys.modules
    for name in trex.PROFILES:
        assert trex.profile_module(name).STLStream is None
    assert "trex_stl_lib.api" not in sys.modules


def test_profile_files_are_self_contained():
    """TRex loads a profile by file path with only its own directory on sys.path: no import of
    the project's packages."""
    for name in trex.PROFILES:
        src = trex.profile_path(name).read_text()
        assert "from traffic" not in src and "import traffic" not in src and "from nf" not in src
        assert "def register()" in src


def test_fe_checksums_match_scapy():
    from traffic import packets
    for l3, l4 in (("ipv4", "udp"), ("ipv4", "tcp"), ("ipv6", "udp"), ("ipv6", "tcp")):
        good = packets.frame(l3, l4, size=99)
        buf = bytearray(good)
        l4off = 34 if l3 == "ipv4" else 54
        buf[l4off + (6 if l4 == "udp" else 16):][:2] = b"\xde\xad"
        buf[l4off + (6 if l4 == "udp" else 16)] ^= 0xFF
        if l3 == "ipv4":
            buf[24] ^= 0xFF
        fe.fix_l4(buf, 14, l4off, fe.L4_TYPE_UDP if l4 == "udp" else fe.L4_TYPE_TCP)
        assert bytes(buf) == good, (l3, l4)
    with pytest.raises(ValueError, match="not supported"):
        fe.expand(good, [{"type": "tuple_flow_var"}], 1)
