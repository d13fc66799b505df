"""The ``memory`` cache of pretrained autoencoders.

A fit that loads the network fits exactly the model of one that trains it;
parameters that change pretraining miss the cache, the others hit it, also
through ``clone``, ``GridSearchCV`` (one or two processes) and
``generalizability_curve``.
"""

import os
import pickle
from pathlib import Path

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from conftest import FAST_DEC
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

import deepcluster_sk
from deepcluster_sk import AutoencoderKMeans, DECClusterer
from deepcluster_sk._estimators._autoencoder import BaseAutoencoderClusterer
from deepcluster_sk.model_selection import generalizability_curve
from deepcluster_sk.nn import MLPAutoencoder


class TinyAutoencoder(torch.nn.Module):
    """A user's autoencoder class: one hidden layer of ``width`` units."""

    def __init__(self, input_shape, n_components, width=8):
        super().__init__()
        (n_features,) = input_shape
        self.encoder = torch.nn.Sequential(
            torch.nn.Linear(n_features, width), torch.nn.ReLU(),
            torch.nn.Linear(width, n_components),
        )
        self.decoder = torch.nn.Sequential(
            torch.nn.Linear(n_components, width), torch.nn.ReLU(),
            torch.nn.Linear(width, n_features),
        )

DEC = DECClusterer(n_clusters=3, **FAST_DEC, pretrain_iterations=30)
AE_KMEANS = AutoencoderKMeans(
    n_clusters=3,
    **{k: v for k, v in FAST_DEC.items() if k not in ("max_iter", "update_interval")},
)

#: A new value for every parameter that changes pretraining. Kept in step
#: with the class's declaration by test_every_pretraining_parameter_is_tested.
PRETRAINING_CHANGES = {
    "autoencoder": TinyAutoencoder,
    "hidden_dims": (16,),
    "n_components": 3,
    "pretrain": "layerwise",
    "pretrain_epochs": 5,
    "pretrain_learning_rate": 3e-3,
    "pretrain_iterations": 20,
    "batch_size": 32,
    "precision": "bfloat16",
    "random_state": 1,
}

GRID = {"n_clusters": [2, 3, 4]}

CLUSTERING_CHANGES = [
    {"n_clusters": 4},
    {"alpha": 2.0},
    {"max_iter": 30},
    {"tol": 0.1},
    {"update_interval": 10},
    {"learning_rate": 0.05},
    {"momentum": 0.5},
    {"n_init": 2},
    {"train_encoder": False},
    {"reconstruction_weight": 1.0},
    {"verbose": 2},
]


@pytest.fixture
def pretrainings(monkeypatch):
    """The estimators that trained an autoencoder, one entry per pretraining."""
    calls = []
    original = BaseAutoencoderClusterer._pretraining

    def counting(self, settings):
        schedule = original(self, settings)
        run = schedule.run

        def counted(*args, **kwargs):
            calls.append(type(self).__name__)
            return run(*args, **kwargs)

        schedule.run = counted
        return schedule

    monkeypatch.setattr(BaseAutoencoderClusterer, "_pretraining", counting)
    return calls


@pytest.fixture(scope="module")
def warm_cache(tmp_path_factory, blobs):
    """A cache directory holding DEC's pretrained autoencoder on the blobs."""
    directory = str(tmp_path_factory.mktemp("warm"))
    clone(DEC).set_params(memory=directory).fit(blobs[0])
    return directory


def _entries(directory):
    return sorted(Path(directory).rglob("*.pt"))


def _assert_same_model(model, reference, X):
    np.testing.assert_array_equal(model.labels_, reference.labels_)
    np.testing.assert_array_equal(model.cluster_centers_, reference.cluster_centers_)
    np.testing.assert_equal(model.history_, reference.history_)
    np.testing.assert_array_equal(model.transform(X), reference.transform(X))


