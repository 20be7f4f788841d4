"""Tests for renyi_cert.certificate and renyi_cert.backend (certify / predict from counts and backends)."""

from __future__ import annotations

import dataclasses

import mpmath as mp
import numpy as np
import pytest
from scipy.stats import binomtest, norm
from statsmodels.stats.proportion import proportion_confint

from renyi_cert.backend import Backend, CallableBackend, certify, predict
from renyi_cert.bounds import BOUNDS
from renyi_cert.certificate import (
    Certificate,
    Prediction,
    certify_from_counts,
    certify_from_counts_single,
    predict_from_counts,
)
from renyi_cert.intervals import GUARANTEED_METHODS, METHODS, top2_confidence

ALL_BOUNDS = ("renyi", "cohen", "pixeldp")

# --------------------------------------------------------------------------------------------
# certify_from_counts


@pytest.mark.parametrize("method", METHODS)
def test_certify_uses_selection_class_and_top2_confidence(method):
    selection = [3, 90, 7]
    estimation = [40, 930, 30]
    c = certify_from_counts(selection, estimation, 0.5, alpha=0.01, method=method, bounds=ALL_BOUNDS,
                            allow_unguaranteed=method not in GUARANTEED_METHODS)
    t = top2_confidence(estimation, alpha=0.01, method=method, top=1)
    assert c.prediction == 1 and not c.abstained
    assert (c.p1_lower, c.p2_upper) == (t.p1_lower, t.p2_upper)
    assert list(c.radii) == list(ALL_BOUNDS)
    for name in ALL_BOUNDS:
        assert c.radii[name] == BOUNDS[name](t.p1_lower, t.p2_upper, 0.5)
        assert isinstance(c.radii[name], float) and c.radii[name] > 0
    assert (c.sigma, c.alpha, c.method, c.n0, c.n) == (0.5, 0.01, method, 100, 1000)
    assert c.guaranteed == (method == "clopper-pearson")
    # the ordering of the bounds (design notes: PixelDP < Renyi < Cohen on p1 + p2 >= 0.2)
    assert c.radii["pixeldp"] < c.radii["renyi"] < c.radii["cohen"]


def test_certify_abstains_when_confidence_bounds_overlap():
    c = certify_from_counts([60, 40], [52, 48], 1.0, bounds=ALL_BOUNDS)
    assert c.p1_lower <= c.p2_upper
    assert c.prediction == -1 and c.abstained
    assert c.radii == {"renyi": 0.0, "cohen": 0.0, "pixeldp": 0.0}
    assert c.radius() == 0.0 and c.radius("cohen") == 0.0


def test_certify_selection_disagreeing_with_estimation_abstains():
    # the selection samples pick class 0; the estimation samples say class 1 dominates: the bound
    # is computed for class 0 (never re-selected on the estimation data), so no certificate.
    c = certify_from_counts([80, 20], [100, 900], 1.0)
    assert c.abstained
    assert c.p1_lower == top2_confidence([100, 900], alpha=0.001, top=0).p1_lower
    assert c.p1_lower < 0.1


def test_certify_selection_ties_go_to_lowest_index():
    c = certify_from_counts([0, 50, 50], [0, 10, 990], 1.0)
    assert c.abstained  # class 1 selected (tie -> lowest index), its estimated share is tiny
    c = certify_from_counts([0, 50, 49], [0, 990, 10], 1.0)
    assert c.prediction == 1


