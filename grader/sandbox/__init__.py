"""Run student code in a child process that cannot hurt the grader, and read back what it returned.

Each run gets a fresh folder holding only the allowed submission files, ``driver.py``, the task and its
inputs. The child runs:
- in its own session (so the whole process tree can be killed), with a wall-clock deadline;
- under rlimits: CPU time, process count, file size, open files, no core dumps;
- watched for resident memory, summed over its processes (an address-space cap would break ``import torch``);
- single-threaded (BLAS / OpenMP at one thread: the process limit counts threads);
- with its output captured and capped, never echoed into what students see;
- without network (a new network namespace) and as an unprivileged uid of its own (group nogroup) when the
  grader runs as root, so the grader's
  files (mode 700 on Gradescope) and the next task's inputs are out of its reach.
The child reports over a JSON-lines file; arrays come back as .npy bytes loaded with ``allow_pickle=False``.
"""
import base64
import ctypes
import fcntl
import io
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DRIVER = Path(__file__).with_name("driver.py")
NOBODY_GID = 65534
# Each grader process drops its children to a uid of its own (not shared with any other process, not even
# `nobody`), so that killing "every process of the sandbox user" can never reach another grading run.
UID_RANGE = range(61000, 65000)
UID_LOCKS = Path(tempfile.gettempdir()) / "convlab-sandbox-uids"
_held_uid = []   # (uid, open lock file): held for the life of this process


def sandbox_uid():
    """A uid that no other live grader process on this machine holds (one flock'ed file per uid)."""
    if not _held_uid:
        UID_LOCKS.mkdir(mode=0o700, exist_ok=True)
        start = os.getpid() % len(UID_RANGE)
        for i in range(len(UID_RANGE)):
            uid = UID_RANGE[(start + i) % len(UID_RANGE)]
            lock = open(UID_LOCKS / str(uid), "a")
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                lock.close()
                continue
            _held_uid.append((uid, lock))
            break
        else:
            raise RuntimeError("no free sandbox uid")
    return _held_uid[0][0]
CLONE_NEWNET = 0x40000000
PASSED_ENV = ("PATH", "LANG", "LC_ALL", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
# Numbers in an error message could carry hidden input values out (a student's exception text is theirs):
# they are masked, all but those of the driver's own phrases (where, how long, how many).
NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?!\w)")
OWN_PHRASES = re.compile(r"\(line \d+ of [\w.]+, in [\w.<>]+\)|timed out after [\d.]+ s|a tuple of \d+")


def mask_numbers(text):
    pieces, last = [], 0
    for match in OWN_PHRASES.finditer(text):
        pieces += [NUMBER.sub("<number>", text[last:match.start()]), match.group()]
        last = match.end()
    return "".join(pieces + [NUMBER.sub("<number>", text[last:])])
THREADS_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


@dataclass
class Limits:
    wall_seconds: float = 30.0     # the whole child (one function family: its solution takes about 1 s)
    # One call of a student function (the child's own alarm). A scalar 7-loop conv takes 0.04 s CPU on the
    # largest hidden case here, its 12-point numerical-gradient step 0.54 s (given 4 calls' time): both keep
    # over 5x headroom on half a CPU. A function that hangs costs this once, then is not called again.
    call_seconds: float = 2.0
    cpu_seconds: int = 120
    memory_mb: int = 450           # resident, summed over the child's processes
    processes: int = 32            # processes and threads of the sandbox user
    file_mb: int = 64              # largest file the child may write (its results included)
    output_kb: int = 64            # stdout + stderr kept (the rest is read and dropped)


@dataclass
class ChildResult:
    records: dict = field(default_factory=dict)   # id -> record, values decoded
    problem: str = ""                              # why the child ended early, in words a student can read
    output: bytes = b""                            # the student's prints, for the TA; never shown to students

    def import_error(self):
        record = self.records.get("__import__")
        if record is None:
            return self.problem or "the module never finished importing"
        return None if record["ok"] else record["error"]


def decode(value):
    """The inverse of the driver's ``encode``; builds only plain data (ndarray, tuple, list, dict, numbers)."""
    if not isinstance(value, dict):
        return value
    if "__ndarray__" in value:
        return np.load(io.BytesIO(base64.b64decode(value["__ndarray__"])), allow_pickle=False)
    if "__int__" in value:
        return int(value["__int__"])
    if "__float__" in value:
        return float(value["__float__"])
    if "__tuple__" in value:
        return tuple(decode(v) for v in value["__tuple__"])
    if "__list__" in value:
        return [decode(v) for v in value["__list__"]]
    if "__dict__" in value:
        return {k: decode(v) for k, v in value["__dict__"]}
    raise ValueError("unknown encoding")


def _read_records(path, limit_bytes):
    records = {}
    if not path.exists():
        return records
    with open(path, "rb") as f:
        data = f.read(limit_bytes)
    for line in data.splitlines():
        try:
            record = json.loads(line)
            key = record["id"]
            if not isinstance(key, str) or key in records:
                continue  # the first record of an id counts
            record["value"] = decode(record.get("value"))
            record["ok"] = record.get("ok") is True
            record["error"] = mask_numbers(str(record.get("error", ""))[:500])
            record["violations"] = [str(v)[:100] for v in record.get("violations", [])][:10]
            records[key] = record
        except (ValueError, KeyError, TypeError, AttributeError, EOFError, RecursionError, MemoryError):
            continue  # a torn or forged line is no result (deep nesting, an .npy header claiming petabytes...)
    return records


