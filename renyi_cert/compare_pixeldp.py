"""Compare the Renyi radius with PixelDP and Cohen et al. over a grid of (p1, p2).

The paper's Figure 4 (Li, Chen, Wang & Carin, NeurIPS 2019) and more: over every grid point with
p1 >= p2, p1 + p2 <= 1 and p1 + p2 >= ``--min-total`` (0.2 in the paper), compute the three
radii, write them to a CSV, draw a figure (PNG and PDF) and print a summary table.

Run ``python -m renyi_cert.compare_pixeldp --help`` for the options. With ``--min-total 0`` the
summary also maps where PixelDP beats the Renyi bound (small p1 + p2, reachable with many
classes), instead of assuming it never does.

Every option is checked before any work and any file is written: the output files must be
writable, and the grid must keep at least :data:`MIN_FIGURE_POINTS` valid points for the figure
(one for ``--no-plot``). The CSV, PNG and PDF are each written atomically (a crash never leaves a
truncated file under the final name).
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ._cli import int_arg, interruptible, real_arg
from ._figures import new_figure
from ._figures import save_figure as write_figure
from ._files import OutputPathError, atomic_output, check_output_path
from .bounds import cohen_radius, pixeldp_details, pixeldp_radius, radius_details
from .bounds import radius as renyi_radius

__all__ = ["PROG", "MIN_FIGURE_POINTS", "CSV_NAME", "FIGURE_STEM", "ComparisonGrid", "ComparisonSummary",
           "grid_points", "compute_grid", "summarize", "format_summary", "write_csv", "figure", "figure_paths",
           "save_figure", "plot", "build_parser", "main"]

PROG = "python -m renyi_cert.compare_pixeldp"
#: Fewest valid grid points the figure is drawn from (its colour scales need distinct values).
MIN_FIGURE_POINTS = 3
CSV_NAME = "radii.csv"
FIGURE_STEM = "comparison"
_EXTENT = (0.0, 1.0, 0.0, 0.5)  # the (p1, p2) square the images cover


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


def _diverging_norm(vmin: float, vcenter: float, vmax: float):
    """A colour scale centred at ``vcenter``; a linear one when the centre is not strictly inside."""
    from matplotlib.colors import Normalize, TwoSlopeNorm

    if vmin < vcenter < vmax:
        return TwoSlopeNorm(vcenter=vcenter, vmin=vmin, vmax=vmax)
    return Normalize(vmin=vmin, vmax=vmax if vmax > vmin else vmin + 1e-12)


def _pixel_index(grid: ComparisonGrid) -> tuple[np.ndarray, np.ndarray]:
    """Each valid point's (row, column) in the ``resolution x resolution`` image of the grid."""
    n = grid.resolution
    ix = np.rint(grid.p1 * n).astype(int) - 1
    iy = np.rint(grid.p2 * 2 * n).astype(int) - 1
    return np.clip(iy, 0, n - 1), ix  # p2 was capped at 1 - p1 on the diagonal


def _image(grid: ComparisonGrid, values: np.ndarray) -> np.ma.MaskedArray:
    """``values`` (one per valid point) as an image over (p1, p2); invalid points masked."""
    n = grid.resolution
    iy, ix = _pixel_index(grid)
    img = np.full((n, n), np.nan)
    img[iy, ix] = values
    return np.ma.masked_invalid(img)


def _contour(ax, grid: ComparisonGrid, values: np.ndarray, levels, **kwargs):
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


def _draw_pixeldp_ratio(fig, ax, grid: ComparisonGrid) -> None:
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


def _draw_domain(ax, grid: ComparisonGrid) -> None:
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
    ax.set_xlabel("p1")
    ax.set_ylabel("certified radius")
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
    if grid.p1.size < MIN_FIGURE_POINTS:
        raise ValueError(f"the grid (resolution {grid.resolution}, min_total {grid.min_total:g}) has "
                         f"{grid.p1.size} valid point(s); the figure needs at least {MIN_FIGURE_POINTS}")
    fig = new_figure((12, 9.5), layout="constrained")
    axes = fig.subplots(2, 2)
    _draw_renyi(fig, axes[0, 0], grid)
    _draw_pixeldp_ratio(fig, axes[0, 1], grid)
    _draw_cohen_ratio(fig, axes[1, 0], grid)
    for ax in (axes[0, 0], axes[0, 1], axes[1, 0]):
        _draw_domain(ax, grid)
    _draw_slices(axes[1, 1], grid)
    fig.suptitle(f"Certified ℓ2 radius from (p1, p2), σ = {grid.sigma:g} (Li et al. 2019, Fig. 4, extended)")
    return fig


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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the command."""
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Renyi vs PixelDP vs Cohen certified radii over a grid of (p1, p2): CSV, figure, summary.",
    )
    p.add_argument("--sigma", type=real_arg("sigma", 0.0, strict=True), default=1.0,
                   help="noise level (default 1; radii scale with it)")
    p.add_argument("--grid", type=int_arg("grid resolution", 2), default=1000,
                   help="grid resolution per axis (default 1000)")
    p.add_argument("--min-total", type=real_arg("min-total", 0.0, 1.0), default=0.2,
                   help="keep points with p1 + p2 >= this (default 0.2, the paper's domain; 0 maps where PixelDP wins)")
    p.add_argument("--out", type=Path, default=Path("runs/compare_pixeldp"), help="output folder (default runs/compare_pixeldp)")
    p.add_argument("--no-plot", action="store_true", help="skip the figure")
    p.add_argument("--no-csv", action="store_true", help="skip the CSV")
    return p


class _UsageError(Exception):
    """An option that cannot work (printed after the usage line; exit status 2, nothing written)."""


def _check_options(args) -> list[Path]:
    """The output files, each checked writable; the grid checked to keep enough valid points."""
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


def _write_outputs(args, grid: ComparisonGrid, fig) -> list[Path]:
    """The CSV and the figure (each unless skipped) into ``--out``; returns the paths written."""
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _UsageError(f"--out ({str(args.out)!r}) cannot be created: {exc}") from None
    written = []
    if not args.no_csv:
        write_csv(grid, args.out / CSV_NAME)
        written.append(args.out / CSV_NAME)
    if fig is not None:
        written += save_figure(fig, args.out / FIGURE_STEM)
    return written


def _run(args) -> int:
    outputs = _check_options(args)
    t0 = time.perf_counter()
    grid = compute_grid(args.sigma, args.grid, args.min_total)
    t_grid = time.perf_counter() - t0
    summary = summarize(grid)
    fig = None if args.no_plot else figure(grid)
    print(format_summary(summary, grid))
    print(f"computed {summary.points:,} x 3 radii in {t_grid:.2f} s")
    written = _write_outputs(args, grid, fig) if outputs else []
    for path in written:
        print(f"wrote {path}")
    return 0


@interruptible(PROG, "no output file was left half-written (each is replaced only when complete)")
def main(argv: Sequence[str] | None = None) -> int:
    """The command; returns 0, or 2 with a message when an option cannot work (nothing is written).

    Invalid flag values exit through argparse (``SystemExit(2)``). Everything else is checked
    before the grid is computed: the output files can be written, and the grid keeps at least
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
