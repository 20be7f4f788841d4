"""One evaluation on many processes: torch.distributed, launched by ``torchrun``.

The workers of a run are the processes that ``torchrun`` starts (or ``certify --nproc N``, which
starts them through torch's own elastic launcher, :mod:`renyi_cert_torch.launch`). Each reads
``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` from its environment (:func:`join`), joins the
process group -- gloo on the CPU, gloo and NCCL when the run is on CUDA -- and uses its own device,
``cuda:LOCAL_RANK``. Every collective and every wait on the rendezvous store is bounded by the run's
timeout, so a misconfigured or dead worker makes the others stop with a message instead of hanging.

What the workers share, all through the rendezvous store of torch.distributed:

* a work queue (:class:`WorkQueue`): the position of the next item to do is an atomic counter in
  the store, so a worker that finishes early takes the next item (the load balances itself when
  items differ in cost, as adaptive certification makes them);
* a row channel (:func:`post_row`, :class:`RowCollector`): a worker posts each finished row under
  its completion number; the main worker (rank 0) writes the rows to the one output file as they
  arrive, so nothing a worker finished waits for a slower one;
* errors (:func:`settle`, :func:`from_main`): a user error found on any worker is raised on every
  worker, with the same message.

A process that was not started by a launcher (no ``WORLD_SIZE`` in its environment) is the only
worker of its run (:data:`SINGLE`), and none of this machinery is used.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Sequence

import numpy as np
import torch

from renyi_cert.seeds import derive_seed

__all__ = ["DEFAULT_TIMEOUT", "DistributedError", "Workers", "SINGLE", "launched", "join", "leave",
           "stop_on_sigterm", "finish_together", "gather", "broadcast", "settle", "from_main", "check_same",
           "WorkQueue", "post_row", "RowCollector", "SplitSampler"]

#: Seconds a worker waits on a collective, or rank 0 for the next row, before giving up.
DEFAULT_TIMEOUT = 1800.0
_POLL = (0.005, 0.2)  # first and longest sleep between checks of the store, seconds
_ROUND = [0]  # how many runs this process has joined: each gets its own keys in the store
_STORE: list[Any] = []  # the rendezvous store, once this process has joined the process group
# Rank 0 talks to the store from two threads (its own work, the row collector): one call at a time.
_STORE_LOCK = threading.Lock()


class DistributedError(RuntimeError):
    """The workers of a run disagree, or one of them stopped answering."""


@dataclass(frozen=True)
class Workers:
    """This process's place among the workers of a run.

    Attributes
    ----------
    rank, world_size, local_rank : int
        As ``torchrun`` numbers them (rank 0 is the main worker, which writes the output).
    timeout : float
        Seconds any collective or wait may take.
    store : object or None
        This run's keys in the rendezvous store (a ``torch.distributed.PrefixStore``); None for a
        single process.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    timeout: float = DEFAULT_TIMEOUT
    store: Any = None

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the worker that writes the output."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Whether there is more than one worker."""
        return self.world_size > 1


SINGLE = Workers()


def _env_int(name: str) -> int:
    text = os.environ.get(name, "")
    try:
        value = int(text)
    except ValueError:
        raise DistributedError(f"the environment variable {name} ({text!r}) must be an integer (it is set by "
                               "torchrun)") from None
    if value < 0:
        raise DistributedError(f"the environment variable {name} ({value}) must be >= 0")
    return value


def launched() -> bool:
    """Whether this process was started by ``torchrun`` (or another launcher that sets ``WORLD_SIZE``)."""
    return "WORLD_SIZE" in os.environ


