"""Command-line tools: ``renyi-cert {train,certify,analyze,attack}`` and ``certify``.

``certify`` certifies a trained checkpoint on a dataset split and writes one TSV row per example,
flushed as it is written; the columns, the settings file and the resume checks are those of
:mod:`renyi_cert_torch.certify_log`. Rows carry ``guaranteed = 0`` only under
``--allow-unguaranteed``, which ``--method sison-glaz/goodman`` and ``--single-sample-set``
need. ``--adaptive`` certifies each example sequentially (:mod:`renyi_cert.sequential`) with a
target radius or a tolerance, and the ``forward_passes`` column says what each row cost.

One writer per log: a run holds an exclusive lock on ``<out>.lock`` from before it reads or
creates the log until it ends; a second run on the same ``--out`` stops at once, naming the
holder's process id.

``--resume`` checks the settings that give the rows their meaning, drops a truncated last line
and certifies only the missing indices; it then rewrites the settings file with this run added
to its history, so that every row can be traced to the run, batch size and device that wrote it.
Every example ``idx`` gets its own noise seed derived from ``(--seed, idx)``, so a resumed run
writes the same rows as an uninterrupted one (on the same device and batch size).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import sys
from pathlib import Path
from typing import NamedTuple, Sequence

from renyi_cert._cli import (
    DEFAULT_BOUNDS,
    alpha_arg,
    bounds_arg,
    choice_arg,
    device_arg,
    float_list_arg,
    int_arg,
    interruptible,
    real_arg,
)
from renyi_cert._files import (
    LockedError,
    OutputPathError,
    atomic_write_text,
    check_output_path,
    exclusive_lock,
    file_sha256,
)
from renyi_cert.noise import NOISES
from renyi_cert.sequential import DEFAULT_FINAL_SHARE, DEFAULT_FUTILITY_LEVEL

from .certify_log import (
    RESUME_KEYS,
    RUN_KEYS,
    SIDECAR_FORMAT,
    SOFT_KEYS,
    CertifyError,
    check_resume,
    format_row,
    planned_indices,
    read_finished,
    run_entry,
    sidecar_path,
    sort_log,
    tsv_header,
)
from .certify_rows import LogWriter, RowSettings, certify_examples
from .distributed import (
    DEFAULT_TIMEOUT,
    SINGLE,
    DistributedError,
    Workers,
    check_same,
    from_main,
    join,
    finish_together,
    launched,
    leave,
    settle,
    stop_on_sigterm,
)
from .launch import launch, strip_separator, without_nproc

__all__ = ["PROG", "COMMANDS", "DEFAULT_BOUNDS", "SIDECAR_FORMAT", "RESUME_KEYS", "SOFT_KEYS", "RUN_KEYS",
           "CertifyError", "planned_indices", "tsv_header", "format_row", "sidecar_path", "read_finished",
           "radius_cap_note", "certify_examples", "build_certify_parser", "certify_main", "main"]

PROG = "renyi-cert"
COMMANDS = ("train", "certify", "analyze", "attack")
#: Defaults of ``--n-start``, ``--growth``, ``--futility-level`` and ``--final-share``
#: (those of renyi_cert.sequential.certify_adaptive).
ADAPTIVE_DEFAULTS = {"n_start": 100, "growth": 2.0, "futility_level": DEFAULT_FUTILITY_LEVEL,
                     "final_share": DEFAULT_FINAL_SHARE}
#: Every bound name of every noise (``--bound`` is checked against the run's noise once it is known).
ALL_BOUNDS = tuple(dict.fromkeys(b for kind in NOISES.values() for b in kind.bounds))
INTERRUPT_NOTE = "the rows written so far are kept; run again with --resume to continue the log"


# ------------------------------------------------------------------------------------ helpers


def radius_cap_note(*, sigma, n: int, alpha: float, method: str, bounds: Sequence[str], num_classes: int,
                    allow_unguaranteed: bool = False) -> str:
    """A sentence on the largest p1_lower and radii that n samples at level alpha can certify.

    With n samples at level alpha the largest certifiable lower bound on p1 is of order
    alpha^(1/n) (exactly (alpha/2)^(1/n) for one-sided Clopper-Pearson with the Bonferroni split
    used here), reached when every sample falls in one class; it caps every radius. The numbers
    come from :func:`renyi_cert.caps.radius_cap`; ``allow_unguaranteed`` is needed for the methods
    without the ``1 - alpha`` guarantee (``"sison-glaz"``, ``"goodman"``). ``sigma`` is Gaussian
    noise's sigma or a :mod:`renyi_cert.noise` noise (its radii are then in its norm).
    """
    from renyi_cert.caps import radius_cap
    from renyi_cert.noise import as_noise

    cap = radius_cap(n, alpha=alpha, sigma=sigma, bounds=tuple(bounds), method=method,
                     allow_unguaranteed=allow_unguaranteed, num_classes=num_classes)
    return (f"with n = {n} samples at level alpha = {alpha:g} the largest certifiable p1 is about alpha^(1/n) = "
            f"{alpha ** (1.0 / n):.5f} (here p1_lower <= {cap.p1_lower:.5f} with {method}), so no radius can exceed "
            + ", ".join(f"{b} {cap.radii[b]:.3f}" for b in bounds) + _at(as_noise(sigma)) + "; raise --n for more")


def _at(noise) -> str:
    """`` at sigma 0.5`` for Gaussian noise, `` (l1) at laplace scale 0.5`` for another."""
    from renyi_cert.noise import scale_of

    if noise.name == "gaussian":
        return f" at sigma {scale_of(noise):g}"
    return f" ({noise.norm}) at {noise.name} scale {scale_of(noise):g}"


# ------------------------------------------------------------------------------------- the parser


def build_certify_parser(prog: str = "certify") -> argparse.ArgumentParser:
    """The argument parser of ``certify``; ``prog`` names the command in usage and help."""
    from renyi_cert.analyze import DEFAULT_RADII
    from renyi_cert.intervals import METHODS

    p = argparse.ArgumentParser(
        prog=prog,
        description="Certify a trained checkpoint with randomized smoothing: Renyi (Li et al. 2019), Cohen et al. "
                    "and PixelDP radii from the same Monte Carlo counts; writes a TSV readable by Cohen et al.'s "
                    "analysis tools.")
    p.add_argument("--checkpoint", required=True, metavar="PATH", help="checkpoint written by `renyi-cert train`")
    p.add_argument("--trust-arch-import", action="store_true",
                   help="load a checkpoint whose architecture is an import path (module:Class): this imports and "
                        "runs that module's code, so use it only for checkpoints you trust (default: refuse)")
    p.add_argument("--out", required=True, metavar="FILE.tsv",
                   help="output log (settings go to FILE.tsv.json; FILE.tsv.lock keeps a second run out)")
    p.add_argument("--dataset", default=None, choices=("mnist", "mnist5k", "cifar10"),
                   help="dataset (default: the checkpoint's)")
    p.add_argument("--split", default="test", choices=("train", "test"), help="split (default: %(default)s)")
    p.add_argument("--data-root", default=None, help="folder with MNIST/raw or cifar-10-batches-py (default ./data)")
    p.add_argument("--sigma", type=real_arg("sigma", 0.0, strict=True), default=None,
                   help="noise std in [0,1] pixel units (default: the checkpoint's training sigma)")
    p.add_argument("--n0", type=int_arg("n0"), default=100, help="selection samples (default: %(default)s)")
    p.add_argument("--n", type=int_arg("n"), default=10000, help="estimation samples (default: %(default)s)")
    p.add_argument("--alpha", type=alpha_arg(), default=0.001, help="failure probability (default: %(default)s)")
    p.add_argument("--method", type=choice_arg("method", METHODS), default="clopper-pearson",
                   help="confidence intervals: clopper-pearson (the only one with the 1-alpha guarantee), "
                        "sison-glaz or goodman (these need --allow-unguaranteed) (default: %(default)s)")
    p.add_argument("--noise", type=choice_arg("noise", tuple(NOISES)), default=None,
                   help="the smoothing noise, --sigma its scale: gaussian (l2 radii), laplace or uniform (l1 radii) "
                        "(default: the checkpoint's training noise, else gaussian)")
    p.add_argument("--bound", type=bounds_arg(allowed=ALL_BOUNDS), default=None, metavar="B[,B...]|all",
                   help="radius bounds, first one fills the `radius` column (default, and all: the noise's bounds, "
                        "gaussian renyi,cohen,pixeldp; laplace renyi,teng,pixeldp; uniform yang)")
    p.add_argument("--single-sample-set", action="store_true",
                   help="the paper's code's biased variant: select and estimate on the same n samples (n0 unused); "
                        "needs --allow-unguaranteed")
    p.add_argument("--allow-unguaranteed", action="store_true",
                   help="WARNING: the rows then carry NO 1-alpha guarantee (their `guaranteed` column is 0); "
                        "needed for --method sison-glaz/goodman and --single-sample-set, which reproduce the "
                        "paper's code but are not sound certificates")
    _add_adaptive_arguments(p)
    p.add_argument("--skip", type=int_arg("skip"), default=1, help="certify every K-th example (default: 1)")
    p.add_argument("--max", type=int_arg("max"), default=None,
                   help="certify at most N examples (default: all of the split)")
    p.add_argument("--seed", type=int_arg("seed", 0), default=0, help="run seed (default: %(default)s)")
    p.add_argument("--batch", type=int_arg("batch"), default=1000,
                   help="noisy copies per forward pass (default: %(default)s)")
    p.add_argument("--device", type=device_arg(), default="auto", help="auto (CUDA if available), cpu or cuda")
    p.add_argument("--amp", type=choice_arg("amp", ("bf16", "fp16")), default=None,
                   help="run the model in reduced precision (bf16; fp16 on CUDA only): about 1.8x faster on a CPU, "
                        "and the certificates are then for the model as computed in that precision (default: off)")
    p.add_argument("--channels-last", action="store_true",
                   help="channels-last memory layout for convolutions (about 1.3x faster on a CPU; same noise)")
    _add_worker_arguments(p)
    p.add_argument("--radii", type=float_list_arg("radii"), default=DEFAULT_RADII,
                   help="radius grid of the final table (default: " + ",".join(f"{r:g}" for r in DEFAULT_RADII) + ")")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true", help="continue an existing log with the same settings")
    group.add_argument("--force", action="store_true", help="overwrite an existing log")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _add_worker_arguments(p: argparse.ArgumentParser) -> None:
    """The options of runs on many processes (torchrun, or --nproc)."""
    g = p.add_argument_group(
        "many processes", "under torchrun (torchrun --nproc_per_node N -m renyi_cert_torch.cli -- certify ...) or with "
        "--nproc, the examples are shared out over the workers as they become free and rank 0 writes the one log; "
        "every row is the same as a single process writes (see the README, 'Many GPUs, many machines')")
    g.add_argument("--nproc", type=int_arg("nproc"), default=None, metavar="N",
                   help="start N workers on this machine (torch's elastic launcher, one CPU thread or one GPU each)")
    g.add_argument("--split-example", action="store_true",
                   help="every worker draws a share of each example's samples and the counts are summed: the "
                        "latency of one certificate at large n (the draws then differ from a run without this "
                        "option, but not with the number of workers)")
    g.add_argument("--timeout", type=real_arg("timeout", 0.0, strict=True), default=DEFAULT_TIMEOUT,
                   metavar="SECONDS", help="longest wait for another worker before the run stops (default: "
                                           "%(default)g)")


def _add_adaptive_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``--adaptive`` (sequential certification, renyi_cert.sequential)."""
    g = p.add_argument_group(
        "adaptive certification", "sample each example in looks of growing size and stop as soon as the question is "
        "answered (each look at level alpha/K over the K planned looks, so the rows keep the 1-alpha guarantee); "
        "the rules watch the first --bound")
    g.add_argument("--adaptive", action="store_true",
                   help="sequential certification; needs --target-radius or --tolerance")
    g.add_argument("--target-radius", type=real_arg("target-radius", 0.0, strict=True), default=None, metavar="R",
                   help="stop once radius R is certified, or once it is out of reach")
    g.add_argument("--tolerance", type=real_arg("tolerance", 0.0), default=None, metavar="T",
                   help="best-radius mode: stop once more samples would raise the radius by at most T (relative)")
    g.add_argument("--absolute-tolerance", action="store_true", help="--tolerance is in l2 units, not relative")
    g.add_argument("--n-max", type=int_arg("n-max"), default=None, metavar="N",
                   help="most estimation samples per example (default: --n)")
    g.add_argument("--n-start", type=int_arg("n-start"), default=None,
                   help=f"first look's size (default: {ADAPTIVE_DEFAULTS['n_start']})")
    g.add_argument("--growth", type=real_arg("growth", 1.0, strict=True), default=None,
                   help=f"ratio of successive look sizes (default: {ADAPTIVE_DEFAULTS['growth']})")
    g.add_argument("--futility-level", type=real_arg("futility-level", 0.0), default=None,
                   help="0: give up only when no data could reach the target; beta > 0: project the remaining "
                        "samples at the upper beta-confidence bound of p1 (default: "
                        f"{ADAPTIVE_DEFAULTS['futility_level']})")
    g.add_argument("--final-share", type=real_arg("final-share", 0.0, strict=True), default=None,
                   help="share of alpha for the last look, the rest split evenly over the others (default: "
                        f"{ADAPTIVE_DEFAULTS['final_share']})")


