"""Can an internal score of the clusters choose UMAP's ``n_neighbors``?

For each data set and seed, N2DClusterer's defaults train the autoencoder;
the manifold step then runs with 20 and with 40 neighbours on the same
embedding, and each labelling is scored without labels on the embedding
(silhouette, Calinski-Harabasz, Davies-Bouldin), on the input (silhouette)
and by the mixture's mean log-likelihood on its own coordinates; ACC says
which choice was right. One JSON line per fit. Run alone on the machine::

    python benchmarks/tuning/neighbour_choice.py \\
        > benchmarks/results/tuning/neighbour_choice.jsonl

``neighbour_count.md`` summarises it.
"""

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from auto_defaults import datasets, warm_up, warm_up_umap  # noqa: E402
from neighbour_count import subsets  # noqa: E402

from deepcluster_sk import N2DClusterer  # noqa: E402
from deepcluster_sk._manifold import fit_mixture, umap_coordinates  # noqa: E402
from deepcluster_sk.metrics import cluster_accuracy  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist-dir", default="../shared/data/mnist")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    warm_up()
    warm_up_umap()
    X, y, _ = datasets("digits", None)["digits"]
    found = subsets(args.mnist_dir)
    table, table_y, _ = datasets("tabular", None)["digits_pca20"]
    sets = {"digits": (X, y), "digits1000": found["digits1000"],
            "digits_pca20": (StandardScaler().fit_transform(table), table_y),
            "mnist2000": found["mnist2000"]}
    for name, (Xs, ys) in sets.items():
        for seed in args.seeds:
            model = N2DClusterer(10, random_state=seed, device="cpu").fit(Xs)
            embedding = model._fit_embedding_
            row = {"data": name, "seed": seed}
            for k in (20, 40):
                coordinates = umap_coordinates(embedding, n_neighbors=k, n_components=10,
                                               min_dist=0.0, random_state=seed + 7,
                                               n_epochs=200)
                clustering = fit_mixture(coordinates, 10, covariance_type="full",
                                         n_init=5, random_state=seed)
                labels = clustering.labels
                row[f"acc{k}"] = cluster_accuracy(ys, labels)
                row[f"sil{k}"] = float(silhouette_score(embedding, labels))
                row[f"ch{k}"] = float(calinski_harabasz_score(embedding, labels))
                row[f"db{k}"] = float(davies_bouldin_score(embedding, labels))
                row[f"silx{k}"] = float(silhouette_score(Xs, labels))
                row[f"ll{k}"] = float(clustering.mixture.score(coordinates))
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
