"""How many CPUs this process may use: its affinity, capped by its container's CPU quota (cgroup v2 ``cpu.max``
or v1 ``cpu.cfs_quota_us``), never the host's core count. Gradescope's default container grants half a CPU on a
many-core host: torch's default of one thread per core would fight over that half."""
import math
import os
from pathlib import Path

CGROUPS = Path("/sys/fs/cgroup")


def _quota(folder, v2):
    """The CPU quota set in ``folder`` (CPUs, maybe fractional), or None when there is none."""
    try:
        if v2:
            quota, period = (folder / "cpu.max").read_text().split()
        else:
            quota, period = ((folder / name).read_text().strip() for name in ("cpu.cfs_quota_us",
                                                                                 "cpu.cfs_period_us"))
    except (OSError, ValueError):
        return None
    return None if quota in ("max", "-1") else int(quota) / int(period)


def quota(membership=Path("/proc/self/cgroup"), root=CGROUPS):
    """The tightest CPU quota on this process's cgroup and its ancestors, in CPUs; None when unlimited.
    ``membership`` lists the cgroups (``/proc/self/cgroup``'s format), ``root`` is where they are mounted."""
    found = []
    try:
        lines = membership.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, where = line.split(":", 2)
        if controllers == "":
            bases, v2 = [root], True
        elif "cpu" in controllers.split(","):
            bases, v2 = [root / "cpu", root / controllers], False
        else:
            continue
        for base in bases:
            # Inside a container the path is often its own root ("/"); outside, every ancestor can set one.
            folder = base / where.lstrip("/")
            while True:
                found.append(_quota(folder, v2))
                if folder == base:
                    break
                folder = folder.parent
    found = [q for q in found if q]
    return min(found) if found else None


def container_cpus():
    """Threads worth running: the CPUs of this process's affinity, at most its quota rounded up (at least 1)."""
    cpus = len(os.sched_getaffinity(0))
    limit = quota()
    return cpus if limit is None else max(1, min(cpus, math.ceil(limit)))
