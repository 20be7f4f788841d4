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
that checkpoint's sigma) and judges on ``--checkpoint``.

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
import os
import sys
import time
from pathlib import Path

import torch

from renyi_cert._cli import interruptible
from renyi_cert._files import OutputPathError, atomic_output, check_output_path

from . import attacks as A
from .devices import resolve_device

PROG = "renyi-cert attack"
DEFAULT_EPS = {"linf": "0,0.1,0.2,0.3", "l2": "0,0.5,1,1.5,2,2.5,3"}
DEFAULT_STEPS = {"pgd": 40, "cw": 100, "boundary": 1000}
TSV_COLUMNS = ("attack", "norm", "eps", "sigma", "transfer", "source_sigma", "votes", "eot", "steps", "n",
               "n_robust", "robust_accuracy", "clean_accuracy", "base_clean_accuracy", "mean_perturbation_norm",
               "seconds")


class _FlagError(Exception):
    """A flag value that failed validation (reported with exit status 2)."""


def _build_parser() -> argparse.ArgumentParser:
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
                   help=f"noise draws per gradient (default {A.DEFAULT_EOT} when the attacked model is noisy, else 1)")
    p.add_argument("--votes", default=str(A.DEFAULT_VOTES),
                   help=f"noise draws of the judging majority vote (default {A.DEFAULT_VOTES})")
    p.add_argument("--sigma", default=None, help="noise level of the judged model (default: the checkpoint's)")
    p.add_argument("--max", default=None, help="attack only the first N examples of the split")
    p.add_argument("--seed", default="0", help="seed of all attack and vote randomness (default 0)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    p.add_argument("--batch-size", default=str(A.DEFAULT_BATCH_SIZE),
                   help=f"images per forward pass (default {A.DEFAULT_BATCH_SIZE})")
    p.add_argument("--attack-batch", default="100", help="examples attacked together (default 100)")
    p.add_argument("--out", default=None, help="TSV path (default runs/attack-<attack>-<norm>-sigma<sigma>.tsv); "
                                               "the plot goes next to it")
    p.add_argument("--force", action="store_true", help="overwrite an existing --out (refused without it)")
    p.add_argument("--no-plot", action="store_true", help="do not write the PNG/PDF plot")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


# ------------------------------------------------------------------------------------ flag parsing


def _int(flag: str, text, minimum: int = 1) -> int:
    try:
        v = int(str(text).strip())
    except ValueError:
        raise _FlagError(f"{flag} ({text!r}) must be an integer >= {minimum}") from None
    if v < minimum:
        raise _FlagError(f"{flag} ({v}) must be an integer >= {minimum}")
    return v


def _float(flag: str, text, *, minimum: float = 0.0, strict: bool = False) -> float:
    try:
        v = float(str(text).strip())
    except ValueError:
        raise _FlagError(f"{flag} ({text!r}) must be a number") from None
    op = ">" if strict else ">="
    if not math.isfinite(v) or v < minimum or (strict and v == minimum):
        raise _FlagError(f"{flag} ({text!r}) must be finite and {op} {minimum:g}")
    return v


def _eps_list(text: str) -> tuple[float, ...]:
    parts = [t for t in str(text).split(",")]
    if not parts or any(not t.strip() for t in parts):
        raise _FlagError(f"--eps ({text!r}) must be a comma-separated list of numbers >= 0, e.g. 0,0.1,0.2,0.3")
    out = []
    for t in parts:
        try:
            v = float(t)
        except ValueError:
            raise _FlagError(f"--eps ({text!r}): {t.strip()!r} is not a number") from None
        if not math.isfinite(v) or v < 0:
            raise _FlagError(f"--eps ({text!r}): {t.strip()!r} must be finite and >= 0")
        out.append(v)
    return tuple(out)


def _choice(flag: str, value, choices) -> str:
    if value not in choices:
        raise _FlagError(f"{flag} ({value!r}) must be one of {', '.join(choices)}")
    return value


def _resolve_device(text: str) -> torch.device:
    try:
        return resolve_device(text)
    except ValueError as exc:
        raise _FlagError(f"--device: {exc}") from None


