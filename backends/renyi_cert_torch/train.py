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

from .data import DATASETS, DataSplit, load_dataset
from .devices import resolve_device
from .models import build_model, check_arch, check_arch_trust
from .modes import eval_mode
from .smoothing import check_finite_logits, warn_if_sigma_off_scale

__all__ = ["MODES", "DEFAULT_GAMMA", "CHECKPOINT_FORMAT", "PAPER_SIGMA", "DEFAULT_ARCH", "check_config_dict",
           "TrainConfig", "EpochStats", "TrainResult", "stn_loss", "train_epoch", "train", "evaluate_accuracy",
           "save_checkpoint", "load_checkpoint", "TrainingDivergedError"]

logger = logging.getLogger(__name__)

MODES = ("stn", "gaussian", "none")
DEFAULT_GAMMA = 1.0
CHECKPOINT_FORMAT = "renyi_cert/1"
# The paper's training noise levels (section 6): MNIST sigma = 0.7, CIFAR-10 sigma = 100/255.
PAPER_SIGMA = {"mnist": 0.7, "mnist5k": 0.7, "cifar10": 100.0 / 255.0}
DEFAULT_ARCH = {"mnist": "mnist_cnn", "mnist5k": "mnist_cnn", "cifar10": "cifar_cnn7"}


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
    known names, ...), and when both ``mode`` and ``sigma`` are given, ``sigma`` must be > 0
    for ``"stn"`` and ``"gaussian"``. Missing keys are not filled in. Nothing is imported (an
    import-path ``arch`` is only checked for its form).

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
    if "mode" in out and out.get("sigma") is not None and out["mode"] != "none" and out["sigma"] == 0.0:
        raise ValueError(f"sigma ({out['sigma']!r}) must be > 0 for mode {out['mode']!r}")
    return out


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
    mode : {"stn", "gaussian", "none"}
    sigma : float, optional
        Training noise standard deviation in [0, 1] pixel units, >= 0; must be > 0 for "stn"
        and "gaussian". Default: the paper's value for the dataset (0.7 MNIST, 100/255 CIFAR-10)
        for "stn"/"gaussian", 0.0 for "none" (a sigma > 0 with "none" is recorded but unused,
        with a ``UserWarning``; a sigma > 2, likely meant in 0..255 units, warns too).
    gamma : float, optional
        Weight of the stability term (>= 0); default ``DEFAULT_GAMMA`` for "stn", 0.0 otherwise
        (a gamma > 0 outside "stn" is recorded but unused, with a ``UserWarning``).
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
            values["sigma"] = 0.0 if values["mode"] == "none" else PAPER_SIGMA[values["dataset"]]
        if values["gamma"] is None:
            values["gamma"] = DEFAULT_GAMMA if values["mode"] == "stn" else 0.0
        for name, value in values.items():
            object.__setattr__(self, name, value)  # frozen dataclass: normalised values
        if self.mode == "none" and self.sigma > 0.0:
            warnings.warn(f"mode 'none' trains without noise: sigma ({self.sigma:g}) is recorded but not used",
                          UserWarning, stacklevel=3)
        if self.mode != "stn" and self.gamma > 0.0:
            warnings.warn(f"gamma ({self.gamma:g}) is used only by mode 'stn'; mode {self.mode!r} ignores it",
                          UserWarning, stacklevel=3)
        warn_if_sigma_off_scale(self.sigma, stacklevel=4)

    def to_dict(self) -> dict:
        """A plain dict (str, int, float, None values) for checkpoints and logs."""
        return asdict(self)

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


@dataclass(frozen=True)
class EpochStats:
    """Averages over one epoch (weighted by batch size).

    ``loss`` is the training objective; ``ce_loss`` its cross-entropy part; ``stability_loss``
    the STN term D (0.0 in the other modes). ``train_accuracy`` is the accuracy of the
    predictions the CE term is computed on: clean inputs for "stn"/"none", noisy for "gaussian"
    (with dropout active, as during training). ``seconds`` is wall-clock time.
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


class TrainingDivergedError(ValueError):
    """Training produced a non-finite loss or non-finite weights: there is no model to save."""


def _check_finite_parameters(model: nn.Module, epoch: int) -> None:
    """Raise :class:`TrainingDivergedError` naming the first parameter with a NaN or infinite entry."""
    for name, param in model.named_parameters():
        if not bool(torch.isfinite(param).all()):
            raise TrainingDivergedError(f"training diverged in epoch {epoch}: parameter {name!r} holds non-finite "
                                        "values; the model is unusable and is not returned (lower the learning "
                                        "rate or check the data)")


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, *,
                mode: str, sigma: float, gamma: float, batch_size: int, shuffle_generator: torch.Generator,
                noise_generator: torch.Generator, device, epoch: int = 1, progress: bool = False) -> EpochStats:
    """One pass over (x, y) in shuffled mini-batches; see the module docstring for the modes.

    ``x``, ``y`` may live on the CPU or on ``device`` (batches are moved to ``device``);
    ``shuffle_generator`` is a CPU generator, ``noise_generator`` one on ``device``.
    """
    from tqdm.auto import tqdm

    check_choice("mode", mode, MODES)
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
            if mode == "none":
                logits = model(xb)
                ce = F.cross_entropy(logits, yb)
                loss, stability = ce, torch.zeros((), device=device)
            else:
                noise = torch.randn(xb.shape, generator=noise_generator, device=device, dtype=xb.dtype)
                x_noisy = xb + sigma * noise  # [0, 1] pixel units, not clipped
                if mode == "gaussian":
                    logits = model(x_noisy)
                    ce = F.cross_entropy(logits, yb)
                    loss, stability = ce, torch.zeros((), device=device)
                else:
                    both = model(torch.cat([xb, x_noisy]))
                    logits, logits_noisy = both[:b], both[b:]
                    loss, ce, stability = stn_loss(logits, logits_noisy, yb, gamma)
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
    with torch.random.fork_rng(devices=fork_devices, device_type="cuda"):
        torch.manual_seed(global_seed)
        model = build_model(config.arch, num_classes=config.num_classes, trust_arch_import=trust_arch_import).to(dev)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        shuffle_gen = torch.Generator().manual_seed(shuffle_seed)
        noise_gen = torch.Generator(device=dev).manual_seed(noise_seed)
        for epoch in range(1, config.epochs + 1):
            stats = train_epoch(model, optimizer, x, y, mode=config.mode, sigma=config.sigma, gamma=config.gamma,
                                batch_size=config.batch_size, shuffle_generator=shuffle_gen,
                                noise_generator=noise_gen, device=dev, epoch=epoch, progress=progress)
            _check_finite_parameters(model, epoch)
            history.append(stats)
            logger.info("epoch %d/%d: loss %.4f (ce %.4f, stability %.4f), train accuracy %.4f, %.1f s",
                        epoch, config.epochs, stats.loss, stats.ce_loss, stats.stability_loss,
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
