"""Tier 1: random and mutated frames through xdp_progs/base (hypothesis).

Oracle: a Python model of parse.h's rules written from its specification (parse_model.py). For every
frame the BPF verdict must equal the model's, the output must equal the input (base never
rewrites), and the stats must move by exactly this frame: one packet and len(frame) bytes under
the verdict, one count under the model's reason (none for a passed frame)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nf.datapath import BaseCfg, Reason, XdpAction, load_base, read_stats
from nf.testing.harness import run_packet

# the table of test_base.py (imported by path: tests are not a package under importlib mode)
_spec = importlib.util.spec_from_file_location("_base_table", Path(__file__).with_name("test_base.py"))
_table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_table)

_mspec = importlib.util.spec_from_file_location("_parse_model", Path(__file__).with_name("parse_model.py"))
_model = importlib.util.module_from_spec(_mspec)
_mspec.loader.exec_module(_model)

OK, CONFIG = Reason.NONE, Reason.CONFIG
CFG_PORTS, CFG_PROTOS = (53, 8080), (47,)


def expect(b: bytes) -> tuple[XdpAction, Reason]:
    """Verdict and reason of base with drop_dports=CFG_PORTS, drop_l4_protos=CFG_PROTOS."""
    rc, proto, dport = _model.ip_proto_and_dport(b)
    if rc != OK:
        return XdpAction.DROP, rc
    if proto in CFG_PROTOS or (proto in (6, 17) and dport in CFG_PORTS):
        return XdpAction.DROP, CONFIG
    return XdpAction.PASS, OK


TEMPLATES = [bytes(c.pkt) for c in _table.CASES]


@st.composite
def mutated(draw):
    """A table frame with a few bytes overwritten (biased to the headers) and maybe cut."""
    b = bytearray(draw(st.sampled_from(TEMPLATES)))
    for _ in range(draw(st.integers(0, 4))):
        i = draw(st.integers(0, min(len(b), 100) - 1))
        b[i] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        b = b[: draw(st.integers(14, len(b)))]
    return bytes(b)


ETHERTYPES = st.sampled_from([b"\x08\x00", b"\x86\xdd", b"\x81\x00", b"\x88\xa8", b"\x08\x06"])
garbage = st.builds(lambda mac, et, rest: mac + et + rest, st.binary(min_size=12, max_size=12),
                    ETHERTYPES, st.binary(max_size=160))


def test_model_agrees_with_the_table():
    """The oracle itself: it reproduces every expectation of the hand-written table."""
    for c, reason in _table.DEFAULT:
        v, r = expect(bytes(c.pkt))
        if reason is None and c.verdict == XdpAction.PASS:
            # the table runs the default config; ports/protos of CFG may drop it here
            assert r in (OK, CONFIG), c.desc
        else:
            assert (v, r) == (XdpAction.DROP, reason), c.desc


@pytest.fixture(scope="module")
def fuzz_base():
    with load_base(BaseCfg.make(drop_dports=CFG_PORTS, drop_l4_protos=CFG_PROTOS)) as obj:
        yield obj


def _check(obj, frame: bytes) -> None:
    before = read_stats(obj)
    verdict, out = run_packet(obj.program("xdp_base"), frame)
    after = read_stats(obj)
    want_v, want_r = expect(frame)
    assert verdict in (XdpAction.PASS, XdpAction.DROP)
    assert (verdict, out) == (want_v, frame), frame.hex()
    dp = {a: after.packets[a] - before.packets[a] for a in XdpAction}
    db = {a: after.bytes[a] - before.bytes[a] for a in XdpAction}
    dr = {r: after.reasons[r] - before.reasons[r] for r in after.reasons}
    assert dp == {a: int(a == verdict) for a in XdpAction}
    assert db == {a: len(frame) if a == verdict else 0 for a in XdpAction}
    assert dr == {r: int(r == want_r and r != OK) for r in dr}, frame.hex()


_SETTINGS = settings(max_examples=400, deadline=None, derandomize=True, database=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])


@_SETTINGS
@given(frame=mutated())
def test_mutated_frames(fuzz_base, frame):
    _check(fuzz_base, frame)


@_SETTINGS
@given(frame=garbage)
def test_garbage_frames(fuzz_base, frame):
    _check(fuzz_base, frame)
