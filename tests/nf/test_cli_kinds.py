"""nf/cli.py + nf/engine.py for the sketch, flow table and router kinds, through real
`nf` processes (tier 2, netns): up in one process; show / stats / the kind's verb in later ones;
down in another; a `nf up` killed after the controller attached leaves pins and links that the
next `nf down` removes."""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
import yaml

from nf import deploy
from nf_cli import NF, js, run

pytestmark = pytest.mark.netns
ROOT = Path(__file__).resolve().parents[2]






def attached(lab, ports):
    from nf.bpf import xdp_query
    with lab.enter("dut"):
        return [xdp_query(p).attached for p in ports]


def udp(src, dst, sport, dport, smac, dmac, n=1) -> list[bytes]:
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    return [bytes(Ether(src=smac, dst=dmac) / IP(src=src, dst=dst) / UDP(sport=sport, dport=dport)
                  / (b"x" * 18))] * n


@pytest.fixture
def lab4(make_lab):
    from nf.net.lab import LabSpec
    need = os.geteuid() == 0
    from nf.testing.tiers import require
    require(need, "needs root")
    return make_lab(LabSpec.switch(4))


@pytest.fixture
def instance(tmp_path):
    """(name, write(kind, data) -> path); whatever it names is torn down afterwards."""
    name = f"k{os.getpid()}"

    def write(kind: str, data: dict) -> Path:
        f = tmp_path / f"{kind}.yaml"
        f.write_text(yaml.safe_dump({"name": name, **data}))
        return f
    yield name, write
    subprocess.run([NF, "down", name], capture_output=True, timeout=120)
    deploy.cleanup_pins(name)
    deploy.remove(name)


# ---- sketch ------------------------------------------------------------------------------------
def _sk_file(lab, write):
    return write("sketch", {"netns": lab.dut, "interfaces": ["p1"], "depth": 4, "width": 1024,
                            "threshold": {"absolute": 10}, "topk": 4, "candidates": 64,
                            "variant": "pure"})


def test_sketch_up_show_stats_topk_flip_down_across_processes(lab4, instance):
    name, write = instance
    f = _sk_file(lab4, write)
    p = run("up", f)
    assert f"{name}: up (sketch, p1)" in p.stdout
    rec = deploy.read(name)
    assert rec.kind == "sketch" and rec.status == "up" and rec.variant == "pure"
    assert attached(lab4, ["p1", "p2"]) == [True, False]
    assert "unchanged" in run("up", f).stdout                      # same file: nothing changes
    h1 = lab4.host("h1")
    lab4.send("h1", udp("10.0.0.1", "10.0.0.2", 1000, 2000, h1.mac, "02:00:00:00:00:02", 30)
              + udp("10.0.0.1", "10.0.0.3", 1001, 2001, h1.mac, "02:00:00:00:00:03", 5))
    st = js("stats", name)[name]
    ep = st["ports"]["epoch"]
    assert ep["epoch"] == 0 and ep["packets"] >= 35 and ep["candidates"] >= 1
    assert st["actions"]["packets"]["pass"] == ep["packets"]      # monitor: every frame passes
    top = js("topk", name)[name]
    assert top[0] == {"flow": "udp 10.0.0.1:1000 -> 10.0.0.2:2000", "estimate": 30, "heavy": True,
                      "epoch": 0}
    assert all(r["estimate"] < 30 for r in top[1:])
    shown = [d for d in js("show") if d["name"] == name][0]
    assert shown["kind"] == "sketch" and shown["interfaces"] == ["p1"]
    assert shown["keying"] == {"keyed": True, "by": "drawn"}     # no seed in the file; not shown
    assert f"{name}: count-min rows keyed by a secret drawn from the kernel's random source" \
        in run("show").stdout
    # flip: the closed epoch is reported; counting continues in the other bank
    closed = js("topk", name, "--flip", "-k", "1")[name]
    assert closed == [{"flow": "udp 10.0.0.1:1000 -> 10.0.0.2:2000", "estimate": 30, "heavy": True,
                       "epoch": 0}]
    ep = js("stats", name)[name]["ports"]["epoch"]
    assert ep["epoch"] == 1 and ep["candidates"] == 0
    lab4.send("h1", udp("10.0.0.1", "10.0.0.2", 1000, 2000, h1.mac, "02:00:00:00:00:02", 3))
    # 3 < threshold: no candidate this epoch, but among its largest flows all the same
    assert {"flow": "udp 10.0.0.1:1000 -> 10.0.0.2:2000", "estimate": 3, "heavy": False,
            "epoch": 1} in js("topk", name)[name]
    assert run("topk", name, "-k", "0", ok=False).returncode == 3
    p = run("down", name)
    assert f"{name}: down" in p.stdout
    assert deploy.read(name) is None and not rec.pin_dir.exists()
    assert attached(lab4, ["p1"]) == [False]


