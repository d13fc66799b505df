"""One optimizer update over all of a small network's weights at once.

A PyTorch optimizer pays a fixed cost for every weight tensor at every
step, in Python and in its kernels: for the 16 tensors of a small table's
autoencoder (30 000 weights) fused Adam takes about 110 us a step on a CPU,
the same update of one flat tensor about 15 us. :class:`FlatOptimizer`
keeps the weights as views into one flat buffer, gathers the gradients into
a second one after the backward pass and lets an ordinary optimizer update
the flat buffer as one tensor: the whole training step of that autoencoder
is 11-14% faster with Adam, that of DAC's 75 000-weight network 10-12% with
RMSprop; fused SGD, whose per-tensor cost is lower, gains nothing
(``benchmarks/results/tuning/flat_optimizer.md``). From about 100 000
weights the copy of the gradients costs as much as the overhead it saves
(the digits autoencoder's 121 000: 0-2% with Adam), so
:func:`~._optim.make_optimizer` uses it for Adam and RMSprop up to
:data:`FLAT_MAX_PARAMETERS` weights. A step by hand
(:mod:`._linear_stack`) writes the gradients into the flat buffer itself,
so there the flat update copies nothing and serves every size and SGD
too. After the first step the update skips ``torch.optim``'s wrapper
(:func:`_direct_step`).
"""

import torch

#: The most weights for which one flat update beats PyTorch's per-tensor
#: optimizers (``benchmarks/results/tuning/flat_optimizer.md``).
FLAT_MAX_PARAMETERS = 100_000


def flat_eligible(params, max_parameters=FLAT_MAX_PARAMETERS):
    """Whether ``params`` can be viewed as one flat buffer with a gain.

    Dense contiguous float32 CPU tensors, at most ``max_parameters``
    elements in all (None: any number, for a step that writes its
    gradients into the flat buffer itself, :meth:`FlatOptimizer.step_gathered`).
    """
    return (
        bool(params)
        and (max_parameters is None
             or sum(p.numel() for p in params) <= max_parameters)
        and all(
            p.device.type == "cpu" and p.dtype == torch.float32
            and p.layout == torch.strided and p.is_contiguous()
            for p in params
        )
    )


@torch.no_grad()
def _direct_step(optimizer, flat, scratch):
    """Update ``flat`` as ``optimizer.step()`` would, without its wrapper.

    For fused Adam and fused SGD with momentum (their kernel called with the
    arguments ``step()`` passes it) and for plain RMSprop (its arithmetic in
    place, the square root into ``scratch`` instead of a new tensor), with no
    options beyond weight decay for Adam and SGD, once their state exists
    (after the first ``optimizer.step()``). ``torch.optim``'s wrapper costs
    about 0.1 ms a step on a CPU, RMSprop's fresh square root as much again.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        Over the one tensor ``flat``.
    flat : torch.nn.Parameter
        The flat weights, their gradient in ``flat.grad``.
    scratch : torch.Tensor or None
        A tensor of ``flat``'s shape for RMSprop's square root; None leaves
        RMSprop to ``optimizer.step()``.

    Returns
    -------
    done : bool
        False, with nothing updated, where this does not apply.
    """
    if len(optimizer.param_groups) != 1:
        return False
    group = optimizer.param_groups[0]
    state = optimizer.state.get(flat)
    if (not state or group.get("maximize") or group.get("differentiable")
            or group.get("capturable") or isinstance(group["lr"], torch.Tensor)):
        return False
    kind = type(optimizer)
    if (kind is torch.optim.Adam and group.get("fused") is True
            and hasattr(torch, "_fused_adam_")
            and not group.get("amsgrad") and not group.get("decoupled_weight_decay")):
        step = state["step"]
        step.add_(1)
        beta1, beta2 = group["betas"]
        torch._fused_adam_(
            [flat], [flat.grad], [state["exp_avg"]], [state["exp_avg_sq"]], [], [step],
            amsgrad=False, lr=group["lr"], beta1=beta1, beta2=beta2,
            weight_decay=group["weight_decay"], eps=group["eps"], maximize=False,
        )
        return True
    if (kind is torch.optim.SGD and group.get("fused") is True
            and hasattr(torch, "_fused_sgd_")
            and state.get("momentum_buffer") is not None):
        torch._fused_sgd_(
            [flat], [flat.grad], [state["momentum_buffer"]],
            weight_decay=group["weight_decay"], momentum=group["momentum"],
            lr=group["lr"], dampening=group["dampening"], nesterov=group["nesterov"],
            maximize=False, is_first_step=False,
        )
        return True
    if (kind is torch.optim.RMSprop and scratch is not None and not group["centered"]
            and group["momentum"] == 0 and group["weight_decay"] == 0):
        state["step"] += 1
        alpha, grad = group["alpha"], flat.grad
        square_avg = state["square_avg"]
        square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
        average = torch.sqrt(square_avg, out=scratch).add_(group["eps"])
        flat.addcdiv_(grad, average, value=-group["lr"])
        return True
    return False


