"""Confidence intervals on class probabilities from Monte Carlo class counts.

A smoothed classifier's class distribution ``p = (p_1, ..., p_k)`` is estimated from the counts of
``n`` noisy samples, ``counts ~ Multinomial(n, p)``. A certificate needs a lower bound on the
probability of the predicted class and an upper bound on every other class probability, valid
together with probability at least ``1 - alpha`` over the sampling. Three methods:

``"clopper-pearson"``
    The paper's method (Li et al. 2019): exact one-sided Clopper-Pearson (1934) bounds for
    the top class (lower) and the runner-up (upper), each at level ``alpha / 2`` (Bonferroni), so
    the pair is jointly valid with probability ``>= 1 - alpha``. Exact (not asymptotic), provided
    the top class is fixed in advance or chosen on separate samples (see :func:`top2_confidence`).
``"sison-glaz"``
    Sison & Glaz (1995) simultaneous intervals for all ``k`` proportions, as computed by R's
    ``MultinomialCI`` package, which the official STN code called. Approximate: it rests on an
    Edgeworth expansion that is accurate for many classes (Sison & Glaz show ``k >= 7``) and large
    ``n``; its coverage is not guaranteed at small ``n``, for ``k = 2``, or at the edge of the
    simplex (unanimous counts give ``lower = 1``; with 10 classes, ``p_1 = 0.999``, ``n = 1000``
    and ``alpha = 0.001`` it misses ``p_1`` in about a third of the draws).
``"goodman"``
    Goodman (1965) simultaneous intervals: Bonferroni over the ``k`` classes of two-sided
    chi-square (Wilson-type score) intervals. Approximate: usually recommended when every count is
    at least 5.

Certification policy. Only the methods in :data:`GUARANTEED_METHODS` (``"clopper-pearson"``)
certify by default: :func:`renyi_cert.certificate.certify_from_counts`,
:func:`renyi_cert.certificate.certify_from_counts_single` and :func:`renyi_cert.backend.certify`
refuse ``"sison-glaz"`` and ``"goodman"`` (no coverage guarantee: asymptotic approximations)
unless called with ``allow_unguaranteed=True`` (``--allow-unguaranteed`` on the command line).
The certificates then cap ``p1_lower`` at ``(alpha / 2) ** (1 / n)``, the largest lower bound an
exact Clopper-Pearson bound gives from ``n`` samples, so finite counts never certify an infinite
radius. The functions in this module return the raw intervals, without that cap.

Relation to ``statsmodels`` (a test oracle only; the library does not import it):

* ``clopper_pearson_interval(k, n, alpha=alpha)`` is the *two-sided* equal-tailed interval at
  confidence ``1 - alpha``, i.e. ``statsmodels.stats.proportion.proportion_confint(k, n, alpha,
  method="beta")``: each end on its own is a one-sided bound at level ``alpha / 2``. A one-sided
  bound at level ``a`` is therefore ``clopper_pearson_interval(k, n, alpha=2 * a).lower`` (or
  ``.upper``); this is how Cohen et al.'s code calls ``proportion_confint(nA, n, alpha=2 * alpha)``.
* ``top2_confidence(counts, alpha=alpha, method="clopper-pearson")`` takes the *lower* end of the
  two-sided interval at ``alpha`` for the top class and the *upper* end of the two-sided interval
  at ``alpha`` for the runner-up: two one-sided bounds at ``alpha / 2`` each, jointly at
  ``1 - alpha`` by Bonferroni. (Equivalently ``scipy.stats.binomtest(k, n,
  alternative="greater").proportion_ci(1 - alpha / 2).low`` and the ``"less"`` counterpart.)
* ``sison_glaz(counts, alpha=alpha)`` and ``goodman(counts, alpha=alpha)`` equal
  ``multinomial_proportions_confint(counts, alpha, method=...)`` (Sison-Glaz up to the float64
  cancellation of the reference code for large counts, see :func:`sison_glaz`): all ``k``
  two-sided intervals hold simultaneously with (approximate) probability ``1 - alpha``; using
  only the top class's lower end and the other classes' upper ends keeps (at least) that level.

Names: the results are :class:`ConfidenceInterval` and :class:`Top2Confidence`; in the API
"bounds" means the certified-radius bounds of :data:`renyi_cert.bounds.BOUNDS` only. The
significance level ``alpha`` is keyword-only everywhere here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from ._validate import _first_bad, _show, as_int_array, check_alpha, check_choice, check_counts

# scipy.special is imported on first use, not with the package (see benchmarks/bench_import.py);
# scipy.stats is not used at all (its import alone takes about half a second).

METHODS = ("clopper-pearson", "sison-glaz", "goodman")

#: The methods whose level ``1 - alpha`` is exact for every ``n`` (not an asymptotic
#: approximation); only these certify unless ``allow_unguaranteed=True``.
GUARANTEED_METHODS = ("clopper-pearson",)

# The largest float64 below 1: a lower bound that rounds to 1.0 is rounded down to this instead.
_BELOW_ONE = float(np.nextafter(1.0, 0.0))

__all__ = [
    "METHODS",
    "GUARANTEED_METHODS",
    "ConfidenceInterval",
    "Top2Confidence",
    "clopper_pearson_interval",
    "sison_glaz",
    "goodman",
    "top2_confidence",
]


@dataclass(frozen=True)
class ConfidenceInterval:
    """Confidence intervals on one or several proportions (lower and upper confidence bounds).

    Attributes
    ----------
    lower, upper : float or numpy.ndarray
        The bounds (floats for scalar input to :func:`clopper_pearson_interval`, arrays otherwise).
    method : str
        One of :data:`METHODS`.
    alpha : float
        ``1 - alpha`` is the (two-sided, for the simultaneous methods simultaneous) confidence level.
    """

    lower: float | np.ndarray
    upper: float | np.ndarray
    method: str
    alpha: float


@dataclass(frozen=True)
class Top2Confidence:
    """Confidence bounds for the top two classes: a lower bound for the top class's probability
    and an upper bound for every other class's, holding jointly at level ``1 - alpha``.

    Attributes
    ----------
    top : int
        Index of the class whose probability is bounded below.
    runner_up : int
        Index of the largest count among the other classes (ties: lowest index).
    p1_lower : float
        Lower confidence bound on ``p[top]``.
    p2_upper : float
        Upper confidence bound on ``max_{j != top} p[j]``; at most ``1 - p1_lower``.
    method : str
        One of :data:`METHODS`.
    alpha : float
        The pair holds jointly with probability at least ``1 - alpha`` (see :func:`top2_confidence`).
    """

    top: int
    runner_up: int
    p1_lower: float
    p2_upper: float
    method: str
    alpha: float


# --------------------------------------------------------------------------------------------
# Clopper-Pearson


# Beyond this many trials scipy's inverse incomplete beta no longer resolves the distance between
# the bound and k/n (about 3 z sqrt(p (1 - p) / n)): at n = 1e16 the lower bound it returns is 0.6 %
# too close to k/n, at 1e18 60 % -- too optimistic, i.e. not a valid bound. Up to 1e13 it agrees
# with the normal approximation of the gap to 1e-7 relative (measured), far beyond any Monte Carlo
# budget (Cohen et al. use n = 1e5).
MAX_TRIALS = 10**13


def _check_k_n(k: ArrayLike, n: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Successes k and trials n: integers (integer-valued floats accepted), 0 <= k <= n, 1 <= n <= 1e13."""
    out = [as_int_array(name, value, "an integer") for name, value in (("k", k), ("n", n))]
    k_arr, n_arr = out
    bad = n_arr < 1
    if bad.any():
        v, where = _first_bad(n_arr, bad)
        raise ValueError(f"n ({_show(v)}){where} must be an integer >= 1")
    bad = n_arr > MAX_TRIALS
    if bad.any():
        v, where = _first_bad(n_arr, bad)
        raise ValueError(f"n ({_show(v)}){where} must be at most 10**13: beyond it the Clopper-Pearson bound "
                         "cannot be computed accurately enough in float64 to stay a valid bound")
    try:
        k_arr, n_arr = np.broadcast_arrays(k_arr, n_arr)
    except ValueError:
        raise ValueError(
            f"k (shape {k_arr.shape}) and n (shape {n_arr.shape}) must broadcast to a common shape"
        ) from None
    bad = (k_arr < 0) | (k_arr > n_arr)
    if bad.any():
        idx = tuple(np.argwhere(bad)[0])
        where = "" if k_arr.ndim == 0 else f" at index {tuple(int(i) for i in idx)}"
        raise ValueError(f"k ({int(k_arr[idx])}){where} must be in [0, n] (n = {int(n_arr[idx])})")
    return k_arr, n_arr