_ADAPTIVE_ONLY = ("target_radius", "tolerance", "absolute_tolerance", "n_max", "futility_level", "n_start", "growth",
                  "final_share")


def _check_adaptive_flags(args) -> None:
    """Refuse the options of ``--adaptive`` without it, and the procedures it cannot run."""
    if not args.adaptive:
        given = [k for k in _ADAPTIVE_ONLY if getattr(args, k) is not None and getattr(args, k) is not False]
        if given:
            raise CertifyError(f"--{given[0].replace('_', '-')} is an option of --adaptive; add --adaptive or drop it")
    elif args.method != "clopper-pearson" or args.single_sample_set:
        raise CertifyError("--adaptive certifies with exact Clopper-Pearson bounds on fresh samples only; drop "
                           + ("--single-sample-set" if args.single_sample_set else f"--method {args.method}"))


def _adaptive_plan(args, sigma, num_classes: int):
    """The :class:`renyi_cert.sequential.AdaptivePlan` of ``--adaptive`` (None without it)."""
    from renyi_cert.sequential import plan_adaptive

    if not args.adaptive:
        return None
    try:
        return plan_adaptive(sigma, n_max=args.n_max or args.n, alpha=args.alpha, target_radius=args.target_radius,
                             tolerance=args.tolerance, relative=not args.absolute_tolerance, bound=args.bound[0],
                             num_classes=num_classes, **{k: v if getattr(args, k) is None else getattr(args, k)
                                                         for k, v in ADAPTIVE_DEFAULTS.items()})
    except ValueError as exc:
        raise CertifyError(f"--adaptive: {_flag_names(str(exc))}") from None


