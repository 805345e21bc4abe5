"""traffic/flows.py: deterministic flow sets, exact ground truth, Zipf skew as claimed."""
import math
from collections import Counter

import pytest

from traffic import flows


def test_uniform_exact_counts_and_ground_truth():
    fs = flows.uniform(100, 10_007, seed=3, exact=True)
    assert fs.n_flows == 100 and fs.n_packets == 10_007
    assert sorted(set(fs.counts)) == [100, 101] and fs.counts.count(101) == 7
    assert Counter(fs.packets()) == fs.ground_truth()
    assert len({f.key() for f in fs.flows}) == 100  # distinct 5-tuples


def test_uniform_sampled_is_roughly_flat_and_exact_truth():
    fs = flows.uniform(50, 50_000, seed=1)
    assert sum(fs.counts) == 50_000
    assert Counter(fs.sequence) == {i: c for i, c in enumerate(fs.counts) if c}
    # Binomial(50000, 1/50): mean 1000, sd ~ 31; 6 sd bounds never trip for a fixed seed.
    assert all(810 < c < 1190 for c in fs.counts)


def test_deterministic_for_a_seed_and_different_across_seeds():
    a = flows.zipf(200, 5_000, 1.2, seed=42)
    b = flows.zipf(200, 5_000, 1.2, seed=42)
    c = flows.zipf(200, 5_000, 1.2, seed=43)
    assert a.flows == b.flows and a.sequence == b.sequence and a.counts == b.counts
    assert a.flows != c.flows and a.sequence != c.sequence


@pytest.mark.parametrize("s", [0.8, 1.1, 1.5])
def test_zipf_sampled_has_claimed_skew(s):
    fs = flows.zipf(1000, 200_000, s, seed=11)
    assert Counter(fs.sequence) == {i: c for i, c in enumerate(fs.counts) if c}  # exact truth
    est = flows.fit_zipf_exponent(fs.counts, min_count=50)
    assert abs(est - s) < 0.06, (s, est)
    # Frequency ratios against theory for the head: count(rank 1) / count(rank k) ~= k**s.
    for k in (2, 4):
        assert fs.counts[0] / fs.counts[k - 1] == pytest.approx(k ** s, rel=0.1)
    # The head's share matches the law's probability mass.
    p = flows.zipf_probabilities(1000, s)
    top10 = sum(fs.counts[:10]) / fs.n_packets
    assert top10 == pytest.approx(math.fsum(p[:10]), rel=0.02)


def test_zipf_quota_is_exactly_the_law():
    n = 100_000
    fs = flows.zipf(500, n, 1.0, seed=5, method="quota")
    p = flows.zipf_probabilities(500, 1.0)
    assert sum(fs.counts) == n
    assert all(abs(c - pi * n) < 1 for c, pi in zip(fs.counts, p))
    assert fs.counts == sorted(fs.counts, reverse=True)
    assert [c for _, c in fs.top(3)] == fs.counts[:3]
    assert abs(flows.fit_zipf_exponent(fs.counts, min_count=20) - 1.0) < 0.02
    assert Counter(fs.sequence) == {i: c for i, c in enumerate(fs.counts) if c}


def test_ipv6_flows_and_protocols():
    fs = flows.uniform(10, 10, seed=0, ipv6=True, protos=(flows.PROTO_TCP,))
    assert all(":" in f.src and ":" in f.dst and f.proto == 6 for f in fs.flows)


@pytest.mark.parametrize("call, match", [
    (lambda: flows.uniform(0, 10), "n_flows"),
    (lambda: flows.uniform(10, -1), "n_packets"),
    (lambda: flows.zipf(10, 10, -1.0), "skew"),
    (lambda: flows.zipf(10, 10, 1.0, method="other"), "method"),
])
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()
