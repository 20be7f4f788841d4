"""The certified radii: reference values, mpmath as oracle, properties, validation.

Oracle: renyi_cert.reference.radius_mp (mpmath, 50 significant digits plus the extra working
precision that near ties need; golden-section search on log(order - 1)).
"""

import math

import mpmath as mp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import renyi_cert as rc
from renyi_cert.reference import cohen_radius_mp, radius_mp

# ---------------------------------------------------------------------------------------------
# Reference values (docs/numerics.md, section 7): mpmath, re-derived here by radius_mp at 50 digits.
# ---------------------------------------------------------------------------------------------
REFERENCE = [
    ((0.9, 0.1), 1.0319295637),
    ((0.99, 0.01), 1.9080090469),
    ((0.6, 0.4), 0.2022162917),
    ((0.9, 0.0), 2.1459660263),  # sqrt(-2 log 0.1)
]


@pytest.mark.parametrize("pair, expected", REFERENCE)
def test_reference_values(pair, expected):
    assert rc.radius(*pair, 1.0) == pytest.approx(expected, abs=1e-10)
    assert float(radius_mp(*pair)[0]) == pytest.approx(expected, abs=1e-10)


def test_p2_zero_closed_form_and_infinity():
    assert rc.radius(0.9, 0.0, 2.0) == pytest.approx(2.0 * math.sqrt(-2 * math.log(0.1)), rel=1e-15)
    assert rc.radius(1.0, 0.0, 0.5) == math.inf
    res = rc.radius_details(0.9, 0.0, 1.0)
    assert res.order == 1.0


def test_no_certificate_when_p1_le_p2():
    # The formula is symmetric: the official code "certifies" (0.3, 0.6). We must not.
    assert rc.radius(0.3, 0.6, 1.0) == 0.0
    assert rc.radius(0.4, 0.4, 1.0) == 0.0
    assert rc.radius(0.0, 0.0, 1.0) == 0.0
    assert math.isnan(rc.radius_details(0.3, 0.6, 1.0).order)
    for f in (rc.cohen_radius, rc.pixeldp_radius):
        assert f(0.3, 0.6, 1.0) == 0.0
        assert f(0.4, 0.4, 1.0) == 0.0


def test_scalar_and_array_types():
    assert isinstance(rc.radius(0.9, 0.1, 1.0), float)
    out = rc.radius(np.array([[0.7], [0.6]]), np.array([0.1, 0.2, 0.3]), np.array([1.0, 2.0, 3.0]))
    assert out.shape == (2, 3)
    assert out[0, 1] == pytest.approx(2.0 * rc.radius(0.7, 0.2, 1.0), rel=1e-15)
    for f in (rc.cohen_radius, rc.pixeldp_radius):
        assert isinstance(f(0.9, 0.1, 1.0), float)
        assert f([0.9, 0.8], [0.1, 0.1], 1.0).shape == (2,)


# ---------------------------------------------------------------------------------------------
# mpmath oracle: random, near-tie and extreme points. Target: relative error <= 1e-11.
# ---------------------------------------------------------------------------------------------
def _oracle_points(seed=0, n_random=40):
    rng = np.random.default_rng(seed)
    pts = []
    total = rng.uniform(0.0, 1.0, n_random)
    gap = rng.uniform(0.0, 1.0, n_random)
    for s, d in zip(total, gap):
        pts.append((s * (1 + d) / 2, s * (1 - d) / 2))
    for p2 in (0.5 - 1e-9, 0.3, 0.1, 1e-3):  # near ties, p1 - p2 down to 1e-9
        for gap in (1e-9, 1e-7, 2e-4, 1e-2):
            if p2 + gap + p2 <= 1:
                pts.append((p2 + gap, p2))
    pts += [
        (1 - 1e-12, 1e-13),  # 1 - p1 = 1e-12
        (1 - 1e-12, 0.0 + 5e-13),
        (0.999999, 1e-300),
        (1e-10, 1e-11),
        (0.05, 0.01),
        (0.5, 0.5 - 1e-9),
        (0.6, 0.4),
    ]
    return pts


def test_radius_matches_mpmath_oracle():
    pts = _oracle_points()
    p1 = np.array([p[0] for p in pts])
    p2 = np.array([p[1] for p in pts])
    ours = rc.radius(p1, p2, 1.0)
    assert not np.isnan(ours).any()
    worst = 0.0
    for (a, b), r in zip(pts, ours):
        ref = radius_mp(a, b, 1.0, dps=50)[0]
        rel = abs(mp.mpf(r) - ref) / ref
        worst = max(worst, float(rel))
    assert worst <= 1e-11, worst


