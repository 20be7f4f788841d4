"""Tests of the l1 attacks (PGD-l1, the l1-ball projection) and of attacks under Laplace and uniform noise.

Issue 11, item 3: the certified-<=-empirical cross-check must hold for l1 too, so the attacks need
l1 PGD with EOT over the noise the model is smoothed with (Laplace, uniform).
"""

from __future__ import annotations

import csv
import math
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")
stats = pytest.importorskip("scipy.stats")
from torch import nn  # noqa: E402

from renyi_cert.noise import Gaussian, Laplace, Uniform  # noqa: E402
from renyi_cert_torch import attack_cli  # noqa: E402
from renyi_cert_torch import attacks as A  # noqa: E402
from renyi_cert_torch.attack_cli import TSV_COLUMNS, main as attack_main  # noqa: E402
from renyi_cert_torch.attacks import eot as eot_module  # noqa: E402
from renyi_cert_torch.attacks import projected_gradient as pgd_module  # noqa: E402
from renyi_cert_torch.smoothing import draw_noise  # noqa: E402

from _workers import untrained_checkpoint  # noqa: E402

#: The columns of the TSV before the noise columns were added (their positions must not move).
OLD_COLUMNS = ("attack", "norm", "eps", "sigma", "transfer", "source_sigma", "votes", "eot", "steps", "n",
               "n_robust", "robust_accuracy", "clean_accuracy", "base_clean_accuracy", "mean_perturbation_norm",
               "seconds")


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One intra-op thread for these tiny models (two spin against each other on a loaded 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------------- the l1 projection


def _oracle_l1_projection(v: np.ndarray, eps: float) -> np.ndarray:
    """Projection onto {||w||_1 <= eps} from its KKT condition, by bisection on the threshold.

    w = sign(v) max(|v| - theta, 0) with theta = 0 if ||v||_1 <= eps, else the theta > 0 with
    sum max(|v_i| - theta, 0) = eps (a continuous decreasing function of theta).
    """
    a = np.abs(v)
    if a.sum() <= eps:
        return v.copy()
    lo, hi = 0.0, float(a.max())
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if np.maximum(a - mid, 0.0).sum() > eps:
            lo = mid
        else:
            hi = mid
    return np.sign(v) * np.maximum(a - 0.5 * (lo + hi), 0.0)


@pytest.mark.parametrize("seed", range(4))
def test_l1_projection_matches_the_kkt_oracle(seed):
    g = torch.Generator().manual_seed(seed)
    d = [1, 3, 17, 200][seed]
    scales = torch.tensor([0.01, 0.3, 1.0, 5.0, 50.0, 0.0], dtype=torch.float64)
    delta = torch.randn(len(scales), 2, d, generator=g, dtype=torch.float64) * scales[:, None, None]
    for eps in (0.0, 1e-12, 1e-6, 0.5, 2.0, 7.0):
        p = A.project_l1_ball(delta, eps)
        assert p.shape == delta.shape and p.dtype == delta.dtype
        for i in range(len(delta)):
            want = _oracle_l1_projection(delta[i].reshape(-1).numpy(), eps)
            np.testing.assert_allclose(p[i].reshape(-1).numpy(), want, rtol=0, atol=1e-12)
        norms = A.perturbation_norm(p, torch.zeros_like(p), "l1")
        assert bool((norms <= eps * (1 + 1e-12) + 1e-300).all())
        before = A.perturbation_norm(delta, torch.zeros_like(delta), "l1")
        inside = before <= eps
        assert torch.equal(p[inside], delta[inside])  # points already in the ball do not move, bit for bit
        # the others land on the sphere (up to the rounding of sums of their size)
        assert bool(((norms - eps).abs() <= 1e-12 * eps + 1e-14 * before)[~inside].all())
    assert torch.equal(A.project_l1_ball(delta, 0.0), torch.zeros_like(delta))


def test_l1_projection_is_the_nearest_point_of_the_ball():
    # variational inequality of the Euclidean projection P onto a convex set C: <v - P, z - P> <= 0 for z in C
    g = _gen(5)
    v = 3.0 * torch.randn(8, 30, generator=g, dtype=torch.float64)
    eps = 1.5
    p = A.project_l1_ball(v, eps)
    for _ in range(20):
        z = A.project_l1_ball(torch.randn(8, 30, generator=g, dtype=torch.float64), eps)  # points of the ball
        assert float(((v - p) * (z - p)).sum(dim=1).max()) <= 1e-10
        assert bool(((v - p).norm(dim=1) <= (v - z).norm(dim=1) + 1e-12).all())


def test_l1_projection_per_example_radius_float32_and_errors():
    g = _gen(1)
    delta = torch.randn(3, 1, 28, 28, generator=g)  # float32 images
    eps = torch.tensor([0.0, 1.0, 10.0])
    p = A.project_l1_ball(delta, eps)
    norms = p.abs().flatten(1).sum(1)
    assert float(norms[0]) == 0.0
    assert torch.allclose(norms[1:], eps[1:], rtol=1e-5)
    assert bool((norms <= eps * (1 + 2e-7)).all())  # in the ball up to float32 rounding
    with pytest.raises(ValueError, match=r"eps \(-1.0\) must be >= 0"):
        A.project_l1_ball(delta, -1.0)
    with pytest.raises(ValueError, match=r"eps must be a number or a tensor of shape \(\) or \(3,\), got shape \(2,\)"):
        A.project_l1_ball(delta, torch.ones(2))
    with pytest.raises(ValueError, match=r"norm \('l0'\) must be one of 'linf', 'l2', 'l1'"):
        A.project(delta, delta, 1.0, "l0")


@pytest.mark.parametrize("seed", range(3))
def test_project_l1_lands_in_the_ball_and_the_box(seed):
    g = _gen(seed)
    x = torch.rand(6, 40, generator=g, dtype=torch.float64)
    x[:, :10] = 0.0  # pixels at the edges of the box
    x[:, 10:20] = 1.0
    x_adv = x + [0.1, 1.0, 10.0][seed] * torch.randn(6, 40, generator=g, dtype=torch.float64)
    for eps in (0.0, 0.3, 2.0, 50.0):
        p = A.project(x_adv, x, eps, "l1")
        assert float(p.min()) >= 0.0 and float(p.max()) <= 1.0
        assert bool((A.perturbation_norm(p, x, "l1") <= eps * (1 + 1e-12) + 1e-15).all())
        assert torch.allclose(A.project(p, x, eps, "l1"), p, atol=1e-12)  # a feasible point stays
        # projection, then the clip: the clip moves each coordinate towards x
        clipped = (x + A.project_l1_ball(x_adv - x, eps)).clamp(0, 1)
        assert torch.equal(p, clipped)


# ----------------------------------------------------------------------------------- the sparse l1 step


def test_sparse_l1_step_moves_the_top_coordinates_by_equal_amounts():
    g = torch.zeros(2, 200)
    g[0, 7], g[0, 50], g[0, 3] = 3.0, -2.0, 1.0  # q = 0.99 of 200 coordinates: the top 2
    g[1, :] = 0.5
    g[1, 9] = -4.0
    x = torch.full((2, 200), 0.5)
    step = pgd_module._sparse_l1_step(x, g, 0.99)
    want = torch.zeros(2, 200)
    want[0, 7], want[0, 50] = 0.5, -0.5
    want[1, :] = 1.0 / 200  # ties at the threshold all move (199 ties + the top one)
    want[1, 9] = -1.0 / 200
    assert torch.allclose(step, want)
    assert torch.allclose(step.abs().sum(1), torch.ones(2))
    # a zero gradient does not move; coordinates at the box's edge pushing out of it are skipped
    assert torch.equal(pgd_module._sparse_l1_step(x, torch.zeros(2, 200), 0.99), torch.zeros(2, 200))
    x_edge = x.clone()
    x_edge[0, 7] = 1.0   # g > 0 at 1: skipped
    x_edge[0, 50] = 1.0  # g < 0 at 1: moves down, kept
    step = pgd_module._sparse_l1_step(x_edge, g, 0.99)
    assert float(step[0, 7]) == 0.0 and float(step[0, 50]) == -0.5 and float(step[0, 3]) == 0.5
    # q = 0: every coordinate with a non-zero gradient
    assert torch.allclose(pgd_module._sparse_l1_step(x, g, 0.0)[0, [3, 7, 50]], torch.tensor([1, 1, -1]) / 3.0)


class LinearScore(nn.Module):
    """Two classes: logits [0, w.x + b]."""

    def __init__(self, w, b=0.0):
        super().__init__()
        self.w = torch.as_tensor(w, dtype=torch.float32)
        self.b = float(b)

    def forward(self, x):
        s = x.flatten(1) @ self.w + self.b
        return torch.stack([torch.zeros_like(s), s], dim=1)


@pytest.mark.parametrize("random_start", [False, True])
@pytest.mark.parametrize("loss", ["ce", "margin"])
def test_pgd_l1_finds_the_optimal_sparse_perturbation_of_a_linear_model(random_start, loss):
    # max over ||delta||_1 <= eps of -w.delta (leave class 1): all of eps on the coordinate of largest
    # |w|, against its sign; at x = 0.5 and eps = 0.4 the box allows it.
    g = _gen(3)
    w = torch.randn(30, generator=g)
    w[11] = -3.0  # the largest |w|, negative: the optimum raises pixel 11
    model = LinearScore(w, b=0.5)
    x = torch.full((4, 30), 0.5)
    y = torch.ones(4, dtype=torch.int64)
    eps = 0.4
    x_adv = A.pgd(model, x, y, eps=eps, norm="l1", steps=60, random_start=random_start, loss=loss, generator=g)
    want = x.clone()
    want[:, 11] += eps
    assert torch.allclose(x_adv, want, atol=1e-4)
    best = float(-(w * (want[0] - x[0])).sum())  # 3 * eps = 1.2
    got = -((x_adv - x) @ w)
    assert torch.allclose(got, torch.full((4,), best), rtol=1e-4)


def test_pgd_l1_iterates_stay_in_the_ball_and_the_box_at_every_step():
    # with no noise the model sees exactly the iterates (one pass per step)
    seen = []

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Sequential(nn.Flatten(), nn.Linear(64, 5))

        def forward(self, z):
            seen.append(z.detach().clone())
            return self.lin(z)

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = Net()
    g = _gen(2)
    x = torch.rand(6, 1, 8, 8, generator=g)
    x[:, :, :3] = 0.0  # a black border, like MNIST
    y = torch.randint(0, 5, (6,), generator=g)
    for eps, step_size in ((0.5, None), (3.0, 1.0), (30.0, 4.0)):
        seen.clear()
        out = A.pgd(model, x, y, eps=eps, norm="l1", steps=12, step_size=step_size, generator=g)
        assert len(seen) == 12
        for z in seen + [out]:
            assert float(z.min()) >= 0.0 and float(z.max()) <= 1.0
            assert bool((A.perturbation_norm(z, x, "l1") <= eps * (1 + 1e-6)).all())
        assert float(A.perturbation_norm(out, x, "l1").min()) > 0.0
    # the loop itself, with arbitrary gradients
    iterates = []

    def grad(z):
        iterates.append(z)
        return torch.randn(z.shape, generator=g)

    A.projected_gradient_ascent(grad, x, x, eps=1.0, norm="l1", steps=10, step_size=0.7, l1_quantile=0.9)
    for z in iterates[1:]:
        assert float(z.min()) >= 0.0 and float(z.max()) <= 1.0
        assert bool((A.perturbation_norm(z, x, "l1") <= 1.0 + 1e-6).all())


def test_l1_random_start_is_uniform_in_the_ball():
    # uniform in the l1 ball of R^d: ||delta||_1 / eps ~ Beta(d, 1), i.e. U^(1/d); every coordinate is
    # symmetric about 0. (x = 0.5 and eps = 0.5: the box never clips.)
    d, n = 3, 4000
    x = torch.full((n, d), 0.5, dtype=torch.float64)
    start = pgd_module._random_start(x, 0.5, "l1", _gen(4))
    r = A.perturbation_norm(start, x, "l1").numpy() / 0.5
    assert stats.kstest(r, stats.beta(d, 1).cdf).pvalue > 1e-3
    delta = (start - x).numpy()
    assert abs(float((delta > 0).mean()) - 0.5) < 0.03
    # the direction alone: uniform on the simplex after |.| (Dirichlet(1, ..., 1): first coordinate Beta(1, d - 1))
    direction = pgd_module._l1_direction(x, _gen(5)).numpy()
    np.testing.assert_allclose(np.abs(direction).sum(1), 1.0, rtol=1e-12)
    assert stats.kstest(np.abs(direction[:, 0]), stats.beta(1, d - 1).cdf).pvalue > 1e-3


# ----------------------------------------------------------------------------------- noise other than Gaussian


class Recorder(nn.Module):
    """Constant logits (zero input gradient) that record every input batch."""

    def __init__(self, num_classes=3):
        super().__init__()
        self.bias = nn.Parameter(torch.arange(num_classes, dtype=torch.float32))
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return self.bias.expand(x.shape[0], -1) + 0.0 * x.flatten(1).sum(1, keepdim=True)


def _eot_noise(sigma, norm="l1", steps=3, m=4, b=2, seed=1):
    """Run PGD on the Recorder; the noise draws the model saw, (steps * m, b, 25), and the generator's seed."""
    model = Recorder()
    x = torch.full((b, 1, 5, 5), 0.5)
    y = torch.tensor([0, 1])
    out = A.pgd(model, x, y, eps=0.3, norm=norm, sigma=sigma, steps=steps, eot=m, random_start=False,
                generator=_gen(seed))
    assert torch.equal(out, x)  # zero gradient: x never moves, so seen - x is exactly the noise
    return (torch.cat(model.seen).reshape(steps * m, b, -1) - x.reshape(1, b, -1))


@pytest.mark.parametrize("noise, law", [
    (Laplace(0.5), stats.laplace(scale=0.5)),
    (Uniform(0.3), stats.uniform(loc=-0.3, scale=0.6)),
])
def test_eot_and_vote_draws_follow_the_noise(noise, law):
    flat = _eot_noise(noise, steps=4, m=5).reshape(-1).double().numpy()  # 4 * 5 * 2 * 25 = 1000 draws
    assert stats.kstest(flat, law.cdf).pvalue > 1e-3
    other = stats.norm(scale=float(np.std(flat)))  # and the test can tell it from a Gaussian of the same spread
    assert stats.kstest(flat, other.cdf).pvalue < 1e-3
    draws = _eot_noise(noise, steps=3, m=4).reshape(12, -1)
    assert float((torch.cdist(draws, draws) + torch.eye(12) * 1e9).min()) > 0.1  # fresh draws
    # they are draw_noise's, from the attack's generator
    replay = draw_noise(torch.empty(1, 2, 1, 5, 5), noise, _gen(1))
    assert torch.allclose(_eot_noise(noise, steps=1, m=1)[0], replay.reshape(2, -1), atol=1e-6)
    # the judging vote draws the same noise
    model = Recorder()
    x = torch.full((2, 1, 5, 5), 0.5)
    A.smoothed_predict(model, x, noise, votes=500, generator=_gen(2))
    votes = (torch.cat(model.seen) - 0.5).reshape(-1).double().numpy()
    assert len(votes) == 500 * 50 and stats.kstest(votes[:2000], law.cdf).pvalue > 1e-3


def test_gaussian_draws_are_bit_identical_to_a_float_sigma():
    # a number sigma draws exactly what it did: sigma * randn from the generator, in order; Gaussian(sigma) too
    float_noise = _eot_noise(0.5, norm="l2")
    assert torch.equal(_eot_noise(Gaussian(0.5), norm="l2"), float_noise)
    assert torch.equal(_eot_noise(0.5, norm="l1"), float_noise)
    x = torch.full((2, 1, 5, 5), 0.5)
    replay = x + 0.5 * torch.randn((4, 2, 1, 5, 5), generator=_gen(1))  # the first step's 4 noisy inputs
    assert torch.equal(float_noise[:4], (replay - x).reshape(4, 2, -1))
    model = Recorder()
    A.smoothed_predict(model, x, 0.7, votes=6, generator=_gen(3))
    A.smoothed_predict(model, x, Gaussian(0.7), votes=6, generator=_gen(3))
    assert torch.equal(model.seen[0], model.seen[1])
    assert torch.equal(model.seen[0], (x.unsqueeze(0) + 0.7 * torch.randn((6, 2, 1, 5, 5), generator=_gen(3)))
                       .reshape(12, 1, 5, 5))
    # whole runs: robust_accuracy and eot_gradient with Gaussian(sigma) == with sigma
    lin = LinearScore(torch.randn(25, generator=_gen(0)))
    y = torch.tensor([0, 1])
    runs = [A.robust_accuracy(lin, x, y, s, eps_list=[0.0, 0.2], norm="l2", votes=5, generator=_gen(4))
            for s in (0.5, Gaussian(0.5))]
    assert runs[0] == runs[1]
    grads = [A.eot_gradient(lin, x, y, s, m=3, generator=_gen(6)).grad for s in (0.5, Gaussian(0.5))]
    assert torch.equal(grads[0], grads[1])


def test_no_noise_is_still_one_deterministic_pass():
    model = Recorder()
    x = torch.full((2, 1, 5, 5), 0.5)
    A.smoothed_predict(model, x, 0.0, votes=7)
    assert len(model.seen) == 1 and torch.equal(model.seen[0], x)
    e = A.eot_gradient(model, x, torch.tensor([0, 1]), 0, m=5)
    assert e.draws == 1


def test_robust_accuracy_under_laplace_noise_records_the_noise(monkeypatch):
    draws = []
    real_eot = eot_module._eot

    def spy(model, x, y, noise, m, *args):
        draws.append((noise, m))
        return real_eot(model, x, y, noise, m, *args)

    monkeypatch.setattr(pgd_module, "_eot", spy)
    lin = LinearScore(torch.randn(25, generator=_gen(0)))
    x = torch.rand(5, 1, 5, 5, generator=_gen(1))
    y = lin(x).argmax(1)
    res = A.robust_accuracy(lin, x, y, Laplace(0.25), norm="l1", eps_list=[0.0, 1.0], votes=9, generator=_gen(2))
    assert [(r.norm, r.noise, r.sigma, r.source_noise, r.source_sigma) for r in res] == \
        [("l1", "laplace", 0.25, "laplace", 0.25)] * 2
    assert draws and {m for _, m in draws} == {A.DEFAULT_EOT} and {n for n, _ in draws} == {Laplace(0.25)}
    assert res[1].mean_perturbation_norm <= 1.0 + 1e-5
    # transfer: crafted without noise (default), judged under uniform noise
    draws.clear()
    res = A.robust_accuracy(lin, x, y, Uniform(0.5), norm="l1", eps_list=[1.0], votes=3, source_model=lin,
                            generator=_gen(2))
    assert (res[0].noise, res[0].sigma, res[0].source_noise, res[0].source_sigma) == ("uniform", 0.5, "gaussian", 0.0)
    assert {m for _, m in draws} == {1}
    # a number is Gaussian
    assert A.robust_accuracy(lin, x, y, 0.25, eps_list=[0.0], votes=3, generator=_gen(2))[0].noise == "gaussian"


def test_l1_and_noise_errors():
    lin = LinearScore(torch.ones(25))
    x = torch.rand(4, 1, 5, 5, generator=_gen(0))
    y = torch.ones(4, dtype=torch.int64)
    with pytest.raises(ValueError, match=r"norm \('l1'\) must be 'l2' for the 'cw' attack"):
        A.robust_accuracy(lin, x, y, 0.0, attack="cw", norm="l1", eps_list=[1.0])
    with pytest.raises(ValueError, match=r"norm \('l1'\) must be 'l2' for the 'boundary' attack"):
        A.robust_accuracy(lin, x, y, Laplace(0.5), attack="boundary", norm="l1", eps_list=[1.0])
    with pytest.raises(ValueError, match=r"norm \('l1'\) does not match the attack settings' norm \('l2'\)"):
        A.robust_accuracy(lin, x, y, 0.0, attack=A.PGD(norm="l2"), norm="l1", eps_list=[1.0])
    with pytest.raises(ValueError, match=r"norm \('l0'\) must be one of 'linf', 'l2', 'l1'"):
        A.pgd(lin, x, y, eps=1.0, norm="l0")
    with pytest.raises(ValueError, match=r"l1_quantile \(1.0\) must be < 1"):
        A.PGD(norm="l1", l1_quantile=1.0)
    with pytest.raises(ValueError, match=r"l1_quantile \(-0.1\) must be >= 0"):
        A.pgd(lin, x, y, eps=1.0, norm="l1", l1_quantile=-0.1)
    with pytest.raises(ValueError, match=r"l1_quantile \(2.0\) must be < 1"):
        A.projected_gradient_ascent(torch.ones_like, x, x, eps=1.0, norm="l1", steps=1, step_size=1.0,
                                    l1_quantile=2.0)
    message = (r"sigma \('laplace'\) must be a real number >= 0 or a renyi_cert.noise noise "
               r"\(Gaussian, Laplace or Uniform\)")
    with pytest.raises(ValueError, match=message):
        A.smoothed_predict(lin, x, "laplace")
    with pytest.raises(ValueError, match=message):
        A.pgd(lin, x, y, eps=1.0, sigma="laplace")
    with pytest.raises(ValueError, match=r"source_sigma \(-1.0\) must be >= 0"):
        A.robust_accuracy(lin, x, y, Laplace(1.0), eps_list=[0.1], source_model=lin, source_sigma=-1.0)
    with pytest.raises(ValueError, match=r"sigma \(-0.5\) must be >= 0"):
        A.carlini_wagner_l2(lin, x, y, sigma=-0.5)


# ----------------------------------------------------------------------------------- the CLI


def _read_tsv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """An untrained mnist_cnn at sigma 0.5 (no noise entry: gaussian), and the same model trained-with-uniform."""
    from renyi_cert_torch.train import load_checkpoint, save_checkpoint

    d = tmp_path_factory.mktemp("attack_l1")
    plain = untrained_checkpoint(d / "plain.pt", sigma=0.5)
    model, cfg = load_checkpoint(plain)
    uniform = save_checkpoint(d / "uniform.pt", model, {**cfg, "noise": "uniform", "sigma": 0.4})
    return plain, uniform, d


FAST = ["--steps", "2", "--eot", "2", "--votes", "3", "--max", "3", "--device", "cpu", "--no-progress"]


def test_cli_laplace_l1_end_to_end(checkpoints, monkeypatch, capsys):
    plain, _, d = checkpoints
    figures = []
    real_save = attack_cli.save_png_pdf

    def save(fig, stem):
        figures.append(fig)
        return real_save(fig, stem)

    monkeypatch.setattr(attack_cli, "save_png_pdf", save)
    out = d / "laplace-l1.tsv"
    assert attack_main(["--checkpoint", str(plain), "--noise", "laplace", "--norm", "l1", "--out", str(out),
                        *FAST]) == 0
    rows = _read_tsv(out)
    assert tuple(rows[0]) == TSV_COLUMNS and TSV_COLUMNS[:len(OLD_COLUMNS)] == OLD_COLUMNS
    assert TSV_COLUMNS[len(OLD_COLUMNS):] == ("noise", "source_noise")
    assert [float(r["eps"]) for r in rows] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]  # the l1 default sizes
    assert all((r["attack"], r["norm"], r["noise"], r["source_noise"], r["sigma"], r["eot"]) ==
               ("pgd", "l1", "laplace", "laplace", "0.5", "2") for r in rows)
    assert all(float(r["mean_perturbation_norm"]) <= float(r["eps"]) * (1 + 1e-5) for r in rows)
    assert float(rows[-1]["mean_perturbation_norm"]) > 0
    assert (d / "laplace-l1.png").is_file() and (d / "laplace-l1.pdf").is_file()
    ax = figures[-1].axes[0]
    assert "ℓ1" in ax.get_xlabel()
    assert ax.get_legend_handles_labels()[1] == ["pgd-l1, laplace b = 0.5"]
    assert "wrote" in capsys.readouterr().out
    # the same seed gives the same table
    out2 = d / "laplace-l1-again.tsv"
    assert attack_main(["--checkpoint", str(plain), "--noise", "laplace", "--norm", "l1", "--out", str(out2),
                        "--no-plot", *FAST]) == 0
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(_read_tsv(out2)) == strip(rows)


