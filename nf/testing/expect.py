"""What a frame is expected to be: exact bytes, or some fields, and the readable verdict.

    Fields({"IP.ttl": 63, "Ether.src": "02:00:00:00:00:02"})   # only these fields matter
    Fields({"ICMP.type": "time-exceeded", "IPerror.dst": "10.9.1.1"})
    Fields({"Dot1Q[2].vlan": 20})                 # the second 802.1Q tag (1-based, like scapy's nb)
    problems(expected, got)                       # [] when it matches, else readable lines

A field is named ``Layer.field`` with scapy's layer class name as scapy dissects the received
frame from Ethernet up (an ICMP error's quoted header is ``IPerror``/``UDPerror``). Values are
given as scapy accepts them for that field (``"02:aa:..."``, ``"10.9.1.1"``, ``"time-exceeded"``
or ``11``, ``"SA"`` for TCP flags) and compared in wire format, so ``02:AA:..`` equals
``02:aa:..`` and ``2001:db8::1`` equals ``2001:0db8:0::1``.
"""
from __future__ import annotations

import re
from typing import Any

from nf.testing.harness import describe_diff, to_bytes

_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\[([1-9][0-9]*)\])?\.([A-Za-z_][A-Za-z0-9_]*)$")


class FieldsError(ValueError):
    """A field name that names no scapy layer or no field of it."""


def layer_class(name: str):
    """The scapy Packet class called ``name`` (any layer scapy knows), or None."""
    import scapy.all  # noqa: F401 - loads every layer, so the registry below is complete
    from scapy.config import conf
    for cls in conf.layers:
        if cls.__name__ == name:
            return cls
    return None


def parse_key(key: str) -> tuple[str, int, str]:
    """``"IP.ttl"`` -> ("IP", 1, "ttl"); ``"Dot1Q[2].vlan"`` -> ("Dot1Q", 2, "vlan").
    FieldsError when the layer or the field does not exist."""
    m = _KEY.match(key)
    if not m:
        raise FieldsError(f"{key!r}: name a field as Layer.field (e.g. IP.ttl, Dot1Q[2].vlan)")
    layer, nb, field = m.group(1), int(m.group(2) or 1), m.group(3)
    cls = layer_class(layer)
    if cls is None:
        raise FieldsError(f"{key!r}: scapy has no layer {layer!r}")
    if field not in {f.name for f in cls.fields_desc}:
        raise FieldsError(f"{key!r}: layer {layer} has no field {field!r} (fields: "
                          f"{', '.join(f.name for f in cls.fields_desc)})")
    return layer, nb, field


class Fields:
    """Expect a frame whose named fields have these values (other bytes do not matter)."""

    def __init__(self, fields: dict[str, Any] | None = None, **kw: Any):
        self.fields = {**(fields or {}), **kw}
        if not self.fields:
            raise FieldsError("Fields needs at least one field")
        self._keys = {k: parse_key(k) for k in self.fields}

    def __repr__(self) -> str:
        return "Fields(" + ", ".join(f"{k}={v!r}" for k, v in self.fields.items()) + ")"

    def problems(self, frame: bytes) -> list[str]:
        from scapy.layers.l2 import Ether
        pkt = Ether(frame)
        out = []
        for key, want in self.fields.items():
            layer, nb, field = self._keys[key]
            lay = pkt.getlayer(layer, nb=nb)
            if lay is None:
                out.append(f"{key}: expected {want!r}, but the frame has no {layer}"
                           + (f" #{nb}" if nb > 1 else "") + f" ({pkt.summary()})")
                continue
            fld = lay.get_field(field)
            got = lay.getfieldval(field)
            if not _same(fld, lay, want, got):
                out.append(f"{key}: expected {want!r}, got {fld.i2repr(lay, got)}")
        return out


def _same(fld, lay, want, got) -> bool:
    try:
        w = fld.any2i(lay, want)
        if w == got:
            return True
        return fld.i2m(lay, w) == fld.i2m(lay, got)
    except Exception:  # noqa: BLE001 - a value scapy cannot convert: compare as given
        return want == got or str(want).lower() == str(got).lower()


def problems(expected: Any, got: bytes) -> list[str]:
    """Why ``got`` is not ``expected`` (bytes, a scapy packet, or Fields); [] when it is."""
    if isinstance(expected, Fields):
        return expected.problems(got)
    diff = describe_diff(to_bytes(expected), got)
    return diff.splitlines() if diff else []


def summary(frame: bytes) -> str:
    """One line naming a frame (scapy's summary, or its length and first bytes)."""
    from scapy.layers.l2 import Ether
    try:
        return f"{len(frame)} bytes: {Ether(frame).summary()}"
    except Exception:  # noqa: BLE001
        return f"{len(frame)} bytes: {frame[:32].hex()}"


def is_mld(frame: bytes) -> bool:
    """An IPv6 MLD report/query/done frame (ICMPv6 130-132, 143 behind a hop-by-hop header).
    The kernels of a lab with IPv6 addresses send them on their own for a few seconds after an
    address is added; nf.testing ignores them unless told otherwise."""
    off = 14
    while len(frame) >= off + 4 and frame[off - 2:off] in (b"\x81\x00", b"\x88\xa8"):
        off += 4
    if frame[off - 2:off] != b"\x86\xdd" or len(frame) < off + 40:
        return False
    nh, p = frame[off + 6], off + 40
    if nh == 0 and len(frame) >= p + 8:          # hop-by-hop options (router alert)
        nh, p = frame[p], p + 8 * (frame[p + 1] + 1)
    return nh == 58 and len(frame) > p and frame[p] in (130, 131, 132, 143)