@pytest.mark.parametrize("n", [100, 10_000, 100_000])
@pytest.mark.parametrize("alpha", [0.001, 0.05])
def test_certify_all_samples_in_one_class_closed_form(n, alpha):
    # All n estimation samples in class A: Clopper-Pearson gives p1_lower = (alpha/2)^(1/n) and the
    # runner-up's bound 1 - (alpha/2)^(1/n) = 1 - p1_lower, so the Cohen radius is
    # sigma/2 (Phi^-1(p) - Phi^-1(1 - p)) = sigma Phi^-1(p): the most any n can certify.
    sigma = 0.25
    c = certify_from_counts([0, 0, 100], [0, 0, n], sigma, alpha=alpha, bounds=ALL_BOUNDS)
    p = (alpha / 2) ** (1 / n)
    assert c.prediction == 2
    assert c.p1_lower == pytest.approx(p, rel=1e-13)
    assert c.p2_upper == pytest.approx(1 - p, rel=1e-9)
    with mp.workdps(30):
        pm = mp.power(mp.mpf(alpha) / 2, mp.mpf(1) / n)
        cohen_ref = sigma * mp.sqrt(2) * mp.erfinv(2 * pm - 1)
    assert c.radii["cohen"] == pytest.approx(float(cohen_ref), rel=1e-8)
    assert c.radii["renyi"] == BOUNDS["renyi"](c.p1_lower, c.p2_upper, sigma)
    assert c.radii["pixeldp"] < c.radii["renyi"] < c.radii["cohen"]


@pytest.mark.parametrize("counts", [[9900, 80, 20], [700, 250, 50], [99_990, 10], [5_000, 4_000, 1_000]])
@pytest.mark.parametrize("alpha", [0.001, 0.01])
def test_cohen_radius_versus_cohen_et_al_certify(counts, alpha):
    # Cohen et al.'s CERTIFY: pA = lowerConfBound(nA, n, a) = proportion_confint(nA, n, alpha=2a,
    # method="beta")[0] and radius sigma * Phi^-1(pA). Ours at alpha uses the one-sided bound at
    # alpha/2 for pA and a runner-up bound <= 1 - pA, so it is >= theirs at a = alpha/2 (equal up
    # to rounding when the runner-up bound is the clip 1 - pA).
    sigma = 0.5
    selection = [1] + [0] * (len(counts) - 1)
    c = certify_from_counts(selection, counts, sigma, alpha=alpha, bounds=("cohen",))
    n = sum(counts)
    pa = proportion_confint(counts[0], n, alpha=2 * (alpha / 2), method="beta")[0]
    theirs = sigma * norm.ppf(pa)
    assert c.p1_lower == pytest.approx(pa, rel=1e-10)
    assert c.radius() >= theirs * (1 - 1e-12)
    if len(counts) == 2:  # two classes: the runner-up bound equals 1 - pA (Clopper-Pearson symmetry)
        assert c.radius() == pytest.approx(theirs, rel=1e-9)


def test_certify_single_sample_set():
    counts = [12, 950, 38]
    c = certify_from_counts_single(counts, 0.5, alpha=0.01, method="sison-glaz", bounds=("renyi", "cohen"),
                                   allow_unguaranteed=True)
    ref = certify_from_counts(counts, counts, 0.5, alpha=0.01, method="sison-glaz", bounds=("renyi", "cohen"),
                              allow_unguaranteed=True)
    assert c.n0 == 0 and c.n == 1000
    assert dataclasses.replace(c, n0=ref.n0) == ref
    assert not c.guaranteed and not ref.guaranteed
    assert certify_from_counts_single([50, 50], 1.0, allow_unguaranteed=True).abstained
    # default arguments: alpha 0.001, Clopper-Pearson, Renyi only -- still no guarantee (selection bias)
    d = certify_from_counts_single(counts, 0.5, allow_unguaranteed=True)
    assert (d.alpha, d.method, list(d.radii), d.guaranteed) == (0.001, "clopper-pearson", ["renyi"], False)
    assert d == dataclasses.replace(certify_from_counts(counts, counts, 0.5), n0=0, guaranteed=False)


def test_bounds_argument_forms():
    c = certify_from_counts([0, 10], [5, 995], 1.0, bounds="cohen")
    assert list(c.radii) == ["cohen"]
    c = certify_from_counts([0, 10], [5, 995], 1.0, bounds=["pixeldp", "renyi", "pixeldp"])
    assert list(c.radii) == ["pixeldp", "renyi"]
    assert c.radius() == c.radii["pixeldp"]  # default: the first bound requested
    assert c.radius("renyi") == c.radii["renyi"]


