"""``renyi-cert attack``: robust accuracy of a smoothed classifier against empirical attacks.

Example (the paper's Figure 2 setting on the built-in mnist5k data)::

    renyi-cert attack --checkpoint runs/mnist5k-stn-sigma0.7-seed0.pt --attack pgd --norm linf \\
        --eps 0,0.1,0.2,0.3 --eot 16 --votes 100 --max 200 --out runs/attack-pgd-linf.tsv

For every eps it writes one TSV row (columns ``TSV_COLUMNS``) and, next to the TSV, a plot of
robust accuracy against eps (``<out stem>.png`` and ``.pdf``, like the paper's Figures 2-3).
Columns: ``attack norm eps``; ``sigma`` (judged model's noise); ``transfer`` (1 if crafted on
``--transfer-from``) and ``source_sigma`` (noise the attack was crafted against); ``votes``
(judging majority vote), ``eot`` (noise draws per gradient; 0 for the gradient-free boundary
attack), ``steps``; ``n``, ``n_robust``, ``robust_accuracy``; ``clean_accuracy`` (smoothed
classifier at the clean inputs), ``base_clean_accuracy`` (base model, no noise);
``mean_perturbation_norm`` (mean ||x_eps - x|| in the attack's norm); ``seconds`` (wall time of
the whole run, the same on every row).
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

Exit status: 0 on success; 2 for an invalid flag (the message names the flag and its value), an
unwritable ``--out`` or an unreadable checkpoint; 1 when the dataset's files are missing; 130 on
Ctrl-C (no output file is left half-written).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from renyi_cert._cli import interruptible, parse_choice, parse_float_list, parse_int, parse_real
from renyi_cert._figures import finish_accuracy_axes, new_figure, save_png_pdf
from renyi_cert._files import OutputPathError, atomic_output, check_output_path

from . import attacks
from .devices import resolve_device

__all__ = ["PROG", "DEFAULT_EPS", "DEFAULT_STEPS", "TSV_COLUMNS", "write_tsv", "plot_robust_accuracy", "main"]

PROG = "renyi-cert attack"
DEFAULT_EPS = {"linf": "0,0.1,0.2,0.3", "l2": "0,0.5,1,1.5,2,2.5,3"}
DEFAULT_STEPS = {"pgd": 40, "cw": 100, "boundary": 1000}
TSV_COLUMNS = ("attack", "norm", "eps", "sigma", "transfer", "source_sigma", "votes", "eot", "steps", "n",
               "n_robust", "robust_accuracy", "clean_accuracy", "base_clean_accuracy", "mean_perturbation_norm",
               "seconds")


class _FlagError(Exception):
    """A flag value that failed validation (reported with exit status 2)."""


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
    p.add_argument("--norm", default=None, help="linf or l2 (default linf for pgd; cw and boundary are l2)")
    p.add_argument("--eps", default=None,
                   help=f"comma-separated attack sizes (default {DEFAULT_EPS['linf']} for linf, "
                        f"{DEFAULT_EPS['l2']} for l2)")
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
    p.add_argument("--sigma", default=None, help="noise level of the judged model (default: the checkpoint's)")
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
    return p


# ------------------------------------------------------------------------------------ flag parsing


def _optional(parse, flag: str, text, *args, **kwargs):
    """``parse(flag, text, ...)``, or None when the flag was not given."""
    return None if text is None else parse(flag, text, *args, **kwargs)


def _attack_flags(args) -> dict:
    """The attack, its norm, sizes and parameters (ValueError naming the flag)."""
    s = {"attack": parse_choice("--attack", args.attack, attacks.ATTACKS)}
    norm = args.norm if args.norm is not None else ("linf" if s["attack"] == "pgd" else "l2")
    s["norm"] = parse_choice("--norm", norm, attacks.NORMS)
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
    return s


def _run_flags(args) -> dict:
    """Noise levels, votes, data and batching (ValueError naming the flag)."""
    s = {"votes": parse_int("--votes", args.votes),
         "sigma": _optional(parse_real, "--sigma", args.sigma, 0.0),
         "source_sigma": _optional(parse_real, "--source-sigma", args.source_sigma, 0.0)}
    if s["source_sigma"] is not None and args.transfer_from is None:
        raise ValueError(f"--source-sigma ({args.source_sigma!r}) needs --transfer-from")
    s["max"] = _optional(parse_int, "--max", args.max)
    s["seed"] = parse_int("--seed", args.seed, 0)
    s["batch_size"] = parse_int("--batch-size", args.batch_size)
    s["attack_batch"] = parse_int("--attack-batch", args.attack_batch)
    parse_choice("--split", args.split, ("train", "test"))
    if args.dataset is not None:
        from .data import DATASETS
        parse_choice("--dataset", args.dataset, DATASETS)
    return s


def _parse(args) -> dict:
    """Validate every flag that does not need the checkpoint; return the settings."""
    try:
        s = {**_attack_flags(args), **_run_flags(args)}
    except ValueError as exc:
        raise _FlagError(str(exc)) from None
    s["device"] = _resolve_device(args.device)
    if args.out is not None:
        _check_out(args.out, args.force)
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


def _setup(args) -> _Setup:
    """Flags, checkpoint(s), dataset name and ``--out`` (``_FlagError`` for anything wrong)."""
    s = _parse(args)
    model, cfg = _load("--checkpoint", args.checkpoint, s["device"], args.trust_arch_import)
    sigma = s["sigma"] if s["sigma"] is not None else _config_sigma("--checkpoint", cfg)
    source_model, source_sigma = None, None
    if args.transfer_from is not None:
        source_model, scfg = _load("--transfer-from", args.transfer_from, s["device"], args.trust_arch_import)
        source_sigma = s["source_sigma"] if s["source_sigma"] is not None else _config_sigma("--transfer-from", scfg)
    dataset = args.dataset if args.dataset is not None else cfg.get("dataset")
    if dataset is None:
        raise _FlagError(f"--checkpoint ({args.checkpoint!r}) does not name its dataset; pass --dataset")
    from .data import DATASETS
    try:
        parse_choice("--dataset", dataset, DATASETS)
    except ValueError as exc:
        raise _FlagError(str(exc)) from None
    out = (Path(args.out) if args.out is not None else
           _check_out(Path("runs") / f"attack-{s['attack']}-{s['norm']}-sigma{sigma:g}.tsv", args.force))
    return _Setup(s, model, sigma, source_model, source_sigma, dataset, out)


def _attack_config(setup: _Setup, args, eot: int):
    """The attack's settings object (:class:`attacks.PGD`, :class:`attacks.CarliniWagner` or
    :class:`attacks.Boundary`)."""
    s = setup.s
    if s["attack"] == "pgd":
        return attacks.PGD(norm=s["norm"], steps=s["steps"], step_size=s["step_size"],
                           random_start=not args.no_random_start, loss=s["loss"], eot=eot)
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
    ax.set_xlabel(f"attack size eps ({'ℓ∞' if norm == 'linf' else 'ℓ2'}, [0,1] pixel units)")
    ax.set_ylabel("robust accuracy (smoothed classifier)")
    finish_accuracy_axes(fig, ax, title=title)
    return save_png_pdf(fig, out_stem)


def _plot(rows, setup: _Setup, split: str, n: int) -> tuple[str, str]:
    s, sigma = setup.s, setup.sigma
    label = f"{s['attack']}-{s['norm']}, σ = {sigma:g}"
    if setup.source_model is not None:
        label += f" (transfer from σ = {setup.source_sigma:g})"
    stem = setup.out.with_suffix("") if setup.out.suffix else setup.out
    judge = f"{s['votes']} votes" if sigma > 0 else "no noise"
    return plot_robust_accuracy(rows, stem, label=label, title=f"{setup.dataset} {split}, n = {n}, {judge}")


# ------------------------------------------------------------------------------------ main


def _eot(setup: _Setup) -> int:
    """``--eot``, or its default: :data:`attacks.DEFAULT_EOT` when the attacked model is noisy, else 1."""
    attacked_sigma = setup.source_sigma if setup.source_model is not None else setup.sigma
    return setup.s["eot"] if setup.s["eot"] is not None else (attacks.DEFAULT_EOT if attacked_sigma > 0 else 1)


def _run(args, setup: _Setup, attack, eot: int, x: torch.Tensor, y: torch.Tensor) -> None:
    """Attack, write the TSV, print the table and (unless ``--no-plot``) write the plot."""
    s = setup.s
    generator = torch.Generator(device=s["device"]).manual_seed(s["seed"])
    t0 = time.perf_counter()
    results = attacks.robust_accuracy(setup.model, x, y, setup.sigma, attack=attack,
                                      eps_list=s["eps"], votes=s["votes"], source_model=setup.source_model,
                                      source_sigma=setup.source_sigma, generator=generator,
                                      attack_batch=s["attack_batch"], batch_size=s["batch_size"],
                                      progress=not args.no_progress)
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


@interruptible(PROG, "no output file is left half-written (results are written when the run completes)")
def main(argv: Sequence[str] | None = None) -> int:
    """The ``attack`` command; returns the exit status (0 ok, 1 missing data files, 2 bad flags, 130 Ctrl-C)."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or an unknown / missing flag (2)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        setup = _setup(args)
    except _FlagError as exc:
        return _usage_error(parser, exc)
    from .data import load_dataset
    try:
        data = load_dataset(setup.dataset, args.split, data_root=args.data_root)
    except FileNotFoundError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    n = len(data) if setup.s["max"] is None else min(setup.s["max"], len(data))
    eot = _eot(setup)
    try:
        attack = _attack_config(setup, args, eot)
    except ValueError as exc:  # pragma: no cover - flags were validated above
        return _usage_error(parser, exc)
    _run(args, setup, attack, eot, data.x[:n].to(setup.s["device"]), data.y[:n].to(setup.s["device"]))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
