"""Lab traffic at rate: the generators, which of them this kernel permits, the receiver counter.

A generator sends frames out of a lab interface from inside the kernel, pinned to one CPU per
sending thread; the far end of that veth (a dut port) runs the NF, and a native XDP counter
(RxCounter, xdp_progs/traffic/rxcount.bpf.c) on the receiving host counts what arrived. The
whole path — generator, NF, kernel path, the receiving veth's NAPI — runs on the sending CPU, so
Mpps measures CPU cost per frame (ARCHITECTURE.md §6).

Generators, in order of preference (both share xdp_progs/traffic/gen.h):

    live   traffic/livegen.py  BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES: an XDP program
                               redirects each frame out of the interface. Cheapest; some kernel
                               builds refuse the flag with EPERM even to root.
    tc     traffic/tcgen.py    plain BPF_PROG_TEST_RUN of a tc program that bpf_clone_redirect()s
                               the test skb out of the interface: permitted wherever test_run is.

Chosen by measurement on this machine kind (generator -> XDP_DROP on the dut port, 64 B, one
CPU; traffic/NOTES.md): tc clone-redirect 422 ns/frame, AF_XDP TX in copy mode (libxdp) 508,
AF_PACKET sendmmsg 636, trafgen (TX_RING + qdisc bypass) 736, a C TX_RING + qdisc-bypass
sender 765. `probe(name)` tries each once per process; `pick(None)` is the first permitted.

    with RxCounter(lab.ns("h2"), "eth0") as rx, \\
            open_generator(lab.ns("h1"), "eth0", [frame]) as gen:
        res = gen.run(1_000_003, cpu=0, rx=rx)          # one CPU
        res = gen.run_cpus(500_000, (0, 1), rx=rx)       # both CPUs at once, per-CPU templates
        res.generated == res.received; res.mpps; res.generator
"""
from __future__ import annotations

import ctypes
import functools
import importlib
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from nf.bpf import BpfObject, XdpMode
from nf.bpf.errors import BpfError
from nf.net import netns as _netns
from nf.net.iface import resolve

GEN_TMPL_MAX = 128
XDP_DROP, XDP_PASS = 1, 2

# name -> (module, class): imported on first use, so the registry needs neither module.
GENERATORS: dict[str, tuple[str, str]] = {
    "live": ("traffic.livegen", "LiveGen"),
    "tc": ("traffic.tcgen", "TcGen"),
}


class GenCfg(ctypes.Structure):
    __c_struct__ = "struct gen_cfg"
    __bpf_object__ = "traffic/tcgen"
    _fields_ = [("restore_len", ctypes.c_uint32), ("n_tmpl", ctypes.c_uint32),
                ("n_slots", ctypes.c_uint32), ("ifindex", ctypes.c_uint32)]


