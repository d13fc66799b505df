"""Plain stacks of linear layers and ReLUs, trained without autograd.

A training step of a small MLP on a CPU is launch-bound: for the digits
autoencoder (64-128-128-256-10 and its mirror, batch 64) the matrix
products take about a quarter of a millisecond, autograd's bookkeeping,
the modules' calls and a per-tensor optimizer update most of the rest of a
step of about a millisecond. For a ``nn.Sequential`` of ``nn.Linear`` and
``nn.ReLU`` layers the backward pass is a handful of matrix products per
layer; :class:`LinearReLUStack` runs forward and backward with them
directly and writes the weight gradients into the flat buffer of a
:class:`~._flat.FlatOptimizer`, which then updates all weights in one
kernel. :func:`reconstruction_step_by_hand` builds the pretraining step on
it, :class:`~._self_training.SelfTrainingPhase` DEC's and IDEC's step
(``benchmarks/results/tuning/steps_by_hand.md``); any other network,
device, precision or a distributed fit keeps the autograd step.
"""

import torch
from torch import nn

from ._flat import FlatOptimizer

#: Whether the phases train plain stacks by hand; a benchmark switches it
#: off to time the autograd steps (``benchmarks/tuning/steps_by_hand.py``).
STEPS_BY_HAND = True

#: ReLU's backward as one kernel: the gradient where the output is positive.
#: A comparison and a multiplication take about five times as long at the
#: digits network's sizes.
_relu_backward = torch.ops.aten.threshold_backward.default


def _plain_children(module):
    """The children of a hook-free ``nn.Sequential`` of linear layers and ReLUs.

    None when ``module`` is anything else: another class (a subclass too,
    which may override ``forward``), another layer, a hook that a hand-run
    forward pass would skip, or no linear layer first.
    """
    if type(module) is not nn.Sequential:
        return None
    children = list(module)
    if not children or type(children[0]) is not nn.Linear:
        return None
    for child in (module, *children):
        if type(child) not in (nn.Sequential, nn.Linear, nn.ReLU):
            return None
        if (child._forward_hooks or child._forward_pre_hooks
                or child._backward_hooks or child._backward_pre_hooks):
            return None
    return children


class LinearReLUStack:
    """An ``nn.Sequential`` of linear layers and ReLUs, run forward and backward by hand.

    :meth:`forward` keeps the activations that :meth:`backward` needs;
    :meth:`backward` writes every weight's gradient into the tensor that
    ``gradients`` maps it to, as autograd would accumulate it into a zeroed
    ``.grad``. Both run without autograd, on the module's own weights.

    Parameters
    ----------
    linears : list of torch.nn.Linear
    relu_after : list of bool
        Whether a ReLU follows each linear layer.
    gradients : dict
        ``{id(weight): tensor}``, where each weight's gradient goes.
    """

    def __init__(self, linears, relu_after, gradients):
        self.layers = [
            (linear.weight, linear.bias, relu,
             gradients[id(linear.weight)],
             None if linear.bias is None else gradients[id(linear.bias)])
            for linear, relu in zip(linears, relu_after)
        ]
        self._activations = None

    @classmethod
    def of(cls, module, gradients):
        """The stack of ``module``, or None when ``module`` is not a plain one.

        Parameters
        ----------
        module : torch.nn.Module
        gradients : dict
            As in the class.

        Returns
        -------
        LinearReLUStack or None
        """
        children = _plain_children(module)
        if children is None:
            return None
        linears, relu_after = [], []
        for child in children:
            if type(child) is nn.Linear:
                linears.append(child)
                relu_after.append(False)
            elif relu_after[-1]:  # ReLU after ReLU: leave it to autograd
                return None
            else:
                relu_after[-1] = True
        return cls(linears, relu_after, gradients)

    @torch.no_grad()
    def forward(self, x):
        """The module's output on ``x``; keeps the activations for :meth:`backward`."""
        activations = [x]
        h = x
        for weight, bias, relu, _, _ in self.layers:
            h = torch.mm(h, weight.t()) if bias is None else torch.addmm(bias, h, weight.t())
            if relu:
                h = h.relu_()
            activations.append(h)
        self._activations = activations
        return h

    @torch.no_grad()
    def backward(self, grad_output, input_grad=True):
        """Write the weights' gradients from the output's; return the input's.

        Parameters
        ----------
        grad_output : torch.Tensor
            The loss's gradient with respect to the last :meth:`forward`'s
            output.
        input_grad : bool, default=True
            Whether to compute the gradient with respect to the input.

        Returns
        -------
        grad_input : torch.Tensor or None
        """
        activations, self._activations = self._activations, None
        g = grad_output
        for i in reversed(range(len(self.layers))):
            weight, _, relu, weight_grad, bias_grad = self.layers[i]
            if relu:
                g = _relu_backward(g, activations[i + 1], 0)
            torch.mm(g.t(), activations[i], out=weight_grad)
            if bias_grad is not None:
                torch.sum(g, dim=0, out=bias_grad)
            if i > 0 or input_grad:
                g = torch.mm(g, weight)
        return g if input_grad else None