def _flag_names(message: str) -> str:
    """A core error message with its argument names spelled as the command's flags."""
    for name in ("target_radius", "tolerance", "n_max", "n_start", "futility_level", "growth", "final_share"):
        message = message.replace(f"{name} (", f"--{name.replace('_', '-')} (")
    return message


def _adaptive_settings(plan) -> dict | None:
    """What the settings file records of an adaptive plan (None for fixed-n runs)."""
    if plan is None:
        return None
    return {"n_max": plan.n_max, "looks": list(plan.sizes), "bound": plan.bound, "target_radius": plan.target_radius,
            "tolerance": plan.tolerance, "relative": plan.relative, "futility_level": plan.futility_level,
            "look_alphas": list(plan.look_alphas)}


# ------------------------------------------------------------------------------------- certify


class _Loaded(NamedTuple):
    """What a run certifies with: the smoothed classifier and the data, and where they came from."""

    clf: object
    data: object
    config: dict
    sigma: float
    dataset: str
    device: object


def _device(args, workers: Workers = SINGLE):
    """``--device`` resolved; with several workers on CUDA, this worker's GPU (``cuda:LOCAL_RANK``)."""
    from renyi_cert_torch.smoothing import resolve_device

    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        raise CertifyError(f"--device: {exc}") from None
    if workers.distributed and device.type == "cuda":
        return resolve_device(f"cuda:{workers.local_rank}")
    return device


