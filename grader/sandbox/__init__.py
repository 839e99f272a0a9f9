"""Run student code in a child process that cannot hurt the grader, and read back what it returned.

One module per concern:
- ``identity``: who a child runs as (a never-used uid, the forbidden libraries out of its reach) and the sweep
  that leaves nothing of it behind;
- ``limits``: what it may use (rlimits, memory watched from outside, no network);
- ``channel``: the frames of the grader's commands (each step with its arrays) and of the child's answers,
  read under bounds, and student text made safe to show;
- ``runner``: the run loop (one call at a time, timed from outside, a fresh child after a hang or a crash);
- ``driver``: the program the child runs (the only grader file it sees).
"""
from grader.sandbox.channel import decode, mask_numbers
from grader.sandbox.limits import Limits
from grader.sandbox.runner import ChildResult, run

__all__ = ["ChildResult", "Limits", "decode", "mask_numbers", "run"]
