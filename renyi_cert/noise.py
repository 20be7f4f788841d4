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

    s D_a = log1p(m(u)),   m(u) = ((1+s) E(s u) + s E(-(1+s) u)) / k,

a sum of non-negative terms (the literal form cancels for small u); for s u > 20 we use
``s D_a = s u + log((1+s)/k) + log1p(s/(1+s) e^{-k u})`` instead (no overflow). s D_a is convex in
u, so Newton's method lands above the root after one step and then descends monotonically; h(a) is
the project's cancellation-free kernel (:func:`renyi_cert._kernels.lemma1_at`). The two limits of
the order are closed forms: a -> inf gives u = -log(1 - p1 + p2); a -> 1 gives the root of the
Kullback-Leibler divergence E(-u) = u + e^{-u} - 1 = h(1) = -log(1 - (sqrt p1 - sqrt p2)^2). The
supremum over s is taken over both limits and a maximisation in x = log s: a scan of
:data:`_SCAN` points over [e^-14, e^16], golden-section search on the bracket around the best scan
point to a width of 1e-3 in x, then a few steps of successive parabolic interpolation. u(x) is
unimodal (checked on dense grids) and smooth, and u'(x*) = 0 at an interior maximum, so this leaves
the radius exact to rounding: about 4e-16 relative against an mpmath oracle at 40 digits (see the
tests). Every value evaluated is the radius certified by one order, and the result is the largest
of them, so numerical error can only under-claim.

Boundary cases (exact, before the numerics): p1 <= p2 gives 0. p2 = 0 makes h constant
(-log(1 - p1)) while D_a grows with a, so the supremum is the limit a -> 1: u solves
u + e^{-u} - 1 = -log(1 - p1); p1 = 1 (so p2 = 0) gives inf.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numba import njit, prange
from numpy.typing import ArrayLike

from . import _kernels
from ._validate import as_float_array, check_choice, check_pair, check_scalar_sigma

__all__ = ["Gaussian", "Laplace", "Uniform", "NOISES"]

_jit = njit(cache=True, nogil=True, error_model="numpy")

# Switch from the E-form to the log-form of s D_a when s u exceeds this (e^20 does not overflow).
_SU_SWITCH = 20.0
# Scan of x = log(s): the bracket for the golden-section search.
_X_LO = -14.0
_X_HI = 16.0
_SCAN = 11
# Golden-section search stops when the bracket in x is narrower than this ...
_X_GOLDEN = 1e-3
# ... and successive parabolic interpolation then takes at most this many steps.
_SPI_STEPS = 4
_INVPHI = (math.sqrt(5.0) - 1.0) / 2.0


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
    ek = math.exp(-k * u)
    deriv = s * (1.0 + s) * (-math.expm1(-k * u)) / ((1.0 + s) + s * ek)
    if s * u <= _SU_SWITCH:
        m = ((1.0 + s) * _em1mz(s * u) + s * _em1mz(-(1.0 + s) * u)) / k
        return math.log1p(m), deriv
    val = s * u + (math.log1p(s) - math.log1p(2.0 * s)) + math.log1p(s / (1.0 + s) * ek)
    return val, deriv


@_jit
def _kl_root(h0: float) -> float:
    """The u > 0 with u + e^{-u} - 1 = h0 > 0 (the order -> 1 limit)."""
    # E(-u) <= u^2/2, so this start is below the root; Newton on a convex increasing function
    # lands above the root after one step from anywhere, then descends monotonically.
    u = math.sqrt(2.0 * h0)
    first = True
    for _ in range(200):
        f = _em1mz(-u) - h0
        d = -math.expm1(-u)
        u_new = u - f / d
        if not first and u_new >= u:
            break
        first = False
        u = u_new
    return u


@_jit
def _lap_root(s: float, target: float) -> float:
    """The u > 0 with s D_{1+s}(u) = target > 0 (s D is convex and increasing in u >= 0)."""
    # Start near the root (the small-u form s (1+s) u^2/2, or D <= D_inf = u); from any start,
    # Newton on a convex increasing function lands above the root, then descends monotonically:
    # we stop when a step no longer decreases u (converged to rounding).
    u = math.sqrt(2.0 * target / (s * (1.0 + s)))
    u_lin = target / s
    if u_lin > u:
        u = u_lin
    first = True
    for _ in range(200):
        f, d = _lap_sd(s, u)
        u_new = u - (f - target) / d
        if not first and u_new >= u:
            break
        first = False
        u = u_new
    return u


