"""How many CPU threads torch uses while an estimator trains.

A training step of a small network is a few dozen small matrix products,
which gain little from being split across threads. :func:`training_threads`
trains small networks on one thread and leaves larger ones to torch's own
setting (which joblib's workers already limit to their share of the cores);
see ``SINGLE_THREAD_MAX_WORK`` for what has been measured.
"""

import contextlib

import torch

#: Multiply-adds of one forward pass over a mini-batch below which training
#: runs on one thread. Chosen while tuning on a 2-core machine shared with
#: other experiments, where one thread stepped the digits autoencoder faster
#: (those timings were not recorded). Re-measured alone on that machine
#: (``benchmarks/tuning/thread_steps.py``,
#: ``benchmarks/results/tuning/thread_steps.md``), two threads step every
#: network tried at least as fast (digits network, batch 64, 7.7 M: 1.45 ms on
#: one thread, 1.20 ms on two) and whole digits fits differ by less than their
#: run-to-run spread. Kept until the defaults are re-measured with it changed.
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
