"""The paper's base classifiers (Li, Chen, Wang & Carin, NeurIPS 2019, section 6).

Every model takes pixels in [0, 1] (shape (N, C, H, W)) and returns logits (N, num_classes).
The Gaussian noise of randomized smoothing is added in that [0, 1] pixel space; any
normalisation is the model's first layer (:class:`Normalize`, with its mean and standard
deviation stored as buffers so that they travel with the ``state_dict``).

Architectures (``ARCHITECTURES``):

``"mnist_cnn"`` (:class:`MnistCNN`)
    The paper's MNIST network: two 5x5 convolutions with 64 filters (no padding, ReLU),
    2x2 max-pooling, dropout 0.25, a 128-unit dense layer (ReLU), dropout 0.5, and a
    dense output layer. 28x28 -> 24 -> 20 -> pooled 10, so the dense layer sees 64*10*10.
    This is the layout of the Keras ``mnist_cnn`` example with 64 filters of size 5x5.

``"cifar_cnn7"`` (:class:`CifarCNN7`)
    The paper's "seven-layer CNN with max-pooling" is not specified further; we use the
    VGG-like stack 64-64-pool-128-128-pool-256-256-256-pool of seven 3x3 convolutions
    (padding 1, ReLU), then dropout 0.5, a 256-unit dense layer (ReLU), dropout 0.5 and the
    output layer (32x32 -> 4x4 after three poolings, so the first dense layer sees 256*4*4).
    There is deliberately no batch normalisation: stability training feeds the clean and the
    noisy batch through the network as one concatenated batch, and batch statistics would
    couple the two halves (and make the running statistics a mixture of clean and noisy data).

Other architectures are named by an import path ``"package.module:ClassName"``. Importing a
module runs its code, and a checkpoint names its architecture, so :func:`build_model` (and
``renyi_cert_torch.train.load_checkpoint``) refuse an import path unless the caller passes
``trust_arch_import=True`` (``--trust-arch-import`` on the command line); the refusal happens
before anything is imported.
"""

from __future__ import annotations

import importlib
import os
from typing import Sequence

import torch
from torch import nn

from renyi_cert._validate import check_positive_int

__all__ = [
    "ARCHITECTURES", "MNIST_MEAN", "MNIST_STD", "CIFAR10_MEAN", "CIFAR10_STD",
    "Normalize", "MnistCNN", "CifarCNN7", "is_import_path", "check_arch", "check_arch_trust", "build_model",
]

# Per-channel statistics of the training sets, in [0, 1] pixel units.
MNIST_MEAN = (0.1307,)
MNIST_STD = (0.3081,)
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel; ``mean`` and ``std`` are buffers (saved, moved with the model).

    Parameters
    ----------
    mean, std : sequence of float
        One value per input channel; every ``std`` must be > 0.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        mean_t = torch.as_tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1)
        std_t = torch.as_tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1)
        if mean_t.shape != std_t.shape:
            raise ValueError(f"mean ({len(mean)} values) and std ({len(std)} values) must have the same length")
        if not bool((std_t > 0).all()):
            raise ValueError(f"std ({tuple(std)}) must be > 0 for every channel")
        self.register_buffer("mean", mean_t)
        self.register_buffer("std", std_t)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class MnistCNN(nn.Module):
    """The paper's MNIST CNN (input (N, 1, 28, 28) in [0, 1]); see the module docstring."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        num_classes = check_positive_int("num_classes", num_classes, minimum=2)
        self.normalize = Normalize(MNIST_MEAN, MNIST_STD)
        self.features = nn.Sequential(
            nn.Conv2d(1, 64, kernel_size=5),
            nn.ReLU(inplace=True),
            nn.Conv2d(64, 64, kernel_size=5),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Dropout(0.25),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * 10 * 10, 128),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(self.normalize(x)))


def _conv(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel_size=3, padding=1), nn.ReLU(inplace=True)]


class CifarCNN7(nn.Module):
    """The seven-convolution CIFAR-10 CNN (input (N, 3, 32, 32) in [0, 1]); see the module docstring."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        num_classes = check_positive_int("num_classes", num_classes, minimum=2)
        self.normalize = Normalize(CIFAR10_MEAN, CIFAR10_STD)
        self.features = nn.Sequential(
            *_conv(3, 64), *_conv(64, 64), nn.MaxPool2d(2),
            *_conv(64, 128), *_conv(128, 128), nn.MaxPool2d(2),
            *_conv(128, 256), *_conv(256, 256), *_conv(256, 256), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.5),
            nn.Linear(256 * 4 * 4, 256),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(256, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(self.normalize(x)))


ARCHITECTURES: dict[str, type[nn.Module]] = {
    "mnist_cnn": MnistCNN,
    "cifar_cnn7": CifarCNN7,
}


_ARCH_FORMS = "one of {} or an import path 'package.module:ClassName'"


