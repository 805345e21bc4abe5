"""nf/chain.py + xdp_progs/chain/: NFs in a declared order behind one dispatcher (tail calls).

Two instances of the chainable base NF with different rodata rules stand in for two NFs: each
keeps its own exit-point counters, a frame stops at the first non-PASS verdict, the last NF's
PASS goes to the kernel, and a rebuilt chain (reordered, same maps) swapped into the interface's
link changes the order atomically with the counters carried on."""
from __future__ import annotations

import time

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether

from nf.bpf import XdpAction, xdp_query
from nf.chain import Chain, ChainStats
from nf.datapath import BaseCfg, read_stats

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
DNS = bytes(ETH / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1000, dport=53) / (b"q" * 20))
PING = bytes(ETH / IP(src="10.0.0.1", dst="10.0.0.2") / ICMP() / (b"p" * 20))
WEB = bytes(ETH / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1000, dport=80) / (b"w" * 20))
NTP = bytes(ETH / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1000, dport=123) / (b"t" * 20))
CFG_A = BaseCfg.make(drop_dports=[53])          # NF "A": drops DNS
CFG_B = BaseCfg.make(drop_l4_protos=[17, 1])    # NF "B": drops UDP and ICMP


def test_layout_matches_btf():
    from nf.bpf.build import build
    from nf.bpf.layout import check_layout
    check_layout(ChainStats, build("chain/chain"))


def make(chain, cfgs, reuse_stats=None):
    objs = []
    for pos, cfg in enumerate(cfgs, 1):
        o = chain.member("chain/base_chain", pos)
        o.set_rodata("base_cfg", cfg)
        if reuse_stats:
            o.map("base_stats").reuse(reuse_stats[pos - 1])
        o.load()
        objs.append(o)
    chain.install([o.program("xdp_base") for o in objs])
    return objs


@pytest.fixture
def ab():
    chain = Chain()
    objs = make(chain, [CFG_A, CFG_B])
    yield chain, objs[0], objs[1]
    for o in objs:
        o.close()
    chain.close()


def run(chain, frame, n=1):
    return chain.prog.test_run(frame, repeat=n).retval


def test_order_and_per_nf_counters(ab):
    chain, a, b = ab
    assert run(chain, DNS, 3) == XdpAction.DROP       # A drops it: B never sees it
    assert run(chain, PING, 5) == XdpAction.DROP      # A passes, B drops
    assert run(chain, WEB, 7) == XdpAction.PASS       # both pass: to the kernel
    sa, sb = read_stats(a, "base_stats"), read_stats(b, "base_stats")
    assert (sa.packets[XdpAction.DROP], sa.packets[XdpAction.PASS]) == (3, 12)
    assert (sb.packets[XdpAction.DROP], sb.packets[XdpAction.PASS]) == (5, 7)
    assert sa.bytes[XdpAction.DROP] == 3 * len(DNS) and sb.bytes[XdpAction.PASS] == 7 * len(WEB)
    assert chain.stats() == {"entered": 15, "empty": 0}
    assert chain.programs() == [a.program("xdp_base").id, b.program("xdp_base").id]


def test_standalone_chainable_object_is_not_chained():
    """Position 0 (not in a chain): the chainable build behaves exactly like the plain NF."""
    from nf.bpf import BpfObject
    with BpfObject.open_built("chain/base_chain") as o:
        o.set_rodata("base_cfg", CFG_A)
        o.load()
        p = o.program("xdp_base")
        assert p.test_run(DNS).retval == XdpAction.DROP and p.test_run(WEB).retval == XdpAction.PASS


def test_empty_chain_passes_and_is_counted():
    with Chain() as c:
        assert run(c, WEB, 2) == XdpAction.PASS
        assert c.stats() == {"entered": 2, "empty": 2}
        with pytest.raises(ValueError, match="1..8"):
            c.install([])
        with pytest.raises(ValueError, match="outside 1..8"):
            c.member("chain/base_chain", 9)
        with pytest.raises(ValueError, match="not chainable"):
            c.member("base/base", 1)


def test_reorder_keeps_counters(ab):
    """A new chain [B, A] whose members reuse A's and B's stats maps: order changes, counts go on."""
    chain, a, b = ab
    assert run(chain, DNS) == XdpAction.DROP           # A drops
    new = Chain()
    objs = make(new, [CFG_B, CFG_A], reuse_stats=[b.map("base_stats"), a.map("base_stats")])
    try:
        assert run(new, DNS) == XdpAction.DROP         # now B (first) drops it
        assert run(new, WEB) == XdpAction.PASS
        sa, sb = read_stats(a, "base_stats"), read_stats(b, "base_stats")
        assert sa.packets[XdpAction.DROP] == 1 and sa.packets[XdpAction.PASS] == 1
        assert sb.packets[XdpAction.DROP] == 1 and sb.packets[XdpAction.PASS] == 1
    finally:
        for o in objs:
            o.close()
        new.close()


