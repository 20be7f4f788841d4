"""Regenerate the reproduction report of Li, Chen, Wang & Carin (NeurIPS 2019) in one command.

    python scripts/reproduce                  # mnist5k, full run (about half an hour on 2 shared CPU cores)
    python scripts/reproduce --quick          # mnist5k, smoke run (a few minutes), figures in runs/
    python scripts/reproduce --dataset cifar10 --data-root DIR   # the real CIFAR-10 files (a GPU is advised)

What it makes, in ``--out`` (default ``docs/reproduction/``, committed next to
``docs/reproduction.md``; with ``--quick`` ``<work>/figures``), ``<dataset>`` being the file prefix,
e.g. ``mnist5k``; every PNG is a small palette image:

``<dataset>_fig1_certified.png``
    The paper's Figure 1: certified accuracy against the l2 radius, one panel per sigma, for
    the STN model (stability training with noise) and for Gaussian data augmentation ("no
    stability training"), both with the Renyi bound, and the PixelDP bound (and Cohen et al.'s, for
    reference) computed from the STN model's counts; and the paper's empirical baseline, the
    accuracy of a TRADES model (Zhang et al. 2019) under white-box PGD-l2 (no certificate).
``<dataset>_fig2_attacks.png``
    The paper's Figure 2: robust accuracy of the smoothed STN model (sigma = main sigma) against
    white-box PGD with expectation over transformation (l2 and l_inf) and C&W (l2), against
    transfer attacks crafted on the undefended model and on a PGD adversarially trained model
    (Madry et al. 2018; the paper's black-box source), and the same for the TRADES model (white
    box, and transfer from PGD-AT), next to the undefended model itself.
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

Table 1 also quotes Wong et al. (NeurIPS 2018; single model and cascade) from the paper's Table 1,
marked as quoted: their convex-relaxation training is not re-run. The PGD-AT and TRADES models
train fewer epochs (``--adv-epochs``) with a 10-step training attack instead of the published 40:
each of their epochs costs about steps + 1 plain epochs.

Models are trained with :func:`renyi_cert_torch.train.train` and cached under
``--work/ckpt`` (reused when the saved config equals the requested one); the Monte Carlo counts
and attack results are cached under ``--work/cache`` keyed by the settings and the checkpoint's
SHA-256 (``--fresh`` ignores the result cache; delete the work folder to retrain). Generated
checkpoints are not meant to be committed (``runs/`` is ignored by git).

Certification uses the sound two-sample-set procedure of Cohen et al. (class selected on n0 noisy
samples, Clopper-Pearson bounds with a Bonferroni correction on n fresh ones) at alpha = 0.001,
and also at the paper's alpha = 0.05; the paper's own variant (one sample set for selection and
estimation, biased, so without the 1 - alpha guarantee) is reported from the same estimation
counts. With n samples, Bonferroni
Clopper-Pearson caps p1_lower at (alpha/2)^(1/n), which caps every radius; the caps are reported.

Modules, in the order a run uses them: :mod:`.plan` (settings, command line, stage seeds),
:mod:`.cache` (result cache, stage times), :mod:`.context` (the run's shared state),
:mod:`.models`, :mod:`.certification` (Figure 1, Table 1), :mod:`.attacks` (Figures 2, 3),
:mod:`.crosscheck`, :mod:`.figures`, :mod:`.report`, and :mod:`.pipeline` (``main``).
"""

from .pipeline import main

__all__ = ["main"]
