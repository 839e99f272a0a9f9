"""Grade the reference solutions and print what the run costs: wall time, CPU time, and each process's peak
resident memory (the grading process's, and every child's: sandboxed children and oracle children).
As root, the grade also runs in a memory cgroup of its own (v1), which reports the peak as a container counts
it (page cache and /dev/shm included); ``--memory-mb`` caps that cgroup, as a container of that size would.

    .venv/bin/python scripts/benchmark.py [SUBMISSION] [--repeat N] [--memory-mb MB] [--baseline CHECKOUT]
    .venv/bin/python scripts/benchmark.py --milestone [--baseline CHECKOUT]
    .venv/bin/python scripts/benchmark.py --regrade [N]

``--baseline CHECKOUT`` grades the same submission with another checkout's grader in the same run (e.g. the
main branch's) and prints the ratios of wall and CPU time.

``--milestone`` measures the milestone instead, on a CIFAR-10-sized test split of 10,000 generated images in
the official format, 92 % of them of one class, and checkpoints that answer that class whatever the image (so
5.2's points depend on the evaluation finishing; the cost does not depend on what the images show):
- the milestone part for a resnet20 and a resnet18 checkpoint, beside a plain ``torch.inference_mode()`` loop
  over the same model and as many images, both with the threads the container grants (its CPU quota);
- the training script's CPU throughput beside a plain PyTorch loop over the same model and data (one core);
- the whole grade of the solutions with the resnet18 checkpoint in a 768 MB container (Gradescope's default),
  and the smallest container, in 32 MB steps, in which it keeps every point it gets there.
Every run of ``--milestone`` is pinned to one core, as in a container granting one CPU (Gradescope's grants
half of one): the grader then runs one thread, and on a machine other work shares, threads that wait on each
other would measure the sharing, not the grader.

``--regrade`` measures a regrade's throughput: an export of N (default 8) copies of the four solution files,
regraded with ``--jobs 1`` and then ``--jobs 2``, and the ratio of the two rates; with ``--baseline``, ``--jobs 2``
with this checkout's grader and the baseline's instead, and their ratios.

``--watch [N]`` measures what the grading process itself spends while a child runs a 5 s call (its run loop and
the memory watch), with N (default 1000) idle processes on the machine.
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CGROUPS = Path("/sys/fs/cgroup/memory")
GRADESCOPE_MB = 768
STEP_MB = 32


def _label(pid, root_pid):
    """What a process of the grade is: the grading process, a sandboxed child (its plan's module), an oracle
    child (its module), or its command's name."""
    if pid == root_pid:
        return "grading process"
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes()
        if argv == Path(f"/proc/{root_pid}/cmdline").read_bytes():
            return "grading process's forks"   # its helpers (the sweep's), or a template before its exec
        args = [a.decode(errors="replace") for a in argv.split(b"\0") if a]
    except OSError:
        return "?"
    template = next((i for i, a in enumerate(args) if a.endswith("template.py")), None)
    if template is not None:   # a template, or a child it forked (named in template.py's _child)
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            return "?"
        if name.startswith("python"):
            return f"template {args[template + 1]}"
        return "oracle" if name == "oracle" else f"sandbox {name}"
    if "grader.oracle" in args:
        return f"oracle {args[-1]}"
    driver = next((i for i, a in enumerate(args) if a.endswith("driver.py")), None)
    if driver is not None:
        try:
            return f"sandbox {json.loads(Path(args[driver + 1]).read_text())['module']}"
        except (OSError, IndexError, ValueError, KeyError):
            return "sandbox"
    return Path(args[0]).name if args else "?"


class Peaks:
    """Peak resident memory and CPU time of each process in a tree, sampled from /proc (a process's CPU time is
    its last sample's: short of its last moments)."""

    def __init__(self, root_pid):
        self.root_pid, self.labels, self.peaks, self.cpu = root_pid, {}, {}, {}

    def sample(self):
        parents, rss, cpu = {}, {}, {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = int(fields[1])
                cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
                rss[int(entry.name)] = int(Path(entry.path, "statm").read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue
        members, frontier = {self.root_pid}, [self.root_pid]
        while frontier:
            pid = frontier.pop()
            for child, parent in parents.items():
                if parent == pid and child not in members:
                    members.add(child)
                    frontier.append(child)
        for pid in members & rss.keys():
            label = _label(pid, self.root_pid)   # each sample: a fork execs or names itself late
            if label != "?" or pid not in self.labels:
                self.labels[pid] = label
            self.peaks[pid] = max(self.peaks.get(pid, 0), rss[pid] * resource.getpagesize() / 2 ** 20)
            self.cpu[pid] = cpu[pid]

    def by_label(self):
        """{label: (processes, largest peak in MB, CPU seconds of them all)}, in the order they first ran."""
        out = {}
        for pid, label in self.labels.items():
            if not self.peaks.get(pid):   # gone before its first sample
                continue
            count, peak, cpu = out.get(label, (0, 0.0, 0.0))
            out[label] = (count + 1, max(peak, self.peaks[pid]), cpu + self.cpu[pid])
        return out


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


@dataclass
class Run:
    wall: float
    cpu: float
    peaks: dict
    scores: dict = field(default_factory=dict)        # test number -> score ({} when no results.json)
    leaderboard: list = field(default_factory=list)
    code: int = 0
    container: str = "no cgroup (not root)"
    oom_kills: int = 0

    @property
    def total(self):
        return f"{sum(self.scores.values()):.2f}" if self.scores else "?"


def run_once(submission, memory_mb=None, parts=(), env=None, one_core=False, checkout=REPO, sample=True):
    """Grade ``submission`` with the grader of ``checkout`` in a child process (in its own memory cgroup as
    root); what it cost and what it scored. CPU time is the kernel's account of every process of the grade
    (RUSAGE_CHILDREN: each is waited for, by the grade or by a template of its own); ``sample``: also sample every
    process's memory, 50 times a second (which takes CPU beside the grade: timed runs leave it off)."""
    group = make_cgroup(memory_mb)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "results.json"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        command = [sys.executable, "-m", "grader", "grade", str(submission), "--out", str(out),
                   *[f"--part={part}" for part in parts]]
        proc = subprocess.Popen(["taskset", "-c", "0", *command] if one_core else command, cwd=checkout,
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                preexec_fn=(lambda: (group / "cgroup.procs").write_text(str(os.getpid())))
                                if group else None)
        peaks = Peaks(proc.pid)
        while sample and proc.poll() is None:
            peaks.sample()
            time.sleep(0.02)
        proc.wait()
        wall = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        results = json.loads(out.read_text()) if out.exists() else {}
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    run = Run(wall, cpu, peaks.by_label(), {t.get("number", t["name"]): t["score"] for t in results.get("tests", [])},
              results.get("leaderboard", []), proc.returncode)
    if group:
        run.oom_kills = oom_kills(group)
        run.container = (f"{int((group / 'memory.max_usage_in_bytes').read_text()) / 2 ** 20:.0f} MB peak in its "
                         f"cgroup{f' of {memory_mb} MB' if memory_mb else ''}, {run.oom_kills} OOM kill(s)")
        group.rmdir()
    return run


def report(label, run):
    print(f"{label}: score {run.total}; wall {run.wall:.1f} s; CPU {run.cpu:.1f} s; {run.container}; exit {run.code}")
    if not run.peaks:
        return
    print("  per process, peak resident memory and CPU time: " + "; ".join(
        f"{name} {peak:.0f} MB" + (f" (largest of {count})" if count > 1 else "") + f", {cpu:.1f} s"
        for name, (count, peak, cpu) in run.peaks.items()))


def compare_baseline(label, run, baseline):
    print(f"{label}, against the baseline checkout: wall {run.wall / baseline.wall:.2f}x, CPU "
          f"{run.cpu / baseline.cpu:.2f}x (score {run.total}, baseline {baseline.total})")


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


def plain_loop(checkpoint, images, batch_size):
    """CPU and wall seconds of a plain ``torch.inference_mode()`` loop: the solution's network holding the
    checkpoint's weights, over the first ``images`` test images in batches of ``batch_size``, normalised as the
    milestone's child does, on the threads the container grants. Runs in this process (a child of the run)."""
    import torch

    from grader import cpus
    from grader.cnn import cifar10
    from grader.cnn.check_milestone import test_set

    sys.path.insert(0, str(REPO / "tests"))
    from support import solution

    torch.set_num_threads(cpus.container_cpus())
    saved = torch.load(checkpoint, weights_only=True)
    model = getattr(solution("resnet"), saved["arch"])()
    model.load_state_dict(saved["state_dict"])
    model.eval()
    data = torch.from_numpy(test_set()[0][:images])
    mean = torch.tensor(cifar10.MEAN).view(1, 3, 1, 1)
    std = torch.tensor(cifar10.STD).view(1, 3, 1, 1)
    started, cpu = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        for start in range(0, len(data), batch_size):
            model((data[start:start + batch_size].float() / 255 - mean) / std).argmax(1)
    return time.process_time() - cpu, time.perf_counter() - started


def milestone_against_plain_loop(folder, arch, env):
    """The milestone part alone beside the plain loop over the same model and as many images."""
    from grader.cnn import check_milestone, points

    run = run_once(folder, parts=["milestone"], env=env, one_core=True)
    report(f"milestone only, {arch}, one core", run)
    images = points.MILESTONE_IMAGES[arch] or 10_000
    loop = subprocess.run(["taskset", "-c", "0", sys.executable, __file__, "--plain-loop", str(folder / "milestone.pt"),
                           str(images), str(check_milestone.BATCH)],
                          capture_output=True, text=True, cwd=REPO, env=env, check=True)
    cpu, wall = (float(v) for v in loop.stdout.split())
    print(f"  a plain torch.inference_mode() loop over the same {arch} and {images:,} images: CPU {cpu:.1f} s, "
          f"wall {wall:.1f} s; the milestone part takes {run.cpu / cpu:.2f}x its CPU and {run.wall / wall:.2f}x "
          "its wall time (the part also starts two torch children, reads the checkpoint twice and the data once)")


def keeps_points(run, reference):
    return run.scores == reference.scores and run.leaderboard == reference.leaderboard


def smallest_container(submission, env, reference):
    """Bisect, in STEP_MB steps below GRADESCOPE_MB, for the smallest memory cgroup in which the grade keeps
    every point (and the leaderboard entry) it gets at GRADESCOPE_MB. A run that loses points with no OOM kill
    runs once more: on a machine other work shares, a call can time out."""
    low, high = 0, GRADESCOPE_MB // STEP_MB   # in steps: ``high`` keeps its points; ``low`` is taken not to
    while high - low > 1:
        middle = (low + high) // 2
        run = run_once(submission, middle * STEP_MB, env=env, one_core=True)
        if not keeps_points(run, reference) and not run.oom_kills:
            report(f"  in a {middle * STEP_MB} MB container (lost points, no OOM kill: once more)", run)
            run = run_once(submission, middle * STEP_MB, env=env, one_core=True)
        keeps = keeps_points(run, reference)
        report(f"  in a {middle * STEP_MB} MB container ({'keeps' if keeps else 'loses'} points)", run)
        low, high = (low, middle) if keeps else (middle, high)
    print(f"smallest container ({STEP_MB} MB steps) in which the grade keeps every point it gets at "
          f"{GRADESCOPE_MB} MB: {high * STEP_MB} MB")


def milestone(baseline=None):
    sys.path.insert(0, str(REPO / "tests"))
    import numpy as np
    import torch
    from support import constant_state

    from grader.cnn.small_cifar import write_cifar

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.chmod(tmp, 0o755)
        others = [0, 1, 2, 4, 5, 6, 7, 8, 9]
        labels = np.random.default_rng(0).permutation([3] * 9200 + others * 88 + others[:8])   # 92 % of class 3
        write_cifar(tmp / "data", per_batch=10, test_labels=labels)
        env = dict(os.environ, CONVLAB_DATA=str(tmp / "data"), CONVLAB_DATA_UNVERIFIED="1")
        # The cache written, as on Gradescope (setup.sh's fetch loads the data once when the image is built): no
        # timed grade pays for unpacking the archive.
        subprocess.run([sys.executable, "-c", "from grader.cnn import cifar10; cifar10.load('test', download=False)"],
                       cwd=REPO, env=env, check=True)
        for arch in ("resnet20", "resnet18"):
            folder = tmp / arch
            folder.mkdir()
            torch.save({"arch": arch, "num_classes": 10, "state_dict": constant_state(arch)}, folder / "milestone.pt")
            milestone_against_plain_loop(folder, arch, env)
        run = subprocess.run(["taskset", "-c", "0", sys.executable, __file__, "--throughput"], capture_output=True,
                             text=True, cwd=REPO)
        script, plain = (float(v) for v in run.stdout.split())
        print(f"training resnet20 on the CPU, one core, batch 128: train.py {script:.0f} images/s (with its "
              f"augmentation), a plain loop {plain:.0f} images/s: ratio {script / plain:.2f}")
        for name in ("layers.py", "initializers.py", "resnet.py", "quiz.py"):
            shutil.copy(REPO / "solutions" / "cnn" / name, tmp / "resnet18")
        whole = run_once(tmp / "resnet18", GRADESCOPE_MB, env=env, one_core=True)
        report(f"whole grade, solutions and a resnet18 checkpoint, in a {GRADESCOPE_MB} MB container", whole)
        if baseline:
            compare_baseline("whole grade", whole, run_once(tmp / "resnet18", GRADESCOPE_MB, env=env,
                                                            one_core=True, checkout=baseline))
        probe = make_cgroup(None)   # whether a capped container can be made here at all
        if probe is not None:
            probe.rmdir()
            smallest_container(tmp / "resnet18", env, whole)


def regrade_against_baseline(count, baseline):
    """``regrade --jobs 2`` of ``count`` copies of the solutions with this checkout's grader and the baseline's,
    alternately, twice each: wall and CPU seconds (RUSAGE_CHILDREN), and the ratios of the faster runs."""
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        export = _solutions_export(Path(tmp), count)
        best = {}
        for label, checkout in (("this checkout", REPO), ("baseline", baseline)) * 2:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.monotonic()
            run = subprocess.run([sys.executable, "-m", "grader", "regrade", str(export), "--jobs", "2", "--out",
                                  str(Path(tmp) / "out")], cwd=checkout, capture_output=True, text=True)
            seconds = time.monotonic() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            best[label] = min(best.get(label, (seconds, cpu)), (seconds, cpu))
            print(f"  regrade --jobs 2 of {count}, {label}: {seconds:.1f} s wall, {cpu:.1f} s CPU (exit "
                  f"{run.returncode}; load average {os.getloadavg()[0]:.1f} after)")
        (wall, cpu), (base_wall, base_cpu) = best["this checkout"], best["baseline"]
        print(f"regrade --jobs 2, against the baseline (the faster run of each): wall {wall / base_wall:.2f}x, CPU "
              f"{cpu / base_cpu:.2f}x")


def watch_cost(idle=1000, seconds=5.0):
    """The grading process's own CPU while a child runs one call of ``seconds`` (the run loop and the memory watch
    reading the child's counters), with ``idle`` sleeping processes on the machine."""
    from grader import sandbox

    sleepers = [subprocess.Popen(["sleep", "600"]) for _ in range(idle)]
    try:
        task = {"module": "m", "kind": "numpy", "forbidden": ["torch"], "steps": [{"id": "a", "call": "f"}]}
        source = f"import time\ndef f():\n    time.sleep({seconds})\n    return 1\n".encode()
        sandbox.run({"m.py": source}, task, {}, sandbox.Limits(call_seconds=seconds + 5))   # the template started
        cpu, started = time.process_time(), time.monotonic()
        sandbox.run({"m.py": source}, task, {}, sandbox.Limits(call_seconds=seconds + 5))
        cpu, wall = time.process_time() - cpu, time.monotonic() - started
    finally:
        for sleeper in sleepers:
            sleeper.kill()
            sleeper.wait()
    print(f"the grading process while a child runs, with {idle} idle processes beside: {cpu:.3f} s of CPU in "
          f"{wall:.1f} s ({100 * cpu / wall:.2f} % of a core; the child's call took {seconds:g} s of it)")


def _solutions_export(folder, count):
    export = folder / "assignment_1_export"
    for i in range(count):
        submission = export / f"submission_{i + 1}"
        submission.mkdir(parents=True)
        for name in ("layers.py", "initializers.py", "resnet.py", "quiz.py"):
            shutil.copy(REPO / "solutions" / "cnn" / name, submission)
    return export


def regrade_throughput(count):
    """Submissions a minute regrading ``count`` copies of the solutions with one job and with two: each run
    twice, in the order 1, 2, 2, 1 (so that a load that changes meanwhile weighs on both), the faster kept."""
    with tempfile.TemporaryDirectory() as tmp:
        export = _solutions_export(Path(tmp), count)
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
    parser.add_argument("--baseline", type=Path, help="another checkout whose grader grades the same, for ratios")
    parser.add_argument("--milestone", action="store_true", help="measure the milestone (see above)")
    parser.add_argument("--regrade", type=int, nargs="?", const=8, metavar="N",
                        help="measure a regrade's throughput on N submissions (see above)")
    parser.add_argument("--watch", type=int, nargs="?", const=1000, metavar="N",
                        help="the grading process's CPU while a child runs, with N idle processes beside (see above)")
    parser.add_argument("--throughput", action="store_true", help=argparse.SUPPRESS)   # milestone's child runs
    parser.add_argument("--plain-loop", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.regrade:
        if args.baseline:
            regrade_against_baseline(args.regrade, args.baseline)
        else:
            regrade_throughput(args.regrade)
        return
    if args.watch:
        watch_cost(args.watch)
        return
    if args.throughput:
        print(*training_throughput())
        return
    if args.plain_loop:
        checkpoint, images, batch_size = args.plain_loop
        print(*plain_loop(checkpoint, int(images), int(batch_size)))
        return
    if args.milestone:
        milestone(args.baseline)
        return
    print(f"grading {args.submission} ({args.repeat} timed run(s), {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f})")
    for i in range(args.repeat):   # timed: no memory sampling beside them; the baseline's right after, alike
        run = run_once(args.submission, args.memory_mb, sample=False)
        report(f"timed run {i + 1}", run)
        if args.baseline:
            baseline = run_once(args.submission, args.memory_mb, checkout=args.baseline, sample=False)
            report(f"timed run {i + 1}, baseline", baseline)
            compare_baseline(f"timed run {i + 1}", run, baseline)
    report("memory (a run of its own, sampled)", run_once(args.submission, args.memory_mb))


if __name__ == "__main__":
    main()