def test_certificate_object():
    c = certify_from_counts([0, 10], [5, 995], 1.0)
    assert isinstance(c, Certificate)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.prediction = 0  # type: ignore[misc]
    with pytest.raises(ValueError, match=r"bound \('cohen'\) must be one of the bounds computed for this certificate: 'renyi'"):
        c.radius("cohen")
    empty = dataclasses.replace(c, radii={})
    with pytest.raises(ValueError, match="this certificate has no radii"):
        empty.radius()


def test_certificate_radii_are_read_only():
    import copy
    import json
    import pickle

    c = certify_from_counts([0, 10], [5, 995], 1.0, bounds=("renyi", "cohen"))
    with pytest.raises(TypeError):
        c.radii["renyi"] = 10.0  # type: ignore[index]
    with pytest.raises(TypeError):
        del c.radii["renyi"]  # type: ignore[attr-defined]
    # compares equal to a dict with the same items, keeps the order requested, and dict() gives a plain copy
    plain = dict(c.radii)
    assert c.radii == plain and list(c.radii) == ["renyi", "cohen"]
    assert json.loads(json.dumps(plain)) == plain
    assert "'renyi': " in repr(c)
    # a certificate built from a dict keeps its own copy
    radii = {"renyi": 1.0}
    d = dataclasses.replace(c, radii=radii)
    radii["renyi"] = 2.0
    assert d.radii == {"renyi": 1.0} and d != c
    # pickling, copying and dataclasses.asdict work as for a dict
    assert dataclasses.asdict(c)["radii"] == plain
    for other in (pickle.loads(pickle.dumps(c)), copy.deepcopy(c), copy.copy(c)):
        assert other == c and other.radii == c.radii
        with pytest.raises(TypeError):
            other.radii["renyi"] = 0.0  # type: ignore[index]


# --------------------------------------------------------------------------------------------
# predict_from_counts


@pytest.mark.parametrize("counts", [[60, 40, 0], [10, 90, 0], [0, 0, 1], [500, 480, 20], [7, 7, 1], [0, 3, 3]])
@pytest.mark.parametrize("alpha", [0.001, 0.05])
def test_predict_matches_binomtest(counts, alpha):
    # Cohen et al.'s PREDICT: two-sided binomial test of nA out of nA + nB at p = 1/2.
    p = predict_from_counts(counts, alpha=alpha)
    arr = np.array(counts)
    top = int(np.argmax(arr))
    nb = int(np.sort(arr)[-2])
    pv = binomtest(int(arr[top]), int(arr[top]) + nb, 0.5).pvalue
    assert isinstance(p, Prediction)
    assert (p.counts_top, p.counts_runner_up) == (int(arr[top]), nb)
    assert p.pvalue == pv
    assert p.prediction == (top if pv <= alpha else -1)
    assert p.abstained == (pv > alpha)


def test_predict_reference_values():
    # binomtest(90, 100, 0.5).pvalue = 2 * P(Bin(100, 1/2) >= 90) = 3.0632901754379845e-17 (scipy)
    p = predict_from_counts([10, 90, 0], alpha=0.01)
    assert p.prediction == 1 and p.pvalue == pytest.approx(3.0632901754379845e-17, rel=1e-12)
    # 60 vs 40: p = 0.0568879 > 0.05 -> abstain; > 0.001 -> abstain
    assert predict_from_counts([40, 60, 0], alpha=0.05).prediction == -1
    assert predict_from_counts([40, 60, 0], alpha=0.06).prediction == 1
    assert predict_from_counts([5, 5], alpha=0.5).prediction == -1  # a tie never predicts (p-value 1)


# --------------------------------------------------------------------------------------------
# backend: CallableBackend, certify, predict


def _linear(z):
    return (z @ np.array([1.0, -2.0, 0.5]) + 0.2 > 0).astype(np.int64)


