"""Compare the Renyi radius with PixelDP and Cohen et al. (or Teng et al.) over a grid of (p1, p2).

The paper's Figure 4 (Li, Chen, Wang & Carin, NeurIPS 2019) and more: over every grid point with
p1 >= p2, p1 + p2 <= 1 and p1 + p2 >= ``--min-total`` (0.2 in the paper), compute the three
radii, write them to a CSV, draw a figure (PNG and PDF) and print a summary table.

``--noise`` picks the noise and so the three radii:

* ``gaussian`` (the default; noise level ``--sigma``): certified l2 radii, Renyi vs PixelDP vs
  Cohen et al. (the tight bound); the CSV also holds the maximising Renyi order and PixelDP's
  epsilon.
* ``laplace`` (noise scale ``--scale`` b): certified l1 radii, Renyi (``Laplace(b).radius``,
  :mod:`renyi_cert.noise`) vs Teng et al. (ICLR 2020, -b log(2 (1 - p1)), tight given p1 alone)
  vs PixelDP's Laplace mechanism ((b/2) log(p1/p2)). The summary says where Renyi beats each, and
  by how much. Renyi is never below Teng: it is at least the Renyi order -> inf limit
  -b log(1 - p1 + p2), which exceeds Teng's radius by b log(1 + q / (1 - p1 + p2)) >= b q for
  p1 >= 1/2, q = 1 - p1 - p2, and equals it on the line q = 0 (two classes). PixelDP, which the
  Laplace mechanism's pure differential privacy makes strong, is the larger at small p2: the
  summary maps that region (on the 1000 x 1000 grid: every point with p1 <= 1/2, and p2 below a
  threshold that falls to 0 near p1 = 0.96). ``--sigma`` is refused there (it is the Gaussian
  noise level), as is ``--scale`` with Gaussian noise. The default output folder is
  ``runs/compare_laplace`` instead of ``runs/compare_pixeldp``, so that the two modes do not
  overwrite each other.

Run ``python -m renyi_cert.compare_pixeldp --help`` for the options. For Gaussian noise with
``--min-total 0`` the summary also maps where PixelDP beats the Renyi bound (small p1 + p2,
reachable with many classes), instead of assuming it never does.

Every option is checked before any work and any file is written: the noise options must fit the
noise, the output files must be writable, and the grid must keep at least
:data:`MIN_FIGURE_POINTS` valid points for the figure (one for ``--no-plot``). The CSV, PNG and
PDF are each written atomically (a crash never leaves a truncated file under the final name).
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, Union

import numpy as np

from ._cli import int_arg, interruptible, parse_choice, real_arg
from ._figures import new_figure
from ._figures import save_figure as write_figure
from ._files import OutputPathError, atomic_output, check_output_path
from .bounds import cohen_radius, pixeldp_details, pixeldp_radius, radius_details
from .bounds import radius as renyi_radius
from .noise import Laplace

__all__ = ["PROG", "MIN_FIGURE_POINTS", "CSV_NAME", "FIGURE_STEM", "NOISES", "DEFAULT_OUT", "EQUAL_RTOL",
           "ComparisonGrid", "ComparisonSummary", "LaplaceGrid", "LaplaceSummary", "grid_points", "compute_grid",
           "summarize", "format_summary", "write_csv", "figure", "compute_laplace_grid", "summarize_laplace",
           "format_laplace_summary", "write_laplace_csv", "laplace_figure", "figure_paths", "save_figure", "plot",
           "build_parser", "main"]

PROG = "python -m renyi_cert.compare_pixeldp"
#: Fewest valid grid points the figure is drawn from (its colour scales need distinct values).
MIN_FIGURE_POINTS = 3
CSV_NAME = "radii.csv"
FIGURE_STEM = "comparison"
_EXTENT = (0.0, 1.0, 0.0, 0.5)  # the (p1, p2) square the images cover
#: What ``--noise`` accepts.
NOISES = ("gaussian", "laplace")
#: The default output folder of each noise.
DEFAULT_OUT = {"gaussian": Path("runs/compare_pixeldp"), "laplace": Path("runs/compare_laplace")}
#: Relative tolerance of "Renyi = Teng" in the Laplace summary (the radii's rounding is about 1e-15).
EQUAL_RTOL = 1e-12
#: The columns p1 whose PixelDP-over-Renyi region the Laplace summary lists (the nearest grid columns).
_THRESHOLD_COLUMNS = (0.6, 0.7, 0.8, 0.9)


@dataclass(frozen=True)
class ComparisonGrid:
    """Radii at the valid grid points (flat arrays of equal length) and the grid's spec."""

    p1: np.ndarray
    p2: np.ndarray
    renyi: np.ndarray
    pixeldp: np.ndarray
    cohen: np.ndarray
    order_star: np.ndarray  # the maximising Renyi order (the paper's α*)
    pixeldp_epsilon: np.ndarray
    sigma: float
    resolution: int
    min_total: float


@dataclass(frozen=True)
class ComparisonSummary:
    """What the comparison shows, in numbers."""

    points: int
    renyi_above_pixeldp: float  # fraction of points where Renyi > PixelDP
    pixeldp_above_renyi: int  # number of points where PixelDP > Renyi
    max_total_where_pixeldp_wins: float  # largest p1 + p2 with PixelDP > Renyi (nan if none)
    ratio_pixeldp_min: float  # Renyi / PixelDP
    ratio_pixeldp_median: float
    ratio_pixeldp_max: float
    at_least_twice_pixeldp: float  # fraction of points where Renyi >= 2 PixelDP
    ratio_cohen_min: float  # Renyi / Cohen
    ratio_cohen_max: float
    order_star_min: float  # the maximising Renyi order (the paper's α*)
    order_star_max: float
    boundary_fraction: float  # fraction of points where the supremum is the limit order -> 1


