"""Numba kernels for the Renyi radius, Lemma 1 and the PixelDP bound.

Everything here works on validated float64 input; the public wrappers in :mod:`renyi_cert.bounds`
do the checking, the broadcasting and the boundary cases the docstrings promise. The kernels are
compiled once and cached on disk (``cache=True``), so a second process does not recompile.

The numerics (written out in docs/numerics.md, sections 2 and 3)
----------------------------------------------------------------
For 0 < p2 < p1 write ``G = sqrt(p1 p2)`` and ``w = atanh((p1 - p2)/(p1 + p2)) = log(p1/p2)/2``.
For two numbers the power mean has the closed form

    M_t(p1, p2) = G * cosh(t w)^(1/t),

so with ``s = order - 1`` (``order`` the Renyi order, the paper's α) and ``Phi(s) = log cosh(s w) / s`` (an even function of ``s w`` divided
by ``s``; ``Phi(0) = 0``)

    M_{1-order} = G exp(-Phi(s)),
    A(s) = 1 - p1 - p2 + 2 M_{1-order} = q + 2 G exp(-Phi(s)),          q = (1 - p1) - p2,
    D(s) = 1 - A(s) = (sqrt p1 - sqrt p2)^2 + 2 G (1 - exp(-Phi(s)))     (order >= 1, s >= 0),
    D(s) = 2 G exp(-Phi(s)) expm1(y),  y = log cosh(w) + Phi(s) = log(M_1 / M_{1-order}) >= 0
                                                                         (order < 1, s < 0).

For s >= 0 (Phi >= 0) D is a sum of two non-negative terms, each to a few ulps: (sqrt p1 -
sqrt p2)^2 is formed as (p1 - p2)^2 / (p1 + p2 + 2 G) (as total - 2 G when p2 < p1/100, where
that cancels little) and 1 - exp(-Phi) as -expm1(-Phi); at s = 0 (the order -> 1 limit) D is the
first term alone. A is a sum of positive terms. Neither suffers the cancellation of the literal
``1 - 2 (M_1 - M_{1-order})`` near ties (D is small) or far from them (A is small), and, unlike
the form 2 G e^{-Phi} expm1(log cosh w + Phi) (whose exponent carries an absolute error of a few
ulps of log(p1/p2)/2), the error does not grow with log(p1/p2). For s < 0 and w > 1 the two terms
of y, ~w each, cancel to ~log 2 (1/(-s) - 1); there y = K(-s w)/(-s) - K(w) with K(x) =
log1p(tanh x) = log cosh x - x + log 2 (0 <= K < log 2), exactly, and 2 G e^{-Phi} = (p1 + p2)
e^{-y}, so D = (p1 + p2)(1 - e^{-y}) without an error growing with w. (As order -> 0, y -> 0 and
both forms of D = 2 (M_1 - M_{1-order}) lose digits in proportion to 1/order.) The objective
``h(s) = -log A(s)`` is taken as ``-log1p(-D)`` when D < 1/2 and ``-log(A)`` otherwise. w is formed
as log(p1/p2)/2 from the correctly rounded quotient (not as a difference of logs, which cancels
when p1 and p2 are both tiny).

The radius is ``sigma * sqrt(2 sup_{s>0} h(s)/(1+s))``. g(order) = h/(1+s) is unimodal (checked
with mpmath over the domain; see the tests), so its maximiser is the unique root of
``F(s) = (1+s) h'(s) - h(s)`` (F has the sign of g'), or ``s = 0`` (order -> 1) when F(0) <= 0.
We find the root with Newton's method on F using analytic first and second derivatives of Phi,
safeguarded by a bracket (bisection when a step leaves it). Because g'(s*) = 0, an error e in s*
changes g only by O(e^2): we stop when a bisection step is below 1e-7, or a Newton step below
1e-4 (which leaves an O(1e-8) error in s), and, in both cases, the step's estimated gain in g,
|g''| step^2 / 2 with g'' ~ F'/(1+s)^2, is below 1e-9 of g. The second test is scale-free: when
p1 -> 1 and p2 is tiny, g varies on a scale in s (order - 1) of ~1e-3, where the first alone left
under-claims up to ~1e-11 of the radius. Together they leave g exact to rounding.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

__all__ = [
    "PairTerms",
    "Stationarity",
    "log_cosh",
    "pair_terms",
    "lemma1_at",
    "renyi_sup",
    "renyi_sup_many",
    "lemma1_many",
    "renyi_objective_many",
    "pixeldp_unit",
    "pixeldp_many",
    "warm_up",
    "PARALLEL_MIN",
]

_LN2 = math.log(2.0)
# Compiled once and cached on disk; error_model="numpy": division by zero gives inf/NaN, no raise.
_jit = njit(cache=True, nogil=True, error_model="numpy")
_jit_parallel = njit(parallel=True, cache=True, nogil=True, error_model="numpy")

# Newton stops once a step is below this (in s = order - 1); see the module docstring.
_S_TOL = 1e-7
# ... or once a (quadratically convergent) Newton step is below this.
_S_TOL_NEWTON = 1e-4
# ... and (both) once the step's estimated relative gain in g is below this: the next (quadratically
# convergent) iterate is then exact to rounding in g.
_GAIN_TOL = 1e-9
_MAX_ITER = 100
# First Newton iterate: the maximising order lies in (1, 1.5] over the whole domain (mpmath survey).
_S_START = 0.4


class PairTerms(NamedTuple):
    """What the objective needs from one pair 0 < p2 < p1 (the notation of the module docstring)."""

    w: float
    """``atanh((p1 - p2)/(p1 + p2)) = log(p1/p2)/2``."""
    geo_mean: float
    """``G = sqrt(p1 p2)``, the geometric mean."""
    rest: float
    """``q = 1 - p1 - p2``, the mass outside the top two (0 when p1 + p2 exceeds 1 by rounding)."""
    total: float
    """``p1 + p2``."""
    log_cosh_w: float
    """``log cosh w``."""
    gap_sq: float
    """``(sqrt p1 - sqrt p2)^2 = p1 + p2 - 2 G``, without cancellation: D at order -> 1."""


class Stationarity(NamedTuple):
    """The stationarity condition of g at s = order - 1 > 0, for Newton's method."""

    f: float
    """``F(s) = (1+s) h'(s) - h(s)``: the sign of g'(order)."""
    df: float
    """``F'(s) = (1+s) h''(s)``."""
    h: float
    """``h(s)``, the Lemma 1 bound at order = 1 + s."""


