"""TRex STL profile: traffic for the xdp-nf L2 learning switch (nf/nfs/l2_switch.py).

Port 0 sends from n_macs source MACs 02:00:00:00:HH:LL to n_macs destination MACs
02:00:00:01:HH:LL (pair i talks to pair i); port 1 (direction=1) sends the reverse, so once both
ports ran every destination is learned and the switch forwards instead of flooding.
The field engine rewrites the low 16 bits of both MACs from one variable.

    trex> start -f l2_switch.py -m 1mpps --port 0 1 -t n_macs=4096,size=60,vlan=10

Tunables: n_macs (1..65536, default 1024), size (frame bytes without FCS, default 60),
vlan (802.1Q VID, default none), pps (default 1e6, scaled by -m).

build_packet() is plain scapy, so the same frames can be built without TRex (tests, pcaps).
"""
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw

try:
    from trex_stl_lib.api import (STLPktBuilder, STLScVmRaw, STLStream, STLTXCont, STLVmFlowVar,
                                  STLVmWrFlowVar)
except ImportError:  # no TRex: build_packet() still works
    STLStream = None

MAC_A = "02:00:00:00:00:00"   # + index in the low 16 bits: port 0's side
MAC_B = "02:00:00:01:00:00"   # port 1's side
IP_A, IP_B = "16.0.0.1", "48.0.0.1"


def _mac(base, i):
    parts = base.split(":")
    parts[4], parts[5] = "%02x" % ((i >> 8) & 0xFF), "%02x" % (i & 0xFF)
    return ":".join(parts)


def _check(n_macs, size, vlan):
    if not 1 <= int(n_macs) <= 65536:
        raise ValueError("n_macs must be 1..65536, not %r" % (n_macs,))
    hdr = 14 + (4 if vlan is not None else 0) + 28
    if int(size) < max(hdr, 60) or int(size) > 9216:
        raise ValueError("size must be %d..9216 bytes (no FCS), not %r" % (max(hdr, 60), size))
    if vlan is not None and not 0 <= int(vlan) < 4096:
        raise ValueError("vlan must be 0..4095, not %r" % (vlan,))


def build_packet(direction=0, index=0, size=60, vlan=None):
    """The frame of MAC pair `index` sent by port `direction` (0 or 1), `size` bytes."""
    _check(index + 1, size, vlan)
    a, b = _mac(MAC_A, index), _mac(MAC_B, index)
    src, dst, sip, dip = (a, b, IP_A, IP_B) if direction == 0 else (b, a, IP_B, IP_A)
    pkt = Ether(src=src, dst=dst)
    if vlan is not None:
        pkt = pkt / Dot1Q(vlan=int(vlan))
    pkt = pkt / IP(src=sip, dst=dip, ttl=64, id=0) / UDP(sport=1025, dport=12, chksum=0)
    pkt = pkt / Raw(bytes(int(size) - len(pkt)))
    return pkt.__class__(bytes(pkt))


def mac_offsets():
    """Offsets of the low 16 bits of the destination and source MAC."""
    return 4, 10


class STLL2Switch(object):
    def get_streams(self, direction=0, n_macs=1024, size=60, vlan=None, pps=1e6, **kwargs):
        if STLStream is None:
            raise ImportError("trex_stl_lib is needed to make streams; build_packet() works without")
        n_macs, size = int(n_macs), int(size)
        vlan = None if vlan in (None, "", "none") else int(vlan)
        _check(n_macs, size, vlan)
        dst_off, src_off = mac_offsets()
        vm = STLScVmRaw([
            STLVmFlowVar(name="mac", min_value=0, max_value=n_macs - 1, size=2, op="inc"),
            STLVmWrFlowVar(fv_name="mac", pkt_offset=src_off),
            STLVmWrFlowVar(fv_name="mac", pkt_offset=dst_off),
        ])
        pkt = build_packet(direction, 0, size, vlan)
        return [STLStream(name="l2_switch_d%d" % direction,
                          packet=STLPktBuilder(pkt=pkt, vm=vm),
                          mode=STLTXCont(pps=float(pps)))]


def register():
    return STLL2Switch()
