"""
Data on disk: fitting on a memory map, chunk by chunk
=====================================================

Data larger than memory usually lives in a file: a ``.npy`` array, an HDF5
dataset, a zarr store. Every estimator reads such input by contiguous
chunks of rows instead of copying it: here a
:class:`~deepcluster_sk.AutoencoderKMeans` is fitted on a memory-mapped
``.npy`` file, read through :class:`~deepcluster_sk.RowChunks` in chunks of
5 000 rows, and compared with the same fit on the array in memory. The
user guide's :ref:`large_data` page has the measurements on 2 GB of MNIST.
"""

import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import make_blobs

from deepcluster_sk import AutoencoderKMeans, RowChunks
from deepcluster_sk.metrics import cluster_accuracy

# %%
# A 40 000 x 32 float32 data set written to disk, then opened as a memory
# map: nothing is read until the estimator asks for rows.
X, y = make_blobs(40_000, 32, centers=8, cluster_std=3.0, random_state=0)
folder = tempfile.TemporaryDirectory()
path = Path(folder.name) / "features.npy"
np.save(path, X.astype(np.float32))
on_disk = np.load(path, mmap_mode="r")
chunks = RowChunks(on_disk, chunk_rows=5_000)
print(chunks, f"-> {chunks.n_chunks} chunks")

# %%
# The same estimator on the memory map and on the array in memory. Training
# shuffles the chunks and the rows inside each chunk; with several chunks the
# mini-batches differ from the in-memory fit's, so the two models are close,
# not identical (with one chunk they are the same).
params = dict(n_clusters=8, pretrain_epochs=5, random_state=0)
for name, data in [("in memory", X.astype(np.float32)), ("memory map", chunks)]:
    start = time.perf_counter()
    model = AutoencoderKMeans(**params).fit(data)
    print(
        f"{name:>10}: ACC {cluster_accuracy(y, model.labels_):.3f} "
        f"in {time.perf_counter() - start:.1f} s"
    )

# %%
# Prediction reads the file chunk by chunk as well.
labels = model.predict(chunks)
print("predict on the memory map agrees with labels_:",
      bool((labels == model.labels_).all()))
folder.cleanup()