def test_sketch_preflight_names_the_field(lab4, instance):
    name, write = instance
    f = write("sketch", {"netns": lab4.dut, "interfaces": ["p1", "nope0"]})
    p = run("up", f, ok=False)
    assert p.returncode == 3 and "interfaces[1]" in p.stdout + p.stderr
    assert deploy.read(name) is None and attached(lab4, ["p1"]) == [False]


def test_sketch_killed_up_is_cleaned_by_down(lab4, instance):
    name, write = instance
    f = _sk_file(lab4, write)
    p = run("up", f, env={"NF_TEST_CRASH_AT": "after-up"}, ok=False)
    assert p.returncode == -signal.SIGKILL
    rec = deploy.read(name)
    assert rec.stale and rec.pin_dir.exists() and attached(lab4, ["p1"]) == [True]
    assert f"{name}: down" in run("down", name).stdout
    assert deploy.read(name) is None and not rec.pin_dir.exists()
    assert attached(lab4, ["p1"]) == [False]


# ---- flow table --------------------------------------------------------------------------------
def _ft_file(lab, write, **kw):
    return write("flow_table", {"netns": lab.dut, "interfaces": ["p1"], "size": 1024,
                                "variant": "pure", "learn": True,
                                "rules": [{"proto": "udp", "src": "10.0.0.1", "sport": 7,
                                           "dst": "10.0.0.2", "dport": 53, "action": "drop"}], **kw})


def _rows(name):
    return {r["flow"]: r for r in js("flows", name)[name]}


