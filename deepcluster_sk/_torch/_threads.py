"""Keep torch's thread count across calls into numba-compiled libraries."""

from contextlib import contextmanager

import torch


@contextmanager
def torch_threads_kept():
    """Restore torch's intra-op thread count when the block ends.

    numba's parallel code (umap-learn's layout, pynndescent's search) sets
    the OpenMP runtime's thread count to every core when it starts its
    threads, and torch reads its count from that runtime: after UMAP, a
    process that ``torchrun`` or ``OMP_NUM_THREADS`` held to one thread
    trained on all cores (measured: 1 thread before, 2 after, on 2 cores).
    """
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
