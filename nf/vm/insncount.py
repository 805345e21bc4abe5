"""Guest instructions per packet of an XDP program, counted by our TCG plugin (runs in the guest).

Wall time under TCG is not a speed measure (design notes §6); instruction counts are exact and
repeatable. The guest must be booted with ``Vm(insncount=True)`` (plugin loaded, vCPU 1 isolated
with nohz_full/isolcpus/rcu_nocbs); then, inside it:

    from nf.vm import insncount
    r = insncount.per_packet(prog_fd, frame, n=20000)      # prog_fd: int or object with .fd
    r.insns_per_packet      # (count(test_run 2N) - count(test_run N)) / N, minus the empty prog
    r.raw_per_packet        # the same without subtracting the empty program
    r.top                   # [(symbol, insns per packet), ...] e.g. bpf_prog_..._xdp_base [bpf]

The measuring process pins itself to the isolated CPU; the plugin counts the instructions that
vCPU executes between two marker NOPs around one BPF_PROG_TEST_RUN syscall. Constant costs
(syscall entry, test_run set-up, the markers' own blocks) cancel in the 2N - N difference.
"""
from __future__ import annotations

import bisect
import contextlib
import ctypes
import gc
import mmap
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from nf.vm.runner import INSNCOUNT_ENV, ISOLATE_CMDLINE

MARK_START = bytes.fromhex("0f1f8001434e49")  # nopl 0x494e4301(%rax)
MARK_STOP = bytes.fromhex("0f1f8002434e49")   # nopl 0x494e4302(%rax)
MEASURE_CPU = 1
KERNEL_BASE = 0xFFFF800000000000

_NR_BPF = 321  # x86_64
_BPF_PROG_LOAD = 5
_BPF_PROG_TEST_RUN = 10
_BPF_PROG_TYPE_XDP = 6


class InsnCountError(RuntimeError):
    pass


def vm_options() -> dict:
    """Keyword arguments for nf.vm.Vm that a measuring boot needs."""
    return {"insncount": True, "isolate": True}


def available() -> bool:
    return bool(os.environ.get(INSNCOUNT_ENV)) and os.environ.get("NF_IN_GUEST") == "1"


# ---------------------------------------------------------------------------------------------
# markers

class _Markers:
    """Two tiny functions (marker NOP; ret) in an executable anonymous mapping."""

    def __init__(self):
        code = MARK_START + b"\xc3" + MARK_STOP + b"\xc3"
        self.mem = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        self.mem.write(code)
        base = ctypes.addressof(ctypes.c_char.from_buffer(self.mem))
        proto = ctypes.CFUNCTYPE(None)
        self.start = proto(base)
        self.stop = proto(base + len(MARK_START) + 1)


_markers: _Markers | None = None


def markers() -> _Markers:
    global _markers
    if _markers is None:
        _markers = _Markers()
    return _markers


@dataclass
class Region:
    insns: int
    tbs: int
    hist: dict[int, int]  # TB address -> instructions


def _out_path() -> Path:
    p = os.environ.get(INSNCOUNT_ENV)
    if not p:
        raise InsnCountError(f"${INSNCOUNT_ENV} is not set: boot the guest with "
                             "Vm(insncount=True) (python -m nf.vm run --insncount)")
    return Path(p)


def _read(path: Path) -> tuple[int, Region]:
    head: dict[str, int] = {}
    hist: dict[int, int] = {}
    with open(path) as f:
        for line in f:
            k, v = line.split()
            if k in ("seq", "vcpu", "insns", "tbs"):
                head[k] = int(v)
            else:
                hist[int(k, 16)] = int(v)
    return head["seq"], Region(head["insns"], head["tbs"], hist)


def count(fn, *args) -> Region:
    """Instructions the current (pinned) vCPU executes while fn(*args) runs."""
    out = _out_path()
    m = markers()
    before = _read(out)[0] if out.exists() else 0
    gc_was = gc.isenabled()
    gc.disable()  # a collection inside the region would add noise
    try:
        m.start()
        fn(*args)
        m.stop()
    finally:
        if gc_was:
            gc.enable()
    # The plugin writes the file inside the stop marker's callback, before the next guest
    # instruction; the /tmp share uses cache=none, so the guest sees it at once.
    for _ in range(50):
        if out.exists():
            seq, region = _read(out)
            if seq > before:
                return region
        time.sleep(0.01)
    raise InsnCountError("the insncount plugin wrote no result: is QEMU running with it, "
                         "and did the stop marker run on the same vCPU as the start?")


