"""End-to-end: train -> certify -> analyze through the command-line entry points, in-process.

A tiny model (1 epoch on 200 mnist5k digits) is trained once per module through
``renyi-cert train``; certification uses a handful of digits and small n so the whole file runs
in well under 90 s on 2 CPU cores.
"""

from __future__ import annotations

import contextlib
import io
import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mlxtend")

from renyi_cert import analyze  # noqa: E402
from renyi_cert_torch import cli  # noqa: E402
from renyi_cert.seeds import derive_seed  # noqa: E402
from renyi_cert_torch.cli import certify_main, main  # noqa: E402

pytestmark = pytest.mark.slow

TRAIN_SIGMA = 0.5
SMALL = ["--n0", "20", "--n", "100", "--batch", "60", "--no-progress"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A checkpoint trained through the umbrella CLI: `renyi-cert train`."""
    path = tmp_path_factory.mktemp("ckpt") / "stn.pt"
    rc = main(["train", "--dataset", "mnist5k", "--mode", "stn", "--sigma", str(TRAIN_SIGMA), "--epochs", "1",
               "--max-train", "200", "--batch-size", "50", "--out", str(path), "--no-eval", "--no-progress"])
    assert rc == 0 and path.is_file()
    return path


def rows_without_time(path):
    """The TSV's rows with the `time` column (wall clock) removed."""
    lines = path.read_text().splitlines()
    t = lines[0].split("\t").index("time")
    return [[c for i, c in enumerate(line.split("\t")) if i != t] for line in lines]


def test_train_certify_analyze(checkpoint, tmp_path, capsys):
    tsv = tmp_path / "run.tsv"
    rc = main(["certify", "--checkpoint", str(checkpoint), "--out", str(tsv), "--max", "4", "--skip", "7", *SMALL])
    assert rc == 0
    captured = capsys.readouterr()
    # the final analysis table (reusing renyi_cert.analyze) and the plot next to the TSV
    assert "| log | bound | n | clean acc | abstain | ACR |" in captured.out
    assert f"alpha^(1/n) = {0.001 ** (1 / 100):.5f}" in captured.err
    assert (tmp_path / "run.png").stat().st_size > 0 and (tmp_path / "run.pdf").stat().st_size > 0

    header = tsv.read_text().splitlines()[0].split("\t")
    assert header == ["idx", "label", "predict", "radius", "correct", "time", "p1_lower", "p2_upper",
                      "radius_renyi", "radius_cohen", "radius_pixeldp", "guaranteed", "forward_passes", "stop"]
    log = analyze.read_log(tsv)
    np.testing.assert_array_equal(log.guaranteed, [1, 1, 1, 1])  # clopper-pearson, two sample sets
    np.testing.assert_array_equal(log.idx, [0, 7, 14, 21])
    assert log.bounds == ("renyi", "cohen", "pixeldp")
    # `radius` is the first bound's; correct means predict == label
    np.testing.assert_array_equal(analyze.read_log(tsv).radii["renyi"],
                                  [float(r.split("\t")[3]) for r in tsv.read_text().splitlines()[1:]])
    np.testing.assert_array_equal(log.correct, (log.predict == log.label).astype(int))
    # abstentions have radius 0; the Renyi radius never exceeds Cohen's (docs/numerics.md, section 5)
    assert np.all(log.radii["renyi"][log.predict == -1] == 0)
    assert np.all(log.radii["renyi"] <= log.radii["cohen"] + 1e-12)
    # the radius cap of n = 100 samples at alpha = 0.001 (p1_lower <= alpha^(1/n))
    assert np.all(log.p1_lower <= 0.001 ** (1 / 100) + 1e-12)

    # Cohen et al.'s own analysis (pandas, `correct & radius >= r`) reads the log
    pd = pytest.importorskip("pandas")
    df = pd.read_csv(tsv, delimiter="\t")
    for r in (0.0, 0.1, 0.3):
        assert (df["correct"] & (df["radius"] >= r)).mean() == analyze.certified_accuracy(log, [r])[0]

    settings = json.loads((tmp_path / "run.tsv.json").read_text())
    assert settings["sigma"] == TRAIN_SIGMA and settings["n"] == 100 and settings["n0"] == 20
    assert settings["bounds"] == ["renyi", "cohen", "pixeldp"] and settings["skip"] == 7
    assert settings["dataset"] == "mnist5k" and len(settings["checkpoint_sha256"]) == 64
    assert settings["allow_unguaranteed"] is False and settings["columns"][-3:] == ["guaranteed", "forward_passes",
                                                                                   "stop"]
    assert settings["adaptive"] is None and settings["format"] == "renyi_cert-certify/4"
    # fixed n: every row cost n0 + n forward passes
    np.testing.assert_array_equal(log.forward_passes, [120] * 4)
    assert log.stop == ("fixed-n",) * 4
    assert [(r["first_row"], r["batch"], r["device"]) for r in settings["runs"]] == [(0, 60, settings["device"])]

    out = tmp_path / "analysis"
    assert main(["analyze", str(tsv), "--radii", "0,0.25,0.5", "--out", str(out)]) == 0
    assert (out / "certified_accuracy.png").exists()
    assert "| run.tsv | pixeldp | 4 |" in capsys.readouterr().out


def test_resume_after_kill_gives_the_rows_of_an_uninterrupted_run(checkpoint, tmp_path, capsys):
    common = ["--checkpoint", str(checkpoint), "--skip", "5", "--seed", "3", "--bound", "renyi,cohen", *SMALL]
    full = tmp_path / "full.tsv"
    assert certify_main([*common, "--out", str(full), "--max", "5"]) == 0

    part = tmp_path / "part.tsv"
    assert certify_main([*common, "--out", str(part), "--max", "3"]) == 0
    text = part.read_text()
    assert text.endswith("\n")
    part.write_text(text[:-7])  # kill mid-row: the last row loses its end
    capsys.readouterr()
    assert certify_main([*common, "--out", str(part), "--max", "5", "--resume"]) == 0
    err = capsys.readouterr().err
    assert "dropping a truncated last line" in err
    assert "resuming" in err and "2 rows done, 3 to go" in err
    assert rows_without_time(part) == rows_without_time(full)
    assert len(rows_without_time(full)) == 6

    # resuming a complete log does nothing and loses nothing
    assert certify_main([*common, "--out", str(part), "--max", "5", "--resume"]) == 0
    assert rows_without_time(part) == rows_without_time(full)


def test_per_example_seed_is_order_independent():
    # certify seeds example idx with derive_seed(--seed, idx)
    assert derive_seed(0, 5) == derive_seed(0, 5)
    assert len({derive_seed(0, i) for i in range(100)} | {derive_seed(1, i) for i in range(100)}) == 200
    assert all(0 <= derive_seed(s, i) < 2**63 for s in (0, 2**40) for i in (0, 10**6))


def test_resume_refuses_other_settings(checkpoint, tmp_path, capsys):
    tsv = tmp_path / "a.tsv"
    assert certify_main(["--checkpoint", str(checkpoint), "--out", str(tsv), "--max", "1", *SMALL]) == 0
    capsys.readouterr()
    rc = certify_main(["--checkpoint", str(checkpoint), "--out", str(tsv), "--max", "2", "--resume", "--n0", "20",
                       "--n", "200", "--batch", "60", "--no-progress"])
    assert rc == 2
    assert "n: 100 in the log, 200 now" in capsys.readouterr().err
    # a log whose rows do not fit --skip cannot be resumed with it
    capsys.readouterr()
    assert certify_main(["--checkpoint", str(checkpoint), "--out", str(tsv), "--resume", "--skip", "2",
                         *SMALL]) == 2
    assert "skip: 1 in the log, 2 now" in capsys.readouterr().err
    # an unreadable settings file
    good = (tmp_path / "a.tsv.json").read_text()
    (tmp_path / "a.tsv.json").write_text("{not json")
    assert certify_main(["--checkpoint", str(checkpoint), "--out", str(tsv), "--resume", *SMALL]) == 2
    assert "--resume: cannot read the settings file" in capsys.readouterr().err
    (tmp_path / "a.tsv.json").write_text(good)
    # a log without its settings file cannot be resumed
    (tmp_path / "a.tsv.json").unlink()
    assert certify_main(["--checkpoint", str(checkpoint), "--out", str(tsv), "--resume", "--max", "2", *SMALL]) == 2
    err = capsys.readouterr().err
    assert "the settings file" in err and "a.tsv.json is missing" in err


def test_refuses_to_overwrite_without_resume_or_force(checkpoint, tmp_path, capsys):
    tsv = tmp_path / "b.tsv"
    tsv.write_text("precious\n")
    assert certify_main(["--checkpoint", str(checkpoint), "--out", str(tsv), "--max", "1", *SMALL]) == 2
    assert "exists; use --resume to continue it or --force to overwrite it" in capsys.readouterr().err
    assert tsv.read_text() == "precious\n"
    assert certify_main(["--checkpoint", str(checkpoint), "--out", str(tsv), "--max", "1", "--force", *SMALL]) == 0
    assert tsv.read_text().startswith("idx\tlabel\tpredict\tradius\tcorrect\ttime")


def test_resume_rejects_a_foreign_header(checkpoint, tmp_path, capsys):
    tsv = tmp_path / "c.tsv"
    assert certify_main(["--checkpoint", str(checkpoint), "--out", str(tsv), "--max", "1", *SMALL]) == 0
    lines = tsv.read_text().splitlines()
    tsv.write_text("\n".join(["idx\tlabel\tpredict\tradius\tcorrect\ttime"] + lines[1:]) + "\n")
    capsys.readouterr()
    assert certify_main(["--checkpoint", str(checkpoint), "--out", str(tsv), "--max", "2", "--resume", *SMALL]) == 2
    assert "the header of" in capsys.readouterr().err


def test_sigma_mismatch_warns(checkpoint, tmp_path, capsys):
    rc = certify_main(["--checkpoint", str(checkpoint), "--out", str(tmp_path / "s.tsv"), "--sigma", "0.25",
                       "--max", "1", *SMALL])
    assert rc == 0
    err = capsys.readouterr().err
    assert "warning: --sigma (0.25) differs from the checkpoint's training sigma (0.5" in err
    assert json.loads((tmp_path / "s.tsv.json").read_text())["sigma"] == 0.25


def test_single_sample_set_variant_runs(checkpoint, tmp_path, capsys):
    tsv = tmp_path / "single.tsv"
    assert certify_main(["--checkpoint", str(checkpoint), "--out", str(tsv), "--max", "2", "--single-sample-set",
                         "--method", "goodman", "--bound", "cohen", "--allow-unguaranteed", *SMALL]) == 0
    settings = json.loads((tmp_path / "single.tsv.json").read_text())
    assert settings["single_sample_set"] is True and settings["allow_unguaranteed"] is True
    log = analyze.read_log(tsv)
    assert log.bounds == ("cohen",)
    np.testing.assert_array_equal(log.guaranteed, [0, 0])
    captured = capsys.readouterr()
    assert "the rows of this run carry NO 1-alpha guarantee" in captured.err
    assert "| single.tsv (not guaranteed) | cohen | 2 |" in captured.out  # the final table says so


def test_no_noise_checkpoint_needs_sigma(tmp_path, capsys):
    from renyi_cert_torch.models import build_model
    from renyi_cert_torch.train import TrainConfig, save_checkpoint

    ckpt = save_checkpoint(tmp_path / "plain.pt", build_model("mnist_cnn"), TrainConfig(mode="none", epochs=1))
    assert certify_main(["--checkpoint", str(ckpt), "--out", str(tmp_path / "p.tsv"), *SMALL]) == 2
    err = capsys.readouterr().err
    assert "was trained without noise (mode 'none', sigma 0.0); give --sigma" in err


# ------------------------------------------------------------------------------------ CLI errors


def test_missing_checkpoint(tmp_path, capsys):
    assert certify_main(["--checkpoint", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "o.tsv")]) == 2
    assert "--checkpoint: checkpoint" in (err := capsys.readouterr().err) and "does not exist" in err


