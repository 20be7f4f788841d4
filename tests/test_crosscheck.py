"""Theory against attacks: a certified radius must never exceed what an attack can actually break.

A certificate (Li et al. 2019, Thm. 1; Cohen et al. 2019, Thm. 1) is a *lower* bound on the
robustness of the smoothed classifier; an attack gives an *upper* bound. So, for the same model,
sigma and examples:

1. per example: an example certified (correct class) at radius r is not successfully attacked by
   any l2 perturbation shorter than r. "Successfully attacked" is judged by a high-vote PREDICT
   (Cohen et al.: ``REJUDGE_VOTES`` fresh draws, two-sided binomial test at level ``ALPHA``) so that
   vote noise is not mistaken for a break; a decided wrong class is a violation and the test
   fails naming the example index;
2. in aggregate: certified accuracy at eps <= empirical robust accuracy at eps (PGD-l2 with
   expectation over transformation, judged by a ``VOTES``-draw majority at x and at x_eps)
   + margin, where the sampling-error margin is (number of examples certified at radius >= eps
   that the majority vote calls broken but whose high-vote re-judging is undecided) / N. Each
   certificate also fails with probability <= ALPHA = 0.001 (expected 0.02 failures over 20
   examples); the seeds are fixed, so the test is deterministic.

Two cases:

* a closed-form linear two-class classifier (mean-difference direction w between mnist5k digits
  7 and 9): its smoothed classifier has the same decision hyperplane, p_top = Phi(d / sigma) with
  d = |w.x + b| / ||w||, and the exact robust radius is d. So the Renyi radius <= Cohen's radius
  <= d and p1_lower <= Phi(d / sigma) must hold example by example, and exact robust accuracy lies
  between the certified and the empirical one;
* a small CNN trained for a few seconds with Gaussian data augmentation on 1,500 mnist5k digits,
  attacked with PGD-l2 + EOT and C&W-l2 + EOT.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mlxtend")

from scipy.stats import norm  # noqa: E402
from torch import nn  # noqa: E402

from renyi_cert.certificate import predict_from_counts  # noqa: E402
from renyi_cert_torch.attacks import carlini_wagner_l2, perturbation_norm, pgd, smoothed_predict  # noqa: E402
from renyi_cert_torch.data import load_dataset  # noqa: E402
from renyi_cert_torch.smoothing import SmoothedClassifier  # noqa: E402

pytestmark = pytest.mark.slow

ALPHA = 0.001          # certificates and re-judging
VOTES = 200            # majority vote judging robust accuracy
REJUDGE_VOTES = 2000   # high-vote PREDICT for pairs the majority vote calls broken


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """torch's two threads spin against each other on a loaded 2-core machine: use one, restore after."""
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist5k", "train"), load_dataset("mnist5k", "test")


@dataclass
class CrossCheck:
    """Outcome of certifying and attacking the same examples."""

    correct: np.ndarray        # certified class == label (abstain counts as wrong)
    renyi: np.ndarray          # certified radii (0 when abstained)
    cohen: np.ndarray
    p1_lower: np.ndarray
    eps: tuple
    certified: np.ndarray      # (len(eps),) certified accuracy (Renyi) at eps
    empirical: np.ndarray      # (len(eps),) PGD-l2 + EOT robust accuracy at eps
    margin: np.ndarray         # (len(eps),) sampling-error margin
    clean_vote: np.ndarray     # majority vote correct at x
    violations: list           # (example, attack, eps or norm, radius, PREDICT result)
    rejudged: int


def _judge(smoothed, point, gen):
    counts = smoothed.sample_counts(point, smoothed.sigma, REJUDGE_VOTES, generator=gen)
    return predict_from_counts(counts, alpha=ALPHA)


