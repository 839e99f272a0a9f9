"""Children start from a template: a process that has imported what its children need (numpy; numpy and torch) once,
and forks one child per request, instead of a fresh interpreter and a fresh import each time. A grade keeps its
templates until it ends (a regrade's worker, across its submissions).

The template is a fresh interpreter (``python -I template.py PRELOAD``) started by the grader: it never holds
student data, hidden cases or answers (nothing of the grader's memory reaches it), runs no torch operation (no
thread pool exists when it forks) and no student code. Each child it forks tightens itself exactly as a child
started from scratch would (``tighten``: its own session, oom_score_adj, its cgroup, an empty network namespace,
rlimits, then its own uid and gid), keeps only the descriptors the grader handed it (everything of the template's
is closed), and runs driver.py, which confines it (seccomp, Landlock) before the student's module is imported.
The grader's oracle child (grader/oracle.py) forks from the torch template too: torch starts once a grade.

The grader talks to a template over two socket pairs: requests (a JSON spec and the child's descriptors, answered
with its pid) and exits (each child's wait status, as the template reaps it). ``Forked`` is the
grader's handle on one child, with the part of ``subprocess.Popen``'s interface the run loop uses.

This file runs as the template with the standard library and the preloaded packages only.
"""
import ctypes
import fcntl
import json
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import threading
import time

CLONE_NEWNET = 0x40000000
PRELOADS = {"numpy": ("numpy",), "torch": ("numpy", "torch")}


def tighten(spec):
    """In a new child, before anything of the submission runs: the limits and the identity ``spec`` names."""
    os.setsid()
    with open("/proc/self/oom_score_adj", "w") as adj:   # the kernel's first pick, before the grader
        adj.write("1000")
    if spec.get("cgroup"):
        with open(spec["cgroup"], "w") as procs:
            procs.write(str(os.getpid()))
    if spec.get("uid") is not None:
        try:
            ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWNET)
        except (OSError, AttributeError):
            pass
    for name, value in spec["limits"].items():
        limit = getattr(resource, f"RLIMIT_{name.upper()}")
        resource.setrlimit(limit, (value, value + 1) if name == "cpu" else (value, value))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if spec.get("uid") is not None:
        os.setgroups(spec["groups"])
        os.setgid(spec["uid"])
        os.setuid(spec["uid"])


