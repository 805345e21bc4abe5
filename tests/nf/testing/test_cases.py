"""Case files are validated whole before any lab exists: every problem named by its field path
(unknown keys refused, as in the configs), ports checked against the config, expressions, hex,
pcap files and field names checked; `nf test` exits 3 on them. JUnit XML from a report."""
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
import yaml
from typer.testing import CliRunner

from nf import cli
from nf.config import ConfigError
from nf.testing import cases

ROOT = Path(__file__).resolve().parents[3]
ROUTER = str(ROOT / "configs" / "router.yaml")
SEND = {"port": "rt0", "frames": [{"scapy": "Ether()/IP()"}]}


def write(tmp_path, data, name="cases.yaml") -> Path:
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return p


def errors(tmp_path, data) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as ei:
        cases.load(write(tmp_path, data))
    return ei.value.errors


def step(**kw):
    return {"name": "s", "send": SEND, "nothing": "others", **kw}


def test_every_shipped_case_file_is_valid_and_names_its_ports():
    files = sorted((ROOT / "configs" / "cases").glob("*.yaml"))
    assert [f.name for f in files] == ["flow_table.yaml", "l2_switch.yaml", "router.yaml", "sketch.yaml"]
    got = {f.stem: cases.load(f).ports for f in files}
    assert got == {"flow_table": ["p1", "p2"], "l2_switch": ["p1", "p2", "p3", "p4"],
                   "router": ["rt0", "rt1", "rt2"], "sketch": ["p1", "p2"]}


@pytest.mark.parametrize("data, where, what", [
    ({"config": ROUTER, "steps": [step()], "extra": 1}, "extra", "Extra inputs are not permitted"),
    ({"config": ROUTER, "steps": []}, "steps", "at least 1 item"),
    ({"steps": [step()]}, "config", "Field required"),
    ({"config": ROUTER, "steps": [step(sned=SEND)]}, "steps[0].sned", "Extra inputs"),
    ({"config": ROUTER, "steps": [{"name": "s", "send": SEND}]}, "steps[0]",
     "a step checks something: expect, nothing or counters"),
    ({"config": ROUTER, "steps": [step(send={"port": "rt0", "frames": [{"scapy": "Ether()", "hex": "00"}]})]},
     "steps[0].send.frames[0]", "give exactly one of scapy, hex, pcap"),
    ({"config": ROUTER, "steps": [step(expect=[{"port": "rt1", "frames": [{}]}])]},
     "steps[0].expect[0].frames[0]", "give exactly one of scapy, hex, fields"),
    ({"config": ROUTER, "steps": [step(nothing=["rt1"], expect=[{"port": "rt1", "frames": [{"hex": "00" * 14}]}])]},
     "steps[0]", "'rt1' is both expected and in nothing"),
    ({"config": ROUTER, "steps": [step(nothing="all")]}, "steps[0].nothing",
     "a list of ports, or others"),
    ({"config": ROUTER, "steps": [step(counters={"rt0.rx_packets": "one"})]},
     "steps[0].counters.rt0.rx_packets", "valid integer"),
    ({"config": ROUTER, "timeout": 0, "steps": [step()]}, "timeout", "greater than 0"),
])
def test_schema_errors_name_the_field(tmp_path, data, where, what):
    errs = errors(tmp_path, data)
    assert any(p == where and what in m for p, m in errs), errs


@pytest.mark.parametrize("s, where, what", [
    (step(send={"port": "rt9", "frames": [{"hex": "00" * 14}]}), "steps[0].send.port",
     "unknown port 'rt9' (the config's interfaces: rt0, rt1, rt2)"),
    (step(nothing=["eth0"]), "steps[0].nothing[0]", "unknown port 'eth0'"),
    (step(expect=[{"port": "rt1", "frames": [{"fields": {"IP.hops": 1}}]}], nothing=[]),
     "steps[0].expect[0].frames[0].fields", "layer IP has no field 'hops'"),
    (step(send={"port": "rt0", "frames": [{"scapy": "Ether()/__import__('os')"}]}),
     "steps[0].send.frames[0].scapy", "only scapy layers may be called, not '__import__'"),
    (step(send={"port": "rt0", "frames": [{"scapy": "Ether(src=rt7.mac)"}]}),
     "steps[0].send.frames[0].scapy", "name 'rt7' is not allowed"),
    (step(send={"port": "rt0", "frames": [{"hex": "zz"}]}), "steps[0].send.frames[0].hex",
     "non-hexadecimal number"),
    (step(send={"port": "rt0", "frames": [{"hex": "00 01 02"}]}), "steps[0].send.frames[0].hex",
     "shorter than an Ethernet header"),
    (step(send={"port": "rt0", "frames": [{"pcap": "missing.pcap"}]}), "steps[0].send.frames[0].pcap",
     "cannot read"),
])
def test_content_errors_name_the_field_before_any_lab(tmp_path, s, where, what):
    errs = errors(tmp_path, {"config": ROUTER, "steps": [s]})
    assert any(p == where and what in m for p, m in errs), errs


