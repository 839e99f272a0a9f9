"""Grade the reference solutions and print what the run costs: wall time, CPU time, and peak memory summed
over every process alive at once (a container's memory limit counts them all; Gradescope's is 768 MB).
As root, the grade also runs in a memory cgroup of its own (v1), which reports the peak as a container counts
it (page cache and /dev/shm included); ``--memory-mb`` caps that cgroup, as a container of that size would.

    .venv/bin/python scripts/benchmark.py [SUBMISSION] [--repeat N] [--memory-mb MB]
    .venv/bin/python scripts/benchmark.py --milestone
    .venv/bin/python scripts/benchmark.py --regrade [N]

``--milestone`` measures the milestone instead, on a CIFAR-10-sized test split of 10,000 generated images in
the official format (the cost does not depend on what the images show): its evaluation on one core for a
resnet20 and a resnet18 checkpoint; the training script's CPU throughput beside a plain PyTorch loop over the
same model and data (one core, same batch size); and the whole grade of the solutions with a resnet18
checkpoint, with the smallest memory cgroup (in 50 MB steps) in which it still scores the same.

``--regrade`` measures a regrade's throughput: an export of N (default 8) copies of the four solution files,
regraded with ``--jobs 1`` and then ``--jobs 2``, and the ratio of the two rates.
"""
import argparse
import math
import os
import resource
import shutil
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