@pytest.mark.netns
def test_chain_on_an_interface_swapped_atomically(lab, ab):
    """The dispatcher holds p1 through a bpf_link; the reordered chain's dispatcher is swapped in
    with one bpf_link_update (same link id, new program); frames from h1 land in the right NF."""
    chain, a, b = ab

    def wait(pred):
        deadline = time.monotonic() + 3
        while not pred() and time.monotonic() < deadline:
            time.sleep(0.02)
        return pred()

    with lab.enter("dut"):
        link = chain.attach(lab.port_ifindex("h1"))
    new = objs = None
    try:
        lab.send("h1", [DNS] * 4 + [WEB] * 2)
        assert wait(lambda: read_stats(b, "base_stats").packets[XdpAction.PASS] == 2)
        assert read_stats(a, "base_stats").packets[XdpAction.DROP] == 4
        new = Chain()
        objs = make(new, [CFG_B, CFG_A], reuse_stats=[b.map("base_stats"), a.map("base_stats")])
        link_id = link.id
        link.update_program(new.prog)
        with lab.enter("dut"):
            assert xdp_query("p1").prog_id == new.prog.id and link.id == link_id
        lab.send("h1", [DNS] * 3)
        assert wait(lambda: read_stats(b, "base_stats").packets[XdpAction.DROP] == 3)
        assert read_stats(a, "base_stats").packets[XdpAction.DROP] == 4   # A no longer sees DNS
        assert new.stats()["entered"] == 3 and chain.stats()["entered"] == 6
    finally:
        link.detach()
        for o in objs or []:
            o.close()
        if new:
            new.close()


# ---- chains deployed by the CLI (configs/chain.yaml shape) ---------------------------------------
def test_chain_config_errors_name_the_member_field():
    from nf.chain import ChainConfig
    from nf.config import ConfigError, validate
    base = {"chain": "c1", "interfaces": ["p1", "p2"],
            "nfs": [{"kind": "filter", "config": {"name": "f1", "drop_dports": [53]}},
                    {"kind": "l2_switch", "config": {"name": "s1", "ports": [
                        {"name": "p1", "vlan": 10}, {"name": "p2", "vlan": 10}]}}]}
    assert [k.name for k, _ in validate(base, ChainConfig).members()] == ["filter", "l2_switch"]
    for mutate, needle in [
        (lambda d: d["nfs"][0].update(kind="chain"), "nfs[0].kind: 'chain' cannot join a chain"),
        (lambda d: d["nfs"].append({"kind": "router", "config": {"name": "r1", "interfaces": [
            {"name": "p1", "addresses": ["10.0.1.1/24"]}]}}), "nfs[2].config.interfaces: a router in a chain"),
        (lambda d: d["nfs"].append({"kind": "sketch", "config": {"name": "k1", "interfaces": ["p1"]}}),
         "nfs[2].config.interfaces: a chain member runs on the chain's interfaces"),
        (lambda d: d["nfs"][0]["config"].update(drop_dports=[0]), "nfs[0].config.drop_dports"),
        (lambda d: d["nfs"][1]["config"]["ports"].pop(), "nfs[1].config.ports: a switch in a chain"),
        (lambda d: d["nfs"][1]["config"].update(name="f1"), "nfs[1].config.name: instance name 'f1'"),
        (lambda d: d["nfs"][0]["config"].update(interfaces=["p1"]), "nfs[0].config.interfaces"),
        (lambda d: d.update(nfs=[]), "nfs"),
    ]:
        import copy
        d = copy.deepcopy(base)
        mutate(d)
        with pytest.raises(ConfigError) as e:
            validate(d, ChainConfig)
        assert needle in str(e.value), str(e.value)


