"""The certification stages: Monte Carlo counts, certificates, Figure 1's curves and Table 1's rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from .context import Run
from .models import TrainedModel
from .plan import stage_seed

BOUNDS = ("renyi", "cohen", "pixeldp")
FIG1_RADII = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)


# ------------------------------------------------------------------------------------- counts


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


def counts_stage(run: Run, trained: TrainedModel, sigma: float, n_examples: int, n: int, name: str) -> dict:
    """The (cached) counts of the first ``n_examples`` of the certification set, ``n`` estimation samples.

    With ``run.nproc`` (``--nproc``) each example has its own seed and the counts are drawn by
    that many workers (:mod:`renyi_cert_torch.counts`); otherwise by this process, all examples
    from one noise stream (the seeding of the committed report).
    """
    plan = run.plan
    params = {"ckpt": trained.sha256, "sigma": sigma, "idx": run.idx[:n_examples].tolist(), "n0": plan.n0, "n": n,
              "seed": plan.seed, "batch": plan.cert_batch, "device": run.device.type}
    seed = stage_seed(plan, name)
    if run.nproc is None:
        return run.stages.run(name, params, lambda: sample_counts(
            trained.model, sigma, run.x[:n_examples], plan.n0, n, seed, run.num_classes,
            plan.cert_batch, run.device, run.progress, name))
    return run.stages.run(name, {**params, "seeding": "per-example"},
                          lambda: per_example_counts(run, trained, sigma, n_examples, n, seed))


def per_example_counts(run: Run, trained: TrainedModel, sigma: float, n_examples: int, n: int, seed: int) -> dict:
    """Counts with one seed per example, on ``run.nproc`` workers (in this process for one)."""
    from renyi_cert_torch.counts import count_examples, sharded_counts
    from renyi_cert_torch.smoothing import SmoothedClassifier

    plan, x = run.plan, run.x[:n_examples]
    if run.nproc == 1 or trained.path is None:
        clf = SmoothedClassifier(trained.model, sigma, run.num_classes, device=run.device, batch_size=plan.cert_batch)
        return count_examples(clf, x, n0=plan.n0, n=n, seed=seed)
    return sharded_counts(trained.path, x, sigma=sigma, num_classes=run.num_classes, n0=plan.n0, n=n, seed=seed,
                          batch=plan.cert_batch, device=run.device.type, nproc=run.nproc)


# ------------------------------------------------------------------------------- certificates


def certificates(counts: dict, sigma: float, alpha: float, *, single: bool = False) -> list:
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
        p1_lower=np.array([c.p1_lower for c in certs]), p2_upper=np.array([c.p2_upper for c in certs]),
        guaranteed=np.array([int(c.guaranteed) for c in certs], dtype=np.int64))


# ----------------------------------------------------------------------------------- Figure 1


@dataclass(frozen=True)
class Figure1Row:
    """One (training mode, sigma, bound) line of Figure 1's table."""

    mode: str
    sigma: float
    bound: str
    accuracy: float            # smoothed clean accuracy (abstentions count as errors)
    acr: float                 # average certified radius
    certified: tuple           # certified accuracy at each of the sigma's table radii


@dataclass(frozen=True)
class Figure1Data:
    """Figure 1's curves and table.

    Attributes
    ----------
    caps : dict of float -> Mapping of str to float
        Per sigma, the largest radius per bound that ``plan.n_fig1`` samples can certify.
    grids : dict of float -> ndarray
        Per sigma, the radii of the curves (up to 1.1 x the Cohen cap).
    table_radii : dict of float -> list of float
        Per sigma, the radii of the table (those of ``FIG1_RADII`` on the grid).
    curves : dict of (sigma, mode, bound) -> ndarray
        Certified accuracy on ``grids[sigma]``.
    rows : tuple of Figure1Row
    trades : dict or None
        The paper's TRADES line: empirical accuracy of the TRADES model (no noise) under
        white-box PGD-l2 at the radii ``trades["eps"]`` (``robust``; ``clean`` at radius 0), on
        the same examples; an upper bound on its robust accuracy, not a certificate.
    """

    caps: Mapping[float, Mapping[str, float]]
    grids: Mapping[float, np.ndarray]
    table_radii: Mapping[float, list]
    curves: Mapping[tuple, np.ndarray]
    rows: tuple
    trades: Mapping[str, Any] | None = None


