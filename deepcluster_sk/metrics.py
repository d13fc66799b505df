"""Clustering metrics that scikit-learn does not provide."""

from scipy.optimize import linear_sum_assignment
from sklearn.metrics import make_scorer
from sklearn.metrics.cluster import contingency_matrix
from sklearn.utils.validation import check_consistent_length, column_or_1d

__all__ = ["cluster_accuracy", "cluster_accuracy_scorer"]


def cluster_accuracy(labels_true, labels_pred):
    """Unsupervised clustering accuracy under the best one-to-one label map.

    ``ACC = max_m (1/n) sum_i 1{labels_true[i] == m(labels_pred[i])}`` over
    one-to-one maps ``m`` from clusters to classes, found with the Hungarian
    algorithm on the contingency table. When there are more clusters than
    classes the extra clusters match no class and their samples count as
    errors; with fewer clusters, some classes stay unmatched.

    Parameters
    ----------
    labels_true : array-like of shape (n_samples,)
        Ground-truth class labels.
    labels_pred : array-like of shape (n_samples,)
        Cluster labels to evaluate; any hashable values.

    Returns
    -------
    accuracy : float
        In [0, 1]; 1 for a perfect clustering up to a relabelling.

    Examples
    --------
    >>> from deepcluster_sk.metrics import cluster_accuracy
    >>> cluster_accuracy([0, 0, 1, 1, 2], [1, 1, 0, 0, 0])
    0.8
    """
    labels_true = column_or_1d(labels_true)
    labels_pred = column_or_1d(labels_pred)
    check_consistent_length(labels_true, labels_pred)
    if labels_true.size == 0:
        raise ValueError("cluster_accuracy needs at least one sample.")
    table = contingency_matrix(labels_true, labels_pred)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / labels_true.size)


cluster_accuracy_scorer = make_scorer(cluster_accuracy)
"""Scorer for ``GridSearchCV(scoring=cluster_accuracy_scorer)`` with labels."""
