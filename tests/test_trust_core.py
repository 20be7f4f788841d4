"""Trust in the core (issue 7): the sound-interval policy, finite radii, CallableBackend outputs,
and clean errors for input numpy would silently convert.

Oracles: the policy contract itself (GUARANTEED_METHODS, allow_unguaranteed, guaranteed); the
Clopper-Pearson closed form at k = n, lower = (alpha / 2) ** (1 / n) (Beta(n, 1) quantile); the
argmax definition of a label from scores; and the messages promised by the project rules (name
the value and the constraint). The coverage simulations are in tests/test_soundness.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import renyi_cert as rc
from renyi_cert.backend import CallableBackend, certify, predict
from renyi_cert.certificate import certify_from_counts, certify_from_counts_single, predict_from_counts
from renyi_cert.intervals import GUARANTEED_METHODS, MAX_TRIALS, METHODS, clopper_pearson_interval, top2_confidence

ALL_BOUNDS = ("renyi", "cohen", "pixeldp")
UNGUARANTEED = [m for m in METHODS if m not in GUARANTEED_METHODS]

# --------------------------------------------------------------------------------------------
# The policy


def test_guaranteed_methods_constant_is_exported():
    assert GUARANTEED_METHODS == ("clopper-pearson",)
    assert rc.GUARANTEED_METHODS is GUARANTEED_METHODS
    assert "GUARANTEED_METHODS" in rc.__all__ and "GUARANTEED_METHODS" in rc.intervals.__all__
    assert set(GUARANTEED_METHODS) <= set(METHODS)
    assert UNGUARANTEED == ["sison-glaz", "goodman"]


def _assert_explains(message: str):
    # why (no coverage guarantee), the exact default, and how to opt in (API and command line)
    assert "no coverage guarantee" in message
    assert "'clopper-pearson'" in message
    assert "allow_unguaranteed=True" in message and "--allow-unguaranteed" in message


@pytest.mark.parametrize("method", UNGUARANTEED)
def test_unguaranteed_method_refused_by_default(method):
    with pytest.raises(ValueError, match=rf"method '{method}' has no coverage guarantee: .*asymptotic approximation") as e:
        certify_from_counts([0, 10], [5, 995], 1.0, method=method)
    _assert_explains(str(e.value))
    c = certify_from_counts([0, 10], [5, 995], 1.0, method=method, allow_unguaranteed=True)
    assert c.prediction == 1 and c.guaranteed is False and c.method == method


@pytest.mark.parametrize("method", METHODS)
def test_single_sample_set_refused_by_default_for_every_method(method):
    # the class is selected on the counts that bound it: biased whatever the method
    with pytest.raises(ValueError, match=r"selection bias") as e:
        certify_from_counts_single([5, 995], 1.0, method=method)
    _assert_explains(str(e.value))
    c = certify_from_counts_single([5, 995], 1.0, method=method, allow_unguaranteed=True)
    assert c.prediction == 1 and c.guaranteed is False and c.n0 == 0


def test_guaranteed_field():
    c = certify_from_counts([0, 10], [5, 995], 1.0)
    assert c.guaranteed is True and c.method == "clopper-pearson"
    # allow_unguaranteed=True does not change a guaranteed certificate
    assert certify_from_counts([0, 10], [5, 995], 1.0, allow_unguaranteed=True) == c
    abstain = certify_from_counts([60, 40], [52, 48], 1.0)
    assert abstain.abstained and abstain.guaranteed is True


@pytest.mark.parametrize("bad", ["yes", 1, None])
def test_allow_unguaranteed_must_be_a_bool(bad):
    with pytest.raises(ValueError, match=rf"allow_unguaranteed \({bad!r}\) must be True or False"):
        certify_from_counts([0, 10], [5, 995], 1.0, allow_unguaranteed=bad)


def test_backend_certify_checks_the_policy_before_sampling():
    calls = []

    def fn(z):
        calls.append(len(z))
        return np.ones(len(z), dtype=np.int64)

    be = CallableBackend(fn, 2)
    for method in UNGUARANTEED:
        with pytest.raises(ValueError, match=rf"method '{method}' has no coverage guarantee") as e:
            certify(be, np.zeros(2), 0.5, n0=10, n=100, method=method, generator=np.random.default_rng(0))
        _assert_explains(str(e.value))
    with pytest.raises(ValueError, match=r"allow_unguaranteed \('no'\) must be True or False"):
        certify(be, np.zeros(2), 0.5, n0=10, n=100, allow_unguaranteed="no")
    assert calls == []  # refused before any sampling
    c = certify(be, np.zeros(2), 0.5, n0=10, n=100, method="goodman", allow_unguaranteed=True,
                generator=np.random.default_rng(0))
    assert c.prediction == 1 and c.guaranteed is False
    c = certify(be, np.zeros(2), 0.5, n0=10, n=100, generator=np.random.default_rng(0))
    assert c.guaranteed is True


# --------------------------------------------------------------------------------------------
# The cap: p1_lower <= (alpha / 2) ** (1 / n), never an infinite radius


def test_one_unanimous_sample_no_longer_certifies_an_infinite_radius():
    # The example: Sison-Glaz gives p1_lower = 1 for unanimous counts (kept in top2_confidence,
    # documented there); the certificate caps it at (alpha/2)**(1/n) = 0.0005 for n = 1: abstain.
    assert top2_confidence([1, 0], alpha=0.001, method="sison-glaz").p1_lower == 1.0
    c = certify_from_counts([1, 0], [1, 0], 0.5, method="sison-glaz", bounds=ALL_BOUNDS, allow_unguaranteed=True)
    assert c.p1_lower == pytest.approx(0.0005, rel=1e-12)
    assert c.abstained and c.radii == {"renyi": 0.0, "cohen": 0.0, "pixeldp": 0.0}


@pytest.mark.parametrize("n", [1, 7, 1000, 100_000])
@pytest.mark.parametrize("alpha", [0.001, 0.05])
def test_unanimous_sison_glaz_capped_at_the_clopper_pearson_maximum(n, alpha):
    # Sison-Glaz's raw lower end for unanimous counts is 1 (the half-width c is 0): the cap binds
    # and gives exactly the exact method's largest bound.
    counts = [0, 0, n] + [0] * 7
    raw = top2_confidence(counts, alpha=alpha, method="sison-glaz").p1_lower
    c = certify_from_counts([0, 0, 1] + [0] * 7, counts, 0.25, alpha=alpha, method="sison-glaz", bounds=ALL_BOUNDS,
                            allow_unguaranteed=True)
    cap = (alpha / 2) ** (1 / n)  # one-sided Clopper-Pearson lower bound at k = n, level alpha / 2
    assert raw == 1.0
    assert c.p1_lower == clopper_pearson_interval(n, n, alpha=alpha).lower == pytest.approx(cap, rel=1e-13)
    assert c.guaranteed is False
    assert 0 < c.p2_upper <= 1 - c.p1_lower
    assert all(math.isfinite(r) for r in c.radii.values())
    single = certify_from_counts_single(counts, 0.25, alpha=alpha, method="sison-glaz", bounds=ALL_BOUNDS,
                                        allow_unguaranteed=True)
    assert single.p1_lower == c.p1_lower and single.radii == c.radii


def test_unanimous_counts_at_the_largest_n_give_finite_radii():
    # With n up to MAX_TRIALS = 1e13 the cap (alpha/2)**(1/n) is below 1 in float64, so unanimous
    # counts certify a finite radius (the old code gave inf for n ~ 1e18, where it rounds to 1).
    n = MAX_TRIALS
    c = certify_from_counts([1, 0], [n, 0], 1.0, bounds=ALL_BOUNDS)
    assert c.p1_lower < 1.0 and c.guaranteed
    assert c.p2_upper > 0
    assert c.prediction == 0 and all(math.isfinite(r) and r > 0 for r in c.radii.values())


@pytest.mark.parametrize("n", [10**13 + 1, 10**18, 2**63 - 1])
def test_more_trials_than_clopper_pearson_can_bound_are_refused(n):
    # Beyond 1e13 trials scipy's inverse incomplete beta puts the lower bound too close to k/n
    # (60 % of the gap missing at n = 1e18): refused rather than certified from a bound that is not one.
    with pytest.raises(ValueError, match=r"^n \(\d+\) must be at most 10\*\*13: beyond it the Clopper-Pearson"):
        clopper_pearson_interval(n // 2, n, alpha=0.001)
    with pytest.raises(ValueError, match=r"must be at most 10\*\*13"):
        certify_from_counts([1, 0], [n, 0], 1.0)


@pytest.mark.parametrize("n", [10**6, 10**9, 10**13])
def test_clopper_pearson_gap_matches_the_normal_approximation_at_large_n(n):
    # Oracle: at k = n/2 the one-sided CP bound's distance to 1/2 is z sqrt(1/(4n)) (1 + O(1/sqrt n))
    # (the normal approximation to the binomial; scipy.stats.norm for z).
    from scipy.stats import norm

    lower = clopper_pearson_interval(n // 2, n, alpha=0.002).lower
    gap = norm.isf(0.001) * 0.5 / math.sqrt(n)
    assert (0.5 - lower) / gap == pytest.approx(1.0, rel=1e-3)
    assert 0.5 - lower >= gap * (1 - 1e-6)  # never closer to k/n than the approximation allows


def test_backend_certify_unanimous_classifier_is_finite():
    # a constant classifier: unanimous counts; Sison-Glaz alone would give p1_lower = 1 (infinite radius)
    be = CallableBackend(lambda z: np.zeros(len(z), dtype=np.int64), 3)
    c = certify(be, np.zeros(2), 0.5, n0=5, n=50, alpha=0.01, method="sison-glaz", bounds=ALL_BOUNDS,
                generator=np.random.default_rng(1), allow_unguaranteed=True)
    assert c.prediction == 0 and c.p1_lower == clopper_pearson_interval(50, 50, alpha=0.01).lower
    assert all(math.isfinite(r) and r > 0 for r in c.radii.values())
    assert c.guaranteed is False


# --------------------------------------------------------------------------------------------
# CallableBackend: labels or scores


def _logits(z):
    # three classes, scores linear in the first coordinate
    return np.stack([z[:, 0], -z[:, 0], 0.5 * z[:, 1]], axis=1)


def test_callable_backend_accepts_scores_and_takes_the_argmax():
    x = np.array([0.2, -0.1])
    from_scores = CallableBackend(_logits, 3).sample_counts(x, 0.7, 2500, batch_size=300,
                                                            generator=np.random.default_rng(4))
    from_labels = CallableBackend(lambda z: np.argmax(_logits(z), axis=1), 3).sample_counts(
        x, 0.7, 2500, batch_size=300, generator=np.random.default_rng(4))
    np.testing.assert_array_equal(from_scores, from_labels)
    assert from_scores.sum() == 2500 and (from_scores > 0).all()
    # integer scores (e.g. votes) work too; ties go to the lowest index
    ties = CallableBackend(lambda z: np.ones((len(z), 3), dtype=np.int64), 3)
    np.testing.assert_array_equal(ties.sample_counts(x, 0.7, 10, generator=np.random.default_rng(0)), [10, 0, 0])


@pytest.mark.parametrize("bad, shown", [(np.nan, "nan"), (np.inf, "inf"), (-np.inf, "-inf")])
def test_callable_backend_non_finite_score(bad, shown):
    def fn(z):
        s = _logits(z)
        s[3, 1] = bad
        return s

    be = CallableBackend(fn, 3)
    with pytest.raises(ValueError, match=rf"^the classifier returned a non-finite score \({shown}\) for noisy copy 3 of "
                                         r"the batch; a model with NaN or infinite outputs certifies nothing$"):
        be.sample_counts(np.zeros(2), 0.5, 10, generator=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"non-finite score"):  # through certify and predict as well
        certify(be, np.zeros(2), 0.5, n0=10, n=10)
    with pytest.raises(ValueError, match=r"non-finite score"):
        predict(be, np.zeros(2), 0.5, n=10)


@pytest.mark.parametrize(
    "fn, msg",
    [
        # integral float labels: refused (not rounded), with the way out
        (lambda z: np.ones(len(z)), r"the classifier returned labels of dtype float64; expected integer class labels; "
                                    r"if they are whole numbers, convert them with labels.astype\(np.int64\) \(float "
                                    r"labels are refused rather than rounded\), or return scores of shape \(5, 3\)"),
        (lambda z: np.full((len(z), 3), 1 + 0j), r"the classifier returned scores of dtype complex128; expected "
                                                 r"real-valued scores of shape \(5, 3\) or integer labels of shape \(5,\)"),
        (lambda z: np.full((len(z), 3), True), r"the classifier returned scores of dtype bool"),
        (lambda z: np.zeros((len(z), 4)), r"the classifier returned an output of shape \(5, 4\); expected integer labels "
                                          r"of shape \(5,\) or scores of shape \(5, 3\) for a batch of 5 \(num_classes = 3\)"),
    ],
)
def test_callable_backend_output_errors(fn, msg):
    with pytest.raises(ValueError, match=msg):
        CallableBackend(fn, 3).sample_counts(np.zeros(2), 0.5, 5, generator=np.random.default_rng(0))


# --------------------------------------------------------------------------------------------
# generalized_mean


def test_generalized_mean_empty_and_axis_errors():
    with pytest.raises(ValueError, match=r"x must contain at least one value along axis -1 to average \(got shape \(0,\)\)"):
        rc.generalized_mean([], 1)
    with pytest.raises(ValueError, match=r"x must contain at least one value along axis 1 to average \(got shape \(2, 0\)\)"):
        rc.generalized_mean(np.zeros((2, 0)), 0.5, axis=1)
    with pytest.raises(ValueError, match=r"axis \(5\) is out of range for x of shape \(2,\): it must be in \[-1, 0\]"):
        rc.generalized_mean([0.1, 0.2], 1, axis=5)
    with pytest.raises(ValueError, match=r"axis \(-3\) is out of range for x of shape \(2, 2\): it must be in \[-2, 1\]"):
        rc.generalized_mean([[0.1, 0.2], [0.3, 0.4]], 1, axis=-3)
    with pytest.raises(ValueError, match=r"axis \(1\.0\) must be an integer"):
        rc.generalized_mean([0.1, 0.2], 1, axis=1.0)
    with pytest.raises(ValueError, match=r"axis \(None\) must be an integer"):
        rc.generalized_mean([0.1, 0.2], 1, axis=None)
    # valid axes still work; an empty *other* axis gives an empty result
    np.testing.assert_allclose(rc.generalized_mean([[0.1, 0.2], [0.3, 0.4]], 1.0, axis=-2), [0.2, 0.3])
    assert rc.generalized_mean(np.zeros((0, 3)), 1.0).shape == (0,)


# --------------------------------------------------------------------------------------------
# Input numpy would silently convert: None, strings, complex numbers, masked arrays

RADIUS_FUNCTIONS = [rc.radius, rc.cohen_radius, rc.pixeldp_radius, rc.radius_details, rc.pixeldp_details]


@pytest.mark.parametrize("f", RADIUS_FUNCTIONS)
@pytest.mark.parametrize(
    "args, match",
    [
        ((None, 0.1, 1.0), r"^p1 \(None\) must be a real number$"),
        ((0.9, None, 1.0), r"^p2 \(None\) must be a real number$"),
        ((0.9, 0.1, None), r"^sigma \(None\) must be a real number$"),
        (("0.9", 0.1, 1.0), r"^p1 \('0\.9'\) must be a real number, not a string$"),
        ((0.9, 0.1, "1.0"), r"^sigma \('1\.0'\) must be a real number, not a string$"),
        (([0.9, "0.8"], 0.1, 1.0), r"^p1 \('0\.9'\) at index \(0,\) must be a real number, not a string$"),  # all strings
        ((0.9, [0.1, None], 1.0), r"^p2 \(None\) at index \(1,\) must be a real number$"),
        ((0.9 + 0j, 0.1, 1.0), r"^p1 \(\(0\.9\+0j\)\) must be a real number, not a complex number$"),
        ((np.array([0.9, 0.8], dtype=complex), 0.1, 1.0), r"^p1 \(\(0\.9\+0j\)\) at index \(0,\) must be a real number, not a complex number$"),
        ((0.9, 0.1, np.complex128(1.0)), r"^sigma \(\(1\+0j\)\) must be a real number, not a complex number$"),
        ((np.ma.array([0.9, 0.8], mask=[0, 1]), 0.1, 1.0), r"^p1 is a masked array: masked arrays are not supported; fill or compress them first$"),
        ((0.9, 0.1, np.ma.array([1.0])), r"^sigma is a masked array: masked arrays are not supported"),
    ],
)
def test_probability_and_sigma_refuse_silent_conversions(f, args, match):
    with pytest.raises(ValueError, match=match):
        f(*args)


def test_other_core_functions_refuse_silent_conversions():
    with pytest.raises(ValueError, match=r"^p1 \(None\) must be a real number$"):
        rc.renyi_objective(None, 0.1, 2.0)
    with pytest.raises(ValueError, match=r"^order \('2'\) must be a real number, not a string$"):
        rc.lemma1_bound(0.9, 0.1, "2")
    with pytest.raises(ValueError, match=r"^x is a masked array"):
        rc.generalized_mean(np.ma.array([0.1, 0.2]), 1.0)
    with pytest.raises(ValueError, match=r"^t \('1'\) must be a real number \(inf and -inf allowed\), not a string$"):
        rc.generalized_mean([0.1, 0.2], "1")
    with pytest.raises(ValueError, match=r"^p \('0\.5'\) at index \(0,\) must be a real number, not a string$"):
        rc.renyi_divergence(["0.5", "0.5"], [0.5, 0.5], 2.0)
    with pytest.raises(ValueError, match=r"^order \('2'\) must be a Renyi order in \[0, inf\], not a string$"):
        rc.renyi_divergence([0.5, 0.5], [0.5, 0.5], "2")
    # the significance level of the certificates
    with pytest.raises(ValueError, match=r"^alpha \('0\.01'\) must be a real number in the open interval \(0, 1\), not a string$"):
        certify_from_counts([0, 10], [5, 995], 1.0, alpha="0.01")
    with pytest.raises(ValueError, match=r"^alpha \(\(0\.01\+0j\)\) must be a real number in the open interval \(0, 1\), not a complex number$"):
        predict_from_counts([0, 10], alpha=np.complex128(0.01))


COUNT_CALLS = [
    lambda c: certify_from_counts([0, 1], c, 1.0),
    lambda c: certify_from_counts_single(c, 1.0, allow_unguaranteed=True),
    lambda c: predict_from_counts(c),
    lambda c: top2_confidence(c, alpha=0.05),
    lambda c: rc.goodman(c, alpha=0.05),
]


@pytest.mark.parametrize("call", COUNT_CALLS)
@pytest.mark.parametrize(
    "counts, match",
    [
        # too large for int64: name the value as passed, not a wrapped negative number
        ([2**70, 1], r"counts \(1180591620717411303424\) at index \(0,\) must be a non-negative integer count below "
                     r"2\*\*63 \(the int64 range\)$"),
        ([1, 2**63], r"counts \(9223372036854775808\) at index \(1,\) must be a non-negative integer count below 2\*\*63"),
        ([1e30, 1.0], r"counts \(1e\+30\) at index \(0,\) must be a non-negative integer count below 2\*\*63"),
        (np.array([1, 2**63], dtype=np.uint64), r"counts \(9223372036854775808\) at index \(1,\) must be a non-negative "
                                                r"integer count below 2\*\*63"),
        ([-(2**70), 1], r"counts \(-1180591620717411303424\) at index \(0,\) must be a non-negative integer count$"),
        # each count fits, the total does not
        ([2**62, 2**62], r"counts sum to 9223372036854775808 samples; the number of samples must be below 2\*\*63 "
                         r"\(the int64 range\)$"),
        ([1 + 0j, 2], r"counts \(\(1\+0j\)\) at index \(0,\) must be a non-negative integer count, not a complex number$"),
        (np.array([3, 4], dtype=complex), r"counts \(\(3\+0j\)\) at index \(0,\) must be a non-negative integer count, "
                                          r"not a complex number"),
        (np.ma.array([3, 4], mask=[0, 1]), r"counts is a masked array: masked arrays are not supported; fill or compress "
                                           r"them first$"),
        ([3, None], r"counts \(None\) at index \(1,\) must be a non-negative integer count$"),
        (["3", "4"], r"counts \('3'\) at index \(0,\) must be a non-negative integer count, not a string$"),
    ],
)
def test_count_errors_name_the_value_passed(call, counts, match):
    name_free = match.replace("counts", r"[a-z_]*counts", 1)  # estimation_counts, counts, ...
    with pytest.raises(ValueError, match=name_free):
        call(counts)


def test_object_arrays_of_integers_are_counts():
    # counts checked value by value (as the large-count checks need) are accepted when valid: an
    # object array of Python ints (the old check refused every object array) and totals up to MAX_TRIALS
    ref = top2_confidence([3, 40, 7], alpha=0.05)
    assert top2_confidence(np.array([3, 40, 7], dtype=object), alpha=0.05) == ref
    assert top2_confidence(np.array([3, 40.0, 7], dtype=object), alpha=0.05) == ref
    big = top2_confidence(np.array([4 * 10**12, 4 * 10**12 - 1], dtype=object), alpha=0.05, top=0)
    assert big == top2_confidence([4 * 10**12, 4 * 10**12 - 1], alpha=0.05, top=0) and big.runner_up == 1


def test_clopper_pearson_k_and_n_beyond_int64():
    with pytest.raises(ValueError, match=r"^n \(1180591620717411303424\) must be an integer below 2\*\*63 \(the int64 range\)$"):
        clopper_pearson_interval(1, 2**70, alpha=0.05)
    with pytest.raises(ValueError, match=r"^k \(1e\+20\) at index \(1,\) must be an integer below 2\*\*63"):
        clopper_pearson_interval([1.0, 1e20], 10, alpha=0.05)
    with pytest.raises(ValueError, match=r"^k \(\(1\+0j\)\) must be an integer, not a complex number$"):
        clopper_pearson_interval(1 + 0j, 10, alpha=0.05)


# --------------------------------------------------------------------------------------------
# One sigma validator (renyi_cert._validate.check_scalar_sigma), shared with the backends


@pytest.mark.parametrize(
    "sigma, allow_zero, match",
    [
        (-1.0, False, r"^sigma \(-1\.0\) must be > 0$"),
        (0.0, False, r"^sigma \(0\.0\) must be > 0$"),
        (0, False, r"^sigma \(0\.0\) must be > 0$"),
        (-0.5, True, r"^sigma \(-0\.5\) must be >= 0$"),
        (float("nan"), False, r"^sigma \(nan\) must be finite and > 0$"),
        (float("inf"), True, r"^sigma \(inf\) must be finite and >= 0$"),
        ([0.5, 1.0], False, r"^sigma must be a single number, got an array of shape \(2,\)$"),
        ("0.5", False, r"^sigma \('0\.5'\) must be a real number, not a string$"),
        (None, False, r"^sigma \(None\) must be a real number$"),
    ],
)
def test_check_scalar_sigma_messages(sigma, allow_zero, match):
    from renyi_cert._validate import check_scalar_sigma

    with pytest.raises(ValueError, match=match):
        check_scalar_sigma(sigma, allow_zero=allow_zero)


def test_check_scalar_sigma_values():
    from renyi_cert._validate import check_scalar_sigma

    assert check_scalar_sigma(0.25) == 0.25 and type(check_scalar_sigma(np.float32(0.5))) is float
    assert check_scalar_sigma(np.array(2)) == 2.0 and check_scalar_sigma(0.0, allow_zero=True) == 0.0
    with pytest.raises(ValueError, match=r"^sigma_noise \(-1\.0\) must be > 0$"):
        check_scalar_sigma(-1.0, name="sigma_noise")
    # every entry point with one noise level uses it: same message everywhere
    for call in (lambda s: certify_from_counts([0, 5], [1, 9], s),
                 lambda s: certify_from_counts_single([1, 9], s, allow_unguaranteed=True),
                 lambda s: CallableBackend(lambda b: np.zeros(len(b), np.int64), 2).sample_counts(np.zeros(2), s, 3),
                 lambda s: predict(CallableBackend(lambda b: np.zeros(len(b), np.int64), 2), np.zeros(2), s, n=3)):
        with pytest.raises(ValueError, match=r"^sigma \(-2\.0\) must be > 0$"):
            call(-2.0)