@_jit
def log_cosh(x: float) -> float:
    """log(cosh(x)) without overflow and with full relative accuracy near 0."""
    ax = abs(x)
    if ax < 1.0:
        sh = math.sinh(0.5 * ax)
        return math.log1p(2.0 * sh * sh)  # cosh x - 1 = 2 sinh^2(x/2)
    return ax + math.log1p(math.exp(-2.0 * ax)) - _LN2


@_jit
def pair_terms(p1: float, p2: float) -> PairTerms:
    """The :class:`PairTerms` of 0 < p2 < p1, p1 + p2 <= 1 (+ rounding)."""
    total = p1 + p2
    if p2 < 0.5 * p1:
        ratio = p1 / p2  # correctly rounded (> 2): log(ratio) is within an ulp or two of log(p1/p2)
        if ratio < math.inf:
            w = 0.5 * math.log(ratio)  # not log p1 - log p2, which cancels when both are tiny
        else:
            w = 0.5 * (math.log(p1) - math.log(p2))  # p1/p2 > 1.8e308: log ratio > 709 >~ |log p2|
    else:
        w = math.atanh((p1 - p2) / total)  # p1 - p2 is exact here (Sterbenz)
    geo_mean = math.sqrt(p1) * math.sqrt(p2)  # no underflow for tiny p1 * p2
    if p2 < 0.01 * p1:
        gap_sq = total - 2.0 * geo_mean  # 2 G < total / 5: little cancellation, ~1 ulp
    else:
        # (sqrt p1 - sqrt p2)^2 = (p1 - p2)^2 / (sqrt p1 + sqrt p2)^2 without cancellation; the
        # denominator is total + 2 G (a sum of positive terms), and d/(...) <= 1 cannot underflow early
        diff = p1 - p2
        gap_sq = diff * (diff / (total + 2.0 * geo_mean))
    rest = (1.0 - p1) - p2
    if rest < 0.0:
        rest = 0.0  # p1 + p2 exceeds 1 only by rounding (validated by the caller): treat as 1
    return PairTerms(w, geo_mean, rest, total, log_cosh(w), gap_sq)


