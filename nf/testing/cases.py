"""Case files: functional tests of a config without Python (`nf test CASES.yaml`).

    config: router.yaml                  # the config to deploy (relative to this file)
    steps:
      - name: routed with TTL - 1
        send: {port: rt0, frames: [{scapy: "Ether(src=rt0.mac, dst=rt0.dut_mac)/IP(src=rt0.ip4, dst='192.168.1.1')/UDP()"}]}
        expect: [{port: rt1, frames: [{fields: {IP.ttl: 63, Ether.src: "02:00:00:00:00:02"}}]}]
        nothing: others                  # or a list of ports
        counters: {rt0.rx_packets: 1, class static.packets: 1}

Each step (in order, on one lab: state carries over, frames do not) sends its frames into a port,
then checks: each ``expect`` port receives exactly these frames (``scapy``/``hex``: byte for byte;
``fields``: those fields), ``nothing`` ports receive none, every named counter moved by exactly
that much. ``load()`` validates the whole file (pydantic, unknown keys refused, every problem named
by its field path, e.g. ``steps[2].expect[0].frames[0].fields``) and checks ports, scapy
expressions (nf/testing/scapy_expr.py: never evaluated as Python), hex, pcap files and field names
against the config before any lab is built; once the NF is up, ``prepare()`` builds every frame
with the lab's values and checks every counter name, before the first step (still a bad case
file, not a failed check).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union
from xml.etree import ElementTree as ET

from pydantic import Field, field_validator, model_validator

from nf.config import ConfigError
from nf.config.base import Model, load as _load
from nf.testing import scapy_expr

Scalar = Union[bool, int, float, str]


class FrameIn(Model):
    """A frame to send: exactly one of scapy / hex / pcap."""
    scapy: Optional[str] = Field(None, description="a scapy expression (see nf/testing/scapy_expr.py)")
    hex: Optional[str] = Field(None, description="the frame's bytes in hex (spaces allowed)")
    pcap: Optional[str] = Field(None, description="every frame of a pcap file (relative to the case file)")
    repeat: int = Field(1, ge=1, le=100_000, description="send it this many times")

    @model_validator(mode="after")
    def _one(self):
        if sum(x is not None for x in (self.scapy, self.hex, self.pcap)) != 1:
            raise ValueError("give exactly one of scapy, hex, pcap")
        return self


class FrameOut(Model):
    """An expected frame: exactly one of scapy / hex (exact bytes) / fields."""
    scapy: Optional[str] = None
    hex: Optional[str] = None
    fields: Optional[dict[str, Scalar]] = Field(None, description="Layer.field: value (IP.ttl: 63)")
    repeat: int = Field(1, ge=1, le=100_000, description="this frame, this many times in a row")

    @model_validator(mode="after")
    def _one(self):
        if sum(x is not None for x in (self.scapy, self.hex, self.fields)) != 1:
            raise ValueError("give exactly one of scapy, hex, fields")
        if self.fields is not None and not self.fields:
            raise ValueError("fields: name at least one field")
        return self


class Send(Model):
    port: str
    frames: list[FrameIn] = Field(min_length=1)


class Expect(Model):
    port: str
    frames: list[FrameOut] = Field(min_length=1)


class Step(Model):
    name: str = Field(min_length=1)
    send: Optional[Send] = None
    expect: list[Expect] = Field(default_factory=list)
    nothing: Union[Literal["others"], list[str]] = Field(
        default_factory=list, description="ports that must receive nothing; others: every port "
                                          "no expect names (the sending port included)")
    counters: dict[str, int] = Field(default_factory=dict,
                                     description="counter: exact change during the step")
    timeout: Optional[float] = Field(None, gt=0, le=60, description="this step's expect timeout (s)")

    @field_validator("nothing", mode="before")
    @classmethod
    def _nothing(cls, v):
        if v == "others" or (isinstance(v, list) and all(isinstance(x, str) for x in v)):
            return v
        raise ValueError("a list of ports, or others (every port no expect names)")

    @model_validator(mode="after")
    def _checks(self):
        if not (self.expect or self.nothing or self.counters):
            raise ValueError("a step checks something: expect, nothing or counters")
        ports = [e.port for e in self.expect]
        dup = sorted({p for p in ports if ports.count(p) > 1})
        if dup:
            raise ValueError(f"port {dup[0]!r} expected twice in one step: list its frames together")
        if isinstance(self.nothing, list) and set(self.nothing) & set(ports):
            raise ValueError(f"port {sorted(set(self.nothing) & set(ports))[0]!r} is both expected "
                             f"and in nothing")
        return self


class CaseFile(Model):
    config: str = Field(description="the config file to deploy (relative to this file)")
    kind: Optional[str] = Field(None, description="NF kind, when the config's file name does not say")
    timeout: float = Field(1.0, gt=0, le=60, description="how long expected frames may take (s)")
    quiet: float = Field(0.2, gt=0, le=60, description="how long `nothing` waits (s)")
    steps: list[Step] = Field(min_length=1)


# ---- loading ------------------------------------------------------------------------------------
@dataclass
class Cases:
    """A validated case file and the config it deploys."""
    path: Path
    spec: CaseFile
    config: Path
    ports: list[str]

    def rel(self, p: str) -> Path:
        q = Path(p)
        return q if q.is_absolute() else self.path.parent / q


def _hex(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()).replace(":", ""))


def load(path: str | Path) -> Cases:
    """Read and validate a case file (ConfigError naming every bad field, nothing deployed)."""
    from nf.testing import deployment
    from nf.testing.expect import parse_key
    from traffic.pcap import read_pcap

    path = Path(path)
    spec = _load(path, CaseFile)
    src = str(path)
    cfg_path = Path(os.path.normpath(path.parent / spec.config))
    if not cfg_path.is_file():
        raise ConfigError(src, [("config", f"no such file: {cfg_path}")])
    kind, cfg = deployment.load(cfg_path, spec.kind)
    ports = deployment.interfaces(kind, cfg)
    c = Cases(path, spec, cfg_path, ports)
    errors: list[tuple[str, str]] = []
    idents = tuple(p for p in ports if p.isidentifier()) + ("port", "ports")

    def port(where: str, p: str) -> None:
        if p not in ports:
            errors.append((where, f"unknown port {p!r} (the config's interfaces: {', '.join(ports)})"))

    def frame(where: str, f) -> None:
        try:
            if f.scapy is not None:
                scapy_expr.check(f.scapy, idents)
            elif f.hex is not None:
                if len(_hex(f.hex)) < 14:
                    errors.append((f"{where}.hex", "shorter than an Ethernet header (14 bytes)"))
            elif getattr(f, "pcap", None) is not None:
                if not read_pcap(c.rel(f.pcap)):
                    errors.append((f"{where}.pcap", "the file holds no frame"))
            else:
                for k in f.fields:
                    parse_key(k)
        except scapy_expr.ExprError as e:
            errors.append((f"{where}.scapy", str(e)))
        except ValueError as e:          # bytes.fromhex, FieldsError, PcapError
            what = "hex" if f.hex is not None else "fields" if f.fields is not None else "pcap"
            errors.append((f"{where}.{what}", str(e)))
        except OSError as e:
            errors.append((f"{where}.pcap", f"cannot read {c.rel(f.pcap)}: {e.strerror}"))

    for i, s in enumerate(spec.steps):
        w = f"steps[{i}]"
        if s.send:
            port(f"{w}.send.port", s.send.port)
            for j, f in enumerate(s.send.frames):
                frame(f"{w}.send.frames[{j}]", f)
        for j, e in enumerate(s.expect):
            port(f"{w}.expect[{j}].port", e.port)
            for k, f in enumerate(e.frames):
                frame(f"{w}.expect[{j}].frames[{k}]", f)
        for j, p in enumerate(s.nothing if isinstance(s.nothing, list) else []):
            port(f"{w}.nothing[{j}]", p)
    if errors:
        raise ConfigError(src, errors)
    return c


# ---- running ------------------------------------------------------------------------------------
@dataclass
class Check:
    what: str
    ok: bool
    detail: str = ""


@dataclass
class StepResult:
    name: str
    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


@dataclass
class Report:
    path: Path
    config: Path
    kind: str = ""
    steps: list[StepResult] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""              # the run stopped before its steps (the lab, the deployment)

    @property
    def ok(self) -> bool:
        return not self.error and all(s.ok for s in self.steps)

    @property
    def failed(self) -> int:
        return sum(not c.ok for s in self.steps for c in s.checks)


def _names(lab, port) -> dict[str, Any]:
    ports = {n: scapy_expr.Vars(f"port {n}", p.vars()) for n, p in lab.ports.items()}
    names: dict[str, Any] = {n: v for n, v in ports.items() if n.isidentifier()}
    names["ports"] = scapy_expr.Mapping("ports", ports)
    names["port"] = ports[port]
    return names


def _frames_in(c: Cases, lab, f: FrameIn, port: str) -> list[bytes]:
    from traffic.pcap import read_pcap
    if f.scapy is not None:
        one = [scapy_expr.frame(f.scapy, _names(lab, port))]
    elif f.hex is not None:
        one = [_hex(f.hex)]
    else:
        one = [r.data for r in read_pcap(c.rel(f.pcap))]
    return one * f.repeat


def _frames_out(lab, f: FrameOut, port: str) -> list:
    from nf.testing.expect import Fields
    if f.scapy is not None:
        one = scapy_expr.frame(f.scapy, _names(lab, port))
    elif f.hex is not None:
        one = _hex(f.hex)
    else:
        one = Fields(f.fields)
    return [one] * f.repeat


@dataclass
class Built:
    """A step's frames, built on the lab: what to send, what each expect port must receive."""
    send: list[bytes]
    expect: dict[str, list]


