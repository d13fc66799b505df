"""One model trained by several processes: PyTorch DDP under ``torchrun``.

A fit launched by ``torchrun --nproc-per-node=N script.py`` (or in processes
that joined a :mod:`torch.distributed` process group themselves) runs the
same script in ``N`` processes; :func:`resolve_replicas` finds the group, or
joins the one ``torchrun``'s environment describes, and returns the
:class:`Replicas` that the fit's collectives go through:

- every training step runs under :class:`~torch.nn.parallel.DistributedDataParallel`
  (:meth:`Replicas.data_parallel`), each process on its share of the global
  batch (:class:`~._training._sampler.RowSampler` with ``rank`` and
  ``world_size``), so that the averaged gradient is that of the global
  batch;
- full passes over the data split its rows into one contiguous block per
  process and gather the outputs (:func:`~._torch._data.forward_all`);
  DEC's target update all-reduces the soft cluster frequencies and the
  label changes;
- what runs on the host once (k-means, UMAP and the mixture, the memory
  cache) runs on rank 0 and is broadcast (:meth:`Replicas.compute_once`);
- an error on one process before training, or in a step computed once,
  is raised on every process (:meth:`Replicas.together`), never left as a
  hang; losses are all-reduced, so divergence stops every process at the
  same check.

A single process gets :data:`SINGLE`, whose collectives do nothing: its fit
is exactly the fit it was before. Nothing here is pickled with a model.
"""

import atexit
import datetime
import gc
import multiprocessing
import os
from contextlib import contextmanager

import torch
import torch.distributed as dist
from torch import nn

from .exceptions import TrainingDivergedError

#: The variables ``torchrun`` (and ``torch.distributed.launch``) set in every
#: process it starts.
LAUNCHER_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")

#: How long a collective waits, in a group the package initialises. The
#: other processes wait in one while rank 0 runs a one-off step (UMAP of a
#: few million rows takes tens of minutes on a CPU); a process that raises
#: is reported at once (see :meth:`Replicas.together`) and one that dies
#: closes its connections, so only a process that hangs is waited for.
TIMEOUT = datetime.timedelta(hours=2)

#: Errors raised again with their own type on the processes that did not
#: raise them; any other is a RuntimeError there.
_RERAISED = (ValueError, TypeError, TrainingDivergedError, ImportError, MemoryError)


def launched_by_torchrun():
    """Whether torchrun started this process, in a group of two or more.

    The launcher's variables are inherited by the processes a worker starts
    in turn (joblib's loky workers of a ``GridSearchCV(n_jobs=...)``, dask
    workers), which must not try to join the group: only a process's main
    interpreter, as torchrun starts it, counts.
    """
    return (
        all(name in os.environ for name in LAUNCHER_VARIABLES)
        and int(os.environ["WORLD_SIZE"]) > 1
        and multiprocessing.current_process().name == "MainProcess"
    )


def resolve_replicas(distributed, device):
    """The :class:`Replicas` of a fit: :data:`SINGLE` unless it is distributed.

    Parameters
    ----------
    distributed : {"auto", True, False}
        The estimator's parameter. ``"auto"``: distributed when this process
        belongs to an initialised process group of two processes or more, or
        was started by ``torchrun`` with ``WORLD_SIZE`` above 1 (the group is
        then initialised here, from that environment; not in the processes
        that such a process starts, see :func:`launched_by_torchrun`).
        ``True``: the same, the launcher's environment counting in any
        process, and a single process is an error. ``False``: a single
        process whatever the environment.
    device : torch.device
        The training device, as resolved for a single process: with CUDA the
        group uses NCCL for GPU tensors and gloo for host ones.

    Returns
    -------
    Replicas

    Raises
    ------
    ValueError
        With ``distributed=True`` in a process that has no group to join.
    """
    if distributed is False:
        return SINGLE
    if not dist.is_available():
        if distributed is True:
            raise ValueError(
                "distributed=True needs torch.distributed, which this PyTorch "
                "build lacks."
            )
        return SINGLE
    launched = launched_by_torchrun() or (
        distributed is True and all(name in os.environ for name in LAUNCHER_VARIABLES)
    )
    if not dist.is_initialized() and launched:
        backend = "cpu:gloo,cuda:nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(local_rank() % torch.cuda.device_count())
        dist.init_process_group(backend, timeout=TIMEOUT)
        # Gloo's worker threads abort the process (SIGABRT) if the group is
        # still alive when the interpreter finalises.
        atexit.register(_destroy_process_group)
    if dist.is_initialized() and dist.get_world_size() > 1:
        return Replicas()
    if distributed is True:
        raise ValueError(
            "distributed=True trains one model across processes started by "
            "torchrun (e.g. torchrun --nproc-per-node=2 script.py) or that "
            "joined a torch.distributed process group; this process is alone. "
            "Use distributed='auto' to train in one process here."
        )
    return SINGLE