def test_cli_noise_defaults_to_the_checkpoints_and_is_recorded(checkpoints, capsys):
    plain, uniform, d = checkpoints
    out = d / "uniform.tsv"
    assert attack_main(["--checkpoint", str(uniform), "--norm", "l1", "--eps", "0,2", "--l1-quantile", "0.9",
                        "--out", str(out), "--no-plot", *FAST]) == 0
    rows = _read_tsv(out)
    assert [(r["noise"], r["sigma"], r["norm"]) for r in rows] == [("uniform", "0.4", "l1")] * 2
    out = d / "gaussian.tsv"  # no noise entry: gaussian, as before
    assert attack_main(["--checkpoint", str(plain), "--eps", "0,0.1", "--out", str(out), "--no-plot", *FAST]) == 0
    assert [(r["noise"], r["norm"]) for r in _read_tsv(out)] == [("gaussian", "linf")] * 2
    # transfer from the uniform model: the source is attacked under its own noise
    out = d / "transfer.tsv"
    assert attack_main(["--checkpoint", str(plain), "--noise", "laplace", "--transfer-from", str(uniform),
                        "--norm", "l1", "--eps", "1", "--out", str(out), "--no-plot", *FAST]) == 0
    row = _read_tsv(out)[0]
    assert (row["noise"], row["sigma"], row["source_noise"], row["source_sigma"], row["transfer"]) == \
        ("laplace", "0.5", "uniform", "0.4", "1")
    # --sigma 0: no noise whatever --noise says (one pass per vote, no EOT)
    out = d / "none.tsv"
    assert attack_main(["--checkpoint", str(plain), "--noise", "laplace", "--sigma", "0", "--norm", "l1",
                        "--eps", "1", "--out", str(out), "--no-plot", "--steps", "2", "--votes", "3", "--max", "3",
                        "--device", "cpu", "--no-progress"]) == 0
    row = _read_tsv(out)[0]
    assert (row["noise"], row["sigma"], row["eot"]) == ("laplace", "0", "1")
    assert row["clean_accuracy"] == row["base_clean_accuracy"]
    capsys.readouterr()