def clopper_pearson_interval(k: ArrayLike, n: ArrayLike, *, alpha: float) -> ConfidenceInterval:
    """Two-sided equal-tailed Clopper-Pearson (1934) interval for a binomial proportion.

    For ``k ~ Binomial(n, p)``: ``P(p < lower) <= alpha / 2`` and ``P(p > upper) <= alpha / 2`` for
    every ``p``, so the interval covers ``p`` with probability at least ``1 - alpha``, and each end
    alone is a one-sided bound at level ``alpha / 2``. Same as ``statsmodels``'
    ``proportion_confint(k, n, alpha, method="beta")``.

    ``lower = Beta(alpha/2; k, n - k + 1)`` quantile, exactly 0 at ``k = 0``;
    ``upper = Beta(1 - alpha/2; k + 1, n - k)`` quantile, exactly 1 at ``k = n``.
    At ``k = n`` the lower end is ``(alpha / 2) ** (1 / n)``: ``n`` caps how large a lower bound
    (and so a certified radius) can be.

    Parameters
    ----------
    k : int or array_like of int
        Successes, ``0 <= k <= n``.
    n : int or array_like of int
        Trials, ``>= 1``; broadcast with ``k``.
    alpha : float
        In ``(0, 1)``.

    Returns
    -------
    ConfidenceInterval
        ``lower``, ``upper`` (floats for scalar input), ``method="clopper-pearson"``, ``alpha``.
    """
    from scipy import special

    alpha = check_alpha(alpha)
    k_arr, n_arr = _check_k_n(k, n)
    kf = k_arr.astype(np.float64)
    nf = n_arr.astype(np.float64)
    lower = np.zeros(kf.shape)
    upper = np.ones(kf.shape)
    # Boundary cases branch before the solver: lower = 0 at k = 0, upper = 1 at k = n.
    pos = k_arr > 0
    lower[pos] = special.betaincinv(kf[pos], nf[pos] - kf[pos] + 1.0, alpha / 2.0)
    below = k_arr < n_arr
    # Upper end: the (1 - alpha/2) quantile of Beta(k + 1, n - k), computed through the
    # complementary incomplete beta (no 1 - alpha/2 rounding for small alpha).
    upper[below] = special.betainccinv(kf[below] + 1.0, nf[below] - kf[below], alpha / 2.0)
    if lower.ndim == 0:
        return ConfidenceInterval(float(lower), float(upper), "clopper-pearson", alpha)
    return ConfidenceInterval(lower, upper, "clopper-pearson", alpha)


