"""The ``renyi-analyze`` command (also ``renyi-cert analyze``): tables and plots from certification logs."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

import numpy as np

from .._cli import float_list_arg, int_arg, interruptible, parse_float_list, real_arg
from .._files import OutputPathError, atomic_write_text, check_output_path
from .logs import CertificationLog, read_log
from .plots import plot_certified_accuracy
from .stats import DEFAULT_RADII, markdown_table, summarize

__all__ = ["PROG", "REPORT_NAMES", "build_parser", "main", "parse_radii"]

PROG = "renyi-analyze"
#: The files ``--out DIR`` receives.
REPORT_NAMES = ("certified_accuracy.md", "certified_accuracy.png", "certified_accuracy.pdf")


class _UsageError(Exception):
    """An input the command refuses (printed after the usage line; exit status 2)."""


def parse_radii(text: str) -> tuple[float, ...]:
    """Parse ``"0.25,0.5,1"`` into radii; ValueError naming the bad entry (``--radii``'s rule)."""
    return parse_float_list("radii", text, 0.0)


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    """The argument parser; ``prog`` is the command's name in usage and help."""
    p = argparse.ArgumentParser(
        prog=prog,
        description="Certified accuracy vs radius, abstain rate and average certified radius of "
        "certification logs (Cohen et al.'s TSV format or renyi_cert's).",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="certification log(s) (TSV)")
    p.add_argument("--radii", type=float_list_arg("radii"), default=",".join(f"{r:g}" for r in DEFAULT_RADII),
                   help="comma-separated radius grid (default: %(default)s)")
    p.add_argument("--labels", default=None, help="comma-separated display labels, one per FILE")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="write certified_accuracy.md/.png/.pdf to DIR (default: print only)")
    p.add_argument("--max-radius", type=real_arg("max-radius", 0.0, strict=True), default=None,
                   help="x-axis limit of the plot")
    p.add_argument("--title", default=None, help="plot title")
    p.add_argument("--digits", type=int_arg("digits", 0, 12), default=3,
                   help="decimals in the table (default: %(default)s)")
    return p


def _labels(args) -> list[str] | None:
    """``--labels`` split, one per file (None when not given)."""
    if args.labels is None:
        return None
    labels = [s.strip() for s in args.labels.split(",")]
    if len(labels) != len(args.files):
        raise _UsageError(f"--labels ({args.labels!r}) has {len(labels)} entries for {len(args.files)} file(s)")
    return labels


def _read_logs(paths: Sequence[str]) -> list[CertificationLog]:
    logs = []
    for path in paths:
        try:
            logs.append(read_log(path))
        except (OSError, ValueError) as exc:
            raise _UsageError(str(exc)) from None
    return logs


def _warn_unguaranteed(logs: Sequence[CertificationLog], labels: Sequence[str], prog: str) -> None:
    for log, lab in zip(logs, labels):
        if log.not_guaranteed:
            print(f"{prog}: warning: {lab}: {int(np.sum(log.guaranteed == 0))} of {len(log)} rows were certified "
                  "without the 1 - alpha guarantee (certify --allow-unguaranteed)", file=sys.stderr)


def _write_report(args, logs: Sequence[CertificationLog], labels: Sequence[str], table: str) -> str:
    """The table and the plot into ``--out``; returns the line naming the files."""
    try:
        os.makedirs(args.out, exist_ok=True)
        md = os.path.join(args.out, REPORT_NAMES[0])
        atomic_write_text(md, table + "\n")
        png, pdf = plot_certified_accuracy(logs, os.path.join(args.out, "certified_accuracy"), labels=labels,
                                           max_radius=args.max_radius, title=args.title)
    except OSError as exc:
        raise _UsageError(f"cannot write to --out ({args.out!r}): {exc}") from None
    return f"\nwrote {md}, {png}, {pdf}"


def _run(args, prog: str) -> int:
    labels = _labels(args)
    if args.out is not None:
        try:
            for name in REPORT_NAMES:
                check_output_path(os.path.join(args.out, name), name="--out")
        except OutputPathError as exc:
            raise _UsageError(str(exc)) from None
    logs = _read_logs(args.files)
    labels = labels if labels is not None else [os.path.basename(log.path) for log in logs]
    _warn_unguaranteed(logs, labels, prog)
    summaries = [s for log, lab in zip(logs, labels) for s in summarize(log, args.radii, label=lab)]
    table = markdown_table(summaries, digits=args.digits)
    print(table)
    if args.out is not None:
        print(_write_report(args, logs, labels, table))
    return 0


def _main(argv: Sequence[str] | None, prog: str) -> int:
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed the message
        return int(exc.code or 0)
    try:
        return _run(args, prog)
    except _UsageError as exc:
        parser.print_usage(sys.stderr)
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    """The ``renyi-analyze`` command. Returns the exit status (0 ok, 2 bad usage or input, 130 on Ctrl-C).

    ``prog`` names the command in usage, help and messages (``renyi-cert analyze`` when called
    through the umbrella command).
    """
    return interruptible(prog, "report files are replaced only when complete")(_main)(argv, prog)
