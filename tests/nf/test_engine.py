"""nf/engine.py: every way of deploying an NF ends in the program a fresh `nf up` makes.

For every NF and variant, each path - `nf up`; `nf apply` of a field whose channel is a new
program; `nf apply --reload`; a chain insert; a chain reorder; a chain `--reload` - must leave
attached (on the NF's links, or in its chain slot) a program with the same rodata, the same maps
with the same types and sizes, and the same verdicts and output bytes on a fixed frame set as a
fresh `nf up` of that config (of the chain's config for the chain paths). The commands run
in-process (typer's runner), exactly as `nf` runs them. The pure variants run on the host
(tier 2), the eNetSTL ones in the guest (tier 3), where the module's call counters must also show
the kfuncs called by the frames after every path - the eNetSTL switch's bucket-table lookup, the
router's ECMP CRC32-C, the flow table's cuckoo candidate lookup, the sketch's count-min - and an
eNetSTL NitroSketch must sample through a live module random pool after every path.
"""
from __future__ import annotations

import os

import pytest
import yaml
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Dot1Q, Ether

from nf import deploy
from nf.bpf import Link, Map, Program
from nf.net.lab import LabSpec

PORTS = ("p1", "p2", "p3")


# ---- what each NF is deployed with, and the frames it sees ------------------------------------
def _hosts(lab):
    return {h: lab.host(h) for h in ("h1", "h2", "h3")}


def _udp(src_mac, dst_mac, src, dst, sport, dport, n=b"x"):
    return bytes(Ether(src=src_mac, dst=dst_mac) / IP(src=src, dst=dst, ttl=64)
                 / UDP(sport=sport, dport=dport) / (n * 18))


def switch_case(lab, variant):
    h = _hosts(lab)
    m1, m2, m3 = (h[x].mac for x in ("h1", "h2", "h3"))
    cfg = {"variant": variant, "fdb_size": 1024, "aging_time": 300,
           "ports": [{"name": p, "vlan": 10} for p in PORTS],
           "static_entries": [{"mac": "02:00:00:00:00:99", "vlan": 10, "port": "p3"}]}
    frames = [(_udp(m1, "ff:ff:ff:ff:ff:ff", "10.0.0.1", "10.0.0.255", 1, 2), "p1"),   # learn, flood
              (_udp(m2, m1, "10.0.0.2", "10.0.0.1", 3, 4), "p2"),                        # known
              (_udp(m1, m2, "10.0.0.1", "10.0.0.2", 5, 6), "p1"),
              (_udp(m3, "02:00:00:00:00:99", "10.0.0.3", "10.0.0.9", 7, 8), "p3"),      # static, own port
              (_udp(m1, "02:00:00:00:00:99", "10.0.0.1", "10.0.0.9", 7, 8), "p1"),      # static
              (_udp(m1, "02:00:00:00:00:77", "10.0.0.1", "10.0.0.7", 9, 9), "p1"),      # unknown
              (bytes(Ether(src=m2, dst=m1) / Dot1Q(vlan=20) / IP() / UDP()), "p2")]     # wrong VLAN
    # no field of the switch is a new program: the apply path has nothing to change. Its
    # eNetSTL lookups (the destination's, and the learn's first look) are enetstl_bt_find calls
    return cfg, None, frames, ("bt_find_calls",)


def sketch_case(lab, variant):
    h1 = lab.host("h1")
    cfg = {"variant": variant, "depth": 4, "width": 1024, "candidates": 64, "topk": 4,
           "action": "drop", "threshold": {"absolute": 3},
           # p = 1: sampling is deterministic, yet an eNetSTL sketch samples through the pool
           "nitro": {"enabled": True, "p": 1.0}, "interfaces": list(PORTS)}
    a = _udp(h1.mac, h1.port_mac, "10.0.1.2", "10.0.2.2", 1000, 2000)
    b = _udp(h1.mac, h1.port_mac, "10.0.1.2", "10.0.3.2", 1001, 2001)
    frames = [(a, "p1")] * 5 + [(b, "p1")] * 2 + [(a, "p1")]
    return cfg, {"threshold": {"absolute": 4}}, frames, ("hash_simd_calls", "hash_scalar_calls")