# ---------------------------------------------------------------------------------------------
# BPF syscalls (raw, so measuring needs nothing but a program fd)

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _TestAttr(ctypes.Structure):
    _fields_ = [("prog_fd", ctypes.c_uint32), ("retval", ctypes.c_uint32),
                ("data_size_in", ctypes.c_uint32), ("data_size_out", ctypes.c_uint32),
                ("data_in", ctypes.c_uint64), ("data_out", ctypes.c_uint64),
                ("repeat", ctypes.c_uint32), ("duration", ctypes.c_uint32),
                ("ctx_size_in", ctypes.c_uint32), ("ctx_size_out", ctypes.c_uint32),
                ("ctx_in", ctypes.c_uint64), ("ctx_out", ctypes.c_uint64),
                ("flags", ctypes.c_uint32), ("cpu", ctypes.c_uint32),
                ("batch_size", ctypes.c_uint32), ("_pad", ctypes.c_uint32)]


class _LoadAttr(ctypes.Structure):
    _fields_ = [("prog_type", ctypes.c_uint32), ("insn_cnt", ctypes.c_uint32),
                ("insns", ctypes.c_uint64), ("license", ctypes.c_uint64),
                ("log_level", ctypes.c_uint32), ("log_size", ctypes.c_uint32),
                ("log_buf", ctypes.c_uint64), ("kern_version", ctypes.c_uint32),
                ("prog_flags", ctypes.c_uint32), ("prog_name", ctypes.c_char * 16),
                ("prog_ifindex", ctypes.c_uint32), ("expected_attach_type", ctypes.c_uint32)]


def _bpf(cmd: int, attr: ctypes.Structure) -> int:
    r = _libc.syscall(_NR_BPF, cmd, ctypes.byref(attr), ctypes.sizeof(attr))
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"bpf({cmd}): {os.strerror(e)}")
    return r


def load_empty_xdp(action: int = 2) -> int:
    """Load `return action;` (XDP_PASS by default) as an XDP program named nf_empty; returns
    its fd. The baseline every count subtracts."""
    # r0 = action; exit
    insns = (ctypes.c_uint64 * 2)(0xB7 | (action << 32), 0x95)
    lic = ctypes.create_string_buffer(b"GPL")
    attr = _LoadAttr(prog_type=_BPF_PROG_TYPE_XDP, insn_cnt=2, insns=ctypes.addressof(insns),
                     license=ctypes.addressof(lic), prog_name=b"nf_empty")
    return _bpf(_BPF_PROG_LOAD, attr)


class _TestRun:
    """A prepared BPF_PROG_TEST_RUN call (buffers allocated once, outside the counted region)."""

    def __init__(self, prog_fd: int, data: bytes):
        self.data = ctypes.create_string_buffer(data, len(data))
        self.out = ctypes.create_string_buffer(len(data) + 4096)
        self.attr = _TestAttr()
        self.prog_fd = prog_fd
        self.size = len(data)

    def __call__(self, repeat: int) -> None:
        a = self.attr
        ctypes.memset(ctypes.addressof(a), 0, ctypes.sizeof(a))
        a.prog_fd, a.repeat = self.prog_fd, repeat
        a.data_in, a.data_size_in = ctypes.addressof(self.data), self.size
        a.data_out, a.data_size_out = ctypes.addressof(self.out), len(self.out)
        r = _libc.syscall(_NR_BPF, _BPF_PROG_TEST_RUN, ctypes.byref(a), ctypes.sizeof(a))
        if r < 0:
            e = ctypes.get_errno()
            raise OSError(e, f"BPF_PROG_TEST_RUN: {os.strerror(e)}")

    @property
    def retval(self) -> int:
        return self.attr.retval


# ---------------------------------------------------------------------------------------------
# symbols

class Symbols:
    """Guest /proc/kallsyms (kernel, modules, BPF JIT images) for histogram addresses."""

    def __init__(self):
        addrs, names = [], []
        with open("/proc/kallsyms") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3 or parts[1] in ("a", "A", "U"):
                    continue
                a = int(parts[0], 16)
                if a == 0:
                    continue
                name = parts[2] + (f" {parts[3]}" if len(parts) > 3 else "")
                addrs.append(a)
                names.append(name)
        order = sorted(range(len(addrs)), key=addrs.__getitem__)
        self.addrs = [addrs[i] for i in order]
        self.names = [names[i] for i in order]
        if not self.addrs:
            raise InsnCountError("/proc/kallsyms shows no addresses (kptr_restrict?)")

    def name(self, pc: int) -> str:
        if pc < KERNEL_BASE:
            return "[user]"
        i = bisect.bisect_right(self.addrs, pc) - 1
        return self.names[i] if i >= 0 else "[unknown]"


# ---------------------------------------------------------------------------------------------
# per-packet counts