def _parse(args) -> dict:
    """Validate every flag that does not need the checkpoint; return the settings."""
    s = {}
    s["attack"] = _choice("--attack", args.attack, A.ATTACKS)
    norm = args.norm if args.norm is not None else ("linf" if s["attack"] == "pgd" else "l2")
    s["norm"] = _choice("--norm", norm, A.NORMS)
    if s["attack"] != "pgd" and s["norm"] != "l2":
        raise _FlagError(f"--norm ({s['norm']!r}) must be l2 for --attack {s['attack']} (an l2 attack)")
    s["eps"] = _eps_list(args.eps if args.eps is not None else DEFAULT_EPS[s["norm"]])
    s["steps"] = _int("--steps", args.steps) if args.steps is not None else DEFAULT_STEPS[s["attack"]]
    if args.step_size is not None and s["attack"] == "boundary":
        raise _FlagError(f"--step-size ({args.step_size!r}) applies to pgd and cw only, not to boundary")
    s["step_size"] = _float("--step-size", args.step_size, strict=True) if args.step_size is not None else None
    s["loss"] = _choice("--loss", args.loss, A.LOSSES)
    s["kappa"] = _float("--kappa", args.kappa)
    s["binary_search_steps"] = _int("--binary-search-steps", args.binary_search_steps)
    s["query_votes"] = _int("--query-votes", args.query_votes)
    s["eot"] = _int("--eot", args.eot) if args.eot is not None else None
    s["votes"] = _int("--votes", args.votes)
    s["sigma"] = _float("--sigma", args.sigma) if args.sigma is not None else None
    s["source_sigma"] = _float("--source-sigma", args.source_sigma) if args.source_sigma is not None else None
    if s["source_sigma"] is not None and args.transfer_from is None:
        raise _FlagError(f"--source-sigma ({args.source_sigma!r}) needs --transfer-from")
    s["max"] = _int("--max", args.max) if args.max is not None else None
    s["seed"] = _int("--seed", args.seed, minimum=0)
    s["batch_size"] = _int("--batch-size", args.batch_size)
    s["attack_batch"] = _int("--attack-batch", args.attack_batch)
    _choice("--split", args.split, ("train", "test"))
    if args.dataset is not None:
        from .data import DATASETS
        _choice("--dataset", args.dataset, DATASETS)
    s["device"] = _resolve_device(args.device)
    if args.out is not None:
        _check_out(args.out, args.force)
    return s


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


