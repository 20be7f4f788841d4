"""Model checkpoints: :func:`save_checkpoint` and :func:`load_checkpoint`, which runs no code from the file.

Checkpoints are ``{"state_dict": ..., "config": {...}, "format": "renyi_cert/1"}`` written by
``torch.save`` to a temporary file that is renamed over the final name when complete (a crash
never leaves a truncated checkpoint). ``load_checkpoint`` reads them with
``torch.load(..., weights_only=True)``, validates the config with the same rules as
:class:`~renyi_cert_torch.train_config.TrainConfig`
(:func:`~renyi_cert_torch.train_config.check_config_dict`; unknown keys are refused), and
builds the model by an import path only with ``trust_arch_import=True`` (importing a module
runs its code). The file holds only tensors and plain containers (the config as a dict of
str/int/float/bool/None values), no pickled classes, so it does not depend on where in the
package any class is defined.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from renyi_cert._files import atomic_output, check_output_path

from .models import build_model, check_arch_trust
from .train_config import TrainConfig, check_config_dict

__all__ = ["CHECKPOINT_FORMAT", "save_checkpoint", "load_checkpoint"]


CHECKPOINT_FORMAT = "renyi_cert/1"
_PLAIN = (str, int, float, bool, type(None))


def save_checkpoint(path, model: nn.Module, config) -> Path:
    """Write ``{"state_dict", "config", "format": "renyi_cert/1"}`` to ``path`` atomically (parents created).

    ``config`` is a ``TrainConfig`` or a plain dict with at least ``arch`` (str) and
    ``num_classes`` (int), only str/int/float/bool/None values and only ``TrainConfig`` keys,
    valid by :func:`~renyi_cert_torch.train_config.check_config_dict` (so that
    :func:`load_checkpoint` accepts the file).
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
    unpickled); its config is validated by
    :func:`~renyi_cert_torch.train_config.check_config_dict` (the rules of
    :class:`~renyi_cert_torch.train_config.TrainConfig`; unknown keys are refused); and an
    ``arch`` that is an import path is refused -- before anything is imported -- unless
    ``trust_arch_import`` is True, since importing the module it names would run that module's
    code.

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
