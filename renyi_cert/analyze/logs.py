"""Reading certification logs: Cohen et al.'s format and ours, checked row by row.

Reads the tab-separated logs written by Cohen et al.'s ``certify.py`` (locuslab/smoothing),
``idx label predict radius correct time``, and the logs of our ``certify`` tool, which keep those
six columns first (so Cohen's own analysis reads them) and add ``p1_lower p2_upper``, one
``radius_<bound>`` column per certified-radius bound (``radius_renyi``, ``radius_cohen``, ...) and
a ``guaranteed`` column (1 when the row's certificate holds with probability ``1 - alpha``, 0
when it was made with ``certify --allow-unguaranteed``), then ``forward_passes`` (noisy samples
drawn for the row) and ``stop`` (``fixed-n``, or why ``certify --adaptive`` stopped sampling).
Logs of older versions without these columns still read.

A log is refused (:class:`LogFormatError`, naming the file, line and column) when it is not UTF-8
text, a cell is not a number, ``correct`` disagrees with ``predict == label``, or an example
``idx`` appears twice (two runs writing to one log). The statistics of a log are in
:mod:`renyi_cert.analyze`.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field

import numpy as np

from ..sequential import STOP_REASONS

__all__ = ["COHEN_COLUMNS", "EXTRA_COLUMNS", "RADIUS_PREFIX", "GUARANTEED_COLUMN", "FORWARD_PASSES_COLUMN", "L1_ONLY_BOUNDS",
           "STOP_COLUMN", "FIXED_STOP", "STOP_VALUES", "CertificationLog", "LogFormatError", "read_log", "parse_time",
           "format_idx_list"]

#: The six columns of Cohen et al.'s logs, in order; our logs start with the same six.
COHEN_COLUMNS = ("idx", "label", "predict", "radius", "correct", "time")
#: Columns our logs add after the six above (then one ``radius_<bound>`` column per bound).
EXTRA_COLUMNS = ("p1_lower", "p2_upper")
RADIUS_PREFIX = "radius_"
#: Optional last column of our logs: 1 if the row's certificate carries the 1 - alpha guarantee.
GUARANTEED_COLUMN = "guaranteed"
#: Optional columns: noisy forward passes spent on the row, and why sampling stopped.
FORWARD_PASSES_COLUMN = "forward_passes"
STOP_COLUMN = "stop"
#: The ``stop`` cell of a row certified with a fixed number of samples.
FIXED_STOP = "fixed-n"
#: Every value a ``stop`` cell may hold: :data:`FIXED_STOP` and the adaptive stop reasons.
STOP_VALUES = (FIXED_STOP,) + tuple(reason.replace(" ", "-") for reason in STOP_REASONS)

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
    forward_passes : ndarray of int64 or None
        Noisy samples drawn for each row (selection + estimation); None when the log has no
        such column.
    stop : tuple of str or None
        Why sampling stopped, one of :data:`STOP_VALUES` per row; None when the log has no such
        column.
    norm : str
        The threat norm of the radii, ``"l2"`` or ``"l1"``: the ``norm`` of the log's settings
        file (``<log>.json``, written by ``certify``) when it has one, else ``"l1"`` when a column
        is one of the l1-only bounds (:data:`L1_ONLY_BOUNDS`), else ``"l2"`` (Gaussian noise,
        Cohen et al.'s logs).
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
    forward_passes: np.ndarray | None = None
    stop: tuple[str, ...] | None = None
    norm: str = "l2"

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


# ------------------------------------------------------------------------------------------ cells


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


# ------------------------------------------------------------------------------------ the steps


@dataclass
class _Table:
    """The parsed columns of a log while it is read (``rows`` keeps each row's line number)."""

    header: list
    rows: list
    int_cols: tuple
    float_cols: tuple
    bound_cols: tuple
    str_cols: tuple = ()
    ints: dict = field(default_factory=dict)
    strs: dict = field(default_factory=dict)
    floats: dict = field(default_factory=dict)
    times: np.ndarray | None = None


def _read_text(path: str) -> str:
    """The file's text; refuses a missing file, a folder and anything but UTF-8 text."""
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
    return text


def _check_header(path: str, header: list) -> tuple[str, ...]:
    """The ``radius_<bound>`` columns of a header that has every column its format needs."""
    missing = [c for c in COHEN_COLUMNS if c not in header]
    if missing:
        raise LogFormatError(
            f"{path}: missing column(s) {', '.join(repr(c) for c in missing)} "
            f"(found {', '.join(repr(h) for h in header)}; expected tab-separated "
            f"{' '.join(COHEN_COLUMNS)})"
        )
    bound_cols = tuple(h for h in header if h.startswith(RADIUS_PREFIX) and len(h) > len(RADIUS_PREFIX))
    missing = [c for c in EXTRA_COLUMNS if c not in header] if bound_cols else []
    if missing:
        raise LogFormatError(
            f"{path}: has radius_<bound> columns but is missing column(s) {', '.join(repr(c) for c in missing)}"
        )
    if len(set(header)) != len(header):
        dup = sorted({h for h in header if header.count(h) > 1})
        raise LogFormatError(f"{path}: duplicate column(s) {', '.join(repr(d) for d in dup)}")
    return bound_cols


def _split(path: str, text: str) -> _Table:
    """Header and data rows (blank lines skipped), the header checked."""
    lines = [(lineno, line) for lineno, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines:
        raise LogFormatError(f"{path}: the file is empty (expected a header row: {' '.join(COHEN_COLUMNS)})")
    header = [h.strip() for h in lines[0][1].split("\t")]
    bound_cols = _check_header(path, header)
    if len(lines) == 1:
        raise LogFormatError(f"{path}: no data rows after the header")
    int_cols = ("idx", "label", "predict", "correct") + tuple(
        c for c in (GUARANTEED_COLUMN, FORWARD_PASSES_COLUMN) if c in header)
    float_cols = ("radius",) + ((*EXTRA_COLUMNS, *bound_cols) if bound_cols else ())
    str_cols = (STOP_COLUMN,) if STOP_COLUMN in header else ()
    return _Table(header=header, rows=lines[1:], int_cols=int_cols, float_cols=float_cols, bound_cols=bound_cols,
                  str_cols=str_cols)


def _parse_cell(path: str, lineno: int, column: str, cell: str, parse, what: str):
    try:
        return parse(cell)
    except ValueError:
        raise LogFormatError(f"{path}: line {lineno}, column {column!r}: {cell!r} is not {what}") from None


def _parse_rows(path: str, table: _Table) -> None:
    """Fill ``table``'s columns from its rows (the first bad cell is named by line and column)."""
    n, col = len(table.rows), {name: i for i, name in enumerate(table.header)}
    table.ints = {c: np.empty(n, dtype=np.int64) for c in table.int_cols}
    table.floats = {c: np.empty(n, dtype=np.float64) for c in table.float_cols}
    table.times = np.empty(n, dtype=np.float64)
    table.strs = {c: [] for c in table.str_cols}
    for r, (lineno, line) in enumerate(table.rows):
        cells = line.split("\t")
        if len(cells) != len(table.header):
            raise LogFormatError(
                f"{path}: line {lineno} has {len(cells)} cells, the header has {len(table.header)} columns"
            )
        for c in table.int_cols:
            table.ints[c][r] = _parse_cell(path, lineno, c, cells[col[c]], _parse_int, "an integer")
        for c in table.float_cols:
            table.floats[c][r] = _parse_cell(path, lineno, c, cells[col[c]], _parse_float, "a number")
        for c in table.str_cols:
            cell = cells[col[c]].strip()
            if cell not in STOP_VALUES:
                raise LogFormatError(f"{path}: line {lineno}, column {c!r}: {cell!r} is not one of "
                                     + ", ".join(STOP_VALUES))
            table.strs[c].append(cell)
        try:
            table.times[r] = parse_time(cells[col["time"]])
        except ValueError as exc:
            raise LogFormatError(f"{path}: line {lineno}, column 'time': {exc}") from None


def _check_values(path: str, table: _Table) -> None:
    """0/1 flags, ``correct == (predict == label)``, each ``idx`` once, radii >= 0."""
    ints, floats, rows = table.ints, table.floats, table.rows
    for c in (c for c in ("correct", GUARANTEED_COLUMN) if c in ints):
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
        raise LogFormatError(f"{path}: duplicate idx {format_idx_list(dup)} (each example must appear once; "
                             "two runs may have written to this log)")
    if FORWARD_PASSES_COLUMN in ints and (ints[FORWARD_PASSES_COLUMN] < 1).any():
        i = int(np.argmax(ints[FORWARD_PASSES_COLUMN] < 1))
        raise LogFormatError(f"{path}: line {rows[i][0]}, column {FORWARD_PASSES_COLUMN!r}: "
                             f"{int(ints[FORWARD_PASSES_COLUMN][i])} must be >= 1")
    for c in (c for c in table.float_cols if c.startswith("radius")):
        bad = floats[c] < 0
        if bad.any():
            i = int(np.argmax(bad))
            raise LogFormatError(f"{path}: line {rows[i][0]}, column {c!r}: {float(floats[c][i])!r} must be >= 0")


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
    table = _split(path, _read_text(path))
    _parse_rows(path, table)
    _check_values(path, table)
    ints, floats = table.ints, table.floats
    assert table.times is not None  # filled by _parse_rows
    if table.bound_cols:
        radii = {c[len(RADIUS_PREFIX):]: floats[c] for c in table.bound_cols}
    else:
        radii = {"radius": floats["radius"]}
    return CertificationLog(path=path, idx=ints["idx"], label=ints["label"], predict=ints["predict"],
                            correct=ints["correct"], time=table.times, radii=radii, p1_lower=floats.get("p1_lower"),
                            p2_upper=floats.get("p2_upper"), guaranteed=ints.get(GUARANTEED_COLUMN),
                            forward_passes=ints.get(FORWARD_PASSES_COLUMN),
                            stop=tuple(table.strs[STOP_COLUMN]) if STOP_COLUMN in table.strs else None,
                            norm=_norm(path, radii))


#: Bounds that exist only for l1 noises (Teng et al.'s Laplace bound, Yang et al.'s uniform bound).
L1_ONLY_BOUNDS = ("teng", "yang")


def _norm(path: str, radii: dict) -> str:
    """The log's threat norm: its settings file's ``norm``, else guessed from its bound columns."""
    import json

    try:
        with open(path + ".json", encoding="utf-8") as fh:
            saved = json.load(fh)
    except (OSError, ValueError):
        saved = None
    if isinstance(saved, dict) and saved.get("norm") in ("l1", "l2"):
        return str(saved["norm"])
    return "l1" if any(b in L1_ONLY_BOUNDS for b in radii) else "l2"
