"""Power means, Renyi divergences and Lemma 1.

Oracles: mpmath at 40 digits (literal formulas), scipy.stats.entropy (KL), scipy.integrate.quad
(Gaussian divergence by numerical integration).
"""

import math

import mpmath as mp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

import renyi_cert as rc

positive = st.floats(1e-6, 1.0)


def _mp_mean(x, t):
    # 1 + t log x must be resolved: 40 digits plus the digits of 1/|t|
    extra = 0 if t == 0 else max(0, int(-math.log10(abs(t))) + 1)
    with mp.workdps(40 + min(extra, 400)):
        xs = [mp.mpf(v) for v in x]
        if abs(t) < 1e-300:  # the geometric mean, to O(t)
            return mp.exp(sum(mp.log(v) for v in xs) / len(xs))
        return (sum(v**t for v in xs) / len(xs)) ** (1 / mp.mpf(t))


@settings(max_examples=200, deadline=None)
@given(st.lists(positive, min_size=2, max_size=6), st.floats(-50.0, 50.0))
def test_mean_matches_mpmath(x, t):
    assert rc.generalized_mean(x, t) == pytest.approx(float(_mp_mean(x, t)), rel=1e-12)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=2, max_size=6), st.floats(-1e4, 1e4), st.floats(-1e4, 1e4))
def test_mean_between_min_max_and_monotone_in_t(x, t1, t2):
    lo, hi = sorted((t1, t2))
    m_lo = rc.generalized_mean(x, lo)
    m_hi = rc.generalized_mean(x, hi)
    assert min(x) * (1 - 1e-12) <= m_lo <= m_hi * (1 + 1e-12)
    assert m_hi <= max(x) * (1 + 1e-12)


def test_mean_limits_and_no_overflow():
    x = [0.9, 0.1]
    assert rc.generalized_mean(x, np.inf) == 0.9
    assert rc.generalized_mean(x, -np.inf) == 0.1
    assert rc.generalized_mean(x, 0.0) == pytest.approx(0.3, rel=1e-15)
    assert rc.generalized_mean(x, 1e-9) == pytest.approx(0.3, rel=1e-8)
    # t = -1000: 0.1^-1000 overflows a literal evaluation; the log domain gives min * 2^(1/1000)
    assert rc.generalized_mean([1e-3, 0.5], -1000.0) == pytest.approx(1e-3 * 2 ** (1 / 1000), rel=1e-12)
    assert rc.generalized_mean([0.0, 0.5], -1.0) == 0.0
    assert rc.generalized_mean([0.0, 0.5], 1.0) == 0.25
    w = rc.generalized_mean([[0.9, 0.1], [0.4, 0.4]], 1.0, weights=[0.75, 0.25])
    np.testing.assert_allclose(w, [0.7, 0.4])


def test_mean_errors():
    with pytest.raises(ValueError, match=r"x \(-0.5\) must contain only finite values >= 0"):
        rc.generalized_mean([0.1, -0.5], 1.0)
    with pytest.raises(ValueError, match=r"must be an array of values"):
        rc.generalized_mean(0.3, 1.0)
    with pytest.raises(ValueError, match=r"t \(nan\) must be a real number"):
        rc.generalized_mean([0.1, 0.2], float("nan"))
    with pytest.raises(ValueError, match=r"t \('x'\) must be a real number"):
        rc.generalized_mean([0.1, 0.2], "x")
    with pytest.raises(ValueError, match=r"weights must sum to 1"):
        rc.generalized_mean([0.1, 0.2], 1.0, weights=[0.5, 0.6])
    with pytest.raises(ValueError, match=r"weights \(-0.5\) must be >= 0"):
        rc.generalized_mean([0.1, 0.2], 1.0, weights=[1.5, -0.5])
    with pytest.raises(ValueError, match=r"weights \(shape \(3,\)\) must broadcast"):
        rc.generalized_mean([0.1, 0.2], 1.0, weights=[0.2, 0.3, 0.5])


@st.composite
def distributions(draw, k=None):
    k = k or draw(st.integers(2, 6))
    raw = np.array(draw(st.lists(st.floats(1e-3, 1.0), min_size=k, max_size=k)))
    return raw / raw.sum()


