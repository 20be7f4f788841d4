"""``renyi-cert attack``: robust accuracy of a smoothed classifier against empirical attacks.

Example (the paper's Figure 2 setting on the built-in mnist5k data)::

    renyi-cert attack --checkpoint runs/mnist5k-stn-sigma0.7-seed0.pt --attack pgd --norm linf \\
        --eps 0,0.1,0.2,0.3 --eot 16 --votes 100 --max 200 --out runs/attack-pgd-linf.tsv

l1 attacks on a Laplace-smoothed model (the l1 cross-check of ``certify --noise laplace``)::

    renyi-cert attack --checkpoint runs/mnist5k-gaussian-laplace-sigma0.5-seed0.pt --noise laplace \
        --norm l1 --eps 0,1,2,3,4,5 --out runs/attack-pgd-l1.tsv

For every eps it writes one TSV row (columns ``TSV_COLUMNS``) and, next to the TSV, a plot of
robust accuracy against eps (``<out stem>.png`` and ``.pdf``, like the paper's Figures 2-3).
Columns: ``attack norm eps``; ``sigma`` (scale of the judged model's noise); ``transfer`` (1 if
crafted on ``--transfer-from``) and ``source_sigma`` (noise scale the attack was crafted against); ``votes``
(judging majority vote), ``eot`` (noise draws per gradient; 0 for the gradient-free boundary
attack), ``steps``; ``n``, ``n_robust``, ``robust_accuracy``; ``clean_accuracy`` (smoothed
classifier at the clean inputs), ``base_clean_accuracy`` (base model, no noise);
``mean_perturbation_norm`` (mean ||x_eps - x|| in the attack's norm); ``seconds`` (wall time of
the whole run, the same on every row); ``noise`` and ``source_noise`` (the kinds of noise of the
judged model and of the model the attack was crafted on: gaussian, laplace or uniform; the last
columns, so the others keep their positions of earlier versions).

Noise: ``--noise`` (gaussian, laplace or uniform; default: the checkpoint's training noise, its
``noise`` entry, gaussian when it has none) is the smoothing noise of the judged model, drawn by
the judging vote and by every EOT draw of the attacks; ``--sigma`` is its scale (Gaussian sigma,
Laplace scale b, uniform half-width lambda; 0: no noise). A ``--transfer-from`` source is attacked
under its own checkpoint's kind of noise, at ``--source-sigma`` or its checkpoint's sigma.

Norms: ``--attack pgd`` takes ``--norm linf`` (default), ``l2`` or ``l1`` (the sparse l1 steps of
Tramer & Boneh 2019 and the exact projection onto the l1 ball; ``--l1-quantile`` sets the fraction
of coordinates each step leaves still, 0.99 by default); ``cw`` and ``boundary`` are l2 attacks.
Default sizes: l_inf ``0,0.1,0.2,0.3``, l2 ``0,0.5,1,1.5,2,2.5,3``, l1 ``0,1,2,3,4,5`` (in [0, 1]
pixel units, summed over the pixels: an l1 size of 5 moves e.g. 5 MNIST pixels from black to
white, or 20 by a quarter).
Robust accuracy is judged by the smoothed classifier (majority vote over ``--votes`` noise
draws, default 100) at the clean and at the attacked input; see
``renyi_cert_torch.attacks`` for how each attack's output becomes a point of size eps.
``--transfer-from`` crafts the attack on another checkpoint (black box; default noise level:
that checkpoint's sigma) and judges on ``--checkpoint``. Checkpoints of the empirical defences
(``renyi-cert train --mode pgd-at`` or ``--mode trades``) record sigma 0, so by default they are
attacked and judged without noise (one deterministic pass per vote, no EOT); ``--sigma`` smooths
them, and as ``--transfer-from`` sources (the paper's black-box setting uses a PGD-AT model) they
are attacked without noise.

The TSV and the plot are written atomically once the run is complete; ``--out`` is checked
before the checkpoint is read. A checkpoint whose architecture is an import path (``module:Class``)
is refused unless ``--trust-arch-import`` is given (loading it runs that module's code).

Blocks and seeds: the examples are attacked in blocks of ``--attack-batch`` examples (block ``b``
holds examples ``b*k .. b*k + k - 1``); block ``b`` draws all its randomness (attack and votes)
from a generator seeded with :func:`renyi_cert.seeds.derive_seed` ``(--seed, b)``, and from nothing
else, and the blocks' counts (robust, clean and base-clean examples, sum of perturbation norms per
eps) are added up in block order. So the TSV (every column but ``seconds``) does not depend on
which blocks ran before, on which worker ran them, or on how many workers there were. (Runs before
this scheme drew every block from one generator seeded with ``--seed``, so their numbers differ
slightly from today's at the same seed.)

Many processes: under ``torchrun`` (``torchrun --nproc_per_node N -m renyi_cert_torch.cli -- attack
...``; the ``--`` keeps torchrun's parser off the command's flags) or with ``--nproc N`` (which
starts N workers on this machine through torch's elastic launcher; ``--nproc 1`` is a plain run),
every worker takes the next block as it becomes free (:class:`renyi_cert_torch.distributed.WorkQueue`)
and hands its counts to rank 0, which shows the progress and writes the TSV and the plot (no other
worker touches ``--out``). Each worker computes on its own GPU (``cuda:LOCAL_RANK``) on CUDA. An
error met by any worker (a bad checkpoint, missing data, workers started with other settings) stops
every worker with the same message; more workers than blocks is an error. ``--timeout`` bounds
every wait for another worker, including rank 0's wait for the next block's result (raise it for
blocks that take longer than that).

Exit status: 0 on success; 2 for an invalid flag (the message names the flag and its value), an
unwritable ``--out``, an unreadable checkpoint, a model that returns non-finite logits, more
workers than blocks or workers that disagree; 1 when the dataset's files are missing; 130 on
Ctrl-C (no output file is left half-written).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from renyi_cert._cli import interruptible, parse_choice, parse_float_list, parse_int, parse_real
from renyi_cert._figures import finish_accuracy_axes, new_figure, save_png_pdf
from renyi_cert._files import OutputPathError, atomic_output, check_output_path, file_sha256
from renyi_cert.noise import NOISES
from renyi_cert.seeds import derive_seed

from . import attacks
from .devices import resolve_device
from .distributed import (
    DEFAULT_TIMEOUT,
    SINGLE,
    DistributedError,
    RowCollector,
    WorkQueue,
    Workers,
    check_same,
    finish_together,
    gather,
    join,
    launched,
    leave,
    post_row,
    stop_on_sigterm,
)
from .launch import launch, strip_separator, without_nproc

__all__ = ["PROG", "DEFAULT_EPS", "DEFAULT_STEPS", "TSV_COLUMNS", "write_tsv", "plot_robust_accuracy", "main"]

PROG = "renyi-cert attack"
DEFAULT_EPS = {"linf": "0,0.1,0.2,0.3", "l2": "0,0.5,1,1.5,2,2.5,3", "l1": "0,1,2,3,4,5"}
DEFAULT_STEPS = {"pgd": 40, "cw": 100, "boundary": 1000}
TSV_COLUMNS = ("attack", "norm", "eps", "sigma", "transfer", "source_sigma", "votes", "eot", "steps", "n",
               "n_robust", "robust_accuracy", "clean_accuracy", "base_clean_accuracy", "mean_perturbation_norm",
               "seconds", "noise", "source_noise")
#: How the plots name the norms.
NORM_LABELS = {"linf": "ℓ∞", "l2": "ℓ2", "l1": "ℓ1"}
#: How the plots' legends name each noise's scale.
SCALE_SYMBOLS = {"gaussian": "σ", "laplace": "b", "uniform": "λ"}


INTERRUPT_NOTE = "no output file is left half-written (results are written when the run completes)"


class _FlagError(Exception):
    """A flag value that failed validation (reported with exit status 2)."""


class _Stop(Exception):
    """An error that ends the run with exit status ``status`` (after the usage line when ``usage``)."""

    def __init__(self, message: str, status: int = 2, usage: bool = False) -> None:
        super().__init__(message)
        self.status, self.usage = status, usage


def _build_parser() -> argparse.ArgumentParser:
    """The parser: every value is kept as text and checked by :func:`_parse` (see the module docstring)."""
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Robust accuracy of the smoothed (noisy) classifier against PGD, Carlini-Wagner or "
                    "Boundary attacks at several attack sizes; writes a TSV and a plot.")
    p.add_argument("--checkpoint", required=True, help="model to attack and judge (a renyi_cert checkpoint)")
    p.add_argument("--trust-arch-import", action="store_true",
                   help="load checkpoints (--checkpoint, --transfer-from) whose architecture is an import path "
                        "(module:Class): this imports and runs that module's code, so use it only for checkpoints "
                        "you trust (default: refuse)")
    p.add_argument("--transfer-from", default=None, metavar="PATH",
                   help="craft the attack on this checkpoint instead (black-box transfer)")
    p.add_argument("--source-sigma", default=None,
                   help="noise level the transferred attack is crafted against (default: that checkpoint's sigma)")
    p.add_argument("--dataset", default=None, help="mnist, mnist5k or cifar10 (default: the checkpoint's)")
    p.add_argument("--split", default="test", help="train or test (default test)")
    p.add_argument("--data-root", default=None, help="folder with MNIST/raw or cifar-10-batches-py (default ./data)")
    p.add_argument("--attack", default="pgd", help="pgd, cw or boundary (default pgd)")
    p.add_argument("--norm", default=None,
                   help="linf, l2 or l1 (default linf for pgd; l1 for pgd only; cw and boundary are l2)")
    p.add_argument("--eps", default=None,
                   help=f"comma-separated attack sizes (default {DEFAULT_EPS['linf']} for linf, "
                        f"{DEFAULT_EPS['l2']} for l2, {DEFAULT_EPS['l1']} for l1)")
    p.add_argument("--l1-quantile", default=None,
                   help="pgd-l1: each step moves the coordinates whose |gradient| is at or above this quantile "
                        f"(in [0, 1); default {attacks.DEFAULT_L1_QUANTILE:g}: the top 1 %%)")
    p.add_argument("--steps", default=None,
                   help="iterations (default: pgd 40, cw 100 per binary-search round, boundary 1000)")
    p.add_argument("--step-size", default=None,
                   help="pgd: step size (default 2.5*eps/steps); cw: Adam learning rate (default 0.05)")
    p.add_argument("--loss", default="ce", help="pgd loss: ce or margin (default ce)")
    p.add_argument("--no-random-start", action="store_true", help="pgd: start at x instead of a random point")
    p.add_argument("--kappa", default="0", help="cw confidence (default 0)")
    p.add_argument("--binary-search-steps", default="5", help="cw rounds of the binary search over c (default 5)")
    p.add_argument("--query-votes", default="25", help="boundary: noise draws per decision query (default 25)")
    p.add_argument("--eot", default=None,
                   help=f"noise draws per gradient (default {attacks.DEFAULT_EOT} when the attacked model is noisy, "
                        "else 1)")
    p.add_argument("--votes", default=str(attacks.DEFAULT_VOTES),
                   help=f"noise draws of the judging majority vote (default {attacks.DEFAULT_VOTES})")
    p.add_argument("--noise", default=None,
                   help=f"smoothing noise of the judged model: {', '.join(NOISES)} (default: the checkpoint's "
                        "training noise, gaussian if it names none)")
    p.add_argument("--sigma", default=None,
                   help="scale of the judged model's noise: gaussian sigma, laplace scale, uniform half-width "
                        "(default: the checkpoint's sigma; 0: no noise)")
    p.add_argument("--max", default=None, help="attack only the first N examples of the split")
    p.add_argument("--seed", default="0", help="seed of all attack and vote randomness (default 0)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    p.add_argument("--batch-size", default=str(attacks.DEFAULT_BATCH_SIZE),
                   help=f"images per forward pass (default {attacks.DEFAULT_BATCH_SIZE})")
    p.add_argument("--attack-batch", default="100", help="examples attacked together (default 100)")
    p.add_argument("--out", default=None, help="TSV path (default runs/attack-<attack>-<norm>-sigma<sigma>.tsv); "
                                               "the plot goes next to it")
    p.add_argument("--force", action="store_true", help="overwrite an existing --out (refused without it)")
    p.add_argument("--no-plot", action="store_true", help="do not write the PNG/PDF plot")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = p.add_argument_group(
        "many processes", "under torchrun (torchrun --nproc_per_node N -m renyi_cert_torch.cli -- attack ...) or "
        "with --nproc, the blocks of --attack-batch examples are shared out over the workers as they become free "
        "and rank 0 writes the TSV and the plot; the results are the same as a single process's")
    g.add_argument("--nproc", default=None, metavar="N",
                   help="start N workers on this machine (torch's elastic launcher, one CPU thread or one GPU each)")
    g.add_argument("--timeout", default=None, metavar="SECONDS",
                   help="longest wait for another worker, including rank 0's wait for the next block's result, "
                        f"before the run stops (default {DEFAULT_TIMEOUT:g})")
    return p


# ------------------------------------------------------------------------------------ flag parsing


def _optional(parse, flag: str, text, *args, **kwargs):
    """``parse(flag, text, ...)``, or None when the flag was not given."""
    return None if text is None else parse(flag, text, *args, **kwargs)


def _attack_flags(args) -> dict:
    """The attack, its norm, sizes and parameters (ValueError naming the flag)."""
    s = {"attack": parse_choice("--attack", args.attack, attacks.ATTACKS)}
    norm = args.norm if args.norm is not None else ("linf" if s["attack"] == "pgd" else "l2")
    s["norm"] = parse_choice("--norm", norm, attacks.PGD_NORMS)
    if s["attack"] != "pgd" and s["norm"] != "l2":
        raise ValueError(f"--norm ({s['norm']!r}) must be l2 for --attack {s['attack']} (an l2 attack)")
    eps = args.eps if args.eps is not None else DEFAULT_EPS[s["norm"]]
    s["eps"] = parse_float_list("--eps", eps, 0.0, example="0,0.1,0.2,0.3")
    s["steps"] = DEFAULT_STEPS[s["attack"]] if args.steps is None else parse_int("--steps", args.steps)
    if args.step_size is not None and s["attack"] == "boundary":
        raise ValueError(f"--step-size ({args.step_size!r}) applies to pgd and cw only, not to boundary")
    s["step_size"] = _optional(parse_real, "--step-size", args.step_size, 0.0, strict=True)
    s["loss"] = parse_choice("--loss", args.loss, attacks.LOSSES)
    s["kappa"] = parse_real("--kappa", args.kappa, 0.0)
    s["binary_search_steps"] = parse_int("--binary-search-steps", args.binary_search_steps)
    s["query_votes"] = parse_int("--query-votes", args.query_votes)
    s["eot"] = _optional(parse_int, "--eot", args.eot)
    s["l1_quantile"] = _l1_quantile(args, s)
    return s


def _l1_quantile(args, s: dict) -> float:
    """``--l1-quantile`` (in [0, 1); only with ``--attack pgd --norm l1``), or its default."""
    if args.l1_quantile is None:
        return attacks.DEFAULT_L1_QUANTILE
    if (s["attack"], s["norm"]) != ("pgd", "l1"):
        raise ValueError(f"--l1-quantile ({args.l1_quantile!r}) applies to --attack pgd --norm l1 only, "
                         f"not to --attack {s['attack']} --norm {s['norm']}")
    q = parse_real("--l1-quantile", args.l1_quantile, 0.0)
    if q >= 1.0:
        raise ValueError(f"--l1-quantile ({args.l1_quantile!r}) must be < 1 (a quantile in [0, 1) of |gradient|)")
    return q


def _run_flags(args) -> dict:
    """Noise levels, votes, data and batching (ValueError naming the flag)."""
    s = {"votes": parse_int("--votes", args.votes),
         "noise": _optional(parse_choice, "--noise", args.noise, tuple(NOISES)),
         "sigma": _optional(parse_real, "--sigma", args.sigma, 0.0),
         "source_sigma": _optional(parse_real, "--source-sigma", args.source_sigma, 0.0)}
    if s["source_sigma"] is not None and args.transfer_from is None:
        raise ValueError(f"--source-sigma ({args.source_sigma!r}) needs --transfer-from")
    s["max"] = _optional(parse_int, "--max", args.max)
    s["seed"] = parse_int("--seed", args.seed, 0)
    s["batch_size"] = parse_int("--batch-size", args.batch_size)
    s["attack_batch"] = parse_int("--attack-batch", args.attack_batch)
    s["nproc"] = _optional(parse_int, "--nproc", args.nproc)
    s["timeout"] = DEFAULT_TIMEOUT if args.timeout is None else parse_real("--timeout", args.timeout, 0.0,
                                                                           strict=True)
    parse_choice("--split", args.split, ("train", "test"))
    if args.dataset is not None:
        from .data import DATASETS
        parse_choice("--dataset", args.dataset, DATASETS)
    return s


def _parse(args) -> dict:
    """Validate every flag that does not need the checkpoint; return the settings (``--out`` is
    checked by :func:`_setup`, on rank 0 only)."""
    try:
        s = {**_attack_flags(args), **_run_flags(args)}
    except ValueError as exc:
        raise _FlagError(str(exc)) from None
    s["device"] = _resolve_device(args.device)
    return s


def _resolve_device(text: str) -> torch.device:
    try:
        return resolve_device(text)
    except ValueError as exc:
        raise _FlagError(f"--device: {exc}") from None


def _check_out(path, force: bool) -> Path:
    """``--out`` (and the plot beside it) can be written, and exists only with ``--force``."""
    try:
        return check_output_path(path, name="--out", overwrite=force)
    except OutputPathError as exc:
        hint = "; use --force to overwrite it" if Path(path).is_file() else ""
        raise _FlagError(f"{exc}{hint}") from None


def _load(flag: str, path: str, device, trust_arch_import: bool = False):
    from .train import load_checkpoint
    try:
        model, cfg = load_checkpoint(path, map_location=device, trust_arch_import=trust_arch_import)
    except (FileNotFoundError, ValueError) as exc:
        raise _FlagError(f"{flag} ({path!r}): {exc}") from None
    return model, cfg


def _config_sigma(flag: str, cfg: dict) -> float:
    v = cfg.get("sigma", 0.0)
    try:
        v = float(v if v is not None else 0.0)
    except (TypeError, ValueError):
        raise _FlagError(f"{flag}: the checkpoint's sigma ({v!r}) is not a number; pass --sigma") from None
    if not math.isfinite(v) or v < 0:
        raise _FlagError(f"{flag}: the checkpoint's sigma ({v!r}) must be finite and >= 0; pass --sigma")
    return v


def _config_noise(flag: str, cfg: dict) -> str:
    """The checkpoint's kind of training noise (its ``noise`` entry; gaussian when it has none)."""
    name = cfg.get("noise") or "gaussian"
    if name not in NOISES:
        raise _FlagError(f"{flag}: the checkpoint's noise ({name!r}) must be one of {', '.join(NOISES)}; "
                         "pass --noise")
    return name


