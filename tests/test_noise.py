"""Tests for renyi_cert.noise: the Laplace Renyi radius against an mpmath oracle, properties, errors."""

from __future__ import annotations

import math
from functools import lru_cache

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numba import njit

from renyi_cert import _kernels, bounds, noise
from renyi_cert.noise import NOISES, Gaussian, Laplace, Uniform

# --------------------------------------------------------------------------------------------
# mpmath oracle, 50 digits: literal formulas (no cancellation tricks), its own root finder
# (Illinois' regula falsi on a sign-checked bracket, to 1e-42 relative) and its own maximiser (a
# scan of log(order - 1) over [-30, 44] in steps of 1, then golden-section search to 1e-12 in
# log(order - 1): u is smooth and unimodal there, so the error is O(1e-24)), plus the two limits.
# --------------------------------------------------------------------------------------------
DPS = 50
REL = 1e-13  # the accuracy asserted against the oracle (the requirement)
# The most the kernel may exceed the oracle, relative: rounding (about 5e-16 is the most measured
# on ~500 pairs of all kinds; this leaves room for a libm that rounds differently).
OVER = 2e-15


def _mp_h(p1, p2, a):
    """-log(1 - p1 - p2 + 2 M_{1-a}(p1, p2)), literally."""
    t = 1 - a
    m = ((p1**t + p2**t) / 2) ** (1 / t)
    return -mpmath.log(1 - p1 - p2 + 2 * m)


def _mp_div(a, u):
    """Mironov's Laplace Renyi divergence at order a > 1, shift u (scale 1), literally."""
    return mpmath.log(a / (2 * a - 1) * mpmath.exp((a - 1) * u) + (a - 1) / (2 * a - 1) * mpmath.exp(-a * u)) / (a - 1)


def _mp_root(f, lo, hi):
    """The root of an increasing f with f(lo) < 0 < f(hi): Illinois' regula falsi to 1e-42 relative."""
    flo, fhi = f(lo), f(hi)
    assert flo < 0 < fhi
    side = 0
    while hi - lo > mpmath.mpf(10) ** (8 - DPS) * hi:
        x = (lo * fhi - hi * flo) / (fhi - flo)
        fx = f(x)
        if fx == 0:
            return x
        if fx < 0:
            lo, flo = x, fx
            fhi = fhi / 2 if side < 0 else fhi
            side = -1
        else:
            hi, fhi = x, fx
            flo = flo / 2 if side > 0 else flo
            side = 1
    return (lo + hi) / 2


def _mp_u(p1, p2, x):
    """The root u of D_a(u) = h(a) at a = 1 + e^x (u - log(2)/(a - 1) <= D_a(u) <= u brackets it)."""
    a = 1 + mpmath.exp(x)
    target = _mp_h(p1, p2, a)
    return _mp_root(lambda u: _mp_div(a, u) - target, target, target + mpmath.log(2) / (a - 1) + 1)


@lru_cache(maxsize=None)
def oracle_argmax(p1: float, p2: float) -> tuple[mpmath.mpf, float]:
    """(sup over a > 1 of the radius per unit scale, log(a - 1) at the sup: -inf/inf for the limits)."""
    with mpmath.workdps(DPS):
        P1, P2 = mpmath.mpf(p1), mpmath.mpf(p2)
        lim_inf = -mpmath.log(1 - P1 + P2)
        h1 = -mpmath.log(1 - (mpmath.sqrt(P1) - mpmath.sqrt(P2)) ** 2)
        lim_one = _mp_root(lambda u: u + mpmath.exp(-u) - 1 - h1, mpmath.sqrt(h1), 2 * mpmath.sqrt(h1) + h1)
        xs = [mpmath.mpf(x) for x in range(-30, 45)]
        vals = [_mp_u(P1, P2, x) for x in xs]
        i = max(range(len(vals)), key=vals.__getitem__)
        lo, hi = xs[max(i - 1, 0)], xs[min(i + 1, len(xs) - 1)]
        g = (mpmath.sqrt(5) - 1) / 2
        c, d = hi - g * (hi - lo), lo + g * (hi - lo)
        fc, fd = _mp_u(P1, P2, c), _mp_u(P1, P2, d)
        while hi - lo > mpmath.mpf("1e-12"):
            if fc >= fd:
                hi, d, fd = d, c, fc
                c = hi - g * (hi - lo)
                fc = _mp_u(P1, P2, c)
            else:
                lo, c, fc = c, d, fd
                d = lo + g * (hi - lo)
                fd = _mp_u(P1, P2, d)
        candidates = [(lim_one, -math.inf), (lim_inf, math.inf), (fc, float(c)), (fd, float(d))]
        return max(candidates, key=lambda t: t[0])


