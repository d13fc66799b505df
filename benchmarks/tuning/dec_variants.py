"""The tuning harness behind ``benchmarks/results/auto_defaults.md``.

DEC's three phases (autoencoder pretraining, k-means on the embedding,
self-training) run here from the package's own building blocks, with every
knob that the tables vary exposed on the command line -- including ones the
estimators do not offer (activation, batch normalisation, AdamW, denoising,
Gaussian-mixture initialisation), which were tried and not adopted. One
JSON line per seed goes to stdout; ``summarise.py`` turns a file of them
into a table.

Example (the digits base line of the table)::

    python benchmarks/tuning/dec_variants.py --data digits --dims 128,128,256 \
        --bs 64 --lr 3e-3 --steps 5000 --threads 1 --tag d_base >> digits.jsonl

The tabular data sets are standardised here; ``digits`` is ``X / 16``;
``mnist10k`` needs ``../shared/data/mnist``.
"""
import argparse, json, time, hashlib, os, sys, math
import numpy as np, torch
from sklearn.datasets import load_digits, load_iris, load_wine, load_breast_cancer, make_blobs
from sklearn.preprocessing import StandardScaler
from sklearn.metrics import normalized_mutual_info_score as nmi
from sklearn.cluster import KMeans
from deepcluster_sk._estimators._autoencoder import kmeans_centers
from deepcluster_sk._torch._data import TrainingData
from deepcluster_sk._torch._init import weighted_layers, init_weights
from deepcluster_sk._training._engine import run_phase
from deepcluster_sk._training._pretraining import EndToEndPhase
from deepcluster_sk._training._progress import ProgressPrinter
from deepcluster_sk._training._sampler import RowSampler
from deepcluster_sk._torch._data import forward_all
from deepcluster_sk._training._self_training import self_train
from deepcluster_sk.metrics import cluster_accuracy
from deepcluster_sk.datasets import load_mnist

def dataset(name):
    if name == "digits":
        X, y = load_digits(return_X_y=True); return X / 16.0, y
    if name.startswith("mnist"):
        X, y = load_mnist(os.environ.get("MNIST_DIR", "../shared/data/mnist"))
        if name == "mnist10k": return X[60000:], y[60000:]
        if name == "mnist70k": return X, y
        n = int(name[5:]); return X[:n], y[:n]
    if name == "iris": X, y = load_iris(return_X_y=True)
    elif name == "wine": X, y = load_wine(return_X_y=True)
    elif name == "cancer": X, y = load_breast_cancer(return_X_y=True)
    elif name == "blobs": X, y = make_blobs(500, 10, centers=5, cluster_std=[1,2,3,1.5,2.5], random_state=0)
    elif name == "digits20":
        from sklearn.decomposition import PCA
        X, y = load_digits(return_X_y=True); X = PCA(20, random_state=0).fit_transform(X[:1000]); y = y[:1000]
    elif name == "aniso":
        X, y = make_blobs(600, 6, centers=4, random_state=3); X = X @ np.random.RandomState(0).randn(6, 6)
    return StandardScaler().fit_transform(X), y

p = argparse.ArgumentParser()
p.add_argument("--data", default="digits")
p.add_argument("--dims", default="128,128,256")
p.add_argument("--nc", type=int, default=10)
p.add_argument("--bs", type=int, default=64)
p.add_argument("--lr", type=float, default=3e-3)
p.add_argument("--steps", type=int, default=5000)
p.add_argument("--epochs", type=int, default=0)
p.add_argument("--ninit", type=int, default=20)
p.add_argument("--maxiter", type=int, default=10000)
p.add_argument("--ui", type=int, default=140)
p.add_argument("--tol", type=float, default=1e-3)
p.add_argument("--declr", type=float, default=0.01)
p.add_argument("--decbs", type=int, default=0)
p.add_argument("--mom", type=float, default=0.9)
p.add_argument("--rw", type=float, default=0.0)
p.add_argument("--alpha", type=float, default=1.0)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--seeds", type=int, nargs="+", default=[0,1,2,3,4])
p.add_argument("--tag", default="")
p.add_argument("--nodec", action="store_true")
p.add_argument("--act", default="relu")
p.add_argument("--bn", action="store_true")
p.add_argument("--wd", type=float, default=0.0)
p.add_argument("--cinit", default="kmeans")
p.add_argument("--beta2", type=float, default=0.999)
p.add_argument("--init", default="default")
p.add_argument("--noise", type=float, default=0.0)
a = p.parse_args()
torch.set_num_threads(a.threads)
ACTS={"relu":torch.nn.ReLU,"elu":torch.nn.ELU,"silu":torch.nn.SiLU,"lrelu":lambda: torch.nn.LeakyReLU(0.1),"gelu":torch.nn.GELU}


