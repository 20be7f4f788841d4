"""From attacks to robust accuracy at size eps (:func:`robust_accuracy`).

An example counts as robust at eps iff the smoothed classifier is correct **both** at the clean x
and at the attacked point x_eps (x itself lies in every eps-ball, so a clean error is an
adversarial example of size 0). How x_eps is made:

* PGD (l_inf, l2 or l1) is run separately for every eps (with step size ``step_size`` or
  2.5 eps / steps); x_eps is its last iterate. eps = 0 gives x_eps = x without running the attack.
* The minimum-norm attacks (C&W, Boundary) are run once per example; their perturbation delta
  (the smallest successful one, or for C&W the last iterate of the last binary-search round when
  no round succeeded, or delta = 0 when the Boundary attack found no starting point) is
  **radially projected onto the l2 ball** (:func:`renyi_cert_torch.attacks.truncate_l2`):
  ``x_eps = x + delta * min(1, eps / ||delta||_2)``. This is the Euclidean projection of
  x + delta onto the eps-ball, and it stays in [0, 1] (a convex combination of x and x + delta,
  both in [0, 1]). Perturbations shorter than eps are used whole; longer ones are truncated and
  then judged like any other point -- the truncated point may still fool the smoothed classifier.
* Transfer (black box): with ``source_model`` the attack is crafted on one model (e.g. the
  undefended one, ``source_sigma = 0``) and judged on another.

The smoothing noise is Gaussian N(0, sigma^2 I) for a number ``sigma``, or any
:mod:`renyi_cert.noise` noise (``Laplace(b)``, ``Uniform(lambda)``, ``Gaussian(sigma)``) given in
its place; it is used for the EOT draws of the attacks and for the judging vote alike.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Iterator, Sequence, Union

import torch
from torch import nn

from renyi_cert._validate import check_choice, check_positive_int

from ..devices import check_generator
from ..modes import eval_mode
from ..smoothing import check_finite_logits
from ._common import (ATTACKS, DEFAULT_BATCH_SIZE, DEFAULT_VOTES, PGD_NORMS, Noise, _check_eps_list, _check_inputs,
                      _check_labels, _check_noise, _forward, _noise_name, _noise_scale)
from .boundary import Boundary, _boundary
from .carlini_wagner import CarliniWagner, _cw
from .geometry import _flat_norm, truncate_l2
from .projected_gradient import PGD, _pgd
from .voting import smoothed_predict

logger = logging.getLogger(__name__)

__all__ = ["RobustAccuracy", "robust_accuracy"]

AttackSettings = Union[PGD, CarliniWagner, Boundary]


@dataclass(frozen=True)
class RobustAccuracy:
    """Robust accuracy of the smoothed classifier against one attack at one size eps.

    Attributes
    ----------
    attack : str
        "pgd", "cw" or "boundary".
    norm : str
        "linf", "l2" or "l1".
    eps : float
        Attack size.
    sigma : float
        Noise scale of the judged (target) model (Gaussian sigma, Laplace scale, uniform
        half-width; 0 = no noise).
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
        Noise scale the attack was crafted against (== sigma without transfer).
    noise : str
        The judged model's kind of noise: "gaussian" (also for a number sigma), "laplace" or
        "uniform".
    source_noise : str
        The kind of noise the attack was crafted against.
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
    noise: str = "gaussian"
    source_noise: str = "gaussian"


