"""Before grading: can the sandbox start a child here at all?

Where it cannot (an interpreter or its packages in a folder the sandbox user cannot enter, such as a checkout
under /root or a temp folder of mode 700), every test of every submission would fail with "could not be
imported", which blames the student. The grader checks once, before it grades anything, by running a trivial
plan; where the check fails it stops with one line for the instructor and writes no results.
"""
import os
import sys

from grader import sandbox
from grader.plan import Plan

PROBE = b"def answer():\n    return 42\n"


def sandbox_problem():
    """Why a sandboxed child cannot run here, in one line that says what to change; "" when it can."""
    plan = Plan("convlab_probe")
    plan.call("answer", id="answer")
    plan.run({"convlab_probe.py": PROBE}, sandbox.Limits())
    ok, value = plan.answer("answer")
    if ok and value == 42:
        return ""
    said = plan.result.output.decode(errors="replace").strip().splitlines()
    why = plan.result.problem or value
    who = "an unprivileged uid of their own" if os.geteuid() == 0 else "this user"
    return (f"the sandbox cannot run a trivial child here ({why}{': ' + said[-1] if said else ''}). Its children "
            f"run {sys.executable} as {who}, who must be able to enter every folder above that interpreter "
            "and read its packages: put the checkout and its .venv where every user can read them (not under "
            "/root; `chmod o+rx` on each folder above them), then grade again. Nothing was graded.")