#: How long the exit waits for the other processes of a group the package
#: initialised before tearing it down.
EXIT_TIMEOUT = datetime.timedelta(minutes=5)


def _destroy_process_group():
    """Tear down the group the package initialised, every process together.

    Registered with :mod:`atexit`. Gloo aborts a process (SIGABRT,
    "terminate called without an active exception") whose group is torn
    down by the interpreter's finalisation, and was seen to abort one torn
    down while its peer was still closing (1 of several runs on a loaded
    2-core machine): the processes first drop what DDP left behind, then
    meet at a barrier, then destroy the group.
    """
    if not dist.is_initialized():
        return
    gc.collect()
    try:
        if dist.get_backend() == "gloo":
            dist.monitored_barrier(timeout=EXIT_TIMEOUT)
        else:
            dist.barrier()
    except RuntimeError:  # a peer has gone already: nothing to wait for
        pass
    dist.destroy_process_group()


def local_rank():
    """This process's rank on its machine (``LOCAL_RANK``, set by torchrun)."""
    return int(os.environ.get("LOCAL_RANK", dist.get_rank() if dist.is_initialized()
                              else 0))


def distributed_device(device, replicas):
    """The device of this process: a GPU of its own under several processes.

    ``"cuda"`` without an index becomes ``cuda:LOCAL_RANK`` (modulo the
    GPUs visible), the convention of ``torchrun``; any other device is
    kept.
    """
    if not replicas.enabled or device.type != "cuda" or device.index is not None:
        return device
    return torch.device("cuda", local_rank() % torch.cuda.device_count())


class _TrainedLoss(nn.Module):
    """A phase's loss as a module whose parameters are the ones it trains.

    :class:`~torch.nn.parallel.DistributedDataParallel` wraps a module and
    averages the gradients of its parameters; a phase trains some of a
    network's parameters (one layer pair, or DEC's centres beside the
    encoder) through functions that call sub-modules, so this module holds
    exactly those parameters and calls the phase's loss.
    """

    def __init__(self, loss, params):
        super().__init__()
        self.trained = nn.ParameterList(params)
        self.loss = loss

    def forward(self, *tensors):
        return self.loss(*tensors)


