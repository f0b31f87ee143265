"""The variational autoencoder of Pyro's VAE tutorial, in csvi.

An encoder network q(z | x) and a decoder network p(x | z) (the tutorial's
Encoder / Decoder: Linear + Softplus layers, a 50-dim latent, 400 hidden
units), a Bernoulli likelihood on the pixels, Trace_ELBO and Adam(lr=1e-3).
The data are the 8x8 handwritten digits that scikit-learn ships (no download
at run time), pixel intensities scaled to [0, 1] as the tutorial's MNIST.

    pip install "csvi[examples]"          # scikit-learn, matplotlib, tqdm
    python examples/vae.py                # --help for the options

Each epoch runs len(train) / batch_size compiled steps, each on a fresh
minibatch drawn by the subsampled plate (`--eager` runs Python steps instead;
from the same seed both give the same params), and prints the train and test
ELBO per image.  `--float32` multiplies in float32 (`vae.float()`, as in
torch: each Linear's products through sgemm, about 2x faster; params and
Adam stay float64).  At the end it saves a figure of test digits, their
reconstructions and samples from the prior (`--figure`, matplotlib).
"""
import argparse
import sys
import time

import numpy as np

import csvi
import csvi.distributions as dist
from csvi import nn
from csvi.infer import SVI, Trace_ELBO
from csvi.optim import Adam


class Encoder(nn.Module):
    """x -> (z_loc, z_scale) of q(z | x)."""

    def __init__(self, x_dim, z_dim, hidden_dim):
        super().__init__()
        self.fc1 = nn.Linear(x_dim, hidden_dim)
        self.fc21 = nn.Linear(hidden_dim, z_dim)
        self.fc22 = nn.Linear(hidden_dim, z_dim)
        self.softplus = nn.Softplus()

    def forward(self, x):
        hidden = self.softplus(self.fc1(x))
        return self.fc21(hidden), csvi.exp(self.fc22(hidden))


class Decoder(nn.Module):
    """z -> the pixels' Bernoulli probabilities."""

    def __init__(self, x_dim, z_dim, hidden_dim):
        super().__init__()
        self.fc1 = nn.Linear(z_dim, hidden_dim)
        self.fc21 = nn.Linear(hidden_dim, x_dim)
        self.softplus = nn.Softplus()
        self.sigmoid = nn.Sigmoid()

    def forward(self, z):
        return self.sigmoid(self.fc21(self.softplus(self.fc1(z))))


class VAE(nn.Module):
    """Model and guide over a data set of images (rows of `data`); with
    `batch_size` each run sees a random minibatch of it, scaled to the whole."""

    def __init__(self, x_dim, z_dim=50, hidden_dim=400):
        super().__init__()
        self.encoder = Encoder(x_dim, z_dim, hidden_dim)
        self.decoder = Decoder(x_dim, z_dim, hidden_dim)
        self.z_dim = z_dim

    def model(self, data, batch_size=None):
        csvi.module("decoder", self.decoder)
        with csvi.plate("data", len(data), subsample_size=batch_size) as idx:
            x = data[idx]
            z_loc = np.zeros((len(idx), self.z_dim))
            z = csvi.sample("latent", dist.Normal(z_loc, 1.0).to_event(1))
            loc_img = self.decoder(z)
            # grey levels in [0, 1] as the tutorial's MNIST, so no 0/1 check
            csvi.sample("obs", dist.Bernoulli(loc_img, validate_args=False).to_event(1), obs=x)

    def guide(self, data, batch_size=None):
        csvi.module("encoder", self.encoder)
        with csvi.plate("data", len(data), subsample_size=batch_size) as idx:
            z_loc, z_scale = self.encoder(data[idx])
            csvi.sample("latent", dist.Normal(z_loc, z_scale).to_event(1))

    def reconstruct(self, x):
        """Decoded means of a draw of q(z | x), as a NumPy array."""
        z_loc, z_scale = self.encoder(x)
        return self.decoder(dist.Normal(z_loc, z_scale).sample()).numpy()

    def generate(self, n):
        """Decoded means of n draws of the prior, as a NumPy array."""
        z = dist.Normal(np.zeros((n, self.z_dim)), 1.0).sample()
        return self.decoder(z).numpy()


