"""Cluster scikit-learn's digits with DECClusterer, KMeans and GaussianMixture.

Run:  python examples/quickstart.py

Prints accuracy (best one-to-one match of clusters to digits), NMI, ARI and
fit seconds for each method. DECClusterer uses the small-data setting that
benchmarks/digits.py measures: a narrower network than the paper's default
(500, 500, 2000), which is sized for 70 000 MNIST images, and small batches
with a larger pretraining step so that 1 797 images still give it enough
updates.
"""

import time

from sklearn.cluster import KMeans
from sklearn.datasets import load_digits
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.mixture import GaussianMixture

from deepcluster_sk import DECClusterer
from deepcluster_sk.metrics import cluster_accuracy

#: The documented small-data setting of DECClusterer (see README.md).
SMALL_DATA = dict(hidden_dims=(128, 128, 256), batch_size=64, pretrain_learning_rate=3e-3)


def main():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    models = {
        "DECClusterer": DECClusterer(n_clusters=10, **SMALL_DATA, random_state=0),
        "KMeans": KMeans(n_clusters=10, n_init=20, random_state=0),
        "GaussianMixture": GaussianMixture(n_components=10, random_state=0),
    }
    print(f"digits: {X.shape[0]} samples x {X.shape[1]} features, 10 classes\n")
    print(f"{'method':<16} {'ACC':>6} {'NMI':>6} {'ARI':>6} {'fit s':>7}")
    for name, model in models.items():
        start = time.perf_counter()
        labels = model.fit_predict(X)
        seconds = time.perf_counter() - start
        print(
            f"{name:<16} {cluster_accuracy(y, labels):6.3f} "
            f"{normalized_mutual_info_score(y, labels):6.3f} "
            f"{adjusted_rand_score(y, labels):6.3f} {seconds:7.1f}"
        )


if __name__ == "__main__":
    main()
