"""Grade a variant of the reference solutions fast, for tools that grade many variants on many seeds
(scripts/spread.py, scripts/mutation.py): the sandbox's children are replaced by the driver's own Runner in this
process, and the oracles' answers are memoised (grader/oracle.py), so a grade costs neither a child's start-up
nor torch's import once warm.

Everything else is the grader's: the same plans, the same run loop (grader/sandbox/runner.py's Run: what is
skipped, what a failure says), the same channel encoding, arrays handed over read-only as the driver does. What is
lost is containment, which these variants do not need: each is a solution with one edit. A call that runs past
``CALL_SECONDS`` times out as in the sandbox.
"""
import json
import os
import signal
import sys
import tempfile
from pathlib import Path

from grader.sandbox.limits import THREADS_ENV

CALL_SECONDS = 20
# One thread, as in the sandbox's child: tools run a grade per core, and torch's threads would only contend (a
# ResNet grade takes 10x longer on two threads beside another grade).
os.environ.update(dict.fromkeys(THREADS_ENV, "1"))


class _Skipped:
    """The result of a plan left unrun: no answers, no import error."""
    problem, output, records = "was not run (another family)", b"", {"__import__": {}}

    def import_error(self):
        return None


def _timeout(signum, frame):
    raise TimeoutError


class InProcessChild:
    """runner.Child's interface (``ask``, ``note_cpu``, ``background``, ``stop``), answered by driver.py's Runner in
    this process (no CPU of its own to charge)."""
    source = None   # a folder to import the student's module from instead of the sandbox's copy (coverage)
    background = 0.0

    def __init__(self, root, limits, python, preload, groups, output, cpu_seconds, name):
        from grader.sandbox.driver import Runner

        task = json.loads((root / "task.json").read_text())
        self.folder = self.source or task["student_dir"]
        sys.path.insert(0, self.folder)
        for name in Path(self.folder).glob("*.py"):
            sys.modules.pop(name.stem, None)   # the previous variant's module
        self.runner = Runner(task, None, None)

    def note_cpu(self):
        pass

    def ask(self, command, seconds, wall_deadline, arrays=None, read_only=()):
        from grader.sandbox import channel
        from grader.sandbox.driver import LENGTH, pack, unpack
        from grader.sandbox.runner import Ended

        previous = signal.signal(signal.SIGALRM, _timeout)
        signal.setitimer(signal.ITIMER_REAL, min(seconds, CALL_SECONDS))
        try:
            # Fresh objects and read-only arrays, as the child reads them (`is` tells).
            command, self.runner.arrays = unpack(pack(command, arrays or {})[LENGTH.size:])
            reply, arrays = self.runner.answer(command)
        except TimeoutError:
            raise Ended(f"timed out after {min(seconds, CALL_SECONDS):.2g} s") from None
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        return channel.parse(pack(dict(reply, seconds=0.0), arrays)[LENGTH.size:])

    def stop(self):
        if self.folder in sys.path:
            sys.path.remove(self.folder)


def _memoise(on):
    """Turn the oracles' memo on or off; whether it was on (False where this grader has none)."""
    try:
        from grader.oracle import memoise
    except ImportError:   # a checkout from before the oracles ran in children: nothing to memoise
        return False
    return memoise(on)


def grade_once(job):
    """{test number: score} of one part of ``source`` graded with ``seed``: of the tests of ``functions`` only,
    when given (the plans of the other functions are left unrun, whatever the grader's version).

    ``job``: (part, file name, source, seed, functions or None).
    """
    from grader.grade import grade
    from grader.plan import Plan
    from grader.sandbox import Limits, runner

    part, file, source, seed, functions = job
    run, child, ran = Plan.run, runner.Child, set()

    def selective(plan, files, *args, **kwargs):
        if functions is None or set(plan.functions.values()) & functions:
            ran.update(plan.functions.values())
            return run(plan, files, *args, **kwargs)
        plan.result = _Skipped()
        return plan.result
    Plan.run, runner.Child = selective, InProcessChild
    memoised = _memoise(True)
    # Time limits far above the grader's: on a loaded machine a timeout would move a score, not the seed.
    limits = Limits(wall_seconds=600, call_seconds=60, import_seconds=120, hang_seconds=120, part_seconds=600)
    try:
        with tempfile.TemporaryDirectory() as folder:
            Path(folder, file).write_text(source)
            tests, _ = grade(folder, parts=[part], seed=seed, limits=limits, log=lambda message: None)
    finally:
        Plan.run, runner.Child = run, child
        _memoise(memoised)
    return {t.number: t.score for t in tests if functions is None or t.name in ran}
