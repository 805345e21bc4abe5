"""nf/metrics.py: the output parses as Prometheus text exposition (0.0.4), by a strict parser
written from the format's grammar; the values equal the switch's own counters; the HTTP endpoint
serves loopback only."""
from __future__ import annotations

import json
import os
import re
import urllib.request

import pytest
import yaml
from typer.testing import CliRunner

from nf import deploy, metrics
from nf.cli import app

ROOT_CFG = __import__("pathlib").Path(__file__).resolve().parents[2] / "configs"

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(rf"^({NAME})(?:\{{((?:{LABEL})(?:,{LABEL})*)?\}})? (-?[0-9.eE+-]+|NaN|[+-]Inf)$")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def parse(text: str) -> dict[str, dict]:
    """{family: {"type":, "help":, "samples": [(labels dict, value)]}}; raises on any violation."""
    assert text.endswith("\n"), "exposition must end with a newline"
    fams: dict[str, dict] = {}
    current = None
    for n, line in enumerate(text.splitlines(), 1):
        if not line:
            continue
        if line.startswith("# HELP "):
            name, _, help_ = line[7:].partition(" ")
            assert re.fullmatch(NAME, name), (n, line)
            fams.setdefault(name, {"samples": []})["help"] = help_
            current = name
        elif line.startswith("# TYPE "):
            name, _, typ = line[7:].partition(" ")
            assert typ in TYPES, (n, line)
            f = fams.setdefault(name, {"samples": []})
            assert "type" not in f and not f["samples"], f"TYPE of {name} repeated or after samples"
            f["type"] = typ
            current = name
        elif line.startswith("#"):
            continue
        else:
            m = SAMPLE.match(line)
            assert m, f"line {n} is not a sample: {line!r}"
            name, labels, value = m.groups()
            assert name == current, f"line {n}: sample of {name} outside its family block"
            lab = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', labels or ""))
            float(value)
            fams[name]["samples"].append((lab, float(value)))
    for name, f in fams.items():
        if f.get("type") == "counter":
            assert name.endswith("_total"), f"counter {name} should end in _total"
            assert all(v >= 0 for _, v in f["samples"])
        keys = [tuple(sorted(lab.items())) for lab, _ in f["samples"]]
        assert len(keys) == len(set(keys)), f"duplicate series in {name}"
    return fams


def test_exposition_escapes_and_formats():
    e = metrics.Exposition()
    e.add("xdpnf_x_total", "counter", "help text", {"port": 'a"b\\c\nd'}, 3)
    e.add("xdpnf_x_total", "counter", "help text", {"port": "p2"}, 0)
    e.add("xdpnf_g", "gauge", "g", {}, 1)
    f = parse(e.text())
    assert f["xdpnf_x_total"]["samples"][0] == ({"port": 'a\\"b\\\\c\\nd'}, 3.0)
    assert f["xdpnf_g"]["samples"] == [({}, 1.0)]
    assert metrics.metric_name("xdpnf", "l2-switch", "rx.bytes", "total") == "xdpnf_l2_switch_rx_bytes_total"


def test_render_parses_with_nothing_deployed_or_whatever_is():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    fams = parse(metrics.render())
    assert fams["xdpnf_kmod_loaded"]["type"] == "gauge"


@pytest.mark.parametrize("addr,ok", [("127.0.0.1:9101", ("127.0.0.1", 9101)), (":0", ("127.0.0.1", 0)),
                                     ("[::1]:80", ("::1", 80)), ("localhost:1", ("127.0.0.1", 1)),
                                     ("0.0.0.0:9101", None), ("10.1.2.3:1", None), ("host:x", None),
                                     ("127.0.0.1:70000", None)])
def test_listen_is_loopback_only(addr, ok):
    if ok is None:
        with pytest.raises(ValueError):
            metrics.parse_listen(addr)
    else:
        assert metrics.parse_listen(addr) == ok


def test_cli_refuses_public_listen():
    r = CliRunner().invoke(app, ["metrics", "--listen", "0.0.0.0:9101"])
    assert r.exit_code == 3 and "only loopback" in r.output


