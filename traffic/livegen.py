"""Live-frames traffic generator and receiver counter (ARCHITECTURE.md §6).

One BPF_PROG_TEST_RUN call with BPF_F_TEST_XDP_LIVE_FRAMES runs, on the calling CPU, the
generator program (xdp_progs/traffic/livegen.bpf.c: restore the frame head from a template,
redirect out of a lab interface), the NF on the far end of that veth, the kernel path, and the
receiving veth's NAPI, where a native counter (rxcount.bpf.c) counts what arrived. So Mpps here
measures CPU cost per frame on one pinned CPU:

    with Lab(LabSpec.switch(2)) as lab, RxCounter(lab.ns("h2"), "eth0") as rx, \\
            LiveGen(lab.ns("h1"), "eth0", [frame]) as gen:
        # ... an NF on the dut forwards p1 -> p2 ...
        res = gen.run(1_000_003, cpu=0, rx=rx)
        res.generated == res.received; res.mpps

The generator sends out of `ifname` in netns `netns` (its DEVMAP is filled from inside that netns,
where the ifindex means something); the frames arrive on the veth peer (a dut port), whose XDP
program or GRO satisfies the veth rule.
"""
from __future__ import annotations

import ctypes
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

from nf.bpf import BpfObject, XdpMode
from nf.net import netns as _netns
from nf.net.iface import resolve

LIVEGEN_TMPL_MAX = 128
XDP_DROP, XDP_PASS = 1, 2


class LivegenCfg(ctypes.Structure):
    __c_struct__ = "struct livegen_cfg"
    __bpf_object__ = "traffic/livegen"
    _fields_ = [("restore_len", ctypes.c_uint32), ("n_tmpl", ctypes.c_uint32)]


