"""examples/convergence.py, briefly: the fit stops itself before its step
budget, near the least-squares fit, with a good k-hat; the script writes its
loss plot (when matplotlib is installed)."""
import importlib.util
import pathlib
import subprocess
import sys

import numpy as np
import pytest

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "convergence.py"


def load_example():
    spec = importlib.util.spec_from_file_location("convergence_example", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    return example


def test_fit_stops_itself_near_least_squares():
    example = load_example()
    guide, result, khat = example.fit(num_steps=20000, progress_bar=False)
    assert result.stop_reason.startswith("converged") and result.num_steps < 20000
    design = np.column_stack([example.X, np.ones(len(example.X))])
    coef = np.linalg.lstsq(design, example.Y, rcond=None)[0]
    np.testing.assert_allclose(result.params["AutoNormal.locs.w"], coef[:3], atol=0.05)
    assert abs(result.params["AutoNormal.locs.b"] - coef[3]) < 0.05
    assert khat < 0.7


def test_script_writes_the_plot(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "losses.png"
    proc = subprocess.run([sys.executable, str(EXAMPLE), "--out", str(out)],
                          capture_output=True, text=True, timeout=300,
                          cwd=EXAMPLE.parents[1])
    assert proc.returncode == 0, proc.stderr
    assert "stopped: converged" in proc.stdout and "PSIS k-hat" in proc.stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
