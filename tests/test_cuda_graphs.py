"""The CUDA-graph step wrapper, exercised on the CPU.

There is no GPU here, so the graph machinery is replaced by a fake that
behaves like the real one where it matters: capturing records the step
without running it, and a replay runs the recorded step on the static input
buffers and writes the static output. A wrapper that forgot to copy new
inputs into the buffers, skipped the step of the capturing call or ran the
step twice would train differently from the eager loop, which the tests
compare against bit for bit. Tests marked for CUDA run the real thing.
"""

import warnings

import numpy as np
import pytest
import torch
from conftest import FAST_DEC
from sklearn.base import clone

import deepcluster_sk._training._cuda_graphs as cg
import deepcluster_sk._training._engine as engine
from deepcluster_sk import (
    AutoencoderKMeans,
    DACClusterer,
    DECClusterer,
    IMSATClusterer,
)
from deepcluster_sk._torch._data import TrainingData
from deepcluster_sk._training._cuda_graphs import (
    GraphedStep,
    allow_tf32,
    cuda_graphed_step,
)
from deepcluster_sk._training._pretraining import EndToEndPhase
from deepcluster_sk._training._sampler import RowSampler
from deepcluster_sk._training._self_training import SelfTrainingPhase
from deepcluster_sk.nn import MLPAutoencoder

BATCH, N_FEATURES, N_CLUSTERS = 16, 6, 3
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")


def small_autoencoder(device):
    generator = torch.Generator().manual_seed(0)
    return MLPAutoencoder(N_FEATURES, (8,), 2, generator=generator).to(device)


def _data_and_sampler(device):
    data = TrainingData(np.zeros((BATCH, N_FEATURES), np.float32), torch.device(device))
    sampler = RowSampler(BATCH, BATCH, torch.Generator(), data.device)
    return data, sampler


def autoencoder_case(device="cpu", **adam):
    """The step of end-to-end pretraining, with Adam's options if given."""
    model = small_autoencoder(device)
    phase = EndToEndPhase(model, *_data_and_sampler(device), 1, 1e-2, "advice")
    if adam:
        phase.optimizer = torch.optim.Adam(model.parameters(), **adam)
    return model, phase.step


def dec_case(device="cpu"):
    """The step of IDEC's self-training."""
    model = small_autoencoder(device)
    generator = torch.Generator().manual_seed(0)
    centers = torch.nn.Parameter(
        torch.randn(N_CLUSTERS, 2, generator=generator).to(device)
    )
    phase = SelfTrainingPhase(
        model, centers, *_data_and_sampler(device), alpha=1.0, max_iter=10,
        update_interval=5, tol=0.0, learning_rate=0.05, momentum=0.9,
        train_encoder=True, reconstruction_weight=0.5, inference_batch_size=64,
        advice="advice",
    )
    trained = torch.nn.Module()
    trained.autoencoder, trained.centers = model, centers
    return trained, phase.step


def batches(sizes, n_inputs, device="cpu"):
    generator = torch.Generator().manual_seed(1)
    out = []
    for size in sizes:
        x = torch.rand(size, N_FEATURES, generator=generator)
        p = torch.softmax(torch.randn(size, N_CLUSTERS, generator=generator), dim=1)
        out.append(tuple(t.to(device) for t in (x, p)[:n_inputs]))
    return out


def make_case(kind):
    """Two identical (model, step) pairs and the number of step inputs."""
    factory, n_inputs = {"autoencoder": (autoencoder_case, 1), "dec": (dec_case, 2)}[
        kind
    ]
    return factory(), factory(), n_inputs


def run(step, inputs):
    return [step(*tensors) for tensors in inputs]


def assert_same_training(model_a, losses_a, model_b, losses_b):
    assert torch.equal(torch.stack(losses_a), torch.stack(losses_b))
    for a, b in zip(model_a.parameters(), model_b.parameters(), strict=True):
        assert torch.equal(a, b)


class FakeGraph:
    """Stands in for a captured CUDA graph on the CPU."""

    def __init__(self, step, static_inputs, static_output):
        self.step, self.static_inputs, self.static_output = (
            step,
            static_inputs,
            static_output,
        )

    def replay(self):
        output = self.step(*self.static_inputs)
        self.static_output.resize_(output.shape).copy_(output)


@pytest.fixture
def fake_cuda(monkeypatch):
    """Replace streams, warm-up and capture by CPU stand-ins; record calls."""
    calls = {"warm_up": [], "capture": []}

    def warm_up(step, tensors, stream):
        calls["warm_up"].append(step)
        return step(*tensors)

    def capture(step, static_inputs, stream):
        calls["capture"].append(step)
        # Like a real capture: record, do not run; the output buffer takes the
        # shape of the loss (a scalar or loss terms) at the first replay.
        graph = FakeGraph(step, static_inputs, torch.empty(0))
        return graph, graph.static_output

    monkeypatch.setattr(cg, "_new_stream", lambda device: object())
    monkeypatch.setattr(cg, "_warm_up", warm_up)
    monkeypatch.setattr(cg, "_capture", capture)
    return calls


