"""The attack stages of Figures 2 and 3: white-box PGD + EOT per sigma, transfer and undefended attacks."""

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
        ``undefended_l2``, ``undefended_linf``, ``transfer_l2``, ``transfer_linf``.
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


def attack_stages(run: Run, models: dict, sigma: float) -> AttackData:
    """Every attack of Figures 2 and 3 (``sigma``: the main sigma)."""
    by_sigma = white_linf_stages(run, models)
    attacks = {"white_linf": by_sigma[sigma]}
    attacks.update(undefended_and_transfer_stages(run, models[("none", 0.0)], models[("stn", sigma)], sigma))
    by_sigma[0.0] = attacks["undefended_linf"]
    return AttackData(attacks=attacks, by_sigma=by_sigma)
