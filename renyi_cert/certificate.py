"""Certification and prediction of a smoothed classifier from Monte Carlo class counts.

The smoothed classifier ``g(x) = argmax_c P(f(x + N(0, sigma^2 I)) = c)`` is certified from the
counts of the base classifier ``f`` on noisy copies of ``x``. Everything here works on counts, so
it serves any model backend (see :mod:`renyi_cert.backend` for the sampling). Where ``sigma`` is
taken, a noise of :mod:`renyi_cert.noise` may be given instead (``Laplace(scale)``,
``Uniform(half_width)``, ``Gaussian(sigma)``): the radii are then that noise's, in its threat
norm, and the certificate records the noise and the norm (a number is Gaussian noise, l2).

* :func:`certify_from_counts` -- Cohen et al.'s CERTIFY: the class is selected on ``n0`` samples,
  its probability bounded on ``n`` fresh ones. Sound; the default.
* :func:`certify_from_counts_single` -- the paper's code: one sample set both selects and bounds
  (biased; kept for reproducing the paper, only with ``allow_unguaranteed=True``).
* :func:`predict_from_counts` -- Cohen et al.'s PREDICT (hypothesis-test abstain).

Policy: a certificate is made only when it carries the guarantee "with probability at least
``1 - alpha``" exactly, that is with a method in
:data:`renyi_cert.intervals.GUARANTEED_METHODS` (``"clopper-pearson"``) and separate selection
samples. Anything else (``"sison-glaz"``, ``"goodman"``, the single-sample-set variant) raises
``ValueError`` unless ``allow_unguaranteed=True``; such certificates have ``guaranteed=False``,
and their ``p1_lower`` is capped at ``(alpha / 2) ** (1 / n)``, so finite counts never certify an
infinite radius.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import astuple, dataclass
from typing import TYPE_CHECKING, Any, NoReturn, Union

import numpy as np
from numpy.typing import ArrayLike

from ._validate import check_alpha, check_choice, check_counts
from .bounds import BOUNDS
from .intervals import GUARANTEED_METHODS, METHODS, _p1_lower_cap, _top2_unclipped, _top_two

if TYPE_CHECKING:  # renyi_cert.noise loads numba: imported where a noise is used, not with the package
    from .noise import Gaussian, Laplace, Uniform

__all__ = [
    "Certificate",
    "Radii",
    "Prediction",
    "certify_from_counts",
    "certify_from_counts_single",
    "predict_from_counts",
]

ABSTAIN = -1
#: What the certification functions take as ``sigma``: Gaussian noise's standard deviation, or a noise.
NoiseLike = Union[float, "Gaussian", "Laplace", "Uniform"]


class Radii(dict[str, float]):
    """A read-only ``dict`` of certified radii (bound name -> radius).

    Reading, iteration, equality, ``json.dumps``, ``pickle``, ``copy.deepcopy`` and
    ``dataclasses.asdict`` behave as for a dict; every change raises ``TypeError``.
    """

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("a certificate's radii are read-only; copy them with dict(cert.radii) to change them")

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __reduce__(self) -> tuple[type[Radii], tuple[dict[str, float]]]:
        return (type(self), (dict(self),))

    def __repr__(self) -> str:
        return f"Radii({dict.__repr__(self)})"


@dataclass(frozen=True)
class Certificate:
    """The outcome of certifying a smoothed classifier at one input.

    Attributes
    ----------
    prediction : int
        The certified class, or -1 (abstain) when ``p1_lower <= p2_upper``.
    p1_lower : float
        Lower confidence bound on the probability of the selected class under noise; at most
        ``(alpha / 2) ** (1 / n)``, the largest value an exact Clopper-Pearson bound gives from
        ``n`` samples (other methods are capped there), so always below 1.
    p2_upper : float
        Upper confidence bound on the probability of every other class (at most ``1 - p1_lower``).
    radii : Mapping of str to float
        Certified radius in the norm ``norm`` per requested bound (for Gaussian noise ``"renyi"``,
        ``"cohen"``, ``"pixeldp"``), in the order requested; all 0.0 on abstain. Read-only
        (:class:`Radii`, a dict that refuses changes; a copy of what was passed), so
        ``json.dumps``, ``pickle`` and ``dataclasses.asdict`` work as on a dict.
    sigma : float
        The noise's scale: the standard deviation of Gaussian noise, the scale b of Laplace noise,
        the half width of uniform noise.
    alpha : float
        The certificate holds with probability at least ``1 - alpha`` (see the function that made it).
    method : str
        Confidence-interval method, one of :data:`renyi_cert.intervals.METHODS`.
    n0 : int
        Selection samples (0 for the single-sample-set variant, where the class is selected on the
        estimation counts).
    n : int
        Estimation samples.
    guaranteed : bool
        True when the certificate holds with probability at least ``1 - alpha`` exactly: the
        method is in :data:`renyi_cert.intervals.GUARANTEED_METHODS` (``"clopper-pearson"``) and
        the class was selected on separate samples (``n0 > 0``). False for certificates made with
        ``allow_unguaranteed=True`` (``"sison-glaz"``, ``"goodman"``, or one sample set for both
        selection and estimation), whose level is at best approximate.
    noise : str
        The noise the counts were drawn with, a key of :data:`renyi_cert.noise.NOISES`
        (``"gaussian"``, ``"laplace"``, ``"uniform"``).
    norm : str
        The threat norm of the radii: ``"l2"`` for Gaussian noise, ``"l1"`` for Laplace and uniform.
    """

    prediction: int
    p1_lower: float
    p2_upper: float
    radii: Mapping[str, float]
    sigma: float
    alpha: float
    method: str
    n0: int
    n: int
    guaranteed: bool
    noise: str = "gaussian"
    norm: str = "l2"

    def __post_init__(self) -> None:
        # A frozen dataclass still holds whatever mapping it was given: keep a read-only copy.
        object.__setattr__(self, "radii", Radii(self.radii))

    @property
    def abstained(self) -> bool:
        """True when no class is certified (``prediction == -1``)."""
        return self.prediction == ABSTAIN

    def radius(self, bound: str | None = None) -> float:
        """The certified radius for ``bound`` (default: the first bound requested)."""
        if bound is None:
            if not self.radii:
                raise ValueError("this certificate has no radii (no bound was requested)")
            return next(iter(self.radii.values()))
        if bound not in self.radii:
            raise ValueError(
                f"bound ({bound!r}) must be one of the bounds computed for this certificate: "
                f"{', '.join(repr(b) for b in self.radii)}"
            )
        return self.radii[bound]


@dataclass(frozen=True)
class Prediction:
    """The outcome of Cohen et al.'s PREDICT at one input.

    Attributes
    ----------
    prediction : int
        The top class, or -1 (abstain) when the two-sided binomial test's p-value exceeds alpha.
    pvalue : float
        p-value of the two-sided binomial test of ``counts_top`` out of
        ``counts_top + counts_runner_up`` against probability 1/2.
    counts_top, counts_runner_up : int
        The largest count and the largest among the other classes.
    """

    prediction: int
    pvalue: float
    counts_top: int
    counts_runner_up: int

    @property
    def abstained(self) -> bool:
        """True when PREDICT abstained (``prediction == -1``)."""
        return self.prediction == ABSTAIN


def _as_noise(sigma: object) -> Any:
    """The noise of a certification: a :mod:`renyi_cert.noise` instance as it is, a number as
    ``Gaussian(sigma)`` (checked: ``"sigma (-1.0) must be > 0"``)."""
    from .noise import as_noise

    return as_noise(sigma)


def _check_bounds(bounds: str | Iterable[str], noise: Any = None) -> tuple[str, ...]:
    """The requested bound names, checked against ``noise``'s (default: Gaussian noise's)."""
    allowed = tuple(BOUNDS) if noise is None else noise.bounds
    where = "" if noise is None or noise.norm == "l2" else f" (the bounds of {type(noise).__name__} noise)"
    if isinstance(bounds, str):
        bounds = (bounds,)
    try:
        names = tuple(bounds)
    except TypeError:
        raise ValueError(
            f"bounds ({bounds!r}) must be a sequence of bound names from {', '.join(map(repr, allowed))}{where}"
        ) from None
    if not names:
        raise ValueError(f"bounds must name at least one bound from {', '.join(map(repr, allowed))}{where}")
    for name in names:
        if name not in allowed and noise is not None:
            noise.radius(0.5, 0.25, name)  # the noise's own reason (e.g. "renyi" for uniform noise)
        check_choice("bound", name, allowed)
    return tuple(dict.fromkeys(names))  # drop repeats, keep order


_WHY_UNGUARANTEED = {
    "sison-glaz": (
        "its level 1 - alpha rests on an asymptotic approximation (an Edgeworth expansion), which breaks "
        "down at the edge of the simplex and for few classes: unanimous counts give a lower bound of 1, and "
        "with p = (0.99, 0.01), n = 1000, alpha = 0.01 its certificates over-claim about 7 % of the time"
    ),
    "goodman": (
        "its level 1 - alpha rests on an asymptotic approximation (chi-square score intervals), trusted "
        "only when every count is at least 5"
    ),
}

_HOW_TO_OPT_IN = (
    "The default exact method is 'clopper-pearson' (Clopper & Pearson 1934, as in Li et al. 2019), "
    "with the class selected on separate samples (certify_from_counts). To certify anyway, pass "
    "allow_unguaranteed=True (on the command line: --allow-unguaranteed); the certificate then has "
    "guaranteed=False."
)


def _check_guarantee(method: str, allow_unguaranteed: object, *, single: bool = False) -> bool:
    """Whether certifying with ``method`` (and one sample set if ``single``) is guaranteed.

    Raises ``ValueError`` saying why not, and how to opt in, unless ``allow_unguaranteed`` is
    True. ``method`` must already be validated. Backends call this before any sampling.
    """
    if not isinstance(allow_unguaranteed, (bool, np.bool_)):
        raise ValueError(f"allow_unguaranteed ({allow_unguaranteed!r}) must be True or False")
    reasons = []
    if method not in GUARANTEED_METHODS:
        reasons.append(f"method {method!r} has no coverage guarantee: {_WHY_UNGUARANTEED[method]}")
    if single:
        reasons.append(
            "one sample set both selects the class and bounds its probability, which leaves no coverage "
            "guarantee: the selection bias (the largest count is biased upwards) makes the bounds optimistic"
        )
    if reasons and not allow_unguaranteed:
        raise ValueError("; and ".join(reasons) + ". " + _HOW_TO_OPT_IN)
    return not reasons


def _certificate(estimation_counts: np.ndarray, top: int | None, noise: Any, alpha: float, method: str,
                 bounds: tuple[str, ...], n0: int, guaranteed: bool) -> Certificate:
    top, _, p1_lower, p2_upper = _top2_unclipped(estimation_counts, alpha, method, top)
    n = int(estimation_counts.sum())
    # The cap never changes an exact Clopper-Pearson bound (it is the largest one n samples give)
    # except where it rounds to 1.0; it keeps p1_lower < 1, and p2_upper > 0 follows for every
    # method, so every radius is finite.
    p1_lower = min(p1_lower, _p1_lower_cap(n, alpha))
    p2_upper = min(p2_upper, 1.0 - p1_lower)
    noise = _as_noise(noise)  # a number is Gaussian noise's sigma
    kind = {"sigma": float(astuple(noise)[0]), "noise": noise.name, "norm": noise.norm}
    if p1_lower <= p2_upper:
        return Certificate(ABSTAIN, p1_lower, p2_upper, {b: 0.0 for b in bounds}, alpha=alpha, method=method,
                           n0=n0, n=n, guaranteed=guaranteed, **kind)
    radii = {b: float(noise.radius(p1_lower, p2_upper, b)) for b in bounds}
    return Certificate(top, p1_lower, p2_upper, radii, alpha=alpha, method=method, n0=n0, n=n,
                       guaranteed=guaranteed, **kind)


def certify_from_counts(selection_counts: ArrayLike, estimation_counts: ArrayLike, sigma: NoiseLike, *,
                        alpha: float = 0.001, method: str = "clopper-pearson",
                        bounds: str | Iterable[str] = ("renyi",), allow_unguaranteed: bool = False) -> Certificate:
    """Certify from separate selection and estimation counts (Cohen et al.'s CERTIFY).

    The class ``cA`` is the argmax of ``selection_counts`` (``n0`` noisy samples; ties go to the
    lowest index). On the ``n`` fresh samples of ``estimation_counts``,
    :func:`renyi_cert.intervals.top2_confidence` with ``top=cA`` gives ``p1_lower`` for ``cA`` and
    ``p2_upper`` for every other class, jointly valid with probability ``>= 1 - alpha``
    (``"clopper-pearson"`` is the paper's one-sided Clopper-Pearson with Bonferroni, each side at
    ``alpha / 2``). ``p1_lower`` is capped at ``(alpha / 2) ** (1 / n)``, the largest lower bound
    an exact Clopper-Pearson bound gives from ``n`` samples (so the cap never changes a
    Clopper-Pearson bound; it only bounds the other methods, and keeps ``p1_lower < 1`` where the
    cap rounds to 1 for ``n`` above about ``1e17``), and ``p2_upper`` is at most
    ``1 - p1_lower``. If ``p1_lower <= p2_upper`` the result abstains (prediction -1, radii 0.0);
    otherwise each requested bound's radius is ``renyi_cert.bounds.BOUNDS[name](p1_lower,
    p2_upper, sigma)``. Finite counts never give an infinite radius.

    Guarantee (``method="clopper-pearson"``, the default; ``guaranteed=True``): with probability
    at least ``1 - alpha`` over the sampling, if the result is not an abstain, the smoothed
    classifier's prediction is constant (equal to ``prediction``) on the l2 ball of the returned
    radius around ``x``, for each bound: the Renyi bound (Li, Chen, Wang & Carin, NeurIPS 2019,
    Theorem 1), Cohen et al.'s (ICML 2019, Theorem 1) and PixelDP's (Lecuyer et al., S&P 2019).
    The confidence bounds are exact (Clopper & Pearson 1934, Bonferroni over the two; the class
    is selected on independent samples as in Cohen et al.'s CERTIFY), and each radius is
    increasing in ``p1`` and decreasing in ``p2``, so valid bounds on the true probabilities give
    a valid radius. Only the methods in :data:`renyi_cert.intervals.GUARANTEED_METHODS` keep this
    guarantee. ``"sison-glaz"`` (Sison & Glaz 1995) and ``"goodman"`` (Goodman 1965) rest on
    asymptotic approximations without a coverage guarantee -- Sison-Glaz over-claims far more
    often than ``alpha`` near the edge of the simplex (about 7 % at ``alpha = 0.01`` for
    ``p = (0.99, 0.01)``, ``n = 1000``; tests/test_soundness.py) -- so they raise ``ValueError``
    unless ``allow_unguaranteed=True``, and their certificates have ``guaranteed=False``.

    Relation to Cohen et al.: their CERTIFY bounds ``p[cA]`` one-sidedly at level ``alpha`` and
    takes ``p2_upper = 1 - p1_lower``. Here ``p1_lower`` is one-sided at ``alpha / 2`` (the second
    half of alpha bounds the runner-up, whose bound may be much smaller than ``1 - p1_lower``); so
    the ``"cohen"`` radius here at ``alpha`` is at least Cohen et al.'s at ``alpha / 2`` and can
    be below theirs at ``alpha`` when the runner-up bound is not informative.

    Parameters
    ----------
    selection_counts : array_like of int, shape (k,)
        Class counts of the ``n0`` selection samples.
    estimation_counts : array_like of int, shape (k,)
        Class counts of ``n`` fresh estimation samples, drawn independently of the selection ones.
    sigma : float or renyi_cert.noise.Gaussian, Laplace or Uniform
        Noise standard deviation used for sampling (> 0), or the noise itself. With
        ``Laplace(b)`` the radii are l1 radii under its bounds (``"renyi"``: Lemma 1 of Li et al.
        with the Laplace Renyi divergence; ``"teng"``: Teng, Lee & Yuan, ICLR 2020; ``"pixeldp"``:
        the Laplace mechanism of Lecuyer et al.), with ``Uniform(lambda)`` under ``"yang"`` (Yang et
        al., ICML 2020), and the guarantee above holds on the l1 ball.
    alpha : float, default 0.001
        In ``(0, 1)``.
    method : str, default "clopper-pearson"
        One of :data:`renyi_cert.intervals.METHODS`; methods outside
        :data:`renyi_cert.intervals.GUARANTEED_METHODS` need ``allow_unguaranteed=True``.
    bounds : sequence of str, default ("renyi",)
        Names from :data:`renyi_cert.bounds.BOUNDS` (a single name is accepted too), or from the
        noise's ``bounds``.
    allow_unguaranteed : bool, default False
        Accept a method without a coverage guarantee (``"sison-glaz"``, ``"goodman"``); the
        certificate then has ``guaranteed=False``.

    Returns
    -------
    Certificate
    """
    selection = check_counts("selection_counts", selection_counts)
    estimation = check_counts("estimation_counts", estimation_counts)
    if selection.shape != estimation.shape:
        raise ValueError(
            f"selection_counts ({selection.size} classes) and estimation_counts ({estimation.size} classes) "
            "must have the same number of classes"
        )
    noise = _as_noise(sigma)
    alpha = check_alpha(alpha)
    method = check_choice("method", method, METHODS)
    names = _check_bounds(bounds, noise)
    guaranteed = _check_guarantee(method, allow_unguaranteed)
    top = _top_two(selection).top
    return _certificate(estimation, top, noise, alpha, method, names, int(selection.sum()), guaranteed)


def certify_from_counts_single(counts: ArrayLike, sigma: NoiseLike, *, alpha: float = 0.001,
                               method: str = "clopper-pearson", bounds: str | Iterable[str] = ("renyi",),
                               allow_unguaranteed: bool = False) -> Certificate:
    """Certify from one set of counts: the class *and* its bounds come from the same samples.

    This is what the official code of Li et al. (2019) did: it took the top two counts of one set
    of ``n`` samples and bounded both (through R's Sison-Glaz intervals; the paper describes
    Clopper-Pearson with Bonferroni). The top class is the argmax of ``counts`` (ties: lowest
    index), the rest is as in :func:`certify_from_counts` (including the cap
    ``p1_lower <= (alpha / 2) ** (1 / n)``, so radii are finite); ``n0`` is reported as 0.

    No guarantee: selecting the class on the same data that then bounds its probability makes the
    bound optimistic -- the largest count is biased upwards, most visibly when several classes are
    close -- so with ``"clopper-pearson"`` the statement "with probability at least
    ``1 - alpha``" of :func:`certify_from_counts` (Clopper & Pearson 1934; Li et al. 2019,
    Theorem 1) does *not* hold. (With simultaneous intervals, ``"sison-glaz"`` or
    ``"goodman"``, every class is covered at once and selection does not matter, but only up to
    those methods' asymptotic approximation.) No method keeps the guarantee here, so this
    function raises ``ValueError`` unless ``allow_unguaranteed=True``, and its certificates have
    ``guaranteed=False``. Use :func:`certify_from_counts` with separate selection samples for a
    sound certificate.

    Parameters
    ----------
    counts : array_like of int, shape (k,)
        Class counts of ``n`` noisy samples.
    sigma, alpha, method, bounds
        As in :func:`certify_from_counts`.
    allow_unguaranteed : bool, default False
        Must be True: this variant has no coverage guarantee.

    Returns
    -------
    Certificate
    """
    checked = check_counts("counts", counts)
    noise = _as_noise(sigma)
    alpha = check_alpha(alpha)
    method = check_choice("method", method, METHODS)
    names = _check_bounds(bounds, noise)
    guaranteed = _check_guarantee(method, allow_unguaranteed, single=True)
    return _certificate(checked, None, noise, alpha, method, names, 0, guaranteed)


def predict_from_counts(counts: ArrayLike, *, alpha: float = 0.001) -> Prediction:
    """Cohen et al.'s PREDICT: the top class, or abstain when the top two are not separated.

    With ``nA`` the largest count and ``nB`` the largest among the other classes (ties: lowest
    index), a two-sided binomial test of ``nA`` successes in ``nA + nB`` trials against
    probability 1/2 (``scipy.stats.binomtest``) gives the p-value; the prediction is the top class
    if the p-value is at most ``alpha`` and -1 (abstain) otherwise.

    Guarantee (Cohen, Rosenfeld & Kolter, ICML 2019, Proposition 1, after Hung et al. 2019): with
    ``counts`` the class counts of ``n`` independent noisy samples, the probability of returning
    a class other than the smoothed classifier's prediction ``g(x)`` is at most ``alpha``.

    Parameters
    ----------
    counts : array_like of int, shape (k,)
        Class counts, ``k >= 2``, at least one sample.
    alpha : float, default 0.001
        In ``(0, 1)``.

    Returns
    -------
    Prediction
    """
    checked = check_counts("counts", counts)
    alpha = check_alpha(alpha)
    from scipy.stats import binomtest  # on first use: importing scipy.stats takes about half a second

    top, runner_up = _top_two(checked)
    n_a, n_b = int(checked[top]), int(checked[runner_up])
    pvalue = float(binomtest(n_a, n_a + n_b, p=0.5).pvalue)
    prediction = ABSTAIN if pvalue > alpha else top
    return Prediction(prediction, pvalue, n_a, n_b)
