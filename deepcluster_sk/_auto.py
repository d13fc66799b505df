"""The ``"auto"`` defaults: network size and training budget from the data.

A user who passes only ``n_clusters`` gets a network and a training length
sized for the data at hand, not for one benchmark. The functions below are
every rule of every estimator; ``benchmarks/results/auto_defaults.md`` holds the
measurements behind their constants. Each is a pure function of the data's
shape, so the same data always gets the same settings, and an explicit
parameter value always wins over the rule.

The budget is counted in compute, not epochs: a tiny table must not pay for
thousands of steps of a wide network, and a large data set must get enough
updates, but no more than a CPU does in minutes.
"""

import math

from ._training._sampler import steps_per_epoch

#: Rows per mini-batch step: batch sizes grow with the data up to 64, so
#: that small data sets still get many updates per epoch. Not the paper's
#: 256: within a CPU's budget the autoencoder is short of updates, not of
#: data, and at equal compute batches of 64 beat 128 and 256 on MNIST and
#: on digits (``benchmarks/results/auto_defaults.md``).
_ROWS_PER_BATCH = 28
_BATCH_RANGE = (16, 64)

#: Hidden width relative to the number of input features, and its bounds.
#: From ``_PAPER_WIDTH_FEATURES`` features on (images), the rule picks the
#: paper's 500-500-2000 network, which on MNIST beats a narrower one trained
#: for the same wall time.
_WIDTH_PER_FEATURE = 2
_WIDTH_RANGE = (64, 256)
_PAPER_WIDTH_FEATURES = 250
PAPER_HIDDEN_DIMS = (500, 500, 2000)

#: Pretraining steps: ``_STEPS_PER_FEATURE * n_features * sqrt(n_samples)``
#: within ``_STEP_RANGE`` and between ``_EPOCH_RANGE`` passes over the data,
#: but never more forward multiply-adds than ``_WORK_AT_10K`` times
#: ``(n_samples / 10 000) ** _WORK_EXPONENT``: about two and a half minutes
#: of a 2-core CPU for 10 000 samples, eleven for 70 000.
_STEPS_PER_FEATURE = 2
_STEP_RANGE = (300, 50000)
_WORK_AT_10K = 1.5e12
_WORK_EXPONENT = 0.75
_EPOCH_RANGE = (10, 400)


def _power_of_two_floor(x):
    return 2 ** max(0, math.floor(math.log2(max(x, 1))))


def _power_of_two_ceil(x):
    return 2 ** max(0, math.ceil(math.log2(max(x, 1))))


def _clip(value, bounds):
    low, high = bounds
    return int(min(max(value, low), high))


def auto_batch_size(n_samples):
    """Mini-batch size for ``batch_size="auto"``.

    Parameters
    ----------
    n_samples : int

    Returns
    -------
    batch_size : int
        About ``n_samples / 28``, a power of two between 16 and 64.
    """
    return _clip(_power_of_two_floor(n_samples / _ROWS_PER_BATCH), _BATCH_RANGE)


#: In bfloat16 the ``"auto"`` batch grows to ``n / 8`` rows, at most 256:
#: a step of the paper's network then runs at about a quarter of the
#: bfloat16 matmul peak instead of a tenth at batch 64 in float32
#: (``benchmarks/results/tuning/precision_steps.md``), and pretraining
#: still gets the Adam updates it is short of. Larger batches run closer to
#: the peak (about half at 1 024-2 048, ``roofline_cpu.md``) but train
#: worse: on the MNIST test split DEC with batches of 1 024 (1 330 steps,
#: 1.33 M samples, about 100 s) reached 0.630 mean ACC, 9 360 steps of 256
#: (2.34 M samples) 0.739 on seed 0
#: (``benchmarks/results/tuning/batch_1024_default.md``); the
#: reconstruction error follows the number of steps more than the samples.
_MIN_STEPS_PER_EPOCH = 8
_MAX_BFLOAT16_BATCH = 256


def bfloat16_batch_size(n_samples):
    """The ``"auto"`` mini-batch of a fit in bfloat16.

    Parameters
    ----------
    n_samples : int

    Returns
    -------
    batch_size : int
        ``n_samples / 8`` as a power of two, at most 256 and at least
        :func:`auto_batch_size`.
    """
    most = _power_of_two_floor(n_samples / _MIN_STEPS_PER_EPOCH)
    return int(max(auto_batch_size(n_samples), min(most, _MAX_BFLOAT16_BATCH)))