def flow_table_case(lab, variant):
    h1 = lab.host("h1")
    cfg = {"variant": variant, "size": 1024, "hash": "crc32c", "learn": True,
           "default_action": "pass", "non_ip_action": "drop", "interfaces": list(PORTS),
           "rules": [{"proto": "udp", "src": "10.0.1.2", "sport": 7, "dst": "10.0.2.2",
                      "dport": 53, "action": "drop"}]}
    frames = [(_udp(h1.mac, h1.port_mac, "10.0.1.2", "10.0.2.2", 7, 53), "p1"),       # rule: drop
              (_udp(h1.mac, h1.port_mac, "10.0.1.2", "10.0.3.2", 9, 99), "p1"),       # learned
              (_udp(h1.mac, h1.port_mac, "10.0.1.2", "10.0.3.2", 9, 99), "p1"),
              (bytes(Ether(src=h1.mac, dst=h1.port_mac, type=0x88B5) / (b"y" * 46)), "p1")]
    return cfg, {"max_search": 64}, frames, ("cuckoo_cand_calls",)


def router_case(lab, variant):
    h = _hosts(lab)
    h1 = h["h1"]
    cfg = {"variant": variant, "mode": "dir", "learn_neighbours": False,
           "interfaces": [{"name": p, "addresses": [f"10.0.{i}.1/24"]} for i, p in enumerate(PORTS, 1)],
           "groups": [{"name": "g", "via": ["10.0.2.2", "10.0.3.2"]}],
           "routes": [{"prefix": "10.9.0.0/16", "via": ["10.0.2.2"]},
                      {"prefix": "10.8.0.0/16", "group": "g"},
                      {"prefix": "10.7.0.0/16", "blackhole": True}],
           "neighbours": [{"address": "10.0.2.2", "mac": h["h2"].mac},
                          {"address": "10.0.3.2", "mac": h["h3"].mac}],
           "sizes": {"v4_chunks": 64, "v6_chunks": 64, "trie_entries": 1024, "neighbours": 64}}
    gw = h1.port_mac
    frames = [(_udp(h1.mac, gw, "10.0.1.2", "10.9.1.1", 1, 2), "p1")]
    frames += [(_udp(h1.mac, gw, "10.0.1.2", "10.8.0.1", 100 + i, 53), "p1") for i in range(6)]  # ECMP
    frames += [(_udp(h1.mac, gw, "10.0.1.2", "10.7.0.1", 1, 2), "p1"),
               (bytes(Ether(src=h1.mac, dst=gw) / IP(src="10.0.1.2", dst="10.9.1.1", ttl=1)
                      / UDP(sport=1, dport=2) / (b"t" * 18)), "p1"),                  # ICMP error
               (bytes(Ether(src=h1.mac, dst=gw) / IP(src="10.0.1.2", dst="10.0.1.1") / ICMP()), "p1")]
    return cfg, {"icmp": {"rate": 50}}, frames, ("crc32c_hw_calls",)


def filter_case(lab, variant):
    h1 = lab.host("h1")
    cfg = {"drop_dports": [53], "drop_l4_protos": [1], "interfaces": list(PORTS)}
    frames = [(_udp(h1.mac, h1.port_mac, "10.0.1.2", "10.0.2.2", 1, 53), "p1"),
              (_udp(h1.mac, h1.port_mac, "10.0.1.2", "10.0.2.2", 1, 123), "p1"),
              (bytes(Ether(src=h1.mac, dst=h1.port_mac) / IP(src="10.0.1.2", dst="10.0.2.2")
                     / TCP(dport=80)), "p1"),
              (bytes(Ether(src=h1.mac, dst=h1.port_mac) / IP(src="10.0.1.2", dst="10.0.2.2") / ICMP()), "p1")]
    return cfg, {"drop_dports": [123]}, frames, ()


CASES = {"l2_switch": switch_case, "sketch": sketch_case, "flow_table": flow_table_case,
         "router": router_case, "filter": filter_case}


# ---- the attached program, seen from the kernel ---------------------------------------------
def _view(prog_id: int, frames, lab, ingress: dict[str, int]) -> dict:
    """Rodata bytes, maps (name, type, key/value size, entries, flags) and, per frame, the
    verdict and output bytes of the program with that id (frames run on its live maps, always
    on the same CPU: per-CPU state such as a sketch's per-CPU bank decides verdicts)."""
    from nf.testing.twocpu import one_cpu
    with Program.from_id(prog_id) as prog, one_cpu():
        maps, rodata = [], b""
        for mid in prog.map_ids():
            with Map.from_id(mid) as m:
                maps.append((m.name, m.type_name, m.key_size, m.value_size, m.max_entries, m.flags))
                if m.name.endswith(".rodata"):
                    rodata = m.lookup(bytes(4))
        with lab.enter("dut"):
            runs = [(r.retval, bytes(r.data_out)) for f, port in frames
                    for r in [prog.test_run(f, ingress_ifindex=ingress[port])]]
        return {"program": prog.name, "rodata": rodata, "maps": sorted(maps), "runs": runs}


