"""The training engine and the phases that run on it.

:func:`~._engine.run_phase` is the one training loop of the package: it
owns the mini-batches, the step function (replayed as a CUDA graph where it
can be), the sync points, the divergence monitor and the progress output.
A phase (:class:`~._engine.Phase`) supplies its step, its schedule and its
end-of-period hook: :mod:`._pretraining` (end to end and layer-wise),
:mod:`._self_training` (DEC) and the phases of the estimators that train a
network alone (IMSAT, DAC). Nothing here knows of scikit-learn.
"""
