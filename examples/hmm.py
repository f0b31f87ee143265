"""Pyro's examples/hmm.py with csvi: hidden Markov models of polyphonic music,
trained by MAP Baum-Welch -- the hidden states summed out exactly by
(Jit)TraceEnum_ELBO under csvi.markov, the probability tables point-estimated
by AutoDelta.  Models 0-3 are Pyro's code with only the imports (and torch's
tensor ops, as NumPy's) changed.

No download at run time: the sequences are drawn from a known HMM of the JSB
chorales' shape (88 binary tones, about a hundred sequences of up to 150
steps; `make_data`), split into train and test.

    python examples/hmm.py [-m 1] [-n 50] [-b 8] [--jit] [-t 50]
"""
import argparse
import logging

import numpy as np

import csvi as pyro
import csvi.distributions as dist
from csvi import handlers as poutine
from csvi.infer import SVI, JitTraceEnum_ELBO, TraceEnum_ELBO
from csvi.infer.autoguide import AutoDelta
from csvi.ops.indexing import Vindex
from csvi.optim import Adam

logging.basicConfig(format="%(relativeCreated) 9d %(message)s", level=logging.INFO)


# x[t-1] --> x[t] --> x[t+1]
#    |        |         |
#    V        V         V
# y[t-1]     y[t]     y[t+1]
#
# Model 0 iterates over the sequences of a minibatch one at a time.
def model_0(sequences, lengths, args, batch_size=None, include_prior=True):
    num_sequences, max_length, data_dim = sequences.shape
    with poutine.mask(mask=include_prior):
        # stay in the same state with 90% probability; jump uniformly otherwise
        probs_x = pyro.sample("probs_x",
                              dist.Dirichlet(0.9 * np.eye(args.hidden_dim) + 0.1).to_event(1))
        # a weak prior: about 10% of the notes active at any one time
        probs_y = pyro.sample("probs_y",
                              dist.Beta(0.1, 0.9).expand([args.hidden_dim, data_dim]).to_event(2))
    tones_plate = pyro.plate("tones", data_dim, dim=-1)
    for i in pyro.plate("sequences", len(sequences), batch_size):
        length = lengths[i]
        sequence = sequences[i, :length]
        x = 0
        for t in pyro.markov(range(length)):
            x = pyro.sample("x_{}_{}".format(i, t), dist.Categorical(probs_x[x]),
                            infer={"enumerate": "parallel"})
            with tones_plate:
                pyro.sample("y_{}_{}".format(i, t), dist.Bernoulli(probs_y[x.squeeze(-1)]),
                            obs=sequence[t])


# Model 1 vectorizes the minibatch in a plate at dim -2 (the tones at -1), so
# enumeration uses dims -3 and -4, recycled along the chain by markov.
def model_1(sequences, lengths, args, batch_size=None, include_prior=True):
    num_sequences, max_length, data_dim = map(int, sequences.shape)
    with poutine.mask(mask=include_prior):
        probs_x = pyro.sample("probs_x",
                              dist.Dirichlet(0.9 * np.eye(args.hidden_dim) + 0.1).to_event(1))
        probs_y = pyro.sample("probs_y",
                              dist.Beta(0.1, 0.9).expand([args.hidden_dim, data_dim]).to_event(2))
    tones_plate = pyro.plate("tones", data_dim, dim=-1)
    with pyro.plate("sequences", num_sequences, batch_size, dim=-2) as batch:
        lengths = lengths[batch]
        x = 0
        # a fixed number of steps under the jit (one program for every minibatch)
        for t in pyro.markov(range(max_length if args.jit else int(lengths.max()))):
            with poutine.mask(mask=(t < lengths).unsqueeze(-1)):
                x = pyro.sample("x_{}".format(t), dist.Categorical(probs_x[x]),
                                infer={"enumerate": "parallel"})
                with tones_plate:
                    pyro.sample("y_{}".format(t), dist.Bernoulli(probs_y[x.squeeze(-1)]),
                                obs=sequences[batch, t])


# Model 2 adds a dependency of y[t] on y[t-1] (the "arHMM").
def model_2(sequences, lengths, args, batch_size=None, include_prior=True):
    num_sequences, max_length, data_dim = map(int, sequences.shape)
    with poutine.mask(mask=include_prior):
        probs_x = pyro.sample("probs_x",
                              dist.Dirichlet(0.9 * np.eye(args.hidden_dim) + 0.1).to_event(1))
        probs_y = pyro.sample("probs_y",
                              dist.Beta(0.1, 0.9).expand([args.hidden_dim, 2, data_dim])
                              .to_event(3))
    tones_plate = pyro.plate("tones", data_dim, dim=-1)
    with pyro.plate("sequences", num_sequences, batch_size, dim=-2) as batch:
        lengths = lengths[batch]
        x, y = 0, 0
        for t in pyro.markov(range(max_length if args.jit else int(lengths.max()))):
            with poutine.mask(mask=(t < lengths).unsqueeze(-1)):
                x = pyro.sample("x_{}".format(t), dist.Categorical(probs_x[x]),
                                infer={"enumerate": "parallel"})
                # index probs_y by x, y and the tones (the plate's indices)
                with tones_plate as tones:
                    y = pyro.sample("y_{}".format(t), dist.Bernoulli(probs_y[x, y, tones]),
                                    obs=sequences[batch, t]).long()


