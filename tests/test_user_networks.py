"""Networks of the user's: a class with prefixed parameters, an instance, convnets.

Every estimator takes its module as a class (built at every fit with the
``autoencoder__*`` or ``network__*`` parameters), or as an instance
(deep-copied, never changed); the module is checked on two rows before
training, and a broken contract is a clear error that leaves nothing fitted.
Clone, GridSearchCV over a routed parameter and pickling keep working.
"""

import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from torch import nn

import deepcluster_sk._estimators._base as base_module
from deepcluster_sk import AutoencoderKMeans, DACClusterer, DECClusterer, IMSATClusterer
from deepcluster_sk._torch._work import WorkCounter
from deepcluster_sk.metrics import cluster_accuracy
from deepcluster_sk.nn import ConvAutoencoder, MLPAutoencoder


class SmallAutoencoder(nn.Module):
    """A user's autoencoder class; ``width`` is its own parameter."""

    def __init__(self, input_shape, n_components, width=16):
        super().__init__()
        (n_features,) = input_shape
        self.width = width
        self.encoder = nn.Sequential(
            nn.Linear(n_features, width), nn.ReLU(), nn.Linear(width, n_components)
        )
        self.decoder = nn.Sequential(
            nn.Linear(n_components, width), nn.ReLU(), nn.Linear(width, n_features)
        )


class SmallNetwork(nn.Module):
    """A user's network class for IMSAT and DAC: logits of ``n_clusters``."""

    def __init__(self, input_shape, n_clusters, width=16):
        super().__init__()
        (n_features,) = input_shape
        self.width = width
        self.layers = nn.Sequential(
            nn.Linear(n_features, width), nn.BatchNorm1d(width), nn.ReLU(),
            nn.Linear(width, n_clusters), nn.BatchNorm1d(n_clusters),
        )

    def forward(self, x):
        return self.layers(x)


class SmallConvNet(nn.Module):
    """A convolutional network on 8 x 8 images for IMSAT and DAC."""

    def __init__(self, n_clusters, channels=16):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(channels, 2 * channels, 3, padding=1),
            nn.BatchNorm2d(2 * channels), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(8 * channels, n_clusters),
            nn.BatchNorm1d(n_clusters),
        )

    def forward(self, x):
        return self.layers(x)


AUTOENCODER = dict(n_components=3, pretrain_epochs=8, batch_size=32, n_init=2,
                   random_state=0)
NETWORK = dict(batch_size=50, random_state=0)

#: (estimator, the module parameter, the user class) for every estimator.
CASES = {
    "DECClusterer": (
        DECClusterer(3, **AUTOENCODER, max_iter=40, update_interval=10),
        "autoencoder", SmallAutoencoder,
    ),
    "AutoencoderKMeans": (
        AutoencoderKMeans(3, **AUTOENCODER), "autoencoder", SmallAutoencoder,
    ),
    "IMSATClusterer": (
        IMSATClusterer(3, **NETWORK, n_epochs=6), "network", SmallNetwork,
    ),
    "DACClusterer": (
        DACClusterer(3, **NETWORK, steps_per_stage=4, threshold_rate=0.05),
        "network", SmallNetwork,
    ),
}
each_estimator = pytest.mark.parametrize("name", list(CASES))


def _case(name, **params):
    estimator, parameter, cls = CASES[name]
    return clone(estimator).set_params(**params), parameter, cls


def _module(model, parameter):
    return getattr(model, f"{parameter}_")


def _fitted_attributes(model):
    return [k for k in vars(model) if k.endswith("_") and not k.startswith("__")]


def _fit(model, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X)


# -- a class, its parameters, an instance ----------------------------------------


@each_estimator
def test_a_class_is_built_with_its_prefixed_parameters(name, blobs):
    X, y = blobs
    model, parameter, cls = _case(name)
    model.set_params(**{parameter: cls, f"{parameter}__width": 12})
    assert model.get_params()[f"{parameter}__width"] == 12
    _fit(model, X)
    module = _module(model, parameter)
    assert type(module) is cls and module.width == 12
    assert not hasattr(model, "hidden_dims_")  # the default network's setting
    assert cluster_accuracy(y, model.labels_) > 0.9
    # clone keeps the routed parameter, set_params changes it.
    copy = clone(model)
    assert copy.get_params()[f"{parameter}__width"] == 12
    copy.set_params(**{f"{parameter}__width": 5})
    assert _module(_fit(copy, X), parameter).width == 5
    assert repr(model).count(f"{parameter}__width=12") == 1


