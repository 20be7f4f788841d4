"""Cost of one stability-training (STN) epoch relative to one plain epoch, same model and data.

STN evaluates f(x) and f(x') in one forward pass over the concatenated batch [x; x'], so an
STN epoch should cost about twice a plain epoch; the target is <= 2.2x. Epochs of the modes
are interleaved (order alternating between repeats) so that drifting machine load hits both,
each epoch starts from the same initial weights and a fresh Adam, and the ratio is of medians.

    python benchmarks/bench_train.py                      # ~1 min on 2 CPU cores
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
from renyi_cert_torch.train import DEFAULT_GAMMA, MODES, resolve_device, train_epoch

TARGET_RATIO = 2.2


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="mnist5k")
    p.add_argument("--arch", default="mnist_cnn")
    p.add_argument("--n", type=int, default=512, help="training images per epoch (default 512)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3, help="timed epochs per mode (default 3)")
    p.add_argument("--sigma", type=float, default=0.7)
    p.add_argument("--gamma", type=float, default=DEFAULT_GAMMA)
    p.add_argument("--modes", nargs="+", default=["stn", "none"], choices=MODES)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    p.add_argument("--data-root", default=None)
    args = p.parse_args(argv)
    if args.n < 1 or args.batch_size < 1 or args.repeats < 1:
        p.error("--n, --batch-size and --repeats must be >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    data = load_dataset(args.dataset, "train", data_root=args.data_root)
    x, y = data.x[:args.n], data.y[:args.n]
    torch.manual_seed(0)
    initial = build_model(args.arch, num_classes=data.num_classes).to(device)
    state0 = copy.deepcopy(initial.state_dict())

    def one_epoch(mode: str) -> float:
        model = initial
        model.load_state_dict(state0)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        train_epoch(model, opt, x, y, mode=mode, sigma=args.sigma, gamma=args.gamma, batch_size=args.batch_size,
                    shuffle_generator=torch.Generator().manual_seed(0),
                    noise_generator=torch.Generator(device=device).manual_seed(1), device=device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    print(f"{args.arch} on {len(x)} {args.dataset} images, batch {args.batch_size}, device {device}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    for mode in args.modes:  # warm-up (allocator, kernels)
        one_epoch(mode)
    times = {m: [] for m in args.modes}
    for r in range(args.repeats):
        order = args.modes if r % 2 == 0 else list(reversed(args.modes))
        for mode in order:
            times[mode].append(one_epoch(mode))
        print(f"repeat {r + 1}: " + ", ".join(f"{m} {times[m][-1]:.2f} s" for m in args.modes), flush=True)
    med = {m: statistics.median(t) for m, t in times.items()}
    for m in args.modes:
        print(f"{m:>9}: median {med[m]:.2f} s/epoch ({len(x) / med[m]:.0f} img/s)")
    if "stn" in med and "none" in med:
        ratio = med["stn"] / med["none"]
        verdict = "OK" if ratio <= TARGET_RATIO else "ABOVE TARGET"
        print(f"STN / plain epoch time: {ratio:.2f}x (target <= {TARGET_RATIO}x: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