def _stack(dims):
    layers = []
    for i, (n_in, n_out) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(torch.nn.Linear(n_in, n_out))
        if i < len(dims) - 2:
            if a.bn:
                layers.append(torch.nn.BatchNorm1d(n_out))
            layers.append(ACTS[a.act]())
    return torch.nn.Sequential(*layers)


class VariantAutoencoder(torch.nn.Module):
    """The package's MLP autoencoder with the activation, batch norm and init of the flags."""

    def __init__(self, n_features, dims, n_components, generator):
        super().__init__()
        widths = [n_features, *dims, n_components]
        self.encoder, self.decoder = _stack(widths), _stack(widths[::-1])
        if a.init == "default":
            init_weights(self, generator)
            return
        with torch.no_grad():
            for layer in weighted_layers(self):
                fi, fo = layer.in_features, layer.out_features
                bound = math.sqrt(6.0/(fi+fo)) if a.init == "glorot" else math.sqrt(6.0/fi)
                layer.weight.uniform_(-bound, bound, generator=generator); layer.bias.zero_()


class VariantPretraining(EndToEndPhase):
    """End-to-end pretraining with AdamW and denoising, as the flags ask."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if a.wd > 0 or a.beta2 != 0.999:
            self.optimizer = torch.optim.AdamW(self.autoencoder.parameters(), lr=a.lr, weight_decay=a.wd, betas=(0.9, a.beta2))
            self.lr_schedule.optimizer = self.optimizer

    def step(self, x):
        if a.noise == 0:
            return super().step(x)
        ae = self.autoencoder
        loss = torch.nn.functional.mse_loss(ae.decoder(ae.encoder(x + a.noise * torch.randn_like(x))), x)
        self.optimizer.zero_grad(set_to_none=True); loss.backward(); self.optimizer.step(); return loss.detach()


X, y = dataset(a.data)
k = len(np.unique(y))
X = X.astype(np.float32)
dims = tuple(int(d) for d in a.dims.split(",") if d)
for seed in a.seeds:
    rng = np.random.RandomState(seed)
    gen = torch.Generator().manual_seed(int(rng.randint(2**31 - 1)))
    data = TrainingData(X, torch.device("cpu"))
    spe = -(-len(X) // a.bs)
    n_epochs = a.epochs or max(1, round(a.steps / spe))
    t0 = time.perf_counter()
    ae = VariantAutoencoder(X.shape[1], dims, a.nc, gen)
    sampler = RowSampler(data.n_samples, a.bs, gen, data.device)
    losses = run_phase(VariantPretraining(ae, data, sampler, n_epochs, a.lr, "lower --lr"))
    t1 = time.perf_counter()
    Z = forward_all(ae.encoder, data, 4096)
    centers, labels0 = kmeans_centers(Z, k, a.ninit, int(rng.randint(2**31 - 1)))
    if a.cinit == "gmm":
        from sklearn.mixture import GaussianMixture
        gm = GaussianMixture(k, covariance_type="full", means_init=centers.astype(np.float64), random_state=seed).fit(Z.numpy().astype(np.float64))
        labels0 = gm.predict(Z.numpy().astype(np.float64)); centers = gm.means_.astype(np.float32)
    t2 = time.perf_counter()
    row = dict(tag=a.tag, data=a.data, seed=seed, dims=dims, nc=a.nc, bs=a.bs, lr=a.lr, epochs=n_epochs, steps=n_epochs*spe,
               ae_loss=losses[-1], ae_acc=cluster_accuracy(y, labels0), ae_nmi=nmi(y, labels0), t_pre=t1-t0, t_km=t2-t1)
    if not a.nodec:
        c = torch.nn.Parameter(torch.from_numpy(centers))
        res = self_train(ae, c, data, batch_size=a.decbs or a.bs, generator=gen, progress=ProgressPrinter(0, ""),
                         alpha=a.alpha, max_iter=a.maxiter, update_interval=a.ui, tol=a.tol, learning_rate=a.declr,
                         momentum=a.mom, train_encoder=True, reconstruction_weight=a.rw, inference_batch_size=4096,
                         advice="lower --declr")
        t3 = time.perf_counter()
        lab = res.labels.numpy()
        row.update(dec_acc=cluster_accuracy(y, lab), dec_nmi=nmi(y, lab), dec_iter=res.n_iter, t_dec=t3-t2,
                   n_used=int(len(np.unique(lab))))
    row["t_total"] = time.perf_counter() - t0
    print(json.dumps(row), flush=True)
