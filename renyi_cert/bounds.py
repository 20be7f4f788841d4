"""Certified l2 radii from the top-two class probabilities: Renyi (the paper), Cohen, PixelDP.

All three functions share one signature and one set of conventions:

* ``p1`` is (a lower confidence bound on) the probability of the predicted class under noise,
  ``p2`` (an upper bound on) the runner-up's; ``sigma`` is the standard deviation of the isotropic
  Gaussian noise, in the input's units. Scalars give a ``float``; arrays broadcast together
  (numpy rules) and give an ``ndarray``.
* ``p1 <= p2`` gives 0: there is no certificate. (The formulas are symmetric in p1, p2; code that
  skips this check "certifies" (0.3, 0.6). The official STN code has exactly this bug.)
* Invalid input (NaN, outside [0, 1], p1 + p2 > 1 beyond rounding, sigma <= 0 or not finite)
  raises ``ValueError`` naming the value; nothing is clipped. Sums that exceed 1 by at most
  1e-12 are accepted as rounding and treated as exactly 1.

All radii are increasing in p1 and decreasing in p2, so plugging in a lower confidence bound for
p1 and an upper bound for p2 that hold jointly with probability at least 1 - alpha gives a radius
that is valid with probability at least 1 - alpha.

Names: ``alpha`` is a significance level throughout the library (Cohen et al.'s convention); the
Renyi order, which the paper writes α, is ``order`` (:attr:`RadiusResult.order`,
:func:`renyi_objective`). "Bounds" are the certified-radius bounds of :data:`BOUNDS`; confidence
bounds on class probabilities are confidence intervals (:mod:`renyi_cert.intervals`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from ._validate import check_pair, check_pair_and_order, check_sigma

# numba (the kernels) and scipy are imported on first use, not with the package: see
# benchmarks/bench_import.py for what that saves and what the first call then costs.

__all__ = [
    "RadiusResult",
    "PixelDPResult",
    "radius",
    "radius_details",
    "renyi_objective",
    "cohen_radius",
    "pixeldp_radius",
    "pixeldp_details",
    "BOUNDS",
]


@dataclass(frozen=True)
class RadiusResult:
    """The Renyi radius together with the order that attains it.

    Attributes
    ----------
    radius : float or ndarray
        ``sigma * sqrt(2 sup_{order>1} g(order))``; 0 where p1 <= p2, inf where p1 = 1, p2 = 0.
    order : float or ndarray
        The maximising Renyi order, the paper's α*. 1.0 means the supremum is the limit order -> 1 (always the case
        for p2 = 0, and when p1 + p2 is well below 1). NaN where there is no certificate
        (p1 <= p2). Near ties g is flat to within rounding, so the maximising order is only
        determined there as well as float64 can resolve g; the radius is exact all the same.
    """

    radius: float | np.ndarray
    order: float | np.ndarray


@dataclass(frozen=True)
class PixelDPResult:
    """The PixelDP radius with the (epsilon, delta) of the Gaussian mechanism that attains it.

    Attributes
    ----------
    radius : float or ndarray
        ``sigma * epsilon / sqrt(2 log(1.25 / delta))``; 0 where p1 <= p2.
    epsilon, delta : float or ndarray
        The optimal privacy parameters (epsilon <= 1); 0 where there is no certificate.
    """

    radius: float | np.ndarray
    epsilon: float | np.ndarray
    delta: float | np.ndarray


def _finish(arr: np.ndarray, scalar: bool) -> float | np.ndarray:
    return float(arr) if scalar else arr


class _PairAndSigma(NamedTuple):
    """Validated (p1, p2, sigma): p1 and p2 broadcast together, sigma as given (see :func:`_prepare`)."""

    p1: np.ndarray
    p2: np.ndarray
    sigma: np.ndarray
    shape: tuple[int, ...]  # the broadcast shape of all three
    scalar: bool  # all three were scalars: return a float


def _prepare(p1: ArrayLike, p2: ArrayLike, sigma: ArrayLike) -> _PairAndSigma:
    a, b = check_pair(p1, p2)
    s = check_sigma(sigma)
    scalar = a.ndim == 0 and s.ndim == 0
    try:
        shape = np.broadcast_shapes(a.shape, s.shape)
    except ValueError:
        raise ValueError(
            f"sigma (shape {s.shape}) must broadcast with p1 and p2 (shape {a.shape})"
        ) from None
    return _PairAndSigma(a, b, s, shape, scalar)


def _renyi_unit(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sup g and the maximising order (flat arrays) for validated pairs of any shape."""
    from . import _kernels

    a = np.ascontiguousarray(a, dtype=np.float64).ravel()
    b = np.ascontiguousarray(b, dtype=np.float64).ravel()
    g = np.empty_like(a)
    order = np.empty_like(a)
    none = a <= b  # no certificate
    edge = (b == 0.0) & ~none  # p2 = 0: M_{1-order} = 0, g = -log(1-p1)/order, sup at order -> 1
    inner = ~(none | edge)
    if inner.all():
        _kernels.renyi_sup_many(a, b, g, order)
    elif inner.any():
        gi = np.empty(int(inner.sum()))
        oi = np.empty_like(gi)
        _kernels.renyi_sup_many(a[inner], b[inner], gi, oi)
        g[inner] = gi
        order[inner] = oi
    g[none] = 0.0
    order[none] = np.nan
    with np.errstate(divide="ignore"):
        g[edge] = -np.log1p(-a[edge])  # inf at p1 = 1
    order[edge] = 1.0
    return g, order


