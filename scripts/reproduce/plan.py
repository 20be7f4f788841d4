"""The settings of one reproduction run: the plan, its command line, and the seed of each stage."""

from __future__ import annotations

import argparse
import math
import zlib
from dataclasses import dataclass, replace

from renyi_cert.seeds import derive_seed

PROG = "python scripts/reproduce"


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
    quoted: tuple            # Table 1 rows quoted from the papers, not re-run: (label, certified %, natural %)
    epochs: int
    max_train: int | None
    adv_epochs: int          # PGD-AT and TRADES: epochs, training examples and training-attack steps (fewer
    adv_max_train: int | None  # than for the other models: an epoch costs about steps + 1 plain epochs)
    adv_attack_steps: int
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

    @property
    def tag(self) -> str:
        """The run's name: the dataset, with ``-quick`` for a smoke run."""
        return self.dataset + ("-quick" if self.quick else "")

    @property
    def command(self) -> str:
        """The command line that makes this plan's report (without overriding flags)."""
        return PROG + (f" --dataset {self.dataset}" if self.dataset != "mnist5k" else "") \
            + (" --quick" if self.quick else "")


# Wong, Schmidt, Metzen & Kolter (NeurIPS 2018, "Scaling provable adversarial defenses") as quoted in Table 1
# of Li et al. (2019): certified accuracy at the table's radius and natural accuracy, in percent. Their
# convex-relaxation training is not re-run here.
WONG_MNIST = (("Wong et al. 2018, single model", 43.5, 88.2), ("Wong et al. 2018, cascade", 74.6, 81.4))
WONG_CIFAR10 = (("Wong et al. 2018, single model", 53.0, 61.2), ("Wong et al. 2018, cascade", 58.7, 68.8))

PAPER = {
    "mnist5k": dict(main_sigma=0.7, table_radius=1.58, paper_certified=69.0, paper_natural=98.9,
                    paper_setup="full MNIST: 60,000 training / 10,000 test digits", headline_radius=1.4,
                    paper_headline="≥ 51 %", quoted=WONG_MNIST),
    "mnist": dict(main_sigma=0.7, table_radius=1.58, paper_certified=69.0, paper_natural=98.9,
                  paper_setup="full MNIST: 60,000 training / 10,000 test digits", headline_radius=1.4,
                  paper_headline="≥ 51 %", quoted=WONG_MNIST),
    "cifar10": dict(main_sigma=100 / 255, table_radius=36 / 255, paper_certified=65.6, paper_natural=80.5,
                    paper_setup="full CIFAR-10: 50,000 training / 10,000 test images", headline_radius=None,
                    paper_headline="", quoted=WONG_CIFAR10),
}


ADV_EPOCHS = 3  # mnist5k: PGD-AT and TRADES epochs of a full run (see docs/reproduction.md for the budget)


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
        return Plan(dataset=dataset, quick=True, sigmas=sigmas, **paper, epochs=2, max_train=2000, adv_epochs=1,
                    adv_max_train=256, adv_attack_steps=2, batch_size=128, seed=0, test_skip=50, table_examples=20, fig1_examples=20, n0=32, n_fig1=200, n_table=500,
                    alpha=0.001, paper_alpha=0.05, attack_examples=10, pgd_steps=5, eot=2, votes=20,
                    rejudge_votes=200, cw_search=2, cw_steps=10, cw_lr=0.1, cw_kappa=2.0, l2_eps=l2_eps,
                    linf_eps=linf_eps, linf_unit=linf_unit, fig4_resolution=200, cert_batch=500)
    return Plan(dataset=dataset, quick=False, sigmas=sigmas, **paper, epochs=6 if mnist else 20, max_train=None,
                adv_epochs=ADV_EPOCHS if mnist else 20, adv_max_train=None, adv_attack_steps=10, batch_size=128, seed=0, test_skip=10, table_examples=100, fig1_examples=50, n0=100, n_fig1=500,
                n_table=3000, alpha=0.001, paper_alpha=0.05, attack_examples=40, pgd_steps=10, eot=4, votes=50,
                rejudge_votes=1000, cw_search=4, cw_steps=25, cw_lr=0.1, cw_kappa=2.0, l2_eps=l2_eps,
                linf_eps=linf_eps, linf_unit=linf_unit, fig4_resolution=500, cert_batch=500)


