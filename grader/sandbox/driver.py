"""The program a sandboxed child runs: import the student's module, run a list of calls, report raw values.

This file is copied, alone, into the sandbox and run as a script: it may use the standard library and
numpy (torch only when the student's code or a step needs it) and nothing of the grader's. It computes no
verdict: it hands back what the student's functions returned, and the grader's own process judges.

Usage: driver.py TASK.json INPUTS.npz RESULTS.jsonl

TASK.json: {"module": "layers", "call_timeout": seconds, "forbidden": [module names to watch],
            "steps": [step, ...]}
A step: {"id": str (its result is reported under this id; omit to report nothing), "call": target,
         "args": [ref, ...], "kwargs": {name: ref}, "save": name, "pick": index into a returned tuple,
         "timeout_factor": how many plain calls' time this step may take (default 1)}
A target: "NAME" (an attribute of the student's module) or "builtin:NAME" (a helper below).
A ref: {"in": key} (a fresh copy of an input array), {"v": json value}, {"var": name, "at": [keys...]}
       (a value saved by an earlier step, optionally indexed), {"fn": name} (a function of the student's
       module, as a value), {"list": [ref, ...]}, {"tensor": key} (an input as a torch tensor),
       {"state": prefix} (all inputs whose key starts with prefix, as a dict of tensors, prefix removed).
Each reported record is one JSON line: {"id", "ok", "value" | "error", "seconds", "violations"}.
Arrays travel as base64 .npy bytes, read back with allow_pickle=False: nothing here can execute code in the
grader when it loads a result.
"""
import base64
import io
import json
import signal
import sys
import time
import traceback

import numpy as np

MAX_DEPTH = 6
MAX_ITEMS = 10_000


class CallTimeout(BaseException):
    """Raised in the student's code when one call runs past its time (BaseException: harder to swallow)."""


class Unencodable(Exception):
    pass


class NeedsFailedCall(Exception):
    """A step needs a value an earlier step should have saved, and that step failed."""


def encode(value, depth=0):
    """A JSON-able image of ``value``: only plain data crosses back to the grader."""
    if depth > MAX_DEPTH:
        raise Unencodable("nested too deeply")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float, np.integer, np.floating, np.bool_)) and not isinstance(value, np.ndarray):
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        if isinstance(value, (int, np.integer)):
            return {"__int__": str(int(value))}
        return {"__float__": repr(float(value))}
    if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject or value.dtype.fields is not None:
            raise Unencodable(f"an array of dtype {value.dtype}")
        plain = np.array(value, copy=True, subok=False)  # a subclass arrives as a plain ndarray
        buffer = io.BytesIO()
        np.save(buffer, plain, allow_pickle=False)
        return {"__ndarray__": base64.b64encode(buffer.getvalue()).decode("ascii")}
    if isinstance(value, (list, tuple)):
        if len(value) > MAX_ITEMS:
            raise Unencodable("too many items")
        return {"__tuple__" if isinstance(value, tuple) else "__list__": [encode(v, depth + 1) for v in value]}
    if isinstance(value, dict):
        if len(value) > MAX_ITEMS:
            raise Unencodable("too many items")
        return {"__dict__": [[str(k), encode(v, depth + 1)] for k, v in value.items()]}
    raise Unencodable(f"a {type(value).__name__}")


# ------------------------------------------------------------------------------------------------------
# Builtins: harness helpers a step can call (kept tiny; they only move data around).
# ------------------------------------------------------------------------------------------------------

def _torch():
    import torch
    return torch


def builtin_construct(cls, *args, seed=None, **kwargs):
    """Build ``cls(*args, **kwargs)`` after seeding torch (so its random init is reproducible)."""
    if seed is not None:
        _torch().manual_seed(seed)
    return cls(*args, **kwargs)


def builtin_describe(model):
    """Parameter and buffer names with shapes, in registration order."""
    return {"parameters": [[n, list(p.shape)] for n, p in model.named_parameters()],
            "buffers": [[n, list(b.shape)] for n, b in model.named_buffers()]}


def builtin_load(model, state):
    result = model.load_state_dict(state, strict=True)
    return [list(result.missing_keys), list(result.unexpected_keys)]


