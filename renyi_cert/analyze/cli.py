"""The ``renyi-analyze`` command (also ``renyi-cert analyze``): tables and plots from certification logs.

With ``--recertify`` each FILE is a log of Cohen et al.'s ``certify.py``; it is re-certified with
the Renyi, Cohen and PixelDP bounds (:mod:`renyi_cert.analyze.recertify`, docs/recertify.md) and
the table shows all three next to the radii as printed.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from typing import Sequence

import numpy as np

from .._cli import float_list_arg, int_arg, interruptible, parse_float_list, real_arg
from .._files import OutputPathError, atomic_write_text, check_output_path
from .logs import CertificationLog, read_log
from .plots import plot_certified_accuracy
from .recertify import DEFAULT_RADIUS_DIGITS, RecertifyError, Recertified, recertified_name, recertify_log, \
    resolve_sigma, write_recertified
from .stats import DEFAULT_RADII, BoundSummary, markdown_table, summarize

__all__ = ["PROG", "REPORT_NAMES", "build_parser", "main", "parse_radii"]

PROG = "renyi-analyze"
#: The files ``--out DIR`` receives (with ``--recertify``, also one ``<name>.recertified.tsv`` per FILE).
REPORT_NAMES = ("certified_accuracy.md", "certified_accuracy.png", "certified_accuracy.pdf")
#: How the table names the radii of a log as printed, next to the re-certified bounds.
PRINTED_BOUND = "printed"


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
    r = p.add_argument_group("re-certifying Cohen et al.'s logs (docs/recertify.md)")
    r.add_argument("--recertify", action="store_true",
                   help="each FILE is a log of Cohen et al.'s certify.py: recover p1_lower from its radii and "
                   "report the Renyi, Cohen and PixelDP bounds on it (with --out, also write "
                   "<name>.recertified.tsv per FILE)")
    r.add_argument("--sigma", default=None, metavar="S[,S...]",
                   help="noise level of the log(s), one for all or one per FILE (default: from the file name, "
                   "e.g. ...-sigma0.25.tsv; both must agree)")
    r.add_argument("--radius-digits", type=int_arg("radius-digits", 1, 17), default=None,
                   help="significant digits the log's radii were printed with; each is lowered by half a unit "
                   f"in the last of them before it is inverted (default: {DEFAULT_RADIUS_DIGITS}, "
                   "certify.py's {:.3})")
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


def _check_out(args, names: Sequence[str]) -> None:
    """Refuse an ``--out`` that cannot receive ``names`` (before anything is read)."""
    if args.out is None:
        return
    try:
        for name in names:
            check_output_path(os.path.join(args.out, name), name="--out")
    except OutputPathError as exc:
        raise _UsageError(str(exc)) from None


# ------------------------------------------------------------------------------------ --recertify


def _sigma_list(text: str | None, count: int) -> list[float | None]:
    """``--sigma``: one value for every file or one per file (None for each when not given)."""
    if text is None:
        return [None] * count
    values: list[float | None] = []
    for part in text.split(","):
        try:
            values.append(float(part))
        except ValueError:
            raise _UsageError(f"--sigma ({text!r}): {part.strip()!r} is not a number") from None
    if len(values) not in (1, count):
        raise _UsageError(f"--sigma ({text!r}) has {len(values)} entries for {count} file(s); give one for all "
                          "or one per file")
    return values * count if len(values) == 1 else values


def _recertify_plan(args) -> tuple[list[tuple[float, str]], list[str]]:
    """Each file's sigma (and where it came from) and its output name, all checked before any is read."""
    given = _sigma_list(args.sigma, len(args.files))
    try:
        sigmas = [resolve_sigma(f, s, name="--sigma") for f, s in zip(args.files, given)]
    except RecertifyError as exc:
        raise _UsageError(str(exc)) from None
    names = [recertified_name(f) for f in args.files]
    dup = sorted({n for n in names if names.count(n) > 1})
    if args.out is not None and dup:
        raise _UsageError(f"--out would receive {dup[0]!r} twice; re-certify files with different names")
    _check_out(args, [*REPORT_NAMES, *names])
    return sigmas, names


def _recertify_all(args, sigmas: Sequence[tuple[float, str]]) -> list[Recertified]:
    digits = DEFAULT_RADIUS_DIGITS if args.radius_digits is None else args.radius_digits
    out = []
    for log, (sigma, source) in zip(_read_logs(args.files), sigmas):
        try:
            rec = recertify_log(log, sigma, digits=digits)
        except ValueError as exc:
            raise _UsageError(str(exc)) from None
        out.append(Recertified(source=log, log=rec, sigma=sigma, sigma_from=source, digits=digits))
    return out


def _recertify_notes(rec: Recertified, label: str) -> str:
    """What the table does not show: where sigma came from, the rounding, the radius ratios."""
    lo, hi = rec.gap("cohen")
    lines = [
        f"{label}: sigma {rec.sigma:g} (from {rec.sigma_from}); {len(rec.source)} rows, {rec.num_abstained} abstained "
        f"(kept), {rec.num_zero_radius} not abstained with radius 0 (abstained: p1_lower <= p2_upper)",
        f"  printed radii lowered by up to {rec.max_lowering:.6g} (half a unit in the last of {rec.digits} "
        f"significant digits); largest p1_lower {rec.max_p1_lower:.10f}",
        f"  cohen radius below the printed one by {lo:.3g} to {hi:.3g} over rows with a certificate",
    ]
    for bound in (b for b in rec.log.bounds if b != "cohen"):
        lo_q, med_q, hi_q = rec.ratio(bound)
        lines.append(f"  {bound}/cohen radius ratio: min {lo_q:.4f}, median {med_q:.4f}, max {hi_q:.4f}")
    return "\n".join(lines)


def _run_recertify(args, labels: list[str] | None) -> int:
    sigmas, names = _recertify_plan(args)
    recs = _recertify_all(args, sigmas)
    labels = labels if labels is not None else [os.path.basename(f) for f in args.files]
    summaries: list[BoundSummary] = []
    for rec, lab in zip(recs, labels):
        summaries += [replace(s, bound=PRINTED_BOUND) for s in summarize(rec.source, args.radii, label=lab)]
        summaries += summarize(rec.log, args.radii, label=lab)
    table = markdown_table(summaries, digits=args.digits)
    notes = "\n".join(_recertify_notes(rec, lab) for rec, lab in zip(recs, labels))
    print(table + "\n\n" + notes)
    if args.out is not None:
        try:
            os.makedirs(args.out, exist_ok=True)
            written = [write_recertified(rec.log, os.path.join(args.out, name)) for rec, name in zip(recs, names)]
        except OSError as exc:
            raise _UsageError(f"cannot write to --out ({args.out!r}): {exc}") from None
        report = table + "\n\n```\n" + notes + "\n```"
        print(_write_report(args, [rec.log for rec in recs], labels, report) + ", " + ", ".join(written))
    return 0


# ------------------------------------------------------------------------------------ the command


def _run(args, prog: str) -> int:
    labels = _labels(args)
    if args.recertify:
        return _run_recertify(args, labels)
    if args.sigma is not None or args.radius_digits is not None:
        raise _UsageError("--sigma and --radius-digits are only used with --recertify")
    _check_out(args, REPORT_NAMES)
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