def grid_points(resolution: int = 1000, min_total: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """The valid points (p1, p2) of a ``resolution x resolution`` grid of [0, 1] x [0, 1/2].

    Valid: p1 > p2, p1 + p2 <= 1, p1 + p2 >= min_total. Cheap (no radius is computed), so a
    caller can count the points before the work.

    Raises
    ------
    ValueError
        If ``resolution`` is not an integer >= 2 or ``min_total`` is not in [0, 1].
    """
    if not isinstance(resolution, (int, np.integer)) or isinstance(resolution, bool) or resolution < 2:
        raise ValueError(f"resolution ({resolution!r}) must be an integer >= 2")
    if not (isinstance(min_total, (int, float)) and 0.0 <= min_total <= 1.0):
        raise ValueError(f"min_total ({min_total!r}) must be in [0, 1]")
    # open grid: skip 0 so that every point has p2 > 0 (p2 = 0 is a boundary case, tested apart)
    p1_axis = np.linspace(0.0, 1.0, resolution + 1)[1:]
    p2_axis = np.linspace(0.0, 0.5, resolution + 1)[1:]
    p1, p2 = np.meshgrid(p1_axis, p2_axis, indexing="xy")
    total = p1 + p2
    keep = (p1 > p2) & (total <= 1.0 + 1e-12) & (total >= min_total)
    return p1[keep], np.minimum(p2[keep], 1.0 - p1[keep])  # remove linspace rounding only


def compute_grid(sigma: float = 1.0, resolution: int = 1000, min_total: float = 0.2) -> ComparisonGrid:
    """The three radii on a ``resolution x resolution`` grid of (p1, p2) in [0, 1] x [0, 1/2].

    Only valid points are kept (see :func:`grid_points`).
    """
    p1, p2 = grid_points(resolution, min_total)
    renyi = radius_details(p1, p2, sigma)
    pdp = pixeldp_details(p1, p2, sigma)
    return ComparisonGrid(
        p1=p1,
        p2=p2,
        renyi=np.asarray(renyi.radius),
        pixeldp=np.asarray(pdp.radius),
        cohen=np.asarray(cohen_radius(p1, p2, sigma)),
        order_star=np.asarray(renyi.order),
        pixeldp_epsilon=np.asarray(pdp.epsilon),
        sigma=float(sigma),
        resolution=int(resolution),
        min_total=float(min_total),
    )


def summarize(grid: ComparisonGrid) -> ComparisonSummary:
    """Where Renyi beats PixelDP and by how much; the Renyi/Cohen ratio range; the range of α*.

    Raises
    ------
    ValueError
        If the grid has no valid point.
    """
    if grid.p1.size == 0:
        raise ValueError(f"the grid (resolution {grid.resolution}, min_total {grid.min_total:g}) has no valid point")
    positive = grid.pixeldp > 0
    ratio_p = grid.renyi[positive] / grid.pixeldp[positive]
    ratio_c = grid.renyi / grid.cohen
    wins = grid.pixeldp > grid.renyi
    total = grid.p1 + grid.p2
    return ComparisonSummary(
        points=int(grid.p1.size),
        renyi_above_pixeldp=float(np.mean(grid.renyi > grid.pixeldp)),
        pixeldp_above_renyi=int(wins.sum()),
        max_total_where_pixeldp_wins=float(total[wins].max()) if wins.any() else math.nan,
        ratio_pixeldp_min=float(ratio_p.min()),
        ratio_pixeldp_median=float(np.median(ratio_p)),
        ratio_pixeldp_max=float(ratio_p.max()),
        at_least_twice_pixeldp=float(np.mean(grid.renyi >= 2 * grid.pixeldp)),
        ratio_cohen_min=float(ratio_c.min()),
        ratio_cohen_max=float(ratio_c.max()),
        order_star_min=float(grid.order_star.min()),
        order_star_max=float(grid.order_star.max()),
        boundary_fraction=float(np.mean(grid.order_star == 1.0)),
    )


def format_summary(s: ComparisonSummary, grid: ComparisonGrid) -> str:
    """A short plain-text table."""
    rows = [
        ("grid points (valid)", f"{s.points:,} (resolution {grid.resolution}, p1 + p2 >= {grid.min_total:g}, sigma = {grid.sigma:g})"),
        ("Renyi > PixelDP", f"{100 * s.renyi_above_pixeldp:.2f} % of points"),
        ("PixelDP > Renyi", f"{s.pixeldp_above_renyi:,} points" + (
            f" (all with p1 + p2 <= {s.max_total_where_pixeldp_wins:.4f})" if s.pixeldp_above_renyi else "")),
        ("Renyi / PixelDP", f"min {s.ratio_pixeldp_min:.3f}, median {s.ratio_pixeldp_median:.3f}, max {s.ratio_pixeldp_max:.3f}"),
        ("Renyi >= 2 x PixelDP", f"{100 * s.at_least_twice_pixeldp:.2f} % of points"),
        ("Renyi / Cohen", f"min {s.ratio_cohen_min:.4f}, max {s.ratio_cohen_max:.4f}"),
        ("maximising order", f"{s.order_star_min:.4f} .. {s.order_star_max:.4f} "
                             f"(limit order -> 1 at {100 * s.boundary_fraction:.1f} % of points)"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def write_csv(grid: ComparisonGrid, path: Path) -> None:
    """One row per valid grid point; written atomically."""
    data = np.column_stack(
        [grid.p1, grid.p2, grid.renyi, grid.pixeldp, grid.cohen, grid.order_star, grid.pixeldp_epsilon]
    )
    header = "p1,p2,renyi,pixeldp,cohen,order_star,pixeldp_epsilon"
    with atomic_output(path) as tmp:
        np.savetxt(tmp, data, delimiter=",", header=header, comments="", fmt="%.10g")


@dataclass(frozen=True)
class LaplaceGrid:
    """Certified l1 radii under Laplace noise at the valid grid points (flat arrays of equal
    length) and the grid's spec: Renyi, Teng et al. and PixelDP (see :class:`renyi_cert.noise.Laplace`)."""

    p1: np.ndarray
    p2: np.ndarray
    renyi: np.ndarray
    teng: np.ndarray
    pixeldp: np.ndarray
    scale: float  # the Laplace scale b
    resolution: int
    min_total: float


@dataclass(frozen=True)
class LaplaceSummary:
    """What the Laplace comparison shows, in numbers (ratios are Renyi over the other bound)."""

    points: int
    renyi_above_teng: float  # fraction of points with Renyi > Teng by more than EQUAL_RTOL (relative)
    renyi_below_teng: int  # points with Renyi < Teng by more than EQUAL_RTOL (none in theory)
    off_line_points: int  # points with p2 < 1 - p1
    line_points: int  # points on the line p2 = 1 - p1
    equal_teng: int  # points with Renyi = Teng within EQUAL_RTOL
    equal_teng_off_line: int  # ... of them off the line (none in theory)
    line_max_rel_diff: float  # max |Renyi - Teng| / Teng on the line (nan if no such point with Teng > 0)
    smallest_gap: float  # smallest 1 - p1 - p2 off the line (nan if none)
    excess_per_gap_min: float  # min (Renyi - Teng) / (b (1 - p1 - p2)) off the line with p1 > 1/2 (nan if none)
    ratio_teng_min: float  # Renyi / Teng off the line with Teng > 0 (nan if none)
    ratio_teng_median: float
    ratio_teng_max: float
    teng_zero: float  # fraction of points where Teng certifies nothing (p1 <= 1/2)
    renyi_max_where_teng_zero: float  # largest Renyi / b there (nan if none)
    renyi_above_pixeldp: float  # fraction of points with Renyi > PixelDP
    pixeldp_above_renyi: float  # fraction of points with PixelDP > Renyi
    ratio_pixeldp_min: float  # Renyi / PixelDP
    ratio_pixeldp_median: float
    ratio_pixeldp_max: float
    pixeldp_wins_low_p1: float  # fraction of the points with p1 <= 1/2 where PixelDP > Renyi (nan if none)
    pixeldp_max_p1: float  # largest p1 with PixelDP > Renyi (nan if none)
    pixeldp_not_threshold: int  # columns p1 > 1/2 where PixelDP's wins are not exactly the p2 below a threshold
    pixeldp_thresholds: tuple[tuple[float, float], ...]  # (p1, largest p2 with PixelDP > Renyi, nan if none)


def compute_laplace_grid(scale: float = 1.0, resolution: int = 1000, min_total: float = 0.2) -> LaplaceGrid:
    """The three l1 radii under Laplace noise of scale ``scale`` on the grid of :func:`grid_points`.

    Raises
    ------
    ValueError
        If ``scale`` is not a finite number > 0 (``"scale (0.0) must be > 0"``), or as
        :func:`grid_points`; both before any radius is computed.
    """
    lap = Laplace(scale)
    p1, p2 = grid_points(resolution, min_total)
    return LaplaceGrid(
        p1=p1,
        p2=p2,
        renyi=np.asarray(lap.radius(p1, p2, bound="renyi")),
        teng=np.asarray(lap.radius(p1, p2, bound="teng")),
        pixeldp=np.asarray(lap.radius(p1, p2, bound="pixeldp")),
        scale=lap.scale,
        resolution=int(resolution),
        min_total=float(min_total),
    )


def _stats(values: np.ndarray) -> tuple[float, float, float]:
    """(min, median, max) of ``values``; nans when it is empty."""
    if values.size == 0:
        return math.nan, math.nan, math.nan
    return float(values.min()), float(np.median(values)), float(values.max())


def _on_line(grid: LaplaceGrid) -> np.ndarray:
    """The points on the line p2 = 1 - p1 (:func:`grid_points` caps p2 at 1 - p1 there)."""
    return grid.p1 + grid.p2 >= 1.0 - 1e-12


def _teng_fields(grid: LaplaceGrid) -> dict:
    """The Renyi-vs-Teng fields of :class:`LaplaceSummary`."""
    line = _on_line(grid)
    off = ~line
    tol = EQUAL_RTOL * np.maximum(grid.renyi, grid.teng)
    above, below = grid.renyi > grid.teng + tol, grid.renyi < grid.teng - tol
    equal = ~(above | below)
    gap = 1.0 - grid.p1 - grid.p2
    steep = off & (grid.p1 > 0.5)  # Teng > 0 there
    with np.errstate(divide="ignore", invalid="ignore"):
        line_diff = np.abs(grid.renyi - grid.teng)[line & (grid.teng > 0)] / grid.teng[line & (grid.teng > 0)]
    zero = grid.teng == 0
    ratio = _stats(grid.renyi[steep] / grid.teng[steep])
    return dict(
        renyi_above_teng=float(np.mean(above)), renyi_below_teng=int(below.sum()),
        off_line_points=int(off.sum()), line_points=int(line.sum()), equal_teng=int(equal.sum()),
        equal_teng_off_line=int((equal & off).sum()),
        line_max_rel_diff=float(line_diff.max()) if line_diff.size else math.nan,
        smallest_gap=float(gap[off].min()) if off.any() else math.nan,
        excess_per_gap_min=_stats((grid.renyi - grid.teng)[steep] / (grid.scale * gap[steep]))[0],
        ratio_teng_min=ratio[0], ratio_teng_median=ratio[1], ratio_teng_max=ratio[2],
        teng_zero=float(np.mean(zero)),
        renyi_max_where_teng_zero=float(grid.renyi[zero].max() / grid.scale) if zero.any() else math.nan,
    )


def _threshold_columns(grid: LaplaceGrid, wins: np.ndarray) -> tuple[int, tuple[tuple[float, float], ...]]:
    """How PixelDP's wins lie in each column p1 > 1/2: (columns where they are not exactly the
    p2 below a threshold, the largest winning p2 at the columns nearest :data:`_THRESHOLD_COLUMNS`)."""
    columns = np.unique(grid.p1[grid.p1 > 0.5])
    not_threshold, tops = 0, {}
    for c in columns:
        here = grid.p1 == c
        won, lost = grid.p2[here & wins], grid.p2[here & ~wins]
        if won.size and lost.size and won.max() > lost.min():
            not_threshold += 1
        tops[float(c)] = float(won.max()) if won.size else math.nan
    listed: list[tuple[float, float]] = []
    for target in _THRESHOLD_COLUMNS:
        if columns.size:
            c = float(columns[np.argmin(np.abs(columns - target))])
            if all(c != p for p, _ in listed):
                listed.append((c, tops[c]))
    return not_threshold, tuple(listed)


def _pixeldp_fields(grid: LaplaceGrid) -> dict:
    """The Renyi-vs-PixelDP fields of :class:`LaplaceSummary`."""
    wins = grid.pixeldp > grid.renyi
    low = grid.p1 <= 0.5
    ratio = _stats(grid.renyi / grid.pixeldp)  # PixelDP > 0 at every valid point (p1 > p2 > 0)
    not_threshold, thresholds = _threshold_columns(grid, wins)
    return dict(
        renyi_above_pixeldp=float(np.mean(grid.renyi > grid.pixeldp)), pixeldp_above_renyi=float(np.mean(wins)),
        ratio_pixeldp_min=ratio[0], ratio_pixeldp_median=ratio[1], ratio_pixeldp_max=ratio[2],
        pixeldp_wins_low_p1=float(np.mean(wins[low])) if low.any() else math.nan,
        pixeldp_max_p1=float(grid.p1[wins].max()) if wins.any() else math.nan,
        pixeldp_not_threshold=not_threshold, pixeldp_thresholds=thresholds,
    )


def summarize_laplace(grid: LaplaceGrid) -> LaplaceSummary:
    """Where the Renyi l1 radius beats Teng's and PixelDP's, by how much, and where it is equal
    to Teng's (Renyi = Teng within :data:`EQUAL_RTOL`, relative).

    Raises
    ------
    ValueError
        If the grid has no valid point.
    """
    if grid.p1.size == 0:
        raise ValueError(f"the grid (resolution {grid.resolution}, min_total {grid.min_total:g}) has no valid point")
    return LaplaceSummary(points=int(grid.p1.size), **_teng_fields(grid), **_pixeldp_fields(grid))


def _teng_rows(s: LaplaceSummary) -> list[tuple[str, str]]:
    """The Renyi-vs-Teng rows of :func:`format_laplace_summary`: each claim as the grid shows it."""
    above = f"{100 * s.renyi_above_teng:.2f} % of points"
    if s.off_line_points and not (s.renyi_below_teng or s.equal_teng_off_line):  # so all off the line are above
        above += f": every point with p2 < 1 - p1 (1 - p1 - p2 >= {s.smallest_gap:.4g} on this grid)"
    if s.line_points and s.equal_teng == s.line_points and not s.equal_teng_off_line:
        equal = f"{s.equal_teng:,} points: all on the line p2 = 1 - p1, and no other"
    else:
        equal = f"{s.equal_teng:,} points ({s.equal_teng_off_line:,} off the line p2 = 1 - p1)"
    if s.line_points:
        equal += f" (max relative difference on the line {s.line_max_rel_diff:.1e})"
    rows = [("Renyi > Teng", above), (f"Renyi = Teng (rel. {EQUAL_RTOL:.0e})", equal),
            ("Renyi < Teng", f"{s.renyi_below_teng:,} points")]
    if not math.isnan(s.excess_per_gap_min):
        rows += [("Renyi - Teng (p2 < 1 - p1)", f">= {s.excess_per_gap_min:.4f} x b (1 - p1 - p2) at every such point "
                                                f"with p1 > 1/2"),
                 ("Renyi / Teng (p2 < 1 - p1)", f"min {s.ratio_teng_min:.4f}, median {s.ratio_teng_median:.3f}, "
                                                f"max {s.ratio_teng_max:.1f} (p1 > 1/2)")]
    if s.teng_zero:
        rows.append(("Teng = 0 (p1 <= 1/2)", f"{100 * s.teng_zero:.2f} % of points; Renyi there up to "
                                             f"{s.renyi_max_where_teng_zero:.3f} b"))
    return rows


def _pixeldp_rows(s: LaplaceSummary) -> list[tuple[str, str]]:
    """The Renyi-vs-PixelDP rows of :func:`format_laplace_summary`."""
    rows = [("Renyi > PixelDP", f"{100 * s.renyi_above_pixeldp:.2f} % of points"),
            ("PixelDP > Renyi", f"{100 * s.pixeldp_above_renyi:.2f} % of points")]
    if s.pixeldp_above_renyi and not math.isnan(s.pixeldp_wins_low_p1):
        rows.append(("PixelDP > Renyi, p1 <= 1/2", f"at {100 * s.pixeldp_wins_low_p1:.2f} % of those points"))
    if s.pixeldp_max_p1 > 0.5:
        shape = ("only below a p2 threshold in each column p1" if not s.pixeldp_not_threshold else
                 f"not below a single p2 threshold in {s.pixeldp_not_threshold} column(s) p1")
        tops = ", ".join(f"p2 <= {top:.4g} at p1 = {c:.4g}" if not math.isnan(top) else f"none at p1 = {c:.4g}"
                         for c, top in s.pixeldp_thresholds)
        rows.append(("PixelDP > Renyi, p1 > 1/2", f"{shape}: {tops}; none with p1 > {s.pixeldp_max_p1:.4g}"))
    rows.append(("Renyi / PixelDP", f"min {s.ratio_pixeldp_min:.3f}, median {s.ratio_pixeldp_median:.3f}, "
                                    f"max {s.ratio_pixeldp_max:.3f}"))
    return rows


def format_laplace_summary(s: LaplaceSummary, grid: LaplaceGrid) -> str:
    """A short plain-text table (l1 radii, Laplace noise of scale b)."""
    rows = [("grid points (valid)", f"{s.points:,} (resolution {grid.resolution}, p1 + p2 >= {grid.min_total:g}, "
                                    f"Laplace b = {grid.scale:g}, l1 radii)")]
    rows += _teng_rows(s) + _pixeldp_rows(s)
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def write_laplace_csv(grid: LaplaceGrid, path: Path) -> None:
    """One row per valid grid point (p1, p2 and the three l1 radii); written atomically."""
    data = np.column_stack([grid.p1, grid.p2, grid.renyi, grid.teng, grid.pixeldp])
    with atomic_output(path) as tmp:
        np.savetxt(tmp, data, delimiter=",", header="p1,p2,renyi,teng,pixeldp", comments="", fmt="%.10g")


_Grid = Union[ComparisonGrid, LaplaceGrid]


def _diverging_norm(vmin: float, vcenter: float, vmax: float):
    """A colour scale centred at ``vcenter``; a linear one when the centre is not strictly inside."""
    from matplotlib.colors import Normalize, TwoSlopeNorm

    if vmin < vcenter < vmax:
        return TwoSlopeNorm(vcenter=vcenter, vmin=vmin, vmax=vmax)
    return Normalize(vmin=vmin, vmax=vmax if vmax > vmin else vmin + 1e-12)


def _pixel_index(grid: _Grid) -> tuple[np.ndarray, np.ndarray]:
    """Each valid point's (row, column) in the ``resolution x resolution`` image of the grid."""
    n = grid.resolution
    ix = np.rint(grid.p1 * n).astype(int) - 1
    iy = np.rint(grid.p2 * 2 * n).astype(int) - 1
    return np.clip(iy, 0, n - 1), ix  # p2 was capped at 1 - p1 on the diagonal


def _image(grid: _Grid, values: np.ndarray) -> np.ma.MaskedArray:
    """``values`` (one per valid point) as an image over (p1, p2); invalid points masked."""
    n = grid.resolution
    iy, ix = _pixel_index(grid)
    img = np.full((n, n), np.nan)
    img[iy, ix] = values
    return np.ma.masked_invalid(img)


def _contour(ax, grid: _Grid, values: np.ndarray, levels, **kwargs):
    n = grid.resolution
    return ax.contour(np.linspace(0, 1, n), np.linspace(0, 0.5, n), _image(grid, values), levels=levels, **kwargs)


def _draw_renyi(fig, ax, grid: ComparisonGrid) -> None:
    """Panel 1: the Renyi radius over (p1, p2), with contours at multiples of sigma."""
    im = ax.imshow(_image(grid, grid.renyi), origin="lower", extent=_EXTENT, aspect="auto", cmap="viridis")
    cs = _contour(ax, grid, grid.renyi, [0.25 * grid.sigma, 0.5 * grid.sigma, grid.sigma, 1.5 * grid.sigma,
                                         2 * grid.sigma], colors="white", linewidths=0.8)
    ax.clabel(cs, fmt="%.2g", fontsize=8)
    fig.colorbar(im, ax=ax, label=f"Rényi radius (σ = {grid.sigma:g})")
    ax.set_title("Certified radius, Rényi bound (exact supremum over α)")


def _draw_pixeldp_ratio(fig, ax, grid: _Grid) -> None:
    """Panel 2: Renyi / PixelDP (diverging colours when PixelDP wins somewhere)."""
    from matplotlib.colors import LogNorm

    ratio = np.where(grid.pixeldp > 0, grid.renyi / np.where(grid.pixeldp > 0, grid.pixeldp, 1), np.nan)
    finite = ratio[np.isfinite(ratio)]
    if finite.size == 0:
        finite = np.array([1.0])
    if finite.min() < 1.0:  # PixelDP wins somewhere: diverging colours, white at equality
        norm, cmap = _diverging_norm(float(finite.min()), 1.0, float(finite.max())), "RdBu"
        title = "Rényi over PixelDP (red: PixelDP larger)"
    else:
        vmin, vmax = float(finite.min()), float(finite.max())
        norm, cmap = LogNorm(vmin=vmin, vmax=vmax if vmax > vmin else vmin * (1 + 1e-9)), "viridis"
        title = f"Rényi over PixelDP (≥ {finite.min():.2f}× everywhere shown)"
    im = ax.imshow(_image(grid, ratio), origin="lower", extent=_EXTENT, aspect="auto", cmap=cmap, norm=norm)
    cs = _contour(ax, grid, ratio, [1.0, 2.0, 4.0], colors="k", linewidths=[1.5, 0.8, 0.8])
    ax.clabel(cs, fmt="%g×", fontsize=8)
    fig.colorbar(im, ax=ax, label="Rényi / PixelDP")
    ax.set_title(title)


def _draw_cohen_ratio(fig, ax, grid: ComparisonGrid) -> None:
    """Panel 3: Renyi / Cohen, coloured around its median."""
    rc = grid.renyi / grid.cohen
    im = ax.imshow(_image(grid, rc), origin="lower", extent=_EXTENT, aspect="auto", cmap="magma",
                   norm=_diverging_norm(float(rc.min()), float(np.median(rc)), float(rc.max())))
    fig.colorbar(im, ax=ax, label="Rényi / Cohen")
    ax.set_title("Rényi over Cohen et al. (tight bound)")


def _draw_domain(ax, grid: _Grid) -> None:
    """The edges of the valid domain (p1 = p2, p1 + p2 = 1, p1 + p2 = min_total) and axis labels."""
    ax.plot([0.5, 1.0], [0.5, 0.0], color="0.4", lw=0.8)
    ax.plot([0.0, 0.5], [0.0, 0.5], color="0.4", lw=0.8)
    if grid.min_total > 0:
        ax.plot([grid.min_total / 2, grid.min_total], [grid.min_total / 2, 0.0], color="0.4", lw=0.8, ls="--")
    ax.set_xlabel("p1 (top class)")
    ax.set_ylabel("p2 (runner-up)")


def _draw_slices(ax, grid: ComparisonGrid) -> None:
    """Panel 4: the three radii along two slices (two classes; ten classes with a uniform rest)."""
    # p1 from max(0.5, min_total) (both slices then have p1 + p2 >= p1 >= min_total) to 0.999; at
    # least the last 1 % of that range, so that min_total close to 1 still leaves a slice to draw
    p1s = np.linspace(min(max(0.5, grid.min_total), 0.99) + 1e-3, 0.999, 400)
    for label, p2s, ls in [("two classes: p2 = 1 − p1", 1.0 - p1s, "-"),
                           ("ten classes: p2 = (1 − p1)/9", (1.0 - p1s) / 9.0, "--")]:
        ax.plot(p1s, renyi_radius(p1s, p2s, grid.sigma), color="C0", ls=ls, label=f"Rényi, {label}")
        ax.plot(p1s, pixeldp_radius(p1s, p2s, grid.sigma), color="C3", ls=ls, label=f"PixelDP, {label}")
        ax.plot(p1s, cohen_radius(p1s, p2s, grid.sigma), color="C2", ls=ls, label=f"Cohen, {label}")
    _finish_slices(ax, "certified radius")


def _finish_slices(ax, ylabel: str) -> None:
    """Axes, log scale, title, legend and grid of a slices panel."""
    ax.set_xlabel("p1")
    ax.set_ylabel(ylabel)
    ax.set_yscale("log")
    ax.set_title("Slices")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def figure(grid: ComparisonGrid):
    """The comparison figure (a matplotlib ``Figure``, Agg canvas; nothing is written).

    Four panels: the Renyi radius, Renyi/PixelDP, Renyi/Cohen over (p1, p2), and slices.

    Raises
    ------
    ValueError
        If the grid has fewer than :data:`MIN_FIGURE_POINTS` valid points.
    """
    return _four_panels(grid, (_draw_renyi, _draw_pixeldp_ratio, _draw_cohen_ratio), _draw_slices,
                        f"Certified ℓ2 radius from (p1, p2), σ = {grid.sigma:g} (Li et al. 2019, Fig. 4, extended)")


def _four_panels(grid, maps, slices, title: str):
    """Three maps over (p1, p2) (each with the valid domain drawn) and a panel of slices."""
    if grid.p1.size < MIN_FIGURE_POINTS:
        raise ValueError(f"the grid (resolution {grid.resolution}, min_total {grid.min_total:g}) has "
                         f"{grid.p1.size} valid point(s); the figure needs at least {MIN_FIGURE_POINTS}")
    fig = new_figure((12, 9.5), layout="constrained")
    axes = fig.subplots(2, 2)
    for ax, draw in zip((axes[0, 0], axes[0, 1], axes[1, 0]), maps):
        draw(fig, ax, grid)
    for ax in (axes[0, 0], axes[0, 1], axes[1, 0]):
        _draw_domain(ax, grid)
    slices(axes[1, 1], grid)
    fig.suptitle(title)
    return fig


def _draw_laplace_renyi(fig, ax, grid: LaplaceGrid) -> None:
    """Laplace panel 1: the Renyi l1 radius over (p1, p2), with contours at multiples of b."""
    b = grid.scale
    im = ax.imshow(_image(grid, grid.renyi), origin="lower", extent=_EXTENT, aspect="auto", cmap="viridis")
    cs = _contour(ax, grid, grid.renyi, [0.25 * b, 0.5 * b, b, 2 * b, 3 * b], colors="white", linewidths=0.8)
    ax.clabel(cs, fmt="%.2g", fontsize=8)
    fig.colorbar(im, ax=ax, label=f"Rényi ℓ1 radius (b = {b:g})")
    ax.set_title("Certified ℓ1 radius, Rényi bound (Laplace noise)")


def _draw_teng_ratio(fig, ax, grid: LaplaceGrid) -> None:
    """Laplace panel 2: Renyi / Teng where Teng > 0 (log colours); grey where Teng certifies nothing."""
    from matplotlib.colors import ListedColormap, LogNorm

    positive = grid.teng > 0
    ratio = np.where(positive, grid.renyi / np.where(positive, grid.teng, 1.0), np.nan)
    finite = ratio[positive] if positive.any() else np.array([1.0])
    vmin, vmax = float(finite.min()), float(finite.max())
    ax.imshow(_image(grid, np.where(positive, np.nan, 1.0)), origin="lower", extent=_EXTENT, aspect="auto",
              cmap=ListedColormap(["0.85"]))
    im = ax.imshow(_image(grid, ratio), origin="lower", extent=_EXTENT, aspect="auto", cmap="viridis",
                   norm=LogNorm(vmin=vmin, vmax=vmax if vmax > vmin else vmin * (1 + 1e-9)))
    cs = _contour(ax, grid, ratio, [1.1, 2.0, 10.0], colors="white", linewidths=0.8)
    ax.clabel(cs, fmt="%g×", fontsize=8)
    if not positive.all():
        ax.text(0.3, 0.05, "Teng: 0 (p1 ≤ 1/2)", ha="center", fontsize=8, color="0.3")
    fig.colorbar(im, ax=ax, label="Rényi / Teng")
    ax.set_title("Rényi over Teng et al. (= 1 on p2 = 1 − p1)")


def _draw_laplace_slices(ax, grid: LaplaceGrid) -> None:
    """Laplace panel 4: the three l1 radii along two slices (two classes; ten classes, uniform rest)."""
    lap = Laplace(grid.scale)
    p1s = np.linspace(min(max(0.5, grid.min_total), 0.99) + 1e-3, 0.999, 400)
    # Teng's radius is the same on both slices, and equals Renyi's on the first: drawn once, wide, beneath
    ax.plot(p1s, lap.radius(p1s, 1.0 - p1s, bound="teng"), color="C2", lw=4, alpha=0.45,
            label="Teng (p1 only; = Rényi when p2 = 1 − p1)")
    for label, p2s, ls in [("two classes: p2 = 1 − p1", 1.0 - p1s, "-"),
                           ("ten classes: p2 = (1 − p1)/9", (1.0 - p1s) / 9.0, "--")]:
        for bound, name, colour in [("renyi", "Rényi", "C0"), ("pixeldp", "PixelDP", "C3")]:
            ax.plot(p1s, lap.radius(p1s, p2s, bound=bound), color=colour, ls=ls, label=f"{name}, {label}")
    _finish_slices(ax, "certified ℓ1 radius")


def laplace_figure(grid: LaplaceGrid):
    """The Laplace comparison figure (a matplotlib ``Figure``, Agg canvas; nothing is written).

    Four panels: the Renyi l1 radius, Renyi/Teng and Renyi/PixelDP over (p1, p2), and slices.

    Raises
    ------
    ValueError
        If the grid has fewer than :data:`MIN_FIGURE_POINTS` valid points.
    """
    return _four_panels(grid, (_draw_laplace_renyi, _draw_teng_ratio, _draw_pixeldp_ratio), _draw_laplace_slices,
                        f"Certified ℓ1 radius from (p1, p2), Laplace noise b = {grid.scale:g}: "
                        "Rényi (Li et al. 2019) vs Teng et al. 2020 vs PixelDP")


def figure_paths(stem: Path) -> list[Path]:
    """Where :func:`plot` writes the figure: ``<stem>.png`` and ``<stem>.pdf``."""
    return [stem.with_suffix(".png"), stem.with_suffix(".pdf")]


def save_figure(fig, stem: Path) -> list[Path]:
    """Write ``fig`` to ``<stem>.png`` and ``<stem>.pdf``, each atomically."""
    paths = figure_paths(stem)
    for p in paths:
        write_figure(fig, p, dpi=130)
    return paths


def plot(grid: ComparisonGrid, stem: Path) -> list[Path]:
    """Draw :func:`figure` and write it to ``<stem>.png`` and ``<stem>.pdf`` (atomically)."""
    return save_figure(figure(grid), stem)


# ------------------------------------------------------------------------------------ command line


def _noise_arg(text: str) -> str:
    """The argparse type of ``--noise``: one of :data:`NOISES` (uniform noise is refused with its reason)."""
    if text == "uniform":
        raise argparse.ArgumentTypeError(
            "noise ('uniform') must be one of " + ", ".join(NOISES) + ": uniform noise has no Renyi certificate to "
            "compare (its Renyi divergences are infinite; see renyi_cert.noise.Uniform)")
    try:
        return parse_choice("noise", text, NOISES)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the command."""
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Renyi vs PixelDP vs Cohen certified l2 radii (Gaussian noise), or Renyi vs Teng vs PixelDP "
                    "certified l1 radii (--noise laplace), over a grid of (p1, p2): CSV, figure, summary.",
    )
    p.add_argument("--noise", type=_noise_arg, default="gaussian",
                   help="gaussian (default: l2 radii, Renyi vs PixelDP vs Cohen) or laplace (l1 radii, Renyi vs "
                        "Teng vs PixelDP)")
    p.add_argument("--sigma", type=real_arg("sigma", 0.0, strict=True), default=None,
                   help="Gaussian noise level (default 1; radii scale with it); Gaussian noise only")
    p.add_argument("--scale", type=real_arg("scale", 0.0, strict=True), default=None,
                   help="Laplace noise scale b (default 1; radii scale with it); --noise laplace only")
    p.add_argument("--grid", type=int_arg("grid resolution", 2), default=1000,
                   help="grid resolution per axis (default 1000)")
    p.add_argument("--min-total", type=real_arg("min-total", 0.0, 1.0), default=0.2,
                   help="keep points with p1 + p2 >= this (default 0.2, the paper's domain; 0 maps where PixelDP wins)")
    p.add_argument("--out", type=Path, default=None,
                   help=f"output folder (default {DEFAULT_OUT['gaussian']}, or {DEFAULT_OUT['laplace']} with "
                        "--noise laplace)")
    p.add_argument("--no-plot", action="store_true", help="skip the figure")
    p.add_argument("--no-csv", action="store_true", help="skip the CSV")
    return p


class _UsageError(Exception):
    """An option that cannot work (printed after the usage line; exit status 2, nothing written)."""


def _resolve_noise(args) -> None:
    """Check that the noise options fit ``--noise`` and fill in the defaults (``sigma``/``scale``, ``out``)."""
    if args.noise == "laplace":
        if args.sigma is not None:
            raise _UsageError(f"--sigma ({args.sigma:g}) is the Gaussian noise level and does not apply to "
                              "--noise laplace: give the Laplace noise scale as --scale")
        args.scale = 1.0 if args.scale is None else args.scale
    else:
        if args.scale is not None:
            raise _UsageError(f"--scale ({args.scale:g}) is the Laplace noise scale and needs --noise laplace "
                              "(the Gaussian noise level is --sigma)")
        args.sigma = 1.0 if args.sigma is None else args.sigma
    args.out = DEFAULT_OUT[args.noise] if args.out is None else args.out


def _check_options(args) -> list[Path]:
    """The noise options checked (:func:`_resolve_noise`), the output files each checked writable,
    the grid checked to keep enough valid points; returns the output files."""
    _resolve_noise(args)
    outputs = (([] if args.no_csv else [args.out / CSV_NAME])
               + ([] if args.no_plot else figure_paths(args.out / FIGURE_STEM)))
    try:
        for path in outputs:
            check_output_path(path, name="--out")
    except OutputPathError as exc:
        raise _UsageError(str(exc)) from None
    needed = 1 if args.no_plot else MIN_FIGURE_POINTS
    points = grid_points(args.grid, args.min_total)[0].size
    if points < needed:
        raise _UsageError(
            f"--grid {args.grid} with --min-total {args.min_total:g} leaves {points} valid grid point(s) "
            f"(p1 > p2, {args.min_total:g} <= p1 + p2 <= 1); "
            + ("the summary needs at least 1: raise --grid or lower --min-total" if args.no_plot else
               f"the figure needs at least {needed}: raise --grid or lower --min-total (or pass --no-plot)"))
    return outputs


def _compute(args) -> _Grid:
    """The grid of the noise ``args.noise``."""
    if args.noise == "laplace":
        return compute_laplace_grid(args.scale, args.grid, args.min_total)
    return compute_grid(args.sigma, args.grid, args.min_total)


def _summary_text(grid: _Grid) -> str:
    """The summary table of either grid."""
    if isinstance(grid, LaplaceGrid):
        return format_laplace_summary(summarize_laplace(grid), grid)
    return format_summary(summarize(grid), grid)


def _write_outputs(args, grid: _Grid, fig) -> list[Path]:
    """The CSV and the figure (each unless skipped) into ``--out``; returns the paths written."""
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _UsageError(f"--out ({str(args.out)!r}) cannot be created: {exc}") from None
    written = []
    if not args.no_csv:
        if isinstance(grid, LaplaceGrid):
            write_laplace_csv(grid, args.out / CSV_NAME)
        else:
            write_csv(grid, args.out / CSV_NAME)
        written.append(args.out / CSV_NAME)
    if fig is not None:
        written += save_figure(fig, args.out / FIGURE_STEM)
    return written


def _run(args) -> int:
    outputs = _check_options(args)
    t0 = time.perf_counter()
    grid = _compute(args)
    t_grid = time.perf_counter() - t0
    text = _summary_text(grid)
    fig = None
    if not args.no_plot:
        fig = laplace_figure(grid) if isinstance(grid, LaplaceGrid) else figure(grid)
    print(text)
    print(f"computed {grid.p1.size:,} x 3 radii in {t_grid:.2f} s")
    written = _write_outputs(args, grid, fig) if outputs else []
    for path in written:
        print(f"wrote {path}")
    return 0


@interruptible(PROG, "no output file was left half-written (each is replaced only when complete)")
def main(argv: Sequence[str] | None = None) -> int:
    """The command; returns 0, or 2 with a message when an option cannot work (nothing is written).

    Invalid flag values exit through argparse (``SystemExit(2)``). Everything else is checked
    before the grid is computed: the noise options fit ``--noise`` (``--sigma`` is Gaussian only,
    ``--scale`` Laplace only), the output files can be written, and the grid keeps at least
    :data:`MIN_FIGURE_POINTS` valid points (one with ``--no-plot``). The figure is drawn before
    any file is written, so a failure leaves no partial set of outputs.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return _run(args)
    except _UsageError as exc:
        parser.print_usage(sys.stderr)
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
