"""
The embedding before and after self-training
============================================

DEC starts from an autoencoder and k-means in its embedding, then trains
the encoder further so that every sample moves towards the centre it is
most confident about (minimising ``KL(P || Q)``). This example draws the
digits embedding at both stages with t-SNE, coloured by cluster.

"Before" is ``DECClusterer(init="kmeans", max_iter=0)``, which stops after
pretraining and k-means (autoencoder + k-means); "after" is the same model
with the same seed after self-training. ``init="kmeans"`` is the paper's
start; on data of this size the default (``init="auto"``) starts instead
from the clusters of the embedding's UMAP manifold
(:ref:`sphx_glr_auto_examples_n2d_manifold.py`).
"""

import matplotlib.pyplot as plt
from sklearn.base import clone
from sklearn.datasets import load_digits

from deepcluster_sk import DECClusterer
from deepcluster_sk.metrics import cluster_accuracy
from deepcluster_sk.plotting import plot_embedding

X, y = load_digits(return_X_y=True)
X = X / 16.0

dec = DECClusterer(n_clusters=10, init="kmeans", random_state=0)
models = {
    "before: autoencoder + k-means": clone(dec).set_params(max_iter=0).fit(X),
    "after: DEC self-training": dec.fit(X),
}

# %%
# :func:`~deepcluster_sk.plotting.plot_embedding` reduces the
# 10-dimensional embedding (``transform``) to two dimensions with t-SNE.
fig, axes = plt.subplots(1, 2, figsize=(11, 5.5), layout="constrained")
for ax, (name, model) in zip(axes, models.items()):
    acc = cluster_accuracy(y, model.labels_)
    print(f"{name}: ACC {acc:.3f}")
    plot_embedding(
        model.transform(X), model.labels_, ax=ax, title=f"{name} (ACC {acc:.3f})"
    )
plt.show()