@dataclass
class PerPacket:
    n: int
    raw_per_packet: float            # (C(2N) - C(N)) / N for the program
    empty_per_packet: float | None   # the same for the empty XDP program
    insns_per_packet: float          # raw - empty (raw when no baseline was taken)
    retval: int
    top: list[tuple[str, float]] = field(default_factory=list)  # per packet, by function
    samples: list[float] = field(default_factory=list)           # (C(2N)-C(N))/N per round
    wait_per_packet: list[float] = field(default_factory=list)   # busy-wait insns left out


def _pin() -> set[int]:
    before = os.sched_getaffinity(0)
    if MEASURE_CPU not in before and os.cpu_count() and os.cpu_count() > MEASURE_CPU:
        pass  # isolcpus removes CPU 1 from the default mask; pinning explicitly still works
    try:
        os.sched_setaffinity(0, {MEASURE_CPU})
    except OSError as e:
        raise InsnCountError(f"cannot pin to CPU {MEASURE_CPU}: {e} (boot with isolate=True, "
                             f"{ISOLATE_CMDLINE})") from e
    os.sched_yield()  # make sure we are running on the measuring CPU now
    return before


def _steer_irqs_away() -> None:
    """Route device interrupts to CPU 0 so they do not land in the counted region."""
    for p in [Path("/proc/irq/default_smp_affinity"), *Path("/proc/irq").glob("*/smp_affinity")]:
        try:
            p.write_text("1\n")
        except OSError:
            pass  # per-CPU and managed IRQs refuse; they are not routed to CPU 1 anyway


FAIR_SERVER = Path(f"/sys/kernel/debug/sched/fair_server/cpu{MEASURE_CPU}/runtime")


@contextlib.contextmanager
def _no_fair_server():
    """Switch off the fair-class deadline server on the measuring CPU for the measurement: it
    arms a replenish timer whenever 50 ms of runtime have passed since the task woke, which is
    wall time under TCG, and lands ~800 instructions in whichever region crosses that mark."""
    try:
        old = FAIR_SERVER.read_text().strip()
    except OSError:
        yield  # no debugfs or an older kernel without the server
        return
    try:
        FAIR_SERVER.write_text("0\n")
    except OSError:
        yield
        return
    try:
        yield
    finally:
        FAIR_SERVER.write_text(old + "\n")


def _diff_hist(a: dict[int, int], b: dict[int, int]) -> dict[int, int]:
    return {pc: b.get(pc, 0) - a.get(pc, 0) for pc in set(a) | set(b)}


# Busy-wait loops whose length depends on how fast the other vCPU answers (TCG threads on a
# shared host), not on the work measured: test_run adds the program to the XDP dispatcher and
# removes it again on every call, which text-pokes and waits for IPIs; idle time also lands on
# the CPU. Their instructions are reported apart and left out of the per-packet figure.
WAIT_RE = re.compile(r"^(smp_call_function_many_cond|smp_call_function_single|"
                     r"native_queued_spin_lock_slowpath|__pv_queued_spin_lock_slowpath|"
                     r"queued_(read|write)_lock_slowpath|csd_lock_wait|"
                     r"default_idle|default_idle_call|cpu_idle_poll|do_idle|"
                     r"cpuidle_\w+|poll_idle|pv_native_safe_halt|native_safe_halt|"
                     r"mwait_idle\w*|acpi_idle\w*)(\.\w+)?$")


class _Classifier:
    def __init__(self, syms: "Symbols"):
        self.syms, self.cache, self.names = syms, {}, {}

    def name(self, pc: int) -> str:
        nm = self.names.get(pc)
        if nm is None:
            nm = self.names[pc] = self.syms.name(pc)
        return nm

    def by_function(self, hist: dict[int, int]) -> dict[str, int]:
        """Counted (kernel, non-wait) instructions per function name."""
        out: dict[str, int] = {}
        for pc, v in hist.items():
            if _counted(pc, self):
                nm = self.name(pc)
                out[nm] = out.get(nm, 0) + v
        return out

    def is_wait(self, pc: int) -> bool:
        w = self.cache.get(pc)
        if w is None:
            w = self.cache[pc] = bool(WAIT_RE.match(self.name(pc).split(" ")[0]))
        return w


def _counted(pc: int, cls: _Classifier) -> bool:
    return pc >= KERNEL_BASE and not cls.is_wait(pc)


def _work(region: Region, cls: _Classifier) -> int:
    """Kernel instructions of a region minus busy-waits. User space is left out too: the
    measuring process's part is one syscall whatever N is, but Python's adaptive interpreter
    re-specialises its bytecode now and then and moves that count by thousands."""
    return sum(v for pc, v in region.hist.items() if _counted(pc, cls))