def _load_checkpoint(args, workers: Workers = SINGLE):
    """The device, the checkpoint's model and its config (CertifyError on user errors)."""
    from renyi_cert_torch.train import load_checkpoint

    device = _device(args, workers)
    try:
        model, config = load_checkpoint(args.checkpoint, map_location="cpu", trust_arch_import=args.trust_arch_import)
    except FileNotFoundError as exc:
        raise CertifyError(f"--checkpoint: {exc}") from None
    except (ValueError, OSError) as exc:
        raise CertifyError(f"--checkpoint ({args.checkpoint!r}) cannot be loaded: {exc}") from None
    return device, model, config


def _noise_level(args, config: dict, prog: str) -> float:
    """``--sigma``, or the checkpoint's training sigma; a warning when the two differ."""
    train_sigma = config.get("sigma")
    sigma = args.sigma
    if sigma is None:
        if not train_sigma:
            raise CertifyError(f"the checkpoint {args.checkpoint!r} was trained without noise (mode "
                               f"{config.get('mode')!r}, sigma {train_sigma!r}); give --sigma")
        return float(train_sigma)
    if train_sigma is not None and not math.isclose(sigma, float(train_sigma), rel_tol=1e-9):
        print(f"{prog}: warning: --sigma ({sigma:g}) differs from the checkpoint's training sigma "
              f"({float(train_sigma):g}, mode {config.get('mode')!r}); the smoothed classifier is usually "
              f"most accurate at its training noise level", file=sys.stderr)
    return sigma


