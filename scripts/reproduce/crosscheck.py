"""The cross-check stage: certified accuracy against empirical l2 robust accuracy on the same examples.

A certificate is a lower bound on robustness, an attack an upper bound. Every (example, eps)
pair certified at radius >= eps but judged broken by the attack's vote is re-judged with a
high-vote PREDICT (Cohen et al.): a decided wrong class is a violation, an abstention is
sampling error and makes up the margin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from .attacks import attack_params
from .certification import Table1Data, as_log
from .context import Run
from .models import TrainedModel
from .plan import Plan, stage_seed


def attacked_points(plan: Plan, model, x, y, sigma: float, generator, progress: bool) -> tuple[dict, object]:
    """``({(attack, eps): points}, C&W result)``: PGD-l2 + EOT at each eps, and C&W-l2 + EOT once
    with its minimum-norm perturbation radially truncated to each eps."""
    from renyi_cert_torch.attacks import carlini_wagner_l2, pgd, truncate_l2

    points = {}
    for eps in plan.l2_eps:
        if progress:
            print(f"  pgd-l2 eps {eps:g}", flush=True)
        points[("pgd", eps)] = pgd(model, x, y, eps=eps, norm="l2", sigma=sigma, steps=plan.pgd_steps,
                                   eot=plan.eot, generator=generator)
    if progress:
        print("  cw-l2", flush=True)
    cw = carlini_wagner_l2(model, x, y, sigma=sigma, kappa=plan.cw_kappa, steps=plan.cw_steps,
                           binary_search_steps=plan.cw_search, lr=plan.cw_lr, eot=plan.eot, generator=generator)
    delta = cw.x_adv - x
    for eps in plan.l2_eps:
        points[("cw", eps)] = x + truncate_l2(delta, eps)
    return points, cw


def rejudge(smoothed, point, label: int, sigma: float, plan: Plan, generator) -> dict:
    """Cohen et al.'s PREDICT on ``plan.rejudge_votes`` fresh draws at ``point``, at level ``plan.alpha``.

    Returns the top two counts, the prediction (-1 = abstain) and the status: "undecided"
    (abstained: sampling error), "correct", or "violation" (a decided wrong class).
    """
    from renyi_cert.certificate import predict_from_counts

    counts = smoothed.sample_counts(point, sigma, plan.rejudge_votes, generator=generator)
    p = predict_from_counts(counts, alpha=plan.alpha)
    status = "undecided" if p.prediction == -1 else ("correct" if p.prediction == label else "violation")
    return {"counts_top": p.counts_top, "counts_runner_up": p.counts_runner_up, "prediction": p.prediction,
            "label": label, "status": status}


def crosscheck_attacks(plan: Plan, model, x, y, sigma, radii, num_classes, device, progress) -> dict:
    """Per-example white-box l2 attacks (PGD + EOT for each eps, C&W + EOT once) and the re-judging.

    ``radii[i]`` is example i's largest certified radius (0 unless certified correct). For every
    eps and attack, an example is robust iff the smoothed classifier's majority vote
    (``plan.votes`` draws) is correct at x and at the attacked point x_eps (C&W's minimum-norm
    perturbation is radially truncated to eps). Pairs with ``radii[i] >= eps`` judged broken are
    re-judged with Cohen et al.'s PREDICT on ``plan.rejudge_votes`` fresh draws at level alpha:
    a decided wrong class is a violation, an abstain is sampling error.
    """
    import torch

    from renyi_cert_torch.attacks import smoothed_predict
    from renyi_cert_torch.smoothing import SmoothedClassifier

    gen = torch.Generator(device=device).manual_seed(stage_seed(plan, "crosscheck", sigma))
    smoothed = SmoothedClassifier(model, sigma, num_classes, device=device, batch_size=plan.cert_batch)
    judge_gen = smoothed.make_generator(stage_seed(plan, "rejudge", sigma))

    def vote(points):
        return smoothed_predict(model, points, sigma, votes=plan.votes, generator=gen) == y

    clean = vote(x)
    points, cw = attacked_points(plan, model, x, y, sigma, gen, progress)
    out = {"clean": clean.tolist(), "cw_norm": [float(v) for v in cw.norm], "cw_success": cw.success.tolist(),
           "robust": {}, "rejudged": []}
    for (attack, eps), pts in points.items():
        ok = clean & vote(pts)
        out["robust"].setdefault(attack, []).append(ok.tolist())
        for i in np.flatnonzero(~ok.cpu().numpy()):
            if radii[i] >= eps and radii[i] > 0:
                at_clean = not bool(clean[i])
                record = rejudge(smoothed, x[i] if at_clean else pts[i], int(y[i]), sigma, plan, judge_gen)
                out["rejudged"].append({"example": int(i), "attack": attack, "eps": eps, "radius": float(radii[i]),
                                        "at": "clean" if at_clean else "attacked", **record})
    out["pgd_l2"] = {"eps": list(plan.l2_eps), "robust": [float(np.mean(r)) for r in out["robust"]["pgd"]]}
    out["cw_l2"] = {"eps": list(plan.l2_eps), "robust": [float(np.mean(r)) for r in out["robust"]["cw"]]}
    out["clean_accuracy"] = float(np.mean(out["clean"]))
    return out


# ------------------------------------------------------------------------------------ summary


@dataclass(frozen=True)
class CrossRow:
    """Certified against empirical robust accuracy at one eps."""

    eps: float
    renyi: float               # certified accuracy at eps, Renyi bound
    cohen: float               # same, Cohen et al.'s bound
    pgd: float                 # empirical robust accuracy, PGD-l2 + EOT
    cw: float                  # same, C&W-l2 + EOT
    margin: float              # sampling-error margin (undecided re-judgings / examples)
    ok: bool                   # max(certified) <= min(empirical) + margin


@dataclass(frozen=True)
class CrossCheckData:
    """The cross-check's outcome.

    Attributes
    ----------
    raw : dict
        The (cached) stage result of :func:`crosscheck_attacks`.
    rows : tuple of CrossRow
        One per ``plan.l2_eps``.
    violations : tuple of dict
        The re-judged pairs whose PREDICT decided a wrong class.
    grid : ndarray
        Radii of the certified curves.
    curves : Mapping of str to ndarray
        Certified accuracy on ``grid`` per bound ("renyi", "cohen").
    """

    raw: dict
    rows: tuple
    violations: tuple
    grid: np.ndarray
    curves: Mapping[str, np.ndarray]

    @property
    def margins(self) -> list:
        """The margin at each eps."""
        return [r.margin for r in self.rows]

    @property
    def attacks(self) -> dict:
        """Figure 2's white-box l2 curves (``white_l2``: PGD + EOT, ``cw_l2``: C&W + EOT)."""
        clean = self.raw["clean_accuracy"]
        return {"white_l2": {"eps": list(self.raw["pgd_l2"]["eps"]), "robust": self.raw["pgd_l2"]["robust"],
                             "clean": clean},
                "cw_l2": {"eps": list(self.raw["cw_l2"]["eps"]), "robust": self.raw["cw_l2"]["robust"],
                          "clean": clean}}


