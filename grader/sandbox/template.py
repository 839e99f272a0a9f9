"""Children start from a template: a process that has imported what its children need (numpy; numpy and torch) once,
and forks one child per request, instead of a fresh interpreter and a fresh import each time.

The template is a fresh interpreter (``python -I template.py PRELOAD``) started by the grader: it never holds
student data, hidden cases or answers (nothing of the grader's memory reaches it), runs no torch operation (no
thread pool exists when it forks) and no student code. Each child it forks tightens itself exactly as a child
started from scratch would (``tighten``: its own session, oom_score_adj, its cgroup, an empty network namespace,
rlimits, then its own uid and gid), keeps only the descriptors the grader handed it (everything of the template's
is closed), and runs driver.py, which confines it (seccomp, Landlock) before the student's module is imported.

The grader talks to a template over two socket pairs: requests (a JSON spec and the child's four descriptors,
answered with its pid) and exits (each child's wait status, as the template reaps it). ``Forked`` is the
grader's handle on one child, with the part of ``subprocess.Popen``'s interface the run loop uses.

This file runs as the template with the standard library and the preloaded packages only.
"""
import ctypes
import json
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import threading

CLONE_NEWNET = 0x40000000
CHILD_FDS = (3, 4, 5)   # where a child finds its command pipe, its reply pipe and the arguments' memfd
PRELOADS = {"numpy": ("numpy",), "torch": ("numpy", "torch")}


def tighten(spec):
    """In a new child, before anything of the submission runs: the limits and the identity ``spec`` names."""
    os.setsid()
    with open("/proc/self/oom_score_adj", "w") as adj:   # the kernel's first pick, before the grader
        adj.write("1000")
    if spec["cgroup"]:
        with open(spec["cgroup"], "w") as procs:
            procs.write(str(os.getpid()))
    if spec["uid"] is not None:
        try:
            ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWNET)
        except (OSError, AttributeError):
            pass
    cpu = spec["cpu_seconds"]
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (spec["file_bytes"],) * 2)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    resource.setrlimit(resource.RLIMIT_NPROC, (spec["processes"],) * 2)
    if spec["uid"] is not None:
        os.setgroups(spec["groups"])
        os.setgid(spec["uid"])
        os.setuid(spec["uid"])


def _child(spec, fds):
    """The forked child: its descriptors in place, the template's gone, tightened, then driver.py. Never returns."""
    status = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        command, reply, arguments, output = fds
        os.dup2(output, 1)
        os.dup2(output, 2)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        for source, target in zip((command, reply, arguments), CHILD_FDS):
            os.dup2(source, target, inheritable=False)
        os.closerange(CHILD_FDS[-1] + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        tighten(spec)
        os.environ.clear()
        os.environ.update(spec["env"])
        os.chdir(spec["cwd"])
        sys.argv = [spec["driver"], spec["task"], *map(str, CHILD_FDS)]
        import runpy
        runpy.run_path(spec["driver"], run_name="__main__")
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
            message, fds, _, _ = socket.recv_fds(requests, 1 << 16, 4)
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
    for module in PRELOADS[preload]:
        __import__(module)
    requests, exits = (socket.socket(fileno=int(fd)) for fd in sys.argv[2:4])
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

    def fork(self, spec, fds):
        """A child for ``spec`` (driver, task, env, cwd and tighten's fields) with ``fds`` (command read end,
        reply write end, arguments' memfd, output write end); raises OSError where the template cannot fork."""
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
        self.requests.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.exits.close()


class Forked:
    """One child of a template: ``pid``, ``poll()``, ``wait()`` and ``returncode`` as ``subprocess.Popen`` has
    them (a child the template can no longer report on reads as killed)."""

    def __init__(self, template, pid):
        self.template, self.pid, self.returncode = template, pid, None

    def poll(self):
        if self.returncode is None:
            if not self.template.collect(block=False) and self.pid not in self.template.statuses:
                self.returncode = -signal.SIGKILL
            else:
                self.returncode = self.template.statuses.pop(self.pid, None)
        return self.returncode

    def wait(self):
        while self.poll() is None:
            if not self.template.collect(block=True) and self.pid not in self.template.statuses:
                self.returncode = -signal.SIGKILL
        return self.returncode


if __name__ == "__main__":
    main(sys.argv[1])
