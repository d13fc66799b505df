"""Loaders for benchmark data sets stored as local files.

Nothing here downloads: every loader reads files that are already on disk,
so a benchmark run never depends on the network.
"""

import gzip
from pathlib import Path

import numpy as np

__all__ = ["load_mnist", "read_idx"]

#: IDX type byte of unsigned 8-bit values, the only type MNIST uses.
_IDX_UINT8 = 0x08

#: The MNIST files in the order they are concatenated: training set first.
_MNIST_FILES = (
    ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
)


def _read_bytes(path):
    """The content of ``path``, decompressed when its name ends in ``.gz``."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as file:
        return file.read()


def _parse_idx_header(raw, path):
    """Check the IDX magic number and return the array's shape.

    The header is two zero bytes, a type byte, the number of dimensions and
    one big-endian 4-byte size per dimension.
    """
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(
            f"{path} is not an IDX file: it should start with two zero bytes, "
            f"got {raw[:4]!r}."
        )
    if raw[2] != _IDX_UINT8:
        raise ValueError(
            f"{path} holds IDX type 0x{raw[2]:02x}; only unsigned bytes "
            f"(0x{_IDX_UINT8:02x}) are supported."
        )
    n_dims = raw[3]
    header_size = 4 + 4 * n_dims
    if len(raw) < header_size:
        raise ValueError(
            f"{path} is truncated: its header declares {n_dims} dimensions "
            f"but the file has only {len(raw)} bytes."
        )
    return tuple(int(s) for s in np.frombuffer(raw, ">u4", n_dims, offset=4))


def read_idx(path):
    """Read an IDX file of unsigned bytes (the MNIST format) into an array.

    Parameters
    ----------
    path : str or path-like
        The file; read through gzip when its name ends in ``.gz``.

    Returns
    -------
    array : ndarray of dtype uint8
        Shaped as the sizes in the file's header say.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the magic number or the type byte is wrong, or the amount of data
        differs from what the header declares.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "tiny-idx1-ubyte"
    >>> _ = path.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]))
    >>> read_idx(path)
    array([7, 8, 9], dtype=uint8)
    """
    path = Path(path)
    raw = _read_bytes(path)
    shape = _parse_idx_header(raw, path)
    offset = 4 + 4 * len(shape)
    expected = int(np.prod(shape, dtype=np.int64))
    if len(raw) - offset != expected:
        raise ValueError(
            f"{path}: the header declares shape {shape} ({expected} values) "
            f"but the file holds {len(raw) - offset} data bytes."
        )
    return np.frombuffer(raw, np.uint8, offset=offset).reshape(shape)


def _find_file(folder, name):
    """``folder/name.gz`` or ``folder/name``, whichever exists."""
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"MNIST file {name!r} (or {name + '.gz'!r}) not found in {folder}."
    )


def _load_split(folder, images_name, labels_name):
    """Images and labels of one MNIST split, checked against each other."""
    images = read_idx(_find_file(folder, images_name))
    labels = read_idx(_find_file(folder, labels_name))
    if images.ndim != 3 or labels.ndim != 1:
        raise ValueError(
            f"{images_name} should be 3-D and {labels_name} 1-D, got "
            f"{images.ndim}-D and {labels.ndim}-D arrays."
        )
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{images_name} holds {images.shape[0]} images but {labels_name} "
            f"holds {labels.shape[0]} labels."
        )
    return images.reshape(images.shape[0], -1), labels


def load_mnist(path):
    """Load all 70 000 MNIST digits from the four original IDX files.

    Deep-clustering papers (DEC among them) cluster the training and test
    sets together; this returns them concatenated in that order, with the
    pixels scaled to [0, 1].

    Parameters
    ----------
    path : str or path-like
        Folder holding ``train-images-idx3-ubyte``,
        ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
        ``t10k-labels-idx1-ubyte``, each plain or gzip-compressed with a
        ``.gz`` suffix (the compressed file is used when both exist).

    Returns
    -------
    X : ndarray of shape (70000, 784), dtype float32
        Flattened images, the 60 000 training images first, values in
        [0, 1].
    y : ndarray of shape (70000,), dtype int64
        Digit labels 0..9 in the same order.

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a folder or one of the files is missing.
    ValueError
        If a file is not a valid IDX file of bytes, or images and labels
        disagree in number or in image size.

    Notes
    -----
    Nothing is downloaded. The files are those of LeCun, Cortes and Burges,
    "The MNIST database of handwritten digits".

    Examples
    --------
    >>> from deepcluster_sk.datasets import load_mnist
    >>> X, y = load_mnist("path/to/mnist")  # doctest: +SKIP
    >>> X.shape, y.shape  # doctest: +SKIP
    ((70000, 784), (70000,))
    """
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"MNIST folder {folder} does not exist.")
    splits = [_load_split(folder, *names) for names in _MNIST_FILES]
    if len({images.shape[1] for images, _ in splits}) != 1:
        raise ValueError(
            "The training and test images differ in size: "
            f"{[images.shape[1] for images, _ in splits]} pixels."
        )
    X = np.concatenate([images for images, _ in splits]).astype(np.float32)
    X /= 255.0
    y = np.concatenate([labels for _, labels in splits]).astype(np.int64)
    return X, y
