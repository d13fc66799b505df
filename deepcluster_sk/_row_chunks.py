"""Input that stays where it is: row chunks of memory maps, HDF5 and zarr arrays.

A fit or a prediction on an in-memory array copies it once into a float32
tensor. Input that is too large for that, or that lives on disk, is read
chunk by chunk instead: a :class:`RowChunks` wraps any array-like with
``shape``, ``dtype`` and row slicing (``X[start:stop]``), such as
``np.memmap``, ``np.load(path, mmap_mode="r")``, an ``h5py.Dataset`` or a
``zarr.Array``, and every read is a contiguous block of at most
``chunk_rows`` rows, converted to float32 on its own. Such inputs are
recognised without the wrapper; the wrapper sets the chunk size.

Validation has the same errors as the in-memory path (non-numeric dtypes,
non-finite values, values whose squares overflow float32): ``fit`` checks
the input in one pass, chunk by chunk, before training; a prediction checks
each chunk as it reads it, so the input is read once.
"""

import copy
import hashlib
import math
import mmap

import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import _check_feature_names, _check_n_features

from ._diagnostics import check_float32_range

__all__ = ["RowChunks"]

#: Bytes of float32 rows that one chunk holds by default.
DEFAULT_CHUNK_BYTES = 64 * 2**20