def join(device_type: str = "cpu", timeout: float = DEFAULT_TIMEOUT) -> Workers:
    """Join the run this process was launched into; :data:`SINGLE` when it was not.

    Parameters
    ----------
    device_type : {"cpu", "cuda"}
        Where the run computes: ``"cuda"`` adds NCCL for CUDA tensors (and each worker takes the
        GPU ``LOCAL_RANK``); gloo carries everything else.
    timeout : float
        Seconds (> 0) that the rendezvous, every collective and every wait of the run may take.

    Raises
    ------
    DistributedError
        Malformed launcher variables, or a worker asking for GPU ``LOCAL_RANK`` that does not exist.
    """
    if not timeout > 0:
        raise ValueError(f"timeout ({timeout!r}) must be > 0 seconds")
    if not launched():
        return Workers(timeout=timeout)
    world, rank, local_rank = _env_int("WORLD_SIZE"), _env_int("RANK"), _env_int("LOCAL_RANK")
    if world < 1 or rank >= world:
        raise DistributedError(f"RANK ({rank}) must be below WORLD_SIZE ({world})")
    if world == 1:
        return Workers(timeout=timeout)
    if device_type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise DistributedError(f"LOCAL_RANK ({local_rank}) has no GPU: this machine has "
                                   f"{torch.cuda.device_count()}; start at most that many workers per machine")
        torch.cuda.set_device(local_rank)
    store = _process_group(device_type, rank, world, timeout)
    _ROUND[0] += 1
    prefix = f"renyi_cert/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}/{_ROUND[0]}/"
    return Workers(rank, world, local_rank, timeout, torch.distributed.PrefixStore(prefix, store))


def _process_group(device_type: str, rank: int, world: int, timeout: float) -> Any:
    """The rendezvous store, after joining the default process group (once per process)."""
    import torch.distributed as dist

    if _STORE:
        return _STORE[0]
    span = timedelta(seconds=timeout)
    backend = "cpu:gloo,cuda:nccl" if device_type == "cuda" else "gloo"
    try:
        store, rank, world = next(dist.rendezvous("env://", rank=rank, world_size=world, timeout=span))
        store.set_timeout(span)
        dist.init_process_group(backend, store=store, rank=rank, world_size=world, timeout=span)
    except (RuntimeError, ValueError) as exc:  # DistStoreError and DistNetworkError are RuntimeErrors
        raise DistributedError(f"rank {rank} could not join the other {world - 1} worker(s) within {timeout:g} s "
                               f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); check "
                               "MASTER_ADDR, MASTER_PORT and that every worker was started") from None
    _STORE.append(store)
    return store


def leave() -> None:
    """Leave the process group (at the end of the process's work; no-op for a single process)."""
    import torch.distributed as dist

    if _STORE and dist.is_initialized():
        dist.destroy_process_group()
    _STORE.clear()


def stop_on_sigterm() -> None:
    """Make SIGTERM stop this worker like Ctrl-C (KeyboardInterrupt), so that it says so and keeps
    what it wrote: a launcher stops every worker with SIGTERM as soon as one of them has failed."""
    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


def finish_together(workers: Workers) -> None:
    """Wait until every worker is here, ignoring SIGTERM meanwhile (call it after printing an error
    that every worker met, before exiting).

    A launcher stops the other workers as soon as one has exited, which could cut a slower
    worker's message short or hide its exit status; this way each one has said its piece first.
    """
    if not workers.distributed:
        return
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with contextlib.suppress(DistributedError):  # a worker is gone: nothing more to wait for
        gather(workers, None)


# ------------------------------------------------------------------------------- collectives


@contextlib.contextmanager
def _answering(what: str):
    """Turn the error of a collective whose peer is gone (gloo's RuntimeError) into a DistributedError."""
    try:
        yield
    except RuntimeError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DistributedError(f"a worker stopped answering during {what} ({first})") from None


def gather(workers: Workers, obj: object) -> list:
    """Every worker's ``obj``, in rank order, on every worker (a list of one for a single process)."""
    if not workers.distributed:
        return [obj]
    import torch.distributed as dist

    out: list = [None] * workers.world_size
    with _answering("a gather"):
        dist.all_gather_object(out, obj)
    return out


