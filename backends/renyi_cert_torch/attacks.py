"""Empirical attacks on the Gaussian-noise (smoothed) classifier (Li, Chen, Wang & Carin, NeurIPS 2019, §6.2, appendix D).

Certified radii are lower bounds on robustness; these attacks give upper bounds (the robust
accuracy an adversary actually leaves). Everything here needs only a plain ``torch.nn.Module``
mapping pixels in [0, 1] to logits, and the noise level ``sigma`` of the defence (``sigma = 0`` is
the plain, undefended model).

The noisy classifier
    At an input x the defended model is evaluated on x + N(0, sigma^2 I) (noise in [0, 1] pixel
    units and not clipped, as in certification). **Robust accuracy is
    judged by the smoothed classifier**: the majority vote over ``votes`` fresh noise draws
    (:func:`smoothed_predict`; ties go to the lowest class index; there is no abstain, the vote
    always answers). With ``sigma = 0`` the vote is the base model's argmax.

Expectation over transformation (EOT, Athalye et al. 2018)
    A white-box attack on a randomized model must not differentiate one random draw: every
    gradient here is the gradient of the *average* loss over ``m`` noise draws
    (:func:`eot_gradient`). Every draw of every step is fresh: all noise is taken from one
    ``torch.Generator`` whose state advances with each draw, so no draw is ever reused (the
    official code re-seeded its noise and averaged m copies of one draw; ``tests/test_attacks.py``
    records the noisy inputs a model sees and checks that they all differ).
    The number of draws ``eot`` defaults to ``DEFAULT_EOT`` (16) whenever the attacked model is
    noisy (sigma > 0) and to 1 when it is not (the draws would coincide); an explicit ``eot = 1``
    against a noisy model is honoured with a logged warning.

Attacks (all untargeted by default)
    * :func:`pgd` -- projected gradient ascent (Madry et al. 2018) under l_inf or l2, on the
      cross-entropy or the margin loss, with an optional random start.
    * :func:`carlini_wagner_l2` -- Carlini & Wagner (2017) l2, margin loss
      ``max(Z_y - max_{j != y} Z_j, -kappa)``, tanh box reparametrisation, Adam, a binary search
      over the constant c; returns the smallest successful perturbation per example.
    * :func:`boundary_attack` -- the decision-based, gradient-free Boundary attack of Brendel,
      Rauber & Bethge (2018), l2, querying only the smoothed classifier's majority vote.
    * transfer (black box): :func:`robust_accuracy` with ``source_model`` crafts on one model
      (e.g. the undefended one, ``source_sigma = 0``) and judges on another.

From attacks to robust accuracy at size eps (:func:`robust_accuracy`)
    An example counts as robust at eps iff the smoothed classifier is correct **both** at the
    clean x and at the attacked point x_eps (x itself lies in every eps-ball, so a clean error is
    an adversarial example of size 0). How x_eps is made:

    * PGD is run separately for every eps (with step size ``step_size`` or 2.5 eps / steps);
      x_eps is its last iterate. eps = 0 gives x_eps = x without running the attack.
    * The minimum-norm attacks (C&W, Boundary) are run once per example; their perturbation
      delta (the smallest successful one, or for C&W the last iterate of the last binary-search
      round when no round succeeded, or delta = 0 when the Boundary attack found no starting
      point) is **radially projected onto the l2 ball**:
      ``x_eps = x + delta * min(1, eps / ||delta||_2)``. This is the Euclidean projection of
      x + delta onto the eps-ball, and it stays in [0, 1] (a convex combination of x and
      x + delta, both in [0, 1]). Perturbations shorter than eps are used whole; longer ones are
      truncated and then judged like any other point -- the truncated point may still fool the
      smoothed classifier.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from renyi_cert._validate import check_choice, check_positive_int, check_real

from .modes import eval_mode
from .smoothing import check_finite_logits

logger = logging.getLogger(__name__)

NORMS = ("linf", "l2")
LOSSES = ("ce", "margin")
ATTACKS = ("pgd", "cw", "boundary")

DEFAULT_VOTES = 100          # noise draws of the smoothed classifier's majority vote (evaluation)
DEFAULT_EOT = 16             # noise draws per gradient (EOT) when the attacked model is noisy (sigma > 0)
DEFAULT_BATCH_SIZE = 1000    # images per forward pass

__all__ = [
    "NORMS", "LOSSES", "ATTACKS", "DEFAULT_VOTES", "DEFAULT_EOT",
    "EOTGradient", "MinNormResult", "PGD", "CarliniWagner", "Boundary", "RobustAccuracy",
    "project", "perturbation_norm", "margin", "smoothed_predict", "eot_gradient",
    "pgd", "carlini_wagner_l2", "boundary_attack", "robust_accuracy",
]


# ----------------------------------------------------------------------------------- validation




def _check_sigma(sigma) -> float:
    return check_real("sigma", sigma, minimum=0.0)


def _check_eps(eps, name: str = "eps") -> float:
    return check_real(name, eps, minimum=0.0)


def _check_eps_list(eps_list) -> tuple[float, ...]:
    if isinstance(eps_list, (int, float)) and not isinstance(eps_list, bool):
        eps_list = [eps_list]
    try:
        items = list(eps_list)
    except TypeError:
        raise ValueError(f"eps_list ({eps_list!r}) must be a sequence of numbers >= 0") from None
    if not items:
        raise ValueError("eps_list ([]) must contain at least one eps")
    return tuple(_check_eps(e, name=f"eps_list[{i}]") for i, e in enumerate(items))


def _check_inputs(x, y) -> None:
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
    if len(y) and int(y.max()) >= num_classes:
        raise ValueError(f"y ({int(y.max())}) must be a class index < {num_classes} (the model's number of outputs)")


def _eot_draws(eot: int | None, sigma: float) -> int:
    """Noise draws per EOT gradient: 1 without noise, else ``eot`` (``None``: ``DEFAULT_EOT``)."""
    if sigma == 0.0:
        return 1
    return DEFAULT_EOT if eot is None else eot


def _check_generator(generator, device) -> torch.Generator:
    if generator is None:
        g = torch.Generator(device=device)
        g.seed()
        return g
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator ({generator!r}) must be a torch.Generator or None")
    return generator


# ----------------------------------------------------------------------------------- helpers


def _randn(shape, like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Standard normal noise from ``generator`` (advancing it), moved to ``like``'s device."""
    z = torch.randn(tuple(shape), generator=generator, device=generator.device, dtype=like.dtype)
    return z.to(like.device)