@_jit
def _lap_at(x: float, pair: _kernels.PairTerms) -> float:
    """u(s) at s = e^x: the radius per unit scale certified by the order 1 + s."""
    s = math.exp(x)
    return _lap_root(s, s * _kernels.lemma1_at(s, pair))


@_jit
def _laplace_unit(p1: float, p2: float) -> float:
    """sup_{order>1} u(order) for validated 0 < p2 < p1 (the radius per unit scale)."""
    pair = _kernels.pair_terms(p1, p2)
    # order -> inf: -log(1 - p1 + p2), with the argument formed without cancellation
    if p1 - p2 < 0.5:
        best = -math.log1p(-(p1 - p2))
    else:
        best = -math.log((1.0 - p1) + p2)  # p1 > 1/2: 1 - p1 is exact (Sterbenz)
    h0 = _kernels.lemma1_at(0.0, pair)
    lim1 = _kl_root(h0)  # order -> 1
    if lim1 > best:
        best = lim1
    step = (_X_HI - _X_LO) / (_SCAN - 1)
    i_best = 0
    v_best = -1.0
    for i in range(_SCAN):
        v = _lap_at(_X_LO + i * step, pair)
        if v > v_best:
            v_best = v
            i_best = i
    lo = _X_LO + max(i_best - 1, 0) * step
    hi = _X_LO + min(i_best + 1, _SCAN - 1) * step
    c = hi - _INVPHI * (hi - lo)
    d = lo + _INVPHI * (hi - lo)
    fc = _lap_at(c, pair)
    fd = _lap_at(d, pair)
    while hi - lo > _X_GOLDEN:
        if fc >= fd:
            hi = d
            d = c
            fd = fc
            c = hi - _INVPHI * (hi - lo)
            fc = _lap_at(c, pair)
        else:
            lo = c
            c = d
            fc = fd
            d = lo + _INVPHI * (hi - lo)
            fd = _lap_at(d, pair)
    # Successive parabolic interpolation through the best three points (the maximum is smooth and
    # interior here): each step squares-and-more the error, so a few reach rounding. Every value
    # evaluated is a valid radius (that of one order), and the result is the largest of them.
    xa, fa = lo, _lap_at(lo, pair)
    xb, fb = (c, fc) if fc >= fd else (d, fd)
    xc, fcc = (d, fd) if fc >= fd else (c, fc)
    if v_best > best:
        best = v_best
    for v in (fa, fb, fcc):
        if v > best:
            best = v
    for _ in range(_SPI_STEPS):
        num = (xb - xa) ** 2 * (fb - fcc) - (xb - xc) ** 2 * (fb - fa)
        den = (xb - xa) * (fb - fcc) - (xb - xc) * (fb - fa)
        if not (den != 0.0):
            break
        x_new = xb - 0.5 * num / den
        if not (lo - _X_GOLDEN <= x_new <= hi + _X_GOLDEN) or x_new == xb:
            break
        f_new = _lap_at(x_new, pair)
        if f_new > best:
            best = f_new
        # keep the three best points
        if f_new >= fb:
            if fa < fcc:
                xa, fa = xb, fb
            else:
                xc, fcc = xb, fb
            xb, fb = x_new, f_new
        elif fa < fcc:
            xa, fa = x_new, f_new
        else:
            xc, fcc = x_new, f_new
    return best


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
    norm: ClassVar[str] = "l2"
    bounds: ClassVar[tuple[str, ...]] = ("renyi", "cohen", "pixeldp")

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigma", check_scalar_sigma(self.sigma, name="sigma"))

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
    norm: ClassVar[str] = "l1"
    bounds: ClassVar[tuple[str, ...]] = ("renyi", "teng", "pixeldp")

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", check_scalar_sigma(self.scale, name="scale"))

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
    norm: ClassVar[str] = "l1"
    bounds: ClassVar[tuple[str, ...]] = ("yang",)

    def __post_init__(self) -> None:
        object.__setattr__(self, "half_width", check_scalar_sigma(self.half_width, name="half_width"))

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
