"""Shared lab-rate helpers of the lab benchmarks (nf/bench/l2_switch.py, nf/bench/router.py):
live frames (traffic/livegen.py) from one host pinned to one CPU, counted by native-XDP
receivers on the others."""
from __future__ import annotations

import contextlib
import statistics
from collections.abc import Callable


def rate(lab, frames, *, tx: str = "h1", rx: str = "h2", sinks: tuple[str, ...] = (),
         n: int = 400_000, rounds: int = 3, warmup: int = 20_000,
         min_delivered: float | None = 1.0) -> float:
    """Median Mpps counted at `rx` over `rounds` runs of `n` frames (after a `warmup` run, which
    lets kernel paths resolve their neighbours). Every host in `sinks` also drops what it gets in
    native XDP, so a flooded copy costs the same everywhere (no trip up a host's stack).
    Raises AssertionError when a round delivers less than `min_delivered` of what it generated
    (1.0: exactly every frame; None: no check, for paths with a backlog that may drop)."""
    h = lab.host(tx)
    from traffic.livegen import LiveGen, RxCounter
    with contextlib.ExitStack() as es:
        rxs = {name: es.enter_context(RxCounter(lab.host(name).netns, lab.host(name).ifname))
               for name in dict.fromkeys((rx, *sinks))}
        gen = es.enter_context(LiveGen(h.netns, h.ifname, list(frames)))
        gen.run(warmup, cpu=0, rx=rxs[rx])
        res = [gen.run(n, cpu=0, rx=rxs[rx]) for _ in range(rounds)]
    if min_delivered is None:
        pass
    elif min_delivered >= 1.0:
        if not all(r.received == r.generated == n for r in res):
            raise AssertionError(f"frames lost on a lossless path: {[str(r) for r in res]}")
    else:
        bad = [str(r) for r in res if r.received < min_delivered * r.generated]
        if bad:
            raise AssertionError(f"under {min_delivered:.0%} delivered: {bad}")
    return statistics.median(r.mpps for r in res)


def interleaved(lab, cases: dict[str, tuple[Callable, list[bytes], float | None]], *, sinks=(),
                n: int = 400_000, rounds: int = 3, warmup: int = 20_000) -> dict[str, float]:
    """Median Mpps per case, the cases taking turns round by round (case A, B, C, A, B, C...),
    so drift in the machine's load spreads over every case instead of biasing the ratios.
    cases: name -> (setup, frames, min_delivered): `setup()` is a context manager that deploys
    the path under test and removes it on exit; min_delivered as in rate()."""
    got: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(rounds):
        for name, (setup, frames, min_delivered) in cases.items():
            with setup():
                got[name].append(rate(lab, frames, sinks=sinks, n=n, rounds=1, warmup=warmup,
                                      min_delivered=min_delivered))
    return {k: statistics.median(v) for k, v in got.items()}
