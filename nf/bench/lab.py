"""The lab rate of every NF (nf/bench/<nf>.py defines its cases; suite.py turns them into rows).

One lab, one generator (traffic/labgen.py: live frames where the kernel permits them, else the
tc clone-redirect generator), senders pinned to CPUs, native-XDP receivers counting. Every case
runs in turns, round by round (case A, B, C, A, B, C...), so drift in the machine's load spreads
over every case instead of biasing the ratios. Two cases are always there:

- DROP: generator -> XDP_DROP on the dut port (rxcount): the generator's own cost per frame;
- CEILING: the no-work forwarder (traffic/fwd.bpf.c: MACs, TTL, devmap redirect).

An NF's cost per frame net of the generator is 1/Mpps - 1/Mpps(DROP) (ns, one CPU), so rows
survive a slow generator: the NF is compared with the ceiling and the Linux baselines on what
each adds to the same generator.
"""
from __future__ import annotations

import contextlib
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

DROP = "generator -> XDP_DROP on the dut port"
CEILING = "ceiling: devmap redirect (traffic/fwd)"
ONE, TWO = (0,), (0, 1)


@dataclass
class Case:
    """A path under test. `setup()` is a context manager that deploys it and removes it on exit;
    `frames[c]` is what CPU c sends (one list per CPU, distinct flows per CPU); min_delivered:
    1.0 = every frame must arrive, a fraction = at least that, None = no check (paths with a
    backlog that may drop)."""
    setup: Callable[[], contextlib.AbstractContextManager]
    frames: Sequence[Sequence[bytes]]
    min_delivered: float | None = 1.0
    cpu_sets: tuple[tuple[int, ...], ...] = (ONE,)


@dataclass
class LabRates:
    generator: str
    mpps: dict[tuple[str, int], float] = field(default_factory=dict)   # (case, CPUs) -> median
    runs: dict[tuple[str, int], list[float]] = field(default_factory=dict)

    def net_ns(self, case: str) -> float:
        """One CPU: ns per frame the path adds to the generator's own cost."""
        return 1e3 / self.mpps[(case, 1)] - 1e3 / self.mpps[(DROP, 1)]

    def scaling(self, case: str) -> float:
        return self.mpps[(case, 2)] / self.mpps[(case, 1)]


def _check(res, min_delivered: float | None) -> None:
    if min_delivered is None:
        return
    if min_delivered >= 1.0:
        if res.received != res.generated or res.generated != res.repeat * len(res.cpus):
            raise AssertionError(f"frames lost on a lossless path: {res}")
    elif res.received < min_delivered * res.generated:
        raise AssertionError(f"under {min_delivered:.0%} delivered: {res}")


def drop_case(lab, frames, tx: str = "h1") -> Case:
    """The generator's own cost: its frames dropped by rxcount on the dut port facing `tx`."""
    from traffic.labgen import RxCounter
    h = lab.host(tx)
    return Case(lambda: RxCounter(lab.dut, h.port, "drop"), frames, None, (ONE, TWO))


def measure(lab, cases: dict[str, Case], *, generator: str | None = None, tx: str = "h1",
            rx: str = "h2", sinks: Sequence[str] = (), n: int = 400_000, rounds: int = 5,
            warmup: int = 20_000) -> LabRates:
    """Median Mpps of every case on each of its CPU sets, counted at `rx`; the cases (the DROP
    case must be among them) take turns round by round. Every host in `sinks` also drops what it
    gets in native XDP, so a flooded copy costs the same everywhere. The warm-up run lets kernel
    paths resolve their neighbours. Raises AssertionError when a run loses frames a case says
    it must not lose (the DROP case counts at the dut port itself)."""
    from traffic.labgen import RxCounter, open_generator, pick
    if DROP not in cases:
        raise ValueError("measure() needs the DROP case: every net cost is relative to it")
    gen_name = pick(generator)
    out = LabRates(gen_name)
    h = lab.host(tx)
    with contextlib.ExitStack() as es:
        rxs = {name: es.enter_context(RxCounter(lab.host(name).netns, lab.host(name).ifname))
               for name in dict.fromkeys((rx, *sinks))}
        gens = {}
        for _ in range(rounds):
            for name, case in cases.items():
                key = id(case.frames)
                if key not in gens:
                    gens[key] = es.enter_context(open_generator(h.netns, h.ifname, case.frames,
                                                                generator=gen_name))
                gen = gens[key]
                with case.setup() as dut:
                    for cpus in case.cpu_sets:
                        # the DROP case counts at the dut port (its setup is that counter)
                        counter = dut if name == DROP else rxs[rx]
                        gen.run_cpus(warmup, cpus, rx=counter)
                        res = gen.run_cpus(n, cpus, rx=counter)
                        _check(res, 1.0 if name == DROP else case.min_delivered)
                        out.runs.setdefault((name, len(cpus)), []).append(res.mpps)
    out.mpps = {k: statistics.median(v) for k, v in out.runs.items()}
    return out


def run(spec, build_cases: Callable, *, generator: str | None = None, sinks: Sequence[str] = (),
        n: int = 400_000, rounds: int = 5, warmup: int = 20_000) -> LabRates:
    """measure() on a fresh lab of `spec` (a nf.net.lab.LabSpec) over the cases
    `build_cases(lab, es, generator)` returns; `es` (an ExitStack closed after the run) holds
    what the cases load once for every turn."""
    from nf.net.lab import Lab
    from traffic.labgen import pick
    gen = pick(generator)          # an unknown/unavailable name fails before any lab is made
    with Lab(spec) as lab, contextlib.ExitStack() as es:
        return measure(lab, build_cases(lab, es, gen), generator=gen, sinks=sinks, n=n,
                       rounds=rounds, warmup=warmup)


def udp_flows(lab, ports=(1234, 1235), size: int = 64) -> list[list[bytes]]:
    """One UDP flow h1 -> h2 per CPU (source ports `ports`), as Case.frames."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    h1, h2 = lab.host("h1"), lab.host("h2")
    return [[bytes(Ether(src=h1.mac, dst=h1.port_mac) / IP(src=h1.ip4, dst=h2.ip4, ttl=64) /
                   UDP(sport=p, dport=9)).ljust(size, b"\0")] for p in ports]


def ceiling_case(lab, frames) -> Case:
    """The no-work forwarder from h1's port to h2's, on one and two CPUs."""
    from traffic.baselines import Fwd
    h1, h2 = lab.host("h1"), lab.host("h2")
    return Case(lambda: Fwd(lab.dut, h1.port, h2.port, h2.mac, h2.port_mac), frames,
                cpu_sets=(ONE, TWO))
