"""Shared fixtures: small data sets and fast estimator settings."""

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_blobs

#: A small network and budget: the behaviour under test does not depend on
#: the size of the network, and the suite must stay fast on 2 CPU cores.
FAST_DEC = dict(
    hidden_dims=(32,),
    n_components=4,
    pretrain_epochs=15,
    max_iter=60,
    update_interval=20,
    batch_size=64,
    n_init=3,
    random_state=0,
)


@pytest.fixture(scope="session")
def blobs():
    X, y = make_blobs(n_samples=300, centers=3, n_features=6, random_state=0)
    return X.astype(np.float64), y


@pytest.fixture(scope="session")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y
