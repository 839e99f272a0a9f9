"""A cgroup of the child's own, where the grader may create one (as root, with a writable cgroup tree; not on
Gradescope, whose container has none): the kernel caps its memory (memfds and tmpfs files included) and kills
all of it at once. Where none can be made, ``Group.create`` gives None and the other mechanisms hold alone.

cgroup v2 (a unified tree at /sys/fs/cgroup): ``memory.max``, ``cgroup.kill``. cgroup v1: the memory hierarchy's
``memory.limit_in_bytes``, and the grader SIGKILLs every task listed until none is left.
"""
import os
import signal
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
NEAR_LIMIT = 4 << 20   # a v1 group whose peak came this close to its limit was stopped by it


def _own(controller):
    """This process's cgroup in ``controller``'s v1 hierarchy, or its v2 one ("" controller)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, where = line.split(":", 2)
        if (controller in controllers.split(",")) if controller else controllers == "":
            return where.lstrip("/")
    raise OSError("no such cgroup")


class Group:
    def __init__(self, path, v2):
        self.path, self.v2 = path, v2

    @classmethod
    def create(cls, name, memory_mb):
        """A new cgroup ``name`` beside the grader's own, capped at ``memory_mb``; None where none can be made."""
        if os.geteuid() != 0:
            return None
        try:
            if (ROOT / "cgroup.controllers").exists():
                parent, v2 = ROOT / _own(""), True
                limit = "memory.max"
            else:
                parent, v2 = ROOT / "memory" / _own("memory"), False
                limit = "memory.limit_in_bytes"
            path = parent / name
            path.mkdir()
        except (OSError, ValueError):
            return None
        group = cls(path, v2)
        try:
            (path / limit).write_text(str(memory_mb << 20))
            for swap in ("memory.swap.max", "memory.memsw.limit_in_bytes"):
                if (path / swap).exists():
                    (path / swap).write_text("0" if swap.endswith("max") else str(memory_mb << 20))
        except OSError:
            group.remove()
            return None
        return group

    def pids(self):
        try:
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return []

    def oom_kill(self):
        """Whether the kernel killed a process of the group for lack of memory: "own" when over the group's own
        limit, "above" when over a limit above it (the container's), "" when not."""
        events = self._counts("memory.events" if self.v2 else "memory.oom_control")
        if events.get("oom_kill", 0) == 0:
            return ""
        if self.v2:
            return "own" if events.get("max", 0) > 0 else "above"
        # v1: some kernels leave failcnt at 0 when the group's own limit kills; its peak then stands at the limit.
        limit = self._counts("memory.limit_in_bytes").get("", 0)
        peak = max(self._counts(name).get("", 0) for name in ("memory.max_usage_in_bytes",
                                                             "memory.memsw.max_usage_in_bytes"))
        own = self._counts("memory.failcnt").get("", 0) > 0 or (limit and peak >= limit - NEAR_LIMIT)
        return "own" if own else "above"

    def _counts(self, name):
        """{key: count} of a cgroup file of "key count" lines (a bare count under the key "")."""
        try:
            lines = (self.path / name).read_text().splitlines()
        except OSError:
            return {}
        found = {}
        for line in lines:
            key, _, value = line.rpartition(" ")
            if value.isdigit():
                found[key] = int(value)
        return found

    def kill(self):
        """SIGKILL everything in the group, until it is empty."""
        if self.v2:
            try:
                (self.path / "cgroup.kill").write_text("1")
            except OSError:
                pass
        for _ in range(1000):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.001)

    def remove(self):
        for _ in range(200):   # the cgroup goes once its last process has been reaped
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.005)
