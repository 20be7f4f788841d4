"""The Carlini & Wagner (2017) l2 attack on the noisy classifier, with EOT gradients.

Margin loss ``max(Z_y - max_{j != y} Z_j, -kappa)``, tanh box reparametrisation, Adam, and a
binary search over the constant c; returns the smallest successful perturbation per example
(:class:`renyi_cert_torch.attacks.MinNormResult`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from renyi_cert._validate import check_positive_int, check_real

from ..devices import check_generator
from ._common import DEFAULT_BATCH_SIZE, MinNormResult, Noise, _check_inputs, _check_noise, _eot_draws
from .eot import _eot
from .geometry import _bcast, _flat_norm

__all__ = ["CarliniWagner", "carlini_wagner_l2"]


@dataclass(frozen=True)
class CarliniWagner:
    """Carlini & Wagner (2017) l2 settings; see :func:`carlini_wagner_l2` (``eot=None`` as in :class:`PGD`)."""

    kappa: float = 0.0
    steps: int = 100
    binary_search_steps: int = 5
    initial_const: float = 1.0
    lr: float = 0.05
    eot: int | None = None

    name = "cw"
    norm = "l2"

    def __post_init__(self) -> None:
        object.__setattr__(self, "kappa", check_real("kappa", self.kappa))
        object.__setattr__(self, "steps", check_positive_int("steps", self.steps))
        object.__setattr__(self, "binary_search_steps", check_positive_int("binary_search_steps", self.binary_search_steps))
        object.__setattr__(self, "initial_const", check_real("initial_const", self.initial_const, strict=True))
        object.__setattr__(self, "lr", check_real("lr", self.lr, strict=True))
        if self.eot is not None:
            object.__setattr__(self, "eot", check_positive_int("eot", self.eot))


def carlini_wagner_l2(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, sigma: float | Noise = 0.0,
                      kappa: float = 0.0, steps: int = 100, binary_search_steps: int = 5,
                      initial_const: float = 1.0, lr: float = 0.05, eot: int | None = None, targeted: bool = False,
                      generator: torch.Generator | None = None,
                      batch_size: int = DEFAULT_BATCH_SIZE) -> MinNormResult:
    """Carlini & Wagner's l2 attack (2017) on the noisy classifier, with EOT gradients.

    Minimises ``||x' - x||_2^2 + c * E_xi[max(Z_y(x' + xi) - max_{j != y} Z_j(...), -kappa)]``
    (untargeted; targeted: ``max(max_{j != t} Z_j - Z_t, -kappa)``) over x' = (tanh(w) + 1) / 2,
    which keeps x' in [0, 1] (the box reparametrisation), with Adam on w (learning rate ``lr``,
    ``steps`` iterations per round). The expectation is the mean over ``eot`` fresh noise draws,
    new at every step. A step succeeds when more than half of its draws reach the goal
    (margin > 0 and >= kappa). The constant c starts at ``initial_const`` and is binary-searched
    per example over ``binary_search_steps`` rounds: after a round with a success, upper = c,
    else lower = c; the next c is (lower + upper) / 2, or 10 c while no upper bound is known.
    Returns the successful x' of smallest norm found over all steps and rounds.

    Parameters
    ----------
    kappa : float
        Confidence >= 0.
    steps, binary_search_steps : int
        >= 1.
    initial_const, lr : float
        > 0.
    eot : int, optional
        Noise draws per gradient (>= 1); default ``DEFAULT_EOT`` (16) when sigma > 0; unused
        when sigma = 0.
    Other parameters as in :func:`pgd`.

    Returns
    -------
    MinNormResult
    """
    cfg = CarliniWagner(kappa=kappa, steps=steps, binary_search_steps=binary_search_steps,
                        initial_const=initial_const, lr=lr, eot=eot)
    noise = _check_noise("sigma", sigma)
    batch_size = check_positive_int("batch_size", batch_size)
    _check_inputs(x, y)
    generator = check_generator(generator, x.device, create=True)
    return _cw(model, x.detach(), y, noise, cfg, bool(targeted), generator, batch_size)


def _cw(model: nn.Module, x: torch.Tensor, y: torch.Tensor, noise: Noise | None, cfg: CarliniWagner,
        targeted: bool, generator: torch.Generator, batch_size: int) -> MinNormResult:
    """Unvalidated core of :func:`carlini_wagner_l2`: the binary search over c around Adam rounds
    (``noise`` None: no noise)."""
    b = len(x)
    draws = _eot_draws(cfg.eot, noise)
    # w with (tanh(w) + 1) / 2 == x up to a 1e-6 shrink that keeps atanh finite at 0 and 1.
    w0 = torch.atanh((2.0 * x - 1.0) * (1.0 - 1e-6))
    lower = torch.zeros(b, dtype=x.dtype, device=x.device)
    upper = torch.full((b,), math.inf, dtype=x.dtype, device=x.device)
    const = torch.full((b,), cfg.initial_const, dtype=x.dtype, device=x.device)
    best_norm = torch.full((b,), math.inf, dtype=x.dtype, device=x.device)
    best_adv = x.clone()
    last_adv = x.clone()
    for _ in range(cfg.binary_search_steps):
        w = w0.clone().requires_grad_(True)
        opt = torch.optim.Adam([w], lr=cfg.lr)
        round_success = torch.zeros(b, dtype=torch.bool, device=x.device)
        for _ in range(cfg.steps):
            xp = (torch.tanh(w.detach()) + 1.0) / 2.0
            e = _eot(model, xp, y, noise, draws, "margin", cfg.kappa, targeted, generator, batch_size)
            # Current point: record successes before the update (the point whose decision was seen).
            ok = e.success > 0.5
            dist = _flat_norm(xp - x, "l2")
            improve = ok & (dist < best_norm)
            best_norm = torch.where(improve, dist, best_norm)
            best_adv = torch.where(_bcast(improve, x), xp, best_adv)
            round_success |= ok
            # Objective (minimised): ||x' - x||^2 - c * obj, obj = min(goal margin, kappa).
            g_x = 2.0 * (xp - x) - _bcast(const, x) * e.grad
            opt.zero_grad()
            w.grad = g_x * (1.0 - torch.tanh(w.detach()) ** 2) / 2.0
            opt.step()
        last_adv = ((torch.tanh(w.detach()) + 1.0) / 2.0)
        upper = torch.where(round_success, torch.minimum(upper, const), upper)
        lower = torch.where(round_success, lower, torch.maximum(lower, const))
        const = torch.where(torch.isfinite(upper), (lower + upper) / 2.0, const * 10.0)
    success = torch.isfinite(best_norm)
    x_adv = torch.where(_bcast(success, x), best_adv, last_adv)
    queries = cfg.binary_search_steps * cfg.steps * draws
    return MinNormResult(x_adv=x_adv.detach(), norm=best_norm, success=success, queries=queries)
