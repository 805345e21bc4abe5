"""Tier 1: random and mutated frames through xdp_progs/base (hypothesis).

Oracle: a Python model of parse.h's rules written from its specification (below). For every
frame the BPF verdict must equal the model's, the output must equal the input (base never
rewrites), and the stats must move by exactly this frame: one packet and len(frame) bytes under
the verdict, one count under the model's reason (none for a passed frame)."""
from __future__ import annotations

import importlib.util
import struct
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

OK, TRUNC, MALF, DEEP, CONFIG = (Reason.NONE, Reason.TRUNCATED, Reason.MALFORMED,
                                 Reason.TOO_DEEP, Reason.CONFIG)
EXT = {0, 43, 44, 60, 51}
CFG_PORTS, CFG_PROTOS = (53, 8080), (47,)


def _be16(b: bytes, off: int) -> int:
    return struct.unpack_from("!H", b, off)[0]


def _l4(b, off, proto, limit, v4, frag):
    """(rc, dport or None): TCP/UDP/ICMP(v6) header checks against the IP packet's end."""
    if proto == 6:
        if off + 20 > limit:
            return TRUNC, None
        hl = (b[off + 12] >> 4) * 4
        if hl < 20:
            return MALF, None
        if off + hl > limit:
            return TRUNC, None
        return OK, _be16(b, off + 2)
    if proto == 17:
        if off + 8 > limit:
            return TRUNC, None
        ulen = _be16(b, off + 4)
        if not frag:  # a first fragment holds only part of the datagram its length describes
            if ulen < 8:
                return MALF, None
            if off + ulen > limit:
                return TRUNC, None
        return OK, _be16(b, off + 2)
    if (proto == 1 and v4) or (proto == 58 and not v4):
        return (TRUNC, None) if off + 8 > limit else (OK, None)
    return OK, None


def model(b: bytes) -> tuple[Reason, int | None, int | None]:
    """(parse rc, final IP protocol or None for non-IP, TCP/UDP dport or None)."""
    n = len(b)
    if n < 14:
        return TRUNC, None, None
    proto, off = _be16(b, 12), 14
    for i in range(3):
        if proto not in (0x8100, 0x88A8):
            break
        if i == 2:
            return DEEP, None, None
        if off + 4 > n:
            return TRUNC, None, None
        proto, off = _be16(b, off + 2), off + 4
    if proto == 0x0800:
        if off + 20 > n:
            return TRUNC, None, None
        if b[off] >> 4 != 4:
            return MALF, None, None
        hl, tot = (b[off] & 15) * 4, _be16(b, off + 2)
        if hl < 20 or tot < hl:
            return MALF, None, None
        if off + tot > n:
            return TRUNC, None, None
        p, fo = b[off + 9], _be16(b, off + 6)
        if fo & 0x1FFF:  # later fragment: no L4 header
            return OK, p, None
        rc, dport = _l4(b, off + hl, p, off + tot, True, bool(fo & 0x2000))
        return rc, (p if rc == OK else None), dport
    if proto == 0x86DD:
        if off + 40 > n:
            return TRUNC, None, None
        if b[off] >> 4 != 6:
            return MALF, None, None
        limit = off + 40 + _be16(b, off + 4)
        if limit > n:
            return TRUNC, None, None
        nh, cur, frag = b[off + 6], off + 40, False
        for i in range(6):
            if nh not in EXT:
                break
            if nh == 0 and i:
                return MALF, None, None
            if cur + 2 > n:
                return TRUNC, None, None
            ln = 8 if nh == 44 else (b[cur + 1] + 2) * 4 if nh == 51 else (b[cur + 1] + 1) * 8
            if cur + ln > limit:
                return TRUNC, None, None
            if nh == 44:
                fo = _be16(b, cur + 2)
                frag = frag or bool(fo & 0xFFF9)
                if fo & 0xFFF8:
                    return OK, b[cur], None
            nh, cur = b[cur], cur + ln
        if nh in EXT:
            return DEEP, None, None
        rc, dport = _l4(b, cur, nh, limit, False, frag)
        return rc, (nh if rc == OK else None), dport
    return OK, None, None


def expect(b: bytes) -> tuple[XdpAction, Reason]:
    """Verdict and reason of base with drop_dports=CFG_PORTS, drop_l4_protos=CFG_PROTOS."""
    rc, proto, dport = model(b)
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
