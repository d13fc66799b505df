"""The estimators: the shared ``fit`` template, its two families, the four.

:mod:`._base` holds the ``fit`` of every estimator and :mod:`._parameters`
the declaration of their parameters; :mod:`._autoencoder` and
:mod:`._discriminative` fill in its hooks for the two families;
:mod:`._modules` builds and checks the user's networks and
:mod:`._memory` caches pretrained autoencoders. Each estimator is one
module: :mod:`._dec`, :mod:`._ae_kmeans`, :mod:`._imsat`, :mod:`._dac`.
"""
