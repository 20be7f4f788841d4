"""High-precision reference implementations (mpmath), for auditing the float64 core.

These are slow, literal transcriptions of the formulas, evaluated with enough working precision
that cancellation cannot matter. The tests and benchmarks use them as the oracle. ``mpmath`` is a
development dependency: it is imported when a function here is first called.

References
----------
Li, Chen, Wang & Carin, "Certified Adversarial Robustness with Additive Gaussian Noise",
NeurIPS 2019, Theorem 1.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["g_mp", "radius_mp", "cohen_radius_mp"]

# mpmath has no type information: its numbers and its module are typed as Any here.
MpNumber = Any


def _mp() -> Any:
    try:
        import mpmath
    except ImportError as exc:  # pragma: no cover - mpmath ships with the dev extra
        raise ImportError("renyi_cert.reference needs mpmath: pip install 'renyi_cert[dev]'") from exc
    return mpmath


def _working_dps(p1: float, p2: float, dps: int) -> int:
    """Digits needed so that the cancellation in 1 - 2(M_1 - M_{1-order}) leaves ``dps`` digits."""
    gap = abs(p1 - p2)
    extra = 0 if gap == 0 else max(0, int(-2 * math.log10(gap / max(p1 + p2, 1e-300))) + 5)
    small = 0 if p2 == 0 else max(0, int(-math.log10(p2)))  # p^(1-order) spans many decades
    return dps + extra + small + 10


def g_mp(p1: float | MpNumber, p2: float | MpNumber, order: float | MpNumber, mp: Any = None) -> MpNumber:
    """g(order) = -(1/order) log(1 - p1 - p2 + 2 M_{1-order}(p1, p2)), at the current mp precision.

    ``order`` is the Renyi order (the paper's α), >= 1.
    """
    mp = mp or _mp()
    p1, p2, order = mp.mpf(p1), mp.mpf(p2), mp.mpf(order)
    if order == 1:
        arg = 1 - (mp.sqrt(p1) - mp.sqrt(p2)) ** 2
    elif p2 == 0:
        arg = 1 - p1  # M_t(p1, 0) = 0 for t < 0
    else:
        t = 1 - order
        mean = ((p1**t + p2**t) / 2) ** (1 / t)
        arg = 1 - p1 - p2 + 2 * mean
    return -mp.log(arg) / order


def radius_mp(p1: float, p2: float, sigma: float = 1.0, dps: int = 50) -> tuple[MpNumber, MpNumber]:
    """The paper's radius ``sigma * sqrt(2 sup_{order>1} g(order))`` to ``dps`` significant digits.

    The supremum is found by golden-section search on ``log(order - 1)`` after bracketing, which
    is valid because g is unimodal on (1, inf) (checked; see the tests). Returns
    ``(radius, order_star)`` as mpmath numbers, ``order_star`` the maximising order (the paper's
    α*); ``order_star == 1`` means the supremum is the limit order -> 1.
    """
    mp = _mp()
    p1, p2, sigma = float(p1), float(p2), float(sigma)
    if p1 <= p2:
        return mp.mpf(0), mp.mpf(1)
    if p2 == 0:
        if p1 == 1:
            return mp.inf, mp.mpf(1)
        with mp.workdps(dps + 10):
            return sigma * mp.sqrt(-2 * mp.log(1 - mp.mpf(p1))), mp.mpf(1)
    with mp.workdps(_working_dps(p1, p2, dps)):
        g = lambda u: g_mp(p1, p2, 1 + mp.exp(u), mp)  # noqa: E731 - order = 1 + e^u
        g1 = g_mp(p1, p2, 1, mp)
        # Bracket the maximum in u = log(order - 1): march right from u = -40 until g decreases.
        lo, step = mp.mpf(-40), mp.mpf(2)
        us = [lo, lo + step, lo + 2 * step]
        vals = [g(u) for u in us]
        while vals[2] > vals[1] and us[2] < 12:
            us = [us[1], us[2], us[2] + step]
            vals = [vals[1], vals[2], g(us[2])]
        a, b = us[0], us[2]
        invphi = (mp.sqrt(5) - 1) / 2
        c, d = b - invphi * (b - a), a + invphi * (b - a)
        gc, gd = g(c), g(d)
        for _ in range(160):
            if gc > gd:
                b, d, gd = d, c, gc
                c = b - invphi * (b - a)
                gc = g(c)
            else:
                a, c, gc = c, d, gd
                d = a + invphi * (b - a)
                gd = g(d)
        u_star = (a + b) / 2
        g_star = g(u_star)
        order_star = 1 + mp.exp(u_star)
        if g1 >= g_star:
            g_star, order_star = g1, mp.mpf(1)
        return sigma * mp.sqrt(2 * g_star), order_star


def cohen_radius_mp(p1: float, p2: float, sigma: float = 1.0, dps: int = 50) -> MpNumber:
    """Cohen et al.'s bound ``sigma/2 (Phi^-1(p1) - Phi^-1(p2))`` at ``dps`` digits (0 if p1 <= p2)."""
    mp = _mp()
    if p1 <= p2:
        return mp.mpf(0)
    with mp.workdps(dps + 10):
        def ppf(p: float) -> MpNumber:
            if p == 0:
                return -mp.inf
            if p == 1:
                return mp.inf
            return -mp.sqrt(2) * mp.erfinv(1 - 2 * mp.mpf(p)) if p < 0.5 else mp.sqrt(2) * mp.erfinv(2 * mp.mpf(p) - 1)

        return mp.mpf(sigma) / 2 * (ppf(float(p1)) - ppf(float(p2)))
