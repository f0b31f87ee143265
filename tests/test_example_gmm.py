"""examples/gmm.py (Pyro's GMM tutorial): the MAP of the globals equals the
maximizer of the exact marginal log joint (assignments summed out, found by
scipy.optimize), infer_discrete's MAP assignment is each point's most
probable component, and the enumerating full guide learns the exact
assignment posterior."""
import numpy as np
from scipy import optimize, stats
from scipy.special import logsumexp, softmax

from example_loader import load_example


def exact_map(data):
    """argmax over (weights, scale, locs) of log p(data, weights, scale, locs),
    in the constrained values (AutoDelta's objective)."""
    def neg_log_joint(x):
        w, scale, locs = softmax(np.append(x[0], 0.0)), np.exp(x[1]), x[2:]
        lp = stats.dirichlet.logpdf(w, [0.5, 0.5]) + stats.lognorm.logpdf(scale, 2.0)
        lp += stats.norm.logpdf(locs, 0, 10).sum()
        lp += logsumexp(np.log(w)[:, None] + stats.norm.logpdf(data[None], locs[:, None], scale),
                        axis=0).sum()
        return -lp

    best = optimize.minimize(neg_log_joint, [0.5, np.log(0.7), 11.0, 0.5], method="Nelder-Mead",
                             options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000})
    x = best.x
    return softmax(np.append(x[0], 0.0)), np.exp(x[1]), x[2:]


def test_gmm_example(fresh_store):
    example = load_example("gmm")
    global_guide, losses = example.fit_map(steps=200, inits=10)
    assert losses[-1] < losses[0]
    est = global_guide(example.data)
    order = np.argsort(-np.asarray(est["locs"]))  # the component near 11 first
    w, scale, locs = exact_map(example.data)
    np.testing.assert_allclose(np.asarray(est["weights"])[order], w, atol=2e-3)
    np.testing.assert_allclose(np.asarray(est["locs"])[order], locs, atol=2e-2)
    np.testing.assert_allclose(float(est["scale"]), scale, atol=1e-2)
    assignment = np.asarray(example.classifier(global_guide, example.data))
    assert assignment.dtype == np.int64
    np.testing.assert_array_equal(assignment == order[0], [False, False, True, True, True])
    probs, _ = example.fit_full_guide(global_guide, steps=200)
    posterior = softmax(np.log(np.asarray(est["weights"]))[None]
                        + stats.norm.logpdf(example.data[:, None], np.asarray(est["locs"])[None],
                                            float(est["scale"])), axis=1)
    np.testing.assert_allclose(probs, posterior, atol=1e-2)
