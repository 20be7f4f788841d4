"""Switching a model to eval mode for a while, and putting every train/eval flag back afterwards.

Certification, attacks and accuracy evaluation all run the base classifier in eval mode (dropout
off, batch-norm on its running statistics) and must leave the caller's model as they found it:
:func:`eval_mode` records the ``training`` flag of *every* submodule (a parent in train mode may
hold a child in eval mode, e.g. a frozen feature extractor) and restores each one, also when the
block raises.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from torch import nn

__all__ = ["eval_mode"]


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` and all its submodules in eval mode for the block; restore every flag afterwards.

    Parameters
    ----------
    model : torch.nn.Module

    Yields
    ------
    torch.nn.Module
        ``model`` itself, in eval mode.

    Examples
    --------
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(2, 2), nn.Dropout()).train()
    >>> net[0].eval()  # doctest: +ELLIPSIS
    Linear(...)
    >>> with eval_mode(net):
    ...     print(net.training, net[1].training)
    False False
    >>> net.training, net[0].training, net[1].training
    (True, False, True)
    """
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in flags:
            module.training = training
