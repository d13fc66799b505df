"""The samples each DEC cluster is most confident about, one row per cluster.

Run:  python examples/mnist_clusters.py                       # digits, fast
      python examples/mnist_clusters.py --data-dir ../shared/data/mnist \\
          --subset 10000                                        # MNIST

Fits DECClusterer with k = 10 and saves a grid of images: row j holds the
samples with the highest soft assignment to cluster j (figure 2 of the DEC
paper). Needs matplotlib (``pip install deepcluster-sk[plot]``).
"""

import argparse

import matplotlib

matplotlib.use("Agg")


from deepcluster_sk import DECClusterer  # noqa: E402
from deepcluster_sk.metrics import cluster_accuracy  # noqa: E402
from deepcluster_sk.plotting import plot_cluster_samples  # noqa: E402
from _common import load  # noqa: E402

#: Digits is small (1 797 images of 8 x 8): a narrower network and smaller
#: batches than the paper's MNIST setting, as in examples/quickstart.py.
def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="MNIST folder; digits if omitted")
    parser.add_argument("--subset", type=int, default=None, help="MNIST digits to use")
    parser.add_argument("--n-samples", type=int, default=10, help="images per cluster")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default="mnist_clusters.png")
    args = parser.parse_args()

    X, y, image_shape = load(args.data_dir, args.subset)
    dec = DECClusterer(10, device=args.device, random_state=0).fit(X)
    print(f"DEC on {X.shape[0]} images: ACC {cluster_accuracy(y, dec.labels_):.3f}")
    fig = plot_cluster_samples(dec, X, image_shape, n_samples=args.n_samples)
    fig.suptitle("Most confident samples per DEC cluster")
    fig.savefig(args.out, dpi=120, bbox_inches="tight")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
