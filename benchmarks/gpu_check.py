"""Every GPU check of issue 21 in one call, ordered so that a cut-short run still reports.

Stages, each a subprocess with its own time limit, each writing under
``OUT``, each skipped when the overall budget would not cover it, in this
order (``--stages`` picks some, for a second call):

1. ``env``: the GPU, CUDA, torch and the libraries, ``nvidia-smi``.
2. ``tests``: the tests that run CUDA code (CUDA graphs, on-device k-means,
   pickling across devices, the estimators' contract tests with
   ``device="auto"``, which is CUDA there), as JUnit XML.
3. ``pickle``: a DEC fitted on the GPU, pickled with its labels and
   predictions, for ``--verify`` on a machine without a GPU.
4. ``mnist-dec``: DEC's defaults on full MNIST, seeds 0-2
   (``benchmarks/mnist.py``): ACC, NMI, fit seconds, peak GPU memory.
5. ``roofline``: the bfloat16 matmul peak and every phase's step
   throughput, CUDA graphs on and off, each precision
   (``benchmarks/roofline.py``).
6. ``predict``: DEC's ``predict`` on 1 000 000 x 784 rows held on the host:
   samples per second and peak GPU memory.
7. ``mnist-n2d-imsat``: N2D and IMSAT, seeds 0-2; ``mnist-rest``: IDEC,
   AutoencoderKMeans, DAC and DEC's layer-wise (paper) schedule, seed 0.
8. ``suite``: the rest of the test suite, if time is left.

On the GPU machine (no package registry; the wheels and the data travel in a
git-ignored folder named in ``carry``)::

    python benchmarks/gpu_check.py --prepare .gpu_carry      # here, once
    pip install --no-deps --no-index .gpu_carry/wheels/*.whl  # there
    PYTHONPATH=. python3 benchmarks/gpu_check.py --out $OUT --data-dir .gpu_carry/mnist

Here, first: ``python benchmarks/gpu_check.py --smoke --out /tmp/gpu_smoke
--data-dir ../shared/data/mnist`` runs every stage on the CPU at toy sizes.
Afterwards, here: ``python benchmarks/gpu_check.py --verify OUT`` checks that
the GPU's pickle predicts the same labels on this CPU.
"""

import argparse
import json
import os
import pickle
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: The tests that run CUDA code when a GPU is present.
GPU_TESTS = ["tests/test_cuda_graphs.py", "tests/test_kmeans.py", "tests/test_common.py",
             "tests/test_precision.py", "tests/test_estimator_checks.py"]

#: Wheels the GPU machine lacks (it has torch, scikit-learn, numba, tqdm, pytest).
WHEELS = ["umap-learn", "pynndescent"]

#: The stages in the order they run: what the issue needs most comes first.
STAGES = ("env", "tests", "pickle", "mnist-dec", "roofline", "predict",
          "mnist-n2d-imsat", "mnist-rest", "suite")


def _run(stage, command, out, timeout, log):
    """Run one stage; record its exit code and seconds; never raise."""
    start = time.monotonic()
    with open(out / f"{stage}.log", "w") as file:
        try:
            done = subprocess.run(command, stdout=file, stderr=subprocess.STDOUT,
                                  timeout=timeout, cwd=ROOT,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)})
            code = done.returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
    log.append({"stage": stage, "exit": code, "seconds": round(time.monotonic() - start, 1)})
    (out / "stages.json").write_text(json.dumps(log, indent=2) + "\n")
    print(f"[gpu_check] {stage}: exit {code} in {log[-1]['seconds']} s", flush=True)


def _python(code, *args):
    return [sys.executable, "-c", code, *map(str, args)]


_ENV = """
import json, subprocess, sys, torch, sklearn, numpy
info = {"torch": torch.__version__, "cuda": torch.version.cuda,
        "sklearn": sklearn.__version__, "numpy": numpy.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "bf16": torch.cuda.is_available() and torch.cuda.is_bf16_supported()}
for name in ("umap", "pynndescent", "numba"):
    try:
        info[name] = __import__(name).__version__
    except Exception as exc:
        info[name] = f"missing: {exc}"
try:
    info["nvidia-smi"] = subprocess.run(["nvidia-smi"], capture_output=True, text=True).stdout
except OSError:
    info["nvidia-smi"] = None
open(sys.argv[1], "w").write(json.dumps(info, indent=2))
print(json.dumps({k: v for k, v in info.items() if k != "nvidia-smi"}))
"""

_PICKLE = """
import pickle, sys, time, numpy as np, torch
from sklearn.datasets import load_digits
from deepcluster_sk import DECClusterer
X = (load_digits().data / 16).astype(np.float32)
start = time.perf_counter()
model = DECClusterer(n_clusters=10, random_state=0).fit(X)
seconds = time.perf_counter() - start
device = str(next(model.autoencoder_.parameters()).device)
with open(sys.argv[1], "wb") as file:
    pickle.dump({"model": model, "labels": model.labels_, "predict": model.predict(X),
                 "proba": model.predict_proba(X), "device": device, "seconds": seconds},
                file)
print(f"fitted on {device} in {seconds:.1f} s")
"""

