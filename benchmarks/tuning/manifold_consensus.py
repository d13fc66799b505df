"""Does a consensus of several UMAP + mixture runs beat one run?

For each data set and seed N2DClusterer's defaults train the autoencoder;
the manifold step then runs five times on that embedding (UMAP seeds 1-5,
20 neighbours, 10 components). The five labellings are combined through
their co-association matrix (the fraction of runs that put two samples
together) by average-linkage agglomerative clustering and by spectral
clustering. One JSON line per embedding. Run alone on the machine::

    python benchmarks/tuning/manifold_consensus.py \\
        > benchmarks/results/tuning/manifold_consensus.jsonl

The co-association matrix is ``n_samples ** 2`` floats: a probe for small
data, not a method for MNIST as it stands.
"""

import json
import sys
from pathlib import Path

import numpy as np
from sklearn.cluster import AgglomerativeClustering, SpectralClustering

sys.path.insert(0, str(Path(__file__).resolve().parent))
from manifold_sets import manifold_step, n2d_fit, start_study, study_sets  # noqa: E402

from deepcluster_sk.metrics import cluster_accuracy  # noqa: E402

SETS = ("digits", "digits_pca20", "mnist2000")
RUNS = 5


def main():
    args = start_study(__doc__.splitlines()[0])
    for name, (Xs, ys) in study_sets(SETS, args.mnist_dir).items():
        for seed in range(5):
            embedding = n2d_fit(Xs, seed)._fit_embedding_
            labellings = []
            for run in range(RUNS):
                _, clustering = manifold_step(
                    embedding, n_neighbors=20, n_components=10,
                    umap_seed=seed * 100 + run + 1, mixture_seed=seed * 100 + run)
                labellings.append(clustering.labels)
            one_hot = np.concatenate([np.eye(10)[labels] for labels in labellings], axis=1)
            together = one_hot @ one_hot.T / RUNS
            linkage = AgglomerativeClustering(10, metric="precomputed", linkage="average")
            spectral = SpectralClustering(10, affinity="precomputed", random_state=seed)
            runs = [cluster_accuracy(ys, labels) for labels in labellings]
            print(json.dumps({
                "data": name, "seed": seed, "runs": [round(a, 4) for a in runs],
                "mean": round(float(np.mean(runs)), 4),
                "avg_link": round(cluster_accuracy(ys, linkage.fit_predict(1 - together)), 4),
                "spectral": round(cluster_accuracy(ys, spectral.fit_predict(together + 1e-6)), 4),
            }), flush=True)


if __name__ == "__main__":
    main()
