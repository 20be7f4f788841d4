"""Tests for renyi_cert_torch.train_cli: the `renyi-cert train` command (flags, --out, Ctrl-C, a run)."""

import logging
import os
import re

import pytest

torch = pytest.importorskip("torch")

from renyi_cert_torch import train_cli  # noqa: E402
from renyi_cert_torch.train import load_checkpoint  # noqa: E402
from renyi_cert_torch.train_cli import main as train_main  # noqa: E402


@pytest.mark.parametrize("argv, match", [
    (["--sigma", "-1"], r"argument --sigma: sigma \('-1'\) must be finite and >= 0"),
    (["--mode", "stn", "--sigma", "0"], r"sigma \(0\.0\) must be > 0 for mode 'stn'"),
    (["--mode", "gaussian", "--sigma", "0"], r"sigma \(0\.0\) must be > 0 for mode 'gaussian'"),
    (["--sigma", "abc"], r"argument --sigma: sigma \('abc'\) must be a number >= 0"),
    (["--gamma", "-1"], r"argument --gamma: gamma \('-1'\) must be finite and >= 0"),
    (["--epochs", "0"], r"epochs \(0\) must be an integer >= 1"),
    (["--batch-size", "0"], r"batch-size \(0\) must be an integer >= 1"),
    (["--lr", "0"], r"argument --lr: lr \('0'\) must be finite and > 0"),
    (["--seed", "-3"], r"seed \(-3\) must be an integer >= 0"),
    (["--max-train", "0"], r"max-train \(0\) must be an integer >= 1"),
    (["--dataset", "svhn"], r"argument --dataset: dataset \('svhn'\) must be one of mnist, mnist5k, cifar10"),
    (["--mode", "adv"], r"argument --mode: mode \('adv'\) must be one of stn, gaussian, none, pgd-at, trades"),
    (["--mode", "pgd-at", "--sigma", "0.5"], r"--sigma \(0\.5\) is not used by --mode pgd-at, which trains without"),
    (["--attack-eps", "0.3"], r"--attack-eps \(0\.3\) is used only by --mode pgd-at and --mode trades; drop "
                              r"--attack-eps with --mode stn"),
    (["--mode", "none", "--attack-steps", "7"], r"--attack-steps \(7\) is used only by --mode pgd-at"),
    (["--mode", "pgd-at", "--beta", "1"], r"--beta \(1\) is used only by --mode trades; drop --beta with --mode pgd-at"),
    (["--mode", "trades", "--attack-norm", "l2"], r"--attack-eps is required with --attack-norm l2"),
    (["--mode", "pgd-at", "--attack-eps", "8"], r"attack_eps \(8\.0\) must be <= 1 for an l_inf attack: pixels are in "
                                                r"\[0, 1\] \(did you mean 8/255 = 0\.03137\?\)"),
    (["--mode", "pgd-at", "--attack-eps", "0"], r"argument --attack-eps: attack-eps \('0'\) must be finite and > 0"),
    (["--mode", "pgd-at", "--attack-steps", "0"], r"argument --attack-steps: attack-steps \(0\) must be an integer >= 1"),
    (["--mode", "pgd-at", "--attack-step-size", "-1"],
     r"argument --attack-step-size: attack-step-size \('-1'\) must be finite and > 0"),
    (["--mode", "pgd-at", "--attack-norm", "l1"], r"argument --attack-norm: attack-norm \('l1'\) must be one of linf, l2"),
    (["--mode", "trades", "--beta", "-1"], r"argument --beta: beta \('-1'\) must be finite and >= 0"),
    (["--arch", "resnet"], r"arch \('resnet'\) must be one of 'mnist_cnn', 'cifar_cnn7'"),
    (["--arch", "nope_mod:Net"], r"arch \('nope_mod:Net'\) is an import path; .* pass --trust-arch-import"),
    (["--arch", "nope_mod:Net", "--trust-arch-import"], r"cannot import module 'nope_mod'"),
    (["--mode", "none", "--sigma", "0.5"], r"--sigma \(0\.5\) is not used by --mode none"),
    (["--mode", "gaussian", "--gamma", "2"], r"--gamma \(2\) is used only by --mode stn"),
    (["--device", "tpu"], r"argument --device: device \('tpu'\) must be one of auto, cpu, cuda or cuda:<index>"),
    (["--bogus"], r"unrecognized arguments: --bogus"),
])
def test_cli_errors(argv, match, capsys):
    with pytest.raises(SystemExit) as info:
        train_main(argv)
    assert info.value.code == 2
    assert re.search(match, capsys.readouterr().err)


