"""Input validation shared by the public functions.

Every check raises ``ValueError`` with a message that names the argument, shows the offending
value and states the constraint, e.g. ``"sigma (-1.0) must be > 0"``. Nothing is clipped.
"""

from __future__ import annotations

import math

import numpy as np

# p1 + p2 may exceed 1 by this much (rounding in the caller's arithmetic) before we refuse.
SUM_TOLERANCE = 1e-12


def _show(value) -> str:
    """A short repr of a scalar or of the first offending array element."""
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, (int, np.integer)):
        return repr(int(value))
    return repr(value)


def _first_bad(arr: np.ndarray, bad: np.ndarray):
    """The first element of ``arr`` where ``bad`` holds, and a suffix describing its position."""
    idx = np.argwhere(bad)[0]
    value = arr[tuple(idx)] if arr.ndim else arr[()]
    where = "" if arr.ndim == 0 else f" at index {tuple(int(i) for i in idx)}"
    return value, where


def as_float_array(name: str, value) -> np.ndarray:
    """Convert to a float64 array; refuse non-numeric input."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} ({value!r}) must be a real number or an array of real numbers") from None
    return arr


def check_probability(name: str, value) -> np.ndarray:
    """A probability (or array of them): finite, in [0, 1], not NaN."""
    arr = as_float_array(name, value)
    bad = np.isnan(arr)
    if bad.any():
        v, where = _first_bad(arr, bad)
        raise ValueError(f"{name} ({_show(v)}){where} must be a probability in [0, 1], not NaN")
    bad = (arr < 0.0) | (arr > 1.0)
    if bad.any():
        v, where = _first_bad(arr, bad)
        raise ValueError(f"{name} ({_show(v)}){where} must be a probability in [0, 1]")
    return arr


def check_pair(p1, p2) -> tuple[np.ndarray, np.ndarray]:
    """Validate (p1, p2): probabilities with p1 + p2 <= 1 (up to rounding), broadcast together."""
    a = check_probability("p1", p1)
    b = check_probability("p2", p2)
    try:
        a, b = np.broadcast_arrays(a, b)
    except ValueError:
        raise ValueError(f"p1 (shape {a.shape}) and p2 (shape {b.shape}) must broadcast to a common shape") from None
    bad = (a + b) > 1.0 + SUM_TOLERANCE
    if bad.any():
        idx = np.argwhere(bad)[0]
        i = tuple(idx)
        where = "" if a.ndim == 0 else f" at index {tuple(int(j) for j in idx)}"
        raise ValueError(
            f"p1 + p2 ({_show(a[i])} + {_show(b[i])} = {_show(a[i] + b[i])}){where} must be <= 1"
        )
    return a, b


def check_sigma(sigma) -> np.ndarray:
    """The noise level: finite and > 0 (scalar or array broadcastable with p1, p2)."""
    arr = as_float_array("sigma", sigma)
    bad = ~np.isfinite(arr)
    if bad.any():
        v, where = _first_bad(arr, bad)
        raise ValueError(f"sigma ({_show(v)}){where} must be finite and > 0")
    bad = arr <= 0.0
    if bad.any():
        v, where = _first_bad(arr, bad)
        raise ValueError(f"sigma ({_show(v)}){where} must be > 0")
    return arr


def check_alpha(alpha, name: str = "alpha") -> float:
    """A significance level in the open interval (0, 1)."""
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        raise ValueError(f"{name} ({alpha!r}) must be a real number in the open interval (0, 1)") from None
    if not (0.0 < a < 1.0):  # also false for NaN
        raise ValueError(f"{name} ({_show(a)}) must be in the open interval (0, 1)")
    return a


def check_counts(name: str, counts, *, ndim: int | None = 1, min_classes: int = 2) -> np.ndarray:
    """Class counts: non-negative integers (integer-valued floats accepted), given shape."""
    arr = np.asarray(counts)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name} ({counts!r}) must be an array of non-negative integers")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array of class counts, got shape {arr.shape}")
    if arr.ndim >= 1 and arr.shape[-1] < min_classes:
        raise ValueError(f"{name} must have at least {min_classes} classes, got {arr.shape[-1]}")
    if np.issubdtype(arr.dtype, np.floating):
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            v, where = _first_bad(arr, bad)
            raise ValueError(f"{name} ({_show(v)}){where} must be a non-negative integer count")
    bad = arr < 0
    if bad.any():
        v, where = _first_bad(arr, bad)
        raise ValueError(f"{name} ({_show(v)}){where} must be a non-negative integer count")
    out = arr.astype(np.int64)
    if out.sum() == 0:
        raise ValueError(f"{name} must contain at least one sample (all counts are 0)")
    return out


def check_positive_int(name: str, value, minimum: int = 1) -> int:
    """An integer >= minimum (bools and non-integral floats refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
            value = int(value)
        else:
            raise ValueError(f"{name} ({value!r}) must be an integer >= {minimum}")
    if value < minimum:
        raise ValueError(f"{name} ({int(value)}) must be an integer >= {minimum}")
    return int(value)


def check_choice(name: str, value, choices) -> str:
    """One of a fixed set of names."""
    if value not in choices:
        raise ValueError(f"{name} ({value!r}) must be one of {', '.join(repr(c) for c in choices)}")
    return value


def check_pair_and_order(p1, p2, alpha, *, minimum: float, inclusive: bool):
    """Validate (p1, p2) and a Renyi order alpha (>= or > minimum), broadcast all three.

    Returns flat contiguous float64 arrays ``a, b, alpha``, the broadcast shape, and whether all
    inputs were scalars.
    """
    a, b = check_pair(p1, p2)
    al = as_float_array("alpha", alpha)
    bad = np.isnan(al) | ((al < minimum) if inclusive else (al <= minimum))
    if bad.any():
        v, _ = _first_bad(al, bad)
        raise ValueError(f"alpha ({float(v)!r}) must be a Renyi order {'>=' if inclusive else '>'} {minimum:g}")
    scalar = a.ndim == 0 and al.ndim == 0
    try:
        a, b, al = np.broadcast_arrays(a, b, al)
    except ValueError:
        raise ValueError(f"alpha (shape {al.shape}) must broadcast with p1 and p2 (shape {a.shape})") from None
    shape = a.shape
    a, b, al = (np.ascontiguousarray(x, dtype=np.float64).ravel() for x in (a, b, al))
    return a, b, al, shape, scalar


def check_real(name: str, value, *, minimum: float = 0.0, strict: bool = False, allow_inf: bool = False) -> float:
    """A real number >= minimum (> minimum when strict); finite unless ``allow_inf`` (+inf only)."""
    if isinstance(value, bool):
        raise ValueError(f"{name} ({value!r}) must be a real number")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} ({value!r}) must be a real number") from None
    op = ">" if strict else ">="
    if math.isnan(v) or (math.isinf(v) and not (allow_inf and v > 0)):
        raise ValueError(f"{name} ({v!r}) must be finite and {op} {minimum:g}" + (" (or inf)" if allow_inf else ""))
    if v < minimum or (strict and v == minimum):
        raise ValueError(f"{name} ({v!r}) must be {op} {minimum:g}")
    return v
