"""The attack stages of Figures 1-3: white-box PGD + EOT per sigma, transfer and undefended attacks, and the
empirical baselines (TRADES white box; transfer from the PGD-AT model, the paper's black-box source)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from .context import Run
from .models import TrainedModel
from .plan import stage_seed


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


@dataclass(frozen=True)
class AttackData:
    """Robust accuracies of Figures 2 and 3 (each a dict with ``eps``, ``robust`` and ``clean``).

    Attributes
    ----------
    attacks : Mapping of str to dict
        Figure 2's curves: ``white_linf`` (the main sigma's entry of ``by_sigma``),
        ``undefended_l2``, ``undefended_linf``, ``transfer_l2``, ``transfer_linf`` (crafted on the
        undefended model), and per norm the baselines of :func:`baseline_stages`:
        ``trades_white_<norm>``, ``pgdat_white_<norm>``, ``transfer_pgdat_<norm>`` (PGD-AT ->
        STN) and ``trades_transfer_pgdat_<norm>`` (PGD-AT -> TRADES).
    by_sigma : Mapping of float to dict
        Figure 3's curves: white-box PGD-l_inf + EOT per sigma; 0.0 is the undefended model.
    """

    attacks: Mapping[str, dict]
    by_sigma: Mapping[float, dict]


def attack_params(run: Run) -> dict:
    """The cache parameters every attack stage shares (examples, votes, steps, device, seed)."""
    plan = run.plan
    return {"idx": run.idx[:plan.attack_examples].tolist(), "votes": plan.votes, "steps": plan.pgd_steps,
            "device": run.device.type, "seed": plan.seed}


def white_linf_stages(run: Run, models: dict) -> dict:
    """``{sigma: result}``: white-box PGD-l_inf + EOT against the smoothed STN model at each sigma."""
    from renyi_cert_torch.attacks import PGD

    plan, na = run.plan, run.plan.attack_examples
    xa, ya = run.x[:na], run.y[:na]
    attack = PGD(norm="linf", steps=plan.pgd_steps, eot=plan.eot)
    out = {}
    for sigma in plan.sigmas:
        trained = models[("stn", sigma)]
        name = f"attack-white-linf-stn-sigma{sigma:.4g}"
        params = {**attack_params(run), "ckpt": trained.sha256, "sigma": sigma, "eps": plan.linf_eps, "eot": plan.eot}
        out[sigma] = run.stages.run(name, params, lambda m=trained.model, s=sigma, nm=name: robust_stage(
            m, xa, ya, s, attack=attack, eps_list=plan.linf_eps, votes=plan.votes, seed=stage_seed(plan, nm),
            device=run.device))
    return out


def undefended_and_transfer_stages(run: Run, undefended: TrainedModel, main: TrainedModel, sigma: float) -> dict:
    """PGD (no EOT) on the undefended model, judged on itself and transferred to the main STN model."""
    from renyi_cert_torch.attacks import PGD

    plan, na = run.plan, run.plan.attack_examples
    xa, ya = run.x[:na], run.y[:na]
    out = {}
    for norm, eps_list in (("l2", plan.l2_eps), ("linf", plan.linf_eps)):
        attack = PGD(norm=norm, steps=plan.pgd_steps, eot=1)
        name = f"attack-undefended-{norm}"
        out[f"undefended_{norm}"] = run.stages.run(
            name, {**attack_params(run), "ckpt": undefended.sha256, "eps": eps_list},
            lambda e=eps_list, c=attack, nm=name: robust_stage(
                undefended.model, xa, ya, 0.0, attack=c, eps_list=e, votes=plan.votes, seed=stage_seed(plan, nm),
                device=run.device))
        name = f"attack-transfer-{norm}-sigma{sigma:.4g}"
        out[f"transfer_{norm}"] = run.stages.run(
            name, {**attack_params(run), "ckpt": main.sha256, "source": undefended.sha256, "sigma": sigma,
                   "eps": eps_list},
            lambda e=eps_list, c=attack, nm=name: robust_stage(
                main.model, xa, ya, sigma, attack=c, eps_list=e, votes=plan.votes, seed=stage_seed(plan, nm),
                device=run.device, source_model=undefended.model, source_sigma=0.0))
    return out


def baseline_stages(run: Run, models: dict, sigma: float) -> dict:
    """PGD (no EOT) against the TRADES and PGD-AT models (no noise), and transferred from PGD-AT.

    Per norm: ``trades_white_<norm>`` and ``pgdat_white_<norm>`` (white box, judged on the model
    itself, sigma = 0); ``transfer_pgdat_<norm>`` (crafted on PGD-AT, judged on the smoothed main
    STN model) and ``trades_transfer_pgdat_<norm>`` (crafted on PGD-AT, judged on TRADES).
    """
    from renyi_cert_torch.attacks import PGD

    plan, na = run.plan, run.plan.attack_examples
    xa, ya = run.x[:na], run.y[:na]
    pgdat, trades, stn = models[("pgd-at", 0.0)], models[("trades", 0.0)], models[("stn", sigma)]
    out = {}
    for norm, eps_list in (("l2", plan.l2_eps), ("linf", plan.linf_eps)):
        attack = PGD(norm=norm, steps=plan.pgd_steps, eot=1)
        for key, target, target_sigma, source in [
                (f"trades_white_{norm}", trades, 0.0, None), (f"pgdat_white_{norm}", pgdat, 0.0, None),
                (f"transfer_pgdat_{norm}", stn, sigma, pgdat), (f"trades_transfer_pgdat_{norm}", trades, 0.0, pgdat)]:
            name = "attack-" + key.replace("_", "-") + (f"-sigma{sigma:.4g}" if target is stn else "")
            params = {**attack_params(run), "ckpt": target.sha256, "sigma": target_sigma, "eps": eps_list,
                      "source": None if source is None else source.sha256}
            out[key] = run.stages.run(name, params, lambda t=target, ts=target_sigma, src=source, e=eps_list, c=attack,
                                      nm=name: robust_stage(
                t.model, xa, ya, ts, attack=c, eps_list=e, votes=plan.votes, seed=stage_seed(plan, nm),
                device=run.device, source_model=None if src is None else src.model,
                source_sigma=None if src is None else 0.0))
    return out


def trades_figure1_stage(run: Run, trades: TrainedModel, radii) -> dict:
    """Figure 1's TRADES line: its empirical accuracy under white-box PGD-l2 (no noise, no EOT) at each
    radius, on the first ``plan.fig1_examples`` of the certification set (Figure 1's examples)."""
    from renyi_cert_torch.attacks import PGD

    plan, n = run.plan, run.plan.fig1_examples
    radii = [r for r in radii if r > 0]
    name = "fig1-trades-pgd-l2"
    params = {**attack_params(run), "idx": run.idx[:n].tolist(), "ckpt": trades.sha256, "eps": radii}
    return run.stages.run(name, params, lambda: robust_stage(
        trades.model, run.x[:n], run.y[:n], 0.0, attack=PGD(norm="l2", steps=plan.pgd_steps, eot=1), eps_list=radii,
        votes=plan.votes, seed=stage_seed(plan, name), device=run.device))


def attack_stages(run: Run, models: dict, sigma: float) -> AttackData:
    """Every attack of Figures 2 and 3 (``sigma``: the main sigma)."""
    by_sigma = white_linf_stages(run, models)
    attacks = {"white_linf": by_sigma[sigma]}
    attacks.update(undefended_and_transfer_stages(run, models[("none", 0.0)], models[("stn", sigma)], sigma))
    attacks.update(baseline_stages(run, models, sigma))
    by_sigma[0.0] = attacks["undefended_linf"]
    return AttackData(attacks=attacks, by_sigma=by_sigma)
