"""Tests for renyi_cert.noise: the Laplace Renyi radius against an mpmath oracle, properties, errors."""

from __future__ import annotations

import math
from functools import lru_cache

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renyi_cert import bounds
from renyi_cert.noise import NOISES, Gaussian, Laplace, Uniform

# --------------------------------------------------------------------------------------------
# mpmath oracle, 40 digits: literal formulas (no cancellation tricks), its own root finder
# (mpmath.findroot, Anderson on a bracket) and its own maximiser (a scan in log(order - 1) and
# golden-section search to 1e-15 in log(order - 1)), plus the two limits of the order.
# --------------------------------------------------------------------------------------------
DPS = 40
REL = 1e-12  # the accuracy asserted against the oracle


def _mp_h(p1, p2, a):
    """-log(1 - p1 - p2 + 2 M_{1-a}(p1, p2)), literally."""
    t = 1 - a
    m = ((p1**t + p2**t) / 2) ** (1 / t)
    return -mpmath.log(1 - p1 - p2 + 2 * m)


def _mp_div(a, u):
    """Mironov's Laplace Renyi divergence at order a > 1, shift u (scale 1), literally."""
    return mpmath.log(a / (2 * a - 1) * mpmath.exp((a - 1) * u) + (a - 1) / (2 * a - 1) * mpmath.exp(-a * u)) / (a - 1)


def _mp_u(p1, p2, x):
    """The root u of D_a(u) = h(a) at a = 1 + e^x."""
    a = 1 + mpmath.exp(x)
    target = _mp_h(p1, p2, a)
    hi = target + mpmath.log(2) / (a - 1) + 1  # D_a(u) >= u - log(2)/(a - 1)
    return mpmath.findroot(lambda u: _mp_div(a, u) - target, (mpmath.mpf(0), hi), solver="anderson")


@lru_cache(maxsize=None)
def oracle(p1: float, p2: float) -> mpmath.mpf:
    """sup over a > 1 of the certified radius per unit scale, at DPS digits (0 < p2 < p1)."""
    with mpmath.workdps(DPS):
        P1, P2 = mpmath.mpf(p1), mpmath.mpf(p2)
        lim_inf = -mpmath.log(1 - P1 + P2)
        h1 = -mpmath.log(1 - (mpmath.sqrt(P1) - mpmath.sqrt(P2)) ** 2)
        lim_one = mpmath.findroot(lambda u: u + mpmath.exp(-u) - 1 - h1, (mpmath.mpf(0), h1 + 2), solver="anderson")
        xs = [mpmath.mpf(x) / 2 for x in range(-24, 41)]  # log(a - 1) in [-12, 20]
        vals = [_mp_u(P1, P2, x) for x in xs]
        i = max(range(len(vals)), key=lambda j: vals[j])
        lo, hi = xs[max(i - 1, 0)], xs[min(i + 1, len(xs) - 1)]
        g = (mpmath.sqrt(5) - 1) / 2
        c, d = hi - g * (hi - lo), lo + g * (hi - lo)
        fc, fd = _mp_u(P1, P2, c), _mp_u(P1, P2, d)
        while hi - lo > mpmath.mpf("1e-15"):
            if fc >= fd:
                hi, d, fd = d, c, fc
                c = hi - g * (hi - lo)
                fc = _mp_u(P1, P2, c)
            else:
                lo, c, fc = c, d, fd
                d = lo + g * (hi - lo)
                fd = _mp_u(P1, P2, d)
        return max(lim_inf, lim_one, vals[i], fc, fd)


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
    want = float(oracle(p1, p2)) * scale
    assert abs(got - want) <= REL * want


def test_reference_sup_at_infinite_order_for_p2_equal_one_minus_p1():
    assert Laplace(1.0).radius(0.9, 0.1) == pytest.approx(-math.log(0.2), rel=1e-15)


RANDOM_PAIRS = [  # a spread of pairs: near ties, tiny runner-up, p1 near 1, p1 + p2 near 1, small p1
    (0.7, 0.2), (0.55, 0.45), (0.51, 0.49), (0.3, 0.29), (0.999, 1e-4), (0.999999, 1e-7),
    (0.05, 0.01), (0.8, 0.001), (0.4, 0.35), (0.9999, 0.0001),
]


def test_laplace_renyi_matches_oracle_on_a_spread_of_pairs():
    p1 = np.array([p for p, _ in RANDOM_PAIRS])
    p2 = np.array([q for _, q in RANDOM_PAIRS])
    got = Laplace(1.0).radius(p1, p2)
    want = np.array([float(oracle(a, b)) for a, b in RANDOM_PAIRS])
    rel = np.abs(got - want) / want
    assert rel.max() <= REL, (rel.max(), RANDOM_PAIRS[int(rel.argmax())])


def test_laplace_renyi_matches_oracle_on_random_pairs():
    rng = np.random.default_rng(11)
    p1 = rng.uniform(0.05, 1.0, 6)
    p2 = rng.uniform(0.0, 1.0, 6) * np.minimum(p1, 1.0 - p1)
    got = Laplace(1.0).radius(p1, p2)
    want = np.array([float(oracle(float(a), float(b))) for a, b in zip(p1, p2)])
    assert np.all(np.abs(got - want) <= REL * want)


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
