"""What the dense-layer tests share: the activations in NumPy (the
reference for csvi's fused forms) and a small VAE (6 inputs, 2 latents,
minibatches of 10 from 40 rows): model, a guide factory that restarts from
the same weights, and the data.

    from small_vae import NUMPY_ACTIVATIONS, small_vae
"""
import numpy as np

import csvi
import csvi.distributions as dist
from csvi import nn

NUMPY_ACTIVATIONS = {
    None: lambda z: z,
    "relu": lambda z: np.maximum(z, 0.0),
    "softplus": lambda z: np.where(z > 20.0, z, np.logaddexp(0.0, z)),
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "tanh": np.tanh,
}


def small_vae(encoder_activation, float32=False):
    data = (np.random.default_rng(3).random((40, 6)) < 0.4).astype(float)
    csvi.set_rng_seed(0)
    encoder = nn.Sequential(nn.Linear(6, 8), encoder_activation(), nn.Linear(8, 4))
    decoder = nn.Sequential(nn.Linear(2, 8), nn.Softplus(), nn.Linear(8, 6), nn.Sigmoid())
    if float32:
        encoder.float(), decoder.float()
    start = [{k: np.array(v) for k, v in m.state_dict().items()} for m in (encoder, decoder)]

    def model(data):
        csvi.module("decoder", decoder)
        with csvi.plate("data", 40, subsample_size=10) as idx:
            z = csvi.sample("z", dist.Normal(np.zeros((10, 2)), 1.0).to_event(1))
            csvi.sample("x", dist.Bernoulli(decoder(z), validate_args=False).to_event(1),
                        obs=data[idx])

    def guide(data):
        csvi.module("encoder", encoder)
        with csvi.plate("data", 40, subsample_size=10) as idx:
            out = encoder(data[idx])
            csvi.sample("z", dist.Normal(out[:, :2], csvi.exp(out[:, 2:])).to_event(1))

    def fresh_guide():
        for m, state in zip((encoder, decoder), start):  # each run from the same weights
            m.load_state_dict(state)
        return guide

    return model, fresh_guide, data
