"""Torch building blocks that know nothing of scikit-learn.

Tensors in, tensors out: the training data on its device, the device
parameter, seeded initialisation, the work of a forward pass, distances,
k-means, and the formulas of DEC and of the information-maximising
estimators. The training loops (:mod:`deepcluster_sk._training`) and the
estimators (:mod:`deepcluster_sk._estimators`) build on them.
"""
