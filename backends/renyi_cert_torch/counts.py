"""Monte Carlo class counts of many examples, shared out over workers (the reproduction's
certification stages).

:func:`count_examples` draws, for each example ``i`` of ``x``, ``n0`` selection and ``n``
estimation samples from the generator seeded with ``derive_seed(seed, i)``; the workers of a
torch.distributed run take the examples from a shared :class:`~renyi_cert_torch.distributed.WorkQueue`
and every worker ends with all the counts, so they do not depend on the number of workers.
:func:`sharded_counts` runs it on ``nproc`` local workers started through torch's elastic
launcher; ``python -m renyi_cert_torch.counts`` is each worker's entry point.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence

from renyi_cert.seeds import derive_seed

from .distributed import DEFAULT_TIMEOUT, SINGLE, Workers, WorkQueue, gather, join, leave

__all__ = ["count_examples", "sharded_counts", "main"]

MODULE = "renyi_cert_torch.counts"


def count_examples(clf, x, *, n0: int, n: int, seed: int, workers: Workers = SINGLE) -> dict:
    """Selection and estimation counts of every example of ``x`` (``{"selection": [...], "estimation": [...]}``).

    ``clf`` is a :class:`renyi_cert_torch.smoothing.SmoothedClassifier`. Example ``i`` draws its
    ``n0`` then ``n`` noisy copies from one generator seeded with ``derive_seed(seed, i)``, so the
    two draws are independent and the counts do not depend on which worker drew them.
    """
    mine = []
    for i in WorkQueue(workers, len(x)):
        gen = clf.make_generator(derive_seed(seed, i))
        sel = clf.sample_counts(x[i], clf.noise, n0, generator=gen).tolist()
        est = clf.sample_counts(x[i], clf.noise, n, generator=gen).tolist()
        mine.append((i, sel, est))
    everything = sorted(item for part in gather(workers, mine) for item in part)
    if [i for i, _, _ in everything] != list(range(len(x))):  # pragma: no cover - a broken queue
        raise RuntimeError("the workers did not count every example exactly once")
    return {"selection": [s for _, s, _ in everything], "estimation": [e for _, _, e in everything]}


def sharded_counts(checkpoint: str | Path, x: Any, *, sigma: float, num_classes: int, n0: int, n: int, seed: int,
                   batch: int, device: str, nproc: int, timeout: float = DEFAULT_TIMEOUT) -> dict:
    """:func:`count_examples` for the model of ``checkpoint`` on ``nproc`` local workers.

    Raises
    ------
    RuntimeError
        If a worker failed (its message is on stderr).
    """
    import torch

    from .launch import launch

    with tempfile.TemporaryDirectory(prefix="renyi_cert-counts-") as tmp:
        inputs, out = Path(tmp) / "x.pt", Path(tmp) / "counts.json"
        torch.save(x.detach().cpu(), inputs)
        argv = ["--checkpoint", str(checkpoint), "--inputs", str(inputs), "--out", str(out), "--sigma", repr(sigma),
                "--num-classes", str(num_classes), "--n0", str(n0), "--n", str(n), "--seed", str(seed), "--batch", str(batch), "--device", device,
                "--timeout", repr(timeout)]
        rc = launch(nproc, None, argv, prog="counts", module=MODULE)
        if rc != 0:
            raise RuntimeError(f"counting on {nproc} workers failed (exit status {rc}); see the messages above")
        return json.loads(out.read_text())


def main(argv: Sequence[str] | None = None) -> int:
    """One worker of :func:`sharded_counts`: count, and (rank 0) write the counts as JSON."""
    import torch

    from renyi_cert._files import atomic_write_text

    from .devices import resolve_device
    from .smoothing import SmoothedClassifier
    from .train import load_checkpoint

    p = argparse.ArgumentParser(prog="python -m renyi_cert_torch.counts", description=main.__doc__)
    for flag in ("--checkpoint", "--inputs", "--out", "--device"):
        p.add_argument(flag, required=True)
    for flag in ("--num-classes", "--n0", "--n", "--seed", "--batch"):
        p.add_argument(flag, type=int, required=True)
    p.add_argument("--sigma", type=float, required=True)
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    workers = join(device.type, args.timeout)
    try:
        if device.type == "cuda" and workers.distributed:
            device = resolve_device(f"cuda:{workers.local_rank}")
        model, _ = load_checkpoint(args.checkpoint, map_location="cpu")
        clf = SmoothedClassifier(model, args.sigma, args.num_classes, device=device, batch_size=args.batch)
        x = torch.load(args.inputs, weights_only=True)
        counts = count_examples(clf, x, n0=args.n0, n=args.n, seed=args.seed, workers=workers)
        if workers.is_main:
            atomic_write_text(args.out, json.dumps(counts))
    finally:
        leave()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
