"""The decision-based Boundary attack (Brendel, Rauber & Bethge, ICLR 2018), l2, untargeted.

Gradient-free: it only asks whether the smoothed classifier's majority vote at a point differs
from the label (:func:`renyi_cert_torch.attacks.smoothed_predict`). The attack has two phases:
a search for an adversarial starting point (:func:`_find_start`) and a walk along the decision
boundary towards x (:func:`_walk`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from renyi_cert._validate import check_positive_int, check_real

from ..devices import check_generator
from ._common import DEFAULT_BATCH_SIZE, MinNormResult, Noise, _check_inputs, _check_noise, _rand, _randn
from .geometry import _bcast, _flat_norm
from .voting import smoothed_predict

logger = logging.getLogger(__name__)

__all__ = ["Boundary", "boundary_attack"]


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

    def __post_init__(self) -> None:
        for f in ("steps", "query_votes", "adapt_every", "init_trials", "line_search_steps"):
            object.__setattr__(self, f, check_positive_int(f, getattr(self, f)))
        object.__setattr__(self, "spherical_step", check_real("spherical_step", self.spherical_step, strict=True))
        object.__setattr__(self, "source_step", check_real("source_step", self.source_step, strict=True))
        if not self.source_step < 1.0:
            raise ValueError(f"source_step ({self.source_step!r}) must be < 1")
        object.__setattr__(self, "step_adaptation",
                           check_real("step_adaptation", self.step_adaptation, minimum=1.0, strict=True))


def boundary_attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, sigma: float | Noise = 0.0,
                    steps: int = 1000,
                    query_votes: int = 25, spherical_step: float = 0.01, source_step: float = 0.01,
                    step_adaptation: float = 1.5, adapt_every: int = 20, init_trials: int = 50,
                    line_search_steps: int = 20, starts: torch.Tensor | None = None,
                    generator: torch.Generator | None = None,
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
    sigma : float or renyi_cert.noise.Gaussian, Laplace or Uniform
        Gaussian noise level of the attacked smoothed classifier (>= 0), or its noise.
    steps, query_votes, adapt_every, init_trials, line_search_steps : int
        >= 1.
    spherical_step, source_step : float
        Initial relative step sizes, > 0 (source_step < 1).
    step_adaptation : float
        > 1.
    starts : torch.Tensor, optional
        (K, ...) candidate starting images in [0, 1].
    generator : torch.Generator, optional
    Other parameters as in :func:`pgd`.

    Returns
    -------
    MinNormResult
    """
    cfg = Boundary(steps=steps, query_votes=query_votes, spherical_step=spherical_step, source_step=source_step,
                   step_adaptation=step_adaptation, adapt_every=adapt_every, init_trials=init_trials,
                   line_search_steps=line_search_steps)
    noise = _check_noise("sigma", sigma)
    batch_size = check_positive_int("batch_size", batch_size)
    _check_inputs(x, y)
    _check_starts(starts, x)
    generator = check_generator(generator, x.device, create=True)
    return _boundary(model, x.detach(), y, noise, cfg, starts, generator, batch_size)


def _check_starts(starts: torch.Tensor | None, x: torch.Tensor) -> None:
    """Refuse candidate starting images of another image shape or outside [0, 1]."""
    if starts is None:
        return
    if not isinstance(starts, torch.Tensor) or tuple(starts.shape[1:]) != tuple(x.shape[1:]):
        desc = tuple(starts.shape) if isinstance(starts, torch.Tensor) else type(starts).__name__
        raise ValueError(f"starts must be a tensor of shape (K, {', '.join(map(str, x.shape[1:]))}), got {desc}")
    if starts.numel() and (float(starts.min()) < 0.0 or float(starts.max()) > 1.0):
        raise ValueError(f"starts must lie in [0, 1], got values in [{float(starts.min())!r}, {float(starts.max())!r}]")


