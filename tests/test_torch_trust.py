"""Trust: a broken model certifies nothing, and a checkpoint can neither run code nor smuggle in bad settings."""

from __future__ import annotations

import math
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from renyi_cert_torch import attacks as A  # noqa: E402
from renyi_cert_torch.data import DataSplit  # noqa: E402
from renyi_cert_torch.models import build_model  # noqa: E402
from renyi_cert_torch.smoothing import SmoothedClassifier  # noqa: E402
from renyi_cert_torch.train import (  # noqa: E402
    CHECKPOINT_FORMAT,
    TrainConfig,
    evaluate_accuracy,
    load_checkpoint,
    save_checkpoint,
)

# ------------------------------------------------------------------------- non-finite logits


def _nan_mnist_cnn():
    model = build_model("mnist_cnn")
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    return model


class BadRow(nn.Module):
    """Two classes, class 1 wins; logit 0 of input row ``row`` of the ``on_call``-th batch is ``value``."""

    def __init__(self, row: int, value: float = float("nan"), on_call: int = 0):
        super().__init__()
        self.row, self.value, self.on_call = row, value, on_call
        self.calls = 0
        self.w = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        out = torch.zeros(len(x), 2) + self.w
        out[:, 1] = 1.0
        if self.calls == self.on_call:
            out[self.row, 0] = self.value
        self.calls += 1
        return out


def test_nan_checkpoint_certifies_nothing(tmp_path):
    # Weights of NaN give NaN logits; argmax used to call them class 0, which was then certified.
    path = save_checkpoint(tmp_path / "nan.pt", _nan_mnist_cnn(), TrainConfig(mode="gaussian", sigma=0.5))
    model, cfg = load_checkpoint(path)
    clf = SmoothedClassifier(model, cfg["sigma"], cfg["num_classes"], device="cpu", batch_size=16)
    x = torch.rand(1, 28, 28)
    with pytest.raises(ValueError, match=r"the model returned non-finite logits \(nan\) for noisy copy 0 of 10 "
                                         r"\(row 0 of a batch of 10\) \(and 9 more row\(s\) of this batch\)"):
        clf.certify(x, n0=10, n=20, generator=clf.make_generator(0))
    with pytest.raises(ValueError, match=r"non-finite logits \(nan\)"):
        clf.predict(x, n=20, generator=clf.make_generator(0))
    with pytest.raises(ValueError, match=r"non-finite logits \(nan\)"):
        clf.certify(x, n0=10, n=20, single_sample_set=True, allow_unguaranteed=True)
    assert not model.training  # flags restored after the error


def test_non_finite_logits_name_the_copy():
    # Batches of 20 copies: row 7 of the second batch is copy 27.
    clf = SmoothedClassifier(BadRow(row=7, value=math.inf, on_call=1), 0.5, 2, device="cpu", input_shape=(1, 2, 2))
    with pytest.raises(ValueError, match=r"non-finite logits \(inf\) for noisy copy 27 of 50 "
                                         r"\(row 7 of a batch of 20\); its argmax is meaningless"):
        clf.sample_counts(torch.zeros(1, 2, 2), 0.5, 50, batch_size=20)
    clf = SmoothedClassifier(BadRow(row=9, value=-math.inf, on_call=2), 0.5, 2, device="cpu", input_shape=(1, 2, 2))
    with pytest.raises(ValueError, match=r"non-finite logits \(-inf\) for noisy copy 49 of 50 \(row 9 of a batch of 10\)"):
        clf.sample_counts(torch.zeros(1, 2, 2), 0.5, 50, batch_size=20)
    # A finite model is not affected.
    ok = SmoothedClassifier(BadRow(row=0, value=5.0), 0.5, 2, device="cpu", input_shape=(1, 2, 2))
    assert ok.sample_counts(torch.zeros(1, 2, 2), 0.5, 50, batch_size=20).tolist() == [1, 49]


def test_evaluate_accuracy_refuses_non_finite_logits():
    data = DataSplit(torch.rand(12, 1, 28, 28), torch.zeros(12, dtype=torch.int64), 10, "mnist5k", "test")
    with pytest.raises(ValueError, match=r"non-finite logits \(nan\) for test example 0 of 12"):
        evaluate_accuracy(_nan_mnist_cnn(), data)
    small = DataSplit(torch.rand(12, 1, 2, 2), torch.zeros(12, dtype=torch.int64), 2, "fake", "test")
    with pytest.raises(ValueError, match=r"non-finite logits \(nan\) for test example 9 of 12 with noise sigma 0\.5"):
        evaluate_accuracy(BadRow(row=4, on_call=1), small, sigma=0.5, batch_size=5)


def test_attacks_refuse_non_finite_logits():
    model = _nan_mnist_cnn()
    x, y = torch.rand(3, 1, 28, 28), torch.tensor([0, 1, 2])
    with pytest.raises(ValueError, match=r"non-finite logits \(nan\) for example 0 of 3 \(no noise\)"):
        A.smoothed_predict(model, x, 0.0)
    with pytest.raises(ValueError, match=r"non-finite logits \(nan\) for a noisy copy of example 0 of 3 "
                                         r"\(one of 5 votes\)"):
        A.smoothed_predict(model, x, 0.5, votes=5, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"non-finite logits \(nan\) for example 0 of 3 \(no noise\)"):
        A.robust_accuracy(model, x, y, 0.5, attack=A.PGD(steps=1, eot=2), eps_list=[0.1], votes=3,
                          generator=torch.Generator().manual_seed(0))


