"""Before grading: can the sandbox start a child here at all, and what contains it?

Where no child can start (an interpreter or its packages in a folder the sandbox user cannot enter, such as a
checkout under /root or a temp folder of mode 700), every test of every submission would fail with "could not
be imported", which blames the student. The grader checks once, before it grades anything, by running a trivial
plan; where the check fails it stops with one line for the instructor and writes no results. So too where its
oracle child (grader/oracle.py: the PyTorch references, run by the grader's own interpreter) cannot import torch
or compute with it: every case that needs a reference value would fail as the grader's error, and a part the
grader cannot check is never scored.

The same child says what confines it, as it runs (not what the grader expects): seccomp (from its
/proc/self/status), Landlock (a folder outside its grant refused), its own uid (as root) and cgroup. Without
seccomp a child is not contained at all (it can start processes, open sockets, load native code): grade and
regrade refuse unless the instructor accepts the risk (``--unconfined``).
"""
import os
import sys
from dataclasses import dataclass

import numpy as np

from grader import sandbox
from grader.oracle import Oracle, OracleError
from grader.plan import Plan
from grader.sandbox import cgroup, confine, policy

PROBE = b"""import os
import sys

def answer():
    # A child forks from a template the grader started, but what it imports later (torch's submodules, the
    # standard library's) it reads as the sandbox user: every folder of the interpreter's path must be readable.
    for folder in filter(None, sys.path):
        try:
            os.listdir(folder)
        except (FileNotFoundError, NotADirectoryError):   # a zip the build lacks, an egg: nothing to read
            pass
    return 42

def confinement():
    status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
    try:
        os.listdir("/")
        landlocked = False
    except PermissionError:
        landlocked = True
    return [status.get("Seccomp", "0").strip() == "2", landlocked, os.getuid()]
"""


@dataclass
class Containment:
    problem: str = ""          # why no child can run here ("" when one can)
    seccomp: bool = False
    landlock: int = 0          # the Landlock ABI the children are confined with (0: none)
    own_uid: bool = False
    own_cgroup: bool = False

    def line(self):
        """What protects a run here, in one line for staff."""
        sizes = ", ".join(f"{kind} {len(policy.allowed(kind))}" for kind in policy.KINDS)
        parts = [f"seccomp allow-lists (calls: {sizes})" if self.seccomp else "NO seccomp",
                 f"landlock ABI {self.landlock}" if self.landlock else "no landlock",
                 "own uid" if self.own_uid else "runs as you",
                 "own cgroup" if self.own_cgroup else "no cgroup"]
        return "containment: " + ", ".join(parts)


def check():
    """Run a trivial child; what contains it, or why it cannot run (``problem``: one line saying what to change)."""
    plan = Plan("convlab_probe")
    plan.call("answer", id="answer")
    plan.call("confinement", id="confinement")
    plan.run({"convlab_probe.py": PROBE}, sandbox.Limits())
    ok, value = plan.answer("answer")
    if not ok or value != 42:
        said = plan.result.output.decode(errors="replace").strip().splitlines()
        why = plan.result.fault or plan.result.problem or value
        who = "an unprivileged uid of their own" if os.geteuid() == 0 else "this user"
        return Containment(
            problem=f"the sandbox cannot run a trivial child here ({why}{': ' + said[-1] if said else ''}). Its "
                    f"children run {sys.executable} as {who}, who must be able to enter every folder above that "
                    "interpreter and read its packages: put the checkout and its .venv where every user can read "
                    "them (not under /root; `chmod o+rx` on each folder above them), then grade again. Nothing "
                    "was graded.")
    if problem := oracle_problem():
        return Containment(problem=problem)
    ok, facts = plan.answer("confinement")
    seccomp, landlocked, uid = facts if ok else (False, False, os.getuid())
    group = cgroup.Group.create(f"convlab-probe-{os.getpid()}", 64)
    if group is not None:
        group.remove()
    return Containment(seccomp=seccomp, landlock=confine.landlock_abi() if landlocked else 0,
                       own_uid=uid != os.getuid(), own_cgroup=group is not None)


ORACLE_FAILED = ("the grader's PyTorch references cannot run here ({why}): its oracle child runs {python}, which "
                 "must import torch and compute with it. Install the CPU build of torch there (`{python} -m pip "
                 "install --index-url https://download.pytorch.org/whl/cpu torch`; ./dev.sh does it for a checkout, "
                 "setup.sh for the autograder's image), then grade again. Nothing was graded.")


def oracle_problem():
    """Why the oracle child cannot compute a reference here ("" when it can): one line saying what to change. Its
    answer (``oracle.probe``) is checked against a sum of 2x2 blocks computed here."""
    try:
        out, dx = Oracle("grader.oracle").probe()   # the child stays for the grade's references
    except OracleError as error:
        why = str(error).strip().splitlines()[-1]
    else:
        blocks = np.arange(16.0).reshape(2, 2, 2, 2).sum(axis=(1, 3))
        if np.array_equal(out, blocks[None, None]) and np.array_equal(dx, np.ones((1, 1, 4, 4))):
            return ""
        why = "a float64 convolution of a 4x4 input gave wrong values"
    return ORACLE_FAILED.format(why=why, python=sys.executable)


UNCONFINED = ("its children cannot be contained here: no seccomp (pyseccomp over libseccomp, and a kernel with "
              "seccomp, are needed), so student code could start processes, open connections and load native "
              "code as {who}. Install libseccomp2 and pyseccomp, or pass --unconfined to accept the risk. "
              "Nothing was graded.")


def refusal(found, unconfined):
    """Why grading must not go ahead here ("" when it may)."""
    if found.problem:
        return found.problem
    if not found.seccomp and not unconfined:
        return UNCONFINED.format(who="an unprivileged uid" if found.own_uid else "this user")
    return ""
