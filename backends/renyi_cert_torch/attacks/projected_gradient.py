"""Projected gradient descent (PGD, Madry et al. 2018) on the noisy classifier, with EOT gradients.

Projected gradient *ascent* on the attack loss under l_inf, l2 or l1, on the cross-entropy or the
margin loss, with an optional random start; every gradient is an EOT average over fresh noise
draws (:mod:`renyi_cert_torch.attacks.eot`; Gaussian, Laplace or uniform smoothing noise) and
every iterate is projected back onto the eps-ball and the box [0, 1]
(:func:`renyi_cert_torch.attacks.geometry.project`).

The l1 step is the sparse steepest-ascent step of Tramer & Boneh ("Adversarial training and
robustness for multiple perturbations", NeurIPS 2019, their SLIDE attack; cleverhans'
``SparseL1Descent``): it moves only the coordinates with the largest |gradient| (the top
``1 - l1_quantile`` fraction, 1 % by default), each by the same amount in the direction of the
gradient's sign, so that the step has l1 norm ``step_size``. Coordinates at the edge of the box
whose gradient points out of it are left out first (cleverhans' ``clip_grad=True``; the box clip
would undo their move and waste the step's budget, e.g. on the black background of MNIST).

The ascent loop itself does not know the loss: :func:`projected_gradient_ascent` takes a function
that returns the gradient at the current point. :func:`pgd` passes the EOT gradient of the attack
loss; adversarial training (:mod:`renyi_cert_torch.train`) passes the cross-entropy gradient
(PGD-AT, through :func:`pgd`) or the gradient of the TRADES KL term. There is one PGD.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from renyi_cert._validate import check_choice, check_positive_int, check_real

from ..devices import check_generator
from renyi_cert.noise import Laplace

from ..smoothing import draw_noise
from ._common import (DEFAULT_BATCH_SIZE, DEFAULT_L1_QUANTILE, LOSSES, PGD_NORMS, Noise, _check_inputs,
                      _check_noise, _eot_draws, _rand, _randn)
from .eot import _eot
from .geometry import _bcast, _flat_norm, project

__all__ = ["PGD", "pgd", "projected_gradient_ascent"]


@dataclass(frozen=True)
class PGD:
    """Projected gradient descent (Madry et al. 2018) settings; see :func:`pgd`.

    ``step_size=None`` means 2.5 * eps / steps (Madry et al.'s rule, for every norm: the steps
    together travel 2.5 eps in the attack's norm); ``eot`` is the number m of fresh noise draws
    per gradient (``None``: ``DEFAULT_EOT`` against a noisy model, 1 against a model without
    noise); ``l1_quantile`` (in [0, 1), used by ``norm="l1"`` only) is the quantile of |gradient|
    above which the sparse l1 step moves a coordinate (``DEFAULT_L1_QUANTILE`` = 0.99).
    """

    norm: str = "linf"
    steps: int = 40
    step_size: float | None = None
    random_start: bool = True
    loss: str = "ce"
    eot: int | None = None
    l1_quantile: float = DEFAULT_L1_QUANTILE

    name = "pgd"

    def __post_init__(self) -> None:
        check_choice("norm", self.norm, PGD_NORMS)
        object.__setattr__(self, "l1_quantile", _check_quantile(self.l1_quantile))
        object.__setattr__(self, "steps", check_positive_int("steps", self.steps))
        if self.step_size is not None:
            object.__setattr__(self, "step_size", check_real("step_size", self.step_size, strict=True))
        check_choice("loss", self.loss, LOSSES)
        if self.eot is not None:
            object.__setattr__(self, "eot", check_positive_int("eot", self.eot))


def _check_quantile(q: object) -> float:
    """``l1_quantile``: a real number in [0, 1)."""
    v = check_real("l1_quantile", q, minimum=0.0)
    if v >= 1.0:
        raise ValueError(f"l1_quantile ({v!r}) must be < 1 (the l1 step moves the coordinates whose |gradient| "
                         "is at or above this quantile)")
    return v


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, norm: str = "linf",
        sigma: float | Noise = 0.0, steps: int = 40, step_size: float | None = None, random_start: bool = True,
        loss: str = "ce", eot: int | None = None, targeted: bool = False,
        generator: torch.Generator | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
        l1_quantile: float = DEFAULT_L1_QUANTILE) -> torch.Tensor:
    """Projected gradient ascent on the (noisy) classifier's loss (Madry et al. 2018).

    Each step: g = EOT gradient over ``eot`` fresh noise draws (:func:`eot_gradient`);
    l_inf: x <- x + step_size * sign(g); l2: x <- x + step_size * g / ||g||_2 (no move where
    g = 0); l1: the sparse step of :func:`_ascent_step` (sign(g) on the coordinates whose |g|
    is at or above its ``l1_quantile`` quantile, scaled to l1 norm step_size); then
    :func:`project` onto the eps-ball around x and [0, 1] (for l1: the exact Euclidean projection
    onto the l1 ball, :func:`project_l1_ball`, then the clip to [0, 1], which keeps the point in
    the ball). The optional random start is uniform in the l_inf ball, uniform in the l2 ball
    (Gaussian direction, radius eps * U^(1/d)), or uniform in the l1 ball (a Laplace direction
    scaled to l1 norm 1 -- the cone measure, uniform on the l1 sphere -- and radius
    eps * U^(1/d); Barthe, Guedon, Mendelson & Naor, Ann. Probab. 2005), then projected.

    Parameters
    ----------
    model : torch.nn.Module
    x : torch.Tensor
        (B, ...) in [0, 1].
    y : torch.Tensor
        int64 (B,): true labels (or targets with ``targeted=True``).
    eps : float
        Attack size >= 0 in ``norm``; eps = 0 returns x unchanged.
    norm : {"linf", "l2", "l1"}
    sigma : float or renyi_cert.noise.Gaussian, Laplace or Uniform
        Noise of the defended model: a Gaussian noise level >= 0 (0: no noise), or the noise
        itself (e.g. ``Laplace(0.5)``), drawn afresh for every EOT draw.
    steps : int
        >= 1.
    step_size : float, optional
        > 0; default 2.5 * eps / steps (in the attack's norm).
    random_start : bool
    loss : {"ce", "margin"}
    eot : int, optional
        Noise draws per gradient (>= 1); default ``DEFAULT_EOT`` (16) with noise; unused (one
        pass) when sigma = 0.
    targeted : bool
        False (default, the paper's setting): move away from y. True: move towards y.
    generator : torch.Generator, optional
        Source of all randomness (start and noise), on x's device type.
    batch_size : int
        Images per forward pass.
    l1_quantile : float
        In [0, 1); ``norm="l1"`` only (see :func:`_ascent_step`). Default 0.99: each step moves
        the top 1 % of the coordinates by |gradient| (Tramer & Boneh 2019).

    Returns
    -------
    torch.Tensor
        The last iterate (detached), inside the eps-ball and [0, 1].
    """
    cfg = PGD(norm=norm, steps=steps, step_size=step_size, random_start=random_start, loss=loss, eot=eot,
              l1_quantile=l1_quantile)
    eps = check_real("eps", eps, minimum=0.0)
    noise = _check_noise("sigma", sigma)
    batch_size = check_positive_int("batch_size", batch_size)
    _check_inputs(x, y)
    generator = check_generator(generator, x.device, create=True)
    return _pgd(model, x.detach(), y, eps, noise, cfg, bool(targeted), generator, batch_size)


def _l1_direction(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per example a point uniform on the unit l1 sphere: i.i.d. Laplace(1) coordinates divided by their l1 norm."""
    z = draw_noise(torch.empty(tuple(x.shape), device=generator.device, dtype=x.dtype), Laplace(1.0), generator)
    z = z.to(x.device)
    return z / _bcast(_flat_norm(z, "l1").clamp_min(1e-30), x)


def _random_start(x: torch.Tensor, eps: float, norm: str, generator: torch.Generator) -> torch.Tensor:
    """A uniform point of the l_inf ball, of the l2 ball (Gaussian direction, radius eps * U^(1/d)) or of the
    l1 ball (:func:`_l1_direction`, radius eps * U^(1/d)), projected."""
    if norm == "linf":
        x_adv = x + eps * (2.0 * _rand(x.shape, x, generator) - 1.0)
    else:
        d = x[0].numel()
        if norm == "l2":
            direction = _randn(x.shape, x, generator)
            direction = direction / _bcast(_flat_norm(direction, "l2").clamp_min(1e-30), x)
        else:
            direction = _l1_direction(x, generator)
        r = eps * _rand((len(x),), x, generator) ** (1.0 / d)
        x_adv = x + direction * _bcast(r, x)
    return project(x_adv, x, eps, norm)


def _sparse_l1_step(x_adv: torch.Tensor, g: torch.Tensor, l1_quantile: float) -> torch.Tensor:
    """The sparse l1 direction (l1 norm 1, or 0 where no coordinate may move) of Tramer & Boneh (2019).

    Coordinates at the box's edge whose gradient points out of [0, 1] (x_i = 0 and g_i < 0, or
    x_i = 1 and g_i > 0) get g_i = 0 first. With d coordinates, k = max(1, ceil((1 - q) d)) and t
    the k-th largest |g_i|, the direction is sign(g_i) on every coordinate with |g_i| >= t and
    g_i != 0 (ties at t included), divided by the number of such coordinates.
    """
    g = g.masked_fill(((x_adv <= 0.0) & (g < 0)) | ((x_adv >= 1.0) & (g > 0)), 0.0)
    flat = g.reshape(len(g), -1)
    d = flat.shape[1]
    k = min(d, max(1, math.ceil((1.0 - l1_quantile) * d - 1e-9)))
    mag = flat.abs()
    threshold = mag.topk(k, dim=1).values[:, -1:]
    chosen = flat.sign() * (mag >= threshold)
    count = chosen.abs().sum(dim=1, keepdim=True).clamp_min(1.0)
    return (chosen / count).reshape(g.shape)


def _ascent_step(x_adv: torch.Tensor, g: torch.Tensor, step_size: float, norm: str,
                 l1_quantile: float = DEFAULT_L1_QUANTILE) -> torch.Tensor:
    """One step of length ``step_size`` up the gradient g: its sign (l_inf), its direction (l2), or
    the sparse l1 direction of :func:`_sparse_l1_step` (l1)."""
    if norm == "linf":
        return x_adv + step_size * g.sign()
    if norm == "l1":
        return x_adv + step_size * _sparse_l1_step(x_adv, g, l1_quantile)
    gn = _flat_norm(g, "l2")
    return x_adv + step_size * g / _bcast(gn.clamp_min(1e-30), g)


def projected_gradient_ascent(grad_fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                              start: torch.Tensor, *, eps: float, norm: str, steps: int,
                              step_size: float, l1_quantile: float = DEFAULT_L1_QUANTILE) -> torch.Tensor:
    """Projected gradient ascent from ``start`` on any loss: the loop of PGD (Madry et al. 2018).

    ``steps`` times: g = grad_fn(x_adv); a step of length ``step_size`` along sign(g) (l_inf),
    g / ||g||_2 (l2; no move where g = 0) or the sparse l1 direction (l1, :func:`_sparse_l1_step`
    with ``l1_quantile``); then :func:`project` onto the eps-ball around ``x`` intersected with
    [0, 1].

    Parameters
    ----------
    grad_fn : callable
        Maps the current point (B, ...) to the gradient (same shape) of the loss to *maximise*;
        any scale per example (only its sign or direction is used).
    x : torch.Tensor
        (B, ...) the centres of the eps-balls, in [0, 1].
    start : torch.Tensor
        (B, ...) the first iterate (e.g. x, or a random point of the ball).
    eps : float
        >= 0; eps = 0 returns x.
    norm : {"linf", "l2", "l1"}
    steps : int
        >= 1.
    step_size : float
        > 0.
    l1_quantile : float
        In [0, 1); used by ``norm="l1"`` only.

    Returns
    -------
    torch.Tensor
        The last iterate (detached), inside the eps-ball and [0, 1].
    """
    eps = check_real("eps", eps, minimum=0.0)
    check_choice("norm", norm, PGD_NORMS)
    steps = check_positive_int("steps", steps)
    step_size = check_real("step_size", step_size, strict=True)
    l1_quantile = _check_quantile(l1_quantile)
    if start.shape != x.shape:
        raise ValueError(f"start (shape {tuple(start.shape)}) and x (shape {tuple(x.shape)}) must have the same shape")
    if eps == 0.0 or len(x) == 0:
        return x.detach().clone()
    x = x.detach()
    x_adv = start.detach()
    for _ in range(steps):
        g = grad_fn(x_adv)
        x_adv = project(_ascent_step(x_adv, g.detach(), step_size, norm, l1_quantile), x, eps, norm).detach()
    return x_adv


def _pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, noise: Noise | None, cfg: PGD,
         targeted: bool, generator: torch.Generator, batch_size: int) -> torch.Tensor:
    """Unvalidated core of :func:`pgd`: the last iterate of ``cfg.steps`` projected ascent steps
    (``noise`` None: no noise)."""
    if eps == 0.0 or len(x) == 0:
        return x.clone()
    step_size = cfg.step_size if cfg.step_size is not None else 2.5 * eps / cfg.steps
    draws = _eot_draws(cfg.eot, noise)
    start = _random_start(x, eps, cfg.norm, generator) if cfg.random_start else x.clone()

    def grad(x_adv: torch.Tensor) -> torch.Tensor:
        return _eot(model, x_adv, y, noise, draws, cfg.loss, math.inf, targeted, generator, batch_size).grad

    return projected_gradient_ascent(grad, x, start, eps=eps, norm=cfg.norm, steps=cfg.steps, step_size=step_size,
                                     l1_quantile=cfg.l1_quantile)
