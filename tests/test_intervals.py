"""Tests for renyi_cert.intervals: Clopper-Pearson, Sison-Glaz, Goodman and the top-two confidence bounds.

Oracles: statsmodels (``proportion_confint(method="beta")``, ``multinomial_proportions_confint``),
scipy (``binomtest(...).proportion_ci``), mpmath at the stated precision, and closed forms.
"""

from __future__ import annotations

import dataclasses
import time
import warnings

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest
from statsmodels.stats.proportion import multinomial_proportions_confint, proportion_confint

from renyi_cert.intervals import (
    METHODS,
    ConfidenceInterval,
    Top2Confidence,
    _chi2_1_isf,
    _SisonGlazCoverage,
    _top_two,
    clopper_pearson_interval,
    goodman,
    sison_glaz,
    top2_confidence,
)

# --------------------------------------------------------------------------------------------
# Clopper-Pearson

CP_GRID = [
    (k, n, a)
    for n in (1, 2, 7, 100, 1000, 100_000)
    for k in sorted({0, 1, n // 3, n // 2, n - 1, n})
    for a in (1e-6, 0.001, 0.05, 0.5)
]


@pytest.mark.parametrize("k, n, alpha", CP_GRID)
def test_clopper_pearson_matches_statsmodels_and_scipy(k, n, alpha):
    # statsmodels' proportion_confint(method="beta") and scipy's binomtest(...).proportion_ci
    # (method="exact") are the two-sided equal-tailed Clopper-Pearson interval at 1 - alpha.
    r = clopper_pearson_interval(k, n, alpha=alpha)
    lo, hi = proportion_confint(k, n, alpha=alpha, method="beta")
    ci = binomtest(k, n).proportion_ci(confidence_level=1 - alpha, method="exact")
    assert r.lower == pytest.approx(lo, rel=1e-10, abs=1e-14)
    assert r.upper == pytest.approx(hi, rel=1e-10, abs=1e-14)
    # scipy finds the ends by root finding (brentq, xtol 2e-12; e.g. k = 1,
    # n = 2: exact lower 1 - sqrt(1 - alpha/2) = 2.5000003125e-07, scipy 2.5000006251e-07)
    assert r.lower == pytest.approx(ci.low, rel=1e-6, abs=4e-12)
    assert r.upper == pytest.approx(ci.high, rel=1e-6, abs=4e-12)
    assert r.method == "clopper-pearson" and r.alpha == alpha


@pytest.mark.parametrize("k, n, alpha", [(1, 10, 0.05), (37, 100, 1e-4), (999, 1000, 0.001), (5, 100_000, 0.01)])
def test_clopper_pearson_tail_equations_mpmath(k, n, alpha):
    # Definition: P(Bin(n, lower) >= k) = alpha/2 and P(Bin(n, upper) <= k) = alpha/2, i.e.
    # I_lower(k, n-k+1) = alpha/2 and I_upper(k+1, n-k) = 1 - alpha/2 (mpmath, 50 digits).
    r = clopper_pearson_interval(k, n, alpha=alpha)
    with mp.workdps(50):
        tail_lo = mp.betainc(k, n - k + 1, 0, mp.mpf(r.lower), regularized=True)
        tail_hi = mp.betainc(k + 1, n - k, mp.mpf(r.upper), 1, regularized=True)
        assert float(tail_lo / (alpha / 2) - 1) == pytest.approx(0, abs=1e-9)
        assert float(tail_hi / (alpha / 2) - 1) == pytest.approx(0, abs=1e-9)


@pytest.mark.parametrize("n", [1, 5, 100, 100_000])
@pytest.mark.parametrize("alpha", [0.001, 0.05])
def test_clopper_pearson_boundaries_exact(n, alpha):
    # k = 0: lower is exactly 0, upper = 1 - (alpha/2)^(1/n); k = n: upper exactly 1, lower =
    # (alpha/2)^(1/n) (closed forms: Beta(1, n) and Beta(n, 1) quantiles).
    zero = clopper_pearson_interval(0, n, alpha=alpha)
    full = clopper_pearson_interval(n, n, alpha=alpha)
    assert zero.lower == 0.0 and full.upper == 1.0
    cap = (alpha / 2) ** (1 / n)
    assert full.lower == pytest.approx(cap, rel=1e-13)
    assert zero.upper == pytest.approx(-np.expm1(np.log(alpha / 2) / n), rel=1e-12)


@pytest.mark.parametrize("alpha", [1e-6, 0.001, 0.3])
def test_clopper_pearson_closed_form_k1_n2(alpha):
    # k = 1, n = 2: P(Bin(2, p) >= 1) = 1 - (1 - p)^2 = alpha/2  =>  lower = 1 - sqrt(1 - alpha/2).
    r = clopper_pearson_interval(1, 2, alpha=alpha)
    assert r.lower == pytest.approx(-np.expm1(0.5 * np.log1p(-alpha / 2)), rel=1e-13)
    assert r.upper == pytest.approx(1 + np.expm1(0.5 * np.log1p(-alpha / 2)), rel=1e-13)


def test_clopper_pearson_vectorised_and_scalar_types():
    k = np.array([[0, 3, 10], [1, 5, 9]])
    r = clopper_pearson_interval(k, 10, alpha=0.05)
    assert isinstance(r, ConfidenceInterval) and r.lower.shape == (2, 3) and r.upper.shape == (2, 3)
    for idx in np.ndindex(k.shape):
        s = clopper_pearson_interval(int(k[idx]), 10, alpha=0.05)
        assert isinstance(s.lower, float) and isinstance(s.upper, float)
        assert r.lower[idx] == s.lower and r.upper[idx] == s.upper
    # integer-valued floats are accepted as counts; n broadcasts too
    v = clopper_pearson_interval(3.0, np.array([10, 20]), alpha=0.05)
    assert v.lower[0] == clopper_pearson_interval(3, 10, alpha=0.05).lower


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 5000), frac=st.floats(0, 1), alpha=st.floats(1e-6, 0.9))
def test_clopper_pearson_monotone_and_ordered(n, frac, alpha):
    k = int(round(frac * n))
    r = clopper_pearson_interval(k, n, alpha=alpha)
    assert 0.0 <= r.lower <= k / n <= r.upper <= 1.0
    if k < n:  # a larger count gives larger bounds (used by top2_confidence's runner-up argument)
        r2 = clopper_pearson_interval(k + 1, n, alpha=alpha)
        assert r2.lower > r.lower and r2.upper > r.upper
    # a smaller alpha gives a wider interval
    w = clopper_pearson_interval(k, n, alpha=alpha / 2)
    assert w.lower <= r.lower and w.upper >= r.upper


