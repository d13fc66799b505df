"""cluster_accuracy against its definition and as a GridSearchCV scorer."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.model_selection import GridSearchCV

from deepcluster_sk.metrics import cluster_accuracy, cluster_accuracy_scorer

label_pairs = st.integers(1, 30).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 4), min_size=n, max_size=n),
        st.lists(st.integers(0, 5), min_size=n, max_size=n),
    )
)


def _brute_force_accuracy(labels_true, labels_pred):
    """The definition: the best one-to-one map, tried exhaustively."""
    classes, clusters = np.unique(labels_true), np.unique(labels_pred)
    best = 0
    # Injective maps from the smaller set into the larger one.
    if len(clusters) <= len(classes):
        for image in itertools.permutations(classes, len(clusters)):
            mapping = dict(zip(clusters, image))
            hits = sum(mapping[c] == t for t, c in zip(labels_true, labels_pred))
            best = max(best, hits)
    else:
        for image in itertools.permutations(clusters, len(classes)):
            mapping = dict(zip(image, classes))
            hits = sum(mapping.get(c) == t for t, c in zip(labels_true, labels_pred))
            best = max(best, hits)
    return best / len(labels_true)


@settings(max_examples=60, deadline=None)
@given(labels=label_pairs)
def test_accuracy_equals_the_best_one_to_one_map(labels):
    labels_true, labels_pred = labels
    assert np.isclose(
        cluster_accuracy(labels_true, labels_pred),
        _brute_force_accuracy(labels_true, labels_pred),
    )


@settings(max_examples=60, deadline=None)
@given(labels=label_pairs, data=st.data())
def test_accuracy_ignores_the_names_of_the_clusters(labels, data):
    labels_true, labels_pred = labels
    names = data.draw(st.permutations(list(range(6))))
    renamed = [names[c] + 100 for c in labels_pred]
    assert cluster_accuracy(labels_true, renamed) == cluster_accuracy(
        labels_true, labels_pred
    )


@settings(max_examples=60, deadline=None)
@given(labels=label_pairs)
def test_accuracy_is_within_bounds_and_perfect_on_itself(labels):
    labels_true, labels_pred = labels
    assert 0 < cluster_accuracy(labels_true, labels_pred) <= 1
    assert cluster_accuracy(labels_true, labels_true) == 1.0


def test_more_clusters_than_classes_count_the_extra_ones_as_errors():
    # Cluster 2 has no class left to match: its two samples are errors.
    assert cluster_accuracy([0, 0, 1, 1, 1, 1], [0, 0, 1, 1, 2, 2]) == pytest.approx(4 / 6)


def test_fewer_clusters_than_classes():
    assert cluster_accuracy([0, 1, 2, 2], [5, 5, 7, 7]) == pytest.approx(3 / 4)


def test_string_labels():
    assert cluster_accuracy(["a", "a", "b"], ["x", "x", "y"]) == 1.0


def test_invalid_inputs():
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        cluster_accuracy([0, 1], [0])
    with pytest.raises(ValueError, match="at least one sample"):
        cluster_accuracy([], [])


def test_scorer_selects_the_true_number_of_clusters_in_grid_search():
    X, y = make_blobs(n_samples=300, centers=4, random_state=0)
    search = GridSearchCV(
        KMeans(n_init=5, random_state=0),
        {"n_clusters": [2, 3, 4, 6]},
        scoring=cluster_accuracy_scorer,
        cv=3,
    ).fit(X, y)
    assert search.best_params_ == {"n_clusters": 4}
