"""
Clustering the manifold of an embedding: N2D against UMAP + a mixture
=====================================================================

What many users run today to cluster images or embeddings is UMAP followed
by a Gaussian mixture. :class:`~deepcluster_sk.N2DClusterer` runs the same
two steps on an autoencoder's embedding instead of the raw pixels
(McConville et al., 2019), and :class:`~deepcluster_sk.DECClusterer` starts
its self-training from those clusters on data of this size
(``init="auto"``). Here all of them, with their defaults, next to
:class:`~sklearn.cluster.KMeans` on scikit-learn's digits.

One seed on one data set; the user guide's :ref:`family` page has the
figures over several seeds and on MNIST. Needs umap-learn
(``pip install 'deepcluster-sk[umap]'``).
"""

import time

import matplotlib.pyplot as plt
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits
from sklearn.metrics import normalized_mutual_info_score
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import make_pipeline
from umap import UMAP

from deepcluster_sk import DECClusterer, N2DClusterer
from deepcluster_sk.metrics import cluster_accuracy

X, y = load_digits(return_X_y=True)
X = X / 16.0

models = {
    "KMeans": KMeans(n_clusters=10, n_init=10, random_state=0),
    "UMAP + GMM (pixels)": make_pipeline(
        UMAP(n_neighbors=20, min_dist=0.0, n_components=10, random_state=0),
        GaussianMixture(10, covariance_type="full", random_state=0),
    ),
    "N2DClusterer": N2DClusterer(n_clusters=10, random_state=0),
    "DECClusterer": DECClusterer(n_clusters=10, random_state=0),
}
print(f"{'method':<20} {'ACC':>6} {'NMI':>6} {'fit s':>6}")
for name, model in models.items():
    start = time.perf_counter()
    labels = model.fit(X).predict(X) if name.startswith("UMAP") else model.fit_predict(X)
    seconds = time.perf_counter() - start
    acc = cluster_accuracy(y, labels)
    print(f"{name:<20} {acc:6.3f} {normalized_mutual_info_score(y, labels):6.3f} "
          f"{seconds:6.1f}")

# %%
# What N2D fitted: ``embedding_`` holds the manifold coordinates of the
# training samples, ``mixture_`` the Gaussian mixture on them, and
# ``transform`` places new samples there (at UMAP's weighted average of their
# nearest training samples), so ``predict`` works on data it has not seen.
n2d = models["N2DClusterer"]
print(n2d.manifold_, n2d.n_neighbors_, n2d.embedding_.shape)
print(n2d.predict(X[:10]), y[:10])

fig, ax = plt.subplots(figsize=(5.5, 4.5), layout="constrained")
points = ax.scatter(*n2d.embedding_[:, :2].T, c=n2d.labels_, cmap="tab10", s=4)
ax.set_xlabel("manifold coordinate 1")
ax.set_ylabel("manifold coordinate 2")
ax.set_title("Digits on N2D's manifold (first 2 of 10 coordinates)")
fig.colorbar(points, ax=ax, label="cluster")
plt.show()
