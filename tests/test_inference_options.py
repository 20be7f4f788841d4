"""Tests of SmoothedClassifier's inference options: ``amp`` (reduced precision) and ``channels_last``."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from renyi_cert_torch.smoothing import SmoothedClassifier, check_amp  # noqa: E402

SHAPE = (3, 8, 8)  # three channels: the channels_last layout differs from the default one


class Recorder(nn.Module):
    """Wraps a model; records the dtype and layout of every input and output, and its argmax labels."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner
        self.labels: list[torch.Tensor] = []
        self.out_dtypes: list[torch.dtype] = []
        self.in_channels_last: list[bool] = []

    def forward(self, x):
        self.in_channels_last.append(x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous())
        out = self.inner(x)
        self.out_dtypes.append(out.dtype)
        self.labels.append(out.argmax(1))
        return out


def small_cnn(seed: int = 0) -> nn.Module:
    """A small random convolutional classifier of (3, 8, 8) inputs into 4 classes."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.ReLU(), nn.Flatten(),
                         nn.Linear(8 * 4 * 4, 4))


def counts_and_labels(clf: SmoothedClassifier, n: int = 600, seed: int = 1) -> tuple[np.ndarray, torch.Tensor]:
    x = torch.full(SHAPE, 0.5)
    counts = clf.sample_counts(x, 0.5, n, batch_size=256, generator=clf.make_generator(seed))
    return counts, torch.cat(clf.model.labels)


def clf_for(model: nn.Module, **options) -> SmoothedClassifier:
    return SmoothedClassifier(Recorder(model), 0.5, 4, device="cpu", input_shape=SHAPE, **options)


@pytest.mark.parametrize("options", [dict(amp="bf16"), dict(channels_last=True), dict(amp="bf16", channels_last=True)])
def test_options_give_valid_counts(options):
    clf = clf_for(small_cnn(), **options)
    counts, _ = counts_and_labels(clf)
    assert counts.dtype == np.int64 and counts.shape == (4,) and counts.sum() == 600
    model = clf.model
    assert model.out_dtypes == [torch.bfloat16 if "amp" in options else torch.float32] * 3  # batches 256, 256, 88
    assert model.in_channels_last == [bool(options.get("channels_last"))] * 3
    if options.get("channels_last"):
        assert model.inner[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_channels_last_gives_the_same_noisy_copies_and_counts():
    # The noise is drawn in the default layout and copied, so the inputs are the same; the convolutions
    # may sum in another order (last bits of the logits), which did not change any label here.
    model = small_cnn()
    ref_counts, ref_labels = counts_and_labels(clf_for(model))
    cl_counts, cl_labels = counts_and_labels(clf_for(model, channels_last=True))
    assert len(np.flatnonzero(ref_counts)) >= 2  # not a constant classifier
    assert np.array_equal(cl_counts, ref_counts)
    assert torch.equal(cl_labels, ref_labels)


def test_channels_last_without_convolutions_is_a_no_op():
    torch.manual_seed(0)
    linear = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4))  # flatten = reshape: works on any layout
    ref, _ = counts_and_labels(clf_for(linear))
    out, _ = counts_and_labels(clf_for(linear, channels_last=True))
    assert np.array_equal(out, ref)


def test_bf16_labels_agree_with_fp32_on_most_copies():
    model = small_cnn()
    ref_counts, ref_labels = counts_and_labels(clf_for(model), n=1000)
    bf16 = clf_for(model, amp="bf16")
    counts, labels = counts_and_labels(bf16, n=1000)
    assert set(bf16.model.out_dtypes) == {torch.bfloat16}  # really computed in bfloat16 ...
    assert len(np.flatnonzero(ref_counts)) >= 2  # ... by a classifier that is not constant ...
    agree = int((labels == ref_labels).sum())
    assert agree >= 970, f"bf16 labels agree with float32 on only {agree} of 1000 copies"  # ... mostly alike
    assert np.abs(counts - ref_counts).sum() <= 2 * (1000 - agree)


@pytest.mark.parametrize(
    "options, msg",
    [
        (dict(amp="int8"), r"amp \('int8'\) must be one of 'bf16', 'fp16' or None"),
        (dict(amp="BF16"), r"amp \('BF16'\) must be one of 'bf16', 'fp16' or None"),
        (dict(amp=True), r"amp \(True\) must be one of 'bf16', 'fp16' or None"),
        (dict(amp="fp16"), r"amp \('fp16'\) is not supported on the CPU: .*use amp='bf16'"),
        (dict(channels_last=1), r"channels_last \(1\) must be True or False"),
        (dict(channels_last="yes"), r"channels_last \('yes'\) must be True or False"),
    ],
)
def test_bad_options_are_refused_in_the_constructor(options, msg):
    model = small_cnn()
    with pytest.raises(ValueError, match=msg):
        SmoothedClassifier(model, 0.5, 4, device="cpu", input_shape=SHAPE, **{"channels_last": True, **options})
    assert model[0].weight.is_contiguous()  # refused before any work: the model was not converted
    assert not model[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_check_amp():
    assert check_amp(None, torch.device("cpu")) is None
    assert check_amp("bf16", torch.device("cpu")) is torch.bfloat16


def test_non_finite_logits_are_caught_under_bf16():
    torch.manual_seed(0)
    bad = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4))
    with torch.no_grad():
        bad[1].weight[2, 5] = float("nan")
    clf = clf_for(bad, amp="bf16")
    with pytest.raises(ValueError, match=r"non-finite logits \(nan\) for noisy copy 0 of 10"):
        clf.sample_counts(torch.full(SHAPE, 0.5), 0.5, 10, generator=clf.make_generator(0))
    assert clf.model.out_dtypes == [torch.bfloat16]


def test_certify_and_repr_with_options():
    clf = clf_for(small_cnn(), amp="bf16", channels_last=True)
    cert = clf.certify(torch.full(SHAPE, 0.5), n0=20, n=200, generator=clf.make_generator(0))
    assert cert.prediction in (-1, 0, 1, 2, 3)
    assert repr(clf).endswith("batch_size=1000, amp='bf16', channels_last=True)")
    assert "amp" not in repr(clf_for(small_cnn()))
