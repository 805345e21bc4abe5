"""Flow sets: N distinct 5-tuples and a packet sequence over them, uniform or Zipf-skewed,
deterministic for a seed, with exact ground-truth packet counts per flow.

    fs = zipf(n_flows=1000, n_packets=100_000, s=1.1, seed=7)
    fs.flows[0]          # the rank-1 (heaviest in expectation) flow
    fs.counts[0]         # exactly how many packets of fs.sequence belong to it
    for flow in fs.packets(): ...

Zipf: flow of rank k (1-based) has probability k**-s / H(N, s). Two ways to draw the packets:
"sample" (default) draws each packet independently (like real traffic; counts are multinomial),
"quota" gives each flow its expected count rounded by largest remainder (counts follow the law
exactly, so the heaviest flows are known in advance) and shuffles the order with the seed.
"""
from __future__ import annotations

import array
import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

PROTO_TCP, PROTO_UDP, PROTO_ICMP, PROTO_ICMPV6 = 6, 17, 1, 58


@dataclass(frozen=True, order=True)
class Flow:
    src: str
    dst: str
    sport: int
    dport: int
    proto: int

    def key(self) -> tuple[str, str, int, int, int]:
        return (self.src, self.dst, self.sport, self.dport, self.proto)


@dataclass
class FlowSet:
    flows: list[Flow]           # index = rank - 1 for Zipf
    sequence: array.array       # flow index of every packet, in send order
    counts: list[int]           # exact: counts[i] == number of i's in sequence
    kind: str
    s: float | None
    seed: int

    @property
    def n_flows(self) -> int:
        return len(self.flows)

    @property
    def n_packets(self) -> int:
        return len(self.sequence)

    def packets(self) -> Iterator[Flow]:
        flows = self.flows
        return (flows[i] for i in self.sequence)

    def ground_truth(self) -> dict[Flow, int]:
        return {f: c for f, c in zip(self.flows, self.counts)}

    def top(self, k: int) -> list[tuple[Flow, int]]:
        """The k flows with most packets (ties by flow index), with their exact counts."""
        order = sorted(range(len(self.flows)), key=lambda i: (-self.counts[i], i))[:k]
        return [(self.flows[i], self.counts[i]) for i in order]


def _make_flows(n: int, rng: random.Random, ipv6: bool, protos: tuple[int, ...]) -> list[Flow]:
    seen: set[tuple] = set()
    flows: list[Flow] = []
    while len(flows) < n:
        if ipv6:
            src = "fd00:%x::%x:%x" % (rng.randrange(1 << 16), rng.randrange(1 << 16), rng.randrange(1 << 16))
            dst = "fd01:%x::%x:%x" % (rng.randrange(1 << 16), rng.randrange(1 << 16), rng.randrange(1 << 16))
        else:
            src = "10.%d.%d.%d" % (rng.randrange(256), rng.randrange(256), rng.randrange(1, 255))
            dst = "192.168.%d.%d" % (rng.randrange(256), rng.randrange(1, 255))
        f = Flow(src, dst, rng.randrange(1024, 65536), rng.randrange(1, 65536), rng.choice(protos))
        if f.key() not in seen:
            seen.add(f.key())
            flows.append(f)
    return flows


def _check(n_flows: int, n_packets: int) -> None:
    if not isinstance(n_flows, int) or n_flows < 1:
        raise ValueError(f"n_flows must be a positive int, not {n_flows!r}")
    if not isinstance(n_packets, int) or n_packets < 0:
        raise ValueError(f"n_packets must be a non-negative int, not {n_packets!r}")


def _finish(flows, seq, kind, s, seed) -> FlowSet:
    counts = [0] * len(flows)
    for i in seq:
        counts[i] += 1
    return FlowSet(flows, seq, counts, kind, s, seed)


def uniform(n_flows: int, n_packets: int, seed: int = 0, ipv6: bool = False,
            protos: tuple[int, ...] = (PROTO_UDP, PROTO_TCP), exact: bool = False) -> FlowSet:
    """Each packet picks a flow uniformly at random; exact=True gives every flow
    n_packets // n_flows packets (+1 for the first n_packets % n_flows), shuffled."""
    _check(n_flows, n_packets)
    rng = random.Random(seed)
    flows = _make_flows(n_flows, rng, ipv6, protos)
    if exact:
        seq = array.array("I", (i % n_flows for i in range(n_packets)))
        rng.shuffle(seq)
    else:
        seq = array.array("I", (rng.randrange(n_flows) for _ in range(n_packets)))
    return _finish(flows, seq, "uniform", None, seed)


def zipf_probabilities(n_flows: int, s: float) -> list[float]:
    w = [k ** -s for k in range(1, n_flows + 1)]
    h = math.fsum(w)
    return [x / h for x in w]


def zipf(n_flows: int, n_packets: int, s: float, seed: int = 0, ipv6: bool = False,
         protos: tuple[int, ...] = (PROTO_UDP, PROTO_TCP), method: str = "sample") -> FlowSet:
    """Zipf(s) over n_flows flows; flows[k-1] is rank k. See the module doc for `method`."""
    _check(n_flows, n_packets)
    if not isinstance(s, (int, float)) or not 0 <= s <= 10:
        raise ValueError(f"Zipf skew s must be in [0, 10], not {s!r}")
    rng = random.Random(seed)
    flows = _make_flows(n_flows, rng, ipv6, protos)
    p = zipf_probabilities(n_flows, s)
    if method == "sample":
        cum = list(itertools.accumulate(p))
        cum[-1] = 1.0
        seq = array.array("I", (i for i in _bisect_many(cum, rng, n_packets)))
    elif method == "quota":
        exp = [x * n_packets for x in p]
        quota = [int(e) for e in exp]
        rest = n_packets - sum(quota)
        for i in sorted(range(n_flows), key=lambda i: (-(exp[i] - quota[i]), i))[:rest]:
            quota[i] += 1
        seq = array.array("I", (i for i, q in enumerate(quota) for _ in range(q)))
        rng.shuffle(seq)
    else:
        raise ValueError(f"method must be 'sample' or 'quota', not {method!r}")
    return _finish(flows, seq, "zipf", float(s), seed)


def _bisect_many(cum: list[float], rng: random.Random, n: int) -> Iterator[int]:
    from bisect import bisect_right
    last = len(cum) - 1
    for _ in range(n):
        yield min(bisect_right(cum, rng.random()), last)


def fit_zipf_exponent(counts: list[int], min_count: int = 20) -> float:
    """Least-squares slope of log(count) against log(rank) over the flows (sorted by count, most
    first) with at least `min_count` packets; returns the estimated s (the negated slope)."""
    c = sorted((x for x in counts if x >= min_count), reverse=True)
    if len(c) < 3:
        raise ValueError("too few flows with enough packets to fit a Zipf exponent")
    xs = [math.log(r) for r in range(1, len(c) + 1)]
    ys = [math.log(x) for x in c]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    return -sxy / sxx