def _child(spec, fds):
    """The forked child: its descriptors in place (``spec["fds"]``: the numbers each received one takes), the
    template's gone, tightened, then its program (``spec["run"]``: a script's path, or a module and the folder
    it is imported from). Never returns."""
    status = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        fds = [fcntl.fcntl(fd, fcntl.F_DUPFD, 64) for fd in fds]   # above every target: none is overwritten
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        for source, targets in zip(fds, spec["fds"]):
            for target in targets:
                os.dup2(source, target)
        os.closerange(max(max(t) for t in spec["fds"]) + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        with open("/proc/self/comm", "w") as comm:   # what `ps` and benchmark.py call it, not "python"
            comm.write(spec.get("name", "convlab-child")[:15])
        tighten(spec)
        os.environ.clear()
        os.environ.update(spec["env"])
        os.chdir(spec["cwd"])
        sys.argv = spec["argv"]
        import runpy
        if "script" in spec["run"]:
            runpy.run_path(spec["run"]["script"], run_name="__main__")
        else:
            sys.path.insert(0, spec["run"]["path"])
            runpy.run_module(spec["run"]["module"], run_name="__main__", alter_sys=True)
        status = 0
    except SystemExit as exit:
        status = exit.code if isinstance(exit.code, int) else 1
    except BaseException:  # noqa: B902 - the child's own end: said on its output, which the grader keeps
        import traceback
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(status)


def serve(requests, exits):
    """The template's loop: fork a child per request, report each child's wait status as it is reaped."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    while True:
        ready, _, _ = select.select([requests, wake_r], [], [])
        if wake_r in ready:
            os.read(wake_r, 4096)
        while True:   # every child that ended since
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            exits.send(json.dumps([pid, os.waitstatus_to_exitcode(status)]).encode())
        if requests in ready:
            message, fds, _, _ = socket.recv_fds(requests, 1 << 16, 8)
            if not message:
                return   # the grader closed its end: no more children
            pid = os.fork()
            if pid == 0:
                for sock in (requests, exits):
                    sock.close()
                os.close(wake_r)
                os.close(wake_w)
                _child(json.loads(message), fds)
            for fd in fds:
                os.close(fd)
            requests.send(json.dumps(pid).encode())


def main(preload):
    requests, exits = (socket.socket(fileno=int(fd)) for fd in sys.argv[2:4])
    try:
        for module in PRELOADS[preload]:
            __import__(module)
    except Exception as error:  # noqa: BLE001 - said to the grader, whose preflight names the fix
        requests.send(json.dumps(f"{type(error).__name__}: {error}").encode())
        return
    requests.send(b'"ready"')
    serve(requests, exits)


# ------------------------------------------------------------------------------------------------------------
# The grader's side
# ------------------------------------------------------------------------------------------------------------

class Template:
    """A running template process (``preload``: "numpy" or "torch"), started with ``python`` and ``env``."""

    def __init__(self, python, preload, env):
        self.requests, their_requests = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.exits, their_exits = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.statuses, self.lock = {}, threading.Lock()
        try:
            self.proc = subprocess.Popen(
                [python, "-I", __file__, preload, str(their_requests.fileno()), str(their_exits.fileno())],
                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                pass_fds=(their_requests.fileno(), their_exits.fileno()))
        finally:
            their_requests.close()
            their_exits.close()
        said = self.requests.recv(4096)
        if said != b'"ready"':
            self.close()
            raise OSError(f"the sandbox's {preload} template could not start"
                          + (f" ({json.loads(said)})" if said else ""))

    def fork(self, spec, fds):
        """A child for ``spec`` (run, argv, env, cwd, the numbers ``fds`` take in it, its process name, and tighten's
        fields); raises OSError where the template cannot fork."""
        socket.send_fds(self.requests, [json.dumps(spec).encode()], list(fds))
        answer = self.requests.recv(64)
        if not answer:
            raise OSError("the sandbox's template process ended")
        return Forked(self, json.loads(answer))

    def collect(self, block):
        """Read the exit statuses the template reported (waiting for one when ``block``); False once it is gone."""
        with self.lock:
            self.exits.setblocking(block)
            try:
                while True:
                    message = self.exits.recv(64)
                    if not message:
                        return False
                    pid, code = json.loads(message)
                    self.statuses[pid] = code
                    self.exits.setblocking(False)
            except BlockingIOError:
                return True

    def alive(self):
        return self.proc.poll() is None

    def close(self):
        """End the template. It is killed, not asked to exit: it holds nothing to save, and an interpreter that
        imported torch spends a quarter of a second of CPU tearing itself down."""
        self.requests.close()
        self.proc.kill()
        self.proc.wait()
        self.exits.close()


class Forked:
    """One child of a template: ``pid``, ``poll()``, ``wait()``, ``kill()`` and ``returncode`` as
    ``subprocess.Popen`` has them (a child the template can no longer report on reads as killed)."""

    def __init__(self, template, pid):
        self.template, self.pid, self.returncode = template, pid, None

    def poll(self):
        if self.returncode is None:
            if not self.template.collect(block=False) and self.pid not in self.template.statuses:
                self.returncode = -signal.SIGKILL
            else:
                self.returncode = self.template.statuses.pop(self.pid, None)
        return self.returncode

    def wait(self, timeout=None):
        """The return code, once the child has ended; None where ``timeout`` seconds passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None:
                if time.monotonic() >= deadline:
                    return None
                time.sleep(0.01)
            elif not self.template.collect(block=True) and self.pid not in self.template.statuses:
                self.returncode = -signal.SIGKILL
        return self.returncode

    def kill(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


if __name__ == "__main__":
    main(sys.argv[1])