@pytest.mark.parametrize("kind", ["autoencoder", "dec"])
def test_on_the_cpu_the_wrapper_is_the_eager_step(kind):
    (model_a, step_a), (model_b, step_b), n_inputs = make_case(kind)
    inputs = batches([BATCH] * 5 + [5], n_inputs)
    graphed = cuda_graphed_step(step_b, inputs[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        losses_b = run(graphed, inputs)
    assert_same_training(model_a, run(step_a, inputs), model_b, losses_b)
    assert graphed.step is step_b
    assert not graphed.active and graphed.n_eager == 6 and graphed.n_replays == 0


@pytest.mark.parametrize("kind", ["autoencoder", "dec"])
def test_graph_path_trains_exactly_like_the_eager_loop(kind, fake_cuda):
    (model_a, step_a), (model_b, step_b), n_inputs = make_case(kind)
    # Full batches, a smaller last batch (eager), then full batches again.
    sizes = [BATCH] * 7 + [5] + [BATCH] * 4
    inputs = batches(sizes, n_inputs)
    graphed = cuda_graphed_step(step_b, inputs[0], enabled=True, warmup_steps=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        losses_b = run(graphed, inputs)
    assert_same_training(model_a, run(step_a, inputs), model_b, losses_b)
    assert graphed.active and graphed.fallback_reason is None
    # Two warm-up calls, then the capturing call and every full batch replay.
    assert graphed.n_replays == 11 - 2 and graphed.n_eager == 2 + 1
    # The very same step function ran on every path.
    assert fake_cuda["warm_up"] == [step_b, step_b] and fake_cuda["capture"] == [step_b]


def test_returned_losses_are_not_overwritten_by_later_replays(fake_cuda):
    (_, step_a), (_, step_b), _ = make_case("autoencoder")
    inputs = batches([BATCH] * 6, 1)
    graphed = cuda_graphed_step(step_b, inputs[0], enabled=True, warmup_steps=1)
    losses = run(graphed, inputs)
    assert len({loss.data_ptr() for loss in losses}) == len(losses)
    assert torch.equal(torch.stack(losses), torch.stack(run(step_a, inputs)))


def test_other_shapes_and_dtypes_run_eagerly(fake_cuda):
    _, (model, step), _ = make_case("autoencoder")
    example = batches([BATCH], 1)[0]
    graphed = cuda_graphed_step(step, example, enabled=True, warmup_steps=1)
    run(graphed, batches([BATCH] * 3, 1))
    assert graphed.active and (graphed.n_eager, graphed.n_replays) == (1, 2)
    graphed(torch.rand(BATCH + 1, N_FEATURES))
    assert (graphed.n_eager, graphed.n_replays) == (2, 2)
    # A float64 batch of the captured shape must not be copied into the
    # float32 buffers and replayed: eagerly, the float32 model refuses it.
    with pytest.raises(RuntimeError):
        graphed(torch.rand(BATCH, N_FEATURES, dtype=torch.float64))
    assert (graphed.n_eager, graphed.n_replays) == (3, 2)
    graphed(torch.rand(BATCH, N_FEATURES))
    assert (graphed.n_eager, graphed.n_replays) == (3, 3)


def test_capture_failure_warns_once_and_training_goes_on(fake_cuda, monkeypatch):
    def failing_capture(step, static_inputs, stream):
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(cg, "_capture", failing_capture)
    (model_a, step_a), (model_b, step_b), _ = make_case("autoencoder")
    inputs = batches([BATCH] * 8, 1)
    graphed = cuda_graphed_step(step_b, inputs[0], enabled=True, warmup_steps=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        losses_b = run(graphed, inputs)
    assert len(caught) == 1
    assert caught[0].category is UserWarning
    message = str(caught[0].message)
    assert (
        "capture failed" in message
        and "not permitted" in message
        and "eager" in message
    )
    assert caught[0].filename == __file__  # points at the caller's line
    assert_same_training(model_a, run(step_a, inputs), model_b, losses_b)
    assert not graphed.active and "capture failed" in graphed.fallback_reason
    assert graphed.n_replays == 0 and graphed.n_eager == 8


def test_warm_up_failure_without_cuda_falls_back_to_eager():
    # No monkeypatching: forcing graphs on where CUDA cannot run them fails
    # for real (no CUDA stream), and the wrapper must cope.
    (model_a, step_a), (model_b, step_b), _ = make_case("dec")
    inputs = batches([BATCH] * 4, 2)
    graphed = cuda_graphed_step(step_b, inputs[0], enabled=True)
    with pytest.warns(UserWarning, match="CUDA graph .* failed") as record:
        losses_b = run(graphed, inputs)
    assert len(record) == 1
    assert_same_training(model_a, run(step_a, inputs), model_b, losses_b)
    assert not graphed.active and graphed.n_eager == 4


def test_disabled_wrapper_never_tries(fake_cuda):
    _, (_, step), _ = make_case("autoencoder")
    inputs = batches([BATCH] * 5, 1)
    graphed = cuda_graphed_step(step, inputs[0], enabled=False)
    run(graphed, inputs)
    assert fake_cuda == {"warm_up": [], "capture": []} and graphed.n_eager == 5


ESTIMATORS = [
    DECClusterer(n_clusters=3, **FAST_DEC),
    DECClusterer(n_clusters=3, **FAST_DEC, reconstruction_weight=1.0),
    AutoencoderKMeans(n_clusters=3, hidden_dims=(16,), pretrain_epochs=5, n_init=2,
                      random_state=0),
    IMSATClusterer(n_clusters=3, hidden_dims=(16,), n_epochs=4, batch_size=50,
                   random_state=0),
    DACClusterer(n_clusters=3, hidden_dims=(16,), steps_per_stage=3,
                 threshold_rate=0.05, batch_size=50, random_state=0),
]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(
    "estimator", ESTIMATORS, ids=["DEC", "IDEC", "AEKMeans", "IMSAT", "DAC"]
)
def test_every_phase_replayed_as_a_graph_trains_like_the_eager_loop(
    estimator, blobs, fake_cuda, monkeypatch
):
    # The engine captures the step of every phase that allows it; here on the
    # CPU with the fake graphs, which replay on the static input buffers. A
    # step that read anything but its inputs and state updated in place (a
    # tensor rebound between periods, noise drawn inside the step) would
    # train differently from the eager fit.
    X, _ = blobs
    eager = clone(estimator).fit(X)

    def always_capture(step, examples, enabled=None, **kwargs):
        return cuda_graphed_step(
            step, examples, enabled=enabled is not False, warmup_steps=2
        )

    monkeypatch.setattr(engine, "cuda_graphed_step", always_capture)
    graphed = clone(estimator).fit(X)
    assert len(fake_cuda["capture"]) >= 1
    np.testing.assert_array_equal(graphed.labels_, eager.labels_)
    np.testing.assert_equal(graphed.history_, eager.history_)
    np.testing.assert_array_equal(graphed.transform(X), eager.transform(X))


@pytest.mark.parametrize(
    "step, examples, kwargs, error, message",
    [
        ("not callable", [torch.zeros(2)], {}, TypeError, "step must be callable"),
        (print, [], {}, ValueError, "at least one tensor"),
        (print, [[0.0, 1.0]], {}, TypeError, "torch.Tensor"),
        (print, [torch.zeros(2)], {"warmup_steps": 0}, ValueError, "warmup_steps=0"),
    ],
)
def test_bad_arguments_raise(step, examples, kwargs, error, message):
    with pytest.raises(error, match=message):
        GraphedStep(step, examples, **kwargs)


def _cuda_matmul_precision():
    return cg._tf32_setting()[1]


def test_allow_tf32_leaves_global_state_alone_on_the_cpu():
    before = _cuda_matmul_precision()
    with allow_tf32(torch.device("cpu")) as changed:
        assert changed is False
        assert _cuda_matmul_precision() == before
    assert _cuda_matmul_precision() == before


def test_allow_tf32_on_cuda_sets_and_restores_even_on_error():
    # Setting the flag needs no GPU, so this runs anywhere.
    before = _cuda_matmul_precision()
    with pytest.raises(KeyError):
        with allow_tf32("cuda") as changed:
            assert changed is True
            assert _cuda_matmul_precision() in ("tf32", True)
            raise KeyError("inside")
    assert _cuda_matmul_precision() == before


@needs_cuda
def test_real_graph_matches_eager_on_cuda():
    lr = torch.tensor(1e-2, device="cuda")
    model_a, step_a = autoencoder_case("cuda", lr=lr.clone(), capturable=True)
    model_b, step_b = autoencoder_case("cuda", lr=lr.clone(), capturable=True)
    inputs = batches([256] * 12 + [40] + [256] * 3, 1, "cuda")
    graphed = cuda_graphed_step(step_b, inputs[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the optimizer's uncaptured note is silenced
        losses_b = run(graphed, inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        losses_a = run(step_a, inputs)
    assert (
        graphed.active and graphed.n_replays == 12 and graphed.fallback_reason is None
    )
    torch.testing.assert_close(torch.stack(losses_b), torch.stack(losses_a))
    for a, b in zip(model_a.parameters(), model_b.parameters(), strict=True):
        torch.testing.assert_close(a, b)


@needs_cuda
def test_real_capture_of_a_non_capturable_optimizer_falls_back():
    model, step = autoencoder_case("cuda", lr=1e-2)  # Adam(capturable=False)
    inputs = batches([256] * 6, 1, "cuda")
    graphed = cuda_graphed_step(step, inputs[0])
    with pytest.warns(UserWarning, match="capture failed"):
        losses = run(graphed, inputs)
    assert not graphed.active and len(losses) == 6
    assert torch.isfinite(torch.stack(losses)).all()
