"""What every stage of a run needs: the plan, the folders, the device, the cache and the test examples."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .cache import Stages
from .plan import Plan


@dataclass(frozen=True)
class Run:
    """One reproduction run's context.

    Attributes
    ----------
    plan : Plan
        The settings.
    work, out : Path
        The work folder (checkpoints, cache) and the folder of the figures and the markdown.
    data_root : str or None
        Passed to the data loader and recorded in the training configs.
    device : torch.device
    progress : bool
        Show progress bars.
    stages : Stages
        The result cache and the record of stage times.
    test : renyi_cert_torch.data.DataSplit
        The whole test split (base accuracies).
    idx : ndarray of int
        Test indices of the certification set (every ``plan.test_skip``-th, at most
        ``plan.table_examples``); Figure 1 and the attacks use its first examples.
    x, y : torch.Tensor
        The certification set's images and labels, on ``device``.
    labels : ndarray of int
        ``y`` as a numpy array.
    nproc : int or None
        Workers for the certification stages' counts (``--nproc``); None: this process, one
        noise stream for all examples.
    """

    plan: Plan
    work: Path
    out: Path
    data_root: str | None
    device: Any
    progress: bool
    stages: Stages
    test: Any
    idx: np.ndarray
    x: Any
    y: Any
    labels: np.ndarray
    nproc: int | None = None

    @property
    def num_classes(self) -> int:
        """Classes of the dataset."""
        return self.test.num_classes


def open_run(plan: Plan, *, work: Path, out: Path, data_root, device, progress: bool, fresh: bool,
             nproc: int | None = None) -> Run:
    """Load the test split and select the certification set.

    Raises
    ------
    FileNotFoundError
        If the dataset's files are missing (the message says where they were looked for).
    """
    from renyi_cert_torch.data import load_dataset

    stages = Stages(work, fresh)
    test = load_dataset(plan.dataset, "test", data_root=data_root)
    idx = np.arange(0, len(test), plan.test_skip)[:plan.table_examples]
    x, y = test.x[idx].to(device), test.y[idx].to(device)
    return Run(plan=plan, work=work, out=out, data_root=data_root, device=device, progress=progress, stages=stages,
               test=test, idx=idx, x=x, y=y, labels=y.cpu().numpy(), nproc=nproc)
