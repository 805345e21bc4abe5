"""nf/chain.py with the issue's chain: flow table -> sketch -> router on the same interfaces
(configs/chain_full.yaml), through real `nf` processes (tier 2, netns). Each NF keeps its own
counters; a flow the table drops never reaches the sketch; the router's frames are byte-correct;
`nf apply` reordering keeps every member's maps; `nf down` leaves nothing."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from nf import deploy
from nf_cli import NF, js, run

pytestmark = pytest.mark.netns
ROOT = Path(__file__).resolve().parents[2]








@pytest.fixture
def chain_cfg(rlab, tmp_path):
    """configs/chain_full.yaml in this lab with unique names; write(order) -> path. Torn down after."""
    data = yaml.safe_load((ROOT / "configs" / "chain_full.yaml").read_text())
    tag = f"x{os.getpid()}"
    data["chain"] += tag
    data["netns"] = rlab.dut
    for m in data["nfs"]:
        m["config"]["name"] += tag
        if m["kind"] == "sketch":        # a handful of frames makes a candidate (topk lists it)
            m["config"]["threshold"] = {"absolute": 2}
    names = {m["kind"]: m["config"]["name"] for m in data["nfs"]}
    by_kind = {m["kind"]: m for m in data["nfs"]}

    def write(order=("flow_table", "sketch", "router")):
        f = tmp_path / f"chain_{'_'.join(order)}.yaml"
        f.write_text(yaml.safe_dump({**data, "nfs": [by_kind[k] for k in order]}))
        return f
    write.chain, write.names = data["chain"], names
    yield write
    subprocess.run([NF, "down", data["chain"]], capture_output=True, timeout=120)
    for n in [data["chain"], *names.values()]:
        deploy.cleanup_pins(n)
        deploy.remove(n)


def frames(lab, sport, n):
    h1 = lab.host("h1")
    return [bytes(Ether(src=h1.mac, dst=h1.port_mac) / IP(src="10.0.1.2", dst="10.9.1.1", ttl=64)
                  / UDP(sport=sport, dport=5000) / f"{sport}-{i}".encode().ljust(18, b"."))
            for i in range(n)]


def routed(lab, frame, host="h2") -> bytes:
    """What the router must put on the wire to ``host``: TTL - 1, IP checksum, port MAC -> the
    host's MAC."""
    h = lab.host(host)
    e = Ether(frame)
    e.src, e.dst = h.port_mac, h.mac
    e[IP].ttl -= 1
    del e[IP].chksum
    return bytes(e)


def stream_during(lab, tag, least, action):
    """h1 streams UDP 4000 -> 5000 bursts of 32 frames (payload ``tag`` + a running number, at
    least ``least`` frames) while ``action()`` runs. -> (frames sent, {"h2"/"h3": IP frames
    captured there})."""
    import threading
    h1 = lab.host("h1")
    sent, stop = [], threading.Event()

    def stream():
        i = 0
        while not stop.is_set() or i < least:
            chunk = [bytes(Ether(src=h1.mac, dst=h1.port_mac) / IP(src="10.0.1.2", dst="10.9.1.1")
                           / UDP(sport=4000, dport=5000) / f"{tag}{i + k}".encode().ljust(18, b"."))
                     for k in range(32)]
            lab.send("h1", chunk)
            sent.extend(chunk)
            i += 32

    with lab.capture(["h2", "h3"]) as cap:
        t = threading.Thread(target=stream)
        t.start()
        try:
            action()
            assert t.is_alive(), "traffic ended before the applies"
        finally:
            stop.set()
            t.join(60)
        got = cap.wait(count=len(sent), timeout=5, quiet=0.5)
    return sent, {h: [bytes(x) for x in got[lab.tap(h)] if IP in Ether(bytes(x))] for h in ("h2", "h3")}