def _noise_kind(args, config: dict, prog: str) -> str:
    """``--noise``, or the checkpoint's training noise (gaussian when it records none); a warning
    when the two differ."""
    trained = config.get("noise") or "gaussian"
    if args.noise is None:
        return trained
    if config.get("mode") in ("stn", "gaussian") and args.noise != trained:
        print(f"{prog}: warning: --noise ({args.noise}) differs from the checkpoint's training noise ({trained}); "
              "the smoothed classifier is usually most accurate with its training noise", file=sys.stderr)
    return args.noise


def _bounds(args, noise) -> tuple:
    """``--bound`` resolved against the run's noise (its bounds by default and for ``all``)."""
    if args.bound is None or args.bound == ("all",):
        return tuple(noise.bounds)
    wrong = [b for b in args.bound if b not in noise.bounds]
    if wrong:
        raise CertifyError(f"--bound ({wrong[0]}) is not a bound of {noise.name} noise: choose from "
                           f"{', '.join(noise.bounds)}" + (" (the Renyi divergence of uniform noise is infinite, "
                                                           "so Lemma 1 certifies nothing)"
                                                           if noise.name == "uniform" and wrong[0] == "renyi" else ""))
    return tuple(args.bound)


def _load(args, prog: str, workers: Workers = SINGLE) -> _Loaded:
    """Checkpoint, model, dataset and sigma from the parsed arguments (CertifyError on user errors)."""
    from renyi_cert_torch.data import load_dataset
    from renyi_cert_torch.smoothing import SmoothedClassifier

    device, model, config = _load_checkpoint(args, workers)
    dataset = args.dataset or config.get("dataset")
    if dataset is None:
        raise CertifyError(f"the checkpoint {args.checkpoint!r} does not record its dataset; give --dataset")
    sigma = _noise_level(args, config, prog)
    noise = NOISES[_noise_kind(args, config, prog)](sigma)
    args.bound = _bounds(args, noise)
    if config.get("dataset") and dataset != config["dataset"]:
        print(f"{prog}: warning: --dataset ({dataset!r}) differs from the checkpoint's training dataset "
              f"({config['dataset']!r})", file=sys.stderr)
    try:
        data = load_dataset(dataset, args.split, data_root=args.data_root)
    except (FileNotFoundError, ValueError, ImportError) as exc:
        raise CertifyError(f"cannot load dataset {dataset!r} ({args.split}): {exc}") from None
    if device.type == "cuda":  # page-locked: each example's copy to the GPU is asynchronous
        data = dataclasses.replace(data, x=data.x.pin_memory())
    num_classes = int(config.get("num_classes", data.num_classes))
    if num_classes != data.num_classes:
        raise CertifyError(f"the checkpoint's model has {num_classes} classes but dataset {dataset!r} has "
                           f"{data.num_classes}")
    try:
        clf = SmoothedClassifier(model, noise, num_classes, device=device, batch_size=args.batch, amp=args.amp,
                                 channels_last=args.channels_last)
    except ValueError as exc:
        raise CertifyError(str(exc)) from None
    shape = tuple(data.x.shape[1:])
    if clf.input_shape is not None and shape != clf.input_shape:
        raise CertifyError(f"dataset {dataset!r} has images of shape {shape} but the checkpoint's model "
                           f"({config.get('arch')!r}) expects {clf.input_shape}")
    return _Loaded(clf, data, config, sigma, dataset, device)


def _settings(args, sigma, dataset, device, checkpoint_hash, plan=None, workers: Workers = SINGLE,
              noise=None) -> dict:
    """The settings file's content: what gives the rows their meaning, and how this run made them."""
    import torch

    import renyi_cert
    from renyi_cert.noise import as_noise

    noise = as_noise(sigma if noise is None else noise)

    return {
        "format": SIDECAR_FORMAT,
        "checkpoint": os.path.abspath(args.checkpoint),
        "checkpoint_sha256": checkpoint_hash,
        "dataset": dataset,
        "split": args.split,
        "sigma": sigma,
        "noise": noise.name,
        "norm": noise.norm,
        "n0": args.n0,
        "n": None if plan is not None else args.n,
        "alpha": args.alpha,
        "method": args.method,
        "bounds": list(args.bound),
        "single_sample_set": bool(args.single_sample_set),
        "allow_unguaranteed": bool(args.allow_unguaranteed),
        "adaptive": _adaptive_settings(plan),
        "skip": args.skip,
        "seed": args.seed,
        "split_example": bool(args.split_example),
        "amp": args.amp,
        "batch": args.batch,
        "channels_last": bool(args.channels_last),
        "device": str(device),
        "workers": workers.world_size,
        "torch": torch.__version__,
        "renyi_cert": getattr(renyi_cert, "__version__", "unknown"),
        "columns": tsv_header(args.bound).split("\t"),
    }


