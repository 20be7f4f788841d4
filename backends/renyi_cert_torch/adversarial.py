"""Adversarial training: the training examples and losses of modes "pgd-at" and "trades", and robust accuracy.

``"pgd-at"``
    Adversarial training (Madry, Makelov, Schmidt, Tsipras & Vladu, ICLR 2018):
    ``L = CE(f(x_adv), y)`` where x_adv is the last iterate of PGD on CE(f(.), y) in the
    ``attack_norm`` ball of radius ``attack_eps`` around x (intersected with [0, 1]), from a
    uniform random start, ``attack_steps`` steps of ``attack_step_size``
    (:func:`pgd_at_examples`).
``"trades"``
    TRADES (Zhang, Yu, Jiao, Xing, El Ghaoui & Jordan, ICML 2019):
    ``L = CE(f(x), y) + beta * KL(softmax(f(x)) || softmax(f(x_adv)))`` (:func:`trades_loss`;
    the KL is summed over classes and averaged over the batch, and its gradient flows through
    both f(x) and f(x_adv), as in the official ``trades.py``), where x_adv is the last iterate
    of projected gradient ascent on that KL from x + 0.001 N(0, I) (the official start;
    :func:`trades_examples`).

Both adversarial modes train without noise (sigma is not used, as for ``"none"``) and craft
x_adv with the model in eval mode (dropout off; as the official ``trades.py``), by the attack
loop of :mod:`renyi_cert_torch.attacks` (:func:`~renyi_cert_torch.attacks.pgd` for PGD-AT;
:func:`~renyi_cert_torch.attacks.projected_gradient_ascent` with the KL gradient for TRADES);
the training step then runs in train mode. TRADES feeds [x; x_adv] through the network in one
pass (the official code makes separate passes, so its dropout masks differ between the CE
term and the KL target; our models' dropout draws independent masks for the two halves).
Default attack settings (``PUBLISHED_ATTACKS``, l_inf; an l2 attack needs an explicit
``attack_eps``):

    mode / data     eps     steps  step    beta  source
    pgd-at MNIST    0.3     40     0.01    -     Madry et al., mnist_challenge config.json
    pgd-at CIFAR-10 8/255   10     2/255   -     Madry et al., cifar10_challenge config.json
    trades MNIST    0.3     40     0.01    1.0   Zhang et al., official train_trades_mnist.py
    trades CIFAR-10 0.031   10     0.007   6.0   Zhang et al., official train_trades_cifar10.py

(The official CIFAR-10 script first defaulted to beta = 1.0 and later to 6.0, the value its
README recommends; we use 6.0.) When ``attack_eps``, ``attack_steps`` or the norm differ from
the published values and no ``attack_step_size`` is given, the step is 2.5 eps / steps (the
rule of Madry et al. that :func:`~renyi_cert_torch.attacks.pgd` uses too; the defaults are
filled in by :class:`~renyi_cert_torch.train_config.TrainConfig`). The optimiser stays Adam at
``lr`` (TRADES's scripts use SGD with momentum for 80-100 epochs; Madry et al.'s MNIST model,
Adam 1e-4 for 100,000 steps of 50 examples).

The training loop that uses these pieces is :mod:`renyi_cert_torch.train` (which re-exports
every public name of this module); :func:`adversarial_accuracy` is the usual robust-accuracy
evaluation of the trained models.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from renyi_cert._validate import check_positive_int

from .attacks import pgd, project, projected_gradient_ascent
from .data import DataSplit
from .devices import model_device
from .modes import eval_mode

__all__ = ["PUBLISHED_ATTACKS", "TRADES_START_STD", "AdversarialSettings", "trades_loss", "pgd_at_examples",
           "trades_examples", "adversarial_accuracy"]


# The published l_inf training attacks (eps, steps, step size, beta) by (mode, "mnist" | "cifar10"); see the
# module docstring for the sources.
PUBLISHED_ATTACKS = {
    ("pgd-at", "mnist"): dict(eps=0.3, steps=40, step_size=0.01, beta=None),
    ("pgd-at", "cifar10"): dict(eps=8 / 255, steps=10, step_size=2 / 255, beta=None),
    ("trades", "mnist"): dict(eps=0.3, steps=40, step_size=0.01, beta=1.0),
    ("trades", "cifar10"): dict(eps=0.031, steps=10, step_size=0.007, beta=6.0),
}
TRADES_START_STD = 0.001  # the official trades.py starts the attack at x + 0.001 N(0, I)


@dataclass(frozen=True)
class AdversarialSettings:
    """The training attack of modes "pgd-at" and "trades" (``TrainConfig.adversary``).

    ``norm``, ``eps``, ``steps``, ``step_size``: the PGD ball and steps; ``beta``: the weight
    of the TRADES KL term (0.0 for "pgd-at", which does not use it).
    """

    norm: str
    eps: float
    steps: int
    step_size: float
    beta: float = 0.0

    def describe(self) -> str:
        """E.g. ``"PGD l_inf, eps 0.3, 40 steps of 0.01"``."""
        return (f"PGD {'l_inf' if self.norm == 'linf' else 'l2'}, eps {self.eps:.4g}, {self.steps} steps of "
                f"{self.step_size:.4g}")


def trades_loss(logits_clean: torch.Tensor, logits_adv: torch.Tensor, y: torch.Tensor, beta: float):
    """The TRADES objective ``CE(f(x), y) + beta * KL(softmax(f(x)) || softmax(f(x_adv)))`` (Zhang et al. 2019).

    The KL is summed over the classes and averaged over the batch; unlike :func:`~renyi_cert_torch.train.stn_loss`, the
    target softmax(f(x)) is *not* detached: the gradient flows through both logits, as in the
    official ``trades.py`` (``nn.KLDivLoss(size_average=False)(log_softmax(f(x_adv)),
    softmax(f(x))) / batch_size``).

    Returns
    -------
    (loss, ce, kl) : three scalar tensors, ``loss = ce + beta * kl``.
    """
    ce = F.cross_entropy(logits_clean, y)
    log_p, log_q = F.log_softmax(logits_clean, dim=1), F.log_softmax(logits_adv, dim=1)
    kl = (log_p.exp() * (log_p - log_q)).sum(dim=1).mean()
    return ce + beta * kl, ce, kl


def pgd_at_examples(model: nn.Module, x: torch.Tensor, y: torch.Tensor, adversary: AdversarialSettings,
                    generator: torch.Generator) -> torch.Tensor:
    """PGD-AT's training examples (Madry et al. 2018): PGD on CE(f(.), y) from a uniform random start.

    Runs :func:`renyi_cert_torch.attacks.pgd` without noise (sigma = 0, one gradient per step)
    with ``adversary``'s norm, eps, steps and step size; the model is in eval mode meanwhile
    (its flags are restored). ``generator`` (on x's device) draws the random start.
    """
    return pgd(model, x, y, eps=adversary.eps, norm=adversary.norm, sigma=0.0, steps=adversary.steps,
               step_size=adversary.step_size, random_start=True, loss="ce", eot=1, generator=generator,
               batch_size=len(x))


def trades_examples(model: nn.Module, x: torch.Tensor, adversary: AdversarialSettings,
                    generator: torch.Generator) -> torch.Tensor:
    """TRADES's training examples: x_adv maximising KL(softmax(f(x)) || softmax(f(x_adv))) in the ball.

    As the official ``trades.py``: the clean distribution is computed once (no gradient), the
    ascent starts at x + 0.001 N(0, I) (projected onto the ball and [0, 1]) and runs
    ``adversary.steps`` steps of :func:`renyi_cert_torch.attacks.projected_gradient_ascent`
    with the model in eval mode (flags restored). ``generator`` (on x's device) draws the start.
    """
    with eval_mode(model):
        with torch.no_grad():
            log_p = F.log_softmax(model(x), dim=1)
        noise = torch.randn(x.shape, generator=generator, device=generator.device, dtype=x.dtype).to(x.device)
        start = project(x + TRADES_START_STD * noise, x, adversary.eps, adversary.norm)

        def kl_gradient(x_adv: torch.Tensor) -> torch.Tensor:
            with torch.enable_grad():
                point = x_adv.detach().requires_grad_(True)
                log_q = F.log_softmax(model(point), dim=1)
                kl = (log_p.exp() * (log_p - log_q)).sum()
                return torch.autograd.grad(kl, point)[0]

        return projected_gradient_ascent(kl_gradient, x, start, eps=adversary.eps, norm=adversary.norm,
                                         steps=adversary.steps, step_size=adversary.step_size)


def adversarial_accuracy(model: nn.Module, data: DataSplit, adversary: AdversarialSettings, *,
                         batch_size: int = 500, device=None, seed: int = 0) -> float:
    """Accuracy of ``model`` (no noise) on PGD examples: the cross-entropy PGD of :func:`pgd_at_examples`.

    The attack is ``adversary``'s norm, eps, steps and step size from a uniform random start
    (drawn from a generator seeded with ``seed``), whatever mode trained the model: it is the
    usual evaluation of PGD-AT and TRADES models (the official ``pgd_attack_mnist.py`` of TRADES
    attacks with CE, eps 0.3, 40 steps of 0.01, random start). An example counts if the model is
    correct at its PGD example. The model's train/eval flags are restored.
    """
    if not isinstance(adversary, AdversarialSettings):
        raise ValueError(f"adversary must be an AdversarialSettings, got {type(adversary).__name__}")
    batch_size = check_positive_int("batch_size", batch_size)
    dev = model_device(model, device)
    gen = torch.Generator(device=dev).manual_seed(check_positive_int("seed", seed, minimum=0))
    correct = 0
    with eval_mode(model):
        for start in range(0, len(data), batch_size):
            xb, yb = data.x[start:start + batch_size].to(dev), data.y[start:start + batch_size].to(dev)
            x_adv = pgd_at_examples(model, xb, yb, adversary, gen)
            with torch.no_grad():
                correct += int((model(x_adv).argmax(dim=1) == yb).sum())
    return correct / len(data)