class RowChunks:
    """A 2-D (or n-D) array-like read by contiguous chunks of rows.

    Pass it to ``fit``, ``predict``, ``transform``, ``predict_proba`` or
    ``score`` in place of an array: the estimator then never holds more than
    a few chunks of the input at once, and training draws its mini-batches
    from one chunk at a time, in a shuffled order of chunks with the rows
    shuffled inside each chunk. Memory maps, h5py datasets and zarr arrays
    passed directly are wrapped with the default chunk size.

    Parameters
    ----------
    data : array-like of shape (n_samples, n_features) or (n_samples, ...)
        Anything with ``shape``, ``dtype`` and ``data[start:stop]`` returning
        an array (``np.memmap``, ``h5py.Dataset``, ``zarr.Array``, a dask
        array). Its values are read as float32, one chunk at a time.
    chunk_rows : int or None, default=None
        Rows per read. None: as many as fill 64 MiB in float32. For h5py
        and zarr, a multiple of the storage chunk's rows reads fastest.

    Attributes
    ----------
    shape : tuple of int
        The shape of ``data``.
    chunk_rows : int
        The resolved rows per read, at most ``n_samples``.
    n_chunks : int
        Chunks of one pass over the rows.

    Examples
    --------
    >>> import numpy as np
    >>> from deepcluster_sk import RowChunks
    >>> X = np.arange(12, dtype=np.float32).reshape(6, 2)
    >>> chunks = RowChunks(X, chunk_rows=4)
    >>> chunks.n_chunks
    2
    >>> [block.shape for _, _, block in chunks.blocks()]
    [(4, 2), (2, 2)]
    """

    #: Whether :meth:`read` checks the values it reads (set on the copy that
    #: :func:`validate_row_chunks` returns for a prediction).
    _check_on_read = False

    def __init__(self, data, chunk_rows=None):
        if isinstance(data, RowChunks):
            chunk_rows = data.chunk_rows if chunk_rows is None else chunk_rows
            data = data.data
        if sp.issparse(data):
            raise TypeError(
                "RowChunks reads dense arrays; pass a sparse matrix to the "
                "estimator directly, which densifies it batch by batch."
            )
        shape = getattr(data, "shape", None)
        if shape is None or getattr(data, "dtype", None) is None:
            raise TypeError(
                "RowChunks needs an array-like with 'shape', 'dtype' and row "
                f"slicing, got {type(data).__name__}."
            )
        self.data = data
        self.shape = tuple(int(size) for size in shape)
        if len(self.shape) < 2:
            raise ValueError(
                f"Expected a 2D array, got an array of shape {self.shape}: "
                "reshape it to (n_samples, n_features)."
            )
        row_bytes = 4 * max(1, math.prod(self.shape[1:]))
        if chunk_rows is None:
            chunk_rows = max(1, DEFAULT_CHUNK_BYTES // row_bytes)
        if not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
            raise ValueError(
                f"chunk_rows must be a positive integer or None, got {chunk_rows!r}."
            )
        self.chunk_rows = int(min(chunk_rows, max(1, self.shape[0])))

    @property
    def n_samples(self):
        """Rows of the input."""
        return self.shape[0]

    @property
    def dtype(self):
        """The dtype of the stored values (each read is cast to float32)."""
        return np.dtype(self.data.dtype)

    @property
    def n_chunks(self):
        """Chunks of one pass over the rows."""
        return -(-self.n_samples // self.chunk_rows)

    def __len__(self):
        return self.n_samples

    def __repr__(self):
        return (
            f"RowChunks({type(self.data).__name__} of shape {self.shape}, "
            f"chunk_rows={self.chunk_rows})"
        )

    def chunk_bounds(self, chunk):
        """Return the first row and the row after the last of a chunk.

        Parameters
        ----------
        chunk : int
            The chunk's number, from 0.

        Returns
        -------
        start, stop : int
            The chunk is ``data[start:stop]``.
        """
        start = chunk * self.chunk_rows
        return start, min(start + self.chunk_rows, self.n_samples)

    def read(self, start, stop):
        """Read rows ``start:stop`` into a C-contiguous float32 array.

        One read of the underlying data per call; callers keep
        ``stop - start`` within ``chunk_rows``. The pages of a memory map
        that the read touched are handed back to the page cache, so that a
        pass over a file does not pile up in the process's memory.

        Parameters
        ----------
        start, stop : int
            The rows, as in ``data[start:stop]``.

        Returns
        -------
        rows : ndarray of shape (stop - start, ...), float32
            The values; a view of ``data`` where it already holds
            contiguous float32 rows in memory.
        """
        view = self._stored(start, stop)
        if self._check_on_read:
            check_chunk_values(view, start)
        if isinstance(view, np.memmap):
            values = np.array(view, dtype=np.float32, order="C")
            _release_pages(view)
            return values
        return np.ascontiguousarray(view, dtype=np.float32)

    def _stored(self, start, stop):
        """Rows ``start:stop`` in their stored dtype; a memory map's stay mapped."""
        view = self.data[start:stop]
        return view if isinstance(view, np.ndarray) else np.asarray(view)

    def read_chunk(self, chunk):
        """Read one chunk into a float32 array.

        Parameters
        ----------
        chunk : int
            The chunk's number, from 0.

        Returns
        -------
        rows : ndarray of shape (n_rows, ...), float32
            The chunk's rows, at most ``chunk_rows``.
        """
        return self.read(*self.chunk_bounds(chunk))

    def blocks(self, rows=None, start=0, stop=None):
        """Read rows in order, chunk by chunk, in blocks of ``rows`` rows.

        Each chunk is read once and split into blocks; a block never spans
        two chunks.

        Parameters
        ----------
        rows : int or None, default=None
            Rows per block; None: the whole chunk.
        start, stop : int or None, default=0 and None
            The rows to read, as in ``data[start:stop]``; by default all.

        Yields
        ------
        start, stop : int
            The rows of the block.
        block : ndarray of shape (stop - start, ...), float32
        """
        rows = self.chunk_rows if rows is None else rows
        stop = self.n_samples if stop is None else min(stop, self.n_samples)
        for chunk in range(start // self.chunk_rows, self.n_chunks):
            first, last = self.chunk_bounds(chunk)
            first, last = max(first, start), min(last, stop)
            if first >= last:
                break
            values = self.read(first, last)
            for offset in range(0, values.shape[0], rows):
                block = values[offset : offset + rows]
                yield first + offset, first + offset + block.shape[0], block

    def digest(self):
        """Hash the shape and the float32 values, reading them chunk by chunk.

        Returns
        -------
        digest : str
            A hexadecimal BLAKE2b digest.
        """
        hasher = hashlib.blake2b(repr(self.shape).encode(), digest_size=20)
        for _, _, block in self.blocks():
            hasher.update(block.tobytes())
        return hasher.hexdigest()


def _release_pages(view):
    """Drop the resident pages under ``view``, a slice of a memory map.

    The values stay in the file and the operating system's page cache; the
    next read maps them again. Private copy-on-write maps (``mode="c"``) are
    left alone: dropping a page would discard the caller's changes.
    """
    buffer = getattr(view, "_mmap", None)
    if buffer is None or getattr(view, "mode", "c") == "c" or not hasattr(buffer, "madvise"):
        return
    root = view
    while isinstance(root.base, np.ndarray):
        root = root.base
    map_start = root.ctypes.data - root.offset % mmap.ALLOCATIONGRANULARITY
    first = view.ctypes.data - map_start
    begin = first - first % mmap.PAGESIZE
    length = first + view.nbytes - begin
    try:
        buffer.madvise(mmap.MADV_DONTNEED, begin, min(length, len(buffer) - begin))
    except (OSError, ValueError, AttributeError):  # not Linux, or a closed map
        pass


def is_out_of_core(X):
    """Whether ``X`` is read by chunks rather than copied whole.

    True for a :class:`RowChunks`, a NumPy memory map (``np.memmap``, and
    ``np.load(..., mmap_mode="r")``) and array-likes that are not NumPy
    arrays but have ``shape``, ``dtype`` and row slicing of two or more
    dimensions (h5py, zarr, dask). Sparse matrices, lists and data frames
    stay on the in-memory path.
    """
    if isinstance(X, (RowChunks, np.memmap)):
        return True
    if isinstance(X, np.ndarray) or sp.issparse(X):
        return False
    if hasattr(X, "columns") or hasattr(X, "__array_namespace__") and hasattr(X, "device"):
        # data frames, and array-API arrays scikit-learn handles itself
        return False
    shape, dtype = getattr(X, "shape", None), getattr(X, "dtype", None)
    if shape is None or dtype is None or len(shape) < 2 or not hasattr(X, "__getitem__"):
        return False
    try:  # a NumPy dtype: not a torch tensor, which NumPy converts in memory
        np.dtype(dtype)
    except TypeError:
        return False
    return True


def validate_row_chunks(estimator, X, *, reset):
    """Check an out-of-core input chunk by chunk; return it as :class:`RowChunks`.

    The checks of scikit-learn's ``validate_data`` that apply to data that
    is never held whole: the number of features (set or checked), a numeric
    dtype, at least one sample and one feature, finite values, and values
    float32 can hold.

    Parameters
    ----------
    estimator : BaseEstimator
    X : array-like
        An input for which :func:`is_out_of_core` holds.
    reset : bool
        Whether ``n_features_in_`` is set (``fit``) or checked.

    Returns
    -------
    chunks : RowChunks
    """
    chunks = X if isinstance(X, RowChunks) else RowChunks(X)
    dtype = chunks.dtype
    if dtype.kind not in "biuf":
        raise TypeError(
            f"X has dtype {dtype}; only numeric data (bool, integer or float) "
            "can be read by chunks."
        )
    n_samples, n_features = chunks.shape[0], math.prod(chunks.shape[1:])
    if n_samples < 1:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={chunks.shape}) while a "
            "minimum of 1 is required."
        )
    if n_features < 1:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={chunks.shape}) while a "
            "minimum of 1 is required."
        )
    _check_feature_names(estimator, chunks, reset=reset)
    _check_n_features(estimator, chunks, reset=reset)
    if not reset:
        # Prediction reads every row once: the values are checked as they
        # are read, before the cast, in the same pass.
        checked = copy.copy(chunks)
        checked._check_on_read = True
        return checked
    for start, _, block in _raw_blocks(chunks):
        check_chunk_values(block, start)
    return chunks


def check_chunk_values(block, start):
    """Raise the errors of in-memory input for non-finite or too large values.

    Parameters
    ----------
    block : ndarray
        Rows ``start:start + len(block)`` of the input, in their stored dtype.
    start : int
        The first row, for the message.
    """
    if block.dtype.kind == "f" and not np.isfinite(block).all():
        kind = "NaN" if np.isnan(block).any() else "infinity"
        raise ValueError(
            f"Input X contains {kind} (in rows {start} to "
            f"{start + block.shape[0] - 1}); remove or impute those values."
        )
    check_float32_range(block)


def _raw_blocks(chunks):
    """Yield each chunk in its stored dtype, for checks before the cast."""
    for chunk in range(chunks.n_chunks):
        start, stop = chunks.chunk_bounds(chunk)
        view = chunks._stored(start, stop)
        yield start, stop, view
        if isinstance(view, np.memmap):
            _release_pages(view)

