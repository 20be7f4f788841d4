"""Certified accuracy against radius, drawn from certification logs (the paper's Figure 1 style)."""

from __future__ import annotations

import math
import os
from typing import Sequence

import numpy as np

from .._figures import finish_accuracy_axes, new_figure, save_png_pdf
from .logs import CertificationLog
from .stats import certified_accuracy, display_label

__all__ = ["BOUND_NAMES", "certified_accuracy_figure", "plot_certified_accuracy"]

#: How the bounds are named in legends.
BOUND_NAMES = {"renyi": "Rényi (Li et al.)", "cohen": "Cohen et al.", "pixeldp": "PixelDP", "teng": "Teng et al.",
               "yang": "Yang et al.", "radius": "radius"}
_STYLES = ("-", "--", ":", "-.")


def _legend(logs: Sequence[CertificationLog], log: CertificationLog, label: str, bound: str) -> str:
    name = BOUND_NAMES.get(bound, bound)
    if len(logs) == 1:
        return display_label(log, name)
    if len({other.norm for other in logs}) > 1:  # logs of both norms: say which is which
        label = f"{label} ({log.norm.replace('l', 'ℓ')})"
    if len(log.bounds) == 1:
        return display_label(log, label)
    return f"{display_label(log, label)}: {name}"


def _max_radius(logs: Sequence[CertificationLog]) -> float:
    """5 % beyond the largest finite radius of a correct row (at least 0.1)."""
    finite = [rad[np.isfinite(rad) & (log.correct == 1)] for log in logs for rad in log.radii.values()]
    top = max((float(f.max()) for f in finite if f.size), default=0.0)
    return max(top * 1.05, 0.1)


def certified_accuracy_figure(logs: Sequence[CertificationLog], *, labels: Sequence[str] | None = None,
                              max_radius: float | None = None, title: str | None = None, num_points: int = 400):
    """Certified accuracy against radius (the paper's Figure 1 style), one line per (log, bound).

    Returns the ``Figure`` (nothing is written). A log with rows that are not guaranteed has
    " (not guaranteed)" in its legend entries.

    Raises
    ------
    ValueError
        For no logs, a ``labels`` of another length, or a ``max_radius`` that is not finite and > 0.
    """
    if not logs:
        raise ValueError("logs must not be empty")
    labels = [os.path.basename(log.path) for log in logs] if labels is None else labels
    if len(labels) != len(logs):
        raise ValueError(f"labels ({len(labels)}) must have one entry per log ({len(logs)})")
    max_radius = _max_radius(logs) if max_radius is None else max_radius
    if not (math.isfinite(max_radius) and max_radius > 0):
        raise ValueError(f"max_radius ({max_radius!r}) must be finite and > 0")
    grid = np.linspace(0.0, max_radius, num_points)
    fig = new_figure()
    ax = fig.add_subplot(1, 1, 1)
    for i, (log, lab) in enumerate(zip(logs, labels)):
        for j, bound in enumerate(log.bounds):
            ax.plot(grid, certified_accuracy(log, grid, bound), _STYLES[i % len(_STYLES)],
                    label=_legend(logs, log, lab, bound), color=f"C{j if len(logs) == 1 or len(log.bounds) > 1 else i}")
    norms = sorted({log.norm for log in logs})
    ax.set_xlabel(f"radius ({' and '.join(n.replace('l', 'ℓ') for n in norms)}, [0,1] pixel units)")
    ax.set_ylabel("certified accuracy")
    ax.set_xlim(0.0, max_radius)
    finish_accuracy_axes(fig, ax, title=title)
    return fig


def plot_certified_accuracy(
    logs: Sequence[CertificationLog],
    out_stem: str | os.PathLike,
    *,
    labels: Sequence[str] | None = None,
    max_radius: float | None = None,
    title: str | None = None,
    num_points: int = 400,
) -> tuple[str, str]:
    """Draw :func:`certified_accuracy_figure` and write ``<out_stem>.png`` and ``<out_stem>.pdf``,
    each atomically (an existing file is replaced only by a complete one; missing folders are
    created). Uses matplotlib's object-oriented API with the Agg canvas (no pyplot, no display).

    Returns
    -------
    (png_path, pdf_path)
    """
    fig = certified_accuracy_figure(logs, labels=labels, max_radius=max_radius, title=title, num_points=num_points)
    return save_png_pdf(fig, out_stem)