# --------------------------------------------------------------------------------------------
# Sison-Glaz


def _log_poisson_pmf_at_mean(m: np.ndarray) -> np.ndarray:
    """log P(Y = m) for Y ~ Poisson(m), m a non-negative integer (array).

    ``m log m - m - log m!`` cancels for large ``m`` (absolute error ~ ``eps * m log m``); from
    ``m = 20`` on we use Stirling's series ``-log(2 pi m)/2 - 1/(12m) + 1/(360m^3) - 1/(1260m^5)
    + 1/(1680m^7)``, whose truncation error is below ``1/(1188 m^9) < 1e-14`` there.
    """
    from scipy import special

    m = np.asarray(m, dtype=np.float64)
    out = np.zeros(m.shape)
    small = (m > 0) & (m < 20)
    ms = m[small]
    out[small] = ms * np.log(ms) - ms - special.gammaln(ms + 1.0)
    big = m >= 20
    mb = m[big]
    out[big] = -0.5 * np.log(2.0 * np.pi * mb) - (
        1.0 / (12.0 * mb) - 1.0 / (360.0 * mb**3) + 1.0 / (1260.0 * mb**5) - 1.0 / (1680.0 * mb**7)
    )
    return out


class _SisonGlazCoverage:
    """Sison & Glaz's approximation nu(c) of P(|X_i - counts_i| <= c for all i), X ~ Mult(n, counts/n).

    Levin's (1981) representation: ``P = n! / (n^n e^-n) * prod_i P(b_i <= Y_i <= a_i) * f(n)``,
    with ``Y_i ~ Poisson(counts_i)`` independent, ``[b_i, a_i] = [max(counts_i - c, 0),
    min(counts_i + c, n)]`` and ``f`` the Edgeworth approximation of the density at ``n`` of the
    sum of the ``Y_i`` truncated to their boxes (Sison & Glaz 1995, eq. (1)-(7); May & Johnson
    2000; R's MultinomialCI).

    Numerics. The reference implementations get the truncated moments from factorial moments of
    order up to 4, which cancel catastrophically for large counts (terms of size ``lam^4`` leave a
    central moment of size ``c^4``): at counts ``(4939, 2, 59)`` they lose 5 of 16 digits of
    ``nu``. Here, for each class (``lam = counts_i``, an integer, is the mode), the weights
    ``w_j = P(Y = j) / P(Y = lam)`` are built outward from the mode in the log domain
    (``log w_{lam+m} = -sum_{t<=m} log1p(t/lam)``), and the sums ``sum w_j (j - lam)^r`` over a
    box are cumulative sums outward from the mode on each side (no differences of large numbers).
    Weights beyond ``15 sqrt(lam) + 50`` from the mode are below ``1e-40`` and are dropped. The
    result agrees with a 40-digit mpmath evaluation to ~1e-13 relative.
    """

    def __init__(self, counts: np.ndarray):
        self.n = n = int(counts.sum())
        # A class with no counts is Poisson(0): all its mass at 0, its box is {0} for every c, so
        # it contributes P = 1 and zero moments; only the other classes are stored.
        lam = counts[counts > 0].astype(np.int64)
        lamf = lam.astype(np.float64)
        cap = np.ceil(15.0 * np.sqrt(lamf) + 50.0).astype(np.int64)
        self.left_cap = np.minimum(cap, lam)  # b >= 0
        self.right_cap = np.minimum(cap, n - lam)  # a <= n
        # Per class, cumulative sums S_r(d) = sum_{m=1}^{d} w_{lam -/+ m} (-/+ m)^r for d = 0..cap,
        # stored back to back in one flat array per side (memory ~ sum of the caps).
        self.left_offset = np.concatenate([[0], np.cumsum(self.left_cap + 1)[:-1]])
        self.right_offset = np.concatenate([[0], np.cumsum(self.right_cap + 1)[:-1]])
        left, right = [], []
        powers = np.arange(5.0)[:, None]
        for lam_i, lc, rc in zip(lamf, self.left_cap, self.right_cap):
            # w_{lam - m} = prod_{s=0}^{m-1} (1 - s/lam);  w_{lam + m} = prod_{s=1}^{m} 1/(1 + s/lam)
            t = np.arange(1, lc + 1, dtype=np.float64)
            w = np.exp(np.cumsum(np.log1p(-(t - 1.0) / lam_i)))  # t <= lam: finite down to j = 0
            left.append(np.hstack([np.zeros((5, 1)), np.cumsum(w * (-t) ** powers, axis=1)]))
            t = np.arange(1, rc + 1, dtype=np.float64)
            w = np.exp(-np.cumsum(np.log1p(t / lam_i)))
            right.append(np.hstack([np.zeros((5, 1)), np.cumsum(w * t**powers, axis=1)]))
        self.left = np.hstack(left) if left else np.zeros((5, 0))  # (5, sum of caps + 1)
        self.right = np.hstack(right) if right else np.zeros((5, 0))
        self.right[0] += 1.0  # the mode itself: weight 1, (j - lam)^r = 0 for r >= 1
        self.log_mode = _log_poisson_pmf_at_mean(lamf)  # log P(Y_i = lam_i)
        self.log_pmf_nn = float(_log_poisson_pmf_at_mean(np.array([float(n)]))[0])

    def __call__(self, c: np.ndarray) -> np.ndarray:
        """nu(c) for integer half-widths 1 <= c < n (array of shape (C,))."""
        c = np.asarray(c, dtype=np.int64)[:, None]
        il = self.left_offset[None, :] + np.minimum(c, self.left_cap[None, :])  # (C, k nonzero)
        ir = self.right_offset[None, :] + np.minimum(c, self.right_cap[None, :])
        s = [self.left[r][il] + self.right[r][ir] for r in range(5)]
        m1, m2, m3, m4 = (s[r] / s[0] for r in range(1, 5))  # moments about lam
        mu2 = m2 - m1**2  # central moments about the truncated mean lam + m1
        mu3 = m3 - 3.0 * m1 * m2 + 2.0 * m1**3
        mu4 = m4 - 4.0 * m1 * m3 + 6.0 * m1**2 * m2 - 3.0 * m1**4
        s2 = mu2.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            g1 = mu3.sum(axis=1) / s2**1.5
            g2 = (mu4.sum(axis=1) - 3.0 * (mu2**2).sum(axis=1)) / s2**2
            x = -m1.sum(axis=1) / np.sqrt(s2)  # (n - sum of means) / sd, as sum(lam) = n
            h3 = x**3 - 3 * x
            h4 = x**4 - 6 * x**2 + 3
            h6 = x**6 - 15 * x**4 + 45 * x**2 - 15
            phi = np.exp(-(x**2) / 2) / np.sqrt(2 * np.pi)
            f = phi * (1 + g1 * h3 / 6 + g2 * h4 / 24 + g1**2 * h6 / 72) / np.sqrt(s2)
            log_p_box = (np.log(s[0]) + self.log_mode[None, :]).sum(axis=1)
            # A non-positive Edgeworth density gives NaN / 0 here, as in the reference
            # implementation; such a c is never accepted by the search in sison_glaz.
            return np.exp(log_p_box + np.log(f) - self.log_pmf_nn)


