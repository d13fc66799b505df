"""The processes of the distributed tests: two ranks fitting on gloo.

:func:`run_ranks` starts ``world_size`` processes (spawned, so that each has
its own OpenMP runtime) that join a gloo group on the loopback address the
way ``torchrun`` would (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``,
``MASTER_PORT`` in the environment: the estimators initialise the group
themselves), run one scenario of :data:`SCENARIOS` and write what they
found to ``<folder>/rank<r>.pkl``. The tests compare the ranks' files.
"""

import os
import pickle
import socket
import time
import traceback

import numpy as np

#: Seconds a scenario may take before the test calls it a hang.
DEADLINE = 240


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_ranks(scenario, folder, world_size=2, deadline=DEADLINE):
    """Run ``scenario`` in ``world_size`` processes; return each rank's results.

    Raises AssertionError if a process is still running after ``deadline``
    seconds (they are killed) or exited without writing its results.
    """
    import torch.multiprocessing as mp

    port = free_port()
    context = mp.get_context("spawn")
    processes = [
        context.Process(target=_rank_main, args=(scenario, folder, rank, world_size, port))
        for rank in range(world_size)
    ]
    for process in processes:
        process.start()
    stop = time.monotonic() + deadline
    for process in processes:
        process.join(max(0.0, stop - time.monotonic()))
    hung = [p for p in processes if p.is_alive()]
    for process in hung:
        process.kill()
    assert not hung, f"{scenario}: {len(hung)} process(es) still running after {deadline} s"
    codes = [process.exitcode for process in processes]
    assert codes == [0] * world_size, f"{scenario}: exit codes {codes}"
    results = []
    for rank in range(world_size):
        path = os.path.join(folder, f"rank{rank}.pkl")
        assert os.path.exists(path), f"{scenario}: rank {rank} wrote no results"
        with open(path, "rb") as file:
            results.append(pickle.load(file))
    for result in results:
        assert "crash" not in result, result.get("crash")
    return results


def _rank_main(scenario, folder, rank, world_size, port):
    import multiprocessing

    # As in a process that torchrun starts: its own main interpreter.
    multiprocessing.current_process().name = "MainProcess"
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size),
        LOCAL_WORLD_SIZE=str(world_size), MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port), GLOO_SOCKET_IFNAME="lo",
    )
    import torch

    torch.set_num_threads(1)
    try:
        result = SCENARIOS[scenario](rank, folder)
    except BaseException:  # reported to the test, which fails on it
        result = {"crash": traceback.format_exc()}
    with open(os.path.join(folder, f"rank{rank}.pkl"), "wb") as file:
        pickle.dump(result, file)
    # What the atexit handler of a torchrun process runs (a multiprocessing
    # child exits without running atexit handlers).
    from deepcluster_sk._distributed import _destroy_process_group

    _destroy_process_group()


# -- data ----------------------------------------------------------------------


def blobs(n_samples=240, n_features=8, seed=0, cluster_std=3.0):
    """Overlapping blobs, float32; ``n_samples`` divisible by 2 and by 48.

    Overlapping, so that DEC's labels still change after its first target
    updates.
    """
    from sklearn.datasets import make_blobs

    X, y = make_blobs(n_samples=n_samples, n_features=n_features, centers=4,
                      cluster_std=cluster_std, random_state=seed)
    return (X / np.abs(X).max()).astype(np.float32), y


def uniform_rows(n_samples=240, n_features=8, seed=0):
    """Rows without clusters: DEC's labels keep changing a little."""
    return np.random.RandomState(seed).rand(n_samples, n_features).astype(np.float32)


#: DEC's settings under which, on :func:`uniform_rows`, a row or two changes
#: cluster at most target updates (measured: 0.4% to 1.3%).
CHANGING = dict(learning_rate=0.1, update_interval=5)


# -- what the processes run ------------------------------------------------------


def dec_params(**extra):
    """A small DEC whose fit takes a second: 3 epochs, then self-training."""
    params = dict(n_clusters=4, hidden_dims=(16,), n_components=2, pretrain_epochs=3,
                  batch_size=48, max_iter=60, update_interval=10, tol=0.0,
                  init="kmeans", n_init=2, precision="float32", device="cpu",
                  random_state=0)
    return {**params, **extra}


def fitted_state(model):
    """What a test compares across ranks: weights, centres, labels, history."""
    import torch

    modules = [v for k, v in vars(model).items()
               if k.endswith("_") and isinstance(v, torch.nn.Module)]
    state = {}
    for module in modules:
        for name, tensor in module.state_dict().items():
            state[name] = tensor.detach().cpu().numpy().copy()
    return {
        "state": state,
        "centers": getattr(model, "cluster_centers_", None),
        "labels": model.labels_,
        "history": {k: v for k, v in model.history_.items() if k != "pretrain_loss"},
        "pretrain_loss": model.history_.get("pretrain_loss"),
        "n_iter": model.n_iter_,
    }


def _spy_on_target_updates():
    """Record what each DEC target update sums over the ranks (local values)."""
    import sys

    from deepcluster_sk._distributed import Replicas

    recorded = []
    original = Replicas.all_reduce

    def all_reduce(self, tensor):
        if sys._getframe(1).f_code.co_name == "_update_target" and tensor.numel() == 2:
            recorded.append(tensor.detach().cpu().numpy().copy())
        return original(self, tensor)

    Replicas.all_reduce = all_reduce
    return recorded


