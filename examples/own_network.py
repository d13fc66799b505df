"""
Bring your own network
======================

Every estimator trains the network its ``autoencoder`` (DEC, IDEC,
AutoencoderKMeans) or ``network`` (IMSAT, DAC) parameter names: ``None``
for the package's fully connected one, a :class:`torch.nn.Module` class
built with the ``autoencoder__*`` parameters, or an instance.

Here, on scikit-learn's digits as 8 x 8 images: the package's
:class:`~deepcluster_sk.nn.ConvAutoencoder`, a network class of our own for
IMSAT, and what happens when a module breaks the contract. The user guide's
:ref:`networks` page gives the contract and the measured comparison on
MNIST.
"""

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from torch import nn

from deepcluster_sk import AutoencoderKMeans, IMSATClusterer
from deepcluster_sk.metrics import cluster_accuracy, cluster_accuracy_scorer
from deepcluster_sk.nn import ConvAutoencoder

X, y = load_digits(return_X_y=True)
images = (X / 16.0).reshape(-1, 1, 8, 8)  # (n_samples, channels, height, width)

# %%
# A convolutional autoencoder, and a grid search over one of its parameters
# -------------------------------------------------------------------------
# Its parameters are the estimator's, with the prefix ``autoencoder__``, so
# ``GridSearchCV`` can tune them like any other. Scored here with the labels;
# without them, ``AutoencoderKMeans.score`` (minus the k-means objective)
# works too.

model = AutoencoderKMeans(
    n_clusters=10,
    autoencoder=ConvAutoencoder,
    autoencoder__kernel_sizes=(3, 3),
    pretrain_epochs=30,
    random_state=0,
)
search = GridSearchCV(
    model,
    {"autoencoder__channels": [(8, 16), (32, 64)]},
    scoring=cluster_accuracy_scorer,
    cv=2,
).fit(images, y)
for channels, acc in zip(
    search.cv_results_["param_autoencoder__channels"],
    search.cv_results_["mean_test_score"],
):
    print(f"channels {channels}: held-out ACC {acc:.3f}")
best = search.best_estimator_
print("best:", search.best_params_, "embedding", best.transform(images).shape)

# %%
# A network class of your own
# ---------------------------
# IMSAT trains a network whose softmax is the clustering: it maps a batch to
# ``(batch, n_clusters)`` logits. The estimator passes ``n_clusters`` (and
# ``input_shape``, ``n_features``, ``generator``) to a constructor that takes
# them; the rest comes from the ``network__*`` parameters.


class SmallConvNet(nn.Module):
    """Two convolutions, pooling, and the logits."""

    def __init__(self, n_clusters, channels=16):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(channels, 2 * channels, 3, padding=1),
            nn.BatchNorm2d(2 * channels), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(8 * channels, n_clusters),
        )

    def forward(self, x):
        return self.layers(x)


imsat = IMSATClusterer(
    n_clusters=10, network=SmallConvNet, network__channels=16, eps_scale=1.0,
    random_state=0,
).fit(images)
print(f"IMSAT with a convnet: ACC {cluster_accuracy(y, imsat.labels_):.3f}")

# %%
# A broken contract is reported before training
# ---------------------------------------------
# One forward pass on two rows checks the shapes; this network forgets the
# clusters and returns 16 values per sample.

broken = IMSATClusterer(
    n_clusters=10, network=nn.Sequential(nn.Flatten(), nn.Linear(64, 16))
)
try:
    broken.fit(images)
except ValueError as error:
    print(error)

# %%
# What each cluster of the convolutional autoencoder holds
# --------------------------------------------------------

labels = best.predict(images)
fig, axes = plt.subplots(10, 8, figsize=(6, 7.5))
for cluster, row in enumerate(axes):
    members = images[labels == cluster][: len(row)]
    for ax in row:
        ax.axis("off")
    for ax, image in zip(row, members):
        ax.imshow(image[0], cmap="gray_r")
fig.suptitle("Eight digits of each cluster (AutoencoderKMeans + ConvAutoencoder)")
plt.show()
