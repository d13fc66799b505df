"""Autoencoder + k-means accuracy along one cosine pretraining run on MNIST.

Pretrains for ``--epochs`` epochs (one cosine schedule), and at ``--checks``
evenly spaced epochs embeds all samples and scores k-means on the embedding;
then runs DEC's self-training. One JSON line per checkpoint and one at the
end; figures in ``benchmarks/results/auto_defaults.md``. Set ``MNIST_DIR``
(default ``../shared/data/mnist``).
"""
import os
import argparse, json, time, sys, numpy as np, torch
sys.argv_backup = list(sys.argv)
from sklearn.metrics import normalized_mutual_info_score as nmi
from deepcluster_sk._estimators._autoencoder import kmeans_centers
from deepcluster_sk._torch._data import TrainingData
from deepcluster_sk._training._engine import run_phase
from deepcluster_sk._training._pretraining import EndToEndPhase
from deepcluster_sk._training._progress import ProgressPrinter
from deepcluster_sk._training._sampler import RowSampler
from deepcluster_sk._torch._data import forward_all
from deepcluster_sk._training._self_training import self_train
from deepcluster_sk.nn import MLPAutoencoder
from deepcluster_sk.metrics import cluster_accuracy
from deepcluster_sk.datasets import load_mnist
p = argparse.ArgumentParser()
p.add_argument("--n", type=int, default=70000)
p.add_argument("--dims", default="500,500,2000")
p.add_argument("--bs", type=int, default=256)
p.add_argument("--lr", type=float, default=1e-3)
p.add_argument("--epochs", type=int, default=40)
p.add_argument("--checks", type=int, default=4)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--ui", type=int, default=140)
p.add_argument("--maxiter", type=int, default=10000)
p.add_argument("--tol", type=float, default=1e-3)
p.add_argument("--declr", type=float, default=0.01)
p.add_argument("--rw", type=float, default=0.0)
p.add_argument("--ninit", type=int, default=20)
p.add_argument("--tag", default="")
p.add_argument("--save", default="")
p.add_argument("--load", default="")
a = p.parse_args()
torch.set_num_threads(a.threads)
X, y = load_mnist(os.environ.get("MNIST_DIR", "../shared/data/mnist"))
if a.n == 10000: X, y = X[60000:], y[60000:]
elif a.n < 70000: X, y = X[:a.n], y[:a.n]
X = X.astype(np.float32)
rng = np.random.RandomState(a.seed)
gen = torch.Generator().manual_seed(int(rng.randint(2**31 - 1)))
data = TrainingData(X, torch.device("cpu"))
dims = tuple(int(d) for d in a.dims.split(","))
ae = MLPAutoencoder(X.shape[1], dims, 10, generator=gen)
t0 = time.perf_counter()
def out(**kw):
    kw.update(tag=a.tag, n=a.n, dims=dims, bs=a.bs, lr=a.lr, epochs=a.epochs, seed=a.seed, t=time.perf_counter()-t0)
    print(json.dumps(kw), flush=True)
if a.load:
    ae.load_state_dict(torch.load(a.load)); tpre = 0
else:
    class CheckedPretraining(EndToEndPhase):
        """One cosine schedule over all epochs; k-means on the embedding at checkpoints."""

        def end_period(self, period, mean_loss):
            epoch = period + 1
            if epoch % max(1, a.epochs // a.checks) == 0 or epoch == a.epochs:
                Z = forward_all(ae.encoder, data, 4096); ae.train()
                c, lab = kmeans_centers(Z, 10, 5, 0)
                out(stage="ckpt", epoch=epoch, loss=mean_loss, ae_acc=cluster_accuracy(y, lab), ae_nmi=nmi(y, lab))
            return super().end_period(period, mean_loss)

    sampler = RowSampler(len(X), a.bs, gen, torch.device("cpu"))
    run_phase(CheckedPretraining(ae, data, sampler, a.epochs, a.lr, "lower --lr"))
    ae.eval()
    if a.save: torch.save(ae.state_dict(), a.save)
t1 = time.perf_counter()
Z = forward_all(ae.encoder, data, 4096)
centers, lab0 = kmeans_centers(Z, 10, a.ninit, int(rng.randint(2**31 - 1)))
t2 = time.perf_counter()
c = torch.nn.Parameter(torch.from_numpy(centers))
res = self_train(ae, c, data, batch_size=a.bs, generator=gen, progress=ProgressPrinter(0, ""), alpha=1.0,
                 max_iter=a.maxiter, update_interval=a.ui, tol=a.tol, learning_rate=a.declr, momentum=0.9,
                 train_encoder=True, reconstruction_weight=a.rw, inference_batch_size=4096, advice="lower --declr")
t3 = time.perf_counter()
lab = res.labels.numpy()
out(stage="final", ae_acc=cluster_accuracy(y, lab0), ae_nmi=nmi(y, lab0), dec_acc=cluster_accuracy(y, lab), dec_nmi=nmi(y, lab), dec_iter=res.n_iter,
    t_km=t2 - t1, t_dec=t3 - t2, kl=res.kl_losses[-3:], changes=res.label_changes[-3:])
