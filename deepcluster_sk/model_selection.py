"""Choosing the number of clusters for DEC without labels.

Xie et al. (2016) pick ``k`` where the generalisability
``G = L_train / L_validation`` drops sharply, ``L`` being the DEC loss
``KL(P || Q)`` per sample: beyond the right ``k``, the extra clusters fit
the training set but not held-out data. With labels, the NMI curve shows
where adding clusters stops helping.
"""

import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
from sklearn.base import clone
from sklearn.metrics import normalized_mutual_info_score
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, validate_params
from sklearn.utils.validation import check_array

from ._estimators._dec import DECClusterer
from ._estimators._memory import pretrain_cache

__all__ = ["GeneralizabilityCurve", "generalizability_curve"]


@dataclass
class GeneralizabilityCurve:  # numpydoc ignore=PR01
    """The result of :func:`generalizability_curve`, one entry per ``k``.

    Attributes
    ----------
    n_clusters : ndarray of shape (n_k,)
        The numbers of clusters tried, in the order given.
    generalizability : ndarray of shape (n_k,)
        ``G = L_train / L_validation``.
    train_loss : ndarray of shape (n_k,)
        ``L_train``, the DEC loss ``KL(P || Q)`` per sample on the training
        split.
    validation_loss : ndarray of shape (n_k,)
        ``L_validation``, the same on the validation split.
    nmi : ndarray of shape (n_k,) or None
        NMI between the labels and the clusters predicted on all of ``X``;
        None when no labels were given.
    """

    n_clusters: np.ndarray
    generalizability: np.ndarray
    train_loss: np.ndarray
    validation_loss: np.ndarray
    nmi: np.ndarray = None


