"""t-SNE of the embedding before and after DEC's self-training.

Run:  python examples/embedding_tsne.py                        # digits, fast
      python examples/embedding_tsne.py --data-dir ../shared/data/mnist \\
          --subset 10000                                         # MNIST

"Before" is the pretrained autoencoder's embedding with its k-means
clusters (``DECClusterer(max_iter=0)``, i.e. autoencoder + k-means); "after"
is the same model, same seed, after minimising KL(P || Q). Both are drawn
with t-SNE, coloured by cluster, side by side. Needs matplotlib.
"""

import argparse

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from sklearn.base import clone  # noqa: E402

from deepcluster_sk import DECClusterer  # noqa: E402
from deepcluster_sk.metrics import cluster_accuracy  # noqa: E402
from deepcluster_sk.plotting import plot_embedding  # noqa: E402
from _common import load  # noqa: E402

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="MNIST folder; digits if omitted")
    parser.add_argument("--subset", type=int, default=None, help="MNIST digits to use")
    parser.add_argument("--max-points", type=int, default=3000, help="points in t-SNE")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default="embedding_tsne.png")
    args = parser.parse_args()

    X, y, _ = load(args.data_dir, args.subset)
    dec = DECClusterer(10, device=args.device, random_state=0)
    models = {
        "before: autoencoder + k-means": clone(dec).set_params(max_iter=0).fit(X),
        "after: DEC self-training": dec.fit(X),
    }
    fig, axes = plt.subplots(1, 2, figsize=(12, 6), layout="constrained")
    for ax, (name, model) in zip(axes, models.items()):
        acc = cluster_accuracy(y, model.labels_)
        print(f"{name}: ACC {acc:.3f}")
        plot_embedding(
            model.transform(X),
            model.labels_,
            ax=ax,
            max_samples=args.max_points,
            title=f"{name} (ACC {acc:.3f})",
        )
    fig.savefig(args.out, dpi=110)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
