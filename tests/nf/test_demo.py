"""nf/demo.py: `nf demo` end to end (tier 2), and its lab file's validation (tier 1)."""
from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from nf import cli, deploy
from nf.cli import app
from nf.config import ConfigError
from nf.demo import load_spec

LAB = Path(__file__).resolve().parents[2] / "configs" / "lab.yaml"


def spec_dict() -> dict:
    return yaml.safe_load(LAB.read_text())


def test_lab_yaml_validates():
    s = load_spec(LAB)
    assert [h.name for h in s.lab.hosts] == ["h1", "h2", "h3", "h4"]
    assert s.switch_config("x").netns == "x" and len(s.traffic) >= 5


@pytest.mark.parametrize("mutate,needle", [
    (lambda d: d["traffic"].append({"src": "h9", "dst": "h1"}), "traffic[8].src: no host 'h9'"),
    (lambda d: d["switch"]["ports"].append({"name": "p7", "vlan": 1}), "switch.ports[4].name: 'p7'"),
    (lambda d: d["switch"].update(aging_time=-1), "aging_time"),
    (lambda d: d.update(extra=1), "extra"),
    (lambda d: d["traffic"][0].update(size=10), "traffic[0].size"),
    (lambda d: d["router"]["traffic"][0].update(src="h1"), "router.traffic[0].src: no host 'h1'"),
    (lambda d: d["router"]["config"].update(interfaces=[]), "router.config: interfaces and neighbours"),
    (lambda d: d["router"]["config"].update(mode="fast"), "mode"),
])
def test_bad_lab_files_are_rejected_with_the_field(tmp_path, mutate, needle):
    d = copy.deepcopy(spec_dict())
    mutate(d)
    f = tmp_path / "lab.yaml"
    f.write_text(yaml.safe_dump(d))
    with pytest.raises(ConfigError) as e:
        load_spec(f)
    assert needle in str(e.value), str(e.value)
    r = CliRunner().invoke(app, ["demo", "--config", str(f)])
    assert r.exit_code == cli.E_CONFIG and r.output.startswith("nf: error:")


@pytest.mark.netns
def test_demo_passes_and_cleans_up():
    from nf.net.netns import list_netns
    before = set(list_netns())
    r = CliRunner().invoke(app, ["demo"])
    assert r.exit_code == 0, r.output
    out = r.output
    assert "PASS: deliveries match the model frame by frame; FDB matches the model; counters equal" in out
    # the tables: FDB rows with host names, per-port counters
    assert "02:00:00:00:00:03 │ 10   │ p3   │ h3   │ static" in out
    assert "02:00:00:00:00:04 │ 20   │ p4   │ h4   │ learned" in out
    row = next(line for line in out.splitlines() if line.startswith("│ rx_packets"))
    # sent per host by configs/lab.yaml: h1 1+30+10, h2 20+2, h3 5, h4 3+4
    assert [int(x) for x in row.strip("│ ").split("│")[1:]] == [41, 22, 5, 7]
    # the sketch on the hosts: top talkers equal what the hosts received
    assert "sketch estimates equal what the hosts received" in out
    assert "│ 1 │ 10.0.0.1 -> 10.0.0.2   │       30 │       30 │ yes   │" in out
    # scene 2: the router, byte-exact rewrites and exact port counters
    assert "PASS: routed frames arrive rewritten byte for byte; router counters equal what was sent" in out
    assert "│ 10.9.0.0/16 │ via 10.1.2.2 │ p2   │" in out
    assert out.rstrip().endswith("demo: PASS")
    assert not [n for n in deploy.names() if n == f"demo-sw-{os.getpid()}"]
    # this process's labs only: other sessions on the machine make and remove labs meanwhile
    assert not {n for n in set(list_netns()) - before if n.startswith(f"nfl{os.getpid()}x")}


@pytest.mark.netns
def test_demo_fails_with_code_8_when_counters_differ(tmp_path, monkeypatch):
    """The check is real: a model that expects one frame more makes the demo FAIL (exit 8)."""
    from nf.models import l2_switch as M
    real = M.SwitchModel.receive

    def off_by_one(self, frame, ingress, now):
        res = real(self, frame, ingress, now)
        self.stats[ingress]["rx_packets"] += 1 if frame[-1:] == b"." and not getattr(self, "_bumped", 0) else 0
        self._bumped = 1
        return res
    monkeypatch.setattr(M.SwitchModel, "receive", off_by_one)
    r = CliRunner().invoke(app, ["demo"])
    assert r.exit_code == cli.E_CHECK, r.output
    assert "FAIL" in r.output and "(want " in r.output
    assert not [n for n in deploy.names() if n == f"demo-sw-{os.getpid()}"]