def radius_details(p1: ArrayLike, p2: ArrayLike, sigma: ArrayLike) -> RadiusResult:
    """The paper's certified radius and the maximising Renyi order (the paper's α*).

    Computes ``L = sigma * sqrt(2 * sup_{order > 1} g(order))`` with
    ``g(order) = -(1/order) log(1 - p1 - p2 + 2 M_{1-order}(p1, p2))`` (Li, Chen, Wang & Carin,
    "Certified Adversarial Robustness with Additive Gaussian Noise", NeurIPS 2019, Theorem 1,
    where the order is written α), and M_t is the power mean. The supremum is computed exactly
    (Newton's method on the stationarity condition, see :mod:`renyi_cert._kernels`), not on a
    grid: the result is accurate to about 1e-15 relative (tested against mpmath at 50 digits).

    Guarantee: if the smoothed classifier's top-class probability is at least p1 and the
    runner-up's at most p2, its prediction is constant on the l2 ball of radius L. With p1, p2
    confidence bounds valid jointly with probability at least 1 - alpha, the certificate holds
    with probability at least 1 - alpha.

    Parameters
    ----------
    p1, p2 : float or array_like
        Probabilities of the top class and the runner-up (or their confidence bounds).
    sigma : float or array_like
        Noise standard deviation, > 0.

    Returns
    -------
    RadiusResult
        ``radius`` and ``order`` (floats for scalar input, arrays otherwise).

    Examples
    --------
    >>> r = radius_details(0.9, 0.1, 1.0)
    >>> round(r.radius, 10), round(r.order, 6)
    (1.0319295637, 1.466876)
    """
    a, b, s, shape, scalar = _prepare(p1, p2, sigma)
    g, order = _renyi_unit(a, b)
    unit = np.sqrt(2.0 * g).reshape(a.shape)
    r = np.broadcast_to(s, shape) * unit
    o = np.broadcast_to(order.reshape(a.shape), shape)
    return RadiusResult(radius=_finish(r, scalar), order=_finish(np.array(o), scalar))


