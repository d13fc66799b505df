"""scikit-learn's estimator contract, check by check, for every estimator."""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from test_dac import FAST as FAST_DAC
from test_imsat import FAST as FAST_IMSAT

from deepcluster_sk import (
    AutoencoderKMeans,
    DACClusterer,
    DECClusterer,
    IMSATClusterer,
    N2DClusterer,
)

# Small networks and budgets: the checks fit dozens of times on tiny data,
# and the contract does not depend on the size of the network.
FAST = dict(hidden_dims=(16,), n_components=2, pretrain_epochs=20, batch_size=32)

_PREDICT_PROBA_IS_NOT_A_CLASSIFIER = (
    "The sparse-container check assumes that an estimator with predict_proba "
    "is a classifier and reads tags.classifier_tags, which is None for a "
    "clusterer (AttributeError inside the check). Sparse fit, predict and "
    "predict_proba are tested in "
    "tests/test_common.py::test_sparse_input_matches_dense."
)


def _expected_failed_checks(estimator):
    if hasattr(estimator, "predict_proba"):
        return {
            "check_estimator_sparse_array": _PREDICT_PROBA_IS_NOT_A_CLASSIFIER,
            "check_estimator_sparse_matrix": _PREDICT_PROBA_IS_NOT_A_CLASSIFIER,
        }
    return {}


# The checks fit on tiny, often structureless data with tiny budgets: a fit
# that leaves clusters empty or stops at max_iter warns, as it should.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(
    [
        DECClusterer(**FAST, max_iter=40, update_interval=10, n_init=3),
        AutoencoderKMeans(**FAST, n_init=3),
        IMSATClusterer(n_clusters=3, **FAST_IMSAT),
        DACClusterer(n_clusters=3, **FAST_DAC),
        # The manifold step forced on: the checks' data is below the size
        # from which "auto" uses it.
        N2DClusterer(**FAST, n_init=2, manifold=True),
    ],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