def _dec(rank, folder):
    """DEC on two ranks: the model, the local label changes, the pickle, the cache."""
    import torch.distributed as dist

    from deepcluster_sk import DECClusterer
    from deepcluster_sk._torch._data import TrainingData
    from deepcluster_sk._distributed import resolve_replicas

    X = uniform_rows()
    recorded = _spy_on_target_updates()
    model = DECClusterer(**dec_params(**CHANGING)).fit(X)
    result = fitted_state(model)
    result["world_size"] = dist.get_world_size()
    # [KL, changed labels] of each target update, summed over this rank's block.
    result["local_updates"] = recorded
    result["predict"] = model.predict(X)
    if rank == 0:
        with open(os.path.join(folder, "model.pkl"), "wb") as file:
            pickle.dump(model, file)
    # The rows of each rank in the first two epochs of a sampler.
    import torch

    data = TrainingData(X, torch.device("cpu"), resolve_replicas("auto", torch.device("cpu")))
    sampler = data.sampler(48, torch.Generator().manual_seed(3))
    result["sampled"] = [next(sampler).numpy() for _ in range(2 * sampler.steps_per_epoch)]
    # The memory cache: written by rank 0 alone, read back by both.
    from deepcluster_sk._estimators._memory import PretrainCache

    saves = []
    original_save = PretrainCache.save

    def save(self, *args):
        saves.append(rank)
        return original_save(self, *args)

    PretrainCache.save = save
    memory = os.path.join(folder, "cache")
    first = DECClusterer(**dec_params(memory=memory)).fit(X)
    result["cache_saves"] = list(saves)
    again = DECClusterer(**dec_params(memory=memory, verbose=0)).fit(X)
    result["cached_same"] = bool(
        np.array_equal(first.labels_, again.labels_)
        and np.allclose(first.cluster_centers_, again.cluster_centers_)
    )
    return result


def _family(rank, folder):
    """IDEC, AutoencoderKMeans, IMSAT, DAC, N2D (no UMAP), and DEC on chunks of a
    memory map and on sparse rows, on two ranks."""
    from deepcluster_sk import (
        AutoencoderKMeans,
        DACClusterer,
        DECClusterer,
        IMSATClusterer,
        N2DClusterer,
    )

    import scipy.sparse as sp

    from deepcluster_sk import RowChunks

    X, _ = blobs()
    path = os.path.join(folder, f"X{rank}.npy")
    np.save(path, X)
    on_disk = RowChunks(np.load(path, mmap_mode="r"), chunk_rows=50)
    common = dict(n_clusters=4, hidden_dims=(16,), precision="float32", device="cpu",
                  random_state=0)
    inputs = {"dec_chunks": on_disk, "dec_sparse": sp.csr_matrix(X)}
    models = {
        "dec_chunks": DECClusterer(**dec_params()),
        "dec_sparse": DECClusterer(**dec_params()),
        "idec": DECClusterer(**dec_params(reconstruction_weight=0.1)),
        "aekm": AutoencoderKMeans(n_components=2, pretrain_epochs=3, batch_size=48,
                                  n_init=2, **common),
        "imsat": IMSATClusterer(n_epochs=3, batch_size=48, **common),
        "dac": DACClusterer(steps_per_stage=2, batch_size=48, **common),
        "n2d": N2DClusterer(n_components=2, pretrain_epochs=3, batch_size=48,
                            manifold=False, **common),
    }
    fitted = {name: fitted_state(model.fit(inputs.get(name, X)))
              for name, model in models.items()}
    # DEC with its target recomputed per batch, as above STORED_TARGET_BYTES.
    import deepcluster_sk._training._self_training as self_training

    self_training.STORED_TARGET_BYTES = 0
    fitted["dec_streamed"] = fitted_state(DECClusterer(**dec_params()).fit(X))
    return fitted


def _failures(rank, folder):
    """Errors on one rank, and divergence: every rank raises, none hangs."""
    from deepcluster_sk import DECClusterer, IMSATClusterer

    X, _ = blobs()
    outcomes = {}
    bad = X.copy()
    if rank == 1:
        bad[5, 3] = np.nan  # bad data in one process's X only
    for name, model, data in [
        ("nan_on_rank_1", DECClusterer(**dec_params()), bad),
        ("rows_on_rank_1", DECClusterer(**dec_params()), X[:-2] if rank == 1 else X),
        ("diverged", DECClusterer(**dec_params(pretrain_learning_rate=1e6)), X),
        ("imsat_diverged", IMSATClusterer(n_clusters=4, n_epochs=3, batch_size=48,
                                          learning_rate=1e6, device="cpu",
                                          random_state=0), X),
    ]:
        try:
            model.fit(data)
            outcomes[name] = ("fitted", hasattr(model, "labels_"))
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            outcomes[name] = (type(exc).__name__, str(exc), hasattr(model, "labels_"))
    # The group still works after the errors: a fit afterwards succeeds.
    model = DECClusterer(**dec_params(max_iter=10)).fit(X)
    outcomes["after"] = model.labels_
    return outcomes


def _single(rank, folder):
    """The reference fit, one process (world size 1)."""
    from deepcluster_sk import DECClusterer

    return fitted_state(DECClusterer(**dec_params(**CHANGING)).fit(uniform_rows()))


def torchrun_environment_in_a_child(path):
    """Run in a child process with torchrun's variables: what a fit resolves."""
    os.environ.update(RANK="1", WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(free_port()))
    import torch

    from deepcluster_sk._distributed import SINGLE, resolve_replicas

    single = resolve_replicas("auto", torch.device("cpu")) is SINGLE
    with open(path, "w") as file:
        file.write("single" if single else "distributed")


SCENARIOS = {"dec": _dec, "family": _family, "failures": _failures, "single": _single}
