"""
Training curves
===============

Every fitted estimator keeps its training record in ``history_``.
:func:`~deepcluster_sk.plotting.plot_history` draws it: the reconstruction
loss per pretraining epoch, then, per target update of self-training, the
DEC loss ``KL(P || Q)`` and the fraction of labels that changed. Training
stops when that fraction falls below ``tol``; ``history_["stop_reason"]``
says whether it did (``"converged"``) or ran out of ``max_iter``.

Pass ``verbose=1`` to follow a long fit as it runs (a progress bar per
phase when tqdm is installed).
"""

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits

from deepcluster_sk import DECClusterer
from deepcluster_sk.plotting import plot_history

X, _ = load_digits(return_X_y=True)
X = X / 16.0

dec = DECClusterer(n_clusters=10, random_state=0).fit(X)
print(f"{len(dec.history_['pretrain_loss'])} pretraining epochs, "
      f"{dec.n_iter_} self-training steps, stopped: {dec.history_['stop_reason']}")

fig = plot_history(dec)
fig.suptitle(f"DEC training on digits ({X.shape[0]} samples)")
plt.show()
