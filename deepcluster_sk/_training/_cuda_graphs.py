"""Replay a whole training step as one CUDA graph, with an eager fallback.

A DEC training step on a small MLP is a few dozen tiny kernels; on a GPU
their launch overhead, not their arithmetic, sets the speed. Capturing the
step -- forward, backward and ``optimizer.step()`` -- once in a
:class:`torch.cuda.CUDAGraph` and replaying it launches all of them with
one call.

:func:`cuda_graphed_step` wraps the step of a training phase (a
:class:`~._engine.Phase`'s ``step``, which :func:`~._engine.run_phase`
calls): a function ``step(*tensors) -> loss`` that runs forward, backward and
the optimizer and returns the detached loss. The wrapper is called exactly like the step and
performs exactly one training step per call, whichever path it takes:

* on the CPU (or when disabled) it calls the step itself;
* on CUDA, the first ``warmup_steps`` calls run the step eagerly on a side
  stream (as PyTorch requires before a capture: it initialises optimizer
  state, cuBLAS workspaces and autograd's streams), the next call captures
  the step on static copies of its inputs and replays it, and every later
  call copies its inputs into those static buffers and replays the graph;
* an input of another shape, dtype or device than the examples (the last,
  smaller batch of an epoch) runs the step eagerly;
* if warm-up or capture raises, the wrapper warns once with a
  :class:`UserWarning` and runs every later step eagerly.

Requirements on the step, the usual ones of CUDA graphs: no host-device
synchronisation (``.item()``, ``.cpu()``, printing a tensor, Python control
flow on tensor values), no new CPU-to-GPU copies, fixed shapes, and an
optimizer that can be captured: ``torch.optim.Adam(..., capturable=True)``
(the fused implementation too needs ``capturable=True``), with the learning
rate as a CUDA tensor when a scheduler changes it -- a float learning rate
is baked into the graph at capture. ``torch.optim.SGD`` needs no flag but
its learning rate must stay a float, which its foreach kernels read on the
host. Everything the step reads must keep its memory: parameters and
optimizer state are updated in place, and tensors the step closes over
must be updated in place too, not rebound.

See the PyTorch notes "CUDA Graphs" (whole-network capture) in
https://pytorch.org/docs/stable/notes/cuda.html#cuda-graphs.
"""

import contextlib
import warnings

import torch

__all__ = ["GraphedStep", "cuda_graphed_step", "allow_tf32"]

#: Eager steps before the capture; the PyTorch notes warm up for three.
DEFAULT_WARMUP_STEPS = 3

#: The warning ``Optimizer`` emits when a ``capturable=True`` optimizer steps
#: outside a capture; the wrapper's warm-up and fallback steps do so by design.
_UNCAPTURED_STEP_WARNING = r".*capturable=True.*running without .* graph capture"


def cuda_graphed_step(
    step, example_inputs, *, enabled=None, warmup_steps=DEFAULT_WARMUP_STEPS
):
    """Wrap a training step so that on CUDA it runs as a replayed CUDA graph.

    Parameters
    ----------
    step : callable
        ``step(*tensors) -> torch.Tensor``: one full training step (forward,
        backward, optimizer step) that returns the detached loss. The very
        same function object runs on the graph path and on the eager path.
    example_inputs : sequence of torch.Tensor
        Tensors with the shapes, dtypes and device of the inputs the graph
        is captured for, e.g. one full mini-batch. They are not passed to
        ``step``: no training happens at construction.
    enabled : bool or None, default=None
        ``None`` captures when the examples are on a CUDA device and runs
        eagerly otherwise. ``False`` always runs eagerly. ``True`` attempts
        the capture on any device; where it cannot work it warns and falls
        back.
    warmup_steps : int, default=3
        Eager calls, on a side stream, before the call that captures.

    Returns
    -------
    GraphedStep
        A callable with the signature of ``step``.

    Raises
    ------
    TypeError
        If ``step`` is not callable or an example input is not a tensor.
    ValueError
        If ``warmup_steps`` is below 1 or ``example_inputs`` is empty.

    Examples
    --------
    >>> import torch
    >>> from deepcluster_sk._training._cuda_graphs import cuda_graphed_step
    >>> model = torch.nn.Linear(3, 1)
    >>> optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> def step(x):
    ...     loss = model(x).pow(2).mean()
    ...     optimizer.zero_grad(set_to_none=True)
    ...     loss.backward()
    ...     optimizer.step()
    ...     return loss.detach()
    >>> graphed = cuda_graphed_step(step, [torch.zeros(8, 3)])
    >>> graphed(torch.ones(8, 3)).shape  # on the CPU: the eager step
    torch.Size([])
    """
    return GraphedStep(step, example_inputs, enabled=enabled, warmup_steps=warmup_steps)


def _signature(tensors):
    """Shape, dtype and device of each input; None if one is not a tensor."""
    if not all(isinstance(t, torch.Tensor) for t in tensors):
        return None
    return tuple((tuple(t.shape), t.dtype, t.device) for t in tensors)


def _new_stream(device):
    """The side stream that warm-up and capture share."""
    return torch.cuda.Stream(device)


def _warm_up(step, tensors, stream):
    """Run ``step`` eagerly on ``stream``, ordered with the current stream."""
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        output = step(*tensors)
    torch.cuda.current_stream().wait_stream(stream)
    return output


def _capture(step, static_inputs, stream):
    """Capture ``step`` on ``static_inputs``; return the graph and its output.

    Capturing records the kernels without running them: the step has not
    happened until the graph is replayed.
    """
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=stream):
        static_output = step(*static_inputs)
    return graph, static_output