@_jit
def lemma1_at(s: float, pair: PairTerms) -> float:
    """h(s) = -log(1 - p1 - p2 + 2 M_{-s}(p1, p2)): the Lemma 1 bound at order = 1 + s (any sign)."""
    if s == 0.0:
        # order -> 1: D = (sqrt p1 - sqrt p2)^2, A = q + 2 G
        d = pair.gap_sq
        if d < 0.5:
            return -math.log1p(-d)
        return -math.log(pair.rest + 2.0 * pair.geo_mean)
    if s > 0.0:
        phi = log_cosh(s * pair.w) / s
        # D = (sqrt p1 - sqrt p2)^2 + 2 G (1 - e^{-Phi}): two terms >= 0 (Phi > 0)
        d = pair.gap_sq - 2.0 * pair.geo_mean * math.expm1(-phi)
        if d < 0.5:
            return -math.log1p(-d)
        return -math.log(pair.rest + 2.0 * pair.geo_mean * math.exp(-phi))
    # order < 1 (Phi < 0): D = e expm1(y), e = 2 M_{-s}, y = log cosh w + Phi = log(M_1/M_{-s}) >= 0
    if pair.w > 1.0:
        # Far from ties the two terms of y are ~w each and cancel to ~log 2 (1/(-s) - 1); with
        # K(x) = log1p(tanh x) = log cosh x - x + log 2 (0 <= K < log 2), y = K(-s w)/(-s) - K(w)
        # exactly, and e = total e^{-y}: no error growing with w, and D = total (1 - e^{-y}).
        u = -s
        y = math.log1p(math.tanh(u * pair.w)) / u - math.log1p(math.tanh(pair.w))
        d = -pair.total * math.expm1(-y)
        if d < 0.5:
            return -math.log1p(-d)
        return -math.log(pair.rest + pair.total * math.exp(-y))
    phi = log_cosh(s * pair.w) / s
    e = 2.0 * pair.geo_mean * math.exp(-phi)
    y = pair.log_cosh_w + phi
    if y > 30.0:
        d = pair.total - e  # e <= total * exp(-30): no cancellation, and expm1(y) may overflow
    else:
        d = e * math.expm1(y)
    if d < 0.5:
        return -math.log1p(-d)
    return -math.log(pair.rest + e)


@_jit
def _stationarity(s: float, pair: PairTerms) -> Stationarity:
    """F(s) = (1+s) h'(s) - h(s), its derivative, and h(s), for s > 0."""
    x = s * pair.w
    lx = log_cosh(x)
    phi = lx / s
    th = math.tanh(x)
    if x < 0.1:
        x2 = x * x
        # x tanh x - log cosh x and x^2 sech^2 x - 2 (x tanh x - log cosh x), Taylor series
        n_x = x2 * (0.5 + x2 * (-0.25 + x2 * (1.0 / 9.0 + x2 * (-17.0 / 360.0 + x2 * 31.0 / 1575.0))))
        k_x = x2 * x2 * (-0.5 + x2 * (4.0 / 9.0 + x2 * (-17.0 / 60.0 + x2 * 248.0 / 1575.0)))
    else:
        n_x = x * th - lx
        k_x = x * x * (1.0 - th * th) - 2.0 * n_x
    dphi = n_x / (s * s)
    d2phi = k_x / (s * s * s)
    e = 2.0 * pair.geo_mean * math.exp(-phi)
    a = pair.rest + e
    d = pair.gap_sq - 2.0 * pair.geo_mean * math.expm1(-phi)  # as in lemma1_at (s > 0)
    if d < 0.5:
        h = -math.log1p(-d)
    else:
        h = -math.log(a)
    h1 = e * dphi / a
    h2 = -e * (dphi * dphi - d2phi) / a + h1 * h1
    return Stationarity((1.0 + s) * h1 - h, (1.0 + s) * h2, h)