def oracle(p1: float, p2: float) -> mpmath.mpf:
    """sup over a > 1 of the certified radius per unit scale, at DPS digits (0 < p2 < p1)."""
    return oracle_argmax(p1, p2)[0]


def assert_matches_oracle(p1, p2, got):
    """|got - oracle| <= REL relative, and got exceeds the oracle by at most OVER (rounding)."""
    want = np.array([float(oracle(float(a), float(b))) for a, b in zip(np.ravel(p1), np.ravel(p2))])
    rel = (np.ravel(got) - want) / want
    worst = int(np.abs(rel).argmax())
    assert np.abs(rel).max() <= REL, (rel[worst], np.ravel(p1)[worst], np.ravel(p2)[worst])
    assert rel.max() <= OVER, (rel.max(), np.ravel(p1)[int(rel.argmax())], np.ravel(p2)[int(rel.argmax())])


REFERENCE = [  # (p1, p2, radius per unit scale) from the issue, mpmath at 40 digits
    (0.9, 0.05, 1.92536),
    (0.9, 0.1, 1.60944),
    (0.6, 0.3, 0.36171),
    (0.5, 0.1, 0.64711),
    (0.99, 0.005, 4.22794),
]


@pytest.mark.parametrize("p1, p2, ref", REFERENCE)
def test_oracle_agrees_with_reference_digits(p1, p2, ref):
    assert abs(float(oracle(p1, p2)) - ref) <= 0.5e-5


@pytest.mark.parametrize("scale", [1.0, 0.25, 3.0])
@pytest.mark.parametrize("p1, p2, ref", REFERENCE)
def test_laplace_renyi_matches_oracle_on_reference(p1, p2, ref, scale):
    got = Laplace(scale).radius(p1, p2)
    assert isinstance(got, float)
    assert_matches_oracle([p1], [p2], [got / scale])
    assert round(got / scale, 5) == ref


def test_reference_sup_at_infinite_order_for_p2_equal_one_minus_p1():
    assert Laplace(1.0).radius(0.9, 0.1) == pytest.approx(-math.log(0.2), rel=1e-15)


RANDOM_PAIRS = [  # a spread of pairs: near ties, tiny runner-up, p1 near 1, p1 + p2 near 1, small p1
    (0.7, 0.2), (0.55, 0.45), (0.51, 0.49), (0.3, 0.29), (0.999, 1e-4), (0.999999, 1e-7),
    (0.05, 0.01), (0.8, 0.001), (0.4, 0.35), (0.9999, 0.0001),
]


def test_laplace_renyi_matches_oracle_on_a_spread_of_pairs():
    p1 = np.array([p for p, _ in RANDOM_PAIRS])
    p2 = np.array([q for _, q in RANDOM_PAIRS])
    assert_matches_oracle(p1, p2, Laplace(1.0).radius(p1, p2))


def test_laplace_renyi_matches_oracle_on_random_pairs():
    rng = np.random.default_rng(11)
    p1 = rng.uniform(0.05, 1.0, 6)
    p2 = rng.uniform(0.0, 1.0, 6) * np.minimum(p1, 1.0 - p1)
    assert_matches_oracle(p1, p2, Laplace(1.0).radius(p1, p2))


