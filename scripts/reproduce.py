"""Regenerate the reproduction report of Li, Chen, Wang & Carin (NeurIPS 2019) in one command.

    python scripts/reproduce.py                  # mnist5k, full run (about half an hour on 2 shared CPU cores)
    python scripts/reproduce.py --quick          # mnist5k, smoke run (a few minutes), figures in runs/
    python scripts/reproduce.py --dataset cifar10 --data-root DIR   # the real CIFAR-10 files (a GPU is advised)

What it makes (``<dataset>`` is the file prefix, e.g. ``mnist5k``):

``<dataset>_fig1_certified.png``
    The paper's Figure 1: certified accuracy against the l2 radius, one panel per sigma, for
    the STN model (stability training with noise) and for Gaussian data augmentation ("no
    stability training"), both with the Renyi bound, and the PixelDP bound (and Cohen et al.'s, for
    reference) computed from the STN model's counts.
``<dataset>_fig2_attacks.png``
    The paper's Figure 2: robust accuracy of the smoothed STN model (sigma = main sigma) against
    white-box PGD with expectation over transformation (l2 and l_inf) and C&W (l2), against
    transfer attacks crafted on the undefended model, and the undefended model itself.
``<dataset>_fig3_sigma.png``
    The paper's Figure 3: robust accuracy against white-box l_inf PGD (+ EOT) for several sigma,
    sigma = 0 being the undefended model.
``fig4_bounds.png``
    The paper's Figure 4: Renyi vs PixelDP (vs Cohen) radii over (p1, p2), drawn by
    :mod:`renyi_cert.compare_pixeldp` (downscaled copy; the full-size PNG/PDF stay in the work folder).
``<dataset>_crosscheck.png``
    Theory against attacks: certified accuracy at radius eps and the empirical robust accuracy
    under l2 attacks of size eps (PGD-l2 + EOT, C&W + EOT), for the same model, sigma and
    examples. A certificate is a lower bound, an attack an upper bound: the certified curve must
    lie below the empirical ones. Every (example, eps) pair certified at radius >= eps but judged
    broken by the attack's vote is re-judged with a high-vote PREDICT (Cohen et al.); a decided
    misclassification is a violation (a bug, or a certificate failure of probability <= alpha),
    an undecided one is sampling error and makes up the stated margin.
``<dataset>_results.md``
    All numbers (Table 1 analog with the paper's numbers next to ours, certified accuracies,
    robust accuracies, the cross-check margins, the radius caps, the settings and stage times).

Models are trained with :func:`renyi_cert_torch.train.train` and cached under
``--work/ckpt`` (reused when the saved config equals the requested one); the Monte Carlo counts
and attack results are cached under ``--work/cache`` keyed by the settings and the checkpoint's
SHA-256 (``--fresh`` ignores the result cache; delete the work folder to retrain). Generated
checkpoints are not meant to be committed (``runs/`` is ignored by git).

Certification uses the sound two-sample-set procedure of Cohen et al. (class selected on n0 noisy
samples, Clopper-Pearson bounds with a Bonferroni correction on n fresh ones) at alpha = 0.001,
and also at the paper's alpha = 0.05; the paper's own variant (one sample set for selection and
estimation, biased) is reported from the same estimation counts. With n samples, Bonferroni
Clopper-Pearson caps p1_lower at (alpha/2)^(1/n), which caps every radius; the caps are reported.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import sys
import time
import zlib
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from renyi_cert._files import atomic_output, atomic_write_text

BOUNDS = ("renyi", "cohen", "pixeldp")
BOUND_LABELS = {"renyi": "Rényi (Li et al.)", "cohen": "Cohen et al.", "pixeldp": "PixelDP"}
MODE_LABELS = {"stn": "STN", "gaussian": "Gaussian aug. (no stability training)", "none": "undefended"}
DPI = 100


# ------------------------------------------------------------------------------------------ plan


@dataclass(frozen=True)
class Plan:
    """Every setting of one reproduction run (saved in the results for the record)."""

    dataset: str
    quick: bool
    sigmas: tuple            # noise levels of Figures 1 and 3 (train = certify sigma)
    main_sigma: float        # the STN model of Table 1, Figure 2 and the cross-check
    table_radius: float      # Table 1's L
    paper_certified: float   # Table 1 of the paper, percent
    paper_natural: float
    paper_setup: str
    headline_radius: float | None  # the paper's other MNIST claim (>= 51 % at L = 1.4, sigma = 0.7)
    paper_headline: str
    epochs: int
    max_train: int | None
    batch_size: int
    seed: int
    test_skip: int           # certification set: every test_skip-th test example ...
    table_examples: int      # ... at most table_examples of them (Table 1, cross-check)
    fig1_examples: int       # the first fig1_examples of them (Figure 1)
    n0: int
    n_fig1: int
    n_table: int
    alpha: float
    paper_alpha: float
    attack_examples: int     # the first attack_examples of the certification set
    pgd_steps: int
    eot: int
    votes: int
    rejudge_votes: int
    cw_search: int
    cw_steps: int
    cw_lr: float
    cw_kappa: float
    l2_eps: tuple
    linf_eps: tuple
    linf_unit: float         # l_inf sizes are shown in multiples of this (1 or 1/255)
    fig4_resolution: int
    cert_batch: int


PAPER = {
    "mnist5k": dict(main_sigma=0.7, table_radius=1.58, paper_certified=69.0, paper_natural=98.9,
                    paper_setup="full MNIST: 60,000 training / 10,000 test digits", headline_radius=1.4,
                    paper_headline="≥ 51 %"),
    "mnist": dict(main_sigma=0.7, table_radius=1.58, paper_certified=69.0, paper_natural=98.9,
                  paper_setup="full MNIST: 60,000 training / 10,000 test digits", headline_radius=1.4,
                  paper_headline="≥ 51 %"),
    "cifar10": dict(main_sigma=100 / 255, table_radius=36 / 255, paper_certified=65.6, paper_natural=80.5,
                    paper_setup="full CIFAR-10: 50,000 training / 10,000 test images", headline_radius=None,
                    paper_headline=""),
}


def default_plan(dataset: str, quick: bool) -> Plan:
    """The settings of a full or ``--quick`` run on ``dataset`` (command-line flags override some)."""
    paper = PAPER[dataset]
    mnist = dataset != "cifar10"
    if mnist:
        sigmas = (0.25, 0.7) if quick else (0.25, 0.5, 0.7, 1.0)
        l2_eps = (0.5, 1.0, 2.0) if quick else (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
        linf_eps = (0.1, 0.2) if quick else (0.05, 0.1, 0.15, 0.2, 0.3)
        linf_unit = 1.0
    else:
        sigmas = (0.25, 100 / 255) if quick else (0.12, 0.25, 100 / 255, 0.5)
        l2_eps = (0.25, 0.5) if quick else (0.1, 0.25, 0.5, 0.75, 1.0)
        linf_eps = (2 / 255, 8 / 255) if quick else (1 / 255, 2 / 255, 4 / 255, 8 / 255)
        linf_unit = 1 / 255
    if quick:
        return Plan(dataset=dataset, quick=True, sigmas=sigmas, **paper, epochs=2, max_train=2000, batch_size=128,
                    seed=0, test_skip=50, table_examples=20, fig1_examples=20, n0=32, n_fig1=200, n_table=500,
                    alpha=0.001, paper_alpha=0.05, attack_examples=10, pgd_steps=5, eot=2, votes=20,
                    rejudge_votes=200, cw_search=2, cw_steps=10, cw_lr=0.1, cw_kappa=2.0, l2_eps=l2_eps, linf_eps=linf_eps,
                    linf_unit=linf_unit, fig4_resolution=200, cert_batch=500)
    return Plan(dataset=dataset, quick=False, sigmas=sigmas, **paper, epochs=6 if mnist else 20, max_train=None,
                batch_size=128, seed=0, test_skip=10, table_examples=100, fig1_examples=50, n0=100, n_fig1=500,
                n_table=3000, alpha=0.001, paper_alpha=0.05, attack_examples=40, pgd_steps=10, eot=4, votes=50,
                rejudge_votes=1000, cw_search=4, cw_steps=25, cw_lr=0.1, cw_kappa=2.0, l2_eps=l2_eps, linf_eps=linf_eps,
                linf_unit=linf_unit, fig4_resolution=500, cert_batch=500)


# ------------------------------------------------------------------------------------ utilities


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _seed(plan: Plan, *parts) -> int:
    """A 63-bit seed from the run seed and a stage description (stable across runs and machines)."""
    codes = [int(plan.seed)] + [zlib.crc32(str(p).encode()) for p in parts]
    a, b = np.random.SeedSequence(codes).generate_state(2, dtype=np.uint32)
    return ((int(a) << 32) | int(b)) >> 1


class Stages:
    """Result cache (JSON per stage, keyed by its parameters) and a record of stage times."""

    def __init__(self, work: Path, fresh: bool):
        self.dir = work / "cache"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.fresh = fresh
        self.times: list[tuple[str, float, bool]] = []  # (stage, seconds, cached)

    def run(self, name: str, params: dict, compute, force: bool = False) -> dict:
        key = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:16]
        path = self.dir / f"{name}-{key}.json"
        if path.is_file() and not (self.fresh or force):
            result = json.loads(path.read_text())
            self.times.append((name, result["_seconds"], True))
            print(f"[{name}] cached ({result['_seconds']:.0f} s when computed)", flush=True)
            return result
        print(f"[{name}] computing ...", flush=True)
        t0 = time.perf_counter()
        result = compute()
        result["_seconds"] = time.perf_counter() - t0
        result["_params"] = params
        atomic_write_text(path, json.dumps(result))
        self.times.append((name, result["_seconds"], False))
        print(f"[{name}] done in {result['_seconds']:.0f} s", flush=True)
        return result


# -------------------------------------------------------------------------------------- models


def train_config(plan: Plan, mode: str, sigma: float, data_root):
    from renyi_cert_torch.train import TrainConfig

    return TrainConfig(dataset=plan.dataset, mode=mode, sigma=0.0 if mode == "none" else sigma, epochs=plan.epochs,
                       batch_size=plan.batch_size, seed=plan.seed, max_train=plan.max_train,
                       data_root=None if data_root is None else str(data_root))


def get_model(plan: Plan, mode: str, sigma: float, work: Path, data_root, device, stages: Stages, progress: bool):
    """(model, checkpoint sha256): train ``mode`` at ``sigma`` or reuse the cached checkpoint."""
    from renyi_cert_torch.train import load_checkpoint, save_checkpoint, train

    config = train_config(plan, mode, sigma, data_root)
    want = config.to_dict()
    path = work / "ckpt" / (f"{mode}.pt" if mode == "none" else f"{mode}-sigma{sigma:.4g}.pt")
    if path.is_file():
        try:
            model, saved = load_checkpoint(path, map_location=device)
        except (ValueError, OSError):
            saved = None
        if saved == want:
            sha = _sha256(path)
            try:  # the training time recorded next to the checkpoint when it was trained
                info = json.loads(path.with_suffix(".json").read_text())
                if info.get("sha256") == sha:
                    stages.times.append((f"train {path.stem}", float(info["seconds"]), True))
            except (OSError, ValueError, KeyError, TypeError):
                pass
            print(f"[train {path.stem}] reusing {path}", flush=True)
            return model, sha
    print(f"[train {path.stem}] training ...", flush=True)
    t0 = time.perf_counter()
    result = train(config, device=device, progress=progress)
    seconds = time.perf_counter() - t0
    save_checkpoint(path, result.model, config)
    atomic_write_text(path.with_suffix(".json"), json.dumps({
        "sha256": _sha256(path), "seconds": seconds, "train_accuracy": result.history[-1].train_accuracy}))
    stages.times.append((f"train {path.stem}", seconds, False))
    print(f"[train {path.stem}] {seconds:.0f} s, train accuracy {result.history[-1].train_accuracy:.3f}", flush=True)
    return result.model, _sha256(path)


# ------------------------------------------------------------------------------- certification


def sample_counts(model, sigma: float, x, n0: int, n: int, seed: int, num_classes: int, batch: int, device,
                  progress: bool, desc: str) -> dict:
    """Selection (n0) and estimation (n) class counts per example, from independent noise draws."""
    from tqdm.auto import tqdm

    from renyi_cert_torch.smoothing import SmoothedClassifier

    smoothed = SmoothedClassifier(model, sigma, num_classes, device=device, batch_size=batch)
    gen = smoothed.make_generator(seed)
    sel, est = [], []
    for i in tqdm(range(len(x)), desc=desc, disable=not progress, leave=False):
        sel.append(smoothed.sample_counts(x[i], sigma, n0, generator=gen).tolist())
        est.append(smoothed.sample_counts(x[i], sigma, n, generator=gen).tolist())
    return {"selection": sel, "estimation": est}


def certificates(counts: dict, sigma: float, alpha: float, *, single: bool = False):
    """One Certificate per example (two-set CERTIFY, or the paper's single-set variant)."""
    from renyi_cert.certificate import certify_from_counts, certify_from_counts_single

    if single:  # the paper's biased variant, reproduced on purpose: no 1 - alpha guarantee
        return [certify_from_counts_single(e, sigma, alpha=alpha, bounds=BOUNDS, allow_unguaranteed=True)
                for e in counts["estimation"]]
    return [certify_from_counts(s, e, sigma, alpha=alpha, bounds=BOUNDS)
            for s, e in zip(counts["selection"], counts["estimation"])]


def as_log(certs, labels, name: str):
    """The certificates as a :class:`renyi_cert.analyze.CertificationLog` (to reuse its statistics)."""
    from renyi_cert.analyze import CertificationLog

    pred = np.array([c.prediction for c in certs], dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    return CertificationLog(
        path=name, idx=np.arange(len(certs), dtype=np.int64), label=labels, predict=pred,
        correct=(pred == labels).astype(np.int64), time=np.zeros(len(certs)),
        radii={b: np.array([c.radii[b] for c in certs], dtype=np.float64) for b in BOUNDS},
        p1_lower=np.array([c.p1_lower for c in certs]), p2_upper=np.array([c.p2_upper for c in certs]))


def radius_cap(sigma: float, n0: int, n: int, alpha: float, num_classes: int) -> dict:
    """The largest radius each bound can certify with n samples (every sample in the top class)."""
    from renyi_cert.certificate import certify_from_counts

    sel = [n0] + [0] * (num_classes - 1)
    est = [n] + [0] * (num_classes - 1)
    return dict(certify_from_counts(sel, est, sigma, alpha=alpha, bounds=BOUNDS).radii)


def min_samples(L: float, sigma: float, alpha: float) -> int:
    """Smallest n with Renyi radius >= L when all n samples fall in the top class (p1 = (alpha/2)^(1/n))."""
    from renyi_cert import radius

    def cap(n):
        p1 = (alpha / 2) ** (1.0 / n)
        return radius(p1, 1.0 - p1, sigma)

    lo, hi = 1, 2
    while cap(hi) < L:
        lo, hi = hi, hi * 2
    while hi - lo > 1:  # cap(lo) < L <= cap(hi); the cap increases with n
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if cap(mid) < L else (lo, mid)
    return hi


# -------------------------------------------------------------------------------------- attacks


def robust_stage(model, x, y, sigma, *, attack, eps_list, votes, seed, device, source_model=None,
                 source_sigma=None) -> dict:
    """:func:`renyi_cert_torch.attacks.robust_accuracy` as plain lists."""
    import torch

    from renyi_cert_torch.attacks import robust_accuracy

    gen = torch.Generator(device=device).manual_seed(seed)
    res = robust_accuracy(model, x, y, sigma, attack=attack, eps_list=eps_list, votes=votes,
                          source_model=source_model, source_sigma=source_sigma, generator=gen, attack_batch=len(x))
    return {"eps": [r.eps for r in res], "robust": [r.robust_accuracy for r in res],
            "clean": res[0].clean_accuracy, "base_clean": res[0].base_clean_accuracy, "n": res[0].n}


def crosscheck_stage(plan: Plan, model, x, y, sigma, radii, num_classes, device, progress) -> dict:
    """Per-example white-box l2 attacks (PGD + EOT for each eps, C&W + EOT once) and the re-judging.

    ``radii[i]`` is example i's largest certified radius (0 unless certified correct). For every
    eps and attack, an example is robust iff the smoothed classifier's majority vote
    (``plan.votes`` draws) is correct at x and at the attacked point x_eps (C&W's minimum-norm
    perturbation is radially truncated to eps). Pairs with ``radii[i] >= eps`` judged broken are
    re-judged with Cohen et al.'s PREDICT on ``plan.rejudge_votes`` fresh draws at level alpha:
    a decided wrong class is a violation, an abstain is sampling error.
    """
    import torch

    from renyi_cert.certificate import predict_from_counts
    from renyi_cert_torch.attacks import carlini_wagner_l2, pgd, smoothed_predict
    from renyi_cert_torch.smoothing import SmoothedClassifier

    gen = torch.Generator(device=device).manual_seed(_seed(plan, "crosscheck", sigma))
    smoothed = SmoothedClassifier(model, sigma, num_classes, device=device, batch_size=plan.cert_batch)
    judge_gen = smoothed.make_generator(_seed(plan, "rejudge", sigma))

    def vote(points):
        return smoothed_predict(model, points, sigma, votes=plan.votes, generator=gen) == y

    clean = vote(x)
    points = {}
    for eps in plan.l2_eps:
        if progress:
            print(f"  pgd-l2 eps {eps:g}", flush=True)
        points[("pgd", eps)] = pgd(model, x, y, eps=eps, norm="l2", sigma=sigma, steps=plan.pgd_steps,
                                   eot=plan.eot, generator=gen)
    if progress:
        print("  cw-l2", flush=True)
    cw = carlini_wagner_l2(model, x, y, sigma=sigma, kappa=plan.cw_kappa, steps=plan.cw_steps,
                           binary_search_steps=plan.cw_search, lr=plan.cw_lr, eot=plan.eot, generator=gen)
    delta = cw.x_adv - x
    dn = delta.reshape(len(x), -1).norm(dim=1)
    for eps in plan.l2_eps:
        factor = torch.where(dn > eps, eps / dn.clamp_min(1e-30), torch.ones_like(dn))
        points[("cw", eps)] = x + delta * factor.reshape(-1, 1, 1, 1)
    out = {"clean": clean.tolist(), "cw_norm": [float(v) for v in cw.norm], "cw_success": cw.success.tolist(),
           "robust": {}, "rejudged": []}
    for (attack, eps), pts in points.items():
        ok = clean & vote(pts)
        out["robust"].setdefault(attack, []).append(ok.tolist())
        for i in np.flatnonzero(~ok.cpu().numpy()):
            if radii[i] >= eps and radii[i] > 0:
                point = x[i] if not bool(clean[i]) else pts[i]
                counts = smoothed.sample_counts(point, sigma, plan.rejudge_votes, generator=judge_gen)
                p = predict_from_counts(counts, plan.alpha)
                status = "undecided" if p.prediction == -1 else ("correct" if p.prediction == int(y[i]) else "violation")
                out["rejudged"].append({"example": int(i), "attack": attack, "eps": eps, "radius": float(radii[i]),
                                        "at": "clean" if not bool(clean[i]) else "attacked",
                                        "counts_top": p.counts_top, "counts_runner_up": p.counts_runner_up,
                                        "prediction": p.prediction, "label": int(y[i]), "status": status})
    out["pgd_l2"] = {"eps": list(plan.l2_eps), "robust": [float(np.mean(r)) for r in out["robust"]["pgd"]]}
    out["cw_l2"] = {"eps": list(plan.l2_eps), "robust": [float(np.mean(r)) for r in out["robust"]["cw"]]}
    out["clean_accuracy"] = float(np.mean(out["clean"]))
    return out


# -------------------------------------------------------------------------------------- figures


def _figure(figsize):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    with atomic_output(path) as tmp:  # a killed run never leaves a truncated figure
        fig.savefig(tmp, dpi=DPI, format=path.suffix.lstrip(".") or "png")
    return path


def figure1(plan, curves, caps, path: Path) -> Path:
    """Certified accuracy vs radius per sigma: STN and Gaussian (Renyi), STN PixelDP and Cohen."""
    k = len(plan.sigmas)
    cols = 2 if k > 1 else 1
    rows = math.ceil(k / cols)
    fig = _figure((5.0 * cols, 3.4 * rows))
    for j, sigma in enumerate(plan.sigmas):
        ax = fig.add_subplot(rows, cols, j + 1)
        grid = np.asarray(curves[(sigma, "grid")])
        ax.plot(grid, curves[(sigma, "stn", "renyi")], "C0-", label="STN, Rényi bound")
        ax.plot(grid, curves[(sigma, "gaussian", "renyi")], "C1--", label="Gaussian aug., Rényi bound")
        ax.plot(grid, curves[(sigma, "stn", "pixeldp")], "C3:", label="STN, PixelDP bound")
        ax.plot(grid, curves[(sigma, "stn", "cohen")], color="0.55", lw=0.8, label="STN, Cohen et al. (tight)")
        ax.axvline(caps[sigma]["renyi"], color="C0", lw=0.6, alpha=0.6)
        ax.set_title(f"σ = {sigma:.3g}  (Rényi cap {caps[sigma]['renyi']:.2f} at n = {plan.n_fig1})", fontsize=9)
        ax.set_xlabel("ℓ2 radius")
        ax.set_ylabel("certified accuracy")
        ax.set_ylim(0, 1)
        ax.set_xlim(0, grid[-1])
        ax.grid(alpha=0.3)
        if j == 0:
            ax.legend(fontsize=7)
    return _save(fig, path)


def figure2(plan, attacks, path: Path) -> Path:
    fig = _figure((10.0, 3.6))
    unit = plan.linf_unit
    for p, norm in enumerate(("l2", "linf")):
        ax = fig.add_subplot(1, 2, p + 1)
        scale = 1.0 if norm == "l2" else 1.0 / unit
        for key, style, label in [
            (f"white_{norm}", "C0o-", f"STN σ={plan.main_sigma:.3g}: white-box PGD + EOT"),
            (f"cw_{norm}", "C2s-", f"STN σ={plan.main_sigma:.3g}: white-box C&W (κ = {plan.cw_kappa:g}) + EOT"),
            (f"transfer_{norm}", "C1^--", f"STN σ={plan.main_sigma:.3g}: transfer PGD (from undefended)"),
            (f"undefended_{norm}", "C3x:", "undefended model: white-box PGD"),
        ]:
            if key not in attacks:
                continue
            r = attacks[key]
            ax.plot([0.0] + [e * scale for e in r["eps"]], [r["clean"]] + list(r["robust"]), style, label=label,
                    ms=4)
        ax.set_xlabel("attack size, ℓ2" if norm == "l2" else
                      ("attack size, ℓ∞" if unit == 1.0 else "attack size, ℓ∞ (× 1/255)"))
        ax.set_ylabel("robust accuracy")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax.set_title(f"{'ℓ2' if norm == 'l2' else 'ℓ∞'} attacks, {plan.attack_examples} test examples", fontsize=9)
    return _save(fig, path)


def figure3(plan, by_sigma, path: Path) -> Path:
    fig = _figure((5.2, 3.6))
    ax = fig.add_subplot(1, 1, 1)
    scale = 1.0 / plan.linf_unit
    for j, (sigma, r) in enumerate(sorted(by_sigma.items())):
        label = "σ = 0 (undefended)" if sigma == 0 else f"σ = {sigma:.3g} (STN)"
        ax.plot([0.0] + [e * scale for e in r["eps"]], [r["clean"]] + list(r["robust"]), "o-", color=f"C{j}",
                label=label, ms=4)
    ax.set_xlabel("attack size, ℓ∞" if plan.linf_unit == 1.0 else "attack size, ℓ∞ (× 1/255)")
    ax.set_ylabel("robust accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("white-box PGD-ℓ∞ + EOT against the smoothed classifier", fontsize=9)
    return _save(fig, path)


def figure_crosscheck(plan, grid, cert_curves, cross, margins, path: Path) -> Path:
    fig = _figure((5.6, 3.8))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(grid, cert_curves["renyi"], "C0-", label="certified, Rényi bound")
    ax.plot(grid, cert_curves["cohen"], color="0.5", lw=0.9, ls="--", label="certified, Cohen et al.")
    eps = np.asarray(plan.l2_eps)
    pgd_r = np.asarray(cross["pgd_l2"]["robust"])
    cw_r = np.asarray(cross["cw_l2"]["robust"])
    ax.plot(np.r_[0.0, eps], np.r_[cross["clean_accuracy"], pgd_r], "C3o-", ms=4, label="empirical, PGD-ℓ2 + EOT")
    ax.plot(np.r_[0.0, eps], np.r_[cross["clean_accuracy"], cw_r], "C2s-", ms=4, label="empirical, C&W-ℓ2 + EOT")
    emp = np.minimum(pgd_r, cw_r)
    ax.fill_between(eps, emp, emp + np.asarray(margins), color="C3", alpha=0.15, lw=0,
                    label="sampling-error margin")
    ax.set_xlabel("ℓ2 radius / attack size ε")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(0, max(eps.max(), grid[-1]))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(f"certified ≤ empirical: STN σ = {plan.main_sigma:.3g}, same {plan.attack_examples} examples",
                 fontsize=9)
    return _save(fig, path)


def figure4(plan, work: Path, path: Path) -> tuple[Path, str]:
    """Figure 4 through renyi_cert.compare_pixeldp (its own plot, downscaled for the docs)."""
    from PIL import Image

    from renyi_cert import compare_pixeldp

    grid = compare_pixeldp.compute_grid(sigma=1.0, resolution=plan.fig4_resolution, min_total=0.2)
    summary = compare_pixeldp.format_summary(compare_pixeldp.summarize(grid), grid)
    full = compare_pixeldp.plot(grid, work / "fig4_bounds")
    with Image.open(full[0]) as im:
        w, h = im.size
        small = im.convert("RGB").resize((900, round(900 * h / w)), Image.LANCZOS)
        small = small.quantize(colors=128)
        with atomic_output(path) as tmp:
            small.save(tmp, format="PNG", optimize=True)
    return path, summary


# -------------------------------------------------------------------------------------- report


def pct(v: float) -> str:
    return f"{100 * v:.1f} %"


def md_table(head, rows) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python scripts/reproduce.py",
                                description="Regenerate the reproduction report (Figures 1-4, Table 1, cross-check).")
    p.add_argument("--dataset", default="mnist5k", choices=("mnist5k", "mnist", "cifar10"))
    p.add_argument("--data-root", default=None, help="folder with MNIST/raw or cifar-10-batches-py (default ./data)")
    p.add_argument("--quick", action="store_true", help="tiny settings (a few minutes); figures go to the work folder")
    p.add_argument("--out", default=None,
                   help="folder for the PNGs and the markdown (default docs/figures; with --quick <work>/figures)")
    p.add_argument("--work", default=None,
                   help="folder for checkpoints and cached results (default runs/reproduce/<dataset>[-quick])")
    p.add_argument("--fresh", action="store_true", help="recompute every result (checkpoints are still reused)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (overrides the plan)")
    p.add_argument("--max-train", type=int, default=None, help="train on the first N training examples")
    p.add_argument("--max-test", type=int, default=None,
                   help="certify at most N test examples (Table 1; Figure 1 and the attacks use at most as many)")
    p.add_argument("--n", type=int, default=None, help="estimation samples for Table 1 and the cross-check")
    p.add_argument("--n-fig1", type=int, default=None, help="estimation samples for Figure 1")
    p.add_argument("--n0", type=int, default=None, help="selection samples")
    p.add_argument("--attack-examples", type=int, default=None, help="examples attacked (first of the certified set)")
    p.add_argument("--sigmas", default=None, help="comma-separated noise levels of Figures 1 and 3")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: two threads were slower on a shared 2-core CPU)")
    p.add_argument("--no-progress", action="store_true")
    return p


def _positive(parser, name, value, minimum=1):
    if value is not None and value < minimum:
        parser.error(f"--{name} ({value}) must be an integer >= {minimum}")
    return value


def make_plan(parser, args) -> Plan:
    plan = default_plan(args.dataset, args.quick)
    changes = {}
    for flag, field_name in [("epochs", "epochs"), ("max_train", "max_train"), ("n", "n_table"),
                             ("n_fig1", "n_fig1"), ("n0", "n0"), ("attack_examples", "attack_examples")]:
        v = _positive(parser, flag.replace("_", "-"), getattr(args, flag))
        if v is not None:
            changes[field_name] = v
    if args.seed is not None:
        changes["seed"] = _positive(parser, "seed", args.seed, minimum=0)
    if args.max_test is not None:
        m = _positive(parser, "max-test", args.max_test)
        changes["table_examples"] = m
        changes["fig1_examples"] = min(plan.fig1_examples, m)
        changes["attack_examples"] = min(changes.get("attack_examples", plan.attack_examples), m)
    if args.sigmas is not None:
        try:
            sigmas = tuple(float(s) for s in args.sigmas.split(","))
        except ValueError:
            parser.error(f"--sigmas ({args.sigmas!r}) must be comma-separated numbers")
        if not sigmas or any(not (math.isfinite(s) and s > 0) for s in sigmas):
            parser.error(f"--sigmas ({args.sigmas!r}) must be finite numbers > 0")
        if not any(math.isclose(s, plan.main_sigma, rel_tol=1e-9) for s in sigmas):
            sigmas = tuple(sorted(sigmas + (plan.main_sigma,)))
        changes["sigmas"] = sigmas
    plan = replace(plan, **changes)
    if plan.attack_examples > plan.table_examples:
        plan = replace(plan, attack_examples=plan.table_examples)
    return plan


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    plan = make_plan(parser, args)
    _positive(parser, "threads", args.threads)

    import torch

    from renyi_cert import analyze
    from renyi_cert_torch.attacks import PGD
    from renyi_cert_torch.data import load_dataset
    from renyi_cert_torch.smoothing import resolve_device
    from renyi_cert_torch.train import evaluate_accuracy

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    t_start = time.perf_counter()
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        parser.error(str(exc))
    progress = not args.no_progress
    tag = plan.dataset + ("-quick" if plan.quick else "")
    work = Path(args.work) if args.work else Path("runs") / "reproduce" / tag
    out = Path(args.out) if args.out else (work / "figures" if plan.quick else Path("docs") / "figures")
    for d in (work, work / "ckpt", out):
        d.mkdir(parents=True, exist_ok=True)
    stages = Stages(work, args.fresh)
    print(f"reproduce: {tag}, work folder {work}, figures in {out}, device {device}, "
          f"{args.threads} thread(s)", flush=True)
    try:
        try:
            test = load_dataset(plan.dataset, "test", args.data_root)
        except FileNotFoundError as exc:
            print(f"reproduce: error: {exc}", file=sys.stderr)
            return 1
        k = test.num_classes
        idx = np.arange(0, len(test), plan.test_skip)[:plan.table_examples]
        x_all, y_all = test.x[idx].to(device), test.y[idx].to(device)
        labels = y_all.cpu().numpy()

        # ---------------------------------------------------------------- models
        models = {}
        for sigma in plan.sigmas:
            for mode in ("stn", "gaussian"):
                models[(mode, sigma)] = get_model(plan, mode, sigma, work, args.data_root, device, stages, progress)
        models[("none", 0.0)] = get_model(plan, "none", 0.0, work, args.data_root, device, stages, progress)
        main_key = ("stn", next(s for s in plan.sigmas if math.isclose(s, plan.main_sigma, rel_tol=1e-9)))
        main_model, main_sha = models[main_key]
        sigma0 = main_key[1]

        def counts_stage(mode, sigma, n_ex, n, name):
            model, sha = models[(mode, sigma)]
            params = {"ckpt": sha, "sigma": sigma, "idx": idx[:n_ex].tolist(), "n0": plan.n0, "n": n,
                      "seed": plan.seed, "batch": plan.cert_batch, "device": device.type}
            return stages.run(name, params, lambda: sample_counts(
                model, sigma, x_all[:n_ex], plan.n0, n, _seed(plan, name), k, plan.cert_batch, device,
                progress, name))

        # ---------------------------------------------------------------- Figure 1
        caps_fig1 = {s: radius_cap(s, plan.n0, plan.n_fig1, plan.alpha, k) for s in plan.sigmas}
        fig1_rows, curves = [], {}
        radii_grid_fig1 = {}
        for sigma in plan.sigmas:
            top = 1.1 * max(caps_fig1[sigma]["cohen"], 1e-3)
            grid = np.linspace(0.0, top, 300)
            curves[(sigma, "grid")] = grid
            radii_grid_fig1[sigma] = [r for r in (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0) if r <= top]
            for mode in ("stn", "gaussian"):
                c = counts_stage(mode, sigma, plan.fig1_examples, plan.n_fig1, f"fig1-{mode}-sigma{sigma:.4g}")
                log = as_log(certificates(c, sigma, plan.alpha), labels[:plan.fig1_examples], f"{mode} {sigma:g}")
                for b in BOUNDS:
                    curves[(sigma, mode, b)] = analyze.certified_accuracy(log, grid, b)
                    accs = analyze.certified_accuracy(log, radii_grid_fig1[sigma], b)
                    fig1_rows.append((mode, sigma, b, float(np.mean(log.correct)),
                                      analyze.average_certified_radius(log, b), list(accs)))
        fig1_path = figure1(plan, curves, caps_fig1, out / f"{plan.dataset}_fig1_certified.png")

        # ---------------------------------------------------------------- Table 1
        table_counts = counts_stage("stn", sigma0, plan.table_examples, plan.n_table, f"table1-stn-sigma{sigma0:.4g}")
        table_rows = []
        variants = [("two sample sets (Cohen et al.), sound", plan.alpha, False),
                    ("two sample sets (Cohen et al.), sound", plan.paper_alpha, False),
                    ("one sample set (the paper's code), biased", plan.paper_alpha, True)]
        L = plan.table_radius
        logs_table = {}
        for desc, a, single in variants:
            log = as_log(certificates(table_counts, sigma0, a, single=single), labels, desc)
            logs_table[(a, single)] = log
            cap = radius_cap(sigma0, plan.n0, plan.n_table, a, k)["renyi"]
            head = (float(analyze.certified_accuracy(log, [plan.headline_radius], "renyi")[0])
                    if plan.headline_radius is not None else None)
            table_rows.append((desc, a, float(analyze.certified_accuracy(log, [L], "renyi")[0]),
                               float(analyze.certified_accuracy(log, [L], "cohen")[0]), head,
                               float(np.mean(log.correct)), float(np.mean(log.predict == -1)), cap))
        base_clean = evaluate_accuracy(main_model, test, device=device)
        noisy_base = evaluate_accuracy(main_model, test, sigma=sigma0, device=device, seed=plan.seed)

        # ---------------------------------------------------------------- attacks (Figures 2, 3)
        na = plan.attack_examples
        xa, ya = x_all[:na], y_all[:na]
        none_model, none_sha = models[("none", 0.0)]
        attacks = {}
        pgd_linf = PGD(norm="linf", steps=plan.pgd_steps, eot=plan.eot)
        pgd_l2_plain = PGD(norm="l2", steps=plan.pgd_steps, eot=1)
        pgd_linf_plain = PGD(norm="linf", steps=plan.pgd_steps, eot=1)
        common = {"idx": idx[:na].tolist(), "votes": plan.votes, "steps": plan.pgd_steps, "device": device.type,
                  "seed": plan.seed}
        fig3 = {}
        for sigma in plan.sigmas:
            model, sha = models[("stn", sigma)]
            name = f"attack-white-linf-stn-sigma{sigma:.4g}"
            fig3[sigma] = stages.run(name, {**common, "ckpt": sha, "sigma": sigma, "eps": plan.linf_eps,
                                            "eot": plan.eot}, lambda m=model, s=sigma, nm=name: robust_stage(
                m, xa, ya, s, attack=pgd_linf, eps_list=plan.linf_eps, votes=plan.votes, seed=_seed(plan, nm),
                device=device))
        attacks["white_linf"] = fig3[sigma0]
        for norm, eps_list, cfg in (("l2", plan.l2_eps, pgd_l2_plain), ("linf", plan.linf_eps, pgd_linf_plain)):
            name = f"attack-undefended-{norm}"
            attacks[f"undefended_{norm}"] = stages.run(name, {**common, "ckpt": none_sha, "eps": eps_list}, lambda
                                                       e=eps_list, c=cfg, nm=name: robust_stage(
                none_model, xa, ya, 0.0, attack=c, eps_list=e, votes=plan.votes, seed=_seed(plan, nm),
                device=device))
            name = f"attack-transfer-{norm}-sigma{sigma0:.4g}"
            attacks[f"transfer_{norm}"] = stages.run(name, {**common, "ckpt": main_sha, "source": none_sha,
                                                            "sigma": sigma0, "eps": eps_list}, lambda
                                                     e=eps_list, c=cfg, nm=name: robust_stage(
                main_model, xa, ya, sigma0, attack=c, eps_list=e, votes=plan.votes, seed=_seed(plan, nm),
                device=device, source_model=none_model, source_sigma=0.0))
        fig3[0.0] = attacks["undefended_linf"]

        # ---------------------------------------------------------------- cross-check (l2)
        log_main = logs_table[(plan.alpha, False)]
        radii_main = np.where(log_main.correct[:na] == 1,
                              np.maximum(log_main.radii["renyi"][:na], log_main.radii["cohen"][:na]), 0.0)
        cross = stages.run(f"crosscheck-l2-sigma{sigma0:.4g}", {
            **common, "ckpt": main_sha, "sigma": sigma0, "eps": plan.l2_eps, "eot": plan.eot,
            "cw": [plan.cw_search, plan.cw_steps, plan.cw_lr, plan.cw_kappa], "rejudge": plan.rejudge_votes, "alpha": plan.alpha,
            "radii": [round(float(r), 12) for r in radii_main]},
            lambda: crosscheck_stage(plan, main_model, xa, ya, sigma0, radii_main, k, device, progress))
        attacks["white_l2"] = {"eps": list(plan.l2_eps), "robust": cross["pgd_l2"]["robust"],
                               "clean": cross["clean_accuracy"]}
        attacks["cw_l2"] = {"eps": list(plan.l2_eps), "robust": cross["cw_l2"]["robust"],
                            "clean": cross["clean_accuracy"]}
        fig2_path = figure2(plan, attacks, out / f"{plan.dataset}_fig2_attacks.png")
        fig3_path = figure3(plan, fig3, out / f"{plan.dataset}_fig3_sigma.png")

        # certified curves on the attacked examples (same model, sigma, examples)
        log_att = as_log([c for c in certificates(table_counts, sigma0, plan.alpha)][:na], labels[:na], "attacked")
        grid_x = np.linspace(0.0, max(plan.l2_eps), 300)
        cert_curves = {b: analyze.certified_accuracy(log_att, grid_x, b) for b in ("renyi", "cohen")}
        cert_at_eps = {b: analyze.certified_accuracy(log_att, plan.l2_eps, b) for b in ("renyi", "cohen")}
        rej = cross["rejudged"]
        margins, violations, cross_rows = [], [], []
        for j, eps in enumerate(plan.l2_eps):
            und = {r["example"] for r in rej if r["eps"] == eps and r["status"] == "undecided"}
            margins.append(len(und) / na)
            violations += [r for r in rej if r["eps"] == eps and r["status"] == "violation"]
            emp = min(cross["pgd_l2"]["robust"][j], cross["cw_l2"]["robust"][j])
            cert = max(cert_at_eps["renyi"][j], cert_at_eps["cohen"][j])
            cross_rows.append((eps, cert_at_eps["renyi"][j], cert_at_eps["cohen"][j], cross["pgd_l2"]["robust"][j],
                               cross["cw_l2"]["robust"][j], margins[-1], cert <= emp + margins[-1] + 1e-12))
        cross_path = figure_crosscheck(plan, grid_x, cert_curves, cross, margins, out / f"{plan.dataset}_crosscheck.png")

        # ---------------------------------------------------------------- Figure 4
        fig4_path = out / "fig4_bounds.png"
        fig4 = stages.run("fig4", {"resolution": plan.fig4_resolution, "png": str(fig4_path.resolve())},
                          lambda: {"summary": figure4(plan, work, fig4_path)[1]}, force=not fig4_path.is_file())
        fig4_summary = fig4["summary"]

        total = time.perf_counter() - t_start
        md = report(plan, args, tag, k, idx, fig1_rows, radii_grid_fig1, caps_fig1, table_rows, base_clean,
                    noisy_base, attacks, fig3, cross, cross_rows, violations, fig4_summary, stages, total, len(test),
                    [fig1_path, fig2_path, fig3_path, fig4_path, cross_path])
        md_path = out / f"{plan.dataset}_results.md"
        atomic_write_text(md_path, md)
        print(md)
        print(f"wrote {md_path} and {len(list(out.glob('*.png')))} PNG(s) in {out} ({total:.0f} s)")
        return 0 if not violations else 3
    finally:
        torch.set_num_threads(prev_threads)


def report(plan, args, tag, k, idx, fig1_rows, radii_grid_fig1, caps_fig1, table_rows, base_clean, noisy_base,
           attacks, fig3, cross, cross_rows, violations, fig4_summary, stages, total, n_test, paths) -> str:
    """The markdown fragment with every number of the run."""
    from renyi_cert import radius, sison_glaz

    L = plan.table_radius
    cmd = "python scripts/reproduce.py" + (f" --dataset {plan.dataset}" if plan.dataset != "mnist5k" else "") \
        + (" --quick" if plan.quick else "")
    train_desc = f"{plan.max_train or 'all'} training examples, {plan.epochs} epoch(s), batch {plan.batch_size}, " \
                 f"Adam 1e-3, seed {plan.seed}"
    parts = [f"# Reproduction numbers: {tag}", "",
             f"Generated by `{cmd}`: this invocation took {total / 60:.1f} min; the stages below (training and "
             f"computations, cached ones with the time they took when computed) add up to "
             f"{sum(t for _, t, _ in stages.times) / 60:.1f} min.", "",
             f"Training: {train_desc}. Certification set: every {plan.test_skip}th of the {n_test} test examples, "
             f"{len(idx)} in all (Figure 1: the first {plan.fig1_examples}; attacks: the first {plan.attack_examples}).",
             ""]

    # Table 1
    parts += [f"## Table 1: STN, σ = {plan.main_sigma:.4g}, certified accuracy at L = {L:.4g}", ""]
    hl = plan.headline_radius
    rows = [("paper (" + plan.paper_setup + ", n = 100, 95 %)", "0.05", f"{plan.paper_certified:.1f} %", "")
            + ((plan.paper_headline,) if hl is not None else ()) + (f"{plan.paper_natural:.1f} %", "", "")]
    for desc, a, rl, cl, head, acc, abst, cap in table_rows:
        rows.append((f"ours: {desc}, n0 = {plan.n0}, n = {plan.n_table}", f"{a:g}", pct(rl), pct(cl))
                    + ((pct(head),) if hl is not None else ()) + (pct(acc), pct(abst), f"{cap:.3f}"))
    parts += [md_table(["certification", "alpha", f"certified acc. at L = {L:.4g} (Rényi)", "same, Cohen bound"]
                       + ([f"Rényi at L = {hl:g}"] if hl is not None else [])
                       + ["smoothed clean acc.", "abstain", "Rényi radius cap"], rows), ""]
    parts += [f"Base classifier (no noise) accuracy on all {n_test} test examples: {pct(base_clean)}; "
              f"with one N(0, σ²) draw per image: {pct(noisy_base)}. \"Smoothed clean acc.\" is the certified "
              "accuracy at radius 0 (abstentions count as errors).", ""]
    caps = []
    for n, a in [(100, 0.05), (1000, 0.05), (plan.n_table, plan.paper_alpha), (plan.n_table, plan.alpha)]:
        p1 = (a / 2) ** (1 / n)
        caps.append((n, a, f"{p1:.6f}", f"{radius(p1, 1 - p1, 1.0):.4f} σ",
                     f"{radius(p1, 1 - p1, plan.main_sigma):.4f}",
                     f"{radius(a ** (1 / n), 1 - a ** (1 / n), plan.main_sigma):.4f}",
                     f"{radius(p1, 0.0, plan.main_sigma):.4f}"))
    parts += ["Radius caps (every sample in the top class). Bonferroni Clopper–Pearson: p1_lower ≤ (α/2)^(1/n), "
              "p2_upper ≥ 1 − p1_lower:", "",
              md_table(["n", "alpha", "max p1_lower", "Rényi cap", f"at σ = {plan.main_sigma:.4g}",
                        "same, one-sided α^(1/n), no Bonferroni", "same, if p2 = 0 were plugged in"], caps), ""]
    need = {a: min_samples(L, plan.main_sigma, a) for a in (plan.paper_alpha, plan.alpha)}
    sg = sison_glaz([100] + [0] * (k - 1), plan.paper_alpha)
    parts += [f"Smallest n whose Rényi cap reaches L = {L:.4g} at σ = {plan.main_sigma:.4g} (every sample in the "
              "top class, Bonferroni Clopper–Pearson): " + ", ".join(f"n = {v:,} at α = {a:g}" for a, v in need.items())
              + f". For comparison, Sison–Glaz intervals (the official code's, through R) at counts (100, 0, …, 0) "
              f"and α = {plan.paper_alpha:g} give p1_lower = {sg.lower[0]:g} and p2_upper = {sg.upper[1]:.4f}: "
              "no cap from n at all.", ""]

    # Figure 1
    parts += [f"## Figure 1: certified accuracy (n0 = {plan.n0}, n = {plan.n_fig1}, α = {plan.alpha:g}, "
              f"{plan.fig1_examples} examples)", ""]
    for sigma in plan.sigmas:
        rg = radii_grid_fig1[sigma]
        rows = [(MODE_LABELS[m], BOUND_LABELS[b], pct(acc), f"{acr:.3f}", *[f"{v:.2f}" for v in accs])
                for (m, s, b, acc, acr, accs) in fig1_rows if s == sigma and not (m == "gaussian" and b != "renyi")]
        parts += [f"σ = {sigma:.4g} (radius caps at this n: " +
                  ", ".join(f"{BOUND_LABELS[b]} {caps_fig1[sigma][b]:.3f}" for b in BOUNDS) + ")", "",
                  md_table(["training", "bound", "smoothed acc.", "ACR"] + [f"r = {r:g}" for r in rg], rows), ""]

    # Figures 2, 3
    def att_rows(keys):
        out = []
        for key, label in keys:
            if key in attacks:
                r = attacks[key]
                out.append((label, f"{r['clean']:.2f}", *[f"{v:.2f}" for v in r["robust"]]))
        return out

    unit = "" if plan.linf_unit == 1.0 else " (× 1/255)"
    sc = 1.0 / plan.linf_unit
    parts += [f"## Figure 2: robust accuracy, STN σ = {plan.main_sigma:.4g}, {plan.attack_examples} examples, "
              f"judged by a {plan.votes}-vote majority", "",
              f"PGD: {plan.pgd_steps} steps, step 2.5 ε / steps, random start, EOT over {plan.eot} fresh draws per step "
              f"(white box); C&W: {plan.cw_search} binary-search rounds × {plan.cw_steps} Adam steps (lr {plan.cw_lr:g}), "
              f"confidence κ = {plan.cw_kappa:g}, EOT {plan.eot}, minimum-norm perturbation truncated to ε; transfer: PGD crafted on the undefended "
              "model (σ = 0), judged on the smoothed STN model.", "",
              md_table(["ℓ2 attack", "ε = 0"] + [f"{e:g}" for e in plan.l2_eps],
                       att_rows([("white_l2", "white-box PGD + EOT"), ("cw_l2", "white-box C&W + EOT"),
                                 ("transfer_l2", "transfer PGD"), ("undefended_l2", "undefended, white-box PGD")])), "",
              md_table([f"ℓ∞ attack{unit}", "ε = 0"] + [f"{e * sc:g}" for e in plan.linf_eps],
                       att_rows([("white_linf", "white-box PGD + EOT"), ("transfer_linf", "transfer PGD"),
                                 ("undefended_linf", "undefended, white-box PGD")])), ""]
    rows = []
    for sigma, r in sorted(fig3.items()):
        rows.append(("0 (undefended)" if sigma == 0 else f"{sigma:.4g}", f"{r['clean']:.2f}",
                     *[f"{v:.2f}" for v in r["robust"]]))
    parts += ["## Figure 3: white-box PGD-ℓ∞ + EOT for several σ (STN models; σ = 0 the undefended model)", "",
              md_table([f"σ \\ ε{unit}", "0"] + [f"{e * sc:g}" for e in plan.linf_eps], rows), ""]

    # cross-check
    ok = all(r[-1] for r in cross_rows)
    parts += [f"## Cross-check: certified (α = {plan.alpha:g}, n = {plan.n_table}) vs empirical ℓ2 robust accuracy, "
              f"same {plan.attack_examples} examples", "",
              md_table(["ε", "certified, Rényi", "certified, Cohen", "PGD-ℓ2 + EOT", "C&W + EOT", "margin",
                        "certified ≤ empirical + margin"],
                       [(f"{e:g}", f"{cr:.3f}", f"{cc:.3f}", f"{p:.3f}", f"{c:.3f}", f"{m:.3f}", "yes" if good else "NO")
                        for e, cr, cc, p, c, m, good in cross_rows]), "",
              f"Margin at ε = (number of examples certified at radius ≥ ε but judged broken whose re-judging "
              f"with {plan.rejudge_votes} fresh draws was undecided at level {plan.alpha:g}) / "
              f"{plan.attack_examples}. Re-judged pairs: {len(cross['rejudged'])}; "
              f"undecided {sum(r['status'] == 'undecided' for r in cross['rejudged'])}, "
              f"correct after all {sum(r['status'] == 'correct' for r in cross['rejudged'])}, "
              f"violations {len(violations)}. "
              f"Result: {'no violation, the certified curve lies below the empirical ones' if ok and not violations else 'VIOLATION'}.",
              ""]
    for v in violations:
        parts.append(f"- VIOLATION: example {v['example']} (test index {int(idx[v['example']])}), {v['attack']} at ε = "
                     f"{v['eps']:g}, certified radius {v['radius']:.4f}, PREDICT says {v['prediction']} "
                     f"(label {v['label']}), counts {v['counts_top']}/{v['counts_runner_up']}")
    cw_norms = np.asarray(cross["cw_norm"])
    succ = np.isfinite(cw_norms)
    if succ.any():
        parts += [f"C&W found an adversarial point (by its own EOT criterion) for {int(succ.sum())} of "
                  f"{len(cw_norms)} examples; median ℓ2 norm {np.median(cw_norms[succ]):.3f}.", ""]

    parts += ["## Figure 4: bound comparison (σ = 1, p1 + p2 ≥ 0.2)", "", "```", fig4_summary, "```", ""]
    parts += ["## Stages", "", md_table(["stage", "seconds", "cached"],
                                         [(n, f"{s:.0f}", "yes" if c else "") for n, s, c in stages.times]), "",
              "Figures: " + ", ".join(f"`{p.name}`" for p in paths), "",
              "Settings: `" + json.dumps({k2: v for k2, v in asdict(plan).items()}, default=str) + "`", ""]
    return "\n".join(parts)


if __name__ == "__main__":
    sys.exit(main())
