"""Statistics of certification logs: certified accuracy against radius, abstain rate, ACR, tables.

Conventions (those of Cohen et al.'s ``analyze.py``, ``ApproximateAccuracy.at_radius``):
the certified accuracy at radius ``r`` is the fraction of *all* rows with ``correct == 1`` and
``radius >= r`` (abstentions count as failures; the boundary ``radius == r`` counts as certified).
With these conventions the published table of Cohen et al. (CIFAR-10, ResNet-110, sigma 0.25:
0.60/0.43/0.27/0.00, sigma 0.50: 0.55/0.41/0.32/0.23 at r = 0.25/0.5/0.75/1.0) is reproduced
exactly from their logs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .logs import CertificationLog

__all__ = ["DEFAULT_RADII", "NOT_GUARANTEED", "BoundSummary", "certified_accuracy", "average_certified_radius",
           "display_label", "summarize", "markdown_table"]

DEFAULT_RADII = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)
#: What tables and plots append to the label of a log with rows that are not guaranteed.
NOT_GUARANTEED = " (not guaranteed)"


@dataclass(frozen=True)
class BoundSummary:
    """Summary statistics of one radius column of one log.

    Attributes
    ----------
    label : str
        The log's display label (file name unless given).
    bound : str
        The radius column (``"renyi"``, ``"cohen"``, ``"pixeldp"`` or ``"radius"``).
    num_examples : int
        Rows in the log.
    radii : tuple of float
        The radius grid.
    certified_accuracy : tuple of float
        Fraction of rows with ``correct == 1`` and ``radius >= r`` for each ``r`` in ``radii``.
    clean_accuracy : float
        Fraction of rows with ``correct == 1`` (accuracy of the smoothed classifier, abstain = wrong).
    abstain_rate : float
        Fraction of rows with ``predict == -1``.
    average_certified_radius : float
        Mean of ``radius * correct`` over all rows (ACR; infinite if a correct row has radius inf).
    mean_time : float
        Mean seconds per example.
    total_forward_passes : int or None
        Noisy forward passes spent on all rows (None when the log does not record them).
    mean_forward_passes : float or None
        The same per row.
    """

    label: str
    bound: str
    num_examples: int
    radii: tuple
    certified_accuracy: tuple
    clean_accuracy: float
    abstain_rate: float
    average_certified_radius: float
    mean_time: float
    total_forward_passes: int | None = None
    mean_forward_passes: float | None = None
    norm: str = "l2"


def _check_radii(radii) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(radii, dtype=np.float64))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"radii ({radii!r}) must be a non-empty 1-D sequence of numbers")
    bad = ~np.isfinite(arr) | (arr < 0)
    if bad.any():
        raise ValueError(f"radius ({float(arr[np.argmax(bad)])!r}) in radii must be finite and >= 0")
    return arr


def _radius_column(log: CertificationLog, bound: str | None) -> np.ndarray:
    if bound is None:
        return next(iter(log.radii.values()))
    if bound not in log.radii:
        raise ValueError(f"bound ({bound!r}) must be one of {', '.join(repr(b) for b in log.radii)} in {log.path}")
    return log.radii[bound]


def certified_accuracy(log: CertificationLog, radii, bound: str | None = None) -> np.ndarray:
    """Certified accuracy at each radius: fraction of rows with ``correct == 1`` and ``radius >= r``.

    This is Cohen et al.'s ``ApproximateAccuracy`` (the boundary counts; abstentions fail).

    Parameters
    ----------
    log : CertificationLog
    radii : array_like of float
        Radii ``r >= 0``.
    bound : str, optional
        Which radius column; default the first.
    """
    r = _check_radii(radii)
    rad = _radius_column(log, bound)
    ok = log.correct == 1
    return np.array([np.mean(ok & (rad >= x)) for x in r], dtype=np.float64)


def average_certified_radius(log: CertificationLog, bound: str | None = None) -> float:
    """Mean of ``radius * correct`` over all rows (abstained and wrong rows contribute 0)."""
    rad = _radius_column(log, bound)
    ok = log.correct == 1
    return float(np.mean(np.where(ok, rad, 0.0)))


def display_label(log: CertificationLog, label: str | None = None) -> str:
    """``label`` (default: the file name) with " (not guaranteed)" appended when ``log`` has rows
    certified without the ``1 - alpha`` guarantee."""
    label = label if label is not None else os.path.basename(log.path)
    return label + NOT_GUARANTEED if log.not_guaranteed else label


def summarize(log: CertificationLog, radii=DEFAULT_RADII, *, label: str | None = None) -> list[BoundSummary]:
    """One :class:`BoundSummary` per radius column of ``log``.

    The summaries' label is ``label`` (default: the file name), marked " (not guaranteed)" when
    the log has rows without the ``1 - alpha`` guarantee (see :func:`display_label`).
    """
    r = _check_radii(radii)
    label = display_label(log, label)
    return [
        BoundSummary(
            label=label,
            bound=bound,
            num_examples=len(log),
            radii=tuple(float(x) for x in r),
            certified_accuracy=tuple(float(a) for a in certified_accuracy(log, r, bound)),
            clean_accuracy=float(np.mean(log.correct == 1)),
            abstain_rate=float(np.mean(log.predict == -1)),
            average_certified_radius=average_certified_radius(log, bound),
            mean_time=float(np.mean(log.time)),
            total_forward_passes=None if log.forward_passes is None else int(np.sum(log.forward_passes)),
            mean_forward_passes=None if log.forward_passes is None else float(np.mean(log.forward_passes)),
            norm=log.norm,
        )
        for bound in log.bounds
    ]


def markdown_table(summaries: Sequence[BoundSummary], digits: int = 3) -> str:
    """A markdown table: one row per (log, bound), certified accuracy at each radius.

    Columns: log, bound (with its norm when it is not l2, e.g. ``teng (l1)``), examples, clean
    accuracy, abstain rate, ACR, ``r = ...`` for each radius,
    and, when some log records them, the forward passes per example (mean) and in all (a log
    without them shows "-"). All summaries must share the same radius grid.
    """
    if not summaries:
        raise ValueError("summaries must not be empty")
    radii = summaries[0].radii
    for s in summaries:
        if s.radii != radii:
            raise ValueError(f"all summaries must share one radius grid; got {s.radii} and {radii}")
    fmt = f"{{:.{digits}f}}"
    costs = any(s.total_forward_passes is not None for s in summaries)
    head = (["log", "bound", "n", "clean acc", "abstain", "ACR"] + [f"r = {x:g}" for x in radii]
            + (["passes/example", "passes"] if costs else []))
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|"]
    for s in summaries:
        cells = [s.label, s.bound if s.norm == "l2" else f"{s.bound} ({s.norm})", str(s.num_examples), fmt.format(s.clean_accuracy), fmt.format(s.abstain_rate),
                 fmt.format(s.average_certified_radius)] + [fmt.format(a) for a in s.certified_accuracy]
        if costs:
            cells += (["-", "-"] if s.mean_forward_passes is None else
                      [f"{s.mean_forward_passes:.0f}", f"{s.total_forward_passes:,}"])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
