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
    Adversarial training (Madry et al., ICLR 2018): ``L = CE(f(x_adv), y)`` with x_adv from PGD
    on CE(f(.), y) (:func:`~renyi_cert_torch.adversarial.pgd_at_examples`).
``"trades"``
    TRADES (Zhang et al., ICML 2019): ``L = CE(f(x), y) + beta * KL(softmax(f(x)) ||
    softmax(f(x_adv)))`` (:func:`~renyi_cert_torch.adversarial.trades_loss`, with x_adv from
    :func:`~renyi_cert_torch.adversarial.trades_examples`).

The adversarial modes train without noise; their attacks, losses, published default settings
and sources are described in :mod:`renyi_cert_torch.adversarial`.

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

This module is the training loop. The configuration (:class:`~renyi_cert_torch.train_config.TrainConfig`,
its defaults and validation) is :mod:`renyi_cert_torch.train_config`; the adversarial training
pieces are :mod:`renyi_cert_torch.adversarial`; checkpoints
(:func:`~renyi_cert_torch.checkpoints.save_checkpoint`,
:func:`~renyi_cert_torch.checkpoints.load_checkpoint`) are :mod:`renyi_cert_torch.checkpoints`.
Their public names are re-exported here (``from renyi_cert_torch.train import TrainConfig,
load_checkpoint`` works).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from renyi_cert._validate import check_choice, check_positive_int, check_real
from renyi_cert.seeds import spawn_seeds

from .adversarial import (PUBLISHED_ATTACKS, TRADES_START_STD, AdversarialSettings, adversarial_accuracy,
                          pgd_at_examples, trades_examples, trades_loss)
from .checkpoints import CHECKPOINT_FORMAT, load_checkpoint, save_checkpoint
from .data import DataSplit, load_dataset
from .devices import model_device, resolve_device
from .models import build_model, check_arch_trust
from .modes import eval_mode
from .smoothing import check_finite_logits, draw_noise
from .train_config import (ADVERSARIAL_MODES, DEFAULT_ARCH, DEFAULT_GAMMA, MODES, NOISY_MODES, PAPER_SIGMA,
                           TrainConfig, check_config_dict)

__all__ = ["MODES", "NOISY_MODES", "ADVERSARIAL_MODES", "DEFAULT_GAMMA", "CHECKPOINT_FORMAT", "PAPER_SIGMA",
           "DEFAULT_ARCH", "PUBLISHED_ATTACKS", "TRADES_START_STD", "check_config_dict", "TrainConfig",
           "AdversarialSettings", "EpochStats", "TrainResult", "stn_loss", "trades_loss", "pgd_at_examples",
           "trades_examples", "nominal_step_cost", "plain_epoch_seconds", "train_epoch", "train",
           "evaluate_accuracy", "adversarial_accuracy", "save_checkpoint", "load_checkpoint",
           "TrainingDivergedError"]

logger = logging.getLogger(__name__)


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


def _batch_loss(model: nn.Module, xb: torch.Tensor, yb: torch.Tensor, mode: str, sigma: Any, gamma: float,
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
    x_noisy = xb + _training_noise(xb, sigma, generator)  # [0, 1] pixel units, not clipped
    if mode == "gaussian":
        logits = model(x_noisy)
        ce = F.cross_entropy(logits, yb)
        return ce, ce, zero, logits
    both = model(torch.cat([xb, x_noisy]))
    logits = both[:len(xb)]
    return (*stn_loss(logits, both[len(xb):], yb, gamma), logits)


def _training_noise(xb: torch.Tensor, sigma: Any, generator: torch.Generator) -> torch.Tensor:
    """Noise for the batch ``xb``: ``sigma`` * N(0, I) for a number or Gaussian noise (the draws of
    every earlier version), else a :mod:`renyi_cert.noise` noise drawn by
    :func:`renyi_cert_torch.smoothing.draw_noise`."""
    if getattr(sigma, "name", "gaussian") == "gaussian":
        scale = float(getattr(sigma, "sigma", sigma))
        return scale * torch.randn(xb.shape, generator=generator, device=xb.device, dtype=xb.dtype)
    return draw_noise(torch.empty_like(xb), sigma, generator)


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, *,
                mode: str, sigma: Any, gamma: float, batch_size: int, shuffle_generator: torch.Generator,
                noise_generator: torch.Generator, device, epoch: int = 1, progress: bool = False,
                adversary: AdversarialSettings | None = None) -> EpochStats:
    """One pass over (x, y) in shuffled mini-batches; see the module docstring for the modes.

    ``sigma`` is the noisy modes' Gaussian noise level, or a :mod:`renyi_cert.noise` noise
    (``Laplace(b)``, ``Uniform(lambda)``) to train with instead.

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
            noise = config.training_noise if config.training_noise is not None else config.sigma
            stats = train_epoch(model, optimizer, x, y, mode=config.mode, sigma=noise, gamma=config.gamma,
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


def evaluate_accuracy(model: nn.Module, data: DataSplit, *, sigma: Any = 0.0, batch_size: int = 1000,
                      device=None, seed: int = 0) -> float:
    """Accuracy of ``model`` (in eval mode) on ``data``, with one N(0, sigma^2) draw per image if sigma > 0
    (or one draw of ``sigma``, a :mod:`renyi_cert.noise` noise).

    This is the base classifier's accuracy under noise, not the smoothed classifier's. The
    train/eval flag of the model and of every submodule is restored afterwards (also on error).

    Raises
    ------
    ValueError
        Bad arguments, or the model returned non-finite (NaN/inf) logits for some image (the
        message names it): no accuracy is computed from them.
    """
    if not hasattr(sigma, "name"):  # a number; a noise was checked when it was made
        sigma = check_real("sigma", sigma, minimum=0.0, strict=False)
    noisy = hasattr(sigma, "name") or sigma > 0
    batch_size = check_positive_int("batch_size", batch_size)
    dev = model_device(model, device)
    gen = torch.Generator(device=dev).manual_seed(check_positive_int("seed", seed, minimum=0))
    noise = (f" with noise {sigma}" if hasattr(sigma, "name") else f" with noise sigma {sigma:g}") if noisy else ""
    correct = 0
    with eval_mode(model), torch.inference_mode():
        for start in range(0, len(data), batch_size):
            xb = data.x[start:start + batch_size].to(dev)
            yb = data.y[start:start + batch_size].to(dev)
            if noisy:
                xb = xb + _training_noise(xb, sigma, gen)
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