class GenTmpl(ctypes.Structure):
    __c_struct__ = "struct gen_tmpl"
    __bpf_object__ = "traffic/tcgen"
    _fields_ = [("w", ctypes.c_uint64 * (GEN_TMPL_MAX // 8))]


class GenStats(ctypes.Structure):
    __c_struct__ = "struct gen_stats"
    __bpf_object__ = "traffic/tcgen"
    _fields_ = [("runs", ctypes.c_uint64), ("sent", ctypes.c_uint64),
                ("cursor", ctypes.c_uint64), ("error", ctypes.c_int64)]


class RxcountCfg(ctypes.Structure):
    __c_struct__ = "struct rxcount_cfg"
    __bpf_object__ = "traffic/rxcount"
    _fields_ = [("action", ctypes.c_uint32), ("pad", ctypes.c_uint32)]


class RxcountStats(ctypes.Structure):
    __c_struct__ = "struct rxcount_stats"
    __bpf_object__ = "traffic/rxcount"
    _fields_ = [("packets", ctypes.c_uint64), ("bytes", ctypes.c_uint64)]


# ---- which generators this kernel permits ------------------------------------------------------

class GeneratorUnavailable(RuntimeError):
    """A generator was named that is unknown or that this kernel refuses; the message lists the
    usable ones."""


@dataclass(frozen=True)
class Probe:
    name: str
    ok: bool
    why: str        # "permitted", or what the kernel refused


def _cls(name: str) -> type["Generator"]:
    mod, cls = GENERATORS[name]
    return getattr(importlib.import_module(mod), cls)


@functools.cache
def probe(name: str) -> Probe:
    """Once per process: does this kernel let `name` send a frame? (tries one frame, in the
    calling thread's netns, onto nothing that any test or NF sees)."""
    if name not in GENERATORS:
        raise GeneratorUnavailable(_listing(f"unknown traffic generator {name!r}"))
    try:
        why = _cls(name).probe()
    except BpfError as e:
        return Probe(name, False, f"{e.message}: {e.errno_name}" + (f" ({e.hint})" if e.hint else ""))
    return Probe(name, why is None, why or "permitted")


def probes() -> list[Probe]:
    return [probe(n) for n in GENERATORS]


def available() -> list[str]:
    return [p.name for p in probes() if p.ok]


def _listing(head: str) -> str:
    lines = [head + "; traffic generators:"]
    for n in GENERATORS:
        p = probe(n)
        lines.append(f"  {n}: {'available' if p.ok else 'unavailable — ' + p.why}")
    return "\n".join(lines)


def pick(name: str | None = None) -> str:
    """The generator to use: `name` if this kernel permits it, else (name None) the first
    permitted one in order of preference. Raises GeneratorUnavailable with the listing."""
    if name is not None:
        if name not in GENERATORS:
            raise GeneratorUnavailable(_listing(f"unknown traffic generator {name!r}"))
        if not probe(name).ok:
            raise GeneratorUnavailable(_listing(f"traffic generator {name!r} is unavailable here"))
        return name
    for n in GENERATORS:
        if probe(n).ok:
            return n
    raise GeneratorUnavailable(_listing("no traffic generator is usable on this kernel"))


def open_generator(netns: str | None, ifname: str, frames, *, generator: str | None = None,
                   restore_len: int | None = None) -> "Generator":
    """A generator of kind `generator` (default: pick()) sending `frames` out of `ifname`."""
    return _cls(pick(generator))(netns, ifname, frames, restore_len=restore_len)


# ---- the receiver ------------------------------------------------------------------------------

def _u32(i: int) -> bytes:
    return ctypes.c_uint32(i).value.to_bytes(4, "little")


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


# ---- the generators ----------------------------------------------------------------------------

def _bpf_stats_enabled() -> bool:
    try:
        with open("/proc/sys/kernel/bpf_stats_enabled") as f:
            return f.read().strip() != "0"
    except OSError:
        return False


@dataclass
class LabResult:
    generator: str                # "live" | "tc"
    repeat: int                   # frames asked of the kernel, per sending CPU
    cpus: tuple[int | None, ...]  # the sending CPUs (None: unpinned)
    generated: int                # frames the generator sent (its per-CPU counters), all CPUs
    received: int | None          # frames counted at the receiver during the run (None: no counter)
    wall_s: float                 # from the common start to the last sender's end
    kernel_ns: int                # the longest per-run duration the kernel reported
    bpf_stats: bool = False       # kernel.bpf_stats_enabled was on: timings inflated
    received_per_cpu: list[int] = field(default_factory=list)

    @property
    def cpu(self) -> int | None:
        return self.cpus[0] if len(self.cpus) == 1 else None

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
        cpus = ",".join("-" if c is None else str(c) for c in self.cpus)
        return (f"{self.mpps:.2f} Mpps ({self.generator}: generated {self.generated} of "
                f"{self.repeat * len(self.cpus)}, received {rx}, {self.wall_s * 1e3:.1f} ms wall, "
                f"cpu {cpus}{warn})")


def _slots(frames) -> list[list[bytes]]:
    """frames: one sequence (every CPU sends it) or a sequence of sequences (CPU c sends set
    c % len). Each set cycles in order; every frame has the same length."""
    frames = list(frames)
    if frames and not isinstance(frames[0], (bytes, bytearray, memoryview)):
        sets = [[bytes(f) for f in s] for s in frames]
    else:
        sets = [[bytes(f) for f in frames]]
    if not sets or not all(sets):
        raise ValueError("a generator needs at least one frame (per CPU set)")
    if len({len(s) for s in sets}) != 1:
        raise ValueError("every CPU's frame set needs the same number of frames")
    if len({len(f) for s in sets for f in s}) != 1:
        raise ValueError("all template frames must have the same length (one test_run buffer)")
    return sets


class Generator:
    """Common part of the generators: templates (see gen.h), the sending threads, the result.
    Subclasses set NAME, OBJECT, PROGRAM, MAX_FRAME and implement _send() (one test_run of n
    frames in the calling thread) and probe()."""
    NAME = ""
    OBJECT = ""
    PROGRAM = ""
    MAX_FRAME = 3520

    def __init__(self, netns: str | None, ifname: str, frames, restore_len: int | None = None):
        sets = _slots(frames)
        flen = len(sets[0][0])
        if not 14 <= flen <= self.MAX_FRAME:
            raise ValueError(f"frame length {flen} outside 14..{self.MAX_FRAME}")
        if restore_len is None:
            restore_len = min(flen, GEN_TMPL_MAX)
        if not 0 <= restore_len <= min(flen, GEN_TMPL_MAX):
            raise ValueError(f"restore_len must be 0..{min(flen, GEN_TMPL_MAX)}")
        if restore_len == 0 and (len(sets[0]) > 1 or len(sets) > 1):
            raise ValueError("several templates need restore_len > 0")
        self.netns, self.ifname, self.sets, self.restore_len = netns, ifname, sets, restore_len
        self.frames = sets[0]
        self.ifindex = resolve(ifname, netns).ifindex
        self.obj = BpfObject.open_built(self.OBJECT)
        try:
            n_tmpl = len(sets[0])
            self.obj.set_rodata("gen_cfg", GenCfg(restore_len, n_tmpl, len(sets), self.ifindex))
            self.obj.map("gen_tmpl").set_max_entries(len(sets) * n_tmpl)
            self.obj.load()
            tm = self.obj.map("gen_tmpl").typed(ctypes.c_uint32, GenTmpl)
            for s, fs in enumerate(sets):
                for i, f in enumerate(fs):
                    head = f[:GEN_TMPL_MAX].ljust(GEN_TMPL_MAX, b"\0")
                    tm.update(s * n_tmpl + i, GenTmpl.from_buffer_copy(head))
            self.stats = self.obj.map("gen_stats").typed(ctypes.c_uint32, GenStats)
            self._loaded()
            self.prog = self.obj.program(self.PROGRAM)
        except BaseException:
            self.obj.close()
            raise

    # ---- subclass hooks
    def _loaded(self) -> None:
        """After load, before the first run (in the constructor's thread)."""

    def _send(self, n: int, frame: bytes, batch_size: int) -> int:
        """n frames in one test_run, in the calling thread (already in the netns and pinned);
        returns the kernel-reported duration."""
        raise NotImplementedError

    @classmethod
    def probe(cls) -> str | None:
        """None when this kernel lets the generator send; else why not (or raise BpfError)."""
        raise NotImplementedError

    # ---- running
    def _sent(self) -> int:
        return sum(v.sent for v in self.stats.lookup_percpu(0))

    def last_error(self) -> int:
        """The last nonzero redirect result on any CPU (a -errno), 0 if none."""
        return next((v.error for v in self.stats.lookup_percpu(0) if v.error), 0)

    def run(self, n: int, cpu: int | None = 0, rx: RxCounter | None = None,
            batch_size: int = 64) -> LabResult:
        """Send n frames in one test_run pinned to `cpu` (None: don't pin)."""
        return self.run_cpus(n, (cpu,), rx, batch_size)

    def run_cpus(self, n: int, cpus: Sequence[int | None], rx: RxCounter | None = None,
                 batch_size: int = 64) -> LabResult:
        """n frames from each CPU of `cpus` at once (one pinned thread per CPU, released
        together); CPU c sends its frame set (c % sets)."""
        if n < 1:
            raise ValueError("n must be >= 1")
        cpus = tuple(cpus)
        if not cpus or len(set(cpus)) != len(cpus):
            raise ValueError(f"cpus must be distinct, got {cpus}")
        gen0 = self._sent()
        rx0 = rx.per_cpu() if rx is not None else None
        start = threading.Barrier(len(cpus) + 1)
        ends: dict[int, float] = {}
        durs: dict[int, int] = {}
        errs: list[BaseException] = []

        def sender(i: int, cpu: int | None) -> None:
            try:
                if cpu is not None:
                    os.sched_setaffinity(0, {cpu})   # pid 0: this thread only
                frame = self.sets[(cpu or 0) % len(self.sets)][0]
                with _netns.enter(self.netns):
                    start.wait()
                    durs[i] = self._send(n, frame, batch_size)
                    ends[i] = time.perf_counter()
            except BaseException as e:  # noqa: BLE001  (re-raised in the caller)
                errs.append(e)
                start.abort()

        threads = [threading.Thread(target=sender, args=(i, c), daemon=True)
                   for i, c in enumerate(cpus)]
        for t in threads:
            t.start()
        try:
            start.wait()
        except threading.BrokenBarrierError:
            pass
        t0 = time.perf_counter()
        for t in threads:
            t.join()
        if errs:
            raise errs[0]
        wall = max(ends.values()) - t0
        rxd = None if rx is None else [a - b for a, b in zip(rx.per_cpu(), rx0)]
        return LabResult(self.NAME, n, cpus, self._sent() - gen0,
                         None if rxd is None else sum(rxd), wall, max(durs.values()),
                         _bpf_stats_enabled(), rxd or [])

    def close(self) -> None:
        self.obj.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---- helpers -----------------------------------------------------------------------------------

def flow_templates(flowset, limit: int | None = None, **build_kw) -> list[bytes]:
    """Frames for the first `limit` packets of a traffic.flows.FlowSet's sequence (all by
    default), for a generator to cycle through: a run then carries that flow mix in that order.
    build_kw go to traffic.packets.build (smac/dmac/size/vlans...); frames must be equal-sized,
    so give `size`."""
    from traffic.packets import from_flow
    if "size" not in build_kw:
        raise ValueError("flow_templates needs size=... (generator templates share one length)")
    seq = flowset.sequence if limit is None else flowset.sequence[:limit]
    cache: dict[int, bytes] = {}
    out = []
    for i in seq:
        if i not in cache:
            cache[i] = bytes(from_flow(flowset.flows[i], **build_kw))
        out.append(cache[i])
    return out


def measure(lab, tx_host: str, rx_host: str, frames, n: int, cpu: int = 0,
            rx_action: str = "drop", generator: str | None = None, **kw) -> LabResult:
    """Convenience: counter on rx_host's interface, generator on tx_host's, one run."""
    tx, rxh = lab.host(tx_host), lab.host(rx_host)
    with RxCounter(rxh.netns, rxh.ifname, rx_action) as rx, \
            open_generator(tx.netns, tx.ifname, frames, generator=generator, **kw) as gen:
        return gen.run(n, cpu=cpu, rx=rx)
