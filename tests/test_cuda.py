"""The GPU path of ``certify`` (issue 10): skipped on a machine without CUDA.

* ``--device cuda`` end to end: the model, the noise (a CUDA ``torch.Generator``) and the counts
  on the GPU; the same command twice writes the same rows;
* ``--amp bf16`` / ``fp16`` certify the model as computed in that precision: their counts stay
  close to float32's on the same noise;
* the one-example split and adaptive certification on the GPU;
* more workers than GPUs is a clear error, not a hang.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mlxtend")
if not torch.cuda.is_available():
    pytest.skip("needs a CUDA device", allow_module_level=True)

from renyi_cert_torch.cli import certify_main  # noqa: E402
from renyi_cert_torch.distributed import SINGLE, SplitSampler  # noqa: E402
from renyi_cert_torch.models import build_model  # noqa: E402
from renyi_cert_torch.smoothing import SmoothedClassifier  # noqa: E402

from _workers import untrained_checkpoint  # noqa: E402

SMALL = ["--n0", "50", "--n", "2000", "--batch", "500", "--no-progress", "--device", "cuda"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return untrained_checkpoint(tmp_path_factory.mktemp("cuda") / "m.pt")


def rows(path):
    return [line.split("\t")[:5] + line.split("\t")[6:] for line in path.read_text().splitlines()]


def test_certify_on_cuda_is_repeatable(ckpt, tmp_path):
    for name in ("a.tsv", "b.tsv"):
        assert certify_main(["--checkpoint", str(ckpt), "--out", str(tmp_path / name), *SMALL, "--max", "6"]) == 0
    a = rows(tmp_path / "a.tsv")
    assert len(a) == 7 and a == rows(tmp_path / "b.tsv")
    import json

    assert json.loads((tmp_path / "a.tsv.json").read_text())["device"].startswith("cuda")


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_reduced_precision_counts_stay_close_to_float32(amp):
    torch.manual_seed(0)
    model = build_model("mnist_cnn")
    x = torch.rand(1, 28, 28)
    full = SmoothedClassifier(model, 0.5, 10, device="cuda", batch_size=1000)
    low = SmoothedClassifier(model, 0.5, 10, device="cuda", batch_size=1000, amp=amp)
    a = full.sample_counts(x, 0.5, 20000, generator=full.make_generator(1))
    b = low.sample_counts(x, 0.5, 20000, generator=low.make_generator(1))  # the same noisy copies
    assert a.sum() == b.sum() == 20000
    assert np.abs(a - b).sum() <= 0.02 * 20000  # at most 1 % of the labels moved


def test_split_sampler_and_adaptive_on_cuda(ckpt, tmp_path):
    clf = SmoothedClassifier(build_model("mnist_cnn"), 0.5, 10, device="cuda", batch_size=300)
    counts = SplitSampler(clf, SINGLE).sample_counts(torch.rand(1, 28, 28), 0.5, 1000,
                                                     generator=clf.make_generator(0))
    assert counts.sum() == 1000
    out = tmp_path / "ad.tsv"
    assert certify_main(["--checkpoint", str(ckpt), "--out", str(out), *SMALL, "--max", "3", "--adaptive",
                         "--target-radius", "0.2", "--split-example"]) == 0
    assert len(rows(out)) == 4


@pytest.mark.skipif(torch.cuda.device_count() != 1, reason="needs exactly one GPU")
def test_more_workers_than_gpus_is_an_error(ckpt, tmp_path):
    res = subprocess.run([sys.executable, "-m", "renyi_cert_torch.cli", "certify", "--checkpoint", str(ckpt), "--out",
                          str(tmp_path / "o.tsv"), *SMALL, "--max", "4", "--nproc", "2", "--timeout", "30"],
                         capture_output=True, text=True, timeout=240)
    assert res.returncode != 0
    assert "LOCAL_RANK (1) has no GPU: this machine has 1" in res.stderr