def cross_check(model, sigma, x, y, num_classes, eps_list, *, n0, n, pgd_steps, eot, seed, cw=None) -> CrossCheck:
    """Certify x, attack it with PGD-l2 + EOT at each eps (and C&W-l2 + EOT), re-judge suspicious pairs."""
    smoothed = SmoothedClassifier(model, sigma, num_classes, device="cpu", batch_size=1000)
    cert_gen = smoothed.make_generator(seed)
    certs = [smoothed.certify(x[i], n0=n0, n=n, alpha=ALPHA, bounds=("renyi", "cohen"), generator=cert_gen)
             for i in range(len(x))]
    labels = y.numpy()
    correct = np.array([c.prediction == labels[i] for i, c in enumerate(certs)])
    renyi = np.array([c.radii["renyi"] for c in certs])
    cohen = np.array([c.radii["cohen"] for c in certs])
    p1_lower = np.array([c.p1_lower for c in certs])
    # Rényi radius never above Cohen's (same p1_lower, p2_upper), both 0 on abstain
    assert np.all(renyi <= cohen + 1e-12)

    gen = torch.Generator().manual_seed(seed + 1)
    judge_gen = smoothed.make_generator(seed + 2)
    clean_vote = (smoothed_predict(model, x, sigma, votes=VOTES, generator=gen) == y).numpy()
    certified, empirical, margin, violations, rejudged = [], [], [], [], 0
    for eps in eps_list:
        x_eps = pgd(model, x, y, eps=eps, norm="l2", sigma=sigma, steps=pgd_steps, eot=eot, generator=gen)
        assert float(perturbation_norm(x_eps, x, "l2").max()) <= eps * (1 + 1e-5) + 1e-6
        adv_vote = (smoothed_predict(model, x_eps, sigma, votes=VOTES, generator=gen) == y).numpy()
        robust = clean_vote & adv_vote
        undecided = 0
        # every pair certified at radius >= eps (by either bound) that the vote calls broken
        for i in np.flatnonzero(correct & (cohen >= eps) & (cohen > 0) & ~robust):
            point = x[i] if not clean_vote[i] else x_eps[i]
            p = _judge(smoothed, point, judge_gen)
            rejudged += 1
            if p.prediction not in (-1, int(labels[i])):
                violations.append((int(i), "pgd-l2", eps, float(cohen[i]), p))
            elif p.prediction == -1 and renyi[i] >= eps:
                undecided += 1
        certified.append(np.mean(correct & (renyi >= eps)))
        empirical.append(np.mean(robust))
        margin.append(undecided / len(x))
    if cw is not None:
        res = carlini_wagner_l2(model, x, y, sigma=sigma, eot=eot, generator=gen, **cw)
        for i in np.flatnonzero(res.success.numpy() & correct & (res.norm.numpy() < cohen)):
            p = _judge(smoothed, res.x_adv[i], judge_gen)
            rejudged += 1
            if p.prediction not in (-1, int(labels[i])):
                violations.append((int(i), "cw-l2", float(res.norm[i]), float(cohen[i]), p))
    return CrossCheck(correct=correct, renyi=renyi, cohen=cohen, p1_lower=p1_lower, eps=tuple(eps_list),
                      certified=np.array(certified), empirical=np.array(empirical), margin=np.array(margin),
                      clean_vote=clean_vote, violations=violations, rejudged=rejudged)


def assert_no_violation(res: CrossCheck):
    msg = "; ".join(f"example {i}: {attack} broke it at size {size:.4f} < certified radius {r:.4f} "
                    f"(PREDICT with {REJUDGE_VOTES} draws says class {p.prediction}, counts {p.counts_top}/"
                    f"{p.counts_runner_up})" for i, attack, size, r, p in res.violations)
    assert not res.violations, f"BUG: certified examples broken below their radius: {msg}"
    for eps, c, e, m in zip(res.eps, res.certified, res.empirical, res.margin):
        assert c <= e + m + 1e-12, (f"certified accuracy {c:.3f} > empirical robust accuracy {e:.3f} + margin "
                                    f"{m:.3f} at eps {eps}")


# ------------------------------------------------------------------------ closed-form linear case