@pytest.mark.netns
def test_cli_deploys_a_filter_then_switch_chain(make_lab, tmp_path):
    """nf up chain.yaml: the filter drops DNS, the switch forwards the rest; each NF's counters
    are exact; members are read through their own verbs; nf down frees every interface."""
    import json
    import os

    import yaml
    from typer.testing import CliRunner

    from nf import cli, deploy
    from nf.cli import app
    from nf.net.lab import HostSpec, LabSpec

    lab = make_lab(LabSpec(hosts=[HostSpec(name=f"h{i}") for i in (1, 2, 3)]))  # no IPs: quiet hosts
    tag = f"{os.getpid()}"
    cfg = {"chain": f"ch{tag}", "netns": lab.dut, "interfaces": ["p1", "p2", "p3"],
           "nfs": [{"kind": "filter", "config": {"name": f"chf{tag}", "drop_dports": [53]}},
                   {"kind": "l2_switch", "config": {"name": f"chs{tag}", "ports": [
                       {"name": f"p{i}", "vlan": 10} for i in (1, 2, 3)]}}]}
    f = tmp_path / "chain.yaml"
    f.write_text(yaml.safe_dump(cfg))
    run = CliRunner().invoke
    r = run(app, ["up", str(f)])
    assert r.exit_code == 0, r.output
    try:
        recs = {r.name: r for r in deploy.records()}
        assert recs[f"ch{tag}"].kind == "chain" and recs[f"chf{tag}"].chain == {"name": f"ch{tag}", "position": 1}
        assert recs[f"chs{tag}"].chain["position"] == 2
        assert run(app, ["up", str(f)]).output.strip().endswith("unchanged (chain, p1, p2, p3)")
        h1, h2 = lab.host("h1"), lab.host("h2")
        eth = Ether(src=h1.mac, dst=h2.mac) / IP(src="10.0.0.1", dst="10.0.0.2")
        dns = [bytes(eth / UDP(sport=1000, dport=53) / f"d{i}".encode()) for i in range(4)]
        ntp = [bytes(eth / UDP(sport=1000, dport=123) / f"n{i}".encode().ljust(20, b".")) for i in range(6)]
        lab.send("h2", [bytes(Ether(src=h2.mac, dst="ff:ff:ff:ff:ff:ff") / IP() / UDP(dport=7))])
        with lab.capture(["h2", "h3"]) as cap:
            lab.send("h1", dns + ntp)
            got = cap.wait(count=None, timeout=1.0, quiet=0.3)
        assert sorted(got[lab.tap("h2")]) == sorted(ntp) and got[lab.tap("h3")] == []
        st = json.loads(run(app, ["stats", "--json"]).output)
        assert st[f"chf{tag}"]["ports"]["all"]["drop_packets"] == 4
        assert st[f"chf{tag}"]["ports"]["all"]["pass_packets"] == 6 + 1
        assert st[f"chs{tag}"]["ports"]["p1"]["rx_packets"] == 6          # the DNS never got here
        assert st[f"chs{tag}"]["ports"]["p2"]["tx_packets"] == 6
        assert st[f"ch{tag}"]["ports"]["dispatcher"]["entered"] == 11
        fdb = json.loads(run(app, ["fdb", f"chs{tag}", "--json"]).output)[f"chs{tag}"]
        assert {(e["mac"], e["port"]) for e in fdb} == {(h1.mac, "p1"), (h2.mac, "p2")}
        r = run(app, ["down", f"chs{tag}"])
        assert r.exit_code == cli.E_CONFLICT and f"nf down ch{tag}" in r.output
    finally:
        r = run(app, ["down", f"ch{tag}"])
    assert r.exit_code == 0, r.output
    assert not {f"ch{tag}", f"chf{tag}", f"chs{tag}"} & set(deploy.names())
    with lab.enter("dut"):
        assert not any(xdp_query(p).attached for p in ("p1", "p2", "p3"))