@each_estimator
def test_an_instance_is_copied_at_every_fit_and_never_changed(name, blobs):
    X, _ = blobs
    model, parameter, cls = _case(name)
    torch.manual_seed(0)
    instance = cls((X.shape[1],), 3)
    before = {k: v.clone() for k, v in instance.state_dict().items()}
    model.set_params(**{parameter: instance})
    first = _fit(clone(model), X)
    second = _fit(clone(model), X)
    assert _module(first, parameter) is not instance
    for key, value in instance.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert all(p.grad is None for p in instance.parameters())
    np.testing.assert_array_equal(first.labels_, second.labels_)


@each_estimator
def test_a_class_that_draws_from_the_global_rng_is_seeded_by_random_state(
    name, blobs
):
    X, _ = blobs
    model, parameter, cls = _case(name)
    model.set_params(**{parameter: cls})
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = _fit(clone(model), X)
    assert torch.equal(torch.rand(3), expected)
    b = _fit(clone(model), X)
    c = _fit(clone(model).set_params(random_state=1), X)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    assert not np.allclose(a.transform(X), c.transform(X))


class CatchAllNetwork(SmallNetwork):
    """Takes what it names; a ``**options`` catch-all gets only what is routed."""

    def __init__(self, input_shape, n_clusters, **options):
        super().__init__(input_shape, n_clusters)
        self.options = options


def test_a_catch_all_gets_only_the_routed_parameters(blobs):
    X, _ = blobs
    model = _fit(clone(CASES["IMSATClusterer"][0]).set_params(network=CatchAllNetwork), X)
    assert model.network_.options == {}
    model.set_params(network__scale=2.0)
    assert _fit(model, X).network_.options == {"scale": 2.0}


@pytest.mark.parametrize("name", ["DECClusterer", "AutoencoderKMeans"])
def test_the_package_class_given_explicitly_trains_like_the_default(name, blobs):
    X, _ = blobs
    model, _, _ = _case(name, hidden_dims=(16,))
    default = _fit(clone(model), X)
    explicit = clone(model).set_params(
        autoencoder=MLPAutoencoder, autoencoder__hidden_dims=(16,)
    )
    np.testing.assert_array_equal(_fit(explicit, X).labels_, default.labels_)


@each_estimator
def test_pickling_a_model_with_a_user_network(name, blobs, tmp_path):
    X, _ = blobs
    model, parameter, cls = _case(name)
    model.set_params(**{parameter: cls, f"{parameter}__width": 8})
    _fit(model, X)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict(X), model.predict(X))
    np.testing.assert_array_equal(restored.transform(X), model.transform(X))
    assert restored.get_params()[f"{parameter}__width"] == 8


@pytest.mark.parametrize(
    "estimator, grid",
    [
        (CASES["DECClusterer"][0], {"autoencoder__width": [4, 12]}),
        (CASES["IMSATClusterer"][0], {"network__width": [4, 12]}),
    ],
    ids=["DEC", "IMSAT"],
)
def test_grid_search_over_a_routed_parameter(estimator, grid, blobs):
    X, _ = blobs
    parameter = next(iter(grid)).split("__")[0]
    cls = SmallAutoencoder if parameter == "autoencoder" else SmallNetwork
    model = clone(estimator).set_params(**{parameter: cls})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = GridSearchCV(model, grid, cv=2).fit(X)
    key = next(iter(grid))
    assert search.best_params_[key] in grid[key]
    assert list(search.cv_results_[f"param_{key}"]) == grid[key]
    assert _module(search.best_estimator_, parameter).width == search.best_params_[key]


# -- images -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_digits(digits):
    X, y = digits
    return X[:600].astype(np.float32), y[:600]


def _conv_autoencoder_kmeans(**params):
    return AutoencoderKMeans(
        10, autoencoder=ConvAutoencoder, autoencoder__channels=(16, 32),
        autoencoder__kernel_sizes=(3, 3), pretrain_epochs=30, random_state=0,
        **params,
    )


@pytest.fixture(scope="module")
def conv_on_rows(small_digits):
    return _conv_autoencoder_kmeans().fit(small_digits[0])


def test_a_convolutional_autoencoder_clusters_digits(small_digits, conv_on_rows):
    X, y = small_digits
    model = conv_on_rows
    assert model.autoencoder_.image_shape == (1, 8, 8)
    assert model.transform(X).shape == (600, 10)
    # Measured: ACC 0.762 in about 4 s on 2 cores, where k-means on the pixels
    # of these 600 digits gets 0.778. A bar that says it learned.
    assert cluster_accuracy(y, model.labels_) > 0.65