def test_wrong_checkpoint_file(tmp_path, capsys):
    bad = tmp_path / "notes.pt"
    bad.write_text("this is not a checkpoint")
    assert certify_main(["--checkpoint", str(bad), "--out", str(tmp_path / "o.tsv")]) == 2
    err = capsys.readouterr().err
    assert "cannot be loaded" in err and "is not a renyi_cert checkpoint" in err
    assert not (tmp_path / "o.tsv").exists()


def test_missing_data(checkpoint, tmp_path, capsys):
    rc = certify_main(["--checkpoint", str(checkpoint), "--out", str(tmp_path / "o.tsv"), "--dataset", "mnist",
                       "--data-root", str(tmp_path / "nodata")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "cannot load dataset 'mnist' (test)" in err and "MNIST test files not found" in err
    assert "differs from the checkpoint's training dataset ('mnist5k')" in err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--n", "0"], "argument --n: n (0) must be an integer >= 1"),
        (["--n0", "x"], "argument --n0: n0 ('x') must be an integer >= 1"),
        (["--alpha", "1.5"], "argument --alpha: alpha ('1.5') must be in the open interval (0, 1)"),
        (["--sigma", "-1"], "argument --sigma: sigma ('-1') must be finite and > 0"),
        (["--sigma", "nan"], "argument --sigma: sigma ('nan') must be finite and > 0"),
        (["--sigma", "x"], "argument --sigma: sigma ('x') must be a number > 0"),
        (["--alpha", "x"], "argument --alpha: alpha ('x') must be a number in the open interval (0, 1)"),
        (["--method", "wald"], "argument --method: method ('wald') must be one of clopper-pearson, sison-glaz, goodman"),
        (["--bound", "renyi,lp"], "argument --bound: bound ('lp') must be one of renyi, cohen, pixeldp, teng, yang or all"),
        (["--bound", "renyi,renyi"], "argument --bound: bound ('renyi,renyi') names a bound twice"),
        (["--device", "tpu"], "argument --device: device ('tpu') must be one of auto, cpu, cuda or cuda:<index>"),
        (["--skip", "0"], "argument --skip: skip (0) must be an integer >= 1"),
        (["--max", "-2"], "argument --max: max (-2) must be an integer >= 1"),
        (["--seed", "-1"], "argument --seed: seed (-1) must be an integer >= 0"),
        (["--batch", "0"], "argument --batch: batch (0) must be an integer >= 1"),
        (["--split", "valid"], "argument --split: invalid choice: 'valid'"),
        (["--dataset", "imagenet"], "argument --dataset: invalid choice: 'imagenet'"),
        (["--radii", "0.5,big"], "argument --radii: radii ('0.5,big'): 'big' is not a number"),
        (["--resume", "--force"], "argument --force: not allowed with argument --resume"),
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
    ],
)
def test_bad_flags(flags, message, tmp_path, capsys):
    rc = certify_main(["--checkpoint", "x.pt", "--out", str(tmp_path / "o.tsv"), *flags])
    assert rc == 2
    assert message in capsys.readouterr().err