def run_once(submission, memory_mb=None, parts=(), env=None, one_core=False):
    group = make_cgroup(memory_mb)
    with tempfile.TemporaryDirectory() as tmp:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        command = [sys.executable, "-m", "grader", "grade", str(submission), "--out", str(Path(tmp) / "results.json"),
                   *[f"--part={part}" for part in parts]]
        proc = subprocess.Popen(["taskset", "-c", "0", *command] if one_core else command, cwd=REPO,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
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


def report(label, figures):
    wall, cpu, peak, total, code, container = figures
    print(f"{label}: score {total}; wall {wall:.1f} s; CPU {cpu:.1f} s; peak memory {peak:.0f} MB summed over "
          f"processes; {container}; exit {code}")


def training_throughput(images=1536, batch_size=128):
    """Images per second of train.py's Trainer and of a plain PyTorch loop (no augmentation, contiguous
    float32, SGD with momentum), same model, data and batch size, on one thread."""
    import torch

    sys.path[:0] = [str(REPO / "solutions" / "cnn"), str(REPO / "assignments" / "cnn")]   # the solution's resnet
    import resnet
    import train

    torch.set_num_threads(1)
    data = torch.randint(0, 256, (images, 3, 32, 32), dtype=torch.uint8)
    labels = torch.randint(0, 10, (images,))
    args = train.parse_args(["--arch", "resnet20", "--batch-size", str(batch_size), "--amp", "off"])

    def timed(run):
        run(batch_size * 2)   # warm-up
        started = time.perf_counter()
        run(images)
        return images / (time.perf_counter() - started)

    torch.manual_seed(0)
    model = resnet.resnet20().to(memory_format=torch.channels_last)
    trainer = train.Trainer(model, (data, labels), args, torch.device("cpu"), 10_000, 10)

    def script(n):
        for x, y in train.batches(data[:n], labels[:n], batch_size, trainer.generator):
            trainer.train_step(x, y)

    torch.manual_seed(0)
    plain_model = resnet.resnet20()
    optimizer = torch.optim.SGD(plain_model.parameters(), lr=0.1, momentum=0.9)
    mean = torch.tensor(train.cifar10.MEAN).view(1, 3, 1, 1)
    std = torch.tensor(train.cifar10.STD).view(1, 3, 1, 1)

    def plain(n):
        plain_model.train()
        for start in range(0, n, batch_size):
            x = (data[start:start + batch_size].float() / 255 - mean) / std
            loss = torch.nn.functional.cross_entropy(plain_model(x), labels[start:start + batch_size])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return timed(script), timed(plain)


def milestone(memory_mb=None):
    sys.path.insert(0, str(REPO / "tests"))
    import torch
    from support import solution

    from grader.cnn.small_cifar import write_cifar

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.chmod(tmp, 0o755)
        write_cifar(tmp / "data", per_batch=10, test=10_000)
        env = dict(os.environ, CONVLAB_DATA=str(tmp / "data"), CONVLAB_DATA_UNVERIFIED="1")
        resnet = solution("resnet")
        for arch in ("resnet20", "resnet18"):
            folder = tmp / arch
            folder.mkdir()
            torch.save({"arch": arch, "num_classes": 10, "state_dict": getattr(resnet, arch)().state_dict()},
                       folder / "milestone.pt")
            report(f"milestone only, {arch}, one core", run_once(folder, parts=["milestone"], env=env, one_core=True))
        run = subprocess.run(["taskset", "-c", "0", sys.executable, __file__, "--throughput"], capture_output=True,
                             text=True, cwd=REPO)
        script, plain = (float(v) for v in run.stdout.split())
        print(f"training resnet20 on the CPU, one core, batch 128: train.py {script:.0f} images/s (with its "
              f"augmentation), a plain loop {plain:.0f} images/s: ratio {script / plain:.2f}")
        for name in ("layers.py", "initializers.py", "resnet.py", "quiz.py"):
            shutil.copy(REPO / "solutions" / "cnn" / name, tmp / "resnet18")
        whole = run_once(tmp / "resnet18", memory_mb, env=env)
        report("whole grade, solutions and a resnet18 checkpoint", whole)
        if make_cgroup(None) is None:
            return
        cap = 50 * math.ceil(int(whole[5].split()[0]) / 50)
        while True:   # down in 50 MB steps while the score stays the same
            figures = run_once(tmp / "resnet18", cap - 50, env=env)
            report(f"  in a {cap - 50} MB container", figures)
            if figures[3] != whole[3]:
                break
            cap -= 50
        print(f"smallest container (50 MB steps) that gives the same score: {cap} MB")


def regrade_throughput(count):
    """Submissions a minute regrading ``count`` copies of the solutions with one job and with two: each run
    twice, in the order 1, 2, 2, 1 (so that a load that changes meanwhile weighs on both), the faster kept."""
    with tempfile.TemporaryDirectory() as tmp:
        export = Path(tmp) / "assignment_1_export"
        for i in range(count):
            folder = export / f"submission_{i + 1}"
            folder.mkdir(parents=True)
            for name in ("layers.py", "initializers.py", "resnet.py", "quiz.py"):
                shutil.copy(REPO / "solutions" / "cnn" / name, folder)
        print(f"regrading {count} submissions (the four solution files) on {len(os.sched_getaffinity(0))} cores; "
              f"load average {os.getloadavg()[0]:.1f} before")
        best = {}
        for jobs in (1, 2, 2, 1):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.monotonic()
            run = subprocess.run([sys.executable, "-m", "grader", "regrade", str(export), "--jobs", str(jobs), "--out",
                                  str(Path(tmp) / f"out{jobs}")], cwd=REPO, capture_output=True, text=True)
            seconds = time.monotonic() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            best[jobs] = min(best.get(jobs, seconds), seconds)
            print(f"  --jobs {jobs}: {seconds:.1f} s wall, {cpu:.1f} s CPU, {60 * count / seconds:.1f} submissions a "
                  f"minute (exit {run.returncode}; load average {os.getloadavg()[0]:.1f} after)")
        print(f"throughput --jobs 2 / --jobs 1 (the faster run of each): {best[1] / best[2]:.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("submission", nargs="?", default=str(REPO / "solutions" / "cnn"))
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--memory-mb", type=int, help="cap the grade's memory cgroup, as a container would")
    parser.add_argument("--milestone", action="store_true", help="measure the milestone (see above)")
    parser.add_argument("--regrade", type=int, nargs="?", const=8, metavar="N",
                        help="measure a regrade's throughput on N submissions (see above)")
    parser.add_argument("--throughput", action="store_true", help=argparse.SUPPRESS)   # milestone's child run
    args = parser.parse_args()
    if args.regrade:
        regrade_throughput(args.regrade)
        return
    if args.throughput:
        print(*training_throughput())
        return
    if args.milestone:
        milestone(args.memory_mb)
        return
    print(f"grading {args.submission} ({args.repeat} run(s), {os.cpu_count()} cores)")
    for i in range(args.repeat):
        report(f"run {i + 1}", run_once(args.submission, args.memory_mb))


if __name__ == "__main__":
    main()
