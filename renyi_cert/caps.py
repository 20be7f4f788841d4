"""How far n samples at level alpha can certify: the radius cap and the samples a radius needs.

A certificate is computed from confidence bounds, and with ``n`` estimation samples the exact
one-sided Clopper-Pearson lower bound (at ``alpha / 2``, the Bonferroni half used for p1) can not
exceed ``(alpha / 2) ** (1 / n)`` -- its value when every sample falls in one class. Every radius
grows with p1 and falls with p2, so that unanimous outcome caps every radius any input can get;
docs/numerics.md (section 4) works the numbers. The command-line tools print the cap before a
run; the reproduction report tabulates it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from ._validate import check_alpha, check_positive_int, check_real
from .certificate import _check_bounds, certify_from_counts
from .intervals import MAX_TRIALS

__all__ = ["RadiusCap", "radius_cap", "min_samples"]


@dataclass(frozen=True)
class RadiusCap:
    """The largest certificate ``n`` samples at level ``alpha`` can give (all samples in one class).

    Attributes
    ----------
    n : int
        Estimation samples.
    alpha : float
        Significance level.
    sigma : float
        Noise standard deviation.
    method : str
        Confidence-interval method.
    p1_lower, p2_upper : float
        The bounds of the unanimous outcome.
    radii : Mapping of str to float
        The largest radius per bound (read-only, :class:`renyi_cert.certificate.Radii`).
    """

    n: int
    alpha: float
    sigma: float
    method: str
    p1_lower: float
    p2_upper: float
    radii: Mapping[str, float]


def radius_cap(n: int, *, alpha: float, sigma: float, bounds: Sequence[str] | str = ("renyi", "cohen", "pixeldp"),
               method: str = "clopper-pearson", allow_unguaranteed: bool = False,
               num_classes: int = 2) -> RadiusCap:
    """The largest radius per bound that ``n`` samples at level ``alpha`` can certify.

    Computed as the certificate of the unanimous outcome (every selection and estimation sample
    in one class) by :func:`renyi_cert.certificate.certify_from_counts`, so it follows exactly
    the rules real certificates follow (Bonferroni split, the ``(alpha/2) ** (1/n)`` cap on
    ``p1_lower``). ``num_classes`` matters only for the simultaneous interval methods.

    Examples
    --------
    >>> cap = radius_cap(2000, alpha=0.001, sigma=0.7)
    >>> round(cap.p1_lower, 6), round(cap.radii["renyi"], 3), round(cap.radii["cohen"], 3)
    (0.996207, 1.544, 1.869)
    """
    n = check_positive_int("n", n)
    num_classes = check_positive_int("num_classes", num_classes, minimum=2)
    zeros = [0] * (num_classes - 1)
    cert = certify_from_counts([1] + zeros, [n] + zeros, sigma, alpha=alpha, method=method,
                               bounds=bounds, allow_unguaranteed=allow_unguaranteed)
    return RadiusCap(n=n, alpha=cert.alpha, sigma=cert.sigma, method=cert.method, p1_lower=cert.p1_lower,
                     p2_upper=cert.p2_upper, radii=cert.radii)


def min_samples(radius: float, *, sigma: float, alpha: float, bound: str = "renyi") -> int:
    """The smallest ``n`` whose :func:`radius_cap` for ``bound`` reaches ``radius``.

    Fewer estimation samples can not certify ``radius`` at level ``alpha`` for any input (exact
    Clopper-Pearson bounds with the Bonferroni split).

    Raises
    ------
    ValueError
        If no ``n`` up to :data:`renyi_cert.intervals.MAX_TRIALS` reaches it (PixelDP's radius,
        for one, is bounded whatever ``n``).

    Examples
    --------
    >>> min_samples(1.5, sigma=0.7, alpha=0.001)
    1618
    """
    radius = check_real("radius", radius, minimum=0.0, strict=True)
    alpha = check_alpha(alpha)
    (bound,) = _check_bounds(bound)

    def cap(n: int) -> float:
        return radius_cap(n, alpha=alpha, sigma=sigma, bounds=bound).radii[bound]

    hi = 1
    while cap(hi) < radius:
        if hi >= MAX_TRIALS:
            raise ValueError(f"radius ({radius!r}) is beyond the {bound} cap of every n up to 10**13 at sigma "
                             f"{sigma!r} and alpha {alpha!r} (largest: {cap(MAX_TRIALS):.6g})")
        hi = min(hi * 2, MAX_TRIALS)
    lo = hi // 2  # cap(lo) < radius <= cap(hi) (lo = 0 stands for "no samples")
    while hi - lo > 1:  # the cap increases with n
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if cap(mid) < radius else (lo, mid)
    return hi
