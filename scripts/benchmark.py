"""Grade the reference solutions and print what the run costs: wall time, CPU time, and peak memory summed
over every process alive at once (a container's memory limit counts them all; Gradescope's is 768 MB).

    .venv/bin/python scripts/benchmark.py [SUBMISSION] [--repeat N]
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


def run_once(submission):
    with tempfile.TemporaryDirectory() as tmp:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "grader", "grade", str(submission), "--out",
                                 str(Path(tmp) / "results.json")], cwd=REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        peak = 0.0
        while proc.poll() is None:
            peak = max(peak, tree_rss_mb(proc.pid))
            time.sleep(0.02)
        output = proc.stdout.read()
        wall = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    total = next((line for line in output.splitlines() if line.strip().startswith("total")), "total: ?")
    return wall, cpu, peak, total.split(None, 1)[1].strip(), proc.returncode


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("submission", nargs="?", default=str(REPO / "solutions" / "cnn"))
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    print(f"grading {args.submission} ({args.repeat} run(s), {os.cpu_count()} cores)")
    for i in range(args.repeat):
        wall, cpu, peak, total, code = run_once(args.submission)
        print(f"run {i + 1}: score {total}; wall {wall:.1f} s; CPU {cpu:.1f} s; "
              f"peak memory {peak:.0f} MB summed over processes; exit {code}")


if __name__ == "__main__":
    main()
