"""DEC's training curves: reconstruction loss, KL(P || Q) and label changes.

Run:  python examples/training_curves.py                       # digits, fast
      python examples/training_curves.py --data-dir ../shared/data/mnist \\
          --subset 10000                                        # MNIST

Fits DECClusterer with a progress bar (``verbose=1``; tqdm when installed)
and plots ``history_``: the reconstruction loss per pretraining epoch, then
per target update of self-training the DEC loss and the fraction of labels
that changed (training stops when it falls below ``tol``). Needs matplotlib.
"""

import argparse

import matplotlib

matplotlib.use("Agg")


from deepcluster_sk import DECClusterer  # noqa: E402
from deepcluster_sk.plotting import plot_history  # noqa: E402
from _common import load  # noqa: E402

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="MNIST folder; digits if omitted")
    parser.add_argument("--subset", type=int, default=None, help="MNIST digits to use")
    parser.add_argument(
        "--pretrain", choices=["end_to_end", "layerwise"], default="end_to_end"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default="training_curves.png")
    args = parser.parse_args()

    X, _, _ = load(args.data_dir, args.subset)
    dec = DECClusterer(
        10, pretrain=args.pretrain, device=args.device, random_state=0,
        verbose=1,
    ).fit(X)
    fig = plot_history(dec)
    fig.suptitle(f"DEC training ({args.pretrain} pretraining), {X.shape[0]} samples")
    fig.savefig(args.out, dpi=110)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