_PREDICT = """
import json, sys, time, numpy as np, torch
from deepcluster_sk import DECClusterer
n_rows, path = int(sys.argv[1]), sys.argv[2]
rng = np.random.default_rng(0)
train = rng.random((4096, 784), dtype=np.float32)
model = DECClusterer(n_clusters=10, pretrain_epochs=1, max_iter=20, init="kmeans",
                     random_state=0).fit(train)
X = np.empty((n_rows, 784), np.float32)
for start in range(0, n_rows, 100_000):
    X[start:start + 100_000] = rng.random((min(100_000, n_rows - start), 784),
                                          dtype=np.float32)
model.predict(X[:65536])  # warm-up
cuda = torch.cuda.is_available()
if cuda:
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
start = time.perf_counter()
labels = model.predict(X)
seconds = time.perf_counter() - start
result = {"rows": n_rows, "seconds": seconds, "samples_per_s": n_rows / seconds,
          "peak_gpu_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
          "input_mib": X.nbytes / 2**20, "precision": model.precision_,
          "device": str(next(model.autoencoder_.parameters()).device)}
open(path, "w").write(json.dumps(result, indent=2))
print(json.dumps(result))
"""


def check(args):
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + args.budget_s
    log = []

    def stage(name, command, needs_s, limit_s):
        left = deadline - time.monotonic()
        if left < needs_s:
            log.append({"stage": name, "exit": "skipped", "seconds": 0})
            print(f"[gpu_check] {name}: skipped, {left:.0f} s left", flush=True)
            return
        _run(name, command, out, min(limit_s, left), log)

    smoke = args.smoke
    wanted = set(args.stages or STAGES)
    stages = {}
    stages["env"] = (_python(_ENV, out / "env.json"), 5, 60)
    stages["tests"] = ([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                        f"--junitxml={out / 'tests.xml'}", *GPU_TESTS,
                        *(["-k", "cuda or graph or kmeans or pickl"] if smoke else [])],
                       30, 240)
    stages["pickle"] = (_python(_PICKLE, out / "model_gpu.pkl"), 20, 120)
    for name, methods, seeds, limit in [
        ("mnist-dec", ["dec"], [0, 1, 2], 150),
        ("mnist-n2d-imsat", ["n2d", "imsat"], [0, 1, 2], 330),
        ("mnist-rest", ["idec", "ae-kmeans", "dac", "dec-layerwise"], [0], 300),
    ]:
        command = [sys.executable, "benchmarks/mnist.py", "--data-dir", args.data_dir,
                   "--out", str(out / name), "--methods", *methods]
        if smoke:
            command += ["--subset", "2000", "--seeds", "0", "--hidden-dims", "64", "64",
                        "128"]
        else:
            command += ["--seeds", *map(str, seeds)]
        stages[name] = (command, 40, limit)
    roofline = [sys.executable, "benchmarks/roofline.py", "--out", str(out)]
    roofline += ["--smoke"] if smoke else ["--device", "cuda", "--graphs", "both",
                                           "--seconds", "3"]
    stages["roofline"] = (roofline, 30, 120)
    stages["predict"] = (_python(_PREDICT, 20_000 if smoke else 1_000_000,
                                 out / "predict.json"), 30, 90)
    stages["suite"] = ([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        f"--junitxml={out / 'suite.xml'}", "tests",
                        *[f"--deselect={test}" for test in GPU_TESTS]], 120, 600)
    for name in STAGES:
        if name in wanted and not (smoke and name == "suite"):
            stage(name, *stages[name])
    summary = [f"{entry['stage']}: {entry['exit']} ({entry['seconds']} s)" for entry in log]
    (out / "summary.txt").write_text("\n".join(summary) + "\n")
    print("\n".join(summary))


def prepare(folder):
    """Here: download the wheels and copy the MNIST files into ``folder``."""
    folder = Path(folder)
    (folder / "wheels").mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                    "-d", str(folder / "wheels"), *WHEELS], check=True)
    mnist = folder / "mnist"
    mnist.mkdir(exist_ok=True)
    for path in (ROOT.parent / "shared" / "data" / "mnist").glob("*-ubyte*"):
        shutil.copy(path, mnist / path.name)
    print(f"prepared {folder}: {sorted(p.name for p in folder.rglob('*') if p.is_file())}")


def verify(folder):
    """Here, without a GPU: the GPU's pickle predicts its own labels on the CPU."""
    import numpy as np
    from sklearn.datasets import load_digits

    with open(Path(folder) / "model_gpu.pkl", "rb") as file:
        saved = pickle.load(file)
    X = (load_digits().data / 16).astype(np.float32)
    model = saved["model"]
    same = np.array_equal(model.predict(X), saved["predict"])
    proba = np.abs(model.predict_proba(X) - saved["proba"]).max()
    print(f"fitted on {saved['device']}; predicts on "
          f"{next(model.autoencoder_.parameters()).device}: same labels {same}, "
          f"largest probability difference {proba:.2g}")
    return 0 if same else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out")
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--budget-s", type=float, default=560,
                        help="seconds the whole check may take")
    parser.add_argument("--stages", nargs="+", choices=STAGES,
                        help="run only these (a second call after a cut-short one)")
    parser.add_argument("--prepare", metavar="FOLDER")
    parser.add_argument("--verify", metavar="OUT")
    args = parser.parse_args()
    if args.prepare:
        prepare(args.prepare)
    elif args.verify:
        sys.exit(verify(args.verify))
    else:
        if args.out is None:
            parser.error("--out is required")
        check(args)


if __name__ == "__main__":
    main()
