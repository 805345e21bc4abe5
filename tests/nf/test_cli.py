"""nf/cli.py through typer's CliRunner (in-process) and, for crash recovery, a real `nf` process.

Tier 1 (unmarked): exit codes and one-line messages for each kind of bad input; every file in
configs/ validates; nothing is deployed when any file of an `up` is invalid.
Tier 2 (netns): up / show / stats / fdb / apply / down on a 4-host lab; `up` twice changes
nothing; a killed `nf up` leaves state the next `nf down` cleans; apply under continuous traffic
loses nothing (counted at the receiver).
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from nf import cli, deploy
from nf.cli import app

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
NF = str(ROOT / ".venv" / "bin" / "nf")


def nf(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def need_root():
    from nf.testing.tiers import require
    require(os.geteuid() == 0, "needs root (bpffs, BPF)")


def write(tmp_path: Path, name: str, data) -> Path:
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return p


# ---- tier 1 ------------------------------------------------------------------------------------
def test_help_lists_every_exit_code():
    r = nf("--help")
    assert r.exit_code == 0
    text = " ".join(r.output.split())
    for code in range(9):
        assert f"{code} " in text.split("Exit codes:")[1]
    for cmd in ("up", "down", "show", "status", "stats", "fdb", "routes", "neigh", "topk", "flows",
                "check", "schema", "apply", "metrics", "demo"):
        assert cmd in r.output


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_config_file_validates(path):
    r = nf("validate", path)
    assert r.exit_code == 0, r.output
    assert "valid" in r.output


@pytest.mark.parametrize("kind", ["l2_switch", "router", "sketch", "flow_table", "lab"])
def test_schema_is_json_schema(kind):
    r = nf("schema", kind)
    assert r.exit_code == 0, r.output
    s = json.loads(r.output)
    assert s["type"] == "object" and s["properties"]
    if kind == "l2_switch":
        assert {"ports", "aging_time", "static_entries"} <= set(s["properties"])


GOOD = {"name": "cli-t", "netns": None, "ports": [{"name": "lo", "vlan": 10}]}


@pytest.mark.parametrize("desc,content,code,needle", [
    ("not YAML", "ports: [\n", cli.E_CONFIG, "not valid YAML"),
    ("unknown field", {**GOOD, "colour": "red"}, cli.E_CONFIG, "colour"),
    ("VLAN out of range", {**GOOD, "ports": [{"name": "lo", "vlan": 5000}]}, cli.E_CONFIG, "ports[0].vlan"),
    ("duplicate port", {**GOOD, "ports": [{"name": "lo", "vlan": 1}, {"name": "lo", "vlan": 2}]},
     cli.E_CONFIG, "duplicate port"),
    ("trunk without VLANs", {**GOOD, "ports": [{"name": "lo", "mode": "trunk"}]}, cli.E_CONFIG, "trunk"),
    ("unknown interface", {**GOOD, "ports": [{"name": "nosuch0", "vlan": 1}]}, cli.E_CONFIG,
     "ports[0].name: unknown interface"),
    ("missing netns", {**GOOD, "netns": "nf-no-such-ns"}, cli.E_CONFIG, "netns"),
    ("static entry on a foreign VLAN", {**GOOD, "static_entries": [{"mac": "02:00:00:00:00:01",
                                                                   "vlan": 20, "port": "lo"}]},
     cli.E_CONFIG, "does not carry VLAN 20"),
])
def test_up_bad_input_one_line_and_code(tmp_path, desc, content, code, needle):
    need_root()
    f = write(tmp_path, "l2_switch_bad.yaml", content)
    r = nf("up", f)
    assert r.exit_code == code, (desc, r.output)
    assert r.output.startswith("nf: error: ")
    assert needle in r.output, (desc, r.output)
    assert "Traceback" not in r.output
    assert deploy.read("cli-t") is None


def test_up_missing_file_is_not_found():
    r = nf("up", "/nonexistent/l2_switch.yaml")
    assert r.exit_code == cli.E_NOT_FOUND and "no such file" in r.output


def test_unknown_kind_is_not_found(tmp_path):
    r = nf("up", "--kind", "teleporter", write(tmp_path, "x.yaml", GOOD))
    assert r.exit_code == cli.E_NOT_FOUND and "unknown NF kind 'teleporter'" in r.output


def test_file_of_no_kind_says_so(tmp_path):
    r = nf("validate", write(tmp_path, "x.yaml", {"foo": 1}))
    assert r.exit_code == cli.E_CONFIG and "not a config of any NF kind" in r.output


def test_undeployable_kind_is_refused_before_loading(monkeypatch):
    """Every kind is deployable today; the refusal path stays for a kind whose controller
    cannot keep its state in pins (simulated on the router)."""
    from nf.nfs.router import KIND
    need_root()
    monkeypatch.setattr(KIND, "deployable", False)
    monkeypatch.setattr(KIND, "why_not", "no pins")
    r = nf("up", ROOT / "configs" / "router.yaml")
    assert r.exit_code == cli.E_UNSUPPORTED
    assert "router cannot be deployed by nf yet: no pins" in r.output
    assert deploy.read("router") is None


def test_down_and_apply_of_unknown_deployment():
    need_root()
    r = nf("down", "nf-no-such-instance")
    assert r.exit_code == cli.E_NOT_FOUND and "no deployment named" in r.output
    r = nf("fdb", "nf-no-such-instance")
    assert r.exit_code == cli.E_NOT_FOUND


def test_bad_option_is_usage_error():
    r = nf("stats", "--no-such-option")
    assert r.exit_code == cli.E_USAGE


# ---- tier 2 ------------------------------------------------------------------------------------
@pytest.fixture
def lab4(make_lab):
    from nf.net.lab import LabSpec
    return make_lab(LabSpec.switch(4))


@pytest.fixture
def swfile(lab4, tmp_path):
    """An l2_switch config for the lab; every deployment it names is torn down afterwards."""
    name = f"clit{os.getpid()}"
    made = []

    def make(**kw) -> Path:
        d = {"name": name, "netns": lab4.dut,
             "ports": [{"name": f"p{i}", "vlan": 10} for i in range(1, 5)], **kw}
        f = write(tmp_path, f"l2_switch_{len(made)}.yaml", d)
        made.append(f)
        return f

    make.name = name
    yield make
    nf("down", name)
    deploy.cleanup_pins(name)
    deploy.remove(name)


def _frame(src: str, dst: str, i: int) -> bytes:
    return (bytes.fromhex(dst.replace(":", "")) + bytes.fromhex(src.replace(":", "")) + b"\x88\xb5"
            + f"cli {i}".encode().ljust(46, b"."))


def _attached(lab, ports):
    from nf.bpf import xdp_query
    with lab.enter("dut"):
        return [xdp_query(p).attached for p in ports]


@pytest.mark.netns
def test_up_show_stats_fdb_down(lab4, swfile):
    f = swfile(static_entries=[{"mac": "02:00:00:00:00:aa", "vlan": 10, "port": "p2"}])
    r = nf("up", f)
    assert r.exit_code == 0, r.output
    assert f"{swfile.name}: up (l2_switch, p1, p2, p3, p4)" in r.output
    rec = deploy.read(swfile.name)
    assert rec.status == "up" and rec.kind == "l2_switch" and rec.source == str(f.resolve())
    assert rec.interfaces == ["p1", "p2", "p3", "p4"] and rec.variant == "pure"
    assert _attached(lab4, rec.interfaces) == [True] * 4
    # same file again: nothing changes (same links, same record)
    before = rec.extra, rec.created
    r = nf("up", f)
    assert r.exit_code == 0 and "unchanged" in r.output
    assert (deploy.read(swfile.name).extra, deploy.read(swfile.name).created) == before
    # traffic, then what a later process sees
    h1, h2 = lab4.host("h1").mac, lab4.host("h2").mac
    lab4.send("h2", [_frame(h2, "ff:ff:ff:ff:ff:ff", 0)])
    with lab4.capture(["h2"]) as cap:
        lab4.send("h1", [_frame(h1, h2, i) for i in range(7)])
        assert len(cap.wait(count=7, timeout=2)[lab4.tap("h2")]) == 7
    r = nf("stats", swfile.name, "--json")
    assert r.exit_code == 0, r.output
    st = json.loads(r.output)[swfile.name]
    assert st["ports"]["p1"]["rx_packets"] == 7 and st["ports"]["p1"]["unicast"] == 7
    assert st["ports"]["p2"]["tx_packets"] == 7 and st["ports"]["p2"]["flood"] == 1
    assert st["actions"]["packets"]["redirect"] == 8
    r = nf("fdb", swfile.name, "--json")
    rows = {(e["mac"], e["port"], e["static"]) for e in json.loads(r.output)[swfile.name]}
    assert rows == {(h1, "p1", False), (h2, "p2", False), ("02:00:00:00:00:aa", "p2", True)}
    r = nf("show", "--json")
    mine = [d for d in json.loads(r.output) if d["name"] == swfile.name][0]
    assert mine["status"] == "up" and all(v.startswith("native") for v in mine["xdp"].values())
    # which variant runs and why (the host has no module: auto stays on pure eBPF)
    assert mine["variant"] == "pure" and mine["variant_why"] == "auto: the enetstl module is not loaded"
    assert mine["keying"] == {"keyed": True, "by": "kernel"}
    r = nf("show")
    assert f"{swfile.name}: pure - auto: the enetstl module is not loaded" in r.output
    assert f"{swfile.name}: FDB keyed by the kernel (its hash map's own random seed)" in r.output
    assert r.exit_code == 0 and nf("stats").exit_code == 0 and nf("fdb").exit_code == 0
    # a different config under the same name is a conflict, not a silent change
    g = swfile(aging_time=10)
    r = nf("up", g)
    assert r.exit_code == cli.E_CONFLICT and "nf apply" in r.output
    r = nf("down", swfile.name)
    assert r.exit_code == 0 and f"{swfile.name}: down" in r.output
    assert deploy.read(swfile.name) is None and not rec.pin_dir.exists()
    assert _attached(lab4, rec.interfaces) == [False] * 4


@pytest.mark.netns
def test_show_says_how_the_fdb_is_keyed_and_keeps_a_drawn_secret(lab4, swfile):
    """The eNetSTL FDB (loaded without the module on the host: its BPF probe): no seed in the
    file, so one is drawn at `nf up`; `nf show` says so and never prints it. A seed in the file
    is shown; changing it needs down + up."""
    from nf.bpf import Map
    from nf.nfs.l2_switch import Config
    assert nf("up", swfile(variant="enetstl")).exit_code == 0
    rec = deploy.read(swfile.name)
    with Map.from_pin(rec.pin_dir / "config") as m:
        secret = m.typed(ctypes.c_uint32, Config).lookup(0).seed
    r = nf("show", "--json")
    mine = [d for d in json.loads(r.output) if d["name"] == swfile.name][0]
    assert mine["keying"] == {"keyed": True, "by": "drawn"}
    text = nf("show").output
    assert f"{swfile.name}: FDB keyed by a secret drawn from the kernel's random source" in text
    assert all(str(v) not in r.output + text for v in (secret, hex(secret), f"{secret:x}"))
    r = nf("apply", swfile(variant="enetstl", seed=5))
    assert r.exit_code == cli.E_CONFLICT and "changing seed needs" in r.output
    assert nf("down", swfile.name).exit_code == 0
    assert nf("up", swfile(variant="enetstl", seed=77)).exit_code == 0
    mine = [d for d in json.loads(nf("show", "--json").output) if d["name"] == swfile.name][0]
    assert mine["keying"] == {"keyed": True, "by": "config", "seed": 77}
    assert f"{swfile.name}: FDB keyed by the config's seed 77" in nf("show").output


@pytest.mark.netns
def test_nothing_loaded_when_a_later_file_is_invalid(lab4, swfile, tmp_path):
    good = swfile()
    bad = write(tmp_path, "l2_switch_bad.yaml", {"name": "x2", "netns": lab4.dut,
                                                 "ports": [{"name": "p9", "vlan": 1}]})
    r = nf("up", good, bad)
    assert r.exit_code == cli.E_CONFIG and "ports[0].name" in r.output
    assert deploy.read(swfile.name) is None
    assert _attached(lab4, ["p1", "p2", "p3", "p4"]) == [False] * 4


@pytest.mark.netns
def test_interface_in_use_is_a_conflict(lab4, swfile, tmp_path):
    assert nf("up", swfile()).exit_code == 0
    other = write(tmp_path, "l2_switch_other.yaml", {"name": f"{swfile.name}b", "netns": lab4.dut,
                                                     "ports": [{"name": "p4", "vlan": 1}]})
    try:
        r = nf("up", other)
        assert r.exit_code == cli.E_CONFLICT and "already used by" in r.output
    finally:
        nf("down", f"{swfile.name}b")


@pytest.mark.netns
@pytest.mark.parametrize("stage", ["before-up", "after-up"])
def test_killed_nf_leaves_state_that_down_cleans(lab4, swfile, stage):
    f = swfile()
    env = {**os.environ, "NF_TEST_CRASH_AT": stage}
    p = subprocess.run([NF, "up", str(f)], env=env, capture_output=True, timeout=120)
    assert p.returncode == -signal.SIGKILL, p.stderr
    rec = deploy.read(swfile.name)
    assert rec is not None and rec.status == "deploying" and rec.stale
    if stage == "after-up":
        assert rec.pin_dir.exists() and _attached(lab4, rec.interfaces) == [True] * 4
    r = nf("show")
    assert "stale" in r.output
    p = subprocess.run([NF, "down", swfile.name], capture_output=True, timeout=120, text=True)
    assert p.returncode == 0, p.stderr
    assert f"{swfile.name}: down" in p.stdout
    assert deploy.read(swfile.name) is None and not rec.pin_dir.exists()
    assert _attached(lab4, rec.interfaces) == [False] * 4
    # and the same file deploys again afterwards
    assert nf("up", f).exit_code == 0


@pytest.mark.netns
def test_apply_changes_only_runtime_fields_and_refuses_the_rest(lab4, swfile):
    from nf.config import validate
    from nf.config.l2_switch import L2SwitchConfig
    from nf.nfs.l2_switch import L2Switch
    assert nf("up", swfile()).exit_code == 0
    g = swfile(aging_time=42, static_entries=[{"mac": "02:00:00:00:00:bb", "vlan": 10, "port": "p3"}])
    r = nf("apply", g, "--dry-run")
    assert r.exit_code == 0 and "aging_time: 300.0 -> 42.0  [runtime]" in r.output
    r = nf("apply", g)
    assert r.exit_code == 0, r.output
    cfg = deploy.read(swfile.name)
    sw = L2Switch.attach(validate(cfg.config, L2SwitchConfig))
    assert sw.maps.aging_ns() == 42 * 10**9
    assert [(e.mac, e.port, e.static) for e in sw.fdb()] == [("02:00:00:00:00:bb", "p3", True)]
    assert cfg.config["aging_time"] == 42
    assert nf("apply", g).output.strip().endswith("unchanged")
    h = swfile(ports=[{"name": "p1", "vlan": 10}, {"name": "p2", "vlan": 20}])
    r = nf("apply", h)
    assert r.exit_code == cli.E_CONFLICT and "changing ports needs" in r.output
    assert deploy.read(swfile.name).config["ports"][1]["vlan"] == 10


@pytest.mark.netns
@pytest.mark.parametrize("variant", ["pure", "enetstl"])
def test_apply_raising_the_aging_time_revives_nothing(lab4, swfile, variant):
    """Issue 19's repro: aging 300 -> `nf apply` 2 s, wait 3 s -> `nf apply` 300. The entry aged
    out under 2 s stays gone (the Linux bridge deleted it): `nf fdb` does not list it and unicast
    to it floods."""
    assert nf("up", swfile(variant=variant)).exit_code == 0
    h1, h2 = lab4.host("h1").mac, lab4.host("h2").mac
    lab4.send("h2", [_frame(h2, "ff:ff:ff:ff:ff:ff", 0)])
    r = nf("apply", swfile(variant=variant, aging_time=2))
    assert r.exit_code == 0, r.output
    time.sleep(3)
    r = nf("apply", swfile(variant=variant, aging_time=300))
    assert r.exit_code == 0 and "aging_time: 2.0 -> 300.0  [runtime]" in r.output
    assert json.loads(nf("fdb", swfile.name, "--json").output)[swfile.name] == []
    with lab4.capture(["h2", "h3", "h4"]) as cap:
        lab4.send("h1", [_frame(h1, h2, 1)])
        got = cap.wait(count=3, timeout=2)
    assert [len(v) for v in got.values()] == [1, 1, 1]          # flooded: h2 unknown again


@pytest.mark.netns
def test_apply_reload_under_traffic_loses_nothing(lab4, swfile):
    """20 program replacements (bpf_link_update on the same pinned maps) while h1 streams known
    unicast to h2: every frame arrives, the counters carry on."""
    assert nf("up", swfile()).exit_code == 0
    h1, h2 = lab4.host("h1").mac, lab4.host("h2").mac
    lab4.send("h2", [_frame(h2, "ff:ff:ff:ff:ff:ff", 0)])
    time.sleep(0.1)
    f = deploy.read(swfile.name).source
    sent: list[bytes] = []
    stop = threading.Event()

    def stream():                  # until the applies are done, at least 1000 frames
        i = 0
        while not stop.is_set() or i < 1000:
            chunk = [_frame(h1, h2, i + k) for k in range(64)]
            lab4.send("h1", chunk)            # paced below veth's ring, as Lab.send promises
            sent.extend(chunk)
            i += 64

    prog_ids = set()
    with lab4.capture(["h2"]) as cap:
        t = threading.Thread(target=stream)
        t.start()
        try:
            time.sleep(0.05)
            for _ in range(20):
                r = nf("apply", f, "--reload")
                assert r.exit_code == 0 and "program replaced on 4 link(s)" in r.output, r.output
                from nf.bpf import xdp_query
                with lab4.enter("dut"):
                    prog_ids.add(xdp_query("p1").prog_id)
                time.sleep(0.01)
            assert t.is_alive(), "traffic ended before the applies"
        finally:
            stop.set()
            t.join(60)
        n = len(sent)
        got = cap.wait(count=n, timeout=5)[lab4.tap("h2")]
    frames = sent
    print(f"apply --reload x20 under traffic: {n} frames sent, {len(got)} received")
    assert len(prog_ids) == 20                     # a new program every time
    assert sorted(got) == sorted(frames)           # nothing lost, nothing duplicated
    st = json.loads(nf("stats", swfile.name, "--json").output)[swfile.name]["ports"]
    assert st["p1"]["unicast"] == n and st["p2"]["tx_packets"] == n


@pytest.mark.netns
def test_check_reports_modes_per_interface(lab4, swfile):
    assert nf("up", swfile(ports=[{"name": "p4", "vlan": 1}])).exit_code == 0
    r = nf("check", "--netns", lab4.dut, "--json", "--probe", "p1", "--probe", "p2")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["root"] and rep["bpffs"] and rep["btf"]
    assert rep["module"]["loaded"] == os.path.isdir("/sys/module/enetstl")
    for p in ("p1", "p2"):                   # veth: both modes; the probe left nothing attached
        assert rep["interfaces"][p] == {"native": "yes", "generic": "yes"}
    assert rep["interfaces"]["p3"] == {}     # not named: never probed
    assert rep["interfaces"]["p4"]["in use"].startswith("native #")
    assert _attached(lab4, ["p1", "p2", "p3", "p4"]) == [False, False, False, True]
    # lab traffic generators: what the probe says, and which one labs and nf bench use
    from traffic.labgen import pick, probe
    gens = {g["name"]: g for g in rep["generators"]}
    assert set(gens) == {"live", "tc"} and gens["tc"]["ok"]
    for name, g in gens.items():
        assert (g["ok"], g["why"], g["used"]) == (probe(name).ok, probe(name).why, name == pick())
    r = nf("check", "--netns", lab4.dut)
    assert r.exit_code == 0 and "XDP per interface" in r.output
    assert "lab traffic generator tc" in r.output
    if not gens["live"]["ok"]:
        assert "refuses" in " ".join(r.output.split())


@pytest.mark.netns
def test_check_probes_nothing_unless_asked(lab4):
    """Issue 17 item 4: by default no interface is probed (an XDP attach on a real NIC can drop
    its link); --probe-veth probes a veth pair of nf's own, in a netns it removes."""
    from nf.net.netns import list_netns
    r = nf("check", "--netns", lab4.dut, "--json")
    rep = json.loads(r.output)
    assert r.exit_code == 0 and set(rep["interfaces"]) >= {"p1", "p2", "p3", "p4"}
    assert all(v == {} for v in rep["interfaces"].values()) and "own_veth" not in rep
    r = nf("check", "--netns", lab4.dut)
    assert "not probed" in r.output and "--probe-veth" in " ".join(r.output.split())
    before = set(list_netns())
    rep = json.loads(nf("check", "--probe-veth", "--json").output)
    assert rep["own_veth"] == {"native": "yes", "generic": "yes"}
    assert set(list_netns()) == before
    # a probe killed (SIGKILL) inside its namespace leaves it behind: the next probe removes it,
    # and a live process's one stays
    import subprocess
    from nf.net import netns
    dead = subprocess.Popen(["true"])
    dead.wait()
    live = subprocess.Popen(["sleep", "30"])
    try:
        for pid in (dead.pid, live.pid):
            netns.create(f"nf-check-{pid}")
        rep = json.loads(nf("check", "--probe-veth", "--json").output)
        assert rep["own_veth"] == {"native": "yes", "generic": "yes"}
        assert set(list_netns()) == before | {f"nf-check-{live.pid}"}
    finally:
        live.kill()
        netns.remove(f"nf-check-{live.pid}")
        netns.remove(f"nf-check-{dead.pid}")
    r = nf("check", "--netns", lab4.dut, "--probe", "nosuch0")
    assert r.exit_code == cli.E_CONFIG and "--probe: no interface 'nosuch0'" in r.output
    r = nf("check", "--netns", "nf-no-such-ns")
    assert r.exit_code == cli.E_CONFIG and "--netns: no network namespace" in r.output


