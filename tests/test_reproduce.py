"""scripts/reproduce.py end to end, with tiny settings.

* CIFAR-10: a few generated images written in the real on-disk format (torchvision's
  ``cifar-10-batches-py``: pickled dicts with ``b"data"``, a uint8 array (N, 3072), and
  ``b"labels"``), run through the whole pipeline with the seven-conv network;
* mnist5k: a tiny run, then the same command again, which must reuse the checkpoints and the
  cached results and write the same numbers;
* the command-line errors.
"""

from __future__ import annotations

import importlib.util
import pickle
import re
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "reproduce.py"
FIGURES = ("fig1_certified", "fig2_attacks", "fig3_sigma", "crosscheck")


@pytest.fixture(scope="module")
def reproduce():
    spec = importlib.util.spec_from_file_location("reproduce_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


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
    total = sum(p.stat().st_size for p in out.glob("*.png"))
    assert total < 600_000, f"figures take {total} bytes"
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
    # the seven-conv network was trained in the three modes and cached
    saved = sorted(p.name for p in (work / "ckpt").glob("*.pt"))
    assert saved == ["gaussian-sigma0.3922.pt", "none.pt", "stn-sigma0.3922.pt"]
    from renyi_cert_torch.train import load_checkpoint

    _, config = load_checkpoint(work / "ckpt" / "stn-sigma0.3922.pt")
    assert config["arch"] == "cifar_cnn7" and config["dataset"] == "cifar10" and config["max_train"] == 16
    assert "Rényi radius cap" in capsys.readouterr().out


def test_mnist5k_tiny_run_is_cached_and_reproducible(reproduce, tmp_path, capsys):
    out, work = tmp_path / "figs", tmp_path / "work"
    argv = ["--out", str(out), "--work", str(work), "--max-train", "300", "--sigmas", "0.7", *TINY]
    assert reproduce.main(argv) == 0
    first = check_outputs(out, "mnist5k")
    assert "69.0 %" in first and "98.9 %" in first and "L = 1.58" in first
    capsys.readouterr()
    assert reproduce.main(argv) == 0
    log = capsys.readouterr().out
    assert "training ..." not in log and "computing ..." not in log
    assert log.count("reusing") == 3 and "cached" in log
    second = (out / "mnist5k_results.md").read_text()
    # the reused checkpoints' training times are reported from their sidecar files, marked cached
    assert re.search(r"\| train stn-sigma0\.7 \| \d+ \| yes \|", second)

    def numbers(md):  # everything but the run-time line and the stage table
        body = md.split("## Stages")[0]
        return "\n".join(line for line in body.splitlines() if not line.startswith("Generated by"))

    assert numbers(first) == numbers(second)


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "0"], r"--epochs \(0\) must be an integer >= 1"),
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