def _map_word(prog_id: int, suffix: str = ".bss") -> int:
    """The first 32-bit word of the program's map named ``*suffix`` (the .bss: the sketch's
    random pool handle + 1; wheel_stats: the switch's list-bucket handle)."""
    with Program.from_id(prog_id) as prog:
        for mid in prog.map_ids():
            with Map.from_id(mid) as m:
                if m.name.endswith(suffix):
                    return int.from_bytes(m.lookup(bytes(4))[:4], "little")
    return 0


def _attached(name: str) -> int:
    d = deploy.read(name).pin_dir
    ids = set()
    for p in (d / "links").iterdir():
        with Link.from_pin(p) as link:
            ids.add(link.prog_id)
    assert len(ids) == 1, f"{name}: links run different programs {ids}"
    return ids.pop()


def _in_slot(chain: str, position: int) -> int:
    from nf.chain import PinnedChain
    s = PinnedChain(deploy.read(chain).pin_dir)
    try:
        return s.programs()[position - 1]
    finally:
        s.close()


# ---- nf, in-process ---------------------------------------------------------------------------
class Nf:
    def __init__(self, tmp_path, tag):
        from typer.main import get_command
        from typer.testing import CliRunner
        from nf.cli import app
        self.app, self.runner, self.tmp, self.tag, self.made = app, CliRunner(), tmp_path, tag, []
        self.cmd = get_command(app)        # built once: typer rebuilds it on every invoke

    def file(self, kind: str, data: dict) -> str:
        f = self.tmp / f"{kind}-{len(list(self.tmp.iterdir()))}.yaml"
        f.write_text(yaml.safe_dump(data))
        return str(f)

    def __call__(self, *args) -> str:
        from unittest import mock
        with mock.patch("typer.testing._get_command", lambda app: self.cmd):
            r = self.runner.invoke(self.app, ["--quiet", *args])
        assert r.exit_code == 0, f"nf {' '.join(args)}: rc {r.exit_code}\n{r.output}"
        return r.output

    def up(self, kind, data):
        self.made.append(data.get("name") or data.get("chain"))
        return self(*["up", "--kind", kind, self.file(kind, data)])

    def apply(self, kind, data, *opts):
        return self(*["apply", *opts, "--kind", kind, self.file(kind, data)])

    def down_all(self):
        for n in reversed(self.made):
            if deploy.read(n) is not None:
                self("down", n)
        self.made = []


def _chain(name, netns, members):
    return {"chain": name, "netns": netns, "interfaces": list(PORTS), "nfs": members}


def _member(kind, data):
    """A member's config: a chain's NF runs on the chain's interfaces (and netns)."""
    d = {k: v for k, v in data.items() if k not in ("netns",)}
    if kind not in ("router", "l2_switch"):
        d.pop("interfaces", None)
    return {"kind": kind, "config": d}