# Pairs that pin down the search over the order, with where the oracle puts the supremum, as
# log(order - 1) (-inf: the limit order -> 1; inf: order -> inf). The regime is asserted too, so
# each pair keeps testing what its comment says.
SEARCH_PAIRS = [
    # interior maximum close to the order -> 1 limit, just past the boundary where it becomes it
    (0.3, 0.02102, (-11.0, -9.0)),
    (0.6, 0.0020768, (-18.0, -15.0)),
    (0.9, 2.4882e-05, (-16.0, -13.0)),
    (0.99, 4.554e-08, (-14.5, -12.0)),
    # ... and the other side of that boundary: the supremum is the limit
    (0.3, 0.0210134, (-math.inf, -math.inf)),
    (0.6, 0.00207, (-math.inf, -math.inf)),
    # interior maximum far towards order -> inf (p1 + p2 near 1)
    (0.6, 0.3999, (8.0, 11.0)),
    (0.6, 0.39999999, (17.0, 20.0)),
    (0.5002287761482234, 0.49977117259320003, (14.0, 20.0)),
    # near ties with p1 + p2 near 1: u varies by 1e-10 relative, the slope at order -> 1 is lost
    # in rounding, and the maximum is far out
    (0.5, 0.49999998999999995, (17.0, 20.0)),
    (0.500000045, 0.499999945, (14.0, 20.0)),
    (0.4990567866909769, 0.4990567755600929, (5.0, 8.0)),
    # near ties: the second derivatives must keep their relative accuracy (a gain of 6e-12)
    (0.44862043370613514, 0.4486175586038259, (0.0, 5.0)),
    # a runner-up 1e-15 of the top class: h at order -> 1 must not lose accuracy with log(p1/p2)
    (0.4413996055075361, 1.3433494504423083e-15, (-math.inf, -math.inf)),
    (0.99999999, 3e-16, (-4.0, -2.5)),
    # p1 + p2 = 1 exactly (q = 0): u increases with the order, the supremum is the limit
    (0.75, 0.25, (math.inf, math.inf)),
    (0.5625, 0.4375, (math.inf, math.inf)),
    (0.9990234375, 0.0009765625, (math.inf, math.inf)),
    # the maximum in the middle
    (0.9, 0.05, (1.0, 2.0)),
    (0.5, 0.1, (-1.0, 0.0)),
]


@pytest.mark.parametrize("p1, p2, where", SEARCH_PAIRS)
def test_laplace_renyi_matches_oracle_where_the_search_is_hard(p1, p2, where):
    x_star = oracle_argmax(p1, p2)[1]
    assert where[0] <= x_star <= where[1], x_star
    assert_matches_oracle([p1], [p2], [Laplace(1.0).radius(p1, p2)])


def _mixed_pairs(rng, n):
    """n pairs from each of: uniform, log-uniform runner-up, near ties, and p1 near 1."""
    tot, split = rng.uniform(0.0, 1.0, n), rng.uniform(0.5, 1.0, n)
    a1, a2 = tot * split, tot * (1.0 - split)
    b1 = rng.uniform(0.0, 1.0, n)
    b2 = b1 * 10.0 ** rng.uniform(-12.0, 0.0, n)
    total = 1.0 - 10.0 ** rng.uniform(-12.0, 0.0, n)
    gap = total * 10.0 ** rng.uniform(-10.0, 0.0, n)
    c1 = (total + gap) / 2.0
    c2 = total - c1
    d1 = 1.0 - 10.0 ** rng.uniform(-12.0, -0.5, n)
    d2 = (1.0 - d1) * rng.uniform(0.0, 1.0, n) ** 3
    p1, p2 = np.concatenate([a1, b1, c1, d1]), np.concatenate([a2, b2, c2, d2])
    keep = (p2 > 0.0) & (p1 > p2) & (p1 + p2 <= 1.0)
    return p1[keep], p2[keep]


def test_laplace_renyi_matches_oracle_on_a_dense_random_set():
    p1, p2 = _mixed_pairs(np.random.default_rng(2024), 10)
    assert p1.size >= 35
    assert_matches_oracle(p1, p2, Laplace(1.0).radius(p1, p2))


@njit(cache=False)
def _grid_max(p1, p2, xs):
    """max over the orders 1 + e^x, x in xs, of the radius each certifies (float64, per pair)."""
    out = np.zeros(p1.size)
    for i in range(p1.size):
        pair = _kernels.pair_terms(p1[i], p2[i])
        u = 1.0
        for x in xs:
            s = math.exp(x)
            u = noise._lap_root(s, s * _kernels.lemma1_at(s, pair), u if u > 0.0 else 1.0)
            out[i] = max(out[i], u)
    return out


