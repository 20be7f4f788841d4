"""What every command-line entry point of the project shares: how it ends on Ctrl-C.

A command interrupted by the user prints one line (no traceback) and exits with status 130
(128 + SIGINT, the shell convention). What it had written stays: logs are flushed row by row and
other outputs are replaced atomically (:mod:`renyi_cert._files`), so an interrupted run can be
resumed or re-run.
"""

from __future__ import annotations

import functools
import sys
from typing import Callable

__all__ = ["EXIT_INTERRUPTED", "interruptible"]

EXIT_INTERRUPTED = 130


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
