"""`nf agent` (nf/agent.py) and the sketch's pinned epoch log (nf/nfs/sketch.py) through real
`nf` processes: a sketch deployed by `nf up` with a short epoch gets its banks flipped by the
agent, every closed epoch lands in the log `nf topk --history` reads, the sum over epochs equals
the frames sent (nothing lost, nothing counted twice) across an agent killed and restarted and
a flip cut short between the bank swap and the clear; one agent per host; the metrics export
the epoch values as gauges and the all-epoch count as a counter."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from nf import deploy
from nf_cli import NF, run

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.netns




@pytest.fixture
def sketch(make_lab, tmp_path, monkeypatch):
    from nf.net.lab import LabSpec
    from nf.testing.tiers import require
    require(os.geteuid() == 0, "needs root")
    lab = make_lab(LabSpec.switch(2))
    name = f"agsk{os.getpid()}"
    f = tmp_path / "sketch.yaml"
    f.write_text(yaml.safe_dump({"name": name, "netns": lab.dut, "interfaces": ["p1"],
                                 "variant": "pure", "depth": 4, "width": 1024, "epoch_s": 0.4,
                                 "history": 1000, "threshold": {"absolute": 5}, "topk": 4}))
    # a private agent lock: a real agent elsewhere on this host is not this test's
    lock = tmp_path / "agent.lock"
    monkeypatch.setenv("NF_AGENT_LOCK", str(lock))
    import nf.agent
    monkeypatch.setattr(nf.agent, "AGENT_LOCK", lock)
    procs = []

    def agent():
        p = subprocess.Popen([NF, "agent"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(p)
        return p
    yield lab, name, f, agent
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(10)
    run("down", name, ok=False)
    deploy.cleanup_pins(name)
    deploy.remove(name)


def burst(lab, sport: int, n: int) -> int:
    h1, h2 = lab.host("h1"), lab.host("h2")
    lab.send("h1", [bytes(Ether(src=h1.mac, dst=h2.mac) / IP(src="10.0.0.1", dst="10.0.0.2")
                          / UDP(sport=sport, dport=9) / b"e") for _ in range(n)])
    return n


def epochs(name) -> dict:
    return json.loads(run("topk", name, "--history", "--json").stdout)[name]


def current(name) -> int:
    return json.loads(run("stats", name, "--json").stdout)[name]["ports"]["epoch"]["packets"]


def test_agent_flips_deployed_sketch_epochs_and_keeps_the_history(sketch):
    from nf.engine import get
    from nf.nfs.sketch import Sketch
    from nf.testing.cuts import Killed, cut_at
    lab, name, f, agent = sketch
    up = run("up", f)                        # up says what nobody does without an agent
    assert "nf agent: not running - sketch epochs do not flip" in up.stderr, up.stderr
    assert "nf agent: not running - sketch epochs do not flip" in run("show").stdout
    a = agent()
    time.sleep(0.6)
    sent = 0
    for i in range(6):                       # bursts over ~6 epochs
        sent += burst(lab, 1000 + i, 40 + i)
        time.sleep(0.25)
    show = run("show").stdout
    assert f"nf agent: running (pid {a.pid}): flips sketch epochs" in show, show
    # one agent per host
    p = run("agent", ok=False)
    assert p.returncode == 7 and f"another nf agent (pid {a.pid})" in p.stderr, p.stderr

    # killed hard and restarted: the next agent carries on from the pinned log. The kill lands
    # between two flips (the test holds the deployment lock the agent flips under), so exactly
    # one epoch below is recovered: a kill inside a flip, at each of its writes, is
    # tests/nf/nfs/test_sketch.py::test_kill_at_any_write_of_a_flip_or_reset_leaves_an_exact_epoch_log
    with deploy.locked():
        a.send_signal(signal.SIGKILL)
        a.wait(10)
    sent += burst(lab, 2000, 33)
    # a flip cut short after the swap (what a kill there leaves): the idle bank holds a closed,
    # unrecorded epoch; the next flip records it once and clears it before reuse
    with deploy.locked():
        sk = Sketch.open_pinned(get("sketch").validate(deploy.read(name).config, name), name)
        try:
            with pytest.raises(Killed), cut_at(1):     # write 0: the swap
                sk.flip()
        finally:
            sk.release()
    sent += burst(lab, 2001, 17)
    b = agent()
    time.sleep(1.2)
    sent += burst(lab, 2002, 11)
    time.sleep(1.0)
    b.send_signal(signal.SIGTERM)
    out, err = b.communicate(timeout=20)
    assert b.returncode == 0, err
    assert "nf agent: stopped after" in err
    assert f"{name}: epoch " in out and " closed: " in out

    log = epochs(name)
    hist = log["history"]
    print(f"agent: {len(hist)} epochs, sent {sent}, per epoch {[e['packets'] for e in hist]}")
    assert len(hist) >= 8 and log["closed"] == len(hist)
    assert [e["epoch"] for e in hist] == list(range(hist[0]["epoch"], hist[0]["epoch"] + len(hist)))
    assert sum(1 for e in hist if e["recovered"]) == 1
    i = [e["recovered"] for e in hist].index(True)
    # the cut-short epoch holds the burst sent after the kill; the one after it the next burst
    assert hist[i]["packets"] >= 33 and hist[i + 1]["packets"] == 17, hist[i - 1:i + 2]
    # nothing lost, nothing counted twice: closed epochs + the current one = every frame sent
    assert log["closed_packets"] == sum(e["packets"] for e in hist)
    assert log["closed_packets"] + current(name) == sent
    # epochs have the configured length (the one spanning the agent's downtime is longer)
    lens = [e["ended"] - e["started"] for e in hist if not e["recovered"]]
    assert 0.4 <= sorted(lens)[len(lens) // 2] < 0.8, lens
    # a burst's flow is the top flow of the epoch that counted it
    assert any(t[0] == "udp 10.0.0.1:1005 -> 10.0.0.2:9" and t[1] == 45 for e in hist for t in e["top"])

    # metrics: gauges for the per-epoch values, a real counter over every epoch
    from tests.nf.test_metrics import parse
    from nf import metrics
    fams = parse(metrics.render())
    for g in ("xdpnf_sketch_epoch", "xdpnf_sketch_active_bank", "xdpnf_sketch_epoch_packets",
              "xdpnf_sketch_epoch_candidates", "xdpnf_sketch_epoch_started_timestamp_seconds",
              "xdpnf_agent_running"):
        assert fams[g]["type"] == "gauge", g
    assert not [n for n in fams if n.startswith("xdpnf_sketch") and n.endswith("_total")
                and fams[n]["type"] != "counter"]
    assert fams["xdpnf_sketch_packets_total"]["type"] == "counter"
    val = {lab["instance"]: v for lab, v in fams["xdpnf_sketch_packets_total"]["samples"]}
    assert val[name] == sent
    ep = {lab["instance"]: v for lab, v in fams["xdpnf_sketch_epoch"]["samples"]}
    assert ep[name] == hist[-1]["epoch"] + 1
    closed = {lab["instance"]: v for lab, v in fams["xdpnf_sketch_epochs_closed_total"]["samples"]}
    assert closed[name] == len(hist)

    # the table view; down removes the log with the sketch
    t = run("topk", name, "--history").stdout
    assert f"{name}: {len(hist)} closed epoch(s) kept of {len(hist)}" in t
    run("down", name)
    assert not (deploy.state_root().parent / "xdp-nf" / name).exists()