def test_laplace_renyi_never_below_a_dense_grid_of_orders():
    # Every order certifies its own radius, so the supremum is at least the best of a dense grid of
    # orders: a search that stops at a wrong stationary point, or returns the order -> 1 limit
    # early, falls below it.
    p1, p2 = _mixed_pairs(np.random.default_rng(7), 1000)
    got = Laplace(1.0).radius(p1, p2)
    grid = _grid_max(p1, p2, np.arange(-30.0, 44.0, 0.25))
    assert np.all(grid > 0.0)
    rel = (got - grid) / grid
    assert rel.min() >= -4e-15, (rel.min(), p1[rel.argmin()], p2[rel.argmin()])


def test_tiny_probabilities_never_over_claim():
    # Every order's divergence is at least KL(u) >= u^2 / (2 + u), and h(order) <= h(inf) =
    # -log(1 - p1 + p2), so no order certifies more than about sqrt(2 (p1 - p2)) here. Where h at
    # order -> 1 underflows (1e-310) the kernel keeps the exact order -> inf value.
    p1 = np.array([1e-300, 1e-300, 1e-310, 1e-320, 1e-300, 1e-154, 1e-200, 1e-100])
    p2 = np.array([5e-301, 1e-310, 5e-311, 5e-324, 1e-300 * (1 - 1e-15), 0.9e-154, 1e-200 * (1 - 1e-10), 1e-101])
    got = Laplace(1.0).radius(p1, p2)
    assert np.all(np.isfinite(got)) and np.all(got > 0.0)
    assert np.all(got <= np.sqrt(2.0 * (p1 - p2)) * (1.0 + 1e-9))
    assert got[2] == -math.log1p(-(p1[2] - p2[2]))


def test_small_radii_agree_with_the_gaussian_radius_per_unit_sigma():
    # For small u, D_order(u) = order u^2 / 2 + O(u^3) for Laplace noise as for Gaussian noise of
    # sigma = 1, so the two suprema agree to O(u): an independent check of the near-tie regime.
    p1 = np.array([1e-300, 1e-154, 1e-200, 1e-100, 0.5, 0.3, 1e-8])
    p2 = np.array([5e-301, 0.9e-154, 1e-200 * (1 - 1e-10), 1e-101, 0.5 - 1e-15, 0.3 - 1e-14, 1e-8 * (1 - 1e-9)])
    lap, gauss = Laplace(1.0).radius(p1, p2), bounds.radius(p1, p2, 1.0)
    assert np.all(gauss < 1e-12)
    assert np.all(np.abs(lap - gauss) <= 1e-13 * gauss)


# --------------------------------------------------------------------------------------------
# Boundary cases
# --------------------------------------------------------------------------------------------
def test_laplace_renyi_p2_zero_is_the_kl_limit():
    # p2 = 0: h is constant (-log(1 - p1)) and D_a grows with a, so the supremum is order -> 1:
    # u + e^{-u} - 1 = -log(1 - p1), i.e. u = 1 + L + W0(-e^{-1-L}) with L = -log(1 - p1).
    for p1 in (0.1, 0.5, 0.9, 0.999999):
        L = -mpmath.log(1 - mpmath.mpf(p1))
        want = float(1 + L + mpmath.lambertw(-mpmath.exp(-1 - L)))
        got = Laplace(2.0).radius(p1, 0.0)
        assert got == pytest.approx(2.0 * want, rel=1e-14)
        # and it is the limit of the radius as p2 -> 0 from above
        assert Laplace(2.0).radius(p1, 1e-300) == pytest.approx(got, rel=1e-12)
        assert got > 2.0 * -math.log(1 - p1)  # above the order -> inf value