def test_maximising_order_matches_oracle_away_from_ties():
    for a, b in [(0.9, 0.1), (0.99, 0.01), (0.6, 0.4), (1 - 1e-12, 1e-13), (0.7, 0.29)]:
        ours = rc.radius_details(a, b, 1.0).order
        ref = float(radius_mp(a, b)[1])
        assert ours == pytest.approx(ref, rel=1e-6)


@pytest.mark.parametrize(
    "pair",
    [(0.9, 0.1), (0.05, 0.01), (0.3 + 1e-9, 0.3), (1 - 1e-10, 1e-11), (1e-6, 1e-8), (0.6, 0.4)],
)
def test_cohen_matches_mpmath(pair):
    # mpmath at 50 digits; the near-tie branch (central difference) and the tails included
    ref = cohen_radius_mp(*pair, sigma=1.0)
    assert rc.cohen_radius(*pair, 1.0) == pytest.approx(float(ref), rel=1e-11)


def test_pixeldp_reference_values():
    # mpmath (docs/numerics.md, section 6): (0.9, 0.1), sigma = 1 -> 0.39027; (0.05, 0.01) -> 0.2061
    assert rc.pixeldp_radius(0.9, 0.1, 1.0) == pytest.approx(0.39027, abs=5e-6)
    assert rc.pixeldp_radius(0.05, 0.01, 1.0) == pytest.approx(0.2061, abs=5e-5)


def _pixeldp_brute(p1, p2, n=200001):
    eps = np.linspace(1e-9, 1.0, n)
    delta = (p1 - np.exp(2 * eps) * p2) / (1 + np.exp(eps))
    ok = delta > 0
    return np.max(eps[ok] / np.sqrt(2 * np.log(1.25 / delta[ok])))


@pytest.mark.parametrize("pair", [(0.9, 0.1), (0.05, 0.01), (0.6, 0.4), (0.99, 0.0), (0.51, 0.49), (0.3, 0.01)])
def test_pixeldp_is_the_exact_maximum(pair):
    exact = rc.pixeldp_details(*pair, 1.0)
    brute = _pixeldp_brute(*pair)
    assert exact.radius >= brute * (1 - 1e-12)  # never below a dense grid
    assert exact.radius == pytest.approx(brute, rel=1e-7)
    assert 0 < exact.epsilon <= 1.0
    # the optimum is feasible: p1 >= e^{2 eps} p2 + (1 + e^eps) delta
    lhs = np.exp(2 * exact.epsilon) * pair[1] + (1 + np.exp(exact.epsilon)) * exact.delta
    assert lhs <= pair[0] * (1 + 1e-12)
    assert exact.radius == pytest.approx(exact.epsilon / math.sqrt(2 * math.log(1.25 / exact.delta)), rel=1e-12)


# ---------------------------------------------------------------------------------------------
# Properties (hypothesis).
# ---------------------------------------------------------------------------------------------
prob = st.floats(0.0, 1.0, allow_nan=False)


@st.composite
def valid_pairs(draw, min_total=0.0):
    total = draw(st.floats(min_total, 1.0))
    frac = draw(st.floats(0.5, 1.0))
    p1 = total * frac
    p2 = total - p1
    assume(p1 + p2 <= 1.0 and p2 >= 0.0)
    return p1, p2


@settings(max_examples=300, deadline=None)
@given(valid_pairs(), st.floats(0.0, 1.0))
def test_monotone_in_p1_and_p2(pair, t):
    p1, p2 = pair
    r = rc.radius(p1, p2, 1.0)
    assert not math.isnan(r)
    # raise p1 within the simplex: radius does not decrease
    p1_up = p1 + t * (1.0 - p1 - p2)
    assert rc.radius(p1_up, p2, 1.0) >= r * (1 - 1e-13)
    # lower p2: radius does not decrease
    assert rc.radius(p1, p2 * t, 1.0) >= r * (1 - 1e-13)


@settings(max_examples=200, deadline=None)
@given(valid_pairs(), st.floats(1e-3, 1e3))
def test_linear_in_sigma(pair, sigma):
    p1, p2 = pair
    assert rc.radius(p1, p2, sigma) == pytest.approx(sigma * rc.radius(p1, p2, 1.0), rel=1e-14)


