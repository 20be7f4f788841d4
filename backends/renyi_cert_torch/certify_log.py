"""The certification log of ``certify``: its columns, rows, settings file and resume checks.

The log is a TSV file. The first six columns are those of Cohen et al.'s ``certify.py``
(``idx label predict radius correct time``; ``radius`` is the first bound's, ``time`` in
seconds), so their analysis scripts read our logs; then ``p1_lower p2_upper``, one
``radius_<bound>`` column per bound, ``guaranteed`` (1 when the row's certificate holds with
probability ``1 - alpha``), ``forward_passes`` (noisy samples drawn for the row) and ``stop``
(``fixed-n`` or why ``--adaptive`` stopped sampling). :mod:`renyi_cert.analyze` reads it.

The settings go to a sidecar ``<out>.json`` (format :data:`SIDECAR_FORMAT`): the settings that
give the rows their meaning (:data:`RESUME_KEYS`, which ``--resume`` checks), those that may
change between runs (:data:`SOFT_KEYS`), and ``runs``, the history of every run that wrote to the
log (:data:`RUN_KEYS` and ``first_row``, the rows the log held when it started).
"""

from __future__ import annotations

import json
import math
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from renyi_cert.analyze.logs import FIXED_STOP, FORWARD_PASSES_COLUMN, STOP_COLUMN

__all__ = ["SIDECAR_FORMAT", "RESUME_KEYS", "SOFT_KEYS", "RUN_KEYS", "GUARANTEED_COLUMN", "COST_COLUMNS", "FIXED_STOP",
           "CertifyError", "planned_indices", "tsv_header", "format_row", "sidecar_path", "read_finished",
           "run_entry", "check_resume", "sort_log"]

SIDECAR_SUFFIX = ".json"
SIDECAR_FORMAT = "renyi_cert-certify/4"
GUARANTEED_COLUMN = "guaranteed"
#: Noisy forward passes spent on the row (selection + estimation), and why sampling stopped.
COST_COLUMNS = (FORWARD_PASSES_COLUMN, STOP_COLUMN)
# Settings a resumed run must share with the run it continues (they change the rows' meaning).
RESUME_KEYS = ("checkpoint_sha256", "dataset", "split", "sigma", "noise", "n0", "n", "alpha", "method", "bounds",
               "single_sample_set", "allow_unguaranteed", "adaptive", "amp", "skip", "seed", "split_example")
# Settings that may differ on resume (rows stay valid, but are not bit-identical to a single run).
SOFT_KEYS = ("batch", "device", "channels_last")
# What the sidecar's ``runs`` history records of each run that wrote to the log.
RUN_KEYS = SOFT_KEYS + ("workers", "checkpoint", "torch", "renyi_cert")


class CertifyError(Exception):
    """A user error in ``certify`` (printed as ``certify: error: ...``, exit status 2)."""


def planned_indices(num_examples: int, skip: int = 1, max_examples: int | None = None) -> list[int]:
    """Indices 0, skip, 2*skip, ... below ``num_examples``, at most ``max_examples`` of them."""
    idx = list(range(0, num_examples, skip))
    return idx if max_examples is None else idx[:max_examples]


def tsv_header(bounds: Sequence[str]) -> str:
    """The header row (no newline)."""
    return "\t".join(["idx", "label", "predict", "radius", "correct", "time", "p1_lower", "p2_upper"]
                     + [f"radius_{b}" for b in bounds] + [GUARANTEED_COLUMN, *COST_COLUMNS])


def _num(v: float) -> str:
    v = float(v)
    if math.isinf(v):
        return "inf"
    return format(v, ".8g")


def format_row(idx: int, label: int, cert, seconds: float, bounds: Sequence[str], *, forward_passes: int,
               stop: str = FIXED_STOP) -> str:
    """One TSV row (no newline) from a :class:`renyi_cert.certificate.Certificate`.

    ``forward_passes`` is the number of noisy samples drawn for the row, ``stop`` the reason
    sampling stopped (:data:`FIXED_STOP`, or an adaptive stop reason; spaces become "-").
    """
    pred = int(cert.prediction)
    cells = ([str(int(idx)), str(int(label)), str(pred), _num(cert.radii[bounds[0]]), str(int(pred == int(label))),
              f"{seconds:.3f}", _num(cert.p1_lower), _num(cert.p2_upper)] + [_num(cert.radii[b]) for b in bounds]
             + [str(int(bool(cert.guaranteed))), str(int(forward_passes)), stop.replace(" ", "-")])
    return "\t".join(cells)


