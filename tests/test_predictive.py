"""Predictive (csvi.infer.Predictive): Pyro's choice of sites and output
shapes, sequential and parallel draws checked against the distributions they
come from (KS tests), and draws through autoguides."""
import numpy as np
import pytest
from scipy import stats

import csvi
import csvi.distributions as dist
from csvi import handlers
from csvi.infer import SVI, Predictive, Trace_ELBO
from csvi.infer.autoguide import AutoDiagonalNormal, AutoNormal
from csvi.optim import Adam

import conjugate as cj

pytestmark = pytest.mark.usefixtures("fresh_store")

S_PAR = 2000   # parallel draws
S_SEQ = 300    # sequential draws (a Python loop of model runs)
KS_P = 1e-3  # each KS test fails a correct sampler once in a thousand seeds


def model(n=3, y=None):
    z = csvi.sample("z", dist.Normal(0.0, 1.0))
    s = csvi.sample("s", dist.Gamma(2.0, 2.0))
    csvi.deterministic("d", 2.0 * z)
    with csvi.plate("data", n):
        return csvi.sample("y", dist.Normal(z, s), obs=y)


def ks(x, cdf, *args):
    assert stats.kstest(np.ravel(x), cdf, args=args).pvalue > KS_P


@pytest.mark.parametrize("parallel", [False, True])
def test_default_sites_and_shapes_with_posterior_samples(parallel):
    S = S_PAR if parallel else S_SEQ
    rng = np.random.default_rng(0)
    post = {"z": rng.normal(size=S), "s": rng.gamma(2.0, 0.5, size=S)}
    out = Predictive(model, posterior_samples=post, parallel=parallel)()
    # the sites not in posterior_samples, deterministic included, no _RETURN;
    # a global site gets a 1 for the model's plate dim (Pyro's shapes)
    assert {k: v.shape for k, v in out.items()} == {"d": (S, 1), "y": (S, 3)}
    assert all(isinstance(v, np.ndarray) for v in out.values())
    np.testing.assert_allclose(out["d"][:, 0], 2.0 * post["z"])
    ks((out["y"] - post["z"][:, None]) / post["s"][:, None], "norm")

    out = Predictive(model, posterior_samples=post, return_sites=["z", "y", "_RETURN"],
                     parallel=parallel)()
    assert {k: v.shape for k, v in out.items()} == {"z": (S, 1), "y": (S, 3),
                                                    "_RETURN": (S, 3)}
    np.testing.assert_array_equal(out["z"][:, 0], post["z"])
    np.testing.assert_array_equal(out["_RETURN"], out["y"])


@pytest.mark.parametrize("parallel", [False, True])
def test_prior_predictive_matches_direct_sampling(parallel):
    S = S_PAR if parallel else S_SEQ
    out = Predictive(model, num_samples=S, parallel=parallel)(4)
    assert {k: v.shape for k, v in out.items()} == {"z": (S, 1), "s": (S, 1), "d": (S, 1),
                                                    "y": (S, 4)}
    ks(out["z"], "norm")
    ks(out["s"], "gamma", 2.0, 0.0, 0.5)
    np.testing.assert_allclose(out["d"], 2.0 * out["z"])
    ks((out["y"] - out["z"]) / out["s"], "norm")
    direct = np.array([model(4).numpy() for _ in range(S_SEQ)])  # plain runs of the model
    assert stats.ks_2samp(out["y"][:, 0], direct[:, 0]).pvalue > KS_P
    # observed sites come back as given, once per sample
    out = Predictive(model, num_samples=5, parallel=parallel)(2, np.array([1.0, 2.0]))
    np.testing.assert_array_equal(out["y"], np.tile([1.0, 2.0], (5, 1)))


@pytest.mark.parametrize("parallel", [False, True])
def test_predictive_through_autonormal(parallel):
    S = S_PAR if parallel else S_SEQ
    y = np.array([0.5, 1.5, 1.0])
    guide = AutoNormal(model)
    SVI(model, guide, Adam({"lr": 0.01}), Trace_ELBO()).step(3, y)
    store = csvi.get_param_store()
    for name, value in [("locs.z", 0.7), ("scales.z", 0.4), ("locs.s", -0.3),
                        ("scales.s", 0.25)]:
        store.unconstrained(f"AutoNormal.{name}")[...] = value  # on the reals
    loc_z, scale_z = store["AutoNormal.locs.z"].item(), store["AutoNormal.scales.z"].item()
    loc_s, scale_s = store["AutoNormal.locs.s"].item(), store["AutoNormal.scales.s"].item()
    out = Predictive(model, guide=guide, num_samples=S, parallel=parallel)(3)
    # with a guide: every sample site of the model, latents drawn by the guide
    assert {k: v.shape for k, v in out.items()} == {"z": (S, 1), "s": (S, 1), "d": (S, 1),
                                                    "y": (S, 3)}
    ks(out["z"], "norm", loc_z, scale_z)
    ks(out["s"], "lognorm", scale_s, 0.0, np.exp(loc_s))
    np.testing.assert_allclose(out["d"], 2.0 * out["z"])
    ks((out["y"] - out["z"]) / out["s"], "norm")
    out = Predictive(model, guide=guide, num_samples=10, return_sites=["d"],
                     parallel=parallel)(3)
    assert list(out) == ["d"] and out["d"].shape == (10, 1)


