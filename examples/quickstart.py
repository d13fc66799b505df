"""Cluster scikit-learn's digits with DECClusterer, KMeans and GaussianMixture.

Run:  python examples/quickstart.py

Prints accuracy (best one-to-one match of clusters to digits), NMI, ARI and
fit seconds for each method. DECClusterer runs with its defaults, which size
the network, the batch and the training length from the data (here a
128-128-256 encoder, batches of 64 and about 5 000 pretraining steps); the
fitted ``hidden_dims_``, ``batch_size_`` and ``pretrain_epochs_`` show them.
"""

import time

from sklearn.cluster import KMeans
from sklearn.datasets import load_digits
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.mixture import GaussianMixture

from deepcluster_sk import DECClusterer
from deepcluster_sk.metrics import cluster_accuracy

def main():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    models = {
        "DECClusterer": DECClusterer(n_clusters=10, random_state=0),
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
