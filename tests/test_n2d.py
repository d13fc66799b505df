"""N2DClusterer, DEC's manifold initialisation and the manifold step they share."""

import math
import sys
import warnings

import numpy as np
import pytest
import torch
from conftest import FAST_DEC
from sklearn.mixture import GaussianMixture

from deepcluster_sk import AutoencoderKMeans, DECClusterer, N2DClusterer
from deepcluster_sk._estimators._neighbourhood import MIXTURE_N_INIT
from deepcluster_sk._torch._neighbours import membership_weights, neighbour_average
from deepcluster_sk.metrics import cluster_accuracy

FAST = {
    k: FAST_DEC[k]
    for k in ("hidden_dims", "n_components", "pretrain_epochs", "batch_size", "n_init",
              "random_state")
}


@pytest.fixture(scope="module")
def fitted(blobs):
    X, _ = blobs
    return N2DClusterer(n_clusters=3, manifold=True, **FAST).fit(X)


def test_clusters_are_the_mixture_on_the_manifold(fitted, blobs):
    X, y = blobs
    assert fitted.manifold_ is True
    assert fitted.n_neighbors_ == 30 and fitted.umap_components_ == 3
    assert fitted.embedding_.shape == (X.shape[0], 3)
    assert fitted.embedding_.dtype == np.float32
    np.testing.assert_array_equal(fitted.mixture_.predict(fitted.embedding_), fitted.labels_)
    np.testing.assert_allclose(fitted.cluster_centers_, fitted.mixture_.means_, rtol=1e-6)
    assert cluster_accuracy(y, fitted.labels_) > 0.95


def test_new_samples_land_in_the_cluster_of_their_neighbours(fitted, blobs):
    X, _ = blobs
    coordinates = fitted.transform(X)
    assert coordinates.shape == fitted.embedding_.shape
    assert coordinates.dtype == np.float32
    assert np.mean(fitted.predict(X) == fitted.labels_) > 0.97
    proba = fitted.predict_proba(X)
    assert proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(proba.argmax(axis=1), fitted.predict(X))
    assert np.isfinite(fitted.score(X))


def test_a_prediction_does_not_depend_on_its_batch(fitted, blobs):
    X, _ = blobs
    whole = fitted.transform(X)
    one_by_one = np.concatenate([fitted.transform(X[i : i + 1]) for i in range(0, 40)])
    np.testing.assert_allclose(one_by_one, whole[:40], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fitted.transform(X[::-1]), whole[::-1], rtol=1e-5, atol=1e-5)


def test_same_seed_same_clusters(fitted, blobs):
    X, _ = blobs
    again = N2DClusterer(n_clusters=3, manifold=True, **FAST).fit(X)
    np.testing.assert_array_equal(again.labels_, fitted.labels_)
    np.testing.assert_array_equal(again.embedding_, fitted.embedding_)


def test_without_the_manifold_it_is_a_mixture_on_the_embedding(blobs):
    X, _ = blobs
    model = N2DClusterer(n_clusters=3, **FAST).fit(X)
    assert model.manifold_ is False  # "auto" on 300 rows
    assert not hasattr(model, "n_neighbors_")
    ae = AutoencoderKMeans(n_clusters=3, **FAST).fit(X)
    np.testing.assert_array_equal(model.transform(X), ae.transform(X))
    np.testing.assert_array_equal(model.embedding_, ae.transform(X))
    mixture = GaussianMixture(3, n_init=FAST["n_init"], random_state=0).fit(model.embedding_)
    assert cluster_accuracy(mixture.predict(model.embedding_), model.labels_) > 0.99


@pytest.mark.parametrize(
    "n_samples, expected", [(999, False), (1000, True), (70000, True)]
)
def test_auto_uses_the_manifold_from_a_thousand_samples(n_samples, expected):
    settings = N2DClusterer(n_clusters=10)._planned_settings(n_samples, 64)
    assert settings["manifold"] is expected
    dec = DECClusterer(n_clusters=10)._planned_settings(n_samples, 64)
    assert dec["init"] == ("manifold" if expected else "kmeans")