@contextlib.contextmanager
def _quiet_uncaptured_optimizer():
    """Silence the optimizer's note that a capturable step ran uncaptured."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_UNCAPTURED_STEP_WARNING)
        yield


class GraphedStep:
    """A training step replayed as a CUDA graph, falling back to eager calls.

    Built by :func:`cuda_graphed_step`, which documents the parameters.

    Attributes
    ----------
    step : callable
        The wrapped step function.
    active : bool
        Whether a graph has been captured and replays.
    fallback_reason : str or None
        Why graphs were given up after a failed warm-up or capture.
    n_replays, n_eager : int
        Calls answered by a graph replay and by an eager call of ``step``
        (warm-up included).
    """

    def __init__(
        self, step, example_inputs, *, enabled=None, warmup_steps=DEFAULT_WARMUP_STEPS
    ):
        if not callable(step):
            raise TypeError(f"step must be callable, got {type(step).__name__}.")
        example_inputs = tuple(example_inputs)
        if not example_inputs:
            raise ValueError("example_inputs must hold at least one tensor.")
        self._signature = _signature(example_inputs)
        if self._signature is None:
            raise TypeError("example_inputs must all be torch.Tensor objects.")
        if warmup_steps < 1:
            raise ValueError(
                f"warmup_steps={warmup_steps} must be at least 1: the optimizer "
                "state must exist before the capture."
            )
        self.step = step
        self._device = example_inputs[0].device
        self._use_graph = (
            self._device.type == "cuda" if enabled is None else bool(enabled)
        )
        # Steps of a wrapper meant to capture run uncaptured by design.
        self._quiet = self._use_graph
        self._warmups_left = warmup_steps
        self._stream = None
        self._graph = None
        self._static_inputs = None
        self._static_output = None
        self.fallback_reason = None
        self.n_replays = 0
        self.n_eager = 0

    @property
    def active(self):
        """Whether calls of the captured shape replay a graph."""
        return self._graph is not None

    def __call__(self, *tensors):
        """Run one training step on ``tensors``; return its loss."""
        if not self._use_graph or _signature(tensors) != self._signature:
            return self._eager(tensors)
        if self._graph is not None:
            return self._replay(tensors)
        if self._warmups_left > 0:
            return self._warm_up_call(tensors)
        return self._capture_call(tensors)

    def _eager(self, tensors):
        self.n_eager += 1
        if not self._quiet:
            return self.step(*tensors)
        with _quiet_uncaptured_optimizer():
            return self.step(*tensors)

    def _warm_up_call(self, tensors):
        try:
            if self._stream is None:
                self._stream = _new_stream(self._device)
            with _quiet_uncaptured_optimizer():
                output = _warm_up(self.step, tensors, self._stream)
        except Exception as exc:  # noqa: BLE001 - any failure means: go eager
            self._give_up("warm-up", exc)
            return self._eager(tensors)
        self._warmups_left -= 1
        self.n_eager += 1
        return output

    def _capture_call(self, tensors):
        static_inputs = tuple(t.clone() for t in tensors)
        try:
            graph, static_output = _capture(self.step, static_inputs, self._stream)
        except Exception as exc:  # noqa: BLE001 - any failure means: go eager
            self._give_up("capture", exc)
            return self._eager(tensors)
        self._graph = graph
        self._static_inputs = static_inputs
        self._static_output = static_output
        return self._launch()

    def _replay(self, tensors):
        for static, tensor in zip(self._static_inputs, tensors, strict=True):
            static.copy_(tensor)
        return self._launch()

    def _launch(self):
        self._graph.replay()
        self.n_replays += 1
        # The graph overwrites its output at the next replay; hand out a copy.
        return self._static_output.clone()

    def _give_up(self, phase, exc):
        self._use_graph = False
        self._stream = None
        self.fallback_reason = f"CUDA graph {phase} failed: {type(exc).__name__}: {exc}"
        warnings.warn(
            f"{self.fallback_reason}. Training continues with ordinary (eager) "
            "steps, which give the same result more slowly.",
            UserWarning,
            stacklevel=4,
        )


@contextlib.contextmanager
def allow_tf32(device):
    """Allow TF32 tensor-core matmuls while training on a CUDA device.

    On an Ampere or newer GPU, float32 matmuls then run on tensor cores with
    a 10-bit mantissa for the products (float32 accumulation), several times
    faster; an MLP trained by SGD does not notice the precision. The
    previous setting is restored on exit. (On PyTorch >= 2.9 this uses
    ``torch.backends.cuda.matmul.fp32_precision``; inside the block,
    reading the legacy ``allow_tf32`` flag or
    ``torch.get_float32_matmul_precision()`` raises, PyTorch's rule against
    mixing the two interfaces.) On any other device nothing is
    changed, so CPU runs and the global state of the caller are untouched.

    Parameters
    ----------
    device : torch.device or str
        The training device.

    Yields
    ------
    bool
        Whether TF32 was allowed inside the block.

    Examples
    --------
    >>> import torch
    >>> from deepcluster_sk._training._cuda_graphs import allow_tf32
    >>> with allow_tf32("cpu") as changed:
    ...     changed
    False
    """
    if torch.device(device).type != "cuda":
        yield False
        return
    name, previous = _tf32_setting()
    setattr(
        torch.backends.cuda.matmul, name, "tf32" if name == "fp32_precision" else True
    )
    try:
        yield True
    finally:
        setattr(torch.backends.cuda.matmul, name, previous)


def _tf32_setting():
    """The name and value of the CUDA matmul TF32 switch of this PyTorch.

    PyTorch 2.9 introduced ``fp32_precision`` and raises when a program mixes
    it with the legacy ``allow_tf32`` flag, so the new one is used where it
    exists.
    """
    matmul = torch.backends.cuda.matmul
    try:
        return "fp32_precision", matmul.fp32_precision
    except (AttributeError, AssertionError):
        return "allow_tf32", matmul.allow_tf32