def radius(p1: ArrayLike, p2: ArrayLike, sigma: ArrayLike) -> float | np.ndarray:
    """The paper's certified l2 radius, with the supremum over the Renyi order taken exactly.

    ``L = sigma * sqrt(2 sup_{order>1} -(1/order) log(1 - p1 - p2 + 2 M_{1-order}(p1, p2)))``
    (Li, Chen, Wang & Carin, NeurIPS 2019, Theorem 1). See :func:`radius_details`, which also
    returns the maximising order, for the method and the guarantee: with p1 a lower and p2 an
    upper confidence bound valid jointly with probability at least 1 - alpha, the smoothed
    classifier's prediction is constant on the l2 ball of radius L with probability at least
    1 - alpha.

    Returns 0 where p1 <= p2 (no certificate) and inf where p1 = 1 and p2 = 0.

    Examples
    --------
    >>> round(radius(0.9, 0.1, 1.0), 10)
    1.0319295637
    >>> radius([0.9, 0.6, 0.3], [0.1, 0.4, 0.6], 0.5).round(6)
    array([0.515965, 0.101108, 0.      ])
    """
    a, b, s, shape, scalar = _prepare(p1, p2, sigma)
    g, _ = _renyi_unit(a, b)
    r = np.broadcast_to(s, shape) * np.sqrt(2.0 * g).reshape(a.shape)
    return _finish(r, scalar)


def renyi_objective(p1: ArrayLike, p2: ArrayLike, order: ArrayLike) -> float | np.ndarray:
    """g(order) = -(1/order) log(1 - p1 - p2 + 2 M_{1-order}(p1, p2)), the quantity maximised.

    ``order`` is the Renyi order, the paper's α (>= 1; broadcast with p1 and p2).
    ``sigma * sqrt(2 g(order))`` is a valid radius for every order >= 1; :func:`radius` takes the
    supremum. Evaluated without cancellation (see :mod:`renyi_cert._kernels`). ``order = 1`` gives
    the limit ``-log(1 - (sqrt(p1) - sqrt(p2))^2)``, ``order = inf`` gives 0. Returns 0 where
    p1 <= p2 (no certificate).

    Examples
    --------
    >>> round(renyi_objective(0.9, 0.1, 1.0), 12)  # -log(0.6)
    0.510825623766
    """
    a, b, o, shape, scalar = check_pair_and_order(p1, p2, order, minimum=1.0, inclusive=True)
    out = np.zeros_like(a)
    inner = (a > b) & (b > 0.0) & np.isfinite(o)
    if inner.any():
        from . import _kernels

        vals = np.empty(int(inner.sum()))
        _kernels.renyi_objective_many(a[inner], b[inner], o[inner], vals)
        out[inner] = vals
    edge = (a > b) & (b == 0.0) & np.isfinite(o)
    with np.errstate(divide="ignore"):
        out[edge] = -np.log1p(-a[edge]) / o[edge]
    return _finish(out.reshape(shape), scalar)


def cohen_radius(p1: ArrayLike, p2: ArrayLike, sigma: ArrayLike) -> float | np.ndarray:
    """Cohen, Rosenfeld & Kolter's tight Gaussian bound ``sigma/2 (Phi^-1(p1) - Phi^-1(p2))``.

    Cohen et al., "Certified Adversarial Robustness via Randomized Smoothing", ICML 2019,
    Theorem 1. Guarantee: with p1 a lower and p2 an upper confidence bound valid jointly with
    probability at least 1 - alpha, the smoothed classifier is constant on the l2 ball of this
    radius with probability at least 1 - alpha. It is the largest radius any method can certify
    from (p1, p2) alone under Gaussian noise, so it bounds the Renyi radius from above.

    Near ties the difference of quantiles is computed from a central-difference expansion around
    the midpoint (no cancellation). Returns 0 where p1 <= p2; inf where p1 = 1 or p2 = 0.

    Examples
    --------
    >>> round(cohen_radius(0.9, 0.1, 1.0), 10)
    1.2815515655
    """
    a, b, s, shape, scalar = _prepare(p1, p2, sigma)
    from scipy.special import ndtri

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        direct = ndtri(a) - ndtri(b)
        delta = a - b
        zm = ndtri(0.5 * (a + b))
        density = np.exp(-0.5 * zm * zm) / math.sqrt(2.0 * math.pi)
        ratio = delta / density
        # z(m + d/2) - z(m - d/2) = d z'(m) + d^3 z'''(m)/24 + O(d^5), z' = 1/phi, z''' = (1+2z^2)/phi^3
        series = ratio * (1.0 + ratio * ratio * (1.0 + 2.0 * zm * zm) / 24.0)
        near = (delta > 0.0) & (ratio < 1e-3)
        unit = np.where(near, series, direct)
    unit = np.where(a <= b, 0.0, unit)
    r = np.broadcast_to(s, shape) * (0.5 * unit)
    return _finish(np.array(r), scalar)


