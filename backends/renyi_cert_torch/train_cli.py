"""``renyi-cert train``: train a base classifier and save a renyi_cert checkpoint.

Everything that can be checked before training is (flags, ``--arch`` and its trust, whether
``--out`` can be written and, when it exists, ``--force``). Invalid flags exit through
``argparse`` (``SystemExit`` with status 2 and the reason on stderr); missing dataset files print
the reason and return 1; Ctrl-C prints one line and returns 130 (a checkpoint is written only
after the last epoch, atomically); success returns 0. The training itself is
:func:`renyi_cert_torch.train.train`.

Examples::

    renyi-cert train --dataset mnist5k --mode stn --sigma 0.7 --epochs 6 --out runs/stn.pt
    renyi-cert train --dataset mnist5k --mode pgd-at --epochs 6 --out runs/pgd-at.pt   # Madry et al.
    renyi-cert train --dataset mnist5k --mode trades --attack-steps 10 --out runs/trades.pt

``--mode pgd-at`` and ``--mode trades`` take the training attack from ``--attack-norm``,
``--attack-eps``, ``--attack-steps``, ``--attack-step-size`` and (TRADES) ``--beta``, with the
published defaults (:data:`renyi_cert_torch.train.PUBLISHED_ATTACKS`). After training the
command prints the mean seconds per epoch and the ratio to a plain epoch, for which it times a
few plain training steps of the same model and batch size (a copy; the saved weights are not
touched), next to the nominal ratio (:func:`renyi_cert_torch.train.nominal_step_cost`). The test
report of an adversarial mode adds the accuracy under its training attack (PGD with
cross-entropy) on the first ``ATTACK_EVAL_MAX`` test images.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path
from typing import Sequence

from renyi_cert._cli import choice_arg, device_arg, int_arg, interruptible, real_arg
from renyi_cert._files import OutputPathError, check_output_path

from .attacks import NORMS
from .data import DATASETS, DataSplit, load_dataset
from .devices import resolve_device
from .models import ARCHITECTURES, build_model
from .train import (ADVERSARIAL_MODES, DEFAULT_GAMMA, MODES, NOISY_MODES, TrainConfig, TrainingDivergedError,
                    adversarial_accuracy, evaluate_accuracy, nominal_step_cost, plain_epoch_seconds, save_checkpoint,
                    train)
from .train import logger as train_logger
from .train_config import NOISE_NAMES

__all__ = ["PROG", "ATTACK_EVAL_MAX", "build_parser", "main"]

PROG = "renyi-cert train"
ATTACK_EVAL_MAX = 500  # test images attacked after training an adversarial mode
ATTACK_FLAGS = ("attack_norm", "attack_eps", "attack_steps", "attack_step_size")
INTERRUPT_NOTE = "a checkpoint is written only after the last epoch (atomically), so --out was left as it was " \
                 "unless 'saved' was printed"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``renyi-cert train``."""
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Train a base classifier for randomized smoothing (STN, Gaussian augmentation or plain) "
                    "or an empirical baseline (PGD adversarial training, TRADES) and save a renyi_cert checkpoint.")
    p.add_argument("--dataset", type=choice_arg("dataset", DATASETS), default="mnist5k",
                   help=f"one of {', '.join(DATASETS)} (default mnist5k)")
    p.add_argument("--arch", default=None,
                   help=f"one of {', '.join(ARCHITECTURES)} or 'package.module:ClassName' (an import path needs "
                        "--trust-arch-import) (default: mnist_cnn for MNIST, cifar_cnn7 for CIFAR-10)")
    p.add_argument("--trust-arch-import", action="store_true",
                   help="allow --arch to be an import path; importing it runs that module's code")
    p.add_argument("--mode", type=choice_arg("mode", MODES), default="stn",
                   help=f"one of {', '.join(MODES)} (default stn)")
    p.add_argument("--sigma", type=real_arg("sigma", 0.0), default=None,
                   help="training noise std in [0,1] pixel units (default: 0.7 MNIST, 100/255 CIFAR-10; "
                        "not used by modes none, pgd-at and trades)")
    p.add_argument("--noise", type=choice_arg("noise", NOISE_NAMES), default="gaussian",
                   help="the noise of modes stn and gaussian, --sigma its scale: gaussian (l2 certificates), "
                        "laplace or uniform (l1 certificates) (default gaussian)")
    p.add_argument("--gamma", type=real_arg("gamma", 0.0), default=None,
                   help=f"STN stability weight (default {DEFAULT_GAMMA:g}; used only by mode stn)")
    p.add_argument("--attack-norm", type=choice_arg("attack-norm", NORMS), default=None,
                   help="pgd-at/trades: norm of the training attack, linf or l2 (default linf)")
    p.add_argument("--attack-eps", type=real_arg("attack-eps", 0.0, strict=True), default=None,
                   help="pgd-at/trades: radius of the training attack in [0,1] pixel units (default: the published "
                        "l_inf value, 0.3 MNIST; pgd-at 8/255, trades 0.031 CIFAR-10; required with l2)")
    p.add_argument("--attack-steps", type=int_arg("attack-steps"), default=None,
                   help="pgd-at/trades: PGD steps (default: 40 MNIST; 10 CIFAR-10)")
    p.add_argument("--attack-step-size", type=real_arg("attack-step-size", 0.0, strict=True), default=None,
                   help="pgd-at/trades: PGD step (default: the published one, 0.01 MNIST, for the published eps and "
                        "steps, else 2.5*eps/steps)")
    p.add_argument("--beta", type=real_arg("beta", 0.0), default=None,
                   help="trades: weight of the KL term (default 1.0 MNIST, 6.0 CIFAR-10: the official scripts)")
    p.add_argument("--epochs", type=int_arg("epochs"), default=10,
                   help="passes over the training set (default: %(default)s)")
    p.add_argument("--batch-size", type=int_arg("batch-size"), default=128,
                   help="images per training step (default: %(default)s)")
    p.add_argument("--lr", type=real_arg("lr", 0.0, strict=True), default=1e-3,
                   help="Adam learning rate (default 1e-3)")
    p.add_argument("--seed", type=int_arg("seed", 0), default=0,
                   help="seed of initialisation, dropout, shuffling and noise (default: %(default)s)")
    p.add_argument("--data-root", default=None, help="folder with MNIST/raw or cifar-10-batches-py (default ./data)")
    p.add_argument("--device", type=device_arg(), default="auto", help="auto (CUDA when available), cpu or cuda")
    p.add_argument("--out", default=None,
                   help="checkpoint path (default runs/<dataset>-<mode>-sigma<sigma>-seed<seed>.pt)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --out")
    p.add_argument("--max-train", type=int_arg("max-train"), default=None,
                   help="train on the first N training images only")
    p.add_argument("--no-eval", action="store_true", help="skip the clean/noisy test accuracy after training")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _check_combination(parser: argparse.ArgumentParser, args) -> None:
    """Flags that are valid alone but not together (exits through ``parser.error``)."""
    if args.mode not in NOISY_MODES and args.sigma is not None and args.sigma > 0:
        parser.error(f"--sigma ({args.sigma:g}) is not used by --mode {args.mode}, which trains without noise; "
                     "drop --sigma, or choose --mode stn or gaussian")
    if args.mode != "stn" and args.gamma is not None and args.gamma > 0:
        parser.error(f"--gamma ({args.gamma:g}) is used only by --mode stn; drop --gamma with --mode {args.mode}")
    if args.mode not in ADVERSARIAL_MODES:
        for name in ATTACK_FLAGS:
            if getattr(args, name) is not None:
                flag = "--" + name.replace("_", "-")
                parser.error(f"{flag} ({getattr(args, name)}) is used only by --mode pgd-at and --mode trades; "
                             f"drop {flag} with --mode {args.mode}")
    if args.mode != "trades" and args.beta is not None:
        parser.error(f"--beta ({args.beta:g}) is used only by --mode trades; drop --beta with --mode {args.mode}")
    if args.attack_norm == "l2" and args.attack_eps is None:
        parser.error("--attack-eps is required with --attack-norm l2 (the published defaults are l_inf radii)")


