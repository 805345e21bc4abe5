"""VM tier: random pools (randpool.c).  Skip counts follow the geometric distribution
(chi-square goodness of fit), sampling hits the probability, the uniform pool is uniform,
two CPUs draw from one pool at once, bad probabilities are refused, release frees."""
from __future__ import annotations

import ctypes as C
import math

import pytest

from nf import kmod
from nf.testing.kmod import (KO_HIST, KO_RP_FREE, KO_RP_NEW, KO_RP_SAMPLE, KO_RP_SKIP,
                             KO_RP_U32, ko_call, open_kmod_test, run_on_cpus, wait_live_zero)
from nf.testing.stats import chi2_critical, chi2_geometric

pytestmark = pytest.mark.vm
ONE = 1 << 32


@pytest.fixture(scope="module")
def _obj():
    obj = open_kmod_test("objects")
    yield obj
    obj.close()
    assert wait_live_zero()["live_rp"] == 0


@pytest.fixture
def objs(enetstl, _obj):
    yield _obj
    for i in range(16):
        ko_call(_obj.program("objects"), KO_RP_FREE, idx=i)
    assert wait_live_zero()["live_rp"] == 0


def hist(obj, cpu=None):
    m = obj.map("kt_hist").typed(C.c_uint32, C.c_uint64)
    out = []
    for k in range(KO_HIST):
        per = m.lookup_percpu(k)
        out.append(sum(per) if cpu is None else per[cpu])
        m.update(k, [0] * len(per))
    return out


def new(p, prob: float, idx=0) -> int:
    r = ko_call(p, KO_RP_NEW, x=round(prob * ONE), idx=idx)
    assert r.ret > 0, r
    return r.ret


@pytest.mark.parametrize("prob", [0.5, 0.1, 0.03])
def test_skips_are_geometric(objs, prob):
    p = objs.program("objects")
    h = new(p, prob)
    hist(objs)
    n = 20000
    assert ko_call(p, KO_RP_SKIP, handle=h, repeat=n).retval == 2
    counts = hist(objs)
    assert sum(counts) == n
    stat, dof = chi2_geometric(counts, prob)
    assert stat < chi2_critical(dof, 3.72), (stat, dof, counts[:12])      # alpha 1e-4
    # and a mean check: E[K] = (1 - p) / p (bins clamp at 63: only for p where that is rare)
    if prob >= 0.1:
        mean = sum(k * c for k, c in enumerate(counts)) / n
        sd = math.sqrt((1 - prob) / prob ** 2 / n)
        assert abs(mean - (1 - prob) / prob) < 5 * sd


def test_probability_one_never_skips(objs):
    p = objs.program("objects")
    h = new(p, 1.0)
    hist(objs)
    ko_call(p, KO_RP_SKIP, handle=h, repeat=500)
    counts = hist(objs)
    assert counts[0] == 500 and sum(counts) == 500


@pytest.mark.parametrize("prob", [0.25, 0.01])
def test_sample_rate(objs, prob):
    p = objs.program("objects")
    h = new(p, prob)
    hist(objs)
    n = 40000
    ko_call(p, KO_RP_SAMPLE, handle=h, repeat=n)
    counts = hist(objs)
    assert counts[0] + counts[1] == n
    sd = math.sqrt(prob * (1 - prob) / n)
    assert abs(counts[1] / n - prob) < 5 * sd, counts[:2]


def test_uniform_u32(objs):
    p = objs.program("objects")
    h = new(p, 0.5)
    vals = [ko_call(p, KO_RP_U32, handle=h).vals[0] for _ in range(400)]
    assert all(0 <= v < ONE for v in vals)
    assert len(set(vals)) > 395                 # the pool refills with fresh values
    bits = [sum((v >> b) & 1 for v in vals) for b in range(32)]
    assert all(abs(c - 200) < 5 * 10 for c in bits), bits     # sd = sqrt(400/4) = 10


@pytest.mark.parametrize("p_fp", [0, ONE + 1, 1 << 40])
def test_bad_probability_refused(objs, p_fp):
    assert ko_call(objs.program("objects"), KO_RP_NEW, x=p_fp).ret == -12
    assert kmod.live()["live_rp"] == 0


def test_two_cpus_draw_at_once(objs):
    """One pool, per-CPU pools inside: both CPUs draw 10,000 skips concurrently and each
    CPU's skips are geometric (measured over 30 pools in one boot: each CPU's p-values uniform,
    pooled per-bin residuals within 2.9 sd, CPU 0 and CPU 1 alike)."""
    p = objs.program("objects")
    h = new(p, 0.2)
    hist(objs)
    res = run_on_cpus({c: (lambda: ko_call(p, KO_RP_SKIP, handle=h, repeat=10000))
                       for c in (0, 1)})
    assert all(r.retval == 2 for r in res.values())
    m = objs.map("kt_hist").typed(C.c_uint32, C.c_uint64)
    per_cpu = [[m.lookup_percpu(k)[c] for k in range(KO_HIST)] for c in (0, 1)]
    assert [sum(c) for c in per_cpu] == [10000, 10000]
    assert per_cpu[0] != per_cpu[1]             # each CPU's generator has its own seed
    for cpu, counts in enumerate(per_cpu):
        stat, dof = chi2_geometric(counts, 0.2)
        assert stat < chi2_critical(dof, 3.72), (cpu, stat, dof, counts[:16])   # alpha 1e-4
    hist(objs)