def test_dec_starts_from_the_means_of_the_manifold_clusters(blobs):
    X, _ = blobs
    # DEC's manifold start fits N2D's default mixture.
    n2d = N2DClusterer(n_clusters=3, manifold=True, **{**FAST, "n_init": MIXTURE_N_INIT})
    n2d.fit(X)
    dec = DECClusterer(n_clusters=3, init="manifold", max_iter=0, **FAST).fit(X)
    assert dec.init_ == "manifold"
    Z = dec.transform(X)
    np.testing.assert_array_equal(Z, n2d._fit_embedding_)
    means = np.stack([Z[n2d.labels_ == j].mean(axis=0) for j in range(3)])
    np.testing.assert_allclose(dec.cluster_centers_, means, rtol=1e-4, atol=1e-5)


def test_dec_kmeans_init_is_one_argument_away(digits):
    X, _ = digits
    assert DECClusterer(n_clusters=10)._planned_settings(*X.shape)["init"] == "manifold"
    settings = DECClusterer(n_clusters=10, init="kmeans")._planned_settings(*X.shape)
    assert settings["init"] == "kmeans" and "n_neighbors" not in settings


@pytest.fixture
def without_umap(monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)  # import umap raises ImportError


def test_missing_umap_learn_names_the_extra(without_umap, blobs):
    X, _ = blobs
    with pytest.raises(ImportError, match=r"deepcluster-sk\[umap\]"):
        N2DClusterer(n_clusters=3, manifold=True, **FAST).fit(X)
    with pytest.raises(ImportError, match="umap-learn"):
        DECClusterer(n_clusters=3, init="manifold", **FAST_DEC).fit(X)
    # Small data never needed it.
    N2DClusterer(n_clusters=3, **FAST).fit(X)


def test_dec_auto_init_falls_back_to_kmeans_with_a_warning(without_umap):
    with pytest.warns(UserWarning, match=r"umap-learn.*init='kmeans'"):
        settings = DECClusterer(n_clusters=10)._planned_settings(5000, 64)
    assert settings["init"] == "kmeans"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DECClusterer(n_clusters=10, init="kmeans")._planned_settings(5000, 64)


@pytest.mark.filterwarnings("ignore::UserWarning")  # umap-learn on tiny graphs
@pytest.mark.parametrize(
    "X",
    [
        np.random.RandomState(0).rand(12, 3),  # fewer samples than neighbours
        np.repeat(np.random.RandomState(1).rand(6, 3), 10, axis=0),  # duplicates
        np.random.RandomState(2).rand(40, 1),  # one feature
        np.random.RandomState(3).rand(3, 4),  # the fewest UMAP takes
    ],
    ids=["12-rows", "duplicate-rows", "one-feature", "3-rows"],
)
def test_small_or_degenerate_data_fits(X):
    model = N2DClusterer(n_clusters=2, manifold=True, **FAST).fit(X)
    assert model.n_neighbors_ <= X.shape[0] - 1
    assert model.labels_.shape == (X.shape[0],)
    assert np.isfinite(model.predict_proba(X)).all()


def test_too_few_samples_for_the_manifold_is_a_clear_error():
    X = np.random.RandomState(0).rand(2, 3)
    with pytest.raises(ValueError, match="at least 3 samples.*manifold=False"):
        N2DClusterer(n_clusters=1, manifold=True, **FAST).fit(X)
    N2DClusterer(n_clusters=1, **FAST).fit(X)  # "auto" leaves it out


@pytest.mark.parametrize("k", [1, 5, 20])
def test_membership_bandwidth_solves_umaps_equation(k):
    distances = torch.rand(50, k, generator=torch.Generator().manual_seed(k)).sort(1).values
    weights = membership_weights(distances)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(50))
    assert (weights >= 0).all()
    if k > 1:
        # Unnormalised, the weights sum to log2(k): recover the bandwidth
        # from the ratio of the nearest and farthest weights.
        ratio = (weights[:, 0] / weights[:, -1]).log()
        bandwidth = (distances[:, -1] - distances[:, 0]) / ratio
        totals = torch.exp(-distances / bandwidth[:, None]).sum(dim=1)
        torch.testing.assert_close(totals, torch.full((50,), math.log2(k)), rtol=1e-3,
                                   atol=1e-3)