def auto_width(n_features, bounds=_WIDTH_RANGE):
    """Hidden width: twice the features, a power of two within ``bounds``."""
    return _clip(_power_of_two_ceil(_WIDTH_PER_FEATURE * n_features), bounds)


def auto_hidden_dims(n_features):
    """Encoder widths for ``hidden_dims="auto"``.

    ``(w, w, 2 w)`` with ``w`` twice the features, a power of two between 64
    and 256; the paper's ``(500, 500, 2000)`` from 250 features on.

    Parameters
    ----------
    n_features : int

    Returns
    -------
    hidden_dims : tuple of int
    """
    if n_features >= _PAPER_WIDTH_FEATURES:
        return PAPER_HIDDEN_DIMS
    width = auto_width(n_features)
    return (width, width, 2 * width)


#: The budget in bfloat16: ``_BFLOAT16_WORK_FACTOR`` times the float32
#: budget at 10 000 samples, growing as ``n ** _BFLOAT16_WORK_EXPONENT``.
#: Its steps of the paper's network at batch 256 run 1.3-3x as many samples
#: per second as float32 steps at batch 64 (``tuning/precision_steps.md``;
#: the chip's bfloat16 throughput moves by 2x from minute to minute), and
#: the clusters need fewer epochs since the manifold step clusters the
#: embedding: on the MNIST test split, N2D reached 0.929, 0.942 and 0.951
#: ACC after 40, 70 and 133 epochs (``tuning/manifold_rules.jsonl``).
#: 1.5x buys about 70 epochs of the paper's network there (about two
#: minutes with UMAP), and the smaller exponent about 34 on all of MNIST,
#: where 30 epochs reached 0.974 (ALGORITHMS.md, section 6), so that DEC's
#: fit stays within ten minutes.
_BFLOAT16_WORK_FACTOR = 1.5
_BFLOAT16_WORK_EXPONENT = 0.65


def max_training_work(n_samples, precision="float32"):
    """Forward multiply-adds a training phase may spend on ``n_samples``.

    Grows with the data, but less than linearly: ``_WORK_AT_10K`` at
    10 000 samples in float32, 1.5 times as much in bfloat16.
    """
    if precision == "bfloat16":
        factor, exponent = _BFLOAT16_WORK_FACTOR, _BFLOAT16_WORK_EXPONENT
    else:
        factor, exponent = 1.0, _WORK_EXPONENT
    return factor * _WORK_AT_10K * (n_samples / 10_000) ** exponent


def auto_training_steps(n_samples, n_features, batch_size, work_per_sample,
                        precision="float32"):
    """Mini-batch steps of a training phase whose length is ``"auto"``.

    ``_STEPS_PER_FEATURE * n_features * sqrt(n_samples)`` within
    ``_STEP_RANGE``: more features need more updates, and more samples more
    updates too, though fewer passes. Then capped so that the forward passes
    cost at most :func:`max_training_work` multiply-adds.

    Parameters
    ----------
    n_samples, n_features, batch_size : int
    work_per_sample : int
        Multiply-adds of one sample's forward pass through the network.
    precision : {"float32", "bfloat16"}, default="float32"
        The fit's precision, which sets the compute budget.

    Returns
    -------
    steps : int
    """
    steps = _clip(
        _STEPS_PER_FEATURE * n_features * math.sqrt(n_samples), _STEP_RANGE
    )
    budget = max_training_work(n_samples, precision)
    affordable = budget / (batch_size * work_per_sample)
    return int(max(1, min(steps, affordable)))