def _measure(run: _TestRun, n: int, rounds: int, cls: _Classifier):
    """Counts test_run(N) and test_run(2N) `rounds` times each. Noise (an interrupt, a tick's
    accounting, a reschedule) only ever adds instructions, and it lands in functions that have
    nothing to do with the packet path; so for every function the least count over the rounds
    is its clean count: per packet = sum over functions of (min C(2N) - min C(N)) / N.
    (Functions, not block addresses: TCG may cut the same code into blocks differently.)"""
    run(n)  # warm up: first-touch faults, TB translation, caches of the kernel path
    f1s, f2s, samples, waits = [], [], [], []
    for _ in range(rounds):
        c1 = count(run, n)
        c2 = count(run, 2 * n)
        w1, w2 = _work(c1, cls), _work(c2, cls)
        samples.append((w2 - w1) / n)
        waits.append(((c2.insns - w2) - (c1.insns - w1)) / n)
        f1s.append(cls.by_function(c1.hist))
        f2s.append(cls.by_function(c2.hist))
    fns = set().union(*f1s, *f2s)
    diff = {f: min(h.get(f, 0) for h in f2s) - min(h.get(f, 0) for h in f1s) for f in fns}
    return sum(diff.values()) / n, samples, waits, {f: v for f, v in diff.items() if v}


def per_packet(prog, data: bytes, *, n: int = 50000, rounds: int = 5,
               baseline: bool = True, top: int = 15, syms: Symbols | None = None) -> PerPacket:
    """Guest instructions per packet of `prog` (fd or object with .fd) on frame `data`.

    Each round counts test_run(N) and test_run(2N); see _measure for the estimator.
    With baseline=True the empty XDP program is measured the same way and subtracted.
    `syms`: a kallsyms snapshot taken after `prog` was loaded, shared by many counts (a read
    takes seconds under TCG); by default this call reads its own."""
    if n <= 0 or rounds <= 0:
        raise ValueError("n and rounds must be positive")
    fd = prog if isinstance(prog, int) else prog.fd
    with open("/proc/sys/kernel/bpf_stats_enabled") as f:
        if f.read().strip() != "0":
            raise InsnCountError("kernel.bpf_stats_enabled must be 0 while counting")
    _steer_irqs_away()
    cls = _Classifier(syms if syms is not None else Symbols())
    before = _pin()
    try:
        with _no_fair_server():
            run = _TestRun(fd, data)
            raw, samples, waits, hist = _measure(run, n, rounds, cls)
            retval = run.retval
            empty = None
            if baseline:
                efd = load_empty_xdp()
                try:
                    empty = _measure(_TestRun(efd, data), n, rounds, cls)[0]
                finally:
                    os.close(efd)
    finally:
        os.sched_setaffinity(0, before)
    # Names come from the snapshot taken before the measurement: the measured program was
    # loaded by then (the empty baseline, loaded meanwhile, is not in the profile).
    by_fn = {f: v for f, v in hist.items() if abs(v) >= 0.005 * n}  # drop noise residue
    ranked = sorted(by_fn.items(), key=lambda kv: -abs(kv[1]))[:top]
    return PerPacket(n=n, raw_per_packet=raw, empty_per_packet=empty,
                     insns_per_packet=raw - empty if empty is not None else raw,
                     retval=retval, top=[(k, v / n) for k, v in ranked], samples=samples,
                     wait_per_packet=waits)


def main() -> None:
    """python -m nf.vm.insncount [PINNED_PROG] — quick look from a measuring guest: counts a
    pinned XDP program (e.g. loaded with bpftool, minus the empty program) on a zero 64-byte
    frame, or the empty program alone; prints JSON."""
    import sys
    import json
    data = bytes(64)
    if len(sys.argv) > 1:
        fd = _obj_get(sys.argv[1])
    else:
        fd = load_empty_xdp()
    r = per_packet(fd, data, baseline=len(sys.argv) > 1)
    print(json.dumps(r.__dict__, indent=1))


class _ObjGetAttr(ctypes.Structure):
    _fields_ = [("pathname", ctypes.c_uint64), ("bpf_fd", ctypes.c_uint32),
                ("file_flags", ctypes.c_uint32), ("path_fd", ctypes.c_int32)]


def _obj_get(path: str) -> int:
    """fd of a pinned BPF object (BPF_OBJ_GET)."""
    p = ctypes.create_string_buffer(path.encode())
    return _bpf(7, _ObjGetAttr(pathname=ctypes.addressof(p)))


obj_get = _obj_get

if __name__ == "__main__":
    main()
