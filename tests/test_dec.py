"""DECClusterer's behaviour: fitting, prediction, variants, inputs, persistence."""

import warnings

import numpy as np
import pytest
from conftest import FAST_DEC
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from deepcluster_sk import DECClusterer
from deepcluster_sk.metrics import cluster_accuracy, cluster_accuracy_scorer


@pytest.fixture(scope="module")
def fitted(blobs):
    X, _ = blobs
    return DECClusterer(n_clusters=3, **FAST_DEC).fit(X)


def test_fit_sets_the_documented_attributes(fitted, blobs):
    X, y = blobs
    assert fitted.labels_.shape == (len(X),)
    assert fitted.labels_.dtype == np.int64
    assert fitted.cluster_centers_.shape == (3, FAST_DEC["n_components"])
    assert fitted.n_features_in_ == X.shape[1]
    assert 0 < fitted.n_iter_ <= FAST_DEC["max_iter"]
    assert len(fitted.history_["pretrain_loss"]) == FAST_DEC["pretrain_epochs"]
    n_updates = len(fitted.history_["iteration"])
    assert len(fitted.history_["kl_loss"]) == n_updates
    assert len(fitted.history_["label_change"]) == n_updates
    assert np.isnan(fitted.history_["label_change"][0])
    assert fitted.history_["pretrain_loss"][-1] < fitted.history_["pretrain_loss"][0]
    assert cluster_accuracy(y, fitted.labels_) > 0.95


