"""Re-certifying Cohen et al.'s published certification logs with the Renyi and PixelDP bounds.

A log of Cohen, Rosenfeld & Kolter's ``certify.py`` (``idx label predict radius correct time``)
records, for each example, the radius ``sigma * Phi^-1(pA_lower)`` of their bound, where
``pA_lower`` is the Clopper-Pearson lower confidence bound on the top class's probability under
noise. The radius is increasing in ``pA_lower``, so the bound can be recovered from it:
``pA_lower = Phi(radius / sigma)``. With ``p2_upper = 1 - pA_lower`` (the runner-up has at most
what the top class leaves), every bound of :data:`renyi_cert.bounds.BOUNDS` can be evaluated on
the same models, at the same confidence level as the log. docs/recertify.md gives the argument.

The steps, one function each:

* the noise level: :func:`sigma_from_name` (``...sigma0.25...`` in the file name) and
  :func:`resolve_sigma` (that, or a given value, or both when they agree);
* the printed radius: :func:`print_half_unit` and :func:`lowered_radius` -- Cohen's script prints
  radii with 3 significant digits (``{:.3}``), so the printed value is lowered by half a unit in
  its last trustworthy digit before it is inverted, which can only lower ``pA_lower``;
* :func:`p1_lower_from_radius` -- the inversion, lowered further by :data:`P_MARGIN` (relative)
  to cover floating-point error;
* :func:`recertify_log` / :func:`recertify_file` -- a log in our format (``p1_lower p2_upper`` and
  one ``radius_<bound>`` column per bound), read back by :func:`~renyi_cert.analyze.read_log`
  (:func:`format_recertified`, :func:`write_recertified`, :func:`recertified_name`).

Rows that Cohen's script abstained on (``predict == -1``) stay abstained (``p1_lower = 0``,
``p2_upper = 1``: nothing is known). A row that was not abstained but has radius 0 had
``pA_lower = 0.5`` exactly (their script abstains only when ``pA_lower < 0.5``); then
``p1_lower <= p2_upper`` and, as in our ``certify``, the row is an abstention with radius 0.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Sequence

import numpy as np

from .._cli import DEFAULT_BOUNDS
from .._files import atomic_write_text
from .._validate import check_scalar_sigma
from ..bounds import BOUNDS
from ..certificate import ABSTAIN
from .logs import COHEN_COLUMNS, EXTRA_COLUMNS, RADIUS_PREFIX, CertificationLog, LogFormatError, read_log

__all__ = ["DEFAULT_RADIUS_DIGITS", "P_MARGIN", "RECERTIFIED_SUFFIX", "RecertifyError", "Recertified",
           "sigma_from_name", "resolve_sigma", "print_half_unit", "lowered_radius", "p1_lower_from_radius",
           "recertify_log", "recertify_file", "recertified_name", "format_recertified", "write_recertified"]

#: Significant digits of the radii in Cohen et al.'s logs (``certify.py`` prints ``{:.3}``).
DEFAULT_RADIUS_DIGITS = 3
#: Relative amount by which a recovered ``p1_lower`` is lowered to cover floating-point error
#: (their ``sigma * norm.ppf``, our parsing, division and ``Phi``: each about 1e-16 to 1e-15).
P_MARGIN = 1e-12
#: What :func:`recertified_name` puts in place of the log's extension.
RECERTIFIED_SUFFIX = ".recertified.tsv"

_SIGMA_IN_NAME = re.compile(r"(?<![a-z])sigma[=_-]?(\d+(?:\.\d+)?|\.\d+)(?![\d.]*\d)", re.IGNORECASE)


class RecertifyError(ValueError):
    """An input that cannot be re-certified (no or a disagreeing sigma, not a Cohen-format log)."""


# ------------------------------------------------------------------------------------ the noise level


def sigma_from_name(path: str | os.PathLike) -> float | None:
    """The noise level a log's file name states (``...-sigma0.25.tsv``, ``sigma_0.50``), or None.

    Only the file name is read (not the folders above it); ``sigma`` may be followed by ``=``,
    ``_`` or ``-``, in any case.

    Raises
    ------
    RecertifyError
        If the name states two different values, or a value that is not > 0.

    Examples
    --------
    >>> sigma_from_name("data/cohen2019-cifar10-resnet110-noise0.25-sigma0.25.tsv")
    0.25
    >>> sigma_from_name("noise_0.50/sigma_0.50") is None, sigma_from_name("log.tsv") is None
    (False, True)
    """
    name = os.path.basename(os.fspath(path))
    values = sorted({float(m.group(1)) for m in _SIGMA_IN_NAME.finditer(name)})
    if not values:
        return None
    if len(values) > 1:
        raise RecertifyError(f"the file name {name!r} states more than one sigma "
                             f"({', '.join(f'{v:g}' for v in values)}); pass --sigma and rename the file")
    if values[0] <= 0:
        raise RecertifyError(f"the sigma in the file name {name!r} ({values[0]:g}) must be > 0")
    return values[0]


def resolve_sigma(path: str | os.PathLike, sigma: float | None = None, *, name: str = "sigma") -> tuple[float, str]:
    """The noise level of a log: ``sigma`` when given, else its file name's; both must agree.

    Parameters
    ----------
    path : str or path-like
        The log (only its name is read).
    sigma : float, optional
        The noise level the caller states (``--sigma``).
    name : str
        How ``sigma`` is called in messages.

    Returns
    -------
    (sigma, source)
        ``source`` says where it came from: ``"<name>"``, ``"the file name"`` or ``"<name> and the
        file name"``.

    Raises
    ------
    RecertifyError
        If neither gives a sigma, they disagree, or ``sigma`` is not finite and > 0
        (``"--sigma (-1.0) must be > 0"``).
    """
    given = None if sigma is None else _checked_sigma(sigma, name)
    from_name = sigma_from_name(path)
    base = os.path.basename(os.fspath(path))
    if given is None and from_name is None:
        raise RecertifyError(f"the noise level of {base!r} is unknown: pass {name} (e.g. {name} 0.25) or name the "
                             "file after it (e.g. ...-sigma0.25.tsv)")
    if given is not None and from_name is not None and given != from_name:
        raise RecertifyError(f"{name} ({given:g}) disagrees with the file name {base!r}, which says sigma "
                             f"{from_name:g}; drop {name} or correct it")
    if given is None:
        assert from_name is not None
        return from_name, "the file name"
    return given, name if from_name is None else f"{name} and the file name"


def _checked_sigma(sigma: float, name: str) -> float:
    try:
        return check_scalar_sigma(sigma, name=name)
    except ValueError as exc:
        raise RecertifyError(str(exc)) from None


# ------------------------------------------------------------------------------------ the printed radius


def _last_places(value: float, digits: int) -> tuple[Decimal, int]:
    """The printed value as a Decimal and the place (power of ten) of its last trustworthy digit."""
    d = Decimal(repr(float(value))).normalize()  # "0.4", "1.23E+2": trailing zeros are not digits shown
    shown = int(d.as_tuple().exponent)  # the last digit shown
    significant = d.adjusted() - digits + 1  # the last of `digits` significant digits
    return d, min(shown, significant)


def _check_digits(digits: int) -> int:
    if isinstance(digits, bool) or not isinstance(digits, (int, np.integer)) or not 1 <= digits <= 17:
        raise ValueError(f"digits ({digits!r}) must be an integer in 1..17")
    return int(digits)


def _check_printed(value: float) -> float:
    v = float(value)
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"printed radius ({v!r}) must be finite and >= 0")
    return v


def print_half_unit(value: float, digits: int = DEFAULT_RADIUS_DIGITS) -> float:
    """Half a unit in the last digit of a printed radius that can be trusted: the most its
    rounding can have raised it.

    The writer is assumed to have printed at least ``digits`` significant digits, correctly
    rounded, dropping trailing zeros (Python's ``{:.3}`` prints 0.4 for 0.4001); a value that shows
    more digits than that is trusted to all the digits it shows. Zero is exact (a rounded positive
    number is never printed as 0). ``digits=1`` trusts only the digits shown.

    Examples
    --------
    >>> print_half_unit(0.378), print_half_unit(0.4), print_half_unit(1.96), print_half_unit(0.0)
    (0.0005, 0.0005, 0.005, 0.0)
    >>> print_half_unit(0.4, digits=1), print_half_unit(0.37812)
    (0.05, 5e-06)
    """
    v, n = _check_printed(value), _check_digits(digits)
    if v == 0.0:
        return 0.0
    _, place = _last_places(v, n)
    return float(Decimal(5).scaleb(place - 1))


def lowered_radius(value: float, digits: int = DEFAULT_RADIUS_DIGITS) -> float:
    """The smallest radius that prints as ``value``: ``value - print_half_unit(value, digits)``
    (computed in decimal, then rounded to the nearest float).

    Examples
    --------
    >>> lowered_radius(0.378), lowered_radius(1.96), lowered_radius(0.0)
    (0.3775, 1.955, 0.0)
    """
    v, n = _check_printed(value), _check_digits(digits)
    if v == 0.0:
        return 0.0
    d, place = _last_places(v, n)
    return float(d - Decimal(5).scaleb(place - 1))


def p1_lower_from_radius(radius: np.ndarray | Sequence[float] | float, sigma: float) -> np.ndarray:
    """Invert Cohen's radius ``sigma * Phi^-1(p)``: ``Phi(radius / sigma) * (1 - P_MARGIN)``.

    The result is a lower bound on ``p`` whenever ``radius`` is a lower bound on
    ``sigma * Phi^-1(p)`` (pass :func:`lowered_radius` of a printed radius). Radius 0 gives just
    below 0.5.

    Examples
    --------
    >>> p1_lower_from_radius([0.0, 0.3775], 0.25).round(6)
    array([0.5     , 0.934478])
    """
    from scipy.special import ndtr

    s = check_scalar_sigma(sigma)
    r = np.asarray(radius, dtype=np.float64)
    if np.any(~np.isfinite(r) | (r < 0)):
        bad = float(r[np.argmax(~np.isfinite(r) | (r < 0))]) if r.ndim else float(r)
        raise ValueError(f"radius ({bad!r}) must be finite and >= 0")
    return np.asarray(ndtr(r / s) * (1.0 - P_MARGIN), dtype=np.float64)


# ------------------------------------------------------------------------------------ re-certifying


@dataclass(frozen=True)
class Recertified:
    """A Cohen-format log and its re-certification.

    Attributes
    ----------
    source : CertificationLog
        The log as read (one radius column, ``"radius"``).
    log : CertificationLog
        The re-certified log: ``p1_lower``, ``p2_upper = 1 - p1_lower`` and one radius column per
        bound.
    sigma : float
        The noise level used.
    sigma_from : str
        Where it came from (see :func:`resolve_sigma`).
    digits : int
        Significant digits the printed radii were trusted to.
    """

    source: CertificationLog
    log: CertificationLog
    sigma: float
    sigma_from: str = "sigma"
    digits: int = DEFAULT_RADIUS_DIGITS

    @property
    def printed(self) -> np.ndarray:
        """The radii as printed in the source log."""
        return self.source.radii["radius"]

    @property
    def num_abstained(self) -> int:
        """Rows the source log abstained on (they stay abstained)."""
        return int(np.sum(self.source.predict == ABSTAIN))

    @property
    def num_zero_radius(self) -> int:
        """Rows the source log did not abstain on but gave radius 0 (abstentions here)."""
        return int(np.sum((self.source.predict != ABSTAIN) & (self.printed == 0)))

    @property
    def max_lowering(self) -> float:
        """The largest amount by which a printed radius was lowered for rounding."""
        return max((self.printed[i] - lowered_radius(self.printed[i], self.digits) for i in range(len(self.source))),
                   default=0.0)

    @property
    def max_p1_lower(self) -> float:
        """The largest recovered ``p1_lower``."""
        assert self.log.p1_lower is not None
        return float(np.max(self.log.p1_lower))

    def gap(self, bound: str = "cohen") -> tuple[float, float]:
        """(smallest, largest) of printed radius minus the ``bound`` radius over certified rows."""
        ok = self.log.radii[bound] > 0
        if not ok.any():
            return (0.0, 0.0)
        d = self.printed[ok] - self.log.radii[bound][ok]
        return float(d.min()), float(d.max())

    def ratio(self, bound: str, to: str = "cohen") -> tuple[float, float, float]:
        """(min, median, max) of the ``bound`` radius over the ``to`` radius, rows where ``to`` > 0.

        NaNs when no row has a certificate.
        """
        ok = self.log.radii[to] > 0
        if not ok.any():
            return (math.nan, math.nan, math.nan)
        q = self.log.radii[bound][ok] / self.log.radii[to][ok]
        return float(q.min()), float(np.median(q)), float(q.max())


def _check_cohen_format(log: CertificationLog) -> np.ndarray:
    """The printed radii of a Cohen-format log; refuses our logs and inconsistent rows."""
    if log.p1_lower is not None or log.bounds != ("radius",):
        cols = ", ".join(RADIUS_PREFIX + b for b in log.bounds)
        raise RecertifyError(f"{log.path} is not a log of Cohen et al.'s certify.py: it has {cols} columns "
                             f"(re-certify reads logs with the columns {' '.join(COHEN_COLUMNS)} only)")
    rad = log.radii["radius"]
    bad = ~np.isfinite(rad)
    if bad.any():
        i = int(np.argmax(bad))
        raise RecertifyError(f"{log.path}: idx {int(log.idx[i])}: radius {float(rad[i])!r} must be finite "
                             "(Cohen et al.'s certify.py writes sigma * Phi^-1(pA_lower) with pA_lower < 1)")
    bad = (log.predict == ABSTAIN) & (rad != 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise RecertifyError(f"{log.path}: idx {int(log.idx[i])}: predict is -1 (abstain) but radius is "
                             f"{float(rad[i])!r}; Cohen et al.'s certify.py writes radius 0.0 for abstentions")
    return rad


def recertify_log(log: CertificationLog, sigma: float, *, digits: int = DEFAULT_RADIUS_DIGITS,
                  bounds: Sequence[str] = DEFAULT_BOUNDS) -> CertificationLog:
    """Re-certify a Cohen-format log: recover ``p1_lower`` from each radius, evaluate ``bounds``.

    For each row not abstained, ``p1_lower = Phi(lowered_radius(radius, digits) / sigma) *
    (1 - P_MARGIN)`` and ``p2_upper = 1 - p1_lower``; for abstained rows ``p1_lower = 0``,
    ``p2_upper = 1``. A row becomes (or stays) an abstention when ``p1_lower <= p2_upper``, as in
    our ``certify``; that changes only rows printed with radius 0 that were not abstentions.
    Every radius is then ``BOUNDS[bound](p1_lower, p2_upper, sigma)``.

    Parameters
    ----------
    log : CertificationLog
        A Cohen-format log (from :func:`~renyi_cert.analyze.read_log`).
    sigma : float
        The noise level the log was certified with (> 0).
    digits : int
        Significant digits the radii were printed with (see :func:`print_half_unit`).
    bounds : sequence of str
        Names in :data:`renyi_cert.bounds.BOUNDS`, in column order.

    Returns
    -------
    CertificationLog
        In our format (same ``path``, ``idx``, ``label`` and ``time``).

    Raises
    ------
    RecertifyError
        If ``log`` is not in Cohen's format (it has ``radius_<bound>`` columns), an abstained row
        has a radius other than 0, or a radius is infinite; if sigma is not finite and > 0.
    ValueError
        For a ``digits`` outside 1..17 or an unknown bound.
    """
    s = _checked_sigma(sigma, "sigma")
    n = _check_digits(digits)
    for b in bounds:
        if b not in BOUNDS:
            raise ValueError(f"bound ({b!r}) must be one of {', '.join(BOUNDS)}")
    rad = _check_cohen_format(log)
    abstained = log.predict == ABSTAIN
    lowered = np.array([lowered_radius(r, n) for r in rad], dtype=np.float64)
    p1 = np.where(abstained, 0.0, p1_lower_from_radius(lowered, s))
    p2 = 1.0 - p1  # exact for p1 in [0.5, 1] (Sterbenz); p1 + p2 == 1
    predict = np.where(p1 > p2, log.predict, ABSTAIN).astype(np.int64)
    radii = {b: np.asarray(BOUNDS[b](p1, p2, s), dtype=np.float64) for b in bounds}
    return CertificationLog(path=log.path, idx=log.idx, label=log.label, predict=predict,
                            correct=(predict == log.label).astype(np.int64), time=log.time, radii=radii,
                            p1_lower=p1, p2_upper=p2)


def recertify_file(path: str | os.PathLike, sigma: float | None = None, *, digits: int = DEFAULT_RADIUS_DIGITS,
                   bounds: Sequence[str] = DEFAULT_BOUNDS, name: str = "sigma") -> Recertified:
    """Read a Cohen-format log and re-certify it (:func:`resolve_sigma`, then :func:`recertify_log`).

    The noise level is settled from ``sigma`` and the file name before the file is read; ``name``
    is what ``sigma`` is called in messages (``"--sigma"`` for the command).

    Raises
    ------
    RecertifyError, LogFormatError, FileNotFoundError
        As :func:`resolve_sigma`, :func:`~renyi_cert.analyze.read_log` and :func:`recertify_log`.
    """
    s, source = resolve_sigma(path, sigma, name=name)
    n = _check_digits(digits)
    log = read_log(path)
    return Recertified(source=log, log=recertify_log(log, s, digits=n, bounds=bounds), sigma=s, sigma_from=source,
                       digits=n)


# ------------------------------------------------------------------------------------ writing


def recertified_name(path: str | os.PathLike) -> str:
    """The file name of a log's re-certification: its name, extension replaced by ``.recertified.tsv``.

    Examples
    --------
    >>> recertified_name("peer/cohen-sigma0.25.tsv"), recertified_name("noise_0.50/sigma_0.50")
    ('cohen-sigma0.25.recertified.tsv', 'sigma_0.50.recertified.tsv')
    """
    base = os.path.basename(os.fspath(path))
    stem, ext = os.path.splitext(base)
    stem = stem if ext.lower() in (".tsv", ".txt", ".log", ".csv") else base
    return stem + RECERTIFIED_SUFFIX


def _cell(v: float) -> str:
    """A float exactly (shortest round-trip form): what is written is what was computed."""
    return "inf" if math.isinf(v) else repr(float(v))


def format_recertified(log: CertificationLog) -> str:
    """The TSV text of a re-certified log (our format; ``radius`` is the first bound's).

    Numbers are written exactly (shortest round-trip form), so reading the file back with
    :func:`~renyi_cert.analyze.read_log` gives the same table; no value is rounded up.
    """
    if log.p1_lower is None or log.p2_upper is None or not log.bounds:
        raise LogFormatError(f"{log.path}: only a re-certified log (p1_lower, p2_upper, radius columns) is written")
    bounds = log.bounds
    lines = ["\t".join([*COHEN_COLUMNS, *EXTRA_COLUMNS, *(RADIUS_PREFIX + b for b in bounds)])]
    for i in range(len(log)):
        lines.append("\t".join(
            [str(int(log.idx[i])), str(int(log.label[i])), str(int(log.predict[i])), _cell(log.radii[bounds[0]][i]),
             str(int(log.correct[i])), _cell(log.time[i]), _cell(log.p1_lower[i]), _cell(log.p2_upper[i])]
            + [_cell(log.radii[b][i]) for b in bounds]))
    return "\n".join(lines) + "\n"


def write_recertified(log: CertificationLog, path: str | os.PathLike) -> str:
    """Write :func:`format_recertified` to ``path`` atomically; returns the path."""
    atomic_write_text(path, format_recertified(log))
    return os.fspath(path)
