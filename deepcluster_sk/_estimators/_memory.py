"""A disk cache of pretrained autoencoders for the ``memory`` parameter.

Pretraining does not depend on the number of clusters, so a search over
``n_clusters`` can train the autoencoder once per data set and load it
afterwards. An entry is a ``torch.save`` file of tensors and floats (the
state dict and the loss curve), loaded with ``weights_only=True``; its name
is a hash of the data, the pretraining parameters and what else changes the
trained weights (torch's thread count and the versions).
"""

import os
import tempfile
import warnings

import joblib
import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils.validation import check_memory

from .._row_chunks import RowChunks


def pretrain_cache(memory):
    """The cache that the ``memory`` parameter names, or None if it caches nothing.

    Parameters
    ----------
    memory : None, str or joblib.Memory
        ``None`` and ``joblib.Memory(location=None)`` cache nothing; a
        ``str`` is a directory; a ``joblib.Memory`` lends its location.

    Returns
    -------
    cache : PretrainCache or None

    Raises
    ------
    ValueError
        If ``memory`` is neither, or a Memory-like object without a
        ``location``.
    """
    if memory is None:
        return None
    memory = check_memory(memory)
    if not hasattr(memory, "location"):
        raise ValueError(
            f"memory={memory!r} has no location; pass a directory or a "
            "joblib.Memory to cache the pretrained autoencoder."
        )
    if memory.location is None:
        return None
    # Under joblib's own folder, so that memory.clear() removes our entries too.
    directory = os.path.join(
        memory.store_backend.location, "deepcluster_sk", "pretrained_autoencoder"
    )
    return PretrainCache(directory)


def cache_key(X, params):
    """A hex digest of ``X``, ``params`` and the versions and torch threads.

    Parameters
    ----------
    X : ndarray, scipy sparse matrix or RowChunks
        The validated training data.
    params : dict
        Every setting that changes the pretrained weights.

    Returns
    -------
    key : str
    """
    from .. import __version__  # the package is fully imported by fit time

    if isinstance(X, RowChunks):
        # Read by chunks, never whole: the same values in memory would hash
        # differently, and cache apart.
        data = ("chunks", X.digest())
    elif sp.issparse(X):
        data = ("csr", X.shape, X.indptr, X.indices, X.data)
    else:
        data = ("dense", np.ascontiguousarray(X))
    return joblib.hash(
        {
            "data": data,
            "params": params,
            # The thread count changes the float summation order, hence the
            # weights: a cached network is exactly what this process trains.
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "deepcluster_sk": __version__,
        }
    )


class PretrainCache:
    """Pretrained autoencoders stored as ``<directory>/<key>.pt``.

    Several processes may share the directory: an entry is written to a
    temporary file and renamed into place, so a reader sees either nothing
    or a whole file.

    Parameters
    ----------
    directory : str
        Created on the first write.
    """

    def __init__(self, directory):
        self.directory = directory

    def _path(self, key):
        return os.path.join(self.directory, f"{key}.pt")

    def load(self, key, module):
        """Load the weights stored under ``key`` into ``module``; return its losses.

        Returns None, leaving ``module`` as it was, when there is no entry.
        An unreadable entry, or one whose weights do not fit ``module``,
        warns and counts as missing; the next :meth:`save` replaces it.
        """
        path = self._path(key)
        if not os.path.exists(path):
            return None
        try:
            entry = torch.load(path, map_location="cpu", weights_only=True)
            state_dict, losses = entry["state_dict"], entry["losses"]
            _check_fits(module, state_dict)
        except Exception as exc:  # a damaged file must not end the fit
            warnings.warn(
                f"Ignoring the unreadable cached autoencoder {path}: {exc}",
                UserWarning,
                stacklevel=3,
            )
            return None
        module.load_state_dict(state_dict)
        return losses

    def save(self, key, state_dict, losses):
        """Store a CPU copy of ``state_dict`` and the list ``losses`` under ``key``.

        A failed write warns and leaves the cache as it was: the fit goes on.
        """
        entry = {
            "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
            "losses": [float(loss) for loss in losses],
        }
        tmp = None
        try:
            os.makedirs(self.directory, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            with os.fdopen(fd, "wb") as file:
                torch.save(entry, file)
            os.replace(tmp, self._path(key))
        except OSError as exc:
            if tmp is not None and os.path.exists(tmp):
                os.remove(tmp)
            warnings.warn(
                f"Could not cache the pretrained autoencoder in "
                f"{self.directory}: {exc}",
                UserWarning,
                stacklevel=3,
            )


def _check_fits(module, state_dict):
    """Raise a ``ValueError`` unless ``state_dict`` has ``module``'s names and shapes.

    Checked before loading, which would otherwise copy some tensors before
    failing on others.
    """
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in state_dict.items()}
    if expected != found:
        raise ValueError(
            f"its weights do not fit {type(module).__name__} (names or shapes differ)"
        )
