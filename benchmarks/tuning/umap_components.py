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

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from auto_defaults import datasets, warm_up, warm_up_umap  # noqa: E402
from neighbour_count import subsets  # noqa: E402

from deepcluster_sk import N2DClusterer  # noqa: E402
from deepcluster_sk._manifold import fit_mixture, umap_coordinates  # noqa: E402
from deepcluster_sk.metrics import cluster_accuracy  # noqa: E402

COMPONENTS = (3, 5, 10)


def data_sets(mnist_dir):
    """``{name: (X, y, embeddings, umap_seeds)}``."""
    X, y, _ = datasets("digits", None)["digits"]
    found = subsets(mnist_dir)
    table, table_y, _ = datasets("tabular", None)["digits_pca20"]
    images, labels, _ = datasets("mnist-test", mnist_dir)["mnist_test"]
    return {
        "digits": (X, y, 5, 5),
        "digits_pca20": (StandardScaler().fit_transform(table), table_y, 5, 5),
        "mnist2000": (*found["mnist2000"], 5, 5),
        "digits1000": (*found["digits1000"], 5, 5),
        "mnist1000": (*found["mnist1000"], 5, 5),
        "mnist_test": (images, labels, 3, 2),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist-dir", default="../shared/data/mnist")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    warm_up()
    warm_up_umap()
    for name, (X, y, n_embeddings, n_umaps) in data_sets(args.mnist_dir).items():
        for seed in range(n_embeddings):
            model = N2DClusterer(10, random_state=seed, device="cpu").fit(X)
            embedding = model._fit_embedding_
            row = {"data": name, "seed": seed,
                   "default": round(cluster_accuracy(y, model.labels_), 4)}
            for c in COMPONENTS:
                row[f"c{c}"] = []
                for umap_seed in range(n_umaps):
                    start = time.perf_counter()
                    coordinates = umap_coordinates(
                        embedding, n_neighbors=20, n_components=c, min_dist=0.0,
                        random_state=seed * 100 + umap_seed + 1, n_epochs=200)
                    clustering = fit_mixture(coordinates, 10, covariance_type="full",
                                             n_init=5, random_state=seed * 100 + umap_seed)
                    row[f"c{c}"].append(round(cluster_accuracy(y, clustering.labels), 4))
                    row[f"c{c}_s"] = round(time.perf_counter() - start, 2)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