def _check_unguaranteed(args) -> None:
    """Refuse the procedures without the 1 - alpha guarantee unless --allow-unguaranteed is given."""
    from renyi_cert.intervals import GUARANTEED_METHODS

    if args.allow_unguaranteed:
        return
    if args.method not in GUARANTEED_METHODS:
        raise CertifyError(f"--method {args.method} has no 1-alpha guarantee (only "
                           f"{', '.join(GUARANTEED_METHODS)} does); pass --allow-unguaranteed to certify with it "
                           "anyway (its rows get guaranteed = 0)")
    if args.single_sample_set:
        raise CertifyError("--single-sample-set (select and estimate on the same samples) has no 1-alpha guarantee; "
                           "pass --allow-unguaranteed to certify with it anyway (its rows get guaranteed = 0)")


def _run_certify(args, prog: str, report: bool = True) -> int:
    """Check the flags, join the other workers (if launched by torchrun) and run."""
    _check_unguaranteed(args)
    _check_adaptive_flags(args)
    try:
        workers = join(_device(args).type, args.timeout)
    except DistributedError as exc:
        raise CertifyError(str(exc)) from None
    try:
        with contextlib.ExitStack() as stack:
            if workers.distributed:
                stop_on_sigterm()
            return _certify_workers(args, prog, report, workers, stack)
    except DistributedError as exc:
        raise CertifyError(str(exc)) from None
    except CertifyError as exc:
        if workers.distributed:  # every worker says it before any exits
            print(f"{prog}: error: {exc}", file=sys.stderr)
            finish_together(workers)
            raise _Reported(exc) from None
        raise
    finally:
        leave()


class _Reported(Exception):
    """A CertifyError already printed (by a worker that then waited for the others)."""


def _claim_output(args, stack: contextlib.ExitStack) -> Path:
    """Rank 0's ``--out``: checked, and locked (for as long as ``stack`` is open) against a second run."""
    try:
        out = check_output_path(args.out, name="--out")
        check_output_path(sidecar_path(out), name="--out's settings file")
        stack.enter_context(exclusive_lock(out, what="certification log"))
    except (OutputPathError, LockedError) as exc:
        raise CertifyError(str(exc)) from None
    if out.exists() and not (args.resume or args.force):
        raise CertifyError(f"--out ({args.out!r}) exists; use --resume to continue it or --force to overwrite it")
    return out


def _resume_state(args, out: Path, settings: dict, header: str, run: _Loaded, prog: str) -> tuple[list, list]:
    """The indices already in the log and its runs history (both empty for a new log)."""
    if not args.resume:
        return [], []
    if not out.exists():
        print(f"{prog}: --resume: {out} does not exist yet; starting a new log", file=sys.stderr)
        return [], []
    saved = check_resume(sidecar_path(out), settings, prog)
    runs = saved.get("runs") if isinstance(saved.get("runs"), list) else [run_entry(saved, 0)]
    done = read_finished(out, header)
    size = len(run.data)
    outside = [i for i in done if not 0 <= i < size]
    if outside:
        raise CertifyError(f"--resume: idx {outside[0]} in the log is out of range for {run.dataset} {args.split} "
                           f"({size} examples)")
    extra = sorted(set(done) - set(range(0, size, args.skip)))
    if extra:
        raise CertifyError(f"--resume: {out} holds idx {extra[0]} which is not a multiple of --skip "
                           f"({args.skip}) within the dataset")
    return done, runs


