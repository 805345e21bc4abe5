"""`nf` killed (SIGKILL) at every step of up / apply / routes / down (nf.deploy.CRASH_STEPS,
through NF_TEST_CRASH_AT), then: `nf show` tells the truth about what the kernel runs, and `nf
up` of the file repairs the deployment (or `nf apply`, for tables changed by commands). Also a
deployment broken under nf (its interface deleted) does not take `nf stats` / the verbs of the
others down with it. Tier 2 (netns): a 3-port router lab, real `nf` processes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
import yaml

from nf import deploy
from nf.deploy import CRASH_STEPS
from nf_cli import NF, run

pytestmark = pytest.mark.netns
ROOT = Path(__file__).resolve().parents[2]




def killed(*args, step: str):
    p = run(*args, env={"NF_TEST_CRASH_AT": step}, ok=False)
    assert p.returncode == -signal.SIGKILL, (step, p.returncode, p.stdout, p.stderr)


def shown(name: str) -> dict | None:
    return next((d for d in json.loads(run("show", "--json").stdout) if d["name"] == name), None)




@pytest.fixture
def router(rlab, tmp_path):
    """(name, write(**changes) -> config file) of a router on the lab; torn down afterwards."""
    name = f"f{os.getpid()}"

    def write(**kw) -> Path:
        d = {"name": name, "netns": rlab.dut, "mode": "dir", "learn_neighbours": False,
             "interfaces": [{"name": f"p{i}", "addresses": [f"10.0.{i}.1/24"]} for i in (1, 2, 3)],
             "routes": [{"prefix": "10.9.0.0/16", "via": ["10.0.2.2"]}],
             "neighbours": [{"address": "10.0.2.2", "mac": rlab.host("h2").mac}],
             "sizes": {"v4_chunks": 64, "v6_chunks": 64, "trie_entries": 1024, "neighbours": 64},
             **kw}
        f = tmp_path / f"router_{len(list(tmp_path.glob('router_*')))}.yaml"
        f.write_text(yaml.safe_dump(d))
        return f
    yield name, write
    subprocess.run([NF, "down", name], capture_output=True, timeout=120)
    deploy.cleanup_pins(name)
    deploy.remove(name)


def routes(name) -> list[dict]:
    return json.loads(run("routes", name, "--json").stdout)[name]


def assert_true_and_up(name, f, want_routes):
    """What `nf show` and the kernel say agree with ``f``: up, nothing stale, broken or edited,
    XDP on every port, exactly the file's routes; and `nf up f` now says unchanged."""
    d = shown(name)
    assert d["status"] == "up" and not d["stale"] and d["problems"] == [] and not d["edited"], d
    assert all(v.startswith(("native", "generic")) for v in d["xdp"].values()), d["xdp"]
    assert d["source"] == str(f.resolve())
    assert routes(name) == want_routes
    assert f"{name}: unchanged" in run("up", f).stdout


R9 = [{"prefix": "10.9.0.0/16", "target": "via 10.0.2.2"}]
R8 = [{"prefix": "10.8.0.0/16", "target": "via 10.0.2.2"}]
UP_STEPS = [s for s in CRASH_STEPS if s in ("before-up", "after-up") or s.startswith("up-")]


def test_every_step_is_tested():
    """A step added to CRASH_STEPS without a case here fails."""
    tested = set(UP_STEPS) | {"apply-marked", "apply-swapped", "apply-changed", "verb-marked",
                              "verb-done", "down-detached", "down-unpinned"}
    assert tested == set(CRASH_STEPS)


@pytest.mark.parametrize("step", UP_STEPS)
def test_killed_up_is_shown_unfinished_and_up_repairs(router, step):
    name, write = router
    f = write()
    killed("up", f, step=step)
    d = shown(name)
    assert d["status"] == "deploying" and d["stale"], d
    text = run("show").stdout
    assert f"{name}: an unfinished `nf up` (pid " in text and "redeploys it" in text
    # the repro of issue 17 item 1: apply on the half-made deployment refuses and marks nothing up
    p = run("apply", f, ok=False)
    assert p.returncode == 7 and f"`nf up {f}` redeploys it" in p.stderr, p.stderr
    assert shown(name)["status"] == "deploying"
    p = run("up", f)
    assert f"{name}: repairing an unfinished `nf up`" in p.stdout and f"{name}: up (router" in p.stdout
    assert_true_and_up(name, f, R9)


@pytest.mark.parametrize("step", ["apply-marked", "apply-swapped", "apply-changed"])
def test_killed_apply_is_shown_unfinished_and_up_repairs(router, step):
    name, write = router
    f = write()
    run("up", f)
    g = write(routes=[{"prefix": "10.8.0.0/16", "via": ["10.0.2.2"]}])
    killed("apply", g, "--reload", step=step)
    d = shown(name)
    assert d["status"] == "applying" and d["stale"], d
    assert "an unfinished `nf apply`" in run("show").stdout
    p = run("apply", g, ok=False)
    assert p.returncode == 7 and "redeploys it" in p.stderr
    p = run("up", g)
    assert "repairing an unfinished `nf apply`" in p.stdout
    assert_true_and_up(name, g, R8)


@pytest.mark.parametrize("step", ["verb-marked", "verb-done"])
def test_killed_routes_command_leaves_a_record_that_says_edited(router, step):
    name, write = router
    f = write()
    run("up", f)
    killed("routes", name, "add", "10.8.0.0/16", "via", "10.0.2.2", step=step)
    d = shown(name)
    assert d["status"] == "up" and "routes" in d["edited"] and "10.8.0.0/16" in d["edited"], d
    p = run("up", f, ok=False)
    assert p.returncode == 7 and "tables were changed since" in p.stderr and "nf apply" in p.stderr
    p = run("apply", f)
    assert "back to the file's" in p.stdout
    assert_true_and_up(name, f, R9)


