"""What every estimator of the package promises, tested once for all of them.

Bad input raises a clear error, a failed fit leaves no fitted state, fitting
is reproducible and never touches the global torch RNG, sparse input gives
the dense result, fitted models pickle (also through joblib) with identical
predictions, and a Pipeline runs them.
"""

import pickle

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from conftest import FAST_DEC
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted
from test_dac import FIT as FIT_DAC
from test_imsat import FIT as FIT_IMSAT

from deepcluster_sk import (
    AutoencoderKMeans,
    DACClusterer,
    DECClusterer,
    IMSATClusterer,
    N2DClusterer,
)

_AE_KMEANS = {k: v for k, v in FAST_DEC.items() if k not in ("max_iter", "update_interval")}

ESTIMATORS = [
    DECClusterer(n_clusters=3, **FAST_DEC),
    AutoencoderKMeans(n_clusters=3, **_AE_KMEANS),
    IMSATClusterer(n_clusters=3, **FIT_IMSAT),
    DACClusterer(n_clusters=3, **FIT_DAC),
    N2DClusterer(n_clusters=3, manifold=True, **_AE_KMEANS),
]
IDS = [type(e).__name__ for e in ESTIMATORS]
each_estimator = pytest.mark.parametrize("estimator", ESTIMATORS, ids=IDS)


def _fresh(estimator, **params):
    return estimator.__class__(**{**estimator.get_params(), **params})


@pytest.fixture(scope="module", params=ESTIMATORS, ids=IDS)
def fitted(request, blobs):
    X, _ = blobs
    return _fresh(request.param).fit(X)


def _predictions(model, X):
    outputs = {"predict": model.predict(X), "transform": model.transform(X)}
    if hasattr(model, "predict_proba"):
        outputs["predict_proba"] = model.predict_proba(X)
    return outputs


@each_estimator
def test_same_seed_same_model_and_different_seed_different_model(estimator, blobs):
    X, _ = blobs
    a = _fresh(estimator).fit(X)
    b = _fresh(estimator).fit(X)
    c = _fresh(estimator, random_state=1).fit(X)
    for name, values in _predictions(b, X).items():
        np.testing.assert_array_equal(values, _predictions(a, X)[name], err_msg=name)
    np.testing.assert_equal(b.history_, a.history_)
    assert not np.allclose(c.transform(X), a.transform(X))


@each_estimator
def test_sparse_input_matches_dense(estimator, blobs):
    X, _ = blobs
    X = np.abs(X)
    X[X < 1.0] = 0.0
    dense = _fresh(estimator).fit(X)
    sparse = _fresh(estimator).fit(sp.csr_matrix(X))
    np.testing.assert_array_equal(sparse.labels_, dense.labels_)
    expected = _predictions(dense, X)
    for name, values in _predictions(sparse, sp.csr_matrix(X)).items():
        np.testing.assert_allclose(values, expected[name], atol=1e-5, err_msg=name)


@pytest.mark.parametrize("how", ["pickle", "joblib"])
def test_round_trip_gives_identical_predictions(fitted, blobs, tmp_path, how):
    X, _ = blobs
    if how == "pickle":
        restored = pickle.loads(pickle.dumps(fitted))
    else:
        joblib.dump(fitted, tmp_path / "model.joblib")
        restored = joblib.load(tmp_path / "model.joblib")
    expected = _predictions(fitted, X)
    for name, values in _predictions(restored, X).items():
        np.testing.assert_array_equal(values, expected[name], err_msg=name)
    assert restored.score(X) == fitted.score(X)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_model_saved_with_a_cuda_device_predicts_on_a_cpu_only_machine(fitted, blobs):
    # A model fitted with device="cuda" is pickled with its modules on the
    # CPU; unpickled where CUDA is missing, it warns and predicts on the CPU.
    X, _ = blobs
    cuda_model = pickle.loads(pickle.dumps(fitted))
    cuda_model.device = "cuda"
    payload = pickle.dumps(cuda_model)
    with pytest.warns(UserWarning, match="predicts there"):
        restored = pickle.loads(payload)
    np.testing.assert_array_equal(restored.predict(X), fitted.predict(X))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@each_estimator
def test_non_finite_input_is_rejected(estimator, blobs, bad):
    X, _ = blobs
    X = X.copy()
    X[3, 2] = bad
    with pytest.raises(ValueError, match="NaN|infinity"):
        _fresh(estimator).fit(X)


@each_estimator
def test_fewer_samples_than_clusters(estimator, blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="n_samples=2 should be >= n_clusters=3"):
        _fresh(estimator).fit(X[:2])


@pytest.mark.parametrize("device", ["tpu", "cuda:x"])
@each_estimator
def test_unknown_device(estimator, blobs, device):
    X, _ = blobs
    with pytest.raises(ValueError, match="device="):
        _fresh(estimator, device=device).fit(X)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@each_estimator
def test_cuda_requested_without_cuda(estimator, blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="CUDA is not available"):
        _fresh(estimator, device="cuda").fit(X)


def test_wrong_number_of_features_after_fit(fitted, blobs):
    X, _ = blobs
    for method in ("predict", "transform", "score", "predict_proba"):
        if hasattr(fitted, method):
            with pytest.raises(ValueError, match="X has 5 features"):
                getattr(fitted, method)(X[:, :5])


@each_estimator
def test_failed_fit_leaves_the_estimator_unfitted(estimator, blobs):
    X, _ = blobs
    model = _fresh(estimator).fit(X)
    X_bad = X.copy()
    X_bad[0, 0] = np.nan
    with pytest.raises(ValueError):
        model.fit(X_bad)
    with pytest.raises(NotFittedError):
        check_is_fitted(model)
    assert not [k for k in vars(model) if k.endswith("_")]


@each_estimator
def test_failure_inside_training_leaves_the_estimator_unfitted(
    estimator, blobs, monkeypatch
):
    X, _ = blobs
    model = _fresh(estimator).fit(X)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(type(model), "_train", interrupted)
    with pytest.raises(KeyboardInterrupt):
        model.fit(X)
    assert not [k for k in vars(model) if k.endswith("_")]


@each_estimator
def test_fitting_does_not_touch_the_global_torch_rng(estimator, blobs):
    X, _ = blobs
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    _fresh(estimator).fit(X)
    np.testing.assert_array_equal(torch.rand(3), expected)


@each_estimator
def test_pipeline_with_a_scaler(estimator, blobs):
    X, _ = blobs
    pipe = make_pipeline(StandardScaler(), _fresh(estimator))
    labels = pipe.fit_predict(X)
    assert labels.shape == (len(X),)
    assert pipe.transform(X).shape[0] == len(X)