def _noise(name: str, scale: float):
    """What the attacks take for ``sigma``: the float scale for Gaussian noise (or no noise), else the noise."""
    return scale if name == "gaussian" or scale == 0.0 else NOISES[name](scale)


@dataclass
class _Setup:
    """Everything a run needs once its flags and checkpoints are checked."""

    s: dict
    model: torch.nn.Module
    sigma: float
    source_model: torch.nn.Module | None
    source_sigma: float | None
    dataset: str
    out: Path
    noise: str = "gaussian"               # the judged model's kind of noise (sigma is its scale)
    source_noise: str | None = None       # the --transfer-from model's kind of noise

    @property
    def attacked_noise(self) -> str:
        """The kind of noise of the model the attack is crafted on."""
        return self.noise if self.source_noise is None else self.source_noise


def _setup(args, s: dict, workers: Workers = SINGLE) -> _Setup:
    """Checkpoint(s), dataset name and ``--out`` (``_FlagError`` for anything wrong); ``s`` holds the
    parsed flags. Only the main worker checks ``--out``, before it reads the checkpoint."""
    if workers.is_main and args.out is not None:
        _check_out(args.out, args.force)
    model, cfg = _load("--checkpoint", args.checkpoint, s["device"], args.trust_arch_import)
    sigma = s["sigma"] if s["sigma"] is not None else _config_sigma("--checkpoint", cfg)
    noise = s["noise"] if s["noise"] is not None else _config_noise("--checkpoint", cfg)
    source_model, source_sigma, source_noise = None, None, None
    if args.transfer_from is not None:
        source_model, scfg = _load("--transfer-from", args.transfer_from, s["device"], args.trust_arch_import)
        source_sigma = s["source_sigma"] if s["source_sigma"] is not None else _config_sigma("--transfer-from", scfg)
        source_noise = _config_noise("--transfer-from", scfg)
    dataset = args.dataset if args.dataset is not None else cfg.get("dataset")
    if dataset is None:
        raise _FlagError(f"--checkpoint ({args.checkpoint!r}) does not name its dataset; pass --dataset")
    from .data import DATASETS
    try:
        parse_choice("--dataset", dataset, DATASETS)
    except ValueError as exc:
        raise _FlagError(str(exc)) from None
    if args.out is not None:
        out = Path(args.out)
    else:
        kind = "" if noise == "gaussian" else f"{noise}-"
        out = Path("runs") / f"attack-{s['attack']}-{s['norm']}-{kind}sigma{sigma:g}.tsv"
        if workers.is_main:
            out = _check_out(out, args.force)
    return _Setup(s, model, sigma, source_model, source_sigma, dataset, out, noise, source_noise)