class FlatOptimizer:
    """An optimizer over ``params`` that updates them as one flat tensor.

    The weights become views into one float32 buffer (their values kept);
    :meth:`step` copies their gradients into one gradient buffer and steps
    the optimizer made by ``make`` over the flat weights. Every element gets
    the per-tensor optimizer's update, up to the rounding of its fused
    kernel (a few elements in 10 000 differ in the last bit after ten Adam
    steps).

    PyTorch skips a weight whose gradient is None; one flat update cannot.
    At the first step where a weight has no gradient (or a sparse one) the
    optimizer hands its state over to ``make(params)`` and steps per tensor
    from then on, so the semantics stay PyTorch's.

    :meth:`release` gives every weight its own storage again, so that a
    trained network holds no views into the buffer; the next step binds
    them again.

    Parameters
    ----------
    make : callable
        ``make(params)`` returns the optimizer to run, over a list of
        tensors.
    params : list of torch.nn.Parameter
        Distinct weights, eligible under :func:`flat_eligible`.
    """

    def __init__(self, make, params):
        self.params = list(params)
        self._make = make
        n_elements = sum(p.numel() for p in self.params)
        self._flat = torch.nn.Parameter(torch.empty(n_elements))
        self._flat.grad = torch.zeros(n_elements)
        self._inner = make([self._flat])
        self._per_tensor = False
        self._bound = False
        self._scratch = None
        self._bind()

    @property
    def param_groups(self):
        """The inner optimizer's groups; a schedule sets their ``"lr"``."""
        return self._inner.param_groups

    @property
    def defaults(self):
        """The inner optimizer's defaults (``lr``, ``fused``, ...)."""
        return self._inner.defaults

    @property
    def state(self):
        """The inner optimizer's state, keyed by the tensors it updates."""
        return self._inner.state

    @property
    def flat(self):
        """Whether the steps still update one flat tensor."""
        return not self._per_tensor

    def _views(self, buffer):
        offset = 0
        for p in self.params:
            yield p, buffer[offset:offset + p.numel()].view_as(p)
            offset += p.numel()

    def _bind(self):
        with torch.no_grad():
            for p, view in self._views(self._flat.data):
                view.copy_(p.data)
                p.data = view
        self._bound = True

    def release(self):
        """Give every weight its own storage; the next step binds them again."""
        if self._bound:
            for p in self.params:
                p.data = p.data.clone()
            self._bound = False

    def zero_grad(self, set_to_none=True):
        """Clear the weights' gradients (always to None)."""
        for p in self.params:
            p.grad = None

    def step(self):
        """Update the weights from their gradients."""
        if self._per_tensor:
            return self._inner.step()
        grads = [p.grad for p in self.params]
        if any(g is None or g.layout != torch.strided for g in grads):
            self._hand_over()
            return self._inner.step()
        if not self._bound:
            self._bind()
        torch.cat([g.reshape(-1) for g in grads], out=self._flat.grad)
        self._update()
        return None

    def gradient_views(self):
        """``{id(weight): view}``: each weight's slice of the flat gradient.

        A step that writes every weight's gradient there (instead of into
        ``.grad``) updates with :meth:`step_gathered`, which skips the copy.
        """
        return {id(p): view for p, view in self._views(self._flat.grad)}

    def step_gathered(self):
        """Update the weights from the gradients written into :meth:`gradient_views`."""
        if not self._bound:
            self._bind()
        self._update()

    def _update(self):
        """One update of the flat weights from the flat gradient.

        Adam's, SGD's and RMSprop's are made directly once their state
        exists (:func:`_direct_step`): ``torch.optim``'s wrapper costs about
        0.1 ms a step on a CPU, as much as a fifth of a small network's step
        by hand (``benchmarks/results/tuning/steps_by_hand.md``).
        """
        if self._scratch is None and isinstance(self._inner, torch.optim.RMSprop):
            self._scratch = torch.empty_like(self._flat)
        if not _direct_step(self._inner, self._flat, self._scratch):
            self._inner.step()

    def _hand_over(self):
        """Continue per tensor, each weight with its slice of the flat state."""
        self.release()
        flat_state = self._inner.state.get(self._flat, {})
        lrs = [group["lr"] for group in self._inner.param_groups]
        inner = self._make(self.params)
        for group, lr in zip(inner.param_groups, lrs):
            group["lr"] = lr
        for key, value in flat_state.items():
            is_flat = (isinstance(value, torch.Tensor)
                       and value.shape == self._flat.shape)
            if is_flat:
                for p, view in self._views(value):
                    inner.state[p][key] = view.clone()
            else:
                for p in self.params:
                    inner.state[p][key] = (
                        value.clone() if isinstance(value, torch.Tensor) else value
                    )
        self._inner = inner
        self._per_tensor = True