@settings(max_examples=300, deadline=None)
@given(prob, prob)
def test_zero_when_p1_le_p2(a, b):
    p1, p2 = min(a, b), max(a, b)
    assume(p1 + p2 <= 1.0)
    assert rc.radius(p1, p2, 1.0) == 0.0


@settings(max_examples=400, deadline=None)
@given(valid_pairs())
def test_renyi_below_cohen_everywhere(pair):
    # Cohen et al.'s bound is tight for Gaussian noise: a larger Renyi radius would be a bug.
    p1, p2 = pair
    assume(p1 > p2)
    assert rc.radius(p1, p2, 1.0) <= rc.cohen_radius(p1, p2, 1.0) * (1 + 1e-12)


@settings(max_examples=400, deadline=None)
@given(valid_pairs(min_total=0.2))
def test_renyi_above_pixeldp_on_paper_domain(pair):
    # The paper's Figure 4 claim, on its domain p1 + p2 >= 0.2.
    p1, p2 = pair
    assume(p1 > p2)
    assert rc.radius(p1, p2, 1.0) >= rc.pixeldp_radius(p1, p2, 1.0)


def test_pixeldp_can_beat_renyi_at_small_total():
    # Outside the paper's domain (p1 + p2 < ~0.11, many classes) PixelDP can be larger:
    # (0.05, 0.01): Renyi 0.1755, PixelDP 0.2061 (mpmath; docs/numerics.md, section 6).
    assert rc.radius(0.05, 0.01, 1.0) == pytest.approx(0.1755, abs=1e-4)
    assert rc.pixeldp_radius(0.05, 0.01, 1.0) > rc.radius(0.05, 0.01, 1.0)


@settings(max_examples=150, deadline=None)
@given(valid_pairs())
def test_g_is_unimodal_and_sup_dominates_every_order(pair):
    p1, p2 = pair
    assume(p1 > p2 and p2 > 0)
    orders = np.concatenate([[1.0], 1.0 + np.geomspace(1e-6, 100.0, 400)])
    g = rc.renyi_objective(p1, p2, orders)
    assert np.all(g >= 0)
    best = rc.radius(p1, p2, 1.0) ** 2 / 2
    # absolute floor 1e-300: for subnormal g, sqrt then square loses the relative precision
    # (e.g. p = (4.875749939256344e-291, 4.875749939256341e-291): best 4.15e-322, g 4.2e-322)
    assert best >= g.max() * (1 - 1e-13) - 1e-300
    # unimodal: once g has decreased (beyond rounding), it never increases again
    diffs = np.diff(g)
    tol = 1e-13 * g.max() + 1e-300  # absolute floor: g can be subnormal for p ~ 1e-313
    falling = np.flatnonzero(diffs < -tol)
    if falling.size:
        assert np.all(diffs[falling[0]:] <= tol)


def test_exact_supremum_beats_official_grid_outside_its_range():
    # The official code maximises over 100 orders in [1.01, 2]; the exact supremum is never
    # below that, and strictly above wherever the maximising order lies outside the grid (here
    # it tends to 1).
    grid = np.linspace(1.01, 2.0, 100)
    for p1, p2 in [(0.9, 0.1), (0.05, 0.01), (0.3, 0.1), (0.6, 0.4), (0.999, 1e-6)]:
        exact = rc.radius_details(p1, p2, 1.0)
        grid_r = np.sqrt(2 * rc.renyi_objective(p1, p2, grid).max())
        assert exact.radius >= grid_r
        if exact.order < 1.01:
            assert exact.radius > grid_r * (1 + 1e-6)


def test_never_nan_on_extreme_valid_input():
    tiny = np.nextafter(0, 1)
    p1 = np.array([1.0, 1 - 1e-16, 0.5, 0.5, tiny * 4, 1e-300, 0.5 + 2**-53, 1.0 - 2**-53])
    p2 = np.array([0.0, 1e-17, 0.5 - 2**-54, tiny, tiny, 1e-301, 0.5 - 2**-53, 2**-53])
    for f in (rc.radius, rc.cohen_radius, rc.pixeldp_radius):
        out = f(p1, p2, 1.0)
        assert not np.isnan(out).any(), (f.__name__, out)


def test_tolerates_rounding_in_the_sum():
    p1, p2 = 0.7, 0.3 + 1e-13  # p1 + p2 = 1 + 1e-13: rounding, accepted
    assert rc.radius(p1, p2, 1.0) == pytest.approx(rc.radius(0.7, 0.3, 1.0), rel=1e-9)