def test_cli_cuda_unavailable(capsys):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(SystemExit):
        train_main(["--device", "cuda"])
    assert "CUDA is not available" in capsys.readouterr().err


def test_cli_out_is_directory(tmp_path, capsys):
    with pytest.raises(SystemExit):
        train_main(["--out", str(tmp_path)])
    assert "is a folder; give a file path" in capsys.readouterr().err


def _fail_if_trained(monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("training started before --out was checked")

    monkeypatch.setattr(train_cli, "train", no_training)


def test_cli_unwritable_out_is_refused_before_training(tmp_path, capsys, monkeypatch):
    _fail_if_trained(monkeypatch)
    (tmp_path / "file").write_text("x")
    with pytest.raises(SystemExit) as info:
        train_main(["--epochs", "1", "--device", "cpu", "--out", str(tmp_path / "file" / "m.pt")])
    assert info.value.code == 2
    assert "--out" in (err := capsys.readouterr().err) and "is a file, not a folder" in err
    ro = tmp_path / "ro"
    ro.mkdir()
    real_access = os.access
    # A read-only folder (simulated: root may write anywhere).
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if str(p) == str(ro) else real_access(p, mode, **kw))
    with pytest.raises(SystemExit) as info:
        train_main(["--epochs", "1", "--device", "cpu", "--out", str(ro / "m.pt")])
    assert info.value.code == 2
    assert f"--out ({str(ro / 'm.pt')!r}) cannot be written: the folder {str(ro)!r} is not writable" \
        in capsys.readouterr().err


def test_cli_existing_out_needs_force(tmp_path, capsys, monkeypatch):
    _fail_if_trained(monkeypatch)
    out = tmp_path / "x.pt"
    out.write_bytes(b"precious")
    with pytest.raises(SystemExit) as info:
        train_main(["--epochs", "1", "--device", "cpu", "--out", str(out)])
    assert info.value.code == 2
    assert f"--out ({str(out)!r}) exists; use --force to overwrite it" in capsys.readouterr().err
    assert out.read_bytes() == b"precious"


