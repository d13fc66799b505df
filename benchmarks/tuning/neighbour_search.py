"""IMSAT's radius: exact k-th neighbour search against pynndescent, by size.

The raw MNIST pixels (784 features, / 255), the first n training images, k =
10: the exact blockwise search of ``_torch._distances.kth_neighbor_distances``
against ``pynndescent.NNDescent`` (after one call that compiles it), with the
median ratio of the approximate to the exact distance. Run alone::

    python benchmarks/tuning/neighbour_search.py --mnist ../shared/data/mnist \\
        > benchmarks/results/tuning/neighbour_search.jsonl
"""

import argparse
import json
import time

import numpy as np
import pynndescent
import torch

from deepcluster_sk._torch._data import TrainingData
from deepcluster_sk._torch._distances import kth_neighbor_distances
from deepcluster_sk.datasets import load_mnist


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mnist", required=True)
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 10000, 20000, 40000, 70000])
    args = parser.parse_args()
    images, _ = load_mnist(args.mnist)
    X = (images.reshape(len(images), -1) / np.float32(255)).astype(np.float32)
    pynndescent.NNDescent(X[:2000], n_neighbors=11, random_state=0)  # compile
    for n in args.sizes:
        data = TrainingData(X[:n], torch.device("cpu"))
        start = time.perf_counter()
        exact = kth_neighbor_distances(data, 10, 1024).numpy()  # IMSAT on a CPU
        exact_s = time.perf_counter() - start
        start = time.perf_counter()
        index = pynndescent.NNDescent(X[:n], n_neighbors=11, random_state=0,
                                      low_memory=True, compressed=True)
        approx = index.neighbor_graph[1][:, 10]
        approx_s = time.perf_counter() - start
        print(json.dumps(dict(
            n=n, exact_seconds=exact_s, pynndescent_seconds=approx_s,
            median_ratio=float(np.median(approx / exact)),
            p99_ratio=float(np.quantile(approx / exact, 0.99)),
            torch_threads=torch.get_num_threads(),
        )), flush=True)


if __name__ == "__main__":
    main()
