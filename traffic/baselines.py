"""Baseline NFs of the lab benchmarks, attached natively on a dut port: the devmap-redirect
forwarder (the no-work ceiling, xdp_progs/traffic/fwd.bpf.c) and the bare hash-lookup redirect
(xdp_progs/traffic/l2fwd.bpf.c)."""
from __future__ import annotations

import ctypes

from nf.bpf import BpfObject, XdpMode
from nf.net import netns as _netns
from nf.net.iface import resolve
from traffic.labgen import _u32


class FwdCfg(ctypes.Structure):
    __c_struct__ = "struct fwd_cfg"
    __bpf_object__ = "traffic/fwd"
    _fields_ = [("dmac", ctypes.c_uint8 * 6), ("smac", ctypes.c_uint8 * 6)]


def _mac(s: str) -> bytes:
    b = bytes.fromhex(s.replace(":", ""))
    if len(b) != 6:
        raise ValueError(f"bad MAC {s!r}")
    return b


class _DutNF:
    """A baseline NF attached natively on a dut port; subclasses load `obj` and set `link`."""
    obj: BpfObject
    link = None
    stats_map = ""

    def stats(self):
        from nf.datapath import read_stats
        return read_stats(self.obj, self.stats_map)

    def close(self) -> None:
        if self.link is not None:
            self.link.detach()
            self.link = None
        self.obj.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Fwd(_DutNF):
    """Rewrite MACs, decrement TTL, redirect to another port of the same netns."""
    stats_map = "fwd_stats"

    def __init__(self, netns: str | None, in_ifname: str, out_ifname: str, dmac: str, smac: str):
        self.netns = netns
        in_idx, out_idx = resolve(in_ifname, netns).ifindex, resolve(out_ifname, netns).ifindex
        self.obj = BpfObject.open_built("traffic/fwd")
        try:
            cfg = FwdCfg()
            cfg.dmac[:] = list(_mac(dmac))
            cfg.smac[:] = list(_mac(smac))
            self.obj.set_rodata("fwd_cfg", cfg)
            self.obj.load()
            with _netns.enter(netns):
                self.obj.map("fwd_port").update(_u32(0), _u32(out_idx))
                self.link = self.obj.program("xdp_fwd").attach_xdp(in_idx, XdpMode.NATIVE)
        except BaseException:
            self.obj.close()
            raise


L2FWD_PORTS = 8


class L2Fwd(_DutNF):
    """`fdb` maps destination MAC -> egress interface name (in the same netns); frames to
    other MACs are dropped."""
    stats_map = "l2fwd_stats"

    def __init__(self, netns: str | None, in_ifname: str, fdb: dict[str, str]):
        outs = list(dict.fromkeys(fdb.values()))
        if len(outs) > L2FWD_PORTS:
            raise ValueError(f"l2fwd serves at most {L2FWD_PORTS} egress ports, not {len(outs)}")
        in_idx = resolve(in_ifname, netns).ifindex
        self.obj = BpfObject.open_built("traffic/l2fwd")
        try:
            self.obj.load()
            with _netns.enter(netns):
                ports = self.obj.map("l2fwd_ports")
                for slot, name in enumerate(outs):
                    ports.update(_u32(slot), _u32(resolve(name, netns).ifindex))
                table = self.obj.map("l2fwd_fdb")
                for mac, name in fdb.items():
                    table.update(_mac(mac).ljust(8, b"\0"), _u32(outs.index(name)))
                self.link = self.obj.program("xdp_l2fwd").attach_xdp(in_idx, XdpMode.NATIVE)
        except BaseException:
            self.obj.close()
            raise