def prepare(c: Cases, lab) -> list[Built]:
    """Build every step's frames with the lab's port values and check every counter a step
    names exists, before the first step runs: a frame scapy cannot build (``IP(src=rt0.ip6)``)
    or an unknown counter is a bad case file (ConfigError naming the field), not a failed check."""
    import difflib
    names = lab.counters()
    errors, built = [], []
    for i, s in enumerate(c.spec.steps):
        b = Built([], {})
        if s.send:
            for j, f in enumerate(s.send.frames):
                try:
                    b.send += _frames_in(c, lab, f, s.send.port)
                except (scapy_expr.ExprError, ValueError, OSError) as e:
                    errors.append((f"steps[{i}].send.frames[{j}]", str(e)))
        for j, e in enumerate(s.expect):
            b.expect[e.port] = []
            for k, f in enumerate(e.frames):
                try:
                    b.expect[e.port] += _frames_out(lab, f, e.port)
                except (scapy_expr.ExprError, ValueError) as x:
                    errors.append((f"steps[{i}].expect[{j}].frames[{k}]", str(x)))
        for k in s.counters:
            if k not in names:
                close = difflib.get_close_matches(k, names, n=3)
                errors.append((f"steps[{i}].counters.{k}", "no such counter" + (
                    f" (did you mean {', '.join(close)}?)" if close else
                    f" (the deployed {lab.kind} has: {', '.join(sorted(names))})")))
        built.append(b)
    if errors:
        raise ConfigError(str(c.path), errors)
    return built


