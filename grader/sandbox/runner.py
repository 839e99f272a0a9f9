"""The run loop: start a child, ask it for one call at a time, time each call from outside, and start a fresh child
when one hangs, crashes or overspends, so a function that fails that way costs its own calls, not its siblings'.

Each call is sent with a fresh random nonce and only a reply carrying it counts (see DEVELOPERS.md, "The
channel"): what the student's code writes into the channel before it is asked, or for another call, earns
nothing. A function whose call hung or ended its child is not called again; a call that needs a value saved in
a child that is gone, or by a call that failed, is not run, and says whose result it needed.
"""
import atexit
import contextlib
import fcntl
import json
import math
import os
import secrets
import select
import shutil
import signal
import re
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from grader.sandbox import cgroup, channel, identity, policy
from grader.sandbox.driver import pack
from grader.sandbox.limits import (ADDRESS_SPACE, PASSED_ENV, THREADS_ENV, Limits, Spent, cpu_used,
                                   memory_mb, threads_of)
from grader.sandbox.template import Template

DRIVER = Path(__file__).with_name("driver.py")
CONFINE = Path(__file__).with_name("confine.py")
POLICY = Path(__file__).with_name("policy.py")
POLL = 0.02
OUT_OF_MEMORY = "could not finish: the grading machine ran out of memory: tell your TA (not your code's fault)"
MEMORY_EVERY = 0.1
PAGE = os.sysconf("SC_PAGE_SIZE")
IMPORTS_TORCH = re.compile(rb"^\s*(?:import|from)\s+torch\b", re.MULTILINE)
SEGFAULT = "was stopped by signal SIGSEGV"
WROTE_READ_ONLY = ("your code wrote into an array it was handed read-only, through a view that ignores numpy's "
                   "read-only flag, and was stopped: leave your arguments as you found them (work on a copy)")
CHILD_FDS = (3, 4, 5)   # where a child finds its command pipe, its reply pipe and the arguments' memfd
CPU_SLACK = 0.05   # the interpreter's start before the import is asked, and the driver's own work between calls
CGROUP_SLACK_MB = 64   # the cgroup is the hard stop behind the watch, which says why (page cache counts there too)


@dataclass
class ChildResult:
    records: dict = field(default_factory=dict)   # id -> {"ok", "value" | "error", "seconds", "in_place"}
    problem: str = ""                              # why the student's code could not run at all, for a student
    output: bytes = b""                            # the student's prints, for the TA; never shown to students
    fault: str = ""                                # why the grader could not start a child, for staff

    def import_error(self):
        record = self.records.get("__import__")
        if record is None:
            return self.problem or "the module never finished importing"
        return None if record["ok"] else record["error"]


def _oom_kills():
    """The OOM kills the container's memory cgroup has counted (cgroup v2 or v1), or None when unreadable."""
    try:
        path = open("/proc/self/cgroup").read()
        for line in path.splitlines():
            _, controllers, where = line.split(":", 2)
            for base, name in (("/sys/fs/cgroup" + where, "memory.events"),
                               ("/sys/fs/cgroup/memory" + where, "memory.oom_control")):
                if (controllers == "" and name == "memory.events") or ("memory" in controllers.split(",")
                                                                      and name == "memory.oom_control"):
                    try:
                        text = Path(base, name).read_text()
                    except OSError:
                        continue
                    for entry in text.splitlines():
                        key, _, value = entry.partition(" ")
                        if key == "oom_kill":
                            return int(value)
    except (OSError, ValueError):
        pass
    return None


_templates = {}   # (python, preload) -> Template, while one is wanted