@pytest.mark.netns
def test_down_without_a_name_needs_all(lab4, swfile):
    """Issue 17 item 5: a bare `nf down` removes nothing and says --all."""
    assert nf("up", swfile()).exit_code == 0
    r = nf("down")
    assert r.exit_code == cli.E_USAGE and "--all" in r.output
    assert deploy.read(swfile.name).status == "up"
    assert nf("down", swfile.name, "--all").exit_code == cli.E_USAGE


@pytest.mark.netns
def test_stats_watch_shows_rates(lab4, swfile):
    assert nf("up", swfile()).exit_code == 0
    r = nf("stats", swfile.name, "--watch", "--interval", "0.1", "--count", "2")
    assert r.exit_code == 0, r.output
    assert "(rate /s)" in r.output and "per-port counters" in r.output
    assert f"{swfile.name}: XDP verdicts (exit point) (rate /s)" in r.output     # the verdicts too
    for bad in ("-1", "0", "nan"):           # refused before anything is printed
        r = nf("stats", swfile.name, "--watch", "--interval", bad, "--count", "1")
        assert r.exit_code == cli.E_USAGE and r.output.startswith("nf: error: --interval"), r.output


def test_kernel_errors_map_to_documented_codes_with_the_verifier_excerpt():
    import errno as E

    from nf.bpf import BpfError, VerifierError
    log = "0: (b7) r0 = 0\n1: (61) r2 = *(u32 *)(r1 +0)\ninvalid access to packet, off=0 size=4\n" \
          "processed 2 insns (limit 1000000)"
    f = cli._classify(VerifierError(E.EACCES, "xdp_x", log))
    assert f.code == cli.E_LOAD and f.msg.startswith("verifier rejected the program: xdp_x:")
    assert "invalid access to packet" in f.msg + (f.detail or "")
    assert "invalid access to packet" in f.detail
    assert cli._classify(BpfError(E.EPERM, "load")).code == cli.E_UNSUPPORTED
    assert cli._classify(BpfError(E.EINVAL, "attach")).code == cli.E_LOAD
    assert cli._classify(RuntimeError("boom")).code == cli.E_FAILED