def check_paths(kind: str, variant: str, lab, tmp_path):
    """Every path for one NF and variant against fresh references.

    A fresh `nf up` runs the frame set once per path (rounds 1, 2, 3: stateful NFs answer
    according to what earlier rounds left in their maps). The paths run one after the other on
    one deployment - standalone: `nf up` with a program field changed, `nf apply` back (round
    1), `nf apply --reload` (round 2); chained: the NF inserted into a running chain (round 1),
    the chain `--reload`ed (round 2), the NF moved away and back (round 3) - so after each one
    the attached program meets the maps in the state the reference met them in its round, and
    must answer byte for byte the same. The module counters (``counters``: the ones its kfuncs
    bump) must grow from each eNetSTL round."""
    from nf import kmod
    ingress = {h.port: h.port_ifindex for h in lab.hosts.values()}
    tag = f"{os.getpid()}"
    nf = Nf(tmp_path, tag)
    base, program_change, frames, counters = CASES[kind](lab, variant)
    name = f"e{kind[:2]}{tag}"
    cfg = {"name": name, "netns": lab.dut, **base}
    flt = {"kind": "filter", "config": {"name": f"ef{tag}", "drop_dports": [9999]}}
    chain = f"ec{tag}"
    enetstl = variant == "enetstl"

    def measured(prog_id):
        before = kmod.counters() if enetstl else {}
        v = _view(prog_id, frames, lab, ingress)
        if enetstl:
            after = kmod.counters()
            grew = sum(after[c] - before[c] for c in counters)
            assert grew > 0 or not counters, f"{kind}: no kfunc call counted ({counters}) on {len(frames)} frames"
            if kind == "l2_switch":
                assert after["live_lb"] >= 1 and _map_word(prog_id, "wheel_stats") != 0, \
                    "the eNetSTL switch lost its aging wheel"
            if kind == "sketch":
                assert after["live_rp"] >= 1 and _map_word(prog_id) != 0, \
                    "the eNetSTL NitroSketch lost its random pool"
        return v

    def check(path, got, want):
        for what in ("program", "rodata", "maps", "runs"):
            assert got[what] == want[what], f"{kind} {variant} {path}: {what} differs from a fresh nf up"

    # standalone
    steps = (["apply-program"] if program_change is not None else []) + ["apply-reload"]
    try:
        nf.up(kind, cfg)
        assert deploy.read(name).variant == (variant if kind != "filter" else "pure")
        ref = [measured(_attached(name)) for _ in steps]
    finally:
        nf.down_all()
    assert any(v != 2 for v, _ in ref[0]["runs"]), f"{kind}: the frames show no verdict but PASS"
    try:
        nf.up(kind, {**cfg, **(program_change or {})})
        for i, path in enumerate(steps):
            if path == "apply-program":
                out = nf.apply(kind, cfg)
                assert "[new program]" in out and "program replaced on 3 link(s)" in out, out
            else:
                assert "program replaced on 3 link(s), maps kept" in nf.apply(kind, cfg, "--reload")
            assert deploy.read(name).variant == (variant if kind != "filter" else "pure")
            check(path, measured(_attached(name)), ref[i])
    finally:
        nf.down_all()

    # chained: the NF at position 2, behind a filter that lets every frame of the set through
    ch = _chain(chain, lab.dut, [flt, _member(kind, cfg)])
    try:
        nf.up("chain", ch)
        ref = [measured(_in_slot(chain, 2)) for _ in range(3)]
    finally:
        nf.down_all()
    try:
        nf.up("chain", _chain(chain, lab.dut, [flt]))
        assert f"{name}: new {kind} at position 2" in nf.apply("chain", ch)
        check("chain-insert", measured(_in_slot(chain, 2)), ref[0])
        assert f"{name}: stays at 2" in nf.apply("chain", ch, "--reload")
        check("chain-reload", measured(_in_slot(chain, 2)), ref[1])
        assert f"{name}: position 2 -> 1" in nf.apply("chain", _chain(chain, lab.dut, [_member(kind, cfg), flt]))
        assert f"{name}: position 1 -> 2" in nf.apply("chain", ch)
        assert deploy.read(name).chain == {"name": chain, "position": 2}
        check("chain-reorder", measured(_in_slot(chain, 2)), ref[2])
    finally:
        nf.down_all()


NFS = ("l2_switch", "sketch", "flow_table", "router", "filter")


def test_every_nf_has_its_case():
    """A new NF module (nf/nfs/) is in this test from the start, or this fails."""
    from nf.nfs import names
    assert sorted(NFS) == sorted(CASES) == names()


@pytest.mark.netns
@pytest.mark.parametrize("kind", NFS)
def test_every_path_ends_in_the_program_of_a_fresh_up_pure(kind, make_lab, tmp_path):
    check_paths(kind, "pure", make_lab(LabSpec.router(3)), tmp_path)


@pytest.mark.vm
def test_every_path_ends_in_the_program_of_a_fresh_up_enetstl(enetstl, make_lab, tmp_path):
    """The eNetSTL variants, in one guest test on one lab: the kfuncs are called after every
    path (module counters), a NitroSketch keeps its random pool."""
    lab = make_lab(LabSpec.router(3))
    for kind in NFS[:-1]:                      # the filter has no eNetSTL variant
        (tmp_path / kind).mkdir()
        check_paths(kind, "enetstl", lab, tmp_path / kind)
