"""The shared machinery of every torch-backed estimator in the package.

:class:`BaseDeepClusterer` holds what the estimators share: parameter
constraints of the autoencoder, input validation, device resolution,
seeding, batched inference, pickling across devices and the clean-up of a
failed fit. Each estimator adds only its own ``_fit`` and prediction rule.
"""

import copy
from abc import ABCMeta, abstractmethod
from numbers import Integral, Real

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
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._auto import autoencoder_settings, forward_work
from ._cuda_graphs import allow_tf32
from ._data import TrainingData, iter_row_batches
from ._device import inference_device, resolve_device
from ._diagnostics import (
    check_finite_embedding,
    check_float32_range,
    lower,
    warn_if_collapsed,
)
from ._layerwise import (
    LAYERWISE_INIT_STD,
    LAYERWISE_LEARNING_RATE,
    LAYERWISE_LR_STEP_FRACTION,
    pretrain_layerwise,
)
from ._nn import Autoencoder, reset_parameters
from ._pretrain_cache import cache_key, pretrain_cache
from ._progress import ProgressPrinter
from ._threads import training_threads
from ._train import embed, pretrain_autoencoder

#: Rows per batch when predicting or computing a full pass during training.
INFERENCE_BATCH_SIZE = {"cpu": 4096, "cuda": 65536}

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