def _attack_config(setup: _Setup, args, eot: int):
    """The attack's settings object (:class:`attacks.PGD`, :class:`attacks.CarliniWagner` or
    :class:`attacks.Boundary`)."""
    s = setup.s
    if s["attack"] == "pgd":
        return attacks.PGD(norm=s["norm"], steps=s["steps"], step_size=s["step_size"],
                           random_start=not args.no_random_start, loss=s["loss"], eot=eot,
                           l1_quantile=s["l1_quantile"])
    if s["attack"] == "cw":
        return attacks.CarliniWagner(kappa=s["kappa"], steps=s["steps"], binary_search_steps=s["binary_search_steps"],
                                     lr=s["step_size"] if s["step_size"] is not None else 0.05, eot=eot)
    return attacks.Boundary(steps=s["steps"], query_votes=s["query_votes"])


# ------------------------------------------------------------------------------------ output


def write_tsv(path, rows) -> None:
    """Write result rows (dicts with the keys of ``TSV_COLUMNS``) as a tab-separated table, atomically."""
    with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write("\t".join(TSV_COLUMNS) + "\n")
        for r in rows:
            f.write("\t".join(_fmt(r[c]) for c in TSV_COLUMNS) + "\n")


def _fmt(v) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _rows(results, setup: _Setup, eot: int, seconds: float) -> list[dict]:
    """One TSV row (a dict keyed by ``TSV_COLUMNS``) per attack size."""
    return [{
        "attack": r.attack, "norm": r.norm, "eps": r.eps, "sigma": r.sigma, "transfer": r.transfer,
        "source_sigma": r.source_sigma, "votes": r.votes, "eot": eot if r.attack != "boundary" else 0,
        "steps": setup.s["steps"], "n": r.n, "n_robust": r.n_robust, "robust_accuracy": r.robust_accuracy,
        "clean_accuracy": r.clean_accuracy, "base_clean_accuracy": r.base_clean_accuracy,
        "mean_perturbation_norm": r.mean_perturbation_norm, "seconds": seconds,
        "noise": setup.noise, "source_noise": setup.attacked_noise,
    } for r in results]


