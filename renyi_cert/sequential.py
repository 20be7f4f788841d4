"""Adaptive (sequential) certification: stop sampling as soon as the answer is known.

:func:`renyi_cert.backend.certify` spends a fixed budget of ``n`` estimation samples on every
input, although an easy input (the base classifier almost always right under noise) reaches its
radius after a few hundred samples and a hopeless one (a target radius out of reach) could be
given up early. :func:`certify_adaptive` looks at a growing sample ``n_1 < n_2 < ... < n_K =
n_max`` and stops at the first look where a stopping rule fires. Looking repeatedly at the data
and stopping when the bounds look good is exactly how a naive procedure over-claims (each look is
another chance for a lucky draw); here look ``k`` uses exact Clopper-Pearson bounds at a level
``alpha_k`` with ``alpha_1 + ... + alpha_K = alpha`` (Bonferroni over the ``K`` looks; by default
half of ``alpha`` for the last look, the rest split evenly), which the number of looks -- fixed
in advance by ``(n_start, growth, n_max)`` -- makes possible. docs/sequential.md gives the argument and the
measured coverage.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validate import check_alpha, check_choice, check_positive_int, check_real
from .backend import Backend, _backend_noise, _check_backend, _sample
from .bounds import BOUNDS
from .certificate import Certificate, NoiseLike, _as_noise, _certificate
from .intervals import MAX_TRIALS, _top_two, clopper_pearson_interval

__all__ = ["AdaptiveCertificate", "AdaptivePlan", "STOP_REASONS", "MAX_LOOKS", "DEFAULT_FUTILITY_LEVEL",
           "DEFAULT_FINAL_SHARE", "certify_adaptive", "look_sizes",
           "certify_with_plan", "plan_adaptive"]

STOP_REASONS = ("target reached", "target out of reach", "tolerance reached", "budget exhausted")
"""The values of :attr:`AdaptiveCertificate.stop_reason`."""

DEFAULT_FUTILITY_LEVEL = 0.01
"""Default ``futility_level`` of :func:`certify_adaptive` (see there)."""

DEFAULT_FINAL_SHARE = 0.5
"""Default ``final_share`` of :func:`certify_adaptive`: half of ``alpha`` for the last look."""

MAX_LOOKS = 1000
"""The largest number of looks a schedule may have (each look gets a share of ``alpha``; beyond a few
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
        ``p2_upper`` (exact Clopper-Pearson at ``look_alpha``), the radii of all three bounds
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
        One of :data:`STOP_REASONS`: ``"target reached"``, ``"target out of reach"`` (the
        projected completion of the sample up to ``n_max`` would not reach the target),
        ``"tolerance reached"`` (it would not raise the radius by more than the tolerance),
        ``"budget exhausted"``
        (the last look, ``n_max``, was made without any other rule firing).
    look_alpha : float
        The level of the pair of bounds of the look the procedure stopped at.
    """

    certificate: Certificate
    forward_passes: int
    looks: int
    planned_looks: int
    stop_reason: str
    look_alpha: float

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
                "looks; each look gets a share of alpha, so raise growth or n_start"
            )
        sizes.append(min(max(math.ceil(growth * sizes[-1]), sizes[-1] + 1), n_max))
    return tuple(sizes)


@dataclass(frozen=True)
class AdaptivePlan:
    """The checked settings of an adaptive certification, fixed before any sampling.

    Built by :func:`plan_adaptive` (which validates every field); :func:`certify_adaptive` runs it.

    Attributes
    ----------
    sigma, alpha : float
        Noise level and overall significance level.
    sizes : tuple of int
        The look sizes (:func:`look_sizes`), ending at ``n_max``; ``K = len(sizes)``.
    look_alphas : tuple of float
        The level of each look's pair of bounds; they sum to ``alpha``: ``final_share * alpha``
        for the last look, the rest split evenly over the others.
    bound : str
        The bound the stopping rules watch.
    target_radius, tolerance : float or None
        Exactly one is set: target mode or best-radius mode.
    relative : bool
        Whether ``tolerance`` is relative to the current radius.
    futility_level : float
        How optimistic the completion the rules project is (0: the most favourable).
    """

    sigma: Any
    alpha: float
    sizes: tuple[int, ...]
    look_alphas: tuple[float, ...]
    bound: str
    target_radius: float | None
    tolerance: float | None
    relative: bool
    futility_level: float

    @property
    def n_max(self) -> int:
        """The size of the last look."""
        return self.sizes[-1]


def plan_adaptive(sigma: NoiseLike, *, n_max: int, alpha: float = 0.001, target_radius: float | None = None,
                  tolerance: float | None = None, relative: bool = True, bound: str = "renyi",
                  futility_level: float = DEFAULT_FUTILITY_LEVEL, n_start: int = 100, growth: float = 2.0,
                  final_share: float | None = DEFAULT_FINAL_SHARE, num_classes: int = 2) -> AdaptivePlan:
    """Check the settings of :func:`certify_adaptive` (same meaning) and fix its look schedule.

    Callers that certify many inputs (the ``certify`` command) call it once up front, so that a
    bad setting is refused before any sampling; ``num_classes`` is the backend's.

    Raises
    ------
    ValueError
        Naming the bad value and its constraint; a ``target_radius`` above the radius that
        ``n_max`` unanimous samples certify at the last look's level is refused (no input could
        reach it).
    """
    noise = _as_noise(sigma)
    sigma = noise.sigma if noise.name == "gaussian" else noise  # a number stays a number
    alpha = check_alpha(alpha)
    bound = check_choice("bound", bound, tuple(noise.bounds))
    futility_level = check_real("futility_level", futility_level, minimum=0.0)
    if futility_level >= 0.5:
        raise ValueError(f"futility_level ({futility_level!r}) must be < 0.5 (an error level; 0 = give up only when "
                         "no completion can reach the target)")
    if not isinstance(relative, (bool, np.bool_)):
        raise ValueError(f"relative ({relative!r}) must be True or False")
    if (target_radius is None) == (tolerance is None):
        raise ValueError(
            f"exactly one of target_radius ({target_radius!r}) and tolerance ({tolerance!r}) must be given: "
            "target_radius to certify a given radius, tolerance to certify the best radius up to that gain"
        )
    sizes = look_sizes(n_start=n_start, growth=growth, n_max=n_max)
    look_alphas = _look_alphas(alpha, len(sizes), final_share)
    if target_radius is not None:
        target_radius = check_real("target_radius", target_radius, minimum=0.0, strict=True)
        _check_reachable(target_radius, sigma, sizes[-1], look_alphas[-1], bound, num_classes)
    else:
        tolerance = check_real("tolerance", tolerance, minimum=0.0)
    return AdaptivePlan(sigma, alpha, sizes, look_alphas, bound, target_radius, tolerance, bool(relative),
                        futility_level)


def _look_alphas(alpha: float, looks: int, final_share: float | None) -> tuple[float, ...]:
    """``alpha`` split over the looks: ``final_share`` of it to the last, the rest evenly."""
    if final_share is None:
        return (alpha / looks,) * looks
    share = check_real("final_share", final_share, minimum=0.0, strict=True)
    if share > 1.0 or (share == 1.0 and looks > 1):
        raise ValueError(f"final_share ({share!r}) must be in (0, 1) (in (0, 1] with a single look); the other "
                         f"{looks - 1} look(s) need a share of alpha too")
    if looks == 1:
        return (alpha,)
    return (alpha * (1.0 - share) / (looks - 1),) * (looks - 1) + (alpha * share,)


def _at(sigma: Any) -> str:
    """``at sigma 0.7`` for a number, ``with Laplace(scale=0.5)`` for a noise."""
    return f"at sigma {sigma!r}" if isinstance(sigma, (int, float)) else f"with {sigma!r}"


def _check_reachable(target: float, sigma: Any, n_max: int, alpha_last: float, bound: str,
                     num_classes: int) -> None:
    """Refuse a target above the radius of ``n_max`` unanimous samples at the last look's level."""
    unanimous = np.zeros(max(int(num_classes), 2), dtype=np.int64)
    unanimous[0] = n_max
    cap = _certificate(unanimous, 0, sigma, alpha_last, _METHOD, (bound,), 1, True).radii[bound]
    if target > cap:
        raise ValueError(
            f"target_radius ({target!r}) must be at most {cap:.6g}, the largest {bound} radius n_max ({n_max}) "
            f"samples can certify {_at(sigma)} and the last look's level {alpha_last:.3g} (all samples in "
            "one class); raise n_max or lower the target"
        )