@_jit
def renyi_sup(p1: float, p2: float) -> tuple[float, float]:
    """(sup_{order>1} g(order), the maximising order) for validated 0 < p2 < p1; 1 means the limit."""
    pair = pair_terms(p1, p2)
    h0 = lemma1_at(0.0, pair)
    f0 = pair.geo_mean * pair.w * pair.w / (pair.rest + 2.0 * pair.geo_mean) - h0  # F(0): h'(0) = G w^2 / A(0)
    if not (f0 > 0.0):
        return h0, 1.0
    lo = 0.0
    hi = math.inf
    s = _S_START
    for _ in range(_MAX_ITER):
        f, df, h = _stationarity(s, pair)
        if f > 0.0:
            lo = s
        else:
            hi = s
        if df < 0.0:
            s_new = s - f / df
        else:
            s_new = math.nan
        newton = lo < s_new < hi  # also false for NaN
        if not newton:  # fall back to bisection / expansion
            if hi == math.inf:
                s_new = 2.0 * s
            else:
                s_new = 0.5 * (lo + hi)
        step = abs(s_new - s)
        # The step's own gain in g, |g''| step^2 / 2 relative to g (g'' ~ F'/(1+s)^2 near the root and
        # g = h/(1+s)): g varies on a scale in s that shrinks as log(p1/p2) grows (down to ~1e-3 when
        # p1 -> 1 and p2 is tiny, the maximising order then near 1), so a fixed step in s is not enough.
        gain_ok = 0.5 * abs(df) * step * step <= _GAIN_TOL * (1.0 + s) * h
        s = s_new
        # A Newton step of size e leaves an error of O(e^2) in s, hence O(e^4) in g.
        if gain_ok and (
            (newton and step <= _S_TOL_NEWTON) or step <= _S_TOL * (1.0 + s) or hi - lo <= _S_TOL * (1.0 + s)
        ):
            break
    g = lemma1_at(s, pair) / (1.0 + s)
    if g >= h0:
        return g, 1.0 + s
    return h0, 1.0  # only possible when g is flat to rounding (near ties)


# Below this many elements the loops run serially: starting the thread pool costs more than it
# saves (and costs milliseconds when the machine is busy).
PARALLEL_MIN = 4096


@_jit_parallel
def _renyi_sup_parallel(p1: np.ndarray, p2: np.ndarray, g_out: np.ndarray, order_out: np.ndarray) -> None:
    for i in prange(p1.shape[0]):
        g_out[i], order_out[i] = renyi_sup(p1[i], p2[i])


@_jit
def _renyi_sup_serial(p1: np.ndarray, p2: np.ndarray, g_out: np.ndarray, order_out: np.ndarray) -> None:
    for i in range(p1.shape[0]):
        g_out[i], order_out[i] = renyi_sup(p1[i], p2[i])


def renyi_sup_many(p1: np.ndarray, p2: np.ndarray, g_out: np.ndarray, order_out: np.ndarray) -> None:
    """Vectorised :func:`renyi_sup` over 1-D contiguous arrays of valid pairs with p2 > 0."""
    kernel = _renyi_sup_parallel if p1.shape[0] >= PARALLEL_MIN else _renyi_sup_serial
    kernel(p1, p2, g_out, order_out)


@_jit
def lemma1_many(p1: np.ndarray, p2: np.ndarray, order: np.ndarray, out: np.ndarray) -> None:
    """h(order - 1) = -log(1 - p1 - p2 + 2 M_{1-order}(p1, p2)) for 0 < p2 < p1, 0 < order < inf."""
    for i in range(p1.shape[0]):
        out[i] = lemma1_at(order[i] - 1.0, pair_terms(p1[i], p2[i]))


@_jit
def renyi_objective_many(p1: np.ndarray, p2: np.ndarray, order: np.ndarray, out: np.ndarray) -> None:
    """g(order) = h(order - 1)/order for 0 < p2 < p1 and order >= 1 (order = 1: the limit)."""
    for i in range(p1.shape[0]):
        out[i] = lemma1_at(order[i] - 1.0, pair_terms(p1[i], p2[i])) / order[i]