@settings(max_examples=150, deadline=None)
@given(st.data(), st.sampled_from([0.0, 0.5, 1.0, 2.0, 7.5, np.inf]))
def test_divergence_nonnegative_zero_iff_equal_and_matches_mpmath(data, order):
    k = data.draw(st.integers(2, 5))
    p = data.draw(distributions(k))
    q = data.draw(distributions(k))
    d = rc.renyi_divergence(p, q, order)
    assert d >= 0
    assert rc.renyi_divergence(p, p, order) == pytest.approx(0.0, abs=1e-12)
    if order not in (0.0,) and np.abs(p - q).max() > 1e-3:
        assert d > 0
    if order == 1.0:
        assert d == pytest.approx(stats.entropy(p, q), rel=1e-10, abs=1e-14)
    elif np.isfinite(order) and order > 0:
        with mp.workdps(40):
            ref = mp.log(sum(mp.mpf(a) ** order * mp.mpf(b) ** (1 - order) for a, b in zip(p, q))) / (order - 1)
        assert d == pytest.approx(float(ref), rel=1e-10, abs=1e-14)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_divergence_nondecreasing_in_order(data):
    k = data.draw(st.integers(2, 5))
    p, q = data.draw(distributions(k)), data.draw(distributions(k))
    orders = [0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 5.0, 20.0, np.inf]
    vals = [rc.renyi_divergence(p, q, o) for o in orders]
    assert all(b >= a - 1e-12 for a, b in zip(vals, vals[1:]))


def test_divergence_support_cases_and_errors():
    assert rc.renyi_divergence([0.5, 0.5], [1.0, 0.0], 2.0) == math.inf
    assert rc.renyi_divergence([0.5, 0.5], [1.0, 0.0], 0.5) == pytest.approx(-2 * math.log(0.5**0.5 * 1.0), rel=1e-12)
    assert rc.renyi_divergence([1.0, 0.0], [0.5, 0.5], 0.0) == pytest.approx(math.log(2.0))
    with pytest.raises(ValueError, match=r"p must sum to 1 \(sum is 0.9"):
        rc.renyi_divergence([0.5, 0.4], [0.5, 0.5], 2.0)
    with pytest.raises(ValueError, match=r"q \(-0.5\) must contain only finite probabilities >= 0"):
        rc.renyi_divergence([0.5, 0.5], [1.5, -0.5], 2.0)
    with pytest.raises(ValueError, match=r"p \(length 2\) and q \(length 3\) must have the same length"):
        rc.renyi_divergence([0.5, 0.5], [0.2, 0.3, 0.5], 2.0)
    with pytest.raises(ValueError, match=r"order \(-1.0\) must be a Renyi order in \[0, inf\]"):
        rc.renyi_divergence([0.5, 0.5], [0.5, 0.5], -1.0)
    with pytest.raises(ValueError, match=r"must be a non-empty 1-D probability vector"):
        rc.renyi_divergence([[0.5, 0.5]], [[0.5, 0.5]], 2.0)


@pytest.mark.parametrize("mu, s1, s2, order", [(1.3, 1.0, 1.0, 2.0), (0.7, 1.0, 1.4, 1.7), (-0.4, 0.8, 0.6, 0.5), (0.5, 1.0, 1.3, 1.0)])
def test_gaussian_divergence_matches_quadrature(mu, s1, s2, order):
    p = stats.norm(mu, s1).pdf
    q = stats.norm(0.0, s2).pdf
    if order == 1.0:
        val, _ = integrate.quad(lambda x: p(x) * (np.log(p(x)) - np.log(q(x))), -30, 30, limit=200)
        ref = val
    else:
        val, _ = integrate.quad(lambda x: p(x) ** order * q(x) ** (1 - order), -30, 30, limit=200)
        ref = math.log(val) / (order - 1)
    assert rc.gaussian_renyi_divergence([mu], [0.0], s1, s2, order=order) == pytest.approx(ref, rel=1e-8)


