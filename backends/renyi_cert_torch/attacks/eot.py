"""Expectation over transformation (EOT, Athalye et al. 2018): gradients of a randomized model.

A white-box attack on a randomized model must not differentiate one random draw: every gradient
of the attacks is the gradient of the *average* loss over ``m`` noise draws
(:func:`eot_gradient`). The noise is the smoothing noise of the defence: Gaussian N(0, sigma^2 I)
for a number ``sigma`` (as always), or any :mod:`renyi_cert.noise` noise (Gaussian, Laplace,
uniform) given in its place. Every draw of every step is fresh: all noise is taken from one
``torch.Generator`` whose state advances with each draw, so no draw is ever reused (the official
code re-seeded its noise and averaged m copies of one draw; the tests record the noisy inputs a
model sees and check that they all differ). The number of draws ``eot`` defaults to
``DEFAULT_EOT`` (16) whenever the attacked model is noisy (sigma > 0) and to 1 when it is not (the
draws would coincide); an explicit ``eot = 1`` against a noisy model is honoured with a logged
warning (:func:`renyi_cert_torch.attacks.robust_accuracy`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from renyi_cert._validate import check_choice, check_positive_int, check_real

from ..devices import check_generator
from ..modes import eval_mode
from ._common import (DEFAULT_BATCH_SIZE, LOSSES, Noise, _check_inputs, _check_labels, _check_noise, _draw_chunks,
                      _randn, _sample_noise)

__all__ = ["EOTGradient", "margin", "eot_gradient"]


@dataclass(frozen=True, eq=False)
class EOTGradient:
    """The expectation-over-transformation gradient of an attack loss at a batch of inputs.

    Attributes
    ----------
    grad : torch.Tensor
        Same shape as x: the gradient w.r.t. x of the per-example loss averaged over the m
        noise draws, (1/m) sum_i d loss(model(x + xi_i), y) / dx (per example, not divided by
        the batch size).
    loss : torch.Tensor
        (B,) the per-example loss averaged over the draws.
    success : torch.Tensor
        (B,) fraction of the draws on which the attack goal holds (untargeted: argmax != y,
        i.e. margin > 0 and margin >= kappa; targeted: argmax == y likewise).
    draws : int
        Number of noise draws m actually used (1 without noise: the draws would be identical).
    """

    grad: torch.Tensor
    loss: torch.Tensor
    success: torch.Tensor
    draws: int


def margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``max_{j != y} Z_j - Z_y`` per row: > 0 exactly when the argmax is not y (ties aside)."""
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf"))
    return other.amax(dim=1) - z_y


def _attack_loss(logits: torch.Tensor, y: torch.Tensor, loss: str, kappa: float,
                 targeted: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row attack objective to *maximise* and per-row goal indicator."""
    marg = margin(logits, y)            # max_{j != y} Z_j - Z_y
    goal_margin = -marg if targeted else marg   # > 0 when the goal (target reached / y left) holds
    if loss == "ce":
        ce = F.cross_entropy(logits, y, reduction="none")
        obj = -ce if targeted else ce
    else:
        obj = goal_margin.clamp(max=kappa) if math.isfinite(kappa) else goal_margin
    k = kappa if math.isfinite(kappa) else 0.0
    reached = (goal_margin > 0) & (goal_margin >= k)
    return obj, reached


def eot_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor, sigma: float | Noise, *, m: int = 1,
                 loss: str = "ce", kappa: float = math.inf, targeted: bool = False,
                 generator: torch.Generator | None = None, batch_size: int = DEFAULT_BATCH_SIZE) -> EOTGradient:
    """Gradient of the attack loss averaged over ``m`` fresh noise draws (EOT).

    For draws xi_1 .. xi_m of the noise (N(0, sigma^2 I) for a number sigma; fresh: taken in
    sequence from ``generator``, which advances; no draw is reused within or across calls), returns
    d/dx (1/m) sum_i L(model(x + xi_i), y) per example. With ``sigma = 0`` the draws would coincide
    and one forward pass is used.

    Parameters
    ----------
    model : torch.nn.Module
        Base classifier (evaluated in eval mode; flags restored). Parameters get no gradient.
    x : torch.Tensor
        Inputs (B, ...) in [0, 1].
    y : torch.Tensor
        int64 (B,): true labels (untargeted) or target labels (``targeted=True``).
    sigma : float or renyi_cert.noise.Gaussian, Laplace or Uniform
        Gaussian noise level >= 0 (0: no noise), or the noise itself.
    m : int
        Number of noise draws (>= 1).
    loss : {"ce", "margin"}
        Objective to maximise: cross-entropy of y (untargeted) / minus it (targeted), or the
        margin ``max_{j != y} Z_j - Z_y`` (untargeted) / ``Z_y - max_{j != y} Z_j`` (targeted),
        clipped above at ``kappa`` (the C&W loss).
    kappa : float
        Confidence (>= 0; inf = no clipping, the default for PGD).
    targeted : bool
    generator : torch.Generator, optional
    batch_size : int
        Images per forward pass (draws are processed in groups that fit).

    Returns
    -------
    EOTGradient
    """
    noise = _check_noise("sigma", sigma)
    m = check_positive_int("m", m)
    check_choice("loss", loss, LOSSES)
    kappa = check_real("kappa", kappa, minimum=0.0, allow_inf=True)
    batch_size = check_positive_int("batch_size", batch_size)
    _check_inputs(x, y)
    generator = check_generator(generator, x.device, create=True) if noise is not None else generator
    return _eot(model, x, y, noise, m, loss, kappa, bool(targeted), generator, batch_size)


def _eot(model: nn.Module, x: torch.Tensor, y: torch.Tensor, noise: Noise | None, m: int, loss: str, kappa: float,
         targeted: bool, generator: torch.Generator | None, batch_size: int) -> EOTGradient:
    """Unvalidated core of :func:`eot_gradient` (puts the model in eval mode for the passes); ``noise``
    None means no noise."""
    draws = m if noise is not None else 1
    x0 = x.detach()
    grad = torch.zeros_like(x0)
    loss_sum = torch.zeros(len(x0), dtype=x0.dtype, device=x0.device)
    succ_sum = torch.zeros(len(x0), dtype=x0.dtype, device=x0.device)
    with eval_mode(model), torch.enable_grad():
        for k in _draw_chunks(draws, len(x0), batch_size):
            xk = x0.unsqueeze(0).expand((k,) + tuple(x0.shape)).clone().requires_grad_(True)
            inp = xk + _sample_noise(noise, xk.shape, x0, generator, _randn) if noise is not None else xk
            logits = model(inp.reshape((-1,) + tuple(x0.shape[1:])))
            _check_labels(y, logits.shape[1])
            obj, reached = _attack_loss(logits, y.repeat(k), loss, kappa, targeted)
            (g,) = torch.autograd.grad(obj.sum(), xk)
            grad += g.sum(dim=0)
            loss_sum += obj.detach().reshape(k, -1).sum(dim=0)
            succ_sum += reached.to(x0.dtype).reshape(k, -1).sum(dim=0)
    return EOTGradient(grad=grad / draws, loss=loss_sum / draws, success=succ_sum / draws, draws=draws)