def test_laplace_infinite_and_zero_radii():
    lap = Laplace(1.0)
    assert lap.radius(1.0, 0.0) == math.inf
    assert lap.radius(1.0, 0.0, bound="teng") == math.inf
    assert lap.radius(0.6, 0.0, bound="pixeldp") == math.inf
    for bound in lap.bounds:
        assert lap.radius(0.4, 0.4, bound=bound) == 0.0
        assert lap.radius(0.3, 0.6, bound=bound) == 0.0
        assert lap.radius(0.0, 0.0, bound=bound) == 0.0
    assert lap.radius(0.5, 0.2, bound="teng") == 0.0


def test_laplace_comparison_bounds_closed_forms():
    lap = Laplace(1.5)
    assert lap.radius(0.9, 0.05, bound="teng") == pytest.approx(-1.5 * math.log(0.2), rel=1e-15)
    assert lap.radius(0.9, 0.05, bound="pixeldp") == pytest.approx(0.75 * math.log(18.0), rel=1e-15)
    # Teng near p1 = 1/2 keeps its relative accuracy
    p1 = 0.5 + 2.0**-40
    want = float(-mpmath.log(2 * (1 - mpmath.mpf(p1))))
    assert lap.radius(p1, 0.1, bound="teng") == pytest.approx(1.5 * want, rel=1e-15)


def test_vectorised_shapes_and_scalars():
    lap = Laplace(1.0)
    p1 = np.array([[0.9], [0.6]])
    p2 = np.array([0.05, 0.1, 0.0])
    for bound in lap.bounds:
        r = lap.radius(p1, p2, bound=bound)
        assert isinstance(r, np.ndarray) and r.shape == (2, 3)
        for i in range(2):
            for j in range(3):
                assert r[i, j] == lap.radius(float(p1[i, 0]), float(p2[j]), bound=bound)
    r = Uniform(1.0).radius(p1, p2)
    assert r.shape == (2, 3)
    assert isinstance(Uniform(1.0).radius(0.9, 0.05), float)


# --------------------------------------------------------------------------------------------
# Properties (hypothesis)
# --------------------------------------------------------------------------------------------
probs = st.floats(0.0, 1.0, allow_nan=False)


@st.composite
def pairs(draw):
    p1 = draw(probs)
    p2 = draw(st.floats(0.0, 1.0 - p1, allow_nan=False)) if p1 < 1.0 else 0.0
    return p1, p2


LAP = Laplace(1.0)


@settings(max_examples=150, deadline=None)
@given(pairs(), st.floats(0.0, 1.0))
def test_monotone_in_p1(pair, frac):
    p1, p2 = pair
    q1 = p1 + frac * (1.0 - p1 - p2)  # q1 >= p1, q1 + p2 <= 1
    for bound in LAP.bounds:
        lo, hi = LAP.radius(p1, p2, bound=bound), LAP.radius(q1, p2, bound=bound)
        assert hi >= lo * (1 - 1e-12)
    assert Uniform(1.0).radius(q1, p2) >= Uniform(1.0).radius(p1, p2)


@settings(max_examples=150, deadline=None)
@given(pairs(), st.floats(0.0, 1.0))
def test_non_increasing_in_p2(pair, frac):
    p1, p2 = pair
    q2 = p2 * frac  # q2 <= p2
    for bound in LAP.bounds:
        assert LAP.radius(p1, q2, bound=bound) >= LAP.radius(p1, p2, bound=bound) * (1 - 1e-12)


@settings(max_examples=150, deadline=None)
@given(pairs())
def test_renyi_at_least_teng(pair):
    p1, p2 = pair
    assert LAP.radius(p1, p2) >= LAP.radius(p1, p2, bound="teng") * (1 - 1e-12)


@settings(max_examples=150, deadline=None)
@given(st.floats(0.0, 1.0))
def test_renyi_equals_teng_when_p2_is_one_minus_p1(p1):
    p2 = 1.0 - p1
    r, t = LAP.radius(p1, p2), LAP.radius(p1, p2, bound="teng")
    if p1 <= 0.5:
        assert r == t == 0.0
    else:
        assert r == pytest.approx(t, rel=1e-12)


@settings(max_examples=100, deadline=None)
@given(pairs())
def test_zero_when_p1_at_most_p2(pair):
    p1, p2 = pair
    lo, hi = min(p1, p2), max(p1, p2)
    for bound in LAP.bounds:
        assert LAP.radius(lo, hi, bound=bound) == 0.0
    assert Uniform(2.0).radius(lo, hi) == 0.0