def run_step(c: Cases, lab, s: Step, b: Built) -> StepResult:
    """One step on the lab with its built frames; a failed check is in the result, not raised."""
    from nf.testing.expect import summary
    from nf.testing.nflab import ExpectationError
    r = StepResult(s.name)
    t0 = time.monotonic()
    timeout = s.timeout or c.spec.timeout
    lab.flush()
    before = lab.counters() if s.counters else None
    if s.send:
        lab.send(s.send.port, b.send)
    for port, want in b.expect.items():
        what = f"{port}: {len(want)} frame(s)"
        try:
            lab.expect(port, want, timeout=timeout)
            r.checks.append(Check(what, True))
        except ExpectationError as x:
            r.checks.append(Check(what, False, str(x)))
    quiet = [p for p in lab.ports if p not in b.expect] if s.nothing == "others" else list(s.nothing)
    extra = lab.unexpected(quiet + list(b.expect), timeout=c.spec.quiet)
    if quiet:
        bad = [p for p in quiet if extra.get(p)]
        r.checks.append(Check(f"nothing at {', '.join(quiet)}", not bad, "\n".join(
            f"{p}: expected nothing, {len(extra[p])} frame(s) arrived:\n"
            + "\n".join(f"  {summary(f)}" for f in extra[p][:5]) for p in bad)))
    for p, want in b.expect.items():
        if extra.get(p):
            r.checks.append(Check(f"{p}: no more frames", False,
                                  f"{p}: {len(want)} frame(s) expected, {len(extra[p])} more arrived:\n"
                                  + "\n".join(f"  {summary(f)}" for f in extra[p][:5])))
    if s.counters:
        try:
            lab.assert_counters(before, s.counters, timeout=timeout)
            r.checks.append(Check(f"counters ({len(s.counters)})", True))
        except ExpectationError as x:
            r.checks.append(Check(f"counters ({len(s.counters)})", False, str(x)))
    r.seconds = time.monotonic() - t0
    return r


