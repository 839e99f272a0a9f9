"""A plan of calls for the sandbox's driver, and reading its answers back.

Checkers build a Plan (arrays to send, calls to make), run it in the sandbox, then ask the Plan for each
call's answer: ``(True, value)`` or ``(False, why)``, with "why" in words a student can read.

For a TA, ``recording(folder)`` keeps a copy of every plan that runs: its calls (JSON), its input arrays
(npz), i.e. a submission's hidden cases with their values, and what the student's code printed (.out).
"""
import ast
import collections
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


# A dotted name's first characters are all a check of it reads (no module's name is longer); a name cut here
# keeps the work of joining it to its uses linear in the file, however long the student made it.
NAME_CHARS = 200


def bindings(node):
    """{bound name: full dotted name (at most NAME_CHARS of it)} for every import inside ``node``."""
    bound = {}
    for child in ast.walk(node):
        if isinstance(child, ast.Import):
            for a in child.names:
                bound[a.asname or a.name.split(".")[0]] = (a.name if a.asname else a.name.split(".")[0])[:NAME_CHARS]
                bound[f"import {a.name}"] = a.name[:NAME_CHARS]
        elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
            for a in child.names:
                bound[a.asname or a.name] = f"{child.module}.{a.name}"[:NAME_CHARS]
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


SHOWN_HOPS = 3   # helpers named in a reason ("calls a, which calls b, ..."); a longer chain is counted


def static_violations(source, modules):
    """{top-level function: reason} for functions that use a forbidden module (dotted names: ``torch``,
    ``scipy.signal``), directly or through another top-level function of the same file. Read from the source
    in the grader's own process: this, not anything a child reports, decides a point. Linear in the file's size,
    whatever its shape (chains of attributes, of helpers): no part's budget is charged for it."""
    tree = parse_source(source)
    if tree is None:   # it cannot be imported either, and that is its verdict
        return {}

    def forbidden(full):
        """The forbidden module ``full`` names (its shortest, where two are listed), or None."""
        if full is None:
            return None
        return min((m for m in modules if full == m or full.startswith(m + ".")), default=None, key=len)

    module_level = bindings(ast.Module(body=[n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))],
                                        type_ignores=[]))
    functions = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    direct, calls = {}, {}
    for name, node in functions.items():
        own = bindings(node)
        bound = collections.ChainMap(own, module_level)   # no copy of the module's imports per function
        reasons = {f"uses {full}" for full in own.values() if forbidden(full)}
        nodes = list(ast.walk(node))
        # A chain a.b.c is read once, from its outermost attribute: its shortest forbidden prefix is the module.
        inner = {id(n.value) for n in nodes if isinstance(n, ast.Attribute)}
        for child in nodes:
            if isinstance(child, (ast.Name, ast.Attribute)) and id(child) not in inner:
                module = forbidden(_dotted(child, bound))
                if module:
                    reasons.add(f"uses {module}")
        if reasons:
            direct[name] = sorted(reasons)[0]
        calls[name] = {c.id for c in nodes if isinstance(c, ast.Name) and c.id in functions and c.id != name}
    # Through helpers, breadth first from the direct uses: a function calling a forbidden one is forbidden too,
    # by its shortest path (the alphabetically first callee where two are as short).
    callers = {name: set() for name in functions}
    for name, callees in calls.items():
        for callee in callees:
            callers[callee].add(name)
    via, origin, hops = {}, dict(direct), dict.fromkeys(direct, 0)
    frontier = set(direct)
    while frontier:
        found = {}
        for callee in frontier:
            for caller in callers[callee]:
                if caller not in origin:
                    found[caller] = min(found.get(caller, callee), callee)
        for caller, callee in found.items():
            via[caller], origin[caller], hops[caller] = callee, origin[callee], hops[callee] + 1
        frontier = set(found)
    result = dict(direct)
    for name in via:
        path, step = [], name
        while step in via and len(path) < SHOWN_HOPS:
            step = via[step]
            path.append(step)
        more = hops[name] - len(path)
        result[name] = "calls " + ", which calls ".join(path) + (f" (and through {more} more functions)" if more
                                                                 else "") + f", which {origin[name]}"
    return result