def test_callable_backend_counts_and_reproducibility():
    be = CallableBackend(_linear, 2)
    assert isinstance(be, Backend)
    x = np.array([0.3, -0.1, 0.4])
    a = be.sample_counts(x, 0.5, 1234, batch_size=100, generator=np.random.default_rng(7))
    b = be.sample_counts(x, 0.5, 1234, batch_size=100, generator=np.random.default_rng(7))
    assert a.dtype == np.int64 and a.shape == (2,) and a.sum() == 1234
    np.testing.assert_array_equal(a, b)
    # the same stream split into other batch sizes gives the same noise, hence the same counts
    c = be.sample_counts(x, 0.5, 1234, batch_size=1234, generator=np.random.default_rng(7))
    np.testing.assert_array_equal(a, c)
    # float32 input is noised in float32
    seen = []
    CallableBackend(lambda z: seen.append(z.dtype) or np.zeros(len(z), np.int64), 2).sample_counts(
        x.astype(np.float32), 0.5, 3, generator=np.random.default_rng(0))
    assert seen == [np.float32]


def test_callable_backend_memory_bounded_by_batch_size():
    sizes = []

    def fn(z):
        sizes.append(z.shape[0])
        return np.zeros(z.shape[0], dtype=np.int64)

    counts = CallableBackend(fn, 3).sample_counts(np.zeros((2, 2)), 1.0, 2500, batch_size=1000,
                                                  generator=np.random.default_rng(0))
    assert sizes == [1000, 1000, 500]
    np.testing.assert_array_equal(counts, [2500, 0, 0])


def test_certify_and_predict_with_backend():
    be = CallableBackend(_linear, 2)
    x = np.array([0.3, -0.1, 0.4])
    c1 = certify(be, x, 0.5, n0=100, n=2000, bounds=ALL_BOUNDS, generator=np.random.default_rng(1))
    c2 = certify(be, x, 0.5, n0=100, n=2000, bounds=ALL_BOUNDS, generator=np.random.default_rng(1))
    assert c1 == c2 and c1.prediction == 1 and (c1.n0, c1.n) == (100, 2000)
    # the two draws are consecutive on one generator: reproduce them by hand
    g = np.random.default_rng(1)
    sel = be.sample_counts(x, 0.5, 100, batch_size=1000, generator=g)
    est = be.sample_counts(x, 0.5, 2000, batch_size=1000, generator=g)
    assert c1 == certify_from_counts(sel, est, 0.5, alpha=0.001, bounds=ALL_BOUNDS)
    p = predict(be, x, 0.5, n=500, alpha=0.01, generator=np.random.default_rng(2))
    est = be.sample_counts(x, 0.5, 500, batch_size=1000, generator=np.random.default_rng(2))
    assert p == predict_from_counts(est, alpha=0.01)


# --------------------------------------------------------------------------------------------
# Errors