def test_flow_table_up_flows_add_del_apply_stats_down_across_processes(lab4, instance):
    name, write = instance
    f = _ft_file(lab4, write)
    p = run("up", f)
    assert f"{name}: up (flow_table, p1)" in p.stdout
    rec = deploy.read(name)
    assert rec.kind == "flow_table" and rec.variant == "pure" and attached(lab4, ["p1"]) == [True]
    assert [d["keying"] for d in js("show") if d["name"] == name] == [{"keyed": True, "by": "drawn"}]
    rows = _rows(name)
    assert rows == {"udp 10.0.0.1:7 -> 10.0.0.2:53": {
        "flow": "udp 10.0.0.1:7 -> 10.0.0.2:53", "action": "drop", "port": None, "packets": 0,
        "bytes": 0, "static": True}}
    h1 = lab4.host("h1")
    # 4 frames hit the static drop rule, 6 of a new flow are learned (default action pass)
    lab4.send("h1", udp("10.0.0.1", "10.0.0.2", 7, 53, h1.mac, "02:00:00:00:00:02", 4)
              + udp("10.0.0.1", "10.0.0.3", 9, 99, h1.mac, "02:00:00:00:00:03", 6))
    rows = _rows(name)
    assert rows["udp 10.0.0.1:7 -> 10.0.0.2:53"]["packets"] == 4
    learned = rows["udp 10.0.0.1:9 -> 10.0.0.3:99"]
    assert learned["packets"] == 6 and not learned["static"] and learned["action"] == "pass"
    st = js("stats", name)[name]
    assert st["ports"]["table"]["entries"] == len(rows) and st["ports"]["table"]["hits"] >= 9
    assert st["actions"]["packets"]["drop"] == 4
    # add / del from other processes; the datapath obeys at once
    run("flows", name, "add", "--src", "10.0.0.1", "--dst", "10.0.0.4", "--sport", "1",
        "--dport", "2", "--action", "drop")
    lab4.send("h1", udp("10.0.0.1", "10.0.0.4", 1, 2, h1.mac, "02:00:00:00:00:04", 3))
    assert _rows(name)["udp 10.0.0.1:1 -> 10.0.0.4:2"]["packets"] == 3
    assert js("stats", name)[name]["actions"]["packets"]["drop"] == 7
    run("flows", name, "del", "--src", "10.0.0.1", "--dst", "10.0.0.4", "--sport", "1", "--dport", "2")
    assert "udp 10.0.0.1:1 -> 10.0.0.4:2" not in _rows(name)
    p = run("flows", name, "del", "--src", "10.0.0.1", "--dst", "10.0.0.4", "--sport", "1",
            "--dport", "2", ok=False)
    assert p.returncode == 6 and "no flow" in p.stderr
    p = run("flows", name, "add", "--src", "10.0.0.1", "--dst", "nope", ok=False)
    assert p.returncode == 3 and "dst" in p.stderr
    p = run("flows", name, "add", "--src", "10.0.0.1", "--dst", "10.0.0.9", "--action", "redirect",
            ok=False)
    assert p.returncode == 3 and "redirect needs a port" in p.stderr
    # apply: the static rule's action changes in place, counters of other flows stay
    g = _ft_file(lab4, write, rules=[{"proto": "udp", "src": "10.0.0.1", "sport": 7,
                                      "dst": "10.0.0.2", "dport": 53, "action": "pass"}])
    p = run("apply", g)
    assert "rule set: udp 10.0.0.1:7 -> 10.0.0.2:53 pass" in p.stdout
    rows = _rows(name)
    assert rows["udp 10.0.0.1:7 -> 10.0.0.2:53"]["action"] == "pass"
    assert rows["udp 10.0.0.1:9 -> 10.0.0.3:99"]["packets"] == 6
    # learn is rodata: a new program on the same maps, swapped into the link
    g = _ft_file(lab4, write, learn=False, rules=[{"proto": "udp", "src": "10.0.0.1", "sport": 7,
                                                  "dst": "10.0.0.2", "dport": 53, "action": "pass"}])
    p = run("apply", g)
    assert "learn: true -> false  [new program]" in p.stdout, p.stdout
    assert f"{name}: program replaced on 1 link(s), maps kept" in p.stdout, p.stdout
    lab4.send("h1", udp("10.0.0.1", "10.0.0.3", 9, 99, h1.mac, "02:00:00:00:00:03", 2)
              + udp("10.0.0.1", "10.0.0.5", 3, 4, h1.mac, "02:00:00:00:00:05", 5))
    rows = _rows(name)
    assert rows["udp 10.0.0.1:9 -> 10.0.0.3:99"]["packets"] == 8          # the learned flow goes on
    assert "udp 10.0.0.1:3 -> 10.0.0.5:4" not in rows                      # nothing new is learned
    run("flows", name, "add", "--src", "10.0.0.1", "--dst", "10.0.0.6", "--action", "drop")
    assert "udp 10.0.0.1:0 -> 10.0.0.6:0" in _rows(name)                  # the control pin works
    p = run("down", name)
    assert f"{name}: down" in p.stdout and not rec.pin_dir.exists()
    assert attached(lab4, ["p1"]) == [False] and deploy.read(name) is None


def test_flow_table_killed_up_is_cleaned_by_down(lab4, instance):
    name, write = instance
    f = _ft_file(lab4, write)
    p = run("up", f, env={"NF_TEST_CRASH_AT": "after-up"}, ok=False)
    assert p.returncode == -signal.SIGKILL
    rec = deploy.read(name)
    assert rec.stale and (rec.pin_dir / "links" / "p1").exists() and attached(lab4, ["p1"]) == [True]
    assert f"{name}: down" in run("down", name).stdout
    assert deploy.read(name) is None and not rec.pin_dir.exists() and attached(lab4, ["p1"]) == [False]


# ---- router ------------------------------------------------------------------------------------


def _rt_file(lab, write):
    # no `mac:` per interface: the router reads each port's MAC in its netns (netlink)
    return write("router", {
        "netns": lab.dut, "mode": "dir", "learn_neighbours": False,
        "interfaces": [{"name": f"p{i}", "addresses": [f"10.0.{i}.1/24"]} for i in (1, 2, 3)],
        "routes": [{"prefix": "10.9.0.0/16", "via": ["10.0.2.2"]}],
        "neighbours": [{"address": "10.0.2.2", "mac": lab.host("h2").mac}],
        "sizes": {"v4_chunks": 64, "v6_chunks": 64, "trie_entries": 1024, "neighbours": 64}})