# Model 3 is a factorial HMM: two hidden chains w and x jointly emit y.
def model_3(sequences, lengths, args, batch_size=None, include_prior=True):
    num_sequences, max_length, data_dim = map(int, sequences.shape)
    hidden_dim = int(args.hidden_dim ** 0.5)  # split between w and x
    with poutine.mask(mask=include_prior):
        probs_w = pyro.sample("probs_w",
                              dist.Dirichlet(0.9 * np.eye(hidden_dim) + 0.1).to_event(1))
        probs_x = pyro.sample("probs_x",
                              dist.Dirichlet(0.9 * np.eye(hidden_dim) + 0.1).to_event(1))
        probs_y = pyro.sample("probs_y",
                              dist.Beta(0.1, 0.9).expand([hidden_dim, hidden_dim, data_dim])
                              .to_event(3))
    tones_plate = pyro.plate("tones", data_dim, dim=-1)
    with pyro.plate("sequences", num_sequences, batch_size, dim=-2) as batch:
        lengths = lengths[batch]
        w, x = 0, 0
        for t in pyro.markov(range(max_length if args.jit else int(lengths.max()))):
            with poutine.mask(mask=(t < lengths).unsqueeze(-1)):
                w = pyro.sample("w_{}".format(t), dist.Categorical(probs_w[w]),
                                infer={"enumerate": "parallel"})
                x = pyro.sample("x_{}".format(t), dist.Categorical(probs_x[x]),
                                infer={"enumerate": "parallel"})
                with tones_plate as tones:
                    pyro.sample("y_{}".format(t), dist.Bernoulli(Vindex(probs_y)[w, x, tones]),
                                obs=sequences[batch, t])


models = {name[len("model_"):]: model for name, model in globals().items()
          if name.startswith("model_")}


def make_data(num_sequences=100, max_length=150, data_dim=88, hidden_dim=8, seed=0):
    """Binary sequences of the JSB chorales' shape from a sticky HMM whose
    states each sound a few of the tones; returns (sequences (N, T, D) with
    zeros past each length, lengths (N,))."""
    rng = np.random.default_rng(seed)
    trans = 0.85 * np.eye(hidden_dim) + 0.15 * rng.dirichlet(np.ones(hidden_dim), hidden_dim)
    emit = np.full((hidden_dim, data_dim), 0.01)
    for k in range(hidden_dim):
        emit[k, rng.choice(data_dim, 4, replace=False)] = 0.9
    lengths = rng.integers(max_length // 3, max_length + 1, size=num_sequences)
    sequences = np.zeros((num_sequences, max_length, data_dim))
    for i, length in enumerate(lengths):
        state = rng.integers(hidden_dim)
        for t in range(length):
            state = rng.choice(hidden_dim, p=trans[state])
            sequences[i, t] = rng.random(data_dim) < emit[state]
    return sequences, lengths


def train(model, sequences, lengths, args):
    """MAP Baum-Welch: `args.num_steps` SVI steps on minibatches of
    `args.batch_size` sequences; returns (guide, elbo, losses per step and
    observation)."""
    guide = AutoDelta(poutine.block(model, expose_fn=lambda msg: msg["name"].startswith("probs_")))
    optim = Adam({"lr": args.learning_rate})
    Elbo = JitTraceEnum_ELBO if args.jit else TraceEnum_ELBO
    elbo = Elbo(max_plate_nesting=1 if model is model_0 else 2)
    svi = SVI(model, guide, optim, elbo)
    num_observations = float(lengths.sum())
    losses = []
    for step in range(args.num_steps):
        loss = svi.step(sequences, lengths, args=args, batch_size=args.batch_size)
        losses.append(loss / num_observations)
        logging.info("{: >5d}\t{}".format(step, losses[-1]))
    return guide, elbo, losses


def main(args):
    sequences, lengths = make_data(args.num_sequences, args.max_length, seed=args.seed)
    present_notes = (sequences == 1).sum(0).sum(0) > 0  # drop notes never played
    sequences = sequences[..., present_notes]
    if args.truncate:
        lengths = np.minimum(lengths, args.truncate)
        sequences = sequences[:, :args.truncate]
    split = len(sequences) * 4 // 5
    train_seqs, train_lengths = sequences[:split], lengths[:split]
    test_seqs, test_lengths = sequences[split:], lengths[split:]
    model = models[args.model]
    logging.info("Training {} on {} sequences".format(model.__name__, len(train_seqs)))
    pyro.set_rng_seed(args.seed)
    pyro.clear_param_store()
    guide, elbo, losses = train(model, train_seqs, train_lengths, args)
    # evaluated on all the sequences, without the prior, as Pyro's example
    train_loss = elbo.loss(model, guide, train_seqs, train_lengths, args, include_prior=False)
    logging.info("training loss = {}".format(train_loss / float(train_lengths.sum())))
    test_loss = elbo.loss(model, guide, test_seqs, test_lengths, args, include_prior=False)
    logging.info("test loss = {}".format(test_loss / float(test_lengths.sum())))
    capacity = sum(np.size(value) for _, value in pyro.get_param_store().items())
    logging.info("{} capacity = {} parameters".format(model.__name__, capacity))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="MAP Baum-Welch learning of HMMs")
    parser.add_argument("-m", "--model", default="1", choices=sorted(models))
    parser.add_argument("-n", "--num-steps", default=50, type=int)
    parser.add_argument("-b", "--batch-size", default=8, type=int)
    parser.add_argument("-d", "--hidden-dim", default=16, type=int)
    parser.add_argument("-lr", "--learning-rate", default=0.05, type=float)
    parser.add_argument("-t", "--truncate", type=int)
    parser.add_argument("--num-sequences", default=100, type=int)
    parser.add_argument("--max-length", default=150, type=int)
    parser.add_argument("--seed", default=0, type=int)
    parser.add_argument("--jit", action="store_true")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
