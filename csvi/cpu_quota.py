"""The CPUs a container's CPU quota gives this process (Linux cgroups).

Why: csvi's worker pool defaults to the CPUs the process may run on
(sched_getaffinity), but a container limited by a quota (`docker --cpus=1`,
a Kubernetes CPU limit, a systemd `CPUQuota=`) still sees every CPU of the
host.  There the pool's threads share one CPU's worth of time and each
parallel pass waits for the thread the quota has stopped: under a one-CPU
quota on two cores the VAE's compiled step took 14.6 ms on two threads
against 11.2 ms on one (benchmarks/RESULTS.md, session 29).  So when
`import csvi` finds a quota it caps the pool's default at the quota rounded
up, as the JVM, Go and .NET runtimes do; `OMP_NUM_THREADS` still decides
when set.

The quota is the smallest over the process's cgroup and its ancestors:
cgroup v2's `cpu.max` ("max 100000" or "150000 100000", microseconds of CPU
per period) and cgroup v1's `cpu.cfs_quota_us` / `cpu.cfs_period_us` (-1:
none), found through /proc/self/mountinfo and /proc/self/cgroup.
"""
import math
import os

__all__ = ["cpu_quota", "apply_default"]


def _mounts(mountinfo):
    """(version, mount root, mount point) of the cgroup hierarchies that hold
    CPU limits: cgroup2, and cgroup v1 mounted with the cpu controller."""
    found = []
    for line in mountinfo.splitlines():
        head, sep, tail = line.partition(" - ")
        fields, after = head.split(), tail.split()
        if not sep or len(fields) < 5 or len(after) < 3:
            continue
        root, point, fstype = fields[3], fields[4], after[0]
        if fstype == "cgroup2":
            found.append((2, root, point))
        elif fstype == "cgroup" and "cpu" in after[2].split(","):
            found.append((1, root, point))
    return found


def _paths(cgroup):
    """{version: path} of the process's cgroups: v2's "0::path" line and the
    v1 line whose controllers include cpu."""
    paths = {}
    for line in cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            paths[2] = parts[2]
        elif "cpu" in parts[1].split(","):
            paths[1] = parts[2]
    return paths


def _read_text(path):
    try:
        with open(path) as f:
            return f.read()
    except (OSError, UnicodeDecodeError):
        return None


def _read(path):
    """The words of a small file, or None."""
    text = _read_text(path)
    return None if text is None else text.split()


def _limit(version, directory):
    """CPUs the cgroup at `directory` may use per period, or None."""
    if version == 2:
        words = _read(os.path.join(directory, "cpu.max"))
        quota, period = (words[0], words[1]) if words and len(words) == 2 else (None, None)
    else:
        quota = (_read(os.path.join(directory, "cpu.cfs_quota_us")) or [None])[0]
        period = (_read(os.path.join(directory, "cpu.cfs_period_us")) or [None])[0]
    try:
        quota, period = int(quota), int(period)
    except (TypeError, ValueError):
        return None  # "max", missing or unreadable
    return quota / period if quota > 0 and period > 0 else None


def _directories(root, point, path):
    """The cgroup's directory under the mount point and its ancestors up to
    the mount point.  A mount of a sub-tree (a container's view without a
    cgroup namespace: root "/docker/<id>") shows `path` from `root` down."""
    if path == root or path.startswith(root.rstrip("/") + "/"):
        relative = path[len(root.rstrip("/")):].strip("/")
    else:
        relative = ""
    parts = relative.split("/") if relative else []
    return [os.path.join(point, *parts[:k]) for k in range(len(parts), -1, -1)]


def cpu_quota(proc="/proc/self"):
    """The CPUs per period the process's cgroups allow (e.g. 1.5), or None
    without a quota (or off Linux)."""
    mountinfo = _read_text(os.path.join(proc, "mountinfo"))
    cgroup = _read_text(os.path.join(proc, "cgroup"))
    if mountinfo is None or cgroup is None:
        return None
    paths = _paths(cgroup)
    limits = []
    for version, root, point in _mounts(mountinfo):
        if version not in paths:
            continue
        for directory in _directories(root, point, paths[version]):
            limit = _limit(version, directory)
            if limit is not None:
                limits.append(limit)
    return min(limits) if limits else None


def apply_default():
    """Caps csvi's pool at the quota rounded up (called by `import csvi`,
    before the pool starts)."""
    from csvi import _core
    quota = cpu_quota()
    if quota is not None:
        _core._set_cpu_limit(max(1, math.ceil(quota - 1e-9)))