def test_config_path_is_relative_to_the_case_file_and_its_errors_are_the_configs(tmp_path):
    assert errors(tmp_path, {"config": "nope.yaml", "steps": [step()]}) == \
        [("config", f"no such file: {tmp_path / 'nope.yaml'}")]
    (tmp_path / "router.yaml").write_text("name: r\ninterfaces: [{name: rt0, addresses: [10.0.0.1]}]\n")
    with pytest.raises(ConfigError) as ei:
        cases.load(write(tmp_path, {"config": "router.yaml", "steps": [step()]}))
    assert str(tmp_path / "router.yaml") in str(ei.value)
    assert ei.value.errors[0][0] == "interfaces[0].addresses"


def test_pcap_frames_are_read_relative_to_the_case_file(tmp_path):
    from scapy.layers.l2 import Ether
    from traffic.pcap import write_pcap
    write_pcap(tmp_path / "in.pcap", [bytes(Ether()) + b"\0" * 20] * 2)
    c = cases.load(write(tmp_path, {"config": ROUTER, "steps": [step(send={"port": "rt0", "frames": [
        {"pcap": "in.pcap", "repeat": 2}]})]}))
    assert len(cases._frames_in(c, None, c.spec.steps[0].send.frames[0], "rt0")) == 4


def test_nf_test_exits_3_naming_every_bad_field(tmp_path):
    f = write(tmp_path, {"config": ROUTER, "steps": [
        step(send={"port": "rt9", "frames": [{"hex": "00"}]}), step(counters={"x": 1}, bogus=1)]})
    r = CliRunner().invoke(cli.app, ["test", str(f)])
    assert r.exit_code == cli.E_CONFIG, r.output
    assert f"nf: error: {f}: invalid config" in r.output
    assert "steps[1].bogus: Extra inputs are not permitted" in r.output
    f = write(tmp_path, {"config": ROUTER, "steps": [step(send={"port": "rt9", "frames": [{"hex": "00"}]})]})
    r = CliRunner().invoke(cli.app, ["test", str(f), "--junit", str(tmp_path / "j.xml")])
    assert r.exit_code == cli.E_CONFIG
    assert "steps[0].send.port: unknown port 'rt9'" in r.output
    assert "steps[0].send.frames[0].hex: shorter than an Ethernet header" in r.output
    assert not (tmp_path / "j.xml").exists()           # nothing ran: no report
    r = CliRunner().invoke(cli.app, ["test", str(tmp_path / "missing.yaml")])
    assert r.exit_code == cli.E_NOT_FOUND


def test_junit_has_a_suite_per_file_and_a_failure_per_failed_step(tmp_path):
    ok = cases.Report(Path("a/router.yaml"), Path("a/r.yaml"), "router", seconds=1.5, steps=[
        cases.StepResult("s1", [cases.Check("rt1: 1 frame(s)", True)], 0.5),
        cases.StepResult("s2", [cases.Check("rt1: 1 frame(s)", False, "rt1: frame 1 of 1 differs\n  IP.ttl: "
                                            "expected 62, got 63"), cases.Check("counters (1)", False, "x")]),
        cases.StepResult("s3", [cases.Check("nothing at rt0", False, "rt0: expected nothing")])])
    broken = cases.Report(Path("b.yaml"), Path("c.yaml"), error="BpfError: refused")
    root = ET.fromstring(cases.junit([ok, broken]))
    assert (root.tag, root.get("tests"), root.get("failures"), root.get("errors")) == ("testsuites", "4", "2", "1")
    s1, s2 = root.findall("testsuite")
    assert s1.get("name") == "a/router.yaml" and s1.get("failures") == "2"
    tcs = s1.findall("testcase")
    assert [t.get("name") for t in tcs] == ["s1", "s2", "s3"] and tcs[0].find("failure") is None
    f = tcs[1].find("failure")
    assert f.get("message") == "rt1: 1 frame(s); counters (1)" and "IP.ttl: expected 62, got 63" in f.text
    assert tcs[2].find("failure").get("message") == "nothing at rt0"
    assert s2.find("testcase").get("name") == "(set-up)" and s2.find("testcase/error").text == "BpfError: refused"
