"""Analysis of certification logs: certified accuracy vs radius, abstain rate, ACR, plots.

Reads the tab-separated logs written by Cohen et al.'s ``certify.py`` (locuslab/smoothing),
``idx label predict radius correct time``, and the logs of our ``certify`` tool, which keep those
six columns first (so Cohen's own analysis reads them) and add ``p1_lower p2_upper``, one
``radius_<bound>`` column per certified-radius bound (``radius_renyi``, ``radius_cohen``, ...) and
a last ``guaranteed`` column (1 when the row's certificate holds with probability ``1 - alpha``, 0
when it was made with ``certify --allow-unguaranteed``; older logs without it still read).
A log with a row that is not guaranteed is labelled "(not guaranteed)" in tables and plots.

A log is refused (:class:`LogFormatError`, naming the file, line and column) when it is not UTF-8
text, a cell is not a number, ``correct`` disagrees with ``predict == label``, or an example
``idx`` appears twice (two runs writing to one log).

Conventions (those of Cohen et al.'s ``analyze.py``, ``ApproximateAccuracy.at_radius``):
the certified accuracy at radius ``r`` is the fraction of *all* rows with ``correct == 1`` and
``radius >= r`` (abstentions count as failures; the boundary ``radius == r`` counts as certified).
With these conventions the published table of Cohen et al. (CIFAR-10, ResNet-110, sigma 0.25:
0.60/0.43/0.27/0.00, sigma 0.50: 0.55/0.41/0.32/0.23 at r = 0.25/0.5/0.75/1.0) is reproduced
exactly from their logs.

This module never imports torch. ``main(argv=None)`` is the ``renyi-analyze`` command.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ._cli import interruptible
from ._files import OutputPathError, atomic_output, atomic_write_text, check_output_path

logger = logging.getLogger(__name__)

#: The six columns of Cohen et al.'s logs, in order; our logs start with the same six.
COHEN_COLUMNS = ("idx", "label", "predict", "radius", "correct", "time")
#: Columns our logs add after the six above (then one ``radius_<bound>`` column per bound).
EXTRA_COLUMNS = ("p1_lower", "p2_upper")
RADIUS_PREFIX = "radius_"
#: Optional last column of our logs: 1 if the row's certificate carries the 1 - alpha guarantee.
GUARANTEED_COLUMN = "guaranteed"
#: What tables and plots append to the label of a log with rows that are not guaranteed.
NOT_GUARANTEED = " (not guaranteed)"

DEFAULT_RADII = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)

_TIMEDELTA = re.compile(
    r"^\s*(?:(?P<days>-?\d+) days?, )?(?P<h>\d+):(?P<m>\d{2}):(?P<s>\d{2}(?:\.\d+)?)\s*$"
)


class LogFormatError(ValueError):
    """A certification log that cannot be read (missing columns, non-numeric cells, ...)."""


@dataclass(frozen=True)
class CertificationLog:
    """One certification log, parsed.

    Attributes
    ----------
    path : str
        Where it was read from.
    idx, label, predict, correct : ndarray of int64, shape (N,)
        Dataset index, true label, smoothed prediction (-1 = abstain), 1 if ``predict == label``.
    time : ndarray of float64, shape (N,)
        Seconds spent on each example (``H:MM:SS.ffffff`` cells are converted).
    radii : dict of str -> ndarray of float64
        Certified radius per bound. For our logs the keys are the bound names of the
        ``radius_<bound>`` columns (``"renyi"``, ``"cohen"``, ...); for a Cohen-format log the only
        key is ``"radius"`` (the column of that name).
    p1_lower, p2_upper : ndarray of float64 or None
        The confidence bounds of our logs; None for Cohen-format logs.
    guaranteed : ndarray of int64 or None
        1 where the row's certificate holds with probability ``1 - alpha``, 0 where it was made
        without that guarantee (``certify --allow-unguaranteed``); None when the log has no
        ``guaranteed`` column (Cohen-format logs and logs of older versions).
    """

    path: str
    idx: np.ndarray
    label: np.ndarray
    predict: np.ndarray
    correct: np.ndarray
    time: np.ndarray
    radii: dict = field(default_factory=dict)
    p1_lower: np.ndarray | None = None
    p2_upper: np.ndarray | None = None
    guaranteed: np.ndarray | None = None

    @property
    def not_guaranteed(self) -> bool:
        """True when some row was certified without the ``1 - alpha`` guarantee."""
        return self.guaranteed is not None and bool(np.any(self.guaranteed == 0))

    @property
    def bounds(self) -> tuple[str, ...]:
        """The names of the radius columns, in file order."""
        return tuple(self.radii)

    def __len__(self) -> int:
        return int(self.idx.shape[0])


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


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def parse_time(cell: str) -> float:
    """Seconds from a time cell: a number of seconds or ``[D day[s], ]H:MM:SS[.ffffff]``.

    Raises
    ------
    ValueError
        If the cell is neither.
    """
    text = cell.strip()
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"time ({cell!r}) must be a finite number of seconds >= 0")
        return value
    match = _TIMEDELTA.match(text)
    if match is None:
        raise ValueError(f"time ({cell!r}) must be seconds or H:MM:SS[.ffffff]")
    days = int(match.group("days") or 0)
    return days * 86400.0 + int(match.group("h")) * 3600.0 + int(match.group("m")) * 60.0 + float(match.group("s"))


def format_idx_list(indices, limit: int = 10) -> str:
    """``"0, 10, 20"`` for a message: the first ``limit`` indices, then ``", ... (N in all)"``."""
    items = [int(i) for i in indices]
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def _parse_int(cell: str) -> int:
    text = cell.strip()
    try:
        return int(text)
    except ValueError:
        value = float(text)  # "3.0" is accepted, "x" raises
        if not value.is_integer():
            raise ValueError(cell) from None
        return int(value)


def _parse_float(cell: str) -> float:
    value = float(cell.strip())  # accepts "inf", refuses "" and text
    if math.isnan(value):
        raise ValueError(cell)
    return value


def read_log(path: str | os.PathLike) -> CertificationLog:
    """Read a certification log in Cohen et al.'s format or ours.

    Parameters
    ----------
    path : str or path-like
        A tab-separated file with a header row.

    Returns
    -------
    CertificationLog

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    LogFormatError
        If the file is not UTF-8 text, a required column is missing (they are all named), a cell
        is not a number (row and column named), the file has no data rows, ``correct`` (or
        ``guaranteed``) is not 0/1, ``correct`` is not 1 exactly when ``predict == label``, or an
        ``idx`` appears more than once (the duplicates are named).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"certification log {path!r} does not exist")
    if os.path.isdir(path):
        raise LogFormatError(f"certification log {path!r} is a directory, not a file")
    with open(path, "rb") as fh:
        data = fh.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:
        raise LogFormatError(f"{path} is not a text certification log (not UTF-8 text)")
    lines = text.splitlines()
    lines = [(lineno, line) for lineno, line in enumerate(lines, start=1) if line.strip()]
    if not lines:
        raise LogFormatError(f"{path}: the file is empty (expected a header row: {' '.join(COHEN_COLUMNS)})")
    header = [h.strip() for h in lines[0][1].split("\t")]
    missing = [c for c in COHEN_COLUMNS if c not in header]
    if missing:
        raise LogFormatError(
            f"{path}: missing column(s) {', '.join(repr(c) for c in missing)} "
            f"(found {', '.join(repr(h) for h in header)}; expected tab-separated "
            f"{' '.join(COHEN_COLUMNS)})"
        )
    bound_cols = [h for h in header if h.startswith(RADIUS_PREFIX) and len(h) > len(RADIUS_PREFIX)]
    ours = bool(bound_cols)
    if ours:
        missing = [c for c in EXTRA_COLUMNS if c not in header]
        if missing:
            raise LogFormatError(
                f"{path}: has radius_<bound> columns but is missing column(s) "
                f"{', '.join(repr(c) for c in missing)}"
            )
    if len(set(header)) != len(header):
        dup = sorted({h for h in header if header.count(h) > 1})
        raise LogFormatError(f"{path}: duplicate column(s) {', '.join(repr(d) for d in dup)}")
    rows = lines[1:]
    if not rows:
        raise LogFormatError(f"{path}: no data rows after the header")
    col = {name: i for i, name in enumerate(header)}
    int_cols = ("idx", "label", "predict", "correct") + ((GUARANTEED_COLUMN,) if GUARANTEED_COLUMN in header else ())
    float_cols = ["radius"] + (list(EXTRA_COLUMNS) + bound_cols if ours else [])
    ints = {c: np.empty(len(rows), dtype=np.int64) for c in int_cols}
    floats = {c: np.empty(len(rows), dtype=np.float64) for c in float_cols}
    times = np.empty(len(rows), dtype=np.float64)
    for r, (lineno, line) in enumerate(rows):
        cells = line.split("\t")
        if len(cells) != len(header):
            raise LogFormatError(
                f"{path}: line {lineno} has {len(cells)} cells, the header has {len(header)} columns"
            )
        for c in int_cols:
            try:
                ints[c][r] = _parse_int(cells[col[c]])
            except ValueError:
                raise LogFormatError(
                    f"{path}: line {lineno}, column {c!r}: {cells[col[c]]!r} is not an integer"
                ) from None
        for c in float_cols:
            try:
                floats[c][r] = _parse_float(cells[col[c]])
            except ValueError:
                raise LogFormatError(
                    f"{path}: line {lineno}, column {c!r}: {cells[col[c]]!r} is not a number"
                ) from None
        try:
            times[r] = parse_time(cells[col["time"]])
        except ValueError as exc:
            raise LogFormatError(f"{path}: line {lineno}, column 'time': {exc}") from None
    for c in ("correct", GUARANTEED_COLUMN):
        if c in ints:
            bad = ~np.isin(ints[c], (0, 1))
            if bad.any():
                i = int(np.argmax(bad))
                raise LogFormatError(f"{path}: line {rows[i][0]}, column {c!r}: {int(ints[c][i])} must be 0 or 1")
    bad = ints["correct"] != (ints["predict"] == ints["label"])
    if bad.any():
        i = int(np.argmax(bad))
        p, lab = int(ints["predict"][i]), int(ints["label"][i])
        raise LogFormatError(
            f"{path}: line {rows[i][0]}: correct is {int(ints['correct'][i])} but predict ({p}) "
            f"{'==' if p == lab else '!='} label ({lab}); correct must be 1 exactly when predict == label"
        )
    uniq, counts = np.unique(ints["idx"], return_counts=True)
    dup = uniq[counts > 1]
    if dup.size:
        raise LogFormatError(
            f"{path}: duplicate idx {format_idx_list(dup)} (each example must appear once; two runs may have written to this log)"
        )
    for c in float_cols:
        if c.startswith("radius"):
            bad = floats[c] < 0
            if bad.any():
                i = int(np.argmax(bad))
                raise LogFormatError(
                    f"{path}: line {rows[i][0]}, column {c!r}: {float(floats[c][i])!r} must be >= 0"
                )
    if ours:
        radii = {c[len(RADIUS_PREFIX):]: floats[c] for c in bound_cols}
    else:
        radii = {"radius": floats["radius"]}
    return CertificationLog(
        path=path,
        idx=ints["idx"],
        label=ints["label"],
        predict=ints["predict"],
        correct=ints["correct"],
        time=times,
        radii=radii,
        p1_lower=floats.get("p1_lower"),
        p2_upper=floats.get("p2_upper"),
        guaranteed=ints.get(GUARANTEED_COLUMN),
    )


# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------


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
    out = []
    for bound in log.bounds:
        out.append(
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
            )
        )
    return out


def markdown_table(summaries: Sequence[BoundSummary], digits: int = 3) -> str:
    """A markdown table: one row per (log, bound), certified accuracy at each radius.

    Columns: log, bound, examples, clean accuracy, abstain rate, ACR, ``r = ...`` for each radius.
    All summaries must share the same radius grid.
    """
    if not summaries:
        raise ValueError("summaries must not be empty")
    radii = summaries[0].radii
    for s in summaries:
        if s.radii != radii:
            raise ValueError(f"all summaries must share one radius grid; got {s.radii} and {radii}")
    fmt = f"{{:.{digits}f}}"
    head = ["log", "bound", "n", "clean acc", "abstain", "ACR"] + [f"r = {x:g}" for x in radii]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|"]
    for s in summaries:
        cells = [s.label, s.bound, str(s.num_examples), fmt.format(s.clean_accuracy), fmt.format(s.abstain_rate),
                 fmt.format(s.average_certified_radius)] + [fmt.format(a) for a in s.certified_accuracy]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


_BOUND_NAMES = {"renyi": "Rényi (Li et al.)", "cohen": "Cohen et al.", "pixeldp": "PixelDP", "radius": "radius"}