# --------------------------------------------------------------------------------------------
# Sison-Glaz


def _mp_nu(c: int, counts) -> mp.mpf:
    """Sison & Glaz's nu(c) by direct summation of the truncated Poisson moments (mpmath)."""
    n = int(sum(counts))
    log_p = mp.mpf(0)
    s_mean = s2 = s3 = s4 = s22 = mp.mpf(0)
    for x in counts:
        lam = mp.mpf(int(x))
        b, a = max(int(x) - c, 0), min(int(x) + c, n)
        if x == 0:
            w = {0: mp.mpf(1)}
        else:
            w = {j: mp.exp(-lam + j * mp.log(lam) - mp.loggamma(j + 1)) for j in range(b, a + 1)}
        p = mp.fsum(w.values())
        log_p += mp.log(p)
        m = mp.fsum(j * v for j, v in w.items()) / p
        c2, c3, c4 = (mp.fsum((j - m) ** r * v for j, v in w.items()) / p for r in (2, 3, 4))
        s_mean += m
        s2 += c2
        s3 += c3
        s4 += c4
        s22 += c2**2
    g1 = s3 / s2**1.5
    g2 = (s4 - 3 * s22) / s2**2
    x = (n - s_mean) / mp.sqrt(s2)
    phi = mp.exp(-(x**2) / 2) / mp.sqrt(2 * mp.pi)
    f = phi * (1 + g1 * (x**3 - 3 * x) / 6 + g2 * (x**4 - 6 * x**2 + 3) / 24
               + g1**2 * (x**6 - 15 * x**4 + 45 * x**2 - 15) / 72) / mp.sqrt(s2)
    log_pmf_nn = -n + n * mp.log(n) - mp.loggamma(n + 1)
    return mp.exp(log_p - log_pmf_nn) * f