@validate_params(
    {
        "X": ["array-like", "sparse matrix"],
        "n_clusters_list": ["array-like"],
        "y": ["array-like", None],
        "estimator": [DECClusterer, None],
        "validation_size": [
            Interval(Real, 0, 1, closed="neither"),
            Interval(Integral, 1, None, closed="left"),
        ],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=False,
)
def generalizability_curve(
    X,
    n_clusters_list,
    *,
    y=None,
    estimator=None,
    validation_size=0.1,
    random_state=None,
):
    """Compute DEC's generalisability and NMI for each candidate k.

    For each ``k`` a clone of ``estimator`` with ``n_clusters=k`` is fitted
    on a training split of ``X``. Its DEC loss per sample,
    ``L = KL(P || Q) = -estimator.score``, is measured on the training and
    on the validation split, and ``G = L_train / L_validation`` is
    returned. Plot ``G`` against ``k``: the paper chooses the ``k`` after
    which ``G`` drops sharply. With labels ``y``, the NMI of the clusters
    predicted on all of ``X`` is returned too.

    The autoencoder does not depend on ``k``, so it is pretrained once: the
    fits after the first load it from ``estimator.memory``, or from a
    temporary directory when the estimator caches nothing, and give exactly
    the models they would have given alone.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        The data.
    n_clusters_list : array-like of int
        The numbers of clusters to try, each at least 2 (with one cluster
        the DEC loss is 0 on every split).
    y : array-like of shape (n_samples,), default=None
        Ground-truth labels, used only for the NMI curve.
    estimator : DECClusterer, default=None
        The model to clone for each ``k``; ``None`` uses ``DECClusterer()``
        with its defaults. Its ``memory``, if any, keeps the pretrained
        autoencoder for later calls.
    validation_size : float or int, default=0.1
        The held-out share of ``X`` (a float in (0, 1)) or number of rows.
    random_state : int, RandomState instance or None, default=None
        Seeds the split, and, when not None, every clone's ``random_state``
        (the same seed for every ``k``, so the curves compare like with
        like). When None, the clones keep the estimator's own
        ``random_state``; if that is None too, they share one randomly
        initialised pretrained autoencoder.

    Returns
    -------
    curve : GeneralizabilityCurve
        ``n_clusters``, ``generalizability``, ``train_loss``,
        ``validation_loss`` and ``nmi`` (None without ``y``), one entry per
        ``k``.

    Raises
    ------
    ValueError
        If ``n_clusters_list`` is empty or holds a value below 2, or a split
        has fewer rows than the largest ``k``.

    See Also
    --------
    DECClusterer.score : Minus the DEC loss per sample.

    References
    ----------
    .. [1] J. Xie, R. Girshick, A. Farhadi. "Unsupervised Deep Embedding for
       Clustering Analysis". ICML 2016, section 5.3.

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from deepcluster_sk import DECClusterer
    >>> from deepcluster_sk.model_selection import generalizability_curve
    >>> X, y = make_blobs(300, 5, centers=3, random_state=0)
    >>> dec = DECClusterer(hidden_dims=(16,), n_components=2, pretrain_epochs=50,
    ...                    tol=0.01, n_init=2)
    >>> curve = generalizability_curve(X, [2, 3, 4], y=y, estimator=dec,
    ...                                random_state=0)
    >>> curve.n_clusters
    array([2, 3, 4])
    >>> curve.generalizability.shape
    (3,)
    """
    ks = _check_n_clusters_list(n_clusters_list)
    X = check_array(X, accept_sparse="csr", dtype=np.float32)
    if y is not None:
        y = np.asarray(y)
        if y.shape[0] != X.shape[0]:
            raise ValueError(
                f"y has {y.shape[0]} labels but X has {X.shape[0]} rows."
            )
    rng = check_random_state(random_state)
    X_train, X_val = train_test_split(
        X, test_size=validation_size, random_state=rng.randint(2**31 - 1)
    )
    if min(X_train.shape[0], X_val.shape[0]) < ks.max():
        raise ValueError(
            f"The training split has {X_train.shape[0]} rows and the "
            f"validation split {X_val.shape[0]}; each needs at least "
            f"max(n_clusters_list)={ks.max()}. Use more data or a different "
            "validation_size."
        )
    base = DECClusterer() if estimator is None else estimator
    seed = None if random_state is None else int(rng.randint(2**31 - 1))
    train_loss, val_loss, nmi = [], [], []
    with _pretraining_memory(base.memory) as memory:
        for k in ks:
            model = clone(base).set_params(n_clusters=int(k), memory=memory)
            if seed is not None:
                model.set_params(random_state=seed)
            model.fit(X_train)
            train_loss.append(-model.score(X_train))
            val_loss.append(-model.score(X_val))
            if y is not None:
                nmi.append(normalized_mutual_info_score(y, model.predict(X)))
    train_loss = np.asarray(train_loss)
    val_loss = np.asarray(val_loss)
    return GeneralizabilityCurve(
        n_clusters=ks,
        generalizability=train_loss / val_loss,
        train_loss=train_loss,
        validation_loss=val_loss,
        nmi=None if y is None else np.asarray(nmi),
    )


@contextmanager
def _pretraining_memory(memory):
    """``memory`` if it caches, else a temporary directory for this curve.

    Either way every ``k`` after the first loads the autoencoder pretrained
    for the first, which is what each fit would have trained.
    """
    if pretrain_cache(memory) is not None:
        yield memory
        return
    with tempfile.TemporaryDirectory(prefix="deepcluster_sk-") as directory:
        yield directory


def _check_n_clusters_list(n_clusters_list):
    ks = np.asarray(n_clusters_list)
    if ks.ndim != 1 or ks.size == 0:
        raise ValueError(
            "n_clusters_list must be a non-empty 1-D sequence of integers, got "
            f"{n_clusters_list!r}."
        )
    if not np.issubdtype(ks.dtype, np.integer) or ks.min() < 2:
        raise ValueError(
            "n_clusters_list must hold integers >= 2, got "
            f"{n_clusters_list!r}."
        )
    return ks.astype(np.int64)