def test_required_flags(capsys):
    assert certify_main([]) == 2
    assert "the following arguments are required: --checkpoint, --out" in capsys.readouterr().err


def test_cuda_requested_without_cuda(checkpoint, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert certify_main(["--checkpoint", str(checkpoint), "--out", str(tmp_path / "o.tsv"), "--device", "cuda"]) == 2
    assert "--device: device ('cuda') was requested but CUDA is not available" in capsys.readouterr().err


def test_out_is_a_directory(checkpoint, tmp_path, capsys):
    assert certify_main(["--checkpoint", str(checkpoint), "--out", str(tmp_path)]) == 2
    assert "is a folder; give a file path inside it" in capsys.readouterr().err


def test_umbrella_errors_and_help(capsys):
    assert main(["fly"]) == 2
    assert "unknown command ('fly'); choose one of train, certify, analyze, attack" in capsys.readouterr().err
    assert main([]) == 2
    assert main(["--help"]) == 0
    assert "certify" in capsys.readouterr().out
    assert main(["certify", "--help"]) == 0
    assert "--single-sample-set" in capsys.readouterr().out
    assert main(["train", "--epochs", "0", "--no-progress"]) == 2
    assert "epochs (0) must be an integer >= 1" in capsys.readouterr().err
    assert main(["analyze", "/nonexistent/log.tsv"]) == 2


# ------------------------------------------------------------------------------------------ demo


QUICK_DEMO = ["--epochs", "1", "--max-train", "200", "--max", "3", "--n0", "20", "--n", "100", "--batch", "60",
              "--target-radius", "0.3", "--no-progress", "--device", "cpu"]  # bit-reproducible on the CPU


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    """One quick demo run (with --figure): its folder, the figure's path and what it printed."""
    from renyi_cert_torch import demo

    out = tmp_path_factory.mktemp("demo")
    figure = out / "docs" / "demo.png"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = demo.main(["--out", str(out / "a"), "--figure", str(figure), *QUICK_DEMO])
    assert rc == 0
    return out, figure, buf.getvalue()


def test_demo_quick(quick_demo):
    folder, figure, out = quick_demo
    assert "| radius L | Renyi (Li et al.) | Cohen et al. | PixelDP |" in out
    assert f"alpha^(1/n) = {0.001 ** (1 / 100):.5f} (here p1_lower <= {0.0005 ** (1 / 100):.5f}" in out
    assert "(2 CPU threads)" in out  # the fixed thread count (demo.DEMO_THREADS) is printed
    for name in ("model.pt", "certify.tsv", "certify.tsv.json", "certify.png", "certify.pdf", "table.md",
                 "adaptive.tsv", "adaptive.tsv.json"):
        assert (folder / "a" / name).is_file(), name
    # step 4: the adaptive run of the same digits, its certified accuracy and forward passes beside the fixed run's
    fixed, adaptive = (analyze.read_log(folder / "a" / name) for name in ("certify.tsv", "adaptive.tsv"))
    np.testing.assert_array_equal(fixed.idx, adaptive.idx)
    assert (f"forward passes: fixed n {int(fixed.forward_passes.sum()):,}, adaptive "
            f"{int(adaptive.forward_passes.sum()):,}") in out
    assert len(analyze.read_log(folder / "a" / "certify.tsv")) == 3
    assert math.isfinite(float(out.split("total ")[1].split(" s")[0]))
    # --figure: the certified-accuracy plot as a small PNG
    data = figure.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) < 150_000
    assert f"wrote {figure}" in out