def sison_glaz(counts: ArrayLike, *, alpha: float) -> ConfidenceInterval:
    """Sison & Glaz (1995) simultaneous confidence intervals for multinomial proportions.

    With (approximate) probability ``1 - alpha`` over ``counts ~ Multinomial(n, p)``, every
    ``p_i`` lies in ``[lower_i, upper_i]`` simultaneously. The intervals are
    ``[counts_i/n - c/n, counts_i/n + (c + 2 gamma)/n]`` clipped to ``[0, 1]``, where ``c`` is the
    first integer with ``nu(c) <= 1 - alpha < nu(c + 1)`` for the approximate box coverage ``nu``
    and ``gamma`` interpolates between the two. This reproduces R's ``MultinomialCI`` (used by the
    official code of Li et al. 2019) and ``statsmodels``' ``multinomial_proportions_confint(...,
    method="sison-glaz")``: ``nu(0)`` is taken as 0, and ``nu(c) = 1`` for ``c >= n``.

    The coverage is an approximation (Edgeworth expansion, accurate for many classes and large
    counts; Sison & Glaz demonstrate it for ``k >= 7``). It is not guaranteed for small ``n`` or
    few classes: with two classes, ``p = (0.9, 0.1)``, ``n = 100`` and ``alpha = 0.05`` the
    intervals miss about 12 % of the time in simulation (tests/test_soundness.py). Use
    ``"clopper-pearson"`` when an exact guarantee is needed.

    Our ``nu`` is computed without the cancellation of the reference implementations (see
    :class:`_SisonGlazCoverage`), so for large counts the intervals can differ from R's and
    statsmodels' in the 6th-8th digit -- ours are the ones that agree with a high-precision
    evaluation of the same formulas.

    Parameters
    ----------
    counts : array_like of int, shape (k,)
        Class counts, ``k >= 2``, at least one sample.
    alpha : float
        In ``(0, 1)``.

    Returns
    -------
    ConfidenceInterval
        ``lower``, ``upper`` arrays of shape (k,), ``method="sison-glaz"``, ``alpha``.

    Notes
    -----
    The half-width search evaluates ``nu`` on blocks of candidate ``c`` at once (vectorised over
    classes and candidates), so ``k = 10``, ``n = 100000`` takes a few milliseconds.
    """
    alpha = check_alpha(alpha)
    counts = check_counts("counts", counts)
    n = int(counts.sum())
    target = 1.0 - alpha

    nu = _SisonGlazCoverage(counts)

    def nu_seq(cs: np.ndarray) -> np.ndarray:
        """nu(c) with the conventions nu(0) = 0 and nu(c) = 1 for c >= n."""
        out = np.ones(cs.shape)
        out[cs == 0] = 0.0
        mid = (cs > 0) & (cs < n)
        if mid.any():
            out[mid] = nu(cs[mid])
        return out

    # Find the first c >= 0 with nu(c) <= 1 - alpha < nu(c + 1) (NaN compares false, so a c where
    # the approximation breaks down is skipped, exactly as in the reference loop).
    start, block = 0, 64
    c = None
    while start <= n:
        cs = np.arange(start, min(start + block, n + 1) + 1)  # one extra for nu(c + 1)
        nus = nu_seq(cs)
        ok = (nus[:-1] <= target) & (target < nus[1:])
        if ok.any():
            i = int(np.argmax(ok))
            c, nuc, nucp1 = int(cs[i]), float(nus[i]), float(nus[i + 1])
            break
        start = int(cs[-1])
        block *= 2
    if c is None:  # only if the approximation is NaN right below every crossing; statsmodels raises too
        raise RuntimeError("Sison-Glaz: no half-width c solves nu(c) <= 1 - alpha < nu(c + 1)")

    gamma = (target - nuc) / (nucp1 - nuc)
    phat = counts / n
    lower = np.maximum(phat - c / n, 0.0)
    upper = np.minimum(phat + (c + 2.0 * gamma) / n, 1.0)
    return ConfidenceInterval(lower, upper, "sison-glaz", alpha)


