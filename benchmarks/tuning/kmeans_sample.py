"""k-means on a sample of a large embedding, against k-means on all of it.

The rule behind ``KMEANS_SAMPLE`` in ``_estimators/_autoencoder.py``: for
1 000 000 points, the time of scikit-learn's ``KMeans(n_init=20)`` on all
rows and on uniform samples, the inertia of the sample's centres over all
rows relative to the full fit's, and the agreement of the labels (ARI).
Two data sets: 10 Gaussian blobs in 10 dimensions, and the 10-dimensional
embedding of full MNIST by a briefly pretrained autoencoder repeated with
noise to a million rows (``--data-dir``, optional). Usage::

    python benchmarks/tuning/kmeans_sample.py [--data-dir ../shared/data/mnist]

Writes ``benchmarks/results/tuning/kmeans_sample.md``.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from deepcluster_sk._estimators._autoencoder import kmeans_centers

N_ROWS = 1_000_000
SAMPLES = (50_000, 100_000, 200_000)


def mnist_embedding(data_dir):
    from deepcluster_sk import AutoencoderKMeans
    from deepcluster_sk.datasets import load_mnist

    X, _ = load_mnist(data_dir)
    X = X.reshape(len(X), -1).astype(np.float32)
    model = AutoencoderKMeans(n_clusters=10, pretrain_epochs=3, random_state=0).fit(X)
    Z = model.transform(X)
    rng = np.random.RandomState(0)
    rows = rng.randint(len(Z), size=N_ROWS)
    return Z[rows] + rng.normal(scale=0.01 * Z.std(), size=(N_ROWS, Z.shape[1])).astype(
        np.float32
    )


def compare(name, Z):
    lines = []
    start = time.perf_counter()
    full = KMeans(10, n_init=20, random_state=0).fit(Z.astype(np.float64))
    full_s = time.perf_counter() - start
    lines.append(f"| {name} | all {len(Z):,} | {full_s:.1f} | 1 | 1 |")
    embedding = torch.from_numpy(np.ascontiguousarray(Z, dtype=np.float32))
    for size in SAMPLES:
        start = time.perf_counter()
        centers, labels = kmeans_centers(embedding, 10, 20, 0, sample_size=size)
        seconds = time.perf_counter() - start
        inertia = float(((Z.astype(np.float64) - centers[labels]) ** 2).sum())
        lines.append(
            f"| {name} | sample {size:,} | {seconds:.1f} | "
            f"{inertia / full.inertia_:.5f} | "
            f"{adjusted_rand_score(full.labels_, labels):.4f} |"
        )
        print(lines[-1], flush=True)
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default="benchmarks/results/tuning/kmeans_sample.md")
    args = parser.parse_args()
    X, _ = make_blobs(N_ROWS, 10, centers=10, cluster_std=2.0, random_state=0)
    rows = compare("10 blobs, 10 dims", X.astype(np.float32))
    if args.data_dir:
        rows += compare("MNIST embedding x14 + noise", mnist_embedding(args.data_dir))
    text = [
        "# k-means on a sample of the embedding",
        "",
        f"`python benchmarks/tuning/kmeans_sample.py"
        f"{' --data-dir ' + args.data_dir if args.data_dir else ''}`, "
        f"{time.strftime('%Y-%m-%d')}, 2-core CPU; KMeans(10, n_init=20), "
        f"{N_ROWS:,} rows. Inertia over all rows relative to the fit on all rows; "
        "ARI of the labels against it.",
        "",
        "| data | fitted on | seconds | inertia ratio | ARI |",
        "| --- | --- | --- | --- | --- |",
        *rows,
    ]
    Path(args.out).write_text("\n".join(text) + "\n")
    print("\n".join(text))


if __name__ == "__main__":
    main()