def _pixeldp(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The radius per unit sigma and the optimal epsilon (flat arrays) for validated pairs."""
    from . import _kernels

    a = np.ascontiguousarray(a, dtype=np.float64).ravel()
    b = np.ascontiguousarray(b, dtype=np.float64).ravel()
    unit = np.zeros_like(a)
    eps = np.zeros_like(a)
    ok = a > b
    if ok.all():
        _kernels.pixeldp_many(a, b, unit, eps)
    elif ok.any():
        u = np.empty(int(ok.sum()))
        e = np.empty_like(u)
        _kernels.pixeldp_many(a[ok], b[ok], u, e)
        unit[ok] = u
        eps[ok] = e
    return unit, eps


def pixeldp_details(p1: ArrayLike, p2: ArrayLike, sigma: ArrayLike) -> PixelDPResult:
    """The PixelDP bound with its optimal (epsilon, delta); see :func:`pixeldp_radius`."""
    a, b, s, shape, scalar = _prepare(p1, p2, sigma)
    unit, eps = _pixeldp(a, b)
    delta = np.where(eps > 0, (a.ravel() - np.exp(2 * eps) * b.ravel()) / (1 + np.exp(eps)), 0.0)
    r = np.broadcast_to(s, shape) * unit.reshape(a.shape)
    e = np.broadcast_to(eps.reshape(a.shape), shape)
    d = np.broadcast_to(delta.reshape(a.shape), shape)
    return PixelDPResult(
        radius=_finish(np.array(r), scalar), epsilon=_finish(np.array(e), scalar), delta=_finish(np.array(d), scalar)
    )


def pixeldp_radius(p1: ArrayLike, p2: ArrayLike, sigma: ArrayLike) -> float | np.ndarray:
    """The PixelDP certified radius (Lecuyer et al., S&P 2019), Gaussian mechanism.

    The Gaussian mechanism with standard deviation sigma is (epsilon, delta)-DP for l2 changes
    up to ``L = sigma * epsilon / sqrt(2 log(1.25/delta))`` when epsilon <= 1, and the expected
    scores then certify the prediction whenever ``p1 >= e^{2 epsilon} p2 + (1 + e^epsilon) delta``.
    We return the largest such L: for fixed epsilon the best delta is the largest feasible one,
    and the remaining 1-D problem in epsilon is solved exactly (bisection on the sign of the
    derivative, to machine precision) instead of on the grids of the paper and the PixelDP code.

    Guarantee: with p1 a lower and p2 an upper confidence bound valid jointly with probability
    at least 1 - alpha, the prediction is constant on the l2 ball of radius L with probability at
    least 1 - alpha. Returns 0 where p1 <= p2.

    Examples
    --------
    >>> round(pixeldp_radius(0.9, 0.1, 1.0), 5)
    0.39027
    """
    a, b, s, shape, scalar = _prepare(p1, p2, sigma)
    unit, _ = _pixeldp(a, b)
    r = np.broadcast_to(s, shape) * unit.reshape(a.shape)
    return _finish(np.array(r), scalar)


#: The bound functions by name, as used by the certificate and the command-line tools.
BOUNDS: dict[str, Callable[[ArrayLike, ArrayLike, ArrayLike], float | np.ndarray]] = {"renyi": radius, "cohen": cohen_radius, "pixeldp": pixeldp_radius}