def _mp_sison_glaz(counts, alpha):
    """The full Sison-Glaz interval with nu from _mp_nu (same search as R's MultinomialCI)."""
    n = int(sum(counts))

    def nu(c):
        return mp.mpf(0) if c == 0 else (mp.mpf(1) if c >= n else _mp_nu(c, counts))

    c = 0
    while not (nu(c) <= 1 - alpha < nu(c + 1)):
        c += 1
    gamma = (1 - alpha - nu(c)) / (nu(c + 1) - nu(c))
    phat = np.asarray(counts) / n
    return np.maximum(phat - c / n, 0), np.minimum(phat + (c + 2 * float(gamma)) / n, 1)


@pytest.mark.parametrize(
    "counts",
    [[1000, 0, 0], [0, 100], [4939, 2, 59], [3, 5, 0, 12, 7, 1, 9], [50, 30, 20], [1, 1, 1, 1, 1, 1, 1, 1]],
)
def test_sison_glaz_coverage_function_mpmath(counts):
    # nu(c) against a 40-digit mpmath evaluation by direct summation over each box. (The reference
    # implementations' factorial-moment route loses ~5 digits at (4939, 2, 59).)
    counts = np.array(counts)
    n = int(counts.sum())
    cs = np.array([c for c in (1, 2, 3, 5, 8, 13) if c < n])
    ours = _SisonGlazCoverage(counts)(cs)
    with mp.workdps(40):
        ref = np.array([float(_mp_nu(int(c), counts)) for c in cs])
    np.testing.assert_allclose(ours, ref, rtol=1e-13)


@pytest.mark.parametrize("counts, alpha", [([1000, 0, 0], 0.2), ([4939, 2, 59], 0.2), ([40, 25, 20, 10, 5], 0.05)])
def test_sison_glaz_intervals_mpmath(counts, alpha):
    # The whole interval, with nu at 40 digits. statsmodels differs here by up to 1.2e-5 (at
    # (1000, 0, 0)) because of the cancellation noted above.
    r = sison_glaz(counts, alpha=alpha)
    with mp.workdps(40):
        lo, hi = _mp_sison_glaz(counts, alpha)
    np.testing.assert_allclose(r.lower, lo, rtol=0, atol=1e-13)
    np.testing.assert_allclose(r.upper, hi, rtol=0, atol=1e-12)


def _random_count_vectors(seed, how_many, n_choices):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(how_many):
        k = int(rng.integers(2, 12))
        n = int(rng.choice(n_choices))
        p = rng.dirichlet(np.ones(k) * rng.choice([0.3, 1.0, 5.0]))
        out.append((rng.multinomial(n, p), float(rng.choice([0.001, 0.01, 0.05, 0.2]))))
    return out


@pytest.mark.parametrize("counts, alpha", _random_count_vectors(0, 40, [1, 2, 5, 10, 50, 100, 300]))
def test_sison_glaz_matches_statsmodels(counts, alpha):
    # statsmodels 0.14+/0.15 reproduces R's MultinomialCI; at these sizes its float64 cancellation
    # is below 1e-8 (it grows with the counts, see test_sison_glaz_intervals_mpmath).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # statsmodels logs a negative Edgeworth term
        ref = multinomial_proportions_confint(counts, alpha, method="sison-glaz")
    r = sison_glaz(counts, alpha=alpha)
    np.testing.assert_allclose(r.lower, ref[:, 0], rtol=0, atol=1e-8)
    np.testing.assert_allclose(r.upper, ref[:, 1], rtol=0, atol=1e-8)