class Replicas:
    """The processes that train one model together, and their collectives.

    Parameters
    ----------
    group : torch.distributed.ProcessGroup or None, default=None
        None is the default (world) group.

    Attributes
    ----------
    rank, world_size : int
    enabled : bool
        Whether there are two processes or more; with one, every collective
        returns its input.
    """

    def __init__(self, group=None, *, _single=False):
        self.group = group
        if _single:
            self.rank, self.world_size = 0, 1
        else:
            self.rank = dist.get_rank(group)
            self.world_size = dist.get_world_size(group)
        self.enabled = self.world_size > 1

    @property
    def is_main(self):
        """Whether this is rank 0, which writes caches and prints progress."""
        return self.rank == 0

    # -- splitting the rows ------------------------------------------------------

    def shard(self, n_samples):
        """This process's contiguous block of ``n_samples`` rows: ``(start, stop)``.

        Blocks differ in size by one row at most and cover the rows in
        order, rank after rank.
        """
        return self._block(self.rank, n_samples)

    def _block(self, rank, n_samples):
        return (rank * n_samples // self.world_size,
                (rank + 1) * n_samples // self.world_size)

    # -- collectives ---------------------------------------------------------

    def all_reduce(self, tensor):
        """The sum of ``tensor`` over the processes (a new tensor)."""
        if not self.enabled:
            return tensor
        total = tensor.clone()
        dist.all_reduce(total, group=self.group)
        return total

    def mean(self, tensor):
        """The mean of ``tensor`` over the processes (a new tensor)."""
        return self.all_reduce(tensor.float()) / self.world_size

    def all_gather_rows(self, local, n_samples):
        """The blocks of :meth:`shard` of every process, concatenated in order.

        Parameters
        ----------
        local : torch.Tensor of shape (stop - start, ...)
            This process's block.
        n_samples : int
            Rows of all blocks together.

        Returns
        -------
        rows : torch.Tensor of shape (n_samples, ...)
        """
        if not self.enabled:
            return local
        widest = -(-n_samples // self.world_size)
        padded = local.new_zeros((widest, *local.shape[1:]))
        padded[: local.shape[0]] = local
        pieces = [torch.empty_like(padded) for _ in range(self.world_size)]
        dist.all_gather(pieces, padded, group=self.group)
        blocks = [self._block(rank, n_samples) for rank in range(self.world_size)]
        return torch.cat([piece[: stop - start]
                          for piece, (start, stop) in zip(pieces, blocks)])

    def broadcast_object(self, value):
        """Rank 0's ``value`` (any picklable object), on every process."""
        if not self.enabled:
            return value
        box = [value if self.is_main else None]
        dist.broadcast_object_list(box, src=0, group=self.group)
        return box[0]

    def sync_random_state(self, rng):
        """Give ``rng`` (a NumPy ``RandomState``) rank 0's state on every process.

        With an integer ``random_state`` the states are equal already; with
        None each process drew its own.
        """
        if self.enabled:
            rng.set_state(self.broadcast_object(rng.get_state()))
        return rng

    def compute_once(self, compute, rng=None):
        """``compute()`` run on rank 0 only, its result broadcast to every process.

        For the host-side steps of a fit (k-means, UMAP and the mixture,
        the cache) that would be wasted, or differ, if every process ran
        them. An exception on rank 0 is raised on every process.

        Parameters
        ----------
        compute : callable
            Takes no argument; its result must pickle.
        rng : numpy.random.RandomState or None, default=None
            A generator ``compute`` draws from: every process continues from
            rank 0's state afterwards.
        """
        if not self.enabled:
            return compute()
        outcome = None
        if self.is_main:
            try:
                outcome = ("result", compute())
            except Exception as exc:  # noqa: BLE001 - every rank raises it below
                outcome = ("error", exc)
        outcome = self.broadcast_object(outcome)
        if rng is not None:
            self.sync_random_state(rng)
        kind, value = outcome
        if kind == "error":
            if self.is_main:
                raise value
            raise _same_kind(value, 0) from value
        return value

    @contextmanager
    def together(self):
        """Run a block on every process; if it raised on any, raise on every one.

        The block must hold no collective that a failed process would never
        reach. A process's own error is raised as it is; the others raise
        an error of the same type (ValueError, TypeError,
        TrainingDivergedError, ImportError, MemoryError; RuntimeError
        otherwise) whose message names the rank and repeats its message.
        """
        if not self.enabled:
            yield
            return
        error = None
        try:
            yield
        except Exception as exc:  # noqa: BLE001 - re-raised below, on every rank
            error = exc
        reports = [None] * self.world_size
        mine = None if error is None else (type(error), str(error))
        dist.all_gather_object(reports, mine, group=self.group)
        if error is not None:
            raise error
        for rank, report in enumerate(reports):
            if report is not None:
                raise _same_kind(report, rank)

    def check_same(self, what, value):
        """Raise a ValueError on every process unless ``value`` is equal on all.

        Parameters
        ----------
        what : str
            What ``value`` is, for the message (``"the shape of X"``).
        value : object
            Picklable and comparable with ``==``.
        """
        if not self.enabled:
            return
        values = [None] * self.world_size
        dist.all_gather_object(values, value, group=self.group)
        if any(other != values[0] for other in values):
            listed = ", ".join(f"rank {r}: {v!r}" for r, v in enumerate(values))
            raise ValueError(
                f"Every process of a distributed fit must pass the same X; "
                f"{what} differs ({listed}). To fit a model per process on "
                "its own data, pass distributed=False."
            )

    # -- training --------------------------------------------------------------

    def data_parallel(self, loss, params, device):
        """``loss`` under DistributedDataParallel over ``params``; ``loss`` alone.

        Parameters
        ----------
        loss : callable
            A phase's loss on the tensors of a step.
        params : list of torch.nn.Parameter
            What the phase trains: DDP broadcasts them from rank 0 now and
            averages their gradients in the backward pass.
        device : torch.device

        Returns
        -------
        callable
            Called like ``loss``.
        """
        if not self.enabled:
            return loss
        module = _TrainedLoss(loss, [p for p in params if p.requires_grad])
        device_ids = [device.index] if device.type == "cuda" else None
        # The module holds parameters only: no buffers for DDP to broadcast.
        return nn.parallel.DistributedDataParallel(
            module, device_ids=device_ids, process_group=self.group
        )

    def average_buffers(self, buffers):
        """Replace floating buffers (batch norm's running statistics) by their mean.

        Each process's batch normalisation tracks the statistics of its own
        share of the batches; after training every process holds their
        average.
        """
        if not self.enabled:
            return
        for buffer in buffers:
            if buffer.is_floating_point():
                dist.all_reduce(buffer, group=self.group)
                buffer.div_(self.world_size)


def _same_kind(report, rank):
    """An error like ``report`` (an exception or ``(type, message)``) from ``rank``."""
    if isinstance(report, BaseException):
        kind, message = type(report), str(report)
    else:
        kind, message = report
    kind = kind if issubclass(kind, _RERAISED) else RuntimeError
    try:
        return kind(f"process {rank} of the distributed fit failed: {message}")
    except TypeError:
        return RuntimeError(f"process {rank} of the distributed fit failed: {message}")


#: The replicas of a fit in one process.
SINGLE = Replicas(_single=True)