def _processes_of_uid(uid):
    """[(state, threads)] of every other process whose real uid is ``uid`` (state "Z" is a zombie)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                status = Path(entry.path, "status").read_text()
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            if fields.get("Uid", "").split()[:1] == [str(uid)]:
                found.append((fields.get("State", "?").split()[0], int(fields.get("Threads", "1"))))
    return found


def _threads_of_uid(uid):
    return sum(threads for _, threads in _processes_of_uid(uid))


def _preexec(limits, process_cap, uid):
    """Runs in the child between fork and exec: tighten everything, then drop to nobody."""
    def setup():
        os.setsid()
        if uid is not None:
            try:
                ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWNET)
            except (OSError, AttributeError):
                pass
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_mb << 20,) * 2)
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
        resource.setrlimit(resource.RLIMIT_NPROC, (process_cap, process_cap))
        if uid is not None:
            os.setgroups([])
            os.setgid(NOBODY_GID)
            os.setuid(uid)
    return setup


def _session_rss_mb(session):
    """Resident memory of every process in ``session``, in MB."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            # Fields after the command name (which may hold spaces): state is [0], session is [3].
            if int(stat.rsplit(")", 1)[1].split()[3]) != session:
                continue
            statm = Path(entry.path, "statm").read_text().split()
            total += int(statm[1]) * resource.getpagesize()
        except (OSError, IndexError, ValueError):
            continue
    return total / 2 ** 20


def _kill_everything(proc, uid):
    """Kill the child's session and reap the child; then, as the sandbox user, every process that user owns
    (a grandchild may have left the session)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()
    if uid is None:
        return
    pid = os.fork()
    if pid == 0:
        try:
            os.setuid(uid)
            # Sweep until the uid owns nothing: one forking meanwhile can escape a single sweep, and zombies
            # still count against the next child's process limit until init has reaped them (2 s at most).
            for _ in range(2000):
                processes = _processes_of_uid(uid)
                if not processes:
                    break
                if any(state != "Z" for state, _ in processes):
                    os.kill(-1, signal.SIGKILL)
                time.sleep(0.001)
        except ProcessLookupError:
            pass
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def _drain(stream, keep, sink):
    while True:
        chunk = stream.read(65536)
        if not chunk:
            break
        if len(sink) < keep:
            sink.extend(chunk[: keep - len(sink)])


def run(student_files, task, inputs, limits=None, python=None):
    """Run ``task`` (see driver.py) against ``student_files`` ({name: bytes}) with ``inputs`` ({key: array}).

    Never raises because of what the student did; returns a ChildResult.
    """
    limits = limits or Limits()
    uid = sandbox_uid() if os.geteuid() == 0 else None   # drop privileges only when there are some
    with tempfile.TemporaryDirectory(prefix="convlab-sandbox-") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o755)
        student_dir, scratch = root / "student", root / "scratch"
        student_dir.mkdir()
        scratch.mkdir()
        for name, data in student_files.items():
            (student_dir / name).write_bytes(data)
        shutil.copy(DRIVER, root / "driver.py")
        (root / "task.json").write_text(json.dumps(dict(task, student_dir=str(student_dir),
                                                        call_timeout=limits.call_seconds)))
        np.savez(root / "inputs.npz", **inputs)
        results = scratch / "results.jsonl"
        for path in [root, student_dir, *student_dir.iterdir(), root / "driver.py", root / "task.json",
                     root / "inputs.npz"]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        if uid is not None:
            os.chown(scratch, uid, NOBODY_GID)
        process_cap = limits.processes + (0 if uid is not None else _threads_of_uid(os.getuid()))
        env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
        env.update({k: "1" for k in THREADS_ENV}, HOME=str(scratch), PYTHONDONTWRITEBYTECODE="1",
                   PYTHONHASHSEED="0", MPLBACKEND="Agg")
        command = [python or sys.executable, "-I", str(root / "driver.py"), str(root / "task.json"),
                   str(root / "inputs.npz"), str(results)]
        started = time.monotonic()
        output = bytearray()
        result = ChildResult()
        try:
            proc = subprocess.Popen(command, cwd=scratch, env=env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    preexec_fn=_preexec(limits, process_cap, uid))
        except OSError as error:
            result.problem = f"the sandbox could not start ({error})"
            return result
        reader = threading.Thread(target=_drain, args=(proc.stdout, limits.output_kb << 10, output), daemon=True)
        reader.start()
        while proc.poll() is None:
            elapsed = time.monotonic() - started
            rss = _session_rss_mb(proc.pid)
            if rss > limits.memory_mb:
                result.problem = f"used more than {limits.memory_mb} MB of memory and was stopped"
                break
            if elapsed > limits.wall_seconds:
                result.problem = f"ran past the time limit ({limits.wall_seconds:.0f} s) and was stopped"
                break
            time.sleep(0.02)
        _kill_everything(proc, uid)
        reader.join(timeout=5)
        result.output = bytes(output)
        if not result.problem and proc.returncode != 0:
            if proc.returncode == -signal.SIGXCPU or proc.returncode == -signal.SIGKILL:
                result.problem = f"was stopped (CPU time limit of {limits.cpu_seconds} s, or killed)"
            else:
                result.problem = f"exited with status {proc.returncode} before it finished"
        result.records = _read_records(results, (limits.file_mb << 20))
        if not result.problem and "__done__" not in result.records:
            result.problem = "exited before it finished (os._exit or sys.exit in the submission?)"
        return result