def _open_log(args, out: Path, settings: dict, header: str, done: list, runs: list) -> bool:
    """Write the settings file (with this run appended to its history) and, for a new log, the
    header; returns whether the log was started afresh."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fresh = not (args.resume and out.exists() and out.stat().st_size > 0)
    settings["runs"] = ([] if fresh else runs) + [run_entry(settings, len(done))]
    atomic_write_text(sidecar_path(out), json.dumps(settings, indent=2) + "\n")
    if fresh:
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(header + "\n")
    return fresh


def _announce(args, run: _Loaded, todo: list, indices: list, adaptive, prog: str, report: bool,
              workers: Workers = SINGLE) -> None:
    """What the run is about to do (and, with ``report``, the radius cap of its n and alpha)."""
    if adaptive is None:
        how, n, alpha = f"n {args.n}, alpha {args.alpha:g}, {args.method}", args.n, args.alpha
    else:
        rule = (f"target radius {adaptive.target_radius:g}" if adaptive.target_radius is not None else
                f"tolerance {adaptive.tolerance:g}" + ("" if adaptive.relative else " (absolute)"))
        how = (f"adaptive ({rule} on {adaptive.bound}, {len(adaptive.sizes)} looks from {adaptive.sizes[0]} to n_max "
               f"{adaptive.n_max}, alpha {args.alpha:g} split {adaptive.look_alphas[0]:.3g} per look and "
               f"{adaptive.look_alphas[-1]:.3g} for the last, "
               f"futility level {adaptive.futility_level:g})")
        n, alpha = adaptive.n_max, adaptive.look_alphas[-1]
    print(f"{prog}: certifying {len(todo)} of {len(indices)} examples of {run.dataset} ({args.split})"
          f"{_at(run.clf.noise)}, n0 {args.n0}, {how}, bounds {', '.join(args.bound)}, device {run.device}"
          + (f", {workers.world_size} workers" + (" (each example split over all)" if args.split_example else "")
             if workers.distributed else ""), file=sys.stderr)
    if report:
        note = radius_cap_note(sigma=run.clf.noise, n=n, alpha=alpha, method=args.method, bounds=args.bound,
                               num_classes=run.clf.num_classes, allow_unguaranteed=args.allow_unguaranteed)
        print(f"{prog}: {note}", file=sys.stderr)


def _summarize_log(args, out: Path, run: _Loaded, report: bool) -> None:
    """Read the finished log back: the table (with ``report``), the plot beside it, the files written."""
    from renyi_cert import analyze

    log = analyze.read_log(out)
    if report:
        print(analyze.markdown_table(analyze.summarize(log, args.radii, label=out.name)))
    stem = out.with_suffix("") if out.suffix == ".tsv" else out
    png, pdf = analyze.plot_certified_accuracy([log], stem, labels=[out.name],
                                               title=f"{run.dataset}{_at(run.clf.noise)}, "
                                                     + (f"n = {args.n}" if not args.adaptive else "adaptive"))
    print(f"\nwrote {out} ({len(log)} rows), {sidecar_path(out)}, {png}, {pdf}")


def _certify_workers(args, prog: str, report: bool, workers: Workers, stack: contextlib.ExitStack) -> int:
    """The run on this worker: every step that can fail on one worker fails on all of them."""
    out, run, error = None, None, None
    try:
        if workers.is_main:
            out = _claim_output(args, stack)
        run = _load(args, prog, workers)
    except CertifyError as exc:
        error = str(exc)
    settle(workers, error, CertifyError)
    assert run is not None
    if args.allow_unguaranteed and workers.is_main:
        print(f"{prog}: warning: --allow-unguaranteed: the rows of this run carry NO 1-alpha guarantee "
              "(guaranteed = 0)", file=sys.stderr)
    adaptive = _adaptive_plan(args, run.clf.noise, run.clf.num_classes)
    settings = _settings(args, run.sigma, run.dataset, run.device, file_sha256(args.checkpoint), adaptive, workers,
                         run.clf.noise)
    check_same(workers, {k: v for k, v in settings.items() if k != "device"})
    indices = planned_indices(len(run.data), args.skip, args.max)
    if workers.world_size > len(indices) and not args.split_example:
        raise CertifyError(f"{workers.world_size} workers for {len(indices)} example(s): start at most "
                           f"{len(indices)} workers, or give each example to all of them with --split-example")
    header = tsv_header(args.bound)
    todo = from_main(workers, lambda: _start_log(args, out, settings, header, run, indices, prog), CertifyError)
    if workers.is_main:
        _announce(args, run, todo, indices, adaptive, prog, report, workers)
    _certify_todo(args, out, run, adaptive, todo, indices, workers)
    if workers.is_main:
        sort_log(out)
        _summarize_log(args, out, run, report)
    return 0


def _start_log(args, out: Path, settings: dict, header: str, run: _Loaded, indices: list, prog: str) -> list:
    """Rank 0: check a resumed log, (re)write its settings file and header; the indices still to do."""
    done, runs = _resume_state(args, out, settings, header, run, prog)
    done_set = set(done)
    todo = [i for i in indices if i not in done_set]
    if not _open_log(args, out, settings, header, done, runs):
        print(f"{prog}: resuming {out}: {len(done)} rows done, {len(todo)} to go", file=sys.stderr)
    return todo


def _certify_todo(args, out, run: _Loaded, adaptive, todo: list, indices: list, workers: Workers) -> None:
    """Certify the examples still to do; rank 0 appends the rows to ``out``."""
    rows = RowSettings(n0=args.n0, n=args.n, alpha=args.alpha, method=args.method, bounds=tuple(args.bound),
                       seed=args.seed, single_sample_set=args.single_sample_set,
                       allow_unguaranteed=args.allow_unguaranteed, adaptive=adaptive)
    if not workers.is_main:
        certify_examples(run.clf, run.data.x, run.data.y, todo, None, rows, workers=workers,
                         split_example=args.split_example)
        return
    with open(out, "a", encoding="utf-8") as fh:
        writer = LogWriter(fh, progress=not args.no_progress, initial=len(indices) - len(todo), total=len(indices),
                           desc="certify")
        try:
            certify_examples(run.clf, run.data.x, run.data.y, todo, writer, rows, workers=workers,
                             split_example=args.split_example)
        except CertifyError as exc:
            raise CertifyError(f"{exc} ({writer.written} row(s) of this run were written and are kept)") from None
        finally:
            writer.close()


def certify_main(argv: Sequence[str] | None = None, prog: str = "certify", *, report: bool = True) -> int:
    """The ``certify`` command. Returns 0 on success, 2 on a usage or input error (message on stderr),
    130 on Ctrl-C (the rows written so far are kept; ``--resume`` continues the log).

    ``prog`` names the command in messages; ``report=False`` skips the radius-cap note and the final
    table (for callers that print their own, such as the demo and the ablation script).
    """
    return interruptible(prog, INTERRUPT_NOTE)(_certify_main)(argv, prog, report)


def _certify_main(argv: Sequence[str] | None, prog: str, report: bool) -> int:
    argv = strip_separator(sys.argv[1:] if argv is None else argv)
    parser = build_certify_parser(prog)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        if args.nproc is not None:
            return _launch(args, argv, prog)
        return _run_certify(args, prog, report)
    except _Reported:
        return 2
    except CertifyError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2


def _launch(args, argv: list, prog: str) -> int:
    """``--nproc N``: run the same command in N workers started by torch's elastic launcher."""
    if launched():
        raise CertifyError("--nproc starts the workers itself; under torchrun drop it (torchrun's --nproc_per_node "
                           "says how many)")
    if args.nproc == 1:
        return _run_certify(args, prog)
    return launch(args.nproc, "certify", without_nproc(argv), prog=prog, note=INTERRUPT_NOTE.replace("continue the log", "continue the log (with any number of workers)"))


