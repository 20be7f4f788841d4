"""scripts/reproduce (``python scripts/reproduce``) end to end, with tiny settings.

* CIFAR-10: a few generated images written in the real on-disk format (torchvision's
  ``cifar-10-batches-py``: pickled dicts with ``b"data"``, a uint8 array (N, 3072), and
  ``b"labels"``), run through the whole pipeline with the seven-conv network;
* mnist5k: a tiny run, then the same command again, which must reuse the checkpoints and the
  cached results and write the same numbers;
* the command-line errors, the folder launcher, and the stage seeds (unchanged by the package split).
"""

from __future__ import annotations

import importlib
import pickle
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
FIGURES = ("fig1_certified", "fig2_attacks", "fig3_sigma", "crosscheck")
MAX_PNG_BYTES = 300_000


@pytest.fixture(scope="module")
def reproduce():
    """The ``scripts/reproduce`` package, imported by its name (then forgotten again)."""
    sys.path.insert(0, str(SCRIPTS))
    try:
        yield importlib.import_module("reproduce")
    finally:
        sys.path.remove(str(SCRIPTS))
        for name in [n for n in sys.modules if n == "reproduce" or n.startswith("reproduce.")]:
            del sys.modules[name]


@pytest.fixture(autouse=True)
def one_thread():
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


