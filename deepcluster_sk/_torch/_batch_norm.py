"""Forward passes that leave the running statistics of normalisation alone."""

import contextlib


def _tracking_layers(module):
    """The submodules that update running statistics in a training-mode pass."""
    return [
        layer
        for layer in module.modules()
        if layer.training
        and getattr(layer, "track_running_stats", False)
        and getattr(layer, "running_mean", None) is not None
    ]


@contextlib.contextmanager
def batch_statistics_only(module):
    """Inside the block, normalisation layers use each batch's own statistics
    and leave their running statistics (and batch counts) as they are.

    For forward passes on perturbed copies of a batch (IMSAT's VAT and RPT):
    in training mode they normalise as the clean pass does, but the running
    averages that prediction uses stay those of the clean data. Works for
    any module: every submodule with running statistics (batch
    normalisation of any dimension, instance normalisation with
    ``track_running_stats``) stops tracking them for the block.

    Parameters
    ----------
    module : torch.nn.Module
    """
    layers = _tracking_layers(module)
    for layer in layers:
        layer.track_running_stats = False
    try:
        yield
    finally:
        for layer in layers:
            layer.track_running_stats = True
