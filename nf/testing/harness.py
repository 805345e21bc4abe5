"""Run one packet through an XDP program with BPF_PROG_TEST_RUN and compare bytes readably.

    verdict, out = run_packet(prog, Ether()/IP()/UDP())      # (XdpAction, bytes)
    assert_packet(prog, pkt, XdpAction.PASS, expected)       # byte-exact, diff by layer on failure
    run_cases(prog, CASES)                                   # a table of Case(desc, pkt, verdict, out)

Frames shorter than 14 bytes raise HarnessError: the kernel's XDP test_run refuses them with
EINVAL (measured on 6.18, also behind an XDP metadata prefix: it wants ETH_HLEN bytes after the
metadata), so a program's "truncated Ethernet" branch is reachable only from real devices.

Failure messages name the differing fields layer by layer as scapy dissects both frames
(``IP.ttl: expected 64, got 63``), then a hex diff of the differing bytes with the layer each
byte belongs to, so a wrong rewrite is obvious without decoding hex by hand.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from nf.datapath import XdpAction

Verdict = XdpAction
ETH_HLEN = 14


class HarnessError(AssertionError):
    """The program returned a value that is no XDP verdict, or the input is unusable."""


def to_bytes(pkt: Any) -> bytes:
    """scapy Packet, bytes, bytearray or memoryview -> bytes."""
    if isinstance(pkt, (bytes, bytearray, memoryview)):
        return bytes(pkt)
    try:
        return bytes(pkt)  # scapy Packet
    except Exception as e:  # noqa: BLE001 - any build failure is the caller's bad input
        raise HarnessError(f"cannot turn {type(pkt).__name__} into bytes: {e}") from e


def verdict_name(v: int) -> str:
    try:
        return f"XDP_{XdpAction(v).name}"
    except ValueError:
        return f"invalid verdict {v}"


def run_packet(prog, pkt: Any, *, ingress_ifindex: int | None = None) -> tuple[XdpAction, bytes]:
    """Run one frame through ``prog`` (an nf.bpf Program) once; return (verdict, output bytes).

    The output is the frame as the program left it (after any rewrite or head/tail adjust), also
    for XDP_DROP. A program returning a non-verdict raises HarnessError."""
    data = to_bytes(pkt)
    if len(data) < ETH_HLEN:
        raise HarnessError(f"{len(data)}-byte frame: XDP test_run needs at least {ETH_HLEN} bytes")
    if ingress_ifindex:
        r = prog.test_run(data, repeat=1, ingress_ifindex=ingress_ifindex)
    else:
        r = prog.test_run(data, repeat=1)
    try:
        verdict = XdpAction(r.retval)
    except ValueError:
        raise HarnessError(f"program returned {r.retval}, which is no XDP verdict") from None
    return verdict, bytes(r.data_out)


# ---- readable diffs ----
def _dissect(data: bytes):
    from scapy.layers.l2 import Ether  # scapy import is slow; only when a diff is needed

    try:
        return Ether(data)
    except Exception:  # noqa: BLE001 - garbage frames: fall back to the hex diff only
        return None


def _layers(pkt) -> list[tuple[str, int, Any]]:
    """(name, start offset, layer) for every layer of a dissected frame."""
    from scapy.packet import NoPayload

    total = len(bytes(pkt))
    out, layer = [], pkt
    while not isinstance(layer, NoPayload):
        out.append((layer.__class__.__name__, total - len(bytes(layer)), layer))
        layer = layer.payload
    return out


def _layer_at(layers: list[tuple[str, int, Any]], off: int) -> str:
    name = "?"
    for n, start, _ in layers:
        if off >= start:
            name = n
    return name


def _field_diffs(exp_layers, act_layers) -> list[str]:
    lines = []
    for i in range(max(len(exp_layers), len(act_layers))):
        if i >= len(exp_layers):
            lines.append(f"extra layer {act_layers[i][0]} at offset {act_layers[i][1]}")
            continue
        if i >= len(act_layers):
            lines.append(f"missing layer {exp_layers[i][0]} (expected at offset {exp_layers[i][1]})")
            continue
        (en, _, el), (an, _, al) = exp_layers[i], act_layers[i]
        if en != an:
            lines.append(f"layer {i}: expected {en}, got {an}")
            break  # the rest of the dissection is not comparable
        for f in el.fields_desc:
            if f.name == "load":
                continue
            ev, av = el.getfieldval(f.name), al.getfieldval(f.name)
            if ev != av:
                lines.append(f"{en}.{f.name}: expected {f.i2repr(el, ev)}, got {f.i2repr(al, av)}")
        if en in ("Raw", "Padding") and el.load != al.load:
            lines.append(f"{en}: payload differs ({len(el.load)} vs {len(al.load)} bytes)")
    return lines


def describe_diff(expected: bytes, actual: bytes, max_hex_lines: int = 16) -> str:
    """Empty string when equal; else field differences by layer, then the differing bytes."""
    expected, actual = bytes(expected), bytes(actual)
    if expected == actual:
        return ""
    lines = []
    if len(expected) != len(actual):
        lines.append(f"length: expected {len(expected)}, got {len(actual)} bytes")
    ep, ap = _dissect(expected), _dissect(actual)
    layers = []
    if ep is not None and ap is not None:
        el, al = _layers(ep), _layers(ap)
        layers = el
        lines += _field_diffs(el, al)
    # differing byte runs, 16 bytes a line, tagged with the expected frame's layer
    n = max(len(expected), len(actual))
    shown = 0
    for row in range(0, n, 16):
        e, a = expected[row:row + 16], actual[row:row + 16]
        if e == a:
            continue
        if shown == max_hex_lines:
            lines.append("  ... more differing bytes")
            break
        first = next(i for i in range(16) if expected[row + i:row + i + 1] != actual[row + i:row + i + 1])
        marks = "".join("^^ " if expected[row + i:row + i + 1] != actual[row + i:row + i + 1]
                        else "   " for i in range(max(len(e), len(a))))
        lines.append(f"  {row:04x} [{_layer_at(layers, row + first):>8}] exp {e.hex(' ')}")
        lines.append(f"  {'':4} {'':10} got {a.hex(' ')}")
        lines.append(f"  {'':4} {'':10}     {marks.rstrip()}")
        shown += 1
    return "\n".join(lines)


def assert_packet(prog, pkt: Any, verdict: XdpAction | int, expected: Any = None, *,
                  desc: str = "", ingress_ifindex: int | None = None) -> bytes:
    """Run ``pkt``; assert verdict and byte-exact output (``expected`` None = unchanged input)."""
    data = to_bytes(pkt)
    want = data if expected is None else to_bytes(expected)
    got_v, out = run_packet(prog, data, ingress_ifindex=ingress_ifindex)
    what = f"{desc}: " if desc else ""
    problems = []
    if got_v != verdict:
        problems.append(f"verdict: expected {verdict_name(verdict)}, got {verdict_name(got_v)}")
    diff = describe_diff(want, out)
    if diff:
        problems.append("output bytes differ:\n" + diff)
    if problems:
        raise AssertionError(what + "\n".join(problems))
    return out


@dataclass(frozen=True)
class Case:
    """One row of a tier-1 table: description, input frame, verdict, output (None = unchanged)."""
    desc: str
    pkt: Any
    verdict: XdpAction
    expected: Any = None

    def __str__(self) -> str:  # pytest ids
        return self.desc


def run_cases(prog, cases: Iterable[Case]) -> None:
    """Run every case and report all failures together (not just the first)."""
    failures = []
    for c in cases:
        try:
            assert_packet(prog, c.pkt, c.verdict, c.expected, desc=c.desc)
        except AssertionError as e:
            failures.append(str(e))
    if failures:
        raise AssertionError(f"{len(failures)} case(s) failed:\n\n" + "\n\n".join(failures))
