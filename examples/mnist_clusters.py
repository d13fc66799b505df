"""
What each cluster is most confident about
=========================================

For every DEC cluster, the images it assigns most confidently (the highest
soft assignments ``q_ij``), one row per cluster: figure 2 of the DEC paper.

The example uses MNIST when the files are at hand: a stratified sample of
5 000 of its 70 000 digits from ``../shared/data/mnist`` next to the
repository, or from the folder named by the ``MNIST_DIR`` environment
variable (nothing is downloaded; see
:func:`~deepcluster_sk.datasets.load_mnist`). Otherwise it falls back to
scikit-learn's 8 x 8 digits and says so.
"""

import os
from pathlib import Path

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from deepcluster_sk import DECClusterer
from deepcluster_sk.datasets import load_mnist
from deepcluster_sk.metrics import cluster_accuracy
from deepcluster_sk.plotting import plot_cluster_samples

try:
    HERE = Path(__file__).resolve().parent
except NameError:  # sphinx-gallery runs the example from its own folder
    HERE = Path.cwd()
MNIST_DIR = Path(os.environ.get("MNIST_DIR", HERE.parent.parent / "shared" / "data" / "mnist"))

if MNIST_DIR.is_dir():
    X, y = load_mnist(MNIST_DIR)
    X, _, y, _ = train_test_split(X, y, train_size=5000, stratify=y, random_state=0)
    image_shape, name = (28, 28), "MNIST (5 000 of 70 000 images)"
else:
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    image_shape, name = (8, 8), "scikit-learn's digits"
    print(f"No MNIST files in {MNIST_DIR}; using scikit-learn's digits instead.")
print(f"{name}: {X.shape[0]} images of {image_shape[0]} x {image_shape[1]} pixels")

# %%
# Fit with the defaults, which size the network and the training for this
# data, and report the accuracy against the true digits.
dec = DECClusterer(n_clusters=10, random_state=0).fit(X)
print(f"DEC: ACC {cluster_accuracy(y, dec.labels_):.3f}, "
      f"network {dec.hidden_dims_}, {dec.pretrain_epochs_} pretraining epochs")

# %%
# Row ``j`` shows the ten samples with the highest ``q_ij``, most confident
# first. A row of one digit is a clean cluster; a row that mixes two digits
# shows which ones the clustering confuses.
fig = plot_cluster_samples(dec, X, image_shape, n_samples=10)
fig.suptitle(f"Most confident samples per DEC cluster, {name}")
plt.show()
