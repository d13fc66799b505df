"""How many CPU threads torch uses while an estimator trains.

A training step of a small network is a few dozen small matrix products;
splitting each of them across threads costs more in synchronisation than it
saves. :func:`training_threads` therefore trains small networks on one
thread and leaves larger ones to torch's own setting (which joblib's workers
already limit to their share of the cores).
"""

import contextlib

import torch

#: Multiply-adds of one forward pass over a mini-batch below which one
#: thread is faster than two on a CPU. Measured on 2 cores
#: (benchmarks/results/auto_defaults.md): the digits autoencoder at batch 64
#: (7.7 M) steps in 1.6 ms on one thread and 2.6 ms on two; at batch 256
#: (31 M) both take 4.3 ms; a network four times as large at batch 64
#: (28 M) steps in 5.2 ms on one thread and 4.0 ms on two.
SINGLE_THREAD_MAX_WORK = 2 * 10**7


@contextlib.contextmanager
def training_threads(device, work_per_step):
    """Use one torch thread on the CPU for steps of little work.

    Parameters
    ----------
    device : torch.device
        The training device; on a GPU nothing changes.
    work_per_step : int
        Multiply-adds of a forward pass over one mini-batch.

    Yields
    ------
    n_threads : int
        The number of torch threads inside the block.

    Notes
    -----
    The previous setting is restored on exit. The thread count changes the
    order of floating-point sums, so a model trained on one thread differs
    in the last bits from one trained on two; the choice depends only on
    the network and batch size, so the same estimator on the same data
    always trains the same way on a given machine.
    """
    previous = torch.get_num_threads()
    single = device.type == "cpu" and work_per_step < SINGLE_THREAD_MAX_WORK
    if not single or previous == 1:
        yield previous
        return
    torch.set_num_threads(1)
    try:
        yield 1
    finally:
        torch.set_num_threads(previous)