def _rows(plan: Plan, raw: dict, certified: dict) -> tuple[list, list]:
    """The CrossRows and the violations of the cross-check ``raw``."""
    na = plan.attack_examples
    rej = raw["rejudged"]
    rows, violations = [], []
    for j, eps in enumerate(plan.l2_eps):
        margin = len({r["example"] for r in rej if r["eps"] == eps and r["status"] == "undecided"}) / na
        violations += [r for r in rej if r["eps"] == eps and r["status"] == "violation"]
        pgd_r, cw_r = raw["pgd_l2"]["robust"][j], raw["cw_l2"]["robust"][j]
        cert = max(certified["renyi"][j], certified["cohen"][j])
        rows.append(CrossRow(eps, certified["renyi"][j], certified["cohen"][j], pgd_r, cw_r, margin,
                             bool(cert <= min(pgd_r, cw_r) + margin + 1e-12)))
    return rows, violations


def crosscheck_stage(run: Run, trained: TrainedModel, sigma: float, table1: Table1Data) -> CrossCheckData:
    """Attack the first ``plan.attack_examples`` with the main STN model and compare with Table 1's
    certificates (alpha = ``plan.alpha``, two sample sets)."""
    from renyi_cert import analyze

    plan, na = run.plan, run.plan.attack_examples
    log = as_log(table1.certificates[(plan.alpha, False)][:na], run.labels[:na], "attacked")
    radii = np.where(log.correct == 1, np.maximum(log.radii["renyi"], log.radii["cohen"]), 0.0)
    params = {**attack_params(run), "ckpt": trained.sha256, "sigma": sigma, "eps": plan.l2_eps, "eot": plan.eot,
              "cw": [plan.cw_search, plan.cw_steps, plan.cw_lr, plan.cw_kappa], "rejudge": plan.rejudge_votes,
              "alpha": plan.alpha, "radii": [round(float(r), 12) for r in radii]}
    raw = run.stages.run(f"crosscheck-l2-sigma{sigma:.4g}", params, lambda: crosscheck_attacks(
        plan, trained.model, run.x[:na], run.y[:na], sigma, radii, run.num_classes, run.device, run.progress))
    grid = np.linspace(0.0, max(plan.l2_eps), 300)
    curves = {b: analyze.certified_accuracy(log, grid, b) for b in ("renyi", "cohen")}
    certified = {b: analyze.certified_accuracy(log, plan.l2_eps, b) for b in ("renyi", "cohen")}
    rows, violations = _rows(plan, raw, certified)
    return CrossCheckData(raw=raw, rows=tuple(rows), violations=tuple(violations), grid=grid, curves=curves)