def test_demo_is_bit_reproducible(quick_demo, tmp_path, capsys):
    # a second run with the same flags gives the same weights, rows and table, bit for bit (the
    # demo fixes torch's thread count); the caller's thread count is restored afterwards
    from renyi_cert_torch import demo

    folder, _, first = quick_demo
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert demo.main(["--out", str(tmp_path / "b"), *QUICK_DEMO]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    second = capsys.readouterr().out
    a = torch.load(folder / "a" / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "b" / "model.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert rows_without_time(tmp_path / "b" / "certify.tsv") == rows_without_time(folder / "a" / "certify.tsv")
    assert (tmp_path / "b" / "table.md").read_text() == (folder / "a" / "table.md").read_text()
    table = first[first.index("| radius L"):first.index("| ACR")]
    assert table in second


def test_demo_bad_flag(capsys):
    from renyi_cert_torch import demo

    assert demo.main(["--n", "0"]) == 2
    assert "n (0) must be an integer >= 1" in capsys.readouterr().err
    assert demo.main(["--alpha", "0"]) == 2
    assert "argument --alpha: alpha ('0') must be in the open interval (0, 1)" in capsys.readouterr().err
    # a target radius n samples cannot certify is refused before training
    assert demo.main(["--n", "100", "--out", "/nonexistent-never-written"]) == 2
    assert "--target-radius: target_radius (1.0) must be at most" in capsys.readouterr().err


def test_demo_out_under_a_file_is_refused_before_training(tmp_path, capsys):
    from renyi_cert_torch import demo

    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert demo.main(["--out", str(blocker / "demo"), "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert (f"demo: error: --out ('{blocker / 'demo' / 'model.pt'}') cannot be created: '{blocker}' is a file"
            in captured.err)
    assert "training" not in captured.out
    assert demo.main(["--out", str(tmp_path / "ok"), "--figure", str(tmp_path / "fig.jpg"), "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert f"demo: error: --figure ('{tmp_path / 'fig.jpg'}') must name a .png file" in captured.err
    assert "training" not in captured.out


def test_cli_module_constants():
    assert cli.tsv_header(["renyi"]).split("\t")[:6] == list(analyze.COHEN_COLUMNS)
    assert cli.planned_indices(10, 3) == [0, 3, 6, 9] and cli.planned_indices(10, 3, 2) == [0, 3]