@pytest.mark.parametrize("counts, alpha", _random_count_vectors(1, 30, [10, 100, 1000, 100_000]))
def test_sison_glaz_structure(counts, alpha):
    r = sison_glaz(counts, alpha=alpha)
    phat = counts / counts.sum()
    assert r.method == "sison-glaz" and r.alpha == alpha
    assert np.all((0 <= r.lower) & (r.lower <= phat) & (phat <= r.upper) & (r.upper <= 1))
    # Sison-Glaz intervals are [phat - c/n, phat + (c + 2 gamma)/n]: one width for every class
    # where neither end is clipped, and c/n below phat for every unclipped lower end.
    free = (r.lower > 0) & (r.upper < 1)
    if free.sum() >= 2:
        widths = (r.upper - r.lower)[free]
        np.testing.assert_allclose(widths, widths[0], rtol=0, atol=1e-12)
    shift = (phat - r.lower)[r.lower > 0]
    if shift.size:
        c = shift[0] * counts.sum()
        assert c == pytest.approx(round(c), abs=1e-6)


def test_sison_glaz_fast_for_many_classes():
    # requirement: k = 10 classes, n = 100000 counts well under a second (statsmodels: ~6 s).
    rng = np.random.default_rng(3)
    counts = rng.multinomial(100_000, rng.dirichlet(np.ones(10)))
    sison_glaz(counts, alpha=0.001)  # warm-up
    best = min(_timed(lambda: sison_glaz(counts, alpha=0.001)) for _ in range(3))
    assert best < 0.25, f"sison_glaz took {best:.3f} s"


def _timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


# --------------------------------------------------------------------------------------------
# Goodman


