"""Before grading: can the sandbox start a child here at all, and what contains it?

Where no child can start (an interpreter or its packages in a folder the sandbox user cannot enter, such as a
checkout under /root or a temp folder of mode 700), every test of every submission would fail with "could not
be imported", which blames the student. The grader checks once, before it grades anything, by running a trivial
plan; where the check fails it stops with one line for the instructor and writes no results.

The same child says what confines it, as it runs (not what the grader expects): seccomp (from its
/proc/self/status), Landlock (a folder outside its grant refused), its own uid (as root) and cgroup. Without
seccomp a child is not contained at all (it can start processes, open sockets, load native code): grade and
regrade refuse unless the instructor accepts the risk (``--unconfined``).
"""
import os
import sys
from dataclasses import dataclass

from grader import sandbox
from grader.plan import Plan
from grader.sandbox import cgroup, confine

PROBE = b"""import os

def answer():
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
        parts = ["seccomp" if self.seccomp else "NO seccomp",
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
        why = plan.result.problem or value
        who = "an unprivileged uid of their own" if os.geteuid() == 0 else "this user"
        return Containment(
            problem=f"the sandbox cannot run a trivial child here ({why}{': ' + said[-1] if said else ''}). Its "
                    f"children run {sys.executable} as {who}, who must be able to enter every folder above that "
                    "interpreter and read its packages: put the checkout and its .venv where every user can read "
                    "them (not under /root; `chmod o+rx` on each folder above them), then grade again. Nothing "
                    "was graded.")
    ok, facts = plan.answer("confinement")
    seccomp, landlocked, uid = facts if ok else (False, False, os.getuid())
    group = cgroup.Group.create(f"convlab-probe-{os.getpid()}", 64)
    if group is not None:
        group.remove()
    return Containment(seccomp=seccomp, landlock=confine.landlock_abi() if landlocked else 0,
                       own_uid=uid != os.getuid(), own_cgroup=group is not None)


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
