"""Input validation shared by the public functions.

Every check raises ``ValueError`` with a message that names the argument, shows the offending
value and states the constraint, e.g. ``"sigma (-1.0) must be > 0"``. Nothing is clipped.
Input that numpy would convert silently is refused up front (:func:`real_array`): ``None``
(``np.asarray(None, float)`` is NaN), strings (``"0.9"`` would become 0.9), complex numbers (the
imaginary part would be dropped) and masked arrays (the mask would be ignored).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection
from typing import NamedTuple, cast

import numpy as np

__all__ = [
    "SUM_TOLERANCE",
    "PairAndOrder",
    "real_array",
    "as_float_array",
    "check_probability",
    "check_pair",
    "check_sigma",
    "check_scalar_sigma",
    "check_alpha",
    "as_int_array",
    "check_counts",
    "check_positive_int",
    "check_choice",
    "check_pair_and_order",
    "check_real",
]

# p1 + p2 may exceed 1 by this much (rounding in the caller's arithmetic) before we refuse.
SUM_TOLERANCE = 1e-12

# Integers must fit in int64: [-2**63, 2**63).
_INT64_END = 2**63


def _show(value: object) -> str:
    """A short repr of a scalar or of the first offending array element."""
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, (int, np.integer)):
        return repr(int(value))
    return repr(value)


def _first_bad(arr: np.ndarray, bad: np.ndarray) -> tuple[object, str]:
    """The first element of ``arr`` where ``bad`` holds, and a suffix describing its position."""
    idx = np.argwhere(bad)[0]
    value = arr[tuple(idx)] if arr.ndim else arr[()]
    where = "" if arr.ndim == 0 else f" at index {tuple(int(i) for i in idx)}"
    return value, where


def _plain(value: object) -> object:
    """A numpy scalar as the Python object it holds (so messages show ``'a'``, not ``np.str_('a')``)."""
    return value.item() if isinstance(value, np.generic) else value


def _not_real(value: object) -> str | None:
    """None if ``value`` is a real number (bools included); otherwise the end of an error message."""
    value = _plain(value)
    if isinstance(value, (str, bytes)):
        return ", not a string"
    if isinstance(value, complex):
        return ", not a complex number"
    if isinstance(value, numbers.Real):
        return None
    return ""


def real_array(name: str, value: object, what: str = "a real number") -> np.ndarray:
    """``np.asarray(value)``, refusing what numpy would convert silently or mangle.

    Refused: masked arrays (their mask would be dropped), ``None``, strings, complex numbers and
    any other non-numbers, each named with its position (``"p1 ('0.9') must be a real number, not
    a string"``). The result has a bool, integer or float dtype, or object dtype holding only real
    numbers (e.g. Python integers too large for int64), so the caller can convert it knowingly.
    """
    if isinstance(value, np.ma.MaskedArray):
        raise ValueError(f"{name} is a masked array: masked arrays are not supported; fill or compress them first")
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):  # e.g. ragged nested lists
        raise ValueError(f"{name} ({value!r}) must be {what} or an array of them") from None
    if arr.dtype.kind in "biuf":
        return arr
    for i, v in enumerate(arr.flat):  # object, string, complex, datetime ...: name the first offender
        why = _not_real(v)
        if why is not None:
            where = "" if arr.ndim == 0 else f" at index {tuple(int(j) for j in np.unravel_index(i, arr.shape))}"
            raise ValueError(f"{name} ({_plain(v)!r}){where} must be {what}{why}")
    return arr


def as_float_array(name: str, value: object) -> np.ndarray:
    """Convert to a float64 array; refuse non-real input (see :func:`real_array`)."""
    arr = real_array(name, value)
    try:
        return np.asarray(arr, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):  # e.g. a Python integer beyond the float range
        raise ValueError(f"{name} ({value!r}) must be a real number or an array of real numbers") from None


def check_probability(name: str, value: object) -> np.ndarray:
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


def check_pair(p1: object, p2: object) -> tuple[np.ndarray, np.ndarray]:
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


def check_sigma(sigma: object, *, allow_zero: bool = False, name: str = "sigma") -> np.ndarray:
    """A noise level (or array of them): finite and > 0 (>= 0 with ``allow_zero``).

    Arrays are accepted (the radius functions broadcast sigma with p1 and p2); messages name the
    first offending element, e.g. ``"sigma (-1.0) must be > 0"``,
    ``"sigma (nan) at index (1,) must be finite and > 0"``.
    """
    arr = as_float_array(name, sigma)
    op = ">=" if allow_zero else ">"
    bad = ~np.isfinite(arr)
    if bad.any():
        v, where = _first_bad(arr, bad)
        raise ValueError(f"{name} ({_show(v)}){where} must be finite and {op} 0")
    bad = (arr < 0.0) if allow_zero else (arr <= 0.0)
    if bad.any():
        v, where = _first_bad(arr, bad)
        raise ValueError(f"{name} ({_show(v)}){where} must be {op} 0")
    return arr


def check_scalar_sigma(sigma: object, *, allow_zero: bool = False, name: str = "sigma") -> float:
    """One noise level as a float: finite and > 0 (>= 0 with ``allow_zero``).

    The checks and messages of :func:`check_sigma` (``"sigma (-1.0) must be > 0"``,
    ``"sigma (inf) must be finite and > 0"``, ``"sigma ('0.5') must be a real number, not a
    string"``), and arrays are refused: ``"sigma must be a single number, got an array of shape
    (2,)"``. For the certification functions and the model backends, which use one noise level
    per call.
    """
    arr = check_sigma(sigma, allow_zero=allow_zero, name=name)
    if arr.ndim != 0:
        raise ValueError(f"{name} must be a single number, got an array of shape {arr.shape}")
    return float(arr)


def check_alpha(alpha: object, name: str = "alpha") -> float:
    """A significance level in the open interval (0, 1) (``alpha`` never names a Renyi order)."""
    real_array(name, alpha, "a real number in the open interval (0, 1)")
    try:
        a = float(alpha)  # type: ignore[arg-type]  # real_array let only real numbers through
    except (TypeError, ValueError):
        raise ValueError(f"{name} ({alpha!r}) must be a real number in the open interval (0, 1)") from None
    if not (0.0 < a < 1.0):  # also false for NaN
        raise ValueError(f"{name} ({_show(a)}) must be in the open interval (0, 1)")
    return a


def _exact_int(value: object) -> int | None:
    """The Python int equal to a real number ``value``, or None if it is not a finite integer."""
    value = _plain(value)
    if isinstance(value, int):
        return int(value)
    if not isinstance(value, numbers.Real):  # real_array let only real numbers through
        return None
    try:
        f = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return int(f) if math.isfinite(f) and f.is_integer() else None


def as_int_array(name: str, value: object, what: str = "an integer", *, minimum: int | None = None) -> np.ndarray:
    """Integers (integer-valued floats accepted) as an int64 array, checked before conversion.

    Values that are not finite integers, or below ``minimum``, raise ``"{name} (v) at index (i,)
    must be {what}"``; values int64 can not hold raise naming the value as given (no wrap-around),
    e.g. ``"counts (1180591620717411303424) at index (0,) must be ... below 2**63"``.
    """
    arr = real_array(name, value, what)
    if not isinstance(value, np.ndarray) and (
        arr.dtype.kind == "u" or (arr.dtype.kind == "f" and bool(np.any(np.abs(arr) >= 2.0**53)))
    ):
        # numpy stored Python ints beyond int64 as uint64 or (inexactly) float64: check the values as passed
        arr = np.array(value, dtype=object)
    if arr.dtype == object:  # real numbers only (real_array); Python ints may exceed int64
        ints = np.array([_exact_int(v) for v in arr.flat], dtype=object).reshape(arr.shape)
        bad = np.array([i is None or (minimum is not None and i < minimum) for i in ints.flat], dtype=bool)
        high = np.array([i is not None and i >= _INT64_END for i in ints.flat], dtype=bool)
        low = np.array([i is not None and i < -_INT64_END for i in ints.flat], dtype=bool)
        bad, high, low = (m.reshape(arr.shape) for m in (bad, high, low))
    elif arr.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(arr) | (arr != np.round(arr))
            if minimum is not None:
                bad |= arr < minimum
            high = ~bad & (arr >= float(_INT64_END))  # 2.0**63 is exact
            low = ~bad & (arr < -float(_INT64_END))
    else:  # bool, signed or unsigned integers
        bad = (arr < minimum) if minimum is not None else np.zeros(arr.shape, dtype=bool)
        high = (arr > np.iinfo(np.int64).max) if arr.dtype.kind == "u" else np.zeros(arr.shape, dtype=bool)
        low = np.zeros(arr.shape, dtype=bool)
    if bad.any():
        v, where = _first_bad(arr, bad)
        raise ValueError(f"{name} ({_show(_plain(v))}){where} must be {what}")
    for mask, limit in ((high, "below 2**63"), (low, ">= -2**63")):
        if mask.any():
            v, where = _first_bad(arr, mask)
            raise ValueError(f"{name} ({_show(_plain(v))}){where} must be {what} {limit} (the int64 range)")
    if arr.dtype == object:
        return np.array([int(i) for i in ints.flat], dtype=np.int64).reshape(arr.shape)
    return arr.astype(np.int64)


def check_counts(name: str, counts: object, *, ndim: int | None = 1, min_classes: int = 2) -> np.ndarray:
    """Class counts: non-negative integers (integer-valued floats accepted) below 2**63, given shape.

    The number of samples (the sum over the last axis) must be below 2**63 too, so that it is
    exact in int64.
    """
    arr = as_int_array(name, counts, "a non-negative integer count", minimum=0)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array of class counts, got shape {arr.shape}")
    if arr.ndim >= 1 and arr.shape[-1] < min_classes:
        raise ValueError(f"{name} must have at least {min_classes} classes, got {arr.shape[-1]}")
    rows = np.atleast_1d(arr).reshape(-1, arr.shape[-1] if arr.ndim else 1)
    for i in np.flatnonzero(rows.sum(axis=1, dtype=np.float64) >= 2.0**62):  # maybe beyond int64: sum exactly
        total = sum(int(c) for c in rows[i])
        if total >= _INT64_END:
            where = "" if arr.ndim <= 1 else f" (at index {tuple(int(j) for j in np.unravel_index(i, arr.shape[:-1]))})"
            raise ValueError(
                f"{name}{where} sum to {total} samples; the number of samples must be below 2**63 (the int64 range)"
            )
    if not arr.any():
        raise ValueError(f"{name} must contain at least one sample (all counts are 0)")
    return arr


def check_positive_int(name: str, value: object, minimum: int = 1) -> int:
    """An integer >= minimum (bools and non-integral floats refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
            value = int(value)
        else:
            raise ValueError(f"{name} ({value!r}) must be an integer >= {minimum}")
    if value < minimum:
        raise ValueError(f"{name} ({int(value)}) must be an integer >= {minimum}")
    return int(value)


def check_choice(name: str, value: object, choices: Collection[str]) -> str:
    """One of a fixed set of names."""
    if value not in choices:
        raise ValueError(f"{name} ({value!r}) must be one of {', '.join(repr(c) for c in choices)}")
    return cast(str, value)


class PairAndOrder(NamedTuple):
    """Validated ``(p1, p2, order)``, broadcast together and flattened (see :func:`check_pair_and_order`)."""

    p1: np.ndarray
    """Flat contiguous float64 array."""
    p2: np.ndarray
    """Flat contiguous float64 array."""
    order: np.ndarray
    """The Renyi orders, flat contiguous float64."""
    shape: tuple[int, ...]
    """The broadcast shape, to restore the output's shape."""
    scalar: bool
    """Whether all three inputs were scalars (the result is then a float)."""


def check_pair_and_order(p1: object, p2: object, order: object, *, minimum: float,
                         inclusive: bool) -> PairAndOrder:
    """Validate (p1, p2) and a Renyi order (>= or > minimum), broadcast all three.

    Returns flat contiguous float64 arrays for the three, the broadcast shape, and whether all
    inputs were scalars.
    """
    a, b = check_pair(p1, p2)
    o = as_float_array("order", order)
    bad = np.isnan(o) | ((o < minimum) if inclusive else (o <= minimum))
    if bad.any():
        v, _ = _first_bad(o, bad)
        raise ValueError(f"order ({_show(v)}) must be a Renyi order {'>=' if inclusive else '>'} {minimum:g}")
    scalar = a.ndim == 0 and o.ndim == 0
    try:
        a, b, o = np.broadcast_arrays(a, b, o)
    except ValueError:
        raise ValueError(f"order (shape {o.shape}) must broadcast with p1 and p2 (shape {a.shape})") from None
    shape = a.shape
    a, b, o = (np.ascontiguousarray(x, dtype=np.float64).ravel() for x in (a, b, o))
    return PairAndOrder(a, b, o, shape, scalar)


def check_real(name: str, value: object, *, minimum: float = 0.0, strict: bool = False,
               allow_inf: bool = False) -> float:
    """A real number >= minimum (> minimum when strict); finite unless ``allow_inf`` (+inf only)."""
    if isinstance(value, bool):
        raise ValueError(f"{name} ({value!r}) must be a real number")
    real_array(name, value)
    try:
        v = float(value)  # type: ignore[arg-type]  # real_array let only real numbers through
    except (TypeError, ValueError):
        raise ValueError(f"{name} ({value!r}) must be a real number") from None
    op = ">" if strict else ">="
    if math.isnan(v) or (math.isinf(v) and not (allow_inf and v > 0)):
        raise ValueError(f"{name} ({v!r}) must be finite and {op} {minimum:g}" + (" (or inf)" if allow_inf else ""))
    if v < minimum or (strict and v == minimum):
        raise ValueError(f"{name} ({v!r}) must be {op} {minimum:g}")
    return v