@pytest.mark.parametrize("counts, alpha", _random_count_vectors(2, 40, [1, 5, 50, 1000, 100_000]))
def test_goodman_matches_statsmodels(counts, alpha):
    ref = multinomial_proportions_confint(counts, alpha, method="goodman")
    r = goodman(counts, alpha=alpha)
    np.testing.assert_allclose(r.lower, ref[:, 0], rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(r.upper, ref[:, 1], rtol=1e-9, atol=1e-15)
    assert r.method == "goodman" and r.alpha == alpha


@pytest.mark.parametrize("q", [1e-300, 1e-30, 1e-12, 1e-6, 1e-4, 1e-3, 0.0025, 0.01, 0.05, 1 / 3, 0.5, 0.9, 1 - 1e-12])
def test_chi2_quantile_without_scipy_stats(q):
    # goodman's quantile avoids importing scipy.stats: special.chdtri is what chi2.isf evaluates.
    from scipy import special
    from scipy.stats import chi2, norm

    assert _chi2_1_isf(q) == float(chi2.isf(q, 1))  # bit for bit
    assert _chi2_1_isf(q) == pytest.approx(2.0 * special.gammainccinv(0.5, q), rel=1e-13)
    if q < 0.5:
        assert _chi2_1_isf(q) == pytest.approx(norm.isf(q / 2) ** 2, rel=1e-12)  # chi2_1 = Z^2


def test_goodman_ends_solve_the_score_equation_and_boundaries_exact():
    # Goodman (1965): the ends solve (x - n t)^2 = A n t (1 - t), A = chi2_1 quantile at 1 - alpha/k.
    from scipy.stats import chi2

    counts = np.array([0, 1, 17, 250, 732])
    n, alpha = counts.sum(), 0.01
    a_quant = chi2.isf(alpha / counts.size, 1)
    r = goodman(counts, alpha=alpha)
    for t in (r.lower[1:], r.upper):
        x = counts[-t.size:]
        lhs = (x - n * t) ** 2
        rhs = a_quant * n * t * (1 - t)
        np.testing.assert_allclose(lhs, rhs, rtol=1e-9)
    assert r.lower[0] == 0.0
    full = goodman([0, 0, 40], alpha=0.05)
    assert full.upper[2] == 1.0 and full.lower[0] == 0.0 and full.lower[1] == 0.0
    # small counts: the product-of-roots form keeps full relative precision (no cancellation)
    tiny = goodman([1, 10**9], alpha=0.05)
    with mp.workdps(40):
        a = mp.mpf(chi2.isf(0.05 / 2, 1))
        nn, x = mp.mpf(10**9 + 1), mp.mpf(1)
        disc = a**2 + 4 * a * x * (nn - x) / nn
        lo = (2 * x + a - mp.sqrt(disc)) / (2 * (nn + a))
    assert tiny.lower[0] == pytest.approx(float(lo), rel=1e-12)


# --------------------------------------------------------------------------------------------
# top2_confidence


@pytest.mark.parametrize("counts", [[990, 7, 3], [600, 399, 1], [50, 50, 0], [1, 0], [0, 0, 5], [1000, 0, 0, 0]])
@pytest.mark.parametrize("alpha", [0.001, 0.05])
def test_top2_clopper_pearson_is_two_one_sided_bounds_at_alpha_over_2(counts, alpha):
    # The mapping onto the oracles: p1_lower is the one-sided lower bound at level alpha/2, i.e.
    #   proportion_confint(nA, n, alpha=alpha, method="beta")[0]                 (statsmodels)
    #   binomtest(nA, n, alternative="greater").proportion_ci(1 - alpha/2).low   (scipy);
    # p2_upper is the one-sided upper bound at alpha/2 for the runner-up, clipped to 1 - p1_lower.
    t = top2_confidence(counts, alpha=alpha)
    counts = np.array(counts)
    n = int(counts.sum())
    na, nb = int(counts[t.top]), int(counts[t.runner_up])
    lo_sm = proportion_confint(na, n, alpha=alpha, method="beta")[0]
    hi_sm = proportion_confint(nb, n, alpha=alpha, method="beta")[1]
    lo_sp = binomtest(na, n, alternative="greater").proportion_ci(confidence_level=1 - alpha / 2).low
    hi_sp = binomtest(nb, n, alternative="less").proportion_ci(confidence_level=1 - alpha / 2).high
    lo_sm = 0.0 if np.isnan(lo_sm) else lo_sm  # statsmodels gives NaN at k = 0
    assert t.p1_lower == pytest.approx(lo_sm, rel=1e-10, abs=1e-14)
    assert t.p1_lower == pytest.approx(lo_sp, rel=1e-10, abs=1e-14)
    assert t.p2_upper == pytest.approx(min(hi_sp, 1 - lo_sp), rel=1e-10, abs=1e-14)
    hi_sm = 1.0 if np.isnan(hi_sm) else hi_sm
    assert t.p2_upper == pytest.approx(min(hi_sm, 1 - lo_sm), rel=1e-10, abs=1e-14)
    assert t.p2_upper <= 1 - t.p1_lower
    assert (t.method, t.alpha) == ("clopper-pearson", alpha)
    # Cohen et al.'s lowerConfBound(nA, n, a) = proportion_confint(nA, n, alpha=2a)[0]: ours at
    # alpha is theirs at alpha/2.
    assert t.p1_lower == pytest.approx(clopper_pearson_interval(na, n, alpha=2 * (alpha / 2)).lower, rel=1e-15)


@pytest.mark.parametrize("method, fn", [("sison-glaz", sison_glaz), ("goodman", goodman)])
@pytest.mark.parametrize("counts", [[700, 200, 60, 40], [5, 3, 1, 1, 0, 0, 0], [30, 70], [0, 12, 12, 3]])
def test_top2_simultaneous_methods_use_the_simultaneous_intervals(method, fn, counts):
    t = top2_confidence(counts, alpha=0.05, method=method)
    ci = fn(counts, alpha=0.05)
    assert t.p1_lower == ci.lower[t.top]
    # p2_upper bounds every other class: the largest other upper end, which is the runner-up's
    # (the ends grow with the count), clipped to 1 - p1_lower.
    others = np.delete(ci.upper, t.top)
    assert ci.upper[t.runner_up] == others.max()
    assert t.p2_upper == min(others.max(), 1 - t.p1_lower)


def test_top2_clipping_is_active_and_valid():
    # With two classes Sison-Glaz's upper end for the runner-up is phat2 + (c + 2 gamma)/n while
    # 1 - p1_lower = phat2 + c/n: the clip p2_upper <= 1 - p1_lower is active (gamma > 0).
    ci = sison_glaz([70, 30], alpha=0.05)
    t = top2_confidence([70, 30], alpha=0.05, method="sison-glaz")
    assert ci.upper[1] > 1 - ci.lower[0]
    assert t.p2_upper == 1 - t.p1_lower


def test_top2_top_and_runner_up_selection_and_ties():
    t = top2_confidence([5, 9, 9, 1], alpha=0.05)
    assert (t.top, t.runner_up) == (1, 2)  # argmax ties -> lowest index; runner-up likewise
    t = top2_confidence([5, 9, 9, 1], alpha=0.05, top=0)
    assert (t.top, t.runner_up) == (0, 1)
    t = top2_confidence([5, 9, 9, 1], alpha=0.05, top=np.int64(3))
    assert (t.top, t.runner_up) == (3, 1)
    assert t.p1_lower < t.p2_upper  # a fixed top class need not be the largest count
    assert isinstance(t, Top2Confidence)
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.top = 0  # type: ignore[misc]


def test_top_two_is_the_one_class_selection():
    # One helper selects classes for top2_confidence, the certificates and PREDICT: argmax with ties to
    # the lowest index; the runner-up is the argmax of the other classes (ties likewise).
    assert _top_two(np.array([5, 9, 9, 1])) == (1, 2)
    assert _top_two(np.array([5, 9, 9, 1]), top=3) == (3, 1)
    assert _top_two(np.array([0, 0, 7])) == (2, 0)
    assert _top_two(np.array([4, 4])).runner_up == 1
    counts = np.array([3, 8, 8])
    _top_two(counts)
    assert counts.tolist() == [3, 8, 8]  # the input is not modified


@settings(max_examples=80, deadline=None)
@given(counts=st.lists(st.integers(0, 3000), min_size=2, max_size=12).filter(lambda c: sum(c) > 0),
       alpha=st.floats(1e-4, 0.5), method=st.sampled_from(METHODS), data=st.data())
def test_top2_invariants(counts, alpha, method, data):
    top = data.draw(st.none() | st.integers(0, len(counts) - 1))
    t = top2_confidence(counts, alpha=alpha, method=method, top=top)
    c = np.array(counts)
    n = c.sum()
    assert t.top == (int(np.argmax(c)) if top is None else top)
    assert t.runner_up != t.top and c[t.runner_up] == np.delete(c, t.top).max()
    assert t.runner_up == min(j for j in range(c.size) if j != t.top and c[j] == c[t.runner_up])
    assert 0.0 <= t.p1_lower <= c[t.top] / n
    # the upper bound is at least the runner-up's share and never above 1 - p1_lower
    assert c[t.runner_up] / n <= t.p2_upper <= 1.0 - t.p1_lower


def test_top2_methods_constant():
    assert METHODS == ("clopper-pearson", "sison-glaz", "goodman")
    for m in METHODS:
        t = top2_confidence([80, 15, 5], alpha=0.01, method=m)
        assert 0 < t.p2_upper < t.p1_lower < 0.8


# --------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize("fn", [lambda c, a: sison_glaz(c, alpha=a), lambda c, a: goodman(c, alpha=a),
                                lambda c, a: top2_confidence(c, alpha=a)])