def plot_certified_accuracy(
    logs: Sequence[CertificationLog],
    out_stem: str | os.PathLike,
    *,
    labels: Sequence[str] | None = None,
    max_radius: float | None = None,
    title: str | None = None,
    num_points: int = 400,
) -> tuple[str, str]:
    """Plot certified accuracy against radius (the paper's Figure 1 style), one line per
    (log, bound); write ``<out_stem>.png`` and ``<out_stem>.pdf``, each atomically (an existing
    file is replaced only by a complete one).

    Uses matplotlib's object-oriented API with the Agg canvas (no pyplot, no global backend
    change, no display needed). A log with rows that are not guaranteed has " (not guaranteed)"
    in its legend entries.

    Returns
    -------
    (png_path, pdf_path)
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not logs:
        raise ValueError("logs must not be empty")
    if labels is None:
        labels = [os.path.basename(log.path) for log in logs]
    if len(labels) != len(logs):
        raise ValueError(f"labels ({len(labels)}) must have one entry per log ({len(logs)})")
    if max_radius is None:
        finite = [rad[np.isfinite(rad) & (log.correct == 1)] for log in logs for rad in log.radii.values()]
        top = max((float(f.max()) for f in finite if f.size), default=0.0)
        max_radius = max(top * 1.05, 0.1)
    if not (math.isfinite(max_radius) and max_radius > 0):
        raise ValueError(f"max_radius ({max_radius!r}) must be finite and > 0")
    grid = np.linspace(0.0, max_radius, num_points)
    fig = Figure(figsize=(6.0, 4.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    styles = ["-", "--", ":", "-."]
    for i, (log, lab) in enumerate(zip(logs, labels)):
        for j, bound in enumerate(log.bounds):
            name = _BOUND_NAMES.get(bound, bound)
            if len(logs) == 1:
                legend = display_label(log, name)
            elif len(log.bounds) == 1:
                legend = display_label(log, lab)
            else:
                legend = f"{display_label(log, lab)}: {name}"
            ax.plot(grid, certified_accuracy(log, grid, bound), styles[i % len(styles)], label=legend,
                    color=f"C{j if len(logs) == 1 or len(log.bounds) > 1 else i}")
    ax.set_xlabel("radius (ℓ2, [0,1] pixel units)")
    ax.set_ylabel("certified accuracy")
    ax.set_xlim(0.0, max_radius)
    ax.set_ylim(0.0, 1.0)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize="small")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    stem = os.fspath(out_stem)
    parent = os.path.dirname(stem)
    if parent:
        os.makedirs(parent, exist_ok=True)
    png, pdf = stem + ".png", stem + ".pdf"
    with atomic_output(png) as tmp:
        fig.savefig(tmp, dpi=150, format="png")
    with atomic_output(pdf) as tmp:
        fig.savefig(tmp, format="pdf")
    return png, pdf


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def parse_radii(text: str) -> tuple[float, ...]:
    """Parse ``"0.25,0.5,1"`` into radii; ValueError naming the bad entry."""
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise ValueError(f"radii ({text!r}) contains an empty entry")
        try:
            value = float(part)
        except ValueError:
            raise ValueError(f"radius ({part!r}) in --radii is not a number") from None
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"radius ({part!r}) in --radii must be finite and >= 0")
        out.append(value)
    return tuple(out)


PROG = "renyi-analyze"
#: The files ``--out DIR`` receives.
REPORT_NAMES = ("certified_accuracy.md", "certified_accuracy.png", "certified_accuracy.pdf")


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    """The argument parser; ``prog`` is the command's name in usage and help."""
    p = argparse.ArgumentParser(
        prog=prog,
        description="Certified accuracy vs radius, abstain rate and average certified radius of "
        "certification logs (Cohen et al.'s TSV format or renyi_cert's).",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="certification log(s) (TSV)")
    p.add_argument("--radii", default=",".join(f"{r:g}" for r in DEFAULT_RADII),
                   help="comma-separated radius grid (default: %(default)s)")
    p.add_argument("--labels", default=None, help="comma-separated display labels, one per FILE")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="write certified_accuracy.md/.png/.pdf to DIR (default: print only)")
    p.add_argument("--max-radius", type=float, default=None, help="x-axis limit of the plot")
    p.add_argument("--title", default=None, help="plot title")
    p.add_argument("--digits", type=int, default=3, help="decimals in the table (default: %(default)s)")
    return p


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    """The ``renyi-analyze`` command. Returns the exit status (0 ok, 2 bad usage or input, 130 on Ctrl-C).

    ``prog`` names the command in usage, help and messages (``renyi-cert analyze`` when called
    through the umbrella command).
    """
    return interruptible(prog, "report files are replaced only when complete")(_main)(argv, prog)