@settings(max_examples=60, deadline=None)
@given(pairs(), st.floats(0.01, 100.0))
def test_scale_is_a_factor(pair, scale):
    p1, p2 = pair
    for bound in LAP.bounds:
        assert Laplace(scale).radius(p1, p2, bound=bound) == pytest.approx(
            scale * LAP.radius(p1, p2, bound=bound), rel=1e-15
        )


@settings(max_examples=60, deadline=None)
@given(pairs(), st.floats(0.01, 100.0))
def test_gaussian_delegates_exactly(pair, sigma):
    p1, p2 = pair
    g = Gaussian(sigma)
    for name in g.bounds:
        assert g.radius(p1, p2, bound=name) == bounds.BOUNDS[name](p1, p2, sigma)


def test_gaussian_default_and_arrays():
    p1 = np.array([0.9, 0.6, 0.3])
    p2 = np.array([0.1, 0.4, 0.6])
    assert np.array_equal(Gaussian(0.5).radius(p1, p2), bounds.radius(p1, p2, 0.5))
    assert Gaussian(1.0).radius(0.9, 0.1) == bounds.radius(0.9, 0.1, 1.0)


def test_uniform_yang():
    u = Uniform(0.5)
    assert u.radius(0.75, 0.2) == pytest.approx(0.25, rel=1e-15)
    assert u.radius(0.5, 0.2) == 0.0
    assert u.radius(1.0, 0.0) == 0.5


# --------------------------------------------------------------------------------------------
# The divergence
# --------------------------------------------------------------------------------------------
def test_divergence_zero_at_zero_and_limits():
    lap = Laplace(2.0)
    assert lap.divergence(0.0, 3.0) == 0.0
    assert lap.divergence(3.0, np.inf) == 1.5
    assert lap.divergence(-3.0, 1.0) == pytest.approx(1.5 + math.exp(-1.5) - 1, rel=1e-15)


@pytest.mark.parametrize("t", [1e-9, 1e-4, 0.3, 2.0, 7.0, 50.0, 1e4])
@pytest.mark.parametrize("order", [1.0 + 1e-9, 1.001, 1.5, 2.0, 10.0, 1e3, 1e7])
def test_divergence_matches_mpmath(t, order):
    with mpmath.workdps(DPS):
        a, u = mpmath.mpf(order), mpmath.mpf(t)
        want = float(_mp_div(a, u))
    got = Laplace(1.0).divergence(t, order)
    assert got == pytest.approx(want, rel=1e-13)
    assert Laplace(3.0).divergence(-3.0 * t, order) == pytest.approx(want, rel=1e-13)


@settings(max_examples=100, deadline=None)
@given(st.floats(1.0, 1e6), st.floats(1e-6, 100.0), st.floats(1e-6, 100.0))
def test_divergence_increasing_and_convex_in_t(order, t1, t2):
    lap = Laplace(1.0)
    lo, hi = min(t1, t2), max(t1, t2)
    d = lap.divergence(np.array([lo, 0.5 * (lo + hi), hi]), order)
    assert d[0] >= 0.0
    assert d[0] <= d[2] * (1 + 1e-12)
    assert d[1] <= 0.5 * (d[0] + d[2]) * (1 + 1e-12) + 1e-300
    # and non-decreasing in the order
    assert lap.divergence(hi, order) <= lap.divergence(hi, 2 * order) * (1 + 1e-12)


def test_divergence_vectorised():
    lap = Laplace(1.0)
    out = lap.divergence(np.array([[0.5], [1.0]]), np.array([1.5, 2.0, np.inf]))
    assert out.shape == (2, 3)
    assert out[1, 2] == 1.0
    assert isinstance(lap.divergence(0.5, 2.0), float)