# ---------------------------------------------------------------------------------------------
# PixelDP (Lecuyer et al. 2019), Gaussian mechanism.
# For a fixed epsilon the largest feasible delta is delta(eps) = (p1 - e^{2 eps} p2) / (1 + e^eps),
# and the certified size is L(eps) = eps / sqrt(2 log(1.25 / delta(eps))) (per unit sigma), for
# 0 < eps < min(1, w) where w = log(p1/p2)/2 (delta > 0). We maximise log L: its derivative has the
# sign of  u(eps) = 2 log C - eps * C'/C,  C = 1.25 (1 + e^eps) / (p1 - e^{2 eps} p2),
# which is positive at eps -> 0 and -> -inf at eps -> w; we bisect on its sign.
# ---------------------------------------------------------------------------------------------

_PIXELDP_EPS_MAX = 1.0  # the Gaussian mechanism's calibration holds for epsilon <= 1 only


@_jit
def _pixeldp_log_c(eps: float, p1: float, p2: float) -> tuple[float, float]:
    """log C(eps) and C'(eps)/C(eps)."""
    e1 = math.exp(eps)
    slack = p1 - e1 * e1 * p2
    log_c = math.log(1.25) + math.log1p(e1) - math.log(slack)
    dlog_c = e1 / (1.0 + e1) + 2.0 * e1 * e1 * p2 / slack
    return log_c, dlog_c


@_jit
def pixeldp_unit(p1: float, p2: float) -> tuple[float, float]:
    """(max L per unit sigma, the maximising epsilon) for validated p1 > p2 >= 0."""
    if p2 > 0.0:
        w = 0.5 * (math.log(p1) - math.log(p2))
    else:
        w = math.inf
    if w > _PIXELDP_EPS_MAX:
        log_c, dlog_c = _pixeldp_log_c(_PIXELDP_EPS_MAX, p1, p2)
        if 2.0 * log_c - _PIXELDP_EPS_MAX * dlog_c >= 0.0:
            return _PIXELDP_EPS_MAX / math.sqrt(2.0 * log_c), _PIXELDP_EPS_MAX
        hi = _PIXELDP_EPS_MAX
    else:
        hi = w
    lo = 0.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        log_c, dlog_c = _pixeldp_log_c(mid, p1, p2)
        if math.isfinite(log_c) and 2.0 * log_c - mid * dlog_c > 0.0:
            lo = mid
        else:
            hi = mid
    if lo == 0.0:
        return 0.0, 0.0
    log_c, _ = _pixeldp_log_c(lo, p1, p2)
    return lo / math.sqrt(2.0 * log_c), lo


@_jit_parallel
def _pixeldp_parallel(p1: np.ndarray, p2: np.ndarray, r_out: np.ndarray, eps_out: np.ndarray) -> None:
    for i in prange(p1.shape[0]):
        r_out[i], eps_out[i] = pixeldp_unit(p1[i], p2[i])


@_jit
def _pixeldp_serial(p1: np.ndarray, p2: np.ndarray, r_out: np.ndarray, eps_out: np.ndarray) -> None:
    for i in range(p1.shape[0]):
        r_out[i], eps_out[i] = pixeldp_unit(p1[i], p2[i])


def pixeldp_many(p1: np.ndarray, p2: np.ndarray, r_out: np.ndarray, eps_out: np.ndarray) -> None:
    """Vectorised :func:`pixeldp_unit` over 1-D arrays of valid pairs with p1 > p2."""
    kernel = _pixeldp_parallel if p1.shape[0] >= PARALLEL_MIN else _pixeldp_serial
    kernel(p1, p2, r_out, eps_out)


def warm_up() -> None:
    """Compile (or load from the on-disk cache) every kernel once."""
    a = np.array([0.9, 0.6], dtype=np.float64)
    b = np.array([0.1, 0.3], dtype=np.float64)
    out1 = np.empty(2)
    out2 = np.empty(2)
    for kernel in (_renyi_sup_parallel, _renyi_sup_serial, _pixeldp_parallel, _pixeldp_serial):
        kernel(a, b, out1, out2)
    lemma1_many(a, b, np.array([1.5, 2.0]), out1)
    renyi_objective_many(a, b, np.array([1.5, 2.0]), out1)
