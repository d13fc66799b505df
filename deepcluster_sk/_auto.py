"""The ``"auto"`` defaults: network size and training budget from the data.

A user who passes only ``n_clusters`` gets a network and a training length
sized for the data at hand, not for one benchmark. The functions below are
the whole rule; ``benchmarks/results/auto_defaults.md`` holds the
measurements behind their constants. Each is a pure function of the data's
shape, so the same data always gets the same settings, and an explicit
parameter value always wins over the rule.

The budget is counted in compute, not epochs: a tiny table must not pay for
thousands of steps of a wide network, and a large data set must get enough
updates, but no more than a CPU does in minutes.
"""

import math

from ._layerwise import auto_layerwise_iterations

#: Rows per mini-batch step: batch sizes grow with the data up to the
#: paper's 256, so that small data sets still get many updates per epoch.
_ROWS_PER_BATCH = 28
_BATCH_RANGE = (16, 256)

#: Hidden width relative to the number of input features, and its bounds.
_WIDTH_PER_FEATURE = 2
_WIDTH_RANGE = (64, 256)

#: Pretraining steps: ``_STEPS_PER_ROOT * sqrt(n_samples * n_features)``
#: within ``_STEP_RANGE``, but never more than ``_MAX_PRETRAIN_WORK``
#: multiply-adds of forward passes (about two minutes of a 2-core CPU), and
#: between ``_EPOCH_RANGE`` passes over the data.
_STEPS_PER_ROOT = 15
_STEP_RANGE = (300, 20000)
_MAX_PRETRAIN_WORK = 4e12
_EPOCH_RANGE = (10, 400)


def _power_of_two_floor(x):
    return 2 ** max(0, math.floor(math.log2(max(x, 1))))


def _power_of_two_ceil(x):
    return 2 ** max(0, math.ceil(math.log2(max(x, 1))))


def _clip(value, bounds):
    low, high = bounds
    return int(min(max(value, low), high))


