"""What `svi.run` returns: losses, final params, stop reason, speed and a
readable summary; the loss plot (skipped without matplotlib) and its clear
ImportError without it; the progress line with the relative ELBO change."""
import sys

import numpy as np
import pytest

import conjugate as cj
import csvi
from csvi.infer import SVI, ConvergenceStop, SVIRunResult, Trace_ELBO
from csvi.infer.autoguide import AutoNormal
from csvi.infer.svi import _PlainProgress
from csvi.optim import Adam
from csvi.plot import smoothed


def run(steps=200, **kwargs):
    guide = AutoNormal(cj.gamma_poisson)
    svi = SVI(cj.gamma_poisson, guide, Adam({"lr": 0.05}), Trace_ELBO())
    return svi.run(steps, cj.COUNTS, progress_bar=False, **kwargs)


@pytest.mark.parametrize("compile", [False, True])
def test_result_fields(fresh_store, compile):
    result = run(compile=compile)
    assert isinstance(result, SVIRunResult) and result.compiled == compile
    assert result.losses.shape == (200,) and np.isfinite(result.losses).all()
    assert result.num_steps == 200 and result.stop_reason == "num_steps (200) reached"
    assert result.elapsed > 0 and result.steps_per_second == pytest.approx(200 / result.elapsed)
    store = csvi.get_param_store()
    assert sorted(result.params) == sorted(store.keys())
    for name, value in result.params.items():  # constrained values, copies
        np.testing.assert_array_equal(value, store[name].numpy())
    assert result.params["AutoNormal.scales.rate"] > 0
    result.params["AutoNormal.locs.rate"] += 1.0
    assert store["AutoNormal.locs.rate"].numpy() != result.params["AutoNormal.locs.rate"]


def test_summary_reads_well(fresh_store):
    result = run(stop=ConvergenceStop(tol=0.05, eval_every=50))
    text = result.summary()
    lines = text.splitlines()
    assert lines[0].startswith(f"SVI run: {result.num_steps} steps in ")
    assert "steps/s, eager)" in lines[0]
    assert lines[1] == f"stopped: {result.stop_reason}"
    tenth = result.num_steps // 10
    assert f"{np.mean(result.losses[-tenth:]):.6g} (last {tenth} steps)" in lines[2]
    assert lines[3].startswith(f"ELBO checks: {len(result.convergence)}")
    loc = result.params["AutoNormal.locs.rate"]
    assert any("AutoNormal.locs.rate" in line and f"{float(loc):.4f}"[:5] in line
               for line in lines)
    assert "SVIRunResult(num_steps=" in repr(result)


def test_zero_steps(fresh_store):
    result = run(steps=0)
    assert result.num_steps == 0 and "loss:" not in result.summary()


def test_plain_progress_shows_rate_loss_and_change(capsys):
    bar = _PlainProgress(10)
    bar.update(9, 1.5, 0.0123)
    bar.close()
    err = capsys.readouterr().err
    assert "10/10 steps  loss 1.5" in err and "steps/s" in err and "ELBO change 0.0123" in err


def test_smoothed_is_a_trailing_moving_average():
    losses = np.random.default_rng(0).normal(size=50)
    out = smoothed(losses, 7)
    expected = [losses[max(0, i - 6):i + 1].mean() for i in range(50)]
    np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_plot(fresh_store):
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    result = run(stop=ConvergenceStop(tol=0.05, eval_every=50))
    ax = result.plot(smooth=10)
    lines = ax.get_lines()
    np.testing.assert_array_equal(lines[0].get_ydata(), result.losses)
    np.testing.assert_allclose(lines[1].get_ydata(), smoothed(result.losses, 10))
    np.testing.assert_allclose(lines[2].get_ydata(), [-row[1] for row in result.convergence])
    assert ax.get_xlabel() == "step"
    plt.close(ax.figure)
    ax = csvi.plot_losses(result.losses)
    assert len(ax.get_lines()) == 2
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="smooth"):
        csvi.plot_losses(result, smooth=0)


def test_plot_without_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"csvi\[plot\]"):
        csvi.plot_losses(np.ones(3))
