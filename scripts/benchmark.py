"""Grade the reference solutions and print what the run costs: wall time, CPU time, and peak memory summed
over every process alive at once (a container's memory limit counts them all; Gradescope's is 768 MB).
As root, the grade also runs in a memory cgroup of its own (v1), which reports the peak as a container counts
it (page cache and /dev/shm included); ``--memory-mb`` caps that cgroup, as a container of that size would.

    .venv/bin/python scripts/benchmark.py [SUBMISSION] [--repeat N] [--memory-mb MB]
"""
import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def tree_rss_mb(root_pid):
    """Resident memory of ``root_pid`` and all its descendants, in MB."""
    parents, rss = {}, {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            parents[int(entry.name)] = int(fields[1])
            rss[int(entry.name)] = int(Path(entry.path, "statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    members, frontier = {root_pid}, [root_pid]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in members:
                members.add(child)
                frontier.append(child)
    return sum(rss.get(pid, 0) for pid in members) * resource.getpagesize() / 2 ** 20


CGROUPS = Path("/sys/fs/cgroup/memory")


def make_cgroup(memory_mb):
    """A fresh v1 memory cgroup (capped at ``memory_mb`` when given), or None where none can be made."""
    if os.geteuid() != 0 or not CGROUPS.is_dir():
        return None
    group = CGROUPS / f"convlab-benchmark-{os.getpid()}-{time.monotonic_ns()}"
    try:
        group.mkdir()
        if memory_mb:
            (group / "memory.limit_in_bytes").write_text(str(memory_mb << 20))
            swap = group / "memory.memsw.limit_in_bytes"
            if swap.exists():
                swap.write_text(str(memory_mb << 20))
    except OSError:
        return None
    return group


def oom_kills(group):
    for line in (group / "memory.oom_control").read_text().splitlines():
        if line.startswith("oom_kill "):
            return int(line.split()[1])
    return 0


def run_once(submission, memory_mb=None):
    group = make_cgroup(memory_mb)
    with tempfile.TemporaryDirectory() as tmp:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "grader", "grade", str(submission), "--out",
                                 str(Path(tmp) / "results.json")], cwd=REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True,
                                preexec_fn=(lambda: (group / "cgroup.procs").write_text(str(os.getpid())))
                                if group else None)
        peak = 0.0
        while proc.poll() is None:
            peak = max(peak, tree_rss_mb(proc.pid))
            time.sleep(0.02)
        output = proc.stdout.read()
        wall = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    total = next((line for line in output.splitlines() if line.strip().startswith("total")), "total: ?")
    container = "no cgroup (not root)"
    if group:
        container = (f"{int((group / 'memory.max_usage_in_bytes').read_text()) / 2 ** 20:.0f} MB peak in its cgroup"
                     f"{f' of {memory_mb} MB' if memory_mb else ''}, {oom_kills(group)} OOM kill(s)")
        group.rmdir()
    return wall, cpu, peak, total.split(None, 1)[1].strip(), proc.returncode, container


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("submission", nargs="?", default=str(REPO / "solutions" / "cnn"))
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--memory-mb", type=int, help="cap the grade's memory cgroup, as a container would")
    args = parser.parse_args()
    print(f"grading {args.submission} ({args.repeat} run(s), {os.cpu_count()} cores)")
    for i in range(args.repeat):
        wall, cpu, peak, total, code, container = run_once(args.submission, args.memory_mb)
        print(f"run {i + 1}: score {total}; wall {wall:.1f} s; CPU {cpu:.1f} s; "
              f"peak memory {peak:.0f} MB summed over processes; {container}; exit {code}")


if __name__ == "__main__":
    main()
