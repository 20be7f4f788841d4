"""Tests of renyi_cert_torch.attacks (PGD, C&W, Boundary, EOT, robust accuracy) and the attack CLI."""

from __future__ import annotations

import csv
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from renyi_cert_torch import attacks as A  # noqa: E402
from renyi_cert_torch.attack_cli import TSV_COLUMNS, main as attack_main  # noqa: E402
from renyi_cert_torch.attacks import carlini_wagner as cw_module  # noqa: E402
from renyi_cert_torch.attacks import eot as eot_module  # noqa: E402
from renyi_cert_torch.attacks import projected_gradient as pgd_module  # noqa: E402


# ----------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Run this module's tiny models on one intra-op thread (restored afterwards).

    On a loaded 2-core machine torch's default two OpenMP threads spin against each other and a
    PGD step of a small MLP took ~100x longer (7 s vs 0.06 s for 60 steps, measured).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)



class TinyMLP(nn.Module):
    def __init__(self, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Dropout(0.2), nn.Linear(hidden, 10))

    def forward(self, x):
        return self.net(x)


@pytest.fixture(scope="module")
def mnist_model():
    """A small MLP trained 3 epochs on 2,000 mnist5k training digits (seconds on one core).

    Returns (model, x_test, y_test) with 150 test digits.
    """
    from renyi_cert_torch.data import load_dataset

    tr = load_dataset("mnist5k", "train")
    te = load_dataset("mnist5k", "test")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = TinyMLP()
        opt = torch.optim.Adam(model.parameters(), 2e-3)
        x, y = tr.x[:2000], tr.y[:2000]
        g = torch.Generator().manual_seed(0)
        for _ in range(3):
            perm = torch.randperm(len(x), generator=g)
            for i in range(0, len(x), 100):
                idx = perm[i:i + 100]
                loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
    model.eval()
    return model, te.x[:150], te.y[:150]


class Linear2D(nn.Module):
    """Two classes in the plane: class 1 iff w.x + b > 0 (logits [0, w.x + b])."""

    def __init__(self, w=(1.0, 1.0), b=-1.0):
        super().__init__()
        self.w = torch.tensor(w, dtype=torch.float32)
        self.b = float(b)

    def forward(self, x):
        s = x @ self.w + self.b
        return torch.stack([torch.zeros_like(s), s], dim=1)

    def distance(self, x):
        """Exact l2 distance to the decision line |w.x + b| / ||w||."""
        return (x @ self.w + self.b).abs() / self.w.norm()


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------------- projection


@settings(max_examples=60, deadline=None)
@given(d=st.integers(1, 12), eps=st.floats(0.0, 3.0), scale=st.floats(0.0, 10.0),
       seed=st.integers(0, 2**31 - 1), norm=st.sampled_from(A.NORMS))
def test_projection_stays_in_ball_and_box(d, eps, scale, seed, norm):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(4, d, generator=g, dtype=torch.float64)
    x_adv = x + scale * torch.randn(4, d, generator=g, dtype=torch.float64)
    p = A.project(x_adv, x, eps, norm)
    assert float(p.min()) >= 0.0 and float(p.max()) <= 1.0
    n = A.perturbation_norm(p, x, norm)
    assert bool((n <= eps * (1 + 1e-12) + 1e-12).all())
    # idempotent: a feasible point is left where it is
    assert torch.allclose(A.project(p, x, eps, norm), p, atol=1e-12)
    if norm == "linf":  # the exact Euclidean projection onto the box [x-eps, x+eps] n [0, 1]
        lo = torch.maximum(x - eps, torch.zeros_like(x))
        hi = torch.minimum(x + eps, torch.ones_like(x))
        assert torch.equal(p, torch.minimum(torch.maximum(x_adv, lo), hi))
    else:  # the direction of the move is kept up to the box clip; inside the ball nothing moves
        inside = A.perturbation_norm(x_adv, x, "l2") <= eps
        box = ((x_adv >= 0) & (x_adv <= 1)).all(dim=1)
        assert torch.allclose(p[inside & box], x_adv[inside & box])


def test_projection_errors():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"eps \(-0.1\) must be >= 0"):
        A.project(x, x, -0.1, "l2")
    with pytest.raises(ValueError, match=r"norm \('l0'\) must be one of 'linf', 'l2', 'l1'"):
        A.project(x, x, 0.1, "l0")
    with pytest.raises(ValueError, match=r"eps \(nan\) must be finite"):
        A.project(x, x, float("nan"), "l2")
    with pytest.raises(ValueError, match=r"x_adv \(shape \(2, 4\)\) and x \(shape \(2, 3\)\)"):
        A.project(torch.zeros(2, 4), x, 0.1, "l2")