@pytest.mark.netns
@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_config_file_deploys_in_a_lab(make_lab, tmp_path, path):
    """configs/*.yaml with `netns: dut` pointed at a 4-host lab's dut: the deployable kinds come
    up and go down; the others are refused with exit 5 and the reason, nothing loaded."""
    from nf import engine
    from nf.net.lab import LabSpec
    if path.name == "lab.yaml":
        pytest.skip("the demo's own file: tests/nf/test_demo.py runs it")
    data = yaml.safe_load(path.read_text())
    lab = make_lab(LabSpec.switch(4))
    if "netns" in data:
        data["netns"] = lab.dut
    if path.name == "router.yaml":          # its rt0..rt2 become the lab's ports
        data["netns"] = lab.dut
        for i, itf in enumerate(data["interfaces"]):
            itf["name"] = f"p{i + 1}"
        data["sizes"] = {"v4_chunks": 64, "v6_chunks": 64, "trie_entries": 1024, "neighbours": 64}
    tag = f"c{os.getpid()}"
    if "chain" in data:                      # unique instance names: parallel runs never collide
        data["chain"] += tag
        for m in data["nfs"]:
            m["config"]["name"] += tag
    elif "name" in data:
        data["name"] += tag
    f = write(tmp_path, path.name, data)
    kind, cfg = engine.detect(f)
    name = cfg.name
    r = nf("up", f)
    if not kind.deployable:
        assert r.exit_code == cli.E_UNSUPPORTED and "cannot be deployed by nf yet" in r.output
        assert deploy.read(name) is None
        return
    try:
        assert r.exit_code == 0, r.output
        rec = deploy.read(name)
        assert rec.status == "up"
        assert _attached(lab, rec.interfaces) == [True] * len(rec.interfaces)
        assert nf("stats", name, "--json").exit_code == 0
    finally:
        r = nf("down", name)
    assert r.exit_code == 0, r.output
    assert _attached(lab, ["p1", "p2", "p3", "p4"]) == [False] * 4
    assert not [n for n in deploy.names() if n.endswith(tag)]