def test_count_errors(fn):
    with pytest.raises(ValueError, match=r"counts \(-1\) at index \(1,\) must be a non-negative integer count"):
        fn([3, -1, 2], 0.05)
    with pytest.raises(ValueError, match=r"counts \(1\.5\) at index \(0,\) must be a non-negative integer count"):
        fn([1.5, 2, 2], 0.05)
    with pytest.raises(ValueError, match=r"counts \(nan\) at index \(2,\) must be a non-negative integer count"):
        fn([1, 2, float("nan")], 0.05)
    with pytest.raises(ValueError, match=r"counts must be a 1-D array of class counts, got shape \(2, 2\)"):
        fn([[1, 2], [3, 4]], 0.05)
    with pytest.raises(ValueError, match="counts must have at least 2 classes, got 1"):
        fn([10], 0.05)
    with pytest.raises(ValueError, match=r"counts must contain at least one sample \(all counts are 0\)"):
        fn([0, 0, 0], 0.05)
    with pytest.raises(ValueError, match=r"counts \('a'\) at index \(0,\) must be a non-negative integer count, not a string"):
        fn(["a", "b"], 0.05)


@pytest.mark.parametrize("bad", [0, 1, -0.1, 1.5, float("nan")])
def test_alpha_errors(bad):
    for call in (lambda: clopper_pearson_interval(1, 10, alpha=bad), lambda: sison_glaz([5, 5], alpha=bad),
                 lambda: goodman([5, 5], alpha=bad), lambda: top2_confidence([5, 5], alpha=bad)):
        with pytest.raises(ValueError, match=r"alpha \(.*\) must be in the open interval \(0, 1\)"):
            call()
    with pytest.raises(ValueError, match=r"alpha \('x'\) must be a real number in the open interval \(0, 1\)"):
        top2_confidence([5, 5], alpha="x")