def robust_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, sigma: float | Noise, *,
                    attack: str | AttackSettings = "pgd", eps_list: float | Sequence[float] = (0.0,),
                    norm: str | None = None, votes: int = DEFAULT_VOTES, source_model: nn.Module | None = None,
                    source_sigma: float | Noise | None = None, generator: torch.Generator | None = None,
                    attack_batch: int = 100, batch_size: int = DEFAULT_BATCH_SIZE,
                    progress: bool = False) -> tuple[RobustAccuracy, ...]:
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
    sigma : float or renyi_cert.noise.Gaussian, Laplace or Uniform
        Noise of the judged smoothed classifier: a Gaussian noise level (>= 0; 0 = undefended) or
        the noise itself (e.g. ``Laplace(0.5)``).
    attack : {"pgd", "cw", "boundary"} or PGD / CarliniWagner / Boundary
        A name (default settings) or a settings object. PGD and C&W average every gradient over
        ``eot`` noise draws; by default (``eot=None``) ``DEFAULT_EOT`` (16) draws when the
        attacked model is noisy (``source_sigma`` > 0), so that a noisy model's robustness is not
        overstated by single-draw gradients; an explicit ``eot=1`` there is honoured with a
        logged warning.
    eps_list : sequence of float
        Attack sizes (>= 0), in ``attack``'s norm.
    norm : {"linf", "l2", "l1"}, optional
        With a name: PGD's norm (default "linf"); C&W and Boundary accept only "l2". Must
        agree with a settings object's norm.
    votes : int
        Noise draws of the judging vote (default 100).
    source_model : torch.nn.Module, optional
        Transfer (black-box) setting: craft the attack on this model instead of ``model``.
    source_sigma : float or renyi_cert.noise noise, optional
        Noise the attack is crafted against (as ``sigma``); default ``sigma`` without
        ``source_model`` and 0 (undefended) with it.
    generator : torch.Generator, optional
        Source of all randomness (attacks and votes), on x's device type.
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
    noise = _check_noise("sigma", sigma)
    cfg = _attack_settings(attack, norm)
    eps_tuple = _check_eps_list(eps_list)
    votes = check_positive_int("votes", votes)
    attack_batch = check_positive_int("attack_batch", attack_batch)
    batch_size = check_positive_int("batch_size", batch_size)
    _check_inputs(x, y)
    if len(x) == 0:
        raise ValueError("x must contain at least one example (got 0)")
    transfer = source_model is not None
    source = (0.0 if transfer else sigma) if source_sigma is None else source_sigma
    source_noise = _check_noise("source_sigma", source)
    _warn_if_single_draw(cfg, source_noise)
    run = _Run(model=model, source=source_model if source_model is not None else model, noise=noise,
               source_noise=source_noise, names=(_noise_name(sigma), _noise_name(source)),
               cfg=cfg, eps=eps_tuple, votes=votes, generator=check_generator(generator, x.device, create=True),
               batch_size=batch_size)
    return _summaries(run, _tally(run, x, y, attack_batch, progress), transfer)


# ----------------------------------------------------------------------------------- settings


def _attack_settings(attack: str | AttackSettings, norm: str | None) -> AttackSettings:
    """The settings object of ``attack`` (a name with its default settings, or the object itself), checked against ``norm``."""
    if isinstance(attack, (PGD, CarliniWagner, Boundary)):
        if norm is not None:
            check_choice("norm", norm, PGD_NORMS)
            if norm != attack.norm:
                raise ValueError(f"norm ({norm!r}) does not match the attack settings' norm ({attack.norm!r})")
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


def _warn_if_single_draw(cfg: AttackSettings, source_noise: Noise | None) -> None:
    """Log a warning when a noisy model is attacked with an explicitly chosen single draw per gradient."""
    if source_noise is not None and isinstance(cfg, (PGD, CarliniWagner)) and cfg.eot == 1:  # explicit
        logger.warning("attacking a noisy model (sigma %g) with eot = 1: each gradient sees a single noise "
                       "draw; expectation over transformation needs eot > 1 (e.g. 8-32)",
                       _noise_scale(source_noise))


@dataclass(frozen=True, eq=False)
class _Run:
    """One checked robust-accuracy evaluation: who is judged, who is attacked, and how."""

    model: nn.Module           # judged (target)
    source: nn.Module          # attacked (== model without transfer)
    noise: Noise | None        # judged model's noise (None: no noise)
    source_noise: Noise | None
    names: tuple[str, str]     # the kinds of noise of the judged and the attacked model
    cfg: AttackSettings
    eps: tuple[float, ...]
    votes: int
    generator: torch.Generator
    batch_size: int

    def vote(self, points: torch.Tensor) -> torch.Tensor:
        """The judging smoothed classifier's decisions at ``points``."""
        sigma = 0.0 if self.noise is None else self.noise
        return smoothed_predict(self.model, points, sigma, votes=self.votes, generator=self.generator,
                                batch_size=self.batch_size)


@dataclass(frozen=True, eq=False)
class _Tally:
    """Per-example outcomes: robust and norms (len(eps), N); clean and base correctness (N,)."""

    robust: torch.Tensor
    norms: torch.Tensor
    clean_ok: torch.Tensor
    base_ok: torch.Tensor


