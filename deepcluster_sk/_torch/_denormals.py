"""Subnormal floats flushed to zero while a CPU trains.

Adam's moment estimates of a small network's near-zero gradients decay into
float32's subnormal range, where every operation on them costs an x86 core
many cycles. On the digits network (batch 64, float32, two threads), 8%
of Adam's state was subnormal after 1 200 steps, and a step took 1.30 ms
against 1.04 ms with them flushed (``benchmarks/results/tuning/levers.md``).
GPUs flush them in their fast paths too.

The mode is a register of each thread. :func:`torch.set_flush_denormal`
sets the calling thread's only, so the threads of the OpenMP team that runs
torch's kernels are set from inside a parallel region of that same
runtime, looked up through the loaded ``libtorch_cpu.so``
(``/proc/self/maps``, so Linux only; elsewhere, and where torch runs on no
OpenMP, the calling thread alone flushes).
"""

import ctypes
import functools
from contextlib import contextmanager

import torch

#: Below float32's smallest normal number (1.18e-38): zero once flushed.
_SUBNORMAL = 1e-39
_TORCH_CPU_LIBRARY = "libtorch_cpu.so"
_PARALLEL_BODY = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


def flushing_denormals():
    """Whether float32 arithmetic on this thread flushes subnormal numbers to zero.

    PyTorch sets the mode (:func:`torch.set_flush_denormal`) but does not
    report it, so a subnormal product tells.

    Returns
    -------
    flushing : bool
    """
    return torch.tensor([_SUBNORMAL]).mul(1.0).item() == 0.0


@functools.lru_cache(maxsize=1)
def _openmp_parallel():
    """``GOMP_parallel`` of the OpenMP runtime torch's kernels run on, or None."""
    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps
                            if line.rstrip().endswith(_TORCH_CPU_LIBRARY)})
    except OSError:
        return None
    for path in paths:
        try:
            # Looked up through libtorch_cpu's handle, the symbol resolves in
            # the runtime torch links, not in another one the process holds
            # (scikit-learn's wheels bring their own libgomp).
            parallel = ctypes.CDLL(path).GOMP_parallel
        except (OSError, AttributeError):
            continue
        parallel.argtypes = [_PARALLEL_BODY, ctypes.c_void_p, ctypes.c_uint,
                             ctypes.c_uint]
        parallel.restype = None
        return parallel
    return None


def set_flush_denormal_everywhere(on):
    """:func:`torch.set_flush_denormal` on this thread and torch's OpenMP threads.

    Parameters
    ----------
    on : bool

    Returns
    -------
    supported : bool
        Whether this CPU has the mode; nothing changes where it has not.
    """
    if not torch.set_flush_denormal(on):
        return False
    threads = torch.get_num_threads()
    parallel = _openmp_parallel() if threads > 1 else None
    if parallel is not None:
        # Every thread of the team, this one included, runs the body once;
        # ctypes releases the GIL for the call and takes it in each body.
        parallel(_PARALLEL_BODY(lambda _: torch.set_flush_denormal(on)), None,
                 threads, 0)
    return True


@contextmanager
def denormals_flushed(device):
    """Flush subnormal floats to zero on the CPU while the block runs.

    The mode is turned off again at the end, unless this thread had it on
    before (then it stays on, for torch's threads as well).

    Parameters
    ----------
    device : torch.device
        The training device; nothing changes unless it is the CPU.
    """
    if torch.device(device).type != "cpu":
        yield
        return
    was_on = flushing_denormals()
    if not set_flush_denormal_everywhere(True) or was_on:
        yield
        return
    try:
        yield
    finally:
        set_flush_denormal_everywhere(False)