def test_docstring_examples():
    import doctest

    import renyi_cert.noise

    result = doctest.testmod(renyi_cert.noise, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 4 and result.failed == 0


# --------------------------------------------------------------------------------------------
# Attributes and errors
# --------------------------------------------------------------------------------------------
def test_attributes():
    assert Gaussian(1.0).norm == "l2" and Gaussian(1.0).bounds == ("renyi", "cohen", "pixeldp")
    assert Laplace(1.0).norm == "l1" and Laplace(1.0).bounds == ("renyi", "teng", "pixeldp")
    assert Uniform(1.0).norm == "l1" and Uniform(1.0).bounds == ("yang",)
    assert NOISES == {"gaussian": Gaussian, "laplace": Laplace, "uniform": Uniform}
    lap = Laplace(2)
    assert lap.scale == 2.0 and isinstance(lap.scale, float)
    with pytest.raises(AttributeError):
        lap.scale = 3.0  # frozen
    assert Laplace(1.0) == Laplace(1.0) and hash(Laplace(1.0)) == hash(Laplace(1.0))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Laplace(-1.0), r"^scale \(-1\.0\) must be > 0$"),
        (lambda: Laplace(0.0), r"^scale \(0\.0\) must be > 0$"),
        (lambda: Laplace(float("nan")), r"^scale \(nan\) must be finite and > 0$"),
        (lambda: Laplace("1"), r"^scale \('1'\) must be a real number, not a string$"),
        (lambda: Laplace([1.0, 2.0]), r"^scale must be a single number, got an array of shape \(2,\)$"),
        (lambda: Gaussian(-2.0), r"^sigma \(-2\.0\) must be > 0$"),
        (lambda: Uniform(float("inf")), r"^half_width \(inf\) must be finite and > 0$"),
    ],
)
def test_bad_scale(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_bound_names():
    with pytest.raises(ValueError, match=r"^bound \('cohen'\) must be one of 'renyi', 'teng', 'pixeldp'$"):
        Laplace(1.0).radius(0.9, 0.1, bound="cohen")
    with pytest.raises(ValueError, match=r"^bound \('teng'\) must be one of 'renyi', 'cohen', 'pixeldp'$"):
        Gaussian(1.0).radius(0.9, 0.1, bound="teng")
    with pytest.raises(ValueError, match=r"^bound \('cohen'\) must be one of 'yang'$"):
        Uniform(1.0).radius(0.9, 0.1, bound="cohen")


def test_uniform_renyi_refused():
    with pytest.raises(ValueError, match=r"Renyi divergence between uniform noise and any shifted copy is infinite"):
        Uniform(1.0).radius(0.9, 0.1, bound="renyi")


@pytest.mark.parametrize("noise", [Gaussian(1.0), Laplace(1.0), Uniform(1.0)])
@pytest.mark.parametrize(
    "p1, p2, message",
    [
        (1.2, 0.1, r"^p1 \(1\.2\) must be a probability in \[0, 1\]$"),
        (0.5, -0.1, r"^p2 \(-0\.1\) must be a probability in \[0, 1\]$"),
        (float("nan"), 0.1, r"^p1 \(nan\) must be a probability in \[0, 1\], not NaN$"),
        (0.7, 0.4, r"^p1 \+ p2 \(0\.7 \+ 0\.4 = 1\.1\) must be <= 1$"),
        ([0.9, 0.9], [0.1, 0.2, 0.3], r"must broadcast to a common shape"),
    ],
)
def test_bad_probabilities(noise, p1, p2, message):
    with pytest.raises(ValueError, match=message):
        noise.radius(p1, p2, bound=noise.bounds[0])


@pytest.mark.parametrize(
    "t, order, message",
    [
        (1.0, 0.5, r"^order \(0\.5\) must be a Renyi order >= 1$"),
        (1.0, float("nan"), r"^order \(nan\) must be a Renyi order >= 1$"),
        (float("inf"), 2.0, r"^t \(inf\) must be a finite shift$"),
        ("a", 2.0, r"^t \('a'\) must be a real number, not a string$"),
        ([1.0, 2.0], [2.0, 3.0, 4.0], r"^t \(shape \(2,\)\) and order \(shape \(3,\)\) must broadcast$"),
    ],
)
def test_bad_divergence_arguments(t, order, message):
    with pytest.raises(ValueError, match=message):
        Laplace(1.0).divergence(t, order)
