"""The estimators on a dask cluster: searches, and predictions over dask arrays.

Nothing in the package is specific to dask: these tests check that a grid
search under joblib's ``"dask"`` backend gives the sequential search's
results, and that a fitted model predicts over a dask array (through
dask_ml's ``ParallelPostFit`` or ``map_blocks``) and on a worker it was
pickled to.
"""

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
dask_ml_wrappers = pytest.importorskip("dask_ml.wrappers")
da = pytest.importorskip("dask.array")

import dask  # noqa: E402
import joblib  # noqa: E402
import torch  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import make_blobs  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402

from deepcluster_sk import DECClusterer  # noqa: E402

#: A tiny network and budget: the whole file must stay fast on 2 CPU cores.
TINY_DEC = dict(
    n_clusters=3,
    hidden_dims=(16,),
    pretrain_epochs=3,
    max_iter=60,
    update_interval=20,
    init="kmeans",
    n_init=2,
    random_state=0,
)

#: 2 x 2 candidates, scored by the estimator's own ``score`` (-KL(P || Q)
#: per sample), which needs no labels.
GRID = {"n_clusters": [2, 3], "pretrain_epochs": [2, 3]}


@pytest.fixture(scope="module")
def X():
    X, _ = make_blobs(300, 8, centers=3, random_state=0)
    return X.astype(np.float32)


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        host="127.0.0.1",
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@pytest.fixture(scope="module")
def model(X):
    return DECClusterer(**TINY_DEC).fit(X)


def _search():
    return GridSearchCV(DECClusterer(**TINY_DEC), GRID, cv=2, refit=False)


def test_grid_search_on_dask_matches_sequential(X, client):
    sequential = _search().set_params(n_jobs=1).fit(X)
    with joblib.parallel_backend("dask"):
        on_dask = _search().fit(X)

    # The workers' torch runs on one thread (test below), this process's on
    # as many as torch chose: at this size the results are still equal.
    seq, dsk = sequential.cv_results_, on_dask.cv_results_
    assert dsk["params"] == seq["params"]
    for key in ("mean_test_score", "split0_test_score", "split1_test_score"):
        np.testing.assert_allclose(dsk[key], seq[key], rtol=1e-6, atol=0)
    np.testing.assert_array_equal(dsk["rank_test_score"], seq["rank_test_score"])
    assert np.isfinite(seq["mean_test_score"]).all()
    assert on_dask.best_params_ == sequential.best_params_


def test_workers_run_torch_on_one_thread(client):
    # distributed's nanny sets OMP_NUM_THREADS=MKL_NUM_THREADS=1 in the
    # environment of the worker processes it spawns (its default
    # "distributed.nanny.pre-spawn-environ"); the package keeps torch's own
    # setting, so each worker trains on one thread.
    environ = dask.config.get("distributed.nanny.pre-spawn-environ")
    if str(environ.get("OMP_NUM_THREADS")) != "1":
        pytest.skip("this dask configuration changes the workers' threads")
    counts = client.run(torch.get_num_threads)
    assert len(counts) == 2
    assert set(counts.values()) == {1}


# The local scheduler ("threads"): several blocks are predicted at once by
# the same model, from several threads.
def test_parallel_post_fit_predict_over_dask_array(X, model):
    dX = da.from_array(X, chunks=(100, 8))
    wrapped = dask_ml_wrappers.ParallelPostFit(estimator=model)
    labels = wrapped.predict(dX)
    assert isinstance(labels, da.Array)
    np.testing.assert_array_equal(
        labels.compute(scheduler="threads"), model.predict(X)
    )


def test_map_blocks_predict_over_dask_array(X, model):
    dX = da.from_array(X, chunks=(100, 8))
    labels = dX.map_blocks(model.predict, drop_axis=1, dtype=np.int64)
    np.testing.assert_array_equal(
        labels.compute(scheduler="threads"), model.predict(X)
    )


def test_map_blocks_soft_assignments_and_embedding(X, model):
    # Outputs with columns of their own: map_blocks on blocks of whole rows,
    # told the output's columns (dask_ml's ParallelPostFit.predict_proba
    # needs a classifier's classes_, which a clusterer does not have).
    dX = da.from_array(X, chunks=(100, 4)).rechunk({1: -1})
    proba = model.predict_proba(X)
    embedding = model.transform(X)
    for method, expected in [(model.predict_proba, proba),
                             (model.transform, embedding)]:
        out = dX.map_blocks(
            method, dtype=expected.dtype, chunks=(dX.chunks[0], expected.shape[1])
        )
        assert out.shape == expected.shape
        # Rows computed in blocks of 100 rather than all at once: equal up
        # to float32 rounding.
        np.testing.assert_allclose(
            out.compute(scheduler="threads"), expected, rtol=1e-5, atol=1e-6
        )


def test_parallel_post_fit_rechunks_columns(X, model):
    # Blocks split along the features are joined into whole rows first.
    dX = da.from_array(X, chunks=(100, 4))
    wrapped = dask_ml_wrappers.ParallelPostFit(estimator=model)
    np.testing.assert_array_equal(
        wrapped.predict(dX).compute(scheduler="threads"), model.predict(X)
    )


def test_predict_over_dask_array_on_the_cluster(X, model, client):
    # The default scheduler is the client's: the blocks are predicted on the
    # workers, each with its own unpickled copy of the model.
    dX = da.from_array(X, chunks=(100, 8))
    wrapped = dask_ml_wrappers.ParallelPostFit(estimator=model)
    np.testing.assert_array_equal(wrapped.predict(dX).compute(), model.predict(X))


def test_fitted_model_pickles_to_a_worker(X, model, client):
    expected = model.predict(X)
    np.testing.assert_array_equal(client.submit(model.predict, X).result(), expected)
    # A clone of the model that travels unfitted and is fitted there.
    remote = client.submit(clone(model).fit, X).result()
    np.testing.assert_array_equal(remote.predict(X), expected)
