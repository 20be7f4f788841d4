"""The models stage: train each (mode, sigma) model once and reuse its checkpoint afterwards."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from renyi_cert._files import atomic_write_text, file_sha256

from .context import Run
from .plan import Plan


@dataclass(frozen=True)
class TrainedModel:
    """A trained base classifier, its checkpoint's SHA-256 (the cache key of its results) and its training config."""

    model: Any
    sha256: str
    config: dict
    path: Path | None = None  # the checkpoint file (workers of --nproc load it)


def main_sigma(plan: Plan) -> float:
    """The entry of ``plan.sigmas`` that is the paper's main sigma (Table 1, Figure 2, cross-check)."""
    return next(s for s in plan.sigmas if math.isclose(s, plan.main_sigma, rel_tol=1e-9))


def train_config(plan: Plan, mode: str, sigma: float, data_root):
    """The :class:`renyi_cert_torch.train.TrainConfig` of ``mode`` at training noise ``sigma``.

    PGD-AT and TRADES (no noise) train ``plan.adv_epochs`` epochs on at most ``plan.adv_max_train``
    examples against the published l_inf attack with ``plan.adv_attack_steps`` steps (step size
    2.5 eps / steps unless the steps are the published ones), and the published TRADES beta.
    """
    from renyi_cert_torch.train import ADVERSARIAL_MODES, NOISY_MODES, TrainConfig

    root = None if data_root is None else str(data_root)
    if mode in ADVERSARIAL_MODES:
        return TrainConfig(dataset=plan.dataset, mode=mode, attack_steps=plan.adv_attack_steps, epochs=plan.adv_epochs,
                           batch_size=plan.batch_size, seed=plan.seed, max_train=plan.adv_max_train, data_root=root)
    return TrainConfig(dataset=plan.dataset, mode=mode, sigma=sigma if mode in NOISY_MODES else 0.0,
                       epochs=plan.epochs, batch_size=plan.batch_size, seed=plan.seed, max_train=plan.max_train,
                       data_root=root)


def checkpoint_path(run: Run, mode: str, sigma: float) -> Path:
    """Where the checkpoint of ``mode`` at ``sigma`` is kept (its training record next to it, .json)."""
    noisy = mode in ("stn", "gaussian")
    return run.work / "ckpt" / (f"{mode}-sigma{sigma:.4g}.pt" if noisy else f"{mode}.pt")


def _reuse(run: Run, path: Path, want: dict) -> TrainedModel | None:
    """The saved model at ``path`` if its training config is ``want`` (its training time recorded)."""
    from renyi_cert_torch.train import load_checkpoint

    if not path.is_file():
        return None
    try:
        model, saved = load_checkpoint(path, map_location=run.device)
    except (ValueError, OSError):
        return None
    if saved != want:
        return None
    sha = file_sha256(path)
    try:  # the training time recorded next to the checkpoint when it was trained
        info = json.loads(path.with_suffix(".json").read_text())
        if info.get("sha256") == sha:
            run.stages.record(f"train {path.stem}", float(info["seconds"]), True)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    print(f"[train {path.stem}] reusing {path}", flush=True)
    return TrainedModel(model, sha, saved, path)


def get_model(run: Run, mode: str, sigma: float) -> TrainedModel:
    """Train ``mode`` at ``sigma``, or reuse the checkpoint trained with the same config."""
    from renyi_cert_torch.train import save_checkpoint, train

    config = train_config(run.plan, mode, sigma, run.data_root)
    path = checkpoint_path(run, mode, sigma)
    reused = _reuse(run, path, config.to_dict())
    if reused is not None:
        return reused
    print(f"[train {path.stem}] training ...", flush=True)
    t0 = time.perf_counter()
    result = train(config, device=run.device, progress=run.progress)
    seconds = time.perf_counter() - t0
    save_checkpoint(path, result.model, config)
    sha = file_sha256(path)
    accuracy = result.history[-1].train_accuracy
    atomic_write_text(path.with_suffix(".json"), json.dumps(
        {"sha256": sha, "seconds": seconds, "train_accuracy": accuracy}))
    run.stages.record(f"train {path.stem}", seconds, False)
    print(f"[train {path.stem}] {seconds:.0f} s, train accuracy {accuracy:.3f}", flush=True)
    return TrainedModel(result.model, sha, config.to_dict(), path)


def train_models(run: Run) -> dict:
    """``{(mode, sigma): TrainedModel}``: STN and Gaussian augmentation at every sigma, and the
    undefended, PGD-AT and TRADES models under ``("none", 0.0)``, ``("pgd-at", 0.0)``, ``("trades", 0.0)``."""
    models = {}
    for sigma in run.plan.sigmas:
        for mode in ("stn", "gaussian"):
            models[(mode, sigma)] = get_model(run, mode, sigma)
    for mode in ("none", "pgd-at", "trades"):
        models[(mode, 0.0)] = get_model(run, mode, 0.0)
    return models
