"""chi2_geometric: the folded tail keeps every draw once and every bin's expected count >= 5,
and on exact geometric samples the test rejects at its nominal rate (not more, not less)."""
import numpy as np
import pytest

from nf import algo
from nf.testing.stats import chi2_critical, chi2_geometric, geometric_bins

HIST = 64          # the kmod test histogram: bins 0..62 and "63 or more"


@pytest.mark.parametrize("n,p", [(10000, 0.2), (20000, 0.5), (200000, 0.2), (20000, 0.1),
                                 (20000, 0.03), (60, 0.2)])
def test_folded_tail_keeps_each_draw_once(n, p):
    rng = np.random.default_rng(7)
    counts = np.bincount(np.minimum(rng.geometric(p, n) - 1, HIST - 1), minlength=HIST).tolist()
    obs, exp = geometric_bins(counts, p)
    j = len(obs) - 1                                 # the last bin is "j or more"
    assert obs[:j] == counts[:j] and obs[j] == sum(counts[j:])
    assert exp[:j] == pytest.approx([n * algo.geometric_pmf(k, p) for k in range(j)])
    assert exp[j] == pytest.approx(n * (1 - p) ** j)
    assert sum(obs) == n and sum(exp) == pytest.approx(n)
    assert min(exp) >= 5                              # every bin, the tail's neighbour too
    # folded no further than needed: one bin fewer would leave a bin expecting under 5
    assert j == HIST - 1 or min(n * algo.geometric_pmf(j, p), n * (1 - p) ** (j + 1)) < 5


@pytest.mark.parametrize("n,p", [(10000, 0.2), (20000, 0.5), (20000, 0.1)])
def test_rejects_exact_samples_at_the_nominal_rate(n, p):
    """2000 histograms of exact Geometric(p) draws, alpha 0.01: about 20 rejections.  (The
    folding bug this guards against rejected 19% at p = 0.2 and none at p = 0.5.)"""
    rng = np.random.default_rng(20261127)
    crit = {}
    rejected = 0
    for _ in range(2000):
        counts = np.bincount(np.minimum(rng.geometric(p, n) - 1, HIST - 1), minlength=HIST)
        stat, dof = chi2_geometric(counts.tolist(), p)
        rejected += stat >= crit.setdefault(dof, chi2_critical(dof, 2.326))
    assert 7 <= rejected <= 40, rejected      # Binomial(2000, 0.01): 20 +- 4.4


@pytest.mark.parametrize("dof,z,quantile", [(10, 3.09, 29.588), (34, 3.72, 73.48),
                                            (47, 3.72, 91.84), (30, 2.326, 50.892)])
def test_critical_value_matches_the_chi_square_quantile(dof, z, quantile):
    assert chi2_critical(dof, z) == pytest.approx(quantile, rel=0.01)
