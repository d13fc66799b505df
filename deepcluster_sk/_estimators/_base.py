"""The shared machinery of every estimator in the package.

:class:`BaseDeepClusterer` is the one ``fit`` of the package, written as a
template whose hooks the two families fill in (the autoencoder estimators in
:mod:`._autoencoder`, the estimators that train a network alone in
:mod:`._discriminative`):

1. validate the parameters and ``X``, resolve the device, seed;
2. ``_settings``: resolve the ``"auto"`` parameters that the data's shape
   decides;
3. ``_build_network`` and ``_check_network``: build the module the
   ``autoencoder`` or ``network`` parameter asks for, check its contract on
   two training rows and measure its work;
4. ``_budget_settings``: resolve the training lengths, which depend on that
   work;
5. ``_train``, with TF32 on a GPU: train and set every fitted attribute.

It also holds what every estimator shares after the fit: batched inference,
pickling across devices, the clean-up of a failed fit and the collapse
warning. DEVELOPERS.md gives the recipe of a new estimator.
"""

import copy
import math
from abc import ABCMeta, abstractmethod
from dataclasses import dataclass, field
from numbers import Integral

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    ClusterMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .._auto import network_settings
from .._distributed import distributed_device, resolve_replicas
from .._diagnostics import check_float32_range, warn_if_collapsed
from .._row_chunks import is_out_of_core, validate_row_chunks
from .._torch._data import TrainingData, iter_row_batches
from .._torch._device import inference_device, resolve_device
from .._torch._precision import (
    PRECISIONS,
    autocast,
    inference_precision,
    resolve_precision,
)
from .._training._cuda_graphs import allow_tf32
from .._training._progress import ProgressPrinter
from ._modules import PROBE_ROWS, check_module_parameter
from ._parameters import (
    Param,
    check_routed_params,
    declare_parameters,
    extra_params,
)

#: Rows per batch when predicting or computing a full pass during training.
#: On a CPU smaller batches stay in cache: the MNIST encoder passed 172 000
#: rows/s in bfloat16 at 1 024 and at 4 096 rows and 114 000 at 16 384, and
#: 56 000, 49 000 and 41 000 in float32 (``benchmarks/results/roofline_cpu.md``;
#: an earlier run of it: 266 000, 144 000 and 106 000 in bfloat16).
INFERENCE_BATCH_SIZE = {"cpu": 1024, "cuda": 65536}


def check_hidden_dims(hidden_dims):
    """Raise a ``ValueError`` unless ``hidden_dims`` is "auto" or positive ints.

    ``_parameter_constraints`` admits any tuple or list; this checks its
    items.
    """
    if isinstance(hidden_dims, str):
        return
    if not all(
        isinstance(d, Integral) and not isinstance(d, bool) and d >= 1
        for d in hidden_dims
    ):
        raise ValueError(
            "hidden_dims must be 'auto' or a sequence of positive integers, got "
            f"{hidden_dims!r}."
        )


def draw_seed(rng):
    """A seed for a torch generator, drawn from a NumPy ``RandomState``."""
    return int(rng.randint(2**31 - 1))


@dataclass
class FitContext:
    """What one fit has resolved, handed from hook to hook.

    Attributes
    ----------
    data : TrainingData
        The training rows on their device.
    rng : numpy.random.RandomState
        From ``random_state``; every later seed is drawn from it.
    generator : torch.Generator
        The fit's CPU generator (batch order, noise).
    progress : ProgressPrinter
    settings : dict
        The resolved settings, stored as ``<name>_`` attributes at the end.
    network : torch.nn.Module or None
        The module being trained, on the device.
    network_generator : torch.Generator or None
        The generator the network's weights were drawn from; its first
        training phase draws its batches from it.
    network_seed : int or None
        That generator's seed.
    work_per_sample : float
        Multiply-adds of a forward pass through the network, per sample.
    """

    data: TrainingData
    rng: np.random.RandomState
    generator: torch.Generator
    progress: ProgressPrinter
    settings: dict = field(default_factory=dict)
    network: torch.nn.Module = None
    network_generator: torch.Generator = None
    network_seed: int = None
    work_per_sample: float = 0.0


