"""Choose the number of clusters with DEC's generalisability and NMI curves.

Run:  python examples/choose_k.py                               # digits, fast
      python examples/choose_k.py --data-dir ../shared/data/mnist \\
          --subset 10000 --k 5 6 7 8 9 10 11 12 13 14 15        # MNIST

For each k, fits DECClusterer on 90% of the data and measures the DEC loss
``L = KL(P || Q)`` per sample on the training and the held-out split; the
generalisability ``G = L_train / L_validation`` drops sharply once k exceeds
the number of clusters the data supports (figure 5 of the DEC paper: k = 9
on MNIST, where 4 and 9 merge). The NMI against the true labels shows where
adding clusters stops helping. Saves both curves as a PNG; needs matplotlib.
"""

import argparse

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from deepcluster_sk import DECClusterer  # noqa: E402
from deepcluster_sk.model_selection import generalizability_curve  # noqa: E402
from _common import load  # noqa: E402

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="MNIST folder; digits if omitted")
    parser.add_argument("--subset", type=int, default=None, help="MNIST digits to use")
    parser.add_argument("--k", type=int, nargs="+", default=[6, 8, 9, 10, 11, 12, 14])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default="choose_k.png")
    args = parser.parse_args()

    X, y, _ = load(args.data_dir, args.subset)
    dec = DECClusterer(device=args.device)
    curve = generalizability_curve(
        X, args.k, y=y, estimator=dec, validation_size=0.1, random_state=0
    )
    print("k     G      NMI    L_train  L_validation")
    for row in zip(
        curve.n_clusters, curve.generalizability, curve.nmi,
        curve.train_loss, curve.validation_loss,
    ):
        print("{:<4d} {:6.3f} {:6.3f} {:8.4f} {:8.4f}".format(*row))

    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    ax.plot(curve.n_clusters, curve.nmi, "o-", label="NMI")
    ax.plot(curve.n_clusters, curve.generalizability, "s--", label="generalizability G")
    ax.set_xlabel("number of clusters k")
    ax.set_xticks(curve.n_clusters)
    ax.legend()
    ax.set_title(f"Choosing k for DEC ({X.shape[0]} samples)")
    fig.savefig(args.out, dpi=110)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