@pytest.mark.netns
def test_counters_of_a_deployed_switch_are_exposed_and_served(make_lab, tmp_path):
    import threading

    from nf.net.lab import LabSpec
    lab = make_lab(LabSpec.switch(3))
    name = f"mett{os.getpid()}"
    f = tmp_path / "l2_switch.yaml"
    f.write_text(yaml.safe_dump({"name": name, "netns": lab.dut,
                                 "ports": [{"name": f"p{i}", "vlan": 10} for i in (1, 2, 3)]}))
    runner = CliRunner()
    assert runner.invoke(app, ["up", str(f)]).exit_code == 0
    try:
        h1 = lab.host("h1").mac
        frames = [bytes.fromhex("ffffffffffff" + h1.replace(":", "")) + b"\x88\xb5" + bytes(46)] * 5
        with lab.capture(["h2", "h3"]) as cap:
            lab.send("h1", frames)
            cap.wait(count=10, timeout=2)
        r = runner.invoke(app, ["metrics"])
        assert r.exit_code == 0
        fams = parse(r.output)
        st = json.loads(runner.invoke(app, ["stats", name, "--json"]).output)[name]
        rx = {lab["port"]: v for lab, v in fams["xdpnf_l2_switch_rx_packets_total"]["samples"]
              if lab["instance"] == name}
        assert rx == {"p1": 5, "p2": 0, "p3": 0, "<unknown>": 0}
        tx = {lab["port"]: v for lab, v in fams["xdpnf_l2_switch_tx_packets_total"]["samples"]
              if lab["instance"] == name}
        assert tx["p2"] == tx["p3"] == 5 == st["ports"]["p2"]["tx_packets"]
        act = {lab["action"]: v for lab, v in fams["xdpnf_xdp_packets_total"]["samples"]
               if lab["instance"] == name}
        assert act["redirect"] == 5 and sum(act.values()) == 5
        assert ({"instance": name, "kind": "l2_switch", "variant": "pure", "status": "up"}, 1.0) \
            in fams["xdpnf_up"]["samples"]
        # served over HTTP on loopback
        srv = metrics.make_server("127.0.0.1:0")
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()
        try:
            url = f"http://127.0.0.1:{srv.server_address[1]}/metrics"
            with urllib.request.urlopen(url, timeout=10) as resp:
                assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                served = parse(resp.read().decode())
            assert served["xdpnf_l2_switch_rx_packets_total"] == fams["xdpnf_l2_switch_rx_packets_total"]
        finally:
            srv.shutdown()
            srv.server_close()
    finally:
        runner.invoke(app, ["down", name])
    assert deploy.read(name) is None


# every per-NF family and its type: counters only ever grow, gauges may go down
EXPECTED_GAUGES = {"xdpnf_sketch_epoch", "xdpnf_sketch_active_bank", "xdpnf_sketch_epoch_packets",
                   "xdpnf_sketch_epoch_sampled", "xdpnf_sketch_epoch_sum", "xdpnf_sketch_epoch_candidates",
                   "xdpnf_sketch_epoch_started_timestamp_seconds", "xdpnf_flow_table_entries",
                   "xdpnf_flow_table_slots", "xdpnf_up", "xdpnf_kmod_loaded", "xdpnf_agent_running"}


