"""The sketch's benchmark setup (nf bench, nf/bench/guest.py, tests/xdp_progs/sketch/
test_sketch_bench.py): a config per variant and depth, and frames of distinct UDP flows."""
from __future__ import annotations

import ipaddress
import struct

DEPTHS = (1, 2, 4, 8, 16)
WIDTH = 256     # fits a per-CPU bank at d = 16; the width does not change the instruction path
SMAC = bytes.fromhex("020000000001")
DMAC = bytes.fromhex("020000000002")


def cfg(variant: str, d: int):
    """A SketchConfig whose heavy-hitter threshold is never reached (every packet takes the
    same update path)."""
    from nf.config import validate
    from nf.config.sketch import SketchConfig
    return validate({"variant": variant, "depth": d, "width": WIDTH,
                     "threshold": {"absolute": (1 << 32) - 1}}, SketchConfig)


def raw_frame(f, size: int = 60, smac: bytes = SMAC) -> bytes:
    """A TCP/UDP frame for a traffic.flows.Flow, padded to `size` (checksums zero: XDP parsing
    ignores them)."""
    s, d = ipaddress.ip_address(f.src).packed, ipaddress.ip_address(f.dst).packed
    if f.proto == 6:
        l4 = struct.pack("!HHIIBBHHH", f.sport, f.dport, 1, 0, 5 << 4, 0x02, 8192, 0, 0)
    elif f.proto == 17:
        l4 = struct.pack("!HHHH", f.sport, f.dport, 8, 0)
    else:
        raise ValueError("TCP/UDP only")
    v4 = len(s) == 4
    l4 += bytes(max(0, size - (34 if v4 else 54) - len(l4)))
    if f.proto == 17:
        l4 = l4[:4] + struct.pack("!H", len(l4)) + l4[6:]
    if v4:
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, 0, 64, f.proto, 0, s, d)
        return DMAC + smac + b"\x08\x00" + ip + l4
    ip = struct.pack("!IHBB16s16s", 6 << 28, len(l4), f.proto, 64, s, d)
    return DMAC + smac + b"\x86\xdd" + ip + l4


def frames(n: int = 8, ipv6: bool = False) -> list[bytes]:
    """n distinct UDP flows (seed 1), one frame each."""
    from traffic.flows import uniform
    return [raw_frame(f) for f in uniform(n, 0, seed=1, protos=(17,), ipv6=ipv6).flows]
