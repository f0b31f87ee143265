"""A container's CPU quota caps csvi's worker pool (csvi/cpu_quota.py): the
cgroup files read against hand-made hierarchies, the pool's size under a
cap, and, where this machine lets the test make a cgroup, a real quota."""
import os
import subprocess
import sys
import uuid

import pytest

from csvi.cpu_quota import cpu_quota
from scripts import CSVI_HOME, TESTS, run_python

TWO_CPUS = hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) >= 2


def fake_proc(tmp_path, mounts, cgroup_lines, files):
    """A /proc/self with `mounts` ((fstype, root, mount point, super options)
    lines of mountinfo) and `cgroup_lines`, and cgroup files {path: text}
    under tmp_path; returns the fake proc directory."""
    proc = tmp_path / "proc"
    proc.mkdir()
    lines = [f"{30 + k} 23 0:{40 + k} {root} {point} rw,relatime - {fstype} {fstype} {opts}"
             for k, (fstype, root, point, opts) in enumerate(mounts)]
    lines.insert(0, "22 1 8:1 / / rw,relatime - ext4 /dev/root rw")
    (proc / "mountinfo").write_text("\n".join(lines) + "\n")
    (proc / "cgroup").write_text("\n".join(cgroup_lines) + "\n")
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(proc)


def test_cgroup_v2_takes_the_smallest_limit_over_the_ancestors(tmp_path):
    fs = tmp_path / "fs"
    proc = fake_proc(tmp_path, [("cgroup2", "/", str(fs), "rw")], ["0::/kube/pod/ctr"], {
        fs / "kube" / "pod" / "ctr" / "cpu.max": "max 100000\n",
        fs / "kube" / "pod" / "cpu.max": "150000 100000\n",
        fs / "kube" / "cpu.max": "400000 100000\n",
    })
    assert cpu_quota(proc) == 1.5


def test_cgroup_v2_without_a_quota_gives_none(tmp_path):
    fs = tmp_path / "fs"
    proc = fake_proc(tmp_path, [("cgroup2", "/", str(fs), "rw")], ["0::/user.slice"], {
        fs / "user.slice" / "cpu.max": "max 100000\n",
    })
    assert cpu_quota(proc) is None


def test_cgroup_v1_quota_and_period(tmp_path):
    fs = tmp_path / "cpu,cpuacct"
    proc = fake_proc(tmp_path, [("cgroup", "/", str(fs), "rw,cpu,cpuacct")],
                     ["4:cpu,cpuacct:/batch", "3:memory:/batch"], {
        fs / "batch" / "cpu.cfs_quota_us": "50000\n",
        fs / "batch" / "cpu.cfs_period_us": "100000\n",
        fs / "cpu.cfs_quota_us": "-1\n",
        fs / "cpu.cfs_period_us": "100000\n",
    })
    assert cpu_quota(proc) == 0.5


def test_cgroup_v1_mount_of_a_container_subtree(tmp_path):
    # docker without a cgroup namespace: /proc/self/cgroup names the host's
    # path, and the mount shows that sub-tree at the mount point
    fs = tmp_path / "cpu"
    proc = fake_proc(tmp_path, [("cgroup", "/docker/abc", str(fs), "rw,cpu")],
                     ["2:cpu:/docker/abc"], {
        fs / "cpu.cfs_quota_us": "200000\n",
        fs / "cpu.cfs_period_us": "100000\n",
    })
    assert cpu_quota(proc) == 2.0