# ---------------------------------------------------------------------------------------------
# Errors a user can trigger: every message names the value and the constraint.
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("f", [rc.radius, rc.cohen_radius, rc.pixeldp_radius, rc.radius_details, rc.pixeldp_details])
@pytest.mark.parametrize(
    "args, match",
    [
        ((float("nan"), 0.1, 1.0), r"p1 \(nan\) must be a probability in \[0, 1\], not NaN"),
        ((0.9, float("nan"), 1.0), r"p2 \(nan\) must be a probability in \[0, 1\], not NaN"),
        ((1.2, 0.0, 1.0), r"p1 \(1.2\) must be a probability in \[0, 1\]"),
        ((0.5, -0.1, 1.0), r"p2 \(-0.1\) must be a probability in \[0, 1\]"),
        ((0.9, 0.2, 1.0), r"p1 \+ p2 \(0.9 \+ 0.2 = 1.1\) must be <= 1"),
        ((0.9, 0.1, -1.0), r"sigma \(-1.0\) must be > 0"),
        ((0.9, 0.1, 0.0), r"sigma \(0.0\) must be > 0"),
        ((0.9, 0.1, float("inf")), r"sigma \(inf\) must be finite and > 0"),
        ((0.9, 0.1, float("nan")), r"sigma \(nan\) must be finite and > 0"),
        (("a", 0.1, 1.0), r"p1 \('a'\) must be a real number"),
        (([0.9, 0.8], [0.1, 0.1, 0.1], 1.0), r"must broadcast to a common shape"),
        (([0.9, 0.8], [0.1, 0.1], [1.0, 1.0, 1.0]), r"sigma \(shape \(3,\)\) must broadcast"),
        (([0.9, np.nan], 0.1, 1.0), r"p1 \(nan\) at index \(1,\)"),
    ],
)
def test_validation_errors(f, args, match):
    with pytest.raises(ValueError, match=match):
        f(*args)


def test_objective_errors():
    with pytest.raises(ValueError, match=r"order \(0.5\) must be a Renyi order >= 1"):
        rc.renyi_objective(0.9, 0.1, 0.5)
    with pytest.raises(ValueError, match=r"order \(nan\) must be a Renyi order >= 1"):
        rc.renyi_objective(0.9, 0.1, float("nan"))
    with pytest.raises(ValueError, match=r"order \(shape \(3,\)\) must broadcast"):
        rc.renyi_objective([0.9, 0.8], 0.1, [1.0, 2.0, 3.0])
    assert rc.renyi_objective(0.9, 0.1, np.inf) == 0.0


def test_kernels_cached_on_disk():
    # numba writes its cache next to the module: a second process loads instead of compiling.
    import subprocess
    import sys

    from renyi_cert import _kernels

    _kernels.warm_up()  # compiles (or loads) and writes the cache in this process
    code = (
        "from renyi_cert import _kernels as k; k.warm_up(); "
        "print(len(k._renyi_sup_parallel.stats.cache_hits), "
        "len(k._renyi_sup_parallel.stats.cache_misses))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    hits, misses = int(out[0]), int(out[1])
    assert hits >= 1 and misses == 0


def test_kernel_pair_terms_are_named():
    # The kernels pass the per-pair quantities as a NamedTuple (compiled as a plain tuple by numba).
    from renyi_cert import _kernels

    p1, p2 = 0.9, 0.1
    t = _kernels.pair_terms(p1, p2)
    assert isinstance(t, _kernels.PairTerms)
    assert t.w == pytest.approx(0.5 * math.log(p1 / p2), rel=1e-15)
    assert t.geo_mean == pytest.approx(math.sqrt(p1 * p2), rel=1e-15)
    assert t.rest == pytest.approx(0.0, abs=1e-16) and t.total == pytest.approx(1.0, rel=1e-15)
    assert t.log_cosh_w == pytest.approx(math.log(math.cosh(t.w)), rel=1e-15)
    # lemma1_at(0) is the order -> 1 limit -log(1 - (sqrt(p1) - sqrt(p2))^2)
    assert _kernels.lemma1_at(0.0, t) == pytest.approx(-math.log(1 - (math.sqrt(p1) - math.sqrt(p2)) ** 2), rel=1e-14)
    assert _kernels.renyi_sup(p1, p2)[0] == pytest.approx(rc.radius(p1, p2, 1.0) ** 2 / 2, rel=1e-14)