# ------------------------------------------------------------------------------ arch imports


@pytest.fixture
def evil_checkpoint(tmp_path, monkeypatch):
    """A checkpoint whose arch names a module (written beside it, on sys.path) that writes a marker on import."""
    marker = tmp_path / "pwned"
    name = "evil_arch_beside_checkpoint"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(f"""
        import pathlib
        pathlib.Path({str(marker)!r}).write_text("ran")
        from renyi_cert_torch.models import MnistCNN as Net
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    path = tmp_path / "evil.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "state_dict": build_model("mnist_cnn").state_dict(),
                "config": {"arch": f"{name}:Net", "num_classes": 10}}, path)
    yield path, marker, name
    sys.modules.pop(name, None)


def test_checkpoint_cannot_import_code_by_default(evil_checkpoint):
    path, marker, name = evil_checkpoint
    with pytest.raises(ValueError, match=rf"{str(path)!r}: arch \('{name}:Net'\) is an import path; loading it "
                                         r"would import and run code named by the checkpoint; pass "
                                         r"trust_arch_import=True / --trust-arch-import if you trust this file"):
        load_checkpoint(path)
    assert not marker.exists() and name not in sys.modules
    model, cfg = load_checkpoint(path, trust_arch_import=True)
    assert marker.exists() and cfg["arch"] == f"{name}:Net" and not model.training


def test_checkpoint_naming_os_system_is_refused(tmp_path):
    path = tmp_path / "os.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "state_dict": {}, "config": {"arch": "os:system", "num_classes": 10}},
               path)
    with pytest.raises(ValueError, match=r"arch \('os:system'\) is an import path; loading it would import and run"):
        load_checkpoint(path)


# ------------------------------------------------------------------------- checkpoint configs


def _raw_checkpoint(path, config):
    torch.save({"format": CHECKPOINT_FORMAT, "state_dict": build_model("mnist_cnn").state_dict(), "config": config},
               path)
    return path


@pytest.mark.parametrize("extra, match", [
    ({"sigma": float("nan")}, r"sigma \(nan\) must be finite and >= 0"),
    ({"sigma": float("inf")}, r"sigma \(inf\) must be finite and >= 0"),
    ({"sigma": -0.5}, r"sigma \(-0\.5\) must be >= 0"),
    ({"sigma": "0.5"}, r"sigma \('0\.5'\) must be a real number"),
    ({"num_classes": 2.5}, r"num_classes \(2\.5\) must be an integer >= 2"),
    ({"num_classes": True}, r"num_classes \(True\) must be an integer >= 2"),
    ({"epochs": "x"}, r"epochs \('x'\) must be an integer >= 1"),
    ({"dataset": "svhn"}, r"dataset \('svhn'\) must be one of 'mnist', 'mnist5k', 'cifar10'"),
    ({"mode": "adversarial"}, r"mode \('adversarial'\) must be one of 'stn', 'gaussian', 'none'"),
    ({"mode": "stn", "sigma": 0.0}, r"sigma \(0\.0\) must be > 0 for mode 'stn'"),
    ({"arch": "resnet"}, r"arch \('resnet'\) must be one of 'mnist_cnn', 'cifar_cnn7'"),
    ({"colour": "red", "note": 1}, r"unknown config key\(s\) 'colour', 'note'; a config holds only dataset, arch"),
])
def test_load_checkpoint_validates_the_config(tmp_path, extra, match):
    path = _raw_checkpoint(tmp_path / "bad.pt", {"arch": "mnist_cnn", "num_classes": 10, **extra})
    with pytest.raises(ValueError, match=rf"^{str(path)!r}: the checkpoint's config is invalid: {match}"):
        load_checkpoint(path)


def test_valid_checkpoint_configs_keep_loading(tmp_path):
    # Partial plain-dict configs (as tests and tools write them) and full TrainConfig dicts.
    model = build_model("mnist_cnn")
    for i, cfg in enumerate([
        {"arch": "mnist_cnn", "num_classes": 10},
        {"arch": "mnist_cnn", "num_classes": 10, "dataset": "mnist5k", "sigma": 0.0},
        {"arch": "mnist_cnn", "num_classes": 10, "dataset": "mnist5k", "sigma": 0.5},
        TrainConfig(mode="none", epochs=1),
        TrainConfig(dataset="mnist", mode="stn", sigma=0.25, max_train=10, data_root="data"),
    ]):
        path = save_checkpoint(tmp_path / f"{i}.pt", model, cfg)
        _, loaded = load_checkpoint(path)
        expected = cfg.to_dict() if isinstance(cfg, TrainConfig) else cfg
        assert loaded == expected
        if isinstance(cfg, TrainConfig):
            assert TrainConfig.from_dict(loaded) == cfg
    # An integer sigma from a foreign writer is normalised to float, not refused.
    path = _raw_checkpoint(tmp_path / "f.pt", {"arch": "mnist_cnn", "num_classes": 10, "sigma": 1})
    _, loaded = load_checkpoint(path)
    assert loaded == {"arch": "mnist_cnn", "num_classes": 10, "sigma": 1.0} and type(loaded["sigma"]) is float