@pytest.mark.parametrize(
    "estimator",
    [DEC, clone(DEC).set_params(pretrain="layerwise"), AE_KMEANS],
    ids=["DEC", "DEC-layerwise", "AutoencoderKMeans"],
)
def test_a_cache_hit_fits_the_model_of_a_fit_without_cache(
    estimator, blobs, tmp_path, pretrainings
):
    X, _ = blobs
    # One k-means run for 6 clusters in 3 blobs: the result depends on the
    # k-means seed, which must not depend on whether pretraining ran.
    estimator = clone(estimator).set_params(n_clusters=6, n_init=1)
    reference = clone(estimator).fit(X)
    miss = clone(estimator).set_params(memory=str(tmp_path)).fit(X)
    hit = clone(estimator).set_params(memory=str(tmp_path)).fit(X)
    assert len(pretrainings) == 2
    assert len(_entries(tmp_path)) == 1
    _assert_same_model(miss, reference, X)
    _assert_same_model(hit, reference, X)


@pytest.mark.parametrize("change", CLUSTERING_CHANGES, ids=lambda c: next(iter(c)))
def test_clustering_parameters_hit_the_cache(change, blobs, warm_cache, pretrainings):
    model = clone(DEC).set_params(memory=warm_cache, **change).fit(blobs[0])
    assert pretrainings == []
    assert model.labels_.shape == (len(blobs[0]),)


def test_every_pretraining_parameter_is_tested():
    declared = set(BaseAutoencoderClusterer._pretraining_params) | {"random_state"}
    assert set(PRETRAINING_CHANGES) == declared


@pytest.mark.parametrize("name", list(PRETRAINING_CHANGES))
def test_pretraining_parameters_miss_the_cache(name, blobs, warm_cache, pretrainings):
    change = {name: PRETRAINING_CHANGES[name]}
    clone(DEC).set_params(memory=warm_cache, **change).fit(blobs[0])
    assert pretrainings == ["DECClusterer"]


def test_other_data_torch_threads_or_version_miss_the_cache(
    blobs, warm_cache, pretrainings, monkeypatch
):
    X = blobs[0].copy()
    X[0, 0] += 1e-3
    clone(DEC).set_params(memory=warm_cache).fit(X)
    assert len(pretrainings) == 1
    threads = torch.get_num_threads()
    torch.set_num_threads(1 if threads > 1 else 2)
    try:
        clone(DEC).set_params(memory=warm_cache).fit(blobs[0])
    finally:
        torch.set_num_threads(threads)
    assert len(pretrainings) == 2
    monkeypatch.setattr(deepcluster_sk, "__version__", "0.0.0")
    clone(DEC).set_params(memory=warm_cache).fit(blobs[0])
    assert len(pretrainings) == 3


def test_the_autoencoder_class_and_its_parameters_key_the_cache(
    blobs, tmp_path, pretrainings
):
    X, _ = blobs
    user = clone(DEC).set_params(memory=str(tmp_path), autoencoder=TinyAutoencoder)
    reference = clone(user).set_params(memory=None).fit(X)
    for _ in range(2):
        _assert_same_model(clone(user).fit(X), reference, X)
    assert len(pretrainings) == 2
    clone(user).set_params(autoencoder__width=6).fit(X)
    assert len(pretrainings) == 3
    clone(user).set_params(autoencoder__width=6).fit(X)
    assert len(pretrainings) == 3
    # The package's class given explicitly is another network than None's.
    clone(DEC).set_params(memory=str(tmp_path), autoencoder=MLPAutoencoder,
                          autoencoder__hidden_dims=(32,)).fit(X)
    assert len(pretrainings) == 4


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_an_autoencoder_instance_is_keyed_by_its_weights(blobs, tmp_path, pretrainings):
    X, _ = blobs
    torch.manual_seed(0)
    first, second = TinyAutoencoder((6,), 4), TinyAutoencoder((6,), 4)
    untrained = [p.detach().clone() for p in first.parameters()]
    model = clone(DEC).set_params(memory=str(tmp_path), autoencoder=first)
    model.fit(X)
    clone(model).fit(X)
    assert len(pretrainings) == 1
    clone(model).set_params(autoencoder=second).fit(X)
    assert len(pretrainings) == 2
    # The instance itself is never trained: every fit starts from its weights.
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), untrained))
    np.testing.assert_array_equal(
        clone(model).set_params(memory=None).fit(X).labels_, model.labels_
    )