def child_env():
    """The environment of a template and of its children (as set at the interpreter's start: thread counts)."""
    env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
    env.update({k: "1" for k in THREADS_ENV}, PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0", MPLBACKEND="Agg")
    return env


def template(python, preload):
    """The template that forks children with ``preload`` imported, started at its first use."""
    key = (python, preload)
    if key not in _templates or not _templates[key].alive():
        _templates[key] = Template(python, preload, child_env())
    return _templates[key]


_keep = [False]   # a regrade's worker keeps its templates from one grade to the next


def keep_templates(on):
    _keep[0] = on


def close_templates(force=False):
    """End every template (grade.py, when the grade ends; a regrade's worker, when it ends)."""
    while _templates and (force or not _keep[0]):
        _templates.popitem()[1].close()


atexit.register(close_templates, force=True)


def _drain(stream, keep, sink):
    while True:
        chunk = stream.read(65536)
        if not chunk:
            break
        if len(sink) < keep:
            sink.extend(chunk[: keep - len(sink)])


class Ended(Exception):
    """The child can answer no more: ``reason`` says why, for the call it was running."""

    def __init__(self, reason, restart=True):
        super().__init__(reason)
        self.reason, self.restart = reason, restart


class Child:
    """One process running driver.py, confined (confine.py), in a scratch folder of its own; as root, as a
    never-used uid and gid, in a cgroup of its own where one can be made. It is forked from the template of
    ``python`` with ``preload`` imported (template.py)."""

    def __init__(self, root, limits, python, preload, groups, output, cpu_seconds, name):
        self.limits, self.output, self.cpu_seconds = limits, output, cpu_seconds
        self.uid = identity.fresh_uid() if os.geteuid() == 0 else None
        # Its working folder, empty: a child writes no file (policy.py), so nothing here is its own either.
        self.scratch = Path(tempfile.mkdtemp(prefix="scratch-", dir=root))
        self.scratch.chmod(0o750)
        self.group = None
        if self.uid is not None:
            # The grader's files: readable by this child alone (its own gid), writable by none.
            for path in (root, *root.rglob("*")):
                os.chown(path, 0, self.uid)
            self.group = cgroup.Group.create(f"convlab-{self.uid}", limits.memory_mb + CGROUP_SLACK_MB)
        command_r, self.command_w = os.pipe()
        self.reply_r, reply_w = os.pipe()
        output_r, output_w = os.pipe()
        # Arguments handed over read-only live in this memfd, which only the grader can write: the child gets a
        # descriptor opened read-only (reopening it for writing is refused by its allow-list), and its pages of
        # them are mapped from that descriptor, so a write through any view of them faults (even after mprotect).
        self.arguments = os.memfd_create("convlab-arguments", os.MFD_CLOEXEC)
        self.arguments_end = 0
        arguments_r = os.open(f"/proc/self/fd/{self.arguments}", os.O_RDONLY | os.O_CLOEXEC)
        for fd in (self.command_w, self.reply_r):
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
        spec = {"run": {"script": str(root / "driver.py")}, "cwd": str(self.scratch), "name": name,
                "argv": [str(root / "driver.py"), str(root / "task.json"), *map(str, CHILD_FDS)],
                "fds": [[fd] for fd in CHILD_FDS] + [[1, 2]],
                "env": dict(child_env(), HOME=str(self.scratch), TMPDIR=str(self.scratch)),
                "cgroup": str(self.group.path / "cgroup.procs") if self.group is not None else None,
                "uid": self.uid, "groups": groups,
                "limits": {"cpu": cpu_seconds, "fsize": limits.file_mb << 20, "nofile": 256,
                           "as": ADDRESS_SPACE,
                           "nproc": limits.processes + (0 if self.uid is not None else threads_of(os.getuid()))}}
        self.buffer, self.killed, self.oom_before = bytearray(), False, _oom_kills()
        self.next_memory = time.monotonic() + MEMORY_EVERY
        # Seconds it was asked for (wall), CPU seconds beyond them noted so far, and those not yet charged.
        self.asked, self.cpu_noted, self.background = 0.0, 0.0, 0.0
        try:
            self.proc = template(python, preload).fork(spec, (command_r, reply_w, arguments_r, output_w))
        except BaseException:
            os.close(output_r)
            self.remove_group()
            raise
        finally:
            for fd in (command_r, reply_w, arguments_r, output_w):
                os.close(fd)
        self.reader = threading.Thread(target=_drain, args=(os.fdopen(output_r, "rb", buffering=0),
                                                            limits.output_kb << 10, output), daemon=True)
        self.reader.start()

    def ask(self, command, seconds, wall_deadline, arrays=None, read_only=()):
        """Send ``command`` (with ``arrays``, {key: array}, those of ``read_only`` in the arguments memfd) and a
        fresh nonce; return the reply carrying it. Raises Ended."""
        nonce = secrets.token_hex(16)
        arrays = dict(arrays or {})
        mapped = [self.hand_over(key, arrays.pop(key)) for key in read_only if key in arrays]
        data = memoryview(pack(dict(command, nonce=nonce, mapped=mapped), arrays))   # sent without copies
        started = time.monotonic()
        deadline = min(started + seconds, wall_deadline)
        try:
            return self._answer(nonce, data, seconds, deadline, wall_deadline)
        finally:
            self.asked += time.monotonic() - started
            self.note_cpu()

    def hand_over(self, key, value):
        """Write ``value`` into the arguments memfd, at a page of its own never reused (a value the child saved
        from an earlier step stays as it was): [key, dtype, shape, offset] for the command."""
        value = np.ascontiguousarray(value)
        offset = self.arguments_end
        os.pwrite(self.arguments, value.tobytes(), offset)
        self.arguments_end = offset + -(-value.nbytes // PAGE) * PAGE
        return [key, value.dtype.str, list(value.shape), offset]

    def note_cpu(self):
        """Add to ``background`` the CPU time of the child's threads beyond the time it was asked for (threads
        left computing between calls, or beside one)."""
        excess = cpu_used(self.proc.pid) - self.asked - self.cpu_noted
        if excess > CPU_SLACK:
            self.background += excess
            self.cpu_noted += excess

    def _answer(self, nonce, data, seconds, deadline, wall_deadline):
        while True:
            now = time.monotonic()
            if data:
                try:
                    data = data[os.write(self.command_w, data):]
                except BlockingIOError:
                    pass
                except OSError:
                    data = b""   # it closed its end: its exit says why
            if now >= self.next_memory:   # across calls: reading even one process's counters costs a quick call
                self.next_memory = now + MEMORY_EVERY
                if memory_mb(self.proc.pid) > self.limits.memory_mb:
                    raise Ended(f"used more than {self.limits.memory_mb} MB of memory and was stopped")
            if now >= deadline:
                if deadline == wall_deadline:
                    raise Ended(f"ran past the time limit ({self.limits.wall_seconds:g} s) and was stopped",
                                restart=False)
                raise Ended(f"timed out after {seconds:.2g} s")
            exited = self.proc.poll() is not None
            # Woken as soon as the pipe takes more of the command, too: a step's arrays may span many pipefuls.
            ready, _, _ = select.select([self.reply_r], [self.command_w] if data else [], [],
                                        0 if exited else POLL)
            if ready:
                try:
                    chunk = os.read(self.reply_r, 1 << 20)
                except BlockingIOError:
                    chunk = None
                if chunk:
                    self.buffer.extend(chunk)
                    try:
                        for frame in channel.frames(self.buffer, self.limits.file_mb << 20):
                            message = channel.parse(frame)
                            if message.get("nonce") == nonce:
                                return message
                    except channel.Malformed as error:
                        raise Ended(f"sent back something that is not a result ({error})") from None
                    continue
            if exited:
                raise Ended(self._exit_reason())

    def _exit_reason(self):
        code = self.proc.returncode
        if code == -signal.SIGKILL and not self.killed:
            oom = self.group.oom_kill() if self.group is not None else ""
            if oom == "own":
                return f"used more than {self.limits.memory_mb} MB of memory and was stopped"
            after = _oom_kills()
            if oom == "above" or (after is not None and self.oom_before is not None and after > self.oom_before):
                return OUT_OF_MEMORY
        if code == -signal.SIGXCPU:
            return f"was stopped: it used more than {self.cpu_seconds} s of CPU time (every thread counts, between " \
                "calls too)"
        if code is not None and code < 0:
            return f"was stopped by signal {signal.Signals(-code).name if -code in signal.valid_signals() else -code}"
        return f"exited (status {code}) before it answered: os._exit or sys.exit in your code?"

    def stop(self):
        """Kill the child and everything it started, verified; remove its files."""
        self.killed = True
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.group is not None:
            self.group.kill()
        self.proc.wait()
        try:
            if self.uid is not None and not identity.clean_up(self.uid):
                raise RuntimeError(f"processes of sandbox uid {self.uid} survived the sweep")
        finally:
            self.remove_group()
            self.reader.join(timeout=5)
            for fd in (self.command_w, self.reply_r, self.arguments):
                os.close(fd)
            identity.remove([self.scratch])

    def remove_group(self):
        if self.group is not None:
            self.group.kill()
            self.group.remove()
            self.group = None


def _functions(step):
    """The student's functions a step calls (directly, or handed to a builtin)."""
    names = {step["call"]} | {r["fn"] for r in _refs(step) if "fn" in r}
    return {n for n in names if not n.startswith("builtin:")}


def _refs(step):
    stack, out = list(step.get("args", [])) + list(step.get("kwargs", {}).values()), []
    while stack:
        ref = stack.pop()
        out.append(ref)
        stack += ref.get("list", [])
    return out


def _needs(step):
    return {r["var"] for r in _refs(step) if "var" in r}


def _arrays(step, inputs):
    """{key: array} of the inputs ``step`` refers to: what is sent with it, and nothing else."""
    out = {}
    for ref in _refs(step):
        key = ref.get("in", ref.get("tensor"))
        if key is not None:
            out[key] = inputs[key]
        elif "state" in ref:
            out.update((k, v) for k, v in inputs.items() if k.startswith(ref["state"]))
    return out


class Run:
    def __init__(self, student_files, task, inputs, limits, root, python):
        self.files, self.task, self.limits, self.root, self.python = student_files, task, limits, root, python
        self.inputs = inputs
        self.result = ChildResult()
        self.output = bytearray()
        self.kind = kind_of(task)
        # torch preloaded for the milestone and for a file that imports it; numpy alone otherwise (a layers child
        # never comes from a template that holds torch).
        source = student_files.get(f"{task['module']}.py", b"")
        self.preload = "torch" if self.kind == policy.MILESTONE or (
            self.kind != policy.NUMPY and IMPORTS_TORCH.search(source)) else "numpy"
        self.groups = [] if self.kind == policy.NUMPY else [identity.LIBRARY_GID]
        self.deadline = time.monotonic() + limits.wall_seconds
        self.child, self.generation = None, 0
        self.saved = {}       # save name -> generation of the child holding it
        self.failed = {}      # save name -> why it is not there (in the student's words)
        self.labels = {}      # save name -> whose result it is (a student's function or class)
        self.stopped = {}     # student function -> why it is not called again
        self.over = ""        # set when the plan's time is spent: nothing more runs
        self.kept = 0         # bytes of the answers kept so far, whole frames (limits.kept_mb)
        self.spent = limits.spent if limits.spent is not None else Spent()

    @contextlib.contextmanager
    def charged(self):
        """Charge the time of the block to the part's budget (what a child takes, from outside)."""
        started = time.monotonic()
        try:
            yield
        finally:
            self.spent.total += time.monotonic() - started

    def spent_reason(self):
        return f"your code has used the {self.limits.part_seconds:g} s this file may take in all (importing it, " \
               "every call, and ending it)"

    def left(self):
        """Seconds left of the part's budget."""
        return self.limits.part_seconds - self.spent.total

    def label(self, step):
        own = sorted(_functions(step))
        if own:
            return own[0]
        needed = sorted(_needs(step))
        return self.labels.get(needed[0], "an earlier call") if needed else "an earlier call"

    def message(self, reply):
        """A failed reply in words, from its structured fields."""
        failure = reply.get("failure")
        if not isinstance(failure, dict):
            return "failed"
        if "unencodable" in failure:
            return f"returned {channel.clean_text(failure['unencodable'], 100)}, which is not plain data"
        if "pick" in failure:
            return ("returned a tuple with too few items" if type(failure.get("length")) is int
                    else f"returned {channel.type_words(failure['pick'])}, not a tuple")
        return channel.describe_failure(failure, self.files)

    def new_child(self):
        self.generation += 1
        if self.left() <= 0:
            return {"ok": False, "error": self.spent_reason()}
        # The kernel stops a student's child whose threads outspend what its part has left (grader code, the
        # milestone's and the oracle's, keeps its plan's own CPU budget).
        cpu_seconds = self.limits.cpu_seconds if self.kind == policy.MILESTONE \
            else min(self.limits.cpu_seconds, math.ceil(self.left()) + 1)
        with self.charged():
            self.child = Child(self.root, self.limits, self.python, self.preload, self.groups, self.output,
                               cpu_seconds, self.task["module"])
            try:
                reply = self.child.ask({"import": True}, min(self.limits.import_seconds, self.left()),
                                       self.deadline)
            except Ended as ended:
                self.end_child()
                return {"ok": False, "error": f"your code {ended.reason}" if "timed out" not in ended.reason
                        else f"importing it {ended.reason}"}
        record = {"ok": reply.get("ok") is True,
                  "seconds": reply.get("seconds") if isinstance(reply.get("seconds"), float) else 0.0}
        if not record["ok"]:
            record["error"] = self.message(reply)
            self.end_child()
        return record

    def end_child(self):
        if self.child is not None:
            self.child.note_cpu()
            self.charge_background()
            with self.charged():
                self.child.stop()
            self.child = None

    def charge_background(self):
        """Charge the part the CPU time the child used beyond the time it was asked for; where that is what
        spends the part, nothing more runs, and the student is told so. (The milestone's child, grader code, runs
        on every CPU granted: its plan has its own budget.)"""
        seconds, self.child.background = self.child.background, 0.0
        if seconds <= 0 or self.kind == policy.MILESTONE:
            return
        self.spent.total += seconds
        self.spent.background += seconds
        if self.left() <= 0 and not self.over:
            self.over = (f"kept computing after it returned (threads it started used {self.spent.background:.1f} s "
                         f"of CPU beyond the calls' time), past the {self.limits.part_seconds:g} s this file may take "
                         "in all")

    def skip_reason(self, step):
        if self.over:
            return f"not run: your code {self.over}"
        for function in sorted(_functions(step)):
            if function in self.stopped:
                return f"not run: {function} {self.stopped[function]} on an earlier call"
        for name in sorted(_needs(step)):
            if name in self.failed:
                return f"not run: it needs the result of {self.labels.get(name, 'an earlier call')}, " \
                       f"which {self.failed[name]}"
            if name in self.saved and self.saved[name] != self.generation + (self.child is None):
                return f"not run: it needs the result of {self.labels.get(name, 'an earlier call')}, which was " \
                       "lost when an earlier call stopped your code"
        return ""

    def step(self, step):
        """The record of one step (also when it is not run)."""
        if "save" in step:
            self.labels[step["save"]] = self.label(step)
        why = self.skip_reason(step)
        budget = min(self.limits.call_seconds * float(step.get("timeout_factor", 1)), self.left(),
                     self.limits.hang_seconds - self.spent.hung)
        if not why and self.left() <= 0:
            why = f"not run: {self.spent_reason()}"
        elif not why and budget <= 0:
            why = f"not run: calls in this file timed out for {self.limits.hang_seconds:g} s in all, the most a " \
                  "file may lose that way"
        if not why and self.child is None:
            imported = self.new_child()
            if not imported["ok"]:
                why = f"not run: the file could not be imported again ({imported['error']})"
                self.over = self.over or "could not be imported again"
        if why:
            return self.record_failure(step, why)
        command = {"step": {k: step[k] for k in ("call", "args", "kwargs", "save", "pick") if k in step}}
        read_only = {r["in"] for r in _refs(step) if r.get("read_only") and "in" in r}
        command["step"]["report"] = "id" in step
        started = time.monotonic()
        try:
            with self.charged():
                reply = self.child.ask(command, budget, self.deadline, _arrays(step, self.inputs), read_only)
        except Ended as ended:
            if "timed out" in ended.reason:
                self.spent.hung += time.monotonic() - started
            self.end_child()
            for function in _functions(step) if ended.reason != OUT_OF_MEMORY else ():
                self.stopped[function] = "timed out" if "timed out" in ended.reason else "stopped your code"
            if not ended.restart:
                self.over = ended.reason
            if ended.reason == SEGFAULT and read_only:   # what the grader saw: a write into read-only pages
                return dict(self.record_failure(step, WROTE_READ_ONLY), in_place="")
            return self.record_failure(step, f"your code {ended.reason}" if "timed out" not in ended.reason
                                       else ended.reason)
        self.charge_background()
        record = {"ok": reply.get("ok") is True, "error": "",
                  "seconds": reply.get("seconds") if isinstance(reply.get("seconds"), float) else 0.0}
        if record["ok"] and "id" in step:
            if self.kept + reply["size"] > self.limits.kept_mb << 20:
                record.update(ok=False, error=f"returned {reply['size'] / 2 ** 20:.1f} MB: with the answers before "
                              f"it, more than the {self.limits.kept_mb} MB the grader keeps of a group of calls "
                              "(return arrays of the shape asked for)")
            else:
                try:
                    with self.charged():   # reading what the child sent is work it made for the grader
                        record["value"] = channel.decode(reply.get("value"), reply["arrays"])
                    self.kept += reply["size"]
                except channel.Malformed as error:
                    record.update(ok=False, error=f"returned something the grader cannot read ({error})")
        elif not record["ok"]:
            record["error"] = self.message(reply)
            record["in_place"] = channel.in_place_edit(reply.get("failure"), self.files)
        if "save" in step:
            if record["ok"]:
                self.saved[step["save"]] = self.generation
                self.failed.pop(step["save"], None)
            else:
                self.failed[step["save"]] = f"failed ({record['error']})"
        return record

    def record_failure(self, step, why):
        if "save" in step:
            self.failed[step["save"]] = "could not run" if why.startswith("not run") else f"failed ({why})"
        return {"ok": False, "error": why, "seconds": 0.0}

    def run(self):
        records = self.result.records
        try:
            imported = self.new_child()
            records["__import__"] = imported
            if not imported["ok"]:
                self.result.problem = imported["error"]
            else:
                for step in self.task["steps"]:
                    record = self.step(step)
                    if "id" in step:
                        records[step["id"]] = record
                if self.over:
                    self.result.problem = self.over
        finally:   # whatever happened, even the grader's own error: no child outlives its plan
            self.end_child()
        self.result.output = bytes(self.output)
        return self.result


def kind_of(task):
    """The kind of child that runs ``task`` (its allow-list, policy.py): given, or numpy where torch is forbidden."""
    return task.get("kind") or (policy.NUMPY if "torch" in task.get("forbidden", ()) else policy.TORCH)


def run(student_files, task, inputs, limits=None, python=None):
    """Run ``task`` ({"module", "steps", "forbidden", "kind" (optional)}; steps as in driver.py, plus "id" to get
    a result back and
    "timeout_factor") against ``student_files`` ({name: bytes}) with ``inputs`` ({key: array}: each step is
    sent the ones it refers to, with its command; none is written where a child could read it).

    Never raises because of what the student did; returns a ChildResult with a record for every step's id.
    """
    limits = limits or Limits()
    with tempfile.TemporaryDirectory(prefix="convlab-sandbox-") as tmp:
        root = Path(tmp)
        student_dir = root / "student"
        student_dir.mkdir()
        for name, data in student_files.items():
            (student_dir / name).write_bytes(data)
        shutil.copy(DRIVER, root / "driver.py")
        for source in (CONFINE, POLICY):
            shutil.copy(source, root / source.name)
        (root / "task.json").write_text(json.dumps({"module": task["module"], "student_dir": str(student_dir),
                                                    "forbidden": list(task.get("forbidden", [])),
                                                    "kind": kind_of(task)}))
        for path in [root, *root.rglob("*")]:   # as root, each child's own gid may read them (Child)
            os.chmod(path, 0o750 if path.is_dir() else 0o640)
        try:
            return Run(student_files, task, inputs, limits, root, python or sys.executable).run()
        except OSError as error:   # the machine's fault: a student is pointed to the TA, who reads `fault`
            fault = f"the sandbox failed ({error})"
            return ChildResult(problem=f"could not start: {fault}: tell your TA", fault=fault)