def _stop_reason(plan: AdaptivePlan, look: int, counts: np.ndarray, top: int) -> str | None:
    """Which stopping rule, if any, fires at look ``look`` (0-based) with estimation ``counts``."""
    current = _certificate(counts, top, plan.sigma, plan.look_alphas[look], _METHOD, (plan.bound,), 1,
                           True).radii[plan.bound]
    if plan.target_radius is not None and current >= plan.target_radius:
        return "target reached"
    if int(counts.sum()) == plan.n_max:
        return "budget exhausted"
    projected = _completion_radius(counts, top, plan.n_max, plan.futility_level, plan.sigma, plan.look_alphas[-1],
                                   plan.bound)
    if plan.target_radius is not None:
        return "target out of reach" if projected < plan.target_radius else None
    assert plan.tolerance is not None  # best-radius mode
    allowed = plan.tolerance * current if plan.relative else plan.tolerance
    return "tolerance reached" if projected - current <= allowed else None


def _completion(counts: np.ndarray, top: int, n_max: int, futility_level: float) -> np.ndarray:
    """The final-look counts the stopping rules reason about, from the counts of the current look.

    ``futility_level == 0``: the most favourable completion, every one of the ``n_max - n``
    samples still to come in ``top``. It maximises the radius of every later look (p1_lower grows
    with the top count, p2_upper falls as ``n`` grows at a fixed runner-up count; see
    docs/sequential.md), so a rule based on it never gives up on a radius some later look could
    reach. ``futility_level > 0``: a plausible completion, the remaining samples falling in
    ``top`` at the rate ``p1_upper``, the one-sided exact Clopper-Pearson upper bound at level
    ``futility_level`` of ``p[top]`` from the current counts, and the rest spread over the other
    classes as evenly as their current counts allow (:func:`_fill_evenly`; the spread that keeps
    the runner-up count, hence ``p2_upper``, smallest). Only an input whose ``p[top]`` exceeds
    ``p1_upper`` -- probability at most ``futility_level`` -- is likely to do better.
    """
    n = int(counts.sum())
    remaining = n_max - n
    final = counts.copy()
    if futility_level == 0.0 or counts[top] == n:
        final[top] += remaining
        return final
    p1_upper = float(clopper_pearson_interval(int(counts[top]), n, alpha=2.0 * futility_level).upper)
    to_top = min(remaining, math.ceil(remaining * p1_upper))
    final[top] += to_top
    rest = np.arange(final.size) != top
    final[rest] = _fill_evenly(final[rest], remaining - to_top)
    return final


