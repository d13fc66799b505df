"""DEC's self-training with its target smoothed over the embedding's kNN graph.

Issue 20 names "targets smoothed over the kNN graph" as one way for DEC to
use the neighbourhood. This study patches
:class:`deepcluster_sk._training._self_training.SelfTrainingPhase` so that
every target update replaces ``P`` by

    (1 - beta) * P_i + beta * mean of P_j over the k nearest neighbours j of i,

the neighbours found once, exactly, in the pretrained encoder's embedding
(before the first self-training step). ``beta=0`` is the package's DEC.
With ``init="manifold"`` the first three periods still train towards the
mixture's posteriors (``_dec._MANIFOLD_TARGET_UPDATES``), which are not
smoothed; the smoothing acts on DEC's own targets after them. One JSON line
per fit goes to stdout.

Run, e.g.::

    BETA=0.8 K=10 python benchmarks/tuning/smoothed_target.py dec '{}' b0.8 \\
        digits,digits_pca20 0 1 2 3 4 >> benchmarks/results/tuning/smoothed_target.jsonl
"""

import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from estimator_variants import fits  # noqa: E402

from deepcluster_sk._torch._data import shard_outputs  # noqa: E402
from deepcluster_sk._torch._neighbours import nearest_neighbours  # noqa: E402
from deepcluster_sk._training import _self_training  # noqa: E402

BETA = float(os.environ.get("BETA", "0.5"))
K = int(os.environ.get("K", "10"))
_update_target = _self_training.SelfTrainingPhase._update_target


def smoothed_update_target(phase):
    """The phase's own target update, then ``P`` averaged with its neighbours'."""
    if BETA > 0 and not hasattr(phase, "_knn"):
        with torch.no_grad():
            phase.encoder.eval()
            z = torch.cat(list(shard_outputs(phase.encoder, phase.data, 4096))).float()
            _, index = nearest_neighbours(z, z, K + 1)
            phase._knn = index[:, 1:]  # without the point itself
    end = _update_target(phase)
    if BETA > 0 and phase.target is not None:
        target = phase.target
        phase.target = (1 - BETA) * target + BETA * target[phase._knn].mean(dim=1)
    return end


def main(argv):
    _self_training.SelfTrainingPhase._update_target = smoothed_update_target
    estimator, params, tag, names, *seeds = argv
    for name, seed, row in fits(estimator, json.loads(params), names, seeds):
        print(json.dumps(dict(
            tag=tag, beta=BETA, k=K, data=name, seed=seed, acc=row["acc"],
            nmi=row["nmi"], s=row["seconds"], n_iter=row["settings"].get("n_iter"),
        )), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
