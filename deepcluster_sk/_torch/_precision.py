"""The precision the networks compute in: float32, or bfloat16 autocast.

With ``precision="bfloat16"`` the matrix products and convolutions of the
networks run in bfloat16 under :func:`torch.autocast`, with float32 master
weights, gradients and optimizer state; the losses, the Student-t kernel,
the entropies and every output a user sees stay float32. CPUs with
AVX-512 BF16 or AMX units and GPUs from Ampere on run those products
several times faster than in float32, but only once a step has enough
arithmetic to pay for the casts (``BFLOAT16_MIN_WORK``).

Autocast wraps a whole training step (see
:func:`~deepcluster_sk._training._engine.run_phase`) and every inference
pass, never a fit as a whole: its cache of cast weights must not outlive an
optimizer step, so it is created with ``cache_enabled=False``. The math of
the package's own losses is decorated with :func:`full_precision`, which
turns autocast off inside and upcasts its tensor arguments, so a bfloat16
network output never makes a loss bfloat16.
"""

import contextlib
import functools
import warnings

import torch

#: The values of the ``precision`` parameter besides ``"auto"``.
PRECISIONS = ("float32", "bfloat16")

#: Forward multiply-adds of one training step from which ``"auto"`` picks
#: bfloat16 on a device with native bfloat16 units. Measured on a 2-core
#: Xeon with AMX (``benchmarks/results/tuning/precision_steps.md``): every
#: step of 1.2e8 multiply-adds or more ran faster in bfloat16 (1.13x to
#: 2.8x), every step of 3.1e7 or fewer slower (0.43x to 0.95x): casting the
#: weights at every step and oneDNN's small-matrix paths cost more than the
#: faster products gain. On GPUs the same rule applies until it is measured
#: there.
BFLOAT16_MIN_WORK = 10**8


def cpu_has_bfloat16_units():
    """Whether this CPU multiplies bfloat16 natively (AVX-512 BF16 or AMX).

    Without such units PyTorch emulates bfloat16 products, more slowly than
    float32.
    """
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    for name in checks:
        check = getattr(torch.cpu, name, None)
        if check is not None and check():
            return True
    return False


def native_bfloat16(device):
    """Whether ``device`` has hardware for bfloat16 matrix products.

    Parameters
    ----------
    device : torch.device

    Returns
    -------
    bool
    """
    if device.type == "cuda":
        try:
            return torch.cuda.is_bf16_supported(including_emulation=False)
        except TypeError:  # PyTorch before 2.3 has no including_emulation
            return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return cpu_has_bfloat16_units()
    return False


def resolve_precision(precision, device, work_per_step):
    """The precision a fit computes in, for the ``precision`` parameter.

    Parameters
    ----------
    precision : {"auto", "float32", "bfloat16"}
    device : torch.device
        The training device.
    work_per_step : float
        Forward multiply-adds of one training step (a mini-batch through
        the network, times the forward passes a step makes).

    Returns
    -------
    precision : {"float32", "bfloat16"}
        ``"auto"`` is bfloat16 where the device has native bfloat16 units
        and a step has at least ``BFLOAT16_MIN_WORK`` multiply-adds, else
        float32.

    Raises
    ------
    ValueError
        If bfloat16 is asked for on a GPU without bfloat16 support. (A CPU
        always runs it, emulated where it has no bfloat16 units.)

    Warns
    -----
    UserWarning
        If bfloat16 is asked for on a CPU without bfloat16 units, where
        PyTorch emulates its products: on a 2-core AMD EPYC Zen 3 (AVX2)
        they ran at 1.3 GFLOP/s against float32's 139
        (``benchmarks/results/zen3/roofline_cpu.md``).
    """
    native = native_bfloat16(device)
    if precision == "auto":
        gains = native and work_per_step >= BFLOAT16_MIN_WORK
        return "bfloat16" if gains else "float32"
    if precision == "bfloat16" and device.type == "cpu" and not native:
        warnings.warn(
            "precision='bfloat16' was requested but this CPU has no bfloat16 "
            "units (AVX-512 BF16 or AMX): PyTorch emulates bfloat16 products "
            "there (about 100 times more slowly than float32 ones on an AMD "
            "EPYC Zen 3). Use "
            "precision='auto' or precision='float32' to train in float32.",
            UserWarning,
            stacklevel=2,
        )
    if precision == "bfloat16" and device.type == "cuda" and not native:
        raise ValueError(
            f"precision='bfloat16' was requested but the GPU {device} has no "
            "bfloat16 support; use precision='float32' or precision='auto' "
            f"(choices: 'auto', {', '.join(repr(p) for p in PRECISIONS)})."
        )
    return precision


def inference_precision(precision, device):
    """The precision a fitted network predicts in on ``device``.

    The fitted precision, except that a model fitted in bfloat16 predicts
    in float32 on a device without bfloat16 units: a CPU there would emulate
    the products about 100 times more slowly (``resolve_precision``), and
    PyTorch's CUDA autocast turns itself off on such a GPU anyway. The
    weights are float32 either way.

    Parameters
    ----------
    precision : {"float32", "bfloat16"}
        The fitted ``precision_``.
    device : torch.device
        Where the network predicts.

    Returns
    -------
    precision : {"float32", "bfloat16"}
    """
    if precision == "bfloat16" and not native_bfloat16(device):
        return "float32"
    return precision


def autocast(precision, device):
    """The context that runs network forwards in ``precision`` on ``device``.

    Parameters
    ----------
    precision : {"float32", "bfloat16"}
    device : torch.device

    Returns
    -------
    context manager
        :func:`torch.autocast` to bfloat16 without a weight cache, or a
        context that changes nothing for float32.
    """
    if precision != "bfloat16":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=False)


def _upcast(value):
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.float()
    return value


def _active_autocast():
    """The device types on which autocast is on in this thread."""
    try:
        return [t for t in ("cpu", "cuda") if torch.is_autocast_enabled(t)]
    except TypeError:  # PyTorch before 2.4
        return [
            t
            for t, on in (
                ("cpu", torch.is_autocast_cpu_enabled()),
                ("cuda", torch.is_autocast_enabled()),
            )
            if on
        ]


def full_precision(function):
    """Run ``function`` in float32 whatever autocast is active.

    Under autocast, autocast is turned off inside and floating-point tensor
    arguments are cast to float32 first; otherwise ``function`` is called as
    it is, at the cost of one check.
    """

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        active = _active_autocast()
        if not active:
            return function(*args, **kwargs)
        args = [_upcast(a) for a in args]
        kwargs = {k: _upcast(v) for k, v in kwargs.items()}
        with contextlib.ExitStack() as stack:
            for device_type in active:
                stack.enter_context(torch.autocast(device_type, enabled=False))
            return function(*args, **kwargs)

    return wrapper