def test_certify_from_counts_errors():
    with pytest.raises(ValueError, match=r"selection_counts \(-2\) at index \(0,\) must be a non-negative integer count"):
        certify_from_counts([-2, 5], [1, 5], 1.0)
    with pytest.raises(ValueError, match=r"estimation_counts \(2\.5\) at index \(1,\) must be a non-negative integer count"):
        certify_from_counts([2, 5], [1, 2.5], 1.0)
    with pytest.raises(ValueError, match=r"estimation_counts \(nan\) at index \(0,\) must be a non-negative integer count"):
        certify_from_counts([2, 5], [float("nan"), 2], 1.0)
    with pytest.raises(ValueError, match=r"estimation_counts must be a 1-D array of class counts, got shape \(1, 2\)"):
        certify_from_counts([2, 5], [[1, 2]], 1.0)
    with pytest.raises(ValueError, match=r"selection_counts \(3 classes\) and estimation_counts \(2 classes\) must have the same number"):
        certify_from_counts([2, 5, 1], [1, 2], 1.0)
    with pytest.raises(ValueError, match=r"selection_counts must contain at least one sample \(all counts are 0\)"):
        certify_from_counts([0, 0], [1, 2], 1.0)
    with pytest.raises(ValueError, match=r"sigma \(-1\.0\) must be > 0"):
        certify_from_counts([2, 5], [1, 2], -1.0)
    with pytest.raises(ValueError, match=r"sigma \(nan\) must be finite and > 0"):
        certify_from_counts([2, 5], [1, 2], float("nan"))
    with pytest.raises(ValueError, match=r"sigma must be a single number, got an array of shape \(2,\)"):
        certify_from_counts([2, 5], [1, 2], [0.5, 1.0])
    with pytest.raises(ValueError, match=r"alpha \(1\.0\) must be in the open interval \(0, 1\)"):
        certify_from_counts([2, 5], [1, 2], 1.0, alpha=1.0)
    with pytest.raises(ValueError, match=r"alpha \(0\.0\) must be in the open interval \(0, 1\)"):
        certify_from_counts([2, 5], [1, 2], 1.0, alpha=0)
    with pytest.raises(ValueError, match=r"method \('exact'\) must be one of 'clopper-pearson', 'sison-glaz', 'goodman'"):
        certify_from_counts([2, 5], [1, 2], 1.0, method="exact")
    with pytest.raises(ValueError, match=r"bound \('lp'\) must be one of 'renyi', 'cohen', 'pixeldp'"):
        certify_from_counts([2, 5], [1, 2], 1.0, bounds=("renyi", "lp"))
    with pytest.raises(ValueError, match=r"bounds must name at least one bound from 'renyi', 'cohen', 'pixeldp'"):
        certify_from_counts([2, 5], [1, 2], 1.0, bounds=())
    with pytest.raises(ValueError, match=r"bounds \(3\) must be a sequence of bound names"):
        certify_from_counts([2, 5], [1, 2], 1.0, bounds=3)


def test_single_and_predict_errors():
    with pytest.raises(ValueError, match=r"counts \(-1\) at index \(1,\) must be a non-negative integer count"):
        certify_from_counts_single([3, -1], 1.0)
    with pytest.raises(ValueError, match=r"counts must have at least 2 classes, got 1"):
        certify_from_counts_single([3], 1.0)
    with pytest.raises(ValueError, match=r"method \('x'\) must be one of"):
        certify_from_counts_single([3, 1], 1.0, method="x")
    with pytest.raises(ValueError, match=r"sigma \(0\.0\) must be > 0"):
        certify_from_counts_single([3, 1], 0.0)
    with pytest.raises(ValueError, match=r"counts \(0\.5\) at index \(0,\) must be a non-negative integer count"):
        predict_from_counts([0.5, 1])
    with pytest.raises(ValueError, match=r"alpha \(2\.0\) must be in the open interval \(0, 1\)"):
        predict_from_counts([3, 1], alpha=2.0)
    with pytest.raises(ValueError, match=r"counts must contain at least one sample"):
        predict_from_counts([0, 0])