# --------------------------------------------------------------------------------------------
# Goodman


def _chi2_1_isf(q: float) -> float:
    """The upper ``q`` quantile of chi-square with 1 degree of freedom.

    ``special.chdtri(1, q)`` is what ``scipy.stats.chi2.isf(q, 1)`` evaluates (bit for bit; tested),
    without importing ``scipy.stats``; it equals ``2 * gammainccinv(1/2, q) = ndtri(q / 2) ** 2``.
    """
    from scipy import special

    return float(special.chdtri(1.0, q))


def goodman(counts: ArrayLike, *, alpha: float) -> ConfidenceInterval:
    """Goodman (1965) simultaneous confidence intervals for multinomial proportions.

    Each class gets the score (Wilson-type) interval ``{t : (counts_i - n t)^2 <= A n t (1 - t)}``
    with ``A`` the ``1 - alpha / k`` quantile of chi-square with 1 degree of freedom (Bonferroni
    over the ``k`` classes). With approximate probability at least ``1 - alpha`` all ``p_i`` are
    covered simultaneously. Same as ``statsmodels``' ``multinomial_proportions_confint(...,
    method="goodman")``. The chi-square approximation is usually trusted when every count is at
    least 5; use ``"clopper-pearson"`` when an exact guarantee is needed.

    The interval ends are the roots of ``(n + A) t^2 - (2 x + A) t + x^2 / n = 0`` (``x`` the
    count); the upper root is computed directly and the lower one as ``x^2 / (n (n + A) upper)``
    (product of the roots), avoiding cancellation. Lower is exactly 0 at ``x = 0`` and upper is
    exactly 1 at ``x = n``.

    Parameters
    ----------
    counts : array_like of int, shape (k,)
        Class counts, ``k >= 2``, at least one sample.
    alpha : float
        In ``(0, 1)``.

    Returns
    -------
    ConfidenceInterval
        ``lower``, ``upper`` arrays of shape (k,), ``method="goodman"``, ``alpha``.
    """
    alpha = check_alpha(alpha)
    counts = check_counts("counts", counts)
    k = counts.size
    n = float(counts.sum())
    x = counts.astype(np.float64)
    a_quant = _chi2_1_isf(alpha / k)
    disc = a_quant**2 + 4.0 * a_quant * x * (n - x) / n
    upper = (2.0 * x + a_quant + np.sqrt(disc)) / (2.0 * (n + a_quant))
    upper = np.where(counts == n, 1.0, np.minimum(upper, 1.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        lower = np.where(counts == 0, 0.0, x**2 / (n * (n + a_quant) * upper))
    return ConfidenceInterval(lower, upper, "goodman", alpha)


# --------------------------------------------------------------------------------------------
# Top two classes


def top2_confidence(counts: ArrayLike, *, alpha: float, method: str = "clopper-pearson",
                    top: int | None = None) -> Top2Confidence:
    """Lower bound on the top class's probability and upper bound on every other class's.

    ``top`` is the class to bound below: ``top=None`` takes the argmax of ``counts`` (ties: lowest
    index). ``runner_up`` is the largest count among the other classes (ties: lowest index).

    Guarantee: with probability at least ``1 - alpha`` over ``counts ~ Multinomial(n, p)``,

        ``p[top] >= p1_lower``  and  ``max_{j != top} p[j] <= p2_upper``,

    provided ``top`` does not depend on ``counts`` (fixed in advance, or chosen on separate
    selection samples, as in Cohen et al. 2019). Why, per method:

    * ``"clopper-pearson"`` (the method of Li et al. 2019): ``p1_lower`` is the one-sided
      Clopper-Pearson lower bound at level ``alpha / 2`` for ``counts[top]``; ``p2_upper`` is the
      one-sided upper bound at level ``alpha / 2`` for ``counts[runner_up]``. If ``j*`` is the
      other class with the largest true probability, its own upper bound holds with probability
      ``>= 1 - alpha / 2`` and the runner-up's bound is at least as large (the bound increases with
      the count and ``counts[runner_up] >= counts[j*]``), so it bounds ``max_{j != top} p[j]``.
      Bonferroni gives the joint level ``1 - alpha``. Exact: the level holds for every ``n``.
    * ``"sison-glaz"``, ``"goodman"``: simultaneous intervals at ``1 - alpha`` for all classes;
      ``p2_upper = max_{j != top} upper_j`` (which is the runner-up's, the ends growing with the
      count). Because every class is covered at once, this holds for any ``top``, including
      ``top=None`` -- but only to the accuracy of these methods' asymptotic approximations.
      Warning: Sison-Glaz breaks down at the edge of the simplex. Unanimous counts give
      ``p1_lower = 1``, and with few classes it under-covers: for ``p = (0.99, 0.01)``,
      ``n = 1000``, ``alpha = 0.01``, ``p1_lower > p[top]`` about 7 % of the time (see the
      tests). It is here to
      reproduce the official STN code; the certification functions accept it only with
      ``allow_unguaranteed=True`` (see :data:`GUARANTEED_METHODS`).

    With ``"clopper-pearson"`` and ``top=None`` the class is chosen from the same counts that
    bound it; the maximum count is biased upwards and the level ``1 - alpha`` is *not*
    guaranteed (this is what the paper's code did; see
    :func:`renyi_cert.certificate.certify_from_counts_single`).

    Finally ``p2_upper`` is clipped to ``1 - p1_lower``. This keeps the guarantee: on the event
    ``p[top] >= p1_lower`` every other class has ``p[j] <= 1 - p[top] <= 1 - p1_lower`` since the
    probabilities sum to 1. (Cohen et al. 2019 use ``p2_upper = 1 - p1_lower`` alone, with a
    one-sided bound on ``p[top]`` at the full level ``alpha``.)

    The bounds returned are the raw interval ends: nothing caps ``p1_lower`` below 1 here, so
    Sison-Glaz on unanimous counts (and Clopper-Pearson at ``k = n`` for ``n`` above about
    ``1e17``, where ``(alpha / 2) ** (1 / n)`` rounds to 1.0) give ``p1_lower = 1`` and
    ``p2_upper = 0``, which the radius functions turn into an infinite radius. The certification
    functions (:func:`renyi_cert.certificate.certify_from_counts` and the others) cap
    ``p1_lower`` at ``(alpha / 2) ** (1 / n)`` before computing radii.

    Parameters
    ----------
    counts : array_like of int, shape (k,)
        Class counts, ``k >= 2``, at least one sample.
    alpha : float
        In ``(0, 1)``.
    method : str
        One of :data:`METHODS`.
    top : int, optional
        Class index in ``[0, k)`` to bound below.

    Returns
    -------
    Top2Confidence
    """
    alpha = check_alpha(alpha)
    method = check_choice("method", method, METHODS)
    counts = check_counts("counts", counts)
    k = counts.size
    if top is not None:
        if isinstance(top, bool) or not isinstance(top, (int, np.integer)):
            raise ValueError(f"top ({top!r}) must be an integer class index in [0, {k})")
        if not 0 <= top < k:
            raise ValueError(f"top ({int(top)}) must be a class index in [0, {k})")
        top = int(top)
    top, runner_up, p1_lower, p2_upper = _top2_unclipped(counts, alpha, method, top)
    p2_upper = min(p2_upper, 1.0 - p1_lower)
    return Top2Confidence(top, runner_up, p1_lower, p2_upper, method, alpha)


class _TopTwo(NamedTuple):
    """The selected class and the runner-up of a vector of counts (see :func:`_top_two`)."""

    top: int
    runner_up: int


def _top_two(counts: np.ndarray, top: int | None = None) -> _TopTwo:
    """The top class and the runner-up of validated ``counts`` (a 1-D array, at least 2 classes).

    ``top`` is the argmax of ``counts`` unless given (ties: the lowest index); ``runner_up`` is the
    argmax of the other classes (ties: the lowest index). The one place the library selects
    classes: :func:`top2_confidence`, the certification functions and PREDICT all use it.
    """
    if top is None:
        top = int(np.argmax(counts))  # np.argmax breaks ties by the lowest index
    others = np.asarray(counts).copy()
    others[top] = -1
    return _TopTwo(int(top), int(np.argmax(others)))


class _Top2Raw(NamedTuple):
    top: int
    runner_up: int
    p1_lower: float
    p2_upper: float  # not yet clipped to 1 - p1_lower


def _top2_unclipped(counts: np.ndarray, alpha: float, method: str, top: int | None) -> _Top2Raw:
    """``(top, runner_up, p1_lower, p2_upper)`` for validated input, ``p2_upper`` not yet clipped to
    ``1 - p1_lower`` (see :func:`top2_confidence`)."""
    top, runner_up = _top_two(counts, top)
    n = int(counts.sum())

    if method == "clopper-pearson":
        p1_lower = clopper_pearson_interval(int(counts[top]), n, alpha=alpha).lower
        p2_upper = clopper_pearson_interval(int(counts[runner_up]), n, alpha=alpha).upper
    else:
        ci = sison_glaz(counts, alpha=alpha) if method == "sison-glaz" else goodman(counts, alpha=alpha)
        p1_lower = float(np.asarray(ci.lower)[top])
        p2_upper = float(np.max(np.delete(ci.upper, top)))
    return _Top2Raw(top, runner_up, float(p1_lower), float(p2_upper))


def _p1_lower_cap(n: int, alpha: float) -> float:
    """The largest lower bound on a class probability that ``n`` samples support at level ``alpha``.

    This is the one-sided Clopper-Pearson lower bound at ``k = n`` with the Bonferroni half of
    ``alpha``, ``(alpha / 2) ** (1 / n)``, computed as :func:`clopper_pearson_interval` computes it
    (so capping an exact bound never changes it), and rounded down to the largest float64 below 1
    where it rounds to 1 (``n`` above about ``1e17``). The certification functions cap
    ``p1_lower`` here, so finite counts never give ``p1_lower = 1`` and never an infinite radius.
    ``n`` (>= 1) and ``alpha`` are assumed validated.
    """
    return min(float(clopper_pearson_interval(int(n), int(n), alpha=alpha).lower), _BELOW_ONE)
