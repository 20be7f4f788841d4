"""Adaptive certification (renyi_cert.sequential): soundness under optional stopping, savings, errors.

The simulations use a fake backend whose counts are multinomial draws from fixed class
probabilities ``p`` (``x`` is ignored), so the true radius of every class is known in closed form:
``BOUNDS[b](p[c], max_{j != c} p[j], sigma)`` when ``c`` is the true top class, 0 otherwise. An
over-claim is a certified radius above that (a wrong class certified with a positive radius
included). The hardest inputs for a stopping rule are those whose true radius *is* the target:
every "target reached" there is an over-claim, and a rule that looks repeatedly at plain
alpha-level bounds gets one chance per look. Seeds are fixed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import renyi_cert
from renyi_cert.bounds import BOUNDS
from renyi_cert.backend import certify
from renyi_cert.caps import radius_cap
from renyi_cert.certificate import certify_from_counts
from renyi_cert.sequential import (
    MAX_LOOKS,
    STOP_REASONS,
    AdaptiveCertificate,
    certify_adaptive,
    look_sizes,
    plan_adaptive,
)

SIGMA = 0.5
ALPHA = 0.05
ALL_BOUNDS = tuple(BOUNDS)
# the simulation's schedule: 12 looks, 50 ... 3000 samples
SIM = dict(n0=20, n_max=3000, n_start=50, growth=1.5)


class Fixed:
    """A backend drawing multinomial class counts from fixed probabilities ``p`` (``x`` ignored)."""

    def __init__(self, p, *, log=None):
        self.p = np.asarray(p, dtype=np.float64)
        self.num_classes = len(p)
        self.log = log

    def sample_counts(self, x, sigma, n, *, batch_size, generator):
        if self.log is not None:
            self.log.append((n, generator))
        return generator.multinomial(n, self.p)


class Untouchable:
    """A backend that fails the test if it is ever asked for samples."""

    num_classes = 2

    def sample_counts(self, x, sigma, n, *, batch_size, generator):
        raise AssertionError("sampled before the arguments were checked")


def true_radius(p, c: int, bound: str) -> float:
    p = np.asarray(p)
    if c < 0:
        return 0.0
    other = float(np.max(np.delete(p, c)))
    return float(BOUNDS[bound](p[c], other, SIGMA)) if p[c] > other else 0.0


def overclaims(res: AdaptiveCertificate, p, bound: str) -> bool:
    return (not res.abstained) and res.radius(bound) > true_radius(p, res.prediction, bound) * (1 + 1e-12)


def limit(runs: int, alpha: float = ALPHA) -> float:
    """alpha plus three standard errors of a rate measured on ``runs`` runs."""
    return alpha + 3 * math.sqrt(alpha * (1 - alpha) / runs)


# inputs with the true radius right at the target; the last one is near a tie, so that the
# selection on n0 = 20 samples sometimes picks the wrong class
BOUNDARY = [np.array([0.9, 0.1]), np.array([0.75, 0.15, 0.1]), np.array([0.5, 0.38, 0.12])]


# --------------------------------------------------------------------------------------------
# Soundness: over-claim rates


@pytest.mark.parametrize("bound", ALL_BOUNDS)
def test_target_mode_overclaim_rate_at_the_boundary(bound):
    runs, over, reached = 1200, 0, 0
    for i in range(runs):
        p = BOUNDARY[i % len(BOUNDARY)]
        # every other run gives up early at a plausible (not the most favourable) completion
        # and every third splits alpha evenly over the looks
        res = certify_adaptive(Fixed(p), None, SIGMA, alpha=ALPHA, target_radius=true_radius(p, 0, bound),
                               bound=bound, futility_level=0.05 * (i % 2), final_share=None if i % 3 == 0 else 0.5,
                               generator=np.random.default_rng(1000 + i), **SIM)
        assert res.stop_reason in STOP_REASONS
        over += overclaims(res, p, bound)
        reached += res.stop_reason == "target reached"
    assert over / runs <= limit(runs), over
    assert reached >= over  # at the boundary every over-claim is a "target reached"


@pytest.mark.parametrize("bound", ALL_BOUNDS)
def test_tolerance_mode_overclaim_rate(bound):
    runs, over = 600, 0
    cases = BOUNDARY + [np.array([0.99, 0.01])]
    for i in range(runs):
        p = cases[i % len(cases)]
        res = certify_adaptive(Fixed(p), None, SIGMA, alpha=ALPHA, tolerance=0.05, relative=bool(i % 2),
                               futility_level=0.05 * (i % 3 == 0), bound=bound,
                               generator=np.random.default_rng(5000 + i), **SIM)
        assert res.stop_reason in ("tolerance reached", "budget exhausted")
        over += overclaims(res, p, bound)
    assert over / runs <= limit(runs), over


def test_naive_rule_overclaims():
    # Negative control in the same setting: stop at the first look whose plain alpha-level bounds
    # (no split over the looks) certify the target. At p = (0.9, 0.1) with the true radius as the
    # target it over-claims about 11 % of the time at alpha = 0.05 (12 looks), so a rate check
    # like the ones above fails it.
    p, bound, runs = BOUNDARY[0], "renyi", 2000
    target = true_radius(p, 0, bound)
    sizes = look_sizes(n_start=SIM["n_start"], growth=SIM["growth"], n_max=SIM["n_max"])
    cache: dict[tuple[int, ...], float] = {}
    rng = np.random.default_rng(7)
    over = 0
    for _ in range(runs):
        selection = rng.multinomial(SIM["n0"], p)
        top = int(np.argmax(selection))
        counts = np.zeros(2, dtype=np.int64)
        drawn = 0
        for size in sizes:
            counts += rng.multinomial(size - drawn, p)
            drawn = size
            key = (top, *counts)
            if key not in cache:
                cert = certify_from_counts(selection, counts, SIGMA, alpha=ALPHA, bounds=(bound,))
                cache[key] = cert.radius(bound)
            if cache[key] >= target:
                over += cache[key] > true_radius(p, top, bound)
                break
    assert over / runs > limit(runs), over
    assert over / runs > 2 * ALPHA


# --------------------------------------------------------------------------------------------
# What the rules save, and how they end


def test_easy_input_stops_early():
    # p1 = 0.999: radius 1.0 at sigma 0.5 is reached after a few thousand of the 100 000 samples
    for seed in range(5):
        res = certify_adaptive(Fixed([0.999, 0.001]), None, SIGMA, n0=100, n_max=100_000, target_radius=1.0,
                               generator=np.random.default_rng(seed))
        assert res.stop_reason == "target reached"
        assert res.prediction == 0 and res.radius("renyi") >= 1.0
        assert res.forward_passes == 100 + res.certificate.n
        assert res.forward_passes <= 10_000
        assert res.looks < res.planned_looks == 11


def test_out_of_reach_target_stops_early():
    # p1 = 0.7 has true Renyi radius about 0.26 at sigma 0.5; 1.0 is possible for some input at
    # n_max = 100 000 (the unanimous cap is higher), but not for this one
    cap = radius_cap(100_000, alpha=0.001 / 2, sigma=SIGMA, bounds="renyi").radii["renyi"]
    assert cap > 1.0
    for seed in range(5):
        res = certify_adaptive(Fixed([0.7, 0.3]), None, SIGMA, n0=100, n_max=100_000, target_radius=1.0,
                               futility_level=0.0, generator=np.random.default_rng(seed))
        assert res.stop_reason == "target out of reach"
        # futility needs the most favourable completion (all remaining samples in the top class)
        # to fall short, which here happens once n is a few % of n_max
        assert res.forward_passes <= 5000
        assert res.radius() < 1.0


def test_futility_level_gives_up_sooner_and_keeps_reachable_targets():
    # p1 = 0.9 (true Renyi radius 0.516 at sigma 0.5) against target 0.6: out of reach, but the
    # most favourable completion keeps hoping to the end (the radius at n_max is close to 0.6),
    # while the plausible one gives up within the first few looks
    kw = dict(n0=100, n_max=100_000, target_radius=0.6)
    strict = [certify_adaptive(Fixed([0.9, 0.1]), None, SIGMA, futility_level=0.0,
                               generator=np.random.default_rng(s), **kw) for s in range(5)]
    eager = [certify_adaptive(Fixed([0.9, 0.1]), None, SIGMA, futility_level=0.01,
                              generator=np.random.default_rng(s), **kw) for s in range(5)]
    assert {r.stop_reason for r in strict} == {"budget exhausted"}
    assert {r.stop_reason for r in eager} == {"target out of reach"}
    assert max(r.forward_passes for r in eager) <= 1000 < 100_100 == min(r.forward_passes for r in strict)
    # a target comfortably inside the true radius is still reached
    for s in range(5):
        res = certify_adaptive(Fixed([0.9, 0.1]), None, SIGMA, n0=100, n_max=100_000, target_radius=0.45,
                               futility_level=0.01, generator=np.random.default_rng(s))
        assert res.stop_reason == "target reached"


def test_abstains_at_budget_on_a_tie():
    res = certify_adaptive(Fixed([0.5, 0.5]), None, SIGMA, n0=10, n_max=400, target_radius=0.01,
                           futility_level=0.0, generator=np.random.default_rng(3))
    assert res.stop_reason == "budget exhausted"
    assert res.abstained and res.prediction == -1
    assert dict(res.certificate.radii) == {b: 0.0 for b in ALL_BOUNDS}
    assert res.certificate.n == 400 and res.looks == res.planned_looks == 3


def test_tolerance_mode_stops_when_no_completion_can_help():
    # an absolute tolerance larger than any radius n_max samples allow stops at the first look
    res = certify_adaptive(Fixed([0.9, 0.1]), None, SIGMA, n0=10, n_max=10_000, tolerance=10.0, relative=False,
                           generator=np.random.default_rng(0))
    assert (res.stop_reason, res.looks, res.certificate.n, res.forward_passes) == ("tolerance reached", 1, 100, 110)
    # a zero tolerance never stops before n_max
    res = certify_adaptive(Fixed([0.9, 0.1]), None, SIGMA, n0=10, n_max=1000, tolerance=0.0,
                           generator=np.random.default_rng(0))
    assert (res.stop_reason, res.certificate.n, res.looks) == ("budget exhausted", 1000, 5)


def test_certificate_fields():
    res = certify_adaptive(Fixed([0.95, 0.03, 0.02]), None, SIGMA, n0=50, n_max=5000, alpha=0.01,
                           target_radius=0.5, bound="cohen", generator=np.random.default_rng(1))
    cert = res.certificate
    assert isinstance(res, AdaptiveCertificate) and isinstance(cert, renyi_cert.Certificate)
    assert list(cert.radii) == ["renyi", "cohen", "pixeldp"]
    assert cert.alpha == 0.01 and cert.guaranteed and cert.method == "clopper-pearson" and cert.n0 == 50
    # default split: half of alpha for the last look, the rest evenly over the others
    plan = plan_adaptive(SIGMA, n_max=5000, alpha=0.01, target_radius=0.5, bound="cohen", num_classes=3)
    assert plan.look_alphas == (0.005 / 6,) * 6 + (0.005,) and res.planned_looks == 7
    assert res.look_alpha == plan.look_alphas[res.looks - 1]
    # the bounds are those of certify_from_counts at the look's level on its counts
    assert cert.p1_lower <= (res.look_alpha / 2) ** (1 / cert.n)
    with pytest.raises(Exception):
        res.looks = 3  # frozen


def test_one_look_is_certify():
    # n_start = n_max: one look at the full alpha, the same draws as certify with the same seed
    for seed in range(3):
        res = certify_adaptive(Fixed([0.8, 0.15, 0.05]), None, SIGMA, n0=30, n_max=500, n_start=500,
                               tolerance=0.1, generator=np.random.default_rng(seed))
        ref = certify(Fixed([0.8, 0.15, 0.05]), None, SIGMA, n0=30, n=500, bounds=ALL_BOUNDS,
                      generator=np.random.default_rng(seed))
        assert (res.planned_looks, res.looks, res.stop_reason) == (1, 1, "budget exhausted")
        assert res.certificate == ref


def test_samples_are_fresh_increments_from_one_generator():
    log: list = []
    g = np.random.default_rng(0)
    res = certify_adaptive(Fixed([0.6, 0.4], log=log), None, SIGMA, n0=7, n_max=1000, target_radius=0.9,
                           n_start=100, growth=2.0, generator=g)
    assert res.stop_reason == "target out of reach" or res.looks == 5
    sizes = [n for n, _ in log]
    assert sizes[0] == 7
    assert sizes[1:] == [100, 100, 200, 400, 200][: res.looks]
    assert all(gen is g for _, gen in log)
    assert res.forward_passes == sum(sizes)


def test_look_sizes():
    assert look_sizes(n_start=100, growth=2.0, n_max=1000) == (100, 200, 400, 800, 1000)
    assert look_sizes(n_start=50, growth=1.5, n_max=3000)[-2:] == (2915, 3000)
    assert look_sizes(n_start=7, growth=1.01, n_max=12) == (7, 8, 9, 10, 11, 12)  # at least one more each look
    assert look_sizes(n_start=1, growth=2.0, n_max=1) == (1,)


def test_exported():
    assert renyi_cert.certify_adaptive is certify_adaptive
    assert renyi_cert.AdaptiveCertificate is AdaptiveCertificate


# --------------------------------------------------------------------------------------------
# Errors, all before any sampling

OK = dict(n0=10, n_max=1000, target_radius=0.5)


@pytest.mark.parametrize("change, message", [
    (dict(n0=0), r"n0 \(0\) must be an integer >= 1"),
    (dict(n_max=0), r"n_max \(0\) must be an integer >= 1"),
    (dict(n_max=10**14), r"n_max \(100000000000000\) must be at most 10\*\*13"),
    (dict(n_start=2000), r"n_start \(2000\) must be <= n_max \(1000\)"),
    (dict(n_start=0), r"n_start \(0\) must be an integer >= 1"),
    (dict(growth=1.0), r"growth \(1.0\) must be > 1"),
    (dict(growth=float("nan")), r"growth \(nan\) must be finite"),
    (dict(growth=1.0001, n_start=1, n_max=5000), rf"more than {MAX_LOOKS} looks"),
    (dict(alpha=0.0), r"alpha \(0.0\)"),
    (dict(alpha=1.5), r"alpha \(1.5\)"),
    (dict(batch_size=0), r"batch_size \(0\) must be an integer >= 1"),
    (dict(sigma=-1.0), r"sigma \(-1.0\)"),
    (dict(bound="l2"), r"bound \('l2'\) must be one of 'renyi', 'cohen', 'pixeldp'"),
    (dict(relative=1), r"relative \(1\) must be True or False"),
    (dict(target_radius=None), r"exactly one of target_radius \(None\) and tolerance \(None\)"),
    (dict(tolerance=0.1), r"exactly one of target_radius \(0.5\) and tolerance \(0.1\)"),
    (dict(target_radius=0.0), r"target_radius \(0.0\) must be > 0"),
    (dict(target_radius=float("inf")), r"target_radius \(inf\) must be finite"),
    (dict(target_radius=5.0), r"target_radius \(5.0\) must be at most 0.98\d*, the largest renyi radius n_max "
                              r"\(1000\) samples can certify"),
    (dict(target_radius=None, tolerance=-0.1), r"tolerance \(-0.1\) must be >= 0"),
    (dict(futility_level=0.5), r"futility_level \(0.5\) must be < 0.5"),
    (dict(final_share=1.0), r"final_share \(1.0\) must be in \(0, 1\)"),
    (dict(final_share=0.0), r"final_share \(0.0\) must be > 0"),
    (dict(futility_level=-0.01), r"futility_level \(-0.01\) must be >= 0"),
    (dict(target_radius=None, tolerance="0.1"), r"tolerance \('0.1'\) must be a real number"),
])
def test_errors_before_sampling(change, message):
    kwargs = {**OK, "sigma": SIGMA, **change}
    sigma = kwargs.pop("sigma")
    with pytest.raises(ValueError, match=message):
        certify_adaptive(Untouchable(), None, sigma, **kwargs)


def test_backend_must_follow_the_protocol():
    with pytest.raises(ValueError, match=r"backend \(object\) must implement the Backend protocol"):
        certify_adaptive(object(), None, SIGMA, **OK)  # type: ignore[arg-type]
