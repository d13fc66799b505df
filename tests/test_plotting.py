"""The plotting helpers return figures with the expected axes and images."""

import sys

import numpy as np
import pytest
from sklearn.datasets import load_digits

from deepcluster_sk import AutoencoderKMeans, DECClusterer
from deepcluster_sk import plotting

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def small_digits():
    X, y = load_digits(return_X_y=True)
    return (X[:300] / 16).astype(np.float32), y[:300]


@pytest.fixture(scope="module")
def dec(small_digits):
    X, _ = small_digits
    return DECClusterer(
        4,
        hidden_dims=(16,),
        n_components=3,
        pretrain_epochs=5,
        batch_size=64,
        max_iter=20,
        update_interval=10,
        n_init=2,
        random_state=0,
    ).fit(X)


def test_cluster_samples_one_row_of_images_per_cluster(dec, small_digits):
    X, _ = small_digits
    fig = plotting.plot_cluster_samples(dec, X, (8, 8), n_samples=5)
    assert len(fig.axes) == 4 * 5
    assert all(len(ax.images) == 1 for ax in fig.axes)
    # The first image of each row is the sample most confident in that cluster.
    q = dec.predict_proba(X)
    for j in range(4):
        shown = fig.axes[j * 5].images[0].get_array()
        np.testing.assert_allclose(shown, X[q[:, j].argmax()].reshape(8, 8))


def test_cluster_samples_checks_its_input(dec, small_digits):
    X, _ = small_digits
    with pytest.raises(ValueError, match="image_shape"):
        plotting.plot_cluster_samples(dec, X, (7, 7))
    with pytest.raises(ValueError, match="n_samples"):
        plotting.plot_cluster_samples(dec, X[:3], (8, 8), n_samples=5)
    model = AutoencoderKMeans(2, hidden_dims=(8,), pretrain_epochs=1, n_init=1)
    with pytest.raises(TypeError, match="predict_proba"):
        plotting.plot_cluster_samples(model, X, (8, 8))


def test_embedding_tsne_scatter(dec, small_digits):
    X, _ = small_digits
    ax = plotting.plot_embedding(dec.transform(X), dec.labels_, max_samples=100, title="t")
    assert len(ax.collections) == 1
    assert ax.collections[0].get_offsets().shape == (100, 2)
    assert ax.get_title() == "t"


def test_embedding_two_dimensional_is_drawn_as_is_into_given_axes():
    Z = np.random.default_rng(0).normal(size=(50, 2))
    fig, ax = plt.subplots()
    assert plotting.plot_embedding(Z, np.arange(50) % 3, ax=ax) is ax
    np.testing.assert_allclose(ax.collections[0].get_offsets(), Z)
    with pytest.raises(ValueError, match="labels"):
        plotting.plot_embedding(Z, np.zeros(3))


def test_history_of_dec_has_three_curves(dec):
    fig = plotting.plot_history(dec)
    assert len(fig.axes) == 3
    pretrain, kl, change = fig.axes
    assert len(pretrain.lines[0].get_xdata()) == len(dec.history_["pretrain_loss"])
    np.testing.assert_array_equal(kl.lines[0].get_xdata(), dec.history_["iteration"])


def test_history_of_autoencoder_kmeans_has_one_curve():
    fig = plotting.plot_history({"pretrain_loss": [1.0, 0.5, 0.2]})
    assert len(fig.axes) == 1
    with pytest.raises(ValueError, match="history"):
        plotting.plot_history({})


def test_missing_matplotlib_names_the_plot_extra(monkeypatch, dec, small_digits):
    X, _ = small_digits
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"\[plot\]"):
        plotting.plot_cluster_samples(dec, X, (8, 8))
