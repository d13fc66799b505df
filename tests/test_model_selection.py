"""Choosing k with DEC's generalisability and NMI curves."""

import warnings

import numpy as np
import pytest
from conftest import FAST_DEC
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning

from deepcluster_sk import DECClusterer
from deepcluster_sk.model_selection import (
    GeneralizabilityCurve,
    generalizability_curve,
)

TINY = DECClusterer(**FAST_DEC)


@pytest.fixture(scope="module")
def separated_blobs():
    X, y = make_blobs(240, 6, centers=3, cluster_std=0.5, random_state=0)
    return (X - X.mean(0)) / X.std(0), y


@pytest.fixture(scope="module")
def curve(separated_blobs):
    X, y = separated_blobs
    # Five clusters on three blobs leave some empty, and the tiny budget stops
    # self-training early; both warn, as they should, and do not matter here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return generalizability_curve(
            X, [2, 3, 5], y=y, estimator=TINY, validation_size=0.25, random_state=0
        )


def test_one_finite_entry_per_k(curve):
    assert isinstance(curve, GeneralizabilityCurve)
    np.testing.assert_array_equal(curve.n_clusters, [2, 3, 5])
    for values in (curve.generalizability, curve.train_loss, curve.validation_loss):
        assert values.shape == (3,)
        assert np.isfinite(values).all()
    assert (curve.train_loss > 0).all() and (curve.validation_loss > 0).all()
    np.testing.assert_allclose(
        curve.generalizability, curve.train_loss / curve.validation_loss
    )


def test_nmi_peaks_at_the_true_number_of_clusters(curve):
    assert curve.nmi.shape == (3,)
    assert curve.nmi[1] > 0.9
    assert curve.nmi[1] > curve.nmi[0]


def test_losses_are_minus_the_estimators_score(separated_blobs, curve):
    # Same seed for every k: refitting k=3 alone reproduces its entries.
    X, _ = separated_blobs
    again = generalizability_curve(
        X, [3], estimator=TINY, validation_size=0.25, random_state=0
    )
    assert again.nmi is None
    assert again.train_loss[0] == pytest.approx(curve.train_loss[1], rel=1e-5)
    assert again.validation_loss[0] == pytest.approx(
        curve.validation_loss[1], rel=1e-5
    )


@pytest.mark.parametrize(
    "ks, match",
    [([], "non-empty"), ([1, 3], ">= 2"), ([2.5], "integers"), ([[2, 3]], "1-D")],
)
def test_bad_n_clusters_list(separated_blobs, ks, match):
    X, _ = separated_blobs
    with pytest.raises(ValueError, match=match):
        generalizability_curve(X, ks, estimator=TINY)


def test_splits_too_small_for_k(separated_blobs):
    X, _ = separated_blobs
    with pytest.raises(ValueError, match="validation split"):
        generalizability_curve(X, [2, 30], estimator=TINY, validation_size=20)


def test_invalid_parameters_are_rejected(separated_blobs):
    X, y = separated_blobs
    with pytest.raises(ValueError, match="validation_size"):
        generalizability_curve(X, [2], validation_size=1.5)
    with pytest.raises(ValueError, match="estimator"):
        generalizability_curve(X, [2], estimator="dec")
    with pytest.raises(ValueError, match="labels"):
        generalizability_curve(X, [2], y=y[:-1], estimator=TINY)