def send(lab, fs, count, timeout=2.0):
    with lab.capture(["h2", "h3"]) as cap:
        lab.send("h1", fs)
        got = cap.wait(count=count, timeout=timeout, quiet=0.3)
    return {h: [bytes(f) for f in got[lab.tap(h)] if IP in Ether(bytes(f))] for h in ("h2", "h3")}


def flows(name):
    return {(r["flow"], r["action"]): r["packets"] for r in js("flows", name)[name]}


def sketch_top(name):
    return {r["flow"]: r["estimate"] for r in js("topk", name)[name]}


def test_flow_table_sketch_router_chain_across_processes(rlab, chain_cfg):
    from nf.bpf import xdp_query
    ft, sk, rt = (chain_cfg.names[k] for k in ("flow_table", "sketch", "router"))
    ch = chain_cfg.chain
    f = chain_cfg()
    p = run("up", f)
    assert f"{ch}: up (chain, p1, p2, p3)" in p.stdout, p.stdout
    assert {deploy.read(n).chain["position"] for n in (ft, sk, rt)} == {1, 2, 3}
    assert [deploy.read(n).chain["position"] for n in (ft, sk, rt)] == [1, 2, 3]

    good, bad = frames(rlab, 4000, 5), frames(rlab, 4001, 3)   # 4001: the table's drop rule
    st0 = js("stats")
    got = send(rlab, good + bad, count=5)
    # the router's output, byte for byte (only the passed flow, only to h2)
    assert sorted(got["h2"]) == sorted(routed(rlab, g) for g in good) and got["h3"] == []
    st = js("stats")
    # each NF its own counters: the table saw all 8 and dropped 3 (per-flow counts in its entries)
    fl = flows(ft)
    assert fl[("udp 10.0.1.2:4001 -> 10.9.1.1:5000", "drop")] == 3
    assert fl[("udp 10.0.1.2:4000 -> 10.9.1.1:5000", "pass")] == 5
    d = lambda n, g, k: st[n]["ports"][g][k] - st0[n]["ports"][g][k]   # noqa: E731
    a = lambda n, k: st[n]["actions"]["packets"][k] - st0[n]["actions"]["packets"][k]  # noqa: E731
    assert d(ft, "table", "lookups") == 8
    assert (a(ft, "drop"), a(ft, "pass")) == (3, 5)             # exit-point counters, per NF
    assert (a(sk, "pass"), a(sk, "drop")) == (5, 0)
    assert (a(rt, "redirect"), a(rt, "pass")) == (5, 0)
    # the sketch only saw what the table passed: the dropped flow was never counted
    top = sketch_top(sk)
    assert top.get("udp 10.0.1.2:4000 -> 10.9.1.1:5000") == 5, top
    assert not [k for k in top if " 4001 " in k], top
    assert d(sk, "epoch", "packets") == 5
    assert d(rt, "p2", "tx_packets") == 5 and d(rt, "class static", "packets") == 5
    assert st[ch]["ports"]["dispatcher"]["entered"] - st0[ch]["ports"]["dispatcher"]["entered"] >= 8

    # reorder: sketch first, then the table, then the router; every member keeps its maps
    r = run("apply", chain_cfg(("sketch", "flow_table", "router")))
    assert f"{sk}: position 2 -> 1" in r.stdout and f"{ft}: position 1 -> 2" in r.stdout, r.stdout
    assert f"{rt}: stays at 3" in r.stdout
    assert [deploy.read(n).chain["position"] for n in (sk, ft, rt)] == [1, 2, 3]
    got = send(rlab, good + bad, count=5)
    assert sorted(got["h2"]) == sorted(routed(rlab, g) for g in good)
    fl = flows(ft)                                             # the table's flows carried on
    assert fl[("udp 10.0.1.2:4001 -> 10.9.1.1:5000", "drop")] == 6
    assert fl[("udp 10.0.1.2:4000 -> 10.9.1.1:5000", "pass")] == 10
    top = sketch_top(sk)                                       # now in front: it sees the drops too
    assert top.get("udp 10.0.1.2:4000 -> 10.9.1.1:5000") == 10, top
    assert top.get("udp 10.0.1.2:4001 -> 10.9.1.1:5000") == 3, top
    st2 = js("stats")
    assert st2[rt]["ports"]["p2"]["tx_packets"] - st0[rt]["ports"]["p2"]["tx_packets"] == 10
    assert {"prefix": "10.9.0.0/16", "target": "via 10.0.2.2"} in js("routes", rt)[rt]

    p = run("down", ch)
    assert f"{ch}: down" in p.stdout
    assert not {ch, ft, sk, rt} & set(deploy.names())
    from nf.bpf.pin import instance_dir
    assert not any(instance_dir(n, create=False).exists() for n in (ch, ft, sk, rt))
    with rlab.enter("dut"):
        assert not any(xdp_query(p).attached for p in ("p1", "p2", "p3"))


