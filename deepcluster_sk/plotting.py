"""Pictures of a clustering: top samples per cluster, t-SNE views, training curves.

The figures of the DEC paper: the samples each cluster is most confident
about, a 2-D view of the embedding, and the losses over training. Needs
matplotlib (the ``plot`` extra: ``pip install deepcluster-sk[plot]``); it is
imported only when a function here is called.
"""

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted

__all__ = ["plot_cluster_samples", "plot_embedding", "plot_history"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "deepcluster_sk.plotting needs matplotlib; install it with "
            "`pip install deepcluster-sk[plot]` (the `plot` extra) or "
            "`pip install matplotlib`."
        ) from exc
    return plt


def plot_cluster_samples(
    estimator, X, image_shape, n_samples=10, *, fig=None, cmap="gray"
):
    """Show, for each cluster, the samples it assigns most confidently.

    One row per cluster: the ``n_samples`` rows of ``X`` with the highest
    soft assignment ``q_ij`` to cluster ``j`` (``estimator.predict_proba``),
    most confident first, drawn as images. This is figure 2 of the DEC
    paper.

    Parameters
    ----------
    estimator : fitted estimator with ``predict_proba``
        For example a fitted :class:`~deepcluster_sk.DECClusterer`.
    X : array-like of shape (n_samples_X, n_features)
        The samples to choose from, e.g. the training data.
    image_shape : tuple of int
        Shape of one image, ``(height, width)`` or ``(height, width, 3)``;
        its product must equal ``n_features``.
    n_samples : int, default=10
        Images per cluster (at most the number of rows of ``X``).
    fig : matplotlib Figure, default=None
        Figure to draw into; a new one when None.
    cmap : str, default="gray"
        Colour map of single-channel images.

    Returns
    -------
    fig : matplotlib Figure
        With ``n_clusters * n_samples`` axes, one image each, the row of
        cluster ``j`` labelled ``j``.

    Raises
    ------
    TypeError
        If the estimator has no ``predict_proba``.
    ValueError
        If ``image_shape`` does not match the number of features, or
        ``n_samples`` is not between 1 and the number of rows.
    """
    if not hasattr(estimator, "predict_proba"):
        raise TypeError(
            f"{type(estimator).__name__} has no predict_proba; "
            "plot_cluster_samples needs soft assignments, e.g. from "
            "DECClusterer."
        )
    check_is_fitted(estimator)
    X = check_array(X, accept_sparse="csr")
    image_shape = tuple(int(d) for d in image_shape)
    if int(np.prod(image_shape)) != X.shape[1]:
        raise ValueError(
            f"image_shape={image_shape} holds {int(np.prod(image_shape))} "
            f"values but X has {X.shape[1]} features."
        )
    if not 1 <= n_samples <= X.shape[0]:
        raise ValueError(
            f"n_samples={n_samples} should be between 1 and the number of "
            f"rows of X, {X.shape[0]}."
        )
    q = estimator.predict_proba(X)
    n_clusters = q.shape[1]
    top = np.argsort(-q, axis=0, kind="stable")[:n_samples].T
    plt = _pyplot()
    if fig is None:
        fig = plt.figure(figsize=(n_samples * 0.8, n_clusters * 0.8))
    axes = fig.subplots(n_clusters, n_samples, squeeze=False)
    for j in range(n_clusters):
        for i, row in enumerate(top[j]):
            image = X[row]
            image = image.toarray() if hasattr(image, "toarray") else image
            ax = axes[j, i]
            ax.imshow(np.asarray(image).reshape(image_shape), cmap=cmap)
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
        axes[j, 0].set_ylabel(str(j), rotation=0, ha="right", va="center")
    fig.subplots_adjust(wspace=0.05, hspace=0.05)
    return fig