def _print_rows(rows: Sequence[dict], results, votes: int, seconds: float) -> None:
    print("\t".join(("eps", "robust_accuracy", "n_robust", "n")))
    for r in rows:
        print(f"{r['eps']:g}\t{r['robust_accuracy']:.4f}\t{r['n_robust']}\t{r['n']}")
    judge = f"smoothed, {votes} votes" if results[0].sigma > 0 else "sigma 0: the model's own prediction"
    print(f"clean accuracy ({judge}): {results[0].clean_accuracy:.4f}; "
          f"base model without noise: {results[0].base_clean_accuracy:.4f}; {seconds:.1f} s")


def plot_robust_accuracy(rows, out_stem, *, label: str, title: str | None = None) -> tuple[str, str]:
    """Robust accuracy against eps (the paper's Figures 2-3 style); writes ``<out_stem>.png`` and ``.pdf``
    (each atomically).

    Uses matplotlib's object-oriented API with the Agg canvas (no pyplot, no display needed).
    """
    pts = sorted((r["eps"], r["robust_accuracy"]) for r in rows)
    fig = new_figure((6.0, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=label)
    norm = rows[0]["norm"]
    ax.set_xlabel(f"attack size eps ({NORM_LABELS.get(norm, norm)}, [0,1] pixel units)")
    ax.set_ylabel("robust accuracy (smoothed classifier)")
    finish_accuracy_axes(fig, ax, title=title)
    return save_png_pdf(fig, out_stem)


def _plot(rows, setup: _Setup, split: str, n: int) -> tuple[str, str]:
    s, sigma = setup.s, setup.sigma
    label = f"{s['attack']}-{s['norm']}, {_scale_label(setup.noise, sigma)}"
    if setup.source_model is not None:
        label += f" (transfer from {_scale_label(setup.attacked_noise, setup.source_sigma)})"
    stem = setup.out.with_suffix("") if setup.out.suffix else setup.out
    judge = f"{s['votes']} votes" if sigma > 0 else "no noise"
    return plot_robust_accuracy(rows, stem, label=label, title=f"{setup.dataset} {split}, n = {n}, {judge}")


def _scale_label(noise: str, scale: float) -> str:
    """``σ = 0.5`` for Gaussian noise, ``laplace b = 0.5`` or ``uniform λ = 0.5`` for the others."""
    prefix = "" if noise == "gaussian" else f"{noise} "
    return f"{prefix}{SCALE_SYMBOLS[noise]} = {scale:g}"


# ------------------------------------------------------------------------------------ main


def _eot(setup: _Setup) -> int:
    """``--eot``, or its default: :data:`attacks.DEFAULT_EOT` when the attacked model is noisy, else 1."""
    attacked_sigma = setup.source_sigma if setup.source_model is not None else setup.sigma
    return setup.s["eot"] if setup.s["eot"] is not None else (attacks.DEFAULT_EOT if attacked_sigma > 0 else 1)


def _blocks(n: int, size: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of the blocks of ``size`` examples of ``n`` (the last may be shorter)."""
    return [(start, min(start + size, n)) for start in range(0, n, size)]


def _attack_block(setup: _Setup, attack, x: torch.Tensor, y: torch.Tensor, block: int, start: int,
                  stop: int) -> list[dict]:
    """Attack and judge the examples ``start .. stop - 1`` (block ``block``) with the block's own
    generator; their :class:`attacks.RobustAccuracy` per eps, as dicts."""
    s = setup.s
    generator = torch.Generator(device=s["device"]).manual_seed(derive_seed(s["seed"], block))
    source_sigma = None if setup.source_sigma is None else _noise(setup.attacked_noise, setup.source_sigma)
    results = attacks.robust_accuracy(setup.model, x[start:stop].to(s["device"]), y[start:stop].to(s["device"]),
                                      _noise(setup.noise, setup.sigma), attack=attack, eps_list=s["eps"],
                                      votes=s["votes"], source_model=setup.source_model, source_sigma=source_sigma,
                                      generator=generator, attack_batch=s["attack_batch"],
                                      batch_size=s["batch_size"], progress=False)
    return [dataclasses.asdict(r) for r in results]


def _combine(blocks: Sequence[list[dict]]) -> tuple[attacks.RobustAccuracy, ...]:
    """One :class:`attacks.RobustAccuracy` per eps from the blocks' (in block order): the counts of
    robust, clean and base-clean examples and the perturbation norms (mean times n) added up."""
    out = []
    for i, first in enumerate(blocks[0]):
        n = n_robust = clean = base = 0
        norm_sum = 0.0
        for block in blocks:
            r = block[i]
            n += r["n"]
            n_robust += r["n_robust"]
            clean += round(r["clean_accuracy"] * r["n"])
            base += round(r["base_clean_accuracy"] * r["n"])
            norm_sum += r["mean_perturbation_norm"] * r["n"]
        out.append(attacks.RobustAccuracy(**{
            **first, "n": n, "n_robust": n_robust, "robust_accuracy": n_robust / n, "clean_accuracy": clean / n,
            "base_clean_accuracy": base / n, "mean_perturbation_norm": norm_sum / n}))
    return tuple(out)


class _Once(logging.Filter):
    """Lets each distinct log message through once."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message in self.seen:
            return False
        self.seen.add(message)
        return True


def _attack_blocks(args, setup: _Setup, attack, x: torch.Tensor, y: torch.Tensor,
                   workers: Workers) -> list[list[dict]] | None:
    """Attack every block, taking them from a shared queue; on rank 0 the results of all the blocks,
    in block order (None on the other workers).

    Each worker posts one record per block it takes (its results, or its error, or -- once it has
    met an error -- a mere "skipped", so that the queue drains at once); rank 0 collects them as
    they arrive and shows the progress. The error of the first block that failed, on any worker,
    is then raised on every worker.
    """
    from tqdm.auto import tqdm

    s = setup.s
    blocks = _blocks(len(x), s["attack_batch"])
    records: dict[int, dict] = {}
    bar = tqdm(total=len(blocks), desc=f"{s['attack']}-{s['norm']}", unit="block", file=sys.stderr,
               disable=args.no_progress or not workers.is_main, dynamic_ncols=True)

    def keep(text: str) -> None:
        record = json.loads(text)
        records[record["block"]] = record
        bar.update(1)

    collector = (RowCollector(workers, len(blocks), keep, stalled="nothing was written")
                 if workers.distributed and workers.is_main else None)
    error = None
    once = _Once()
    log = logging.getLogger(attacks.evaluate.__name__)  # its warnings would come once per block
    log.addFilter(once)
    try:
        for b in WorkQueue(workers, len(blocks)):
            record: dict = {"block": b}
            if error is None:
                start, stop = blocks[b]
                try:
                    record["results"] = _attack_block(setup, attack, x, y, b, start, stop)
                except ValueError as exc:
                    error = (b, f"block {b} of {len(blocks)} (examples {start}..{stop - 1}; the message counts them "
                                f"from 0): {exc}")
                    if not workers.distributed:
                        raise _Stop(error[1]) from None
                    record["error"] = error[1]
            if workers.distributed:
                post_row(workers, json.dumps(record))
            else:
                keep(json.dumps(record))
        if collector is not None:
            collector.finish()
    except BaseException:
        if collector is not None:
            collector.abandon()
        raise
    finally:
        log.removeFilter(once)
        bar.close()
    failed = [(theirs, rank) for rank, theirs in enumerate(gather(workers, error)) if theirs is not None]
    if failed:  # the first block that failed, on every worker
        (_, message), rank = min(failed)
        raise _Stop(message if rank == workers.rank else f"(on rank {rank}) {message}")
    return [records[b]["results"] for b in range(len(blocks))] if workers.is_main else None


def _run(args, setup: _Setup, attack, eot: int, x: torch.Tensor, y: torch.Tensor, workers: Workers = SINGLE) -> None:
    """Attack (this worker's share of the blocks); rank 0 writes the TSV, prints the table and (unless
    ``--no-plot``) writes the plot."""
    s = setup.s
    t0 = time.perf_counter()
    blocks = _attack_blocks(args, setup, attack, x, y, workers)
    if blocks is None:
        return
    results = _combine(blocks)
    seconds = time.perf_counter() - t0
    rows = _rows(results, setup, eot, seconds)
    write_tsv(setup.out, rows)
    _print_rows(rows, results, s["votes"], seconds)
    print(f"wrote {setup.out}")
    if not args.no_plot:
        png, pdf = _plot(rows, setup, args.split, len(x))
        print(f"wrote {png} and {pdf}")


def _usage_error(parser: argparse.ArgumentParser, exc: Exception) -> int:
    parser.print_usage(sys.stderr)
    print(f"{PROG}: error: {exc}", file=sys.stderr)
    return 2


def _settle(workers: Workers, error: _Stop | None) -> None:
    """Raise on every worker the error of the lowest rank that met one (naming that rank on the others)."""
    mine = None if error is None else (str(error), error.status, error.usage)
    for rank, theirs in enumerate(gather(workers, mine)):
        if theirs is not None:
            message, status, usage = theirs
            raise _Stop(message if rank == workers.rank else f"(on rank {rank}) {message}", status, usage)


def _shared_settings(args, setup: _Setup, eot: int, n: int) -> dict:
    """What every worker must agree on (:func:`renyi_cert_torch.distributed.check_same`)."""
    settings = {k: v for k, v in setup.s.items() if k not in ("device", "nproc", "timeout")}
    settings.update(sigma=setup.sigma, source_sigma=setup.source_sigma, noise_used=setup.noise,
                    source_noise_used=setup.attacked_noise, dataset=setup.dataset, split=args.split,
                    examples=n, eot_used=eot, random_start=not args.no_random_start,
                    device_type=setup.s["device"].type, checkpoint_sha256=file_sha256(args.checkpoint),
                    transfer_from_sha256=None if args.transfer_from is None else file_sha256(args.transfer_from))
    return settings


def _prepare(args, s: dict, workers: Workers):
    """Setup and data on every worker; an error on any of them is raised on all of them."""
    from .data import load_dataset

    setup, data, error = None, None, None
    try:
        setup = _setup(args, s, workers)
        data = load_dataset(setup.dataset, args.split, data_root=args.data_root)
    except _FlagError as exc:
        error = _Stop(str(exc), 2, usage=True)
    except FileNotFoundError as exc:
        error = _Stop(str(exc), 1)
    _settle(workers, error)
    assert setup is not None and data is not None
    return setup, data


def _attack_on(args, s: dict, workers: Workers) -> int:
    """The run on this worker (all of it for a single process)."""
    setup, data = _prepare(args, s, workers)
    n = len(data) if s["max"] is None else min(s["max"], len(data))
    eot = _eot(setup)
    try:
        attack = _attack_config(setup, args, eot)
    except ValueError as exc:  # pragma: no cover - flags were validated above
        raise _Stop(str(exc), 2, usage=True) from None
    if workers.distributed:
        try:
            check_same(workers, _shared_settings(args, setup, eot, n))
        except DistributedError as exc:  # raised on every worker
            raise _Stop(str(exc)) from None
    blocks = len(_blocks(n, s["attack_batch"]))
    if workers.world_size > blocks:
        raise _Stop(f"{workers.world_size} workers for {blocks} block(s) of --attack-batch {s['attack_batch']} "
                    f"examples ({n} examples): start at most {blocks} workers, or lower --attack-batch")
    _run(args, setup, attack, eot, data.x[:n], data.y[:n], workers)
    return 0


def _run_workers(args, parser: argparse.ArgumentParser, s: dict) -> int:
    """Join the other workers (if launched by torchrun or ``--nproc``), run, leave."""
    try:
        workers = join(s["device"].type, s["timeout"])
    except DistributedError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    try:
        if workers.distributed:
            stop_on_sigterm()
            if s["device"].type == "cuda":
                s["device"] = torch.device(f"cuda:{workers.local_rank}")
        return _attack_on(args, s, workers)
    except _Stop as exc:  # raised on every worker
        if exc.usage:
            parser.print_usage(sys.stderr)
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        finish_together(workers)
        return exc.status
    except DistributedError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    finally:
        leave()


@interruptible(PROG, INTERRUPT_NOTE)
def main(argv: Sequence[str] | None = None) -> int:
    """The ``attack`` command; returns the exit status (0 ok, 1 missing data files, 2 bad flags, 130 Ctrl-C).

    A leading ``--`` in ``argv`` is ignored (``torchrun ... -m renyi_cert_torch.cli -- attack ...``).
    """
    parser = _build_parser()
    argv = strip_separator(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or an unknown / missing flag (2)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        s = _parse(args)
        if s["nproc"] is not None:
            if launched():
                raise _FlagError("--nproc starts the workers itself; under torchrun drop it (torchrun's "
                                 "--nproc_per_node says how many)")
            if s["nproc"] > 1:
                if args.out is not None:
                    _check_out(args.out, args.force)
                return launch(s["nproc"], "attack", without_nproc(argv), prog=PROG,
                              note="no output file was written (the TSV and the plot are written when the run "
                                   "completes)")
    except _FlagError as exc:
        return _usage_error(parser, exc)
    return _run_workers(args, parser, s)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