def sidecar_path(out: str | os.PathLike) -> Path:
    """Where the settings of a certification log are kept: ``<out>.json``."""
    return Path(os.fspath(out) + SIDECAR_SUFFIX)


def read_finished(path: str | os.PathLike, header: str) -> list[int]:
    """Indices already certified in an existing log; drops a truncated last line (in place).

    Raises
    ------
    CertifyError
        If the header differs from ``header``, a complete row is malformed, or an ``idx`` appears
        more than once (two runs wrote to the log).
    """
    path = Path(path)
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1  # 0 if even the header is incomplete
        dropped = data[cut:].decode("utf-8", "replace")
        print(f"certify: dropping a truncated last line of {path}: {dropped!r}", file=sys.stderr)
        with open(path, "r+b") as fh:
            fh.truncate(cut)
        data = data[:cut]
    lines = data.decode("utf-8").splitlines()
    if not lines:
        return []
    if lines[0] != header:
        raise CertifyError(f"--resume: the header of {path} does not match the current settings "
                           f"(file: {lines[0]!r}; expected: {header!r})")
    ncols = header.count("\t") + 1
    done = []
    for lineno, line in enumerate(lines[1:], start=2):
        cells = line.split("\t")
        if len(cells) != ncols:
            raise CertifyError(f"--resume: line {lineno} of {path} has {len(cells)} cells, expected {ncols}")
        try:
            done.append(int(cells[0]))
        except ValueError:
            raise CertifyError(f"--resume: line {lineno} of {path}: idx {cells[0]!r} is not an integer") from None
    from renyi_cert.analyze import format_idx_list

    seen: set[int] = set()
    dup = sorted({i for i in done if i in seen or seen.add(i)})
    if dup:
        raise CertifyError(f"--resume: {path} holds idx {format_idx_list(dup)} more than once (two runs may have written to it); "
                           "it cannot be continued: certify into another --out, or --force to start over")
    return done


def sort_log(path: str | os.PathLike) -> bool:
    """Put the rows of a finished log in ``idx`` order (as one process writes them); whether it moved any.

    Several workers write rows in the order they finish; the file is rewritten atomically, so an
    interruption leaves either the old or the sorted file.
    """
    from renyi_cert._files import atomic_write_text

    path = Path(path)
    header, *rows = path.read_text(encoding="utf-8").splitlines()
    ordered = sorted(rows, key=lambda row: int(row.split("\t", 1)[0]))
    if ordered == rows:
        return False
    atomic_write_text(path, "\n".join([header, *ordered]) + "\n")
    return True


def run_entry(settings: dict, first_row: int) -> dict:
    """One entry of the sidecar's ``runs`` history: when a run started, its :data:`RUN_KEYS` and
    ``first_row`` (data rows already in the log when it started)."""
    entry = {"started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "first_row": int(first_row)}
    entry.update({k: settings.get(k) for k in RUN_KEYS})
    return entry


def check_resume(sidecar: Path, settings: dict, prog: str) -> dict:
    """Check the saved settings of a log against the current ones; return the saved settings."""
    if not sidecar.exists():
        raise CertifyError(f"--resume: the settings file {sidecar} is missing, so the existing log cannot be "
                           "checked against the current settings; use --force to start over")
    try:
        saved = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CertifyError(f"--resume: cannot read the settings file {sidecar}: {exc}") from None
    if not isinstance(saved, dict):
        raise CertifyError(f"--resume: the settings file {sidecar} holds a JSON {type(saved).__name__}, not an "
                           "object of settings; restore it, or use --force to start over")
    if saved.get("format") != SIDECAR_FORMAT:
        raise CertifyError(f"--resume: {sidecar} has format {saved.get('format')!r}, not {SIDECAR_FORMAT!r} (the log "
                           "was written by another version, with other columns); certify into another --out, or "
                           "--force to start over")
    diffs = [f"{k}: {saved.get(k)!r} in the log, {settings[k]!r} now" for k in RESUME_KEYS
             if saved.get(k) != settings[k]]
    if diffs:
        raise CertifyError("--resume: the existing log was made with other settings (" + "; ".join(diffs)
                           + "); use the same settings, another --out, or --force to start over")
    for k in SOFT_KEYS:
        if saved.get(k) != settings[k]:
            print(f"{prog}: warning: {k} was {saved.get(k)!r} and is now {settings[k]!r}: the resumed rows are "
                  "valid but not bit-identical to those of an uninterrupted run", file=sys.stderr)
    return saved
