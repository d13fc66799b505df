"""One model trained by two processes on gloo, as torchrun would start them.

Each scenario of ``distributed_worker`` runs once per module in two spawned
processes with one thread each, which initialise the group from torchrun's
environment variables on the loopback address; the tests compare what the
ranks wrote. The reference fit runs in one spawned process the same way.
"""

import os
import pickle

import numpy as np
import pytest
import torch

import distributed_worker as worker
from deepcluster_sk import DECClusterer
from deepcluster_sk._distributed import SINGLE, Replicas, resolve_replicas
from deepcluster_sk._training._sampler import RowSampler

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
    reason="needs torch.distributed with gloo",
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("distributed")


def _scenario(folder, name, world_size=2):
    path = folder / name
    path.mkdir()
    return worker.run_ranks(name, str(path), world_size=world_size), path


@pytest.fixture(scope="module")
def dec_ranks(folder):
    return _scenario(folder, "dec")


@pytest.fixture(scope="module")
def single(folder):
    return _scenario(folder, "single", world_size=1)[0][0]


@pytest.fixture(scope="module")
def family_ranks(folder):
    return _scenario(folder, "family")[0]


@pytest.fixture(scope="module")
def failure_ranks(folder):
    return _scenario(folder, "failures")[0]


def assert_same_model(a, b):
    assert a["state"].keys() == b["state"].keys()
    for name in a["state"]:
        np.testing.assert_array_equal(a["state"][name], b["state"][name], err_msg=name)
    if a["centers"] is not None:
        np.testing.assert_array_equal(a["centers"], b["centers"])
    np.testing.assert_array_equal(a["labels"], b["labels"])
    assert a["history"] == b["history"] or _same_with_nan(a["history"], b["history"])
    assert a["n_iter"] == b["n_iter"]


def _same_with_nan(a, b):
    return a.keys() == b.keys() and all(
        np.array_equal(np.asarray(a[k]), np.asarray(b[k]), equal_nan=True)
        if not isinstance(a[k], str) else a[k] == b[k]
        for k in a
    )


# -- the sampler's shards, in one process -------------------------------------------


@pytest.mark.parametrize("n_samples, batch_size", [(240, 48), (101, 16), (7, 4)])
def test_shards_are_disjoint_cover_the_data_and_make_up_the_global_batch(
    n_samples, batch_size
):
    world_size = 2
    samplers = [
        RowSampler(n_samples, batch_size, torch.Generator().manual_seed(5),
                   torch.device("cpu"), rank=rank, world_size=world_size)
        for rank in range(world_size)
    ]
    alone = RowSampler(n_samples, batch_size, torch.Generator().manual_seed(5),
                       torch.device("cpu"))
    assert samplers[0].steps_per_epoch == samplers[1].steps_per_epoch
    for _ in range(2):  # two epochs, two permutations
        epoch = [[next(s) for _ in range(s.steps_per_epoch)] for s in samplers]
        rows = [torch.cat(batches).tolist() for batches in epoch]
        assert len(rows[0]) == len(rows[1]) == -(-n_samples // world_size)
        union = set(rows[0]) | set(rows[1])
        assert union == set(range(n_samples))
        # Disjoint but for the rows that pad the epoch to a multiple of 2.
        assert len(set(rows[0]) & set(rows[1])) == -n_samples % world_size
        if n_samples % world_size == 0 and batch_size % world_size == 0:
            for step in range(alone.steps_per_epoch):
                together = set(epoch[0][step].tolist()) | set(epoch[1][step].tolist())
                assert together == set(next(alone).tolist())


def test_a_single_process_has_no_collectives():
    assert resolve_replicas("auto", torch.device("cpu")) is SINGLE
    assert resolve_replicas(False, torch.device("cpu")) is SINGLE
    assert SINGLE.shard(10) == (0, 10)
    tensor = torch.arange(3.0)
    assert SINGLE.all_reduce(tensor) is tensor
    assert SINGLE.compute_once(lambda: 7) == 7


def test_distributed_true_alone_is_a_clear_error():
    X = worker.blobs()[0]
    with pytest.raises(ValueError, match="torchrun --nproc-per-node"):
        DECClusterer(n_clusters=4, distributed=True).fit(X)


def test_processes_started_by_a_torchrun_worker_fit_alone(tmp_path):
    """A loky or dask worker inherits torchrun's variables; it must not join."""
    import multiprocessing

    path = tmp_path / "resolved.txt"
    child = multiprocessing.get_context("spawn").Process(
        target=worker.torchrun_environment_in_a_child, args=(str(path),)
    )
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert path.read_text() == "single"


def test_the_shards_of_full_passes_cover_the_rows_in_order():
    for n_samples in (10, 11):
        blocks = [_rank_of_three(rank).shard(n_samples) for rank in range(3)]
        assert blocks[0][0] == 0 and blocks[-1][1] == n_samples
        assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))
        sizes = [stop - start for start, stop in blocks]
        assert max(sizes) - min(sizes) <= 1