def _slot_ids(chain):
    from nf.bpf.pin import instance_dir
    from nf.chain import PinnedChain
    s = PinnedChain(instance_dir(chain, create=False))
    try:
        return s.programs()
    finally:
        s.close()


def test_apply_changes_kept_members_in_place_under_traffic(rlab, chain_cfg, tmp_path):
    """A kept member's changed config under continuous traffic: the router's new route and
    neighbour (runtime, one bank flip), the table's new drop rule (runtime), the sketch's new
    threshold (a new program in its slot only). Every frame arrives (at the old next hop or the
    new one, byte-correct), the new behaviour shows, the other members' programs and counters
    are untouched."""
    import time

    ft, sk, rt = (chain_cfg.names[k] for k in ("flow_table", "sketch", "router"))
    ch = chain_cfg.chain
    f = chain_cfg()
    run("up", f)
    data = yaml.safe_load(f.read_text())
    by = {m["kind"]: m["config"] for m in data["nfs"]}
    h1, h2, h3 = (rlab.host(h) for h in ("h1", "h2", "h3"))

    def variant(name, **changes):
        for kind, edit in changes.items():
            edit(by[kind])
        p = tmp_path / f"{name}.yaml"
        p.write_text(yaml.safe_dump(data))
        return p

    def to_h3(c):
        c["routes"] = [{"prefix": "10.9.0.0/16", "via": ["10.0.3.2"]}]
        c["neighbours"] = c["neighbours"] + [{"address": "10.0.3.2", "mac": h3.mac}]
    new_route = variant("route", router=to_h3)
    new_rule = variant("rule", flow_table=lambda c: c["rules"].append(
        {"proto": "udp", "src": "10.0.1.2", "sport": 4002, "dst": "10.9.1.1", "dport": 5000,
         "action": "drop"}), sketch=lambda c: c.update(threshold={"absolute": 7}))

    ids0 = _slot_ids(ch)
    from nf.bpf import xdp_query
    with rlab.enter("dut"):
        disp0 = xdp_query("p1").prog_id
    outs = []

    def applies():
        time.sleep(0.3)
        outs.append(run("apply", new_route).stdout)
        time.sleep(0.3)
        outs.append(run("apply", new_rule).stdout)
        time.sleep(0.2)
    sent, at = stream_during(rlab, "s", 600, applies)
    n, at2, at3 = len(sent), at["h2"], at["h3"]
    print(f"chain apply x2 under traffic: {n} sent, {len(at2)} via h2, {len(at3)} via h3")

    # the diff said how each change is made; only the changed member's slot got a new program
    assert "edge3-rt" in outs[0] or rt in outs[0]
    assert f"{rt}.routes[0].via[0]: \"10.0.2.2\" -> \"10.0.3.2\"  [runtime]" in outs[0], outs[0]
    assert f"{rt}: route 10.9.0.0/16 via 10.0.3.2" in outs[0], outs[0]
    assert f"{rt}: neighbour 10.0.3.2 -> {h3.mac}" in outs[0], outs[0]
    assert f"{sk}.threshold.absolute: 2 -> 7  [new program]" in outs[1], outs[1]
    assert f"{ft}.rules[+]: added " in outs[1] and "[runtime]" in outs[1], outs[1]
    assert f"{sk}: program replaced in slot 2, maps kept" in outs[1], outs[1]
    ids1 = _slot_ids(ch)
    assert ids1[0] == ids0[0] and ids1[2] == ids0[2] and ids1[1] != ids0[1], (ids0, ids1)
    with rlab.enter("dut"):
        assert xdp_query("p1").prog_id == disp0            # no new dispatcher

    # nothing lost, nothing duplicated: each frame routed once, to the old next hop or the new
    assert len(at2) + len(at3) == n
    assert sorted(at2 + at3) == sorted([routed(rlab, fr, "h2") for fr in sent[:len(at2)]]
                                       + [routed(rlab, fr, "h3") for fr in sent[len(at2):]])
    assert at2 and at3

    # the new rule drops; the table's other flows, the sketch's bank, the router's counters went on
    bad = [bytes(Ether(src=h1.mac, dst=h1.port_mac) / IP(src="10.0.1.2", dst="10.9.1.1")
                 / UDP(sport=4002, dport=5000) / (b"x" * 18)) for _ in range(4)]
    assert send(rlab, bad, count=1, timeout=1.0) == {"h2": [], "h3": []}
    fl = flows(ft)
    assert fl[("udp 10.0.1.2:4002 -> 10.9.1.1:5000", "drop")] == 4
    assert fl[("udp 10.0.1.2:4000 -> 10.9.1.1:5000", "pass")] == n
    top = sketch_top(sk)
    assert top["udp 10.0.1.2:4000 -> 10.9.1.1:5000"] == n, top        # same bank, same counts
    st = js("stats")
    assert st[sk]["ports"]["epoch"]["packets"] == n
    assert st[rt]["ports"]["p2"]["tx_packets"] == len(at2)
    assert st[rt]["ports"]["p3"]["tx_packets"] == len(at3)
    assert {"prefix": "10.9.0.0/16", "target": "via 10.0.3.2"} in js("routes", rt)[rt]
    assert deploy.read(sk).config["threshold"]["absolute"] == 7
    assert deploy.read(rt).config["routes"][0]["via"] == ["10.0.3.2"]

    # a field only down/up can change is refused whole: nothing of the file is applied
    bad_cfg = variant("depth", sketch=lambda c: c.update(depth=2),
                      router=lambda c: c.update(routes=[]))
    p = run("apply", bad_cfg, ok=False)
    assert p.returncode == 7 and f"{sk}.depth" in p.stderr and "nothing changed" in p.stderr, p.stderr
    assert {"prefix": "10.9.0.0/16", "target": "via 10.0.3.2"} in js("routes", rt)[rt]
    assert _slot_ids(ch) == ids1
    # the table's rodata (learn) in a chain: only its slot changes, its flows and control go on
    by["sketch"]["depth"], by["router"]["routes"] = 4, [{"prefix": "10.9.0.0/16", "via": ["10.0.3.2"]}]
    no_learn = variant("nolearn", flow_table=lambda c: c.update(learn=False))
    out = run("apply", no_learn).stdout
    assert f"{ft}.learn: true -> false  [new program]" in out and f"{ft}: program replaced in slot 1" in out, out
    ids2 = _slot_ids(ch)
    assert ids2[0] != ids1[0] and ids2[1:] == ids1[1:]
    lab_new = [bytes(Ether(src=h1.mac, dst=h1.port_mac) / IP(src="10.0.1.2", dst="10.9.1.1")
                     / UDP(sport=4003, dport=5000) / (b"y" * 18)) for _ in range(2)]
    assert len(send(rlab, lab_new, count=2)["h3"]) == 2              # still routed
    fl = flows(ft)
    assert fl[("udp 10.0.1.2:4000 -> 10.9.1.1:5000", "pass")] == n    # kept
    assert not [k for k in fl if ":4003 " in k[0]]                    # not learned any more
    run("flows", ft, "add", "--src", "10.0.1.2", "--dst", "10.9.1.1", "--sport", "4004",
        "--dport", "5000", "--action", "drop")                      # the re-pinned control program
    f4004 = bytes(Ether(src=h1.mac, dst=h1.port_mac) / IP(src="10.0.1.2", dst="10.9.1.1")
                  / UDP(sport=4004, dport=5000) / (b"z" * 18))
    assert send(rlab, [f4004], count=1, timeout=1.0) == {"h2": [], "h3": []}
    assert flows(ft)[("udp 10.0.1.2:4004 -> 10.9.1.1:5000", "drop")] == 1
    ids1 = ids2
    # a member is changed through its chain's file, not a file of its own
    own = tmp_path / "sketch_member.yaml"
    own.write_text(yaml.safe_dump({**by["sketch"], "netns": rlab.dut, "threshold": {"absolute": 9}}))
    p = run("apply", own, ok=False)
    assert p.returncode == 7 and f"{sk} is member 2 of chain {ch}" in p.stderr, p.stderr
    assert _slot_ids(ch) == ids1


