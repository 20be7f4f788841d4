"""Renyi divergences and the paper's Lemma 1 lower bound.

D_order(P || Q) = 1/(order - 1) log sum_i p_i^order q_i^(1 - order)  (Renyi 1961), with the limits
order -> 1 (Kullback-Leibler), order = 0 (-log Q(supp P)) and order = inf (log max p_i/q_i).
The Renyi order is the paper's α; the library reserves the name ``alpha`` for significance levels.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from ._validate import as_float_array, check_pair_and_order, check_scalar_sigma, real_array

__all__ = ["renyi_divergence", "gaussian_renyi_divergence", "lemma1_bound"]

_SUM_TOL = 1e-9


def _distribution(name: str, v: ArrayLike) -> np.ndarray:
    arr = as_float_array(name, v)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D probability vector, got shape {arr.shape}")
    bad = ~np.isfinite(arr) | (arr < 0)
    if bad.any():
        raise ValueError(f"{name} ({float(arr[bad][0])!r}) must contain only finite probabilities >= 0")
    total = float(arr.sum())
    if abs(total - 1.0) > _SUM_TOL:
        raise ValueError(f"{name} must sum to 1 (sum is {total!r})")
    return arr


def _order(order: float) -> float:
    real_array("order", order, "a Renyi order in [0, inf]")
    try:
        a = float(order)
    except (TypeError, ValueError):
        raise ValueError(f"order ({order!r}) must be a Renyi order in [0, inf]") from None
    if math.isnan(a) or a < 0:
        raise ValueError(f"order ({a!r}) must be a Renyi order in [0, inf]")
    return a


def renyi_divergence(p: ArrayLike, q: ArrayLike, order: float) -> float:
    """Renyi divergence D_order(P || Q) of two discrete distributions, in nats.

    Parameters
    ----------
    p, q : array_like
        Probability vectors of equal length (each sums to 1 within 1e-9).
    order : float
        The Renyi order (the paper's α), in [0, inf]; order = 1 gives the Kullback-Leibler
        divergence.

    Returns
    -------
    float
        >= 0, and 0 exactly when P = Q (for order > 0); inf when P is not absolutely
        continuous with respect to Q and order >= 1.

    Examples
    --------
    >>> round(renyi_divergence([0.9, 0.1], [0.5, 0.5], 2.0), 12)  # log(2 * 0.82)
    0.494696241836
    """
    pa = _distribution("p", p)
    qa = _distribution("q", q)
    if pa.shape != qa.shape:
        raise ValueError(f"p (length {pa.size}) and q (length {qa.size}) must have the same length")
    a = _order(order)
    support = pa > 0
    with np.errstate(divide="ignore"):
        logp = np.log(pa)
        logq = np.log(qa)
    if a >= 1 and np.any(support & (qa == 0)):
        return math.inf
    if a == 0:
        mass = qa[support].sum()
        return math.inf if mass == 0 else max(0.0, float(-math.log(mass)))
    if a == 1:
        return float(max(0.0, np.sum(pa[support] * (logp[support] - logq[support]))))
    if a == math.inf:
        return float(max(0.0, np.max(logp[support] - logq[support])))
    both = support & (qa > 0)
    if not both.any():
        return math.inf
    from scipy.special import logsumexp  # scipy on first use: see renyi_cert.bounds

    z = a * logp[both] + (1 - a) * logq[both]
    return float(max(0.0, logsumexp(z) / (a - 1)))


def gaussian_renyi_divergence(mu1: ArrayLike, mu2: ArrayLike, sigma1: float, sigma2: float | None = None,
                              order: float = 2.0) -> float:
    """D_order(N(mu1, sigma1^2 I) || N(mu2, sigma2^2 I)) for isotropic Gaussians in R^d, in nats.

    With equal variances this is ``order * ||mu1 - mu2||^2 / (2 sigma^2)``, the identity behind
    the paper's Theorem 1. In general, with ``s_a^2 = order sigma2^2 + (1 - order) sigma1^2``
    (which must be > 0; otherwise the divergence is infinite):

        order ||mu1 - mu2||^2 / (2 s_a^2) + d/(2 (1 - order)) log(s_a^2 / (sigma1^(2(1-order)) sigma2^(2 order))).

    Parameters
    ----------
    mu1, mu2 : array_like
        Means, 1-D of equal length d (scalars are d = 1).
    sigma1, sigma2 : float
        Standard deviations (> 0); sigma2 defaults to sigma1.
    order : float
        The Renyi order (the paper's α), > 0 (order = 1: the KL divergence).

    Examples
    --------
    >>> gaussian_renyi_divergence([0.0, 0.0], [3.0, 4.0], 1.0, order=2.0)  # 2 * 25 / 2
    25.0
    """
    m1 = np.atleast_1d(as_float_array("mu1", mu1))
    m2 = np.atleast_1d(as_float_array("mu2", mu2))
    if m1.ndim != 1 or m1.shape != m2.shape:
        raise ValueError(f"mu1 (shape {m1.shape}) and mu2 (shape {m2.shape}) must be 1-D of equal length")
    if not (np.isfinite(m1).all() and np.isfinite(m2).all()):
        raise ValueError("mu1 and mu2 must be finite")
    s1 = check_scalar_sigma(sigma1, name="sigma1")
    s2 = s1 if sigma2 is None else check_scalar_sigma(sigma2, name="sigma2")
    a = _order(order)
    if a == 0 or a == math.inf:
        raise ValueError(f"order ({a!r}) must be finite and > 0 for Gaussians")
    d = m1.size
    sq = float(np.sum((m1 - m2) ** 2))
    if s1 == s2:
        return a * sq / (2 * s1 * s1)
    v1, v2 = s1 * s1, s2 * s2
    if a == 1:
        return 0.5 * (d * v1 / v2 + sq / v2 - d + d * math.log(v2 / v1))
    va = a * v2 + (1 - a) * v1
    if va <= 0:
        return math.inf
    return a * sq / (2 * va) + d / (2 * (1 - a)) * math.log(va / (v1 ** (1 - a) * v2**a))


def lemma1_bound(p1: ArrayLike, p2: ArrayLike, order: ArrayLike) -> float | np.ndarray:
    """The paper's Lemma 1: the least Renyi divergence that can move the top class.

    If P has top-two probabilities p1 >= p2 and Q's argmax differs from P's, then
    ``D_order(Q || P) >= -log(1 - 2 M_1(p1, p2) + 2 M_{1-order}(p1, p2))`` (Li, Chen, Wang &
    Carin, NeurIPS 2019, Lemma 1, with the order written α). ``order`` is > 0. Evaluated without
    cancellation. order = 1 gives ``-log(1 - (sqrt(p1) - sqrt(p2))^2)``; order = inf gives
    ``-log(1 - p1 + p2)``.

    Returns 0 where p1 <= p2. Scalars give a float, arrays broadcast.

    Examples
    --------
    >>> round(lemma1_bound(0.9, 0.1, 1.0), 12)  # -log(1 - 0.4)
    0.510825623766
    """
    a, b, o, shape, scalar = check_pair_and_order(p1, p2, order, minimum=0.0, inclusive=False)
    out = np.zeros_like(a)
    cert = a > b
    inf_order = cert & np.isinf(o)
    out[inf_order] = -np.log1p(-(a[inf_order] - b[inf_order]))
    edge = cert & ~inf_order & (b == 0.0) & (o > 1.0)  # M_{1-order}(p1, 0) = 0 for order > 1
    with np.errstate(divide="ignore"):
        out[edge] = -np.log1p(-a[edge])
    rest = cert & ~inf_order & ~edge
    zero_p2 = rest & (b == 0.0)  # order <= 1 with p2 = 0: M_t(p1, 0) = p1 2^(-1/t) for t > 0, 0 at t = 0
    if zero_p2.any():
        t = 1.0 - o[zero_p2]
        pa = a[zero_p2]
        with np.errstate(divide="ignore", over="ignore"):
            mean = np.where(t > 0, pa * np.exp2(-1.0 / np.where(t > 0, t, 1.0)), 0.0)
            out[zero_p2] = -np.log(1.0 - pa + 2.0 * mean)
    inner = rest & (b > 0.0)
    if inner.any():
        from . import _kernels  # numba on first use: see renyi_cert.bounds

        vals = np.empty(int(inner.sum()))
        _kernels.lemma1_many(a[inner], b[inner], o[inner], vals)
        out[inner] = vals
    out = out.reshape(shape)
    return float(out) if scalar else out
