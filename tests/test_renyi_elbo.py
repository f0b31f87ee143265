"""RenyiELBO: its value against the bound computed with scipy from the same
draws, its gradient against finite differences of the bound under common
random numbers, the IWAE limit log p(x) for many particles, per-datum bounds
in a plate around the whole model, and compiled == eager."""
import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

import csvi
import csvi.distributions as dist
from csvi import _core, handlers
from csvi.infer import RenyiELBO, Trace_ELBO
from csvi.optim import Adam
from compiled_check import assert_compiled_matches_eager

X = np.array([0.7, -0.2, 1.4])


def model(x):
    z = csvi.sample("z", dist.Normal(0.0, 1.0))
    with csvi.plate("data", len(x)):
        csvi.sample("x", dist.Normal(z, 1.0), obs=x)


def guide(x, m=0.4, s=0.6):
    csvi.sample("z", dist.Normal(csvi.param("m", m), csvi.param("s", s,
                                                                constraint=dist.constraints.positive)))


def bound_from_traces(traces, alpha, x):
    w = []
    for model_tr, guide_tr in traces:
        z = float(guide_tr.nodes["z"].value)
        m, s = float(csvi.get_param_store()["m"]), float(csvi.get_param_store()["s"])
        w.append(stats.norm(0, 1).logpdf(z) + stats.norm(z, 1).logpdf(x).sum()
                 - stats.norm(m, s).logpdf(z))
    w = (1 - alpha) * np.array(w)
    return (logsumexp(w) - np.log(len(w))) / (1 - alpha)


@pytest.mark.parametrize("alpha", [0.0, 0.5, -1.0, 2.0])
def test_value_matches_the_bound_from_the_same_draws(fresh_store, alpha):
    with handlers.seed(rng_seed=1):
        loss, _, traces = RenyiELBO(alpha=alpha, num_particles=5).loss_tensors(model, guide, (X,), {})
    assert float(loss) == pytest.approx(-bound_from_traces(traces, alpha, X), rel=1e-12)


@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_gradient_is_the_bounds_gradient_under_common_random_numbers(fresh_store, alpha):
    elbo = RenyiELBO(alpha=alpha, num_particles=4)

    def loss_at(m, s):
        csvi.clear_param_store()
        with handlers.seed(rng_seed=7):
            tape = _core.Tape(record_all=True)
            loss, surrogate, _ = _core.record_call(tape, elbo.loss_tensors, model,
                                                   lambda x: guide(x, m, s), (X,), {})
        return float(loss), surrogate, tape

    _, surrogate, tape = loss_at(0.4, 0.6)
    tape.backward(surrogate, False)
    store = csvi.get_param_store()
    grads = [float(tape.grad_of(store.leaf("m"))), float(tape.grad_of(store.leaf("s")))]
    h = 1e-6
    fd_m = (loss_at(0.4 + h, 0.6)[0] - loss_at(0.4 - h, 0.6)[0]) / (2 * h)
    # s is stored as log s: d/d(log s) = s d/ds
    fd_s = 0.6 * (loss_at(0.4, 0.6 + h)[0] - loss_at(0.4, 0.6 - h)[0]) / (2 * h)
    np.testing.assert_allclose(grads, [fd_m, fd_s], rtol=1e-5, atol=1e-8)


def test_many_particles_approach_the_evidence(fresh_store):
    """alpha = 0 (IWAE): the bound tends to log p(x) as particles grow."""
    cov = np.eye(len(X)) + np.ones((len(X), len(X)))
    log_evidence = stats.multivariate_normal(np.zeros(len(X)), cov).logpdf(X)
    csvi.set_rng_seed(0)
    losses = [RenyiELBO(num_particles=400).loss(model, guide, X) for _ in range(5)]
    assert np.mean(losses) == pytest.approx(-log_evidence, abs=0.02)
    # and it is tighter than the ELBO, whose gap is KL(q || posterior) = 0.049
    elbo = np.mean([Trace_ELBO(num_particles=400).loss(model, guide, X) for _ in range(5)])
    assert np.mean(losses) < elbo - 0.03


def test_plate_around_the_whole_model_gives_per_datum_bounds(fresh_store):
    def local_model(x):
        with csvi.plate("data", len(x)):
            z = csvi.sample("z", dist.Normal(0.0, 1.0))
            csvi.sample("x", dist.Normal(z, 1.0), obs=x)

    def local_guide(x):
        with csvi.plate("data", len(x)):
            csvi.sample("z", dist.Normal(csvi.param("m", np.zeros(len(x))), 0.8))

    with handlers.seed(rng_seed=2):
        loss, _, traces = RenyiELBO(num_particles=3).loss_tensors(local_model, local_guide, (X,), {})
    w = np.array([stats.norm(0, 1).logpdf(g.nodes["z"].value)
                  + stats.norm(g.nodes["z"].value, 1).logpdf(X)
                  - stats.norm(0, 0.8).logpdf(g.nodes["z"].value) for _, g in traces])
    assert float(loss) == pytest.approx(-(logsumexp(w, axis=0) - np.log(3)).sum(), rel=1e-12)


def test_alpha_one_is_refused():
    with pytest.raises(ValueError, match="alpha must not be 1"):
        RenyiELBO(alpha=1)


def test_compiled_equals_eager(fresh_store):
    assert_compiled_matches_eager(model, lambda: guide, lambda: Adam({"lr": 0.02}),
                                  lambda: RenyiELBO(alpha=0.5, num_particles=3), (X,), steps=25)