def figure1_stage(run: Run, models: dict) -> Figure1Data:
    """Certify the first ``plan.fig1_examples`` with every STN and Gaussian-augmentation model; attack the
    TRADES model (when trained) at the radii ``FIG1_RADII``."""
    from renyi_cert import analyze
    from renyi_cert.caps import radius_cap

    from .attacks import trades_figure1_stage

    plan = run.plan
    labels = run.labels[:plan.fig1_examples]
    caps, grids, table_radii, curves, rows = {}, {}, {}, {}, []
    for sigma in plan.sigmas:
        caps[sigma] = radius_cap(plan.n_fig1, alpha=plan.alpha, sigma=sigma, bounds=BOUNDS,
                                  num_classes=run.num_classes).radii
        top = 1.1 * max(caps[sigma]["cohen"], 1e-3)
        grids[sigma] = np.linspace(0.0, top, 300)
        table_radii[sigma] = [r for r in FIG1_RADII if r <= top]
        for mode in ("stn", "gaussian"):
            name = f"fig1-{mode}-sigma{sigma:.4g}"
            counts = counts_stage(run, models[(mode, sigma)], sigma, plan.fig1_examples, plan.n_fig1, name)
            log = as_log(certificates(counts, sigma, plan.alpha), labels, f"{mode} {sigma:g}")
            for b in BOUNDS:
                curves[(sigma, mode, b)] = analyze.certified_accuracy(log, grids[sigma], b)
                rows.append(Figure1Row(mode, sigma, b, float(np.mean(log.correct)),
                                       analyze.average_certified_radius(log, b),
                                       tuple(analyze.certified_accuracy(log, table_radii[sigma], b))))
    trades = trades_figure1_stage(run, models[("trades", 0.0)], FIG1_RADII) if ("trades", 0.0) in models else None
    return Figure1Data(caps=caps, grids=grids, table_radii=table_radii, curves=curves, rows=tuple(rows),
                       trades=trades)


# ------------------------------------------------------------------------------------ Table 1


@dataclass(frozen=True)
class Table1Row:
    """One certification variant of Table 1 (on the main STN model's counts)."""

    desc: str
    alpha: float
    single: bool               # the paper's single-sample-set variant (no 1 - alpha guarantee)
    renyi: float               # certified accuracy at plan.table_radius, Renyi bound
    cohen: float               # same, Cohen et al.'s bound
    headline: float | None     # Renyi at plan.headline_radius (None without one)
    accuracy: float            # smoothed clean accuracy
    abstain: float             # abstention rate
    cap: float                 # the largest Renyi radius n_table samples can certify at alpha


@dataclass(frozen=True)
class Table1Data:
    """Table 1's rows, the certificates behind them and the base classifier's accuracies.

    Attributes
    ----------
    rows : tuple of Table1Row
    certificates : dict of (alpha, single) -> list of Certificate
    logs : dict of (alpha, single) -> CertificationLog
    base_clean, noisy_base : float
        The base classifier's accuracy on the whole test split, without noise and with one
        N(0, sigma^2) draw per image.
    """

    rows: tuple
    certificates: Mapping[tuple, list]
    logs: Mapping[tuple, Any]
    base_clean: float
    noisy_base: float


def table1_variants(plan) -> list:
    """(description, alpha, single sample set) of each Table 1 row."""
    return [("two sample sets (Cohen et al.), sound", plan.alpha, False),
            ("two sample sets (Cohen et al.), sound", plan.paper_alpha, False),
            ("one sample set (the paper's code), biased, not guaranteed", plan.paper_alpha, True)]


def table1_stage(run: Run, trained: TrainedModel, sigma: float) -> Table1Data:
    """Certify the whole certification set with the main STN model, every Table 1 variant."""
    from renyi_cert import analyze
    from renyi_cert.caps import radius_cap
    from renyi_cert_torch.train import evaluate_accuracy

    plan = run.plan
    L, hl = plan.table_radius, plan.headline_radius
    counts = counts_stage(run, trained, sigma, plan.table_examples, plan.n_table, f"table1-stn-sigma{sigma:.4g}")
    rows, certs, logs = [], {}, {}
    for desc, a, single in table1_variants(plan):
        certs[(a, single)] = certificates(counts, sigma, a, single=single)
        log = logs[(a, single)] = as_log(certs[(a, single)], run.labels, desc)
        cap = radius_cap(plan.n_table, alpha=a, sigma=sigma, bounds="renyi", num_classes=run.num_classes).radii["renyi"]
        head = float(analyze.certified_accuracy(log, [hl], "renyi")[0]) if hl is not None else None
        rows.append(Table1Row(desc, a, single, float(analyze.certified_accuracy(log, [L], "renyi")[0]),
                              float(analyze.certified_accuracy(log, [L], "cohen")[0]), head,
                              float(np.mean(log.correct)), float(np.mean(log.predict == -1)), cap))
    base_clean = evaluate_accuracy(trained.model, run.test, device=run.device)
    noisy_base = evaluate_accuracy(trained.model, run.test, sigma=sigma, device=run.device, seed=plan.seed)
    return Table1Data(rows=tuple(rows), certificates=certs, logs=logs, base_clean=base_clean, noisy_base=noisy_base)