@pytest.mark.parametrize("step", ["down-detached", "down-unpinned"])
def test_killed_down_is_shown_broken_and_up_repairs(router, rlab, step):
    name, write = router
    f = write()
    run("up", f)
    killed("down", name, step=step)
    d = shown(name)
    assert d["status"] == "up" and d["problems"], d
    assert all(v == "none" for v in d["xdp"].values()), d["xdp"]
    assert f"{name}: BROKEN" in run("show").stdout
    p = run("up", f)
    assert "repairing a deployment the kernel no longer runs as recorded" in p.stdout
    assert_true_and_up(name, f, R9)


def test_routes_neigh_commands_are_recorded_and_apply_puts_the_file_back(router, rlab, tmp_path):
    """Issue 17 item 2: `nf routes add|del|replace` and `nf neigh add` change the live tables;
    `nf up` of the file no longer says unchanged, `nf apply` puts the file's tables back."""
    name, write = router
    f = write()
    run("up", f)
    rf = tmp_path / "routes.txt"
    rf.write_text("10.7.0.0/16 via 10.0.2.2\n")
    run("routes", name, "replace", rf)
    run("routes", name, "add", "10.6.0.0/16", "blackhole")
    run("neigh", name, "add", "10.0.3.2", rlab.host("h3").mac)
    p = run("routes", name, "del", "10.5.0.0/16", ok=False)      # refused: not counted as an edit
    assert p.returncode == 6
    assert {r["prefix"] for r in routes(name)} == {"10.7.0.0/16", "10.6.0.0/16"}
    d = shown(name)
    assert d["edited"].startswith("3 command(s):") and "routes" in d["edited"], d["edited"]
    assert "neigh" in d["edited"] and "10.5.0.0/16" not in d["edited"]
    p = run("up", f, ok=False)
    assert p.returncode == 7 and "unchanged" not in p.stdout
    p = run("apply", f, "--dry-run")
    assert "live tables changed since by 3 command(s)" in p.stdout
    assert {r["prefix"] for r in routes(name)} == {"10.7.0.0/16", "10.6.0.0/16"}   # dry run
    p = run("apply", f)
    assert "neighbour 10.0.3.2 removed" in p.stdout
    assert_true_and_up(name, f, R9)
    neigh = json.loads(run("neigh", name, "--json").stdout)[name]
    assert [n["address"] for n in neigh] == ["10.0.2.2"]


def test_failed_apply_after_the_kernel_changed_is_not_marked_up(router, monkeypatch):
    """A runtime change that fails half way leaves the record "failed" (stale), not "up"; one
    that fails before anything changed (the program load) leaves it "up" with the old config."""
    from typer.testing import CliRunner
    from nf.cli import app
    from nf.nfs.router import KIND
    name, write = router
    f = write()
    run("up", f)
    g = write(routes=[{"prefix": "10.8.0.0/16", "via": ["10.0.2.2"]}])

    def boom(*a, **kw):
        raise RuntimeError("injected")
    monkeypatch.setattr(KIND, "configure", boom)               # the new program cannot load
    r = CliRunner().invoke(app, ["apply", str(g), "--reload"])
    assert r.exit_code == 1 and "injected" in r.output
    rec = deploy.read(name)
    assert rec.status == "up" and rec.config["routes"][0]["prefix"] == "10.9.0.0/16"
    monkeypatch.undo()
    monkeypatch.setattr(KIND, "runtime", boom)                 # fails after the swap
    r = CliRunner().invoke(app, ["apply", str(g), "--reload"])
    assert r.exit_code == 1
    rec = deploy.read(name)
    assert rec.status == "failed" and rec.stale and "injected" in rec.extra["failure"]
    monkeypatch.undo()
    assert "a failed `nf apply` left half changed" in run("show").stdout
    p = run("up", g)
    assert "repairing a deployment a failed `nf apply` left half changed" in p.stdout
    assert_true_and_up(name, g, R8)


def test_one_broken_deployment_does_not_hide_the_others(router, rlab, tmp_path):
    """Issue 17 item 3: a deployment whose port was deleted: `nf show` marks it BROKEN, `nf
    stats` / `nf routes` show every other one and name the broken one (exit code of its error)."""
    from pyroute2 import IPRoute
    name, write = router
    run("up", write(interfaces=[{"name": f"p{i}", "addresses": [f"10.0.{i}.1/24"]} for i in (1, 2)]))
    other = f"{name}b"
    g = tmp_path / "l2_switch.yaml"
    g.write_text(yaml.safe_dump({"name": other, "netns": rlab.dut, "ports": [{"name": "p3", "vlan": 1}]}))
    try:
        run("up", g)
        with rlab.enter("dut"), IPRoute() as ipr:
            ipr.link("del", index=ipr.link_lookup(ifname="p3")[0])
        d = shown(other)
        assert d["problems"] and "p3" in d["problems"][0], d
        assert f"{other}: BROKEN" in run("show").stdout
        for args in (["stats"], ["stats", "--json"]):
            p = run(*args, ok=False)
            assert p.returncode != 0 and f"nf: error: {other}: " in p.stderr, (args, p.stderr)
            assert name in p.stdout
        st = json.loads(run("stats", "--json", ok=False).stdout)
        assert "error" in st[other] and st[name]["ports"]["p1"]["rx_packets"] >= 0
        assert routes(name) == R9                              # its verbs: unaffected
        p = run("fdb", "--json", ok=False)
        assert p.returncode != 0 and "error" in json.loads(p.stdout)[other]
    finally:
        run("down", other, ok=False)
