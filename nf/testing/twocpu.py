"""Both CPUs sending at once into an NF on a lab (the 2-CPU exactness tests of every NF), and
the caller kept on one CPU (per-CPU state sees all of its test_run frames).

    with one_cpu(): ...                        # the lowest CPU this process may run on

    cpus = two_cpus()                          # skips (or fails under CI=true) without two CPUs
    res = send_from_both(lab, [frames_cpu0, frames_cpu1], rounds=20)
    # every template of each CPU's list went out `rounds` times, both CPUs at once

The generator is the first this kernel permits (traffic/labgen.py); the lab needs `queues=2`
so each CPU feeds its own queue and NAPI (the NF then really runs on both CPUs at once)."""
from __future__ import annotations

import contextlib
import os


@contextlib.contextmanager
def one_cpu():
    """The caller on one CPU: per-CPU maps (a sketch's banks and top tables, a switch's learn
    memo) see every frame it runs."""
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(saved)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, saved)


def two_cpus() -> tuple[int, int]:
    from nf.testing.tiers import require
    cpus = sorted(os.sched_getaffinity(0))
    require(len(cpus) >= 2, "needs two CPUs")
    return cpus[0], cpus[1]


def send_from_both(lab, sets: list[list[bytes]], rounds: int, tx: str = "h1", rx=None):
    """Each CPU sends its template list `rounds` times over, both at once; returns the
    LabResult after checking that each CPU sent all of its frames and that both CPUs' share was
    processed on that CPU (when `rx`, an RxCounter, is given)."""
    from traffic.labgen import open_generator
    if len({len(s) for s in sets}) != 1:
        raise ValueError("both CPUs need the same number of templates")
    h = lab.host(tx)
    cpus = two_cpus()
    n = rounds * len(sets[0])
    with open_generator(h.netns, h.ifname, sets) as gen:
        res = gen.run_cpus(n, cpus, rx=rx)
    if res.generated != 2 * n:
        raise AssertionError(f"generator sent {res.generated} of {2 * n}: {res}")
    if rx is not None and [res.received_per_cpu[c] for c in cpus] != [n, n]:
        raise AssertionError(f"not every frame arrived on its sending CPU: {res}")
    return res