# ----------------------------------------------------------------------------------- evaluation


@contextlib.contextmanager
def _progress_bar(enabled: bool, total: int, desc: str) -> Iterator[Any]:
    """A tqdm bar on stderr (closed afterwards), or None when not ``enabled``."""
    if not enabled:
        yield None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit="batch")
    try:
        yield bar
    finally:
        bar.close()


def _tally(run: _Run, x: torch.Tensor, y: torch.Tensor, attack_batch: int, progress: bool) -> _Tally:
    """Attack and judge ``x`` in batches of ``attack_batch`` examples."""
    n = len(x)
    out = _Tally(robust=torch.zeros(len(run.eps), n, dtype=torch.bool),
                 norms=torch.zeros(len(run.eps), n, dtype=torch.float64),
                 clean_ok=torch.zeros(n, dtype=torch.bool), base_ok=torch.zeros(n, dtype=torch.bool))
    batches = [(s, min(s + attack_batch, n)) for s in range(0, n, attack_batch)]
    per_batch = 1 if run.cfg.name != "pgd" else len(run.eps)
    with _progress_bar(progress, len(batches) * per_batch, f"{run.cfg.name}-{run.cfg.norm}") as bar:
        for s, e in batches:
            xb, yb = x[s:e].detach(), y[s:e]
            out.base_ok[s:e] = _base_correct(run, xb, yb, s, n).cpu()
            clean = run.vote(xb) == yb
            out.clean_ok[s:e] = clean.cpu()
            for i, pt in enumerate(_attacked_points(run, xb, yb, bar)):
                out.robust[i, s:e] = (clean & (run.vote(pt) == yb)).cpu()
                out.norms[i, s:e] = _flat_norm(pt - xb, run.cfg.norm).double().cpu()
    return out


def _base_correct(run: _Run, xb: torch.Tensor, yb: torch.Tensor, start: int, n: int) -> torch.Tensor:
    """Whether the base model (no noise) is correct on the batch ``xb`` (examples start.. of n); checks its logits."""
    with torch.no_grad(), eval_mode(run.model):
        logits = _forward(run.model, xb, run.batch_size)
    check_finite_logits(logits, lambda row: f"example {start + row} of {n} (no noise)")
    _check_labels(yb, logits.shape[1])
    return logits.argmax(dim=1) == yb


def _attacked_points(run: _Run, xb: torch.Tensor, yb: torch.Tensor, bar: Any) -> list[torch.Tensor]:
    """The attacked point x_eps of every example of the batch, per eps (see the module docstring)."""
    cfg, src, noise, gen, bs = run.cfg, run.source, run.source_noise, run.generator, run.batch_size
    if isinstance(cfg, PGD):
        points = []
        for eps in run.eps:
            points.append(_pgd(src, xb, yb, eps, noise, cfg, False, gen, bs))
            if bar is not None:
                bar.update(1)
        return points
    if isinstance(cfg, CarliniWagner):
        res = _cw(src, xb, yb, noise, cfg, False, gen, bs)
    else:
        res = _boundary(src, xb, yb, noise, cfg, xb, gen, bs)
    if bar is not None:
        bar.update(1)
    delta = res.x_adv - xb
    return [xb + truncate_l2(delta, eps) for eps in run.eps]


def _summaries(run: _Run, tally: _Tally, transfer: bool) -> tuple[RobustAccuracy, ...]:
    """One :class:`RobustAccuracy` per eps from the per-example outcomes."""
    n = tally.clean_ok.numel()
    out = []
    for i, eps in enumerate(run.eps):
        k = int(tally.robust[i].sum())
        out.append(RobustAccuracy(
            attack=run.cfg.name, norm=run.cfg.norm, eps=eps, sigma=_noise_scale(run.noise), votes=run.votes, n=n,
            n_robust=k,
            robust_accuracy=k / n, clean_accuracy=float(tally.clean_ok.double().mean()),
            base_clean_accuracy=float(tally.base_ok.double().mean()),
            mean_perturbation_norm=float(tally.norms[i].mean()), transfer=transfer,
            source_sigma=_noise_scale(run.source_noise), noise=run.names[0], source_noise=run.names[1],
        ))
    return tuple(out)