def _rank_of_three(rank):
    """The collectives-free Replicas of one process, placed as ``rank`` of 3."""
    replicas = Replicas(_single=True)
    replicas.rank, replicas.world_size = rank, 3
    return replicas


# -- two processes -------------------------------------------------------------


def test_dec_ranks_end_with_the_same_model(dec_ranks):
    (rank0, rank1), _ = dec_ranks
    assert rank0["world_size"] == rank1["world_size"] == 2
    assert_same_model(rank0, rank1)
    np.testing.assert_array_equal(rank0["predict"], rank0["labels"])


def test_ranks_stop_together_although_their_label_changes_differ(dec_ranks):
    (rank0, rank1), _ = dec_ranks
    first_fit = len(rank0["history"]["iteration"])
    local0 = np.array(rank0["local_updates"][:first_fit])[:, 1]
    local1 = np.array(rank1["local_updates"][:first_fit])[:, 1]
    assert np.any(local0 != local1), "the scenario should change labels unevenly"
    changes = np.array(rank0["history"]["label_change"][1:])
    np.testing.assert_allclose(changes, (local0 + local1)[1:] / 240, rtol=1e-6)
    assert rank0["n_iter"] == rank1["n_iter"]
    assert rank0["history"]["stop_reason"] == rank1["history"]["stop_reason"]


def test_two_processes_match_one_at_the_same_global_batch(dec_ranks, single):
    """Same rows per global step, gradients averaged: float rounding apart."""
    (rank0, _), _ = dec_ranks
    for name in single["state"]:
        np.testing.assert_allclose(rank0["state"][name], single["state"][name],
                                   atol=1e-5, err_msg=name)
    np.testing.assert_allclose(rank0["centers"], single["centers"], atol=1e-5)
    np.testing.assert_allclose(rank0["pretrain_loss"], single["pretrain_loss"],
                               rtol=1e-5)
    np.testing.assert_array_equal(rank0["labels"], single["labels"])
    assert rank0["history"]["label_change"][1:] == pytest.approx(
        single["history"]["label_change"][1:], abs=1e-6
    )


def test_each_rank_samples_its_own_rows(dec_ranks):
    (rank0, rank1), _ = dec_ranks
    for batch0, batch1 in zip(rank0["sampled"], rank1["sampled"]):
        assert not set(batch0) & set(batch1)
    per_epoch = len(rank0["sampled"]) // 2
    epoch = np.concatenate(rank0["sampled"][:per_epoch] + rank1["sampled"][:per_epoch])
    assert sorted(epoch.tolist()) == list(range(240))


def test_rank_zero_alone_writes_the_cache_and_both_read_it(dec_ranks):
    (rank0, rank1), path = dec_ranks
    assert rank0["cached_same"] and rank1["cached_same"]
    assert rank0["cache_saves"] == [0] and rank1["cache_saves"] == []
    entries = [name for _, _, files in os.walk(path / "cache") for name in files
               if name.endswith(".pt")]
    assert len(entries) == 1


def test_the_pickle_of_rank_zero_is_an_ordinary_model(dec_ranks):
    (rank0, _), path = dec_ranks
    with open(path / "model.pkl", "rb") as file:
        model = pickle.load(file)
    assert not any(
        isinstance(m, torch.nn.parallel.DistributedDataParallel)
        for m in model.autoencoder_.modules()
    )
    X = worker.uniform_rows()
    np.testing.assert_array_equal(model.predict(X), rank0["labels"])


@pytest.mark.parametrize(
    "name",
    ["idec", "aekm", "imsat", "dac", "n2d", "dec_chunks", "dec_sparse", "dec_streamed"],
)
def test_every_estimator_trains_one_model_across_ranks(family_ranks, name):
    rank0, rank1 = family_ranks
    assert_same_model(rank0[name], rank1[name])
    assert len(np.unique(rank0[name]["labels"])) >= 2


def test_bad_data_on_one_rank_stops_every_rank(failure_ranks):
    rank0, rank1 = failure_ranks
    kind, message, fitted = rank0["nan_on_rank_1"]
    assert (kind, fitted) == ("ValueError", False)
    assert "process 1" in message and "NaN" in message
    assert rank1["nan_on_rank_1"][:1] == ("ValueError",)
    for rank in (rank0, rank1):
        kind, message, _ = rank["rows_on_rank_1"]
        assert kind == "ValueError" and "same X" in message


@pytest.mark.parametrize("case", ["diverged", "imsat_diverged"])
def test_divergence_stops_every_rank_with_the_same_error(failure_ranks, case):
    rank0, rank1 = failure_ranks
    assert rank0[case] == rank1[case]
    kind, message, fitted = rank0[case]
    assert kind == "TrainingDivergedError" and "learning_rate" in message
    assert not fitted


def test_the_group_works_after_errors(failure_ranks):
    rank0, rank1 = failure_ranks
    np.testing.assert_array_equal(rank0["after"], rank1["after"])
