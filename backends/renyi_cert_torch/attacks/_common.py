"""What every attack shares: constants, argument checks, noise draws and batched forward passes.

Package-internal: the public names are re-exported by :mod:`renyi_cert_torch.attacks`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence, Union, cast

import torch
from torch import nn

from renyi_cert._validate import check_real
from renyi_cert.noise import Gaussian, Laplace, Uniform, scale_of

from ..smoothing import draw_noise

#: The norms of every attack (and of adversarial training, :mod:`renyi_cert_torch.train_config`).
NORMS = ("linf", "l2")
#: The norms of PGD and of the geometry helpers: :data:`NORMS` and the l1 norm (sparse l1 steps).
PGD_NORMS = NORMS + ("l1",)
LOSSES = ("ce", "margin")
ATTACKS = ("pgd", "cw", "boundary")

DEFAULT_VOTES = 100          # noise draws of the smoothed classifier's majority vote (evaluation)
DEFAULT_EOT = 16             # noise draws per gradient (EOT) when the attacked model is noisy (sigma > 0)
DEFAULT_BATCH_SIZE = 1000    # images per forward pass
#: PGD-l1: each step moves the coordinates whose |gradient| is in the top 1 % (Tramer & Boneh's 99th
#: percentile, their SLIDE attack); see :func:`renyi_cert_torch.attacks.projected_gradient.pgd`.
DEFAULT_L1_QUANTILE = 0.99

#: A noise of :mod:`renyi_cert.noise`, accepted by the attacks wherever they take ``sigma``.
Noise = Union[Gaussian, Laplace, Uniform]

__all__ = ["NORMS", "PGD_NORMS", "LOSSES", "ATTACKS", "DEFAULT_VOTES", "DEFAULT_EOT", "DEFAULT_BATCH_SIZE",
           "DEFAULT_L1_QUANTILE", "MinNormResult"]


@dataclass(frozen=True, eq=False)
class MinNormResult:
    """Outcome of a minimum-norm attack (C&W, Boundary).

    Attributes
    ----------
    x_adv : torch.Tensor
        Per example the smallest successful adversarial point found; where none was found,
        C&W's last iterate (``success`` False) or x itself (Boundary without a starting point).
    norm : torch.Tensor
        (B,) ``||x_adv - x||_2``; inf where ``success`` is False.
    success : torch.Tensor
        (B,) bool: an adversarial point was found (by the attack's own criterion: C&W: more
        than half of its m noise draws reach the goal; Boundary: the query vote says not y).
    queries : int
        Forward passes per example spent by the attack (model evaluations of one image).
    """

    x_adv: torch.Tensor
    norm: torch.Tensor
    success: torch.Tensor
    queries: int


# ----------------------------------------------------------------------------------- checks


def _check_eps_list(eps_list: object) -> tuple[float, ...]:
    """``eps_list`` (one number or a non-empty sequence) as a tuple of floats >= 0."""
    if isinstance(eps_list, (int, float)) and not isinstance(eps_list, bool):
        eps_list = [eps_list]
    try:
        items = list(cast("Iterable[object]", eps_list))
    except TypeError:
        raise ValueError(f"eps_list ({eps_list!r}) must be a sequence of numbers >= 0") from None
    if not items:
        raise ValueError("eps_list ([]) must contain at least one eps")
    return tuple(check_real(f"eps_list[{i}]", e, minimum=0.0) for i, e in enumerate(items))


def _check_inputs(x: torch.Tensor, y: torch.Tensor) -> None:
    """Refuse anything but float inputs (B, ...) in [0, 1] with int64 labels (B,) >= 0."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(f"x must be a floating-point torch.Tensor of shape (B, ...), got {type(x).__name__}"
                         + (f" of dtype {x.dtype}" if isinstance(x, torch.Tensor) else ""))
    if x.ndim < 2:
        raise ValueError(f"x must have a batch dimension, shape (B, ...), got shape {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("x must be finite (it contains NaN or inf)")
    if x.numel() and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
        raise ValueError(f"x must lie in [0, 1] (pixel units), got values in [{float(x.min())!r}, {float(x.max())!r}]")
    if not isinstance(y, torch.Tensor) or y.dtype != torch.int64 or y.ndim != 1:
        desc = f"{y.dtype} {tuple(y.shape)}" if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(f"y must be an int64 tensor of shape (B,), got {desc}")
    if len(y) != len(x):
        raise ValueError(f"x has {len(x)} examples but y has {len(y)} labels")
    if len(y) and int(y.min()) < 0:
        raise ValueError(f"y ({int(y.min())}) must hold class indices >= 0")


def _check_labels(y: torch.Tensor, num_classes: int) -> None:
    """Refuse labels beyond the model's number of outputs."""
    if len(y) and int(y.max()) >= num_classes:
        raise ValueError(f"y ({int(y.max())}) must be a class index < {num_classes} (the model's number of outputs)")


def _eot_draws(eot: int | None, noise: Noise | None) -> int:
    """Noise draws per EOT gradient: 1 without noise, else ``eot`` (``None``: ``DEFAULT_EOT``)."""
    if noise is None:
        return 1
    return DEFAULT_EOT if eot is None else eot


def _check_noise(name: str, sigma: object) -> Noise | None:
    """The smoothing noise ``sigma`` stands for: None (no noise) or a :mod:`renyi_cert.noise` noise.

    A :class:`~renyi_cert.noise.Gaussian`, :class:`~renyi_cert.noise.Laplace` or
    :class:`~renyi_cert.noise.Uniform` is taken as it is; a real number sigma >= 0 means Gaussian
    noise N(0, sigma^2 I), and sigma = 0 no noise at all (None).
    """
    if isinstance(sigma, (Gaussian, Laplace, Uniform)):
        return sigma
    try:
        value = check_real(name, sigma, minimum=0.0)
    except ValueError as exc:
        if "must be a real number" not in str(exc):
            raise
        raise ValueError(f"{name} ({sigma!r}) must be a real number >= 0 or a renyi_cert.noise noise "
                         "(Gaussian, Laplace or Uniform)") from None
    return Gaussian(value) if value > 0.0 else None


def _noise_scale(noise: Noise | None) -> float:
    """The scale of ``noise`` (Gaussian sigma, Laplace scale, uniform half-width); 0 for no noise."""
    return 0.0 if noise is None else scale_of(noise)


def _noise_name(sigma: object) -> str:
    """The kind of noise ``sigma`` stands for (already checked): a noise's name, "gaussian" for a number."""
    return sigma.name if isinstance(sigma, (Gaussian, Laplace, Uniform)) else "gaussian"


# ----------------------------------------------------------------------------------- noise


def _randn(shape: Sequence[int], like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Standard normal noise from ``generator`` (advancing it), moved to ``like``'s device."""
    z = torch.randn(tuple(shape), generator=generator, device=generator.device, dtype=like.dtype)
    return z.to(like.device)


def _rand(shape: Sequence[int], like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Uniform [0, 1) noise from ``generator`` (advancing it), moved to ``like``'s device."""
    z = torch.rand(tuple(shape), generator=generator, device=generator.device, dtype=like.dtype)
    return z.to(like.device)


def _sample_noise(noise: Noise, shape: Sequence[int], like: torch.Tensor, generator: torch.Generator,
                  randn: Callable[..., torch.Tensor] = _randn) -> torch.Tensor:
    """One draw of ``noise`` of ``shape`` from ``generator`` (advancing it), on ``like``'s device and dtype.

    Gaussian noise is ``sigma * randn(shape, like, generator)``: exactly the draws of a float
    sigma (``randn`` is the caller's :func:`_randn`, so that a module's own name can be replaced).
    Laplace and uniform noise are drawn by :func:`renyi_cert_torch.smoothing.draw_noise` on the
    generator's device (Laplace: the difference of two exponential draws), then moved.
    """
    if isinstance(noise, Gaussian):
        return noise.sigma * randn(shape, like, generator)
    z = torch.empty(tuple(shape), device=generator.device, dtype=like.dtype)
    return draw_noise(z, noise, generator).to(like.device)


# ----------------------------------------------------------------------------------- forward passes


def _forward(model: nn.Module, inputs: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Logits of ``inputs`` in chunks of at most ``batch_size`` (no gradient)."""
    outs = [model(inputs[i:i + batch_size]) for i in range(0, len(inputs), batch_size)]
    return torch.cat(outs) if outs else model(inputs)


def _draw_chunks(m: int, b: int, batch_size: int) -> Iterator[int]:
    """Split m draws of a batch of b examples into groups of k draws with k * b <= batch_size."""
    k = max(1, batch_size // max(b, 1))
    start = 0
    while start < m:
        yield min(k, m - start)
        start += k
