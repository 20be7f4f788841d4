"""``certify --adaptive``: sequential certification through the command line.

A tiny model (1 epoch on 200 mnist5k digits) is trained once for the module. The rows of an
adaptive run must be exactly what :func:`renyi_cert.sequential.certify_with_plan` gives with the
row's seeded generator, record the forward passes and the stop reason, and the settings file must
record the mode so that ``--resume`` refuses a mismatch.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mlxtend")

from renyi_cert import analyze  # noqa: E402
from renyi_cert.seeds import derive_seed  # noqa: E402
from renyi_cert.sequential import certify_with_plan, plan_adaptive  # noqa: E402
from renyi_cert_torch.cli import certify_main, main  # noqa: E402

pytestmark = pytest.mark.slow

SIGMA = 0.5
BASE = ["--n0", "20", "--batch", "100", "--no-progress", "--skip", "9", "--max", "4", "--device", "cpu"]
TARGET = ["--adaptive", "--target-radius", "0.3", "--n-max", "800", "--n-start", "50"]
ADAPTIVE_STOPS = {"target-reached", "target-out-of-reach", "tolerance-reached", "budget-exhausted"}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "stn.pt"
    rc = main(["train", "--dataset", "mnist5k", "--mode", "stn", "--sigma", str(SIGMA), "--epochs", "1",
               "--max-train", "200", "--batch-size", "50", "--out", str(path), "--no-eval", "--no-progress"])
    assert rc == 0
    return path


def run(checkpoint, out, *extra):
    return certify_main(["--checkpoint", str(checkpoint), "--out", str(out), *BASE, *extra])


def test_target_mode_rows_are_those_of_the_core_procedure(checkpoint, tmp_path, capsys):
    out = tmp_path / "adaptive.tsv"
    assert run(checkpoint, out, *TARGET) == 0
    captured = capsys.readouterr()
    assert "adaptive (target radius 0.3 on renyi, 5 looks from 50 to n_max 800" in captured.err
    assert "passes/example" in captured.out  # analyze's table gains the cost columns

    log = analyze.read_log(out)
    assert set(log.stop) <= ADAPTIVE_STOPS
    sizes = (50, 100, 200, 400, 800)
    assert all(int(p) - 20 in sizes for p in log.forward_passes)

    # each row is the core procedure's result with the row's seed
    from renyi_cert_torch.data import load_dataset
    from renyi_cert_torch.smoothing import SmoothedClassifier
    from renyi_cert_torch.train import load_checkpoint

    model, _ = load_checkpoint(checkpoint)
    clf = SmoothedClassifier(model, SIGMA, 10, device="cpu", batch_size=100)
    data = load_dataset("mnist5k", "test")
    plan = plan_adaptive(SIGMA, n_max=800, alpha=0.001, target_radius=0.3, n_start=50, num_classes=10)
    for r, idx in enumerate(log.idx):
        res = certify_with_plan(clf, data.x[idx], plan, n0=20, batch_size=100,
                                generator=clf.make_generator(derive_seed(0, int(idx))))
        assert res.forward_passes == log.forward_passes[r]
        assert res.stop_reason.replace(" ", "-") == log.stop[r]
        assert res.prediction == log.predict[r]
        assert float(f"{res.radius('renyi'):.8g}") == log.radii["renyi"][r]
        assert float(f"{res.certificate.p1_lower:.8g}") == log.p1_lower[r]

    settings = json.loads(out.with_name("adaptive.tsv.json").read_text())
    assert settings["n"] is None
    assert settings["adaptive"] == {"n_max": 800, "looks": list(sizes), "bound": "renyi", "target_radius": 0.3,
                                    "tolerance": None, "relative": True, "futility_level": 0.01,
                                    "look_alphas": list(plan.look_alphas)}
    assert plan.look_alphas[-1] == 0.0005


def test_best_radius_mode_and_analyze(checkpoint, tmp_path, capsys):
    out = tmp_path / "best.tsv"
    assert run(checkpoint, out, "--adaptive", "--tolerance", "0.5", "--absolute-tolerance", "--n-max", "400",
               "--bound", "cohen,renyi") == 0
    log = analyze.read_log(out)
    assert set(log.stop) <= {"tolerance-reached", "budget-exhausted"}
    assert json.loads(out.with_name("best.tsv.json").read_text())["adaptive"]["bound"] == "cohen"
    capsys.readouterr()
    assert main(["analyze", str(out), "--radii", "0,0.25"]) == 0
    table = capsys.readouterr().out
    total = int(np.sum(log.forward_passes))
    assert f"| {total / 4:.0f} | {total:,} |" in table


def test_resume_refuses_another_mode(checkpoint, tmp_path, capsys):
    out = tmp_path / "log.tsv"
    assert run(checkpoint, out, "--n", "100", "--max", "1") == 0
    capsys.readouterr()
    assert run(checkpoint, out, "--n", "100", "--resume", *TARGET) == 2
    err = capsys.readouterr().err
    assert "the existing log was made with other settings" in err and "adaptive: None in the log" in err

    out2 = tmp_path / "log2.tsv"
    assert run(checkpoint, out2, *TARGET, "--max", "1") == 0
    capsys.readouterr()
    other = [a if a != "0.3" else "0.35" for a in TARGET]
    assert run(checkpoint, out2, *other, "--resume") == 2
    assert "'target_radius': 0.3" in capsys.readouterr().err
    # the same settings continue the log
    assert run(checkpoint, out2, *TARGET, "--resume") == 0
    assert len(analyze.read_log(out2)) == 4


def test_resume_refuses_a_log_of_the_previous_format(checkpoint, tmp_path, capsys):
    out = tmp_path / "old.tsv"
    assert run(checkpoint, out, "--n", "100", "--max", "1") == 0
    sidecar = out.with_name("old.tsv.json")
    settings = json.loads(sidecar.read_text())
    settings["format"] = "renyi_cert-certify/2"
    sidecar.write_text(json.dumps(settings))
    capsys.readouterr()
    assert run(checkpoint, out, "--n", "100", "--resume") == 2
    assert "has format 'renyi_cert-certify/2', not 'renyi_cert-certify/4'" in capsys.readouterr().err


@pytest.mark.parametrize("extra, message", [
    (["--target-radius", "0.3"], "--target-radius is an option of --adaptive"),
    (["--n-max", "500"], "--n-max is an option of --adaptive"),
    (["--futility-level", "0"], "--futility-level is an option of --adaptive"),
    (["--adaptive"], "exactly one of --target-radius (None) and --tolerance (None) must be given"),
    (["--adaptive", "--target-radius", "0.3", "--tolerance", "0.1"], "exactly one of --target-radius (0.3)"),
    (["--adaptive", "--tolerance", "0.1", "--method", "goodman", "--allow-unguaranteed"],
     "--adaptive certifies with exact Clopper-Pearson bounds on fresh samples only; drop --method goodman"),
    (["--adaptive", "--tolerance", "0.1", "--single-sample-set", "--allow-unguaranteed"], "drop --single-sample-set"),
    (["--adaptive", "--target-radius", "5", "--n-max", "1000"],
     "--target-radius (5.0) must be at most 0.984504, the largest renyi radius --n-max (1000) samples can certify"),
    (["--adaptive", "--tolerance", "0.1", "--n-max", "1000", "--n-start", "5000"],
     "--n-start (5000) must be <= --n-max (1000)"),
    (["--adaptive", "--tolerance", "0.1", "--futility-level", "0.7"], "--futility-level (0.7) must be < 0.5"),
    (["--adaptive", "--tolerance", "0.1", "--growth", "1"], "argument --growth: growth ('1') must be finite and > 1"),
    (["--final-share", "0.5"], "--final-share is an option of --adaptive"),
    (["--adaptive", "--tolerance", "0.1", "--final-share", "1"], "--final-share (1.0) must be in (0, 1)"),
])
def test_adaptive_errors(checkpoint, tmp_path, capsys, extra, message):
    out = tmp_path / "bad.tsv"
    assert run(checkpoint, out, *extra) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()  # refused before the log is started


def test_smoothed_classifier_certify_adaptive_is_the_core_procedure(checkpoint):
    from renyi_cert_torch.data import load_dataset
    from renyi_cert_torch.smoothing import SmoothedClassifier
    from renyi_cert_torch.train import load_checkpoint

    model, _ = load_checkpoint(checkpoint)
    clf = SmoothedClassifier(model, SIGMA, 10, device="cpu", batch_size=100)
    x = load_dataset("mnist5k", "test").x[0]
    res = clf.certify_adaptive(x, n0=20, n_max=800, target_radius=0.3, n_start=50, generator=clf.make_generator(5))
    plan = plan_adaptive(SIGMA, n_max=800, target_radius=0.3, n_start=50, num_classes=10)
    ref = certify_with_plan(clf, x, plan, n0=20, batch_size=100, generator=clf.make_generator(5))
    assert res == ref


def test_reduced_precision_and_channels_last(checkpoint, tmp_path, capsys):
    out = tmp_path / "bf16.tsv"
    assert run(checkpoint, out, "--n", "100", "--max", "2", "--amp", "bf16", "--channels-last") == 0
    settings = json.loads(out.with_name("bf16.tsv.json").read_text())
    assert settings["amp"] == "bf16" and settings["channels_last"] is True
    capsys.readouterr()
    # the precision changes the classifier, so a log made in bf16 is not continued in fp32
    assert run(checkpoint, out, "--n", "100", "--resume", "--channels-last") == 2
    assert "amp: 'bf16' in the log, None now" in capsys.readouterr().err
    # the layout changes only the speed: a warning, and the log continues
    assert run(checkpoint, out, "--n", "100", "--resume", "--amp", "bf16") == 0
    assert "channels_last was True and is now False" in capsys.readouterr().err
    assert len(analyze.read_log(out)) == 4


def test_fp16_on_the_cpu_is_refused(checkpoint, tmp_path, capsys):
    out = tmp_path / "fp16.tsv"
    assert run(checkpoint, out, "--n", "100", "--amp", "fp16", "--device", "cpu") == 2
    assert "amp ('fp16')" in capsys.readouterr().err
    assert not out.exists()
    assert run(checkpoint, out, "--n", "100", "--amp", "int8") == 2
    assert "argument --amp: amp ('int8') must be one of" in capsys.readouterr().err
