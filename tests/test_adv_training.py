"""Tests for the adversarial training modes of renyi_cert_torch.train: PGD-AT (Madry et al. 2018) and TRADES
(Zhang et al. 2019): the loss, the training examples, that training makes a model more robust, the settings
in TrainConfig and in checkpoints.

The command-line flags are tested in test_train_cli.py; attacking such checkpoints in test_attacks.py."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from renyi_cert_torch import adversarial as adversarial_mod  # noqa: E402
from renyi_cert_torch.attacks import perturbation_norm  # noqa: E402
from renyi_cert_torch.data import DataSplit, load_dataset  # noqa: E402
from renyi_cert_torch.models import build_model  # noqa: E402
from renyi_cert_torch.train import (  # noqa: E402
    PUBLISHED_ATTACKS,
    AdversarialSettings,
    TrainConfig,
    adversarial_accuracy,
    evaluate_accuracy,
    load_checkpoint,
    nominal_step_cost,
    pgd_at_examples,
    save_checkpoint,
    train,
    train_epoch,
    trades_examples,
    trades_loss,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: on a loaded 2-core machine two threads spin against each other."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Dropout(0.1), nn.Linear(128, 10))


# ----------------------------------------------------------------------------------------- the loss


def _np_log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def test_trades_loss_matches_hand_computed_value():
    clean = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    adv = np.array([[1.0, 1.0, 0.0], [0.0, 2.0, 1.0]])
    y = np.array([0, 2])
    beta = 6.0
    # By hand (numpy, float64): CE = mean_i -log p_i[y_i]; KL = mean_i sum_k p_ik (log p_ik - log q_ik),
    # p = softmax(clean), q = softmax(adv) (the official trades.py: KLDivLoss(sum) / batch size).
    log_p, log_q = _np_log_softmax(clean), _np_log_softmax(adv)
    ce = -np.mean(log_p[np.arange(2), y])
    kl = np.mean(np.sum(np.exp(log_p) * (log_p - log_q), axis=1))
    # first row's KL spelled out
    p0 = np.exp([2.0, 0.0, -1.0]) / np.exp([2.0, 0.0, -1.0]).sum()
    q0 = np.exp([1.0, 1.0, 0.0]) / np.exp([1.0, 1.0, 0.0]).sum()
    assert np.sum(p0 * np.log(p0 / q0)) == pytest.approx(np.sum(np.exp(log_p[0]) * (log_p[0] - log_q[0])), rel=1e-14)
    loss, ce_t, kl_t = trades_loss(torch.tensor(clean), torch.tensor(adv), torch.tensor(y), beta)
    assert ce_t.item() == pytest.approx(ce, rel=1e-12)
    assert kl_t.item() == pytest.approx(kl, rel=1e-12)
    assert loss.item() == pytest.approx(ce + beta * kl, rel=1e-12)
    # the values themselves, for the record (pure-Python math: rows 0.379738 and 0.333238; CE 0.813933)
    assert kl == pytest.approx(0.356488, abs=1e-6) and ce == pytest.approx(0.813933, abs=1e-6)


def test_trades_loss_gradient_flows_through_both_logits():
    # Unlike STN, the clean distribution is not detached: d KL / d z_clean = p (log p - log q - KL) per row.
    torch.manual_seed(0)
    clean = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    adv = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, 2, 3])
    beta = 2.0
    trades_loss(clean, adv, y, beta)[0].backward()
    p, q = torch.softmax(clean.detach(), 1), torch.softmax(adv.detach(), 1)
    kl_rows = (p * (p.log() - q.log())).sum(1, keepdim=True)
    onehot = nn.functional.one_hot(y, 5).double()
    assert torch.allclose(clean.grad, ((p - onehot) + beta * p * (p.log() - q.log() - kl_rows)) / 4, atol=1e-14)
    assert torch.allclose(adv.grad, beta * (q - p) / 4, atol=1e-14)


# ------------------------------------------------------------------------------- training examples


@pytest.fixture(scope="module")
def digits():
    tr, te = load_dataset("mnist5k", "train"), load_dataset("mnist5k", "test")
    return tr.x[:800], tr.y[:800], DataSplit(te.x[:300], te.y[:300], 10, "mnist5k", "test")


@pytest.mark.parametrize("norm, eps", [("linf", 0.2), ("l2", 1.5)])
def test_training_examples_stay_in_the_ball_and_raise_their_loss(digits, norm, eps):
    x, y, _ = digits
    xb, yb = x[:64], y[:64]
    torch.manual_seed(0)
    model = _mlp().train()
    adv = AdversarialSettings(norm=norm, eps=eps, steps=5, step_size=2.5 * eps / 5, beta=1.0)
    gen = torch.Generator().manual_seed(0)
    for x_adv in (pgd_at_examples(model, xb, yb, adv, gen), trades_examples(model, xb, adv, gen)):
        assert bool((perturbation_norm(x_adv, xb, norm) <= eps * (1 + 1e-5)).all())
        assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
    assert model.training and all(m.training for m in model.modules())  # eval during the attack, restored
    # against a random point of the same size (l_inf: a corner of the box; l2: a random direction), PGD-AT's
    # point has a higher cross-entropy and TRADES's a higher KL divergence from the clean prediction
    model.eval()
    noise = torch.randn(xb.shape, generator=torch.Generator().manual_seed(1))
    step = eps * (noise.sign() if norm == "linf" else noise / noise.flatten(1).norm(dim=1)[:, None, None, None])
    x_rand = (xb + step).clamp(0, 1)
    with torch.no_grad():
        clean = model(xb)
        ce = {k: nn.functional.cross_entropy(model(v), yb) for k, v in
              [("pgd", pgd_at_examples(model, xb, yb, adv, gen)), ("random", x_rand)]}
        kl = {k: trades_loss(clean, model(v), yb, 1.0)[2] for k, v in
              [("trades", trades_examples(model, xb, adv, gen)), ("random", x_rand)]}
    assert ce["pgd"] > ce["random"] and kl["trades"] > 2 * kl["random"], (ce, kl)


def test_training_attacks_run_the_attack_modules_pgd_loop(digits, monkeypatch):
    # one PGD: both training attacks go through attacks.projected_gradient_ascent
    from renyi_cert_torch.attacks import projected_gradient as pg

    calls = []
    real = pg.projected_gradient_ascent

    def counting(*args, **kwargs):
        calls.append(kwargs["steps"])
        return real(*args, **kwargs)

    monkeypatch.setattr(pg, "projected_gradient_ascent", counting)
    monkeypatch.setattr(adversarial_mod, "projected_gradient_ascent", counting)
    x, y, _ = digits
    adv = AdversarialSettings(norm="linf", eps=0.1, steps=3, step_size=0.05)
    gen = torch.Generator().manual_seed(0)
    pgd_at_examples(_mlp(), x[:8], y[:8], adv, gen)
    trades_examples(_mlp(), x[:8], adv, gen)
    assert calls == [3, 3]


def _train_mlp(mode, x, y, adversary, epochs=6):
    torch.manual_seed(0)
    model = _mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for e in range(epochs):
        train_epoch(model, opt, x, y, mode=mode, sigma=0.0, gamma=0.0, batch_size=50,
                    shuffle_generator=torch.Generator().manual_seed(e),
                    noise_generator=torch.Generator().manual_seed(100 + e), device="cpu",
                    adversary=adversary if mode != "none" else None)
    return model.eval()


def test_pgd_at_and_trades_are_more_robust_than_plain_training(digits):
    # 800 training digits, 6 epochs, l_inf eps 0.15, 5 steps of 0.075 (a few seconds); judged on 300 test
    # digits under the same PGD (CE, random start). Measured: plain 0.09, PGD-AT 0.44, TRADES 0.42.
    x, y, test = digits
    adv = AdversarialSettings(norm="linf", eps=0.15, steps=5, step_size=0.075, beta=1.0)
    robust = {m: adversarial_accuracy(_train_mlp(m, x, y, adv), test, adv, seed=1) for m in ("none", "pgd-at", "trades")}
    assert robust["pgd-at"] > robust["none"] + 0.2, robust
    assert robust["trades"] > robust["none"] + 0.2, robust


def test_adversarial_accuracy_is_at_most_clean_accuracy(digits):
    x, y, test = digits
    model = _train_mlp("none", x, y, None, epochs=1)
    adv = AdversarialSettings(norm="l2", eps=1.0, steps=3, step_size=0.8)
    clean = evaluate_accuracy(model, test)
    assert adversarial_accuracy(model, test, adv) <= clean
    assert adversarial_accuracy(model, test, AdversarialSettings(norm="l2", eps=1e-9, steps=1, step_size=1e-9)) \
        == pytest.approx(clean)
    with pytest.raises(ValueError, match="adversary must be an AdversarialSettings, got dict"):
        adversarial_accuracy(model, test, {"eps": 0.1})


def test_train_epoch_needs_the_adversary_exactly_for_the_adversarial_modes(digits):
    x, y, _ = digits
    kw = dict(sigma=0.0, gamma=0.0, batch_size=8, shuffle_generator=torch.Generator(),
              noise_generator=torch.Generator(), device="cpu")
    model = _mlp()
    opt = torch.optim.Adam(model.parameters())
    with pytest.raises(ValueError, match=r"mode 'pgd-at' needs adversary"):
        train_epoch(model, opt, x[:8], y[:8], mode="pgd-at", **kw)
    with pytest.raises(ValueError, match=r"adversary \(AdversarialSettings\(.*\)\) must be given for modes 'pgd-at' "
                                         r"and 'trades' only, not for mode 'stn'"):
        train_epoch(model, opt, x[:8], y[:8], mode="stn", adversary=AdversarialSettings("linf", 0.1, 1, 0.1), **kw)


def test_trades_epoch_logs_the_kl_term(digits):
    x, y, _ = digits
    adv = AdversarialSettings(norm="linf", eps=0.3, steps=2, step_size=0.15, beta=2.0)
    torch.manual_seed(0)
    model = _mlp()
    stats = train_epoch(model, torch.optim.Adam(model.parameters()), x[:100], y[:100], mode="trades", sigma=0.0,
                        gamma=0.0, batch_size=50, shuffle_generator=torch.Generator(),
                        noise_generator=torch.Generator(), device="cpu", adversary=adv)
    assert stats.stability_loss > 0 and stats.loss == pytest.approx(stats.ce_loss + 2.0 * stats.stability_loss, rel=1e-6)


def test_nominal_step_cost():
    adv = AdversarialSettings(norm="linf", eps=0.3, steps=40, step_size=0.01)
    assert [nominal_step_cost(m) for m in ("none", "gaussian", "stn")] == [1.0, 1.0, 2.0]
    assert nominal_step_cost("pgd-at", adv) == 41.0 and nominal_step_cost("trades", adv) == 42.0
    with pytest.raises(ValueError, match=r"mode 'trades' needs its AdversarialSettings"):
        nominal_step_cost("trades")
    with pytest.raises(ValueError, match=r"mode \('adv'\) must be one of"):
        nominal_step_cost("adv")


# ------------------------------------------------------------------------------------------ config


def test_published_defaults():
    # Madry et al.'s mnist_challenge / cifar10_challenge config.json; TRADES's train_trades_{mnist,cifar10}.py
    c = TrainConfig(mode="pgd-at")
    assert (c.attack_norm, c.attack_eps, c.attack_steps, c.attack_step_size, c.beta, c.sigma, c.gamma) == \
        ("linf", 0.3, 40, 0.01, None, 0.0, 0.0)
    c = TrainConfig(mode="trades", dataset="mnist")
    assert (c.attack_eps, c.attack_steps, c.attack_step_size, c.beta) == (0.3, 40, 0.01, 1.0)
    c = TrainConfig(mode="trades", dataset="cifar10")
    assert (c.attack_eps, c.attack_steps, c.attack_step_size, c.beta) == (0.031, 10, 0.007, 6.0)
    c = TrainConfig(mode="pgd-at", dataset="cifar10")
    assert (c.attack_eps, c.attack_steps, c.attack_step_size) == (8 / 255, 10, 2 / 255)
    assert set(PUBLISHED_ATTACKS) == {(m, d) for m in ("pgd-at", "trades") for d in ("mnist", "cifar10")}
    # other eps or steps: Madry's rule 2.5 eps / steps; an explicit step wins
    assert TrainConfig(mode="pgd-at", attack_steps=10).attack_step_size == pytest.approx(0.075)
    assert TrainConfig(mode="trades", attack_norm="l2", attack_eps=2.0).attack_step_size == pytest.approx(0.125)
    assert TrainConfig(mode="trades", attack_steps=10, attack_step_size=0.05).attack_step_size == 0.05
    assert TrainConfig(mode="trades", beta=0).beta == 0.0
    a = TrainConfig(mode="trades", beta=3.0).adversary
    assert a == AdversarialSettings(norm="linf", eps=0.3, steps=40, step_size=0.01, beta=3.0)
    assert a.describe() == "PGD l_inf, eps 0.3, 40 steps of 0.01"
    assert TrainConfig(mode="pgd-at").adversary.beta == 0.0 and TrainConfig().adversary is None
    # the other modes' configs carry no attack entries (as before the adversarial modes existed)
    assert not {"attack_norm", "attack_eps", "attack_steps", "attack_step_size", "beta"} & set(TrainConfig().to_dict())


@pytest.mark.parametrize("kwargs, match", [
    (dict(mode="pgd-at", attack_eps=0.0), r"attack_eps \(0\.0\) must be > 0"),
    (dict(mode="pgd-at", attack_eps=float("nan")), r"attack_eps \(nan\) must be finite and > 0"),
    (dict(mode="pgd-at", attack_eps=8.0), r"attack_eps \(8\.0\) must be <= 1 for an l_inf attack: pixels are in "
                                          r"\[0, 1\] \(did you mean 8/255 = 0\.03137\?\)"),
    (dict(mode="pgd-at", attack_norm="l1"), r"attack_norm \('l1'\) must be one of 'linf', 'l2'"),
    (dict(mode="trades", attack_norm="l2"), r"attack_eps must be given with attack_norm 'l2' for mode 'trades'"),
    (dict(mode="trades", attack_steps=0), r"attack_steps \(0\) must be an integer >= 1"),
    (dict(mode="trades", attack_steps=2.5), r"attack_steps \(2\.5\) must be an integer >= 1"),
    (dict(mode="trades", attack_step_size=-0.1), r"attack_step_size \(-0\.1\) must be > 0"),
    (dict(mode="trades", beta=-1.0), r"beta \(-1\.0\) must be >= 0"),
    (dict(mode="trades", beta="6"), r"beta \('6'\) must be a real number"),
    (dict(mode="stn", attack_eps=0.3), r"attack_eps \(0\.3\) is used only by modes 'pgd-at' and 'trades', not by "
                                       r"mode 'stn'"),
    (dict(mode="none", attack_norm="l2"), r"attack_norm \('l2'\) is used only by modes 'pgd-at' and 'trades'"),
    (dict(mode="pgd-at", beta=6.0), r"beta \(6\.0\) is used only by mode 'trades', not by mode 'pgd-at'"),
    (dict(mode="adv"), r"mode \('adv'\) must be one of 'stn', 'gaussian', 'none', 'pgd-at', 'trades'"),
])
def test_config_errors_name_the_value_and_the_constraint(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


def test_sigma_with_an_adversarial_mode_is_recorded_with_a_warning():
    with pytest.warns(UserWarning, match=r"mode 'trades' trains without noise: sigma \(0\.5\) is recorded but not used"):
        assert TrainConfig(mode="trades", sigma=0.5).sigma == 0.5


# -------------------------------------------------------------------------------------- checkpoints


def test_adversarial_training_run_and_checkpoint_round_trip(tmp_path):
    cfg = TrainConfig(mode="trades", max_train=64, epochs=1, batch_size=32, attack_steps=2, beta=3.0, seed=2)
    result = train(cfg, device="cpu", progress=False)
    assert result.history[0].stability_loss > 0 and not result.model.training
    path = save_checkpoint(tmp_path / "trades.pt", result.model, cfg)
    model, saved = load_checkpoint(path)
    assert saved == cfg.to_dict() and TrainConfig.from_dict(saved) == cfg
    assert (saved["mode"], saved["attack_norm"], saved["attack_eps"], saved["attack_steps"], saved["beta"]) == \
        ("trades", "linf", 0.3, 2, 3.0)
    assert saved["attack_step_size"] == pytest.approx(2.5 * 0.3 / 2)
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(model(x), result.model(x))
    # the same config trains the same weights
    again = train(cfg, device="cpu", progress=False).model.state_dict()
    assert all(torch.equal(v, again[k]) for k, v in result.model.state_dict().items())


def test_checkpoint_attack_settings_are_validated(tmp_path):
    model = build_model("mnist_cnn")
    cfg = TrainConfig(mode="pgd-at").to_dict()
    with pytest.raises(ValueError, match=r"config is invalid: attack_steps \(0\) must be an integer >= 1"):
        save_checkpoint(tmp_path / "a.pt", model, {**cfg, "attack_steps": 0})
    path = save_checkpoint(tmp_path / "b.pt", model, cfg)
    for key, value, match in [("attack_eps", -0.3, r"attack_eps \(-0\.3\) must be > 0"),
                              ("attack_norm", "l3", r"attack_norm \('l3'\) must be one of 'linf', 'l2'"),
                              ("beta", 1.0, r"beta \(1\.0\) is used only by mode 'trades', not by mode 'pgd-at'"),
                              ("attack_kappa", 2.0, r"unknown config key\(s\) 'attack_kappa'")]:
        obj = torch.load(path, weights_only=True)
        obj["config"][key] = value
        torch.save(obj, tmp_path / "bad.pt")
        with pytest.raises(ValueError, match=r"bad\.pt'\: the checkpoint's config is invalid: " + match):
            load_checkpoint(tmp_path / "bad.pt")


def test_checkpoints_of_the_other_modes_load_as_before(tmp_path):
    # a config saved before the adversarial modes existed (no attack keys) still loads and compares equal
    model = build_model("mnist_cnn")
    old = {"dataset": "mnist5k", "arch": "mnist_cnn", "mode": "stn", "sigma": 0.7, "gamma": 1.0, "epochs": 6,
           "batch_size": 128, "lr": 0.001, "seed": 0, "num_classes": 10, "max_train": None, "data_root": None}
    path = save_checkpoint(tmp_path / "old.pt", model, old)
    _, saved = load_checkpoint(path)
    assert saved == TrainConfig(mode="stn", sigma=0.7, epochs=6).to_dict()
    assert math.isclose(TrainConfig.from_dict(saved).sigma, 0.7)