def test_neighbour_average_of_a_training_point_and_of_duplicates():
    keys = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    values = torch.tensor([[1.0], [2.0], [3.0]])
    # One neighbour: the nearest key's value.
    out = neighbour_average(torch.tensor([[9.0, 1.0]]), keys, values, n_neighbors=1)
    torch.testing.assert_close(out, torch.tensor([[2.0]]))
    # Every key at the same distance: the plain mean.
    dupes = neighbour_average(torch.zeros(1, 2), torch.zeros(3, 2), values, n_neighbors=3)
    torch.testing.assert_close(dupes, torch.tensor([[2.0]]))


def test_dec_from_the_manifold_first_trains_towards_the_mixture(blobs):
    X, _ = blobs
    n2d = N2DClusterer(n_clusters=3, manifold=True, **{**FAST, "n_init": MIXTURE_N_INIT})
    n2d.fit(X)
    dec = DECClusterer(n_clusters=3, init="manifold", max_iter=20, update_interval=10,
                       tol=0.0, **FAST).fit(X)
    assert dec.history_["iteration"] == [0, 10, 20]
    assert cluster_accuracy(n2d.labels_, dec.labels_) > 0.95
    np.testing.assert_array_equal(dec.predict(X), dec.labels_)


def test_nearest_neighbours_are_exact_and_include_the_point_itself():
    from sklearn.neighbors import NearestNeighbors

    from deepcluster_sk._torch._neighbours import nearest_neighbours

    rng = np.random.default_rng(0)
    points = rng.standard_normal((300, 5)).astype(np.float32)
    distances, index = nearest_neighbours(torch.from_numpy(points),
                                          torch.from_numpy(points), 7)
    expected_d, expected_i = NearestNeighbors(n_neighbors=7).fit(points).kneighbors(points)
    np.testing.assert_array_equal(index.numpy(), expected_i)
    np.testing.assert_allclose(distances.numpy(), expected_d, atol=1e-5)
    assert (index[:, 0].numpy() == np.arange(300)).all()


def test_umap_leaves_torch_thread_count_alone():
    """numba's thread pool set OpenMP's count to every core, torch's with it."""
    from deepcluster_sk._manifold import umap_coordinates

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        X = np.random.RandomState(0).rand(300, 5).astype(np.float32)
        umap_coordinates(X, n_neighbors=10, n_components=2, min_dist=0.0,
                         random_state=None)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_umap_gets_exact_neighbours_and_the_layout_epochs(monkeypatch):
    """Below EXACT_NEIGHBOURS_BELOW the neighbours come from here, exactly,
    and umap-learn's own search (pynndescent, which compiles for half a minute in
    every process) never runs."""
    import deepcluster_sk._manifold as manifold

    umap = manifold.import_umap()
    seen = {}
    fit_transform = umap.UMAP.fit_transform

    def recording(reducer, X, *args, **kwargs):
        seen.update(n_epochs=reducer.n_epochs, knn=reducer.precomputed_knn)
        return fit_transform(reducer, X, *args, **kwargs)

    monkeypatch.setattr(umap.UMAP, "fit_transform", recording)
    X = np.random.RandomState(0).rand(300, 5).astype(np.float32)
    manifold.umap_coordinates(X, n_neighbors=10, n_components=2, min_dist=0.0,
                              random_state=0, n_epochs=30)
    assert seen["n_epochs"] == 30
    index, distances = seen["knn"][:2]
    from deepcluster_sk._torch._neighbours import nearest_neighbours

    expected_d, expected_i = nearest_neighbours(torch.from_numpy(X), torch.from_numpy(X), 10)
    np.testing.assert_array_equal(index, expected_i.numpy())
    np.testing.assert_allclose(distances, expected_d.numpy(), rtol=1e-6)
    assert manifold.EXACT_NEIGHBOURS_BELOW == 20_000


def test_the_fit_stores_the_layout_epochs_it_used(fitted):
    from deepcluster_sk._auto import _UMAP_EPOCHS

    assert fitted.umap_epochs_ == _UMAP_EPOCHS == 200
