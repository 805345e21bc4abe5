"""TRex STL profile: traffic for the xdp-nf LPM router (nf/nfs/router.py).

UDP to n_dst destination addresses spread over distinct prefixes: destination i is
dst_base + i * stride (default stride 256: one address per /24, so n_dst routes of a table
are all hit). Port 0 sends towards 48.0.0.0 (fd01::), port 1 (direction=1) towards 16.0.0.0
(fd00::), the usual TRex client/server split. The Ethernet destination is the router port's
MAC (dut_mac), so the router takes the frames as its own; TTL 64.

    trex> start -f router.py -m 2mpps --port 0 1 -t n_dst=65536,ipv6=0,dut_mac=02:00:00:01:00:01

Field engine: IPv4 - the destination address is rewritten and the header checksum fixed
(STLVmFixIpv4; UDP checksum 0 = none). IPv6 - the low 32 bits of the destination are
rewritten and the UDP checksum is fixed by STLVmFixChecksumHw (IPv6 forbids a zero UDP sum).

Tunables: n_dst (default 4096), stride (default 256), size (default 60 for IPv4, 62 for IPv6),
ipv6 (0/1), dut_mac, src_mac, pps (default 1e6).
"""
import ipaddress

from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
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

DST_BASE = {(4, 0): "48.0.0.1", (4, 1): "16.0.0.1", (6, 0): "fd01::1:0:1", (6, 1): "fd00::1:0:1"}
SRC = {(4, 0): "16.0.0.1", (4, 1): "48.0.0.1", (6, 0): "fd00::1", (6, 1): "fd01::1"}
DUT_MAC = "02:00:00:01:00:01"
SRC_MAC = "02:00:00:00:00:01"


def _check(n_dst, stride, size, ipv6, direction=0):
    if int(n_dst) < 1 or int(stride) < 1:
        raise ValueError("n_dst and stride must be >= 1")
    first = int(ipaddress.ip_address(DST_BASE[(6 if ipv6 else 4, direction)])) & 0xFFFFFFFF
    if first + (int(n_dst) - 1) * int(stride) > 0xFFFFFFFF:
        raise ValueError("n_dst * stride runs past the 32 address bits the field engine rewrites")
    hdr = 14 + (40 if ipv6 else 20) + 8
    if int(size) < max(hdr, 60) or int(size) > 9216:
        raise ValueError("size must be %d..9216 bytes (no FCS), not %r" % (max(hdr, 60), size))


def default_size(ipv6=False):
    """60 bytes (64 on the wire) for IPv4; IPv6/UDP headers alone take 62."""
    return 62 if ipv6 else 60


def dst_address(direction=0, index=0, stride=256, ipv6=False):
    """Destination address i of a direction."""
    base = ipaddress.ip_address(DST_BASE[(6 if ipv6 else 4, direction)])
    return str(base + index * int(stride))


def build_packet(direction=0, index=0, size=None, ipv6=False, stride=256, dut_mac=DUT_MAC,
                 src_mac=SRC_MAC):
    """The frame to destination `index` from port `direction`, `size` bytes."""
    ipv6 = bool(int(ipv6))
    size = default_size(ipv6) if size is None else int(size)
    _check(index + 1, stride, size, ipv6, direction)
    v = 6 if ipv6 else 4
    dst = dst_address(direction, index, stride, ipv6)
    pkt = Ether(src=src_mac, dst=dut_mac)
    if ipv6:
        pkt = pkt / IPv6(src=SRC[(v, direction)], dst=dst, hlim=64) / UDP(sport=1025, dport=12)
    else:
        pkt = pkt / IP(src=SRC[(v, direction)], dst=dst, ttl=64, id=0) / UDP(sport=1025, dport=12,
                                                                             chksum=0)
    pkt = pkt / Raw(bytes(int(size) - len(pkt)))
    return pkt.__class__(bytes(pkt))


def offsets(ipv6=False):
    """(L3 offset, L4 offset, offset of the rewritten 32 destination bits)."""
    return (14, 54, 14 + 36) if ipv6 else (14, 34, 14 + 16)


class STLRouter(object):
    def get_streams(self, direction=0, n_dst=4096, stride=256, size=None, ipv6=0,
                    dut_mac=DUT_MAC, src_mac=SRC_MAC, pps=1e6, **kwargs):
        if STLStream is None:
            raise ImportError("trex_stl_lib is needed to make streams; build_packet() works without")
        ipv6 = bool(int(ipv6))
        n_dst, stride = int(n_dst), int(stride)
        size = default_size(ipv6) if size is None else int(size)
        _check(n_dst, stride, size, ipv6, direction)
        pkt = build_packet(direction, 0, size, ipv6, stride, dut_mac, src_mac)
        l3, l4, dst_off = offsets(ipv6)
        first = int(ipaddress.ip_address(dst_address(direction, 0, stride, ipv6))) & 0xFFFFFFFF
        ins = [STLVmFlowVar(name="dst", min_value=first, max_value=first + (n_dst - 1) * stride,
                            step=stride, size=4, op="inc"),
               STLVmWrFlowVar(fv_name="dst", pkt_offset=dst_off)]
        if ipv6:
            ins.append(_fix_l4(l3, l4, CTRexVmInsFixHwCs.L4_TYPE_UDP))
        else:
            ins.append(STLVmFixIpv4(offset=l3))
        return [STLStream(name="router_d%d%s" % (direction, "_v6" if ipv6 else ""),
                          packet=STLPktBuilder(pkt=pkt, vm=STLScVmRaw(ins)),
                          mode=STLTXCont(pps=float(pps)))]


def register():
    return STLRouter()