# --------------------------------------------------------------------------------------- umbrella


def _usage() -> str:
    return (f"usage: {PROG} [--version] {{{','.join(COMMANDS)}}} [options]\n\n"
            "  train     train a base classifier (STN, Gaussian augmentation or plain)\n"
            "  certify   certify a checkpoint on a dataset (Renyi, Cohen, PixelDP radii)\n"
            "  analyze   certified accuracy vs radius from certification logs\n"
            "  attack    empirical attacks (PGD, C&W, boundary) on the smoothed classifier\n\n"
            f"`{PROG} COMMAND --help` describes each command.\n")


def _call(fn, argv) -> int:
    try:
        rc = fn(argv)
    except SystemExit as exc:  # sub-commands whose argparse exits
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return int(rc or 0)


@interruptible(PROG)
def main(argv: Sequence[str] | None = None) -> int:
    """``renyi-cert {train,certify,analyze,attack} ...``: dispatch to the sub-command's ``main``.

    ``renyi-cert --version`` prints the version. Returns the sub-command's exit status (130 on Ctrl-C).
    """
    argv = strip_separator(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        stream = sys.stdout if argv else sys.stderr
        stream.write(_usage())
        return 0 if argv else 2
    if argv[0] == "--version":
        import renyi_cert

        print(f"{PROG} {renyi_cert.__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    if command == "certify":
        return certify_main(rest, prog=f"{PROG} certify")
    if command == "analyze":
        from renyi_cert.analyze import main as analyze_main

        return _call(lambda a: analyze_main(a, prog=f"{PROG} analyze"), rest)
    if command == "train":
        from renyi_cert_torch.train_cli import main as train_main

        return _call(train_main, rest)
    if command == "attack":
        try:
            from renyi_cert_torch.attack_cli import main as attack_main
        except ImportError as exc:
            print(f"{PROG}: error: the attack command is not available: {exc}", file=sys.stderr)
            return 2
        return _call(attack_main, rest)
    sys.stderr.write(_usage())
    print(f"{PROG}: error: unknown command ({command!r}); choose one of {', '.join(COMMANDS)}", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
