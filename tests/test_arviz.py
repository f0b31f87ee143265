"""to_inference_data (skipped without ArviZ): its groups against the guide,
scipy's pointwise log-likelihood and the data, the losses in sample_stats,
and the round trip through `arviz.summary` and `arviz.loo`."""
import numpy as np
import pytest
from scipy import stats

import conjugate as cj
from csvi.infer import SVI, Predictive, Trace_ELBO, to_inference_data
from csvi.infer.autoguide import AutoNormal
from csvi.optim import Adam

az = pytest.importorskip("arviz")
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")


@pytest.fixture
def fitted(fresh_store):
    guide = AutoNormal(cj.normal_normal)
    svi = SVI(cj.normal_normal, guide, Adam({"lr": 0.05}), Trace_ELBO())
    return guide, svi.run(2000, cj.NN_DATA, compile=True, progress_bar=False)


@pytest.mark.parametrize("parallel", [False, True])
def test_groups_from_a_guide(fitted, parallel):
    guide, result = fitted
    data = to_inference_data(guide, cj.normal_normal, cj.NN_DATA, num_samples=300,
                             result=result, parallel=parallel)
    assert set(data.groups()) == {"posterior", "posterior_predictive", "observed_data",
                                  "log_likelihood", "sample_stats"}
    z = data.posterior["z"].values
    assert z.shape == (1, 300)
    loc = result.params["AutoNormal.locs.z"]
    scale = result.params["AutoNormal.scales.z"]
    assert abs(z.mean() - loc) < 4 * scale / np.sqrt(300)
    assert stats.kstest(z.ravel(), stats.norm(loc, scale).cdf).pvalue > 1e-3
    x_rep = data.posterior_predictive["x"].values
    assert x_rep.shape == (1, 300, 12)
    np.testing.assert_array_equal(data.observed_data["x"].values, cj.NN_DATA)
    expected = stats.norm(z[0][:, None], cj.SIGMA).logpdf(cj.NN_DATA[None, :])
    np.testing.assert_allclose(data.log_likelihood["x"].values[0], expected, rtol=1e-12)
    # the predictive draws follow N(z_s, SIGMA) given each draw
    resid = (x_rep[0] - z[0][:, None]) / cj.SIGMA
    assert stats.kstest(resid.ravel(), "norm").pvalue > 1e-3
    np.testing.assert_array_equal(data.sample_stats["loss"].values, result.losses)
    assert data.sample_stats["step"].values[-1] == 2000


def test_summary_and_loo_round_trip(fitted):
    guide, result = fitted
    data = to_inference_data(guide, cj.normal_normal, cj.NN_DATA, num_samples=400,
                             result=result)
    table = az.summary(data, kind="stats")
    assert list(table.index) == ["z"]
    assert table.loc["z", "mean"] == pytest.approx(data.posterior["z"].values.mean(), abs=1e-3)
    assert table.loc["z", "sd"] == pytest.approx(data.posterior["z"].values.std(ddof=1),
                                                 abs=1e-3)
    loo = az.loo(data)
    assert np.isfinite(loo["elpd_loo"])


def test_from_posterior_samples(fitted):
    guide, _ = fitted
    samples = Predictive(cj.normal_normal, guide=guide, num_samples=50,
                         return_sites=["z"])(cj.NN_DATA)
    data = to_inference_data(samples, cj.normal_normal, cj.NN_DATA)
    np.testing.assert_array_equal(data.posterior["z"].values[0], samples["z"].reshape(50))
    assert data.posterior_predictive["x"].shape == (1, 50, 12)
    assert "sample_stats" not in data.groups()


def test_bad_sources(fitted):
    with pytest.raises(ValueError, match="not latent sites"):
        to_inference_data({"w": np.zeros(5)}, cj.normal_normal, cj.NN_DATA)
    with pytest.raises(TypeError, match="guide or a dict"):
        to_inference_data(3, cj.normal_normal, cj.NN_DATA)
