"""Gradient noise: the recorded per-param statistics against the analytic
gradients of the same draws, the ring buffer keeping the last `window` steps,
per-site statistics of autoguides, and the refusals."""
import numpy as np
import pytest

import conjugate as cj
import csvi
import csvi.distributions as dist
from csvi import constraints
from csvi.infer import SVI, ConvergenceStop, JitTrace_ELBO, Trace_ELBO
from csvi.infer.autoguide import AutoDiagonalNormal, AutoGuideList, AutoNormal
from csvi.infer.gradient_noise import GradientRecorder
from csvi.optim import Adam

SEEN = []  # (m, s, z) of every guide run


def recording_guide(x):
    m = csvi.param("m", 0.5)
    s = csvi.param("s", 1.0, constraint=constraints.positive)
    z = csvi.sample("z", dist.Normal(m, s))
    SEEN.append((float(m), float(s), float(z)))


def analytic_grads(m, s, z, x):
    """d(-ELBO)/dm and d(-ELBO)/d(log s) of one particle z = m + s eps:
    -ELBO = -log p(x, z) + log N(eps) - log s."""
    dlogp_dz = -(z - cj.M0) / cj.S0 ** 2 + np.sum(x - z) / cj.SIGMA ** 2
    eps = (z - m) / s
    return -dlogp_dz, -dlogp_dz * eps * s - 1.0


@pytest.mark.parametrize("steps,window", [(40, 40), (60, 25), (10, 30)])
def test_statistics_equal_the_analytic_gradients_of_the_same_draws(fresh_store, steps, window):
    SEEN.clear()
    svi = SVI(cj.normal_normal, recording_guide, Adam({"lr": 0.05}), Trace_ELBO())
    result = svi.run(steps, cj.NN_DATA, track_gradients=window, progress_bar=False)
    grads = np.array([analytic_grads(m, s, z, cj.NN_DATA) for m, s, z in SEEN])[-window:]
    noise = result.gradient_noise
    for i, name in enumerate(["m", "s"]):
        np.testing.assert_allclose(noise.draws[name], grads[:, i], rtol=1e-10, atol=1e-12)
        assert noise.num_steps[name] == min(steps, window)
        assert noise.mean[name] == pytest.approx(grads[:, i].mean(), rel=1e-10)
        assert noise.variance[name] == pytest.approx(grads[:, i].var(ddof=1), rel=1e-10)
        assert noise.snr(name) == pytest.approx(
            abs(grads[:, i].mean()) / grads[:, i].std(ddof=1), rel=1e-10)
    assert noise.sites == {}  # a hand-written guide: per-param only
    assert "grad variance" in result.summary()


def test_recorder_rolls_oldest_first():
    recorder = GradientRecorder(3)
    for i in range(7):
        recorder.record("w", np.array([i, -i], dtype=float))
    np.testing.assert_array_equal(recorder.result().draws["w"][:, 0], [4, 5, 6])


def test_autoguide_sites(fresh_store):
    svi = SVI(cj.regression, AutoDiagonalNormal(cj.regression), Adam({"lr": 0.05}),
              Trace_ELBO())
    noise = svi.run(30, cj.REG_X, cj.REG_Y, track_gradients=20,
                    progress_bar=False).gradient_noise
    loc = noise.draws["AutoDiagonalNormal.loc"]
    scale = noise.draws["AutoDiagonalNormal.scale"]
    assert list(noise.sites) == ["w"]
    variance, snr = noise.site_stats("w")
    both = np.concatenate([loc, scale], axis=1)
    assert variance == pytest.approx(both.var(axis=0, ddof=1).mean(), rel=1e-12)
    assert snr == pytest.approx(np.linalg.norm(both.mean(axis=0))
                                / np.sqrt(both.var(axis=0, ddof=1).sum()), rel=1e-12)


def test_autonormal_and_guide_lists_map_params_to_their_sites(fresh_store):
    def model():
        a = csvi.sample("a", dist.Normal(0.0, 1.0))
        b = csvi.sample("b", dist.Normal(0.0, 1.0).expand([2]).to_event(1))
        csvi.sample("obs", dist.Normal(a + b, 1.0).to_event(1), obs=np.array([0.5, -0.5]))

    guide = AutoGuideList(model)
    guide.append(AutoNormal(csvi.handlers.block(model, expose=["a"])))
    guide.append(AutoDiagonalNormal(csvi.handlers.block(model, expose=["b"])))
    svi = SVI(model, guide, Adam({"lr": 0.05}), Trace_ELBO())
    noise = svi.run(10, track_gradients=5, progress_bar=False).gradient_noise
    assert sorted(noise.sites) == ["a", "b"]
    assert sorted(n for n, _ in noise.sites["a"]) == ["AutoGuideList.0.locs.a",
                                                   "AutoGuideList.0.scales.a"]
    assert [index for _, index in noise.sites["b"]] == [slice(0, 2), slice(0, 2)]
    kinds = [row[0] for row in noise.table()]
    assert kinds.count("param") == 4 and kinds.count("site") == 2


def test_compiled_runs_refuse_to_track(fresh_store):
    svi = SVI(cj.normal_normal, AutoNormal(cj.normal_normal), Adam({"lr": 0.05}), Trace_ELBO())
    with pytest.raises(ValueError, match="track_gradients"):
        svi.run(10, cj.NN_DATA, compile=True, track_gradients=5, progress_bar=False)
    jit = SVI(cj.normal_normal, AutoNormal(cj.normal_normal), Adam({"lr": 0.05}),
              JitTrace_ELBO())
    with pytest.raises(ValueError, match="track_gradients"):
        jit.run(10, cj.NN_DATA, track_gradients=5, progress_bar=False)
    with pytest.raises(ValueError, match="window"):
        svi.run(10, cj.NN_DATA, track_gradients=1, progress_bar=False)
    assert len(csvi.get_param_store()) == 0  # refused before any step


def test_tracking_with_a_stop_rule_and_off_again(fresh_store):
    svi = SVI(cj.normal_normal, AutoNormal(cj.normal_normal), Adam({"lr": 0.05}), Trace_ELBO())
    result = svi.run(300, cj.NN_DATA, track_gradients=50,
                     stop=ConvergenceStop(tol=0.5, eval_every=100), progress_bar=False)
    assert result.stop_reason.startswith("converged")
    assert result.gradient_noise.num_steps["AutoNormal.locs.z"] == 50
    assert svi._gradient_recorder is None
    assert svi.run(5, cj.NN_DATA, progress_bar=False).gradient_noise is None