def test_images_as_arrays_train_the_model_of_their_flat_rows(small_digits, conv_on_rows):
    X, _ = small_digits
    images = X.reshape(-1, 1, 8, 8)
    model = _conv_autoencoder_kmeans().fit(images)
    np.testing.assert_array_equal(model.labels_, conv_on_rows.labels_)
    np.testing.assert_array_equal(model.transform(images), conv_on_rows.transform(X))
    with pytest.raises(ValueError, match=r"samples of shape \(1, 4, 16\)"):
        model.predict(images.reshape(-1, 1, 4, 16))


def test_dec_refines_a_convolutional_autoencoder(small_digits, conv_on_rows):
    X, y = small_digits
    model = DECClusterer(
        10, autoencoder=ConvAutoencoder, autoencoder__channels=(16, 32),
        autoencoder__kernel_sizes=(3, 3), pretrain_epochs=30, max_iter=400,
        update_interval=40, random_state=0,
    )
    _fit(model, X)
    assert model.cluster_centers_.shape == (10, 10)
    # Self-training moved the convolutional encoder (measured: ACC 0.740).
    assert not np.allclose(model.transform(X), conv_on_rows.transform(X))
    assert cluster_accuracy(y, model.labels_) > 0.65


@pytest.mark.parametrize("Estimator, params", [
    (IMSATClusterer, dict(n_epochs=15, eps_scale=1.0)),
    (DACClusterer, dict(steps_per_stage=5)),
], ids=["IMSAT", "DAC"])
def test_a_small_convnet_clusters_digit_images(small_digits, Estimator, params):
    X, y = small_digits
    images = X.reshape(-1, 1, 8, 8)
    model = Estimator(10, network=SmallConvNet, network__channels=8, batch_size=100,
                      random_state=0, **params)
    _fit(model, images)
    assert model.predict_proba(images).shape == (600, 10)
    # Measured: ACC 0.573 (IMSAT, 15 epochs) and 0.742 (DAC) on these 600
    # digits, each in about a second.
    assert cluster_accuracy(y, model.labels_) > 0.45


def test_the_precision_rule_counts_the_measured_work_of_the_network(
    small_digits, monkeypatch
):
    X, _ = small_digits
    images = X.reshape(-1, 1, 8, 8)
    seen = []
    real = base_module.resolve_precision

    def recording(precision, device, work):
        seen.append(work)
        return real(precision, device, work)

    monkeypatch.setattr(base_module, "resolve_precision", recording)
    model = IMSATClusterer(10, network=SmallConvNet, network__channels=4,
                           batch_size=100, n_epochs=1, random_state=0)
    _fit(model, images)
    network = SmallConvNet(10, channels=4).eval()
    with WorkCounter(network) as counter, torch.no_grad():
        network(torch.zeros(1, 1, 8, 8))
    # Three forward passes per VAT step, of 100 images each.
    assert seen == [3 * 100 * counter.multiply_adds]


# -- broken contracts -------------------------------------------------------------


class NoDecoder(nn.Module):
    def __init__(self, input_shape, n_components):
        super().__init__()
        self.encoder = nn.Linear(input_shape[0], n_components)


class FlatEncoder(SmallAutoencoder):
    """Its encoder returns one value per sample, not an embedding."""

    def __init__(self, input_shape, n_components):
        super().__init__(input_shape, n_components)
        self.encoder = nn.Sequential(self.encoder, nn.Flatten(0))


class IgnoresItsWidth(SmallAutoencoder):
    """Takes n_components but embeds in 5 dimensions."""

    def __init__(self, input_shape, n_components):
        super().__init__(input_shape, 5)


class ShortDecoder(SmallAutoencoder):
    def __init__(self, input_shape, n_components):
        super().__init__(input_shape, n_components)
        self.decoder[-1] = nn.Linear(16, input_shape[0] - 1)


class Broken(SmallAutoencoder):
    def __init__(self, input_shape, n_components):
        super().__init__((input_shape[0] + 1,), n_components)


class TupleNetwork(SmallNetwork):
    def forward(self, x):
        return self.layers(x), None


class WrongClusters(SmallNetwork):
    def __init__(self, input_shape, n_clusters):
        super().__init__(input_shape, n_clusters + 1)


class NotAModule:
    def __init__(self, input_shape, n_clusters):
        pass


