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

``--levers`` measures instead what makes the forward pass itself cheaper (the "CPU levers"), all
through ``SmoothedClassifier.sample_counts`` on the demo's architecture (the MNIST CNN) and a
mnist5k test digit, in noisy forwards per second:

1. the batch size: 50, 100, 125, 200, 500 and 1,000 (today's default), float32;
2. at 1,000, at 100 and at the fastest batch size of step 1: ``channels_last=True``,
   ``amp="bf16"``, both, and (unless ``--no-compile``) ``torch.compile`` of the model (float32,
   and with bf16 + channels_last) and a frozen TorchScript trace (float32); on the CPU also
   float16 autocast, which ``SmoothedClassifier`` refuses there (timed on the plain model);
3. the labels of bf16 (and of channels_last) against float32 on the same noisy copies
   (``--agree-digits`` test digits x ``--agree-n`` copies), on a model trained for
   ``--train-epochs`` STN epochs on mnist5k (0: the random initialisation), or ``--checkpoint``.

Each step's configurations run in interleaved rounds (rotating order, a warm-up call each) and
every ratio is to float32 at batch 1,000 *of the same round* (median over the rounds), so a
drifting load on a shared machine hits both sides of a ratio alike.

Usage::

    python benchmarks/bench_certify.py                 # MNIST CNN, 3,000 samples x 3 rounds (< 1 min on 2 cores)
    python benchmarks/bench_certify.py --arch linear --n 200000   # the sampling overhead alone
    python benchmarks/bench_certify.py --n 20000 --repeats 5 --batch 1000 --arch cifar_cnn7 --device cuda
    python benchmarks/bench_certify.py --levers        # the CPU levers (~11 min on 2 shared cores)
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import sys
import time
import warnings
from typing import Callable

import numpy as np
import torch

from renyi_cert_torch.models import build_model
from renyi_cert_torch.smoothing import DEFAULT_BATCH_SIZE, SmoothedClassifier, resolve_device

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


# ------------------------------------------------------------------------------------ CPU levers

LEVER_BATCHES = (50, 100, 125, 200, 500, 1000)
LEVER_SMALL_BATCH = 100  # the batch of an earlier measurement's claims (1.44x; 2.9x with bf16 + channels_last)
BASELINE = f"fp32 b{DEFAULT_BATCH_SIZE}"


class _Opaque(torch.nn.Module):
    """Calls a frozen TorchScript module without registering it as a submodule (``eval_mode``
    cannot read the train/eval flags of a frozen module, which has none)."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self._fn = [fn]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fn[0](x)


def lever_model(args, device: torch.device) -> tuple[torch.nn.Module, str]:
    """The MNIST CNN to measure: loaded from ``--checkpoint``, trained ``--train-epochs`` STN epochs, or random."""
    if args.checkpoint:
        from renyi_cert_torch.train import load_checkpoint

        model, _ = load_checkpoint(args.checkpoint)
        return model.to(device).eval(), f"checkpoint {args.checkpoint}"
    if args.train_epochs == 0:
        torch.manual_seed(0)
        return build_model("mnist_cnn").to(device).eval(), "random initialisation"
    from renyi_cert_torch.train import TrainConfig, train

    t0 = time.perf_counter()
    config = TrainConfig(dataset="mnist5k", mode="stn", sigma=0.7, epochs=args.train_epochs, seed=0)
    model = train(config, device=device, progress=False).model
    return model, f"trained {args.train_epochs} STN epoch(s) (sigma 0.7) on mnist5k in {time.perf_counter() - t0:.0f} s"


def make_clf(model: torch.nn.Module, args, device, *, amp=None, channels_last=False, wrap=None) -> SmoothedClassifier:
    """A SmoothedClassifier on a private copy of ``model`` (channels_last converts its model in place)."""
    net = copy.deepcopy(model)
    if wrap is not None:
        net = wrap(net)
    return SmoothedClassifier(net, args.sigma, 10, device=device, input_shape=(1, 28, 28), amp=amp,
                              channels_last=channels_last)


def _compiled(net: torch.nn.Module) -> torch.nn.Module:
    return torch.compile(net, dynamic=False)


def _jit_frozen(net: torch.nn.Module) -> torch.nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated in favour of torch.compile
        example = torch.rand(8, 1, 28, 28, device=next(net.parameters()).device)
        return _Opaque(torch.jit.freeze(torch.jit.trace(net.eval(), example)))


def time_rounds(runs: dict[str, Callable[[], object]], repeats: int, device) -> dict[str, list[float]]:
    """Seconds per call of each run: a warm-up call each, then ``repeats`` rounds in rotating order."""
    for name, fn in runs.items():
        t0 = time.perf_counter()
        fn()
        if time.perf_counter() - t0 > 10:
            print(f"  (warm-up of {name}: {time.perf_counter() - t0:.0f} s)")
    times: dict[str, list[float]] = {k: [] for k in runs}
    names = list(runs)
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            _sync(device)
            t0 = time.perf_counter()
            runs[name]()
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    return times


def print_speed_table(times: dict[str, list[float]], n: int) -> dict[str, float]:
    """Forwards/s (median and best round) and the paired ratio to ``BASELINE``; returns the ratios.

    The ratio is the median over the rounds of (baseline's time / this configuration's time) in
    the same round: the statistic least moved by a load that drifts between rounds.
    """
    base = times[BASELINE]
    print(f"  {'configuration':<26}{'median fwd/s':>13}{'best fwd/s':>12}{'x default':>11}   rounds (s)")
    ratios = {}
    for name, ts in times.items():
        ratios[name] = statistics.median(b / t for b, t in zip(base, ts))
        print(f"  {name:<26}{n / statistics.median(ts):>13.0f}{n / min(ts):>12.0f}{ratios[name]:>10.2f}x   "
              + ", ".join(f"{t:.2f}" for t in ts))
    return ratios


def _counts_run(clf: SmoothedClassifier, x: torch.Tensor, sigma: float, n: int, batch: int) -> Callable[[], object]:
    return lambda: clf.sample_counts(x, sigma, n, batch_size=batch, generator=clf.make_generator(0))


def measure_batches(model, x, args, device) -> int:
    """Step 1: float32 at every batch size of ``LEVER_BATCHES``; returns the fastest (by the paired ratio)."""
    clf = make_clf(model, args, device)
    runs = {f"fp32 b{b}": _counts_run(clf, x, args.sigma, args.n, b) for b in LEVER_BATCHES}
    print(f"\n1. batch size (float32), n = {args.n}, {args.repeats} rounds")
    ratio = print_speed_table(time_rounds(runs, args.repeats, device), args.n)
    return max(LEVER_BATCHES, key=lambda b: ratio[f"fp32 b{b}"])


def lever_configs(args) -> dict[str, dict]:
    """Step 2's SmoothedClassifier options by name (``compile``/``jit`` variants unless ``--no-compile``)."""
    configs: dict[str, dict] = {"fp32": {}, "channels_last": {"channels_last": True}, "bf16": {"amp": "bf16"},
                                "bf16+channels_last": {"amp": "bf16", "channels_last": True}}
    if not args.no_compile:
        configs["compile fp32"] = {"wrap": _compiled}
        configs["compile bf16+cl"] = {"wrap": _compiled, "amp": "bf16", "channels_last": True}
        configs["jit-freeze fp32"] = {"wrap": _jit_frozen}
    return configs


def measure_levers(model, x, args, device, best: int) -> None:
    """Step 2: every lever at the default batch size, at ``LEVER_SMALL_BATCH`` and at ``best``."""
    batches = sorted({DEFAULT_BATCH_SIZE, LEVER_SMALL_BATCH, best}, reverse=True)
    runs = {}
    for name, opts in lever_configs(args).items():
        try:
            clf = make_clf(model, args, device, **opts)
        except Exception as exc:  # e.g. no C++ compiler for torch.compile
            print(f"  skipped {name}: {type(exc).__name__}: {exc}")
            continue
        for b in batches:
            runs[f"{name} b{b}"] = _counts_run(clf, x, args.sigma, args.n, b)
    print(f"\n2. levers at batch {', '.join(map(str, batches))}, n = {args.n}, {args.repeats} rounds")
    try:
        times = time_rounds(runs, args.repeats, device)
    except Exception as exc:
        print(f"  failed: {type(exc).__name__}: {exc} (rerun with --no-compile)")
        return
    print_speed_table(times, args.n)


def measure_fp16_on_cpu(model, x, args) -> None:
    """Why ``amp="fp16"`` is refused on the CPU: plain forwards/s of 200 noisy copies under float16
    autocast against float32 (SmoothedClassifier refuses the combination, so it is timed here directly)."""
    noisy = x + args.sigma * torch.randn((200, *x.shape), generator=torch.Generator().manual_seed(0))
    rates = {}
    contexts = {"fp32": contextlib.nullcontext, "fp16 autocast": lambda: torch.autocast("cpu", torch.float16)}
    for name, ctx in contexts.items():
        with torch.inference_mode(), ctx():
            model(noisy[:10])  # warm-up
            t0 = time.perf_counter()
            model(noisy)
            rates[name] = len(noisy) / (time.perf_counter() - t0)
    print(f"\n   float16 autocast on the CPU (refused by SmoothedClassifier; plain model, 200 copies, one batch): "
          f"{rates['fp16 autocast']:.0f} forwards/s against {rates['fp32']:.0f} for float32 "
          f"({rates['fp32'] / rates['fp16 autocast']:.0f}x slower)")


def _labels(clf: SmoothedClassifier, noisy: torch.Tensor) -> torch.Tensor:
    """The argmax labels of ``clf``'s model on ``noisy``, computed as ``sample_counts`` does."""
    if clf.channels_last:
        noisy = noisy.contiguous(memory_format=torch.channels_last)
    amp = torch.autocast(device_type=clf.device.type, dtype=torch.bfloat16) if clf.amp else contextlib.nullcontext()
    with torch.inference_mode(), amp:
        return clf.model(noisy).argmax(1)


def measure_agreement(model, test_x: torch.Tensor, args, device) -> None:
    """Step 3: labels of each option against float32 on the same noisy copies (checked against sample_counts)."""
    clfs = {"fp32": make_clf(model, args, device), "channels_last": make_clf(model, args, device, channels_last=True),
            "bf16": make_clf(model, args, device, amp="bf16"),
            "bf16+channels_last": make_clf(model, args, device, amp="bf16", channels_last=True)}
    agree = {k: 0 for k in clfs}
    top_changed = {k: 0 for k in clfs}
    total = 0
    for i in range(args.agree_digits):
        x = test_x[i * (len(test_x) // args.agree_digits)].to(device)
        noisy = torch.empty((args.agree_n, *x.shape), device=device)
        noisy.normal_(0.0, args.sigma, generator=torch.Generator(device=device).manual_seed(i)).add_(x)
        labels = {k: _labels(c, noisy) for k, c in clfs.items()}
        counts = {k: np.bincount(v.cpu().numpy(), minlength=10) for k, v in labels.items()}
        for k, c in clfs.items():
            if i == 0:  # _labels computes what sample_counts counts (same noise: one batch of agree_n)
                got = c.sample_counts(x, args.sigma, args.agree_n, batch_size=args.agree_n,
                                      generator=c.make_generator(i))
                assert np.array_equal(got, counts[k]), k
            agree[k] += int((labels[k] == labels["fp32"]).sum())
            top_changed[k] += int(counts[k].argmax() != counts["fp32"].argmax())
        total += args.agree_n
    print(f"\n3. labels against float32 on the same {total:,} noisy copies ({args.agree_digits} test digits x "
          f"{args.agree_n}, sigma {args.sigma:g}):")
    for k in list(clfs)[1:]:
        print(f"  {k:<20} {agree[k]:,} of {total:,} agree ({total - agree[k]} differ); the top class of the counts "
              f"changed for {top_changed[k]} of {args.agree_digits} digits")


def levers_main(args, device: torch.device) -> int:
    """``--levers``: steps 1-3 of the module docstring."""
    from renyi_cert_torch.data import load_dataset

    if any(args.n % b for b in LEVER_BATCHES):
        print(f"note: n = {args.n} is not a multiple of every batch size; the last batch is smaller")
    model, origin = lever_model(args, device)
    test_x = load_dataset("mnist5k", "test").x
    x = test_x[0].to(device)
    print(f"device {device} ({torch.get_num_threads()} threads), mnist_cnn ({origin}), sigma {args.sigma:g}, "
          f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}")
    best = measure_batches(model, x, args, device)
    measure_levers(model, x, args, device, best)
    if device.type == "cpu":
        measure_fp16_on_cpu(model, x, args)
    measure_agreement(model, test_x, args, device)
    return 0


def _autocast(device: torch.device, amp: str | None) -> Callable:
    """Wrap a function to run under ``torch.autocast`` in ``amp``'s dtype (unchanged without amp)."""
    if amp is None:
        return lambda fn: fn
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]

    def wrap(fn):
        def run(*a, **k):
            with torch.autocast(device_type=device.type, dtype=dtype):
                return fn(*a, **k)
        return run
    return wrap


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="mnist_cnn", choices=sorted(INPUT_SHAPES))
    p.add_argument("--n", type=int, default=3000, help="noisy samples per measurement (default %(default)s)")
    p.add_argument("--batch", type=int, default=500, help="batch size, same for all (default %(default)s)")
    p.add_argument("--repeats", type=int, default=None, help="interleaved rounds (default 3; 5 with --levers)")
    p.add_argument("--sigma", type=float, default=None, help="noise (default 0.5; 0.7, the demo's, with --levers)")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default %(default)s)")
    p.add_argument("--amp", choices=("bf16", "fp16"), default=None,
                   help="every implementation under torch.autocast in this dtype (ours through its amp option)")
    levers = p.add_argument_group("CPU levers (--levers)")
    levers.add_argument("--levers", action="store_true", help="measure batch size, channels_last, bf16, compile")
    levers.add_argument("--train-epochs", type=int, default=1,
                        help="STN epochs on mnist5k for the label agreement (0: random init; default %(default)s)")
    levers.add_argument("--checkpoint", default=None, help="use this trained MNIST CNN checkpoint instead")
    levers.add_argument("--agree-digits", type=int, default=20, help="test digits for the label agreement (20)")
    levers.add_argument("--agree-n", type=int, default=1000, help="noisy copies per digit for it (1000)")
    levers.add_argument("--no-compile", action="store_true", help="skip torch.compile and TorchScript")
    args = p.parse_args(argv)
    args.repeats = args.repeats if args.repeats is not None else (5 if args.levers else 3)
    args.sigma = args.sigma if args.sigma is not None else (0.7 if args.levers else 0.5)
    for name in ("n", "batch", "repeats", "threads", "agree_digits", "agree_n"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} ({getattr(args, name)}) must be >= 1")
    if args.train_epochs < 0:
        p.error(f"--train-epochs ({args.train_epochs}) must be >= 0")
    if not args.sigma > 0:
        p.error(f"--sigma ({args.sigma}) must be > 0")
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if args.levers:
        return levers_main(args, device)
    torch.manual_seed(0)
    model = make_model(args.arch).to(device).eval()
    shape = INPUT_SHAPES[args.arch]
    x = torch.rand(shape, device=device)
    clf = SmoothedClassifier(model, args.sigma, 10, device=device, batch_size=args.batch, input_shape=shape,
                             amp=args.amp)
    gen = torch.Generator(device=device).manual_seed(1)
    sizes = [min(args.batch, args.n - s) for s in range(0, args.n, args.batch)]
    noisy = [x + args.sigma * torch.randn((b, *shape), generator=gen, device=device) for b in sizes]

    cast = _autocast(device, args.amp)
    impls = {
        "ours": lambda: run_ours(clf, x, args.sigma, args.n, args.batch, 0),
        "raw": lambda: cast(run_raw)(model, noisy, device),
        "cohen": lambda: cast(run_cohen_style)(model, x.unsqueeze(0), 10, args.sigma, args.n, args.batch, device),
    }
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    print(f"device {device} ({name}), {args.arch}, n = {args.n}, batch = {args.batch}, amp {args.amp or 'off'}, "
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
