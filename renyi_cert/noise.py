"""Noise distributions for randomized smoothing, each with its threat norm and certified radii.

Three frozen dataclasses, one per noise:

* :class:`Gaussian` (``sigma``): isotropic Gaussian noise, threat norm l2; bounds ``"renyi"``
  (the paper), ``"cohen"`` and ``"pixeldp"``, delegated to :data:`renyi_cert.bounds.BOUNDS`.
* :class:`Laplace` (``scale`` b): i.i.d. Laplace noise, threat norm l1; bounds ``"renyi"`` (Lemma 1
  of Li et al. with the Laplace Renyi divergence, supremum over the order), ``"teng"`` (Teng, Lee &
  Yuan, ICLR 2020) and ``"pixeldp"`` (Lecuyer et al., S&P 2019, Laplace mechanism).
* :class:`Uniform` (``half_width`` lambda): i.i.d. uniform noise on [-lambda, lambda], threat norm
  l1; bound ``"yang"`` (Yang et al., ICML 2020) only: the Renyi divergence between uniform noise
  and any shifted copy of it is infinite, so Lemma 1 certifies nothing.

Every ``radius(p1, p2, bound=...)`` follows the conventions of :mod:`renyi_cert.bounds`: ``p1`` is
(a lower confidence bound on) the top class's probability under noise, ``p2`` (an upper bound on)
the runner-up's; scalars give a ``float``, arrays broadcast (numpy rules) and give an ``ndarray``;
``p1 <= p2`` gives 0; invalid input raises ``ValueError`` naming the value and the constraint.
All radii are non-decreasing in p1 and non-increasing in p2.

The Laplace Renyi radius
------------------------
For Lap(0, b) and Lap(t, b) in one dimension and a Renyi order a > 1 (Mironov, "Renyi
Differential Privacy", CSF 2017, Table II), with u = |t|/b,

    D_a(t) = 1/(a-1) log( a/(2a-1) e^{(a-1)u} + (a-1)/(2a-1) e^{-a u} ).

It is a log-sum-exp of affine functions of u, hence convex, with D_a(0) = 0, so superadditive: over
the l1 ball of radius r (independent coordinates) the worst shift puts all of r on one coordinate,
and the d-dimensional divergence is at most D_a(r). Lemma 1 of Li, Chen, Wang & Carin (NeurIPS
2019) certifies r when D_a(r) < h(a) := -log(1 - p1 - p2 + 2 M_{1-a}(p1, p2)) for some a > 1, so the
radius is ``b * sup_{a>1} u(a)`` with u(a) the root of D_a(u b) = h(a) (D_a increases in u).

Numerics. With s = a - 1, k = 2s + 1 and E(z) = e^z - 1 - z >= 0,

    Psi(s, u) := s D_a = log1p(m(u)),   m(u) = ((1+s) E(s u) + s E(-(1+s) u)) / k,

a sum of non-negative terms (the literal form cancels for small u); for s u > 20 we use
``s D_a = s u + log((1+s)/k) + log1p(s/(1+s) e^{-k u})`` instead (no overflow). Psi is convex in
u, so Newton's method lands above the root after one step and then descends monotonically; h(a) is
the project's cancellation-free kernel (:func:`renyi_cert._kernels.lemma1_at`). The two limits of
the order are closed forms: a -> inf gives u = -log(1 - p1 + p2); a -> 1 gives the root u0 of the
Kullback-Leibler divergence E(-u) = u + e^{-u} - 1 = h(1) = -log(1 - (sqrt p1 - sqrt p2)^2), with
sqrt p1 - sqrt p2 formed as (p1 - p2) / (sqrt p1 + sqrt p2).

The supremum over the order. u(x), x = log s, is smooth and unimodal (checked against mpmath on
dense samples; see the tests), so the supremum is the order -> 1 limit when u decreases there,
the order -> inf limit when q = 1 - p1 - p2 = 0, and otherwise the root of du/dx = 0. Along the
curve Psi(s, u) = s h(s) the implicit-function theorem gives du/ds = -R_s / R_u and d2u/ds2 from
the second partial derivatives of R = Psi - s h (all in closed form, arranged as sums of
non-negative terms so that they keep their relative accuracy near ties). The sign of du/ds at
s -> 0 comes from the expansion u(s) = u0 + a s + b s^2: a = (h'(0) - psi2(u0)) / KL'(u0), with
psi2 the s^2 coefficient of Psi; the early return needs a < 0 beyond its rounding error. The
search starts at the maximiser of a quadratic model of u at one end (u0 + a s + b s^2 when a is
resolved and that maximiser is small, else u_inf + c1/s + c2/s^2, whose coefficients are closed
forms in p1 and p2) and takes safeguarded Newton steps on du/dx (a bracket from the signs of
du/dx, bisection when a step leaves it or u is not concave there), each with a warm-started root;
it stops when Newton's predicted gain, or the most u can still gain inside the bracket, is below
2^-56 relative. On uniformly random pairs a quarter return early and the rest take three or four
Newton steps. The tests hold the radius to 1e-13 relative of an mpmath oracle at 50 digits (and at
most 2e-15 above it), near ties, near both limits and near p1 + p2 = 1 included. Every value kept
is the radius certified by one order (or one of the two limits, suprema of such radii), a root
approached from above that stops within O(1e-18) relative of it, and the result is the largest of
them: a search that stops short only under-claims. Degenerate input claims nothing rather than too
much: a root that does not converge counts as 0, and where h(1) falls below the smallest normal
double (which needs p1 - p2 < 3e-154) the result is the order -> inf value.

Boundary cases (exact, before the numerics): p1 <= p2 gives 0. p2 = 0 makes h constant
(-log(1 - p1)) while D_a grows with a, so the supremum is the limit a -> 1: u solves
u + e^{-u} - 1 = -log(1 - p1); p1 = 1 (so p2 = 0) gives inf.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numba import njit, prange
from numpy.typing import ArrayLike

from . import _kernels
from ._validate import as_float_array, check_choice, check_pair, check_scalar_sigma

__all__ = ["Gaussian", "Laplace", "Uniform", "NOISES", "as_noise", "scale_of"]

_jit = njit(cache=True, nogil=True, error_model="numpy")

# Switch from the E-form to the log-form of s D_a when s u exceeds this (e^20 does not overflow).
_SU_SWITCH = 20.0
# The root of s D_{1+s}(u) = target: Newton stops after a step below this, relative to u (the
# iterate is then above the root by O(step^2), about 1e-18 relative: rounding) ...
_U_TOL = 1e-9
# ... or after this many steps (a guard: a few suffice from the starts used here).
_ROOT_ITER = 100
# The search over x = log(s): it stops once Newton's predicted gain in u is below this (relative) ...
_GAIN_TOL = 2.0**-56
# ... or after this many steps, or once it would leave |x| <= _X_MAX (s = e^x in [2e-20, 3e19]).
_SEARCH_ITER = 60
_X_MAX = 45.0
# The slope a of u(s) at s -> 0 is known to about this relative precision (see _near_one).
_A_TOL = 1e-13
# A step of the search moves x by at most this much.
_X_STEP = 2.0
# The start is the order -> 1 model's maximiser when that lies below this x (see _start).
_X_LEFT = 2.0
_LN2 = math.log(2.0)
# Below this (the smallest normal double) h at order -> 1 has lost its relative accuracy.
_H_MIN = 2.2250738585072014e-308


# 1/n! for n = 2 .. 19: the series E(z) = z^2 sum_{n>=0} z^n/(n+2)!
_INV_FACT = np.array([1.0 / math.factorial(n) for n in range(2, 20)])


@_jit
def _em1mz(z: float) -> float:
    """E(z) = e^z - 1 - z >= 0, with full relative accuracy (series to z^19 for |z| < 1)."""
    if abs(z) < 1.0:
        acc = _INV_FACT[-1]
        for j in range(_INV_FACT.shape[0] - 2, -1, -1):
            acc = acc * z + _INV_FACT[j]
        return acc * z * z
    return math.expm1(z) - z


@_jit
def _lap_sd(s: float, u: float) -> tuple[float, float]:
    """(s D_{1+s}(u), its derivative in u) for s > 0, u >= 0 (u = |t|/b)."""
    k = 2.0 * s + 1.0
    em = math.expm1(-k * u)
    ek = 1.0 + em  # e^{-k u}: absolute accuracy suffices below
    deriv = s * (1.0 + s) * (-em) / ((1.0 + s) + s * ek)
    if s * u <= _SU_SWITCH:
        m = ((1.0 + s) * _em1mz(s * u) + s * _em1mz(-(1.0 + s) * u)) / k
        return math.log1p(m), deriv
    val = s * u + (math.log1p(s) - math.log1p(2.0 * s)) + math.log1p(s / (1.0 + s) * ek)
    return val, deriv


@_jit
def _psi_terms(s: float, u: float) -> tuple[float, float, float, float, float]:
    """The partial derivatives of Psi(s, u) = s D_{1+s}(u): (Psi_s, Psi_u, Psi_ss, Psi_su, Psi_uu).

    With k = 2s + 1, z = k u, E = e^{-z}, m = 1 - E and B = 1 + s + s E (so Psi = s u + log B -
    log k), Psi_s = P / (k B) with P = E(-z) + k s u m, a sum of non-negative terms (Psi_s tends
    to the KL divergence as s -> 0), and the second derivatives follow from P's derivatives
    P_s = (3 + 4s) u m + 2 k s u^2 E and P_u = k (1 + s) m + k^2 s u E, also sums of non-negative
    terms: nothing cancels by more than a small factor, even for small u.
    """
    k = 2.0 * s + 1.0
    m = -math.expm1(-k * u)
    e = 1.0 - m
    b = (1.0 + s) + s * e
    kb = k * b
    p = _em1mz(-k * u) + k * s * u * m
    psi_s = p / kb
    p_s = (3.0 + 4.0 * s) * u * m + 2.0 * k * s * u * u * e
    p_u = k * (1.0 + s) * m + k * k * s * u * e
    dkb_s = 2.0 * b + k * (1.0 + e - 2.0 * s * u * e)  # d(kB)/ds
    psi_ss = (p_s - psi_s * dkb_s) / kb
    psi_su = (p_u + psi_s * k * k * s * e) / kb  # d(kB)/du = -k^2 s E
    psi_u = s * (1.0 + s) * m / b
    psi_uu = s * (1.0 + s) * k * k * e / (b * b)
    return psi_s, psi_u, psi_ss, psi_su, psi_uu


@_jit
def _lemma1_terms(s: float, pair: _kernels.PairTerms) -> tuple[float, float, float]:
    """(h(s), h'(s), h''(s)) for s > 0: the Lemma 1 bound at order 1 + s and its derivatives in s.

    h = -log(q + 2 G e^{-Phi(s)}) with Phi(s) = log cosh(s w) / s (see :mod:`renyi_cert._kernels`);
    Phi' and Phi'' come from x tanh x - log cosh x and its companion, by series for small x = s w.
    """
    x = s * pair.w
    lx = _kernels.log_cosh(x)
    phi = lx / s
    if x < 0.1:
        x2 = x * x
        n_x = x2 * (0.5 + x2 * (-0.25 + x2 * (1.0 / 9.0 + x2 * (-17.0 / 360.0 + x2 * 31.0 / 1575.0))))
        k_x = x2 * x2 * (-0.5 + x2 * (4.0 / 9.0 + x2 * (-17.0 / 60.0 + x2 * 248.0 / 1575.0)))
    else:
        th = math.tanh(x)
        n_x = x * th - lx
        k_x = x * x * (1.0 - th * th) - 2.0 * n_x
    dphi = n_x / (s * s)
    d2phi = k_x / (s * s * s)
    e = 2.0 * pair.geo_mean * math.exp(-phi)
    a = pair.rest + e
    y = pair.log_cosh_w + phi
    d = pair.total - e if y > 30.0 else e * math.expm1(y)  # d = 1 - a, as in lemma1_at
    h = -math.log1p(-d) if d < 0.5 else -math.log(a)
    h1 = e * dphi / a
    h2 = h1 * h1 - e * (dphi * dphi - d2phi) / a
    return h, h1, h2


@_jit
def _kl_root(h0: float) -> float:
    """The u > 0 with u + e^{-u} - 1 = h0 > 0 (the order -> 1 limit); 0 for h0 <= 0.

    Newton's method from a start within 1e-4 relative: for h0 < 1 the inverse series
    u = v + v^2/6 + v^3/36 + ... in v = sqrt(2 h0), else u = h0 + 1 + W0(-z), z = e^{-h0-1}, with
    the series of the Lambert W function. It stops as :func:`_lap_root` does (the function is
    convex and increasing, so the result is above the root by rounding only).
    """
    if not (h0 > 0.0):
        return 0.0
    if h0 < 1.0:
        v = math.sqrt(2.0 * h0)
        u = v * (1.0 + v * (1.0 / 6.0 + v * (1.0 / 36.0 + v * (1.0 / 270.0 + v * (
            1.0 / 4320.0 + v * (-1.0 / 17010.0 - v * 139.0 / 5443200.0))))))
    else:
        z = math.exp(-h0 - 1.0)
        u = h0 + 1.0 - z * (1.0 + z * (1.0 + z * (1.5 + z * (8.0 / 3.0 + z * 125.0 / 24.0))))
    for _ in range(_ROOT_ITER):
        step = (_em1mz(-u) - h0) / -math.expm1(-u)
        u -= step
        if abs(step) <= _U_TOL * u < math.inf:
            return u
    return 0.0  # not converged (degenerate input only): claim nothing


@_jit
def _lap_root(s: float, target: float, u: float) -> float:
    """The u > 0 with s D_{1+s}(u) = target > 0, by Newton's method from the start u > 0.

    s D is convex and increasing in u >= 0: from any start one step lands above the root and the
    iterates then descend monotonically. We stop after a step below :data:`_U_TOL` relative to u,
    which leaves the iterate above the root by O(step^2), i.e. by rounding. Without convergence
    (only for degenerate input, e.g. a target that underflowed) the result is 0: it claims nothing.
    """
    if not (target > 0.0):
        return 0.0
    for _ in range(_ROOT_ITER):
        f, d = _lap_sd(s, u)
        step = (f - target) / d
        u -= step
        if abs(step) <= _U_TOL * u < math.inf:
            return u
    return 0.0


@_jit
def _psi2(u: float) -> float:
    """The s^2 coefficient of Psi(s, u) at s -> 0: 3/2 - e^{-u} - e^{-2u}/2 - 2u e^{-u} (= u^2/2 + ...)."""
    if u < 1.0:  # in terms of E(z) = e^z - 1 - z: cancels only a factor of about 4
        e1 = _em1mz(-u)
        return 2.0 * u * u - e1 - 0.5 * _em1mz(-2.0 * u) - 2.0 * u * e1
    e1 = math.exp(-u)
    return 1.5 - e1 * (1.0 + 0.5 * e1 + 2.0 * u)


@_jit
def _psi3(u: float) -> float:
    """The s^3 coefficient of Psi(s, u) at s -> 0 (= -u^4/6 + ...); it only steers the start."""
    if u < 0.1:
        return u**4 * (-1.0 / 6.0 + u * (2.0 / 15.0 + u * (-7.0 / 180.0 - u * 2.0 / 315.0)))
    e1 = math.exp(-u)
    e2 = e1 * e1
    return 2.0 * u * (u + 1.0) * e1 + 2.0 * u * e2 - 7.0 / 3.0 + e1 + e2 + e2 * e1 / 3.0


@_jit
def _near_one(pair: _kernels.PairTerms, u0: float) -> tuple[float, float, float]:
    """(a, b, da): u(s) = u0 + a s + b s^2 + O(s^3) as s = order - 1 -> 0, and a bound on a's error.

    u0 is the order -> 1 root. Matching powers of s in Psi(s, u(s)) = s h(s), with Psi(s, u) =
    s KL(u) + s^2 psi2(u) + s^3 psi3(u) + ... and h(s) = h0 + h'(0) s + h''(0) s^2 / 2 + ..., where
    h'(0) = G w^2 / A0 and h''(0) = h'(0)^2 - G w^4 / (2 A0) (A0 = q + 2G), gives
    a = (h'(0) - psi2(u0)) / KL'(u0) and b. Near ties a is a difference of nearly equal terms: ``da``
    (:data:`_A_TOL` times their size) says when its sign is not resolved.
    """
    a0 = pair.rest + 2.0 * pair.geo_mean
    gw2 = pair.geo_mean * pair.w * pair.w
    dh = gw2 / a0
    d2h = dh * dh - 0.5 * gw2 * pair.w * pair.w / a0
    e1 = math.exp(-u0)
    dkl = -math.expm1(-u0)  # KL'(u0); KL''(u0) = e^{-u0}
    psi2 = _psi2(u0)
    a = (dh - psi2) / dkl
    dpsi2 = e1 * (e1 - 1.0 + 2.0 * u0)
    b = (0.5 * d2h - _psi3(u0) - dpsi2 * a - 0.5 * e1 * a * a) / dkl
    return a, b, _A_TOL * (dh + psi2) / dkl


@_jit
def _start(
    pair: _kernels.PairTerms, v: float, u0: float, a: float, b: float, da: float
) -> tuple[float, float]:
    """(x, u): a first x = log(s) for the search, and the u a quadratic model of u(s) predicts there.

    x is the maximiser of a quadratic model of u at one end of the orders. Near s -> 0 the model is
    u0 + a s + b s^2 (maximiser a / (-2b)); near s -> inf it is u_inf + c1 t + c2 t^2 in t = 1/s,
    where (ignoring terms exponentially small in s) c1 = log(2) q / v and
    c2 = -(1 + beta (1 - beta) log(2)^2) / 2, with v = 1 - p1 + p2, beta = 2 p2 / v = 1 - q / v and
    u_inf = -log(v). The first is used when a is resolved (a > da) and its maximiser is small.
    """
    frac = pair.rest / v  # 1 - beta
    c1 = _LN2 * frac
    c2 = -0.5 * (1.0 + (1.0 - frac) * frac * _LN2 * _LN2)
    t = c1 / (-2.0 * c2)
    x, u = -math.log(t), -math.log(v) + t * (c1 + c2 * t)
    if a > da and b < 0.0:
        s = a / (-2.0 * b)
        if math.log(s) < min(x, _X_LEFT):
            x, u = math.log(s), u0 + s * (a + b * s)
    return max(-_X_MAX, min(_X_MAX, x)), u


@_jit
def _slopes(s: float, u: float, h: float, h1: float, h2: float) -> tuple[float, float]:
    """(du/dx, d^2u/dx^2) at x = log(s), on the curve Psi(s, u) = s h(s) (implicit derivatives)."""
    psi_s, psi_u, psi_ss, psi_su, psi_uu = _psi_terms(s, u)
    u_s = -(psi_s - h - s * h1) / psi_u
    u_ss = -((psi_ss - 2.0 * h1 - s * h2) + (2.0 * psi_su + psi_uu * u_s) * u_s) / psi_u
    return s * u_s, s * (u_s + s * u_ss)


@_jit
def _search(pair: _kernels.PairTerms, x: float, u: float, u_max: float) -> float:
    """The largest u(s) met by a safeguarded Newton search for du/dx = 0 from x.

    u is a start for the first root, u_max an upper bound on every root (the starts stay below it).

    Newton's method on du/dx, steps capped at :data:`_X_STEP`, inside the bracket [lo, hi] that the
    signs of du/dx give (du/dx > 0 as x -> -inf unless the caller returned early, < 0 as x -> +inf
    since q > 0); bisection, or a step outward, where Newton leaves the bracket or u is not concave.
    It stops when Newton's predicted gain, or the most u can still gain inside the bracket (its
    width times the larger end slope), is below :data:`_GAIN_TOL` relative to u.
    """
    lo, hi, slope_lo, slope_hi = -math.inf, math.inf, math.inf, math.inf
    best = 0.0
    for _ in range(_SEARCH_ITER):
        s = math.exp(x)
        h, h1, h2 = _lemma1_terms(s, pair)
        u = _lap_root(s, s * h, u)
        if not (u > 0.0):
            break  # no root (degenerate input): keep what was found
        best = max(best, u)
        d1, d2 = _slopes(s, u, h, h1, h2)
        if d1 > 0.0:
            lo, slope_lo = x, d1
        else:
            hi, slope_hi = x, -d1
        tol = _GAIN_TOL * u
        if (hi - lo) * max(slope_lo, slope_hi) <= tol or (d2 < 0.0 and 0.5 * d1 * d1 <= -d2 * tol):
            break
        step = max(-_X_STEP, min(_X_STEP, -d1 / d2)) if d2 < 0.0 else math.nan
        if not (lo < x + step < hi):  # also for NaN
            if lo == -math.inf:
                step = -_X_STEP
            elif hi == math.inf:
                step = _X_STEP
            else:
                step = 0.5 * (lo + hi) - x
        if not (abs(x + step) <= _X_MAX):
            break
        u_next = u + step * (d1 + 0.5 * step * d2)  # a start for the next root
        if 0.0 < u_next < u_max:
            u = u_next
        x += step
    return best


@_jit
def _h_at_one(p1: float, p2: float, pair: _kernels.PairTerms) -> float:
    """h at order -> 1, -log(1 - (sqrt p1 - sqrt p2)^2), to a few ulps.

    sqrt p1 - sqrt p2 is formed as (p1 - p2) / (sqrt p1 + sqrt p2): no cancellation, and no error
    that grows with log(p1/p2) (as the route through w = log(p1/p2)/2 and expm1 has).
    """
    d = (p1 - p2) / (math.sqrt(p1) + math.sqrt(p2))
    d *= d
    if d < 0.5:
        return -math.log1p(-d)
    return -math.log(pair.rest + 2.0 * pair.geo_mean)


@_jit
def _laplace_unit(p1: float, p2: float) -> float:
    """sup_{order>1} u(order) for validated 0 < p2 < p1 (the radius per unit scale)."""
    pair = _kernels.pair_terms(p1, p2)
    v = (1.0 - p1) + p2
    # order -> inf: -log(1 - p1 + p2), with the argument formed without cancellation
    if p1 - p2 < 0.5:
        best = -math.log1p(-(p1 - p2))
    else:
        best = -math.log(v)  # p1 > 1/2: 1 - p1 is exact (Sterbenz)
    h0 = _h_at_one(p1, p2, pair)
    if not (h0 >= _H_MIN):
        return best  # h(1) underflows (only if p1 - p2 < 3e-154): keep the exact order -> inf value
    # Every order's root is below u_max: D_a(u) >= KL(u) >= u^2 / (2 + u) and h(a) <= h(inf) = best.
    u_max = 0.5 * (best + math.sqrt(best * (best + 8.0)))
    u0 = _kl_root(h0)  # order -> 1
    best = max(best, u0)
    a, b, da = _near_one(pair, u0)
    if a < -da or pair.rest == 0.0:
        return best  # u decreases from the order -> 1 limit, or increases to the order -> inf one
    x, u = _start(pair, v, u0, a, b, da)
    return max(best, _search(pair, x, min(max(u, best), u_max), u_max))


@_jit
def _laplace_serial(p1: np.ndarray, p2: np.ndarray, out: np.ndarray) -> None:
    for i in range(p1.shape[0]):
        out[i] = _laplace_unit(p1[i], p2[i])


@njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def _laplace_parallel(p1: np.ndarray, p2: np.ndarray, out: np.ndarray) -> None:
    for i in prange(p1.shape[0]):
        out[i] = _laplace_unit(p1[i], p2[i])


def _laplace_many(p1: np.ndarray, p2: np.ndarray, out: np.ndarray) -> None:
    """:func:`_laplace_unit` over 1-D contiguous arrays of pairs 0 < p2 < p1 (threads from
    :data:`renyi_cert._kernels.PARALLEL_MIN` elements on, as the Gaussian kernels)."""
    kernel = _laplace_parallel if p1.shape[0] >= _kernels.PARALLEL_MIN else _laplace_serial
    kernel(p1, p2, out)


@_jit
def _divergence_many(u: np.ndarray, order: np.ndarray, out: np.ndarray) -> None:
    for i in range(u.shape[0]):
        a = order[i]
        if u[i] == 0.0:
            out[i] = 0.0
        elif a == 1.0:
            out[i] = _em1mz(-u[i])
        elif math.isinf(a):
            out[i] = u[i]
        else:
            s = a - 1.0
            out[i] = _lap_sd(s, u[i])[0] / s


def _finish(arr: np.ndarray, scalar: bool) -> float | np.ndarray:
    return float(arr) if scalar else arr


def _pair(p1: ArrayLike, p2: ArrayLike) -> tuple[np.ndarray, np.ndarray, bool]:
    """Validated (p1, p2) broadcast together, as float64, and whether both were scalars."""
    a, b = check_pair(p1, p2)
    return np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), a.ndim == 0


def _check_bound(bound: object, bounds: tuple[str, ...]) -> str:
    return check_choice("bound", bound, bounds)


@dataclass(frozen=True)
class Gaussian:
    """Isotropic Gaussian noise N(0, sigma^2 I); threat norm l2.

    Bounds ``"renyi"`` (Li et al., NeurIPS 2019), ``"cohen"`` (Cohen et al., ICML 2019) and
    ``"pixeldp"`` (Lecuyer et al., S&P 2019): the functions of :data:`renyi_cert.bounds.BOUNDS`.

    Examples
    --------
    >>> round(Gaussian(1.0).radius(0.9, 0.1), 10)
    1.0319295637
    """

    sigma: float
    name: ClassVar[str] = "gaussian"
    norm: ClassVar[str] = "l2"
    bounds: ClassVar[tuple[str, ...]] = ("renyi", "cohen", "pixeldp")

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigma", check_scalar_sigma(self.sigma, name="sigma"))

    def draw(self, rng: np.random.Generator, shape: tuple[int, ...], dtype: Any = np.float64) -> np.ndarray:
        """Noise of ``shape`` from ``rng``: N(0, sigma^2) per coordinate."""
        out = rng.standard_normal(shape, dtype=dtype)
        out *= np.dtype(dtype).type(self.sigma)
        return out

    def radius(self, p1: ArrayLike, p2: ArrayLike, bound: str = "renyi") -> float | np.ndarray:
        """The certified l2 radius under ``bound``; see :mod:`renyi_cert.bounds`."""
        from .bounds import BOUNDS

        return BOUNDS[_check_bound(bound, self.bounds)](p1, p2, self.sigma)


@dataclass(frozen=True)
class Laplace:
    """I.i.d. Laplace noise Lap(0, scale) per coordinate; threat norm l1.

    Bounds (all in units of the input, i.e. scale b times a function of (p1, p2)):

    * ``"renyi"``: ``b sup_{order>1} u(order)`` with u the root of D_order(u b) = h(order), Lemma 1
      of Li et al. (NeurIPS 2019) with the Laplace divergence of Mironov (CSF 2017, Table II); see
      the module docstring for the method. 0 where p1 <= p2; ``b u`` with u + e^{-u} - 1 =
      -log(1 - p1) where p2 = 0 (the supremum is then the limit order -> 1); inf where p1 = 1,
      p2 = 0. It is at least Teng's bound, with equality when p2 = 1 - p1.
    * ``"teng"``: ``-b log(2 (1 - p1))`` for p1 > 1/2, else 0 (Teng, Lee & Yuan, "l1 adversarial
      robustness certificates: a randomized smoothing approach", ICLR 2020); inf at p1 = 1.
    * ``"pixeldp"``: ``(b/2) log(p1/p2)`` for p1 > p2, else 0 (Lecuyer et al., S&P 2019: the
      Laplace mechanism is (r/b)-DP for l1 shifts of size r, and certifies while
      p1 > e^{2 epsilon} p2); inf where p2 = 0 < p1.

    Examples
    --------
    >>> round(Laplace(1.0).radius(0.9, 0.05), 5)
    1.92536
    >>> round(Laplace(2.0).radius(0.9, 0.1, bound="teng"), 10)  # -2 log(0.2)
    3.2188758249
    """

    scale: float
    name: ClassVar[str] = "laplace"
    norm: ClassVar[str] = "l1"
    bounds: ClassVar[tuple[str, ...]] = ("renyi", "teng", "pixeldp")

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", check_scalar_sigma(self.scale, name="scale"))

    def draw(self, rng: np.random.Generator, shape: tuple[int, ...], dtype: Any = np.float64) -> np.ndarray:
        """Noise of ``shape`` from ``rng``: Lap(0, scale) per coordinate."""
        return rng.laplace(0.0, self.scale, shape).astype(dtype, copy=False)

    def divergence(self, t: ArrayLike, order: ArrayLike) -> float | np.ndarray:
        """D_order(Lap(0, b) || Lap(t, b)), the Renyi divergence of a shift t (Mironov 2017).

        ``1/(a-1) log(a/(2a-1) e^{(a-1)|t|/b} + (a-1)/(2a-1) e^{-a|t|/b})`` for order a > 1, computed
        as a sum of non-negative terms (no cancellation for small t, no overflow for large t).
        ``order = 1`` gives the Kullback-Leibler limit ``|t|/b + e^{-|t|/b} - 1`` and
        ``order = inf`` gives ``|t|/b``. ``t`` (finite, any sign) and ``order`` (>= 1) broadcast.
        """
        tt = as_float_array("t", t)
        bad = ~np.isfinite(tt)
        if bad.any():
            raise ValueError(f"t ({float(tt[bad].flat[0])!r}) must be a finite shift")
        o = as_float_array("order", order)
        bad = np.isnan(o) | (o < 1.0)
        if bad.any():
            raise ValueError(f"order ({float(o[bad].flat[0])!r}) must be a Renyi order >= 1")
        scalar = tt.ndim == 0 and o.ndim == 0
        try:
            u, ob = np.broadcast_arrays(np.abs(tt) / self.scale, o)
        except ValueError:
            raise ValueError(f"t (shape {tt.shape}) and order (shape {o.shape}) must broadcast") from None
        shape = u.shape
        u = np.ascontiguousarray(u, dtype=np.float64).ravel()
        ob = np.ascontiguousarray(ob, dtype=np.float64).ravel()
        out = np.empty_like(u)
        _divergence_many(u, ob, out)
        return _finish(out.reshape(shape), scalar)

    def radius(self, p1: ArrayLike, p2: ArrayLike, bound: str = "renyi") -> float | np.ndarray:
        """The certified l1 radius under ``bound`` (see the class docstring)."""
        name = _check_bound(bound, self.bounds)
        a, b, scalar = _pair(p1, p2)
        none = a <= b
        with np.errstate(divide="ignore"):
            if name == "teng":
                # -log(2 (1 - p1)) = -log1p(1 - 2 p1); 1 - 2 p1 is exact for p1 in [1/2, 1]
                unit = np.where(a > 0.5, -np.log1p(np.minimum(1.0 - 2.0 * a, 0.0)), 0.0)
            elif name == "pixeldp":
                unit = 0.5 * (np.log(np.where(none, 1.0, a)) - np.log(np.where(none, 1.0, b)))
            else:
                unit = self._renyi_unit(a, b)
        unit = np.where(none, 0.0, np.maximum(unit, 0.0))
        return _finish(self.scale * unit, scalar)

    @staticmethod
    def _renyi_unit(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        flat_a = np.ascontiguousarray(a, dtype=np.float64).ravel()
        flat_b = np.ascontiguousarray(b, dtype=np.float64).ravel()
        out = np.zeros_like(flat_a)
        inner = (flat_a > flat_b) & (flat_b > 0.0)
        if inner.any():
            vals = np.empty(int(inner.sum()))
            _laplace_many(np.ascontiguousarray(flat_a[inner]), np.ascontiguousarray(flat_b[inner]), vals)
            out[inner] = vals
        edge = (flat_a > flat_b) & (flat_b == 0.0)
        for i in np.flatnonzero(edge):
            out[i] = math.inf if flat_a[i] >= 1.0 else _kl_root(-math.log1p(-flat_a[i]))
        return out.reshape(a.shape)


@dataclass(frozen=True)
class Uniform:
    """I.i.d. uniform noise on [-half_width, half_width] per coordinate; threat norm l1.

    Bound ``"yang"`` only: ``2 lambda (p1 - 1/2)`` for p1 > 1/2, else 0 (Yang et al., "Randomized
    smoothing of all shapes and sizes", ICML 2020). The Renyi bound is refused: for any shift t != 0
    the shifted uniform puts mass where the unshifted one has none, so every Renyi divergence of
    order > 1 is infinite and Lemma 1 certifies nothing.

    Examples
    --------
    >>> Uniform(1.0).radius(0.75, 0.2, bound="yang")
    0.5
    """

    half_width: float
    name: ClassVar[str] = "uniform"
    norm: ClassVar[str] = "l1"
    bounds: ClassVar[tuple[str, ...]] = ("yang",)

    def __post_init__(self) -> None:
        object.__setattr__(self, "half_width", check_scalar_sigma(self.half_width, name="half_width"))

    def draw(self, rng: np.random.Generator, shape: tuple[int, ...], dtype: Any = np.float64) -> np.ndarray:
        """Noise of ``shape`` from ``rng``: U[-half_width, half_width] per coordinate."""
        return rng.uniform(-self.half_width, self.half_width, shape).astype(dtype, copy=False)

    def radius(self, p1: ArrayLike, p2: ArrayLike, bound: str = "yang") -> float | np.ndarray:
        """The certified l1 radius under Yang et al.'s bound."""
        if bound == "renyi":
            raise ValueError(
                "bound ('renyi') is not available for Uniform noise: the Renyi divergence between uniform "
                "noise and any shifted copy is infinite, so Lemma 1 certifies nothing; use bound='yang'"
            )
        _check_bound(bound, self.bounds)
        a, b, scalar = _pair(p1, p2)
        unit = np.where((a > 0.5) & (a > b), 2.0 * (a - 0.5), 0.0)
        return _finish(self.half_width * unit, scalar)


#: The noise classes by name.
NOISES: dict[str, type] = {"gaussian": Gaussian, "laplace": Laplace, "uniform": Uniform}


def as_noise(sigma: object) -> Gaussian | Laplace | Uniform:
    """A noise as it is, or a number as ``Gaussian(sigma)`` (checked: ``"sigma (-1.0) must be > 0"``).

    What the certification functions and the backends take where they take ``sigma``.

    Examples
    --------
    >>> as_noise(0.5), as_noise(Laplace(1.0))
    (Gaussian(sigma=0.5), Laplace(scale=1.0))
    """
    if isinstance(sigma, (Gaussian, Laplace, Uniform)):
        return sigma
    return Gaussian(check_scalar_sigma(sigma))


def scale_of(noise: Gaussian | Laplace | Uniform) -> float:
    """The noise's scale: Gaussian ``sigma``, Laplace ``scale``, uniform ``half_width``."""
    if isinstance(noise, Gaussian):
        return noise.sigma
    return noise.scale if isinstance(noise, Laplace) else noise.half_width
