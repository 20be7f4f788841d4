"""Certification throughput of SmoothedClassifier.sample_counts against two baselines.

Measures noisy forward passes per second (noisy copies classified per second) of

``ours``
    ``renyi_cert_torch.smoothing.SmoothedClassifier.sample_counts``: noise drawn on the device with
    a ``torch.Generator``, ``inference_mode``, labels counted with ``torch.bincount`` on the device,
    only the counts copied to the host.
``raw``
    Plain batched inference of the same model on the same number of inputs, with the noisy inputs
    generated beforehand (not timed): ``model(batch).argmax(1)`` under ``inference_mode``. This is
    the floor: target overhead of ``ours`` <= 5 %.
``cohen``
    A minimal loop in the style of Cohen et al.'s ``Smooth._sample_noise`` (locuslab/smoothing,
    ``code/core.py``), written here from its description: ``batch = x.repeat(b, 1, 1, 1)``,
    ``noise = torch.randn_like(batch) * sigma``, ``model(batch + noise).argmax(1)`` under
    ``torch.no_grad``, predictions moved to the host each batch and counted into a numpy array
    with a Python loop (their ``_count_arr``). Target: ``ours`` at least as fast.

Repeats are interleaved (each round runs every implementation once, in a rotating order) after a
warm-up call of each; the median and minimum time per implementation and the ratios of both are
printed (on a machine shared with other jobs the minima are the steadier estimate).

Usage::

    python benchmarks/bench_certify.py                 # MNIST CNN, 3,000 samples x 3 rounds (< 1 min on 2 cores)
    python benchmarks/bench_certify.py --arch linear --n 200000   # the sampling overhead alone
    python benchmarks/bench_certify.py --n 20000 --repeats 5 --batch 1000 --arch cifar_cnn7 --device cuda
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import torch

from renyi_cert_torch.models import build_model
from renyi_cert_torch.smoothing import SmoothedClassifier, resolve_device

INPUT_SHAPES = {"mnist_cnn": (1, 28, 28), "cifar_cnn7": (3, 32, 32), "linear": (1, 28, 28)}


def make_model(arch: str) -> torch.nn.Module:
    """The paper's CNNs, or "linear" (one 784 -> 10 layer): a model so cheap that the sampling
    machinery itself (noise, transfers, counting) dominates the time."""
    if arch == "linear":
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    return build_model(arch)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_ours(clf: SmoothedClassifier, x: torch.Tensor, sigma: float, n: int, batch: int, seed: int) -> np.ndarray:
    return clf.sample_counts(x, sigma, n, batch_size=batch, generator=clf.make_generator(seed))


def run_raw(model, noisy_batches: list[torch.Tensor], device: torch.device) -> None:
    with torch.inference_mode():
        for b in noisy_batches:
            model(b).argmax(1)
    _sync(device)


def _count_arr(arr: np.ndarray, length: int) -> np.ndarray:
    # Cohen et al.'s Smooth._count_arr: a Python loop over the predictions.
    counts = np.zeros(length, dtype=int)
    for idx in arr:
        counts[idx] += 1
    return counts


def run_cohen_style(model, x: torch.Tensor, num_classes: int, sigma: float, num: int, batch_size: int,
                    device: torch.device) -> np.ndarray:
    # After Cohen et al.'s Smooth._sample_noise (locuslab/smoothing), with the device made explicit.
    with torch.no_grad():
        counts = np.zeros(num_classes, dtype=int)
        remaining = num
        while remaining > 0:
            this_batch_size = min(batch_size, remaining)
            remaining -= this_batch_size
            batch = x.repeat((this_batch_size, 1, 1, 1))
            noise = torch.randn_like(batch, device=device) * sigma
            predictions = model(batch + noise).argmax(1)
            counts += _count_arr(predictions.cpu().numpy(), num_classes)
        return counts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="mnist_cnn", choices=sorted(INPUT_SHAPES))
    p.add_argument("--n", type=int, default=3000, help="noisy samples per measurement (default %(default)s)")
    p.add_argument("--batch", type=int, default=500, help="batch size, same for all (default %(default)s)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved rounds (default %(default)s)")
    p.add_argument("--sigma", type=float, default=0.5)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = p.parse_args(argv)
    for name in ("n", "batch", "repeats"):
        if getattr(args, name) < 1:
            p.error(f"--{name} ({getattr(args, name)}) must be >= 1")
    if not args.sigma > 0:
        p.error(f"--sigma ({args.sigma}) must be > 0")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    torch.manual_seed(0)
    model = make_model(args.arch).to(device).eval()
    shape = INPUT_SHAPES[args.arch]
    x = torch.rand(shape, device=device)
    clf = SmoothedClassifier(model, args.sigma, 10, device=device, batch_size=args.batch, input_shape=shape)
    gen = torch.Generator(device=device).manual_seed(1)
    sizes = [min(args.batch, args.n - s) for s in range(0, args.n, args.batch)]
    noisy = [x + args.sigma * torch.randn((b, *shape), generator=gen, device=device) for b in sizes]

    impls = {
        "ours": lambda: run_ours(clf, x, args.sigma, args.n, args.batch, 0),
        "raw": lambda: run_raw(model, noisy, device),
        "cohen": lambda: run_cohen_style(model, x.unsqueeze(0), 10, args.sigma, args.n, args.batch, device),
    }
    print(f"device {device} ({torch.get_num_threads()} threads), {args.arch}, n = {args.n}, batch = {args.batch}, "
          f"{args.repeats} interleaved rounds, torch {torch.__version__}")
    for fn in impls.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {k: [] for k in impls}
    names = list(impls)
    for r in range(args.repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            _sync(device)
            t0 = time.perf_counter()
            impls[name]()
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    best = {k: min(v) for k, v in times.items()}
    print(f"{'impl':<8}{'median s':>10}{'min s':>9}{'samples/s':>12}   all rounds (s)")
    for k in names:
        print(f"{k:<8}{med[k]:>10.3f}{best[k]:>9.3f}{args.n / med[k]:>12.0f}   " + ", ".join(f"{t:.3f}" for t in times[k]))
    # medians are robust to a slow round; minima estimate the cost when nothing else runs (on a shared machine)
    for label, stat in (("median", med), ("min", best)):
        print(f"[{label}] ours vs raw inference: time ratio {stat['ours'] / stat['raw']:.3f} "
              f"(overhead {100 * (stat['ours'] / stat['raw'] - 1):+.1f} %, target <= +5 %); "
              f"ours vs Cohen-style loop: speed-up {stat['cohen'] / stat['ours']:.3f}x (target >= 1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