def _rand(shape, like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    z = torch.rand(tuple(shape), generator=generator, device=generator.device, dtype=like.dtype)
    return z.to(like.device)


def _flat_norm(t: torch.Tensor, norm: str) -> torch.Tensor:
    flat = t.reshape(len(t), -1)
    if norm == "l2":
        return flat.norm(p=2, dim=1)
    return flat.abs().amax(dim=1) if flat.shape[1] else flat.new_zeros(len(t))


def _bcast(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-example values (B,) reshaped to broadcast against (B, ...)."""
    return v.reshape((-1,) + (1,) * (like.ndim - 1))


def perturbation_norm(x_adv: torch.Tensor, x: torch.Tensor, norm: str) -> torch.Tensor:
    """Per-example ``||x_adv - x||`` in ``norm`` ("linf" or "l2"), shape (B,)."""
    check_choice("norm", norm, NORMS)
    return _flat_norm(x_adv - x, norm)


def project(x_adv: torch.Tensor, x: torch.Tensor, eps, norm: str) -> torch.Tensor:
    """Map ``x_adv`` into the eps-ball around ``x`` intersected with the box [0, 1]^d.

    l_inf: clamp to [x - eps, x + eps], then to [0, 1] -- the exact Euclidean projection onto
    the intersection (both sets are boxes). l2: scale delta = x_adv - x by
    ``min(1, eps / ||delta||_2)`` (projection onto the ball), then clamp to [0, 1]. Because
    x lies in [0, 1], the clamp only shrinks |delta_i|, so the result stays in the ball; this is
    the usual PGD-l2 projection (feasible, not the exact projection onto the intersection).

    Parameters
    ----------
    x_adv, x : torch.Tensor
        Same shape (B, ...); x in [0, 1].
    eps : float
        Radius, >= 0.
    norm : {"linf", "l2"}
    """
    eps = _check_eps(eps)
    check_choice("norm", norm, NORMS)
    if x_adv.shape != x.shape:
        raise ValueError(f"x_adv (shape {tuple(x_adv.shape)}) and x (shape {tuple(x.shape)}) must have the same shape")
    delta = x_adv - x
    if norm == "linf":
        delta = delta.clamp(-eps, eps)
    else:
        n = _flat_norm(delta, "l2")
        factor = torch.where(n > eps, eps / n.clamp_min(1e-30), torch.ones_like(n))
        delta = delta * _bcast(factor, delta)
    return (x + delta).clamp(0.0, 1.0)


def margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``max_{j != y} Z_j - Z_y`` per row: > 0 exactly when the argmax is not y (ties aside)."""
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf"))
    return other.amax(dim=1) - z_y


def _forward(model: nn.Module, inputs: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Logits of ``inputs`` in chunks of at most ``batch_size`` (no gradient)."""
    outs = [model(inputs[i:i + batch_size]) for i in range(0, len(inputs), batch_size)]
    return torch.cat(outs) if outs else model(inputs)


def _draw_chunks(m: int, b: int, batch_size: int):
    """Split m draws of a batch of b examples into groups of k draws with k * b <= batch_size."""
    k = max(1, batch_size // max(b, 1))
    start = 0
    while start < m:
        yield min(k, m - start)
        start += k


@torch.no_grad()
def smoothed_predict(model: nn.Module, x: torch.Tensor, sigma, *, votes: int = DEFAULT_VOTES,
                     generator: torch.Generator | None = None,
                     batch_size: int = DEFAULT_BATCH_SIZE) -> torch.Tensor:
    """The smoothed classifier's decision: majority vote of ``model(x + N(0, sigma^2 I))``.

    Parameters
    ----------
    model : torch.nn.Module
        Base classifier, pixels in [0, 1] -> logits; evaluated in eval mode (flags restored).
    x : torch.Tensor
        Inputs (B, ...) in [0, 1].
    sigma : float
        Noise level >= 0; 0 gives the base model's argmax (``votes`` is then unused).
    votes : int
        Number of fresh noise draws per input (>= 1).
    generator : torch.Generator, optional
        Source of the noise (advanced by every draw); a nondeterministically seeded one on
        x's device if None.
    batch_size : int
        Images per forward pass.

    Returns
    -------
    torch.Tensor
        int64 (B,): the most frequent class per input, ties to the lowest index. This is a Monte
        Carlo estimate of the smoothed classifier (no abstain, no confidence level).

    Raises
    ------
    ValueError
        The model returned non-finite (NaN/inf) logits: no vote is drawn from them.
    """
    sigma = _check_sigma(sigma)
    votes = check_positive_int("votes", votes)
    batch_size = check_positive_int("batch_size", batch_size)
    with eval_mode(model):
        if sigma == 0.0:
            logits = _forward(model, x, batch_size)
            check_finite_logits(logits, lambda row: f"example {row} of {len(x)} (no noise)")
            return logits.argmax(dim=1)
        generator = _check_generator(generator, x.device)
        counts = None
        # Split the examples so that at least one draw of a chunk fits in a pass.
        preds = []
        for s in range(0, len(x), batch_size):
            xb = x[s:s + batch_size]
            counts = None
            for k in _draw_chunks(votes, len(xb), batch_size):
                noisy = xb.unsqueeze(0) + sigma * _randn((k,) + tuple(xb.shape), xb, generator)
                logits = model(noisy.reshape((-1,) + tuple(xb.shape[1:])))
                check_finite_logits(logits, lambda row, s=s, n=len(xb): (
                    f"a noisy copy of example {s + row % n} of {len(x)} (one of {votes} votes)"))
                labels = logits.argmax(dim=1).reshape(k, len(xb))
                c = F.one_hot(labels, logits.shape[1]).sum(dim=0)
                counts = c if counts is None else counts + c
            preds.append(counts.argmax(dim=1))
        return torch.cat(preds) if preds else torch.zeros(0, dtype=torch.int64, device=x.device)


# ----------------------------------------------------------------------------------- EOT gradient


@dataclass(frozen=True, eq=False)
class EOTGradient:
    """The expectation-over-transformation gradient of an attack loss at a batch of inputs.

    Attributes
    ----------
    grad : torch.Tensor
        Same shape as x: the gradient w.r.t. x of the per-example loss averaged over the m
        noise draws, (1/m) sum_i d loss(model(x + sigma xi_i), y) / dx (per example, not
        divided by the batch size).
    loss : torch.Tensor
        (B,) the per-example loss averaged over the draws.
    success : torch.Tensor
        (B,) fraction of the draws on which the attack goal holds (untargeted: argmax != y,
        i.e. margin > 0 and margin >= kappa; targeted: argmax == y likewise).
    draws : int
        Number of noise draws m actually used (1 when sigma = 0: the draws would be identical).
    """

    grad: torch.Tensor
    loss: torch.Tensor
    success: torch.Tensor
    draws: int


def _attack_loss(logits: torch.Tensor, y: torch.Tensor, loss: str, kappa: float, targeted: bool):
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


def eot_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor, sigma, *, m: int = 1, loss: str = "ce",
                 kappa: float = math.inf, targeted: bool = False, generator: torch.Generator | None = None,
                 batch_size: int = DEFAULT_BATCH_SIZE) -> EOTGradient:
    """Gradient of the attack loss averaged over ``m`` fresh Gaussian noise draws (EOT).

    For draws xi_1 .. xi_m ~ N(0, I) (fresh: taken in sequence from ``generator``, which advances;
    no draw is reused within or across calls), returns d/dx (1/m) sum_i L(model(x + sigma xi_i), y)
    per example. With ``sigma = 0`` the draws would coincide and one forward pass is used.

    Parameters
    ----------
    model : torch.nn.Module
        Base classifier (evaluated in eval mode; flags restored). Parameters get no gradient.
    x : torch.Tensor
        Inputs (B, ...) in [0, 1].
    y : torch.Tensor
        int64 (B,): true labels (untargeted) or target labels (``targeted=True``).
    sigma : float
        Noise level >= 0.
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
    """
    sigma = _check_sigma(sigma)
    m = check_positive_int("m", m)
    check_choice("loss", loss, LOSSES)
    kappa = check_real("kappa", kappa, minimum=0.0, allow_inf=True)
    batch_size = check_positive_int("batch_size", batch_size)
    _check_inputs(x, y)
    generator = _check_generator(generator, x.device) if sigma > 0 else generator
    return _eot(model, x, y, sigma, m, loss, kappa, bool(targeted), generator, batch_size)


def _eot(model, x, y, sigma, m, loss, kappa, targeted, generator, batch_size) -> EOTGradient:
    """Unvalidated core of :func:`eot_gradient` (puts the model in eval mode for the passes)."""
    draws = m if sigma > 0 else 1
    x0 = x.detach()
    grad = torch.zeros_like(x0)
    loss_sum = torch.zeros(len(x0), dtype=x0.dtype, device=x0.device)
    succ_sum = torch.zeros(len(x0), dtype=x0.dtype, device=x0.device)
    with eval_mode(model), torch.enable_grad():
        for k in _draw_chunks(draws, len(x0), batch_size):
            xk = x0.unsqueeze(0).expand((k,) + tuple(x0.shape)).clone().requires_grad_(True)
            inp = xk + sigma * _randn(xk.shape, x0, generator) if sigma > 0 else xk
            logits = model(inp.reshape((-1,) + tuple(x0.shape[1:])))
            _check_labels(y, logits.shape[1])
            yk = y.repeat(k)
            obj, reached = _attack_loss(logits, yk, loss, kappa, targeted)
            (g,) = torch.autograd.grad(obj.sum(), xk)
            grad += g.sum(dim=0)
            loss_sum += obj.detach().reshape(k, -1).sum(dim=0)
            succ_sum += reached.to(x0.dtype).reshape(k, -1).sum(dim=0)
    return EOTGradient(grad=grad / draws, loss=loss_sum / draws, success=succ_sum / draws, draws=draws)


# ----------------------------------------------------------------------------------- configs


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

    def __post_init__(self):
        check_choice("norm", self.norm, NORMS)
        object.__setattr__(self, "steps", check_positive_int("steps", self.steps))
        if self.step_size is not None:
            object.__setattr__(self, "step_size", check_real("step_size", self.step_size, strict=True))
        check_choice("loss", self.loss, LOSSES)
        if self.eot is not None:
            object.__setattr__(self, "eot", check_positive_int("eot", self.eot))


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

    def __post_init__(self):
        object.__setattr__(self, "kappa", check_real("kappa", self.kappa))
        object.__setattr__(self, "steps", check_positive_int("steps", self.steps))
        object.__setattr__(self, "binary_search_steps", check_positive_int("binary_search_steps", self.binary_search_steps))
        object.__setattr__(self, "initial_const", check_real("initial_const", self.initial_const, strict=True))
        object.__setattr__(self, "lr", check_real("lr", self.lr, strict=True))
        if self.eot is not None:
            object.__setattr__(self, "eot", check_positive_int("eot", self.eot))


@dataclass(frozen=True)
class Boundary:
    """Boundary attack (Brendel, Rauber & Bethge 2018) settings; see :func:`boundary_attack`."""

    steps: int = 1000
    query_votes: int = 25
    spherical_step: float = 0.01
    source_step: float = 0.01
    step_adaptation: float = 1.5
    adapt_every: int = 20
    init_trials: int = 50
    line_search_steps: int = 20

    name = "boundary"
    norm = "l2"

    def __post_init__(self):
        for f in ("steps", "query_votes", "adapt_every", "init_trials", "line_search_steps"):
            object.__setattr__(self, f, check_positive_int(f, getattr(self, f)))
        object.__setattr__(self, "spherical_step", check_real("spherical_step", self.spherical_step, strict=True))
        object.__setattr__(self, "source_step", check_real("source_step", self.source_step, strict=True))
        if not self.source_step < 1.0:
            raise ValueError(f"source_step ({self.source_step!r}) must be < 1")
        object.__setattr__(self, "step_adaptation",
                           check_real("step_adaptation", self.step_adaptation, minimum=1.0, strict=True))


# ----------------------------------------------------------------------------------- PGD


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps, norm: str = "linf", sigma=0.0,
        steps: int = 40, step_size=None, random_start: bool = True, loss: str = "ce", eot: int | None = None,
        targeted: bool = False, generator: torch.Generator | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE) -> torch.Tensor:
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
        Source of all randomness (start and noise).

    Returns
    -------
    torch.Tensor
        The last iterate (detached), inside the eps-ball and [0, 1].
    """
    cfg = PGD(norm=norm, steps=steps, step_size=step_size, random_start=random_start, loss=loss, eot=eot)
    eps = _check_eps(eps)
    sigma = _check_sigma(sigma)
    batch_size = check_positive_int("batch_size", batch_size)
    _check_inputs(x, y)
    generator = _check_generator(generator, x.device)
    return _pgd(model, x.detach(), y, eps, sigma, cfg, bool(targeted), generator, batch_size)


def _pgd(model, x, y, eps, sigma, cfg: PGD, targeted, generator, batch_size) -> torch.Tensor:
    if eps == 0.0 or len(x) == 0:
        return x.clone()
    alpha = cfg.step_size if cfg.step_size is not None else 2.5 * eps / cfg.steps
    draws = _eot_draws(cfg.eot, sigma)
    x_adv = x.clone()
    if cfg.random_start:
        if cfg.norm == "linf":
            x_adv = x + eps * (2.0 * _rand(x.shape, x, generator) - 1.0)
        else:
            d = x[0].numel()
            direction = _randn(x.shape, x, generator)
            direction = direction / _bcast(_flat_norm(direction, "l2").clamp_min(1e-30), x)
            r = eps * _rand((len(x),), x, generator) ** (1.0 / d)
            x_adv = x + direction * _bcast(r, x)
        x_adv = project(x_adv, x, eps, cfg.norm)
    for _ in range(cfg.steps):
        g = _eot(model, x_adv, y, sigma, draws, cfg.loss, math.inf, targeted, generator, batch_size).grad
        if cfg.norm == "linf":
            x_adv = x_adv + alpha * g.sign()
        else:
            gn = _flat_norm(g, "l2")
            x_adv = x_adv + alpha * g / _bcast(gn.clamp_min(1e-30), g)
        x_adv = project(x_adv, x, eps, cfg.norm)
    return x_adv.detach()


# ----------------------------------------------------------------------------------- C&W


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


def carlini_wagner_l2(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, sigma=0.0, kappa=0.0,
                      steps: int = 100, binary_search_steps: int = 5, initial_const=1.0, lr=0.05,
                      eot: int | None = None, targeted: bool = False, generator: torch.Generator | None = None,
                      batch_size: int = DEFAULT_BATCH_SIZE) -> MinNormResult:
    """Carlini & Wagner's l2 attack (2017) on the noisy classifier, with EOT gradients.

    Minimises ``||x' - x||_2^2 + c * E_xi[max(Z_y(x' + sigma xi) - max_{j != y} Z_j(...), -kappa)]``
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
    """
    cfg = CarliniWagner(kappa=kappa, steps=steps, binary_search_steps=binary_search_steps,
                        initial_const=initial_const, lr=lr, eot=eot)
    sigma = _check_sigma(sigma)
    batch_size = check_positive_int("batch_size", batch_size)
    _check_inputs(x, y)
    generator = _check_generator(generator, x.device)
    return _cw(model, x.detach(), y, sigma, cfg, bool(targeted), generator, batch_size)


def _cw(model, x, y, sigma, cfg: CarliniWagner, targeted, generator, batch_size) -> MinNormResult:
    b = len(x)
    draws = _eot_draws(cfg.eot, sigma)
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
            e = _eot(model, xp, y, sigma, draws, "margin", cfg.kappa, targeted, generator, batch_size)
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


# ----------------------------------------------------------------------------------- Boundary


def boundary_attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, sigma=0.0, steps: int = 1000,
                    query_votes: int = 25, spherical_step=0.01, source_step=0.01, step_adaptation=1.5,
                    adapt_every: int = 20, init_trials: int = 50, line_search_steps: int = 20,
                    starts: torch.Tensor | None = None, generator: torch.Generator | None = None,
                    batch_size: int = DEFAULT_BATCH_SIZE) -> MinNormResult:
    """The decision-based Boundary attack (Brendel, Rauber & Bethge, ICLR 2018), l2, untargeted.

    Uses no gradient: it only queries the decision "is z adversarial", i.e. the smoothed
    classifier's majority vote over ``query_votes`` fresh noise draws at z differs from y
    (:func:`smoothed_predict`; the base argmax when sigma = 0). Everything runs under
    ``torch.no_grad``.

    1. Start: an x whose own decision is not y is its own answer (norm 0). Otherwise two
       candidates: the first adversarial one of up to ``init_trials`` uniform-noise images
       U[0, 1]^d, and the nearest adversarial one among the ``init_trials`` images of ``starts``
       nearest to x (candidate images, e.g. other test images). Each is refined by
       ``line_search_steps`` bisection steps on the segment from x to it (the adversarial point
       of the segment nearest x); the closer result is the start. Examples without any
       adversarial candidate are left at x (``success`` False, norm inf).
    2. Each step (foolbox's proposal): an orthogonal step -- a Gaussian direction made
       orthogonal to x - x_adv, scaled to ``spherical_step * ||x - x_adv||`` and mapped back onto
       the sphere of radius ||x - x_adv|| around x, clipped to [0, 1] -- followed by a step of
       ``source_step * ||x - x_adv||`` towards x. Both the spherical candidate and the full
       candidate are queried; the full candidate replaces x_adv if it is adversarial and closer.
    3. Every ``adapt_every`` steps, per example: if more than 50 % of the spherical candidates
       were adversarial, both step sizes are multiplied by ``step_adaptation``, below 20 %
       divided by it; if more than 25 % of the full candidates were adversarial ``source_step``
       is multiplied, below 10 % divided (Brendel et al.'s success-rate adaptation). The
       adapted source step is capped at 0.5 (it must stay below 1 to move towards x).

    Parameters
    ----------
    sigma : float
        Noise level of the attacked smoothed classifier (>= 0).
    steps, query_votes, adapt_every, init_trials, line_search_steps : int
        >= 1.
    spherical_step, source_step : float
        Initial relative step sizes, > 0 (source_step < 1).
    step_adaptation : float
        > 1.
    starts : torch.Tensor, optional
        (K, ...) candidate starting images in [0, 1].
    generator : torch.Generator, optional
    """
    cfg = Boundary(steps=steps, query_votes=query_votes, spherical_step=spherical_step, source_step=source_step,
                   step_adaptation=step_adaptation, adapt_every=adapt_every, init_trials=init_trials,
                   line_search_steps=line_search_steps)
    sigma = _check_sigma(sigma)
    batch_size = check_positive_int("batch_size", batch_size)
    _check_inputs(x, y)
    if starts is not None:
        if not isinstance(starts, torch.Tensor) or tuple(starts.shape[1:]) != tuple(x.shape[1:]):
            desc = tuple(starts.shape) if isinstance(starts, torch.Tensor) else type(starts).__name__
            raise ValueError(f"starts must be a tensor of shape (K, {', '.join(map(str, x.shape[1:]))}), got {desc}")
        if starts.numel() and (float(starts.min()) < 0.0 or float(starts.max()) > 1.0):
            raise ValueError(f"starts must lie in [0, 1], got values in [{float(starts.min())!r}, {float(starts.max())!r}]")
    generator = _check_generator(generator, x.device)
    return _boundary(model, x.detach(), y, sigma, cfg, starts, generator, batch_size)


@torch.no_grad()
def _boundary(model, x, y, sigma, cfg: Boundary, starts, generator, batch_size) -> MinNormResult:
    b = len(x)
    per_query = cfg.query_votes if sigma > 0 else 1
    queries = 0

    def is_adv(z: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        nonlocal queries
        queries += per_query
        if len(idx) == 0:
            return torch.zeros(0, dtype=torch.bool, device=x.device)
        pred = smoothed_predict(model, z, sigma, votes=cfg.query_votes, generator=generator, batch_size=batch_size)
        return pred != y[idx]

    all_idx = torch.arange(b, device=x.device)
    inf = torch.full((b,), math.inf, dtype=x.dtype, device=x.device)

    def line_search(st: torch.Tensor, idx: torch.Tensor):
        """Bisection on the segments x[idx] -> st (adversarial end): the adversarial point nearest x."""
        xo = x[idx]
        lo = torch.zeros(len(idx), dtype=x.dtype, device=x.device)
        hi = torch.ones(len(idx), dtype=x.dtype, device=x.device)
        for _ in range(cfg.line_search_steps):
            mid = (lo + hi) / 2.0
            ok = is_adv(xo + _bcast(mid, xo) * (st - xo), idx)
            hi = torch.where(ok, mid, hi)
            lo = torch.where(ok, lo, mid)
        adv = xo + _bcast(hi, xo) * (st - xo)
        return adv, _flat_norm(adv - xo, "l2")

    # Already misclassified: x itself is the nearest adversarial point.
    at_x = is_adv(x, all_idx)
    best = x.clone()
    best_dist = torch.where(at_x, torch.zeros_like(inf), inf)
    # Candidate 1: uniform noise.
    found = at_x.clone()
    noise_start = x.clone()
    for _ in range(cfg.init_trials):
        todo = all_idx[~found]
        if len(todo) == 0:
            break
        cand = _rand(x[todo].shape, x, generator)
        ok = is_adv(cand, todo)
        noise_start[todo[ok]] = cand[ok]
        found[todo[ok]] = True
    idx = all_idx[found & ~at_x]
    if len(idx):
        adv, dist = line_search(noise_start[idx], idx)
        best[idx], best_dist[idx] = adv, dist
    # Candidate 2: the nearest of the init_trials nearest ``starts`` whose decision is not y.
    if starts is not None and len(starts):
        starts = starts.to(device=x.device, dtype=x.dtype)
        order = torch.cdist(x.reshape(b, -1), starts.reshape(len(starts), -1)).argsort(dim=1)
        found_img = at_x.clone()
        img_start = x.clone()
        for r in range(min(len(starts), cfg.init_trials)):
            todo = all_idx[~found_img]
            if len(todo) == 0:
                break
            cand = starts[order[todo, r]]
            ok = is_adv(cand, todo)
            img_start[todo[ok]] = cand[ok]
            found_img[todo[ok]] = True
        idx = all_idx[found_img & ~at_x]
        if len(idx):
            adv, dist = line_search(img_start[idx], idx)
            closer = dist < best_dist[idx]
            best[idx[closer]], best_dist[idx[closer]] = adv[closer], dist[closer]
    found = torch.isfinite(best_dist)
    if not bool(found.all()):
        logger.info("boundary attack: no adversarial starting point for %d of %d examples", int((~found).sum()), b)
    idx = all_idx[found & (best_dist > 0)]
    if len(idx) == 0:
        return MinNormResult(x_adv=best, norm=best_dist, success=found, queries=queries)
    xo = x[idx]
    adv = best[idx]
    dist = best_dist[idx]

    n = len(idx)
    sph = torch.full((n,), cfg.spherical_step, dtype=x.dtype, device=x.device)
    src = torch.full((n,), cfg.source_step, dtype=x.dtype, device=x.device)
    sph_hits = torch.zeros(n, dtype=x.dtype, device=x.device)
    step_hits = torch.zeros(n, dtype=x.dtype, device=x.device)
    for t in range(1, cfg.steps + 1):
        diff = xo - adv                                  # unnormalised source direction
        s_norm = _flat_norm(diff, "l2").clamp_min(1e-30)
        s_dir = diff / _bcast(s_norm, diff)
        pert = _randn(xo.shape, xo, generator)
        dot = (pert * s_dir).reshape(n, -1).sum(dim=1)
        pert = pert - _bcast(dot, pert) * s_dir
        pert = pert * _bcast(sph * s_norm / _flat_norm(pert, "l2").clamp_min(1e-30), pert)
        d = 1.0 / torch.sqrt(sph ** 2 + 1.0)
        spherical = (xo + _bcast(d, xo) * (pert - diff)).clamp(0.0, 1.0)
        new_dir = xo - spherical
        new_norm = _flat_norm(new_dir, "l2").clamp_min(1e-30)
        length = (src * s_norm + (new_norm - s_norm)).clamp_min(0.0) / new_norm
        candidate = (spherical + _bcast(length, new_dir) * new_dir).clamp(0.0, 1.0)
        sph_ok = is_adv(spherical, idx)
        cand_ok = is_adv(candidate, idx)
        cand_dist = _flat_norm(candidate - xo, "l2")
        accept = cand_ok & (cand_dist < dist)
        adv = torch.where(_bcast(accept, adv), candidate, adv)
        dist = torch.where(accept, cand_dist, dist)
        sph_hits += sph_ok.to(x.dtype)
        step_hits += cand_ok.to(x.dtype)
        if t % cfg.adapt_every == 0:
            rate_s = sph_hits / cfg.adapt_every
            rate_c = step_hits / cfg.adapt_every
            up = rate_s > 0.5
            down = rate_s < 0.2
            a = cfg.step_adaptation
            sph = torch.where(up, sph * a, torch.where(down, sph / a, sph))
            src = torch.where(up, src * a, torch.where(down, src / a, src))
            src = torch.where(rate_c > 0.25, src * a, torch.where(rate_c < 0.1, src / a, src))
            src = src.clamp(max=0.5)
            sph_hits.zero_()
            step_hits.zero_()
    best[idx] = adv
    best_dist[idx] = dist
    return MinNormResult(x_adv=best, norm=best_dist, success=found, queries=queries)


# ----------------------------------------------------------------------------------- robust accuracy


@dataclass(frozen=True)
class RobustAccuracy:
    """Robust accuracy of the smoothed classifier against one attack at one size eps.

    Attributes
    ----------
    attack : str
        "pgd", "cw" or "boundary".
    norm : str
        "linf" or "l2".
    eps : float
        Attack size.
    sigma : float
        Noise level of the judged (target) model.
    votes : int
        Noise draws of the judging majority vote.
    n : int
        Number of examples.
    n_robust : int
        Examples classified correctly by the smoothed classifier at x and at the attacked point.
    robust_accuracy : float
        n_robust / n.
    clean_accuracy : float
        Smoothed classifier's accuracy at the clean inputs (same vote).
    base_clean_accuracy : float
        The base model's (no noise) accuracy at the clean inputs.
    mean_perturbation_norm : float
        Mean of ||x_eps - x|| in ``norm`` over the examples.
    transfer : bool
        Whether the attack was crafted on another model (``source_model``).
    source_sigma : float
        Noise level the attack was crafted against (== sigma without transfer).
    """

    attack: str
    norm: str
    eps: float
    sigma: float
    votes: int
    n: int
    n_robust: int
    robust_accuracy: float
    clean_accuracy: float
    base_clean_accuracy: float
    mean_perturbation_norm: float
    transfer: bool
    source_sigma: float


def _make_config(attack, norm):
    if isinstance(attack, (PGD, CarliniWagner, Boundary)):
        return attack
    if isinstance(attack, str):
        check_choice("attack", attack, ATTACKS)
        if attack == "pgd":
            return PGD(norm=norm if norm is not None else "linf")
        if norm not in (None, "l2"):
            raise ValueError(f"norm ({norm!r}) must be 'l2' for the {attack!r} attack (it is an l2 attack)")
        return CarliniWagner() if attack == "cw" else Boundary()
    raise ValueError(f"attack ({attack!r}) must be one of {', '.join(map(repr, ATTACKS))} or a PGD, "
                     "CarliniWagner or Boundary instance")


def robust_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, sigma, *, attack="pgd",
                    eps_list: Sequence[float] = (0.0,), norm: str | None = None, votes: int = DEFAULT_VOTES,
                    source_model: nn.Module | None = None, source_sigma=None,
                    generator: torch.Generator | None = None, attack_batch: int = 100,
                    batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = False) -> tuple[RobustAccuracy, ...]:
    """Robust accuracy of the smoothed classifier (majority vote of ``votes`` draws) against an attack.

    See the module docstring for how each attack's output becomes a point x_eps per eps; an
    example is robust iff the smoothed classifier is correct at x and at x_eps. This is an
    empirical upper bound on the true robust accuracy (a stronger attack can only lower it),
    not a certificate. The vote is itself a Monte Carlo estimate with ``votes`` draws.

    Parameters
    ----------
    model : torch.nn.Module
        The judged (target) base classifier.
    x, y : torch.Tensor
        Inputs (N, ...) in [0, 1]; int64 labels (N,).
    sigma : float
        Noise level of the judged smoothed classifier (>= 0; 0 = undefended).
    attack : {"pgd", "cw", "boundary"} or PGD / CarliniWagner / Boundary
        A name (default settings) or a settings object. PGD and C&W average every gradient over
        ``eot`` noise draws; by default (``eot=None``) ``DEFAULT_EOT`` (16) draws when the
        attacked model is noisy (``source_sigma`` > 0), so that a noisy model's robustness is not
        overstated by single-draw gradients; an explicit ``eot=1`` there is honoured with a
        logged warning.
    eps_list : sequence of float
        Attack sizes (>= 0), in ``attack``'s norm.
    norm : {"linf", "l2"}, optional
        With a name: PGD's norm (default "linf"); C&W and Boundary accept only "l2". Must
        agree with a settings object's norm.
    votes : int
        Noise draws of the judging vote (default 100).
    source_model : torch.nn.Module, optional
        Transfer (black-box) setting: craft the attack on this model instead of ``model``.
    source_sigma : float, optional
        Noise level the attack is crafted against; default ``sigma`` without ``source_model``
        and 0 (undefended) with it.
    generator : torch.Generator, optional
        Source of all randomness (attacks and votes).
    attack_batch : int
        Examples attacked together.
    batch_size : int
        Images per forward pass.
    progress : bool
        Show a tqdm progress bar (on stderr).

    Returns
    -------
    tuple of RobustAccuracy
        One per eps, in the order of ``eps_list``.
    """
    sigma = _check_sigma(sigma)
    cfg = _make_config(attack, norm)
    if norm is not None and not isinstance(attack, str):
        check_choice("norm", norm, NORMS)
        if norm != cfg.norm:
            raise ValueError(f"norm ({norm!r}) does not match the attack settings' norm ({cfg.norm!r})")
    eps_tuple = _check_eps_list(eps_list)
    votes = check_positive_int("votes", votes)
    attack_batch = check_positive_int("attack_batch", attack_batch)
    batch_size = check_positive_int("batch_size", batch_size)
    _check_inputs(x, y)
    if len(x) == 0:
        raise ValueError("x must contain at least one example (got 0)")
    transfer = source_model is not None
    if source_sigma is None:
        source_sigma = 0.0 if transfer else sigma
    source_sigma = check_real("source_sigma", source_sigma, minimum=0.0)
    src = source_model if transfer else model
    if source_sigma > 0 and cfg.name != "boundary" and cfg.eot == 1:  # explicitly chosen (None = DEFAULT_EOT)
        logger.warning("attacking a noisy model (sigma %g) with eot = 1: each gradient sees a single noise "
                       "draw; expectation over transformation needs eot > 1 (e.g. 8-32)", source_sigma)
    generator = _check_generator(generator, x.device)
    n = len(x)
    robust = torch.zeros(len(eps_tuple), n, dtype=torch.bool)
    norms = torch.zeros(len(eps_tuple), n, dtype=torch.float64)
    clean_ok = torch.zeros(n, dtype=torch.bool)
    base_ok = torch.zeros(n, dtype=torch.bool)

    batches = [(s, min(s + attack_batch, n)) for s in range(0, n, attack_batch)]
    per_batch = 1 if cfg.name != "pgd" else len(eps_tuple)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(batches) * per_batch, desc=f"{cfg.name}-{cfg.norm}", unit="batch")
    try:
        for s, e in batches:
            xb, yb = x[s:e].detach(), y[s:e]
            with torch.no_grad(), eval_mode(model):
                base_logits = _forward(model, xb, batch_size)
            check_finite_logits(base_logits, lambda row, s=s: f"example {s + row} of {n} (no noise)")
            _check_labels(yb, base_logits.shape[1])
            base_pred = base_logits.argmax(dim=1)
            base_ok[s:e] = (base_pred == yb).cpu()
            clean = smoothed_predict(model, xb, sigma, votes=votes, generator=generator, batch_size=batch_size) == yb
            clean_ok[s:e] = clean.cpu()
            if cfg.name == "pgd":
                points = []
                for eps in eps_tuple:
                    points.append(_pgd(src, xb, yb, eps, source_sigma, cfg, False, generator, batch_size))
                    if bar is not None:
                        bar.update(1)
            else:
                if cfg.name == "cw":
                    res = _cw(src, xb, yb, source_sigma, cfg, False, generator, batch_size)
                else:
                    res = _boundary(src, xb, yb, source_sigma, cfg, xb, generator, batch_size)
                delta = res.x_adv - xb
                dn = _flat_norm(delta, "l2")
                points = []
                for eps in eps_tuple:
                    factor = torch.where(dn > eps, eps / dn.clamp_min(1e-30), torch.ones_like(dn))
                    points.append(xb + delta * _bcast(factor, delta))
                if bar is not None:
                    bar.update(1)
            for i, pt in enumerate(points):
                pred = smoothed_predict(model, pt, sigma, votes=votes, generator=generator, batch_size=batch_size)
                robust[i, s:e] = (clean & (pred == yb)).cpu()
                norms[i, s:e] = _flat_norm(pt - xb, cfg.norm).double().cpu()
    finally:
        if bar is not None:
            bar.close()
    out = []
    for i, eps in enumerate(eps_tuple):
        k = int(robust[i].sum())
        out.append(RobustAccuracy(
            attack=cfg.name, norm=cfg.norm, eps=eps, sigma=sigma, votes=votes, n=n, n_robust=k,
            robust_accuracy=k / n, clean_accuracy=float(clean_ok.double().mean()),
            base_clean_accuracy=float(base_ok.double().mean()),
            mean_perturbation_norm=float(norms[i].mean()), transfer=transfer, source_sigma=source_sigma,
        ))
    return tuple(out)