def _config(parser: argparse.ArgumentParser, args) -> TrainConfig:
    """The run's config, its warnings printed; the architecture built once (and its trust checked)
    before any data is loaded."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            config = TrainConfig(dataset=args.dataset, arch=args.arch, mode=args.mode, sigma=args.sigma,
                                 noise=None if args.noise == "gaussian" else args.noise,
                                 gamma=args.gamma, attack_norm=args.attack_norm, attack_eps=args.attack_eps,
                                 attack_steps=args.attack_steps, attack_step_size=args.attack_step_size,
                                 beta=args.beta, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                 seed=args.seed, max_train=args.max_train, data_root=args.data_root)
        for w in caught:
            print(f"{PROG}: warning: {w.message}", file=sys.stderr)
        build_model(config.arch, num_classes=config.num_classes, trust_arch_import=args.trust_arch_import)
    except ValueError as exc:
        parser.error(str(exc).replace("trust_arch_import=True / ", ""))
    return config


def _out_path(parser: argparse.ArgumentParser, args, config: TrainConfig) -> Path:
    """``--out`` (or the default name), writable, and existing only with ``--force``."""
    noise = (f"{config.attack_norm}{config.attack_eps:g}" if config.adversary else
             f"{'' if config.noise is None else config.noise + '-'}sigma{config.sigma:g}")
    default = Path("runs") / f"{config.dataset}-{config.mode}-{noise}-seed{config.seed}.pt"
    out = Path(args.out) if args.out else default
    try:
        if out.exists() and not out.is_dir() and not args.force:
            raise OutputPathError(f"--out ({str(out)!r}) exists; use --force to overwrite it")
        check_output_path(out, name="--out")
    except OutputPathError as exc:
        parser.error(str(exc))
    return out


def _report_test_accuracy(model, config: TrainConfig, device) -> None:
    """Clean, (for a noisy mode) noisy and (for an adversarial mode) PGD test accuracy of the base classifier."""
    test = load_dataset(config.dataset, "test", data_root=config.data_root)
    line = f"test accuracy: clean {evaluate_accuracy(model, test, device=device):.4f}"
    if config.sigma > 0:
        noise = config.training_noise if config.training_noise is not None else config.sigma
        noisy = evaluate_accuracy(model, test, sigma=noise, device=device, seed=config.seed)
        what = f"sigma {config.sigma:g}" if config.noise is None else f"{config.noise} {config.sigma:g}"
        line += f", noisy ({what}, one draw per image) {noisy:.4f}"
    if config.adversary is not None:
        n = min(ATTACK_EVAL_MAX, len(test))
        first = DataSplit(test.x[:n], test.y[:n], test.num_classes, test.name, test.split)
        robust = adversarial_accuracy(model, first, config.adversary, device=device, seed=config.seed)
        line += f", under the training attack ({config.adversary.describe()}, first {n} images) {robust:.4f}"
    print(line)


def _report_cost(result, config: TrainConfig, device) -> None:
    """Mean seconds per epoch, and its ratio to a plain epoch timed on a few steps (the nominal ratio beside it)."""
    per_epoch = result.seconds / len(result.history)
    line = f"cost: {per_epoch:.1f} s per epoch (mean of {len(result.history)})"
    if config.mode != "none":
        data = load_dataset(config.dataset, "train", data_root=config.data_root)
        n = len(data) if config.max_train is None else min(config.max_train, len(data))
        plain = plain_epoch_seconds(result.model, data.x[:n], data.y[:n], batch_size=config.batch_size,
                                    device=device)
        line += (f" = {per_epoch / plain:.1f} x a plain epoch ({plain:.2f} s, estimated from a few timed plain "
                 f"steps of the same model); nominal {nominal_step_cost(config.mode, config.adversary):g} x")
    print(line)


@interruptible(PROG, INTERRUPT_NOTE)
def main(argv: Sequence[str] | None = None) -> int:
    """The ``train`` command: parse ``argv``, train, save the checkpoint, report test accuracy.

    Returns 0 on success, 1 when the dataset's files are missing, 130 on Ctrl-C; invalid flags
    exit through argparse (``SystemExit(2)``).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_combination(parser, args)
    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        parser.error(str(exc))
    config = _config(parser, args)
    out = _out_path(parser, args, config)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    train_logger.setLevel(logging.INFO)
    try:
        result = train(config, device=device, progress=not args.no_progress, trust_arch_import=args.trust_arch_import)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except TrainingDivergedError as exc:  # nothing is saved: a NaN model would certify nothing
        print(f"{PROG}: error: {exc}; no checkpoint written", file=sys.stderr)
        return 1
    save_checkpoint(out, result.model, config)
    print(f"saved {out} ({result.seconds:.1f} s training, final train accuracy "
          f"{result.history[-1].train_accuracy:.4f})")
    _report_cost(result, config, device)
    if not args.no_eval:
        _report_test_accuracy(result.model, config, device)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
