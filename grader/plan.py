"""A plan of calls for the sandbox's driver, and reading its answers back.

Checkers build a Plan (arrays to send, calls to make), run it in the sandbox, then ask the Plan for each
call's answer: ``(True, value)`` or ``(False, why)``, with "why" in words a student can read.

For a TA, ``recording(folder)`` keeps a copy of every plan that runs: its calls (JSON), its input arrays
(npz), i.e. a submission's hidden cases with their values, and what the student's code printed (.out).
"""
import ast
import contextlib
import json
from pathlib import Path

import numpy as np

from grader import sandbox
from grader.text import parse_source

_recording = []   # the folder plans are copied to while ``recording`` is active


@contextlib.contextmanager
def recording(folder):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _recording.append(folder)
    try:
        yield folder
    finally:
        _recording.pop()


def _record(plan, files):
    """Copy the plan (calls, inputs) and what the student's code printed while it ran."""
    folder = _recording[-1]
    stem = folder / f"{len(list(folder.glob('*.json'))):02d}-{plan.module}"
    np.savez(f"{stem}.npz", **plan.inputs)
    Path(f"{stem}.json").write_text(json.dumps({"module": plan.module, "files": sorted(files),
                                                "steps": plan.steps, "ended_early": plan.result.problem},
                                               indent=1) + "\n")
    Path(f"{stem}.out").write_bytes(plan.result.output)


class Plan:
    def __init__(self, module):
        self.module = module
        self.steps = []
        self.inputs = {}
        self.functions = {}   # step id -> the student function it called
        self.result = None

    def array(self, value, read_only=False):
        """A reference to ``value``, sent with each step that uses it (and never earlier): a fresh copy at each
        use, or with ``read_only`` the array itself, over a buffer no code can make writable, so that a function
        that edits it in place raises (see ``in_place``)."""
        key = f"a{len(self.inputs)}"
        self.inputs[key] = value
        return {"in": key, "read_only": True} if read_only else {"in": key}

    def call(self, target, *args, id=None, save=None, pick=None, timeout_factor=None, **kwargs):
        """Add a call; ``args``/``kwargs`` are refs (see driver.py). Returns ``id``."""
        step = {"call": target, "args": list(args), "kwargs": kwargs}
        for key, value in (("id", id), ("save", save), ("pick", pick), ("timeout_factor", timeout_factor)):
            if value is not None:
                step[key] = value
        if id is not None and not target.startswith("builtin:"):
            self.functions[id] = target
        self.steps.append(step)
        return id

    def run(self, files, limits, forbidden=(), kind=None):
        task = {"module": self.module, "steps": self.steps, "forbidden": list(forbidden)}
        if kind is not None:
            task["kind"] = kind
        self.result = sandbox.run(files, task, self.inputs, limits)
        if _recording:
            _record(self, files)
        return self.result

    def answer(self, id):
        record = self.result.records.get(id)
        if record is None:
            if self.result.problem:
                return False, f"no result: your code {self.result.problem}"
            return False, "no result (it never returned)"
        if not record["ok"]:
            return False, record["error"]
        return True, record["value"]

    def in_place(self, id):
        """For a call that failed by writing into a read-only array it was handed: the name its line wrote
        through ("" when it cannot be told); None otherwise."""
        record = self.result.records.get(id)
        return record.get("in_place") if record else None

    def import_error(self):
        return self.result.import_error()


def bindings(node):
    """{bound name: full dotted name} for every import inside ``node``."""
    bound = {}
    for child in ast.walk(node):
        if isinstance(child, ast.Import):
            for a in child.names:
                bound[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
                bound[f"import {a.name}"] = a.name
        elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
            for a in child.names:
                bound[a.asname or a.name] = f"{child.module}.{a.name}"
    return bound


def _dotted(node, bound):
    """The full dotted name an expression like ``sp.signal.correlate2d`` stands for, or None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id in bound:
        return ".".join([bound[node.id]] + parts[::-1])
    return None


def static_violations(source, modules):
    """{top-level function: reason} for functions that use a forbidden module (dotted names: ``torch``,
    ``scipy.signal``), directly or through another top-level function of the same file. Read from the source
    in the grader's own process: this, not anything a child reports, decides a point."""
    tree = parse_source(source)
    if tree is None:   # it cannot be imported either, and that is its verdict
        return {}

    def forbidden(full):
        return full is not None and any(full == m or full.startswith(m + ".") for m in modules)

    module_level = bindings(ast.Module(body=[n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))],
                                        type_ignores=[]))
    functions = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    result, calls = {}, {}
    for name, node in functions.items():
        bound = {**module_level, **bindings(node)}
        reasons = {f"uses {full}" for key, full in bindings(node).items() if forbidden(full)}
        for child in ast.walk(node):
            if isinstance(child, (ast.Name, ast.Attribute)) and forbidden(_dotted(child, bound)):
                reasons.add(f"uses {_dotted(child, bound)}")
        if reasons:
            result[name] = sorted(reasons)[0]
        calls[name] = {c.id for c in ast.walk(node) if isinstance(c, ast.Name) and c.id in functions}
    changed = True
    while changed:  # through helpers: a function calling a forbidden helper is forbidden too
        changed = False
        for name, callees in calls.items():
            bad = sorted(c for c in callees if c in result and c != name)
            if name not in result and bad:
                result[name] = f"calls {bad[0]}, which {result[bad[0]]}"
                changed = True
    return result
