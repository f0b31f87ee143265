"""ConvergenceStop: Stan's ADVI rule against a direct transcription on known
ELBO sequences, a converging fit that stops near the exact posterior (eager
and compiled alike, drawing nothing from the steps' stream), a diverging fit
flagged with a RuntimeWarning, and its argument checks."""
import warnings

import numpy as np
import pytest
from scipy import stats

import conjugate as cj
import csvi
from csvi.infer import SVI, ConvergenceStop, Trace_ELBO
from csvi.infer.autoguide import AutoNormal
from csvi.optim import Adam

POST_MEAN, POST_SD = cj.normal_normal_posterior(cj.NN_DATA)


def stan_rule(elbos, tol, window, eval_every):
    """Stan's stochastic_gradient_ascent loop written out: (index of the
    evaluation that stops, or None; the evaluations that flag divergence)."""
    buffer, previous, flagged = [], 0.0, []
    for i, elbo in enumerate(elbos):
        buffer = (buffer + [abs(previous - elbo) / abs(elbo)])[-window:]
        previous = elbo
        mean, median = np.mean(buffer), sorted(buffer)[len(buffer) // 2]
        if (i + 1) * eval_every > 2 * eval_every and (mean > 0.5 or median > 0.5):
            flagged.append(i)
        if mean < tol or median < tol:
            return i, flagged
    return None, flagged


@pytest.mark.parametrize("seed", range(6))
def test_the_rule_is_stans(seed):
    rng = np.random.default_rng(seed)
    elbos = -100 * np.exp(-np.arange(40) / rng.uniform(2, 10)) - 50 + rng.normal(0, 0.5, 40)
    if seed % 2:
        elbos[5:8] *= 3  # a jump
    stop = ConvergenceStop(tol=0.01, eval_every=10, window=int(rng.integers(2, 6)))
    stop.start(400)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        reasons = [stop.update(10 * (i + 1), e) for i, e in enumerate(elbos)]
    stopped = next((i for i, r in enumerate(reasons) if r is not None), None)
    expected, flagged = stan_rule(elbos, 0.01, stop.window, 10)
    assert stopped == expected
    flagged = [i for i in flagged if expected is None or i <= expected]
    assert len(record) == (1 if flagged else 0)
    for step, elbo, change, mean, median in stop.history[1:]:
        assert change == pytest.approx(abs(elbo - stop.history[step // 10 - 2][1]) / abs(elbo))


def test_default_window_is_stans():
    stop = ConvergenceStop(eval_every=100)
    stop.start(10000)
    assert stop._size == 10
    stop.start(500)
    assert stop._size == 2
    stop = ConvergenceStop(eval_every=10)
    stop.start(2000)
    assert stop._size == 20


def test_first_evaluation_counts_a_change_of_one_and_median_is_the_upper_middle():
    stop = ConvergenceStop(tol=0.001, eval_every=1, window=3)
    stop.start(100)
    assert stop.update(1, -10.0) is None
    assert stop.history[0][2:] == (1.0, 1.0, 1.0)
    assert stop.update(2, -10.5) is None
    assert stop.history[1][4] == 1.0  # median of 2 = the larger one
    assert stop.update(3, -10.5) is None  # median of (1, 0.048, 0) = 0.048
    reason = stop.update(4, -10.5)  # buffer (0.048, 0, 0): median 0, mean 0.016
    assert reason == "converged at step 4: median relative ELBO change 0 < tol 0.001"


def test_divergence_is_flagged_once_with_a_runtime_warning():
    stop = ConvergenceStop(tol=0.01, eval_every=5)
    stop.start(1000)
    with pytest.warns(RuntimeWarning, match="diverging") as record:
        for i, elbo in enumerate([-10.0, -30.0, -5.0, -40.0, -3.0]):
            stop.update(5 * (i + 1), elbo)
    assert len(record) == 1
    _, flagged = stan_rule([-10.0, -30.0, -5.0, -40.0, -3.0], 0.01, stop._size, 5)
    assert flagged[0] == 2  # the first evaluation after step 2 * eval_every


def fit(compile, stop=None, steps=4000, seed=0, lr=0.05):
    csvi.clear_param_store()
    csvi.set_rng_seed(seed)
    guide = AutoNormal(cj.normal_normal)
    svi = SVI(cj.normal_normal, guide, Adam({"lr": lr}), Trace_ELBO())
    result = svi.run(steps, cj.NN_DATA, compile=compile, stop=stop, progress_bar=False)
    return result


@pytest.mark.parametrize("compile", [False, True])
def test_a_converging_fit_stops_near_the_exact_posterior(compile):
    stop = ConvergenceStop(tol=0.002, eval_every=100, num_particles=200)
    result = fit(compile, stop)
    assert result.stop_reason.startswith("converged at step")
    assert result.num_steps < 4000 and result.num_steps % 100 == 0
    assert len(result.convergence) == result.num_steps // 100
    loc = result.params["AutoNormal.locs.z"]
    scale = result.params["AutoNormal.scales.z"]
    assert abs(loc - POST_MEAN) < 0.1 and abs(scale / POST_SD - 1) < 0.2
    # the last check's ELBO against the closed form of this Normal guide
    elbo = (stats.norm(cj.M0, cj.S0).logpdf(loc) - scale ** 2 / (2 * cj.S0 ** 2)
            + np.sum(stats.norm(loc, cj.SIGMA).logpdf(cj.NN_DATA))
            - len(cj.NN_DATA) * scale ** 2 / (2 * cj.SIGMA ** 2) + stats.norm(loc, scale).entropy())
    # the guide is near exact, so the log weights barely vary: a tight check
    assert result.convergence[-1][1] == pytest.approx(elbo, abs=0.05)


def test_compiled_and_eager_stop_at_the_same_step_with_the_same_fit():
    eager = fit(False, ConvergenceStop(tol=0.002, eval_every=50))
    compiled = fit(True, ConvergenceStop(tol=0.002, eval_every=50))
    assert eager.num_steps == compiled.num_steps
    np.testing.assert_array_equal(eager.losses, compiled.losses)
    assert eager.params.keys() == compiled.params.keys()
    for name in eager.params:
        np.testing.assert_array_equal(eager.params[name], compiled.params[name])


def test_checking_draws_nothing_from_the_steps_stream():
    stopped = fit(True, ConvergenceStop(tol=0.002, eval_every=50))
    plain = fit(True, None, steps=stopped.num_steps)
    np.testing.assert_array_equal(stopped.losses, plain.losses)
    for name in plain.params:
        np.testing.assert_array_equal(stopped.params[name], plain.params[name])


def test_a_diverging_fit_is_flagged():
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = fit(False, ConvergenceStop(tol=0.001, eval_every=20), steps=400, lr=10.0)
    assert any(issubclass(w.category, RuntimeWarning) and "diverging" in str(w.message)
               for w in record)
    assert result.stop_reason == "num_steps (400) reached"


def test_a_run_that_does_not_converge_says_so():
    result = fit(True, ConvergenceStop(tol=1e-9, eval_every=100), steps=300)
    assert result.stop_reason == "num_steps (300) reached"
    assert result.num_steps == 300 and len(result.convergence) == 3


@pytest.mark.parametrize("kwargs,match", [
    ({"tol": 0}, "tol"), ({"tol": float("nan")}, "tol"), ({"eval_every": 0}, "eval_every"),
    ({"num_particles": 1.5}, "num_particles"), ({"window": 0}, "window")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ConvergenceStop(**kwargs)


def test_run_refuses_a_stop_that_is_not_a_stop_rule(fresh_store):
    svi = SVI(cj.normal_normal, AutoNormal(cj.normal_normal), Adam({"lr": 0.05}), Trace_ELBO())
    with pytest.raises(TypeError, match="ConvergenceStop"):
        svi.run(10, cj.NN_DATA, stop=0.01, progress_bar=False)
    assert len(csvi.get_param_store()) == 0


def test_a_non_finite_elbo_estimate_stops_the_run_with_its_losses(fresh_store):
    stop = ConvergenceStop(eval_every=5)
    stop.start(100)
    with pytest.raises(ValueError, match="ELBO estimate at step 5 is nan"):
        stop.update(5, float("nan"))

    class Failing(ConvergenceStop):
        def check(self, step, svi, args, kwargs):
            return self.update(step, float("inf"))

    svi = SVI(cj.normal_normal, AutoNormal(cj.normal_normal), Adam({"lr": 0.05}), Trace_ELBO())
    with pytest.raises(ValueError, match="ELBO estimate") as info:
        svi.run(100, cj.NN_DATA, compile=True, stop=Failing(eval_every=20), progress_bar=False)
    assert info.value.losses.shape == (20,) and np.isfinite(info.value.losses).all()