def builtin_forward(model, x, train):
    torch = _torch()
    model.train(bool(train))
    with torch.no_grad():
        return model(x)


def builtin_state(model, suffixes=None):
    """The model's state_dict as arrays (only the keys ending with one of ``suffixes`` when given)."""
    return {k: v for k, v in model.state_dict().items() if not suffixes or k.endswith(tuple(suffixes))}


def builtin_forward_at(fn, args, position, points):
    """``fn(*args)[0]`` with ``args[position]`` set to each of ``points`` in turn (a forward evaluated at the
    points the grader chose for a numerical gradient; the grader computes the differences)."""
    outputs = []
    for point in points:
        call_args = list(args)
        call_args[position] = np.array(point, copy=True)
        outputs.append(np.asarray(fn(*call_args)[0], dtype=np.float64))
    return np.stack(outputs)


def builtin_dict(**items):
    return items


def builtin_lookup(obj, *keys):
    for key in keys:
        obj = obj[key]
    return obj


def builtin_tuple(*items):
    """A tuple (JSON literals arrive as lists)."""
    return tuple(items)


def builtin_rng(seed):
    """``numpy.random.default_rng(seed)``: save it, then pass the same Generator to several calls."""
    return np.random.default_rng(seed)


def builtin_normal_init(scale, per_sqrt_fan_in=False):
    """An ``init(shape, rng)`` callable the grader owns: ``scale * rng.standard_normal(shape)``, divided by
    ``sqrt(shape[0])`` when ``per_sqrt_fan_in`` (the grader replays the very same function)."""
    def init(shape, rng):
        factor = scale / np.sqrt(shape[0]) if per_sqrt_fan_in else scale
        return factor * rng.standard_normal(shape)
    return init


BUILTINS = {name[len("builtin_"):]: fn for name, fn in globals().items() if name.startswith("builtin_")}


# ------------------------------------------------------------------------------------------------------