class BaseDeepClusterer(
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    ClusterMixin,
    BaseEstimator,
    metaclass=ABCMeta,
):
    """Base class of the torch-backed clustering estimators.

    Not meant to be used directly. Parameters are declared as class
    attributes ``name = Param(default, *constraints)``; the ``__init__``
    and ``_parameter_constraints`` are written from them (see
    :mod:`._parameters`). A subclass fills in the hooks of ``fit``
    (``_settings``, ``_network_generator``, ``_build_network``,
    ``_check_network``, ``_budget_settings``, ``_train``), and may override
    ``_check_params`` (checks that constraints cannot express),
    ``_check_data`` and ``_collapse_advice`` (the advice of the warning when
    ``labels_`` use fewer than ``n_clusters``).
    """

    n_clusters = Param(8, Interval(Integral, 1, None, closed="left"))
    batch_size = Param(
        "auto", Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})
    )
    hidden_dims = Param("auto", tuple, list, StrOptions({"auto"}))
    device = Param("auto", str, torch.device, trailing=True)
    precision = Param("auto", StrOptions({"auto", *PRECISIONS}), trailing=True)
    distributed = Param("auto", "boolean", StrOptions({"auto"}), trailing=True)
    random_state = Param(None, "random_state", trailing=True)
    verbose = Param(0, "verbose", trailing=True)

    #: The parameter that holds the module (``"autoencoder"``, ``"network"``);
    #: ``<prefix>__<name>`` keyword arguments are routed to its class.
    _routed_prefix = None

    #: Forward passes through the network per training step, for the
    #: ``"auto"`` precision's estimate of a step's work (VAT: three).
    _passes_per_step = 1

    #: ``size_rule(n_features)``: the default network's widths for
    #: ``hidden_dims="auto"`` (a rule of ``_auto.py``).
    _size_rule = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        declare_parameters(cls)

    # -- fit -----------------------------------------------------------------

    def fit(self, X, y=None):
        """Fit the model to ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data. Sparse rows are densified one batch at a time.
            Dense samples may also have more dimensions, such as images of
            shape ``(n_samples, channels, height, width)`` for a
            convolutional network.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        try:
            self._validate_and_fit(X)
        except BaseException:
            self._discard_fitted_state()
            raise
        return self

    def fit_predict(self, X, y=None):
        """Fit the model and return the cluster of each sample.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Cluster index of each sample.
        """
        return self.fit(X).labels_

    @_fit_context(prefer_skip_nested_validation=True)
    def _validate_and_fit(self, X):
        self._check_params()
        device = resolve_device(self.device)
        replicas = resolve_replicas(self.distributed, device)
        fit = self._prepare_fit(X, distributed_device(device, replicas), replicas)
        data = fit.data
        data.precision = fit.settings["precision"]
        fit.progress.message(
            f"settings for {data.n_samples} samples x {data.n_features} features: "
            + ", ".join(f"{name}={value!r}" for name, value in fit.settings.items())
        )
        with allow_tf32(device), fit.progress:
            self._train(fit)
        for name, value in fit.settings.items():
            setattr(self, f"{name}_", value)
        self._sample_shape_ = data.sample_shape
        warn_if_collapsed(self.labels_, self.n_clusters, self._collapse_advice())

    def _prepare_fit(self, X, device, replicas):
        """Validate ``X``, seed, resolve the settings and build the network.

        Each process of a distributed fit does all of it on its own; an
        error on any of them is raised on all (see ``Replicas.together``).
        The processes check that their ``X`` have one shape, and rank 0's
        random state seeds them all.

        Returns
        -------
        FitContext
        """
        with replicas.together():
            X = self._validate_float32(X, reset=True)
        replicas.check_same("the shape of X", tuple(X.shape))
        with replicas.together():
            if X.shape[0] < self.n_clusters:
                raise ValueError(
                    f"n_samples={X.shape[0]} should be >= n_clusters={self.n_clusters}."
                )
            if X.shape[0] < replicas.world_size:
                raise ValueError(
                    f"n_samples={X.shape[0]} is fewer than the "
                    f"{replicas.world_size} processes of the distributed fit; "
                    "each needs a row at least."
                )
            data = TrainingData(X, device, replicas)
            self._check_data(data)
        rng = replicas.sync_random_state(check_random_state(self.random_state))
        with replicas.together():
            fit = FitContext(
                data=data,
                rng=rng,
                generator=torch.Generator().manual_seed(draw_seed(rng)),
                progress=self._progress(replicas),
            )
            fit.network_generator, fit.network_seed = self._network_generator(fit)
            fit.settings, fit.network, fit.work_per_sample = self._plan(
                data.n_samples, data.sample_shape, fit.network_generator,
                data.first_rows(PROBE_ROWS),
            )
        return fit

    def _plan(self, n_samples, sample_shape, generator, example):
        """Resolve the settings and build the network for data of this shape.

        ``_settings``, then ``_build_network`` (the module moved to the
        device of ``example``), ``_check_network`` on the rows ``example``,
        the precision (which the work of a step decides for ``"auto"``) and
        ``_budget_settings`` with the work measured.

        Returns
        -------
        settings : dict
        network : torch.nn.Module
        work_per_sample : float
        """
        n_features = math.prod(sample_shape)
        settings = self._settings(n_samples, n_features)
        network = self._build_network(sample_shape, settings, generator)
        network = network.to(example.device)
        work = self._check_network(network, example)
        settings.update(self._precision_settings(n_samples, settings, network,
                                                 example, work))
        settings.update(self._budget_settings(n_samples, n_features, settings, work))
        return settings, network, work

    def _precision_settings(self, n_samples, settings, network, example, work):
        """The precision the fit computes in, and the batch it computes on.

        ``"auto"`` weighs the work of a step at the batch that bfloat16 would
        train on (see :mod:`.._torch._precision`). The network's contract is
        then checked once more under bfloat16 autocast: ``"auto"`` falls
        back to float32 where the network fails there, an explicit
        ``"bfloat16"`` is a ``ValueError``.
        """
        float32 = {"precision": "float32", "batch_size": settings["batch_size"]}
        batch = self._bfloat16_batch_size(n_samples, settings["batch_size"])
        step_work = self._passes_per_step * batch * work
        precision = resolve_precision(self.precision, example.device, step_work)
        if precision == "float32":
            return float32
        try:
            with autocast(precision, example.device):
                self._check_network(network, example)
        except ValueError as exc:
            if self.precision == "auto":
                return float32
            raise ValueError(
                f"{exc} (under precision='bfloat16'; use precision='float32')"
            ) from exc
        return {"precision": precision, "batch_size": batch}

    def _bfloat16_batch_size(self, n_samples, batch_size):
        """The batch of a fit in bfloat16: ``batch_size`` unless a rule grows it."""
        return batch_size

    def _planned_settings(self, n_samples, n_features):
        """The settings a fit on rows of this shape resolves, without data.

        The network is built on the CPU and measured on rows of zeros; the
        documentation's table of the ``"auto"`` defaults comes from here.
        """
        generator = torch.Generator().manual_seed(0)
        example = torch.zeros(PROBE_ROWS, n_features)
        return self._plan(n_samples, (n_features,), generator, example)[0]

    def _validate_float32(self, X, reset):
        """``validate_data``, then reject values float32 cannot hold, then cast.

        Checked before the cast, which would turn them into infinities that
        scikit-learn reports as if the input held some. Out-of-core input
        (memory maps, h5py and zarr arrays, :class:`~deepcluster_sk.RowChunks`)
        is checked chunk by chunk and returned as a ``RowChunks``, never
        copied whole.
        """
        if is_out_of_core(X):
            return validate_row_chunks(self, X, reset=reset)
        X = validate_data(
            self,
            X,
            accept_sparse="csr",
            dtype=(np.float32, np.float64),
            allow_nd=True,
            reset=reset,
        )
        check_float32_range(X)
        return X.astype(np.float32, copy=False)

    # -- hooks ---------------------------------------------------------------

    def _check_params(self):
        """Checks beyond ``_parameter_constraints``; raise ``ValueError``."""
        check_routed_params(self, self._routed_prefix)
        if self._routed_prefix is not None:
            check_module_parameter(self, self._routed_prefix)
        check_hidden_dims(self.hidden_dims)

    def _check_data(self, data):
        """Checks of the validated training data; raise ``ValueError``."""

    def _settings(self, n_samples, n_features):
        """The ``"auto"`` parameters that the data's shape decides, resolved.

        Returns a dict from parameter name to the value used: ``batch_size``,
        and ``hidden_dims`` when the default network is built; an explicit
        parameter value is used as given. Subclasses add their own.
        """
        prefix = self._routed_prefix
        default_network = prefix is None or getattr(self, prefix) is None
        return network_settings(
            n_samples,
            n_features,
            hidden_dims=self.hidden_dims if default_network else None,
            batch_size=self.batch_size,
            size_rule=self._size_rule,
        )

    @abstractmethod
    def _network_generator(self, fit):
        """The generator (and its seed) that the network's weights come from."""

    @abstractmethod
    def _build_network(self, sample_shape, settings, generator):
        """The untrained module, on the CPU (see :func:`._modules.build_module`)."""

    @abstractmethod
    def _check_network(self, network, x):
        """Check the module's contract on the rows ``x``; return its work per sample."""

    def _budget_settings(self, n_samples, n_features, settings, work_per_sample):
        """The settings that depend on the network's work (training lengths)."""
        return {}

    @abstractmethod
    def _train(self, fit):
        """Train ``fit.network`` on ``fit.data``; set every fitted attribute.

        The resolved settings are stored by the caller.
        """

    def _collapse_advice(self):
        """What to try when ``labels_`` use fewer than ``n_clusters`` clusters."""
        return "Try fewer clusters."

    # -- helpers -------------------------------------------------------------

    def _discard_fitted_state(self):
        fitted = [k for k in vars(self) if k.endswith("_") and not k.startswith("__")]
        for name in fitted:
            delattr(self, name)

    def _progress(self, replicas):
        # One process of a distributed fit reports for all.
        return ProgressPrinter(self.verbose if replicas.is_main else 0,
                               type(self).__name__)

    def _inference_batch_size(self, device):
        return INFERENCE_BATCH_SIZE[device.type]

    def _validate_predict_data(self, X):
        check_is_fitted(self)
        X = self._validate_float32(X, reset=False)
        fitted_shape = getattr(self, "_sample_shape_", X.shape[1:])
        if tuple(X.shape[1:]) != tuple(fitted_shape):
            raise ValueError(
                f"X has samples of shape {tuple(X.shape[1:])}, but "
                f"{type(self).__name__} was fitted on samples of shape "
                f"{tuple(fitted_shape)}."
            )
        return X

    def _module_device(self, module):
        return next(module.parameters()).device

    def _map_batches(self, X, module, function):
        """Apply ``function`` to batches of validated ``X`` on ``module``'s device.

        Returns the results concatenated as a float32 NumPy array; the
        network computes in the fitted precision (float32 for a bfloat16
        model on a device without bfloat16 units, see
        :func:`.._torch._precision.inference_precision`).
        """
        device = self._module_device(module)
        batch_size = self._inference_batch_size(device)
        precision = inference_precision(getattr(self, "precision_", "float32"), device)
        outputs = []
        with torch.inference_mode(), autocast(precision, device):
            module.eval()
            for _, _, rows in iter_row_batches(X, batch_size, device):
                outputs.append(function(rows).float().cpu())
        return torch.cat(outputs).numpy()

    # -- parameters of the module class ----------------------------------------

    def get_params(self, deep=True):
        """Get parameters for this estimator.

        Parameters
        ----------
        deep : bool, default=True
            If True, will return the parameters for this estimator and
            contained subobjects that are estimators.

        Returns
        -------
        params : dict
            Parameter names mapped to their values, with the
            ``<module>__<name>`` parameters of the module class.
        """
        params = super().get_params(deep=deep)
        params.update(extra_params(self))
        return params

    def set_params(self, **params):
        """Set the parameters of this estimator.

        Parameters
        ----------
        **params : dict
            Estimator parameters, and ``<module>__<name>`` parameters of the
            module class.

        Returns
        -------
        self : estimator instance
            Estimator instance.
        """
        prefix = self._routed_prefix
        extras = extra_params(self)
        routed = {
            key: value
            for key, value in params.items()
            if key in extras or (prefix is not None and key.startswith(f"{prefix}__"))
        }
        for key, value in routed.items():
            setattr(self, key, value)
        return super().set_params(
            **{k: v for k, v in params.items() if k not in routed}
        )

    # -- pickling ----------------------------------------------------------

    def __getstate__(self):
        state = super().__getstate__()
        for key, value in state.items():
            if isinstance(value, torch.nn.Module):
                state[key] = cpu_copy(value)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        fitted = [
            v
            for k, v in vars(self).items()
            if k.endswith("_") and isinstance(v, torch.nn.Module)
        ]
        if fitted:
            device = inference_device(self.device)
            for module in fitted:
                module.to(device)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


