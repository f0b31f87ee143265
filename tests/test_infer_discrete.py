"""infer_discrete: the MAP assignment equals the brute-force argmax, draws
follow the exact posterior (chi-square), and the wrapped model's return
value and trace carry the assigned values."""
import itertools

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

import csvi
import csvi.distributions as dist
from csvi import handlers
from csvi.infer import infer_discrete

RNG = np.random.default_rng(11)
K = 3
INIT = RNG.dirichlet(np.ones(K))
TRANS = RNG.dirichlet(np.ones(K), size=K)
MU = np.array([-1.5, 0.2, 1.7])


def hmm(ys):
    x, xs = 0, []
    for t in csvi.markov(range(len(ys))):
        probs = INIT if t == 0 else csvi.as_tensor(TRANS)[x]
        x = csvi.sample(f"x_{t}", dist.Categorical(probs), infer={"enumerate": "parallel"})
        xs.append(x)
        csvi.sample(f"y_{t}", dist.Normal(csvi.as_tensor(MU)[x], 1.0), obs=ys[t])
    return xs


def path_log_probs(ys):
    return {path: np.log(INIT[path[0]]) + np.log(TRANS[path[:-1], path[1:]]).sum()
            + stats.norm.logpdf(ys, MU[list(path)]).sum()
            for path in itertools.product(range(K), repeat=len(ys))}


def test_map_equals_the_brute_force_argmax(fresh_store):
    for seed in range(5):
        ys = np.random.default_rng(seed).normal(size=5) * 1.5
        lps = path_log_probs(ys)
        best = max(lps, key=lps.get)
        xs = infer_discrete(hmm, first_available_dim=-1, temperature=0)(ys)
        assert tuple(int(x) for x in xs) == best


def test_draws_follow_the_exact_posterior(fresh_store):
    ys = np.array([0.3, -1.2])
    lps = path_log_probs(ys)
    paths = list(lps)
    exact = np.exp(np.array([lps[p] for p in paths]) - logsumexp(list(lps.values())))
    csvi.set_rng_seed(0)
    sample = infer_discrete(hmm, first_available_dim=-1, temperature=1)
    n = 1500
    counts = dict.fromkeys(paths, 0)
    for _ in range(n):
        counts[tuple(int(x) for x in sample(ys))] += 1
    observed = np.array([counts[p] for p in paths])
    keep = exact * n >= 5  # chi-square needs expected counts of 5 or more
    expected = exact[keep] * n
    chi2 = stats.chisquare(np.append(observed[keep], observed[~keep].sum()),
                           np.append(expected, n - expected.sum()))
    assert chi2.pvalue > 1e-3


def test_plated_mixture_map_is_each_points_argmax(fresh_store):
    data = RNG.normal(size=8) * 2
    w = np.array([0.2, 0.5, 0.3])

    def model(data):
        with csvi.plate("data", len(data)):
            z = csvi.sample("z", dist.Categorical(w), infer={"enumerate": "parallel"})
            csvi.sample("x", dist.Normal(csvi.as_tensor(MU)[z], 1.0), obs=data)
            return z

    z = infer_discrete(model, first_available_dim=-2, temperature=0)(data)
    expected = np.argmax(np.log(w)[:, None] + stats.norm.logpdf(data[None], MU[:, None]), 0)
    np.testing.assert_array_equal(np.asarray(z), expected)
    assert z.shape == (8,)


def test_global_and_local_sites_given_replayed_globals(fresh_store):
    """The GMM tutorial's use: a guide's global values replayed, the
    assignments inferred; the trace carries them."""
    data = np.array([-2.1, -1.8, 2.2, 1.9, 0.1])

    def model(data):
        locs = csvi.sample("locs", dist.Normal(0.0, 10.0).expand([2]).to_event(1))
        with csvi.plate("data", len(data)):
            z = csvi.sample("assignment", dist.Categorical(np.array([0.5, 0.5])),
                            infer={"enumerate": "parallel"})
            csvi.sample("obs", dist.Normal(locs[z], 1.0), obs=data)

    def guide(data):
        csvi.sample("locs", dist.Delta(np.array([-2.0, 2.0])).to_event(1))

    guide_trace = handlers.trace(guide).get_trace(data)
    trained = handlers.replay(model, trace=guide_trace)
    tr = handlers.trace(infer_discrete(trained, first_available_dim=-2, temperature=0)
                        ).get_trace(data)
    np.testing.assert_array_equal(np.asarray(tr.nodes["assignment"]["value"]),
                                  [0, 0, 1, 1, 1])
    np.testing.assert_allclose(np.asarray(tr.nodes["locs"]["value"]), [-2.0, 2.0])


def test_temperature_must_be_zero_or_one():
    with pytest.raises(ValueError, match="temperature"):
        infer_discrete(hmm, first_available_dim=-1, temperature=0.5)
    with pytest.raises(ValueError, match="first_available_dim"):
        infer_discrete(hmm, temperature=0)