def run(cases: "Cases | str | Path", progress=None, **lab_kw) -> Report:
    """Load (unless given loaded), build the lab, deploy, run every step, tear down. ConfigError
    for a bad case file (before or right after deployment); a failed check is in the report,
    never raised."""
    from nf.testing.nflab import NfLab
    t0 = time.monotonic()
    c = cases if isinstance(cases, Cases) else load(cases)
    rep = Report(c.path, c.config)
    with NfLab(c.config, kind=c.spec.kind, timeout=c.spec.timeout, quiet=c.spec.quiet, **lab_kw) as lab:
        rep.kind = lab.kind
        built = prepare(c, lab)
        for i, (s, b) in enumerate(zip(c.spec.steps, built)):
            if progress:
                progress(i, len(c.spec.steps), s.name)
            rep.steps.append(run_step(c, lab, s, b))
    rep.seconds = time.monotonic() - t0
    return rep


# ---- JUnit XML ----------------------------------------------------------------------------------
def junit(reports: list[Report]) -> str:
    """JUnit XML: a testsuite per case file, a testcase per step (failure: every failed check)."""
    root = ET.Element("testsuites", name="nf test", tests=str(sum(len(r.steps) or 1 for r in reports)),
                      failures=str(sum(sum(not s.ok for s in r.steps) for r in reports)),
                      errors=str(sum(bool(r.error) for r in reports)),
                      time=f"{sum(r.seconds for r in reports):.3f}")
    for r in reports:
        suite = ET.SubElement(root, "testsuite", name=str(r.path), tests=str(len(r.steps) or 1),
                              failures=str(sum(not s.ok for s in r.steps)),
                              errors=str(int(bool(r.error))), time=f"{r.seconds:.3f}")
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="config", value=str(r.config))
        ET.SubElement(props, "property", name="kind", value=r.kind)
        cls = r.path.stem
        if r.error:
            tc = ET.SubElement(suite, "testcase", classname=cls, name="(set-up)", time="0")
            ET.SubElement(tc, "error", message=r.error.splitlines()[0]).text = r.error
        for s in r.steps:
            tc = ET.SubElement(suite, "testcase", classname=cls, name=s.name, time=f"{s.seconds:.3f}")
            bad = [ch for ch in s.checks if not ch.ok]
            if bad:
                ET.SubElement(tc, "failure", message="; ".join(ch.what for ch in bad)).text = \
                    "\n\n".join(ch.detail for ch in bad)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
