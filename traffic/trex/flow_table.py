"""TRex STL profile: traffic for the xdp-nf cuckoo flow table.

Exactly n_flows distinct 5-tuples, sent round robin: flow i has source address
src_base + i (16.0.0.1 + i -> 48.0.0.1 from port 0, 48.0.0.1 + i -> 16.0.0.1 from port 1),
fixed ports and protocol, so one pass of n_flows packets touches every flow once (insert), later passes look them up.
Pick n_flows against the table's capacity to set its load (25 % .. 95 %).

    trex> start -f flow_table.py -m 5mpps --port 0 -t n_flows=1000000,proto=udp

Field engine: one 4-byte variable written into the source address; IPv4 header checksum fixed
by STLVmFixIpv4; UDP checksum 0 (none), TCP checksum fixed by STLVmFixChecksumHw.

Tunables: n_flows (1..2**24, default 65536), proto (udp|tcp), size (default 60), pps.
"""
import ipaddress

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

try:
    from trex_stl_lib.api import (STLPktBuilder, STLScVmRaw, STLStream, STLTXCont,
                                  STLVmFixChecksumHw, STLVmFixIpv4, STLVmFlowVar, STLVmWrFlowVar)
    from trex_stl_lib.trex_stl_packet_builder_scapy import CTRexVmInsFixHwCs
except ImportError:  # no TRex: build_packet() still works
    STLStream = None


def _fix_l4(l3, l4, l4_type):
    """STLVmFixChecksumHw by numeric offsets. Its compile() takes the L2 length only from a
    layer *name* and leaves it 0 for a number (then telling the NIC "L3 starts at 0"), so the
    L2 length is set here explicitly; names need TRex's scapy fork (see README.md)."""
    ins = STLVmFixChecksumHw(l3_offset=l3, l4_offset=l4, l4_type=l4_type)
    ins.l2_len = l3
    return ins

SRC_BASE = {0: "16.0.0.1", 1: "48.0.0.1"}
DST = {0: "48.0.0.1", 1: "16.0.0.1"}
MACS = ("02:00:00:00:00:01", "02:00:00:00:00:02")
SPORT, DPORT = 1025, 80
MAX_FLOWS = 1 << 24


def _check(n_flows, proto, size):
    if not 1 <= int(n_flows) <= MAX_FLOWS:
        raise ValueError("n_flows must be 1..%d, not %r" % (MAX_FLOWS, n_flows))
    if proto not in ("udp", "tcp"):
        raise ValueError("proto must be udp or tcp, not %r" % (proto,))
    hdr = 14 + 20 + (8 if proto == "udp" else 20)
    if int(size) < max(hdr, 60) or int(size) > 9216:
        raise ValueError("size must be %d..9216 bytes (no FCS), not %r" % (max(hdr, 60), size))


def flow_tuple(direction=0, index=0, proto="udp"):
    """(src, dst, sport, dport, ip proto) of flow `index`."""
    src = str(ipaddress.IPv4Address(SRC_BASE[direction]) + index)
    return (src, DST[direction], SPORT, DPORT, 17 if proto == "udp" else 6)


def build_packet(direction=0, index=0, size=60, proto="udp"):
    _check(index + 1, proto, size)
    src, dst, sport, dport, _p = flow_tuple(direction, index, proto)
    smac, dmac = MACS if direction == 0 else MACS[::-1]
    pkt = Ether(src=smac, dst=dmac) / IP(src=src, dst=dst, ttl=64, id=0)
    if proto == "udp":
        pkt = pkt / UDP(sport=sport, dport=dport, chksum=0)
    else:
        pkt = pkt / TCP(sport=sport, dport=dport, flags="A", seq=1, ack=1, window=8192)
    pkt = pkt / Raw(bytes(int(size) - len(pkt)))
    return pkt.__class__(bytes(pkt))


class STLFlowTable(object):
    def get_streams(self, direction=0, n_flows=65536, proto="udp", size=60, pps=1e6, **kwargs):
        if STLStream is None:
            raise ImportError("trex_stl_lib is needed to make streams; build_packet() works without")
        n_flows, size = int(n_flows), int(size)
        _check(n_flows, proto, size)
        pkt = build_packet(direction, 0, size, proto)
        base = int(ipaddress.IPv4Address(SRC_BASE[direction]))
        ins = [STLVmFlowVar(name="flow", min_value=base, max_value=base + n_flows - 1, size=4,
                            op="inc"),
               STLVmWrFlowVar(fv_name="flow", pkt_offset=14 + 12)]
        if proto == "udp":
            ins.append(STLVmFixIpv4(offset=14))
        else:
            ins.append(_fix_l4(14, 34, CTRexVmInsFixHwCs.L4_TYPE_TCP))
        return [STLStream(name="flow_table_d%d" % direction,
                          packet=STLPktBuilder(pkt=pkt, vm=STLScVmRaw(ins)),
                          mode=STLTXCont(pps=float(pps)))]


def register():
    return STLFlowTable()