def write_cifar(root: Path, per_batch: int = 8, test_size: int = 8) -> None:
    """Fake CIFAR-10 batches in torchvision's layout (one class-dependent colour per image, plus noise)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)

    def batch(n):
        labels = [int(v) for v in rng.integers(0, 10, n)]
        base = np.array(labels, dtype=np.float64)[:, None] * 25.0
        data = np.clip(base + rng.normal(0, 20, (n, 3072)), 0, 255).astype(np.uint8)
        return {b"batch_label": b"fake", b"labels": labels, b"data": data,
                b"filenames": [f"img{i}.png".encode() for i in range(n)]}

    for i in range(1, 6):
        with open(folder / f"data_batch_{i}", "wb") as f:
            pickle.dump(batch(per_batch), f, protocol=2)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump(batch(test_size), f, protocol=2)


TINY = ["--quick", "--epochs", "1", "--max-test", "4", "--attack-examples", "3", "--n0", "10", "--n", "40",
        "--n-fig1", "30", "--no-progress"]


def check_outputs(out: Path, prefix: str) -> str:
    for name in FIGURES:
        png = out / f"{prefix}_{name}.png"
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    assert (out / "fig4_bounds.png").is_file()
    for png in out.glob("*.png"):
        assert png.stat().st_size < MAX_PNG_BYTES, f"{png.name} takes {png.stat().st_size} bytes"
    return (out / f"{prefix}_results.md").read_text()


def test_cifar10_pipeline_on_generated_files(reproduce, tmp_path, capsys):
    write_cifar(tmp_path / "data")
    out, work = tmp_path / "figs", tmp_path / "work"
    sigma = repr(100 / 255)  # the paper's CIFAR-10 sigma, the main one: no other sigma is trained
    rc = reproduce.main(["--dataset", "cifar10", "--data-root", str(tmp_path / "data"), "--out", str(out),
                         "--work", str(work), "--max-train", "16", "--sigmas", sigma, *TINY])
    assert rc == 0
    md = check_outputs(out, "cifar10")
    # Table 1 analog at the paper's CIFAR-10 radius 36/255, next to the paper's numbers
    assert f"L = {36 / 255:.4g}" in md and "65.6 %" in md and "80.5 %" in md
    # the seven-conv network was trained in the five modes and cached
    saved = sorted(p.name for p in (work / "ckpt").glob("*.pt"))
    assert saved == ["gaussian-sigma0.3922.pt", "none.pt", "pgd-at.pt", "stn-sigma0.3922.pt", "trades.pt"]
    from renyi_cert_torch.train import load_checkpoint

    _, config = load_checkpoint(work / "ckpt" / "stn-sigma0.3922.pt")
    assert config["arch"] == "cifar_cnn7" and config["dataset"] == "cifar10" and config["max_train"] == 16
    # TRADES with the official CIFAR-10 settings (beta 6, eps 0.031) but the plan's 2 attack steps
    _, config = load_checkpoint(work / "ckpt" / "trades.pt")
    assert (config["beta"], config["attack_eps"], config["attack_steps"], config["max_train"]) == (6.0, 0.031, 2, 16)
    assert "Wong et al. 2018, cascade — quoted from the paper's Table 1, not re-run" in md
    assert "58.7 %" in md and "68.8 % (natural)" in md
    assert "Rényi radius cap" in capsys.readouterr().out


def test_mnist5k_tiny_run_is_cached_and_reproducible(reproduce, tmp_path, capsys):
    out, work = tmp_path / "figs", tmp_path / "work"
    argv = ["--out", str(out), "--work", str(work), "--max-train", "300", "--sigmas", "0.7", *TINY]
    assert reproduce.main(argv) == 0
    first = check_outputs(out, "mnist5k")
    assert "69.0 %" in first and "98.9 %" in first and "L = 1.58" in first
    # Wong et al.'s published numbers, marked as quoted; the TRADES and PGD-AT baselines in Figures 1 and 2
    assert "| Wong et al. 2018, single model — quoted from the paper's Table 1, not re-run |  | 43.5 % |" in first
    assert "74.6 %" in first and "81.4 % (natural)" in first
    assert "| TRADES | empirical: PGD-ℓ2, no certificate |" in first
    for row in ("STN: transfer PGD from PGD-AT", "TRADES: white-box PGD", "TRADES: transfer PGD from PGD-AT"):
        assert first.count(f"| {row} |") == 2, row  # the l2 and the l_inf table
    assert "Baselines: PGD-AT (Madry et al.): 1 epoch(s) on 256 training examples, ℓ∞ attack ε = 0.3, 2 steps" in first
    assert re.search(r"TRADES: 1 epoch\(s\) on 256 training examples, .*, β = 1; clean accuracy on all 1000 test "
                     r"examples \d+\.\d %", first)
    capsys.readouterr()
    assert reproduce.main(argv) == 0
    log = capsys.readouterr().out
    assert "training ..." not in log and "computing ..." not in log
    assert log.count("reusing") == 5 and "cached" in log
    second = (out / "mnist5k_results.md").read_text()
    # the reused checkpoints' training times are reported from their sidecar files, marked cached
    assert re.search(r"\| train stn-sigma0\.7 \| \d+ \| yes \|", second)

    def numbers(md):  # everything but the run-time line and the stage table
        body = md.split("## Stages")[0]
        return "\n".join(line for line in body.splitlines() if not line.startswith("Generated by"))

    assert numbers(first) == numbers(second)


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "0"], r"--epochs \(0\) must be an integer >= 1"),
    (["--adv-epochs", "0"], r"--adv-epochs \(0\) must be an integer >= 1"),
    (["--max-test", "-2"], r"--max-test \(-2\) must be an integer >= 1"),
    (["--sigmas", "0.5,x"], r"--sigmas \('0.5,x'\) must be comma-separated numbers"),
    (["--sigmas", "0.5,-1"], r"--sigmas \('0.5,-1'\) must be finite numbers > 0"),
    (["--threads", "0"], r"--threads \(0\) must be an integer >= 1"),
    (["--dataset", "svhn"], r"invalid choice: 'svhn'"),
])
def test_command_line_errors(reproduce, argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        reproduce.main(argv)
    assert exc.value.code == 2
    assert re.search(message, capsys.readouterr().err)


def test_missing_cifar_files(reproduce, tmp_path, capsys):
    rc = reproduce.main(["--dataset", "cifar10", "--data-root", str(tmp_path), "--work", str(tmp_path / "w"),
                         "--out", str(tmp_path / "o"), "--quick", "--no-progress"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "CIFAR-10 test files not found" in err and "cifar-10-batches-py" in err


def test_folder_launcher_help():
    # the documented command: python scripts/reproduce
    res = subprocess.run([sys.executable, str(SCRIPTS / "reproduce"), "--help"], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("usage: python scripts/reproduce ") and "--dataset" in res.stdout


def test_stage_seeds_unchanged(reproduce):
    # The values of the former reproduce._seed (SeedSequence of the run seed and the CRC-32 of each
    # part): cached results and the report's numbers depend on them.
    from reproduce.plan import default_plan, stage_seed

    plan = default_plan("mnist5k", quick=False)
    assert stage_seed(plan, "fig1-stn-sigma0.7") == 7676800478815934226
    assert stage_seed(plan, "crosscheck", 0.7) == 1518819885896303905
    assert stage_seed(replace(plan, seed=3), "rejudge", 100 / 255) == 1223422608569877612


class _FixedCounts:
    """A stand-in smoothed classifier whose noisy samples always give the same counts."""

    def __init__(self, counts):
        self.counts = np.asarray(counts)

    def sample_counts(self, point, sigma, n, *, generator=None):
        return self.counts


@pytest.mark.parametrize("counts, status, prediction", [
    ([0, 0, 990, 10], "correct", 2),      # decided, the label
    ([0, 990, 10, 0], "violation", 1),    # decided, another class
    ([0, 0, 505, 495], "undecided", -1),  # top two not separated at alpha: sampling error
])
def test_rejudge_status(reproduce, counts, status, prediction):
    from reproduce.crosscheck import rejudge
    from reproduce.plan import default_plan

    plan = replace(default_plan("mnist5k", quick=True), rejudge_votes=1000, alpha=0.001)
    record = rejudge(_FixedCounts(counts), None, 2, 0.7, plan, None)
    assert record["status"] == status and record["prediction"] == prediction and record["label"] == 2
    assert record["counts_top"] == sorted(counts)[-1]
