"""Device selection, shared by training, the smoothed classifier and the command-line tools."""

from __future__ import annotations

import torch

DEVICES = ("auto", "cpu", "cuda")


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
