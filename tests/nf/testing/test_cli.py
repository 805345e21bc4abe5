"""`nf test` as a user runs it (the installed `nf` command): every shipped example case file
passes; the must-fail file fails with exit 8 and a readable diff; JUnit XML for both; an
interrupted run leaves nothing behind."""
import signal
import subprocess
import sys
import time
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from nf import cli, deploy
from nf.bpf import pin as _pin
from nf.net import netns as _netns

pytestmark = pytest.mark.netns

ROOT = Path(__file__).resolve().parents[3]
NF = str(Path(sys.executable).parent / "nf")
EXAMPLES = sorted((ROOT / "configs" / "cases").glob("*.yaml"))


def nf_test(*args, cwd=ROOT, **kw):
    return subprocess.run([NF, "test", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=300, **kw)


def test_every_shipped_example_passes(tmp_path):
    j = tmp_path / "j.xml"
    r = nf_test(*EXAMPLES, "--junit", j)
    assert r.returncode == 0, r.stdout + r.stderr
    steps = r.stdout.count("│ PASS")
    assert steps >= 20 and "FAIL" not in r.stdout
    assert r.stdout.rstrip().splitlines()[-1].startswith(f"PASS: {steps} step(s), ")
    root = ET.parse(j).getroot()
    assert [s.get("name") for s in root.findall("testsuite")] == [str(p) for p in EXAMPLES]
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == (str(steps), "0", "0")
    assert {s.find("properties/property[@name='kind']").get("value") for s in root} == \
        {"l2_switch", "router", "sketch", "flow_table"}


def test_the_must_fail_case_file_fails_with_a_readable_diff(tmp_path):
    j = tmp_path / "j.xml"
    r = nf_test(Path("tests/nf/testing/cases/must_fail.yaml"), "--junit", j)
    assert r.returncode == cli.E_CHECK, r.stdout + r.stderr
    out = r.stdout
    assert "│ 1 │ right - routed out of rt1 " in out
    lines = out.splitlines()
    i = lines.index("step 2 (wrong bytes - TTL 62 expected):")
    assert lines[i + 1].startswith("  rt1: frame 1 of 1 differs (42 bytes: Ether / IP / UDP 10.0.0.2:echo > "
                                   "192.168.1.1:echo)")
    assert lines[i + 2:i + 4] == ["    IP.ttl: expected 62, got 63", "    IP.chksum: expected 0xb125, got 0xb025"]
    assert lines[i + 4].lstrip().startswith("0010 [      IP] exp 00 1c 00 01 00 00 3e 11 b1 25")
    i = lines.index("step 3 (wrong port - rt2 expected):")
    assert lines[i + 1:i + 5] == [
        "  rt2: expected 1 frame(s), 0 arrived within 0.3 s",
        "    meanwhile at rt1: 42 bytes: Ether / IP / UDP 10.0.0.2:echo > 192.168.1.1:echo",
        "  rt1: expected nothing, 1 frame(s) arrived:",
        "    42 bytes: Ether / IP / UDP 10.0.0.2:echo > 192.168.1.1:echo"]
    i = lines.index("step 4 (wrong counters - two frames counted):")
    assert lines[i + 1:i + 3] == ["  counters:", "    class blackhole.packets: expected +2, got +1 (0 -> 1)"]
    assert lines[-1] == "FAIL: 3 of 4 step(s) failed (4 of 7 check(s))"
    root = ET.parse(j).getroot()
    assert (root.get("tests"), root.get("failures")) == ("4", "3")
    fails = [tc.find("failure") for tc in root.iter("testcase")]
    assert fails[0] is None and "IP.ttl: expected 62, got 63" in fails[1].text
    assert fails[2].get("message") == "rt2: 1 frame(s); nothing at rt0, rt1"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_run_leaves_nothing(tmp_path, sig):
    (tmp_path / "wait.yaml").write_text(
        f"config: {ROOT / 'configs' / 'flow_table.yaml'}\n"
        "steps:\n"
        "  - name: waits for a frame that never comes\n"
        "    expect: [{port: p2, frames: [{hex: '" + "00" * 14 + "'}]}]\n"
        "    timeout: 60\n")
    p = subprocess.Popen([NF, "test", str(tmp_path / "wait.yaml")], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    tag = f"nfl{p.pid}x"
    deadline = time.monotonic() + 60
    while not any(r.netns and r.netns.startswith(tag) and r.status == "up" for r in deploy.records()):
        assert p.poll() is None and time.monotonic() < deadline, p.communicate()
        time.sleep(0.05)
    time.sleep(0.3)
    p.send_signal(sig)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, out + err
    assert not [n for n in _netns.list_netns() if n.startswith(tag)]
    assert not [r.name for r in deploy.records() if (r.netns or "").startswith(tag)]
    assert not [n for n in _pin.list_instances() if n.startswith(f"ft0-{p.pid}x")]


def test_what_only_the_lab_can_check_is_a_bad_case_file_too(tmp_path):
    """Frames are built and counter names checked once the lab is up, before the first step:
    exit 3 naming the fields, the lab gone."""
    (tmp_path / "late.yaml").write_text(
        f"config: {ROOT / 'configs' / 'l2_switch.yaml'}\n"
        "steps:\n"
        "  - name: a frame scapy cannot build with these values, a counter that does not exist\n"
        "    send: {port: p1, frames: [{scapy: 'Ether()/Dot1Q(vlan=p1.mac)'}]}\n"
        "    nothing: others\n"
        "    counters: {p1.rx_pakets: 1}\n")
    r = nf_test(tmp_path / "late.yaml")
    assert r.returncode == cli.E_CONFIG, r.stdout + r.stderr
    assert "steps[0].send.frames[0]: scapy cannot build the frame" in r.stderr
    assert "steps[0].counters.p1.rx_pakets: no such counter (did you mean p1.rx_packets" in r.stderr
    assert "PASS" not in r.stdout and "FAIL" not in r.stdout
    assert not [r for r in deploy.records() if r.kind == "l2_switch"]
