"""Training base classifiers for randomized smoothing: stability training with noise (STN) and baselines.

Modes (``MODES``), for a batch (x, y) and x' = x + N(0, sigma^2 I):

``"stn"``
    Stability training with noise (Li et al. 2019, after Zheng et al. 2016):
    ``L = CE(f(x), y) + gamma * D(f(x), f(x'))`` where ``D = -sum_k p_k log q_k`` is the
    cross-entropy between p = softmax(f(x)) (the target) and q = softmax(f(x')).
    **The clean target p carries no gradient** (it is detached): the gradient of D is then the
    gradient of KL(p || q) and flows through f(x') only: the stability term pulls the noisy
    prediction towards the clean one, never the clean prediction towards the noisy one, and
    does not reward the clean prediction for lowering its own entropy H(p). (The official code fed raw
    logits as the target distribution, which is not a distribution; we do not reproduce that.)
    The logged stability value is D itself (it includes the entropy H(p), so it is >= 0 but not 0
    at perfect stability). f(x) and f(x') come from one forward pass over the concatenated batch
    [x; x'], so an STN step costs about two plain steps (dropout draws independent masks for the
    two halves, as it would in two passes).
``"gaussian"``
    Gaussian data augmentation (Cohen et al. 2019): ``L = CE(f(x'), y)``.
``"none"``
    Plain training: ``L = CE(f(x), y)``; sigma is not used (``TrainConfig`` records a sigma > 0 as
    given, with a ``UserWarning``; ``renyi-cert train`` refuses ``--sigma`` > 0 with ``--mode none``).
``"pgd-at"``
    Adversarial training (Madry, Makelov, Schmidt, Tsipras & Vladu, ICLR 2018):
    ``L = CE(f(x_adv), y)`` where x_adv is the last iterate of PGD on CE(f(.), y) in the
    ``attack_norm`` ball of radius ``attack_eps`` around x (intersected with [0, 1]), from a
    uniform random start, ``attack_steps`` steps of ``attack_step_size``.
``"trades"``
    TRADES (Zhang, Yu, Jiao, Xing, El Ghaoui & Jordan, ICML 2019):
    ``L = CE(f(x), y) + beta * KL(softmax(f(x)) || softmax(f(x_adv)))`` (:func:`trades_loss`;
    the KL is summed over classes and averaged over the batch, and its gradient flows through
    both f(x) and f(x_adv), as in the official ``trades.py``), where x_adv is the last iterate
    of projected gradient ascent on that KL from x + 0.001 N(0, I) (the official start).

Both adversarial modes train without noise (sigma is not used, as for ``"none"``) and craft
x_adv with the model in eval mode (dropout off; as the official ``trades.py``), by the attack
loop of :mod:`renyi_cert_torch.attacks` (:func:`~renyi_cert_torch.attacks.pgd` for PGD-AT;
:func:`~renyi_cert_torch.attacks.projected_gradient_ascent` with the KL gradient for TRADES);
the training step then runs in train mode. TRADES feeds [x; x_adv] through the network in one
pass (the official code makes separate passes, so its dropout masks differ between the CE
term and the KL target; our models' dropout draws independent masks for the two halves).
Default attack settings (``PUBLISHED_ATTACKS``, l_inf; an l2 attack needs an explicit
``attack_eps``):

    mode / data     eps     steps  step    beta  source
    pgd-at MNIST    0.3     40     0.01    -     Madry et al., mnist_challenge config.json
    pgd-at CIFAR-10 8/255   10     2/255   -     Madry et al., cifar10_challenge config.json
    trades MNIST    0.3     40     0.01    1.0   Zhang et al., official train_trades_mnist.py
    trades CIFAR-10 0.031   10     0.007   6.0   Zhang et al., official train_trades_cifar10.py

(The official CIFAR-10 script first defaulted to beta = 1.0 and later to 6.0, the value its
README recommends; we use 6.0.) When ``attack_eps``, ``attack_steps`` or the norm differ from
the published values and no ``attack_step_size`` is given, the step is 2.5 eps / steps (the
rule of Madry et al. that :func:`~renyi_cert_torch.attacks.pgd` uses too). The optimiser stays
Adam at ``lr`` (TRADES's scripts use SGD with momentum for 80-100 epochs; Madry et al.'s MNIST
model, Adam 1e-4 for 100,000 steps of 50 examples).

Cost per batch, in units of a plain training step (:func:`nominal_step_cost`): "none" and
"gaussian" 1; "stn" 2 (a forward-backward pass over twice the batch); "pgd-at" steps + 1 (one
forward-backward pass per attack step, then the training step); "trades" steps + 2 (the attack
steps, then a training step over [x; x_adv]) plus one forward pass for the clean target of
the attack. An attack step computes no weight gradients, so the measured ratios are lower
(``benchmarks/bench_train.py``).

The noise is added in [0, 1] pixel units, the space the smoothed classifier certifies in, and
x' is **not clipped** to [0, 1] (certification adds unclipped Gaussian noise too; clipping would
train on a different distribution). Optimiser: Adam (default lr 1e-3), mini-batches drawn by a
seeded permutation each epoch.

Default gamma (``DEFAULT_GAMMA`` = 1). Measured on mnist5k (train on its 4,000 digits, sigma =
0.7, 8 epochs, batch 128, Adam 1e-3, CPU; "noisy" = base-classifier accuracy on the 1,000 test
digits with one noise draw each; "smoothed" = majority vote of 32 noise draws on the first 500
test digits, standard error about 1 %):

    mode / gamma (seed)   clean   noisy   smoothed
    none                  0.983   0.674   0.792
    gaussian              0.955   0.917   0.954
    stn 0.5 (0)           0.977   0.933   0.966
    stn 1   (0)           0.975   0.935   0.966
    stn 1   (1)           0.976   0.933   0.970
    stn 2   (0)           0.952   0.907   0.930
    stn 2   (1)           0.972   0.919   0.970
    stn 6   (0)           0.100   0.100   0.088   (collapsed to the uniform prediction)

gamma in [0.5, 1] is best and stable across seeds; gamma = 2 starts slowly and depends on the
seed; gamma = 6 collapses from random initialisation at this sigma: the detached target makes a
constant (uniform) output perfectly "stable", and with a large weight the optimiser falls into
that solution in the first epoch (CE stays at log 10). Large gamma needs a pretrained or
warmed-up model (not implemented here).

Reproducibility: with the same config, device and thread count, ``train`` returns bit-identical
weights on CPU. Model initialisation and dropout use torch's global RNG, which ``train`` seeds
inside ``torch.random.fork_rng`` (the caller's RNG state is restored afterwards); shuffling and
noise use their own ``torch.Generator``s. On CUDA, cuDNN may pick non-deterministic kernels.

The command ``renyi-cert train`` is :mod:`renyi_cert_torch.train_cli`.

Checkpoints are ``{"state_dict": ..., "config": {...}, "format": "renyi_cert/1"}`` written by
``torch.save`` to a temporary file that is renamed over the final name when complete (a crash
never leaves a truncated checkpoint). ``load_checkpoint`` reads them with
``torch.load(..., weights_only=True)``, validates the config with the same rules as
:class:`TrainConfig` (:func:`check_config_dict`; unknown keys are refused), and builds the model
by an import path only with ``trust_arch_import=True`` (importing a module runs its code).
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from renyi_cert._files import atomic_output, check_output_path
from renyi_cert._validate import check_choice, check_positive_int, check_real
from renyi_cert.seeds import spawn_seeds

from .attacks import NORMS, pgd, project, projected_gradient_ascent
from .data import DATASETS, DataSplit, load_dataset
from .devices import resolve_device
from .models import build_model, check_arch, check_arch_trust
from .modes import eval_mode
from .smoothing import check_finite_logits, warn_if_sigma_off_scale

__all__ = ["MODES", "NOISY_MODES", "ADVERSARIAL_MODES", "DEFAULT_GAMMA", "CHECKPOINT_FORMAT", "PAPER_SIGMA",
           "DEFAULT_ARCH", "PUBLISHED_ATTACKS", "check_config_dict", "TrainConfig", "AdversarialSettings",
           "EpochStats", "TrainResult", "stn_loss", "trades_loss", "pgd_at_examples", "trades_examples",
           "nominal_step_cost", "plain_epoch_seconds", "train_epoch", "train", "evaluate_accuracy",
           "adversarial_accuracy", "save_checkpoint", "load_checkpoint", "TrainingDivergedError"]

logger = logging.getLogger(__name__)

MODES = ("stn", "gaussian", "none", "pgd-at", "trades")
NOISY_MODES = ("stn", "gaussian")          # train on x + N(0, sigma^2 I): need sigma > 0
ADVERSARIAL_MODES = ("pgd-at", "trades")   # train on PGD examples: carry the attack_* settings
DEFAULT_GAMMA = 1.0
CHECKPOINT_FORMAT = "renyi_cert/1"
# The paper's training noise levels (section 6): MNIST sigma = 0.7, CIFAR-10 sigma = 100/255.
PAPER_SIGMA = {"mnist": 0.7, "mnist5k": 0.7, "cifar10": 100.0 / 255.0}
DEFAULT_ARCH = {"mnist": "mnist_cnn", "mnist5k": "mnist_cnn", "cifar10": "cifar_cnn7"}
# The published l_inf training attacks (eps, steps, step size, beta) by (mode, "mnist" | "cifar10"); see the
# module docstring for the sources.
PUBLISHED_ATTACKS = {
    ("pgd-at", "mnist"): dict(eps=0.3, steps=40, step_size=0.01, beta=None),
    ("pgd-at", "cifar10"): dict(eps=8 / 255, steps=10, step_size=2 / 255, beta=None),
    ("trades", "mnist"): dict(eps=0.3, steps=40, step_size=0.01, beta=1.0),
    ("trades", "cifar10"): dict(eps=0.031, steps=10, step_size=0.007, beta=6.0),
}
TRADES_START_STD = 0.001  # the official trades.py starts the attack at x + 0.001 N(0, I)


# ------------------------------------------------------------------------------- config validation


def _path_string(name: str, value) -> str:
    if not isinstance(value, (str, os.PathLike)):
        raise ValueError(f"{name} ({value!r}) must be a path (a string)")
    return os.fspath(value)


# One validator per TrainConfig field, shared by TrainConfig and by checkpoint configs (None is the
# "use the default" value of the optional fields).
_FIELD_CHECKS = {
    "dataset": lambda v: check_choice("dataset", v, DATASETS),
    "arch": lambda v: None if v is None else check_arch(v),
    "mode": lambda v: check_choice("mode", v, MODES),
    "sigma": lambda v: None if v is None else check_real("sigma", v, minimum=0.0),
    "gamma": lambda v: None if v is None else check_real("gamma", v, minimum=0.0),
    "attack_norm": lambda v: None if v is None else check_choice("attack_norm", v, NORMS),
    "attack_eps": lambda v: None if v is None else check_real("attack_eps", v, strict=True),
    "attack_steps": lambda v: None if v is None else check_positive_int("attack_steps", v),
    "attack_step_size": lambda v: None if v is None else check_real("attack_step_size", v, strict=True),
    "beta": lambda v: None if v is None else check_real("beta", v, minimum=0.0),
    "epochs": lambda v: check_positive_int("epochs", v),
    "batch_size": lambda v: check_positive_int("batch_size", v),
    "lr": lambda v: check_real("lr", v, minimum=0.0, strict=True),
    "seed": lambda v: check_positive_int("seed", v, minimum=0),
    "num_classes": lambda v: check_positive_int("num_classes", v, minimum=2),
    "max_train": lambda v: None if v is None else check_positive_int("max_train", v),
    "data_root": lambda v: None if v is None else _path_string("data_root", v),
}


def check_config_dict(cfg: dict) -> dict:
    """Validate a training config given as a dict (complete or partial); return a normalised copy.

    Every key must be a :class:`TrainConfig` field; each value is checked with the rule
    :class:`TrainConfig` applies to it (type and range: ``sigma`` a finite real >= 0 and not a
    string, ``num_classes`` an integer >= 2 and not a bool, ``dataset``/``mode`` one of the
    known names, ``attack_eps`` and ``attack_step_size`` finite reals > 0, ``attack_steps`` an
    integer >= 1, ``beta`` a finite real >= 0, ...). Across fields: when both ``mode`` and
    ``sigma`` are given, ``sigma`` must be > 0 for ``"stn"`` and ``"gaussian"``; the
    ``attack_*`` fields must be None unless the mode is ``"pgd-at"`` or ``"trades"``, and
    ``beta`` unless it is ``"trades"``; an l_inf ``attack_eps`` must be <= 1. Missing keys are
    not filled in. Nothing is imported (an import-path ``arch`` is only checked for its form).

    Parameters
    ----------
    cfg : dict

    Returns
    -------
    dict
        The same keys, values normalised (e.g. ``sigma`` as float, integral ``epochs`` as int).

    Raises
    ------
    ValueError
        Naming the offending key(s) and value.
    """
    if not isinstance(cfg, dict):
        raise ValueError(f"config must be a dict, got {type(cfg).__name__}")
    unknown = [k for k in cfg if k not in _FIELD_CHECKS]
    if unknown:
        raise ValueError(f"unknown config key(s) {', '.join(map(repr, unknown))}; a config holds only "
                         f"{', '.join(_FIELD_CHECKS)}")
    out = {k: _FIELD_CHECKS[k](v) for k, v in cfg.items()}
    if "mode" in out and out.get("sigma") is not None and out["mode"] in NOISY_MODES and out["sigma"] == 0.0:
        raise ValueError(f"sigma ({out['sigma']!r}) must be > 0 for mode {out['mode']!r}")
    _check_attack_fields(out)
    return out


_ATTACK_FIELDS = ("attack_norm", "attack_eps", "attack_steps", "attack_step_size")


def _check_attack_fields(cfg: dict) -> None:
    """The rules between the attack fields and the mode (see :func:`check_config_dict`)."""
    mode = cfg.get("mode")
    if mode is not None and mode not in ADVERSARIAL_MODES:
        for k in _ATTACK_FIELDS:
            if cfg.get(k) is not None:
                raise ValueError(f"{k} ({cfg[k]!r}) is used only by modes 'pgd-at' and 'trades', not by mode {mode!r}")
    if mode is not None and mode != "trades" and cfg.get("beta") is not None:
        raise ValueError(f"beta ({cfg['beta']!r}) is used only by mode 'trades', not by mode {mode!r}")
    eps = cfg.get("attack_eps")
    if eps is not None and eps > 1.0 and cfg.get("attack_norm") in (None, "linf"):
        raise ValueError(f"attack_eps ({eps!r}) must be <= 1 for an l_inf attack: pixels are in [0, 1] "
                         f"(did you mean {eps:g}/255 = {eps / 255:.4g}?)")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (saved in the checkpoint as a plain dict).

    Parameters
    ----------
    dataset : {"mnist", "mnist5k", "cifar10"}
    arch : str, optional
        A name in ``ARCHITECTURES`` or an import path ``"package.module:ClassName"``; default
        ``"mnist_cnn"`` for the MNIST datasets, ``"cifar_cnn7"`` for CIFAR-10. Only the form is
        checked here (nothing is imported); :func:`train` builds an import path only with
        ``trust_arch_import=True``.
    mode : {"stn", "gaussian", "none", "pgd-at", "trades"}
    sigma : float, optional
        Training noise standard deviation in [0, 1] pixel units, >= 0; must be > 0 for "stn"
        and "gaussian". Default: the paper's value for the dataset (0.7 MNIST, 100/255 CIFAR-10)
        for "stn"/"gaussian", 0.0 for "none", "pgd-at" and "trades" (a sigma > 0 with those is
        recorded but unused, with a ``UserWarning``; a sigma > 2, likely meant in 0..255 units,
        warns too).
    gamma : float, optional
        Weight of the stability term (>= 0); default ``DEFAULT_GAMMA`` for "stn", 0.0 otherwise
        (a gamma > 0 outside "stn" is recorded but unused, with a ``UserWarning``).
    attack_norm : {"linf", "l2"}, optional
        The training attack's norm ("pgd-at" and "trades" only; default "linf").
    attack_eps : float, optional
        Its radius, > 0 in [0, 1] pixel units (<= 1 for l_inf); default the published value
        (``PUBLISHED_ATTACKS``) for l_inf; required for l2.
    attack_steps : int, optional
        Its number of steps, >= 1; default the published value.
    attack_step_size : float, optional
        Its step, > 0; default the published step when eps, steps and norm are the published
        ones, else 2.5 * attack_eps / attack_steps.
    beta : float, optional
        The weight of the TRADES KL term, >= 0 ("trades" only; default 1.0 for MNIST, 6.0 for
        CIFAR-10, the official scripts' values).
    epochs, batch_size : int
        >= 1.
    lr : float
        Adam learning rate, > 0.
    seed : int
        >= 0; fixes initialisation, dropout, shuffling and noise.
    num_classes : int
        >= 2; must match the dataset.
    max_train : int, optional
        Train on the first ``max_train`` training examples only (>= 1).
    data_root : str, optional
        Folder with the dataset files (see ``renyi_cert_torch.data``).

    Raises
    ------
    ValueError
        For any invalid field (see :func:`check_config_dict`, which holds the rules).
    """

    dataset: str = "mnist5k"
    arch: str | None = None
    mode: str = "stn"
    sigma: float | None = None
    gamma: float | None = None
    attack_norm: str | None = None
    attack_eps: float | None = None
    attack_steps: int | None = None
    attack_step_size: float | None = None
    beta: float | None = None
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    num_classes: int = 10
    max_train: int | None = None
    data_root: str | None = None

    def __post_init__(self):
        values = check_config_dict({f.name: getattr(self, f.name) for f in fields(self)})
        if values["arch"] is None:
            values["arch"] = DEFAULT_ARCH[values["dataset"]]
        if values["sigma"] is None:
            values["sigma"] = PAPER_SIGMA[values["dataset"]] if values["mode"] in NOISY_MODES else 0.0
        if values["gamma"] is None:
            values["gamma"] = DEFAULT_GAMMA if values["mode"] == "stn" else 0.0
        if values["mode"] in ADVERSARIAL_MODES:
            values.update(_attack_defaults(values))
        for name, value in values.items():
            object.__setattr__(self, name, value)  # frozen dataclass: normalised values
        if self.mode not in NOISY_MODES and self.sigma > 0.0:
            warnings.warn(f"mode {self.mode!r} trains without noise: sigma ({self.sigma:g}) is recorded but not used",
                          UserWarning, stacklevel=3)
        if self.mode != "stn" and self.gamma > 0.0:
            warnings.warn(f"gamma ({self.gamma:g}) is used only by mode 'stn'; mode {self.mode!r} ignores it",
                          UserWarning, stacklevel=3)
        warn_if_sigma_off_scale(self.sigma, stacklevel=4)

    def to_dict(self) -> dict:
        """A plain dict (str, int, float, None values) for checkpoints and logs.

        The ``attack_*`` and ``beta`` entries appear only when set (modes "pgd-at" and
        "trades"), so the configs of the other modes are those written before the adversarial
        modes existed.
        """
        return {k: v for k, v in asdict(self).items() if v is not None or k not in _ATTACK_FIELDS + ("beta",)}

    @property
    def adversary(self) -> "AdversarialSettings | None":
        """The training attack of "pgd-at" and "trades" (None for the other modes)."""
        if self.mode not in ADVERSARIAL_MODES:
            return None
        return AdversarialSettings(norm=self.attack_norm, eps=self.attack_eps, steps=self.attack_steps,
                                   step_size=self.attack_step_size, beta=self.beta if self.beta is not None else 0.0)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Rebuild from ``to_dict()`` output (e.g. a checkpoint's config); unknown keys are refused.

        Raises
        ------
        ValueError
            ``d`` is not a dict, has keys that are not fields (named in the message), or an
            invalid value.
        """
        return cls(**check_config_dict(d))


def _attack_defaults(values: dict) -> dict:
    """The attack fields of an adversarial mode with their defaults filled in (see :class:`TrainConfig`)."""
    mode, family = values["mode"], "cifar10" if values["dataset"] == "cifar10" else "mnist"
    pub = PUBLISHED_ATTACKS[(mode, family)]
    norm = values["attack_norm"] if values["attack_norm"] is not None else "linf"
    if norm == "l2" and values["attack_eps"] is None:
        raise ValueError(f"attack_eps must be given with attack_norm 'l2' for mode {mode!r}: the published "
                         f"defaults (eps {pub['eps']:.4g}) are l_inf radii")
    eps = values["attack_eps"] if values["attack_eps"] is not None else pub["eps"]
    steps = values["attack_steps"] if values["attack_steps"] is not None else pub["steps"]
    step_size = values["attack_step_size"]
    if step_size is None:
        published = norm == "linf" and eps == pub["eps"] and steps == pub["steps"]
        step_size = pub["step_size"] if published else 2.5 * eps / steps
    beta = values["beta"] if values["beta"] is not None else pub["beta"]
    return dict(attack_norm=norm, attack_eps=eps, attack_steps=steps, attack_step_size=step_size, beta=beta)


@dataclass(frozen=True)
class AdversarialSettings:
    """The training attack of modes "pgd-at" and "trades" (:attr:`TrainConfig.adversary`).

    ``norm``, ``eps``, ``steps``, ``step_size``: the PGD ball and steps; ``beta``: the weight
    of the TRADES KL term (0.0 for "pgd-at", which does not use it).
    """

    norm: str
    eps: float
    steps: int
    step_size: float
    beta: float = 0.0

    def describe(self) -> str:
        """E.g. ``"PGD l_inf, eps 0.3, 40 steps of 0.01"``."""
        return (f"PGD {'l_inf' if self.norm == 'linf' else 'l2'}, eps {self.eps:.4g}, {self.steps} steps of "
                f"{self.step_size:.4g}")


@dataclass(frozen=True)
class EpochStats:
    """Averages over one epoch (weighted by batch size).

    ``loss`` is the training objective; ``ce_loss`` its cross-entropy part; ``stability_loss``
    the STN term D, or the TRADES term KL(f(x) || f(x_adv)) (0.0 in the other modes).
    ``train_accuracy`` is the accuracy of the predictions the CE term is computed on: clean
    inputs for "stn"/"none"/"trades", noisy for "gaussian", the PGD examples for "pgd-at"
    (with dropout active, as during training). ``seconds`` is wall-clock time (for the
    adversarial modes, crafting the examples included).
    """

    epoch: int
    loss: float
    ce_loss: float
    stability_loss: float
    train_accuracy: float
    seconds: float


@dataclass(frozen=True, eq=False)
class TrainResult:
    """A trained model (in eval mode, on the training device), its config and per-epoch stats."""

    model: nn.Module
    config: TrainConfig
    history: tuple[EpochStats, ...]

    @property
    def seconds(self) -> float:
        return sum(e.seconds for e in self.history)


def stn_loss(logits_clean: torch.Tensor, logits_noisy: torch.Tensor, y: torch.Tensor, gamma: float):
    """The STN objective ``CE(f(x), y) + gamma * H(softmax(f(x)), softmax(f(x')))``.

    The target distribution softmax(f(x)) is detached (see the module docstring).

    Returns
    -------
    (loss, ce, stability) : three scalar tensors, ``loss = ce + gamma * stability``.
    """
    ce = F.cross_entropy(logits_clean, y)
    target = F.softmax(logits_clean.detach(), dim=1)
    stability = -(target * F.log_softmax(logits_noisy, dim=1)).sum(dim=1).mean()
    return ce + gamma * stability, ce, stability


def trades_loss(logits_clean: torch.Tensor, logits_adv: torch.Tensor, y: torch.Tensor, beta: float):
    """The TRADES objective ``CE(f(x), y) + beta * KL(softmax(f(x)) || softmax(f(x_adv)))`` (Zhang et al. 2019).

    The KL is summed over the classes and averaged over the batch; unlike :func:`stn_loss`, the
    target softmax(f(x)) is *not* detached: the gradient flows through both logits, as in the
    official ``trades.py`` (``nn.KLDivLoss(size_average=False)(log_softmax(f(x_adv)),
    softmax(f(x))) / batch_size``).

    Returns
    -------
    (loss, ce, kl) : three scalar tensors, ``loss = ce + beta * kl``.
    """
    ce = F.cross_entropy(logits_clean, y)
    log_p, log_q = F.log_softmax(logits_clean, dim=1), F.log_softmax(logits_adv, dim=1)
    kl = (log_p.exp() * (log_p - log_q)).sum(dim=1).mean()
    return ce + beta * kl, ce, kl


def pgd_at_examples(model: nn.Module, x: torch.Tensor, y: torch.Tensor, adversary: AdversarialSettings,
                    generator: torch.Generator) -> torch.Tensor:
    """PGD-AT's training examples (Madry et al. 2018): PGD on CE(f(.), y) from a uniform random start.

    Runs :func:`renyi_cert_torch.attacks.pgd` without noise (sigma = 0, one gradient per step)
    with ``adversary``'s norm, eps, steps and step size; the model is in eval mode meanwhile
    (its flags are restored). ``generator`` (on x's device) draws the random start.
    """
    return pgd(model, x, y, eps=adversary.eps, norm=adversary.norm, sigma=0.0, steps=adversary.steps,
               step_size=adversary.step_size, random_start=True, loss="ce", eot=1, generator=generator,
               batch_size=len(x))


def trades_examples(model: nn.Module, x: torch.Tensor, adversary: AdversarialSettings,
                    generator: torch.Generator) -> torch.Tensor:
    """TRADES's training examples: x_adv maximising KL(softmax(f(x)) || softmax(f(x_adv))) in the ball.

    As the official ``trades.py``: the clean distribution is computed once (no gradient), the
    ascent starts at x + 0.001 N(0, I) (projected onto the ball and [0, 1]) and runs
    ``adversary.steps`` steps of :func:`renyi_cert_torch.attacks.projected_gradient_ascent`
    with the model in eval mode (flags restored). ``generator`` (on x's device) draws the start.
    """
    with eval_mode(model):
        with torch.no_grad():
            log_p = F.log_softmax(model(x), dim=1)
        noise = torch.randn(x.shape, generator=generator, device=generator.device, dtype=x.dtype).to(x.device)
        start = project(x + TRADES_START_STD * noise, x, adversary.eps, adversary.norm)

        def kl_gradient(x_adv: torch.Tensor) -> torch.Tensor:
            with torch.enable_grad():
                point = x_adv.detach().requires_grad_(True)
                log_q = F.log_softmax(model(point), dim=1)
                kl = (log_p.exp() * (log_p - log_q)).sum()
                return torch.autograd.grad(kl, point)[0]

        return projected_gradient_ascent(kl_gradient, x, start, eps=adversary.eps, norm=adversary.norm,
                                         steps=adversary.steps, step_size=adversary.step_size)


def nominal_step_cost(mode: str, adversary: AdversarialSettings | None = None) -> float:
    """Forward-backward passes of one training batch in units of a plain step (see the module docstring).

    1 for "none"/"gaussian", 2 for "stn", steps + 1 for "pgd-at", steps + 2 for "trades" (its
    clean forward pass for the attack's target, about a third of a step, is not counted). An
    upper bound on the time ratio: an attack step computes no weight gradients.
    """
    check_choice("mode", mode, MODES)
    if mode in ADVERSARIAL_MODES:
        if adversary is None:
            raise ValueError(f"mode {mode!r} needs its AdversarialSettings (TrainConfig.adversary)")
        return float(adversary.steps + (1 if mode == "pgd-at" else 2))
    return 2.0 if mode == "stn" else 1.0


class TrainingDivergedError(ValueError):
    """Training produced a non-finite loss or non-finite weights: there is no model to save."""


def _check_finite_parameters(model: nn.Module, epoch: int) -> None:
    """Raise :class:`TrainingDivergedError` naming the first parameter with a NaN or infinite entry."""
    for name, param in model.named_parameters():
        if not bool(torch.isfinite(param).all()):
            raise TrainingDivergedError(f"training diverged in epoch {epoch}: parameter {name!r} holds non-finite "
                                        "values; the model is unusable and is not returned (lower the learning "
                                        "rate or check the data)")


def _batch_loss(model: nn.Module, xb: torch.Tensor, yb: torch.Tensor, mode: str, sigma: float, gamma: float,
                adversary: AdversarialSettings | None, generator: torch.Generator):
    """``(loss, ce, stability, logits)`` of one batch in ``mode``; ``logits`` are those the CE is computed on."""
    zero = torch.zeros((), device=xb.device)
    if mode in ("none", "pgd-at"):
        inputs = pgd_at_examples(model, xb, yb, adversary, generator) if mode == "pgd-at" else xb
        logits = model(inputs)
        ce = F.cross_entropy(logits, yb)
        return ce, ce, zero, logits
    if mode == "trades":
        x_adv = trades_examples(model, xb, adversary, generator)
        both = model(torch.cat([xb, x_adv]))
        logits = both[:len(xb)]
        return (*trades_loss(logits, both[len(xb):], yb, adversary.beta), logits)
    noise = torch.randn(xb.shape, generator=generator, device=xb.device, dtype=xb.dtype)
    x_noisy = xb + sigma * noise  # [0, 1] pixel units, not clipped
    if mode == "gaussian":
        logits = model(x_noisy)
        ce = F.cross_entropy(logits, yb)
        return ce, ce, zero, logits
    both = model(torch.cat([xb, x_noisy]))
    logits = both[:len(xb)]
    return (*stn_loss(logits, both[len(xb):], yb, gamma), logits)


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, *,
                mode: str, sigma: float, gamma: float, batch_size: int, shuffle_generator: torch.Generator,
                noise_generator: torch.Generator, device, epoch: int = 1, progress: bool = False,
                adversary: AdversarialSettings | None = None) -> EpochStats:
    """One pass over (x, y) in shuffled mini-batches; see the module docstring for the modes.

    ``x``, ``y`` may live on the CPU or on ``device`` (batches are moved to ``device``);
    ``shuffle_generator`` is a CPU generator, ``noise_generator`` one on ``device`` (it also
    draws the adversarial modes' random starts). ``adversary`` (the training attack) is
    required for "pgd-at" and "trades" and must be None otherwise.
    """
    from tqdm.auto import tqdm

    check_choice("mode", mode, MODES)
    if (mode in ADVERSARIAL_MODES) != (adversary is not None):
        raise ValueError(f"adversary ({adversary!r}) must be given for modes 'pgd-at' and 'trades' only, "
                         f"not for mode {mode!r}" if adversary is not None else
                         f"mode {mode!r} needs adversary (its AdversarialSettings, TrainConfig.adversary)")
    device = torch.device(device)
    model.train()
    n = len(x)
    perm = torch.randperm(n, generator=shuffle_generator)
    sums = torch.zeros(4, dtype=torch.float64, device=device)  # loss, ce, stability, correct
    start_time = time.perf_counter()
    bar = tqdm(total=n, desc=f"epoch {epoch}", unit="img", disable=not progress, leave=False)
    try:
        for start in range(0, n, batch_size):
            idx = perm[start:start + batch_size].to(x.device)
            xb = x[idx].to(device, non_blocking=True)
            yb = y[idx].to(device, non_blocking=True)
            b = len(idx)
            loss, ce, stability, logits = _batch_loss(model, xb, yb, mode, sigma, gamma, adversary, noise_generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                correct = (logits.argmax(dim=1) == yb).sum()
                sums += torch.stack([loss.detach() * b, ce.detach() * b, stability.detach() * b,
                                     correct.to(sums.dtype)]).to(sums.dtype)
            bar.update(b)
            if progress and (start // batch_size) % 10 == 0:  # .item() synchronises a GPU: not every batch
                bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
    finally:
        bar.close()
    total_loss, total_ce, total_stab, total_correct = sums.tolist()
    if not math.isfinite(total_loss):  # checked once per epoch: .tolist() synchronised already
        raise TrainingDivergedError(f"training diverged in epoch {epoch}: the mean loss is {total_loss / n!r}; "
                                    "the model is unusable and is not returned (lower the learning rate or "
                                    "check the data)")
    return EpochStats(epoch=epoch, loss=total_loss / n, ce_loss=total_ce / n, stability_loss=total_stab / n,
                      train_accuracy=total_correct / n, seconds=time.perf_counter() - start_time)


def train(config: TrainConfig, *, device=None, progress: bool = True, trust_arch_import: bool = False) -> TrainResult:
    """Train ``config.arch`` on ``config.dataset``'s train split in mode ``config.mode``.

    Parameters
    ----------
    config : TrainConfig
    device : str or torch.device, optional
        ``None``/``"auto"`` picks CUDA when available.
    progress : bool
        Show a tqdm progress bar per epoch.
    trust_arch_import : bool, default False
        Allow ``config.arch`` to be an import path (importing runs that module's code); checked
        before the data are loaded.

    Returns
    -------
    TrainResult
        The model in eval mode on ``device``, the config and one ``EpochStats`` per epoch (each
        also logged at INFO level).
    """
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    check_arch_trust(config.arch, trust_arch_import)
    dev = resolve_device(device)
    data = load_dataset(config.dataset, "train", data_root=config.data_root)
    if data.num_classes != config.num_classes:
        raise ValueError(f"num_classes ({config.num_classes}) does not match dataset "
                         f"{config.dataset!r}, which has {data.num_classes} classes")
    x, y = data.x, data.y
    if config.max_train is not None:
        x, y = x[:config.max_train], y[:config.max_train]
    if dev.type == "cuda":  # MNIST is 0.2 GB, CIFAR-10 0.6 GB as float32: keep it on the GPU
        x, y = x.to(dev), y.to(dev)
    # independent seeds for the global RNG (initialisation, dropout), shuffling and noise
    global_seed, shuffle_seed, noise_seed = spawn_seeds(config.seed, 3)
    fork_devices = [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else []
    history = []
    logger.info("training %s on %s (%d images) in mode %r, sigma %g, gamma %g, %d epochs, device %s",
                config.arch, config.dataset, len(x), config.mode, config.sigma, config.gamma, config.epochs, dev)
    if config.adversary is not None:
        logger.info("training attack: %s%s", config.adversary.describe(),
                    f", beta {config.beta:g}" if config.mode == "trades" else "")
    with torch.random.fork_rng(devices=fork_devices, device_type="cuda"):
        torch.manual_seed(global_seed)
        model = build_model(config.arch, num_classes=config.num_classes, trust_arch_import=trust_arch_import).to(dev)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        shuffle_gen = torch.Generator().manual_seed(shuffle_seed)
        noise_gen = torch.Generator(device=dev).manual_seed(noise_seed)
        for epoch in range(1, config.epochs + 1):
            stats = train_epoch(model, optimizer, x, y, mode=config.mode, sigma=config.sigma, gamma=config.gamma,
                                batch_size=config.batch_size, shuffle_generator=shuffle_gen,
                                noise_generator=noise_gen, device=dev, epoch=epoch, progress=progress,
                                adversary=config.adversary)
            _check_finite_parameters(model, epoch)
            history.append(stats)
            logger.info("epoch %d/%d: loss %.4f (ce %.4f, %s %.4f), train accuracy %.4f, %.1f s",
                        epoch, config.epochs, stats.loss, stats.ce_loss,
                        "kl" if config.mode == "trades" else "stability", stats.stability_loss,
                        stats.train_accuracy, stats.seconds)
    model.eval()
    return TrainResult(model=model, config=config, history=tuple(history))


def evaluate_accuracy(model: nn.Module, data: DataSplit, *, sigma: float = 0.0, batch_size: int = 1000,
                      device=None, seed: int = 0) -> float:
    """Accuracy of ``model`` (in eval mode) on ``data``, with one N(0, sigma^2) draw per image if sigma > 0.

    This is the base classifier's accuracy under noise, not the smoothed classifier's. The
    train/eval flag of the model and of every submodule is restored afterwards (also on error).

    Raises
    ------
    ValueError
        Bad arguments, or the model returned non-finite (NaN/inf) logits for some image (the
        message names it): no accuracy is computed from them.
    """
    sigma = check_real("sigma", sigma, minimum=0.0, strict=False)
    batch_size = check_positive_int("batch_size", batch_size)
    if device is not None:
        dev = resolve_device(device)
    else:
        first = next(model.parameters(), None)
        dev = first.device if first is not None else torch.device("cpu")
    gen = torch.Generator(device=dev).manual_seed(check_positive_int("seed", seed, minimum=0))
    noise = f" with noise sigma {sigma:g}" if sigma > 0 else ""
    correct = 0
    with eval_mode(model), torch.inference_mode():
        for start in range(0, len(data), batch_size):
            xb = data.x[start:start + batch_size].to(dev)
            yb = data.y[start:start + batch_size].to(dev)
            if sigma > 0:
                xb = xb + sigma * torch.randn(xb.shape, generator=gen, device=dev, dtype=xb.dtype)
            logits = model(xb)
            check_finite_logits(logits, lambda row, start=start: (
                f"{data.split} example {start + row} of {len(data)}{noise}"))
            correct += int((logits.argmax(dim=1) == yb).sum())
    return correct / len(data)


def plain_epoch_seconds(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int, device=None,
                        steps: int = 3) -> float:
    """Estimated seconds of one plain epoch ("none") over (x, y): ``steps`` timed plain training steps, scaled.

    The steps run on a copy of ``model`` (train mode, fresh Adam), after one untimed warm-up
    step, on the first ``steps`` batches of ``batch_size``; the median time per image times
    ``len(x)`` is returned. Used to put an epoch of another mode in plain-epoch units.
    """
    import copy

    batch_size = check_positive_int("batch_size", batch_size)
    steps = check_positive_int("steps", steps)
    dev = resolve_device(device)
    twin = copy.deepcopy(model).to(dev).train()
    optimizer = torch.optim.Adam(twin.parameters(), lr=1e-3)
    per_image = []
    for i in range(steps + 1):
        start = (i * batch_size) % max(len(x), 1)
        xb, yb = x[start:start + batch_size].to(dev), y[start:start + batch_size].to(dev)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(twin(xb), yb).backward()
        optimizer.step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        if i > 0:  # the first step warms up allocators and kernels
            per_image.append((time.perf_counter() - t0) / len(xb))
    per_image.sort()
    return per_image[len(per_image) // 2] * len(x)


def adversarial_accuracy(model: nn.Module, data: DataSplit, adversary: AdversarialSettings, *,
                         batch_size: int = 500, device=None, seed: int = 0) -> float:
    """Accuracy of ``model`` (no noise) on PGD examples: the cross-entropy PGD of :func:`pgd_at_examples`.

    The attack is ``adversary``'s norm, eps, steps and step size from a uniform random start
    (drawn from a generator seeded with ``seed``), whatever mode trained the model: it is the
    usual evaluation of PGD-AT and TRADES models (the official ``pgd_attack_mnist.py`` of TRADES
    attacks with CE, eps 0.3, 40 steps of 0.01, random start). An example counts if the model is
    correct at its PGD example. The model's train/eval flags are restored.
    """
    if not isinstance(adversary, AdversarialSettings):
        raise ValueError(f"adversary must be an AdversarialSettings, got {type(adversary).__name__}")
    batch_size = check_positive_int("batch_size", batch_size)
    if device is not None:
        dev = resolve_device(device)
    else:
        first = next(model.parameters(), None)
        dev = first.device if first is not None else torch.device("cpu")
    gen = torch.Generator(device=dev).manual_seed(check_positive_int("seed", seed, minimum=0))
    correct = 0
    with eval_mode(model):
        for start in range(0, len(data), batch_size):
            xb, yb = data.x[start:start + batch_size].to(dev), data.y[start:start + batch_size].to(dev)
            x_adv = pgd_at_examples(model, xb, yb, adversary, gen)
            with torch.no_grad():
                correct += int((model(x_adv).argmax(dim=1) == yb).sum())
    return correct / len(data)


# ------------------------------------------------------------------------------------ checkpoints

_PLAIN = (str, int, float, bool, type(None))


def save_checkpoint(path, model: nn.Module, config) -> Path:
    """Write ``{"state_dict", "config", "format": "renyi_cert/1"}`` to ``path`` atomically (parents created).

    ``config`` is a ``TrainConfig`` or a plain dict with at least ``arch`` (str) and
    ``num_classes`` (int), only str/int/float/bool/None values and only ``TrainConfig`` keys,
    valid by :func:`check_config_dict` (so that :func:`load_checkpoint` accepts the file).
    Tensors are saved on the CPU. The file is written to a temporary name in the same folder and
    renamed over ``path`` only when complete: a failure or an interrupt leaves ``path`` as it was.

    Raises
    ------
    ValueError
        An invalid config, or a ``path`` that cannot be written (a folder, under a file, in a
        read-only folder; checked before anything is written).
    """
    cfg = config.to_dict() if isinstance(config, TrainConfig) else config
    if not isinstance(cfg, dict):
        raise ValueError(f"config must be a TrainConfig or a dict, got {type(config).__name__}")
    for k, v in cfg.items():
        if not isinstance(k, str) or not isinstance(v, _PLAIN):
            raise ValueError(f"config entry {k!r} ({v!r}) must have a str key and a str/int/float/bool/None value")
    if not isinstance(cfg.get("arch"), str) or isinstance(cfg.get("num_classes"), bool) \
            or not isinstance(cfg.get("num_classes"), int):
        raise ValueError("config must contain 'arch' (str) and 'num_classes' (int) to rebuild the model")
    try:
        cfg = check_config_dict(cfg)
    except ValueError as exc:
        raise ValueError(f"config is invalid: {exc}") from None
    path = check_output_path(path, name="path")
    state = {k: v.detach().to("cpu") for k, v in model.state_dict().items()}
    with atomic_output(path) as tmp:
        torch.save({"state_dict": state, "config": cfg, "format": CHECKPOINT_FORMAT}, tmp)
    return path


def _read_checkpoint(path: Path, map_location) -> tuple[dict, dict]:
    """The weights and the validated config of a checkpoint file (see :func:`load_checkpoint`)."""
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist (or is not a file)")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except OSError:
        raise
    except Exception as exc:  # torch.load raises many types for foreign or hostile files
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "Weights only load failed" in str(exc):
            reason = ("it contains objects other than tensors and plain containers, which "
                      "torch.load(weights_only=True) refuses to unpickle")
        else:
            reason = f"torch.load cannot read it ({type(exc).__name__}: {first_line})"
        raise ValueError(f"{str(path)!r} is not a renyi_cert checkpoint: {reason}") from exc
    if not isinstance(obj, dict) or "format" not in obj:
        raise ValueError(f"{str(path)!r} is not a renyi_cert checkpoint: expected a dict with a 'format' "
                         f"entry {CHECKPOINT_FORMAT!r}, got {type(obj).__name__}"
                         + (f" with keys {sorted(map(str, obj))}" if isinstance(obj, dict) else ""))
    if obj["format"] != CHECKPOINT_FORMAT:
        raise ValueError(f"{str(path)!r}: unsupported checkpoint format {obj['format']!r} "
                         f"(this version reads {CHECKPOINT_FORMAT!r})")
    state, cfg = obj.get("state_dict"), obj.get("config")
    if not isinstance(state, dict) or not isinstance(cfg, dict):
        raise ValueError(f"{str(path)!r} is not a valid renyi_cert checkpoint: 'state_dict' and 'config' must be dicts")
    if not isinstance(cfg.get("arch"), str) or "num_classes" not in cfg:
        raise ValueError(f"{str(path)!r}: the checkpoint's config must name 'arch' (str) and 'num_classes' (int), "
                         f"got arch={cfg.get('arch')!r}, num_classes={cfg.get('num_classes')!r}")
    try:
        cfg = check_config_dict(cfg)
    except ValueError as exc:
        raise ValueError(f"{str(path)!r}: the checkpoint's config is invalid: {exc}") from None
    return state, cfg


def load_checkpoint(path, map_location="cpu", *, trust_arch_import: bool = False) -> tuple[nn.Module, dict]:
    """Load a checkpoint written by :func:`save_checkpoint` without running code from it.

    The file is read with ``torch.load(..., weights_only=True)`` (no arbitrary objects are
    unpickled); its config is validated by :func:`check_config_dict` (the rules of
    :class:`TrainConfig`; unknown keys are refused); and an ``arch`` that is an import path is
    refused -- before anything is imported -- unless ``trust_arch_import`` is True, since
    importing the module it names would run that module's code.

    Parameters
    ----------
    path : str or path-like
    map_location : str, torch.device or callable, default "cpu"
        As in ``torch.load``; the model is moved there when it is a device.
    trust_arch_import : bool, default False
        Allow the checkpoint's ``arch`` to be an import path ``"package.module:ClassName"``.

    Returns
    -------
    (model, config) : the rebuilt model in eval mode (moved to ``map_location`` when it is a
        device) and the saved config dict (values normalised, e.g. ``sigma`` as float).

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        The file is not a renyi_cert checkpoint (not a torch file, refused by the weights-only
        unpickler because it holds arbitrary objects, wrong structure or format tag), its config
        is invalid (the message names the path, the key and the value), its arch is an import
        path and ``trust_arch_import`` is False, or its weights do not match the architecture its
        config names.
    """
    path = Path(path)
    state, cfg = _read_checkpoint(path, map_location)
    arch, num_classes = cfg["arch"], cfg["num_classes"]
    check_arch_trust(arch, trust_arch_import, checkpoint=path)
    model = build_model(arch, num_classes=num_classes, trust_arch_import=trust_arch_import)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{str(path)!r}: the saved weights do not match architecture {arch!r} "
                         f"with {num_classes} classes: {exc}") from exc
    if isinstance(map_location, (str, torch.device)):
        model.to(map_location)
    model.eval()
    return model, cfg