def load_digits(test_fraction=0.2, seed=0):
    """(train, test, image side) of scikit-learn's 8x8 digits in [0, 1]."""
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError:
        raise SystemExit("this example needs scikit-learn: pip install \"csvi[examples]\"") \
            from None
    images = sk_load_digits().data / 16.0
    order = np.random.default_rng(seed).permutation(len(images))
    n_test = int(round(test_fraction * len(images)))
    return images[order[n_test:]], images[order[:n_test]], 8


def elbo_per_image(svi, data, num_evals=4):
    """The test ELBO per image (an average of a few estimates, no step)."""
    return -np.mean([svi.evaluate_loss(data) for _ in range(num_evals)]) / len(data)


def save_figure(path, vae, test, side, n=10):
    """Rows: test digits, their reconstructions, samples from the prior."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("the figure needs matplotlib: pip install \"csvi[examples]\" "
                         "(or pass --figure '' to skip it)") from None
    rows = [test[:n], vae.reconstruct(test[:n]), vae.generate(n)]
    fig, axes = plt.subplots(3, n, figsize=(n, 3.3))
    for r, (label, images) in enumerate(zip(["data", "reconstructed", "sampled"], rows)):
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(images[c].reshape(side, side), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(label, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


class _Progress:
    """tqdm over the epochs when it is installed, else one line per epoch."""

    def __init__(self, total):
        try:
            from tqdm.auto import tqdm
        except ImportError:
            tqdm = None
        self.bar = tqdm(total=total, unit="epoch") if tqdm is not None else None
        self.total = total

    def update(self, epoch, text):
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(text)
        else:
            done = int(20 * (epoch + 1) / self.total)
            print(f"[{'#' * done}{'.' * (20 - done)}] epoch {epoch + 1}/{self.total}  {text}",
                  flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=64,
                   help="the tutorial's MNIST uses 256; the digits have 1,437 training images")
    p.add_argument("--z-dim", type=int, default=50)
    p.add_argument("--hidden-dim", type=int, default=400)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--test-frequency", type=int, default=5,
                   help="compute the test ELBO every this many epochs (and after the last)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eager", action="store_true", help="Python steps instead of compiled")
    p.add_argument("--float32", action="store_true",
                   help="the layers' matrix products in float32 (torch's default precision)")
    p.add_argument("--figure", default="vae_digits.png",
                   help="where to save the figure ('' for none)")
    args = p.parse_args(argv)

    csvi.set_rng_seed(args.seed)
    csvi.clear_param_store()
    train, test, side = load_digits(seed=args.seed)
    batch = min(args.batch_size, len(train))
    steps_per_epoch = max(len(train) // batch, 1)
    vae = VAE(train.shape[1], args.z_dim, args.hidden_dim)
    if args.float32:
        vae.float()
    svi = SVI(vae.model, vae.guide, Adam({"lr": args.lr}), loss=Trace_ELBO())
    compiled = None if args.eager else svi.compile(train, batch)

    history = {"train_elbo": [], "test_elbo": []}
    progress = _Progress(args.epochs)
    start = time.perf_counter()
    try:
        for epoch in range(args.epochs):
            if compiled is not None:
                losses = compiled.run(steps_per_epoch)
            else:
                losses = [svi.step(train, batch) for _ in range(steps_per_epoch)]
            history["train_elbo"].append(-float(np.mean(losses)) / len(train))
            text = f"train ELBO {history['train_elbo'][-1]:.3f}"
            if epoch % args.test_frequency == 0 or epoch == args.epochs - 1:
                history["test_elbo"].append((epoch, elbo_per_image(svi, test)))
                text += f"  test ELBO {history['test_elbo'][-1][1]:.3f}"
            progress.update(epoch, text)
    finally:
        progress.close()
    seconds = time.perf_counter() - start
    print(f"{args.epochs * steps_per_epoch} steps in {seconds:.1f} s; final test ELBO per image "
          f"{history['test_elbo'][-1][1]:.3f}")
    if args.figure:
        save_figure(args.figure, vae, test, side)
        print(f"saved {args.figure}")
    return history


if __name__ == "__main__":
    main(sys.argv[1:])
