"""Certification with Laplace and uniform noise (issue 11): certificates carry the noise and the
norm, and the backends (numpy and torch) draw the noise they are given.

Oracles: the radii of :mod:`renyi_cert.noise` (themselves checked against mpmath in
tests/test_noise.py); scipy.stats' Laplace and uniform distributions (Kolmogorov-Smirnov tests of
the drawn noise); and, for a model that thresholds one coordinate, the exact probability under
Laplace noise and the exact l1 radius of its smoothed classifier.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from renyi_cert import CallableBackend, certify, certify_from_counts, certify_from_counts_single
from renyi_cert.noise import Gaussian, Laplace, Uniform, as_noise, scale_of

SEL, EST = [2, 95, 3], [40, 9_900, 60]


# ---------------------------------------------------------------------------------- the core


@pytest.mark.parametrize("noise,bounds", [(Laplace(0.5), ("renyi", "teng", "pixeldp")), (Uniform(0.8), ("yang",)),
                                          (Gaussian(0.25), ("renyi", "cohen", "pixeldp"))])
def test_certificate_radii_are_the_noise_radii_and_it_records_noise_and_norm(noise, bounds):
    cert = certify_from_counts(SEL, EST, noise, bounds=bounds)
    assert cert.prediction == 1
    assert (cert.noise, cert.norm, cert.sigma) == (noise.name, noise.norm, scale_of(noise))
    for b in bounds:
        assert cert.radii[b] == float(noise.radius(cert.p1_lower, cert.p2_upper, b))
    single = certify_from_counts_single(EST, noise, bounds=bounds, allow_unguaranteed=True)
    assert (single.noise, single.norm) == (noise.name, noise.norm)


def test_a_number_is_gaussian_noise_with_the_same_certificate():
    a = certify_from_counts(SEL, EST, 0.25, bounds=("renyi", "cohen"))
    b = certify_from_counts(SEL, EST, Gaussian(0.25), bounds=("renyi", "cohen"))
    assert a == b and (a.noise, a.norm) == ("gaussian", "l2")


def test_laplace_renyi_beats_teng_with_a_small_runner_up():
    cert = certify_from_counts(SEL, EST, Laplace(1.0), bounds=("renyi", "teng"))
    assert cert.p2_upper < 1 - cert.p1_lower
    assert cert.radii["renyi"] > cert.radii["teng"] > 0


def test_abstain_records_the_noise_too():
    cert = certify_from_counts([50, 50], [500, 500], Laplace(1.0), bounds=("teng",))
    assert cert.abstained and cert.radii == {"teng": 0.0} and cert.norm == "l1"


@pytest.mark.parametrize("noise,bounds,message", [
    (Uniform(1.0), ("renyi",), "bound ('renyi') is not available for Uniform noise"),
    (Laplace(1.0), ("cohen",), "bound ('cohen') must be one of 'renyi', 'teng', 'pixeldp'"),
    (Laplace(1.0), (), "bounds must name at least one bound from 'renyi', 'teng', 'pixeldp' (the bounds of "
                       "Laplace noise)"),
])
def test_bounds_the_noise_does_not_have_are_refused(noise, bounds, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        certify_from_counts(SEL, EST, noise, bounds=bounds)


def test_as_noise_checks_numbers_and_keeps_noises():
    assert as_noise(0.5) == Gaussian(0.5) and as_noise(Laplace(2.0)) == Laplace(2.0)
    with pytest.raises(ValueError, match=r"sigma \(-1.0\) must be > 0"):
        as_noise(-1.0)
    with pytest.raises(ValueError, match="sigma"):
        as_noise("laplace")


# ------------------------------------------------------------------------- the numpy backend


def _recorder():
    seen = []

    def fn(batch):
        seen.append(batch.copy())
        return np.zeros(len(batch), dtype=np.int64)

    return fn, seen


@pytest.mark.parametrize("noise,dist", [(Laplace(0.7), stats.laplace(scale=0.7)),
                                        (Uniform(0.3), stats.uniform(loc=-0.3, scale=0.6)),
                                        (Gaussian(0.4), stats.norm(scale=0.4))])
def test_callable_backend_draws_the_noise_it_is_given(noise, dist):
    fn, seen = _recorder()
    CallableBackend(fn, 2).sample_counts(np.full(5, 0.5), noise, 4000, batch_size=1000,
                                         generator=np.random.default_rng(0))
    drawn = np.concatenate(seen).ravel() - 0.5
    assert drawn.size == 20_000
    assert stats.kstest(drawn, dist.cdf).pvalue > 1e-3


def test_callable_backend_gaussian_draws_are_unchanged():
    fn_a, a = _recorder()
    fn_b, b = _recorder()
    CallableBackend(fn_a, 2).sample_counts(np.zeros(3), 0.5, 10, generator=np.random.default_rng(1))
    CallableBackend(fn_b, 2).sample_counts(np.zeros(3), Gaussian(0.5), 10, generator=np.random.default_rng(1))
    expected = np.random.default_rng(1).standard_normal((10, 3)) * 0.5
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[0], expected)


def test_laplace_certificate_of_a_threshold_model_is_sound_and_nearly_tight():
    # f(x) = 1 when x[0] > 0. At x0 = (t, ...) with Laplace(b) noise, P(f = 1) = 1 - exp(-t/b)/2, and
    # the smoothed classifier keeps class 1 exactly while the l1 shift along coordinate 0 is < t:
    # its exact l1 radius is t (and Teng's bound, tight given p1, gives t at the true p1).
    b, t = 0.5, 0.8
    backend = CallableBackend(lambda batch: (batch[:, 0] > 0).astype(np.int64), 2)
    cert = certify(backend, np.array([t, 0.0]), Laplace(b), n0=100, n=100_000, bounds=("renyi", "teng", "pixeldp"),
                   generator=np.random.default_rng(3))
    p1 = 1 - 0.5 * math.exp(-t / b)
    assert cert.prediction == 1 and cert.norm == "l1"
    assert cert.p1_lower < p1
    assert Laplace(b).radius(p1, 1 - p1, "teng") == pytest.approx(t, rel=1e-12)
    for bound in ("renyi", "teng", "pixeldp"):
        assert 0 < cert.radii[bound] < t
    assert cert.radii["teng"] > 0.9 * t  # nearly tight at n = 100,000


# ------------------------------------------------------------------------- the torch backend


torch = pytest.importorskip("torch")


class _Keep(torch.nn.Module):
    """Class 0 always; keeps every batch it sees."""

    def __init__(self):
        super().__init__()
        self.inputs = []

    def forward(self, x):
        self.inputs.append(x.clone())
        out = torch.zeros(x.shape[0], 2, device=x.device)
        out[:, 0] = 1.0
        return out


@pytest.mark.parametrize("noise,dist", [(Laplace(0.7), stats.laplace(scale=0.7)),
                                        (Uniform(0.3), stats.uniform(loc=-0.3, scale=0.6))])
def test_smoothed_classifier_draws_the_noise_it_is_given(noise, dist):
    from renyi_cert_torch.smoothing import SmoothedClassifier

    model = _Keep()
    clf = SmoothedClassifier(model, noise, 2, device="cpu", batch_size=1000, input_shape=(1, 2, 2))
    assert clf.noise == noise and clf.sigma == scale_of(noise)
    counts = clf.sample_counts(torch.full((1, 2, 2), 0.5), noise, 5000, generator=clf.make_generator(0))
    assert counts.tolist() == [5000, 0]
    drawn = (torch.cat(model.inputs) - 0.5).double().numpy().ravel()
    assert drawn.size == 20_000 and np.isfinite(drawn).all()
    assert stats.kstest(drawn, dist.cdf).pvalue > 1e-3


def test_smoothed_classifier_gaussian_draws_are_unchanged_and_certify_records_the_noise():
    from renyi_cert_torch.smoothing import SmoothedClassifier

    a, b = _Keep(), _Keep()
    x = torch.full((1, 2, 2), 0.5)
    SmoothedClassifier(a, 0.5, 2, device="cpu").sample_counts(x, 0.5, 300, generator=torch.Generator().manual_seed(4))
    SmoothedClassifier(b, Gaussian(0.5), 2, device="cpu").sample_counts(x, Gaussian(0.5), 300,
                                                                       generator=torch.Generator().manual_seed(4))
    assert torch.equal(torch.cat(a.inputs), torch.cat(b.inputs))
    clf = SmoothedClassifier(_Keep(), Laplace(0.5), 2, device="cpu")
    cert = clf.certify(x, n0=50, n=500, bounds=("renyi", "teng"), generator=clf.make_generator(0))
    assert (cert.noise, cert.norm, cert.sigma) == ("laplace", "l1", 0.5) and cert.prediction == 0


def test_adaptive_certification_with_laplace_noise_stays_below_the_exact_radius():
    # the threshold model of the test above: exact l1 radius t; the adaptive procedure reaches the
    # target well below t early, and never certifies beyond t
    from renyi_cert import certify_adaptive

    b, t = 0.5, 0.8
    backend = CallableBackend(lambda batch: (batch[:, 0] > 0).astype(np.int64), 2)
    res = certify_adaptive(backend, np.array([t, 0.0]), Laplace(b), n0=100, n_max=50_000, target_radius=0.3,
                           bound="teng", generator=np.random.default_rng(5))
    assert res.stop_reason == "target reached" and res.forward_passes < 100 + 50_000
    assert res.certificate.norm == "l1" and set(res.certificate.radii) == {"renyi", "teng", "pixeldp"}
    assert 0.3 <= res.certificate.radii["teng"] < t
    with pytest.raises(ValueError, match="bound \\('cohen'\\) must be one of 'renyi', 'teng', 'pixeldp'"):
        certify_adaptive(backend, np.array([t, 0.0]), Laplace(b), n0=10, n_max=100, target_radius=0.1, bound="cohen")
