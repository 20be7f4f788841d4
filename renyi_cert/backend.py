"""The backend contract, a numpy backend, and certification / prediction with any backend.

A backend only has to count: given an input ``x``, a noise level ``sigma``, a sample count ``n``,
a batch size and a random generator, return how often the base classifier predicts each class on
``x + N(0, sigma^2 I)``. Everything else -- class selection, confidence bounds, abstain, radii --
lives once, in :mod:`renyi_cert.certificate`, and :func:`certify` / :func:`predict` below glue the
two together for any backend (the numpy :class:`CallableBackend` here, the torch
``renyi_cert_torch.SmoothedClassifier``, ...).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike

from ._validate import _show, check_alpha, check_choice, check_positive_int
from .certificate import (
    Certificate,
    NoiseLike,
    Prediction,
    _as_noise,
    _check_bounds,
    _check_guarantee,
    certify_from_counts,
    certify_from_counts_single,
    predict_from_counts,
)
from .intervals import METHODS

__all__ = ["Backend", "CallableBackend", "certify", "predict"]


@runtime_checkable
class Backend(Protocol):
    """What :func:`certify` and :func:`predict` need from a model backend.

    Attributes
    ----------
    num_classes : int
        Number of classes of the base classifier.
    """

    num_classes: int

    def sample_counts(self, x: Any, sigma: float, n: int, *, batch_size: int, generator: Any) -> np.ndarray:
        """Class counts of the base classifier on ``n`` noisy copies ``x + N(0, sigma^2 I)``.

        Must draw fresh noise on every call (two calls with the same generator object give
        independent samples), hold at most ``batch_size`` noisy copies in memory at a time, and
        return an int64 array of shape ``(num_classes,)`` summing to ``n``. ``generator`` is the
        backend's own random generator type (``numpy.random.Generator``, ``torch.Generator``) or
        None for the backend's default source of randomness.
        """
        ...


class CallableBackend:
    """A numpy backend around any function ``fn`` mapping a batch of inputs to labels or scores.

    Parameters
    ----------
    fn : callable
        ``fn(batch) -> output``: ``batch`` is a float array of shape ``(B, *x.shape)``; ``output``
        is either an integer array of labels of shape ``(B,)`` with values in
        ``[0, num_classes)``, or an array of real scores (logits, probabilities) of shape
        ``(B, num_classes)``, whose argmax along the last axis is the label (ties: lowest index).
        Anything else raises ``ValueError`` naming what came back: labels of a float or bool
        dtype (even integral floats: convert them with ``.astype(np.int64)``), labels out of
        range, and NaN or infinite scores (a model with such outputs certifies nothing).
    num_classes : int
        Number of classes (>= 2).

    Notes
    -----
    Noise is drawn from the ``numpy.random.Generator`` passed to :meth:`sample_counts` (a fixed
    seed, ``np.random.default_rng(seed)``, makes runs reproducible; None draws a fresh generator
    from OS entropy). At most ``batch_size`` noisy copies exist at a time.
    """

    def __init__(self, fn: Callable[[np.ndarray], ArrayLike], num_classes: int) -> None:
        if not callable(fn):
            raise ValueError(f"fn ({fn!r}) must be callable: a function mapping a batch of inputs to labels")
        self.fn = fn
        self.num_classes = check_positive_int("num_classes", num_classes, minimum=2)

    def __repr__(self) -> str:
        return f"CallableBackend(fn={getattr(self.fn, '__name__', repr(self.fn))}, num_classes={self.num_classes})"

    def _labels(self, batch: np.ndarray) -> np.ndarray:
        b, k = batch.shape[0], self.num_classes
        out = np.asarray(self.fn(batch))
        real = np.issubdtype(out.dtype, np.integer) or np.issubdtype(out.dtype, np.floating)
        if out.shape == (b, k):  # scores: the label is the argmax
            if not real:
                raise ValueError(
                    f"the classifier returned scores of dtype {out.dtype}; expected real-valued scores of shape "
                    f"({b}, {k}) or integer labels of shape ({b},)"
                )
            bad = ~np.isfinite(out)
            if bad.any():
                i, j = (int(v) for v in np.argwhere(bad)[0])
                raise ValueError(
                    f"the classifier returned a non-finite score ({_show(out[i, j])}) for noisy copy {i} of the "
                    "batch; a model with NaN or infinite outputs certifies nothing"
                )
            return np.argmax(out, axis=1)
        if out.shape != (b,):
            raise ValueError(
                f"the classifier returned an output of shape {out.shape}; expected integer labels of shape ({b},) "
                f"or scores of shape ({b}, {k}) for a batch of {b} (num_classes = {k})"
            )
        labels = out
        if labels.dtype == bool or not np.issubdtype(labels.dtype, np.integer):
            hint = ""
            if np.issubdtype(labels.dtype, np.floating):
                hint = (
                    "; if they are whole numbers, convert them with labels.astype(np.int64) "
                    f"(float labels are refused rather than rounded), or return scores of shape ({b}, {k})"
                )
            raise ValueError(
                f"the classifier returned labels of dtype {labels.dtype}; expected integer class labels{hint}"
            )
        bad = (labels < 0) | (labels >= self.num_classes)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(
                f"the classifier returned label {int(labels[i])} at index {i}; labels must be in "
                f"[0, {self.num_classes}) (num_classes = {self.num_classes})"
            )
        return labels

    def sample_counts(self, x: ArrayLike, sigma: Any, n: int, *, batch_size: int = 1000,
                      generator: np.random.Generator | None = None) -> np.ndarray:
        """Class counts of ``fn`` on ``n`` noisy copies ``x + sigma * N(0, I)`` (or ``x`` plus a
        :mod:`renyi_cert.noise` noise given as ``sigma``).

        Parameters
        ----------
        x : array_like of float
            The clean input (any shape; finite values). Float32 input is noised in float32,
            everything else in float64.
        sigma : float or renyi_cert.noise.Gaussian, Laplace or Uniform
            Noise standard deviation (> 0), or the noise.
        n : int
            Number of noisy copies (>= 1).
        batch_size : int, default 1000
            Largest number of copies passed to ``fn`` at once (>= 1).
        generator : numpy.random.Generator, optional
            Source of the noise; None uses a fresh ``np.random.default_rng()``.

        Returns
        -------
        numpy.ndarray of int64, shape (num_classes,)
        """
        clean = _check_input(x)
        kind = _as_noise(sigma)
        n = check_positive_int("n", n)
        batch_size = check_positive_int("batch_size", batch_size)
        rng = _check_generator(generator)
        counts = np.zeros(self.num_classes, dtype=np.int64)
        remaining = n
        while remaining > 0:
            b = min(batch_size, remaining)
            noise = kind.draw(rng, (b, *clean.shape), dtype=clean.dtype)
            noise += clean
            counts += np.bincount(self._labels(noise), minlength=self.num_classes)
            remaining -= b
        return counts


def _check_input(x: object) -> np.ndarray:
    try:
        arr = np.asarray(x)
    except Exception:  # e.g. a GPU tensor
        raise ValueError(f"x ({type(x).__name__}) must be convertible to a numpy array") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"x (dtype {arr.dtype}) must be an array of real numbers")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"x (dtype {arr.dtype}) must be an array of real numbers")
    if arr.size == 0:
        raise ValueError(f"x must not be empty, got shape {arr.shape}")
    arr = arr.astype(np.float32 if arr.dtype == np.float32 else np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"x ({float(arr[idx])!r} at index {idx}) must be finite")
    return arr


def _check_generator(generator: object) -> np.random.Generator:
    if generator is None:
        return np.random.default_rng()
    if not isinstance(generator, np.random.Generator):
        raise ValueError(
            f"generator ({generator!r}) must be a numpy.random.Generator or None; "
            "for a seed use np.random.default_rng(seed)"
        )
    return generator


def _check_backend(backend: object) -> None:
    if not isinstance(backend, Backend):
        raise ValueError(
            f"backend ({type(backend).__name__}) must implement the Backend protocol: "
            "an attribute num_classes and a method sample_counts(x, sigma, n, *, batch_size, generator)"
        )


def _backend_noise(noise: Any) -> Any:
    """What a backend is handed to draw: Gaussian noise as its sigma (a float, the contract every
    backend knows), any other noise as the noise object."""
    return noise.sigma if noise.name == "gaussian" else noise


def _sample(backend: Backend, x: Any, sigma: Any, n: int, batch_size: int, generator: Any) -> np.ndarray:
    """Call the backend and check that it kept the contract (shape, integer counts summing to n)."""
    counts = np.asarray(backend.sample_counts(x, sigma, n, batch_size=batch_size, generator=generator))
    k = int(backend.num_classes)
    if counts.shape != (k,) or not np.issubdtype(counts.dtype, np.integer) or (counts < 0).any():
        raise ValueError(
            f"backend.sample_counts returned {counts.dtype} counts of shape {counts.shape}; "
            f"expected non-negative integers of shape ({k},)"
        )
    if int(counts.sum()) != n:
        raise ValueError(f"backend.sample_counts returned counts summing to {int(counts.sum())}; expected n ({n})")
    return counts.astype(np.int64)


def certify(backend: Backend, x: Any, sigma: NoiseLike, *, n0: int, n: int, alpha: float = 0.001,
            method: str = "clopper-pearson", bounds: str | Iterable[str] = ("renyi",), batch_size: int = 1000,
            generator: Any = None, allow_unguaranteed: bool = False, single_sample_set: bool = False) -> Certificate:
    """Certify the smoothed classifier at ``x`` (Cohen et al.'s CERTIFY with any backend).

    Draws ``n0`` noisy samples to select the class (the argmax of their counts), then ``n`` fresh
    samples to bound its probability and every other class's, and computes the requested radii;
    see :func:`renyi_cert.certificate.certify_from_counts`. Both draws use the same
    ``generator`` one after the other, so they are independent. All arguments, including the
    guarantee policy below, are checked before any sampling.

    Guarantee (``method="clopper-pearson"``, the default; ``guaranteed=True``): with probability
    at least ``1 - alpha`` over the noise, if the result is not an abstain, the smoothed
    classifier's prediction is constant on the l2 ball of the returned radius around ``x`` (Li et
    al. 2019, Thm. 1; Cohen et al. 2019, Thm. 1; Lecuyer et al. 2019; exact Clopper & Pearson 1934
    bounds with Bonferroni) -- on the l1 ball for Laplace or uniform noise, under their bounds
    (:mod:`renyi_cert.noise`). Only the methods in :data:`renyi_cert.intervals.GUARANTEED_METHODS`
    keep it; ``"sison-glaz"`` and ``"goodman"`` (asymptotic approximations) raise ``ValueError``
    unless ``allow_unguaranteed=True`` and then give ``guaranteed=False``, with ``p1_lower``
    capped at ``(alpha / 2) ** (1 / n)``. Finite samples never give an infinite radius.

    ``single_sample_set=True`` is the variant of Li et al.'s code: one set of ``n`` samples both
    selects the class and bounds the probabilities (:func:`renyi_cert.certificate.
    certify_from_counts_single`; biased, so it too needs ``allow_unguaranteed=True``); ``n0`` is
    then unused.

    Parameters
    ----------
    backend : Backend
        Anything with ``num_classes`` and ``sample_counts`` (e.g. :class:`CallableBackend`).
    x : array_like
        The clean input, in the backend's format.
    sigma : float or renyi_cert.noise.Gaussian, Laplace or Uniform
        Noise standard deviation (> 0), or the noise. A backend is handed Gaussian noise as its
        sigma (a float), any other noise as the noise object, which it must know how to draw
        (:class:`CallableBackend` and the torch backend do).
    n0 : int
        Selection samples (>= 1; Cohen et al. use 100).
    n : int
        Estimation samples (>= 1; Cohen et al. use 100 000). With ``n`` samples the lower bound
        can not exceed ``(alpha / 2) ** (1 / n)`` (Clopper-Pearson), which caps the radius.
    alpha : float, default 0.001
        In ``(0, 1)``.
    method : str, default "clopper-pearson"
        One of :data:`renyi_cert.intervals.METHODS`; methods outside
        :data:`renyi_cert.intervals.GUARANTEED_METHODS` need ``allow_unguaranteed=True``.
    bounds : sequence of str, default ("renyi",)
        Names from :data:`renyi_cert.bounds.BOUNDS`.
    batch_size : int, default 1000
        Largest number of noisy copies in memory at once.
    generator : optional
        The backend's random generator (``numpy.random.Generator`` for :class:`CallableBackend`).
    allow_unguaranteed : bool, default False
        Accept a method without a coverage guarantee; the certificate then has
        ``guaranteed=False``.

    Returns
    -------
    Certificate
    """
    _check_backend(backend)
    noise = _as_noise(sigma)
    drawn = _backend_noise(noise)
    n0 = check_positive_int("n0", n0)
    n = check_positive_int("n", n)
    batch_size = check_positive_int("batch_size", batch_size)
    alpha = check_alpha(alpha)
    method = check_choice("method", method, METHODS)
    names = _check_bounds(bounds, noise)
    _check_guarantee(method, allow_unguaranteed, single=single_sample_set)  # before any sampling
    if single_sample_set:
        counts = _sample(backend, x, drawn, n, batch_size, generator)
        return certify_from_counts_single(counts, noise, alpha=alpha, method=method, bounds=names,
                                          allow_unguaranteed=allow_unguaranteed)
    selection = _sample(backend, x, drawn, n0, batch_size, generator)
    estimation = _sample(backend, x, drawn, n, batch_size, generator)
    return certify_from_counts(selection, estimation, noise, alpha=alpha, method=method, bounds=names,
                               allow_unguaranteed=allow_unguaranteed)


def predict(backend: Backend, x: Any, sigma: NoiseLike, *, n: int, alpha: float = 0.001, batch_size: int = 1000,
            generator: Any = None) -> Prediction:
    """Predict with the smoothed classifier at ``x`` (Cohen et al.'s PREDICT with any backend).

    Draws ``n`` noisy samples and applies :func:`renyi_cert.certificate.predict_from_counts`:
    the top class, or -1 when a two-sided binomial test of the top two counts has p-value above
    ``alpha``. Guarantee: the probability of returning a class other than the smoothed
    classifier's prediction is at most ``alpha`` (Cohen et al. 2019, Proposition 1).

    Parameters
    ----------
    backend, x, sigma, batch_size, generator
        As in :func:`certify`.
    n : int
        Number of noisy samples (>= 1).
    alpha : float, default 0.001
        In ``(0, 1)``.

    Returns
    -------
    Prediction
    """
    _check_backend(backend)
    sigma = _backend_noise(_as_noise(sigma))
    n = check_positive_int("n", n)
    batch_size = check_positive_int("batch_size", batch_size)
    alpha = check_alpha(alpha)
    counts = _sample(backend, x, sigma, n, batch_size, generator)
    return predict_from_counts(counts, alpha=alpha)
