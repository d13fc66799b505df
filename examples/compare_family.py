"""
The estimators of the family side by side
=========================================

The estimators of the package, with their defaults, next to
:class:`~sklearn.cluster.KMeans` on scikit-learn's digits: DEC, IDEC (DEC
that keeps the decoder's reconstruction loss during self-training,
``reconstruction_weight=1``), N2D (UMAP and a Gaussian mixture on the
autoencoder's embedding), autoencoder + k-means, IMSAT and DAC.

One seed on one data set: a sketch of how to compare them on your own
data, not a ranking. The user guide's :ref:`family` page gives the
multi-seed figures from the benchmarks.
"""

import time

import matplotlib.pyplot as plt
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits
from sklearn.metrics import normalized_mutual_info_score

from deepcluster_sk import (
    AutoencoderKMeans,
    DACClusterer,
    DECClusterer,
    IMSATClusterer,
    N2DClusterer,
)
from deepcluster_sk.metrics import cluster_accuracy

X, y = load_digits(return_X_y=True)
X = X / 16.0

models = {
    "KMeans": KMeans(n_clusters=10, n_init=10, random_state=0),
    "AutoencoderKMeans": AutoencoderKMeans(n_clusters=10, random_state=0),
    "DEC": DECClusterer(n_clusters=10, random_state=0),
    "IDEC": DECClusterer(n_clusters=10, reconstruction_weight=1, random_state=0),
    "N2D": N2DClusterer(n_clusters=10, random_state=0),
    "IMSAT": IMSATClusterer(n_clusters=10, random_state=0),
    "DAC": DACClusterer(n_clusters=10, random_state=0),
}
results = {}
print(f"{'method':<18} {'ACC':>6} {'NMI':>6} {'fit s':>6}")
for name, model in models.items():
    start = time.perf_counter()
    labels = model.fit_predict(X)
    seconds = time.perf_counter() - start
    results[name] = (cluster_accuracy(y, labels), normalized_mutual_info_score(y, labels), seconds)
    print(f"{name:<18} {results[name][0]:6.3f} {results[name][1]:6.3f} {seconds:6.1f}")

# %%
# Accuracy and fit time. On a CPU, IMSAT is the fastest of the deep
# estimators on small data; DEC and IDEC pay for pretraining an autoencoder.
fig, (ax_acc, ax_time) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
names = list(results)
ax_acc.barh(names, [results[n][0] for n in names], color="tab:blue")
ax_acc.set_xlabel("clustering accuracy")
ax_acc.set_xlim(0, 1)
ax_acc.invert_yaxis()
ax_time.barh(names, [results[n][2] for n in names], color="tab:gray")
ax_time.set_xlabel("fit seconds (this machine)")
ax_time.invert_yaxis()
fig.suptitle(f"Digits, {X.shape[0]} samples, random_state=0")
plt.show()
