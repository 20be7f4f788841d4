"""One certification on 1 worker and on 2 workers (torch.distributed, gloo), in one run.

The same ``certify`` command (the demo's MNIST model, 50 test digits, n0 = 100, n = 2,000 by
default) runs as one process and as two workers started by ``certify --nproc 2`` (torch's elastic
launcher), each with one torch thread (``OMP_NUM_THREADS=1``), in interleaved rounds. It prints
the wall time of every whole command (process start, model and data loading included) and the
sum of its rows' ``time`` column, the speed-up of 2 workers over 1 (target >= 1.7x on a 2-core
machine), and whether the two logs are identical in every column but ``time`` (they must be; the
exit status is 1 if they are not).

Usage::

    python benchmarks/bench_distributed.py                       # runs/demo/model.pt (from `make demo`)
    python benchmarks/bench_distributed.py --checkpoint runs/x.pt --examples 20 --n 1000 --rounds 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(checkpoint: str, out: Path, args, workers: int) -> float:
    """Wall seconds of one ``certify`` command with ``workers`` workers."""
    command = [sys.executable, "-m", "renyi_cert_torch.cli", "certify", "--checkpoint", checkpoint, "--out", str(out),
               "--max", str(args.examples), "--n0", str(args.n0), "--n", str(args.n), "--batch", str(args.batch),
               "--device", "cpu", "--no-progress", "--force"]
    if workers > 1:
        command += ["--nproc", str(workers)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    t0 = time.perf_counter()
    res = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t0
    if res.returncode != 0:
        sys.exit(f"bench_distributed: the {workers}-worker run failed:\n{res.stderr}")
    return seconds


def without_time(path: Path) -> list[list[str]]:
    """The log's rows without the ``time`` column (the 6th)."""
    return [cells[:5] + cells[6:] for cells in (line.split("\t") for line in path.read_text().splitlines())]


def row_seconds(path: Path) -> float:
    """The sum of the rows' ``time`` column."""
    return sum(float(line.split("\t")[5]) for line in path.read_text().splitlines()[1:])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default="runs/demo/model.pt", help="default: the demo's model (make demo)")
    p.add_argument("--examples", type=int, default=50, help="test digits (default %(default)s)")
    p.add_argument("--n0", type=int, default=100)
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default %(default)s)")
    args = p.parse_args(argv)
    for name in ("examples", "n0", "n", "batch", "rounds"):
        if getattr(args, name) < 1:
            p.error(f"--{name} ({getattr(args, name)}) must be >= 1")
    if not Path(args.checkpoint).is_file():
        p.error(f"--checkpoint ({args.checkpoint!r}) does not exist; `make demo` writes runs/demo/model.pt")
    print(f"{args.examples} digits, n0 {args.n0}, n {args.n}, batch {args.batch}, one torch thread per worker, "
          f"{os.cpu_count()} CPUs, {args.rounds} interleaved rounds; checkpoint {args.checkpoint}")
    walls: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        logs = {w: Path(tmp) / f"w{w}.tsv" for w in (1, 2)}
        for r in range(args.rounds):
            for w in ((1, 2) if r % 2 == 0 else (2, 1)):
                walls[w].append(run(args.checkpoint, logs[w], args, w))
                print(f"round {r + 1}: {w} worker(s) {walls[w][-1]:.1f} s (rows' time column: "
                      f"{row_seconds(logs[w]):.1f} s in all)", flush=True)
        identical = without_time(logs[1]) == without_time(logs[2])
    med = {w: statistics.median(v) for w, v in walls.items()}
    best = {w: min(v) for w, v in walls.items()}
    print(f"1 worker: median {med[1]:.1f} s, min {best[1]:.1f} s; 2 workers: median {med[2]:.1f} s, "
          f"min {best[2]:.1f} s (whole commands)")
    print(f"speed-up of 2 workers: {med[1] / med[2]:.2f}x (median), {best[1] / best[2]:.2f}x (min); target >= 1.7x")
    print(f"logs identical except the time column: {'yes' if identical else 'NO'}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
