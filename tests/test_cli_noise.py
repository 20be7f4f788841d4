"""``train`` and ``certify`` with Laplace and uniform noise (issue 11): l1 certificates end to end.

The rows of ``certify --noise laplace`` are those of the core procedure with Laplace noise and the
row's seed (the oracle is :meth:`SmoothedClassifier.certify` with ``Laplace(b)``, whose radii are
checked against mpmath in tests/test_noise.py); the settings file records the noise and the norm;
``train --noise laplace`` records its noise in the checkpoint, and ``certify`` then uses it.
"""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mlxtend")

from renyi_cert import analyze  # noqa: E402
from renyi_cert.noise import Laplace  # noqa: E402
from renyi_cert.seeds import derive_seed  # noqa: E402
from renyi_cert_torch.cli import certify_main  # noqa: E402
from renyi_cert_torch.data import load_dataset  # noqa: E402
from renyi_cert_torch.smoothing import SmoothedClassifier  # noqa: E402
from renyi_cert_torch.train import TrainConfig, load_checkpoint  # noqa: E402
from renyi_cert_torch.train_cli import main as train_main  # noqa: E402

from _workers import untrained_checkpoint  # noqa: E402

SMALL = ["--n0", "20", "--n", "200", "--batch", "100", "--no-progress", "--device", "cpu", "--max", "3"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return untrained_checkpoint(tmp_path_factory.mktemp("noise") / "m.pt")


def certify(ckpt, out, *flags):
    return certify_main(["--checkpoint", str(ckpt), "--out", str(out), *SMALL, *flags])


def test_laplace_rows_are_the_core_procedure_and_the_log_says_l1(ckpt, tmp_path):
    out = tmp_path / "lap.tsv"
    assert certify(ckpt, out, "--noise", "laplace", "--sigma", "0.4") == 0
    settings = json.loads((tmp_path / "lap.tsv.json").read_text())
    assert (settings["noise"], settings["norm"], settings["sigma"]) == ("laplace", "l1", 0.4)
    assert settings["bounds"] == ["renyi", "teng", "pixeldp"]
    log = analyze.read_log(out)
    model, _ = load_checkpoint(ckpt)
    clf = SmoothedClassifier(model, Laplace(0.4), 10, device="cpu", batch_size=100)
    data = load_dataset("mnist5k", "test")
    for r, idx in enumerate(log.idx):
        cert = clf.certify(data.x[idx], n0=20, n=200, bounds=("renyi", "teng", "pixeldp"),
                           generator=clf.make_generator(derive_seed(0, int(idx))))
        assert cert.norm == "l1"
        for bound in ("renyi", "teng", "pixeldp"):
            assert log.radii[bound][r] == pytest.approx(cert.radii[bound], rel=1e-7)  # printed with 8 digits


def test_uniform_defaults_to_yang_and_refuses_renyi(ckpt, tmp_path, capsys):
    assert certify(ckpt, tmp_path / "u.tsv", "--noise", "uniform", "--sigma", "0.5") == 0
    assert "radius_yang" in (tmp_path / "u.tsv").read_text().splitlines()[0]
    assert certify(ckpt, tmp_path / "v.tsv", "--noise", "uniform", "--bound", "renyi") == 2
    assert "--bound (renyi) is not a bound of uniform noise: choose from yang (the Renyi divergence" \
        in capsys.readouterr().err


@pytest.mark.parametrize("flags,message", [
    (["--noise", "laplace", "--bound", "cohen"], "--bound (cohen) is not a bound of laplace noise: choose from renyi, "
                                                 "teng, pixeldp"),
    (["--noise", "cauchy"], "argument --noise: noise ('cauchy') must be one of"),
])
def test_noise_errors(ckpt, tmp_path, capsys, flags, message):
    assert certify(ckpt, tmp_path / "o.tsv", *flags) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o.tsv").exists()


def test_adaptive_certification_with_laplace_noise(ckpt, tmp_path):
    out = tmp_path / "ad.tsv"
    assert certify(ckpt, out, "--noise", "laplace", "--sigma", "0.4", "--adaptive", "--target-radius", "0.05",
                   "--n-start", "50") == 0
    log = analyze.read_log(out)
    assert log.norm == "l1" and set(log.radii) == {"renyi", "teng", "pixeldp"}
    assert set(log.stop) <= {"target-reached", "target-out-of-reach", "budget-exhausted"}
    settings = json.loads((tmp_path / "ad.tsv.json").read_text())
    assert settings["adaptive"]["bound"] == "renyi" and settings["noise"] == "laplace"


def test_resume_with_another_noise_is_refused(ckpt, tmp_path, capsys):
    out = tmp_path / "r.tsv"
    assert certify(ckpt, out, "--noise", "laplace", "--sigma", "0.5") == 0
    assert certify(ckpt, out, "--resume", "--sigma", "0.5") == 2  # the checkpoint's noise: gaussian
    assert "noise: 'laplace' in the log, 'gaussian' now" in capsys.readouterr().err


def test_train_with_laplace_noise_records_it_and_certify_uses_it(tmp_path, capsys):
    out = tmp_path / "lap.pt"
    assert train_main(["--dataset", "mnist5k", "--mode", "stn", "--noise", "laplace", "--sigma", "0.3", "--epochs",
                       "1", "--max-train", "256", "--no-progress", "--device", "cpu", "--out", str(out)]) == 0
    assert "noisy (laplace 0.3, one draw per image)" in capsys.readouterr().out
    _, config = load_checkpoint(out)
    assert config["noise"] == "laplace" and config["sigma"] == 0.3
    assert certify(out, tmp_path / "c.tsv") == 0
    err = capsys.readouterr().err
    assert "(l1) at laplace scale 0.3" in err and "warning" not in err
    assert json.loads((tmp_path / "c.tsv.json").read_text())["noise"] == "laplace"


def test_train_config_noise_rules():
    assert "noise" not in TrainConfig(mode="stn", epochs=1).to_dict()  # Gaussian configs as before
    assert TrainConfig(mode="gaussian", noise="uniform", sigma=0.5, epochs=1).training_noise.name == "uniform"
    with pytest.raises(ValueError, match="noise \\('laplace'\\) is used only by the noisy modes"):
        TrainConfig(mode="none", noise="laplace", epochs=1)
    with pytest.raises(ValueError, match="noise \\('cauchy'\\) must be one of"):
        TrainConfig(mode="stn", noise="cauchy", epochs=1)