def test_gaussian_divergence_equal_variance_identity_and_errors():
    # D_order(N(x, s^2 I) || N(x', s^2 I)) = order ||x - x'||^2 / (2 s^2): the paper's Theorem 1 step
    x = np.arange(10) / 10
    assert rc.gaussian_renyi_divergence(x, x + 0.1, 0.5, order=3.0) == pytest.approx(3.0 * 10 * 0.01 / (2 * 0.25))
    # two independent dimensions add
    one = rc.gaussian_renyi_divergence([0.3], [0.0], 1.0, 1.5, order=1.2)
    assert rc.gaussian_renyi_divergence([0.3, 0.0], [0.0, 0.0], 1.0, 1.5, order=1.2) == pytest.approx(
        one + rc.gaussian_renyi_divergence([0.0], [0.0], 1.0, 1.5, order=1.2)
    )
    assert rc.gaussian_renyi_divergence([0.0], [0.0], 2.0, 1.0, order=5.0) == math.inf  # s_a^2 <= 0
    with pytest.raises(ValueError, match=r"sigma1 \(-1.0\) must be > 0"):
        rc.gaussian_renyi_divergence([0.0], [1.0], -1.0)
    with pytest.raises(ValueError, match=r"sigma2 \(inf\) must be finite and > 0"):
        rc.gaussian_renyi_divergence([0.0], [1.0], 1.0, np.inf)
    with pytest.raises(ValueError, match=r"sigma1 must be a single number, got an array of shape \(2,\)"):
        rc.gaussian_renyi_divergence([0.0], [1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"order \(inf\) must be finite and > 0 for Gaussians"):
        rc.gaussian_renyi_divergence([0.0], [1.0], 1.0, order=np.inf)
    with pytest.raises(ValueError, match=r"must be 1-D of equal length"):
        rc.gaussian_renyi_divergence([0.0, 1.0], [1.0], 1.0)
    with pytest.raises(ValueError, match=r"mu1 and mu2 must be finite"):
        rc.gaussian_renyi_divergence([np.nan], [1.0], 1.0)


def _mp_lemma1(p1, p2, order):
    with mp.workdps(60):
        p1, p2 = mp.mpf(p1), mp.mpf(p2)
        if order == 1:
            return -mp.log(1 - (mp.sqrt(p1) - mp.sqrt(p2)) ** 2)
        t = 1 - mp.mpf(order)
        return -mp.log(1 - p1 - p2 + 2 * ((p1**t + p2**t) / 2) ** (1 / t))


@pytest.mark.parametrize("order", [0.3, 0.9, 1.0, 1.2, 2.0, 10.0, 200.0])
@pytest.mark.parametrize("pair", [(0.9, 0.1), (0.5, 0.5 - 1e-7), (0.6, 0.39), (0.2, 1e-9), (0.999, 0.001)])
def test_lemma1_matches_mpmath(pair, order):
    assert rc.lemma1_bound(*pair, order) == pytest.approx(float(_mp_lemma1(*pair, order)), rel=1e-12)


def test_lemma1_limits_and_errors():
    assert rc.lemma1_bound(0.9, 0.1, np.inf) == pytest.approx(-math.log(1 - 0.8))
    assert rc.lemma1_bound(0.9, 0.0, 3.0) == pytest.approx(-math.log(0.1))
    assert rc.lemma1_bound(0.3, 0.6, 2.0) == 0.0
    assert rc.lemma1_bound(0.9, 0.1, [1.0, 2.0]).shape == (2,)
    with pytest.raises(ValueError, match=r"order \(0.0\) must be a Renyi order > 0"):
        rc.lemma1_bound(0.9, 0.1, 0.0)
    with pytest.raises(ValueError, match=r"order \(shape \(3,\)\) must broadcast"):
        rc.lemma1_bound([0.9, 0.8], 0.1, [1.0, 2.0, 3.0])


@settings(max_examples=200, deadline=None)
@given(st.data(), st.sampled_from([1.0, 1.3, 2.0, 5.0]))
def test_lemma1_lower_bounds_every_distribution_with_another_argmax(data, order):
    # Lemma 1 itself: if argmax Q != argmax P then D_order(Q || P) >= the bound.
    k = data.draw(st.integers(2, 5))
    p = data.draw(distributions(k))
    q = data.draw(distributions(k))
    rank = np.argsort(p)[::-1]
    assume(p[rank[0]] > p[rank[1]] + 1e-9)
    assume(np.argmax(q) != rank[0] and q.max() > np.sort(q)[-2] + 1e-9)
    bound = rc.lemma1_bound(p[rank[0]], p[rank[1]], order)
    assert rc.renyi_divergence(q, p, order) >= bound * (1 - 1e-9) - 1e-12
