"""Adaptive (sequential) certification: stop sampling as soon as the answer is known.

:func:`renyi_cert.backend.certify` spends a fixed budget of ``n`` estimation samples on every
input, although an easy input (the base classifier almost always right under noise) reaches its
radius after a few hundred samples and a hopeless one (a target radius out of reach) could be
given up early. :func:`certify_adaptive` looks at a growing sample ``n_1 < n_2 < ... < n_K =
n_max`` and stops at the first look where a stopping rule fires. Looking repeatedly at the data
and stopping when the bounds look good is exactly how a naive procedure over-claims (each look is
another chance for a lucky draw); here every look uses exact Clopper-Pearson bounds at level
``alpha / K``, Bonferroni over the ``K`` looks, which the number of looks -- fixed in advance by
``(n_start, growth, n_max)`` -- makes possible. docs/sequential.md gives the argument and the
measured coverage.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validate import check_alpha, check_choice, check_positive_int, check_real, check_scalar_sigma
from .backend import Backend, _check_backend, _sample
from .bounds import BOUNDS
from .certificate import Certificate, _certificate
from .intervals import MAX_TRIALS, _top_two

__all__ = ["AdaptiveCertificate", "STOP_REASONS", "MAX_LOOKS", "certify_adaptive", "look_sizes"]

STOP_REASONS = ("target reached", "target out of reach", "tolerance reached", "budget exhausted")
"""The values of :attr:`AdaptiveCertificate.stop_reason`."""

MAX_LOOKS = 1000
"""The largest number of looks a schedule may have (each look gets ``alpha / K``; beyond a few
dozen looks the split costs more radius than the early stopping saves)."""

_METHOD = "clopper-pearson"
_BOUND_NAMES = tuple(BOUNDS)


@dataclass(frozen=True)
class AdaptiveCertificate:
    """The outcome of :func:`certify_adaptive` at one input.

    Attributes
    ----------
    certificate : Certificate
        The certificate of the last look: prediction (-1 on abstain), ``p1_lower``,
        ``p2_upper`` (exact Clopper-Pearson at ``alpha_per_look``), the radii of all three bounds
        (``"renyi"``, ``"cohen"``, ``"pixeldp"``), ``alpha`` (the overall level: it holds with
        probability at least ``1 - alpha``), ``n0`` (selection samples), ``n`` (estimation
        samples used, the size of the last look), ``guaranteed=True``.
    forward_passes : int
        Noisy samples drawn in all: ``n0 + certificate.n``.
    looks : int
        Looks made (1 to ``planned_looks``).
    planned_looks : int
        ``K``, the number of looks of the schedule (:func:`look_sizes`), fixed before sampling.
    stop_reason : str
        One of :data:`STOP_REASONS`: ``"target reached"``, ``"target out of reach"`` (no
        completion of the sample up to ``n_max`` could reach the target), ``"tolerance reached"``
        (no completion could raise the radius by more than the tolerance), ``"budget exhausted"``
        (the last look, ``n_max``, was made without any other rule firing).
    alpha_per_look : float
        ``alpha / K``: the level of each look's pair of bounds.
    """

    certificate: Certificate
    forward_passes: int
    looks: int
    planned_looks: int
    stop_reason: str
    alpha_per_look: float

    @property
    def prediction(self) -> int:
        """The certified class, or -1 (abstain)."""
        return self.certificate.prediction

    @property
    def abstained(self) -> bool:
        """True when no class is certified."""
        return self.certificate.abstained

    def radius(self, bound: str | None = None) -> float:
        """The certified radius for ``bound`` (default ``"renyi"``, the first)."""
        return self.certificate.radius(bound)


def look_sizes(*, n_start: int, growth: float, n_max: int) -> tuple[int, ...]:
    """The cumulative sample sizes at which :func:`certify_adaptive` looks.

    ``n_1 = n_start``, ``n_{k+1} = min(ceil(growth * n_k), n_max)``, ending with ``n_max`` (so
    the last step may be shorter). Strictly increasing because ``growth > 1``.

    Raises
    ------
    ValueError
        If ``n_start > n_max``, ``growth <= 1`` or the schedule has more than :data:`MAX_LOOKS`
        looks.

    Examples
    --------
    >>> look_sizes(n_start=100, growth=2.0, n_max=1000)
    (100, 200, 400, 800, 1000)
    >>> look_sizes(n_start=1000, growth=2.0, n_max=1000)
    (1000,)
    """
    n_start = check_positive_int("n_start", n_start)
    n_max = check_positive_int("n_max", n_max)
    growth = check_real("growth", growth, minimum=1.0, strict=True)
    if n_max > MAX_TRIALS:
        raise ValueError(f"n_max ({n_max}) must be at most 10**13 (the largest n an exact Clopper-Pearson "
                         "bound is computed for)")
    if n_start > n_max:
        raise ValueError(f"n_start ({n_start}) must be <= n_max ({n_max})")
    sizes = [n_start]
    while sizes[-1] < n_max:
        if len(sizes) >= MAX_LOOKS:
            raise ValueError(
                f"growth ({growth!r}) from n_start ({n_start}) to n_max ({n_max}) gives more than {MAX_LOOKS} "
                "looks; each look gets alpha / K, so raise growth or n_start"
            )
        sizes.append(min(max(math.ceil(growth * sizes[-1]), sizes[-1] + 1), n_max))
    return tuple(sizes)


def _best_completion(counts: np.ndarray, top: int, n_max: int, sigma: float, alpha_look: float,
                     bound: str) -> float:
    """The largest ``bound`` radius any look from now on could certify.

    That is the final look's radius when every one of the ``n_max - n`` samples still to come
    falls in ``top``: p1_lower grows with the top count, p2_upper falls as ``n`` grows at a fixed
    runner-up count, so this completion maximises the radius at every later look, and the final
    look of it dominates the earlier ones (see docs/sequential.md). Deterministic: no error.
    """
    final = counts.copy()
    final[top] += n_max - int(counts.sum())
    return _certificate(final, top, sigma, alpha_look, _METHOD, (bound,), 1, True).radii[bound]


def certify_adaptive(backend: Backend, x: Any, sigma: float, *, n0: int, n_max: int, alpha: float = 0.001,
                     target_radius: float | None = None, tolerance: float | None = None, relative: bool = True,
                     bound: str = "renyi", n_start: int = 100, growth: float = 2.0, batch_size: int = 1000,
                     generator: Any = None) -> AdaptiveCertificate:
    """Certify the smoothed classifier at ``x`` with as few samples as the question needs.

    Selection is as in :func:`renyi_cert.backend.certify`: the class ``cA`` is the argmax of the
    counts of ``n0`` noisy samples (ties: lowest index). Estimation then proceeds in looks at the
    cumulative sizes ``n_1 = n_start``, ``n_{k+1} = min(ceil(growth * n_k), n_max)``, ending at
    ``n_max`` (:func:`look_sizes`); between looks ``n_{k+1} - n_k`` fresh samples are drawn with
    ``backend.sample_counts`` and the same ``generator`` (independent of the selection samples
    and of each other) and added to the counts. The number of looks ``K`` is known before any
    sampling, and look ``k`` computes, at level ``alpha / K``, exactly the certificate of
    :func:`renyi_cert.certificate.certify_from_counts` on its ``n_k`` samples with ``top=cA``:
    one-sided Clopper-Pearson bounds at ``alpha / (2K)`` for ``p[cA]`` (lower, capped at
    ``(alpha / (2K)) ** (1 / n_k)``) and for the runner-up (upper, clipped to ``1 - p1_lower``),
    abstain when ``p1_lower <= p2_upper``, and the radius of ``bound``.

    Stopping rules (exactly one of ``target_radius`` and ``tolerance``):

    * target mode (``target_radius=r``): stop with ``"target reached"`` at the first look whose
      radius is ``>= r``; stop with ``"target out of reach"`` as soon as even the most
      favourable completion -- all ``n_max - n_k`` remaining samples in ``cA`` -- would give a
      final-look radius ``< r`` (then no later look could reach ``r`` whatever the samples);
      otherwise go on to ``n_max`` (``"budget exhausted"`` if ``r`` is not reached there).
    * best-radius mode (``tolerance=t``): stop with ``"tolerance reached"`` as soon as the most
      favourable completion could raise the radius by at most ``t`` (times the current radius if
      ``relative``, so an abstaining look stops only when nothing can be certified; absolute
      otherwise), or with ``"budget exhausted"`` at ``n_max``.

    An abstaining look just continues (unless a rule fires); at ``n_max`` the result abstains.
    The returned certificate is the last look's, with the radii of all three bounds.

    Guarantee: with probability at least ``1 - alpha`` over the noise, if the result is not an
    abstain, the smoothed classifier's prediction is constant (equal to ``prediction``) on the
    l2 ball of each returned radius around ``x`` -- whatever look the rule stopped at. Proof:
    let ``E_k`` be the event that look ``k``'s bounds hold, ``p1_lower_k <= p[cA]`` and
    ``max_{j != cA} p[j] <= p2_upper_k``. The counts at look ``k`` are those of ``n_k``
    independent samples (think of all ``n_max`` samples as drawn and the procedure as looking at
    prefixes), independent of the selection, so exact Clopper-Pearson with Bonferroni gives
    ``P(not E_k) <= alpha / K`` (Clopper & Pearson 1934; the runner-up argument of
    :func:`renyi_cert.intervals.top2_confidence`). A union bound over the ``K`` looks, a number
    fixed in advance, gives ``P(E_1 and ... and E_K) >= 1 - alpha``. On that event the bounds of
    the look ``tau`` where the procedure stops hold, whatever random rule chose ``tau``; since
    each radius increases in ``p1`` and decreases in ``p2`` (Li et al. 2019, Thm. 1; Cohen et
    al. 2019, Thm. 1; Lecuyer et al. 2019), the radius from the bounds is at most the radius from
    the true probabilities, which is certified. (A wrong ``cA`` can not be certified on that
    event: ``p[cA] >= p1_lower > p2_upper >= max_{j != cA} p[j]`` makes ``cA`` the top class.)
    The futility and tolerance checks are statements about the deterministic function "bounds
    of the final look given its counts", evaluated at the most favourable counts; they use no
    probability and cost no error. A schedule ``alpha_k = alpha 2^-k`` also sums to ``alpha``
    without fixing ``K``, but gives the late looks -- where a large radius is certified -- a
    much smaller share; with ``K`` known the even split ``alpha / K`` is better.

    Parameters
    ----------
    backend : Backend
        Anything with ``num_classes`` and ``sample_counts``.
    x : array_like
        The clean input, in the backend's format.
    sigma : float
        Noise standard deviation (> 0).
    n0 : int
        Selection samples (>= 1).
    n_max : int
        The most estimation samples (>= n_start); the last look is at ``n_max``.
    alpha : float, default 0.001
        Overall level, in ``(0, 1)``; each look uses ``alpha / K``.
    target_radius : float, optional
        Target mode: the radius (> 0) to certify. Must not exceed the radius ``n_max`` unanimous
        samples give at ``alpha / K`` (:class:`ValueError` otherwise: no input could reach it).
    tolerance : float, optional
        Best-radius mode: the gain (>= 0) below which further sampling is not worth it.
    relative : bool, default True
        Whether ``tolerance`` is relative to the current radius (else absolute, in l2 units).
    bound : str, default "renyi"
        The bound the rules watch, from :data:`renyi_cert.bounds.BOUNDS`.
    n_start : int, default 100
        Size of the first look (>= 1).
    growth : float, default 2.0
        Ratio between successive look sizes (> 1).
    batch_size : int, default 1000
        Largest number of noisy copies in memory at once.
    generator : optional
        The backend's random generator (``numpy.random.Generator`` for
        :class:`renyi_cert.backend.CallableBackend`).

    Returns
    -------
    AdaptiveCertificate

    Raises
    ------
    ValueError
        For any invalid argument, before any sampling.

    Examples
    --------
    A classifier right on 99.9 % of noisy copies certifies radius 1 after 3 200 estimation samples
    of the 100 000 allowed (6 of the 11 planned looks):

    >>> import numpy as np
    >>> class Fixed:  # a fake backend: class counts drawn from fixed probabilities
    ...     num_classes = 2
    ...     def sample_counts(self, x, sigma, n, *, batch_size, generator):
    ...         return generator.multinomial(n, [0.999, 0.001])
    >>> res = certify_adaptive(Fixed(), None, 0.5, n0=100, n_max=100_000, alpha=0.001, target_radius=1.0,
    ...                        generator=np.random.default_rng(0))
    >>> res.stop_reason, res.certificate.n, res.forward_passes, res.looks, res.planned_looks
    ('target reached', 3200, 3300, 6, 11)
    """
    _check_backend(backend)
    sigma = check_scalar_sigma(sigma)
    n0 = check_positive_int("n0", n0)
    batch_size = check_positive_int("batch_size", batch_size)
    alpha = check_alpha(alpha)
    bound = check_choice("bound", bound, _BOUND_NAMES)
    if not isinstance(relative, (bool, np.bool_)):
        raise ValueError(f"relative ({relative!r}) must be True or False")
    if (target_radius is None) == (tolerance is None):
        raise ValueError(
            f"exactly one of target_radius ({target_radius!r}) and tolerance ({tolerance!r}) must be given: "
            "target_radius to certify a given radius, tolerance to certify the best radius up to that gain"
        )
    sizes = look_sizes(n_start=n_start, growth=growth, n_max=n_max)
    n_max = sizes[-1]
    planned = len(sizes)
    alpha_look = alpha / planned
    k = int(backend.num_classes)
    if target_radius is not None:
        target = check_real("target_radius", target_radius, minimum=0.0, strict=True)
        unanimous = np.zeros(max(k, 2), dtype=np.int64)
        unanimous[0] = n_max
        cap = _certificate(unanimous, 0, sigma, alpha_look, _METHOD, (bound,), 1, True).radii[bound]
        if target > cap:
            raise ValueError(
                f"target_radius ({target!r}) must be at most {cap:.6g}, the largest {bound} radius n_max ({n_max}) "
                f"samples can certify at sigma {sigma!r} and alpha / K = {alpha!r} / {planned} (all samples in one "
                "class); raise n_max or lower the target"
            )
    else:
        t = check_real("tolerance", tolerance, minimum=0.0)

    selection = _sample(backend, x, sigma, n0, batch_size, generator)
    top = _top_two(selection).top
    counts = np.zeros_like(selection)
    drawn = 0
    for look, size in enumerate(sizes, start=1):
        counts += _sample(backend, x, sigma, size - drawn, batch_size, generator)
        drawn = size
        cert = _certificate(counts, top, sigma, alpha_look, _METHOD, (bound,), n0, True)
        current = cert.radii[bound]
        last = size == n_max
        reason = None
        if target_radius is not None:
            if current >= target:
                reason = "target reached"
            elif last:
                reason = "budget exhausted"
            elif _best_completion(counts, top, n_max, sigma, alpha_look, bound) < target:
                reason = "target out of reach"
        elif last:
            reason = "budget exhausted"
        else:
            gain = _best_completion(counts, top, n_max, sigma, alpha_look, bound) - current
            if gain <= (t * current if relative else t):
                reason = "tolerance reached"
        if reason is not None:
            full = _certificate(counts, top, sigma, alpha_look, _METHOD, _BOUND_NAMES, n0, True)
            full = dataclasses.replace(full, alpha=alpha)  # the overall level: all looks together
            return AdaptiveCertificate(full, n0 + size, look, planned, reason, alpha_look)
    raise AssertionError("unreachable: the last look always stops")  # pragma: no cover