def auto_epochs(n_samples, batch_size, steps):
    """Epochs that give about ``steps`` steps, within ``_EPOCH_RANGE``."""
    return _clip(-(-steps // steps_per_epoch(n_samples, batch_size)), _EPOCH_RANGE)


def network_settings(n_samples, n_features, *, hidden_dims, batch_size, size_rule):
    """Resolve the ``"auto"`` network width and batch size of an estimator.

    Parameters
    ----------
    n_samples, n_features : int
        The shape of the training data.
    hidden_dims : tuple of int, "auto" or None
        The estimator's parameter; None when the estimator trains a network
        of the user's, which the parameter does not size.
    batch_size : int or "auto"
    size_rule : callable
        ``size_rule(n_features)``: the hidden widths for ``"auto"``,
        :func:`auto_hidden_dims` (autoencoders) or
        :func:`auto_network_dims` (IMSAT, DAC).

    Returns
    -------
    settings : dict
        ``batch_size``, and ``hidden_dims`` unless it was None.
    """
    if batch_size == "auto":
        batch_size = auto_batch_size(n_samples)
    settings = {"batch_size": batch_size}
    if hidden_dims is not None:
        if hidden_dims == "auto":
            hidden_dims = size_rule(n_features)
        settings["hidden_dims"] = tuple(hidden_dims)
    return settings


def pretraining_settings(
    n_samples,
    n_features,
    *,
    batch_size,
    precision,
    work_per_sample,
    pretrain,
    pretrain_epochs,
    pretrain_iterations,
):
    """Resolve the length of autoencoder pretraining.

    Parameters
    ----------
    n_samples, n_features, batch_size : int
    precision : {"float32", "bfloat16"}
        The fit's precision, which sets the compute budget.
    work_per_sample : int
        Multiply-adds of one sample's forward pass through the autoencoder,
        measured on the network that trains.
    pretrain : {"end_to_end", "layerwise"}
    pretrain_epochs, pretrain_iterations : int or "auto"

    Returns
    -------
    settings : dict
        ``pretrain_epochs`` (end-to-end pretraining) or
        ``pretrain_iterations`` (layer-wise), as used.
    """
    if pretrain == "layerwise":
        if pretrain_iterations == "auto":
            pretrain_iterations = auto_layerwise_iterations(n_samples, batch_size)
        return {"pretrain_iterations": pretrain_iterations}
    if pretrain_epochs == "auto":
        steps = auto_training_steps(
            n_samples, n_features, batch_size, work_per_sample, precision
        )
        pretrain_epochs = auto_epochs(n_samples, batch_size, steps)
    return {"pretrain_epochs": pretrain_epochs}


#: Epochs per stage that ``pretrain_iterations="auto"`` aims for, and the
#: bounds on the resulting step count.
_LAYERWISE_EPOCHS = 20
_LAYERWISE_STEP_RANGE = (1000, 50000)


def auto_layerwise_iterations(n_samples, batch_size):
    """Steps per stage of layer-wise pretraining, for ``"auto"``.

    About 20 epochs, at least 1000 and at most 50 000 steps. The paper runs
    50 000 steps per stage on MNIST (about 180 epochs); 20 epochs keeps the
    greedy schedule affordable on a CPU.

    Parameters
    ----------
    n_samples, batch_size : int

    Returns
    -------
    iterations : int
    """
    epoch = steps_per_epoch(n_samples, batch_size)
    return _clip(_LAYERWISE_EPOCHS * epoch, _LAYERWISE_STEP_RANGE)


#: DEC's target distribution is recomputed about every ``_UPDATE_EPOCHS``
#: epochs, but at least every ``_MAX_UPDATE_INTERVAL`` steps (DEC-keras's
#: 140 on MNIST); self-training may run for ``_MAX_UPDATES`` target updates.
#: Up to 10 000 samples it converged within 33; on all of MNIST 0.4% of the
#: labels still changed after 40 updates, and after 80 (a ConvergenceWarning
#: either way), so more updates only cost time there.
#: With large batches (above 365 rows, such as an explicit 1 024), an
#: update also comes after at most ``_MAX_UPDATE_SAMPLES`` rows (50 steps
#: of 1 024 on the MNIST test split, where self-training gained as much
#: over k-means as 140 steps of 256), so that self-training's cost does not
#: grow with the batch.
_UPDATE_EPOCHS = 5
_MAX_UPDATE_INTERVAL = 140
_MAX_UPDATE_SAMPLES = 51200
_MAX_UPDATES = 40


def auto_update_interval(n_samples, batch_size):
    """Self-training steps between two target updates, for ``"auto"``.

    Parameters
    ----------
    n_samples, batch_size : int

    Returns
    -------
    update_interval : int
        Five epochs, but at most 140 steps and ``51 200 / batch_size`` steps.
    """
    per_epoch = steps_per_epoch(n_samples, batch_size)
    by_samples = -(-_MAX_UPDATE_SAMPLES // batch_size)
    steps = min(_UPDATE_EPOCHS * per_epoch, _MAX_UPDATE_INTERVAL, by_samples)
    return int(max(1, steps))


def self_training_settings(settings, n_samples, *, update_interval, max_iter):
    """Resolve DEC's ``update_interval`` and ``max_iter`` after ``settings``.

    Parameters
    ----------
    settings : dict
        The resolved settings; gives the batch size.
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


#: The estimators that train a network alone (IMSAT, DAC): two hidden layers of ``w`` units,
#: ``w`` twice the features within these bounds (the IMSAT paper's 1200 on
#: MNIST at most).
_NETWORK_WIDTH_RANGE = (64, 1200)


def auto_network_dims(n_features):
    """Hidden widths of IMSAT's and DAC's network for ``hidden_dims="auto"``.

    Parameters
    ----------
    n_features : int

    Returns
    -------
    hidden_dims : tuple of int
        ``(w, w)``, ``w`` twice the features, a power of two between 64 and
        1200.
    """
    width = auto_width(n_features, _NETWORK_WIDTH_RANGE)
    return (width, width)


#: IMSAT's perturbation radius factor: the paper's 0.25 on images, 1.0 on
#: fewer features, where 0.25 left single seeds far behind.
_IMAGE_EPS_SCALE = 0.25
_TABLE_EPS_SCALE = 1.0


def auto_eps_scale(n_features):
    """IMSAT's ``eps_scale`` for ``"auto"``.

    Parameters
    ----------
    n_features : int

    Returns
    -------
    eps_scale : float
        0.25 (the paper's) from 250 features on, as for the paper's
        network, else 1.0.
    """
    if n_features >= _PAPER_WIDTH_FEATURES:
        return _IMAGE_EPS_SCALE
    return _TABLE_EPS_SCALE


#: DAC's steps at each pair of thresholds: ``_STAGE_EPOCHS`` passes over the
#: data within ``_STAGE_STEP_RANGE``.
_STAGE_EPOCHS = 4
_STAGE_STEP_RANGE = (10, 50)


def auto_steps_per_stage(n_samples, batch_size):
    """DAC's ``steps_per_stage`` for ``"auto"``.

    Parameters
    ----------
    n_samples, batch_size : int
        ``batch_size`` already capped at ``n_samples``.

    Returns
    -------
    steps : int
        Four passes over the data (``n_samples // batch_size`` steps each),
        between 10 and 50 steps.
    """
    per_epoch = steps_per_epoch(n_samples, batch_size, drop_last=True)
    return _clip(_STAGE_EPOCHS * per_epoch, _STAGE_STEP_RANGE)


def dac_stage_settings(n_samples, batch_size, *, steps_per_stage):
    """Resolve DAC's ``steps_per_stage``.

    Parameters
    ----------
    n_samples : int
    batch_size : int
        Rows per mini-batch, before capping at ``n_samples``.
    steps_per_stage : int, "epoch" or "auto"
        ``"epoch"`` is one pass over the data, ``"auto"``
        :func:`auto_steps_per_stage`.

    Returns
    -------
    settings : dict
        ``steps_per_stage`` as used.
    """
    batch_size = min(batch_size, n_samples)
    if steps_per_stage == "epoch":
        steps_per_stage = steps_per_epoch(n_samples, batch_size, drop_last=True)
    elif steps_per_stage == "auto":
        steps_per_stage = auto_steps_per_stage(n_samples, batch_size)
    return {"steps_per_stage": steps_per_stage}


#: IMSAT's passes over the data: the paper's 50, and more where 50 passes
#: are few steps (a table of 150 rows fits in one batch: 50 steps in all).
#: At least 300 steps lift the six small tables from 0.849 to 0.890 mean
#: ACC (1 000: 0.889; 500: 0.892 but over 2 s a fit), and change nothing
#: from 1 500 rows on (``benchmarks/results/tuning/imsat_steps.md``).
_IMSAT_EPOCHS = 50
_IMSAT_MIN_STEPS = 300


def auto_imsat_epochs(n_samples, batch_size):
    """IMSAT's ``n_epochs`` for ``"auto"``.

    Parameters
    ----------
    n_samples, batch_size : int

    Returns
    -------
    n_epochs : int
        The paper's 50, or enough epochs of ``n_samples // batch_size``
        steps (the last incomplete batch dropped) for ``_IMSAT_MIN_STEPS``
        steps.
    """
    per_epoch = steps_per_epoch(n_samples, batch_size, drop_last=True)
    return max(_IMSAT_EPOCHS, -(-_IMSAT_MIN_STEPS // per_epoch))


def imsat_settings(n_samples, n_features, batch_size, *, n_epochs, eps_scale):
    """Resolve IMSAT's ``n_epochs`` and ``eps_scale``.

    Parameters
    ----------
    n_samples, n_features, batch_size : int
    n_epochs : int or "auto"
    eps_scale : float or "auto"

    Returns
    -------
    settings : dict
        ``n_epochs`` and ``eps_scale`` as used.
    """
    if n_epochs == "auto":
        n_epochs = auto_imsat_epochs(n_samples, batch_size)
    if eps_scale == "auto":
        eps_scale = auto_eps_scale(n_features)
    return {"n_epochs": n_epochs, "eps_scale": eps_scale}


#: The manifold step (UMAP of the embedding, then a Gaussian mixture; N2D,
#: and DEC's ``init="manifold"``) from this many samples on: below it the
#: neighbour graph of a small table describes little that the mixture on the
#: embedding does not already see, and UMAP's layout is noise.
#: Measured in ``benchmarks/results/auto_defaults_tabular.md`` and
#: ``auto_defaults_digits.md``.
_MANIFOLD_MIN_SAMPLES = 1000

#: UMAP's neighbours, at most ``n_samples - 1``. 30 rather than N2D's 20:
#: it lifted digits by 0.03 (N2D and DEC, seeds 0-4) and moved the other
#: sets measured by no more than their seeds' spread; 40 cost 0.02 on two
#: of them (``benchmarks/results/tuning/neighbour_count.md``).
_N_NEIGHBORS = 30

#: UMAP's output dimension: N2D's one per cluster, between 2 and umap-learn's
#: advice of about 10 dimensions for clustering.
_UMAP_COMPONENT_RANGE = (2, 10)


#: UMAP's layout epochs. umap-learn's own choice is 500 up to 10 000 samples
#: and 200 above; its layout is single-threaded when seeded and costs about
#: 1.3 s per 100 epochs of 10 000 points here. 200 everywhere loses nothing
#: (``benchmarks/results/tuning/manifold_budget.md``).
_UMAP_EPOCHS = 200


def auto_uses_manifold(n_samples, n_features):
    """Whether ``"auto"`` clusters through the manifold step.

    Parameters
    ----------
    n_samples, n_features : int

    Returns
    -------
    bool
        True from 1 000 samples on.
    """
    return n_samples >= _MANIFOLD_MIN_SAMPLES


def auto_n_neighbors(n_samples):
    """UMAP's ``n_neighbors`` for ``"auto"``: 30, at most ``n_samples - 1``."""
    return int(max(2, min(_N_NEIGHBORS, n_samples - 1)))


def auto_umap_components(n_clusters):
    """UMAP's output dimension for ``"auto"``: ``n_clusters`` within [2, 10]."""
    return _clip(n_clusters, _UMAP_COMPONENT_RANGE)


def manifold_settings(n_samples, n_features, n_clusters, *, manifold, n_neighbors,
                      umap_components):
    """Resolve whether and how the manifold step runs.

    Parameters
    ----------
    n_samples, n_features, n_clusters : int
    manifold : bool or "auto"
    n_neighbors, umap_components : int or "auto"

    Returns
    -------
    settings : dict
        ``manifold``, and with it ``n_neighbors`` (capped at
        ``n_samples - 1``), ``umap_components`` and ``umap_epochs``.
    """
    if manifold == "auto":
        manifold = auto_uses_manifold(n_samples, n_features)
    if not manifold:
        return {"manifold": False}
    if n_neighbors == "auto":
        n_neighbors = auto_n_neighbors(n_samples)
    if umap_components == "auto":
        umap_components = auto_umap_components(n_clusters)
    return {
        "manifold": True,
        "n_neighbors": int(min(n_neighbors, max(2, n_samples - 1))),
        "umap_components": umap_components,
        "umap_epochs": _UMAP_EPOCHS,
    }
