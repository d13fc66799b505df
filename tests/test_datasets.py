"""Tests of the local data loaders, on tiny IDX files written here."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from deepcluster_sk.datasets import load_mnist, read_idx

REAL_MNIST = Path(__file__).parents[2] / "shared" / "data" / "mnist"

#: Digit counts of the 70 000 MNIST images (training plus test set).
MNIST_LABEL_COUNTS = [6903, 7877, 6990, 7141, 6824, 6313, 6876, 7293, 6825, 6958]


def idx_bytes(array, type_byte=0x08):
    """Encode a uint8 array in the IDX format."""
    header = bytes([0, 0, type_byte, array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(path, array, compress):
    data = idx_bytes(array)
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def write_tiny_mnist(folder, compress=True, n_train=5, n_test=3, side=2):
    """Four IDX files; pixel values and labels encode each image's position."""
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (n_train, side, side), dtype=np.uint8)
    test = rng.integers(0, 256, (n_test, side, side), dtype=np.uint8)
    train[0, 0, 0], test[0, 0, 0] = 0, 255
    train_labels = np.arange(n_train, dtype=np.uint8) % 10
    test_labels = (np.arange(n_test, dtype=np.uint8) + 7) % 10
    for name, array in [
        ("train-images-idx3-ubyte", train),
        ("train-labels-idx1-ubyte", train_labels),
        ("t10k-images-idx3-ubyte", test),
        ("t10k-labels-idx1-ubyte", test_labels),
    ]:
        write_idx(folder / name, array, compress)
    return np.concatenate([train, test]), np.concatenate([train_labels, test_labels])


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_round_trips(tmp_path, compress):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = write_idx(tmp_path / "a-idx3-ubyte", array, compress)
    result = read_idx(path)
    assert result.dtype == np.uint8
    np.testing.assert_array_equal(result, array)


@pytest.mark.parametrize("compress", [True, False])
def test_load_mnist_shapes_scaling_and_order(tmp_path, compress):
    images, labels = write_tiny_mnist(tmp_path, compress=compress)
    X, y = load_mnist(tmp_path)
    assert X.shape == (8, 4) and X.dtype == np.float32
    assert y.shape == (8,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    # Training images first, then test images, each row one flattened image.
    np.testing.assert_allclose(X, images.reshape(8, 4) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)


def test_load_mnist_accepts_a_mix_of_plain_and_gzip_files(tmp_path):
    images, labels = write_tiny_mnist(tmp_path, compress=False)
    plain = tmp_path / "t10k-images-idx3-ubyte"
    plain.with_name(plain.name + ".gz").write_bytes(gzip.compress(plain.read_bytes()))
    plain.unlink()
    X, y = load_mnist(str(tmp_path))
    np.testing.assert_allclose(X, images.reshape(8, 4) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)


def test_missing_file_is_named(tmp_path):
    write_tiny_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        load_mnist(tmp_path)


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_mnist(tmp_path / "nowhere")


@pytest.mark.parametrize(
    "raw, message",
    [
        (bytes([1, 0, 8, 1, 0, 0, 0, 1, 5]), "two zero bytes"),
        (bytes([0, 0, 0x0D, 1, 0, 0, 0, 1, 5]), "type 0x0d"),
        (bytes([0, 0, 8, 2, 0, 0, 0, 1]), "truncated"),
        (bytes([0, 0, 8, 1, 0, 0, 0, 3, 5, 6]), r"shape \(3,\)"),
        (bytes([0, 0, 8, 1, 0, 0, 0, 1, 5, 6]), "2 data bytes"),
    ],
)
def test_bad_idx_files_raise(tmp_path, raw, message):
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(raw)
    with pytest.raises(ValueError, match=message):
        read_idx(path)


def test_images_and_labels_must_agree_in_number(tmp_path):
    write_tiny_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(4, np.uint8), True)
    with pytest.raises(ValueError, match="5 images but .* 4 labels"):
        load_mnist(tmp_path)


def test_labels_must_be_one_dimensional(tmp_path):
    write_tiny_mnist(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros((3, 1), np.uint8), True)
    with pytest.raises(ValueError, match="1-D"):
        load_mnist(tmp_path)


def test_train_and_test_images_must_have_the_same_size(tmp_path):
    write_tiny_mnist(tmp_path)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((3, 3, 3), np.uint8), True)
    with pytest.raises(ValueError, match="differ in size"):
        load_mnist(tmp_path)


@pytest.mark.skipif(not REAL_MNIST.is_dir(), reason=f"no MNIST files at {REAL_MNIST}")
def test_real_mnist():
    X, y = load_mnist(REAL_MNIST)
    assert X.shape == (70000, 784) and X.dtype == np.float32
    assert 0.0 <= X.min() and X.max() == 1.0
    np.testing.assert_array_equal(np.bincount(y), MNIST_LABEL_COUNTS)
    # The first training image is a 5 and the first test image a 7.
    assert y[0] == 5 and y[60000] == 7