def broadcast(workers: Workers, obj: object) -> Any:
    """Rank 0's ``obj`` on every worker (``obj`` itself for a single process)."""
    if not workers.distributed:
        return obj
    import torch.distributed as dist

    box = [obj]
    with _answering("a broadcast"):
        dist.broadcast_object_list(box, src=0)
    return box[0]


def settle(workers: Workers, error: str | None, error_type: type[Exception]) -> None:
    """Raise ``error_type`` on every worker if any worker has an ``error`` message.

    Each worker passes the message of the user error it met in a step (None if none); every
    worker then raises the error of the lowest rank that had one, naming that rank when it is
    not this one.
    """
    for rank, message in enumerate(gather(workers, error)):
        if message:
            raise error_type(message if rank == workers.rank else f"(on rank {rank}) {message}")


def from_main(workers: Workers, step: Callable[[], Any], error_type: type[Exception]) -> Any:
    """Run ``step`` on rank 0 and return its result on every worker; its ``error_type`` on all of them."""
    result, error = None, None
    if workers.is_main:
        try:
            result = step()
        except error_type as exc:
            error = str(exc)
    result, error = broadcast(workers, (result, error))
    if error:
        raise error_type(error if workers.is_main else f"(on rank 0) {error}")
    return result


def check_same(workers: Workers, settings: dict, what: str = "settings") -> None:
    """Raise :class:`DistributedError` on every worker unless all of them have the same ``settings``.

    The message names the first rank and key that differ from rank 0's.
    """
    everyone = gather(workers, settings)
    first = everyone[0]
    for rank, theirs in enumerate(everyone[1:], start=1):
        for key in sorted(set(first) | set(theirs)):
            if first.get(key) != theirs.get(key):
                raise DistributedError(f"rank {rank} was started with other {what} than rank 0 ({key}: "
                                       f"{theirs.get(key)!r} on rank {rank}, {first.get(key)!r} on rank 0); start "
                                       "every worker with the same command, checkpoint and data")


# ------------------------------------------------------------------------------ work sharing


class WorkQueue:
    """Positions ``0 .. size - 1`` handed out one at a time to whichever worker asks first.

    For a single process it counts up; across workers the counter is the store's atomic ``add``,
    so every position goes to exactly one worker, in the order the workers become free.
    """

    def __init__(self, workers: Workers, size: int, name: str = "next") -> None:
        self.workers, self.size, self.name = workers, int(size), name
        self._local = 0

    def claim(self) -> int | None:
        """The next position to do, or None when every position has been handed out."""
        if self.workers.distributed:
            with _STORE_LOCK:
                position = int(self.workers.store.add(self.name, 1)) - 1
        else:
            position, self._local = self._local, self._local + 1
        return position if position < self.size else None

    def __iter__(self):
        while (position := self.claim()) is not None:
            yield position


def post_row(workers: Workers, text: str) -> None:
    """Hand a finished row to rank 0's :class:`RowCollector` (through the store)."""
    with _STORE_LOCK:
        number = int(workers.store.add("posted", 1)) - 1
        workers.store.set(f"row/{number}", text)


