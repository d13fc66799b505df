"""Subnormal floats are flushed to zero while a CPU trains, and only then."""

import numpy as np
import pytest
import torch

from deepcluster_sk import AutoencoderKMeans
from deepcluster_sk._torch._data import TrainingData
from deepcluster_sk._torch._denormals import (
    _openmp_parallel,
    denormals_flushed,
    flushing_denormals,
)
from deepcluster_sk._training._engine import run_phase
from deepcluster_sk._training._pretraining import EndToEndPhase
from deepcluster_sk._training._sampler import RowSampler
from deepcluster_sk.nn import MLPAutoencoder

# set_flush_denormal(False) also says whether this CPU has the mode at all.
pytestmark = pytest.mark.skipif(
    not torch.set_flush_denormal(False), reason="no flush-to-zero mode on this CPU"
)


def test_the_block_flushes_and_turns_the_mode_off_again():
    assert not flushing_denormals()
    with denormals_flushed(torch.device("cpu")):
        assert flushing_denormals()
        assert torch.tensor([1e-39]).mul(1.0).item() == 0.0
    assert not flushing_denormals()
    assert torch.tensor([1e-39]).mul(1.0).item() > 0.0


def _flushed_share_of_a_parallel_op():
    # A million elements: torch splits them among its threads.
    products = torch.full((1 << 20,), 3e-38).mul(0.01)
    return float((products == 0).float().mean())


@pytest.mark.skipif(_openmp_parallel() is None, reason="torch's OpenMP runtime not found")
def test_every_thread_of_torch_flushes_inside_the_block():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        _flushed_share_of_a_parallel_op()  # the threads exist before the block
        with denormals_flushed(torch.device("cpu")):
            assert _flushed_share_of_a_parallel_op() == 1.0
        assert _flushed_share_of_a_parallel_op() == 0.0
    finally:
        torch.set_num_threads(threads)


def test_a_mode_the_user_turned_on_stays_on():
    torch.set_flush_denormal(True)
    try:
        with denormals_flushed(torch.device("cpu")):
            assert flushing_denormals()
        assert flushing_denormals()
    finally:
        torch.set_flush_denormal(False)


def test_other_devices_leave_the_cpu_mode_alone():
    with denormals_flushed(torch.device("cuda")):
        assert not flushing_denormals()


def _phase(loss_probe):
    X = np.random.RandomState(0).rand(64, 6).astype(np.float32)
    data = TrainingData(X, torch.device("cpu"))
    sampler = RowSampler(64, 16, torch.Generator().manual_seed(0), data.device)
    phase = EndToEndPhase(MLPAutoencoder(6, (8,), 2), data, sampler, 2, 1e-3, "")
    step = phase.step
    phase.step = lambda x: (loss_probe(), step(x))[1]
    return phase


def test_every_training_step_runs_flushed_and_the_mode_is_restored():
    seen = []
    losses = run_phase(_phase(lambda: seen.append(flushing_denormals())))
    assert len(losses) == 2 and len(seen) == 8 and all(seen)
    assert not flushing_denormals()


def test_a_failing_step_still_restores_the_mode():
    def fail():
        raise RuntimeError("step failed")

    with pytest.raises(RuntimeError, match="step failed"):
        run_phase(_phase(fail))
    assert not flushing_denormals()


def test_a_fit_leaves_the_mode_as_it_found_it():
    X = np.random.RandomState(0).rand(60, 5)
    AutoencoderKMeans(n_clusters=2, hidden_dims=(8,), pretrain_epochs=2,
                      random_state=0).fit(X)
    assert not flushing_denormals()
