"""Projected gradient descent (PGD, Madry et al. 2018) on the noisy classifier, with EOT gradients.

Projected gradient *ascent* on the attack loss under l_inf or l2, on the cross-entropy or the
margin loss, with an optional random start; every gradient is an EOT average over fresh noise
draws (:mod:`renyi_cert_torch.attacks.eot`) and every iterate is projected back onto the
eps-ball and the box [0, 1] (:func:`renyi_cert_torch.attacks.geometry.project`).

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
from ._common import DEFAULT_BATCH_SIZE, LOSSES, NORMS, _check_inputs, _eot_draws, _rand, _randn
from .eot import _eot
from .geometry import _bcast, _flat_norm, project

__all__ = ["PGD", "pgd", "projected_gradient_ascent"]


@dataclass(frozen=True)
class PGD:
    """Projected gradient descent (Madry et al. 2018) settings; see :func:`pgd`.

    ``step_size=None`` means 2.5 * eps / steps (Madry et al.'s rule); ``eot`` is the number m
    of fresh noise draws per gradient (``None``: ``DEFAULT_EOT`` against a noisy model, 1 against
    a model without noise).
    """

    norm: str = "linf"
    steps: int = 40
    step_size: float | None = None
    random_start: bool = True
    loss: str = "ce"
    eot: int | None = None

    name = "pgd"

    def __post_init__(self) -> None:
        check_choice("norm", self.norm, NORMS)
        object.__setattr__(self, "steps", check_positive_int("steps", self.steps))
        if self.step_size is not None:
            object.__setattr__(self, "step_size", check_real("step_size", self.step_size, strict=True))
        check_choice("loss", self.loss, LOSSES)
        if self.eot is not None:
            object.__setattr__(self, "eot", check_positive_int("eot", self.eot))


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, norm: str = "linf",
        sigma: float = 0.0, steps: int = 40, step_size: float | None = None, random_start: bool = True,
        loss: str = "ce", eot: int | None = None, targeted: bool = False,
        generator: torch.Generator | None = None, batch_size: int = DEFAULT_BATCH_SIZE) -> torch.Tensor:
    """Projected gradient ascent on the (noisy) classifier's loss (Madry et al. 2018).

    Each step: g = EOT gradient over ``eot`` fresh noise draws (:func:`eot_gradient`);
    l_inf: x <- x + step_size * sign(g); l2: x <- x + step_size * g / ||g||_2 (no move where
    g = 0); then :func:`project` onto the eps-ball around x and [0, 1]. The optional random
    start is uniform in the l_inf ball, or uniform in the l2 ball (Gaussian direction, radius
    eps * U^(1/d)), then projected.

    Parameters
    ----------
    model : torch.nn.Module
    x : torch.Tensor
        (B, ...) in [0, 1].
    y : torch.Tensor
        int64 (B,): true labels (or targets with ``targeted=True``).
    eps : float
        Attack size >= 0 in ``norm``; eps = 0 returns x unchanged.
    norm : {"linf", "l2"}
    sigma : float
        Noise level of the defended model (>= 0).
    steps : int
        >= 1.
    step_size : float, optional
        > 0; default 2.5 * eps / steps.
    random_start : bool
    loss : {"ce", "margin"}
    eot : int, optional
        Noise draws per gradient (>= 1); default ``DEFAULT_EOT`` (16) when sigma > 0; unused
        (one pass) when sigma = 0.
    targeted : bool
        False (default, the paper's setting): move away from y. True: move towards y.
    generator : torch.Generator, optional
        Source of all randomness (start and noise), on x's device type.
    batch_size : int
        Images per forward pass.

    Returns
    -------
    torch.Tensor
        The last iterate (detached), inside the eps-ball and [0, 1].
    """
    cfg = PGD(norm=norm, steps=steps, step_size=step_size, random_start=random_start, loss=loss, eot=eot)
    eps = check_real("eps", eps, minimum=0.0)
    sigma = check_real("sigma", sigma, minimum=0.0)
    batch_size = check_positive_int("batch_size", batch_size)
    _check_inputs(x, y)
    generator = check_generator(generator, x.device, create=True)
    return _pgd(model, x.detach(), y, eps, sigma, cfg, bool(targeted), generator, batch_size)


def _random_start(x: torch.Tensor, eps: float, norm: str, generator: torch.Generator) -> torch.Tensor:
    """A uniform point of the l_inf ball, or of the l2 ball (Gaussian direction, radius eps * U^(1/d)), projected."""
    if norm == "linf":
        x_adv = x + eps * (2.0 * _rand(x.shape, x, generator) - 1.0)
    else:
        d = x[0].numel()
        direction = _randn(x.shape, x, generator)
        direction = direction / _bcast(_flat_norm(direction, "l2").clamp_min(1e-30), x)
        r = eps * _rand((len(x),), x, generator) ** (1.0 / d)
        x_adv = x + direction * _bcast(r, x)
    return project(x_adv, x, eps, norm)


def _ascent_step(x_adv: torch.Tensor, g: torch.Tensor, step_size: float, norm: str) -> torch.Tensor:
    """One step of length ``step_size`` up the gradient g: its sign (l_inf) or its direction (l2)."""
    if norm == "linf":
        return x_adv + step_size * g.sign()
    gn = _flat_norm(g, "l2")
    return x_adv + step_size * g / _bcast(gn.clamp_min(1e-30), g)


def projected_gradient_ascent(grad_fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                              start: torch.Tensor, *, eps: float, norm: str, steps: int,
                              step_size: float) -> torch.Tensor:
    """Projected gradient ascent from ``start`` on any loss: the loop of PGD (Madry et al. 2018).

    ``steps`` times: g = grad_fn(x_adv); a step of length ``step_size`` along sign(g) (l_inf) or
    g / ||g||_2 (l2; no move where g = 0); then :func:`project` onto the eps-ball around ``x``
    intersected with [0, 1].

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
    norm : {"linf", "l2"}
    steps : int
        >= 1.
    step_size : float
        > 0.

    Returns
    -------
    torch.Tensor
        The last iterate (detached), inside the eps-ball and [0, 1].
    """
    eps = check_real("eps", eps, minimum=0.0)
    check_choice("norm", norm, NORMS)
    steps = check_positive_int("steps", steps)
    step_size = check_real("step_size", step_size, strict=True)
    if start.shape != x.shape:
        raise ValueError(f"start (shape {tuple(start.shape)}) and x (shape {tuple(x.shape)}) must have the same shape")
    if eps == 0.0 or len(x) == 0:
        return x.detach().clone()
    x = x.detach()
    x_adv = start.detach()
    for _ in range(steps):
        g = grad_fn(x_adv)
        x_adv = project(_ascent_step(x_adv, g.detach(), step_size, norm), x, eps, norm).detach()
    return x_adv


def _pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, sigma: float, cfg: PGD,
         targeted: bool, generator: torch.Generator, batch_size: int) -> torch.Tensor:
    """Unvalidated core of :func:`pgd`: the last iterate of ``cfg.steps`` projected ascent steps."""
    if eps == 0.0 or len(x) == 0:
        return x.clone()
    step_size = cfg.step_size if cfg.step_size is not None else 2.5 * eps / cfg.steps
    draws = _eot_draws(cfg.eot, sigma)
    start = _random_start(x, eps, cfg.norm, generator) if cfg.random_start else x.clone()

    def grad(x_adv: torch.Tensor) -> torch.Tensor:
        return _eot(model, x_adv, y, sigma, draws, cfg.loss, math.inf, targeted, generator, batch_size).grad

    return projected_gradient_ascent(grad, x, start, eps=eps, norm=cfg.norm, steps=cfg.steps, step_size=step_size)
