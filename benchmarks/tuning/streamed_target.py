"""DEC's target kept in memory against recomputed per batch: peak memory and time.

``SelfTrainingPhase`` keeps ``P`` (``n_samples x n_clusters`` float32) up to
``STORED_TARGET_BYTES`` and above it recomputes each batch's rows of ``P``
from a frozen copy of the encoder and the soft cluster frequencies. This
fits the same DEC both ways, each in a fresh process, on 1 000 000 rows of
blobs in 32 dimensions with 50 clusters (``P`` = 191 MiB), and reports the
fit's seconds and the peak resident memory of the fit above the process's
memory before it (VmHWM, reset through ``/proc/self/clear_refs``). Usage::

    python benchmarks/tuning/streamed_target.py

Writes ``benchmarks/results/tuning/streamed_target.md``.
"""

import json
import subprocess
import sys
import time
from pathlib import Path

_CASE = """
import json, sys, time
import numpy as np
from sklearn.datasets import make_blobs
import deepcluster_sk._training._self_training as self_training
from deepcluster_sk import DECClusterer

if sys.argv[1] == "streamed":
    self_training.STORED_TARGET_BYTES = 0
else:
    self_training.STORED_TARGET_BYTES = 2**40
X, _ = make_blobs(1_000_000, 32, centers=50, cluster_std=3.0, random_state=0)
X = X.astype(np.float32)
del _
model = DECClusterer(n_clusters=50, init="kmeans", pretrain_epochs=1, max_iter=3000,
                     update_interval=500, tol=0.0, random_state=0)
def status(name):
    line = [l for l in open("/proc/self/status") if l.startswith(name)][0]
    return int(line.split()[1]) / 1024
before = status("VmRSS")
with open("/proc/self/clear_refs", "w") as file:
    file.write("5")  # resets VmHWM to the current RSS
start = time.perf_counter()
model.fit(X)
seconds = time.perf_counter() - start
print(json.dumps({"mode": sys.argv[1], "seconds": seconds,
                  "peak_mib": status("VmHWM") - before,
                  "labels_checksum": int(model.labels_.sum()),
                  "kl_last": model.history_["kl_loss"][-1]}))
"""


def main():
    runs = []
    for mode in ("stored", "streamed"):
        done = subprocess.run([sys.executable, "-c", _CASE, mode], capture_output=True,
                              text=True)
        if done.returncode != 0:
            print(done.stderr[-3000:])
            raise SystemExit(1)
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(runs[-1], flush=True)
    lines = [
        "# DEC's target: kept, or recomputed per batch",
        "",
        f"`python benchmarks/tuning/streamed_target.py`, {time.strftime('%Y-%m-%d')}, "
        "2-core CPU, torch's default threads; 1 000 000 x 32 blobs, 50 clusters "
        "(P is 191 MiB), DECClusterer(init='kmeans', pretrain_epochs=1, "
        "max_iter=3000, update_interval=500, tol=0), each mode in a fresh process.",
        "",
        "| P | fit s | peak RSS of the fit, MiB above before | sum of labels | last KL |",
        "| --- | --- | --- | --- | --- |",
        *[f"| {r['mode']} | {r['seconds']:.1f} | {r['peak_mib']:.0f} | "
          f"{r['labels_checksum']} | {r['kl_last']:.6f} |" for r in runs],
    ]
    Path("benchmarks/results/tuning/streamed_target.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