def _fill_evenly(counts: np.ndarray, extra: int) -> np.ndarray:
    """``counts`` plus ``extra`` units, each added to a smallest count (water-filling).

    The result minimises the largest count among all ways to add ``extra`` units: every count
    below a level ``L`` is raised to ``L`` (the largest level the ``extra`` units pay for, found
    by bisection), and the units left over (fewer than the counts at ``L``) add one each.
    """
    out = counts.astype(np.int64).copy()
    if extra <= 0 or out.size == 0:
        return out
    low, high = int(out.min()), int(out.min()) + int(extra)  # cost(low) = 0 <= extra < cost(high + 1)
    while low < high:
        mid = (low + high + 1) // 2
        if int(np.maximum(mid - out, 0).sum()) <= extra:
            low = mid
        else:
            high = mid - 1
    leftover = int(extra) - int(np.maximum(low - out, 0).sum())
    out = np.maximum(out, low)
    out[np.flatnonzero(out == low)[:leftover]] += 1
    return out


def _completion_radius(counts: np.ndarray, top: int, n_max: int, futility_level: float, sigma: Any,
                       alpha_look: float, bound: str) -> float:
    """The ``bound`` radius of the final look at the counts of :func:`_completion` (no error)."""
    final = _completion(counts, top, n_max, futility_level)
    return _certificate(final, top, sigma, alpha_look, _METHOD, (bound,), 1, True).radii[bound]


