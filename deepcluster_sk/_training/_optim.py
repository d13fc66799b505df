"""Optimizers in their fastest form, and the learning-rate schedules."""

import math

import torch

from ._flat import FLAT_MAX_PARAMETERS, FlatOptimizer, flat_eligible


def _device_type(device):
    """``"cpu"``, ``"cuda"``, ... of ``device``; None when it is not given."""
    return None if device is None else torch.device(device).type


#: The optimizers whose per-tensor cost one flat update saves on a CPU:
#: 11-14% of a small autoencoder's Adam step, 10-12% of DAC's RMSprop step,
#: but nothing of fused SGD's (-4% to +7% between runs,
#: ``benchmarks/results/tuning/flat_optimizer.md``).
FLAT_ALGORITHMS = ("adam", "rmsprop")


def make_optimizer(algorithm, params, learning_rate, device=None, *,
                   replicated=False, gathered=False, **options):
    """An optimizer in the fastest form that this PyTorch supports on ``device``.

    Adam's fused implementation halves the step time of a small MLP on a
    CPU; SGD's fused one takes 0.09 ms (9%) off each step of the digits
    network there (``benchmarks/results/tuning/levers.md``). On a CPU Adam
    and RMSprop also update the weights of a small network as one flat
    tensor (:class:`~._flat.FlatOptimizer`), unless several processes train
    them.
    On CUDA, Adam and RMSprop are *capturable*, Adam with its learning rate
    as a device tensor, so that a CUDA graph can replay their steps while
    :class:`CosineSchedule` changes the rate in place. SGD needs neither:
    its learning rate stays a float, read on the host, and it keeps its
    plain form on a GPU, where its fused form has not been measured under
    capture. A form this PyTorch lacks falls back to the next, and finally
    to the plain one.

    Parameters
    ----------
    algorithm : {"adam", "rmsprop", "sgd"}
    params : iterable of torch.Tensor
    learning_rate : float
    device : torch.device, str or None, default=None
        The training device.
    replicated : bool, default=False
        Whether several processes train the weights (DistributedDataParallel
        owns their gradients then, and they stay separate tensors).
    gathered : bool, default=False
        Whether the caller writes the gradients into the flat buffer itself
        (:meth:`~._flat.FlatOptimizer.step_gathered`): then a flat update
        copies nothing and is used for every algorithm and network size.
    **options
        Further arguments of the optimizer (``momentum``, ``weight_decay``).

    Returns
    -------
    optimizer : torch.optim.Optimizer or FlatOptimizer
    """
    params = list(params)
    make = per_tensor_optimizer(algorithm, learning_rate, device, **options)
    flat = gathered or algorithm in FLAT_ALGORITHMS
    most = None if gathered else FLAT_MAX_PARAMETERS
    if (flat and _device_type(device) == "cpu" and not replicated
            and flat_eligible(params, most)):
        return FlatOptimizer(make, params)
    return make(params)


def per_tensor_optimizer(algorithm, learning_rate, device=None, **options):
    """``make(params)``: :func:`make_optimizer`'s optimizer, one update per tensor.

    Parameters
    ----------
    algorithm, learning_rate, device, **options
        As in :func:`make_optimizer`.

    Returns
    -------
    make : callable
        Returns the optimizer over a list of tensors in the fastest form
        this PyTorch accepts.
    """
    cls = {"adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop,
           "sgd": torch.optim.SGD}[algorithm]
    device_type = _device_type(device)
    attempts = []
    if algorithm == "adam":
        if device_type == "cuda":
            tensor_lr = torch.tensor(float(learning_rate), device=device)
            attempts += [
                dict(lr=tensor_lr, fused=True, capturable=True),
                dict(lr=tensor_lr, capturable=True),
            ]
        attempts.append(dict(lr=learning_rate, fused=True))
    elif algorithm == "rmsprop" and device_type == "cuda":
        attempts.append(dict(lr=learning_rate, capturable=True))
    elif algorithm == "sgd" and device_type == "cpu":
        attempts.append(dict(lr=learning_rate, fused=True))

    def make(tensors):
        for kwargs in attempts:
            try:
                return cls(tensors, **kwargs, **options)
            except (RuntimeError, TypeError, ValueError):
                continue
        return cls(tensors, lr=learning_rate, **options)

    return make


def make_adam(params, learning_rate, device=None, **options):
    """:func:`make_optimizer` for Adam."""
    return make_optimizer("adam", params, learning_rate, device, **options)


def release_weights(optimizer):
    """Give the weights of a :class:`~._flat.FlatOptimizer` their own storage."""
    release = getattr(optimizer, "release", None)
    if release is not None:
        release()


class CosineSchedule:
    """Cosine decay of the learning rate to ``final_fraction`` of its start.

    A tensor learning rate is updated in place, so a captured CUDA graph
    reads the new value at its next replay; a float one is replaced.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
    n_steps : int
        Steps from the initial rate to ``final_fraction`` of it.
    final_fraction : float
    """

    def __init__(self, optimizer, n_steps, final_fraction):
        self.optimizer = optimizer
        self.n_steps = max(n_steps, 1)
        self.final_fraction = final_fraction
        self.base_lrs = [float(group["lr"]) for group in optimizer.param_groups]
        self.count = 0

    def step(self):
        """Advance one step and set the learning rate of every group."""
        self.count += 1
        progress = min(self.count / self.n_steps, 1.0)
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        factor = self.final_fraction + (1.0 - self.final_fraction) * cosine
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(base * factor)
            else:
                group["lr"] = base * factor
