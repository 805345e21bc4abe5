"""TRex STL profile: traffic for the xdp-nf heavy-hitter sketch (count-min + top-k).

n_heavy heavy flows, each its own stream, share heavy_share of the packet rate by Zipf(s)
weights: heavy flow k (1-based) sends pps * heavy_share * k**-s / H(n_heavy, s). A background
stream sends the rest over n_background mouse flows whose source address and port the field
engine draws at random. The heavy flows and their exact shares are known in advance
(heavy_rates()), so a sketch's top-k answer can be checked against them.

    trex> start -f sketch.py -m 1mpps --port 0 -t n_heavy=16,heavy_share=0.5,s=1.1

Field engine (background): a random source address in 10.0.0.0 + [0, n_background) and a
random source port in 1024..65535; IPv4 header checksum fixed, UDP checksum 0 (none).

The profile is one-directional: direction (the TRex port) does not change the traffic.

Tunables: n_heavy (1..1024, default 8), heavy_share (0..1, default 0.5), s (Zipf skew,
default 1.1), n_background (default 65536), size (default 60), pps (default 1e6).
"""
import ipaddress

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

try:
    from trex_stl_lib.api import (STLPktBuilder, STLScVmRaw, STLStream, STLTXCont, STLVmFixIpv4,
                                  STLVmFlowVar, STLVmWrFlowVar)
except ImportError:  # no TRex: build_packet() still works
    STLStream = None

HEAVY_SRC = "172.16.0.1"        # heavy flow k: 172.16.0.1 + k-1, sport 10000 + k-1
BACKGROUND_SRC = "10.0.0.0"
DST = "48.0.0.1"
DPORT = 53
MACS = ("02:00:00:00:00:01", "02:00:00:00:00:02")


def _check(n_heavy, heavy_share, s, n_background, size):
    if not 1 <= int(n_heavy) <= 1024:
        raise ValueError("n_heavy must be 1..1024, not %r" % (n_heavy,))
    if not 0 <= float(heavy_share) <= 1:
        raise ValueError("heavy_share must be in [0, 1], not %r" % (heavy_share,))
    if not 0 <= float(s) <= 10:
        raise ValueError("s must be in [0, 10], not %r" % (s,))
    if not 1 <= int(n_background) <= 1 << 24:
        raise ValueError("n_background must be 1..2**24, not %r" % (n_background,))
    if int(size) < 60 or int(size) > 9216:
        raise ValueError("size must be 60..9216 bytes (no FCS), not %r" % (size,))


def heavy_flow(k):
    """(src, dst, sport, dport, proto) of heavy flow k (1-based rank)."""
    return (str(ipaddress.IPv4Address(HEAVY_SRC) + (k - 1)), DST, 10000 + k - 1, DPORT, 17)


def heavy_rates(pps=1e6, n_heavy=8, heavy_share=0.5, s=1.1):
    """pps of heavy flows 1..n_heavy (Zipf weights) and of the background stream."""
    w = [k ** -float(s) for k in range(1, int(n_heavy) + 1)]
    h = sum(w)
    heavy = [float(pps) * float(heavy_share) * x / h for x in w]
    return heavy, float(pps) * (1 - float(heavy_share))


def build_packet(flow=None, size=60):
    """A frame of heavy flow `flow` (1-based rank) or, with flow=None, the background stream's
    template (source 10.0.0.0, sport 1024; the field engine varies both)."""
    if flow is None:
        src, dst, sport, dport = BACKGROUND_SRC, DST, 1024, DPORT
    else:
        src, dst, sport, dport, _p = heavy_flow(int(flow))
    pkt = (Ether(src=MACS[0], dst=MACS[1]) / IP(src=src, dst=dst, ttl=64, id=0)
           / UDP(sport=sport, dport=dport, chksum=0))
    pkt = pkt / Raw(bytes(int(size) - len(pkt)))
    return pkt.__class__(bytes(pkt))


class STLSketch(object):
    def get_streams(self, direction=0, n_heavy=8, heavy_share=0.5, s=1.1, n_background=65536,
                    size=60, pps=1e6, **kwargs):
        if STLStream is None:
            raise ImportError("trex_stl_lib is needed to make streams; build_packet() works without")
        _check(n_heavy, heavy_share, s, n_background, size)
        size, n_background = int(size), int(n_background)
        heavy, bg = heavy_rates(pps, n_heavy, heavy_share, s)
        streams = []
        for k, rate in enumerate(heavy, 1):
            if rate > 0:
                streams.append(STLStream(name="heavy_%d" % k,
                                         packet=STLPktBuilder(pkt=build_packet(k, size)),
                                         mode=STLTXCont(pps=rate)))
        if bg > 0:
            base = int(ipaddress.IPv4Address(BACKGROUND_SRC))
            vm = STLScVmRaw([
                STLVmFlowVar(name="src", min_value=base, max_value=base + n_background - 1,
                             size=4, op="random"),
                STLVmFlowVar(name="sport", min_value=1024, max_value=65535, size=2, op="random"),
                STLVmWrFlowVar(fv_name="src", pkt_offset=14 + 12),
                STLVmWrFlowVar(fv_name="sport", pkt_offset=34),
                STLVmFixIpv4(offset=14),
            ])
            streams.append(STLStream(name="background",
                                     packet=STLPktBuilder(pkt=build_packet(None, size), vm=vm),
                                     mode=STLTXCont(pps=bg)))
        return streams


def register():
    return STLSketch()
