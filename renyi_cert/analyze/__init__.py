"""Analysis of certification logs: certified accuracy vs radius, abstain rate, ACR, plots.

One module per step, the public names re-exported here:

* :mod:`~renyi_cert.analyze.logs` -- reading logs in Cohen et al.'s format (``idx label predict
  radius correct time``) or ours (those six columns, then ``p1_lower p2_upper``, one
  ``radius_<bound>`` column per bound and ``guaranteed``): :func:`read_log`,
  :class:`CertificationLog`, :class:`LogFormatError`;
* :mod:`~renyi_cert.analyze.stats` -- certified accuracy with Cohen et al.'s conventions
  (``correct == 1`` and ``radius >= r``; abstentions fail), ACR, :func:`summarize`,
  :func:`markdown_table`; a log with a row that is not guaranteed is labelled "(not guaranteed)";
* :mod:`~renyi_cert.analyze.plots` -- :func:`plot_certified_accuracy`;
* :mod:`~renyi_cert.analyze.recertify` -- re-certifying Cohen et al.'s published logs with the
  Renyi and PixelDP bounds (``p1_lower`` recovered from each printed radius, see
  docs/recertify.md): :func:`recertify_file`, :func:`recertify_log`, :func:`write_recertified`;
* :mod:`~renyi_cert.analyze.cli` -- the ``renyi-analyze`` command, :func:`main` (``--recertify``).

This package never imports torch.
"""

from .cli import PROG, REPORT_NAMES, build_parser, main, parse_radii
from .logs import (
    COHEN_COLUMNS,
    EXTRA_COLUMNS,
    FIXED_STOP,
    FORWARD_PASSES_COLUMN,
    GUARANTEED_COLUMN,
    RADIUS_PREFIX,
    STOP_COLUMN,
    STOP_VALUES,
    CertificationLog,
    LogFormatError,
    format_idx_list,
    parse_time,
    read_log,
)
from .plots import BOUND_NAMES, certified_accuracy_figure, plot_certified_accuracy
from .recertify import (
    DEFAULT_RADIUS_DIGITS,
    P_MARGIN,
    RECERTIFIED_SUFFIX,
    Recertified,
    RecertifyError,
    format_recertified,
    lowered_radius,
    p1_lower_from_radius,
    print_half_unit,
    recertified_name,
    recertify_file,
    recertify_log,
    resolve_sigma,
    sigma_from_name,
    write_recertified,
)
from .stats import (
    DEFAULT_RADII,
    NOT_GUARANTEED,
    BoundSummary,
    average_certified_radius,
    certified_accuracy,
    display_label,
    markdown_table,
    summarize,
)

__all__ = [
    "COHEN_COLUMNS", "EXTRA_COLUMNS", "GUARANTEED_COLUMN", "FORWARD_PASSES_COLUMN", "STOP_COLUMN", "FIXED_STOP",
    "STOP_VALUES", "RADIUS_PREFIX", "CertificationLog", "LogFormatError",
    "format_idx_list", "parse_time", "read_log",
    "DEFAULT_RADII", "NOT_GUARANTEED", "BoundSummary", "average_certified_radius", "certified_accuracy",
    "display_label", "markdown_table", "summarize",
    "BOUND_NAMES", "certified_accuracy_figure", "plot_certified_accuracy",
    "DEFAULT_RADIUS_DIGITS", "P_MARGIN", "RECERTIFIED_SUFFIX", "Recertified", "RecertifyError", "format_recertified",
    "lowered_radius", "p1_lower_from_radius", "print_half_unit", "recertified_name", "recertify_file",
    "recertify_log", "resolve_sigma", "sigma_from_name", "write_recertified",
    "PROG", "REPORT_NAMES", "build_parser", "main", "parse_radii",
]