@pytest.mark.netns
def test_up_is_all_or_nothing_across_files(lab4, swfile, tmp_path):
    """The second file clashes with the first only once the first is up: the first is rolled back."""
    first = swfile()
    clash = write(tmp_path, "filter_clash.yaml", {"name": f"{swfile.name}f", "netns": lab4.dut,
                                                  "interfaces": ["p2"]})
    r = nf("up", first, clash)
    assert r.exit_code == cli.E_CONFLICT and "already used by" in r.output
    assert f"{swfile.name}: rolled back" in r.output
    assert deploy.read(swfile.name) is None and deploy.read(f"{swfile.name}f") is None
    assert _attached(lab4, ["p1", "p2", "p3", "p4"]) == [False] * 4


@pytest.mark.netns
def test_apply_new_filter_rules_swaps_the_program_and_keeps_counters(make_lab, tmp_path):
    from nf.net.lab import HostSpec, LabSpec
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    lab = make_lab(LabSpec(hosts=[HostSpec(name="h1"), HostSpec(name="h2")]))
    name = f"flt{os.getpid()}"
    d = {"name": name, "netns": lab.dut, "interfaces": ["p1"], "drop_dports": [53]}
    f = write(tmp_path, "filter.yaml", d)
    assert nf("up", f).exit_code == 0
    try:
        h1 = lab.host("h1")
        def udp(port):
            return bytes(Ether(src=h1.mac, dst="02:00:00:00:00:02") / IP(src="10.0.0.1", dst="10.0.0.2")
                         / UDP(sport=1, dport=port) / b"x")

        def counters():
            return json.loads(nf("stats", name, "--json").output)[name]["ports"]["all"]

        def settle(want_total):
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                c = counters()
                if c["drop_packets"] + c["pass_packets"] >= want_total:
                    return c
                time.sleep(0.02)
            return counters()

        lab.send("h1", [udp(53)] * 3 + [udp(123)] * 2)
        c = settle(5)
        assert (c["drop_packets"], c["pass_packets"]) == (3, 2)
        g = write(tmp_path, "filter2.yaml", {**d, "drop_dports": [123]})
        r = nf("apply", g)
        assert r.exit_code == 0, r.output
        assert "drop_dports[0]: 53 -> 123  [new program]" in r.output   # one diff for NFs and chains
        assert "program replaced on 1 link(s), maps kept" in r.output
        lab.send("h1", [udp(53)] * 4 + [udp(123)] * 6)
        c = settle(15)
        assert (c["drop_packets"], c["pass_packets"]) == (3 + 6, 2 + 4)
        assert deploy.read(name).config["drop_dports"] == [123]
        r = nf("apply", g)
        assert r.exit_code == 0 and r.output.strip() == f"{name}: unchanged"
    finally:
        nf("down", name)



def test_stats_watch_rates_only_for_counters():
    """--watch shows a rate next to counters; gauges (a sketch's epoch values, a table's entries)
    are shown as they are: a flip that restarts the epoch is not a negative rate."""
    import io

    from rich.console import Console
    prev = {"sk": {"kind": "sketch", "actions": None, "ports": {"epoch": {"epoch": 2, "packets": 500}}},
            "sw": {"kind": "l2_switch", "actions": None, "ports": {"p1": {"rx_packets": 100}}}}
    cur = {"sk": {"kind": "sketch", "actions": None, "ports": {"epoch": {"epoch": 3, "packets": 40}}},
           "sw": {"kind": "l2_switch", "actions": None, "ports": {"p1": {"rx_packets": 300}}}}
    buf = io.StringIO()
    con = Console(file=buf, width=200)
    for t in cli._stats_tables(cur, prev, 2.0):
        con.print(t)
    text = buf.getvalue()
    assert "300 (100)" in text                    # 200 frames in 2 s
    assert "40 (" not in text and "3 (" not in text and " 40 " in text, text