def test_a_cached_entry_that_does_not_fit_the_network_is_replaced(
    blobs, tmp_path, pretrainings, monkeypatch
):
    X, _ = blobs
    model = clone(DEC).set_params(memory=str(tmp_path))
    model.fit(X)
    # Another network under the same key (as a changed class would give).
    monkeypatch.setattr(
        BaseAutoencoderClusterer, "_pretraining_key", lambda self, fit: {"same": 1}
    )
    model.fit(X)
    with pytest.warns(UserWarning, match="do not fit"):
        clone(model).set_params(hidden_dims=(16,)).fit(X)
    assert len(pretrainings) == 3


def test_random_state_instances_and_none(blobs, tmp_path, pretrainings):
    X, _ = blobs
    # Clones copy the RandomState, so they draw the same pretraining seed ...
    shared = clone(DEC).set_params(
        memory=str(tmp_path), random_state=np.random.RandomState(0)
    )
    clone(shared).fit(X)
    clone(shared).fit(X)
    assert len(pretrainings) == 1
    # ... while refitting one estimator draws the next seed from its state.
    shared.fit(X)
    shared.fit(X)
    assert len(pretrainings) == 2
    # With random_state=None the network pretrained first is reused.
    for _ in range(2):
        clone(DEC).set_params(memory=str(tmp_path), random_state=None).fit(X)
    assert len(pretrainings) == 3


def test_sparse_input(blobs, tmp_path, pretrainings):
    X = sp.csr_matrix(np.where(np.abs(blobs[0]) < 1.0, 0.0, np.abs(blobs[0])))
    reference = clone(DEC).fit(X)
    for _ in range(2):
        model = clone(DEC).set_params(memory=str(tmp_path)).fit(X)
        _assert_same_model(model, reference, X)
    assert len(pretrainings) == 2


def test_a_path_and_a_joblib_memory_share_the_cache(blobs, tmp_path, pretrainings):
    X, _ = blobs
    clone(DEC).set_params(memory=str(tmp_path)).fit(X)
    clone(DEC).set_params(memory=joblib.Memory(str(tmp_path), verbose=0)).fit(X)
    assert len(pretrainings) == 1
    # Memory.clear() empties our entries too.
    joblib.Memory(str(tmp_path), verbose=0).clear(warn=False)
    assert _entries(tmp_path) == []


def test_memory_without_a_location_caches_nothing(blobs, pretrainings, monkeypatch):
    def no_hashing(*args):
        raise AssertionError("nothing to cache, so nothing to hash")

    monkeypatch.setattr("deepcluster_sk._estimators._autoencoder.cache_key", no_hashing)
    for memory in (None, joblib.Memory(None, verbose=0)):
        for _ in range(2):
            clone(DEC).set_params(memory=memory).fit(blobs[0])
    assert len(pretrainings) == 4


@pytest.mark.parametrize(
    "memory, match",
    [
        (3, "memory"),
        (type("CacheOnly", (), {"cache": lambda self, f: f})(), "no location"),
    ],
)
def test_invalid_memory(blobs, memory, match):
    with pytest.raises(ValueError, match=match):
        clone(DEC).set_params(memory=memory).fit(blobs[0])


class _Exploit:
    def __init__(self, flag):
        self.flag = flag

    def __reduce__(self):
        return (os.mkdir, (self.flag,))


def test_an_unsafe_or_damaged_entry_is_not_loaded(blobs, tmp_path, pretrainings):
    # Entries load with weights_only=True: a pickle that runs code is refused.
    X, _ = blobs
    reference = clone(DEC).set_params(memory=str(tmp_path)).fit(X)
    (entry,) = _entries(tmp_path)
    flag = tmp_path / "code_ran"
    entry.write_bytes(pickle.dumps(_Exploit(str(flag)), protocol=2))
    with pytest.warns(UserWarning, match="unreadable cached autoencoder"):
        model = clone(DEC).set_params(memory=str(tmp_path)).fit(X)
    assert not flag.exists()
    assert len(pretrainings) == 2
    _assert_same_model(model, reference, X)
    # The damaged entry was replaced by a good one.
    clone(DEC).set_params(memory=str(tmp_path)).fit(X)
    assert len(pretrainings) == 2


