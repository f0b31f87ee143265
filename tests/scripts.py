"""Running a snippet in a fresh Python process against the csvi under test
(for crashes, signals and restores that need a process of their own)."""
import os
import subprocess
import sys

import csvi

CSVI_HOME = os.path.dirname(os.path.dirname(os.path.abspath(csvi.__file__)))
TESTS = os.path.dirname(os.path.abspath(__file__))


def run_python(code, timeout=120, env=None):
    """Runs `code` in a new interpreter that imports this csvi and the test
    helpers; returns the CompletedProcess (text output)."""
    prelude = f"import sys; sys.path[:0] = [{CSVI_HOME!r}, {TESTS!r}]\n"
    return subprocess.run([sys.executable, "-c", prelude + code], capture_output=True,
                          text=True, timeout=timeout, check=False, cwd=TESTS,
                          env=dict(os.environ, **(env or {})))
