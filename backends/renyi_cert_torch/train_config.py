"""The training configuration: :class:`TrainConfig`, its defaults and the validation rules it shares with checkpoints.

A run is determined by a :class:`TrainConfig` (dataset, architecture, mode, noise level,
stability weight, training attack, optimiser settings, seed). The modes (``MODES``) are
described in :mod:`renyi_cert_torch.train`; ``NOISY_MODES`` train on x + N(0, sigma^2 I) and
need sigma > 0; ``ADVERSARIAL_MODES`` train on attack examples and carry the ``attack_*``
settings (:mod:`renyi_cert_torch.adversarial`).

Defaults: sigma is the paper's training noise level (``PAPER_SIGMA``, section 6: MNIST 0.7,
CIFAR-10 100/255) in the noisy modes and 0 otherwise; gamma is ``DEFAULT_GAMMA`` = 1 for
"stn" (measured in :mod:`renyi_cert_torch.train`) and 0 otherwise; the architecture is the
paper's network for the dataset (``DEFAULT_ARCH``); the attack settings of "pgd-at" and
"trades" are the published ones
(:data:`~renyi_cert_torch.adversarial.PUBLISHED_ATTACKS`).

:func:`check_config_dict` holds the rules, one validator per field plus the rules across
fields; :class:`TrainConfig` applies them on construction, and
:func:`~renyi_cert_torch.checkpoints.load_checkpoint` to a checkpoint's saved config (unknown
keys are refused). Nothing here imports code named by an import-path ``arch``.
"""

from __future__ import annotations

import os
import warnings
from typing import Any
from dataclasses import asdict, dataclass, fields

from renyi_cert._validate import check_choice, check_positive_int, check_real

from .adversarial import PUBLISHED_ATTACKS, AdversarialSettings
from .attacks import NORMS
from .data import DATASETS
from .models import check_arch
from .smoothing import warn_if_sigma_off_scale

__all__ = ["MODES", "NOISY_MODES", "ADVERSARIAL_MODES", "DEFAULT_GAMMA", "PAPER_SIGMA", "DEFAULT_ARCH",
           "check_config_dict", "TrainConfig"]


MODES = ("stn", "gaussian", "none", "pgd-at", "trades")
NOISY_MODES = ("stn", "gaussian")          # train on x + N(0, sigma^2 I): need sigma > 0
ADVERSARIAL_MODES = ("pgd-at", "trades")   # train on PGD examples: carry the attack_* settings
DEFAULT_GAMMA = 1.0
# The paper's training noise levels (section 6): MNIST sigma = 0.7, CIFAR-10 sigma = 100/255.
PAPER_SIGMA = {"mnist": 0.7, "mnist5k": 0.7, "cifar10": 100.0 / 255.0}
DEFAULT_ARCH = {"mnist": "mnist_cnn", "mnist5k": "mnist_cnn", "cifar10": "cifar_cnn7"}
#: The training noises of "stn" and "gaussian" (renyi_cert.noise.NOISES); sigma is their scale.
NOISE_NAMES = ("gaussian", "laplace", "uniform")


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
    "noise": lambda v: None if v is None else check_choice("noise", v, NOISE_NAMES),
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
        checked here (nothing is imported); :func:`~renyi_cert_torch.train.train` builds an
        import path only with ``trust_arch_import=True``.
    mode : {"stn", "gaussian", "none", "pgd-at", "trades"}
    sigma : float, optional
        Training noise standard deviation in [0, 1] pixel units, >= 0 (with ``noise``, that
        noise's scale); must be > 0 for "stn" and "gaussian". Default: the paper's value for the dataset (0.7 MNIST, 100/255 CIFAR-10)
        for "stn"/"gaussian", 0.0 for "none", "pgd-at" and "trades" (a sigma > 0 with those is
        recorded but unused, with a ``UserWarning``; a sigma > 2, likely meant in 0..255 units,
        warns too).
    noise : {"gaussian", "laplace", "uniform"}, optional
        The noise of "stn" and "gaussian" (the name "gaussian" for the mode is historical: it is
        noise augmentation with any of these), ``sigma`` its scale (Laplace scale b, uniform half
        width); default "gaussian". Recorded in ``to_dict`` only when it is not "gaussian".
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
    noise: str | None = None
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
        if values["noise"] not in (None, "gaussian") and values["mode"] not in NOISY_MODES:
            raise ValueError(f"noise ({values['noise']!r}) is used only by the noisy modes "
                             f"({', '.join(NOISY_MODES)}), not by mode {values['mode']!r}")
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
        return {k: v for k, v in asdict(self).items()
                if (v is not None or k not in _ATTACK_FIELDS + ("beta", "noise")) and (k, v) != ("noise", "gaussian")}

    @property
    def training_noise(self) -> Any:
        """The :mod:`renyi_cert.noise` noise of the noisy modes at scale ``sigma`` (None for the others)."""
        from renyi_cert.noise import NOISES

        if self.mode not in NOISY_MODES:
            return None
        return NOISES[self.noise or "gaussian"](self.sigma)

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