def test_grid_search_pretrains_once_per_fold(blobs, tmp_path, pretrainings):
    X, _ = blobs
    cached = GridSearchCV(clone(DEC).set_params(memory=str(tmp_path)), GRID, cv=2)
    cached.fit(X)
    assert len(pretrainings) == 2 + 1  # one per fold, then the refit on all of X
    plain = GridSearchCV(clone(DEC), GRID, cv=2).fit(X)
    assert cached.best_params_ == plain.best_params_
    np.testing.assert_array_equal(
        cached.cv_results_["split0_test_score"], plain.cv_results_["split0_test_score"]
    )
    np.testing.assert_array_equal(
        cached.cv_results_["mean_test_score"], plain.cv_results_["mean_test_score"]
    )


class ThreadRecordingDEC(DECClusterer):
    """DEC that records how many threads torch has when its fit starts.

    Recorded before the fit's own thread policy, which trains networks as
    small as this one on one thread anyway.
    """

    def _settings(self, n_samples, n_features):
        self._threads_at_start = torch.get_num_threads()
        return super()._settings(n_samples, n_features)

    def _train(self, fit):
        super()._train(fit)
        self.torch_threads_ = self._threads_at_start


def _dec_score(estimator, X, y=None):
    return estimator.score(X)


def _torch_threads(estimator, X, y=None):
    return estimator.torch_threads_


def _worker_threads(n_jobs):
    """The threads joblib's process workers get, unless the user set a limit."""
    if "OMP_NUM_THREADS" in os.environ:
        return int(os.environ["OMP_NUM_THREADS"])
    return max(joblib.cpu_count() // n_jobs, 1)


@pytest.fixture(scope="module")
def parallel_search(tmp_path_factory, blobs):
    """A two-process grid search sharing one cache, and its cache directory."""
    directory = tmp_path_factory.mktemp("shared")
    model = ThreadRecordingDEC(**DEC.get_params()).set_params(memory=str(directory))
    scoring = {"score": _dec_score, "torch_threads": _torch_threads}
    search = GridSearchCV(model, GRID, cv=2, scoring=scoring, refit=False, n_jobs=2)
    return search.fit(blobs[0]), directory


def test_two_processes_share_one_cache(parallel_search, blobs):
    search, directory = parallel_search
    assert len(_entries(directory)) == 2
    # The thread count changes the trained weights; compare with a search
    # run in one process with the workers' thread count.
    threads = torch.get_num_threads()
    torch.set_num_threads(_worker_threads(2))
    try:
        plain = GridSearchCV(clone(DEC), GRID, cv=2, refit=False).fit(blobs[0])
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_array_equal(
        search.cv_results_["mean_test_score"], plain.cv_results_["mean_test_score"]
    )


def test_each_process_worker_uses_its_share_of_the_cores(parallel_search):
    search, _ = parallel_search
    np.testing.assert_array_equal(
        search.cv_results_["mean_test_torch_threads"], _worker_threads(2)
    )


def test_generalizability_curve_pretrains_once(blobs, pretrainings):
    X, _ = blobs
    ks = [2, 3]
    curve = generalizability_curve(X, ks, estimator=DEC, random_state=0)
    assert pretrainings == ["DECClusterer"]
    for i, k in enumerate(ks):
        alone = generalizability_curve(X, [k], estimator=DEC, random_state=0)
        assert alone.train_loss[0] == curve.train_loss[i]
        assert alone.validation_loss[0] == curve.validation_loss[i]


def test_generalizability_curve_uses_the_estimators_memory(
    blobs, tmp_path, pretrainings
):
    X, _ = blobs
    dec = clone(DEC).set_params(memory=str(tmp_path))
    for _ in range(2):
        generalizability_curve(X, [2, 3], estimator=dec, random_state=0)
    assert len(pretrainings) == 1
    assert len(_entries(tmp_path)) == 1
