"""Tests of renyi_cert_torch.smoothing.SmoothedClassifier (the torch backend)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from renyi_cert_torch.smoothing import SmoothedClassifier, resolve_device  # noqa: E402


class MeanThreshold(nn.Module):
    """Class 0 if the mean pixel exceeds ``t``, else class 1; records every batch it sees."""

    def __init__(self, t: float = 0.5, num_classes: int = 2):
        super().__init__()
        self.t = t
        self.num_classes = num_classes
        self.child = nn.Identity()
        self.batches: list[int] = []
        self.inputs: list[torch.Tensor] = []
        self.inference_flags: list[bool] = []
        self.keep_inputs = False

    def forward(self, x):
        self.batches.append(x.shape[0])
        self.inference_flags.append(torch.is_inference_mode_enabled())
        if self.keep_inputs:
            self.inputs.append(x.clone())
        m = x.flatten(1).mean(1)
        logits = torch.full((x.shape[0], self.num_classes), -10.0, device=x.device)
        logits[:, 0] = m - self.t
        logits[:, 1] = self.t - m
        return logits


class Boom(nn.Module):
    def forward(self, x):
        raise RuntimeError("boom")


def test_counts_sum_to_n_and_batches_are_bounded():
    model = MeanThreshold()
    clf = SmoothedClassifier(model, 0.5, 2, device="cpu", batch_size=64)
    counts = clf.sample_counts(torch.full((1, 4, 4), 0.5), 0.5, 1000, batch_size=300,
                               generator=clf.make_generator(0))
    assert counts.dtype == np.int64 and counts.shape == (2,)
    assert counts.sum() == 1000
    # batches of at most 300: never the n copies at once
    assert model.batches == [300, 300, 300, 100]
    assert all(model.inference_flags)
    model.batches.clear()
    clf.sample_counts(torch.zeros(1, 4, 4), 0.5, 130, generator=clf.make_generator(0))  # instance default 64
    assert model.batches == [64, 64, 2]


def test_same_seed_same_counts_different_seed_different_stream():
    model = MeanThreshold()
    clf = SmoothedClassifier(model, 0.25, 2, device="cpu")
    x = torch.full((1, 8, 8), 0.5)
    a = clf.sample_counts(x, 1.0, 5000, batch_size=700, generator=clf.make_generator(123))
    b = clf.sample_counts(x, 1.0, 5000, batch_size=700, generator=clf.make_generator(123))
    np.testing.assert_array_equal(a, b)
    c = [tuple(clf.sample_counts(x, 1.0, 5000, batch_size=700, generator=clf.make_generator(s))) for s in range(5)]
    assert len(set(c)) > 1  # P(5 independent Binomial(5000, 1/2) draws all equal) < 1e-8


def test_counts_follow_the_noise_distribution():
    # The mean of d pixels of x + N(0, sigma^2) is N(c, sigma^2 / d): class 0 has probability
    # p = 1 - Phi((t - c) / (sigma / sqrt(d))). Check the count with a two-sided binomial test.
    d, c, t, sigma, n = 16, 0.5, 0.55, 0.4, 20000
    clf = SmoothedClassifier(MeanThreshold(t=t), sigma, 2, device="cpu")
    counts = clf.sample_counts(torch.full((1, 4, 4), c), sigma, n, batch_size=1000,
                               generator=clf.make_generator(7))
    p = stats.norm.sf((t - c) / (sigma / math.sqrt(d)))
    assert stats.binomtest(int(counts[0]), n, p).pvalue > 1e-4


def test_noise_is_gaussian_with_std_sigma_in_pixel_units():
    model = MeanThreshold()
    model.keep_inputs = True
    x = torch.rand(1, 5, 5)
    clf = SmoothedClassifier(model, 0.3, 2, device="cpu")
    clf.sample_counts(x, 0.3, 2000, batch_size=500, generator=clf.make_generator(1))
    noise = (torch.cat(model.inputs) - x).flatten().double()
    m = noise.numel()  # 50,000 draws: sd of the sample std is about 0.3 / sqrt(2 m) = 9.5e-4
    assert abs(noise.mean().item()) < 5 * 0.3 / math.sqrt(m)
    assert abs(noise.std().item() - 0.3) < 5 * 0.3 / math.sqrt(2 * m)
    # independent across copies: consecutive copies are uncorrelated
    flat = torch.cat(model.inputs).flatten(1) - x.flatten()
    r = np.corrcoef(flat[:-1, 0].numpy(), flat[1:, 0].numpy())[0, 1]
    assert abs(r) < 5 / math.sqrt(2000)


def test_sigma_argument_is_used():
    model = MeanThreshold()
    model.keep_inputs = True
    clf = SmoothedClassifier(model, 0.3, 2, device="cpu")
    clf.sample_counts(torch.zeros(1, 10, 10), 2.0, 400, generator=clf.make_generator(1))
    assert torch.cat(model.inputs).std().item() == pytest.approx(2.0, rel=0.05)


def test_restores_train_and_eval_modes_module_by_module():
    model = MeanThreshold()
    model.train()
    model.child.eval()
    clf = SmoothedClassifier(model, 0.5, 2, device="cpu")
    seen = []
    model.register_forward_pre_hook(lambda m, inp: seen.append((m.training, m.child.training)))
    clf.sample_counts(torch.zeros(1, 2, 2), 0.5, 10, generator=clf.make_generator(0))
    assert seen == [(False, False)]  # sampled in eval mode
    assert model.training is True and model.child.training is False


def test_restores_mode_on_error():
    model = nn.Sequential(Boom())
    model.train()
    clf = SmoothedClassifier(model, 0.5, 2, device="cpu", input_shape=(1, 2, 2))
    with pytest.raises(RuntimeError, match="boom"):
        clf.sample_counts(torch.zeros(1, 2, 2), 0.5, 10)
    assert model.training and model[0].training


def test_real_cnn_shape_check_and_counts():
    from renyi_cert_torch.models import build_model

    torch.manual_seed(0)
    model = build_model("mnist_cnn")
    clf = SmoothedClassifier(model, 0.7, 10, device="cpu")
    assert clf.input_shape == (1, 28, 28)
    counts = clf.sample_counts(torch.rand(1, 28, 28), 0.7, 50, batch_size=20, generator=clf.make_generator(3))
    assert counts.sum() == 50 and counts.shape == (10,)
    with pytest.raises(ValueError, match=r"x has shape \(3, 28, 28\) but the model expects \(1, 28, 28\)"):
        clf.sample_counts(torch.rand(3, 28, 28), 0.7, 10)
    with pytest.raises(ValueError, match=r"x must have shape \(C, H, W\), got shape \(1, 1, 28, 28\)"):
        clf.sample_counts(torch.rand(1, 1, 28, 28), 0.7, 10)


def test_numpy_input_accepted():
    clf = SmoothedClassifier(MeanThreshold(), 0.5, 2, device="cpu")
    counts = clf.sample_counts(np.full((1, 3, 3), 0.9, dtype=np.float64), 0.01, 20, generator=clf.make_generator(0))
    assert list(counts) == [20, 0]


def test_first_conv_channels_checked_for_unknown_models():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(2))
    clf = SmoothedClassifier(model, 0.5, 2, device="cpu")
    with pytest.raises(ValueError, match=r"x has 1 channel\(s\) but the model's first convolution expects 3"):
        clf.sample_counts(torch.zeros(1, 8, 8), 0.5, 4)


@pytest.mark.parametrize(
    "kwargs, msg",
    [
        (dict(sigma=0.0), r"sigma \(0.0\) must be > 0"),
        (dict(sigma=-1.0), r"sigma \(-1.0\) must be > 0"),
        (dict(sigma=float("nan")), r"sigma \(nan\) must be finite and > 0"),
        (dict(sigma=float("inf")), r"sigma \(inf\) must be finite and > 0"),
        (dict(sigma="a"), r"sigma \('a'\) must be a real number, not a string"),
        (dict(num_classes=1), r"num_classes \(1\) must be an integer >= 2"),
        (dict(batch_size=0), r"batch_size \(0\) must be an integer >= 1"),
        (dict(device="tpu"), r"device \('tpu'\) must be one of 'auto', 'cpu', 'cuda'"),
        (dict(input_shape=(28, 28)), r"input_shape \(\(28, 28\)\) must be three positive integers"),
    ],
)
def test_constructor_errors(kwargs, msg):
    args = dict(sigma=0.5, num_classes=2, device="cpu")
    args.update(kwargs)
    with pytest.raises(ValueError, match=msg):
        SmoothedClassifier(MeanThreshold(), args.pop("sigma"), args.pop("num_classes"), **args)


def test_not_a_module():
    with pytest.raises(ValueError, match=r"model \(function\) must be a torch.nn.Module"):
        SmoothedClassifier(lambda x: x, 0.5, 2)


@pytest.mark.parametrize(
    "call, msg",
    [
        (lambda c: c.sample_counts(torch.zeros(1, 2, 2), 0.0, 10), r"sigma \(0.0\) must be > 0"),
        (lambda c: c.sample_counts(torch.zeros(1, 2, 2), 0.5, 0), r"n \(0\) must be an integer >= 1"),
        (lambda c: c.sample_counts(torch.zeros(1, 2, 2), 0.5, 10, batch_size=-3),
         r"batch_size \(-3\) must be an integer >= 1"),
        (lambda c: c.sample_counts(torch.zeros(1, 2, 2), 0.5, 10, generator=np.random.default_rng(0)),
         r"generator \(.*\) must be a torch.Generator"),
        (lambda c: c.sample_counts(torch.zeros(1, 2, 2, dtype=torch.uint8), 0.5, 10),
         r"x has dtype torch.uint8; expected floating-point pixels in \[0, 1\]"),
        (lambda c: c.sample_counts([[0.0]], 0.5, 10), r"x \(list\) must be a torch.Tensor or numpy array"),
    ],
)
def test_sample_counts_errors(call, msg):
    clf = SmoothedClassifier(MeanThreshold(), 0.5, 2, device="cpu")
    with pytest.raises(ValueError, match=msg):
        call(clf)


def test_logit_width_must_match_num_classes():
    clf = SmoothedClassifier(MeanThreshold(num_classes=2), 0.5, 3, device="cpu")
    with pytest.raises(ValueError, match=r"the model returned logits of shape \(10, 2\); expected \(10, 3\)"):
        clf.sample_counts(torch.zeros(1, 2, 2), 0.5, 10)


def test_device_selection(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device(None).type == expected
    assert resolve_device("auto").type == expected
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match=r"device \('cuda'\) was requested but CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match=r"device \('gpu0'\) must be"):
        resolve_device("gpu0")


def test_model_moved_to_device_and_generator_on_device():
    clf = SmoothedClassifier(MeanThreshold(), 0.5, 2, device="cpu")
    assert clf.make_generator(5).device.type == "cpu"
    assert "device='cpu'" in repr(clf)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_counts_reproducible_and_generator_device_checked():
    clf = SmoothedClassifier(MeanThreshold(), 0.5, 2, device="cuda")
    x = torch.full((1, 4, 4), 0.5)
    a = clf.sample_counts(x, 0.5, 3000, batch_size=512, generator=clf.make_generator(9))
    b = clf.sample_counts(x, 0.5, 3000, batch_size=512, generator=clf.make_generator(9))
    np.testing.assert_array_equal(a, b)
    assert a.sum() == 3000
    with pytest.raises(ValueError, match="generator is on device cpu but the data is on cuda"):
        clf.sample_counts(x, 0.5, 10, generator=torch.Generator())


# ------------------------------------------------------------------- certify / predict delegation


def test_certify_constant_model_gives_largest_possible_p1():
    # every noisy copy is class 0 (mean far above the threshold): the estimate count is k = n, so
    # the one-sided Clopper-Pearson lower bound is (alpha/2)^(1/n): the cap of docs/numerics.md
    # (section 4), with the Bonferroni split of renyi_cert.certificate (alpha/2 for p1, alpha/2 for p2).
    clf = SmoothedClassifier(MeanThreshold(t=-100.0), 0.5, 2, device="cpu", batch_size=128)
    cert = clf.certify(torch.zeros(1, 2, 2), n0=50, n=500, alpha=0.001, bounds=("renyi", "cohen", "pixeldp"),
                       generator=clf.make_generator(0))
    assert cert.prediction == 0 and not cert.abstained
    assert cert.n0 == 50 and cert.n == 500 and cert.sigma == 0.5
    assert cert.p1_lower == pytest.approx(0.0005 ** (1 / 500), rel=1e-12)
    assert set(cert.radii) == {"renyi", "cohen", "pixeldp"}
    assert 0 < cert.radii["renyi"] <= cert.radii["cohen"]


def test_certify_is_reproducible_and_single_sample_set_variant():
    clf = SmoothedClassifier(MeanThreshold(t=0.55), 0.4, 2, device="cpu", batch_size=256)
    x = torch.full((1, 4, 4), 0.5)
    a = clf.certify(x, n0=100, n=1000, alpha=0.01, generator=clf.make_generator(4))
    b = clf.certify(x, n0=100, n=1000, alpha=0.01, generator=clf.make_generator(4))
    assert a == b
    s = clf.certify(x, n0=100, n=1000, alpha=0.01, generator=clf.make_generator(4), single_sample_set=True,
                    allow_unguaranteed=True)
    assert s.n == 1000 and s.prediction in (-1, 0, 1) and s.guaranteed is False


def test_certify_refuses_unguaranteed_settings_before_sampling():
    # The single-sample-set variant and asymptotic intervals have no guaranteed level: refused
    # unless allow_unguaranteed=True, and refused before any forward pass.
    model = MeanThreshold(t=0.55)
    clf = SmoothedClassifier(model, 0.4, 2, device="cpu", batch_size=256)
    x = torch.full((1, 4, 4), 0.5)
    with pytest.raises(ValueError, match=r"one sample set both selects the class.*allow_unguaranteed=True"):
        clf.certify(x, n0=100, n=1000, alpha=0.01, single_sample_set=True)
    with pytest.raises(ValueError, match=r"allow_unguaranteed=True"):
        clf.certify(x, n0=100, n=1000, alpha=0.01, method="goodman")
    with pytest.raises(ValueError, match=r"bound \('nope'\) must be one of"):
        clf.certify(x, n0=100, n=1000, alpha=0.01, single_sample_set=True, allow_unguaranteed=True, bounds=("nope",))
    assert model.batches == []
    cert = clf.certify(x, n0=100, n=1000, alpha=0.01, method="goodman", allow_unguaranteed=True,
                       generator=clf.make_generator(0))
    assert cert.guaranteed is False and cert.n == 1000


def test_certify_and_predict_take_their_settings_by_keyword():
    clf = SmoothedClassifier(MeanThreshold(t=-100.0), 0.5, 2, device="cpu")
    x = torch.zeros(1, 2, 2)
    with pytest.raises(TypeError):
        clf.certify(x, 50, 500)
    with pytest.raises(TypeError):
        clf.predict(x, 100)
    with pytest.raises(TypeError):
        clf.certify(x, n=500)  # n0 is required
    assert clf.predict(x, n=100, generator=clf.make_generator(0)).prediction == 0


def test_certify_accepts_a_single_bound_name():
    # bounds="renyi" is one bound (as in the core), not the letters 'r', 'e', 'n', 'y', 'i'.
    clf = SmoothedClassifier(MeanThreshold(t=-100.0), 0.5, 2, device="cpu", batch_size=128)
    x = torch.zeros(1, 2, 2)
    one = clf.certify(x, n0=50, n=500, bounds="renyi", generator=clf.make_generator(0))
    both = clf.certify(x, n0=50, n=500, bounds=("renyi",), generator=clf.make_generator(0))
    assert set(one.radii) == {"renyi"} and one == both
    single = clf.certify(x, n0=50, n=500, bounds="cohen", single_sample_set=True, allow_unguaranteed=True,
                         generator=clf.make_generator(0))
    assert set(single.radii) == {"cohen"}


def test_sigma_far_above_the_pixel_range_warns():
    with pytest.warns(UserWarning, match=r"sigma \(100\) is far larger than the data range \[0, 1\]; noise is in "
                                         r"\[0, 1\] pixel units \(did you mean 100/255 = 0\.392\?\)"):
        clf = SmoothedClassifier(MeanThreshold(), 100.0, 2, device="cpu")
    assert clf.sigma == 100.0  # warned, not changed
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SmoothedClassifier(MeanThreshold(), 1.0, 2, device="cpu")  # a plausible [0, 1]-unit sigma: silent


def test_predict_abstains_on_a_tie_and_answers_when_clear():
    tie = SmoothedClassifier(MeanThreshold(t=0.5), 1.0, 2, device="cpu")
    p = tie.predict(torch.full((1, 4, 4), 0.5), n=200, alpha=1e-6, generator=tie.make_generator(0))
    assert p.prediction == -1  # p(0) = 1/2: the binomial test cannot reject at 1e-6 with 200 draws
    clear = SmoothedClassifier(MeanThreshold(t=-5.0), 0.1, 2, device="cpu")
    p = clear.predict(torch.zeros(1, 4, 4), n=100, alpha=0.001, generator=clear.make_generator(0))
    assert p.prediction == 0
