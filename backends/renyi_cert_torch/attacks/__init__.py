"""Empirical attacks on the noisy (smoothed) classifier (Li, Chen, Wang & Carin, NeurIPS 2019, §6.2, appendix D).

Certified radii are lower bounds on robustness; these attacks give upper bounds (the robust
accuracy an adversary actually leaves). Everything here needs only a plain ``torch.nn.Module``
mapping pixels in [0, 1] to logits, and the noise of the defence: a Gaussian noise level ``sigma``
(``sigma = 0`` is the plain, undefended model), or in its place any :mod:`renyi_cert.noise` noise
(``Laplace(b)``, ``Uniform(lambda)``, ``Gaussian(sigma)``), which the EOT gradients and the judging
vote then draw (a number sigma draws exactly the Gaussian noise it always did).

Modules
    * :mod:`~renyi_cert_torch.attacks.voting` -- the judge: the smoothed classifier's majority vote
      (:func:`smoothed_predict`) over fresh noise draws, ties to the lowest class, no abstain.
    * :mod:`~renyi_cert_torch.attacks.eot` -- expectation over transformation (Athalye et al. 2018): every gradient is the
      gradient of the loss averaged over ``eot`` fresh noise draws (:func:`eot_gradient`),
      ``DEFAULT_EOT`` (16) by default against a noisy model.
    * :mod:`~renyi_cert_torch.attacks.geometry` -- norms and projections: :func:`perturbation_norm`, :func:`project`
      (eps-ball intersected with [0, 1]), :func:`truncate_l2` (radial truncation to an l2 ball),
      :func:`project_l1_ball` (the exact Euclidean projection onto an l1 ball, Duchi et al. 2008).
    * :mod:`~renyi_cert_torch.attacks.projected_gradient` -- :func:`pgd`: projected gradient ascent (Madry et al. 2018)
      under l_inf, l2 or l1 (the sparse l1 step of Tramer & Boneh 2019), on the cross-entropy or
      the margin loss, with an optional random start;
      its loop, :func:`projected_gradient_ascent`, takes any gradient function (adversarial
      training in :mod:`renyi_cert_torch.train` runs its PGD-AT and TRADES attacks through it).
    * :mod:`~renyi_cert_torch.attacks.carlini_wagner` -- :func:`carlini_wagner_l2`: Carlini & Wagner (2017) l2, margin loss
      ``max(Z_y - max_{j != y} Z_j, -kappa)``, tanh box reparametrisation, Adam, a binary search
      over the constant c; returns the smallest successful perturbation per example.
    * :mod:`~renyi_cert_torch.attacks.boundary` -- :func:`boundary_attack`: the decision-based, gradient-free Boundary
      attack of Brendel, Rauber & Bethge (2018), l2, querying only the smoothed classifier's
      majority vote.
    * :mod:`~renyi_cert_torch.attacks.evaluate` -- :func:`robust_accuracy`: robust accuracy of the smoothed classifier at
      each size eps, white box or transfer (black box: crafted on ``source_model``, e.g. the
      undefended one with ``source_sigma = 0``, judged on another).

All attacks are untargeted by default.
"""

from ._common import (ATTACKS, DEFAULT_BATCH_SIZE, DEFAULT_EOT, DEFAULT_L1_QUANTILE, DEFAULT_VOTES, LOSSES,
                      NORMS, PGD_NORMS, MinNormResult)
from .boundary import Boundary, boundary_attack
from .carlini_wagner import CarliniWagner, carlini_wagner_l2
from .eot import EOTGradient, eot_gradient, margin
from .evaluate import RobustAccuracy, robust_accuracy
from .geometry import perturbation_norm, project, project_l1_ball, truncate_l2
from .projected_gradient import PGD, pgd, projected_gradient_ascent
from .voting import smoothed_predict

__all__ = [
    "NORMS", "PGD_NORMS", "LOSSES", "ATTACKS", "DEFAULT_VOTES", "DEFAULT_EOT", "DEFAULT_BATCH_SIZE",
    "DEFAULT_L1_QUANTILE", "EOTGradient", "MinNormResult", "PGD", "CarliniWagner", "Boundary", "RobustAccuracy",
    "project", "truncate_l2", "project_l1_ball", "perturbation_norm", "margin", "smoothed_predict", "eot_gradient",
    "pgd", "projected_gradient_ascent", "carlini_wagner_l2", "boundary_attack", "robust_accuracy",
]
