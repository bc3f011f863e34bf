import gzip
import struct

import numpy as np
import pytest

from model import datasets
from model.datasets import load_dataset
from model.errors import DatasetError


def _idx(array, magic):
    dims = struct.pack(f">{array.ndim}I", *array.shape)
    return struct.pack(">I", magic) + dims + array.astype(np.uint8).tobytes()


def _write_set(folder, n_train=12, n_test=5, compress=True, **overrides):
    rng = np.random.default_rng(0)
    files = {
        "train-images-idx3-ubyte": _idx(rng.integers(0, 256, (n_train, 4, 3)), 0x803),
        "train-labels-idx1-ubyte": _idx(np.arange(n_train) % 3, 0x801),
        "t10k-images-idx3-ubyte": _idx(rng.integers(0, 256, (n_test, 4, 3)), 0x803),
        "t10k-labels-idx1-ubyte": _idx(np.arange(n_test) % 3, 0x801),
    }
    files.update(overrides)
    for name, data in files.items():
        if data is None:
            continue
        if compress:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)


def test_digits_split_is_stratified_and_deterministic():
    a = load_dataset("digits", seed=0)
    b = load_dataset("digits", seed=0)
    assert a.train_images.shape == (1347, 64) and a.test_images.shape == (450, 64)
    assert a.train_images.dtype == np.uint8 and a.train_images.max() == 16
    np.testing.assert_array_equal(a.test_labels, b.test_labels)
    counts = np.bincount(a.test_labels) / np.bincount(np.concatenate([a.train_labels, a.test_labels]))
    assert np.all(np.abs(counts - 0.25) < 0.01)
    assert a.classes == 10 and a.input_size == 64


@pytest.mark.parametrize("compress", [True, False])
def test_idx_loads(tmp_path, compress):
    _write_set(tmp_path, compress=compress)
    d = load_dataset("mnist", str(tmp_path))
    assert d.train_images.shape == (12, 12) and d.test_images.shape == (5, 12)
    assert d.shape == (4, 3) and d.classes == 3 and d.max_value == 255
    assert d.train_labels.tolist() == [0, 1, 2] * 4


def test_idx_images_with_channels_load_channels_innermost(tmp_path):
    rng = np.random.default_rng(1)
    train, test = rng.integers(0, 256, (12, 4, 3, 2)), rng.integers(0, 256, (5, 4, 3, 2))
    _write_set(tmp_path, **{"train-images-idx3-ubyte": _idx(train, 0x804), "t10k-images-idx3-ubyte": _idx(test, 0x804)})
    d = load_dataset("mnist", str(tmp_path))
    assert d.shape == (4, 3, 2) and d.input_size == 24
    assert d.test_images.tolist() == test.reshape(5, 24).tolist()   # value (i, j, c) at (i * W + j) * C + c


@pytest.mark.parametrize("overrides, message", [
    ({"t10k-labels-idx1-ubyte": None}, "missing t10k-labels-idx1-ubyte"),
    ({"train-images-idx3-ubyte": _idx(np.zeros((12, 4, 3)), 0x801)}, "wrong magic number 0x00000801 \\(expected 0x00000803 or 0x00000804\\)"),
    ({"train-labels-idx1-ubyte": _idx(np.zeros(12), 0x801)[:-1]}, "truncated IDX file: 11 of 12"),
    ({"train-labels-idx1-ubyte": b"\0\0"}, "truncated IDX file"),
    ({"train-labels-idx1-ubyte": _idx(np.zeros(11), 0x801)}, "12 images but 11 labels"),
    ({"t10k-images-idx3-ubyte": _idx(np.zeros((5, 3, 4)), 0x803)}, r"train images are \(4, 3\)"),
    ({"train-labels-idx1-ubyte": _idx(np.array([0, 1, 2] * 3 + [200, 0, 1]), 0x801)},
     "label 200 of train image 9 is not a class of mnist"),
    ({"t10k-images-idx3-ubyte": _idx(np.zeros((0, 4, 3)), 0x803),
      "t10k-labels-idx1-ubyte": _idx(np.zeros(0), 0x801)}, "the test split holds no images"),
    ({"train-labels-idx1-ubyte": _idx(np.zeros(12), 0x801)}, "the train split holds a single class"),
])
def test_idx_errors(tmp_path, overrides, message):
    _write_set(tmp_path, **overrides)
    with pytest.raises(DatasetError, match=message):
        load_dataset("mnist", str(tmp_path))


def test_corrupt_gzip(tmp_path):
    _write_set(tmp_path)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:15])
    with pytest.raises(DatasetError, match="cannot read"):
        load_dataset("mnist", str(tmp_path))


def test_name_and_directory_errors(tmp_path, monkeypatch):
    with pytest.raises(DatasetError, match="unknown data set 'cifar'"):
        load_dataset("cifar")
    with pytest.raises(DatasetError, match="no such directory"):
        load_dataset("mnist", str(tmp_path / "nope"))
    with pytest.raises(DatasetError, match="needs --data"):
        load_dataset("mnist")
    monkeypatch.setattr(datasets, "FASHION_MNIST_DIR", str(tmp_path / "absent"))
    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist")