def test_twenty_member_applies_under_traffic_lose_nothing(rlab, chain_cfg, tmp_path):
    """20 applies while h1 streams: each moves the router's route to the other next hop
    (runtime, one bank flip) and gives the sketch another threshold (its slot replaced).
    Every frame arrives exactly once, byte-correct for one of the two next hops; the sketch's
    bank counted every frame across all 10 program replacements."""
    from typer.testing import CliRunner

    from nf.cli import app
    sk, rt = chain_cfg.names["sketch"], chain_cfg.names["router"]
    f = chain_cfg()
    run("up", f)
    data = yaml.safe_load(f.read_text())
    h1, h2, h3 = (rlab.host(h) for h in ("h1", "h2", "h3"))
    files = []
    for i in range(2):
        for m in data["nfs"]:
            if m["kind"] == "router":
                m["config"]["routes"] = [{"prefix": "10.9.0.0/16", "via": [f"10.0.{3 - i}.2"]}]
                m["config"]["neighbours"] = [{"address": "10.0.2.2", "mac": h2.mac},
                                             {"address": "10.0.3.2", "mac": h3.mac}]
            if m["kind"] == "sketch":
                m["config"]["threshold"] = {"absolute": 3 + i}
        p = tmp_path / f"chain_v{i}.yaml"
        p.write_text(yaml.safe_dump(data))
        files.append(p)
    ids = set()

    def applies():
        for i in range(20):
            r = CliRunner().invoke(app, ["apply", str(files[i % 2])])
            assert r.exit_code == 0, r.output
            assert f"{sk}: program replaced in slot 2, maps kept" in r.output, r.output
            ids.add(_slot_ids(chain_cfg.chain)[1])
    sent, at = stream_during(rlab, "t", 1000, applies)
    n = len(sent)
    print(f"20 chain applies under traffic: {n} sent, {len(at['h2'])} via h2, {len(at['h3'])} via h3")
    assert len(ids) == 20                                    # a new sketch program every time
    assert len(at["h2"]) + len(at["h3"]) == n                # nothing lost, nothing twice
    ok = {h: {routed(rlab, fr, h) for fr in sent} for h in ("h2", "h3")}
    assert all(x in ok["h2"] for x in at["h2"]) and all(x in ok["h3"] for x in at["h3"])
    assert len(set(at["h2"]) | set(at["h3"])) == n           # each frame once
    assert at["h2"] and at["h3"]
    assert js("stats")[sk]["ports"]["epoch"]["packets"] == n
    assert deploy.read(rt).config["routes"][0]["via"] == ["10.0.2.2"]      # the last file: v1