def test_cli_default_output_name_names_the_noise(checkpoints, tmp_path, monkeypatch, capsys):
    plain, _, _ = checkpoints
    monkeypatch.chdir(tmp_path)
    assert attack_main(["--checkpoint", str(plain), "--noise", "laplace", "--norm", "l1", "--eps", "1",
                        "--no-plot", *FAST]) == 0
    assert (tmp_path / "runs" / "attack-pgd-l1-laplace-sigma0.5.tsv").is_file()
    capsys.readouterr()


@pytest.mark.parametrize("flags, message", [
    (["--attack", "cw", "--norm", "l1"], r"--norm \('l1'\) must be l2 for --attack cw \(an l2 attack\)"),
    (["--attack", "boundary", "--norm", "l1"], r"--norm \('l1'\) must be l2 for --attack boundary \(an l2 attack\)"),
    (["--norm", "l0"], r"--norm \('l0'\) must be one of linf, l2, l1"),
    (["--noise", "cauchy"], r"--noise \('cauchy'\) must be one of gaussian, laplace, uniform"),
    (["--norm", "l1", "--l1-quantile", "1"], r"--l1-quantile \('1'\) must be < 1"),
    (["--norm", "l1", "--l1-quantile", "-0.5"], r"--l1-quantile \('-0.5'\) must be finite and >= 0"),
    (["--norm", "l1", "--l1-quantile", "x"], r"--l1-quantile \('x'\)"),
    (["--l1-quantile", "0.9"], r"--l1-quantile \('0.9'\) applies to --attack pgd --norm l1 only, not to "
                               r"--attack pgd --norm linf"),
    (["--attack", "cw", "--l1-quantile", "0.9"], r"--l1-quantile \('0.9'\) applies to --attack pgd --norm l1 only"),
])
def test_cli_l1_and_noise_flag_errors(flags, message, capsys):
    rc = attack_main(["--checkpoint", "does-not-exist.pt", *flags, "--no-progress"])
    assert rc == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err


def test_cli_help_mentions_l1_and_the_noise(capsys):
    assert attack_main(["--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "linf, l2 or l1" in text and "0,1,2,3,4,5 for l1" in text
    assert "gaussian, laplace, uniform" in text and "--l1-quantile" in text
    assert math.isclose(A.DEFAULT_L1_QUANTILE, 0.99)
