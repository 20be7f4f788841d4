"""What the command-line tools promise about their outputs (issue 7, "Trust").

* ``certify`` refuses the procedures without the 1 - alpha guarantee unless
  ``--allow-unguaranteed`` is given (and then marks its rows ``guaranteed = 0``), and refuses a
  checkpoint whose architecture is an import path unless ``--trust-arch-import`` is given;
* one writer per log: a second ``certify`` on the same ``--out`` stops at once, naming the holder;
* the settings file follows a resumed run, and is replaced atomically;
* every error a user can cause is one clean message (no traceback), given before the model loads
  where it can be, and Ctrl-C is one line with exit status 130.

The checkpoints here are untrained (certifying them is quick; their accuracy does not matter).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mlxtend")

from renyi_cert import analyze  # noqa: E402
from renyi_cert._files import exclusive_lock  # noqa: E402
from renyi_cert_torch import attacks  # noqa: E402
from renyi_cert_torch.attack_cli import main as attack_main  # noqa: E402
from renyi_cert_torch.cli import certify_main, main  # noqa: E402
from renyi_cert_torch.models import build_model  # noqa: E402
from renyi_cert_torch.smoothing import SmoothedClassifier  # noqa: E402
from renyi_cert_torch.train import save_checkpoint  # noqa: E402

SMALL = ["--n0", "20", "--n", "100", "--batch", "60", "--no-progress"]
REPO = Path(__file__).resolve().parents[1]


def _save(path, arch="mnist_cnn", fill=None):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_model("mnist_cnn")
    if fill is not None:
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(fill)
    return save_checkpoint(path, model, {"arch": arch, "num_classes": 10, "dataset": "mnist5k", "sigma": 0.5})


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return _save(tmp_path_factory.mktemp("trust") / "m.pt")


def certify(ckpt, out, *flags):
    return certify_main(["--checkpoint", str(ckpt), "--out", str(out), *SMALL, *flags])


def rows(path):
    return path.read_text().splitlines()[1:]


def interruptible_call(fn, *args, **kwargs):
    """``fn(*args, **kwargs)``; a KeyboardInterrupt that escapes it fails the test (instead of ending pytest)."""
    try:
        return fn(*args, **kwargs)
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped the command (expected one line and exit status 130)")


# ------------------------------------------------------------------------------ 1. guarantees


@pytest.mark.parametrize("flags", [["--method", "sison-glaz"], ["--method", "goodman"], ["--single-sample-set"]])
def test_unguaranteed_procedures_need_the_switch_before_the_model_loads(flags, tmp_path, capsys):
    rc = certify_main(["--checkpoint", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "o.tsv"), *flags])
    assert rc == 2
    err = capsys.readouterr().err
    assert "has no 1-alpha guarantee" in err and "pass --allow-unguaranteed" in err
    assert "does not exist" not in err  # refused before the checkpoint is read
    assert not (tmp_path / "o.tsv").exists()


def test_allow_unguaranteed_marks_the_rows(ckpt, tmp_path, capsys):
    tsv = tmp_path / "sg.tsv"
    assert certify(ckpt, tsv, "--max", "2", "--method", "sison-glaz", "--allow-unguaranteed") == 0
    captured = capsys.readouterr()
    # the radius-cap note works with the switch (p1_lower is capped, so the radii are finite)
    assert "the largest certifiable p1 is about alpha^(1/n)" in captured.err
    assert "NO 1-alpha guarantee" in captured.err
    log = analyze.read_log(tsv)
    np.testing.assert_array_equal(log.guaranteed, [0, 0])
    assert all(np.all(np.isfinite(r)) for r in log.radii.values())
    assert "| sg.tsv (not guaranteed) | renyi | 2 |" in captured.out
    assert json.loads((tmp_path / "sg.tsv.json").read_text())["allow_unguaranteed"] is True
    # the switch is a setting of the log: a resume must use it too
    assert certify(ckpt, tsv, "--max", "3", "--method", "sison-glaz", "--resume") == 2
    assert "has no 1-alpha guarantee" in capsys.readouterr().err
    assert certify(ckpt, tsv, "--max", "3", "--resume") == 2
    assert "allow_unguaranteed: True in the log, False now" in capsys.readouterr().err


def test_arch_import_path_needs_trust(tmp_path, capsys):
    path = _save(tmp_path / "imp.pt", arch="renyi_cert_torch.models:MnistCNN")
    assert certify(path, tmp_path / "a.tsv", "--max", "1") == 2
    assert "is an import path" in capsys.readouterr().err
    assert certify(path, tmp_path / "a.tsv", "--max", "1", "--trust-arch-import", "--force") == 0
    attack = ["--checkpoint", str(path), "--eps", "0", "--steps", "1", "--votes", "3", "--max", "2", "--device", "cpu",
              "--out", str(tmp_path / "att.tsv"), "--no-plot", "--no-progress"]
    assert attack_main(attack) == 2
    assert "is an import path" in capsys.readouterr().err
    assert attack_main([*attack, "--trust-arch-import"]) == 0
    assert (tmp_path / "att.tsv").is_file()


def test_help_documents_flags_and_defaults(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "2000")  # one help entry per line
    assert certify_main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--allow-unguaranteed" in out and "NO 1-alpha guarantee" in out and "--trust-arch-import" in out
    assert "noisy copies per forward pass (default: 1000)" in out
    assert "radius grid of the final table (default: 0,0.25,0.5,0.75,1,1.25,1.5,1.75,2)" in out
    assert "certify at most N examples (default: all of the split)" in out
    assert attack_main(["--help"]) == 0
    out = capsys.readouterr().out
    assert f"images per forward pass (default {attacks.DEFAULT_BATCH_SIZE})" in out and "--trust-arch-import" in out
    assert f"(default {attacks.DEFAULT_EOT} when the attacked model is noisy" in out
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"renyi-cert {__import__('renyi_cert').__version__}\n"
    assert main(["analyze", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: renyi-cert analyze")


# ------------------------------------------------------------------------- 2. one writer per log


def test_a_second_writer_is_refused(ckpt, tmp_path, capsys):
    tsv = tmp_path / "run.tsv"
    with exclusive_lock(tsv):  # another run holds the log
        assert certify(ckpt, tsv, "--max", "1") == 2
        assert f"is in use by another process (pid {os.getpid()}" in capsys.readouterr().err
        assert not tsv.exists()
    assert certify(ckpt, tsv, "--max", "1") == 0
    before = tsv.read_text()
    with exclusive_lock(tsv):
        assert certify(ckpt, tsv, "--max", "2", "--resume") == 2
        assert f"(pid {os.getpid()}" in capsys.readouterr().err
    assert tsv.read_text() == before


def _wait_for(predicate, what, timeout=180.0):
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_two_processes_on_one_log(ckpt, tmp_path):
    """Two real `certify` processes: the second stops at once; Ctrl-C on the first keeps its rows."""
    tsv = tmp_path / "run.tsv"
    args = ["certify", "--checkpoint", str(ckpt), "--out", str(tsv), "--n0", "20", "--n", "2000", "--batch", "500",
            "--no-progress", "--max", "500", "--device", "cpu"]  # a GPU would finish before the second run starts
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "backends"),
                                                        os.environ.get("PYTHONPATH", "")])}
    # SIGINT must raise KeyboardInterrupt in the child even if this test runs with SIGINT ignored
    code = ("import signal, sys, runpy; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "sys.argv = ['renyi-cert'] + sys.argv[1:]; runpy.run_module('renyi_cert_torch.cli', run_name='__main__')")
    first = subprocess.Popen([sys.executable, "-c", code, *args], env=env, cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lock = Path(str(tsv) + ".lock")

        def locked():
            return lock.exists() and lock.read_text().strip() == str(first.pid)

        # the lock is taken before the log is created
        _wait_for(lambda: locked() or tsv.exists() or first.poll() is not None, "the first run to start")
        assert first.poll() is None, first.communicate()
        assert locked(), "the first run writes its log without holding the lock"
        second = subprocess.run([sys.executable, "-m", "renyi_cert_torch.cli", *args, "--resume"], env=env,
                                cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert second.returncode == 2, second.stderr
        assert f"is in use by another process (pid {first.pid}" in second.stderr
        assert "Traceback" not in second.stderr
        _wait_for(lambda: tsv.exists() and len(tsv.read_text().splitlines()) >= 3 or first.poll() is not None,
                  "two rows of the first run")
        assert first.poll() is None, first.communicate()
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 130, err
    assert "renyi-cert certify: interrupted; the rows written so far are kept; run again with --resume" in err
    assert "Traceback" not in err
    done = len(rows(tsv))
    assert done >= 2
    # resume completes the log; every example appears once
    assert certify_main(["--checkpoint", str(ckpt), "--out", str(tsv), "--n0", "20", "--n", "2000", "--batch", "500",
                         "--no-progress", "--max", str(done + 1), "--resume"]) == 0
    log = analyze.read_log(tsv)
    np.testing.assert_array_equal(log.idx, np.arange(done + 1))


def test_resume_refuses_a_log_with_duplicate_rows(ckpt, tmp_path, capsys):
    tsv = tmp_path / "d.tsv"
    assert certify(ckpt, tsv, "--max", "2") == 0
    lines = tsv.read_text().splitlines()
    tsv.write_text("\n".join(lines + lines[1:2]) + "\n")  # two runs wrote idx 0
    capsys.readouterr()
    assert certify(ckpt, tsv, "--max", "3", "--resume") == 2
    assert "holds idx 0 more than once (two runs may have written to it)" in capsys.readouterr().err
    assert main(["analyze", str(tsv)]) == 2
    assert "duplicate idx 0 (each example must appear once" in capsys.readouterr().err


# ----------------------------------------------------------------------------- 3. settings file


def test_settings_follow_a_resumed_run(ckpt, tmp_path, capsys):
    tsv = tmp_path / "s.tsv"
    assert certify(ckpt, tsv, "--max", "1") == 0
    assert certify_main(["--checkpoint", str(ckpt), "--out", str(tsv), "--n0", "20", "--n", "100", "--batch", "30",
                         "--no-progress", "--max", "3", "--resume"]) == 0
    assert "batch was 60 and is now 30" in capsys.readouterr().err
    settings = json.loads((tmp_path / "s.tsv.json").read_text())
    assert settings["batch"] == 30  # the current run's
    assert [(r["first_row"], r["batch"]) for r in settings["runs"]] == [(0, 60), (1, 30)]
    assert all(r["device"] == settings["device"] and r["started"] for r in settings["runs"])
    assert len(rows(tsv)) == 3


def test_settings_file_must_be_an_object(ckpt, tmp_path, capsys):
    tsv = tmp_path / "o.tsv"
    assert certify(ckpt, tsv, "--max", "1") == 0
    (tmp_path / "o.tsv.json").write_text("[1, 2]\n")
    capsys.readouterr()
    assert certify(ckpt, tsv, "--max", "2", "--resume") == 2
    err = capsys.readouterr().err
    assert "o.tsv.json holds a JSON list, not an object of settings" in err and "Traceback" not in err


def test_settings_file_is_replaced_atomically(ckpt, tmp_path, monkeypatch):
    tsv = tmp_path / "a.tsv"
    assert certify(ckpt, tsv, "--max", "1") == 0
    sidecar = tmp_path / "a.tsv.json"
    before = sidecar.read_text()
    write_text = Path.write_text

    def disk_full(self, data, *args, **kwargs):
        write_text(self, data[:20], *args, **kwargs)
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_text", disk_full)
    with pytest.raises(OSError, match="disk full"):
        certify(ckpt, tsv, "--max", "1", "--force")
    monkeypatch.undo()
    assert sidecar.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pdf", "a.png", "a.tsv", "a.tsv.json", "a.tsv.lock"]


# ------------------------------------------------------------------------------ 4. clean errors


def test_out_that_cannot_be_written_is_refused_before_the_model_loads(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    missing = str(tmp_path / "missing.pt")
    assert certify_main(["--checkpoint", missing, "--out", str(blocker / "o.tsv")]) == 2
    err = capsys.readouterr().err
    assert f"'{blocker}' is a file, not a folder" in err and "does not exist" not in err
    assert attack_main(["--checkpoint", missing, "--out", str(blocker / "a.tsv")]) == 2
    err = capsys.readouterr().err
    assert f"'{blocker}' is a file, not a folder" in err and "does not exist" not in err


def test_attack_never_overwrites_an_existing_out_without_force(tmp_path, ckpt, capsys):
    out = tmp_path / "attack.tsv"
    out.write_text("an earlier run's results\n")
    base = ["--checkpoint", str(ckpt), "--attack", "pgd", "--eps", "0,0.5", "--steps", "1", "--eot", "1",
            "--votes", "5", "--max", "2", "--device", "cpu", "--out", str(out), "--no-progress", "--no-plot"]
    assert attack_main(base) == 2
    err = capsys.readouterr().err
    assert f"--out ('{out}') exists; refusing to overwrite it; use --force to overwrite it" in err
    assert out.read_text() == "an earlier run's results\n"
    assert attack_main([*base, "--force"]) == 0
    from renyi_cert_torch.attack_cli import TSV_COLUMNS

    assert out.read_text().splitlines()[0] == "\t".join(TSV_COLUMNS)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_out_in_a_read_only_folder_is_refused_before_the_model_loads(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        missing = str(tmp_path / "missing.pt")
        assert certify_main(["--checkpoint", missing, "--out", str(ro / "o.tsv")]) == 2
        assert "is not writable" in capsys.readouterr().err
        assert attack_main(["--checkpoint", missing, "--out", str(ro / "a.tsv")]) == 2
        assert "is not writable" in capsys.readouterr().err
    finally:
        ro.chmod(0o700)


def test_resume_names_an_idx_out_of_range(ckpt, tmp_path, capsys):
    tsv = tmp_path / "r.tsv"
    assert certify(ckpt, tsv, "--max", "1") == 0
    header, row = tsv.read_text().splitlines()
    tsv.write_text(header + "\n" + "70000" + row[row.index("\t"):] + "\n")
    capsys.readouterr()
    assert certify(ckpt, tsv, "--max", "2", "--resume") == 2
    assert "idx 70000 in the log is out of range for mnist5k test (1000 examples)" in capsys.readouterr().err


def test_a_model_with_nan_weights_is_a_clean_error(tmp_path, capsys):
    path = _save(tmp_path / "nan.pt", fill=float("nan"))
    assert certify(path, tmp_path / "n.tsv", "--max", "2") == 2
    err = capsys.readouterr().err
    assert "error: example idx 0: " in err and "non-finite" in err and "Traceback" not in err


def test_ctrl_c_in_certify_keeps_the_rows(ckpt, tmp_path, capsys, monkeypatch):
    tsv = tmp_path / "c.tsv"
    calls = []
    real = SmoothedClassifier.sample_counts

    def interrupted_at_third(self, *args, **kwargs):  # two draws per example: selection, estimation
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(SmoothedClassifier, "sample_counts", interrupted_at_third)
    assert interruptible_call(certify, ckpt, tsv, "--max", "5") == 130
    err = capsys.readouterr().err
    assert err.rstrip().endswith("certify: interrupted; the rows written so far are kept; run again with --resume "
                                 "to continue the log")
    assert len(rows(tsv)) == 2
    monkeypatch.undo()
    assert certify(ckpt, tsv, "--max", "5", "--resume") == 0
    np.testing.assert_array_equal(analyze.read_log(tsv).idx, np.arange(5))


def test_ctrl_c_in_the_umbrella_and_attack(ckpt, tmp_path, capsys, monkeypatch):
    import renyi_cert_torch.train_cli as train_cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_cli, "main", interrupted)
    assert interruptible_call(main, ["train"]) == 130
    assert capsys.readouterr().err == "renyi-cert: interrupted\n"
    monkeypatch.setattr(attacks, "robust_accuracy", interrupted)
    out = tmp_path / "a.tsv"
    assert interruptible_call(attack_main, ["--checkpoint", str(ckpt), "--max", "2", "--device", "cpu",
                                            "--out", str(out), "--no-progress"]) == 130
    assert capsys.readouterr().err.startswith("renyi-cert attack: interrupted")
    assert not out.exists()
