"""``--nproc N``: start N workers on this machine through torch's own elastic launcher.

This is what ``torchrun --standalone --nproc_per_node N -m renyi_cert_torch.cli -- COMMAND ...``
does, without the wrapper: :func:`launch` starts the workers with
``torch.distributed.launcher.api.elastic_launch`` (the launcher behind ``torchrun``), each running
``python -m renyi_cert_torch.cli COMMAND ARGS`` with ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``
set, waits for them, and turns a failed worker into one clear message. Like ``torchrun``, it gives
each worker one CPU thread (``OMP_NUM_THREADS=1``) unless the variable is already set.
"""

from __future__ import annotations

import os
import signal
import sys
import uuid
from typing import Sequence

__all__ = ["launch", "strip_separator", "without_nproc"]

MODULE = "renyi_cert_torch.cli"


def strip_separator(argv: Sequence[str]) -> list[str]:
    """``argv`` without a leading ``--``.

    ``torchrun ... -m renyi_cert_torch.cli -- certify --n 400`` needs the ``--``: without it
    torchrun's own parser claims options such as ``--n`` as abbreviations of its own.
    """
    argv = list(argv)
    return argv[1:] if argv[:1] == ["--"] else argv


def without_nproc(argv: Sequence[str]) -> list[str]:
    """``argv`` without ``--nproc N`` (or ``--nproc=N``): what each launched worker runs."""
    argv = list(argv)
    return [a for i, a in enumerate(argv) if a != "--nproc" and (i == 0 or argv[i - 1] != "--nproc")
            and not a.startswith("--nproc=")]


def launch(nproc: int, command: str | None, argv: Sequence[str], *, prog: str, note: str = "",
           module: str = MODULE) -> int:
    """Run ``python -m MODULE [COMMAND] ARGV`` in ``nproc`` workers; their exit status.

    ``module`` defaults to the command-line tools (``renyi_cert_torch.cli``), ``command`` names
    the sub-command (None for a module without sub-commands).

    Returns 0 when every worker succeeded; otherwise prints which workers failed and how
    (``note`` adds what the user should know, e.g. that finished rows are kept) and returns the
    first failed worker's exit status if it is a plain one (2 for a usage error), else 1.
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=f"renyi_cert-{uuid.uuid4().hex}",
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.1)
    saved = os.environ.get("OMP_NUM_THREADS")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        elastic_launch(config, sys.executable)("-m", module, *([command] if command else []), *argv)
    except ChildFailedError as exc:
        return _report(exc, nproc, prog, note)
    finally:
        if saved is None:
            os.environ.pop("OMP_NUM_THREADS", None)
    return 0


def _report(exc, nproc: int, prog: str, note: str) -> int:
    """One line per failed worker, the first to fail first, then ``note``; the exit status to return.

    The launcher stops the other workers once one has failed (SIGTERM; ours then exit with 130, as
    on Ctrl-C); those are listed after the ones that failed on their own, whatever the timestamps
    (whole seconds) say.
    """
    def order(item):
        rank, failure = item
        stopped = failure.exitcode in (130, -signal.SIGTERM)
        return (stopped, failure.timestamp, rank)

    failures = sorted(exc.failures.items(), key=order)
    for i, (rank, failure) in enumerate(failures):
        how = (f"was killed by signal {failure.signal_name()}" if failure.exitcode < 0
               else f"exited with status {failure.exitcode}")
        then = " (the first to fail)" if i == 0 and len(failures) > 1 else ""
        print(f"{prog}: error: worker rank {rank} of {nproc} (pid {failure.pid}) {how}{then}", file=sys.stderr)
    if note:
        print(f"{prog}: {note}", file=sys.stderr)
    first = failures[0][1].exitcode if failures else 1
    return first if first > 0 else 1