def test_hybrid_hierarchies_take_the_smaller_and_ignore_other_controllers(tmp_path):
    v1, v2, mem = tmp_path / "cpu", tmp_path / "unified", tmp_path / "memory"
    proc = fake_proc(tmp_path, [("cgroup", "/", str(mem), "rw,memory"),
                                ("cgroup", "/", str(v1), "rw,cpu"),
                                ("cgroup2", "/", str(v2), "rw")],
                     ["5:memory:/a", "2:cpu:/a", "0::/a", "garbage line"], {
        mem / "a" / "cpu.cfs_quota_us": "1000\n",  # not a cpu hierarchy: ignored
        mem / "a" / "cpu.cfs_period_us": "100000\n",
        v1 / "a" / "cpu.cfs_quota_us": "300000\n",
        v1 / "a" / "cpu.cfs_period_us": "100000\n",
        v2 / "a" / "cpu.max": "250000 100000\n",
    })
    assert cpu_quota(proc) == 2.5


def test_missing_or_malformed_files_give_none(tmp_path):
    assert cpu_quota(str(tmp_path / "no-proc")) is None
    fs = tmp_path / "fs"
    proc = fake_proc(tmp_path, [("cgroup2", "/", str(fs), "rw")], ["0::/x"], {
        fs / "x" / "cpu.max": "lots\n",
    })
    assert cpu_quota(proc) is None


@pytest.mark.skipif(not TWO_CPUS, reason="needs two CPUs")
def test_the_cap_sizes_the_pool_and_omp_num_threads_still_decides():
    code = """
from csvi import _core
_core._set_cpu_limit({limit})
print(_core._pool_threads())
"""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    capped = subprocess.run([sys.executable, "-c", code.format(limit=1)], capture_output=True,
                            text=True, env=dict(env, PYTHONPATH=CSVI_HOME), timeout=120,
                            cwd=TESTS)
    assert capped.stdout.strip() == "1", capped.stderr[-2000:]
    told = run_python(code.format(limit=1), env={"OMP_NUM_THREADS": "2"})
    assert told.stdout.strip() == "2", told.stderr[-2000:]
    free = subprocess.run([sys.executable, "-c", code.format(limit=0)], capture_output=True,
                          text=True, env=dict(env, PYTHONPATH=CSVI_HOME), timeout=120, cwd=TESTS)
    assert free.stdout.strip() == str(min(len(os.sched_getaffinity(0)), 64)), free.stderr


def make_quota_cgroup():
    """A new cgroup of one CPU per period, v1 or v2, as (procs file, cleanup),
    or None where this process may not make one."""
    name = "csvi-test-" + uuid.uuid4().hex[:8]
    v1 = "/sys/fs/cgroup/cpu"
    try:
        if os.path.isfile(os.path.join(v1, "cpu.cfs_quota_us")):
            path = os.path.join(v1, name)
            os.mkdir(path)
            with open(os.path.join(path, "cpu.cfs_period_us"), "w") as f:
                f.write("100000")
            with open(os.path.join(path, "cpu.cfs_quota_us"), "w") as f:
                f.write("100000")
        else:
            root = "/sys/fs/cgroup"
            with open(os.path.join(root, "cgroup.subtree_control")) as f:
                if "cpu" not in f.read().split():
                    return None
            path = os.path.join(root, name)
            os.mkdir(path)
            with open(os.path.join(path, "cpu.max"), "w") as f:
                f.write("100000 100000")
    except OSError:
        return None
    return os.path.join(path, "cgroup.procs"), lambda: os.rmdir(path)


@pytest.mark.skipif(not TWO_CPUS, reason="needs two CPUs")
def test_a_real_one_cpu_quota_gives_a_one_thread_pool():
    made = make_quota_cgroup()
    if made is None:
        pytest.skip("this process may not make a cgroup with a CPU quota")
    procs, cleanup = made
    code = ("import csvi; from csvi import _core; "
            "print(csvi.cpu_quota.cpu_quota(), _core._pool_threads())")
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    try:
        run = subprocess.run(["sh", "-c", 'echo $$ > "$0" && exec "$1" -c "$2"', procs,
                              sys.executable, code], capture_output=True, text=True,
                             env=dict(env, PYTHONPATH=CSVI_HOME), timeout=120, cwd=TESTS)
    finally:
        cleanup()
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["1.0", "1"]