def stage_seed(plan: Plan, *parts) -> int:
    """A 63-bit seed from the run seed and a stage description (stable across runs and machines).

    Each part is hashed by its text (CRC-32), so a stage name such as ``"fig1-stn-sigma0.7"``
    names its random stream.
    """
    return derive_seed(int(plan.seed), *(zlib.crc32(str(p).encode()) for p in parts))


# -------------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    """The command line (``python scripts/reproduce --help``)."""
    p = argparse.ArgumentParser(prog=PROG,
                                description="Regenerate the reproduction report (Figures 1-4, Table 1, cross-check).")
    p.add_argument("--dataset", default="mnist5k", choices=("mnist5k", "mnist", "cifar10"))
    p.add_argument("--data-root", default=None, help="folder with MNIST/raw or cifar-10-batches-py (default ./data)")
    p.add_argument("--quick", action="store_true", help="tiny settings (a few minutes); figures go to the work folder")
    p.add_argument("--out", default=None,
                   help="folder for the PNGs and the markdown (default docs/reproduction; with --quick "
                        "<work>/figures)")
    p.add_argument("--work", default=None,
                   help="folder for checkpoints and cached results (default runs/reproduce/<dataset>[-quick])")
    p.add_argument("--fresh", action="store_true", help="recompute every result (checkpoints are still reused)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (overrides the plan)")
    p.add_argument("--max-train", type=int, default=None,
                   help="train on the first N training examples (PGD-AT and TRADES: at most N)")
    p.add_argument("--adv-epochs", type=int, default=None, help="PGD-AT and TRADES training epochs")
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
    p.add_argument("--nproc", type=int, default=None, metavar="N",
                   help="draw the certification stages' Monte Carlo counts on N local workers (torch.distributed; "
                        "each example then has its own seed, so the counts are the same for any N, but not those "
                        "of a run without --nproc, whose examples share one noise stream)")
    p.add_argument("--no-progress", action="store_true")
    return p


def check_positive(parser: argparse.ArgumentParser, name: str, value, minimum: int = 1):
    """``value`` unless it is below ``minimum`` (then a usage error naming ``--name``)."""
    if value is not None and value < minimum:
        parser.error(f"--{name} ({value}) must be an integer >= {minimum}")
    return value


def _parse_sigmas(parser: argparse.ArgumentParser, text: str, main_sigma: float) -> tuple:
    try:
        sigmas = tuple(float(s) for s in text.split(","))
    except ValueError:
        parser.error(f"--sigmas ({text!r}) must be comma-separated numbers")
    if not sigmas or any(not (math.isfinite(s) and s > 0) for s in sigmas):
        parser.error(f"--sigmas ({text!r}) must be finite numbers > 0")
    if not any(math.isclose(s, main_sigma, rel_tol=1e-9) for s in sigmas):
        sigmas = tuple(sorted(sigmas + (main_sigma,)))
    return sigmas


def make_plan(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Plan:
    """The default plan of ``args.dataset`` with the command line's overrides (usage errors exit 2)."""
    plan = default_plan(args.dataset, args.quick)
    changes = {}
    for flag, field_name in [("epochs", "epochs"), ("max_train", "max_train"), ("adv_epochs", "adv_epochs"),
                             ("n", "n_table"),
                             ("n_fig1", "n_fig1"), ("n0", "n0"), ("attack_examples", "attack_examples")]:
        v = check_positive(parser, flag.replace("_", "-"), getattr(args, flag))
        if v is not None:
            changes[field_name] = v
    if args.seed is not None:
        changes["seed"] = check_positive(parser, "seed", args.seed, minimum=0)
    if args.max_test is not None:
        m = check_positive(parser, "max-test", args.max_test)
        changes["table_examples"] = m
        changes["fig1_examples"] = min(plan.fig1_examples, m)
        changes["attack_examples"] = min(changes.get("attack_examples", plan.attack_examples), m)
    if args.sigmas is not None:
        changes["sigmas"] = _parse_sigmas(parser, args.sigmas, plan.main_sigma)
    if "max_train" in changes:
        cap = changes["max_train"]
        changes["adv_max_train"] = cap if plan.adv_max_train is None else min(plan.adv_max_train, cap)
    plan = replace(plan, **changes)
    if plan.attack_examples > plan.table_examples:
        plan = replace(plan, attack_examples=plan.table_examples)
    return plan
