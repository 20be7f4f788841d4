"""Cost of one training epoch per mode relative to one plain epoch (and to STN), same model and data.

What is measured: the wall-clock time of :func:`renyi_cert_torch.train.train_epoch` over the same
``--n`` images in batches of ``--batch-size``, for each mode; every epoch starts from the same
initial weights and a fresh Adam, epochs of the modes are interleaved (order alternating between
repeats) so that drifting machine load hits all of them, a warm-up epoch per mode is not timed, and
each ratio is of medians. The adversarial modes' epochs include crafting their PGD examples
(``--attack-steps`` steps, l_inf, eps 0.3, step 2.5 eps / steps unless the steps are the published
40, whose step is 0.01).

STN evaluates f(x) and f(x') in one forward pass over the concatenated batch [x; x'], so an
STN epoch should cost about twice a plain epoch; the target is <= 2.2x. PGD-AT does one
forward-backward pass per attack step plus the training step (nominally steps + 1 plain steps),
TRADES the attack steps plus a training step over [x; x_adv] (nominally steps + 2); an attack
step computes no weight gradients, so the measured ratios come out below the nominal ones.

    python benchmarks/bench_train.py                      # ~3 min on 2 CPU cores (10 attack steps)
    python benchmarks/bench_train.py --attack-steps 40 --n 256 --modes none stn pgd-at trades
    python benchmarks/bench_train.py --n 4000 --repeats 5 --modes stn none gaussian --device cuda
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time

import torch

from renyi_cert_torch.data import load_dataset
from renyi_cert_torch.models import build_model
from renyi_cert_torch.train import DEFAULT_GAMMA, MODES, TrainConfig, nominal_step_cost, resolve_device, train_epoch

TARGET_RATIO = 2.2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="mnist5k")
    p.add_argument("--arch", default="mnist_cnn")
    p.add_argument("--n", type=int, default=512, help="training images per epoch (default 512)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3, help="timed epochs per mode (default 3)")
    p.add_argument("--sigma", type=float, default=0.7)
    p.add_argument("--gamma", type=float, default=DEFAULT_GAMMA)
    p.add_argument("--attack-steps", type=int, default=10, help="PGD steps of pgd-at and trades (default 10)")
    p.add_argument("--modes", nargs="+", default=["none", "stn", "pgd-at", "trades"], choices=MODES)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    p.add_argument("--data-root", default=None)
    return p


def _configs(args) -> dict:
    """The TrainConfig of each mode (its sigma, gamma and training attack)."""
    out = {}
    for mode in args.modes:
        noisy = mode in ("stn", "gaussian")
        out[mode] = TrainConfig(dataset=args.dataset, arch=args.arch, mode=mode, sigma=args.sigma if noisy else 0.0,
                                gamma=args.gamma if mode == "stn" else 0.0,
                                attack_steps=args.attack_steps if mode in ("pgd-at", "trades") else None)
    return out


def _report(med: dict, configs: dict, n: int) -> None:
    """Median seconds per mode, and the ratios to plain and to STN (with the nominal ones)."""
    for m, cfg in configs.items():
        line = f"{m:>9}: median {med[m]:.2f} s/epoch ({n / med[m]:.0f} img/s)"
        if cfg.adversary is not None:
            line += f"; attack {cfg.adversary.describe()}"
        print(line)
    if "none" in med:
        for m, cfg in configs.items():
            if m != "none":
                print(f"{m} / plain epoch time: {med[m] / med['none']:.2f}x "
                      f"(nominal {nominal_step_cost(m, cfg.adversary):g}x)")
    if "stn" in med:
        for m in ("pgd-at", "trades"):
            if m in med:
                print(f"{m} / STN epoch time: {med[m] / med['stn']:.2f}x")
    if "stn" in med and "none" in med:
        ratio = med["stn"] / med["none"]
        verdict = "OK" if ratio <= TARGET_RATIO else "ABOVE TARGET"
        print(f"STN / plain epoch time: {ratio:.2f}x (target <= {TARGET_RATIO}x: {verdict})")


def main(argv=None) -> int:
    p = _parser()
    args = p.parse_args(argv)
    if args.n < 1 or args.batch_size < 1 or args.repeats < 1 or args.attack_steps < 1:
        p.error("--n, --batch-size, --repeats and --attack-steps must be >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    data = load_dataset(args.dataset, "train", data_root=args.data_root)
    x, y = data.x[:args.n], data.y[:args.n]
    configs = _configs(args)
    torch.manual_seed(0)
    initial = build_model(args.arch, num_classes=data.num_classes).to(device)
    state0 = copy.deepcopy(initial.state_dict())

    def one_epoch(mode: str) -> float:
        cfg = configs[mode]
        model = initial
        model.load_state_dict(state0)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        train_epoch(model, opt, x, y, mode=mode, sigma=cfg.sigma, gamma=cfg.gamma, batch_size=args.batch_size,
                    shuffle_generator=torch.Generator().manual_seed(0),
                    noise_generator=torch.Generator(device=device).manual_seed(1), device=device,
                    adversary=cfg.adversary)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    print(f"{args.arch} on {len(x)} {args.dataset} images, batch {args.batch_size}, device {device}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    for mode in args.modes:  # warm-up (allocator, kernels)
        one_epoch(mode)
    times: dict = {m: [] for m in args.modes}
    for r in range(args.repeats):
        order = args.modes if r % 2 == 0 else list(reversed(args.modes))
        for mode in order:
            times[mode].append(one_epoch(mode))
        print(f"repeat {r + 1}: " + ", ".join(f"{m} {times[m][-1]:.2f} s" for m in args.modes), flush=True)
    _report({m: statistics.median(t) for m, t in times.items()}, configs, len(x))
    return 0


if __name__ == "__main__":
    sys.exit(main())
