"""Exceptions raised by the estimators of the package.

Warnings are scikit-learn's own: a fit that uses fewer clusters than
``n_clusters``, or self-training stopped by ``max_iter`` before its labels
settled, warns with :class:`sklearn.exceptions.ConvergenceWarning`.
"""

__all__ = ["TrainingDivergedError"]


class TrainingDivergedError(ValueError):
    """A training phase diverged: its loss or its weights ran away.

    Raised by ``fit`` when a loss turns NaN or infinite, when a
    reconstruction loss grows more than 10 000 times over its value at the
    first mini-batch, or when the norm of the trained weights grows more
    than 10 000 times over its value at the start of the phase. The message
    names the phase, the epoch or iteration, the value that ran away and the
    parameter to change, usually the learning rate of that phase. The
    estimator is left unfitted, as after any failed fit.

    A subclass of :class:`ValueError`: the settings do not suit the data.

    Examples
    --------
    >>> import numpy as np
    >>> from deepcluster_sk import AutoencoderKMeans
    >>> from deepcluster_sk.exceptions import TrainingDivergedError
    >>> X = np.random.RandomState(0).normal(size=(60, 4))
    >>> model = AutoencoderKMeans(n_clusters=2, hidden_dims=(8,),
    ...                           pretrain_epochs=3, pretrain_learning_rate=1e6,
    ...                           random_state=0)
    >>> try:
    ...     model.fit(X)
    ... except TrainingDivergedError as error:
    ...     print("lower pretrain_learning_rate" in str(error))
    True
    """