def plot_robust_accuracy(rows, out_stem, *, label: str, title: str | None = None) -> tuple[str, str]:
    """Robust accuracy against eps (the paper's Figures 2-3 style); writes ``<out_stem>.png`` and ``.pdf``
    (each atomically).

    Uses matplotlib's object-oriented API with the Agg canvas (no pyplot, no display needed).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    pts = sorted((r["eps"], r["robust_accuracy"]) for r in rows)
    fig = Figure(figsize=(6.0, 4.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=label)
    norm = rows[0]["norm"]
    ax.set_xlabel(f"attack size eps ({'ℓ∞' if norm == 'linf' else 'ℓ2'}, [0,1] pixel units)")
    ax.set_ylabel("robust accuracy (smoothed classifier)")
    ax.set_ylim(0.0, 1.0)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize="small")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    stem = os.fspath(out_stem)
    png, pdf = stem + ".png", stem + ".pdf"
    with atomic_output(png) as tmp:
        fig.savefig(tmp, dpi=150, format="png")
    with atomic_output(pdf) as tmp:
        fig.savefig(tmp, format="pdf")
    return png, pdf


# ------------------------------------------------------------------------------------ main


@interruptible(PROG, "no output file is left half-written (results are written when the run completes)")
def main(argv=None) -> int:
    """The ``attack`` command; returns the exit status (0 ok, 1 missing data files, 2 bad flags, 130 Ctrl-C)."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or an unknown / missing flag (2)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        s = _parse(args)
        model, cfg = _load("--checkpoint", args.checkpoint, s["device"], args.trust_arch_import)
        sigma = s["sigma"] if s["sigma"] is not None else _config_sigma("--checkpoint", cfg)
        source_model, source_sigma = None, None
        if args.transfer_from is not None:
            source_model, scfg = _load("--transfer-from", args.transfer_from, s["device"], args.trust_arch_import)
            source_sigma = (s["source_sigma"] if s["source_sigma"] is not None
                            else _config_sigma("--transfer-from", scfg))
        dataset = args.dataset if args.dataset is not None else cfg.get("dataset")
        if dataset is None:
            raise _FlagError(f"--checkpoint ({args.checkpoint!r}) does not name its dataset; pass --dataset")
        from .data import DATASETS
        _choice("--dataset", dataset, DATASETS)
        out = (Path(args.out) if args.out is not None else
               _check_out(Path("runs") / f"attack-{s['attack']}-{s['norm']}-sigma{sigma:g}.tsv", args.force))
    except _FlagError as exc:
        parser.print_usage(sys.stderr)
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2

    from .data import load_dataset
    try:
        data = load_dataset(dataset, args.split, args.data_root)
    except FileNotFoundError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    n = len(data) if s["max"] is None else min(s["max"], len(data))
    x = data.x[:n].to(s["device"])
    y = data.y[:n].to(s["device"])

    attacked_sigma = source_sigma if source_model is not None else sigma
    eot = s["eot"] if s["eot"] is not None else (A.DEFAULT_EOT if attacked_sigma > 0 else 1)
    try:
        if s["attack"] == "pgd":
            cfg_attack = A.PGD(norm=s["norm"], steps=s["steps"], step_size=s["step_size"],
                               random_start=not args.no_random_start, loss=s["loss"], eot=eot)
        elif s["attack"] == "cw":
            cfg_attack = A.CarliniWagner(kappa=s["kappa"], steps=s["steps"],
                                         binary_search_steps=s["binary_search_steps"],
                                         lr=s["step_size"] if s["step_size"] is not None else 0.05, eot=eot)
        else:
            cfg_attack = A.Boundary(steps=s["steps"], query_votes=s["query_votes"])
    except ValueError as exc:  # pragma: no cover - flags were validated above
        parser.print_usage(sys.stderr)
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2

    generator = torch.Generator(device=s["device"]).manual_seed(s["seed"])
    t0 = time.perf_counter()
    results = A.robust_accuracy(model, x, y, sigma, attack=cfg_attack, eps_list=s["eps"], votes=s["votes"],
                                source_model=source_model, source_sigma=source_sigma, generator=generator,
                                attack_batch=s["attack_batch"], batch_size=s["batch_size"],
                                progress=not args.no_progress)
    seconds = time.perf_counter() - t0
    rows = []
    for r in results:
        rows.append({
            "attack": r.attack, "norm": r.norm, "eps": r.eps, "sigma": r.sigma, "transfer": r.transfer,
            "source_sigma": r.source_sigma, "votes": r.votes, "eot": eot if r.attack != "boundary" else 0,
            "steps": s["steps"], "n": r.n, "n_robust": r.n_robust, "robust_accuracy": r.robust_accuracy,
            "clean_accuracy": r.clean_accuracy, "base_clean_accuracy": r.base_clean_accuracy,
            "mean_perturbation_norm": r.mean_perturbation_norm, "seconds": seconds,
        })
    write_tsv(out, rows)
    print("\t".join(("eps", "robust_accuracy", "n_robust", "n")))
    for r in rows:
        print(f"{r['eps']:g}\t{r['robust_accuracy']:.4f}\t{r['n_robust']}\t{r['n']}")
    print(f"clean accuracy (smoothed, {s['votes']} votes): {results[0].clean_accuracy:.4f}; "
          f"base model without noise: {results[0].base_clean_accuracy:.4f}; {seconds:.1f} s")
    print(f"wrote {out}")
    if not args.no_plot:
        label = f"{s['attack']}-{s['norm']}, σ = {sigma:g}"
        if source_model is not None:
            label += f" (transfer from σ = {source_sigma:g})"
        stem = out.with_suffix("") if out.suffix else out
        judge = f"{s['votes']} votes" if sigma > 0 else "no noise"
        png, pdf = plot_robust_accuracy(rows, stem, label=label, title=f"{dataset} {args.split}, n = {n}, {judge}")
        print(f"wrote {png} and {pdf}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
