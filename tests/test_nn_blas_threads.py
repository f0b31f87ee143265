"""csvi's BLAS thread policy (csvi/blas_threads.py): one OpenBLAS thread once
csvi loads BLAS, unless CSVI_BLAS_THREADS or an explicit OPENBLAS_NUM_THREADS
says otherwise; set_blas_threads at any time.  Each case runs in a fresh
process, since the policy applies when BLAS first loads."""
import json
import os
import pathlib
import subprocess
import sys

import pytest

import csvi

SCRIPT = """
import json, numpy as np, csvi
from threadpoolctl import threadpool_info
before = csvi.get_blas_threads()
y = csvi.nn.Linear(3, 4)(np.ones((5, 3)))       # the first product loads BLAS
after = csvi.get_blas_threads()
csvi.set_blas_threads(2)
scipy_libs = [i["num_threads"] for i in threadpool_info() if "scipy.libs" in i["filepath"]
              or "scipy/" in i["filepath"]]
print(json.dumps({"after_load": after, "after_set": csvi.get_blas_threads(),
                  "threadpoolctl_sees": scipy_libs}))
"""


def run(env_extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_NUM_THREADS", "CSVI_BLAS_THREADS")}
    env.update(env_extra, PYTHONPATH=str(pathlib.Path(csvi.__file__).parents[1]))
    # cwd: the tests' folder, so `-c` cannot import the source tree's csvi
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, timeout=120, cwd=os.path.dirname(os.path.abspath(__file__)))
    return proc


@pytest.mark.parametrize("env, expected", [
    ({}, 1),                                  # csvi's default
    ({"CSVI_BLAS_THREADS": "2"}, 2),          # csvi's override
    ({"OPENBLAS_NUM_THREADS": "2"}, 2),       # the user's explicit OpenBLAS setting stays
    ({"OPENBLAS_NUM_THREADS": "2", "CSVI_BLAS_THREADS": "1"}, 1),
])
def test_policy_when_blas_loads(env, expected):
    pytest.importorskip("threadpoolctl")  # the independent witness of the setting
    proc = run(env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["after_load"] == expected
    assert out["after_set"] == 2 and out["threadpoolctl_sees"] == [2]


def test_bad_settings_are_refused():
    proc = run({"CSVI_BLAS_THREADS": "many"})
    assert proc.returncode != 0 and "CSVI_BLAS_THREADS must be a positive integer" in proc.stderr
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="positive integer"):
            csvi.set_blas_threads(bad)
