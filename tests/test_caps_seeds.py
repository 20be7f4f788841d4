"""The radius cap from n and alpha, the samples a radius needs, and the seed derivation."""

from __future__ import annotations

import numpy as np
import pytest

from renyi_cert import cohen_radius, radius
from renyi_cert.caps import min_samples, radius_cap
from renyi_cert.certificate import certify_from_counts
from renyi_cert.seeds import derive_seed, spawn_seeds


@pytest.mark.parametrize("n,alpha", [(1, 0.5), (100, 0.05), (2000, 0.001), (100000, 1e-6)])
def test_cap_is_the_unanimous_certificate_in_closed_form(n, alpha):
    # p1_lower = (alpha/2)^(1/n) (one-sided Clopper-Pearson at k = n, Bonferroni half of alpha),
    # p2_upper = 1 - p1_lower; the radii are the bounds' values there.
    cap = radius_cap(n, alpha=alpha, sigma=0.7)
    p1 = (alpha / 2) ** (1 / n)
    assert cap.p1_lower == pytest.approx(p1, rel=1e-14)
    assert cap.p2_upper == pytest.approx(1 - p1, rel=1e-9)
    assert cap.radii["renyi"] == pytest.approx(radius(p1, 1 - p1, 0.7), rel=1e-9)
    assert cap.radii["cohen"] == pytest.approx(cohen_radius(p1, 1 - p1, 0.7), rel=1e-9)
    with pytest.raises(TypeError):
        cap.radii["renyi"] = 0.0  # read-only


def test_no_counts_certify_beyond_the_cap():
    rng = np.random.default_rng(0)
    cap = radius_cap(500, alpha=0.01, sigma=0.5, num_classes=4)
    for _ in range(200):
        est = rng.multinomial(500, rng.dirichlet([5, 1, 1, 1]))
        cert = certify_from_counts([1, 0, 0, 0], est, 0.5, alpha=0.01, bounds=("renyi", "cohen", "pixeldp"))
        assert all(cert.radii[b] <= cap.radii[b] for b in cap.radii)


@pytest.mark.parametrize("r,sigma,alpha,bound", [(1.5, 0.7, 0.001, "renyi"), (1.4, 0.7, 0.05, "renyi"),
                                                 (0.5, 0.25, 0.001, "cohen"), (0.3, 0.7, 0.001, "pixeldp")])
def test_min_samples_is_the_smallest_n_whose_cap_reaches_the_radius(r, sigma, alpha, bound):
    n = min_samples(r, sigma=sigma, alpha=alpha, bound=bound)
    assert radius_cap(n, alpha=alpha, sigma=sigma, bounds=bound).radii[bound] >= r
    if n > 1:
        assert radius_cap(n - 1, alpha=alpha, sigma=sigma, bounds=bound).radii[bound] < r


def test_min_samples_errors():
    with pytest.raises(ValueError, match=r"radius \(2.0\) is beyond the pixeldp cap of every n up to 10\*\*13"):
        min_samples(2.0, sigma=0.7, alpha=0.001, bound="pixeldp")
    with pytest.raises(ValueError, match=r"radius \(-1.0\) must be > 0"):
        min_samples(-1.0, sigma=0.7, alpha=0.001)
    with pytest.raises(ValueError, match=r"bound \('l1'\) must be one of"):
        min_samples(1.0, sigma=0.7, alpha=0.001, bound="l1")


def test_derive_seed_depends_only_on_seed_and_labels():
    seeds = {derive_seed(s, i) for s in range(3) for i in range(100)}
    assert len(seeds) == 300 and all(0 <= v < 2**63 for v in seeds)
    assert derive_seed(5, 3, 2) == derive_seed(5, 3, 2) != derive_seed(5, 2, 3)
    # the published rule (numpy SeedSequence of (seed, labels), two 32-bit words, top 63 bits): the
    # seeds of existing logs stay valid
    a, b = np.random.SeedSequence([7, 11]).generate_state(2, dtype=np.uint32)
    assert derive_seed(7, 11) == ((int(a) << 32) | int(b)) >> 1


def test_spawn_seeds():
    s = spawn_seeds(0, 3)
    assert len(set(s)) == 3 and all(0 <= v < 2**63 for v in s)
    assert spawn_seeds(0, 3) == s and spawn_seeds(1, 3) != s


@pytest.mark.parametrize("call,match", [
    (lambda: derive_seed(-1, 0), r"seed and labels \(-1\) must be non-negative integers"),
    (lambda: derive_seed(0, 1.5), r"seed and labels \(1.5\) must be non-negative integers"),
    (lambda: spawn_seeds(True, 2), r"seed \(True\) must be non-negative integers"),
    (lambda: spawn_seeds(0, 0), r"count \(0\) must be an integer >= 1"),
])
def test_seed_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
