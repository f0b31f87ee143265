"""The benchmark harness must keep running (timings are never asserted)."""
import json
import os
import pathlib
import subprocess
import sys

import csvi

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_harness_runs_csvi_models_briefly(tmp_path):
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--models",
         "coin_loop,eight_schools", "--steps", "5", "--repeats", "1", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
        # the workers must import the same csvi as these tests
        env=dict(os.environ, PYTHONPATH=str(pathlib.Path(csvi.__file__).parents[1])))
    assert proc.returncode == 0, proc.stderr
    rows = json.loads((out / "results.json").read_text())
    assert {(r["model"], r["mode"]) for r in rows} == {
        ("coin_loop", "eager"), ("coin_loop", "compiled"),
        ("eight_schools", "eager"), ("eight_schools", "compiled")}
    for row in rows:
        assert "error" not in row, row
        assert row["steps"] == 5 and row["per_step_median_s"] > 0
    assert "| coin_loop | csvi | compiled |" in (out / "results.md").read_text()


def test_cpu_per_step_child_times_csvi_models():
    for mode in ("eager", "compiled"):
        proc = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "cpu_per_step.py"), "--steps", "3",
             "--child", "csvi", "eight_schools", mode],
            capture_output=True, text=True, timeout=300,
            env=dict(os.environ, PYTHONPATH=str(pathlib.Path(csvi.__file__).parents[1])))
        assert proc.returncode == 0, proc.stderr
        assert float(proc.stdout.splitlines()[-1]) > 0


def test_vae_harness_runs_briefly(tmp_path):
    out = tmp_path / "vae.md"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "vae.py"), "--configs",
         "csvi-compiled-fused-f32-split2,floor-32", "--repeats", "1", "--steps", "5",
         "--warmup", "1", "--epochs", "0", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONPATH=str(pathlib.Path(csvi.__file__).parents[1])))
    assert proc.returncode == 0, proc.stderr
    rows = [line.split("|")[1:-1] for line in out.read_text().splitlines()
            if line.startswith("| csvi compiled") or line.startswith("| floor")]
    assert len(rows) == 2, out.read_text()
    for cells in rows:  # ms/step and CPU ms/step are numbers, not "skipped: ..."
        assert float(cells[1]) > 0 and float(cells[2]) > 0, cells
