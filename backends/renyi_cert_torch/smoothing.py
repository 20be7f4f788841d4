"""The smoothed classifier of randomized smoothing, with a torch base classifier.

:class:`SmoothedClassifier` implements the backend contract of :mod:`renyi_cert.backend`
(``num_classes`` and ``sample_counts``): it draws ``n`` copies of ``x + N(0, sigma^2 I)`` in batches
of at most ``batch_size`` (memory bounded by one batch, never ``n`` copies at once), runs the base
classifier on each batch and counts its argmax labels on the device; only the ``num_classes``
counts are copied to the host. The certification logic itself (class selection, confidence
intervals, abstain, radii) lives once, in :func:`renyi_cert.backend.certify` and
:func:`renyi_cert.backend.predict`, to which :meth:`SmoothedClassifier.certify` and
:meth:`SmoothedClassifier.predict` delegate.

``sigma`` is the standard deviation of the noise in [0, 1] pixel units: the model receives the
noisy image in [0, 1] pixel space (plus noise) and does any normalisation itself.

Reproducibility: noise comes from a ``torch.Generator`` on the model's device. The same generator
state, ``n`` and ``batch_size`` give the same counts on the same device and torch version (a
different ``batch_size`` partitions the random stream differently and gives other, equally
valid, counts).

Trust: a base classifier that returns NaN or infinite logits (e.g. a checkpoint whose weights are
NaN) has no meaningful argmax -- ``argmax`` would silently call every such copy class 0, which
would then be "certified". :meth:`SmoothedClassifier.sample_counts` checks every batch's logits
(one ``torch.isfinite(...).all()`` per batch) and raises a ``ValueError`` naming the first bad
copy instead (:func:`check_finite_logits`, shared with training and the attacks).

CPU levers (measured in ``benchmarks/README.md``, section "CPU levers"): the forward pass is
almost all of the time, and two options of :class:`SmoothedClassifier` make it cheaper. On the
demo's MNIST CNN on this project's 2-core AVX-512 CPU, at the default batch size: bf16 1.84x,
channels_last 1.28x, both 2.39x the float32 default's forwards/s (smaller batches were slower).

``amp="bf16"`` (or ``"fp16"`` on CUDA)
    Runs the model under ``torch.autocast`` in that precision. The certificate is then a
    certificate of the smoothed classifier of the model *as computed in that precision*: the
    guarantee is exact for that function, which is a slightly different base classifier from the
    float32 model's: on the demo's MNIST CNN (trained one epoch) the bf16 labels differed from the
    float32 ones on 12 of 20,000 noisy copies (and the top class of no digit's counts changed).
    Ties of the coarser logits go to the lowest class index, as argmax does. float16 autocast is
    refused on the CPU, which has no fast float16 arithmetic (it ran 17-34x slower than float32
    on this project's CPU).
``channels_last=True``
    Converts the model's 4-D parameters and the noisy batch to ``torch.channels_last``. It changes
    only the speed and the order of the floating-point sums: the noise is drawn in the default
    layout and copied, so the inputs are the same as without it (the same generator state gives
    the same noisy copies), and the labels were bit-identical to the default's in our measurement
    (the logits may differ in their last bits, so a near-tie could in principle flip).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from renyi_cert._validate import check_choice, check_positive_int
from renyi_cert.noise import as_noise, scale_of

from .devices import DEVICES, check_generator, resolve_device  # noqa: F401 - DEVICES, resolve_device re-exported
from .modes import eval_mode

if TYPE_CHECKING:
    from renyi_cert.certificate import Certificate, Prediction
    from renyi_cert.sequential import AdaptiveCertificate

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 1000
#: ``amp`` names and their autocast dtypes (``None`` = no autocast, the model's own precision).
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
# A noise level above this many [0, 1] pixel units is almost surely given in 0..255 units.
SIGMA_SCALE_WARNING = 2.0

__all__ = [
    "SmoothedClassifier", "check_finite_logits", "infer_input_shape", "warn_if_sigma_off_scale",
    "DEFAULT_BATCH_SIZE", "SIGMA_SCALE_WARNING", "DEVICES", "resolve_device", "AMP_DTYPES", "check_amp", "draw_noise",
]


def warn_if_sigma_off_scale(sigma: float, name: str = "sigma", *, stacklevel: int = 3) -> None:
    """Warn (``warnings.warn``) when a noise level is far larger than the [0, 1] pixel range.

    Pixels are in [0, 1] throughout the package; a sigma above ``SIGMA_SCALE_WARNING`` (2) drowns
    every image in noise and was most likely given in 0..255 units. Nothing is changed.
    ``stacklevel`` is passed to ``warnings.warn`` (3: the caller of the function that calls this).
    """
    if sigma > SIGMA_SCALE_WARNING:
        warnings.warn(f"{name} ({sigma:g}) is far larger than the data range [0, 1]; noise is in [0, 1] pixel "
                      f"units (did you mean {sigma:g}/255 = {sigma / 255:.3g}?)", UserWarning, stacklevel=stacklevel)


def check_finite_logits(logits: torch.Tensor, describe: Callable[[int], str]) -> None:
    """Raise a ``ValueError`` if ``logits`` (rows = inputs) holds NaN or +-inf.

    An argmax of non-finite logits is meaningless (NaN rows become class 0), so no verdict may be
    drawn from them. The check is one ``torch.isfinite(logits).all()`` (one device sync); the
    details are worked out only on failure.

    Parameters
    ----------
    logits : torch.Tensor, shape (B, num_classes)
    describe : callable
        ``describe(row)`` -> what row ``row`` is, e.g. ``"noisy copy 17 of 1000"``; called only
        on failure.
    """
    finite = torch.isfinite(logits)
    if bool(finite.all()):
        return
    bad_rows = (~finite).reshape(len(logits), -1).any(dim=1).nonzero().flatten().tolist()
    row = bad_rows[0]
    flat = logits[row].reshape(-1)
    value = float(flat[~torch.isfinite(flat)][0])
    others = f" (and {len(bad_rows) - 1} more row(s) of this batch)" if len(bad_rows) > 1 else ""
    raise ValueError(f"the model returned non-finite logits ({value}) for {describe(row)}{others}; its "
                     "argmax is meaningless, so no prediction or certificate is made: check the model's "
                     "weights (a checkpoint with NaN/inf weights) and its input")


def draw_noise(batch: torch.Tensor, noise: Any, generator: torch.Generator | None,
               scratch: torch.Tensor | None = None) -> torch.Tensor:
    """Fill ``batch`` with ``noise`` (a :mod:`renyi_cert.noise` noise) in place, from ``generator``,
    on its device; returns ``batch``.

    Gaussian: ``normal_``. Laplace(b): the difference of two Exp(1/b) draws (``scratch``, at least
    as large as ``batch``, holds the second; allocated when None), which is Lap(0, b) and never
    infinite. Uniform(lambda): ``uniform_(-lambda, lambda)``.
    """
    kind, scale = noise.name, scale_of(noise)
    if kind == "gaussian":
        batch.normal_(0.0, scale, generator=generator)  # N(0, sigma^2)
    elif kind == "laplace":
        second = torch.empty_like(batch) if scratch is None else scratch[:batch.shape[0]]
        batch.exponential_(1.0 / scale, generator=generator)
        batch.sub_(second.exponential_(1.0 / scale, generator=generator))
    else:
        batch.uniform_(-scale, scale, generator=generator)
    return batch


def infer_input_shape(model: nn.Module) -> tuple[int, ...] | None:
    """The (C, H, W) input shape a model expects, when it can be known.

    Uses, in order: a ``model.input_shape`` attribute; the package's own architectures
    (MNIST CNN: (1, 28, 28), CIFAR CNN: (3, 32, 32)). Returns None otherwise.
    """
    shape = getattr(model, "input_shape", None)
    if shape is not None:
        return tuple(int(s) for s in shape)
    from renyi_cert_torch import models  # local import: keep this module light

    known = {getattr(models, "MnistCNN", None): (1, 28, 28), getattr(models, "CifarCNN7", None): (3, 32, 32)}
    for cls, shp in known.items():
        if cls is not None and isinstance(model, cls):
            return shp
    return None


def check_amp(amp: object, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for an ``amp`` option on ``device`` (None: no autocast), checked.

    Parameters
    ----------
    amp : {None, "bf16", "fp16"}
    device : torch.device

    Raises
    ------
    ValueError
        For any other value; ``"fp16"`` on the CPU (no fast float16 arithmetic there); ``"bf16"``
        on a CUDA device without bfloat16 support.
    """
    if amp is None:
        return None
    try:
        name = check_choice("amp", amp, AMP_DTYPES)
    except ValueError as exc:
        raise ValueError(f"{exc} or None (the model's own precision)") from None
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"amp ({name!r}) is supported on 'cpu' and 'cuda' devices, not {device.type!r}")
    if device.type == "cpu" and name == "fp16":
        raise ValueError("amp ('fp16') is not supported on the CPU: float16 autocast has no fast CPU kernels (17-34x "
                         "slower than float32 in our measurements); use amp='bf16' on the CPU, or 'fp16' on CUDA")
    if device.type == "cuda" and name == "bf16" and not torch.cuda.is_bf16_supported():
        raise ValueError(f"amp ('bf16') is not supported on {device}: this GPU has no bfloat16; use amp='fp16'")
    return AMP_DTYPES[name]