def is_import_path(arch: object) -> bool:
    """Whether ``arch`` names an import path (``"package.module:ClassName"``) rather than a registered name."""
    return isinstance(arch, str) and arch not in ARCHITECTURES and ":" in arch


def check_arch(arch: object) -> str:
    """Check the form of an architecture name, **without importing anything**; return it.

    Parameters
    ----------
    arch : str
        A key of ``ARCHITECTURES`` or an import path ``"package.module:ClassName"`` (a
        non-empty module and attribute; the module is not imported here).

    Raises
    ------
    ValueError
        ``arch`` is not a string, not a registered name and not of the import-path form.
    """
    names = ", ".join(map(repr, ARCHITECTURES))
    if not isinstance(arch, str):
        raise ValueError(f"arch ({arch!r}) must be a string: " + _ARCH_FORMS.format(names))
    if arch in ARCHITECTURES:
        return arch
    if ":" not in arch:
        raise ValueError(f"arch ({arch!r}) must be " + _ARCH_FORMS.format(names))
    module_name, _, attr = arch.partition(":")
    if not module_name or not attr:
        raise ValueError(f"arch ({arch!r}) is not a valid import path: expected 'package.module:ClassName'")
    return arch


def check_arch_trust(arch: str, trust_arch_import: bool, *, checkpoint: str | os.PathLike | None = None) -> None:
    """Refuse an import-path ``arch`` unless ``trust_arch_import`` is True (imports nothing).

    Importing a module runs its code, so an architecture named by an import path is only built
    on the caller's explicit say-so; the registered names of ``ARCHITECTURES`` are always allowed.

    Parameters
    ----------
    arch : str
        An architecture name (see :func:`check_arch`).
    trust_arch_import : bool
        Allow import paths.
    checkpoint : str or path-like, optional
        The checkpoint that named ``arch`` (for the message).

    Raises
    ------
    ValueError
        ``arch`` is an import path and ``trust_arch_import`` is False.
    """
    if trust_arch_import is True or not is_import_path(arch):
        return
    if trust_arch_import is not False:
        raise ValueError(f"trust_arch_import ({trust_arch_import!r}) must be True or False")
    if checkpoint is not None:
        raise ValueError(f"{str(checkpoint)!r}: arch ({arch!r}) is an import path; loading it would import and "
                         "run code named by the checkpoint; pass trust_arch_import=True / --trust-arch-import "
                         "if you trust this file")
    raise ValueError(f"arch ({arch!r}) is an import path; building it would import and run the code it names; "
                     "pass trust_arch_import=True / --trust-arch-import if you trust that module")


def build_model(arch: str, *, num_classes: int = 10, trust_arch_import: bool = False) -> nn.Module:
    """Instantiate an architecture by name or, when trusted, by import path.

    Parameters
    ----------
    arch : str
        A key of ``ARCHITECTURES`` (``"mnist_cnn"``, ``"cifar_cnn7"``), or an import path
        ``"package.module:ClassName"`` naming a class (or factory) that is called as
        ``ClassName(num_classes=num_classes)`` and must return a ``torch.nn.Module`` mapping
        [0, 1] pixels to logits.
    num_classes : int
        Number of outputs (>= 2).
    trust_arch_import : bool, default False
        Allow an import path. Importing a module runs its code, so an import path is refused
        unless this is True (the check happens before any import).

    Returns
    -------
    torch.nn.Module
        A freshly initialised model (parameters drawn from torch's global RNG).

    Raises
    ------
    ValueError
        For an unknown name, an import path without ``trust_arch_import=True``, an import path
        that cannot be imported or resolved, a factory that fails or does not return an
        ``nn.Module``, or a bad ``num_classes``.
    """
    num_classes = check_positive_int("num_classes", num_classes, minimum=2)
    arch = check_arch(arch)
    if arch in ARCHITECTURES:
        return ARCHITECTURES[arch](num_classes=num_classes)
    check_arch_trust(arch, trust_arch_import)
    module_name, _, attr = arch.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or any error raised while importing the user's module
        raise ValueError(f"arch ({arch!r}): cannot import module {module_name!r}: {exc}") from exc
    factory = module
    for part in attr.split("."):
        try:
            factory = getattr(factory, part)
        except AttributeError:
            raise ValueError(f"arch ({arch!r}): module {module_name!r} has no attribute {attr!r}") from None
    if not callable(factory):
        raise ValueError(f"arch ({arch!r}): {attr!r} is not a class or callable")
    try:
        model = factory(num_classes=num_classes)
    except Exception as exc:
        raise ValueError(f"arch ({arch!r}): calling {attr}(num_classes={num_classes}) failed: {exc}") from exc
    if not isinstance(model, nn.Module):
        raise ValueError(f"arch ({arch!r}): {attr}(num_classes={num_classes}) returned "
                         f"{type(model).__name__}, not a torch.nn.Module")
    return model