@settings(max_examples=60, deadline=None)
@given(d=st.integers(1, 12), scale=st.floats(0.0, 10.0), seed=st.integers(0, 2**31 - 1))
def test_truncate_l2_is_the_radial_projection_onto_the_ball(d, scale, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(5, d, generator=g, dtype=torch.float64)
    x_adv = (x + scale * torch.randn(5, d, generator=g, dtype=torch.float64)).clamp(0.0, 1.0)
    delta = x_adv - x
    eps = torch.rand(5, generator=g, dtype=torch.float64)
    t = A.truncate_l2(delta, eps)  # one radius per example
    n, tn = delta.norm(dim=1), t.norm(dim=1)
    assert bool((tn <= eps * (1 + 1e-12) + 1e-15).all())
    assert torch.equal(t[n <= eps], delta[n <= eps])  # short perturbations are kept whole
    long = n > eps
    assert torch.allclose(tn[long], eps[long], rtol=1e-12)  # long ones get norm eps ...
    assert torch.allclose(t[long] * n[long, None], delta[long] * tn[long, None], atol=1e-12)  # ... same direction
    assert float((x + t).min()) >= 0.0 and float((x + t).max()) <= 1.0  # a convex combination of x and x_adv
    # one radius for all = that radius for each; and project(..., "l2") is the truncation plus the box clamp
    r = float(eps[0])
    assert torch.allclose(A.truncate_l2(delta, r), A.truncate_l2(delta, torch.full((5,), r, dtype=torch.float64)),
                          rtol=1e-14, atol=0.0)
    assert torch.equal(A.project(x_adv, x, r, "l2"), (x + A.truncate_l2(delta, r)).clamp(0.0, 1.0))


def test_truncate_l2_errors():
    delta = torch.ones(3, 2)
    with pytest.raises(ValueError, match=r"eps \(-0.5\) must be >= 0"):
        A.truncate_l2(delta, -0.5)
    with pytest.raises(ValueError, match=r"eps must be a number or a tensor of shape \(\) or \(3,\), got shape \(2,\)"):
        A.truncate_l2(delta, torch.ones(2))
    with pytest.raises(ValueError, match=r"eps must hold finite real numbers >= 0"):
        A.truncate_l2(delta, torch.tensor([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match=r"eps must hold finite real numbers >= 0"):
        A.truncate_l2(delta, torch.tensor(float("inf")))
    assert torch.equal(A.truncate_l2(delta, 0.0), torch.zeros(3, 2))


# ----------------------------------------------------------------------------------- EOT freshness


class Recorder(nn.Module):
    """Constant logits (zero input gradient, so PGD never moves x) that record every input batch."""

    def __init__(self, num_classes=3):
        super().__init__()
        self.bias = nn.Parameter(torch.arange(num_classes, dtype=torch.float32))
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return self.bias.expand(x.shape[0], -1) + 0.0 * x.flatten(1).sum(1, keepdim=True)


def _pgd_noise(batch_size, steps=3, m=4, sigma=0.5, b=2):
    """Run PGD on the Recorder and return the (steps * m, b * 25) noise draws the model saw."""
    model = Recorder()
    x = torch.full((b, 1, 5, 5), 0.5)
    y = torch.tensor([0, 1])
    out = A.pgd(model, x, y, eps=0.3, sigma=sigma, steps=steps, eot=m, random_start=False,
                generator=_gen(1), batch_size=batch_size)
    assert torch.equal(out, x)  # zero gradient: x never moves, so seen - x is exactly the noise
    noise = torch.cat(model.seen).reshape(steps * m, b, -1) - x.reshape(1, b, -1)
    return noise.reshape(steps * m, -1)


def _min_pairwise_distance(flat):
    return float((torch.cdist(flat, flat) + torch.eye(len(flat)) * 1e9).min())


@pytest.mark.parametrize("batch_size", [1000, 2])  # all draws in one pass / one draw per pass
def test_eot_noise_is_fresh_across_draws_and_steps(batch_size):
    sigma = 0.5
    flat = _pgd_noise(batch_size, sigma=sigma)
    assert flat.shape == (12, 50)
    # every draw of every step differs from every other one (a reused draw would give distance 0)
    assert _min_pairwise_distance(flat) > 1.0
    # and it is N(0, sigma^2) noise: sample std of 12*2*25 = 600 values within 15 % of sigma
    assert abs(float(flat.std()) / sigma - 1) < 0.15


def test_freshness_check_detects_the_official_seed_bug(monkeypatch):
    """The check above can fail: re-seeding the noise for every draw (the official code's bug)
    makes all draws equal, and the recorded noise shows it."""
    original = eot_module._randn

    def reseeded(shape, like, generator):
        generator.manual_seed(1234)
        if len(shape) > like.ndim:  # one block of k draws: draw each one after a re-seed
            return torch.stack([reseeded(shape[1:], like, generator) for _ in range(shape[0])])
        return original(shape, like, generator)

    monkeypatch.setattr(eot_module, "_randn", reseeded)  # the EOT noise of every gradient
    flat = _pgd_noise(1000)
    assert _min_pairwise_distance(flat) == 0.0


def test_eot_gradient_is_the_average_over_m_distinct_draws():
    torch.manual_seed(0)
    lin = nn.Sequential(nn.Flatten(), nn.Linear(6, 4))
    x = torch.rand(3, 6)
    y = torch.tensor([0, 2, 3])
    sigma, m = 0.8, 5
    g = _gen(7)
    replay = torch.Generator().set_state(g.get_state())
    e = A.eot_gradient(lin, x, y, sigma, m=m, generator=g)
    assert e.draws == m
    # replay the generator: the same m draws, one gradient each
    noise = sigma * torch.randn((m,) + tuple(x.shape), generator=replay)
    grads = []
    for i in range(m):
        xi = x.clone().requires_grad_(True)
        loss = nn.functional.cross_entropy(lin(xi + noise[i]), y, reduction="sum")
        grads.append(torch.autograd.grad(loss, xi)[0])
    grads = torch.stack(grads)
    assert torch.allclose(e.grad, grads.mean(0), atol=1e-6)
    # the m draws are distinct, so their gradients are, and the average is none of them
    for i in range(m):
        assert not torch.allclose(e.grad, grads[i], atol=1e-4)
    assert float(torch.cdist(noise.reshape(m, -1), noise.reshape(m, -1)).add(torch.eye(m)).min()) > 0.1
    # the generator advanced: a second call sees new draws and gives another gradient
    e2 = A.eot_gradient(lin, x, y, sigma, m=m, generator=g)
    assert not torch.allclose(e.grad, e2.grad, atol=1e-4)
    # sigma = 0: one deterministic pass, the plain gradient
    e0 = A.eot_gradient(lin, x, y, 0.0, m=m)
    xi = x.clone().requires_grad_(True)
    g0 = torch.autograd.grad(nn.functional.cross_entropy(lin(xi), y, reduction="sum"), xi)[0]
    assert e0.draws == 1 and torch.allclose(e0.grad, g0, atol=1e-6)


def test_eot_restores_train_mode_and_leaves_params_without_grad():
    model = TinyMLP()
    model.train()
    x = torch.rand(2, 1, 28, 28)
    A.eot_gradient(model, x, torch.tensor([1, 2]), 0.3, m=2, generator=_gen())
    assert model.training and model.net[3].training
    assert all(p.grad is None for p in model.parameters())


# ----------------------------------------------------------------------------------- MNIST attacks


def test_pgd_linf_on_mnist_drives_accuracy_down(mnist_model):
    model, x, y = mnist_model
    res = A.robust_accuracy(model, x, y, 0.0, attack=A.PGD(norm="linf", steps=20), eps_list=[0.0, 0.1, 0.3],
                            generator=_gen())
    assert [r.eps for r in res] == [0.0, 0.1, 0.3]
    clean = res[0].clean_accuracy
    assert clean > 0.8
    assert res[0].robust_accuracy == clean  # eps = 0: nothing to attack
    assert res[1].robust_accuracy < clean - 0.3
    assert res[2].robust_accuracy < 0.05  # the target: < 5 % at eps = 0.3
    assert abs(res[2].mean_perturbation_norm - 0.3) < 1e-6  # linf steps saturate the ball


def test_projected_gradient_ascent_is_the_loop_of_pgd(mnist_model):
    # pgd = projected_gradient_ascent with the EOT gradient of the attack loss, from pgd's random start:
    # any loss can be plugged in (adversarial training passes the TRADES KL gradient)
    model, x, y = mnist_model
    x, y = x[:20], y[:20]
    eps, steps = 0.2, 5
    from renyi_cert_torch.attacks.projected_gradient import _random_start

    x_pgd = A.pgd(model, x, y, eps=eps, norm="linf", steps=steps, generator=_gen(4))
    start = _random_start(x, eps, "linf", _gen(4))
    grad = lambda z: A.eot_gradient(model, z, y, 0.0).grad  # noqa: E731
    x_loop = A.projected_gradient_ascent(grad, x, start, eps=eps, norm="linf", steps=steps, step_size=2.5 * eps / steps)
    assert torch.equal(x_pgd, x_loop)
    # a custom loss: ascent on the sum of the pixels moves every pixel up by eps (within [0, 1])
    up = A.projected_gradient_ascent(torch.ones_like, x, x, eps=0.1, norm="linf", steps=2, step_size=0.07)
    assert torch.allclose(up, (x + 0.1).clamp(max=1.0))
    with pytest.raises(ValueError, match=r"start \(shape \(3, 1, 28, 28\)\) and x \(shape \(20, 1, 28, 28\)\) must "
                                         r"have the same shape"):
        A.projected_gradient_ascent(torch.ones_like, x, x[:3], eps=0.1, norm="linf", steps=1, step_size=0.1)
    with pytest.raises(ValueError, match=r"step_size \(0\.0\) must be > 0"):
        A.projected_gradient_ascent(torch.ones_like, x, x, eps=0.1, norm="l2", steps=1, step_size=0.0)


def test_pgd_under_noise_with_eot_and_transfer(mnist_model):
    model, x, y = mnist_model
    x, y = x[:60], y[:60]
    sigma = 0.25
    white = A.robust_accuracy(model, x, y, sigma, attack=A.PGD(norm="l2", steps=10, eot=4), eps_list=[2.5],
                              votes=30, generator=_gen(3))[0]
    assert white.clean_accuracy > 0.7 and white.votes == 30 and not white.transfer
    assert white.robust_accuracy < white.clean_accuracy - 0.4
    # transfer: crafted on the same network without noise, judged on the noisy classifier
    other = TinyMLP()
    other.load_state_dict(model.state_dict())
    tr = A.robust_accuracy(model, x, y, sigma, attack=A.PGD(norm="l2", steps=10), eps_list=[2.5],
                           votes=30, source_model=other, generator=_gen(3))[0]
    assert tr.transfer and tr.source_sigma == 0.0 and tr.sigma == sigma
    assert tr.robust_accuracy < tr.clean_accuracy - 0.2


def test_cw_finds_small_l2_perturbations(mnist_model):
    model, x, y = mnist_model
    x, y = x[:60], y[:60]
    with torch.no_grad():
        correct = model(x).argmax(1) == y
    res = A.carlini_wagner_l2(model, x, y, steps=60, binary_search_steps=4, generator=_gen())
    ok = res.success & correct
    assert float(ok.sum()) >= 0.9 * float(correct.sum())
    # every reported success is a real adversarial example of the reported norm, inside [0, 1]
    with torch.no_grad():
        assert bool((model(res.x_adv[res.success]).argmax(1) != y[res.success]).all())
    assert torch.allclose(res.norm[res.success], A.perturbation_norm(res.x_adv, x, "l2")[res.success], atol=1e-5)
    assert float(res.x_adv.min()) >= 0 and float(res.x_adv.max()) <= 1
    # the median C&W norm is below the l2 size PGD needs to break 90 % of the clean-correct digits
    med = float(res.norm[ok].median())
    pgd = A.robust_accuracy(model, x, y, 0.0, attack=A.PGD(norm="l2", steps=20), eps_list=[med, 2.0 * med],
                            generator=_gen())
    assert pgd[0].robust_accuracy > 0.1 * pgd[0].clean_accuracy
    # and the robust accuracy from C&W (radially projected) at eps = median is at most about half
    cw = A.robust_accuracy(model, x, y, 0.0, attack=A.CarliniWagner(steps=60, binary_search_steps=4),
                           eps_list=[med], generator=_gen())[0]
    assert cw.robust_accuracy <= 0.5 * cw.clean_accuracy + 0.05


class NoGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        raise RuntimeError("the boundary attack must not use gradients")


class GradientFree(nn.Module):
    """Wraps a model; refuses to be run with autograd enabled or to be differentiated."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.calls = 0

    def forward(self, x):
        assert not torch.is_grad_enabled(), "forward called with autograd enabled"
        self.calls += 1
        return self.inner(NoGrad.apply(x))


def test_boundary_attack_reduces_accuracy_without_gradients(mnist_model):
    model, x, y = mnist_model
    x, y = x[:60], y[:60]
    wrapped = GradientFree(model)
    res = A.robust_accuracy(wrapped, x, y, 0.0, attack=A.Boundary(steps=1000), eps_list=[0.0, 4.0],
                            generator=_gen())
    assert wrapped.calls > 0
    assert res[0].robust_accuracy == res[0].clean_accuracy > 0.7
    assert res[1].robust_accuracy < 0.5 * res[0].clean_accuracy
    # the gradient-free wrapper really refuses gradient-based attacks
    with pytest.raises((AssertionError, RuntimeError)):
        A.pgd(wrapped, x[:2], y[:2], eps=0.1, steps=1)


# ----------------------------------------------------------------------------------- closed form


def _plane_points():
    """Points in [0.3, 0.7]^2 at known distances from the line x1 + x2 = 1 (both sides)."""
    dists = torch.tensor([0.05, 0.15, 0.25, 0.05, 0.15, 0.25, 0.05, 0.25])
    side = torch.tensor([1.0, 1.0, 1.0, -1.0, -1.0, -1.0, 1.0, -1.0])
    along = torch.tensor([0.0, 0.1, -0.1, 0.05, -0.05, 0.0, 0.12, -0.12])
    n = torch.tensor([1.0, 1.0]) / math.sqrt(2.0)
    t = torch.tensor([1.0, -1.0]) / math.sqrt(2.0)
    x = 0.5 + (side * dists)[:, None] * n + along[:, None] * t
    y = (side > 0).long()
    return x, y, dists


def test_smoothed_linear_classifier_matches_theory():
    """The smoothed linear classifier equals the base one (P[w.(x + noise) + b > 0] > 1/2 iff
    w.x + b > 0), so its exact l2 robust radius is the distance to the line: PGD-l2 must succeed
    for eps > distance and fail for eps < distance. With sigma = 0.25, a margin of 0.05 gives vote
    probabilities Phi(0.05/0.25) = 0.579, i.e. 7 standard deviations from 1/2 with 2,000 votes."""
    model = Linear2D()
    x, y, d = _plane_points()
    assert torch.allclose(model.distance(x), d, atol=1e-6)
    assert bool((x > 0.2).all() and (x < 0.8).all())
    eps_list = [0.1, 0.2, 0.3]
    res = A.robust_accuracy(model, x, y, 0.25, attack=A.PGD(norm="l2", steps=20, step_size=0.05, eot=8),
                            eps_list=eps_list, votes=2000, generator=_gen(5))
    for r, eps in zip(res, eps_list):
        assert r.clean_accuracy == 1.0
        assert r.n_robust == int((d > eps).sum()), (eps, r)
    # the same with the linf attack: the linf radius of the line is distance / ||w||_1 * ||w||_2
    res = A.robust_accuracy(model, x, y, 0.0, attack=A.PGD(norm="linf", steps=20), eps_list=[0.1, 0.2],
                            generator=_gen())
    linf_dist = d * math.sqrt(2.0) / 2.0
    for r, eps in zip(res, [0.1, 0.2]):
        assert r.n_robust == int((linf_dist > eps).sum())


def test_min_norm_attacks_find_the_distance_to_the_line():
    model = Linear2D()
    x, y, d = _plane_points()
    cw = A.carlini_wagner_l2(model, x, y, steps=200, binary_search_steps=8, lr=0.01, generator=_gen())
    assert bool(cw.success.all())
    assert bool((cw.norm >= d - 1e-5).all())  # nothing beats the exact distance
    assert bool((cw.norm <= d * 1.05 + 0.005).all()), (cw.norm, d)
    bd = A.boundary_attack(model, x, y, steps=300, generator=_gen())
    assert bool(bd.success.all())
    assert bool((bd.norm >= d - 1e-5).all())
    assert bool((bd.norm <= d * 1.05 + 0.005).all()), (bd.norm, d)
    # minimum-norm results at eps: radial projection, judged by the smoothed (here plain) classifier
    res = A.robust_accuracy(model, x, y, 0.0, attack="cw", eps_list=[0.1, 0.2, 0.3], generator=_gen())
    assert [r.n_robust for r in res] == [int((d > e).sum()) for e in (0.1, 0.2, 0.3)]


# ----------------------------------------------------------------------------------- validation


def test_parameter_errors():
    model = Linear2D()
    x, y, _ = _plane_points()
    with pytest.raises(ValueError, match=r"eps \(-1.0\) must be >= 0"):
        A.pgd(model, x, y, eps=-1.0)
    with pytest.raises(ValueError, match=r"steps \(0\) must be an integer >= 1"):
        A.pgd(model, x, y, eps=0.1, steps=0)
    with pytest.raises(ValueError, match=r"sigma \(-0.5\) must be >= 0"):
        A.pgd(model, x, y, eps=0.1, sigma=-0.5)
    with pytest.raises(ValueError, match=r"sigma \(inf\) must be finite"):
        A.smoothed_predict(model, x, float("inf"))
    with pytest.raises(ValueError, match=r"norm \('l0'\) must be one of 'linf', 'l2', 'l1'"):
        A.pgd(model, x, y, eps=0.1, norm="l0")
    with pytest.raises(ValueError, match=r"loss \('hinge'\) must be one of 'ce', 'margin'"):
        A.pgd(model, x, y, eps=0.1, loss="hinge")
    with pytest.raises(ValueError, match=r"step_size \(0.0\) must be > 0"):
        A.pgd(model, x, y, eps=0.1, step_size=0.0)
    with pytest.raises(ValueError, match=r"eot \(0\) must be an integer >= 1"):
        A.pgd(model, x, y, eps=0.1, eot=0)
    with pytest.raises(ValueError, match=r"m \(0\) must be an integer >= 1"):
        A.eot_gradient(model, x, y, 0.1, m=0)
    with pytest.raises(ValueError, match=r"kappa \(-1.0\) must be >= 0"):
        A.carlini_wagner_l2(model, x, y, kappa=-1.0)
    with pytest.raises(ValueError, match=r"initial_const \(0.0\) must be > 0"):
        A.carlini_wagner_l2(model, x, y, initial_const=0.0)
    with pytest.raises(ValueError, match=r"binary_search_steps \(0\) must be an integer >= 1"):
        A.carlini_wagner_l2(model, x, y, binary_search_steps=0)
    with pytest.raises(ValueError, match=r"lr \(-0.1\) must be > 0"):
        A.carlini_wagner_l2(model, x, y, lr=-0.1)
    with pytest.raises(ValueError, match=r"source_step \(1.5\) must be < 1"):
        A.boundary_attack(model, x, y, source_step=1.5)
    with pytest.raises(ValueError, match=r"step_adaptation \(1.0\) must be > 1"):
        A.boundary_attack(model, x, y, step_adaptation=1.0)
    with pytest.raises(ValueError, match=r"query_votes \(0\) must be an integer >= 1"):
        A.boundary_attack(model, x, y, query_votes=0)
    with pytest.raises(ValueError, match=r"starts must be a tensor of shape \(K, 2\)"):
        A.boundary_attack(model, x, y, starts=torch.zeros(3, 5))
    with pytest.raises(ValueError, match=r"votes \(0\) must be an integer >= 1"):
        A.smoothed_predict(model, x, 0.1, votes=0)
    with pytest.raises(ValueError, match=r"generator \(0\) must be a torch.Generator"):
        A.pgd(model, x, y, eps=0.1, generator=0)
    # inputs
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\].*1.5"):
        A.pgd(model, x + 1.0, y, eps=0.1)
    with pytest.raises(ValueError, match=r"x has 8 examples but y has 3 labels"):
        A.pgd(model, x, y[:3], eps=0.1)
    with pytest.raises(ValueError, match=r"y must be an int64 tensor"):
        A.pgd(model, x, y.float(), eps=0.1)
    with pytest.raises(ValueError, match=r"y \(5\) must be a class index < 2"):
        A.pgd(model, x, torch.full((8,), 5), eps=0.1)
    with pytest.raises(ValueError, match=r"x must be finite"):
        A.pgd(model, x * float("nan"), y, eps=0.1)
    # robust_accuracy
    with pytest.raises(ValueError, match=r"eps_list \(\[\]\) must contain at least one eps"):
        A.robust_accuracy(model, x, y, 0.0, eps_list=[])
    with pytest.raises(ValueError, match=r"eps_list\[1\] \(-0.2\) must be >= 0"):
        A.robust_accuracy(model, x, y, 0.0, eps_list=[0.1, -0.2])
    with pytest.raises(ValueError, match=r"attack \('fgsm'\) must be one of 'pgd', 'cw', 'boundary'"):
        A.robust_accuracy(model, x, y, 0.0, attack="fgsm", eps_list=[0.1])
    with pytest.raises(ValueError, match=r"norm \('linf'\) must be 'l2' for the 'cw' attack"):
        A.robust_accuracy(model, x, y, 0.0, attack="cw", norm="linf", eps_list=[0.1])
    with pytest.raises(ValueError, match=r"norm \('l2'\) does not match the attack settings' norm \('linf'\)"):
        A.robust_accuracy(model, x, y, 0.0, attack=A.PGD(norm="linf"), norm="l2", eps_list=[0.1])
    with pytest.raises(ValueError, match=r"source_sigma \(-1.0\) must be >= 0"):
        A.robust_accuracy(model, x, y, 0.0, eps_list=[0.1], source_model=model, source_sigma=-1.0)
    with pytest.raises(ValueError, match=r"x must contain at least one example"):
        A.robust_accuracy(model, x[:0], y[:0], 0.0, eps_list=[0.1])
    with pytest.raises(ValueError, match=r"attack_batch \(0\) must be an integer >= 1"):
        A.robust_accuracy(model, x, y, 0.0, eps_list=[0.1], attack_batch=0)


def test_warns_when_a_noisy_model_is_attacked_with_an_explicit_eot_of_one(caplog):
    model = Linear2D()
    x, y, _ = _plane_points()
    with caplog.at_level("WARNING", logger="renyi_cert_torch.attacks"):
        A.robust_accuracy(model, x, y, 0.25, attack=A.PGD(norm="l2", steps=2, eot=1), eps_list=[0.1], votes=5,
                          generator=_gen())
    assert "eot = 1" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="renyi_cert_torch.attacks"):
        A.robust_accuracy(model, x, y, 0.25, attack=A.PGD(norm="l2", steps=2, eot=4), eps_list=[0.1], votes=5,
                          generator=_gen())
        A.robust_accuracy(model, x, y, 0.25, attack="pgd", norm="l2", eps_list=[0.1], votes=5, generator=_gen())
    assert "eot = 1" not in caplog.text


@pytest.mark.parametrize("attack", ["pgd", "cw"])
def test_noisy_model_is_attacked_with_default_eot_draws(attack, monkeypatch):
    # With default settings a noisy model is attacked with DEFAULT_EOT draws per gradient, not one
    # (single-draw gradients overstate robustness); a model without noise gets one pass.
    assert A.DEFAULT_EOT == 16 and A.PGD().eot is None and A.CarliniWagner().eot is None
    draws = []
    real_eot = eot_module._eot

    def spy(model, x, y, sigma, m, *args):
        draws.append(m)
        return real_eot(model, x, y, sigma, m, *args)

    monkeypatch.setattr(pgd_module, "_eot", spy)
    monkeypatch.setattr(cw_module, "_eot", spy)
    model = Linear2D()
    x, y, _ = _plane_points()
    A.robust_accuracy(model, x, y, 0.25, attack=attack, norm="l2", eps_list=[0.1], votes=3, generator=_gen())
    assert draws and set(draws) == {A.DEFAULT_EOT}
    draws.clear()
    A.robust_accuracy(model, x, y, 0.0, attack=attack, norm="l2", eps_list=[0.1], generator=_gen())
    assert draws and set(draws) == {1}
    draws.clear()
    A.pgd(model, x, y, eps=0.1, norm="l2", sigma=0.25, steps=2, generator=_gen())
    A.carlini_wagner_l2(model, x, y, sigma=0.25, steps=2, binary_search_steps=1, generator=_gen())
    assert draws == [A.DEFAULT_EOT] * 4


def test_smoothed_predict_is_the_majority_vote():
    model = Linear2D()
    x, y, _ = _plane_points()
    assert torch.equal(A.smoothed_predict(model, x, 0.0), y)
    assert torch.equal(A.smoothed_predict(model, x, 0.25, votes=2000, generator=_gen(), batch_size=500), y)
    # P[class 1] = Phi((w.x + b) / (sigma ||w||)) = 0.6 at w.x + b = sqrt(2) * Phi^-1(0.6) (sigma = 1):
    # one draw per vote answers class 1 about 60 % of the time (400 examples: 240 +- 9.8), the
    # majority of 1,001 draws always does (mean 600.6, sd 15.5: 6.4 sd above 500).
    from scipy.stats import norm as normal

    s = float(math.sqrt(2.0) * normal.ppf(0.6))
    pts = torch.tensor([[0.5 + s, 0.5]]).repeat(400, 1)
    single = A.smoothed_predict(model, pts, 1.0, votes=1, generator=_gen())
    assert 200 < int(single.sum()) < 280
    majority = A.smoothed_predict(model, pts[:50], 1.0, votes=1001, generator=_gen(), batch_size=4000)
    assert bool((majority == 1).all())


# ----------------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, mnist_model):
    """A mnist_cnn checkpoint (briefly trained without noise) and its directory."""
    from renyi_cert_torch.models import build_model
    from renyi_cert_torch.train import save_checkpoint

    from renyi_cert_torch.data import load_dataset

    tr = load_dataset("mnist5k", "train")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_model("mnist_cnn")
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        for i in range(0, 400, 50):
            loss = nn.functional.cross_entropy(model(tr.x[i:i + 50]), tr.y[i:i + 50])
            opt.zero_grad()
            loss.backward()
            opt.step()
    d = tmp_path_factory.mktemp("attack_cli")
    path = d / "none.pt"
    save_checkpoint(path, model, {"arch": "mnist_cnn", "num_classes": 10, "dataset": "mnist5k", "sigma": 0.0})
    path_noisy = d / "noisy.pt"
    save_checkpoint(path_noisy, model, {"arch": "mnist_cnn", "num_classes": 10, "dataset": "mnist5k", "sigma": 0.5})
    return path, path_noisy, d


def _read_tsv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def test_cli_end_to_end(checkpoint, capsys):
    path, path_noisy, d = checkpoint
    out = d / "pgd.tsv"
    rc = attack_main(["--checkpoint", str(path), "--attack", "pgd", "--norm", "linf", "--eps", "0,0.3",
                      "--steps", "5", "--max", "20", "--seed", "1", "--device", "cpu", "--out", str(out),
                      "--no-progress"])
    assert rc == 0
    rows = _read_tsv(out)
    assert list(rows[0]) == list(TSV_COLUMNS)
    assert [float(r["eps"]) for r in rows] == [0.0, 0.3]
    assert all(r["n"] == "20" and r["sigma"] == "0" and r["transfer"] == "0" for r in rows)
    r0, r1 = (float(r["robust_accuracy"]) for r in rows)
    assert r0 == float(rows[0]["clean_accuracy"]) and r1 <= r0
    assert (d / "pgd.png").is_file() and (d / "pgd.pdf").is_file()
    assert "wrote" in capsys.readouterr().out
    # sigma from the checkpoint, the EOT default, transfer from the noise-free model, C&W
    out2 = d / "cw.tsv"
    rc = attack_main(["--checkpoint", str(path_noisy), "--transfer-from", str(path), "--attack", "cw",
                      "--eps", "0,1", "--steps", "3", "--binary-search-steps", "1", "--votes", "5", "--max", "6",
                      "--device", "cpu", "--out", str(out2), "--no-progress", "--no-plot"])
    assert rc == 0
    rows = _read_tsv(out2)
    assert all(r["sigma"] == "0.5" and r["source_sigma"] == "0" and r["transfer"] == "1" and r["votes"] == "5"
               and r["eot"] == "1" and r["norm"] == "l2" for r in rows)
    assert not (d / "cw.png").exists()
    # same runs with the same seed give the same TSV (minus the timing column)
    out3 = d / "pgd2.tsv"
    attack_main(["--checkpoint", str(path), "--eps", "0,0.3", "--steps", "5", "--max", "20", "--seed", "1",
                 "--device", "cpu", "--out", str(out3), "--no-progress", "--no-plot"])
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(_read_tsv(out3)) == strip(_read_tsv(out))


def test_cli_attacks_adversarially_trained_checkpoints(checkpoint, capsys):
    # PGD-AT and TRADES checkpoints (sigma 0 in their config) are base classifiers like any other: attacked
    # without noise (deterministic: the same TSV twice), smoothed with --sigma, and as a transfer source.
    from renyi_cert_torch.train import TrainConfig, load_checkpoint, save_checkpoint

    path, path_noisy, d = checkpoint
    model, _ = load_checkpoint(path)
    pgd_at, trades = d / "pgd-at.pt", d / "trades.pt"
    save_checkpoint(pgd_at, model, TrainConfig(mode="pgd-at", epochs=1))
    save_checkpoint(trades, model, TrainConfig(mode="trades", epochs=1, attack_steps=10))
    common = ["--eps", "0,0.2", "--steps", "3", "--max", "8", "--device", "cpu", "--no-progress", "--no-plot"]
    outs = [d / "trades-a.tsv", d / "trades-b.tsv"]
    for out in outs:
        assert attack_main(["--checkpoint", str(trades), "--seed", str(len(out.name)), "--out", str(out), *common]) == 0
    rows = _read_tsv(outs[0])
    assert all(r["sigma"] == "0" and r["eot"] == "1" and r["transfer"] == "0" for r in rows)
    assert float(rows[0]["clean_accuracy"]) == float(rows[0]["base_clean_accuracy"])  # no noise: the vote is f(x)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(_read_tsv(outs[1])) == strip(rows)
    assert "clean accuracy (sigma 0: the model's own prediction)" in capsys.readouterr().out
    out = d / "trades-smoothed.tsv"
    assert attack_main(["--checkpoint", str(trades), "--sigma", "0.5", "--votes", "5", "--eot", "2",
                        "--out", str(out), *common]) == 0
    assert all(r["sigma"] == "0.5" and r["eot"] == "2" for r in _read_tsv(out))
    assert "clean accuracy (smoothed, 5 votes)" in capsys.readouterr().out
    for target in (path_noisy, trades):
        out = d / f"transfer-{target.stem}.tsv"
        assert attack_main(["--checkpoint", str(target), "--transfer-from", str(pgd_at), "--votes", "5",
                            "--out", str(out), *common]) == 0
        assert all(r["transfer"] == "1" and r["source_sigma"] == "0" and r["eot"] == "1" for r in _read_tsv(out))
    capsys.readouterr()


@pytest.mark.parametrize("flags, message", [
    (["--attack", "fgsm"], r"--attack \('fgsm'\) must be one of pgd, cw, boundary"),
    (["--norm", "l0"], r"--norm \('l0'\) must be one of linf, l2, l1"),
    (["--attack", "cw", "--norm", "linf"], r"--norm \('linf'\) must be l2 for --attack cw"),
    (["--attack", "boundary", "--norm", "linf"], r"--norm \('linf'\) must be l2 for --attack boundary"),
    (["--eps", "0,-0.1"], r"--eps \('0,-0.1'\): '-0.1' must be finite and >= 0"),
    (["--eps", "0,abc"], r"--eps \('0,abc'\): 'abc' is not a number"),
    (["--eps", "0,,1"], r"--eps \('0,,1'\) must be a comma-separated list"),
    (["--eps", "inf"], r"--eps \('inf'\): 'inf' must be finite"),
    (["--steps", "0"], r"--steps \(0\) must be an integer >= 1"),
    (["--steps", "2.5"], r"--steps \('2.5'\) must be an integer >= 1"),
    (["--step-size", "0"], r"--step-size \('0'\) must be finite and > 0"),
    (["--attack", "boundary", "--step-size", "0.1"], r"--step-size \('0.1'\) applies to pgd and cw only"),
    (["--loss", "hinge"], r"--loss \('hinge'\) must be one of ce, margin"),
    (["--kappa", "-1"], r"--kappa \('-1'\) must be finite and >= 0"),
    (["--binary-search-steps", "0"], r"--binary-search-steps \(0\) must be an integer >= 1"),
    (["--query-votes", "0"], r"--query-votes \(0\) must be an integer >= 1"),
    (["--eot", "0"], r"--eot \(0\) must be an integer >= 1"),
    (["--votes", "0"], r"--votes \(0\) must be an integer >= 1"),
    (["--votes", "many"], r"--votes \('many'\) must be an integer >= 1"),
    (["--sigma", "-0.5"], r"--sigma \('-0.5'\) must be finite and >= 0"),
    (["--sigma", "nan"], r"--sigma \('nan'\) must be finite and >= 0"),
    (["--source-sigma", "0.5"], r"--source-sigma \('0.5'\) needs --transfer-from"),
    (["--max", "0"], r"--max \(0\) must be an integer >= 1"),
    (["--seed", "-1"], r"--seed \(-1\) must be an integer >= 0"),
    (["--batch-size", "0"], r"--batch-size \(0\) must be an integer >= 1"),
    (["--attack-batch", "0"], r"--attack-batch \(0\) must be an integer >= 1"),
    (["--split", "val"], r"--split \('val'\) must be one of train, test"),
    (["--dataset", "svhn"], r"--dataset \('svhn'\) must be one of mnist, mnist5k, cifar10"),
    (["--device", "tpu"], r"--device: device \('tpu'\) must be one of 'auto', 'cpu', 'cuda' or a torch device"),
])
def test_cli_flag_errors(flags, message, capsys):
    # flags are checked before the checkpoint is read: a missing checkpoint does not mask them
    rc = attack_main(["--checkpoint", "does-not-exist.pt", *flags, "--no-progress"])
    assert rc == 2
    err = capsys.readouterr().err
    assert __import__("re").search(message, err), err


def test_cli_checkpoint_errors(checkpoint, tmp_path, capsys):
    path, _, _ = checkpoint
    rc = attack_main(["--checkpoint", str(tmp_path / "missing.pt")])
    assert rc == 2
    assert "--checkpoint" in (err := capsys.readouterr().err) and "missing.pt" in err and "does not exist" in err
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    rc = attack_main(["--checkpoint", str(junk)])
    assert rc == 2
    assert "is not a renyi_cert checkpoint" in capsys.readouterr().err
    rc = attack_main(["--checkpoint", str(path), "--transfer-from", str(tmp_path / "gone.pt")])
    assert rc == 2
    assert "--transfer-from" in (err := capsys.readouterr().err) and "gone.pt" in err
    if not torch.cuda.is_available():
        rc = attack_main(["--checkpoint", str(path), "--device", "cuda"])
        assert rc == 2
        assert "CUDA is not available" in capsys.readouterr().err
    # argparse's own errors: missing required flag, unknown flag
    assert attack_main([]) == 2
    assert "--checkpoint" in capsys.readouterr().err
    assert attack_main(["--checkpoint", str(path), "--bogus"]) == 2
    assert "--bogus" in capsys.readouterr().err
    assert attack_main(["--help"]) == 0