def _builds_a_dict(input_shape, n_clusters):
    return {}


BROKEN = [
    ("DECClusterer", {"autoencoder": NoDecoder}, ValueError,
     r"^autoencoder=NoDecoder has no decoder submodule: an autoencoder needs"),
    ("AutoencoderKMeans", {"autoencoder": FlatEncoder}, ValueError,
     r"^autoencoder=FlatEncoder: its encoder, on a batch of shape \(2, 6\), returned "
     r"\(6,\); expected a floating-point tensor of shape \(2, 3\)\.$"),
    ("DECClusterer", {"autoencoder": IgnoresItsWidth}, ValueError,
     r"returned \(2, 5\); expected a floating-point tensor of shape \(2, 3\)"),
    ("AutoencoderKMeans", {"autoencoder": ShortDecoder}, ValueError,
     r"^autoencoder=ShortDecoder: its decoder, on an embedding of shape \(2, 3\), "
     r"returned \(2, 5\); expected a floating-point tensor of shape \(2, 6\), the "
     r"batch's\.$"),
    ("DECClusterer", {"autoencoder": Broken}, ValueError,
     r"^autoencoder=Broken failed on a batch of shape \(2, 6\) \(encoder\): "
     r"RuntimeError: "),
    ("IMSATClusterer", {"network": TupleNetwork}, ValueError,
     r"^network=TupleNetwork: on a batch of shape \(2, 6\) it returned tuple; "
     r"expected a floating-point tensor of shape \(2, n_clusters\) = \(2, 3\)\.$"),
    ("DACClusterer", {"network": WrongClusters}, ValueError,
     r"it returned \(2, 4\); expected .* \(2, n_clusters\) = \(2, 3\)"),
    ("IMSATClusterer", {"network": SmallNetwork, "network__depth": 3}, ValueError,
     r"^network=SmallNetwork could not be built with input_shape=\(6,\), "
     r"n_clusters=3, depth=3: .*depth"),
    ("DECClusterer", {"autoencoder__width": 3}, ValueError,
     r"^autoencoder__\* parameters \(width\) configure a class given as "
     r"autoencoder; with autoencoder=None the estimator builds its default "
     r"MLPAutoencoder"),
    ("DACClusterer", {"network": SmallNetwork((6,), 3), "network__width": 3},
     ValueError, r"network is an instance of SmallNetwork, which is used as it is"),
    ("DECClusterer", {"autoencoder": NotAModule}, TypeError,
     r"^autoencoder must be None, a torch.nn.Module subclass or an instance"),
    ("IMSATClusterer", {"network": "mlp"}, ValueError, r"'network' parameter"),
    ("DACClusterer", {"network": _builds_a_dict}, ValueError, r"'network' parameter"),
    ("AutoencoderKMeans", {"autoencoder_channels": 3}, ValueError,
     r"^AutoencoderKMeans got unexpected parameter\(s\) 'autoencoder_channels'; "
     r"parameters of the autoencoder class are given as autoencoder__<name>\.$"),
]


@pytest.mark.parametrize(
    "name, params, error, match", BROKEN,
    ids=[f"{name}-{'-'.join(map(str, params))}" for name, params, _, _ in BROKEN],
)
def test_a_broken_contract_is_a_clear_error_before_training(
    name, params, error, match, blobs, monkeypatch
):
    X, _ = blobs
    good, _, _ = _case(name)
    _fit(good, X)
    model = type(good)(**{**good.get_params(), **params})
    # A model fitted before: the failed fit must remove what it had.
    for attribute in _fitted_attributes(good):
        setattr(model, attribute, getattr(good, attribute))
    # Nothing trains: the error comes from the two-row check, not a phase.
    monkeypatch.setattr(type(model), "_train", _must_not_train)
    with pytest.raises(error, match=match):
        model.fit(X)
    assert not _fitted_attributes(model)


def _must_not_train(self, fit):
    raise AssertionError("training started despite a broken network")


def test_the_check_leaves_batch_norm_statistics_and_modes_alone(blobs):
    from deepcluster_sk._estimators._modules import check_network

    network = SmallNetwork((6,), 3).train()
    network.layers[1].eval()  # a frozen layer of the user's stays frozen
    before = network.layers[1].running_mean.clone()
    check_network(network, torch.randn(2, 6), 3)
    assert network.training and not network.layers[1].training
    assert torch.equal(network.layers[1].running_mean, before)
    assert int(network.layers[4].num_batches_tracked) == 0