def test_clopper_pearson_errors():
    with pytest.raises(ValueError, match=r"k \(11\) must be in \[0, n\] \(n = 10\)"):
        clopper_pearson_interval(11, 10, alpha=0.05)
    with pytest.raises(ValueError, match=r"k \(-1\) at index \(1,\) must be in \[0, n\] \(n = 10\)"):
        clopper_pearson_interval([0, -1], 10, alpha=0.05)
    with pytest.raises(ValueError, match=r"n \(0\) must be an integer >= 1"):
        clopper_pearson_interval(0, 0, alpha=0.05)
    with pytest.raises(ValueError, match=r"k \(2\.5\) must be an integer"):
        clopper_pearson_interval(2.5, 10, alpha=0.05)
    with pytest.raises(ValueError, match=r"n \(nan\) must be an integer"):
        clopper_pearson_interval(2, float("nan"), alpha=0.05)
    with pytest.raises(ValueError, match=r"k \('3'\) must be an integer, not a string"):
        clopper_pearson_interval("3", 10, alpha=0.05)
    with pytest.raises(ValueError, match=r"k \(shape \(2,\)\) and n \(shape \(3,\)\) must broadcast"):
        clopper_pearson_interval([1, 2], [10, 10, 10], alpha=0.05)


def test_top2_errors():
    with pytest.raises(ValueError, match=r"method \('wilson'\) must be one of 'clopper-pearson', 'sison-glaz', 'goodman'"):
        top2_confidence([5, 5], alpha=0.05, method="wilson")
    with pytest.raises(ValueError, match=r"top \(3\) must be a class index in \[0, 3\)"):
        top2_confidence([5, 5, 1], alpha=0.05, top=3)
    with pytest.raises(ValueError, match=r"top \(-1\) must be a class index in \[0, 3\)"):
        top2_confidence([5, 5, 1], alpha=0.05, top=-1)
    with pytest.raises(ValueError, match=r"top \(1\.0\) must be an integer class index in \[0, 2\)"):
        top2_confidence([5, 5], alpha=0.05, top=1.0)
    with pytest.raises(ValueError, match=r"top \(True\) must be an integer class index in \[0, 2\)"):
        top2_confidence([5, 5], alpha=0.05, top=True)