@pytest.mark.netns
def test_types_of_every_kind_in_a_chain(make_lab, tmp_path):
    """flow table -> sketch -> router (configs/chain_full.yaml): each kind's families carry the
    right TYPE; after an epoch flip the per-epoch gauges drop to 0 while every counter (the
    sketch's all-epoch count included) stays where it was."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    from nf.net.lab import LabSpec
    lab = make_lab(LabSpec.router(3))
    data = yaml.safe_load((ROOT_CFG / "chain_full.yaml").read_text())
    tag = f"m{os.getpid()}"
    data["chain"] += tag
    data["netns"] = lab.dut
    for m in data["nfs"]:
        m["config"]["name"] += tag
    names = {m["kind"]: m["config"]["name"] for m in data["nfs"]}
    f = tmp_path / "chain.yaml"
    f.write_text(yaml.safe_dump(data))
    runner = CliRunner()
    r = runner.invoke(app, ["up", str(f)])
    assert r.exit_code == 0, r.output
    try:
        h1 = lab.host("h1")
        frames = [bytes(Ether(src=h1.mac, dst=h1.port_mac) / IP(src="10.0.1.2", dst="10.9.1.1")
                        / UDP(sport=4000 + i % 2, dport=5000) / b"m") for i in range(10)]
        with lab.capture(["h2"]) as cap:
            lab.send("h1", frames)
            cap.wait(count=5, timeout=2)
        fams = parse(metrics.render())
        types = {n: f_["type"] for n, f_ in fams.items()}
        for n, t in types.items():
            assert (t == "gauge") == (n in EXPECTED_GAUGES or n == "xdpnf_scrape_error"
                                      or n.startswith("xdpnf_kmod_live")), (n, t)
            assert (t == "counter") == n.endswith("_total"), (n, t)
        assert "xdpnf_scrape_error" not in fams
        v = lambda fam, **lab: [x for la, x in fams[fam]["samples"]   # noqa: E731
                                if all(la.get(k) == w for k, w in lab.items())]
        ft, sk, rt = names["flow_table"], names["sketch"], names["router"]
        assert v("xdpnf_flow_table_entries", instance=ft) == [2]       # two flows learnt
        assert v("xdpnf_flow_table_lookups_total", instance=ft) == [10]
        assert v("xdpnf_sketch_epoch_packets", instance=sk) == [5]     # 4001 dropped by the table
        assert v("xdpnf_sketch_packets_total", instance=sk) == [5]
        assert v("xdpnf_sketch_epoch", instance=sk) == [0]
        assert v("xdpnf_router_tx_packets_total", instance=rt, port="p2") == [5]
        # labels named for what they are: route classes, the table, the router's own reasons
        assert v("xdpnf_router_packets_total", instance=rt, **{"class": "static"}) == [5]
        assert v("xdpnf_flow_table_lookups_total", instance=ft, group="table") == [10]
        assert v("xdpnf_flow_table_entries", instance=ft, group="table") == [2]
        reasons = {la["reason"] for la, _ in fams["xdpnf_xdp_reasons_total"]["samples"]
                   if la["instance"] == rt}
        assert {"no_route", "ttl", "neigh_miss"} <= reasons
        assert not any(r.startswith(("nf", "reserved")) for r in reasons), reasons
        assert all("class " not in la.get("port", "") for f_ in fams.values() for la, _ in f_["samples"])
        assert v("xdpnf_chain_entered_total", instance=data["chain"]) == [10]
        assert v("xdpnf_xdp_packets_total", instance=ft, action="drop") == [5]
        # close the epoch: gauges of the epoch restart, counters do not go back
        assert runner.invoke(app, ["topk", sk, "--flip"]).exit_code == 0
        after = parse(metrics.render())
        w = lambda fam, **lab: [x for la, x in after[fam]["samples"]   # noqa: E731
                                if all(la.get(k) == y for k, y in lab.items())]
        assert w("xdpnf_sketch_epoch_packets", instance=sk) == [0]
        assert w("xdpnf_sketch_epoch", instance=sk) == [1]
        assert w("xdpnf_sketch_active_bank", instance=sk) == [1]
        assert w("xdpnf_sketch_packets_total", instance=sk) == [5]
        assert w("xdpnf_sketch_epochs_closed_total", instance=sk) == [1]
        for n, f_ in fams.items():
            if f_["type"] == "counter":
                old = {tuple(sorted(la.items())): x for la, x in f_["samples"]}
                new = {tuple(sorted(la.items())): x for la, x in after[n]["samples"]}
                assert all(new[k] >= x for k, x in old.items() if k in new), n
    finally:
        runner.invoke(app, ["down", data["chain"]])
    assert not set(names.values()) & set(deploy.names())