def steps_per_epoch(n_samples, batch_size):
    """Mini-batch steps of one pass over ``n_samples`` rows."""
    return -(-n_samples // batch_size)


def forward_work(dims):
    """Multiply-adds per sample of a fully connected stack ``dims[0] -> ...``.

    Parameters
    ----------
    dims : sequence of int
        Layer widths, input first.

    Returns
    -------
    work : int
    """
    return sum(n_in * n_out for n_in, n_out in zip(dims[:-1], dims[1:]))


def auto_batch_size(n_samples):
    """Mini-batch size for ``batch_size="auto"``.

    Parameters
    ----------
    n_samples : int

    Returns
    -------
    batch_size : int
        About ``n_samples / 28``, a power of two between 16 and 256.
    """
    return _clip(_power_of_two_floor(n_samples / _ROWS_PER_BATCH), _BATCH_RANGE)


def auto_width(n_features, bounds=_WIDTH_RANGE):
    """Hidden width: twice the features, a power of two within ``bounds``."""
    return _clip(_power_of_two_ceil(_WIDTH_PER_FEATURE * n_features), bounds)


def auto_hidden_dims(n_features):
    """Encoder widths for ``hidden_dims="auto"``: ``(w, w, 2 w)``.

    Parameters
    ----------
    n_features : int

    Returns
    -------
    hidden_dims : tuple of int
    """
    width = auto_width(n_features)
    return (width, width, 2 * width)


def auto_training_steps(n_samples, n_features, batch_size, work_per_sample):
    """Mini-batch steps of a training phase whose length is ``"auto"``.

    ``_STEPS_PER_ROOT * sqrt(n_samples * n_features)`` within
    ``_STEP_RANGE``, then capped so that the forward passes cost at most
    ``_MAX_PRETRAIN_WORK`` multiply-adds.

    Parameters
    ----------
    n_samples, n_features, batch_size : int
    work_per_sample : int
        Multiply-adds of one sample's forward pass through the network.

    Returns
    -------
    steps : int
    """
    steps = _clip(_STEPS_PER_ROOT * math.sqrt(n_samples * n_features), _STEP_RANGE)
    affordable = _MAX_PRETRAIN_WORK / (batch_size * work_per_sample)
    return int(max(1, min(steps, affordable)))


def auto_epochs(n_samples, batch_size, steps):
    """Epochs that give about ``steps`` steps, within ``_EPOCH_RANGE``."""
    return _clip(-(-steps // steps_per_epoch(n_samples, batch_size)), _EPOCH_RANGE)


def autoencoder_settings(
    n_samples,
    n_features,
    *,
    hidden_dims,
    n_components,
    batch_size,
    pretrain,
    pretrain_epochs,
    pretrain_iterations,
):
    """Resolve the ``"auto"`` parameters of an autoencoder estimator.

    Parameters
    ----------
    n_samples, n_features : int
        The shape of the training data.
    hidden_dims, n_components, batch_size, pretrain, pretrain_epochs, \
pretrain_iterations
        The estimator's parameters, each a value or ``"auto"``.

    Returns
    -------
    settings : dict
        ``hidden_dims``, ``batch_size`` and ``pretrain_epochs`` (end-to-end
        pretraining) or ``pretrain_iterations`` (layer-wise), as used.
    """
    if batch_size == "auto":
        batch_size = auto_batch_size(n_samples)
    if hidden_dims == "auto":
        hidden_dims = auto_hidden_dims(n_features)
    settings = {"hidden_dims": tuple(hidden_dims), "batch_size": batch_size}
    if pretrain == "layerwise":
        if pretrain_iterations == "auto":
            pretrain_iterations = auto_layerwise_iterations(n_samples, batch_size)
        settings["pretrain_iterations"] = pretrain_iterations
        return settings
    if pretrain_epochs == "auto":
        work = 2 * forward_work([n_features, *hidden_dims, n_components])
        steps = auto_training_steps(n_samples, n_features, batch_size, work)
        pretrain_epochs = auto_epochs(n_samples, batch_size, steps)
    settings["pretrain_epochs"] = pretrain_epochs
    return settings


#: DEC's target distribution is recomputed about every ``_UPDATE_EPOCHS``
#: epochs, but at least every ``_MAX_UPDATE_INTERVAL`` steps (DEC-keras's
#: 140 on MNIST, half an epoch there); self-training may run for
#: ``_MAX_UPDATES`` target updates.
_UPDATE_EPOCHS = 5
_MAX_UPDATE_INTERVAL = 140
_MAX_UPDATES = 40


def auto_update_interval(n_samples, batch_size):
    """Self-training steps between two target updates, for ``"auto"``.

    Parameters
    ----------
    n_samples, batch_size : int

    Returns
    -------
    update_interval : int
    """
    per_epoch = steps_per_epoch(n_samples, batch_size)
    return int(min(_UPDATE_EPOCHS * per_epoch, _MAX_UPDATE_INTERVAL))


def self_training_settings(settings, n_samples, *, update_interval, max_iter):
    """Resolve DEC's ``update_interval`` and ``max_iter`` after ``settings``.

    Parameters
    ----------
    settings : dict
        From :func:`autoencoder_settings`; gives the batch size.
    n_samples : int
    update_interval, max_iter : int or "auto"

    Returns
    -------
    settings : dict
        ``settings`` with ``update_interval`` and ``max_iter`` added.
    """
    if update_interval == "auto":
        update_interval = auto_update_interval(n_samples, settings["batch_size"])
    if max_iter == "auto":
        max_iter = _MAX_UPDATES * update_interval
    return {**settings, "update_interval": update_interval, "max_iter": max_iter}


#: Softmax-head estimators (IMSAT, DAC): two hidden layers of ``w`` units,
#: ``w`` twice the features within these bounds (the IMSAT paper's 1200 on
#: MNIST at most).
_SOFTMAX_WIDTH_RANGE = (64, 1200)


def softmax_network_settings(n_samples, n_features, *, hidden_dims, batch_size):
    """Resolve ``hidden_dims`` and ``batch_size`` of IMSAT and DAC.

    Parameters
    ----------
    n_samples, n_features : int
    hidden_dims, batch_size
        The estimator's parameters, each a value or ``"auto"``.

    Returns
    -------
    settings : dict
        ``hidden_dims`` and ``batch_size`` as used.
    """
    if batch_size == "auto":
        batch_size = auto_batch_size(n_samples)
    if hidden_dims == "auto":
        width = auto_width(n_features, _SOFTMAX_WIDTH_RANGE)
        hidden_dims = (width, width)
    return {"hidden_dims": tuple(hidden_dims), "batch_size": batch_size}


def auto_softmax_epochs(n_samples, n_features, settings, work_per_step):
    """Epochs of IMSAT training for ``n_epochs="auto"``.

    The step budget of :func:`auto_training_steps`, counted in whole epochs
    of ``n_samples // batch_size`` steps (the incomplete batch is dropped).

    Parameters
    ----------
    n_samples, n_features : int
    settings : dict
        From :func:`softmax_network_settings`.
    work_per_step : int
        Multiply-adds of the forward passes of one step.

    Returns
    -------
    n_epochs : int
    """
    batch_size = min(settings["batch_size"], n_samples)
    steps = auto_training_steps(
        n_samples, n_features, batch_size, work_per_step / batch_size
    )
    per_epoch = max(1, n_samples // batch_size)
    return _clip(-(-steps // per_epoch), _EPOCH_RANGE)
