"""Data sets: scikit-learn's bundled 8x8 digits (the embedded default) and IDX files (MNIST format).

Images are returned flattened as uint8 ``(N, H*W)`` arrays of raw pixel values (``(N, H*W*C)``, channels
innermost, for IDX images of ``N x H x W x C``), labels as int64.
"""

import gzip
import os
import struct
from dataclasses import dataclass

import numpy as np

from .errors import DatasetError

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_HINT = ("install Debian's package with 'sudo apt-get install dataset-fashion-mnist' "
                      f"(it puts the IDX files in {FASHION_MNIST_DIR}), or pass --data DIR")
DATASETS = ("digits", "fashion-mnist", "mnist")
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_IMAGES_MAGICS = (0x00000803, 0x00000804)   # unsigned bytes, N x H x W or N x H x W x C
_IDX_LABELS_MAGIC = 0x00000801
IDX_CLASSES = 10   # mnist and fashion-mnist: labels 0..9
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


@dataclass(frozen=True)
class Dataset:
    """A train/test split of images with integer labels ``0..classes-1``."""

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    shape: tuple
    class_names: tuple
    max_value: int  # largest pixel value the source can hold (16 for digits, 255 for IDX)

    @property
    def classes(self):
        return len(self.class_names)

    @property
    def input_size(self):
        return int(np.prod(self.shape))


def stratified_split(labels, fraction, seed):
    """Indices ``(keep, held_out)`` holding out ``fraction`` of each class, deterministically."""
    rng = np.random.default_rng(seed)
    held = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        held.append(idx[:int(round(fraction * len(idx)))])
    held = np.sort(np.concatenate(held))
    keep = np.setdiff1d(np.arange(len(labels)), held)
    return keep, held


def load_digits(seed=0):
    """scikit-learn's 1,797 8x8 digits (pixels 0..16), split 75/25 stratified with ``seed``."""
    from sklearn.datasets import load_digits as sk_load_digits
    bunch = sk_load_digits()
    images = bunch.data.astype(np.uint8)
    labels = bunch.target.astype(np.int64)
    train, test = stratified_split(labels, 0.25, seed)
    return Dataset("digits", images[train], labels[train], images[test], labels[test],
                   (8, 8), tuple(str(d) for d in range(10)), 16)


def _read_maybe_gz(path):
    with open(path, "rb") as f:
        head = f.read(2)
    opener = gzip.open if head == b"\x1f\x8b" else open
    try:
        with opener(path, "rb") as f:
            return f.read()
    except (OSError, EOFError) as e:
        raise DatasetError(f"{path}: cannot read: {e}") from None


def _find_idx(data_dir, stem):
    for name in (stem, stem + ".gz"):
        path = os.path.join(data_dir, name)
        if os.path.isfile(path):
            return path
    raise DatasetError(f"{data_dir}: missing {stem} (or {stem}.gz)")


def read_idx(path, expected_magics):
    """Read one IDX file (raw or gzip), check its magic number (one of ``expected_magics``) and
    size; return a uint8 array."""
    data = _read_maybe_gz(path)
    if len(data) < 4:
        raise DatasetError(f"{path}: truncated IDX file ({len(data)} bytes)")
    (magic,) = struct.unpack(">I", data[:4])
    if magic not in expected_magics:
        expected = " or ".join(f"0x{m:08x}" for m in expected_magics)
        raise DatasetError(f"{path}: wrong magic number 0x{magic:08x} (expected {expected})")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(dims, dtype=np.int64))
    if len(data) - header < expected:
        raise DatasetError(f"{path}: truncated IDX file: {len(data) - header} of {expected} data bytes")
    if len(data) - header > expected:
        raise DatasetError(f"{path}: {len(data) - header - expected} unexpected bytes after the IDX data")
    return np.frombuffer(data, np.uint8, expected, header).reshape(dims)


def load_idx_split(data_dir, split):
    """Images ``(N, H*W)`` (or ``(N, H*W*C)``), labels ``(N,)`` and the image shape of one split
    (``"train"`` or ``"test"``) from ``data_dir``."""
    images_stem, labels_stem = _IDX_FILES[split]
    images_path = _find_idx(data_dir, images_stem)
    labels_path = _find_idx(data_dir, labels_stem)
    images = read_idx(images_path, _IDX_IMAGES_MAGICS)
    labels = read_idx(labels_path, (_IDX_LABELS_MAGIC,))
    if len(images) != len(labels):
        raise DatasetError(f"{data_dir}: {split} split has {len(images)} images but {len(labels)} labels")
    if not len(images):
        raise DatasetError(f"{data_dir}: the {split} split holds no images")
    return images.reshape(len(images), -1), labels.astype(np.int64), tuple(images.shape[1:])


def load_idx(name, data_dir):
    """An IDX data set (train and test splits) from ``data_dir``."""
    if not os.path.isdir(data_dir):
        raise DatasetError(f"{data_dir}: no such directory")
    train_x, train_y, shape = load_idx_split(data_dir, "train")
    test_x, test_y, test_shape = load_idx_split(data_dir, "test")
    if shape != test_shape:
        raise DatasetError(f"{data_dir}: train images are {shape} but test images are {test_shape}")
    for split, labels in (("train", train_y), ("test", test_y)):
        # both IDX data sets have at most 10 classes: a stray label would silently grow the network
        wrong = np.flatnonzero(labels >= IDX_CLASSES)
        if len(wrong):
            raise DatasetError(f"{data_dir}: label {labels[wrong[0]]} of {split} image {wrong[0]} is not a class "
                               f"of {name} (0..{IDX_CLASSES - 1})")
    if len(np.unique(train_y)) < 2:
        raise DatasetError(f"{data_dir}: the train split holds a single class; a classifier needs two or more")
    classes = int(max(train_y.max(), test_y.max())) + 1
    names = FASHION_MNIST_CLASSES if name == "fashion-mnist" and classes == 10 else tuple(map(str, range(classes)))
    return Dataset(name, train_x, train_y, test_x, test_y, shape, names, 255)


def load_dataset(name, data_dir=None, seed=0):
    """Load a data set by name; ``data_dir`` holds IDX files (required for ``mnist``).

    ``seed`` fixes the digits train/test split.
    """
    if name == "digits":
        if data_dir is not None:
            raise DatasetError("the digits data set is embedded; --data does not apply to it")
        return load_digits(seed)
    if name == "fashion-mnist":
        if data_dir is None:
            if not os.path.isdir(FASHION_MNIST_DIR):
                raise DatasetError(f"Fashion-MNIST not found in {FASHION_MNIST_DIR}: {FASHION_MNIST_HINT}")
            data_dir = FASHION_MNIST_DIR
        return load_idx(name, data_dir)
    if name == "mnist":
        if data_dir is None:
            raise DatasetError("the mnist data set needs --data DIR holding its IDX files")
        return load_idx(name, data_dir)
    raise DatasetError(f"unknown data set {name!r} (choose from {', '.join(DATASETS)})")