class TwoClassLinear(nn.Module):
    """Logits (-s/2, s/2) with s = w.x + b: class 1 iff w.x + b > 0."""

    def __init__(self, w: torch.Tensor, b: float):
        super().__init__()
        self.lin = nn.Linear(w.numel(), 2)
        with torch.no_grad():
            self.lin.weight.copy_(torch.stack([-w / 2, w / 2]))
            self.lin.bias.copy_(torch.tensor([-b / 2, b / 2]))

    def forward(self, x):
        return self.lin(x.reshape(len(x), -1))


def test_linear_classifier_exact_radius(mnist):
    train, test = mnist
    a, b = 7, 9
    xa = train.x[train.y == a].reshape(-1, 784).double()
    xb = train.x[train.y == b].reshape(-1, 784).double()
    w = (xb.mean(0) - xa.mean(0))
    bias = float(-(w @ (xa.mean(0) + xb.mean(0)) / 2))
    model = TwoClassLinear(w.float(), bias).eval()
    keep = torch.nonzero((test.y == a) | (test.y == b)).flatten()[:20]
    x, y = test.x[keep], (test.y[keep] == b).long()
    sigma = 1.0

    s = x.reshape(len(x), -1).double() @ w + bias
    d = (s.abs() / w.norm()).numpy()                      # exact robust radius of the smoothed classifier
    exact_correct = ((s > 0).long() == y).numpy()
    p_top = norm.cdf(d / sigma)                           # exact probability of the base class at x

    eps_list = (0.25, 0.5, 1.0, 1.5, 2.5)
    res = cross_check(model, sigma, x, y, 2, eps_list, n0=100, n=5000, pgd_steps=20, eot=4, seed=11,
                      cw=dict(steps=50, binary_search_steps=4, lr=0.05))
    # not vacuous: a spread of certified radii, and the attack breaks examples at the largest eps
    assert res.correct.sum() >= 12 and np.sum(res.renyi > 1.0) >= 3
    assert res.empirical[-1] < res.empirical[0]

    cert = res.correct
    # Exact facts (each certificate holds with probability >= 1 - ALPHA; seeds fixed):
    assert np.all(exact_correct[cert]), "certified a class the exact smoothed classifier does not predict"
    assert np.all(res.p1_lower[cert] <= p_top[cert]), "Clopper-Pearson lower bound above the exact p_top"
    assert np.all(res.cohen[cert] <= d[cert] + 1e-6), "Cohen's radius above the exact robust radius"
    assert np.all(res.renyi[cert] <= d[cert] + 1e-6), "Renyi radius above the exact robust radius"
    # certified <= exact robust accuracy <= empirical (+ margin), at every eps
    for j, eps in enumerate(eps_list):
        exact_acc = np.mean(exact_correct & (d > eps))
        assert res.certified[j] <= exact_acc + 1e-12
    assert_no_violation(res)


# -------------------------------------------------------------------------------- small CNN case


class TinyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 4 * 4, 10))

    def forward(self, x):
        return self.net((x - 0.1307) / 0.3081)


def train_tiny(train, sigma: float, *, n: int = 1500, epochs: int = 6, seed: int = 0) -> nn.Module:
    """Gaussian data augmentation (Cohen et al.): CE on x + N(0, sigma^2 I), Adam 1e-3, batch 64."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = TinyCNN()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    x, y = train.x[:n], train.y[:n]
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for s in range(0, n, 64):
            idx = perm[s:s + 64]
            xb = x[idx] + sigma * torch.randn(x[idx].shape, generator=gen)
            loss = nn.functional.cross_entropy(model(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def test_cnn_certified_below_attacked(mnist):
    train, test = mnist
    sigma = 0.5
    model = train_tiny(train, sigma)
    x, y = test.x[:20], test.y[:20]
    eps_list = (0.25, 0.5, 1.0, 1.5, 2.5)
    res = cross_check(model, sigma, x, y, 10, eps_list, n0=50, n=1000, pgd_steps=10, eot=8, seed=5,
                      cw=dict(steps=30, binary_search_steps=3, lr=0.1))
    # not vacuous: most digits certified, some beyond 0.5; the attack breaks digits at large eps
    assert res.correct.sum() >= 12 and np.sum(res.renyi > 0.5) >= 5
    assert res.empirical[-1] < res.empirical[0]
    assert_no_violation(res)
