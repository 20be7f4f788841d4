"""The rows of ``certify``: one example's certificate as a log row, and the loop over the examples
on one worker or many (:mod:`renyi_cert_torch.distributed`).

Example ``idx`` draws its noise from the generator seeded with
:func:`renyi_cert.seeds.derive_seed` ``(seed, idx)``, and from nothing else, so its row does not
depend on which examples ran before it, on which worker ran it, or on how many workers there
were: a log written by N workers holds the same rows (all columns but ``time``) as a log written
by one.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any, Sequence, TextIO

from renyi_cert.seeds import derive_seed

from .certify_log import FIXED_STOP, CertifyError, format_row
from .distributed import SINGLE, RowCollector, SplitSampler, WorkQueue, Workers, post_row

__all__ = ["RowSettings", "certify_row", "LogWriter", "certify_examples"]


@dataclass(frozen=True)
class RowSettings:
    """How every example of a run is certified (the ``certify`` flags that shape a row)."""

    n0: int
    n: int
    alpha: float
    method: str
    bounds: tuple[str, ...]
    seed: int
    single_sample_set: bool = False
    allow_unguaranteed: bool = False
    adaptive: Any = None  # a renyi_cert.sequential.AdaptivePlan, or None for a fixed n


def _certificate(backend, clf, x, gen, s: RowSettings) -> tuple:
    """One example's certificate, forward passes and stop reason (fixed n, or ``s.adaptive``'s plan)."""
    if s.adaptive is None:
        from renyi_cert.backend import certify

        cert = certify(backend, x, clf.noise, n0=s.n0, n=s.n, alpha=s.alpha, method=s.method, bounds=s.bounds,
                       batch_size=clf.batch_size, generator=gen, single_sample_set=s.single_sample_set,
                       allow_unguaranteed=s.allow_unguaranteed)
        return cert, (s.n if s.single_sample_set else s.n0 + s.n), FIXED_STOP
    from renyi_cert.sequential import certify_with_plan

    res = certify_with_plan(backend, x, s.adaptive, n0=s.n0, batch_size=clf.batch_size, generator=gen)
    return res.certificate, res.forward_passes, res.stop_reason


def certify_row(clf, x, y, idx: int, s: RowSettings, *, backend=None) -> str:
    """The log row (no newline) of example ``idx`` of ``(x, y)``.

    ``clf`` is a :class:`renyi_cert_torch.smoothing.SmoothedClassifier`; ``backend`` (default
    ``clf``) is what draws the counts, e.g. a :class:`renyi_cert_torch.distributed.SplitSampler`.

    Raises
    ------
    CertifyError
        If certifying the example fails on its data (e.g. the model gives NaN logits); the message
        names the example.
    """
    t0 = time.perf_counter()
    gen = clf.make_generator(derive_seed(s.seed, idx))
    try:
        cert, used, stop = _certificate(clf if backend is None else backend, clf, x[idx], gen, s)
    except ValueError as exc:
        raise CertifyError(f"example idx {idx}: {exc}") from None
    return format_row(idx, int(y[idx]), cert, time.perf_counter() - t0, s.bounds, forward_passes=used, stop=stop)


class LogWriter:
    """Appends rows to the open log, flushing each, with a progress bar of accuracy and cost."""

    def __init__(self, out_file: TextIO, *, progress: bool, initial: int, total: int, desc: str) -> None:
        from tqdm.auto import tqdm

        self.out_file = out_file
        self.bar = tqdm(total=total, initial=initial, desc=desc, unit="img", file=sys.stderr, disable=not progress,
                        dynamic_ncols=True)
        self.written = self.correct = self.passes = 0

    def __call__(self, row: str) -> None:
        self.out_file.write(row + "\n")
        self.out_file.flush()
        cells = row.split("\t")
        self.written += 1
        self.correct += int(cells[4])
        self.passes += int(cells[-2])
        self.bar.update(1)
        self.bar.set_postfix(acc=f"{self.correct / self.written:.3f}",
                             passes=f"{self.passes / self.written:.0f}", refresh=False)

    def close(self) -> None:
        self.bar.close()


def certify_examples(clf, x, y, indices: Sequence[int], writer: LogWriter | None, s: RowSettings, *,
                     workers: Workers = SINGLE, split_example: bool = False) -> int:
    """Certify ``x[idx]`` for each ``idx`` in ``indices``; rank 0 passes every row to ``writer``.

    Alone, or with ``split_example`` (every worker on every example, a share of its samples each,
    :class:`renyi_cert_torch.distributed.SplitSampler`), the examples are done in order. Otherwise
    the workers take the examples from a shared :class:`renyi_cert_torch.distributed.WorkQueue` as
    they become free and post their rows to rank 0, which writes them as they arrive (in the order
    they finish). ``writer`` is needed on rank 0 only. Returns the number of rows this worker
    certified (on rank 0 with ``split_example``: written).

    Raises
    ------
    CertifyError
        An example's certification failed (the message names it; rows written before are kept).
    """
    if split_example or not workers.distributed:
        backend = SplitSampler(clf, workers) if split_example else clf
        for idx in indices:
            row = certify_row(clf, x, y, idx, s, backend=backend)
            if writer is not None:
                writer(row)
        return len(indices)
    collector = RowCollector(workers, len(indices), writer) if workers.is_main and writer is not None else None
    done = 0
    try:
        for position in WorkQueue(workers, len(indices)):
            post_row(workers, certify_row(clf, x, y, indices[position], s))
            done += 1
    except BaseException:
        if collector is not None:
            collector.abandon()
        raise
    if collector is not None:
        collector.finish()
    return done