declare_parameters(BaseDeepClusterer)


def cpu_copy(module):
    """A copy of ``module`` with its parameters and buffers on the CPU.

    Tensors are copied straight to the host, never duplicated on the GPU
    first; the original is left where it is.
    """
    memo = {}
    for tensor in [*module.parameters(), *module.buffers()]:
        copied = tensor.detach()
        copied = copied.clone() if copied.device.type == "cpu" else copied.cpu()
        if isinstance(tensor, torch.nn.Parameter):
            copied = torch.nn.Parameter(copied, requires_grad=tensor.requires_grad)
        memo[id(tensor)] = copied
    return copy.deepcopy(module, memo)


class SoftAssignmentMixin:
    """``predict_proba`` and ``predict`` for estimators with a soft assignment.

    The estimator implements ``_log_proba(X)``: the log of its soft
    assignment of validated ``X``, shape (n_samples, n_clusters).
    """

    def predict_proba(self, X):
        """Soft assignment of each sample to each cluster.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            New data.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_clusters), dtype float32
            Rows sum to 1; the class docstring says which distribution.
        """
        X = self._validate_predict_data(X)
        return np.exp(self._log_proba(X))

    def predict(self, X):
        """Cluster of each sample: the argmax of its soft assignment.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            New data.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Cluster index of each sample.
        """
        X = self._validate_predict_data(X)
        return self._log_proba(X).argmax(axis=1).astype(np.int64)