def _forwarded(lab, to_host: str, dst: str, n: int = 5, timeout: float = 2.0) -> list:
    """n UDP frames from h1 (to its gateway's MAC) for ``dst``; what ``to_host`` receives."""
    from scapy.layers.inet import IP
    from scapy.layers.l2 import Ether
    h1 = lab.host("h1")
    frames = udp("10.0.1.2", dst, 4000, 5000, h1.mac, h1.port_mac, n)
    with lab.capture([to_host]) as cap:
        lab.send("h1", frames)
        got = cap.wait(count=n, timeout=timeout)[lab.tap(to_host)]
    return [Ether(bytes(f)) for f in got if IP in Ether(bytes(f)) and Ether(bytes(f))[IP].dst == dst]


def test_router_up_routes_neigh_stats_down_across_processes(rlab, instance, tmp_path):
    from scapy.layers.inet import IP
    name, write = instance
    f = _rt_file(rlab, write)
    p = run("up", f)
    assert f"{name}: up (router, p1, p2, p3)" in p.stdout
    rec = deploy.read(name)
    assert rec.kind == "router" and rec.status == "up" and rec.extra["routes"] == 1
    assert attached(rlab, ["p1", "p2", "p3"]) == [True] * 3
    assert "unchanged" in run("up", f).stdout
    assert js("routes", name)[name] == [{"prefix": "10.9.0.0/16", "target": "via 10.0.2.2"}]
    h2, h3 = rlab.host("h2"), rlab.host("h3")
    assert js("neigh", name)[name] == [{"port": "p2", "address": "10.0.2.2", "mac": h2.mac,
                                       "static": True}]
    # forwarded by the pinned program: TTL decremented, MACs rewritten from the port's own
    got = _forwarded(rlab, "h2", "10.9.1.1")
    assert len(got) == 5
    assert all(g[IP].ttl == 63 and g.dst == h2.mac and g.src == h2.port_mac for g in got)
    st = js("stats", name)[name]["ports"]
    assert st["p2"]["tx_packets"] == 5 and st["p1"]["rx_packets"] >= 5
    assert st["class static"]["packets"] == 5
    # routes and neighbours changed by later processes; the datapath follows
    run("neigh", name, "add", "10.0.3.2", h3.mac)
    run("routes", name, "add", "10.8.0.0/16", "via", "10.0.3.2")
    assert {"prefix": "10.8.0.0/16", "target": "via 10.0.3.2"} in js("routes", name)[name]
    assert len(_forwarded(rlab, "h3", "10.8.0.1")) == 5
    run("routes", name, "del", "10.9.0.0/16")
    assert _forwarded(rlab, "h2", "10.9.1.1", timeout=0.5) == []
    p = run("routes", name, "del", "10.9.0.0/16", ok=False)
    assert p.returncode == 6 and "no route 10.9.0.0/16" in p.stderr
    p = run("routes", name, "add", "10.6.0.0/16", "via", "192.0.2.1", ok=False)
    assert p.returncode == 3 and "no connected subnet" in p.stderr
    run("neigh", name, "del", "10.0.3.2")
    assert [n["address"] for n in js("neigh", name)[name]] == ["10.0.2.2"]
    # bulk replace from a file: one flip
    rf = tmp_path / "routes.txt"
    rf.write_text("".join(f"10.{100 + i}.0.0/16 via 10.0.2.2\n" for i in range(50))
                  + "10.7.0.0/24 blackhole\n")
    res = js("routes", name, "replace", rf)[name][0]
    assert (res["ipv4"], res["ipv6"]) == (51, 0)
    rows = js("routes", name, "--limit", "0")[name]
    assert len(rows) == 51 and {"prefix": "10.7.0.0/24", "target": "blackhole"} in rows
    assert len(_forwarded(rlab, "h2", "10.120.3.4")) == 5
    p = run("routes", name, "replace", tmp_path / "nope.txt", ok=False)
    assert p.returncode == 6
    p = run("down", name)
    assert f"{name}: down" in p.stdout and not rec.pin_dir.exists() and deploy.read(name) is None
    assert attached(rlab, ["p1", "p2", "p3"]) == [False] * 3


