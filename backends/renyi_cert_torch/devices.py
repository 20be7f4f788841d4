"""Device selection, shared by training, the smoothed classifier and the command-line tools."""

from __future__ import annotations

import torch

DEVICES = ("auto", "cpu", "cuda")

__all__ = ["DEVICES", "resolve_device", "model_device", "check_generator"]


def resolve_device(device=None) -> torch.device:
    """The torch device to use.

    ``None`` or ``"auto"`` -> CUDA when available, else CPU; otherwise ``"cpu"``, ``"cuda"``,
    ``"cuda:1"`` or a ``torch.device``.

    Raises
    ------
    ValueError
        For an unknown device string, or CUDA requested when it is not available.
    """
    if isinstance(device, torch.device):
        dev = device
    elif device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError):
            raise ValueError(
                f"device ({device!r}) must be one of {', '.join(map(repr, DEVICES))} "
                "or a torch device string such as 'cuda:0'"
            ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device ({str(device)!r}) was requested but CUDA is not available on this machine")
    return dev


def model_device(model: torch.nn.Module, device=None) -> torch.device:
    """``device`` resolved (:func:`resolve_device`) if given, else the device of ``model``'s first
    parameter (the CPU for a model without parameters)."""
    if device is not None:
        return resolve_device(device)
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def check_generator(generator, device, *, create: bool = False) -> torch.Generator | None:
    """A ``torch.Generator`` for drawing noise on ``device``, checked.

    Parameters
    ----------
    generator : torch.Generator or None
        Must live on the same device type as ``device``.
    device : torch.device or str
    create : bool
        For ``generator=None``: return a fresh generator on ``device`` seeded from OS entropy
        (True), or None, meaning torch's default generator (False).

    Raises
    ------
    ValueError
        For anything but a ``torch.Generator`` or None, or a generator on another device type.
    """
    device = torch.device(device)
    if generator is None:
        if not create:
            return None
        fresh = torch.Generator(device=device)
        fresh.seed()
        return fresh
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator ({generator!r}) must be a torch.Generator on {device} or None "
                         "(torch.Generator(device=...).manual_seed(seed) builds one)")
    if generator.device.type != device.type:
        raise ValueError(f"generator is on device {generator.device} but the data is on {device}; "
                         "create it with torch.Generator(device=...)")
    return generator