def test_predict_proba_is_a_distribution_and_agrees_with_predict(fitted, blobs):
    X, _ = blobs
    q = fitted.predict_proba(X)
    assert q.shape == (len(X), 3)
    np.testing.assert_allclose(q.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(q.argmax(axis=1), fitted.predict(X))
    # labels_ come from the final model, so they equal its predictions.
    np.testing.assert_array_equal(fitted.labels_, fitted.predict(X))


def test_transform_returns_the_embedding_used_for_assignments(fitted, blobs):
    X, _ = blobs
    Z = fitted.transform(X)
    assert Z.shape == (len(X), FAST_DEC["n_components"])
    assert Z.dtype == np.float32
    d2 = ((Z[:, None, :] - fitted.cluster_centers_[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(d2.argmin(axis=1), fitted.predict(X))


def test_score_is_minus_the_kl_loss_per_sample(fitted, blobs):
    X, _ = blobs
    score = fitted.score(X)
    q = fitted.predict_proba(X).astype(np.float64)
    p = q**2 / q.sum(axis=0)
    p /= p.sum(axis=1, keepdims=True)
    expected = -np.sum(p * np.log(p / q)) / len(X)
    np.testing.assert_allclose(score, expected, rtol=1e-4)
    assert score <= 0
    # The same quantity the training loop records at its last target update.
    np.testing.assert_allclose(score, -fitted.history_["kl_loss"][-1], rtol=1e-3)


def test_pandas_output_and_feature_names(blobs):
    pd = pytest.importorskip("pandas")
    X, _ = blobs
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    dec = DECClusterer(n_clusters=3, **FAST_DEC).set_output(transform="pandas")
    Z = dec.fit(frame).transform(frame)
    np.testing.assert_array_equal(dec.feature_names_in_, frame.columns)
    assert list(Z.columns) == [f"decclusterer{i}" for i in range(4)]


def test_frozen_encoder_moves_only_the_centres(blobs):
    X, _ = blobs
    settings = {**FAST_DEC, "tol": 0.0}
    pretrained = DECClusterer(n_clusters=3, **{**settings, "max_iter": 0}).fit(X)
    frozen = DECClusterer(n_clusters=3, train_encoder=False, **settings).fit(X)
    np.testing.assert_array_equal(frozen.transform(X), pretrained.transform(X))
    assert frozen.n_iter_ == settings["max_iter"]
    assert not np.allclose(frozen.cluster_centers_, pretrained.cluster_centers_)


# The tiny budget's IDEC merges two blobs; only which weights train matters here.
@pytest.mark.filterwarnings(
    "ignore:Number of distinct clusters:sklearn.exceptions.ConvergenceWarning"
)
def test_reconstruction_weight_trains_the_decoder_and_encoder(blobs):
    X, _ = blobs
    settings = {**FAST_DEC, "tol": 0.0}
    pretrained = DECClusterer(n_clusters=3, **{**settings, "max_iter": 0}).fit(X)
    plain = DECClusterer(n_clusters=3, **settings).fit(X)
    idec = DECClusterer(n_clusters=3, reconstruction_weight=1.0, **settings).fit(X)

    def decoder_weight(model):
        return model.autoencoder_.decoder[0].weight.detach().numpy()

    np.testing.assert_array_equal(decoder_weight(plain), decoder_weight(pretrained))
    assert not np.allclose(decoder_weight(idec), decoder_weight(pretrained))
    assert not np.allclose(idec.transform(X), plain.transform(X))


def test_stopping_rule_stops_at_the_first_small_change(blobs):
    X, _ = blobs
    settings = {**FAST_DEC, "max_iter": 1000, "update_interval": 10}
    # Every change is below tol=1, so the second update stops the loop.
    eager = DECClusterer(n_clusters=3, **{**settings, "tol": 1.0}).fit(X)
    assert eager.n_iter_ == 10
    assert eager.history_["iteration"] == [0, 10]
    # tol=0 can never be undercut: the loop runs to max_iter.
    patient = DECClusterer(n_clusters=3, **{**settings, "tol": 0.0}).fit(X)
    assert patient.n_iter_ == 1000
    assert patient.history_["iteration"][-1] == 1000
    changes = np.array(patient.history_["label_change"][1:])
    assert np.all((changes >= 0) & (changes <= 1))


def test_max_iter_that_is_not_a_multiple_of_the_interval(blobs):
    X, _ = blobs
    settings = {**FAST_DEC, "max_iter": 25, "update_interval": 10, "tol": 0.0}
    dec = DECClusterer(n_clusters=3, **settings).fit(X)
    assert dec.history_["iteration"] == [0, 10, 20, 25]
    np.testing.assert_array_equal(dec.labels_, dec.predict(X))


def test_pipeline_with_scaler(blobs):
    X, y = blobs
    pipe = make_pipeline(StandardScaler(), DECClusterer(n_clusters=3, **FAST_DEC))
    labels = pipe.fit_predict(X)
    assert cluster_accuracy(y, labels) > 0.95
    assert pipe.transform(X).shape == (len(X), FAST_DEC["n_components"])


def test_grid_search_over_n_clusters_without_labels(blobs):
    X, _ = blobs
    search = GridSearchCV(
        DECClusterer(**FAST_DEC), {"n_clusters": [2, 3]}, cv=2, error_score="raise"
    )
    search.fit(X)
    assert search.best_params_["n_clusters"] in (2, 3)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))


def test_grid_search_with_the_accuracy_scorer(blobs):
    X, y = blobs
    search = GridSearchCV(
        DECClusterer(**FAST_DEC),
        {"n_clusters": [2, 3]},
        scoring=cluster_accuracy_scorer,
        cv=2,
        error_score="raise",
    )
    search.fit(X, y)
    assert search.best_params_ == {"n_clusters": 3}


def test_paper_network_is_one_argument_away(blobs):
    X, _ = blobs
    dec = DECClusterer(
        n_clusters=3,
        hidden_dims=(500, 500, 2000),
        pretrain_epochs=1,
        max_iter=2,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter=2 on purpose
        dec.fit(X)
    widths = [layer.out_features for layer in dec.autoencoder_.encoder[::2]]
    assert widths == [500, 500, 2000, 10]
    assert dec.hidden_dims_ == (500, 500, 2000)


# -- bad input -------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_is_rejected(blobs, bad):
    X, _ = blobs
    X = X.copy()
    X[3, 2] = bad
    with pytest.raises(ValueError, match="NaN|infinity"):
        DECClusterer(n_clusters=3, **FAST_DEC).fit(X)


def test_fewer_samples_than_clusters(blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="n_samples=5 should be >= n_clusters=6"):
        DECClusterer(n_clusters=6, **FAST_DEC).fit(X[:5])


def test_wrong_number_of_features_at_predict(fitted, blobs):
    X, _ = blobs
    for method in (fitted.predict, fitted.predict_proba, fitted.transform, fitted.score):
        with pytest.raises(ValueError, match="X has 5 features"):
            method(X[:, :5])


@pytest.mark.parametrize(
    "params, match",
    [
        ({"hidden_dims": (32, 0)}, "hidden_dims"),
        ({"hidden_dims": (32, 2.5)}, "hidden_dims"),
        ({"hidden_dims": "wide"}, "hidden_dims"),
        ({"n_clusters": 0}, "n_clusters"),
        ({"alpha": -1.0}, "alpha"),
        ({"batch_size": 0}, "batch_size"),
        ({"pretrain_epochs": "many"}, "pretrain_epochs"),
        ({"tol": 2.0}, "tol"),
    ],
)
def test_bad_parameters_name_themselves(blobs, params, match):
    X, _ = blobs
    with pytest.raises((ValueError, TypeError), match=match):
        DECClusterer(**{**FAST_DEC, **params}).fit(X)


def test_string_data_is_a_clear_error():
    with pytest.raises(ValueError, match="could not convert|convert string"):
        DECClusterer(n_clusters=2, **FAST_DEC).fit([["a", "b"], ["c", "d"]])


def test_failed_fit_leaves_the_estimator_unfitted(blobs):
    X, _ = blobs
    dec = DECClusterer(n_clusters=3, **FAST_DEC).fit(X)
    X_bad = X.copy()
    X_bad[0, 0] = np.nan
    with pytest.raises(ValueError):
        dec.fit(X_bad)
    with pytest.raises(NotFittedError):
        check_is_fitted(dec)
    assert not hasattr(dec, "n_features_in_")


def test_unfitted_estimator_raises_not_fitted(blobs):
    X, _ = blobs
    for method in ("predict", "predict_proba", "transform", "score"):
        with pytest.raises(NotFittedError):
            getattr(DECClusterer(), method)(X)


# -- quality ---------------------------------------------------------------


# 600 steps are too few to converge on digits, but enough to improve.
@pytest.mark.filterwarnings(
    "ignore:Self-training stopped at max_iter:sklearn.exceptions.ConvergenceWarning"
)
def test_dec_improves_on_its_kmeans_initialisation_on_digits(digits):
    X, y = digits
    settings = dict(
        n_clusters=10,
        hidden_dims=(128, 128),
        n_components=10,
        pretrain_epochs=40,
        batch_size=128,
        max_iter=600,
        update_interval=30,
        random_state=0,
    )
    before = DECClusterer(**{**settings, "max_iter": 0}).fit(X)
    after = DECClusterer(**settings).fit(X)
    acc_before = cluster_accuracy(y, before.labels_)
    acc_after = cluster_accuracy(y, after.labels_)
    assert acc_after > 0.7
    assert acc_after >= acc_before


@pytest.mark.parametrize(
    "reconstruction_weight, init", [(0.0, "kmeans"), (0.1, "kmeans"), (0.0, "manifold")]
)
def test_a_target_recomputed_per_batch_is_the_stored_target(
    blobs, monkeypatch, reconstruction_weight, init
):
    """Above STORED_TARGET_BYTES, P comes from a frozen encoder: same fit."""
    import deepcluster_sk._training._self_training as self_training

    X = blobs[0]
    params = dict(FAST_DEC, n_clusters=3, tol=0.0, precision="float32",
                  reconstruction_weight=reconstruction_weight, init=init)
    stored = DECClusterer(**params).fit(X)
    monkeypatch.setattr(self_training, "STORED_TARGET_BYTES", 0)
    streamed = DECClusterer(**params).fit(X)
    np.testing.assert_array_equal(streamed.labels_, stored.labels_)
    np.testing.assert_allclose(streamed.cluster_centers_, stored.cluster_centers_,
                               atol=1e-5)
    np.testing.assert_allclose(streamed.history_["kl_loss"], stored.history_["kl_loss"],
                               rtol=1e-4, atol=1e-7)
    assert streamed.history_["iteration"] == stored.history_["iteration"]
