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

import json
import sys
from pathlib import Path

from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from manifold_sets import manifold_step, n2d_fit, start_study, study_sets  # noqa: E402

from deepcluster_sk.metrics import cluster_accuracy  # noqa: E402

SETS = ("digits", "digits1000", "digits_pca20", "mnist2000")


def main():
    args = start_study(
        __doc__.splitlines()[0],
        (("--seeds",), dict(type=int, nargs="+", default=[0, 1, 2, 3, 4])),
    )
    for name, (Xs, ys) in study_sets(SETS, args.mnist_dir).items():
        for seed in args.seeds:
            embedding = n2d_fit(Xs, seed)._fit_embedding_
            row = {"data": name, "seed": seed}
            for k in (20, 40):
                coordinates, clustering = manifold_step(
                    embedding, n_neighbors=k, n_components=10, umap_seed=seed + 7,
                    mixture_seed=seed)
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