class RowCollector:
    """Rank 0's writer: passes every posted row to ``sink`` as it arrives, in a background thread.

    ``expected`` rows are awaited; :meth:`finish` waits for the last one and re-raises, in the
    caller's thread, anything that went wrong (``sink`` raising, or no row arriving for
    ``workers.timeout`` seconds: a worker has probably died; ``stalled`` then ends the message,
    saying what happens to the output).
    """

    def __init__(self, workers: Workers, expected: int, sink: Callable[[str], None], *,
                 stalled: str = "the rows written so far are kept (--resume continues the log)") -> None:
        self.workers, self.expected, self.sink, self.stalled = workers, int(expected), sink, stalled
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._collect, name="renyi_cert-rows", daemon=True)
        self._thread.start()

    def _collect(self) -> None:
        store = self.workers.store
        try:
            for number in range(self.expected):
                key = f"row/{number}"
                self._await(key)
                if self._stop.is_set():
                    return
                with _STORE_LOCK:
                    text = store.get(key).decode("utf-8")
                    store.delete_key(key)
                self.sink(text)
        except BaseException as exc:  # re-raised by finish() in the caller's thread
            self._error = exc

    def _await(self, key: str) -> None:
        deadline, pause = time.monotonic() + self.workers.timeout, _POLL[0]
        while not self._arrived(key):
            if self._stop.is_set():
                return
            if time.monotonic() > deadline:
                raise DistributedError(f"nothing arrived from the workers for {self.workers.timeout:g} s: a worker "
                                       f"has probably stopped (raise --timeout if one item takes longer); "
                                       f"{self.stalled}")
            time.sleep(pause)
            pause = min(2 * pause, _POLL[1])

    def _arrived(self, key: str) -> bool:
        with _STORE_LOCK:
            return bool(self.workers.store.check([key]))

    def finish(self) -> None:
        """Wait until every expected row has been written; re-raise the collector's error."""
        while self._thread.is_alive():
            self._thread.join(timeout=0.5)
        if self._error is not None:
            raise self._error

    def abandon(self) -> None:
        """Stop waiting (the run failed on this worker)."""
        self._stop.set()
        self._thread.join(timeout=5.0)


# --------------------------------------------------------------------- one example, many workers


class SplitSampler:
    """A backend that splits each ``sample_counts`` call over the workers and sums their counts.

    The ``n`` copies of a call are cut into chunks of ``batch_size``; chunk ``j`` draws its noise
    from a generator seeded with ``derive_seed(base, j)``, where ``base`` is drawn from the
    caller's generator (the same on every worker, which is given the same generator). Worker
    ``r`` counts chunks ``r, r + W, r + 2W, ...`` and an ``all_reduce`` sums the counts, so the
    union of the draws -- hence the counts -- is the same for any number of workers ``W``,
    including one. (The draws differ from those of ``clf.sample_counts`` on its own, which takes
    every copy from the caller's generator.)

    Parameters
    ----------
    clf : renyi_cert_torch.smoothing.SmoothedClassifier
        The smoothed classifier that counts each chunk (on this worker's device).
    workers : Workers
    """

    def __init__(self, clf: Any, workers: Workers) -> None:
        self.clf, self.workers = clf, workers
        self.num_classes = clf.num_classes
        self.batch_size = clf.batch_size

    def sample_counts(self, x: Any, sigma: float, n: int, *, batch_size: int | None = None,
                      generator: torch.Generator | None = None) -> np.ndarray:
        """Class counts on ``n`` noisy copies of ``x``, drawn in chunks shared out over the workers."""
        if generator is None:
            raise ValueError("generator must be given: every worker must draw the same chunk seeds")
        batch = self.batch_size if batch_size is None else int(batch_size)
        base = int(torch.randint(0, 2 ** 62, (1,), generator=generator, device=generator.device).item())
        counts = np.zeros(self.num_classes, dtype=np.int64)
        for chunk in _chunks(n, batch, self.workers.rank, self.workers.world_size):
            start, size = chunk
            g = self.clf.make_generator(derive_seed(base, start // batch))
            counts += self.clf.sample_counts(x, sigma, size, batch_size=batch, generator=g)
        if self.workers.distributed:
            import torch.distributed as dist

            total = torch.from_numpy(counts).to(self.clf.device)
            dist.all_reduce(total)
            counts = total.cpu().numpy().astype(np.int64, copy=True)
        return counts


def _chunks(n: int, batch: int, rank: int, world: int) -> Sequence[tuple[int, int]]:
    """``(start, size)`` of the chunks of ``n`` copies in ``batch``-sized pieces that ``rank`` draws."""
    starts = range(rank * batch, n, world * batch)
    return [(s, min(batch, n - s)) for s in starts]