@pytest.mark.parametrize("parallel", [False, True])
def test_predictive_through_autodiagonalnormal_with_local_latents(parallel):
    S = S_PAR if parallel else S_SEQ
    guide = AutoDiagonalNormal(cj.hierarchical)
    guide(cj.H_DATA)
    store = csvi.get_param_store()
    loc = np.linspace(-1.0, 1.0, 9)
    store.unconstrained("AutoDiagonalNormal.loc")[...] = loc
    scale = store["AutoDiagonalNormal.scale"].numpy()
    out = Predictive(cj.hierarchical, guide=guide, num_samples=S, parallel=parallel,
                     return_sites=["mu", "z"])(cj.H_DATA)
    assert out["mu"].shape == (S, 1) and out["z"].shape == (S, 8)
    ks(out["mu"], "norm", loc[0], scale[0])
    ks((out["z"] - loc[1:]) / scale[1:], "norm")


def test_vectorized_trace():
    post = {"z": np.zeros(7), "s": np.ones(7)}
    tr = Predictive(model, posterior_samples=post).get_vectorized_trace(3)
    assert tr.nodes["y"]["value"].shape == (7, 3)
    assert tr.nodes["z"]["value"].shape == (7, 1)


def test_predictive_errors():
    with pytest.raises(ValueError, match="posterior_samples or num_samples"):
        Predictive(model)
    with pytest.raises(ValueError, match="not both"):
        Predictive(model, {"z": np.zeros(3)}, guide=AutoNormal(model))
    with pytest.raises(ValueError, match=r"return_sites \['w'\] are not sample sites"):
        Predictive(model, num_samples=2, return_sites=["w"])()
    with pytest.raises(TypeError, match="return_sites"):
        Predictive(model, num_samples=2, return_sites="z")
    with pytest.warns(UserWarning, match="has 3 samples but num_samples is 5"):
        assert Predictive(model, {"z": np.zeros(3)}, num_samples=5).num_samples == 3

    def unplated(n=3):
        z = csvi.sample("z", dist.Normal(0.0, 1.0))
        csvi.sample("y", dist.Normal(z * np.ones(n), 1.0))  # a batch dim with no plate

    with pytest.raises(ValueError, match="vectorized run.*parallel=False"):
        Predictive(unplated, num_samples=4, parallel=True)()


def test_bayesian_regression_example():
    """examples/bayesian_regression.py, briefly: AutoNormal reaches the
    mean-field optimum and Predictive's line matches it."""
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "examples" / "bayesian_regression.py"
    spec = importlib.util.spec_from_file_location("bayesian_regression_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    X, y = example.make_data()
    guide = example.fit(X, y, num_steps=4000, progress_bar=False)
    loc, scale = example.guide_moments(guide)
    mean, prec = example.exact_posterior(X, y)
    mf_sd = 1.0 / np.sqrt(np.diag(prec))
    np.testing.assert_array_less(np.abs(loc - mean), 0.1 * mf_sd)
    np.testing.assert_array_less(np.abs(scale / mf_sd - 1), 0.1)
    X_new = np.array([[0.0, 0.0, 0.0], [1.0, -1.0, 0.0]])
    draws = example.predict(guide, X_new, num_samples=S_PAR)
    assert draws["mean"].shape == (S_PAR, 2) and draws["obs"].shape == (S_PAR, 2)
    A_new = np.column_stack([X_new, np.ones(2)])
    line_loc, line_sd = A_new @ loc, np.sqrt(A_new ** 2 @ scale ** 2)
    for i in range(2):
        ks(draws["mean"][:, i], "norm", line_loc[i], line_sd[i])
        ks(draws["obs"][:, i], "norm", line_loc[i], np.hypot(line_sd[i], example.NOISE))