def certify_adaptive(backend: Backend, x: Any, sigma: NoiseLike, *, n0: int, n_max: int, alpha: float = 0.001,
                     target_radius: float | None = None, tolerance: float | None = None, relative: bool = True,
                     bound: str = "renyi", futility_level: float = DEFAULT_FUTILITY_LEVEL, n_start: int = 100,
                     growth: float = 2.0, final_share: float | None = DEFAULT_FINAL_SHARE, batch_size: int = 1000,
                     generator: Any = None) -> AdaptiveCertificate:
    """Certify the smoothed classifier at ``x`` with as few samples as the question needs.

    Selection is as in :func:`renyi_cert.backend.certify`: the class ``cA`` is the argmax of the
    counts of ``n0`` noisy samples (ties: lowest index). Estimation then proceeds in looks at the
    cumulative sizes ``n_1 = n_start``, ``n_{k+1} = min(ceil(growth * n_k), n_max)``, ending at
    ``n_max`` (:func:`look_sizes`); between looks ``n_{k+1} - n_k`` fresh samples are drawn with
    ``backend.sample_counts`` and the same ``generator`` (independent of the selection samples
    and of each other) and added to the counts. The number of looks ``K`` is known before any
    sampling, and look ``k`` computes, at level ``alpha_k``, exactly the certificate of
    :func:`renyi_cert.certificate.certify_from_counts` on its ``n_k`` samples with ``top=cA``:
    one-sided Clopper-Pearson bounds at ``alpha_k / 2`` for ``p[cA]`` (lower, capped at
    ``(alpha_k / 2) ** (1 / n_k)``) and for the runner-up (upper, clipped to ``1 - p1_lower``),
    abstain when ``p1_lower <= p2_upper``, and the radius of ``bound``. The levels sum to
    ``alpha``: ``alpha_K = final_share * alpha`` and ``alpha_k = (1 - final_share) * alpha /
    (K - 1)`` before (``final_share=None``: ``alpha / K`` each).

    Stopping rules (exactly one of ``target_radius`` and ``tolerance``):

    * target mode (``target_radius=r``): stop with ``"target reached"`` at the first look whose
      radius is ``>= r``; stop with ``"target out of reach"`` as soon as the final-look radius of
      the completion of :func:`_completion` is ``< r``: with ``futility_level = 0`` the most
      favourable completion (all ``n_max - n_k`` remaining samples in ``cA``; then no later look
      could reach ``r`` whatever the samples), with ``futility_level = beta > 0`` the remaining
      samples in ``cA`` at the rate of the one-sided upper Clopper-Pearson bound at ``beta`` on
      ``p[cA]`` (a certification the fixed-``n_max`` procedure would make is then given up only
      when ``p[cA]`` is above that bound or the last looks are luckier than expected); otherwise
      go on to ``n_max`` (``"budget exhausted"`` if ``r`` is not reached there).
    * best-radius mode (``tolerance=t``): stop with ``"tolerance reached"`` as soon as the same
      completion would raise the radius by at most ``t`` (times the current radius if
      ``relative``, so an abstaining look stops only when the completion certifies nothing
      either; absolute otherwise), or with ``"budget exhausted"`` at ``n_max``.

    An abstaining look just continues (unless a rule fires); at ``n_max`` the result abstains.
    The returned certificate is the last look's, with the radii of all three bounds.

    Guarantee: with probability at least ``1 - alpha`` over the noise, if the result is not an
    abstain, the smoothed classifier's prediction is constant (equal to ``prediction``) on the
    l2 ball of each returned radius around ``x`` -- whatever look the rule stopped at. Proof:
    let ``E_k`` be the event that look ``k``'s bounds hold, ``p1_lower_k <= p[cA]`` and
    ``max_{j != cA} p[j] <= p2_upper_k``. The counts at look ``k`` are those of ``n_k``
    independent samples (think of all ``n_max`` samples as drawn and the procedure as looking at
    prefixes), independent of the selection, so exact Clopper-Pearson with Bonferroni gives
    ``P(not E_k) <= alpha_k`` (Clopper & Pearson 1934; the runner-up argument of
    :func:`renyi_cert.intervals.top2_confidence`). A union bound over the ``K`` looks, a number
    fixed in advance, gives ``P(E_1 and ... and E_K) >= 1 - alpha``. On that event the bounds of
    the look ``tau`` where the procedure stops hold, whatever random rule chose ``tau``; since
    each radius increases in ``p1`` and decreases in ``p2`` (Li et al. 2019, Thm. 1; Cohen et
    al. 2019, Thm. 1; Lecuyer et al. 2019), the radius from the bounds is at most the radius from
    the true probabilities, which is certified. (A wrong ``cA`` can not be certified on that
    event: ``p[cA] >= p1_lower > p2_upper >= max_{j != cA} p[j]`` makes ``cA`` the top class.)
    The stopping rules only choose ``tau``, so they cost no error, whatever ``futility_level``:
    ``futility_level`` trades forward passes against certifications given up, never against
    the guarantee. A schedule ``alpha_k = alpha 2^-k`` also sums to ``alpha``
    without fixing ``K``, but gives the late looks -- where the largest radii are certified --
    a tiny share; with ``K`` known, half of ``alpha`` for the last look keeps its radii close to
    those of a fixed-``n_max`` run while the early looks, which only need to certify inputs far
    above the target, lose little at ``alpha / (2 (K - 1))``.

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
        Overall level, in ``(0, 1)``, split over the looks (``final_share``).
    target_radius : float, optional
        Target mode: the radius (> 0) to certify. Must not exceed the radius ``n_max`` unanimous
        samples give at ``alpha_K`` (:class:`ValueError` otherwise: no input could reach it).
    tolerance : float, optional
        Best-radius mode: the gain (>= 0) below which further sampling is not worth it.
    relative : bool, default True
        Whether ``tolerance`` is relative to the current radius (else absolute, in l2 units).
    bound : str, default "renyi"
        The bound the rules watch, from :data:`renyi_cert.bounds.BOUNDS`.
    futility_level : float, default 0.01
        In ``[0, 0.5)``: how optimistic the completion the rules project to ``n_max`` is (see
        above); 0 gives up only when no data could reach the target.
    final_share : float or None, default 0.5
        The share of ``alpha`` for the last look, in ``(0, 1)`` (``(0, 1]`` with one look); the
        other looks split the rest evenly. None: ``alpha / K`` for every look.
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
    plan = plan_adaptive(sigma, n_max=n_max, alpha=alpha, target_radius=target_radius, tolerance=tolerance,
                         relative=relative, bound=bound, futility_level=futility_level, n_start=n_start,
                         growth=growth, final_share=final_share, num_classes=_num_classes(backend))
    return certify_with_plan(backend, x, plan, n0=n0, batch_size=batch_size, generator=generator)


def _num_classes(backend: Backend) -> int:
    _check_backend(backend)
    return int(backend.num_classes)


def certify_with_plan(backend: Backend, x: Any, plan: AdaptivePlan, *, n0: int, batch_size: int = 1000,
                      generator: Any = None) -> AdaptiveCertificate:
    """:func:`certify_adaptive` with settings checked once by :func:`plan_adaptive` (same guarantee).

    For callers that certify many inputs with one plan. ``plan`` must come from
    :func:`plan_adaptive` with the backend's ``num_classes``.
    """
    _check_backend(backend)
    if not isinstance(plan, AdaptivePlan):
        raise ValueError(f"plan ({type(plan).__name__}) must be an AdaptivePlan from plan_adaptive")
    n0 = check_positive_int("n0", n0)
    batch_size = check_positive_int("batch_size", batch_size)
    drawn_noise = _backend_noise(_as_noise(plan.sigma))
    selection = _sample(backend, x, drawn_noise, n0, batch_size, generator)
    top = _top_two(selection).top
    counts = np.zeros_like(selection)
    drawn = 0
    for look, size in enumerate(plan.sizes):
        counts += _sample(backend, x, drawn_noise, size - drawn, batch_size, generator)
        drawn = size
        reason = _stop_reason(plan, look, counts, top)
        if reason is not None:
            level = plan.look_alphas[look]
            full = _certificate(counts, top, plan.sigma, level, _METHOD, tuple(_as_noise(plan.sigma).bounds), n0,
                                True)
            full = dataclasses.replace(full, alpha=plan.alpha)  # the overall level: all looks together
            return AdaptiveCertificate(full, n0 + size, look + 1, len(plan.sizes), reason, level)
    raise AssertionError("unreachable: the last look always stops")  # pragma: no cover