def test_cli_interrupt_returns_130_and_keeps_out(tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_cli, "train", interrupted)
    out = tmp_path / "x.pt"
    out.write_bytes(b"old")
    assert train_main(["--epochs", "1", "--device", "cpu", "--force", "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert err.startswith("renyi-cert train: interrupted") and "Traceback" not in err
    assert out.read_bytes() == b"old"


def test_cli_help_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        train_main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: 10)" in text and "(default: 128)" in text and "(default: 0)" in text
    assert "--trust-arch-import" in text and "--force" in text


def test_cli_missing_data(tmp_path, capsys):
    assert train_main(["--dataset", "mnist", "--data-root", str(tmp_path), "--out", str(tmp_path / "m.pt")]) == 1
    err = capsys.readouterr().err
    assert "MNIST train files not found" in err and str(tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte") in err


def test_cli_trains_and_saves(tmp_path, capsys, caplog):
    out = tmp_path / "run.pt"
    with caplog.at_level(logging.INFO, logger="renyi_cert_torch.train"):
        code = train_main(["--max-train", "128", "--epochs", "1", "--batch-size", "64", "--mode", "gaussian",
                           "--sigma", "0.5", "--seed", "3", "--device", "cpu", "--no-progress", "--out", str(out)])
    assert code == 0
    stdout = capsys.readouterr().out
    assert f"saved {out}" in stdout and "test accuracy: clean" in stdout and "noisy (sigma 0.5" in stdout
    assert "epoch 1/1: loss" in caplog.text and "train accuracy" in caplog.text
    _, cfg = load_checkpoint(out)
    assert (cfg["mode"], cfg["sigma"], cfg["seed"], cfg["max_train"], cfg["gamma"]) == ("gaussian", 0.5, 3, 128, 0.0)


def test_cli_mode_none_with_sigma_is_refused(tmp_path, capsys, monkeypatch):
    _fail_if_trained(monkeypatch)
    with pytest.raises(SystemExit) as info:
        train_main(["--max-train", "32", "--epochs", "1", "--mode", "none", "--sigma", "0.7",
                    "--device", "cpu", "--no-progress", "--no-eval", "--out", str(tmp_path / "n.pt")])
    assert info.value.code == 2
    assert "--sigma (0.7) is not used by --mode none" in capsys.readouterr().err
    assert not (tmp_path / "n.pt").exists()


def test_cli_import_path_arch_needs_trust(tmp_path, capsys, monkeypatch):
    marker = tmp_path / "imported"
    (tmp_path / "cli_marker_models.py").write_text(
        "import pathlib\n"
        f"pathlib.Path({str(marker)!r}).write_text('x')\n"
        "from renyi_cert_torch.models import MnistCNN as Net\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "m.pt"
    argv = ["--arch", "cli_marker_models:Net", "--max-train", "32", "--epochs", "1", "--batch-size", "32",
            "--device", "cpu", "--no-progress", "--no-eval", "--out", str(out)]
    with pytest.raises(SystemExit) as info:
        train_main(argv)
    assert info.value.code == 2 and "--trust-arch-import" in capsys.readouterr().err
    assert not marker.exists() and not out.exists()
    assert train_main(argv + ["--trust-arch-import"]) == 0
    assert marker.exists()
    model, cfg = load_checkpoint(out, trust_arch_import=True)
    assert cfg["arch"] == "cli_marker_models:Net"


def test_diverged_training_writes_no_checkpoint(tmp_path, capsys):
    # Adam at lr 1e12 turns the weights into NaN in the first epoch (measured); a NaN model would
    # certify nothing, so the command stops with one line and saves nothing.
    out = tmp_path / "m.pt"
    rc = train_main(["--dataset", "mnist5k", "--mode", "gaussian", "--sigma", "0.5", "--epochs", "2",
                     "--max-train", "256", "--batch-size", "64", "--lr", "1e12", "--device", "cpu",
                     "--out", str(out), "--no-progress", "--no-eval"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "renyi-cert train: error: training diverged in epoch 1: the mean loss is nan" in err
    assert "no checkpoint written" in err
    assert not out.exists()


def test_cli_adversarial_mode_trains_records_the_attack_and_reports_its_cost(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(train_cli, "ATTACK_EVAL_MAX", 40)
    monkeypatch.chdir(tmp_path)  # the default --out goes to runs/ under the current folder
    code = train_main(["--mode", "trades", "--max-train", "64", "--epochs", "1", "--batch-size", "32",
                       "--attack-steps", "2", "--beta", "2", "--device", "cpu", "--no-progress"])
    assert code == 0
    out = tmp_path / "runs" / "mnist5k-trades-linf0.3-seed0.pt"
    _, cfg = load_checkpoint(out)
    assert (cfg["mode"], cfg["attack_norm"], cfg["attack_eps"], cfg["attack_steps"], cfg["beta"], cfg["sigma"]) == \
        ("trades", "linf", 0.3, 2, 2.0, 0.0)
    stdout = " ".join(capsys.readouterr().out.split())
    assert re.search(r"cost: [\d.]+ s per epoch \(mean of 1\) = [\d.]+ x a plain epoch \([\d.]+ s, estimated from a "
                     r"few timed plain steps of the same model\); nominal 4 x", stdout), stdout
    assert re.search(r"under the training attack \(PGD l_inf, eps 0\.3, 2 steps of 0\.375, first 40 images\) "
                     r"[01]\.\d{4}", stdout), stdout