def _main(argv: Sequence[str] | None, prog: str) -> int:
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed the message
        return int(exc.code or 0)

    def fail(msg: str) -> int:
        parser.print_usage(sys.stderr)
        print(f"{prog}: error: {msg}", file=sys.stderr)
        return 2

    try:
        radii = parse_radii(args.radii)
    except ValueError as exc:
        return fail(str(exc))
    labels = None
    if args.labels is not None:
        labels = [s.strip() for s in args.labels.split(",")]
        if len(labels) != len(args.files):
            return fail(f"--labels ({args.labels!r}) has {len(labels)} entries for {len(args.files)} file(s)")
    if args.max_radius is not None and not (math.isfinite(args.max_radius) and args.max_radius > 0):
        return fail(f"--max-radius ({args.max_radius!r}) must be finite and > 0")
    if not 0 <= args.digits <= 12:
        return fail(f"--digits ({args.digits}) must be in 0..12")
    if args.out is not None:
        try:
            for name in REPORT_NAMES:
                check_output_path(os.path.join(args.out, name), name="--out")
        except OutputPathError as exc:
            return fail(str(exc))
    logs = []
    for path in args.files:
        try:
            logs.append(read_log(path))
        except (OSError, ValueError) as exc:
            return fail(str(exc))
    if labels is None:
        labels = [os.path.basename(log.path) for log in logs]
    for log, lab in zip(logs, labels):
        if log.not_guaranteed:
            print(f"{prog}: warning: {lab}: {int(np.sum(log.guaranteed == 0))} of {len(log)} rows were certified "
                  "without the 1 - alpha guarantee (certify --allow-unguaranteed)", file=sys.stderr)
    summaries = [s for log, lab in zip(logs, labels) for s in summarize(log, radii, label=lab)]
    table = markdown_table(summaries, digits=args.digits)
    print(table)
    if args.out is not None:
        try:
            os.makedirs(args.out, exist_ok=True)
            md = os.path.join(args.out, REPORT_NAMES[0])
            atomic_write_text(md, table + "\n")
            png, pdf = plot_certified_accuracy(logs, os.path.join(args.out, "certified_accuracy"), labels=labels,
                                               max_radius=args.max_radius, title=args.title)
        except OSError as exc:
            return fail(f"cannot write to --out ({args.out!r}): {exc}")
        print(f"\nwrote {md}, {png}, {pdf}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