def _check_input_shape(input_shape: Sequence[int] | None) -> tuple[int, ...] | None:
    """``input_shape`` as a tuple of three positive ints (None stays None)."""
    if input_shape is None:
        return None
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(isinstance(s, (int, np.integer)) and s >= 1 for s in shape):
        raise ValueError(f"input_shape ({shape!r}) must be three positive integers (C, H, W)")
    return tuple(int(s) for s in shape)


def _first_conv_channels(model: nn.Module) -> int | None:
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return int(module.in_channels)
    return None


class SmoothedClassifier:
    """The Gaussian-smoothed version ``g`` of a torch base classifier ``f``.

    ``g(x)`` is the most probable class of ``f(x + N(0, sigma^2 I))``. This object estimates the
    class counts by Monte Carlo (:meth:`sample_counts`) and certifies ``g`` around ``x``
    (:meth:`certify`, :meth:`predict`) through :mod:`renyi_cert.backend`.

    Parameters
    ----------
    model : torch.nn.Module
        Base classifier mapping a batch (B, C, H, W) of [0, 1] pixels to logits (B, num_classes).
        It is moved to ``device``. Its train/eval mode is switched to eval while sampling and
        restored afterwards (module by module, also on error).
    sigma : float
        Noise standard deviation in [0, 1] pixel units (> 0, finite). A value above
        ``SIGMA_SCALE_WARNING`` (2) is accepted with a warning: it was most likely meant in
        0..255 units.
    num_classes : int
        Number of classes (>= 2); the model's output width must match.
    device : str or torch.device, optional
        ``None`` or ``"auto"``: CUDA if available, else CPU.
    batch_size : int
        Default largest number of noisy copies per forward pass.
    input_shape : tuple of int, optional
        Expected (C, H, W) of ``x``; default inferred by :func:`infer_input_shape` (when it
        cannot be inferred only the dimensionality and the first convolution's channels are
        checked).
    amp : {None, "bf16", "fp16"}, optional
        Run the model under ``torch.autocast`` in bfloat16 or float16 (``"fp16"``: CUDA only);
        None (default): no autocast. The certificate is then for the smoothed classifier of the
        model as computed in that precision (see the module docstring).
    channels_last : bool, default False
        Convert the model's 4-D parameters (convolution weights) and the noisy batch (always 4-D:
        ``x`` is (C, H, W)) to ``torch.channels_last``; parameters of other shapes are left as
        they are, so for a model without convolutions this is a no-op apart from the layout of
        its input (which must then not be ``view``-ed: use ``flatten``/``reshape``). Speed only:
        the noisy copies are the same as without it.

    Notes
    -----
    The model is moved to ``device`` (and, with ``channels_last``, converted) in place, as
    ``nn.Module.to`` does. Every option is checked before that.
    """

    def __init__(self, model: nn.Module, sigma: float | Any, num_classes: int, *, device: str | torch.device | None = None,
                 batch_size: int = DEFAULT_BATCH_SIZE, input_shape: Sequence[int] | None = None,
                 amp: str | None = None, channels_last: bool = False) -> None:
        if not isinstance(model, nn.Module):
            raise ValueError(f"model ({type(model).__name__}) must be a torch.nn.Module")
        self.noise = as_noise(sigma)
        self.sigma = scale_of(self.noise)
        warn_if_sigma_off_scale(self.sigma)
        self.num_classes = check_positive_int("num_classes", num_classes, minimum=2)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.device = resolve_device(device)
        self._amp_dtype = check_amp(amp, self.device)
        self.amp = amp
        if channels_last is not True and channels_last is not False:
            raise ValueError(f"channels_last ({channels_last!r}) must be True or False")
        self.channels_last = channels_last
        self.input_shape = _check_input_shape(infer_input_shape(model) if input_shape is None else input_shape)
        self.model = model.to(self.device)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # not in the stubs
        params = [p for p in model.parameters() if p.is_floating_point()]
        self.dtype = params[0].dtype if params else torch.float32
        self._conv_channels = _first_conv_channels(model)

    # ----------------------------------------------------------------------------------- helpers

    def make_generator(self, seed: int | None = None) -> torch.Generator:
        """A ``torch.Generator`` on this classifier's device, seeded with ``seed`` (random if None)."""
        g = torch.Generator(device=self.device)
        if seed is None:
            g.seed()
        else:
            g.manual_seed(int(seed))
        return g

    def _prepare(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(np.ascontiguousarray(x))
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"x ({type(x).__name__}) must be a torch.Tensor or numpy array of shape (C, H, W)")
        if x.ndim != 3:
            raise ValueError(f"x must have shape (C, H, W), got shape {tuple(x.shape)}")
        if self.input_shape is not None and tuple(x.shape) != self.input_shape:
            raise ValueError(f"x has shape {tuple(x.shape)} but the model expects {self.input_shape} (C, H, W)")
        if self._conv_channels is not None and x.shape[0] != self._conv_channels:
            raise ValueError(f"x has {x.shape[0]} channel(s) but the model's first convolution expects "
                             f"{self._conv_channels}")
        if not x.is_floating_point():
            raise ValueError(f"x has dtype {x.dtype}; expected floating-point pixels in [0, 1]")
        # From pinned host memory (the CLI pins its dataset on CUDA) the copy is asynchronous.
        return x.to(device=self.device, dtype=self.dtype, non_blocking=True)

    def _autocast(self) -> contextlib.AbstractContextManager:
        """``torch.autocast`` in the ``amp`` dtype, or a null context without ``amp``."""
        if self._amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self._amp_dtype)

    def _labels(self, batch: torch.Tensor, describe: Callable[[int], str]) -> torch.Tensor:
        """The model's argmax labels on ``batch`` (shape (B,)), its logits' shape and finiteness checked."""
        b = batch.shape[0]
        logits = self.model(batch)
        if logits.ndim != 2 or logits.shape[0] != b or logits.shape[1] != self.num_classes:
            raise ValueError(f"the model returned logits of shape {tuple(logits.shape)}; expected "
                             f"({b}, {self.num_classes}) (batch, num_classes)")
        # Under amp the logits are bfloat16/float16: isfinite and argmax work on them as they are
        # (ties of the rounded logits go to the lowest index, part of the function certified).
        check_finite_logits(logits, describe)
        return logits.argmax(dim=1)

    # -------------------------------------------------------------------------- backend contract

    def sample_counts(self, x: torch.Tensor | np.ndarray, sigma: float | Any, n: int, *, batch_size: int | None = None,
                      generator: torch.Generator | None = None) -> np.ndarray:
        """Class counts of the base classifier on ``n`` noisy copies ``x + N(0, sigma^2 I)``.

        Parameters
        ----------
        x : torch.Tensor or numpy.ndarray, shape (C, H, W)
            The clean input in [0, 1] pixel units.
        sigma : float
            Noise standard deviation (> 0).
        n : int
            Number of noisy copies (>= 1).
        batch_size : int, optional
            Largest number of copies per forward pass (default: the instance's ``batch_size``).
            Memory use is bounded by one batch: a single buffer of ``min(batch_size, n)`` copies is
            refilled in place for every batch, so the model must not keep a reference to its input.
        generator : torch.Generator, optional
            Source of the noise, on the model's device; None uses torch's default generator.

        Returns
        -------
        numpy.ndarray of int64, shape (num_classes,)
            ``counts[c]`` = number of copies classified as ``c``; sums to ``n``.

        Raises
        ------
        ValueError
            Bad arguments; logits of the wrong shape; non-finite (NaN/inf) logits for any copy
            (the message names the copy).
        """
        noise = as_noise(sigma)
        n = check_positive_int("n", n)
        batch_size = self.batch_size if batch_size is None else check_positive_int("batch_size", batch_size)
        generator = check_generator(generator, self.device)  # None: torch's default generator
        x = self._prepare(x)
        with eval_mode(self.model), torch.inference_mode(), self._autocast():
            counts = torch.zeros(self.num_classes, dtype=torch.int64, device=self.device)
            # One buffer of at most batch_size copies, refilled in place for every batch: the
            # noise is drawn on the device, and no fresh allocation (and first-touch page
            # faults on the CPU) is paid per batch.
            buffer = torch.empty((min(batch_size, n), *x.shape), device=self.device, dtype=self.dtype)
            # channels_last: the noise is drawn in the default layout (the same copies as without
            # the option) and copied into a second, channels_last buffer.
            layout = torch.empty_like(buffer, memory_format=torch.channels_last) if self.channels_last else None
            scratch = torch.empty_like(buffer) if noise.name == "laplace" else None
            remaining = n
            while remaining > 0:
                b = min(batch_size, remaining)
                batch = buffer[:b]
                draw_noise(batch, noise, generator, scratch)  # on the device
                batch.add_(x)
                if layout is not None:
                    batch = layout[:b].copy_(batch)
                labels = self._labels(batch, lambda row: (  # called at once: remaining and b are this batch's
                    f"noisy copy {n - remaining + row} of {n} (row {row} of a batch of {b})"))
                counts += torch.bincount(labels, minlength=self.num_classes)
                remaining -= b
            out = counts.cpu().numpy().astype(np.int64, copy=True)
        return out

    # ------------------------------------------------------------------------ certify / predict

    def certify(self, x: torch.Tensor | np.ndarray, *, n0: int, n: int, alpha: float = 0.001,
                method: str = "clopper-pearson", bounds: str | Sequence[str] = ("renyi",),
                generator: torch.Generator | None = None, single_sample_set: bool = False,
                allow_unguaranteed: bool = False) -> Certificate:
        """Certify the smoothed classifier at ``x``; see :func:`renyi_cert.backend.certify`.

        Default (``single_sample_set=False``, Cohen et al.'s CERTIFY): the top class is selected on
        ``n0`` noisy samples and its probability bounded on ``n`` fresh ones. With probability at
        least ``1 - alpha`` over the noise, the returned prediction (if not abstained) is the
        smoothed classifier's class at every ``x'`` with ``||x - x'||_2 <= radius`` for each bound
        (the Renyi radius of Li et al. 2019, Cohen et al.'s, PixelDP's).

        ``single_sample_set=True`` is the variant of Li et al.'s code: one set of ``n`` samples
        both selects the class and bounds the probabilities (biased: the selection is not
        independent of the estimate); ``n0`` is then unused.

        Parameters
        ----------
        x : torch.Tensor or numpy.ndarray, shape (C, H, W)
            The clean input in [0, 1] pixel units.
        n0, n : int
            Samples that select the class, and fresh samples that bound its probability.
        alpha : float, default 0.001
            Significance level: the certificate holds with probability at least ``1 - alpha``.
        method : str, default "clopper-pearson"
            Confidence interval (:data:`renyi_cert.intervals.METHODS`).
        bounds : str or sequence of str, default ("renyi",)
            Bound names from :data:`renyi_cert.bounds.BOUNDS`; a single name is accepted too.
        allow_unguaranteed : bool, default False
            Passed to :func:`renyi_cert.backend.certify` /
            :func:`renyi_cert.certificate.certify_from_counts_single`: certificates whose level
            ``1 - alpha`` is not guaranteed (asymptotic intervals, the single-sample-set variant)
            are refused unless this is True.
        generator : torch.Generator, optional
            Source of the noise, on the model's device; None uses torch's default generator.
        single_sample_set : bool, default False
            See above.

        Returns
        -------
        renyi_cert.certificate.Certificate
        """
        from renyi_cert.backend import certify

        return certify(self, x, self.noise, n0=n0, n=n, alpha=alpha, method=method, bounds=bounds,
                       batch_size=self.batch_size, generator=generator, allow_unguaranteed=allow_unguaranteed,
                       single_sample_set=single_sample_set)

    def certify_adaptive(self, x: torch.Tensor | np.ndarray, *, n0: int, n_max: int, alpha: float = 0.001,
                         target_radius: float | None = None, tolerance: float | None = None,
                         generator: torch.Generator | None = None, **options) -> AdaptiveCertificate:
        """Certify with as few samples as the question needs; see :func:`renyi_cert.sequential.certify_adaptive`.

        Target mode (``target_radius``) or best-radius mode (``tolerance``); ``options`` are the
        other keywords of :func:`renyi_cert.sequential.certify_adaptive` (``bound``,
        ``relative``, ``futility_level``, ``n_start``, ``growth``, ``final_share``). With
        probability at least ``1 - alpha`` over the noise the returned radii are certified,
        whatever look the stopping rule chose; the result also says how many forward passes it
        used and why it stopped.
        """
        from renyi_cert.sequential import certify_adaptive

        return certify_adaptive(self, x, self.sigma, n0=n0, n_max=n_max, alpha=alpha, target_radius=target_radius,
                                tolerance=tolerance, batch_size=self.batch_size, generator=generator, **options)

    def predict(self, x: torch.Tensor | np.ndarray, *, n: int, alpha: float = 0.001,
                generator: torch.Generator | None = None) -> Prediction:
        """Cohen et al.'s PREDICT (the paper's Algorithm 1 with a hypothesis-test abstain).

        Draws ``n`` noisy samples and returns the top class unless a two-sided binomial test of
        the top two counts has p-value above ``alpha`` (then abstains, -1). With probability at
        least ``1 - alpha`` a returned class is the smoothed classifier's class at ``x``.
        See :func:`renyi_cert.backend.predict`.

        Parameters
        ----------
        x : torch.Tensor or numpy.ndarray, shape (C, H, W)
            The clean input in [0, 1] pixel units.
        n : int
            Number of noisy samples.
        alpha : float, default 0.001
            Significance level of the test.
        generator : torch.Generator, optional
            Source of the noise, on the model's device; None uses torch's default generator.

        Returns
        -------
        renyi_cert.certificate.Prediction
        """
        from renyi_cert.backend import predict

        return predict(self, x, self.noise, n=n, alpha=alpha, batch_size=self.batch_size, generator=generator)

    def __repr__(self) -> str:
        options = (f", amp={self.amp!r}" if self.amp is not None else "") + (
            ", channels_last=True" if self.channels_last else "")
        return (f"SmoothedClassifier(model={type(self.model).__name__}, sigma={self.sigma}, "
                f"num_classes={self.num_classes}, device={str(self.device)!r}, batch_size={self.batch_size}"
                f"{options})")
