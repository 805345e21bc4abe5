"""Guest instruction counts for `nf bench` (nf/vm/insncount.py): one kallsyms snapshot per NF
and the empty program counted once per frame. Used by nf/bench/guest.py and the NF benchmark
modules' profiles (its own module: they and guest.py import it, not each other)."""
from __future__ import annotations

import contextlib
import os

N = 2000        # packets per test_run(N); test_run(2N) beside it
ROUNDS = 3
TOP = 10


class Counter:
    """insncount with one kallsyms snapshot per NF and the empty program counted once per frame.
    Counts run inside `with c.snapshot():` (taken after the programs are loaded); outside one,
    each count reads /proc/kallsyms itself."""

    def __init__(self):
        from nf.vm import insncount
        self.ic = insncount
        self.efd = insncount.load_empty_xdp()
        self.syms = None
        self._empty: dict[bytes, float] = {}

    @contextlib.contextmanager
    def snapshot(self):
        """Call after the NF's programs are loaded: their JIT images are named in the profile."""
        self.syms = self.ic.Symbols()
        try:
            yield
        finally:
            self.syms = None

    def _count(self, prog, frame: bytes, n: int, top: int):
        return self.ic.per_packet(prog, frame, n=n, rounds=ROUNDS, baseline=False, top=top,
                                  syms=self.syms)

    def empty(self, frame: bytes) -> float:
        if frame not in self._empty:
            self._empty[frame] = self._count(self.efd, frame, N, 0).raw_per_packet
        return self._empty[frame]

    def count(self, prog, frame: bytes, n: int = N, top: int = 0, expect: int | None = None):
        r = self._count(prog, frame, n, top)
        if expect is not None and r.retval != expect:
            raise RuntimeError(f"verdict {r.retval}, expected {expect}")
        prof = [(name, round(v, 1)) for name, v in r.top]
        return round(r.raw_per_packet - self.empty(frame), 1), prof

    def close(self):
        os.close(self.efd)