def plot_embedding(
    Z,
    labels,
    *,
    ax=None,
    max_samples=5000,
    perplexity=30.0,
    random_state=0,
    title=None,
    cmap="tab10",
    point_size=4,
):
    """Scatter a 2-D t-SNE view of an embedding, coloured by cluster.

    Embeddings with more than two dimensions are reduced with
    :class:`sklearn.manifold.TSNE`; two-dimensional ones are drawn as they
    are.

    Parameters
    ----------
    Z : array-like of shape (n_samples, n_components)
        The embedding, e.g. ``estimator.transform(X)``.
    labels : array-like of shape (n_samples,)
        Cluster (or class) of each sample; sets the colour.
    ax : matplotlib Axes, default=None
        Axes to draw into; a new figure when None.
    max_samples : int or None, default=5000
        At most this many samples, drawn at random with ``random_state``,
        are shown, as t-SNE's memory grows with the square of their number.
        None shows all.
    perplexity : float, default=30.0
        Perplexity of t-SNE; lowered to ``(n_samples - 1) / 3`` for tiny
        inputs.
    random_state : int, RandomState instance or None, default=0
        Seeds the subsample and t-SNE.
    title : str, default=None
        Title of the axes.
    cmap : str, default="tab10"
        Colour map of the clusters.
    point_size : float, default=4
        Marker size.

    Returns
    -------
    ax : matplotlib Axes
        The axes drawn into.
    """
    Z = check_array(Z, ensure_min_samples=2)
    labels = np.asarray(labels)
    if labels.shape != (Z.shape[0],):
        raise ValueError(
            f"labels has shape {labels.shape}; expected ({Z.shape[0]},)."
        )
    rng = check_random_state(random_state)
    if max_samples is not None and Z.shape[0] > max_samples:
        keep = rng.choice(Z.shape[0], max_samples, replace=False)
        Z, labels = Z[keep], labels[keep]
    if Z.shape[1] > 2:
        from sklearn.manifold import TSNE

        perplexity = min(perplexity, (Z.shape[0] - 1) / 3)
        Z = TSNE(
            2, perplexity=perplexity, init="pca", random_state=rng.randint(2**31 - 1)
        ).fit_transform(Z)
    elif Z.shape[1] == 1:
        Z = np.column_stack([Z[:, 0], np.zeros(Z.shape[0])])
    if ax is None:
        _, ax = _pyplot().subplots(figsize=(6, 6))
    ax.scatter(Z[:, 0], Z[:, 1], c=labels, s=point_size, cmap=cmap, linewidths=0)
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title)
    return ax


#: The curves of ``history_`` that :func:`plot_history` draws, with the key
#: of their x axis and the axes labels.
_CURVES = (
    ("pretrain_loss", None, "pretraining epoch", "reconstruction loss"),
    ("kl_loss", "iteration", "self-training iteration", "KL(P||Q) per sample"),
    ("label_change", "iteration", "self-training iteration", "labels changed"),
)


def plot_history(history, *, fig=None, log_loss=True):
    """Training curves of a fitted estimator's ``history_``.

    One axes per curve present in ``history``: the reconstruction loss per
    pretraining epoch (``"pretrain_loss"``), and per target update of
    self-training the DEC loss (``"kl_loss"``) and the fraction of changed
    labels (``"label_change"``), against ``"iteration"``.

    Parameters
    ----------
    history : dict of list or fitted estimator
        A ``history_`` dictionary, or an estimator that has one.
    fig : matplotlib Figure, default=None
        Figure to draw into; a new one when None.
    log_loss : bool, default=True
        Draw the reconstruction loss, which falls by orders of magnitude,
        on a logarithmic y axis.

    Returns
    -------
    fig : matplotlib Figure
        With one axes per non-empty curve, side by side.

    Raises
    ------
    ValueError
        If ``history`` holds none of the curves.
    """
    history = getattr(history, "history_", history)
    curves = [c for c in _CURVES if len(history.get(c[0], ())) > 0]
    if not curves:
        raise ValueError(
            "history holds none of 'pretrain_loss', 'kl_loss' and "
            "'label_change'; pass an estimator's history_."
        )
    plt = _pyplot()
    if fig is None:
        fig = plt.figure(figsize=(4 * len(curves), 3.2), layout="constrained")
    axes = fig.subplots(1, len(curves), squeeze=False)[0]
    for ax, (key, x_key, x_label, y_label) in zip(axes, curves):
        values = np.asarray(history[key], dtype=float)
        x = (
            np.arange(1, values.size + 1)
            if x_key is None
            else np.asarray(history[x_key])
        )
        ax.plot(x, values, marker="." if values.size < 50 else None)
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        if key == "label_change":
            from matplotlib.ticker import PercentFormatter

            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        elif key == "pretrain_loss" and log_loss and np.all(values > 0):
            ax.set_yscale("log")
    return fig
