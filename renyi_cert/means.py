"""The generalized (power) mean, computed in the log domain.

``M_t(x; w) = (sum_i w_i x_i^t)^(1/t)`` with weights summing to 1 (equal weights by default).
Limits: t -> 0 gives the geometric mean, t -> +inf the maximum, t -> -inf the minimum. For two
numbers with equal weights this is the M_t(p1, p2) of Li et al. (NeurIPS 2019), Lemma 1.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ._validate import as_float_array, real_array

__all__ = ["generalized_mean"]


def generalized_mean(x: ArrayLike, t: float, weights: ArrayLike | None = None, axis: int = -1) -> float | np.ndarray:
    """The power mean of order ``t`` of non-negative numbers along ``axis``.

    Computed as ``exp(logsumexp(t log x_i + log w_i) / t)``, so ``x_i^t`` never overflows or
    underflows (the paper's ``M_{1-α}``, α the Renyi order, has t = 1 - α, very negative for
    large α).

    Parameters
    ----------
    x : array_like
        Non-negative, finite values.
    t : float
        The order; ``0`` (geometric mean), ``inf`` (max) and ``-inf`` (min) are the limits.
    weights : array_like, optional
        Non-negative weights broadcastable to ``x`` that sum to 1 along ``axis``; equal by default.
    axis : int
        The axis to average over (``-x.ndim <= axis < x.ndim``); it must hold at least one value.

    Returns
    -------
    float or ndarray
        Between ``min(x)`` and ``max(x)`` (over positive weights), non-decreasing in ``t``.
        Zeros: for t <= 0 any zero (with positive weight) gives 0.

    Examples
    --------
    >>> generalized_mean([0.9, 0.1], 1.0), round(generalized_mean([0.9, 0.1], 0.0), 12)
    (0.5, 0.3)
    >>> generalized_mean([0.9, 0.1], -np.inf)
    0.1
    """
    arr = as_float_array("x", x)
    if arr.ndim == 0:
        raise ValueError("x must be an array of values to average (got a scalar)")
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise ValueError(f"axis ({axis!r}) must be an integer")
    if not -arr.ndim <= axis < arr.ndim:
        raise ValueError(
            f"axis ({int(axis)}) is out of range for x of shape {arr.shape}: it must be in "
            f"[{-arr.ndim}, {arr.ndim - 1}]"
        )
    axis = int(axis)
    if arr.shape[axis] == 0:
        raise ValueError(f"x must contain at least one value along axis {axis} to average (got shape {arr.shape})")
    if np.isnan(arr).any() or (arr < 0).any() or np.isinf(arr).any():
        bad = arr[np.isnan(arr) | (arr < 0) | np.isinf(arr)].flat[0]
        raise ValueError(f"x ({float(bad)!r}) must contain only finite values >= 0")
    real_array("t", t, "a real number (inf and -inf allowed)")
    try:
        t = float(t)
    except (TypeError, ValueError):
        raise ValueError(f"t ({t!r}) must be a real number (inf and -inf allowed)") from None
    if np.isnan(t):
        raise ValueError("t (nan) must be a real number (inf and -inf allowed), not NaN")
    n = arr.shape[axis]
    if weights is None:
        w = np.full(arr.shape, 1.0 / n)
    else:
        w = as_float_array("weights", weights)
        try:
            w = np.broadcast_to(w, arr.shape)
        except ValueError:
            raise ValueError(f"weights (shape {w.shape}) must broadcast to x (shape {arr.shape})") from None
        if np.isnan(w).any() or (w < 0).any():
            raise ValueError(f"weights ({float(w[np.isnan(w) | (w < 0)].flat[0])!r}) must be >= 0")
        total = w.sum(axis=axis)
        if not np.allclose(total, 1.0, rtol=0, atol=1e-9):
            bad = np.asarray(total).flat[np.argmax(np.abs(np.asarray(total) - 1.0).ravel())]
            raise ValueError(f"weights must sum to 1 along axis {axis} (a sum is {float(bad)!r})")
    active = w > 0
    if t == np.inf:
        return _scalar(np.max(np.where(active, arr, -np.inf), axis=axis))
    if t == -np.inf:
        return _scalar(np.min(np.where(active, arr, np.inf), axis=axis))
    if t == 1.0:  # the arithmetic mean, without a detour through exp and log
        return _scalar(np.sum(w * arr, axis=axis))
    with np.errstate(divide="ignore"):
        logx = np.log(arr)
        logw = np.log(w)
    if t == 0.0:
        terms = np.where(active, w * logx, 0.0)  # 0 * log 0 with zero weight contributes nothing
        return _scalar(np.exp(terms.sum(axis=axis)))
    from scipy.special import logsumexp  # scipy on first use: see renyi_cert.bounds

    z = np.where(active, t * logx + logw, -np.inf)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        lse = logsumexp(z, axis=axis)
        # Small |t log x|: log sum w e^{t y} = log1p(sum w expm1(t y)) keeps the digits that
        # logsumexp loses when the sum is 1 + O(t) (the result is divided by t).
        ty = np.where(active, t * logx, 0.0)
        small = np.all(np.abs(ty) < 1.0, axis=axis)
        if np.any(small):
            near = np.log1p(np.sum(np.where(active, w * np.expm1(ty), 0.0), axis=axis))
            lse = np.where(small, near, lse)
        # Tinier still (t y may even underflow): (1/t) log sum w e^{t y} = E[y] + t Var[y]/2 + O(t^2 y^3).
        tiny = np.all(np.abs(ty) < 1e-8, axis=axis)
        if np.any(tiny):
            y = np.where(active, logx, 0.0)
            mean_y = np.sum(w * y, axis=axis, keepdims=True)
            var_y = np.sum(np.where(active, w * (y - mean_y) ** 2, 0.0), axis=axis)
            log_mean = np.squeeze(mean_y, axis=axis) + 0.5 * t * var_y
            return _scalar(np.where(tiny, np.exp(log_mean), np.exp(lse / t)))
        if t < 0:
            # any active zero makes x^t infinite: the mean is 0
            has_zero = np.any(active & (arr == 0), axis=axis)
            out = np.where(has_zero, 0.0, np.exp(lse / t))
        else:
            out = np.exp(lse / t)
    return _scalar(out)


def _scalar(v: ArrayLike) -> float | np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return float(v) if v.ndim == 0 else v
