"""Adaptive (sequential) certification against a fixed number of samples, on the demo's model.

For each test digit (every ``--skip``-th of the 1,000 mnist5k test digits, at most ``--digits``),
in one run:

``fixed``
    :func:`renyi_cert.backend.certify` with ``n0`` selection and ``n_max`` estimation samples at
    level ``alpha`` (Cohen et al.'s CERTIFY): ``n0 + n_max`` forward passes per digit, the radii
    of all three bounds from one set of counts.
``target r, bound b``
    :func:`renyi_cert.sequential.certify_with_plan` in target mode: stop once the ``b`` radius
    reaches ``r`` or once ``r`` is out of reach (``--futility-level``), at most ``n_max``
    estimation samples, looks at ``n_start, 2 n_start, ...``, half of ``alpha`` for the last look
    and the rest split evenly over the others (the defaults of ``certify_adaptive``).
``best b``
    The same in best-radius mode (each relative tolerance of ``--tolerances``).

Reported per configuration: forward passes in all (fixed / adaptive and their ratio), certified
accuracy at ``r`` (fraction of digits certified correctly with radius >= r) for both, and the
digits whose decision differs; for best-radius mode the average certified radius (ACR: mean of
radius x correct) of both. Forward passes are counted, not timed, so the ratios do not depend on
the load of the machine; wall time is printed too.

The model is the demo's (MNIST CNN, STN at sigma 0.7, 6 epochs, seed 0 on the 4,000 mnist5k
training digits): ``--checkpoint`` if the file exists, else trained once and saved there.

Usage::

    python benchmarks/bench_adaptive.py                      # n_max 10,000, 100 digits, both modes
    python benchmarks/bench_adaptive.py --tolerances ""      # target mode only
    python benchmarks/bench_adaptive.py --radii "" --bounds renyi --digits 20 --skip 50   # best-radius only
    python benchmarks/bench_adaptive.py --n-max 100000 --digits 5 --skip 200 --tolerances ""
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from renyi_cert.backend import certify
from renyi_cert.seeds import derive_seed
from renyi_cert.sequential import certify_with_plan, plan_adaptive

SIGMA = 0.7


@dataclass(frozen=True)
class Outcome:
    """One digit under one procedure: prediction, radii per bound, forward passes, stop reason."""

    prediction: int
    radii: dict
    passes: int
    stop: str


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default="runs/bench/demo-stn.pt", help="the demo's model (trained if missing)")
    p.add_argument("--n-max", type=int, default=10_000)
    p.add_argument("--n0", type=int, default=100)
    p.add_argument("--alpha", type=float, default=0.001)
    p.add_argument("--digits", type=int, default=100)
    p.add_argument("--skip", type=int, default=10)
    p.add_argument("--radii", default="0.5,1.0", help="target radii (empty: best-radius mode only)")
    p.add_argument("--bounds", default="renyi,cohen", help="bounds the stopping rules watch")
    p.add_argument("--tolerances", default="0.02,0.05",
                   help="relative tolerances of best-radius mode (empty: target mode only)")
    p.add_argument("--futility-level", type=float, default=0.01)
    p.add_argument("--n-start", type=int, default=100)
    p.add_argument("--growth", type=float, default=2.0)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write the per-digit outcomes here")
    return p.parse_args(argv)


def demo_model(path: Path):
    """The demo's STN model, trained (about 80 s on 2 cores) and saved on first use."""
    from renyi_cert_torch.train import TrainConfig, load_checkpoint, save_checkpoint, train

    if not path.exists():
        print(f"training the demo's model into {path} ...", file=sys.stderr)
        result = train(TrainConfig(dataset="mnist5k", mode="stn", sigma=SIGMA, epochs=6, seed=0), progress=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(path, result.model, result.config)
    model, _ = load_checkpoint(path, map_location="cpu")
    return model


def run_fixed(clf, x, gen, args) -> Outcome:
    cert = certify(clf, x, SIGMA, n0=args.n0, n=args.n_max, alpha=args.alpha, bounds=("renyi", "cohen", "pixeldp"),
                   batch_size=args.batch, generator=gen)
    return Outcome(cert.prediction, dict(cert.radii), args.n0 + args.n_max, "fixed-n")


def run_adaptive(clf, x, gen, plan, args) -> Outcome:
    res = certify_with_plan(clf, x, plan, n0=args.n0, batch_size=args.batch, generator=gen)
    return Outcome(res.prediction, dict(res.certificate.radii), res.forward_passes, res.stop_reason)


def configurations(args) -> dict:
    """Name -> AdaptivePlan for every adaptive configuration of the run."""
    common = dict(n_max=args.n_max, alpha=args.alpha, futility_level=args.futility_level, n_start=args.n_start,
                  growth=args.growth, num_classes=10)
    plans = {}
    for bound in args.bounds.split(","):
        for r in (float(v) for v in args.radii.split(",") if v):
            plans[f"target {r:g}, {bound}"] = plan_adaptive(SIGMA, target_radius=r, bound=bound, **common)
        for t in (float(v) for v in args.tolerances.split(",") if v):
            plans[f"best (tolerance {t:g}), {bound}"] = plan_adaptive(SIGMA, tolerance=t, bound=bound, **common)
    return plans


def certified(outcomes, labels, bound: str, r: float) -> np.ndarray:
    return np.array([o.prediction == y and o.radii[bound] >= r for o, y in zip(outcomes, labels)])


def acr(outcomes, labels, bound: str) -> float:
    return float(np.mean([o.radii[bound] * (o.prediction == y) for o, y in zip(outcomes, labels)]))


def table(fixed, results, plans, labels) -> str:
    lines = ["| configuration | passes fixed | passes adaptive | fewer | fixed | adaptive | differ | stops |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    total_fixed = sum(o.passes for o in fixed)
    for name, outs in results.items():
        plan = plans[name]
        total = sum(o.passes for o in outs)
        if plan.target_radius is not None:
            a, b = certified(fixed, labels, plan.bound, plan.target_radius), certified(outs, labels, plan.bound,
                                                                                      plan.target_radius)
            left, right, differ = f"{a.mean():.2f}", f"{b.mean():.2f}", str(int(np.sum(a != b)))
        else:
            left, right = f"ACR {acr(fixed, labels, plan.bound):.4f}", f"ACR {acr(outs, labels, plan.bound):.4f}"
            differ = f"{acr(outs, labels, plan.bound) / acr(fixed, labels, plan.bound) - 1:+.1%}"
        stops = ", ".join(f"{s} {n}" for s, n in zip(*np.unique([o.stop for o in outs], return_counts=True)))
        lines.append(f"| {name} | {total_fixed:,} | {total:,} | {total_fixed / total:.1f}x | {left} | {right} | "
                     f"{differ} | {stops} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    from renyi_cert_torch.data import load_dataset
    from renyi_cert_torch.smoothing import SmoothedClassifier

    clf = SmoothedClassifier(demo_model(Path(args.checkpoint)), SIGMA, 10, device="cpu", batch_size=args.batch)
    data = load_dataset("mnist5k", "test")
    indices = list(range(0, len(data), args.skip))[:args.digits]
    labels = [int(data.y[i]) for i in indices]
    plans = configurations(args)
    print(f"{len(indices)} digits, sigma {SIGMA}, n0 {args.n0}, n_max {args.n_max}, alpha {args.alpha}, looks "
          f"{next(iter(plans.values())).sizes}, futility level {args.futility_level}",
          file=sys.stderr)
    seconds = {}
    start = time.perf_counter()
    fixed = [run_fixed(clf, data.x[i], clf.make_generator(derive_seed(args.seed, i)), args) for i in indices]
    seconds["fixed"] = time.perf_counter() - start
    results = {}
    for name, plan in plans.items():
        start = time.perf_counter()
        results[name] = [run_adaptive(clf, data.x[i], clf.make_generator(derive_seed(args.seed, i)), plan, args)
                         for i in indices]
        seconds[name] = time.perf_counter() - start
        print(f"  {name}: {seconds[name]:.0f} s", file=sys.stderr)
    print(table(fixed, results, plans, labels))
    print("\nwall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()))
    if args.json:
        dump = {"args": vars(args), "indices": indices, "labels": labels, "seconds": seconds,
                "fixed": [o.__dict__ for o in fixed], **{k: [o.__dict__ for o in v] for k, v in results.items()}}
        Path(args.json).write_text(json.dumps(dump, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
