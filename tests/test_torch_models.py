"""Tests for renyi_cert_torch.models: the paper's architectures, Normalize and build_model."""

import textwrap

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from renyi_cert_torch.models import (  # noqa: E402
    ARCHITECTURES,
    CIFAR10_MEAN,
    CIFAR10_STD,
    CifarCNN7,
    MnistCNN,
    Normalize,
    build_model,
)


def _layers(model, kind):
    return [m for m in model.modules() if isinstance(m, kind)]


def test_architecture_names():
    assert set(ARCHITECTURES) == {"mnist_cnn", "cifar_cnn7"}


@pytest.mark.parametrize("arch, shape", [("mnist_cnn", (3, 1, 28, 28)), ("cifar_cnn7", (3, 3, 32, 32))])
@pytest.mark.parametrize("num_classes", [10, 3])
def test_output_shape(arch, shape, num_classes):
    model = build_model(arch, num_classes=num_classes).eval()
    with torch.no_grad():
        out = model(torch.rand(shape))
    assert out.shape == (shape[0], num_classes)
    assert torch.isfinite(out).all()


def test_mnist_cnn_matches_paper_description():
    # Li et al. 2019, section 6: two 5x5 conv layers with 64 filters, max-pooling,
    # dropout 0.25, a 128-unit dense layer, dropout 0.5, 10 outputs.
    model = MnistCNN()
    convs = _layers(model, nn.Conv2d)
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [(1, 64, (5, 5)), (64, 64, (5, 5))]
    assert len(_layers(model, nn.MaxPool2d)) == 1
    assert [d.p for d in _layers(model, nn.Dropout)] == [0.25, 0.5]
    assert [(lin.in_features, lin.out_features) for lin in _layers(model, nn.Linear)] == [(6400, 128), (128, 10)]


def test_cifar_cnn7_has_seven_convs_and_no_batchnorm():
    model = CifarCNN7()
    convs = _layers(model, nn.Conv2d)
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 256]
    assert len(_layers(model, nn.MaxPool2d)) == 3
    assert not _layers(model, nn.modules.batchnorm._BatchNorm)


def test_normalize_lives_inside_the_model_as_buffers():
    model = CifarCNN7()
    state = model.state_dict()
    assert torch.allclose(state["normalize.mean"].flatten(), torch.tensor(CIFAR10_MEAN))
    assert torch.allclose(state["normalize.std"].flatten(), torch.tensor(CIFAR10_STD))
    assert "normalize.mean" not in dict(model.named_parameters())


def test_normalize_formula():
    norm = Normalize((0.5, 0.25), (2.0, 0.5))
    x = torch.tensor([[[[1.0]], [[1.0]]]])  # (1, 2, 1, 1)
    assert torch.allclose(norm(x).flatten(), torch.tensor([(1 - 0.5) / 2.0, (1 - 0.25) / 0.5]))


def test_normalize_errors():
    with pytest.raises(ValueError, match=r"std \(\(1\.0, 0\.0\)\) must be > 0"):
        Normalize((0.0, 0.0), (1.0, 0.0))
    with pytest.raises(ValueError, match=r"mean \(2 values\) and std \(1 values\) must have the same length"):
        Normalize((0.0, 0.0), (1.0,))


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "my_user_models.py").write_text(textwrap.dedent("""
        import torch
        from torch import nn

        class Tiny(nn.Module):
            def __init__(self, num_classes):
                super().__init__()
                self.fc = nn.Linear(4, num_classes)
            def forward(self, x):
                return self.fc(x.flatten(1))

        def not_a_module(num_classes):
            return 42

        def broken(num_classes):
            raise RuntimeError("boom")

        CONSTANT = 3
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "my_user_models"


def test_build_model_import_path(user_module):
    model = build_model(f"{user_module}:Tiny", num_classes=7, trust_arch_import=True)
    assert model.fc.out_features == 7
    assert model(torch.zeros(2, 1, 2, 2)).shape == (2, 7)


def test_build_model_import_path_builtin_module():
    assert isinstance(build_model("renyi_cert_torch.models:MnistCNN", num_classes=4, trust_arch_import=True), MnistCNN)


@pytest.mark.parametrize("arch, match", [
    ("resnet", r"arch \('resnet'\) must be one of 'mnist_cnn', 'cifar_cnn7' or an import path"),
    (":Tiny", r"arch \(':Tiny'\) is not a valid import path"),
    ("no_such_module_xyz:Foo", r"arch \('no_such_module_xyz:Foo'\): cannot import module 'no_such_module_xyz'"),
    ("my_user_models:Missing", r"arch \('my_user_models:Missing'\): module 'my_user_models' has no attribute 'Missing'"),
    ("my_user_models:CONSTANT", r"arch \('my_user_models:CONSTANT'\): 'CONSTANT' is not a class or callable"),
    ("my_user_models:not_a_module", r"returned int, not a torch.nn.Module"),
    ("my_user_models:broken", r"calling broken\(num_classes=10\) failed: boom"),
])
def test_build_model_errors(user_module, arch, match):
    with pytest.raises(ValueError, match=match):
        build_model(arch, trust_arch_import=True)


def test_build_model_refuses_import_paths_unless_trusted(user_module, tmp_path, monkeypatch):
    # An import path runs the named module's code: refused by default, before any import
    # (registered names are always allowed).
    marker = tmp_path / "imported"
    (tmp_path / "marker_on_import_models.py").write_text(textwrap.dedent(f"""
        import pathlib
        from torch import nn
        pathlib.Path({str(marker)!r}).write_text("imported")

        class Net(nn.Linear):
            def __init__(self, num_classes):
                super().__init__(4, num_classes)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    for arch in ("marker_on_import_models:Net", f"{user_module}:Tiny", "renyi_cert_torch.models:MnistCNN",
                 "os:system"):
        with pytest.raises(ValueError, match=rf"arch \({arch!r}\) is an import path; building it would import "
                                             r"and run the code it names; pass trust_arch_import=True / "
                                             r"--trust-arch-import"):
            build_model(arch)
    assert not marker.exists()
    with pytest.raises(ValueError, match=r"trust_arch_import \('yes'\) must be True or False"):
        build_model("marker_on_import_models:Net", trust_arch_import="yes")
    assert not marker.exists()
    assert isinstance(build_model("mnist_cnn"), MnistCNN)
    assert build_model("marker_on_import_models:Net", num_classes=3, trust_arch_import=True).out_features == 3
    assert marker.exists()