def test_router_killed_up_is_cleaned_by_down(rlab, instance):
    name, write = instance
    p = run("up", _rt_file(rlab, write), env={"NF_TEST_CRASH_AT": "after-up"}, ok=False)
    assert p.returncode == -signal.SIGKILL
    rec = deploy.read(name)
    assert rec.stale and attached(rlab, ["p1", "p2", "p3"]) == [True] * 3
    assert f"{name}: down" in run("down", name).stdout
    assert deploy.read(name) is None and not rec.pin_dir.exists()
    assert attached(rlab, ["p1", "p2", "p3"]) == [False] * 3


def test_router_trie_mode_routes_change_from_another_process(rlab, instance):
    """mode: trie keeps routes in the kernel's LPM tries: a process that did not fill them
    rewrites the idle bank from the saved state and flips."""
    name, write = instance
    f = _rt_file(rlab, write)
    data = yaml.safe_load(f.read_text())
    f.write_text(yaml.safe_dump({**data, "mode": "trie"}))
    run("up", f)
    assert len(_forwarded(rlab, "h2", "10.9.1.1")) == 5
    run("neigh", name, "add", "10.0.3.2", rlab.host("h3").mac)
    run("routes", name, "add", "10.9.4.0/24", "via", "10.0.3.2")     # more specific: wins
    assert len(_forwarded(rlab, "h3", "10.9.4.4")) == 5
    assert len(_forwarded(rlab, "h2", "10.9.1.1")) == 5
    run("routes", name, "del", "10.9.0.0/16")
    assert _forwarded(rlab, "h2", "10.9.1.1", timeout=0.5) == []
    assert len(_forwarded(rlab, "h3", "10.9.4.4")) == 5
    assert f"{name}: down" in run("down", name).stdout
    assert attached(rlab, ["p1", "p2", "p3"]) == [False] * 3


def test_down_after_the_interface_is_gone(lab4, instance):
    """A deployment whose interface was deleted: the pinned link is defunct; `nf down` still
    detaches and unpins everything."""
    from pyroute2 import IPRoute
    name, write = instance
    run("up", _sk_file(lab4, write))
    rec = deploy.read(name)
    with lab4.enter("dut"), IPRoute() as ipr:
        ipr.link("del", index=ipr.link_lookup(ifname="p1")[0])
    assert run("show").returncode == 0
    p = run("down", name)
    assert f"{name}: down" in p.stdout and not rec.pin_dir.exists() and deploy.read(name) is None


def test_sketch_apply_changes_controller_fields_and_refuses_datapath_ones(lab4, instance):
    name, write = instance
    f = _sk_file(lab4, write)
    run("up", f)
    data = yaml.safe_load(f.read_text())
    f.write_text(yaml.safe_dump({**data, "topk": 2}))
    p = run("apply", f)
    assert "topk 4 -> 2 (controller side)" in p.stdout and deploy.read(name).config["topk"] == 2
    f.write_text(yaml.safe_dump({**data, "topk": 2, "width": 512}))
    p = run("apply", f, ok=False)
    assert p.returncode == 7 and "width" in p.stderr
    assert deploy.read(name).config["width"] == 1024
    # the threshold is rodata: a new program on the same banks, swapped into the link
    h1 = lab4.host("h1")
    lab4.send("h1", udp("10.0.0.1", "10.0.0.2", 1000, 2000, h1.mac, "02:00:00:00:00:02", 3))
    assert js("topk", name)[name][0] == {"flow": "udp 10.0.0.1:1000 -> 10.0.0.2:2000",  # 3 < 10:
                                         "estimate": 3, "heavy": False, "epoch": 0}  # not heavy
    f.write_text(yaml.safe_dump({**data, "topk": 2, "threshold": {"absolute": 2}}))
    p = run("apply", f)
    assert "threshold.absolute: 10 -> 2  [new program]" in p.stdout, p.stdout
    assert f"{name}: program replaced on 1 link(s), maps kept" in p.stdout, p.stdout
    lab4.send("h1", udp("10.0.0.1", "10.0.0.3", 1001, 2001, h1.mac, "02:00:00:00:00:03", 3))
    assert js("topk", name)[name] == [   # both over the new threshold, ties by key
        {"flow": "udp 10.0.0.1:1000 -> 10.0.0.2:2000", "estimate": 3, "heavy": True, "epoch": 0},
        {"flow": "udp 10.0.0.1:1001 -> 10.0.0.3:2001", "estimate": 3, "heavy": True, "epoch": 0}]
    assert js("stats", name)[name]["ports"]["epoch"]["packets"] == 6     # the bank carried on
    assert deploy.read(name).config["threshold"]["absolute"] == 2


