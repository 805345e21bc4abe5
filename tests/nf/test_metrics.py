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
