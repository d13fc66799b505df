"""Fit on a memory map against the same fit in memory: peak memory and time.

Full MNIST (70 000 x 784, pixels / 255) is repeated to ``--rows`` rows and
written to a float32 ``.npy`` file under ``--workdir``. Each case runs in a
fresh Python process, so its peak resident memory (``ru_maxrss``) is its
own: ``memory`` loads the file into an array and fits on it, ``memmap``
fits on ``np.load(path, mmap_mode="r")``, which the estimators read by
chunks of rows (``deepcluster_sk.RowChunks``). The fit is
``AutoencoderKMeans`` with the default network and batch rule and
``pretrain_epochs=1``: one pass over the rows, then k-means on the
embedding.

Usage::

    python benchmarks/out_of_core.py --mnist ../shared/data/mnist \\
        --workdir /tmp/ooc --rows 700000 --out benchmarks/results/out_of_core
"""

import argparse
import json
import platform
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

_CASE = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    import torch
    from deepcluster_sk import AutoencoderKMeans

    def peak_mib():
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the
        # forking parent across exec; VmHWM belongs to this process's memory.
        with open("/proc/self/status") as status:
            line = next(l for l in status if l.startswith("VmHWM"))
        return int(line.split()[1]) / 1024

    path, mode, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    baseline = peak_mib()
    start = time.perf_counter()
    X = np.load(path, mmap_mode="r" if mode == "memmap" else None)
    loaded = peak_mib()
    model = AutoencoderKMeans(n_clusters=10, pretrain_epochs=epochs, random_state=0)
    model.fit(X)
    seconds = time.perf_counter() - start
    print(json.dumps({
        "mode": mode, "seconds": seconds, "peak_mib": peak_mib(),
        "baseline_mib": baseline, "after_load_mib": loaded,
        "settings": {"batch_size": model.batch_size_, "precision": model.precision_,
                     "hidden_dims": list(model.hidden_dims_)},
        "torch_threads": torch.get_num_threads(),
    }))
    """
)


def write_repeated_mnist(mnist, path, n_rows):
    """Write MNIST's pixels / 255 repeated to ``n_rows`` rows as a .npy file."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from deepcluster_sk.datasets import load_mnist

    images, _ = load_mnist(mnist)
    images = images.reshape(len(images), -1)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32,
                                    shape=(n_rows, images.shape[1]))
    for start in range(0, n_rows, len(images)):
        stop = min(start + len(images), n_rows)
        out[start:stop] = images[: stop - start] / np.float32(255)
    out.flush()
    del out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", required=True, help="folder of the MNIST files")
    parser.add_argument("--workdir", required=True, help="where the .npy file goes")
    parser.add_argument("--rows", type=int, default=700_000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results/out_of_core")
    args = parser.parse_args()

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"mnist_{args.rows}.npy"
    if not path.exists():
        write_repeated_mnist(args.mnist, path, args.rows)
    data_mib = path.stat().st_size / 2**20

    runs = []
    for mode in ("memmap", "memory"):
        out = subprocess.run(
            [sys.executable, "-c", _CASE, str(path), mode, str(args.epochs)],
            capture_output=True, text=True, check=True,
        )
        run = json.loads(out.stdout.strip().splitlines()[-1])
        run["above_baseline_mib"] = run["peak_mib"] - run["baseline_mib"]
        runs.append(run)
        print(json.dumps(run), flush=True)

    result = {
        "command": " ".join(["python", *sys.argv]),
        "machine": platform.processor() or platform.machine(),
        "date": time.strftime("%Y-%m-%d"),
        "rows": args.rows, "features": 784, "data_mib": data_mib,
        "epochs": args.epochs, "runs": runs,
    }
    Path(args.out).with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    by_mode = {run["mode"]: run for run in runs}
    lines = [
        "# Fit on a memory map against the same fit in memory",
        "",
        f"Command: `{result['command']}`  ",
        f"Data: full MNIST repeated to {args.rows} x 784 float32 rows "
        f"({data_mib:.0f} MiB on disk); `AutoencoderKMeans(n_clusters=10, "
        f"pretrain_epochs={args.epochs})`, otherwise defaults "
        f"({runs[0]['settings']}); each case in a fresh process, "
        f"{runs[0]['torch_threads']} torch threads, {result['date']}.",
        "",
        "| input | fit seconds (load included) | peak RSS MiB | above the "
        "interpreter's MiB |",
        "| --- | --- | --- | --- |",
    ]
    for mode, label in (("memory", "array in memory"),
                        ("memmap", "`np.load(path, mmap_mode='r')`")):
        run = by_mode[mode]
        lines.append(f"| {label} | {run['seconds']:.1f} | {run['peak_mib']:.0f} | "
                     f"{run['above_baseline_mib']:.0f} |")
    ratio = by_mode["memmap"]["seconds"] / by_mode["memory"]["seconds"]
    saved = by_mode["memory"]["peak_mib"] - by_mode["memmap"]["peak_mib"]
    lines += [
        "",
        f"The memory map's fit takes {ratio:.2f}x the in-memory time and peaks "
        f"{saved:.0f} MiB lower; its peak is "
        f"{by_mode['memmap']['above_baseline_mib']:.0f} MiB above the "
        "interpreter with torch imported, for data of "
        f"{data_mib:.0f} MiB.",
        "",
    ]
    Path(args.out).with_suffix(".md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