class _Oracle:
    """The attack's only access to the model: "is z[i] adversarial for example idx[i]?", counting queries."""

    def __init__(self, model: nn.Module, y: torch.Tensor, noise: Noise | None, votes: int,
                 generator: torch.Generator, batch_size: int):
        self.model, self.y, self.votes = model, y, votes
        self.sigma = 0.0 if noise is None else noise   # what smoothed_predict takes
        self.generator, self.batch_size = generator, batch_size
        self.per_query = votes if noise is not None else 1
        self.queries = 0   # forward passes per example so far

    def __call__(self, z: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        self.queries += self.per_query
        if len(idx) == 0:
            return torch.zeros(0, dtype=torch.bool, device=self.y.device)
        pred = smoothed_predict(self.model, z, self.sigma, votes=self.votes, generator=self.generator,
                                batch_size=self.batch_size)
        return pred != self.y[idx]


@torch.no_grad()
def _boundary(model: nn.Module, x: torch.Tensor, y: torch.Tensor, noise: Noise | None, cfg: Boundary,
              starts: torch.Tensor | None, generator: torch.Generator, batch_size: int) -> MinNormResult:
    """Unvalidated core of :func:`boundary_attack`: find a start, then walk from it towards x
    (``noise`` None: no noise)."""
    oracle = _Oracle(model, y, noise, cfg.query_votes, generator, batch_size)
    best, best_dist = _find_start(oracle, x, starts, cfg, generator)
    found = torch.isfinite(best_dist)
    if not bool(found.all()):
        logger.info("boundary attack: no adversarial starting point for %d of %d examples",
                    int((~found).sum()), len(x))
    idx = torch.arange(len(x), device=x.device)[found & (best_dist > 0)]
    if len(idx):
        best[idx], best_dist[idx] = _walk(oracle, x[idx], best[idx], best_dist[idx], idx, cfg, generator)
    return MinNormResult(x_adv=best, norm=best_dist, success=found, queries=oracle.queries)


# ----------------------------------------------------------------------------------- start search


def _line_search(oracle: _Oracle, x: torch.Tensor, ends: torch.Tensor, idx: torch.Tensor,
                 steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Bisection on the segments x[idx] -> ends (adversarial end): the adversarial point nearest x, and its distance."""
    xo = x[idx]
    lo = torch.zeros(len(idx), dtype=x.dtype, device=x.device)
    hi = torch.ones(len(idx), dtype=x.dtype, device=x.device)
    for _ in range(steps):
        mid = (lo + hi) / 2.0
        ok = oracle(xo + _bcast(mid, xo) * (ends - xo), idx)
        hi = torch.where(ok, mid, hi)
        lo = torch.where(ok, lo, mid)
    adv = xo + _bcast(hi, xo) * (ends - xo)
    return adv, _flat_norm(adv - xo, "l2")


def _first_adversarial(oracle: _Oracle, x: torch.Tensor, done: torch.Tensor, trials: int,
                       propose: Callable[[torch.Tensor, int], torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per example not ``done``, the first adversarial one of ``trials`` proposals ``propose(todo, r)``.

    Returns the points (x where none was found) and which examples are done (found or done before).
    """
    all_idx = torch.arange(len(x), device=x.device)
    found = done.clone()
    points = x.clone()
    for r in range(trials):
        todo = all_idx[~found]
        if len(todo) == 0:
            break
        cand = propose(todo, r)
        ok = oracle(cand, todo)
        points[todo[ok]] = cand[ok]
        found[todo[ok]] = True
    return points, found


def _find_start(oracle: _Oracle, x: torch.Tensor, starts: torch.Tensor | None, cfg: Boundary,
                generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The closest adversarial starting point per example (x itself if x is adversarial) and its distance (inf: none)."""
    b = len(x)
    all_idx = torch.arange(b, device=x.device)
    at_x = oracle(x, all_idx)   # already misclassified: x itself is the nearest adversarial point
    best = x.clone()
    inf = torch.full((b,), math.inf, dtype=x.dtype, device=x.device)
    best_dist = torch.where(at_x, torch.zeros_like(inf), inf)
    # Candidate 1: uniform noise. Candidate 2: the nearest of the init_trials nearest ``starts``.
    searches = [(cfg.init_trials, lambda todo, r: _rand(x[todo].shape, x, generator))]
    if starts is not None and len(starts):
        starts = starts.to(device=x.device, dtype=x.dtype)
        order = torch.cdist(x.reshape(b, -1), starts.reshape(len(starts), -1)).argsort(dim=1)
        searches.append((min(len(starts), cfg.init_trials), lambda todo, r: starts[order[todo, r]]))
    for trials, propose in searches:
        ends, found = _first_adversarial(oracle, x, at_x, trials, propose)
        idx = all_idx[found & ~at_x]
        if len(idx):
            adv, dist = _line_search(oracle, x, ends[idx], idx, cfg.line_search_steps)
            closer = dist < best_dist[idx]
            best[idx[closer]], best_dist[idx[closer]] = adv[closer], dist[closer]
    return best, best_dist


# ----------------------------------------------------------------------------------- walk


def _proposal(xo: torch.Tensor, adv: torch.Tensor, sph: torch.Tensor, src: torch.Tensor,
              generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Foolbox's proposal: the spherical candidate (orthogonal step) and the full one (plus a step towards x)."""
    n = len(xo)
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
    return spherical, candidate


def _adapt(sph: torch.Tensor, src: torch.Tensor, rate_s: torch.Tensor, rate_c: torch.Tensor,
           a: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Brendel et al.'s success-rate adaptation of the spherical and source step sizes (factor a)."""
    up = rate_s > 0.5
    down = rate_s < 0.2
    sph = torch.where(up, sph * a, torch.where(down, sph / a, sph))
    src = torch.where(up, src * a, torch.where(down, src / a, src))
    src = torch.where(rate_c > 0.25, src * a, torch.where(rate_c < 0.1, src / a, src))
    return sph, src.clamp(max=0.5)


def _walk(oracle: _Oracle, xo: torch.Tensor, adv: torch.Tensor, dist: torch.Tensor, idx: torch.Tensor,
          cfg: Boundary, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``cfg.steps`` proposals from the adversarial points ``adv`` towards ``xo``; the closest adversarial ones kept."""
    n = len(idx)
    sph = torch.full((n,), cfg.spherical_step, dtype=xo.dtype, device=xo.device)
    src = torch.full((n,), cfg.source_step, dtype=xo.dtype, device=xo.device)
    sph_hits = torch.zeros(n, dtype=xo.dtype, device=xo.device)
    step_hits = torch.zeros(n, dtype=xo.dtype, device=xo.device)
    for t in range(1, cfg.steps + 1):
        spherical, candidate = _proposal(xo, adv, sph, src, generator)
        sph_ok = oracle(spherical, idx)
        cand_ok = oracle(candidate, idx)
        cand_dist = _flat_norm(candidate - xo, "l2")
        accept = cand_ok & (cand_dist < dist)
        adv = torch.where(_bcast(accept, adv), candidate, adv)
        dist = torch.where(accept, cand_dist, dist)
        sph_hits += sph_ok.to(xo.dtype)
        step_hits += cand_ok.to(xo.dtype)
        if t % cfg.adapt_every == 0:
            sph, src = _adapt(sph, src, sph_hits / cfg.adapt_every, step_hits / cfg.adapt_every, cfg.step_adaptation)
            sph_hits.zero_()
            step_hits.zero_()
    return adv, dist
