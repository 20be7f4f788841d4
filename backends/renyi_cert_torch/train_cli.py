"""``renyi-cert train``: train a base classifier and save a renyi_cert checkpoint.

Everything that can be checked before training is (flags, ``--arch`` and its trust, whether
``--out`` can be written and, when it exists, ``--force``). Invalid flags exit through
``argparse`` (``SystemExit`` with status 2 and the reason on stderr); missing dataset files print
the reason and return 1; Ctrl-C prints one line and returns 130 (a checkpoint is written only
after the last epoch, atomically); success returns 0. The training itself is
:func:`renyi_cert_torch.train.train`.

Example::

    renyi-cert train --dataset mnist5k --mode stn --sigma 0.7 --epochs 6 --out runs/stn.pt
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

from .data import DATASETS, load_dataset
from .devices import resolve_device
from .models import ARCHITECTURES, build_model
from .train import DEFAULT_GAMMA, MODES, TrainConfig, TrainingDivergedError, evaluate_accuracy, save_checkpoint, train
from .train import logger as train_logger

__all__ = ["PROG", "build_parser", "main"]

PROG = "renyi-cert train"
INTERRUPT_NOTE = "a checkpoint is written only after the last epoch (atomically), so --out was left as it was " \
                 "unless 'saved' was printed"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``renyi-cert train``."""
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Train a base classifier for randomized smoothing (STN, Gaussian augmentation or plain) "
                    "and save a renyi_cert checkpoint.")
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
                        "not used by mode none)")
    p.add_argument("--gamma", type=real_arg("gamma", 0.0), default=None,
                   help=f"STN stability weight (default {DEFAULT_GAMMA:g}; used only by mode stn)")
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
    if args.mode == "none" and args.sigma is not None and args.sigma > 0:
        parser.error(f"--sigma ({args.sigma:g}) is not used by --mode none, which trains without noise; "
                     "drop --sigma, or choose --mode stn or gaussian")
    if args.mode != "stn" and args.gamma is not None and args.gamma > 0:
        parser.error(f"--gamma ({args.gamma:g}) is used only by --mode stn; drop --gamma with --mode {args.mode}")


def _config(parser: argparse.ArgumentParser, args) -> TrainConfig:
    """The run's config, its warnings printed; the architecture built once (and its trust checked)
    before any data is loaded."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            config = TrainConfig(dataset=args.dataset, arch=args.arch, mode=args.mode, sigma=args.sigma,
                                 gamma=args.gamma, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                 seed=args.seed, max_train=args.max_train, data_root=args.data_root)
        for w in caught:
            print(f"{PROG}: warning: {w.message}", file=sys.stderr)
        build_model(config.arch, num_classes=config.num_classes, trust_arch_import=args.trust_arch_import)
    except ValueError as exc:
        parser.error(str(exc).replace("trust_arch_import=True / ", ""))
    return config


def _out_path(parser: argparse.ArgumentParser, args, config: TrainConfig) -> Path:
    """``--out`` (or the default name), writable, and existing only with ``--force``."""
    default = Path("runs") / f"{config.dataset}-{config.mode}-sigma{config.sigma:g}-seed{config.seed}.pt"
    out = Path(args.out) if args.out else default
    try:
        if out.exists() and not out.is_dir() and not args.force:
            raise OutputPathError(f"--out ({str(out)!r}) exists; use --force to overwrite it")
        check_output_path(out, name="--out")
    except OutputPathError as exc:
        parser.error(str(exc))
    return out


def _report_test_accuracy(model, config: TrainConfig, device) -> None:
    """Clean and (for a noisy mode) noisy test accuracy of the base classifier."""
    test = load_dataset(config.dataset, "test", data_root=config.data_root)
    line = f"test accuracy: clean {evaluate_accuracy(model, test, device=device):.4f}"
    if config.sigma > 0:
        noisy = evaluate_accuracy(model, test, sigma=config.sigma, device=device, seed=config.seed)
        line += f", noisy (sigma {config.sigma:g}, one draw per image) {noisy:.4f}"
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
    if not args.no_eval:
        _report_test_accuracy(result.model, config, device)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
