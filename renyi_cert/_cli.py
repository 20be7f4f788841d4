"""What every command-line entry point of the project shares: flag parsing and how it ends on Ctrl-C.

Flag values
    One parser per kind of value, each raising ``ValueError`` with a message that names the flag
    (or value), shows what was given and states the constraint, e.g. ``"n (0) must be an integer
    >= 1"`` or ``"--eps ('0,abc'): 'abc' is not a number"``: :func:`parse_int`,
    :func:`parse_real`, :func:`parse_float_list`, :func:`parse_choice`, :func:`parse_bounds`,
    :func:`parse_device`. The ``*_arg`` functions wrap them as ``argparse`` types (argparse then
    prints ``argument --flag: <message>`` and exits with status 2), e.g.
    ``p.add_argument("--n", type=int_arg("n"))``. A command that must see several flags before it
    can judge one (``renyi-cert attack``) calls the parsers itself.

Ctrl-C
    A command interrupted by the user prints one line (no traceback) and exits with status 130
    (128 + SIGINT, the shell convention). What it had written stays: logs are flushed row by row
    and other outputs are replaced atomically (:mod:`renyi_cert._files`), so an interrupted run
    can be resumed or re-run.
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
from typing import Any, Callable, Sequence, TypeVar

T = TypeVar("T")

__all__ = ["EXIT_INTERRUPTED", "interruptible", "parse_int", "parse_real", "parse_float_list", "parse_choice",
           "parse_bounds", "parse_device", "int_arg", "real_arg", "alpha_arg", "float_list_arg", "choice_arg",
           "bounds_arg", "device_arg", "DEFAULT_BOUNDS", "DEVICE_NAMES"]

EXIT_INTERRUPTED = 130
#: The bounds a certificate reports by default, in the order of the log's columns.
DEFAULT_BOUNDS = ("renyi", "cohen", "pixeldp")
#: What ``--device`` accepts besides ``cuda:<index>``.
DEVICE_NAMES = ("auto", "cpu", "cuda")


def interruptible(prog: str, note: str = "") -> Callable[[Callable[..., int]], Callable[..., int]]:
    """Decorate a ``main(argv) -> int``: on KeyboardInterrupt print one line and return 130.

    Parameters
    ----------
    prog : str
        The command's name, the first word of the message.
    note : str
        What the user should know about the data written so far (e.g. "rows written so far are
        kept; --resume continues the log").
    """

    def decorate(fn: Callable[..., int]) -> Callable[..., int]:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs) -> int:
            try:
                return fn(*args, **kwargs)
            except KeyboardInterrupt:
                print(f"{prog}: interrupted" + (f"; {note}" if note else ""), file=sys.stderr)
                return EXIT_INTERRUPTED

        return wrapper

    return decorate


# ------------------------------------------------------------------------------------ value parsers


def parse_int(name: str, text, minimum: int = 1, maximum: int | None = None) -> int:
    """An integer in ``[minimum, maximum]`` from a flag's text.

    Raises
    ------
    ValueError
        ``"<name> ('x') must be an integer >= 1"`` (or ``"... in 0..12"`` with a ``maximum``).
    """
    want = f"an integer >= {minimum}" if maximum is None else f"an integer in {minimum}..{maximum}"
    try:
        value = int(str(text).strip())
    except ValueError:
        raise ValueError(f"{name} ({text!r}) must be {want}") from None
    if value < minimum or (maximum is not None and value > maximum):
        raise ValueError(f"{name} ({value}) must be {want}")
    return value


def _range(minimum: float | None, maximum: float | None, strict: bool) -> str:
    """How a real range reads in a message: ``"> 0"``, ``"in [0, 1]"``, ``"in the open interval (0, 1)"``."""
    if maximum is None:
        return f"{'>' if strict else '>='} {minimum:g}"
    if strict:
        return f"in the open interval ({minimum:g}, {maximum:g})"
    return f"in [{minimum:g}, {maximum:g}]"


def parse_real(name: str, text, minimum: float = 0.0, maximum: float | None = None, *, strict: bool = False) -> float:
    """A finite real number ``>= minimum`` (``> minimum`` when ``strict``), and ``<= maximum``
    (``< maximum`` when ``strict``) when a maximum is given.

    Raises
    ------
    ValueError
        ``"<name> ('x') must be a number > 0"``, ``"<name> ('-1') must be finite and > 0"`` or,
        with a maximum, ``"<name> ('1.5') must be in [0, 1]"``.
    """
    want = _range(minimum, maximum, strict)
    try:
        value = float(str(text).strip())
    except ValueError:
        raise ValueError(f"{name} ({text!r}) must be a number {want}") from None
    above = value > minimum if strict else value >= minimum
    below = maximum is None or (value < maximum if strict else value <= maximum)
    if not (math.isfinite(value) and above and below):
        raise ValueError(f"{name} ({text!r}) must be {'finite and ' if maximum is None else ''}{want}")
    return value


def parse_float_list(name: str, text, minimum: float = 0.0, *, example: str | None = None) -> tuple[float, ...]:
    """Comma-separated finite numbers ``>= minimum``, e.g. ``"0,0.25,0.5"``.

    Raises
    ------
    ValueError
        ``"<name> ('0,,1') must be a comma-separated list of numbers >= 0"`` (with ``, e.g.
        <example>`` when given) for an empty entry; ``"<name> ('0,abc'): 'abc' is not a number"``;
        ``"<name> ('0,-1'): '-1' must be finite and >= 0"``.
    """
    parts = str(text).split(",")
    if any(not part.strip() for part in parts):
        raise ValueError(f"{name} ({text!r}) must be a comma-separated list of numbers >= {minimum:g}"
                         + (f", e.g. {example}" if example else ""))
    values = []
    for part in parts:
        try:
            value = float(part)
        except ValueError:
            raise ValueError(f"{name} ({text!r}): {part.strip()!r} is not a number") from None
        if not math.isfinite(value) or value < minimum:
            raise ValueError(f"{name} ({text!r}): {part.strip()!r} must be finite and >= {minimum:g}")
        values.append(value)
    return tuple(values)


def parse_choice(name: str, value, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``; ValueError ``"<name> ('x') must be one of a, b, c"``."""
    if value not in choices:
        raise ValueError(f"{name} ({value!r}) must be one of {', '.join(choices)}")
    return value


def parse_bounds(name: str, text: str, allowed: Sequence[str] | None = None) -> tuple[str, ...]:
    """``"renyi,cohen"`` or ``"all"`` -> bound names (validated against ``allowed``, by default
    ``renyi_cert.bounds.BOUNDS``, the bounds of Gaussian noise).

    ``"all"`` gives :data:`DEFAULT_BOUNDS` first, then any other bound (with ``allowed``: the
    one-element ``("all",)``, for the caller to expand once it knows the noise).

    Raises
    ------
    ValueError
        For an unknown name (named) or a name given twice.
    """
    from .bounds import BOUNDS

    if text.strip() == "all":
        if allowed is not None:
            return ("all",)
        return tuple(b for b in DEFAULT_BOUNDS if b in BOUNDS) + tuple(b for b in BOUNDS if b not in DEFAULT_BOUNDS)
    names = tuple(s.strip() for s in text.split(","))
    known = tuple(BOUNDS) if allowed is None else tuple(allowed)
    for bound in names:
        if bound not in known:
            raise ValueError(f"{name} ({bound!r}) must be one of {', '.join(known)} or all")
    if len(set(names)) != len(names):
        raise ValueError(f"{name} ({text!r}) names a bound twice")
    return names


def parse_device(name: str, text: str) -> str:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:<index>`` (checked by form only; torch resolves it later)."""
    if text in DEVICE_NAMES or (text.startswith("cuda:") and text[5:].isdigit()):
        return text
    raise ValueError(f"{name} ({text!r}) must be one of {', '.join(DEVICE_NAMES)} or cuda:<index>")


# ------------------------------------------------------------------------------------ argparse types


def _argparse_type(parse: Callable[..., T], name: str, **kwargs: Any) -> Callable[[str], T]:
    """``parse(name, text, **kwargs)`` as an argparse ``type`` (its ValueError becomes the message)."""

    def convert(text: str) -> T:
        try:
            return parse(name, text, **kwargs)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = parse.__name__.replace("parse_", "")
    return convert


def int_arg(name: str, minimum: int = 1, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse type for :func:`parse_int`."""
    return _argparse_type(parse_int, name, minimum=minimum, maximum=maximum)


def real_arg(name: str, minimum: float = 0.0, maximum: float | None = None, *,
             strict: bool = False) -> Callable[[str], float]:
    """An argparse type for :func:`parse_real`."""
    return _argparse_type(parse_real, name, minimum=minimum, maximum=maximum, strict=strict)


def alpha_arg(name: str = "alpha") -> Callable[[str], float]:
    """An argparse type for a significance level in the open interval (0, 1)."""
    return real_arg(name, 0.0, 1.0, strict=True)


def float_list_arg(name: str, minimum: float = 0.0) -> Callable[[str], tuple[float, ...]]:
    """An argparse type for :func:`parse_float_list`."""
    return _argparse_type(parse_float_list, name, minimum=minimum)


def choice_arg(name: str, choices: Sequence[str]) -> Callable[[str], str]:
    """An argparse type for :func:`parse_choice`."""
    return _argparse_type(parse_choice, name, choices=choices)


def bounds_arg(name: str = "bound", allowed: Sequence[str] | None = None) -> Callable[[str], tuple[str, ...]]:
    """An argparse type for :func:`parse_bounds`."""
    return _argparse_type(lambda n, text: parse_bounds(n, text, allowed), name)


def device_arg(name: str = "device") -> Callable[[str], str]:
    """An argparse type for :func:`parse_device`."""
    return _argparse_type(parse_device, name)
