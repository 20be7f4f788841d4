"""The l1 experiment on mnist5k: Laplace and uniform noise, certified l1 radii, attacked l1 accuracy.

One command trains three base classifiers on mnist5k's 4,000 training digits (the paper's MNIST
CNN, 6 epochs, seed 0), certifies the same test digits with each (n0 = 100, n = 2,000,
alpha = 0.001, the first 100 of the 1,000 test digits) and attacks the first 50 of them with l1 PGD
(EOT over the smoothing noise, judged by the smoothed classifier's majority vote):

* ``laplace-stn``: STN with Laplace noise of scale b = 0.5, certified with the Renyi l1 bound (Li
  et al. 2019, Lemma 1 with the Laplace Renyi divergence), Teng et al.'s and PixelDP's;
* ``laplace-aug``: noise augmentation with the same noise, the same three bounds;
* ``uniform-aug``: noise augmentation with uniform noise on [-1.2, 1.2], certified with Yang et
  al.'s bound (the only one: the Renyi divergence of uniform noise is infinite).

The scales give the three noises about the same standard deviation as the paper's Gaussian
sigma = 0.7 on MNIST (Laplace: b sqrt 2 = 0.71; uniform: lambda / sqrt 3 = 0.69). It writes
``<out>/l1_results.md`` (the tables, the settings, the cross-check: certified accuracy at radius r
must not exceed the attacked accuracy at eps = r on the same digits) and prints it. Checkpoints
and logs are reused when they exist (``--fresh`` starts over).

Usage::

    python scripts/l1_experiment.py                  # ~15 min on 2 CPU cores
    python scripts/l1_experiment.py --quick          # a smoke run: 1 epoch, 10 digits, n = 200
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

MODELS = {  # name: (training mode, noise, scale, bounds)
    "laplace-stn": ("stn", "laplace", 0.5, ("renyi", "teng", "pixeldp")),
    "laplace-aug": ("gaussian", "laplace", 0.5, ("renyi", "teng", "pixeldp")),
    "uniform-aug": ("gaussian", "uniform", 1.2, ("yang",)),
}
RADII = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
ATTACK_EPS = (0.0, 1.0, 2.0, 3.0)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/l1", help="work folder (default %(default)s)")
    p.add_argument("--quick", action="store_true", help="1 epoch, 10 digits, n = 200, 5 attacked digits")
    p.add_argument("--fresh", action="store_true", help="retrain and recertify even where results exist")
    p.add_argument("--no-attack", action="store_true", help="skip the l1 PGD cross-check")
    p.add_argument("--no-progress", action="store_true")
    return p


def settings(quick: bool) -> dict:
    """Epochs, certified digits (every ``skip``-th, at most ``max``), n0, n, attacked digits, PGD steps."""
    if quick:
        return {"epochs": 1, "skip": 1, "max": 10, "n0": 20, "n": 200, "attack_max": 5, "steps": 5, "eot": 2,
                "votes": 20}
    return {"epochs": 6, "skip": 1, "max": 100, "n0": 100, "n": 2000, "attack_max": 50, "steps": 20, "eot": 8,
            "votes": 100}


def train_model(name: str, out: Path, s: dict, fresh: bool, progress: bool) -> Path:
    """The checkpoint of ``name`` (trained unless it exists with the same settings)."""
    from renyi_cert_torch.train import TrainConfig, save_checkpoint, train

    mode, noise, scale, _ = MODELS[name]
    config = TrainConfig(dataset="mnist5k", mode=mode, noise=noise, sigma=scale, epochs=s["epochs"], seed=0)
    path = out / f"{name}.pt"
    stamp = out / f"{name}.json"
    if not fresh and path.exists() and stamp.exists() and json.loads(stamp.read_text()) == config.to_dict():
        print(f"[{name}] reusing {path}")
        return path
    t0 = time.perf_counter()
    result = train(config, device="cpu", progress=progress)
    save_checkpoint(path, result.model, config)
    stamp.write_text(json.dumps(config.to_dict()))
    print(f"[{name}] trained in {time.perf_counter() - t0:.0f} s")
    return path


def certify_model(name: str, ckpt: Path, out: Path, s: dict, fresh: bool, progress: bool) -> Path:
    """The certification log of ``name`` (``certify`` with its noise's bounds)."""
    from renyi_cert_torch.cli import certify_main

    _, noise, scale, bounds = MODELS[name]
    tsv = out / f"{name}.tsv"
    argv = ["--checkpoint", str(ckpt), "--out", str(tsv), "--noise", noise, "--sigma", repr(scale), "--bound",
            ",".join(bounds), "--skip", str(s["skip"]), "--max", str(s["max"]), "--n0", str(s["n0"]), "--n",
            str(s["n"]), "--device", "cpu", "--force" if fresh or not tsv.exists() else "--resume"]
    if not progress:
        argv.append("--no-progress")
    if certify_main(argv, prog=f"l1 certify {name}", report=False) != 0:
        sys.exit(f"l1_experiment: certifying {name} failed")
    return tsv


def attack_model(name: str, ckpt: Path, out: Path, s: dict, progress: bool) -> Path:
    """Robust accuracy of ``name``'s smoothed classifier under l1 PGD (EOT) on the first digits."""
    from renyi_cert_torch.attack_cli import main as attack_main

    _, noise, scale, _ = MODELS[name]
    tsv = out / f"{name}-attack.tsv"
    argv = ["--checkpoint", str(ckpt), "--out", str(tsv), "--force", "--attack", "pgd", "--norm", "l1", "--noise",
            noise, "--sigma", repr(scale), "--eps", ",".join(f"{e:g}" for e in ATTACK_EPS), "--steps",
            str(s["steps"]), "--eot", str(s["eot"]), "--votes", str(s["votes"]), "--max", str(s["attack_max"]),
            "--device", "cpu", "--no-plot"] + ([] if progress else ["--no-progress"])
    if attack_main(argv) != 0:
        sys.exit(f"l1_experiment: attacking {name} failed")
    return tsv


def certified_table(logs: dict) -> str:
    """Certified accuracy at each l1 radius, per model and bound, with the ACR."""
    from renyi_cert import analyze

    head = "| model | bound | clean acc | " + " | ".join(f"r = {r:g}" for r in RADII) + " | ACR |"
    lines = [head, "|" + "---|" * 2 + "---:|" * (len(RADII) + 2)]
    for name, log in logs.items():
        for summary in analyze.summarize(log, RADII, label=name):
            lines.append(f"| {name} | {summary.bound} | {summary.clean_accuracy:.2f} | "
                         + " | ".join(f"{a:.2f}" for a in summary.certified_accuracy)
                         + f" | {summary.average_certified_radius:.3f} |")
    return "\n".join(lines)


def crosscheck(logs: dict, attacks: dict) -> tuple[str, int]:
    """Certified accuracy at r = eps (every bound, on the attacked digits) beside the attacked accuracy
    at eps; the table and the number of violations (certified above attacked)."""
    import numpy as np

    lines = ["| model | eps (l1) | attacked acc | certified acc (best bound) | ok |", "|---|---:|---:|---:|---|"]
    bad = 0
    for name, rows in attacks.items():
        log = logs[name]
        first = np.argsort(log.idx)[:int(rows[0]["n"])]  # the attacked digits: the first ones
        for row in rows:
            eps, attacked = float(row["eps"]), float(row["robust_accuracy"])
            certified = max(float(np.mean((log.correct[first] == 1) & (rad[first] >= eps)))
                            for rad in log.radii.values())
            ok = certified <= attacked
            bad += not ok
            lines.append(f"| {name} | {eps:g} | {attacked:.2f} | {certified:.2f} | {'yes' if ok else 'NO'} |")
    return "\n".join(lines), bad


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from renyi_cert import analyze

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    s = settings(args.quick)
    t0 = time.perf_counter()
    logs, attacks = {}, {}
    for name in MODELS:
        ckpt = train_model(name, out, s, args.fresh, not args.no_progress)
        logs[name] = analyze.read_log(certify_model(name, ckpt, out, s, args.fresh, not args.no_progress))
        if not args.no_attack:
            with open(attack_model(name, ckpt, out, s, not args.no_progress), newline="") as fh:
                attacks[name] = list(csv.DictReader(fh, delimiter="\t"))
    report = [f"# l1 experiment on mnist5k ({'quick' if args.quick else 'full'} settings)", "",
              f"Settings: {json.dumps(s)}; models: {json.dumps({k: v[:3] for k, v in MODELS.items()})}.", "",
              "## Certified accuracy at l1 radius r (first test digits)", "", certified_table(logs)]
    bad = 0
    if attacks:
        table, bad = crosscheck(logs, attacks)
        report += ["", "## Cross-check: certified <= attacked (l1 PGD with EOT, same digits)", "", table, "",
                   f"violations: {bad}"]
    report += ["", f"total time {time.perf_counter() - t0:.0f} s"]
    text = "\n".join(report) + "\n"
    (out / "l1_results.md").write_text(text)
    print(text)
    return 0 if bad == 0 else 3


if __name__ == "__main__":
    sys.exit(main())
