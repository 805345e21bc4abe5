"""Offline expander of TRex field-engine programs: a stream's base packet plus the VM
instructions of STLStream.to_json()["vm"] -> the frames TRex would send, one per step.

    frames = expand(pkt_bytes, stream_json["vm"]["instructions"], n=1000, seed=1)

Supported instructions: flow_var (inc / dec / random), write_flow_var, fix_checksum_ipv4,
fix_checksum_hw (UDP/TCP over IPv4/IPv6). Others raise ValueError. The set of frames over a
full cycle is what TRex produces; the phase of the first frame (whether TRex starts at
init_value or one step later) and the random sequence are not reproduced, so compare sets and
counts, not frame i against TRex's frame i.
"""
from __future__ import annotations

import random
import struct
from collections.abc import Sequence

L4_TYPE_UDP, L4_TYPE_TCP = 11, 13


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def fix_ipv4(buf: bytearray, off: int) -> None:
    hl = (buf[off] & 15) * 4
    buf[off + 10:off + 12] = b"\0\0"
    buf[off + 10:off + 12] = struct.pack("!H", _csum(bytes(buf[off:off + hl])))


def fix_l4(buf: bytearray, l3: int, l4: int, l4_type: int) -> None:
    if l4_type not in (L4_TYPE_UDP, L4_TYPE_TCP):
        raise ValueError(f"fix_checksum_hw: l4_type {l4_type} is neither UDP (11) nor TCP (13)")
    proto = 17 if l4_type == L4_TYPE_UDP else 6
    ver = buf[l3] >> 4
    if ver == 4:
        fix_ipv4(buf, l3)
        end = l3 + struct.unpack_from("!H", buf, l3 + 2)[0]
        pseudo = bytes(buf[l3 + 12:l3 + 20]) + struct.pack("!BBH", 0, proto, end - l4)
    elif ver == 6:
        end = l3 + 40 + struct.unpack_from("!H", buf, l3 + 4)[0]
        pseudo = bytes(buf[l3 + 8:l3 + 40]) + struct.pack("!IxxxB", end - l4, proto)
    else:
        raise ValueError(f"fix_checksum_hw: IP version {ver} at offset {l3}")
    ck_off = l4 + (6 if proto == 17 else 16)
    buf[ck_off:ck_off + 2] = b"\0\0"
    c = _csum(pseudo + bytes(buf[l4:end]))
    if proto == 17 and c == 0:
        c = 0xFFFF  # RFC 768: a computed zero is sent as all ones
    buf[ck_off:ck_off + 2] = struct.pack("!H", c)


def expand(pkt: bytes, instructions: Sequence[dict], n: int, seed: int = 0) -> list[bytes]:
    """n frames from the base packet and the VM program (see module doc)."""
    rng = random.Random(seed)
    vars_: dict[str, dict] = {}
    for ins in instructions:
        if ins["type"] == "flow_var":
            if ins["op"] not in ("inc", "dec", "random"):
                raise ValueError(f"flow_var op {ins['op']!r}")
            vars_[ins["name"]] = dict(ins, value=ins["init_value"])
        elif ins["type"] not in ("write_flow_var", "fix_checksum_ipv4", "fix_checksum_hw"):
            raise ValueError(f"field-engine instruction {ins['type']!r} is not supported offline")
    out = []
    for _ in range(n):
        for v in vars_.values():
            if v["op"] == "random":
                v["value"] = rng.randint(v["min_value"], v["max_value"])
        buf = bytearray(pkt)
        for ins in instructions:
            t = ins["type"]
            if t == "write_flow_var":
                v = vars_[ins["name"]]
                size = v["size"]
                val = (v["value"] + ins.get("add_value", 0)) % (1 << (8 * size))
                raw = val.to_bytes(size, "big" if ins.get("is_big_endian", True) else "little")
                off = ins["pkt_offset"]
                if off + size > len(buf):
                    raise ValueError(f"write_flow_var {ins['name']} at {off} past the packet")
                buf[off:off + size] = raw
            elif t == "fix_checksum_ipv4":
                fix_ipv4(buf, ins["pkt_offset"])
            elif t == "fix_checksum_hw":
                fix_l4(buf, ins["l2_len"], ins["l2_len"] + ins["l3_len"], ins["l4_type"])
        out.append(bytes(buf))
        for v in vars_.values():
            if v["op"] == "inc":
                v["value"] += v["step"]
                if v["value"] > v["max_value"]:
                    v["value"] = v["min_value"]
            elif v["op"] == "dec":
                v["value"] -= v["step"]
                if v["value"] < v["min_value"]:
                    v["value"] = v["max_value"]
    return out