class BaseDeepClusterer(
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    ClusterMixin,
    BaseEstimator,
    metaclass=ABCMeta,
):
    """Base class of the torch-backed clustering estimators.

    Not meant to be used directly. Subclasses implement ``_fit``, which gets
    validated data already wrapped for the training device, and set every
    fitted attribute at its end. A subclass with extra parameter checks that
    ``_parameter_constraints`` cannot express overrides ``_check_params``;
    one whose fit can merge clusters overrides ``_collapse_advice``, the
    advice of the warning when ``labels_`` use fewer than ``n_clusters``.
    """

    _parameter_constraints: dict = {
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "device": [str, torch.device],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def fit(self, X, y=None):
        """Fit the model to ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data. Sparse rows are densified one batch at a time.
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
        X = self._validate_float32(X, reset=True)
        if X.shape[0] < self.n_clusters:
            raise ValueError(
                f"n_samples={X.shape[0]} should be >= n_clusters={self.n_clusters}."
            )
        rng = check_random_state(self.random_state)
        generator = torch.Generator().manual_seed(int(rng.randint(2**31 - 1)))
        data = TrainingData(X, device)
        settings = self._settings(data.n_samples, data.n_features)
        self._progress().message(
            f"settings for {data.n_samples} samples x {data.n_features} features: "
            + ", ".join(f"{name}={value!r}" for name, value in settings.items())
        )
        work = self._forward_work(settings, data.n_features)
        with allow_tf32(device), training_threads(device, work):
            self._fit(data, settings, rng, generator)
        for name, value in settings.items():
            setattr(self, f"{name}_", value)
        warn_if_collapsed(self.labels_, self.n_clusters, self._collapse_advice())

    def _validate_float32(self, X, reset):
        """``validate_data``, then reject values float32 cannot hold, then cast.

        Checked before the cast, which would turn them into infinities that
        scikit-learn reports as if the input held some.
        """
        X = validate_data(
            self, X, accept_sparse="csr", dtype=(np.float32, np.float64), reset=reset
        )
        check_float32_range(X)
        return X.astype(np.float32, copy=False)

    @abstractmethod
    def _settings(self, n_samples, n_features):
        """The training settings: every ``"auto"`` parameter resolved.

        Returns a dict from parameter name to the value used; an explicit
        parameter value is used as given.
        """

    @abstractmethod
    def _forward_work(self, settings, n_features):
        """Multiply-adds of one training step's forward pass (sets threads)."""

    @abstractmethod
    def _fit(self, data, settings, rng, generator):
        """Fit on validated ``data`` with the resolved ``settings``.

        Sets every fitted attribute at the end, except the settings
        themselves, which the caller stores.
        """

    def _check_params(self):
        """Checks beyond ``_parameter_constraints``; raise ``ValueError``."""

    def _collapse_advice(self):
        """What to try when ``labels_`` use fewer than ``n_clusters`` clusters."""
        return "Try fewer clusters."

    def _discard_fitted_state(self):
        fitted = [k for k in vars(self) if k.endswith("_") and not k.startswith("__")]
        for name in fitted:
            delattr(self, name)

    def _progress(self):
        return ProgressPrinter(self.verbose, type(self).__name__)

    def _inference_batch_size(self, device):
        return INFERENCE_BATCH_SIZE[device.type]

    # -- inference ---------------------------------------------------------

    def _validate_predict_data(self, X):
        check_is_fitted(self)
        return self._validate_float32(X, reset=False)

    def _module_device(self, module):
        return next(module.parameters()).device

    def _map_batches(self, X, module, function):
        """Apply ``function`` to batches of validated ``X`` on ``module``'s device.

        Returns the results concatenated as a NumPy array.
        """
        device = self._module_device(module)
        batch_size = self._inference_batch_size(device)
        outputs = []
        with torch.inference_mode():
            module.eval()
            for _, _, rows in iter_row_batches(X, batch_size, device):
                outputs.append(function(rows).cpu())
        return torch.cat(outputs).numpy()

    # -- pickling ----------------------------------------------------------

    def __getstate__(self):
        state = super().__getstate__()
        for key, value in state.items():
            if isinstance(value, torch.nn.Module):
                state[key] = copy.deepcopy(value).cpu()
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        modules = [v for v in vars(self).values() if isinstance(v, torch.nn.Module)]
        if modules:
            device = inference_device(self.device)
            for module in modules:
                module.to(device)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


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


class BaseAutoencoderClusterer(BaseDeepClusterer):
    """Base class of the estimators that cluster an autoencoder's embedding.

    Adds the autoencoder's parameters, its pretraining (cached through
    ``memory``) and ``transform`` into the embedding. Subclasses set
    ``autoencoder_`` and ``cluster_centers_`` (in the embedding) in
    ``_fit``.
    """

    #: The parameters that change the pretrained autoencoder, besides
    #: ``random_state``: ``memory`` reuses a cached network only when these,
    #: the data, the pretraining seed and the device type are the same.
    _pretraining_params = (
        "hidden_dims",
        "n_components",
        "pretrain",
        "pretrain_epochs",
        "pretrain_learning_rate",
        "pretrain_iterations",
        "batch_size",
    )

    #: The resolved settings (see ``_settings``) that pretraining uses.
    _pretraining_settings = (
        "hidden_dims",
        "batch_size",
        "pretrain_epochs",
        "pretrain_iterations",
    )

    _parameter_constraints: dict = {
        **BaseDeepClusterer._parameter_constraints,
        "hidden_dims": [tuple, list, StrOptions({"auto"})],
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "pretrain_epochs": [
            Interval(Integral, 0, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "pretrain_learning_rate": [Interval(Real, 0, None, closed="neither")],
        "pretrain": [StrOptions({"end_to_end", "layerwise"})],
        "pretrain_iterations": [
            Interval(Integral, 0, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "memory": [None, str, HasMethods(["cache"])],
    }

    def _check_params(self):
        check_hidden_dims(self.hidden_dims)

    def _settings(self, n_samples, n_features):
        return autoencoder_settings(
            n_samples,
            n_features,
            hidden_dims=self.hidden_dims,
            n_components=self.n_components,
            batch_size=self.batch_size,
            pretrain=self.pretrain,
            pretrain_epochs=self.pretrain_epochs,
            pretrain_iterations=self.pretrain_iterations,
        )

    def _forward_work(self, settings, n_features):
        dims = [n_features, *settings["hidden_dims"], self.n_components]
        return 2 * settings["batch_size"] * forward_work(dims)

    def _pretrained_autoencoder(self, data, settings, rng, progress):
        """The pretrained autoencoder and its loss curve, from the cache if any.

        The pretraining seed is drawn from ``rng`` on a cache hit too, so
        the numbers drawn after it, hence the fitted model, are the same
        whether the network was loaded or trained.
        """
        seed = int(rng.randint(2**31 - 1))
        cache = pretrain_cache(self.memory)
        if cache is None:
            return self._pretrain(data, settings, seed, progress)
        key = cache_key(data.source, self._pretraining_key(seed, data.device, settings))
        cached = cache.load(key)
        if cached is None:
            autoencoder, losses = self._pretrain(data, settings, seed, progress)
            cache.save(key, autoencoder.state_dict(), losses)
            return autoencoder, losses
        state_dict, losses = cached
        autoencoder = self._autoencoder(data.n_features, settings)
        autoencoder.load_state_dict(state_dict)
        progress.message("pretrained autoencoder loaded from the cache")
        return autoencoder.to(data.device).eval(), losses

    def _pretraining_key(self, seed, device, settings):
        """What the pretrained weights depend on, besides the data and versions.

        The parameters as given and as resolved (``settings``), so that a
        change of the ``"auto"`` rules never reuses a stale network. With
        ``random_state=None`` the key holds no seed, so the network
        pretrained first is reused, as ``Pipeline(memory=...)`` reuses a
        fitted transformer; otherwise it holds the seed drawn from
        ``random_state``, exact for an int and for a RandomState instance.
        """
        params = {name: getattr(self, name) for name in self._pretraining_params}
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
        params["settings"] = {
            name: value
            for name, value in settings.items()
            if name in self._pretraining_settings
        }
        params["seed"] = None if self.random_state is None else seed
        params["device_type"] = device.type
        return params

    def _autoencoder(self, n_features, settings):
        return Autoencoder(n_features, settings["hidden_dims"], self.n_components)

    def _pretrain(self, data, settings, seed, progress):
        """Build and pretrain the autoencoder; return it with its loss curve."""
        generator = torch.Generator().manual_seed(seed)
        autoencoder = self._autoencoder(data.n_features, settings)
        if self.pretrain == "layerwise":
            reset_parameters(autoencoder, generator, std=LAYERWISE_INIT_STD)
            autoencoder.to(data.device)
            losses = self._pretrain_layerwise(
                autoencoder, data, settings, generator, progress
            )
        else:
            reset_parameters(autoencoder, generator)
            autoencoder.to(data.device)
            losses = self._pretrain_end_to_end(
                autoencoder, data, settings, generator, progress
            )
        return autoencoder, losses

    def _pretrain_end_to_end(self, autoencoder, data, settings, generator, progress):
        return pretrain_autoencoder(
            autoencoder,
            data,
            n_epochs=settings["pretrain_epochs"],
            batch_size=settings["batch_size"],
            learning_rate=self.pretrain_learning_rate,
            generator=generator,
            on_epoch=progress.epoch,
            advice=self._pretraining_advice(),
        )

    def _pretrain_layerwise(self, autoencoder, data, settings, generator, progress):
        n_iter = settings["pretrain_iterations"]
        return pretrain_layerwise(
            autoencoder,
            data,
            layer_iterations=n_iter,
            finetune_iterations=n_iter,
            batch_size=settings["batch_size"],
            learning_rate=LAYERWISE_LEARNING_RATE,
            lr_step=max(1, round(LAYERWISE_LR_STEP_FRACTION * n_iter)),
            dropout=0.2,
            generator=generator,
            on_epoch=progress.epoch,
            advice=self._pretraining_advice(),
        )

    def _pretraining_advice(self):
        """What to change when pretraining diverges."""
        if self.pretrain == "layerwise":
            return (
                "layer-wise pretraining has a fixed learning rate: scale the "
                "data, e.g. with sklearn.preprocessing.StandardScaler, or use "
                'pretrain="end_to_end"'
            )
        return lower("pretrain_learning_rate", self.pretrain_learning_rate)

    def _training_embedding(self, autoencoder, data):
        """The embedding of the training data, checked to be finite.

        A diverged autoencoder is reported as such here, before k-means
        would report its NaN as missing values in the input.
        """
        embedding = embed(
            autoencoder.encoder, data, self._inference_batch_size(data.device)
        )
        check_finite_embedding(embedding, "pretraining", self._pretraining_advice())
        return embedding

    def transform(self, X):
        """Embed ``X`` with the trained encoder.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            New data.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components), dtype float32
            The embedding.
        """
        X = self._validate_predict_data(X)
        encoder = self.autoencoder_.encoder
        return self._map_batches(X, encoder, encoder)

    @property
    def _n_features_out(self):
        return self.cluster_centers_.shape[1]