def test_router_apply_changes_routes_and_neighbours_in_place_under_traffic(rlab, instance, tmp_path):
    """`nf apply` of a router file whose route moves to a new next hop (with its neighbour):
    changed in place (one bank flip) while h1 streams; every frame arrives once, at h2 before
    and h3 after, byte-correct; a field only down/up can change is refused (7), nothing changed."""
    import threading
    import time

    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    name, write = instance
    f = _rt_file(rlab, write)
    run("up", f)
    data = yaml.safe_load(f.read_text())
    h1, h2, h3 = (rlab.host(h) for h in ("h1", "h2", "h3"))
    data["routes"] = [{"prefix": "10.9.0.0/16", "via": ["10.0.3.2"]},
                      {"prefix": "10.8.0.0/16", "via": ["10.0.2.2"]}]
    data["neighbours"].append({"address": "10.0.3.2", "mac": h3.mac})
    g = tmp_path / "router_new.yaml"
    g.write_text(yaml.safe_dump(data))
    sent, stop = [], threading.Event()

    def stream():
        i = 0
        while not stop.is_set() or i < 400:
            chunk = [bytes(Ether(src=h1.mac, dst=h1.port_mac) / IP(src="10.0.1.2", dst="10.9.1.1")
                           / UDP(sport=4000, dport=5000) / f"r{i + k}".encode().ljust(18, b"."))
                     for k in range(32)]
            rlab.send("h1", chunk)
            sent.extend(chunk)
            i += 32

    with rlab.capture(["h2", "h3"]) as cap:
        t = threading.Thread(target=stream)
        t.start()
        try:
            time.sleep(0.3)
            out = run("apply", g).stdout
            time.sleep(0.3)
            assert t.is_alive()
        finally:
            stop.set()
            t.join(60)
        got = cap.wait(count=len(sent), timeout=5, quiet=0.5)
    at = {h: [bytes(x) for x in got[rlab.tap(h)] if IP in Ether(bytes(x))] for h in ("h2", "h3")}
    print(f"router apply under traffic: {len(sent)} sent, {len(at['h2'])} via h2, {len(at['h3'])} via h3")
    assert "[runtime]" in out and f"{name}: route 10.9.0.0/16 via 10.0.3.2" in out, out
    assert f"{name}: neighbour 10.0.3.2 -> {h3.mac}" in out, out

    def routed(fr, host):
        h = rlab.host(host)
        e = Ether(fr)
        e.src, e.dst = h.port_mac, h.mac
        e[IP].ttl -= 1
        del e[IP].chksum
        return bytes(e)
    n2 = len(at["h2"])
    assert at["h3"] and n2 + len(at["h3"]) == len(sent)
    assert sorted(at["h2"] + at["h3"]) == sorted([routed(x, "h2") for x in sent[:n2]]
                                                 + [routed(x, "h3") for x in sent[n2:]])
    rows = js("routes", name)[name]
    assert {"prefix": "10.9.0.0/16", "target": "via 10.0.3.2"} in rows
    assert {"prefix": "10.8.0.0/16", "target": "via 10.0.2.2"} in rows
    assert deploy.read(name).config["routes"][0]["via"] == ["10.0.3.2"]
    assert "unchanged" in run("apply", g).stdout
    # icmp is rodata: a new program on the same maps in every link; routes and counters go on
    tx = js("stats", name)[name]["ports"]["p3"]["tx_packets"]
    data["icmp"] = {"rate": 50}
    g.write_text(yaml.safe_dump(data))
    out = run("apply", g).stdout
    assert "icmp.rate: 1000 -> 50  [new program]" in out, out
    assert f"{name}: program replaced on 3 link(s), maps kept" in out, out
    assert len(_forwarded(rlab, "h3", "10.9.4.4")) == 5
    assert js("stats", name)[name]["ports"]["p3"]["tx_packets"] == tx + 5
    assert {"prefix": "10.8.0.0/16", "target": "via 10.0.2.2"} in js("routes", name)[name]
    data["mode"] = "trie"
    g.write_text(yaml.safe_dump(data))
    p = run("apply", g, ok=False)
    assert p.returncode == 7 and "changing mode needs" in p.stderr, p.stderr
    assert deploy.read(name).config["mode"] == "dir"
