"""The results table: certified accuracy on mnist5k for training method x sigma x bound.

For each training method (STN, Gaussian augmentation, no noise) and each noise level sigma in
{0.25, 0.5, 0.7, 1.0}, train the paper's MNIST CNN on the 4,000 mnist5k training digits (the
no-noise model is trained once and certified at every sigma), certify test digits with n0/n
samples at alpha = 0.001, and report the certified accuracy at L in {0.5, 1.0, 1.4, 2.0} for the
Renyi (Li et al. 2019), Cohen et al. and PixelDP bounds, computed from the same Monte Carlo bounds.

With n samples at level alpha no radius can exceed the one of p1_lower = (alpha/2)^(1/n): cells where
L is above that cap are marked "cap" (0 by construction, not by the model). Raise --n to fill them.

Outputs (in --out, default runs/ablation): checkpoints in ckpt/, one certification log per
(method, sigma) in logs/, and results.md (the tables). Re-running continues where a previous run
stopped: an existing checkpoint with the same training config is reused and logs are resumed
(certify --resume).

    python scripts/ablation.py                 # full: 10 epochs, 100 test digits, n = 2000 (~40 min on 2 cores)
    python scripts/ablation.py --quick         # a couple of minutes: 1 epoch on 500 digits, 10 test digits, n = 200
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from renyi_cert._files import atomic_write_text

SIGMAS = (0.25, 0.5, 0.7, 1.0)
MODES = ("stn", "gaussian", "none")
MODE_NAMES = {"stn": "STN", "gaussian": "Gaussian aug.", "none": "no noise"}
RADII = (0.5, 1.0, 1.4, 2.0)
BOUNDS = ("renyi", "cohen", "pixeldp")
BOUND_NAMES = {"renyi": "Renyi (Li et al. 2019)", "cohen": "Cohen et al. 2019", "pixeldp": "PixelDP (Lecuyer et al. 2018)"}


def _floats(text: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"({text!r}) must be comma-separated numbers") from None
    if not vals or any(not (v > 0 and v < float("inf")) for v in vals):
        raise argparse.ArgumentTypeError(f"({text!r}) must be finite numbers > 0")
    return vals


def _modes(text: str) -> tuple[str, ...]:
    vals = tuple(t.strip() for t in text.split(","))
    for v in vals:
        if v not in MODES:
            raise argparse.ArgumentTypeError(f"mode ({v!r}) must be one of {', '.join(MODES)}")
    return vals


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/ablation")
    p.add_argument("--quick", action="store_true", help="tiny settings for a smoke run (a couple of minutes)")
    p.add_argument("--sigmas", type=_floats, default=SIGMAS, help="comma-separated (default 0.25,0.5,0.7,1.0)")
    p.add_argument("--modes", type=_modes, default=MODES, help="comma-separated subset of stn,gaussian,none")
    p.add_argument("--radii", type=_floats, default=RADII, help="comma-separated (default 0.5,1.0,1.4,2.0)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default 10; quick: 1)")
    p.add_argument("--max-train", type=int, default=None, help="training digits (default all 4,000; quick: 500)")
    p.add_argument("--skip", type=int, default=None, help="certify every K-th test digit (default 10; quick: 100)")
    p.add_argument("--max", type=int, default=None, help="at most N test digits per cell")
    p.add_argument("--n0", type=int, default=None, help="selection samples (default 100; quick: 20)")
    p.add_argument("--n", type=int, default=None, help="estimation samples (default 2000; quick: 200)")
    p.add_argument("--alpha", type=float, default=0.001)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--no-progress", action="store_true")
    return p


def _defaults(args):
    quick = args.quick
    fill = {"epochs": (10, 1), "max_train": (None, 500), "skip": (10, 100), "n0": (100, 20), "n": (2000, 200)}
    for k, (full, q) in fill.items():
        if getattr(args, k) is None:
            setattr(args, k, q if quick else full)
    for k in ("epochs", "skip", "n0", "n", "batch"):
        if getattr(args, k) < 1:
            raise SystemExit(f"ablation: error: --{k.replace('_', '-')} ({getattr(args, k)}) must be >= 1")
    return args


def get_model(mode: str, sigma: float, args, ckpt_dir: Path) -> tuple[Path, bool]:
    """Train (or reuse) the checkpoint of ``mode`` at training noise ``sigma``; True if (re)trained."""
    from renyi_cert_torch.train import TrainConfig, load_checkpoint, save_checkpoint, train

    train_sigma = 0.0 if mode == "none" else sigma
    config = TrainConfig(dataset="mnist5k", mode=mode, sigma=train_sigma, epochs=args.epochs, seed=args.seed,
                         max_train=args.max_train)
    path = ckpt_dir / (f"{mode}.pt" if mode == "none" else f"{mode}-sigma{sigma:g}.pt")
    if path.exists():
        try:
            _, saved = load_checkpoint(path)
        except (ValueError, OSError):
            saved = None
        if saved == config.to_dict():
            print(f"reusing {path}")
            return path, False
    t0 = time.perf_counter()
    result = train(config, device=args.device, progress=not args.no_progress)
    save_checkpoint(path, result.model, config)
    print(f"trained {path} in {time.perf_counter() - t0:.0f} s (train accuracy {result.history[-1].train_accuracy:.3f})")
    return path, True


def tables(results: dict, args, caps: dict) -> str:
    """Markdown: one table per bound; rows (method, sigma); columns smoothed accuracy, abstain, L grid."""
    parts = [
        "# Certified accuracy on mnist5k test digits",
        "",
        f"Training: paper's MNIST CNN, {args.epochs} epoch(s) on "
        f"{args.max_train or 4000} mnist5k training digits, seed {args.seed}. Certification: every "
        f"{args.skip}th test digit" + (f" (at most {args.max})" if args.max else "")
        + f", n0 = {args.n0}, n = {args.n}, alpha = {args.alpha:g}, Clopper-Pearson, selection and estimation "
        "on separate samples. Certified accuracy = fraction of digits classified correctly with radius >= L "
        "(abstentions count as failures). 'cap' marks L above the largest radius n samples can certify "
        "(all n samples in the top class: p1_lower = (alpha/2)^(1/n), Clopper-Pearson with the Bonferroni split).",
        "",
    ]
    for bound in BOUNDS:
        parts += [f"## {BOUND_NAMES[bound]}", ""]
        head = "| training | sigma | digits | smoothed acc | abstain | " + " | ".join(f"L = {r:g}" for r in args.radii) + " |"
        parts += [head, "|---|---:|---:|---:|---:|" + "---:|" * len(args.radii)]
        for (mode, sigma), summ in results.items():
            s = {x.bound: x for x in summ}[bound]
            cells = []
            for r, acc in zip(args.radii, s.certified_accuracy):
                cells.append("cap" if r > caps[sigma][bound] else f"{acc:.2f}")
            parts.append(f"| {MODE_NAMES[mode]} | {sigma:g} | {s.num_examples} | {s.clean_accuracy:.2f} | "
                         f"{s.abstain_rate:.2f} | " + " | ".join(cells) + " |")
        parts.append("")
    parts += ["Radius caps for these n, alpha:", ""]
    parts += [f"- sigma {s:g}: " + ", ".join(f"{b} {caps[s][b]:.3f}" for b in BOUNDS) for s in caps]
    return "\n".join(parts) + "\n"


def main(argv=None) -> int:
    args = _defaults(build_parser().parse_args(argv))
    from renyi_cert import analyze
    from renyi_cert.caps import radius_cap
    from renyi_cert_torch.cli import certify_main

    out = Path(args.out)
    (out / "ckpt").mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    caps = {s: radius_cap(args.n, alpha=args.alpha, sigma=s, bounds=BOUNDS).radii for s in args.sigmas}
    results = {}
    none_model = None
    for mode in args.modes:
        for sigma in args.sigmas:
            if mode == "none":
                none_model = none_model or get_model("none", sigma, args, out / "ckpt")
                ckpt, fresh = none_model
            else:
                ckpt, fresh = get_model(mode, sigma, args, out / "ckpt")
            tsv = out / "logs" / f"{mode}-sigma{sigma:g}.tsv"
            # a freshly trained model invalidates an old log: overwrite it; otherwise continue it
            argv_c = ["--checkpoint", str(ckpt), "--out", str(tsv), "--force" if fresh else "--resume",
                      "--sigma", repr(sigma),
                      "--skip", str(args.skip), "--n0", str(args.n0), "--n", str(args.n), "--alpha", repr(args.alpha),
                      "--bound", ",".join(BOUNDS), "--seed", str(args.seed), "--batch", str(args.batch),
                      "--device", args.device]
            if args.max:
                argv_c += ["--max", str(args.max)]
            if args.no_progress:
                argv_c.append("--no-progress")
            print(f"\n== {MODE_NAMES[mode]}, sigma {sigma:g}")
            rc = certify_main(argv_c, prog="ablation certify", report=False)
            if rc != 0:
                return rc
            results[(mode, sigma)] = analyze.summarize(analyze.read_log(tsv), args.radii, label=tsv.stem)
            atomic_write_text(out / "results.md", tables(results, args, caps))  # partial results as they come
    text = tables(results, args, caps)
    atomic_write_text(out / "results.md", text)
    print("\n" + text)
    print(f"wrote {out / 'results.md'} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