def test_backend_errors():
    with pytest.raises(ValueError, match=r"fn \(3\) must be callable"):
        CallableBackend(3, 2)
    with pytest.raises(ValueError, match=r"num_classes \(1\) must be an integer >= 2"):
        CallableBackend(_linear, 1)
    with pytest.raises(ValueError, match=r"num_classes \(2\.5\) must be an integer >= 2"):
        CallableBackend(_linear, 2.5)
    be = CallableBackend(_linear, 2)
    x = np.zeros(3)
    g = np.random.default_rng(0)
    for kw, msg in [
        (dict(n0=0, n=10), r"n0 \(0\) must be an integer >= 1"),
        (dict(n0=10, n=-5), r"n \(-5\) must be an integer >= 1"),
        (dict(n0=10.5, n=10), r"n0 \(10\.5\) must be an integer >= 1"),
        (dict(n0=10, n=True), r"n \(True\) must be an integer >= 1"),
        (dict(n0=10, n=10, batch_size=0), r"batch_size \(0\) must be an integer >= 1"),
        (dict(n0=10, n=10, alpha=1.5), r"alpha \(1\.5\) must be in the open interval \(0, 1\)"),
        (dict(n0=10, n=10, method="beta"), r"method \('beta'\) must be one of"),
        (dict(n0=10, n=10, bounds=("cohen", "lipschitz")), r"bound \('lipschitz'\) must be one of"),
        (dict(n0=10, n=10, generator=42), r"generator \(42\) must be a numpy.random.Generator or None; for a seed use np.random.default_rng\(seed\)"),
    ]:
        kw.setdefault("generator", g)
        with pytest.raises(ValueError, match=msg):
            certify(be, x, 0.5, **kw)
    with pytest.raises(ValueError, match=r"sigma \(-0\.5\) must be > 0"):
        certify(be, x, -0.5, n0=10, n=10)
    with pytest.raises(ValueError, match=r"sigma \(inf\) must be finite and > 0"):
        predict(be, x, float("inf"), n=10)
    with pytest.raises(ValueError, match=r"n \(0\) must be an integer >= 1"):
        predict(be, x, 0.5, n=0)
    with pytest.raises(ValueError, match=r"alpha \(0\.0\) must be in the open interval"):
        predict(be, x, 0.5, n=10, alpha=0.0)
    with pytest.raises(ValueError, match=r"x \(nan at index \(1,\)\) must be finite"):
        certify(be, np.array([0.0, np.nan, 0.0]), 0.5, n0=10, n=10)
    with pytest.raises(ValueError, match=r"x \(inf at index \(0, 0\)\) must be finite"):
        be.sample_counts(np.array([[np.inf, 0.0, 0.0]]), 0.5, 10)
    with pytest.raises(ValueError, match=r"x \(dtype <U1\) must be an array of real numbers"):
        be.sample_counts(np.array(["a", "b"]), 0.5, 10)
    with pytest.raises(ValueError, match=r"x must not be empty, got shape \(0,\)"):
        be.sample_counts(np.array([]), 0.5, 10)
    with pytest.raises(ValueError, match=r"backend \(str\) must implement the Backend protocol"):
        certify("model", x, 0.5, n0=10, n=10)


@pytest.mark.parametrize(
    "fn, msg",
    [
        (lambda z: np.full(len(z), 2), r"the classifier returned label 2 at index 0; labels must be in \[0, 2\) \(num_classes = 2\)"),
        (lambda z: np.full(len(z), -1), r"the classifier returned label -1 at index 0; labels must be in \[0, 2\)"),
        (lambda z: np.zeros(len(z)), r"the classifier returned labels of dtype float64; expected integer class labels; "
                                     r"if they are whole numbers, convert them with labels.astype\(np.int64\)"),
        (lambda z: np.zeros(len(z), dtype=bool), r"the classifier returned labels of dtype bool; expected integer class labels$"),
        (lambda z: np.zeros((len(z), 3), dtype=int), r"the classifier returned an output of shape \(7, 3\); expected integer labels "
                                                     r"of shape \(7,\) or scores of shape \(7, 2\) for a batch of 7 \(num_classes = 2\)"),
        (lambda z: np.zeros(len(z) - 1, dtype=int), r"the classifier returned an output of shape \(6,\); expected integer labels of shape \(7,\)"),
        (lambda z: 0, r"the classifier returned an output of shape \(\); expected integer labels of shape \(7,\)"),
    ],
)
def test_callable_returning_bad_labels(fn, msg):
    be = CallableBackend(fn, 2)
    with pytest.raises(ValueError, match=msg):
        be.sample_counts(np.zeros(3), 0.5, 7, generator=np.random.default_rng(0))


def test_backend_breaking_the_contract_is_reported():
    class Short:
        num_classes = 3

        def sample_counts(self, x, sigma, n, *, batch_size, generator):
            return np.array([n - 1, 0, 0])

    class WrongShape:
        num_classes = 3

        def sample_counts(self, x, sigma, n, *, batch_size, generator):
            return np.array([n, 0])

    with pytest.raises(ValueError, match=r"backend.sample_counts returned counts summing to 9; expected n \(10\)"):
        certify(Short(), np.zeros(2), 1.0, n0=10, n=10)
    with pytest.raises(ValueError, match=r"backend.sample_counts returned int64 counts of shape \(2,\); expected non-negative integers of shape \(3,\)"):
        predict(WrongShape(), np.zeros(2), 1.0, n=10)
