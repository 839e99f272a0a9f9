"""Run student code in a child process that cannot hurt the grader, and read back what it returned.

One module per concern:
- ``policy``: each kind of child's allow-list of system calls, one table;
- ``confine``: what the child forbids itself before the student's code runs (seccomp, Landlock), for the kernel
  to refuse;
- ``identity``: who a child runs as (a never-used uid) and the sweep that leaves nothing of it behind;
- ``cgroup``: a cgroup of the child's own, where one can be made (memory capped, everything killed at once);
- ``limits``: what it may use (time budgets), and what it uses (its own process's counters);
- ``template``: the processes children fork from (numpy, or numpy and torch, imported once), and what a child
  sets up before the driver runs (session, rlimits, cgroup, network namespace, uid);
- ``channel``: the frames of the grader's commands (each step with its arrays) and of the child's answers,
  read under bounds, and student text made safe to show;
- ``runner``: the run loop (one call at a time, timed from outside, a fresh child after a hang or a crash);
- ``driver``: the program the child runs (with confine.py and policy.py, the only grader files it sees).
"""
from grader.sandbox.channel import decode
from grader.sandbox.limits import Limits, Spent
from grader.sandbox.runner import ChildResult, run

__all__ = ["ChildResult", "Limits", "Spent", "decode", "run"]
