"""The user's own network: building it from the parameter, checking its contract.

An estimator's ``autoencoder`` (or ``network``) parameter is ``None`` (the
package's default network), a :class:`torch.nn.Module` subclass (built with
the ``autoencoder__<name>`` parameters, as skorch builds its ``module``) or
an instance (deep-copied at every fit, so the estimator never changes it).
Before training, one forward pass on two training rows checks what the
module returns against the contract of :mod:`deepcluster_sk.nn` and counts
its multiply-adds; a module that breaks the contract is a ``ValueError``
naming the module, the shape it returned and the shape expected.
"""

import copy
import inspect

import joblib
import torch

from .._torch._work import WorkCounter
from ._parameters import routed_params

#: Rows of the forward pass that checks a module before training.
PROBE_ROWS = 2


def _named_parameters(cls):
    """The parameters that ``cls(...)`` names and takes by keyword.

    A ``**kwargs`` catch-all names none: the estimator passes what it
    knows only to a constructor that asks for it by name.
    """
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return set()
    return {
        p.name
        for p in parameters
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def build_module(estimator, name, default, supplied, generator, seeded_weights=True):
    """The module that the parameter ``name`` of ``estimator`` asks for, on the CPU.

    Parameters
    ----------
    estimator : BaseDeepClusterer
    name : str
        The parameter: ``"autoencoder"`` or ``"network"``.
    default : tuple of (type, dict)
        The class built for ``None``, with its keyword arguments.
    supplied : dict
        What the estimator knows of the module it needs (``input_shape``,
        ``n_features``, and ``n_components`` or ``n_clusters``); each is
        passed to a class whose constructor names it, and the user's
        ``name__*`` parameters win over it.
    generator : torch.Generator
        CPU generator seeded from ``random_state``: passed as ``generator``
        to a constructor that names it; the global RNG is forked and
        seeded from it while any class is built, so a module that draws its
        weights from the global RNG is reproducible too, and the caller's
        global RNG is left as it was.
    seeded_weights : bool, default=True
        Pass ``generator`` to the constructor; ``False`` when the caller
        draws the weights itself afterwards.

    Returns
    -------
    module : torch.nn.Module

    Raises
    ------
    ValueError
        If ``name__*`` parameters are given without a class, or the class
        cannot be built from them.
    TypeError
        If the class builds something that is not a module.
    """
    spec = getattr(estimator, name)
    routed = routed_params(estimator, name)
    if spec is not None and not isinstance(spec, type):
        if routed:
            raise ValueError(
                f"{name}__* parameters ({', '.join(sorted(routed))}) configure a "
                f"class given as {name}; {name} is an instance of "
                f"{type(spec).__name__}, which is used as it is."
            )
        return copy.deepcopy(spec)
    if spec is None:
        if routed:
            raise ValueError(
                f"{name}__* parameters ({', '.join(sorted(routed))}) configure a "
                f"class given as {name}; with {name}=None the estimator builds "
                f"its default {default[0].__name__} from its own parameters."
            )
        cls, kwargs = default
    else:
        cls, kwargs = spec, routed
    named = _named_parameters(cls)
    arguments = {key: value for key, value in supplied.items() if key in named}
    if seeded_weights and "generator" in named:
        arguments["generator"] = generator
    arguments.update(kwargs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(generator.initial_seed())
        try:
            module = cls(**arguments)
        except Exception as exc:  # any failure of user code: say which class
            raise ValueError(
                f"{name}={cls.__name__} could not be built with "
                f"{_describe(arguments)}: {exc}"
            ) from exc
    if not isinstance(module, torch.nn.Module):
        raise TypeError(
            f"{name}={cls.__name__} built a {type(module).__name__}, not a "
            "torch.nn.Module."
        )
    return module


def passes_keyword(estimator, name, keyword):
    """Whether :func:`build_module` passes ``keyword`` to the module of ``name``.

    True for the default network and for a class whose constructor accepts
    it, False for an instance.
    """
    spec = getattr(estimator, name)
    if spec is None:
        return True
    return isinstance(spec, type) and keyword in _named_parameters(spec)


def _describe(arguments):
    shown = {k: v for k, v in arguments.items() if k != "generator"}
    return ", ".join(f"{k}={v!r}" for k, v in shown.items()) or "no arguments"


def check_module_parameter(estimator, name):
    """Raise a ``TypeError`` unless the parameter ``name`` is None, a module or its class."""
    spec = getattr(estimator, name)
    if spec is None or isinstance(spec, torch.nn.Module):
        return
    if isinstance(spec, type) and issubclass(spec, torch.nn.Module):
        return
    raise TypeError(
        f"{name} must be None, a torch.nn.Module subclass or an instance of one, "
        f"got {spec!r}."
    )


def module_identity(estimator, name):
    """What the pretrained weights depend on in the parameter ``name``.

    For the memory cache: ``None`` for the default network, the class and
    its ``name__*`` parameters for a class, and for an instance its class,
    its architecture (``repr``) and a hash of its weights.
    """
    spec = getattr(estimator, name)
    if spec is None:
        return None
    if isinstance(spec, type):
        return {
            "class": f"{spec.__module__}.{spec.__qualname__}",
            "params": routed_params(estimator, name),
        }
    state = {k: v.detach().cpu().numpy() for k, v in spec.state_dict().items()}
    return {
        "class": f"{type(spec).__module__}.{type(spec).__qualname__}",
        "architecture": repr(spec),
        "weights": joblib.hash(state),
    }


class _Probe:
    """A forward pass in evaluation mode, without gradients, counting work.

    The modes of all submodules are restored afterwards, so batch
    normalisation keeps its running statistics and nothing is trained.
    """

    def __init__(self, module, name):
        self.module = module
        self.name = name
        self.counter = WorkCounter(module)

    def __enter__(self):
        self._modes = [(m, m.training) for m in self.module.modules()]
        self.module.eval()
        self._grad = torch.no_grad()
        self._grad.__enter__()
        self.counter.__enter__()
        return self

    def __exit__(self, *exc_info):
        self.counter.__exit__(*exc_info)
        self._grad.__exit__(*exc_info)
        for module, training in self._modes:
            module.training = training

    def call(self, part, function, x):
        """``function(x)``; a failure is a ValueError naming the module."""
        try:
            return function(x)
        except Exception as exc:  # any failure of user code: say which module
            raise ValueError(
                f"{self.name}={type(self.module).__name__} failed on a batch of "
                f"shape {tuple(x.shape)} ({part}): {type(exc).__name__}: {exc}"
            ) from exc


def _shape_error(name, module, what, got, expected):
    got = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
    return ValueError(
        f"{name}={type(module).__name__}: {what} returned {got}; expected a "
        f"floating-point tensor of shape {expected}."
    )


def _is_float_tensor(value):
    return isinstance(value, torch.Tensor) and value.is_floating_point()


def check_autoencoder(autoencoder, x, n_components, name="autoencoder"):
    """Check the autoencoder contract on the batch ``x``; return its work per sample.

    ``autoencoder.encoder(x)`` must be a ``(batch, m)`` embedding, with
    ``m = n_components`` unless ``n_components`` is None, and
    ``autoencoder.decoder(z)`` a reconstruction of ``x``'s shape.

    Parameters
    ----------
    autoencoder : torch.nn.Module
    x : torch.Tensor
        A few training rows, on the module's device.
    n_components : int or None
        The embedding width the module was built for; None if any.
    name : str, default="autoencoder"
        The estimator parameter, in messages.

    Returns
    -------
    work_per_sample : float
        Multiply-adds of encoder and decoder per sample.

    Raises
    ------
    ValueError
        If the module lacks an ``encoder`` or ``decoder`` submodule, fails on
        ``x`` or returns other shapes.
    """
    missing = [
        part
        for part in ("encoder", "decoder")
        if not isinstance(getattr(autoencoder, part, None), torch.nn.Module)
    ]
    if missing:
        raise ValueError(
            f"{name}={type(autoencoder).__name__} has no {' or '.join(missing)} "
            "submodule: an autoencoder needs an `encoder` module mapping a batch "
            "to its embedding and a `decoder` module mapping the embedding back "
            "to the batch."
        )
    rows = x.shape[0]
    with _Probe(autoencoder, name) as probe:
        z = probe.call("encoder", autoencoder.encoder, x)
        width = n_components if n_components is not None else "n_components"
        if not (_is_float_tensor(z) and z.ndim == 2 and z.shape[0] == rows and (
                n_components is None or z.shape[1] == n_components)):
            raise _shape_error(
                name, autoencoder, f"its encoder, on a batch of shape {tuple(x.shape)},",
                z, f"({rows}, {width})",
            )
        reconstruction = probe.call("decoder", autoencoder.decoder, z)
        if not (_is_float_tensor(reconstruction)
                and reconstruction.shape == x.shape):
            raise _shape_error(
                name, autoencoder,
                f"its decoder, on an embedding of shape {tuple(z.shape)},",
                reconstruction, f"{tuple(x.shape)}, the batch's",
            )
    return probe.counter.multiply_adds / rows


def check_network(network, x, n_clusters, name="network"):
    """Check that ``network(x)`` gives ``(batch, n_clusters)`` logits; return its work.

    Parameters
    ----------
    network : torch.nn.Module
    x : torch.Tensor
        A few training rows, on the module's device.
    n_clusters : int
    name : str, default="network"
        The estimator parameter, in messages.

    Returns
    -------
    work_per_sample : float
        Multiply-adds of a forward pass per sample.

    Raises
    ------
    ValueError
        If the module fails on ``x`` or returns another shape.
    """
    rows = x.shape[0]
    with _Probe(network, name) as probe:
        logits = probe.call("forward", network, x)
        if not (_is_float_tensor(logits) and tuple(logits.shape) == (rows, n_clusters)):
            raise _shape_error(
                name, network, f"on a batch of shape {tuple(x.shape)} it",
                logits, f"({rows}, n_clusters) = ({rows}, {n_clusters})",
            )
    return probe.counter.multiply_adds / rows
