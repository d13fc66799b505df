"""UMAP's output dimension for the manifold step: 3, 5 or N2D's 10?

For each data set and seed N2DClusterer's defaults train the autoencoder;
the manifold step then runs on that embedding with 3, 5 and 10 UMAP
components, over several UMAP seeds each (the spread between UMAP seeds on
one embedding is as large as the spread between fits). One JSON line per
embedding. Run alone on the machine::

    python benchmarks/tuning/umap_components.py \\
        > benchmarks/results/tuning/umap_components.jsonl

Data: digits, its first 1 000 rows, the 1 000-row digits table of the
tabular suite, 1 000 and 2 000 random MNIST test images (5 embeddings x 5
UMAP seeds) and the whole MNIST test split (3 x 2).
"""

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from manifold_sets import manifold_step, n2d_fit, start_study, study_sets  # noqa: E402

from deepcluster_sk.metrics import cluster_accuracy  # noqa: E402

COMPONENTS = (3, 5, 10)

#: Embeddings (fits) and UMAP seeds per embedding of each data set.
RUNS = {"digits": (5, 5), "digits_pca20": (5, 5), "mnist2000": (5, 5),
        "digits1000": (5, 5), "mnist1000": (5, 5), "mnist_test": (3, 2)}


def main():
    args = start_study(__doc__.splitlines()[0])
    for name, (X, y) in study_sets(RUNS, args.mnist_dir).items():
        n_embeddings, n_umaps = RUNS[name]
        for seed in range(n_embeddings):
            model = n2d_fit(X, seed)
            embedding = model._fit_embedding_
            row = {"data": name, "seed": seed,
                   "default": round(cluster_accuracy(y, model.labels_), 4)}
            for c in COMPONENTS:
                row[f"c{c}"] = []
                for umap_seed in range(n_umaps):
                    start = time.perf_counter()
                    _, clustering = manifold_step(
                        embedding, n_neighbors=20, n_components=c,
                        umap_seed=seed * 100 + umap_seed + 1,
                        mixture_seed=seed * 100 + umap_seed)
                    row[f"c{c}"].append(round(cluster_accuracy(y, clustering.labels), 4))
                    row[f"c{c}_s"] = round(time.perf_counter() - start, 2)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