class LivegenTmpl(ctypes.Structure):
    __c_struct__ = "struct livegen_tmpl"
    __bpf_object__ = "traffic/livegen"
    _fields_ = [("w", ctypes.c_uint64 * (LIVEGEN_TMPL_MAX // 8))]


class LivegenStats(ctypes.Structure):
    __c_struct__ = "struct livegen_stats"
    __bpf_object__ = "traffic/livegen"
    _fields_ = [("runs", ctypes.c_uint64), ("redirected", ctypes.c_uint64),
                ("cursor", ctypes.c_uint64)]


class RxcountCfg(ctypes.Structure):
    __c_struct__ = "struct rxcount_cfg"
    __bpf_object__ = "traffic/rxcount"
    _fields_ = [("action", ctypes.c_uint32), ("pad", ctypes.c_uint32)]


class RxcountStats(ctypes.Structure):
    __c_struct__ = "struct rxcount_stats"
    __bpf_object__ = "traffic/rxcount"
    _fields_ = [("packets", ctypes.c_uint64), ("bytes", ctypes.c_uint64)]


class FwdCfg(ctypes.Structure):
    __c_struct__ = "struct fwd_cfg"
    __bpf_object__ = "traffic/fwd"
    _fields_ = [("dmac", ctypes.c_uint8 * 6), ("smac", ctypes.c_uint8 * 6)]


def _mac(s: str) -> bytes:
    b = bytes.fromhex(s.replace(":", ""))
    if len(b) != 6:
        raise ValueError(f"bad MAC {s!r}")
    return b


def _u32(i: int) -> bytes:
    return ctypes.c_uint32(i).value.to_bytes(4, "little")


def _bpf_stats_enabled() -> bool:
    try:
        with open("/proc/sys/kernel/bpf_stats_enabled") as f:
            return f.read().strip() != "0"
    except OSError:
        return False


class RxCounter:
    """rxcount attached natively to (netns, ifname): counts per CPU, then drops (or passes)."""

    def __init__(self, netns: str | None, ifname: str, action: str = "drop"):
        if action not in ("drop", "pass"):
            raise ValueError(f"action must be 'drop' or 'pass', not {action!r}")
        self.netns, self.ifname = netns, ifname
        self.ifindex = resolve(ifname, netns).ifindex
        self.obj = BpfObject.open_built("traffic/rxcount")
        try:
            self.obj.set_rodata("rxcount_cfg", RxcountCfg(XDP_DROP if action == "drop" else XDP_PASS, 0))
            self.obj.load()
            self.stats = self.obj.map("rxcount_stats").typed(ctypes.c_uint32, RxcountStats)
            with _netns.enter(netns):
                self.link = self.obj.program("xdp_rxcount").attach_xdp(self.ifindex, XdpMode.NATIVE)
        except BaseException:
            self.obj.close()
            raise

    def per_cpu(self) -> list[int]:
        return [v.packets for v in self.stats.lookup_percpu(0)]

    def count(self) -> int:
        return sum(self.per_cpu())

    def bytes(self) -> int:
        return sum(v.bytes for v in self.stats.lookup_percpu(0))

    def reset(self) -> None:
        n = len(self.stats.lookup_percpu(0))
        self.stats.update(0, [RxcountStats()] * n)

    def close(self) -> None:
        if getattr(self, "link", None) is not None:
            self.link.detach()
            self.link = None
        self.obj.close()

    def __enter__(self) -> "RxCounter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class LiveResult:
    repeat: int            # frames asked of the kernel
    generated: int         # frames the generator redirected (its per-CPU counter)
    received: int | None   # frames counted at the receiver during the run (None: no counter)
    wall_s: float          # wall time of the test_run call
    kernel_ns: int         # duration the kernel reported for the run
    cpu: int | None
    bpf_stats: bool = False  # kernel.bpf_stats_enabled was on: timings inflated, don't compare

    @property
    def mpps(self) -> float:
        """Frames counted at the receiver (or generated, without a counter) per wall second."""
        n = self.generated if self.received is None else self.received
        return n / self.wall_s / 1e6 if self.wall_s > 0 else 0.0

    @property
    def mpps_generated(self) -> float:
        return self.generated / self.wall_s / 1e6 if self.wall_s > 0 else 0.0

    def __str__(self) -> str:
        rx = "-" if self.received is None else f"{self.received}"
        warn = ", bpf_stats_enabled=1: inflated" if self.bpf_stats else ""
        return (f"{self.mpps:.2f} Mpps (generated {self.generated} of {self.repeat}, received {rx},"
                f" {self.wall_s * 1e3:.1f} ms wall, cpu {self.cpu}{warn})")


class LiveGen:
    """The generator: templates (bytes; equal length; the first is the frame test_run starts
    from) are restored per frame over `restore_len` bytes and cycled in order, then redirected
    out of `ifname` in `netns`.

    restore_len: bytes restored from the template per frame (default: min(frame, 128)); 0 turns
    restoring off (then an NF's rewrites accumulate round after round — only useful to show why
    restoring matters).
    """

    def __init__(self, netns: str | None, ifname: str, frames: Sequence[bytes],
                 restore_len: int | None = None):
        frames = [bytes(f) for f in frames]
        if not frames:
            raise ValueError("LiveGen needs at least one frame")
        if len({len(f) for f in frames}) != 1:
            raise ValueError("all template frames must have the same length (one test_run buffer)")
        flen = len(frames[0])
        if not 14 <= flen <= 3520:  # live frames: one page minus headroom and skb_shared_info
            raise ValueError(f"frame length {flen} outside 14..3520")
        if restore_len is None:
            restore_len = min(flen, LIVEGEN_TMPL_MAX)
        if not 0 <= restore_len <= min(flen, LIVEGEN_TMPL_MAX):
            raise ValueError(f"restore_len must be 0..{min(flen, LIVEGEN_TMPL_MAX)}")
        if restore_len == 0 and len(frames) > 1:
            raise ValueError("several templates need restore_len > 0")
        self.netns, self.ifname, self.frames, self.restore_len = netns, ifname, frames, restore_len
        self.ifindex = resolve(ifname, netns).ifindex
        self.obj = BpfObject.open_built("traffic/livegen")
        try:
            self.obj.set_rodata("livegen_cfg", LivegenCfg(restore_len, len(frames)))
            self.obj.map("livegen_tmpl").set_max_entries(len(frames))
            self.obj.load()
            tm = self.obj.map("livegen_tmpl").typed(ctypes.c_uint32, LivegenTmpl)
            for i, f in enumerate(frames):
                head = f[:LIVEGEN_TMPL_MAX].ljust(LIVEGEN_TMPL_MAX, b"\0")
                tm.update(i, LivegenTmpl.from_buffer_copy(head))
            self.stats = self.obj.map("livegen_stats").typed(ctypes.c_uint32, LivegenStats)
            # A DEVMAP checks the ifindex in the updating thread's netns: fill it from inside.
            with _netns.enter(netns):
                self.obj.map("livegen_tx").update(_u32(0), _u32(self.ifindex))
            self.prog = self.obj.program("xdp_livegen")
        except BaseException:
            self.obj.close()
            raise

    def _generated(self) -> int:
        return sum(v.redirected for v in self.stats.lookup_percpu(0))

    def run(self, n: int, cpu: int | None = 0, rx: RxCounter | None = None,
            batch_size: int = 64) -> LiveResult:
        """Send n frames in one live-frames test_run pinned to `cpu` (None: don't pin)."""
        if n < 1:
            raise ValueError("n must be >= 1")
        saved = os.sched_getaffinity(0)
        gen0 = self._generated()
        rx0 = rx.count() if rx is not None else None
        try:
            if cpu is not None:
                os.sched_setaffinity(0, {cpu})  # pid 0: the calling thread
            with _netns.enter(self.netns):
                t0 = time.perf_counter()
                r = self.prog.test_run_live(self.frames[0], repeat=n, ifindex=self.ifindex,
                                            batch_size=batch_size)
                wall = time.perf_counter() - t0
        finally:
            if cpu is not None:
                os.sched_setaffinity(0, saved)
        received = None if rx is None else rx.count() - rx0
        return LiveResult(n, self._generated() - gen0, received, wall, r.duration_ns, cpu,
                          _bpf_stats_enabled())

    def close(self) -> None:
        self.obj.close()

    def __enter__(self) -> "LiveGen":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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
    """The test NF of xdp_progs/traffic/fwd.bpf.c attached natively on a dut port: rewrite
    MACs, decrement TTL, redirect to another port of the same netns."""
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
    """The bare hash-lookup redirect of xdp_progs/traffic/l2fwd.bpf.c attached natively on a dut
    port: `fdb` maps destination MAC -> egress interface name (in the same netns); frames to
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


def flow_templates(flowset, limit: int | None = None, **build_kw) -> list[bytes]:
    """Frames for the first `limit` packets of a traffic.flows.FlowSet's sequence (all by
    default), for LiveGen to cycle through: a live run then carries that flow mix in that order.
    build_kw go to traffic.packets.build (smac/dmac/size/vlans...); frames must be equal-sized,
    so give `size`."""
    from traffic.packets import from_flow
    if "size" not in build_kw:
        raise ValueError("flow_templates needs size=... (LiveGen templates share one length)")
    seq = flowset.sequence if limit is None else flowset.sequence[:limit]
    cache: dict[int, bytes] = {}
    out = []
    for i in seq:
        if i not in cache:
            cache[i] = bytes(from_flow(flowset.flows[i], **build_kw))
        out.append(cache[i])
    return out


def measure(lab, tx_host: str, rx_host: str, frames: Sequence[bytes], n: int, cpu: int = 0,
            rx_action: str = "drop", **kw) -> LiveResult:
    """Convenience: counter on rx_host's interface, generator on tx_host's, one run."""
    tx, rxh = lab.host(tx_host), lab.host(rx_host)
    with RxCounter(rxh.netns, rxh.ifname, rx_action) as rx, \
            LiveGen(tx.netns, tx.ifname, frames, **kw) as gen:
        return gen.run(n, cpu=cpu, rx=rx)