@pytest.mark.netns
def test_cli_apply_inserts_reorders_and_removes_members_keeping_their_state(make_lab, tmp_path):
    import json
    import os

    import yaml
    from typer.testing import CliRunner

    from nf import deploy
    from nf.cli import app
    from nf.net.lab import HostSpec, LabSpec

    lab = make_lab(LabSpec(hosts=[HostSpec(name=f"h{i}") for i in (1, 2)]))
    tag = f"{os.getpid()}"
    A = {"kind": "filter", "config": {"name": f"fa{tag}", "drop_dports": [53]}}
    B = {"kind": "filter", "config": {"name": f"fb{tag}", "drop_dports": [123]}}
    SW = {"kind": "l2_switch", "config": {"name": f"sw{tag}", "ports": [
        {"name": "p1", "vlan": 10}, {"name": "p2", "vlan": 10}]}}
    base = {"chain": f"ca{tag}", "netns": lab.dut, "interfaces": ["p1", "p2"]}

    def cfg(*nfs):
        f = tmp_path / f"chain{len(nfs)}{nfs[0]['config']['name']}.yaml"
        f.write_text(yaml.safe_dump({**base, "nfs": list(nfs)}))
        return str(f)

    run = CliRunner().invoke
    h1, h2 = lab.host("h1"), lab.host("h2")
    eth = Ether(src=h1.mac, dst=h2.mac) / IP(src="10.0.0.1", dst="10.0.0.2")
    dns = bytes(eth / UDP(sport=1, dport=53) / b"d")
    ntp = bytes(eth / UDP(sport=1, dport=123) / b"n")
    web = bytes(eth / TCP(sport=1, dport=80) / b"w")

    def deliver(frames, expect):
        with lab.capture(["h2"]) as cap:
            lab.send("h1", frames)
            return sorted(cap.wait(count=None, timeout=1.0, quiet=0.3)[lab.tap("h2")]) == sorted(expect)

    def st(name):
        return json.loads(run(app, ["stats", name, "--json"]).output)[name]["ports"]

    assert run(app, ["up", cfg(A, SW)]).exit_code == 0
    try:
        lab.send("h2", [bytes(Ether(src=h2.mac, dst="ff:ff:ff:ff:ff:ff") / IP() / UDP(dport=7))])
        assert deliver([dns, ntp, web], [ntp, web])
        # insert B in front of A
        r = run(app, ["apply", cfg(B, A, SW)])
        assert r.exit_code == 0, r.output
        assert f"fb{tag}: new filter at position 1" in r.output and f"fa{tag}: position 1 -> 2" in r.output
        assert deliver([dns, ntp, web], [web])
        assert st(f"fa{tag}")["all"]["drop_packets"] == 2           # counters carried on
        assert st(f"fb{tag}")["all"]["drop_packets"] == 1
        assert st(f"sw{tag}")["p1"]["unicast"] == 3                   # the switch's maps too
        fdb = json.loads(run(app, ["fdb", f"sw{tag}", "--json"]).output)[f"sw{tag}"]
        assert {e["mac"] for e in fdb} == {h1.mac, h2.mac}
        assert deploy.read(f"fb{tag}").chain == {"name": f"ca{tag}", "position": 1}
        # remove B again
        r = run(app, ["apply", cfg(A, SW)])
        assert r.exit_code == 0 and f"fb{tag}: removed" in r.output, r.output
        assert deploy.read(f"fb{tag}") is None and deploy.read(f"fa{tag}").chain["position"] == 1
        assert deliver([dns, ntp, web], [ntp, web])
        assert st(f"fa{tag}")["all"]["drop_packets"] == 3
        # a kept member's rodata change: a new program in its own slot, its counters kept
        A2 = {"kind": "filter", "config": {"name": f"fa{tag}", "drop_dports": [123]}}
        r = run(app, ["apply", cfg(A2, SW)])
        assert r.exit_code == 0, r.output
        assert f"fa{tag}.drop_dports[0]: 53 -> 123  [new program]" in r.output, r.output
        assert f"fa{tag}: program replaced in slot 1, maps kept" in r.output, r.output
        assert deliver([dns, ntp, web], [dns, web])
        assert st(f"fa{tag}")["all"]["drop_packets"] == 4
        assert st(f"sw{tag}")["p1"]["unicast"] == 7                   # 2 + 1 + 2 + 2
        # a field only down/up can change: refused (exit 7), nothing changed
        SW2 = {"kind": "l2_switch", "config": {**SW["config"], "fdb_size": 1024}}
        r = run(app, ["apply", cfg(A2, SW2)])
        assert r.exit_code == 7 and f"sw{tag}.fdb_size" in r.output, r.output
        assert deliver([dns, ntp, web], [dns, web])
        # reorder and change at once: the switch first (its forwarding ends the chain), the
        # filter's new rule in its new program behind it never sees a frame
        A3 = {"kind": "filter", "config": {"name": f"fa{tag}", "drop_dports": [80]}}
        fa0, sw0 = st(f"fa{tag}")["all"], st(f"sw{tag}")["p1"]["unicast"]
        r = run(app, ["apply", cfg(SW, A3)])
        assert r.exit_code == 0, r.output
        assert f"fa{tag}: position 1 -> 2" in r.output and f"sw{tag}: position 2 -> 1" in r.output
        assert f"fa{tag}: new program, maps kept" in r.output, r.output
        assert deliver([dns, ntp, web], [dns, ntp, web])
        assert st(f"fa{tag}")["all"] == fa0 and st(f"sw{tag}")["p1"]["unicast"] == sw0 + 3
        assert deploy.read(f"fa{tag}").config["drop_dports"] == [80]
        # --reload: every member again on its maps, one new dispatcher
        r = run(app, ["apply", "--reload", cfg(SW, A3)])
        assert r.exit_code == 0 and f"sw{tag}: stays at 1" in r.output and f"fa{tag}: stays at 2" in r.output, r.output
        assert deliver([dns, ntp, web], [dns, ntp, web])
        assert st(f"sw{tag}")["p1"]["unicast"] == sw0 + 6
    finally:
        r = run(app, ["down", f"ca{tag}"])
    assert r.exit_code == 0
    assert not {f"ca{tag}", f"fa{tag}", f"fb{tag}", f"sw{tag}"} & set(deploy.names())
    with lab.enter("dut"):
        assert not any(xdp_query(p).attached for p in ("p1", "p2"))