class Runner:
    def __init__(self, task, inputs, out):
        self.task = task
        self.inputs = inputs
        self.out = out
        self.saved = {}
        self.failed = {}    # save name -> "function: error" of the step that should have produced it
        self.hung = set()   # student functions that timed out once: not called again (a hang costs once)
        self.violations = []
        self.module = None

    def watch(self, forbidden):
        """Record (cannot be undone by the student) imports of forbidden modules and calls of forbidden numpy
        functions; the grader zeroes the function that was running."""
        roots = tuple(forbidden)

        def hook(event, args):
            if event == "import" and args and isinstance(args[0], str):
                name = args[0]
                if any(name == r or name.startswith(r + ".") for r in roots):
                    self.violations.append(f"imports {name}")
        sys.addaudithook(hook)
        for name in ("convolve", "correlate"):
            original = getattr(np, name)

            def tripwire(*args, _name=name, _original=original, **kwargs):
                self.violations.append(f"calls numpy.{_name}")
                return _original(*args, **kwargs)
            setattr(np, name, tripwire)

    def resolve(self, ref):
        if "in" in ref:
            return np.array(self.inputs[ref["in"]], copy=True)
        if "v" in ref:
            return ref["v"]
        if "var" in ref:
            if ref["var"] in self.failed:
                raise NeedsFailedCall("the result of " + self.failed[ref["var"]])
            value = self.saved[ref["var"]]
            for key in ref.get("at", []):
                value = value[key]
            return value
        if "fn" in ref:
            return getattr(self.module, ref["fn"])
        if "list" in ref:
            return [self.resolve(r) for r in ref["list"]]
        if "tensor" in ref:
            return _torch().from_numpy(np.array(self.inputs[ref["tensor"]], copy=True))
        if "state" in ref:
            prefix = ref["state"]
            torch = _torch()
            return {k[len(prefix):]: torch.from_numpy(np.array(v, copy=True))
                    for k, v in self.inputs.items() if k.startswith(prefix)}
        raise ValueError(f"bad reference {ref}")

    def target(self, name):
        if name.startswith("builtin:"):
            return BUILTINS[name[len("builtin:"):]]
        if name.startswith("var:"):
            return self.saved[name[len("var:"):]]
        return getattr(self.module, name)

    def report(self, record):
        self.out.write(json.dumps(record) + "\n")
        self.out.flush()

    def run_step(self, step):
        started = time.perf_counter()
        before = len(self.violations)
        record = {"id": step.get("id")}
        functions = {step["call"]} | {r["fn"] for r in step.get("args", []) if "fn" in r}
        timeout = float(self.task.get("call_timeout", 10)) * float(step.get("timeout_factor", 1))
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            if functions & self.hung:
                raise NeedsFailedCall(f"{sorted(functions & self.hung)[0]}, which timed out earlier")
            fn = self.target(step["call"])
            args = [self.resolve(r) for r in step.get("args", [])]
            kwargs = {k: self.resolve(r) for k, r in step.get("kwargs", {}).items()}
            value = fn(*args, **kwargs)
            signal.setitimer(signal.ITIMER_REAL, 0)
            if "save" in step:
                self.saved[step["save"]] = value
            if "pick" in step:
                if not isinstance(value, tuple):
                    raise Unencodable(f"returned a {type(value).__name__}, not a tuple")
                if len(value) <= step["pick"]:
                    raise Unencodable(f"returned a tuple of {len(value)}, too short")
                value = value[step["pick"]]
            record.update(ok=True, value=encode(value) if step.get("id") else None)
        except CallTimeout:
            self.hung |= {f for f in functions if not f.startswith("builtin:")}
            record.update(ok=False, error=f"timed out after {timeout:g} s")
        except NeedsFailedCall as error:
            signal.setitimer(signal.ITIMER_REAL, 0)
            record.update(ok=False, error=f"not run: it needs {error}")
        except Unencodable as error:
            signal.setitimer(signal.ITIMER_REAL, 0)
            record.update(ok=False, error=f"returned {error}, which is not plain data")
        except Exception as error:  # the student's exception: report it, go on with the next step
            signal.setitimer(signal.ITIMER_REAL, 0)
            record.update(ok=False, error=describe(error))
        record["seconds"] = time.perf_counter() - started
        record["violations"] = sorted(set(self.violations[before:]))
        if "save" in step and not record["ok"]:
            self.failed[step["save"]] = f"{step['call']}, which failed ({record['error']})"
        if step.get("id"):
            self.report(record)

    def main(self):
        def on_alarm(signum, frame):
            raise CallTimeout()
        signal.signal(signal.SIGALRM, on_alarm)
        if self.task.get("forbidden"):
            self.watch(self.task["forbidden"])
        import importlib
        started = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, float(self.task.get("import_timeout", 30)))
        try:
            self.module = importlib.import_module(self.task["module"])
            signal.setitimer(signal.ITIMER_REAL, 0)
        except BaseException as error:  # noqa: B902 - a failed import is a result, whatever it raised
            signal.setitimer(signal.ITIMER_REAL, 0)
            message = "timed out" if isinstance(error, CallTimeout) else describe(error)
            self.report({"id": "__import__", "ok": False, "error": message,
                         "seconds": time.perf_counter() - started, "violations": sorted(set(self.violations))})
        else:
            self.report({"id": "__import__", "ok": True, "seconds": time.perf_counter() - started,
                         "violations": sorted(set(self.violations))})
            for step in self.task["steps"]:
                self.run_step(step)
        self.report({"id": "__done__", "ok": True})


def describe(error):
    """``Type: message`` and the last frame in the student's file (line numbers help; hidden inputs stay out)."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if not f.filename.endswith("driver.py")]
    where = f" (line {frames[-1].lineno} of {frames[-1].filename.rsplit('/', 1)[-1]}, in {frames[-1].name})" \
        if frames else ""
    text = str(error)
    if len(text) > 300:
        text = text[:300] + "..."
    return f"{type(error).__name__}: {text}{where}"


def main(argv):
    task_path, inputs_path, results_path = argv[1:4]
    with open(task_path) as f:
        task = json.load(f)
    with np.load(inputs_path, allow_pickle=False) as data:
        inputs = {k: data[k] for k in data.files}
    sys.path.insert(0, task["student_dir"])
    with open(results_path, "w") as out:
        Runner(task, inputs, out).main()


if __name__ == "__main__":
    main(sys.argv)