def by_hand_possible(data, modules, params, others=()):
    """Whether a phase may train ``modules`` by hand instead of through autograd.

    Samples as rows, every module a plain stack (:class:`LinearReLUStack`),
    on a CPU, in float32, in one process, with gradients enabled; every
    trained weight a float32 tensor that requires its gradient, and each
    either a weight of exactly one layer of the modules or one of
    ``others``. A weight shared by two layers (tied weights) sums two
    gradients, which autograd does and the step by hand does not.

    Parameters
    ----------
    data : TrainingData
    modules : list of torch.nn.Module
        The stacks the step runs by hand.
    params : list of torch.Tensor
        Every weight the phase trains.
    others : sequence of torch.Tensor, default=()
        Trained weights outside the modules whose gradient the step
        computes itself (DEC's centres).
    """
    if not (STEPS_BY_HAND
            and len(data.sample_shape) == 1
            and data.device.type == "cpu"
            and data.precision == "float32"
            and not data.replicas.enabled
            and torch.is_grad_enabled()
            and all(_plain_children(module) is not None for module in modules)
            and all(p.dtype == torch.float32 and p.requires_grad for p in params)):
        return False
    layer_weights = [id(p) for module in modules for layer in module
                     for p in layer.parameters(recurse=False)]
    return (len(set(layer_weights)) == len(layer_weights)
            and set(layer_weights) | {id(p) for p in others}
            == {id(p) for p in params})


def stacks_by_hand(modules, optimizer):
    """The :class:`LinearReLUStack` of each module, writing into ``optimizer``'s buffer.

    Parameters
    ----------
    modules : list of torch.nn.Module
        Each passed by :func:`by_hand_possible`.
    optimizer : FlatOptimizer or torch.optim.Optimizer
        Over (at least) the modules' weights.

    Returns
    -------
    stacks : list of LinearReLUStack or None
        None when the optimizer does not update one flat buffer, or a module
        is not a plain stack after all (a ReLU after a ReLU).
    """
    if not isinstance(optimizer, FlatOptimizer) or not optimizer.flat:
        return None
    gradients = optimizer.gradient_views()
    stacks = [LinearReLUStack.of(module, gradients) for module in modules]
    return None if any(stack is None for stack in stacks) else stacks


def squared_error_by_hand(reconstruction, x, weight=1.0):
    """``weight`` times the mean squared error, and its gradient, without autograd.

    Parameters
    ----------
    reconstruction, x : torch.Tensor
    weight : float, default=1.0

    Returns
    -------
    loss : torch.Tensor of shape ()
    grad : torch.Tensor
        The gradient of ``loss`` with respect to ``reconstruction``.
    """
    diff = reconstruction - x
    loss = torch.mean(diff * diff) * weight
    return loss, diff.mul_(2.0 * weight / diff.numel())


def reconstruction_step_by_hand(autoencoder, optimizer):
    """The pretraining step (mean squared error, Adam) without autograd.

    Parameters
    ----------
    autoencoder : torch.nn.Module
        Whose ``encoder`` and ``decoder`` pass :func:`by_hand_possible`.
    optimizer : FlatOptimizer
        Over ``autoencoder.parameters()``, made with ``gathered=True``.

    Returns
    -------
    step : callable or None
        ``step(x)`` trains on the rows ``x`` and returns the step's loss,
        detached, as the autograd step does; None where
        :func:`stacks_by_hand` finds no stacks.
    """
    stacks = stacks_by_hand([autoencoder.encoder, autoencoder.decoder], optimizer)
    if stacks is None:
        return None
    encoder, decoder = stacks

    def step(x):
        loss, grad = squared_error_by_hand(decoder.forward(encoder.forward(x)), x)
        encoder.backward(decoder.backward(grad), input_grad=False)
        optimizer.step_gathered()
        return loss

    return step
