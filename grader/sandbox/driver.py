"""The program a sandboxed child runs: import the student's module, run the calls the grader asks for, one at a
time, and report raw values.

This file is copied, alone, into the sandbox and run as a script: it may use the standard library and
numpy (torch only when the student's code or a step needs it) and nothing of the grader's. It computes no
verdict and reports nothing about the student's code: it hands back what the student's functions returned,
and the grader's own process judges.

Usage: driver.py TASK.json COMMAND_FD REPLY_FD ARGUMENTS_FD

TASK.json: {"module": "layers", "student_dir": folder, "forbidden": [module names answered by a placeholder],
"kind": the kind of child, whose allow-list confines it (policy.py)}
Both ways a message is one frame (``pack``): 4 bytes of length (big-endian), 4 bytes of its JSON's length, the
JSON object, whose "arrays" lists [key, dtype, shape] of each array it carries, then those arrays' raw C-order
bytes, one after another. The grader sends one command at a time on COMMAND_FD, {"nonce": str, "import": true}
first, then {"nonce": str, "step": step} with the step's arrays. A step's arrays travel with it and with nothing
else: no file holds a plan's inputs, and no value is sent before the step that uses it.
Each command gets one reply frame on REPLY_FD (read by channel.py), carrying its nonce: {"nonce", "ok", "value" |
"failure", "seconds"}, a returned array carried as {"__ndarray__": key}. The grader sends a nonce only when it
asks, so nothing written before (at import time, say) can answer a call; and it times every call from outside.
A step: {"call": target, "args": [ref, ...], "kwargs": {name: ref}, "save": name, "pick": index into a
returned tuple, "report": whether to send the value back}
A target: "NAME" (an attribute of the student's module) or "builtin:NAME" (a helper below).
A ref: {"in": key} (a fresh, writable copy of an array sent with the step), {"in": key, "read_only": true}
       (the array itself, over pages of the grader's memfd mapped read-only from ARGUMENTS_FD, listed in the
       command's "mapped" as [key, dtype, shape, offset]: numpy refuses an edit in place with "ValueError:
       assignment destination is read-only", and a view that ignores numpy's flag faults), {"v": json value},
       {"var": name, "at": [keys...]} (a value saved by an earlier step, optionally indexed), {"fn": name} (a
       function of the student's module, as a value), {"list": [ref, ...]}, {"tensor": key} (an array as a torch
       tensor),
       {"state": prefix} (the step's arrays whose key starts with prefix, as a dict of tensors, prefix removed).
A failure: {"type", "message", "file", "line", "function"} (the student's exception and where it was raised,
taken from the traceback object) or {"unencodable": what} or {"pick": type name, "length": n}.
Arrays travel back as raw numbers under a listed plain dtype: nothing here can execute code in the grader when it
reads a result.
"""
import json
import math
import mmap   # before confinement: where torch is forbidden, no extension loads after it
import os
import struct
import sys
import time

import numpy as np

MAX_DEPTH = 6
MAX_ITEMS = 10_000
LENGTH = struct.Struct(">I")


class Unencodable(Exception):
    pass


def pack(message, arrays):
    """The frame carrying ``message`` (a dict) and ``arrays`` ({key: ndarray}), its length first."""
    arrays = {key: np.ascontiguousarray(value) for key, value in arrays.items()}
    head = json.dumps(dict(message, arrays=[[key, a.dtype.str, list(a.shape)] for key, a in arrays.items()])).encode()
    parts = [LENGTH.pack(len(head)), head, *(a.reshape(-1).view(np.uint8) for a in arrays.values())]
    size = sum(len(part) for part in parts)
    return b"".join([LENGTH.pack(size), *parts])


def unpack(frame):
    """(message, {key: array}) of a frame ``pack`` made, its length cut off. Each array is a view of ``frame``'s
    bytes: read-only, and no code can make it writable."""
    (size,) = LENGTH.unpack_from(frame)
    message = json.loads(frame[LENGTH.size:LENGTH.size + size])
    arrays, offset = {}, LENGTH.size + size
    for key, dtype, shape in message.pop("arrays", []):
        dtype, count = np.dtype(dtype), math.prod(shape)
        arrays[key] = np.frombuffer(frame, dtype, count, offset).reshape(shape)
        offset += count * dtype.itemsize
    return message, arrays


def encode(value, arrays, depth=0):
    """A JSON-able image of ``value``, its arrays moved into ``arrays`` ({key: ndarray}, for ``pack``): only plain
    data crosses back to the grader."""
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
        key = str(len(arrays))
        arrays[key] = np.array(value, copy=True, subok=False)  # a subclass arrives as a plain ndarray
        return {"__ndarray__": key}
    if isinstance(value, (list, tuple)):
        if len(value) > MAX_ITEMS:
            raise Unencodable("too many items")
        return {"__tuple__" if isinstance(value, tuple) else "__list__": [encode(v, arrays, depth + 1)
                                                                           for v in value]}
    if isinstance(value, dict):
        if len(value) > MAX_ITEMS:
            raise Unencodable("too many items")
        return {"__dict__": [[str(k), encode(v, arrays, depth + 1)] for k, v in value.items()]}
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


def builtin_built(cls, *args, **kwargs):
    """Build ``cls(*args, **kwargs)`` and answer only that it was built (a module is not plain data)."""
    cls(*args, **kwargs)
    return True


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


def builtin_backward(model, x, upstream):
    """One training step's backward in train mode: ``(model(x) * upstream).sum().backward()``, where ``x`` is
    tracked by autograd (as a block's input is inside a network). Returns every parameter's gradient (None
    where none arrived), the input's gradient, and ``x`` as it is after the call, for the grader to compare.
    In float64, as the reference: in train mode a deep network's batch statistics can amplify float32 round-off
    past any fair tolerance (resnet20's stem gradient, in one draw of random weights in 40)."""
    model.double().train(True)
    model.zero_grad(set_to_none=True)
    leaf = x.double().requires_grad_()
    x = leaf.clone()
    (model(x) * upstream.double()).sum().backward()
    return {"parameters": {n: p.grad for n, p in model.named_parameters()}, "input": x, "input_grad": leaf.grad}


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

class Placeholders:
    """A finder that answers imports of the forbidden modules with a module whose every use raises, so that only
    the functions using one fail (the real ones are out of this child's reach anyway). It reports nothing: the
    grader decides what a file may use from its source."""

    def __init__(self, roots):
        self.roots = roots

    def find_spec(self, name, path=None, target=None):
        if not any(name == r or name.startswith(r + ".") for r in self.roots):
            return None
        import importlib.machinery
        return importlib.machinery.ModuleSpec(name, self, is_package=True)

    def create_module(self, spec):
        name = spec.name

        class Forbidden(type(sys)):
            def __getattr__(self, attribute):
                if attribute.startswith("__"):
                    raise AttributeError(attribute)
                raise ImportError(f"{name} may not be used in this file")
        return Forbidden(name)

    def exec_module(self, module):
        pass


def read_exactly(fd, size):
    data = bytearray()
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return bytes(data)


def read_frame(fd):
    (size,) = LENGTH.unpack(read_exactly(fd, LENGTH.size))
    return read_exactly(fd, size)


def mapped(fd, offset, dtype, shape):
    """An array over pages of the grader's arguments memfd, mapped read-only from a descriptor opened read-only:
    no view of it can write (a write faults), and nothing in this process can make it writable."""
    count = int(np.prod(shape))
    if count == 0:   # nothing to map (and nothing to write)
        return np.frombuffer(b"", dtype, 0).reshape(shape)
    pages = mmap.mmap(fd, count * dtype.itemsize, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ, offset=offset)
    return np.frombuffer(pages, dtype=dtype, count=count).reshape(shape)


def commands(fd, arguments_fd):
    """(command, {key: read-only array}) for each command frame the grader sends, until it closes the pipe."""
    while True:
        try:
            command, arrays = unpack(read_frame(fd))
        except EOFError:
            return
        arrays.update((key, mapped(arguments_fd, offset, np.dtype(dtype), shape))
                      for key, dtype, shape, offset in command.get("mapped", []))
        yield command, arrays


class Runner:
    def __init__(self, task, commands, reply_fd):
        self.task = task
        self.commands = commands
        self.reply_fd = reply_fd
        self.arrays = {}   # the arrays sent with the step being run
        self.saved = {}
        self.module = None

    def send(self, message, arrays):
        data = memoryview(pack(message, arrays))
        while data:
            data = data[os.write(self.reply_fd, data):]

    def resolve(self, ref):
        if "in" in ref:
            array = self.arrays[ref["in"]]
            return array if ref.get("read_only") else np.array(array, copy=True)
        if "v" in ref:
            return ref["v"]
        if "var" in ref:
            value = self.saved[ref["var"]]
            for key in ref.get("at", []):
                value = value[key]
            return value
        if "fn" in ref:
            return getattr(self.module, ref["fn"])
        if "list" in ref:
            return [self.resolve(r) for r in ref["list"]]
        if "tensor" in ref:
            return _torch().from_numpy(np.array(self.arrays[ref["tensor"]], copy=True))
        if "state" in ref:
            prefix = ref["state"]
            torch = _torch()
            return {k[len(prefix):]: torch.from_numpy(np.array(v, copy=True))
                    for k, v in self.arrays.items() if k.startswith(prefix)}
        raise ValueError(f"bad reference {ref}")

    def target(self, name):
        if name.startswith("builtin:"):
            return BUILTINS[name[len("builtin:"):]]
        return getattr(self.module, name)

    def run_step(self, step):
        """The reply to ``step``, and the arrays it carries."""
        arrays = {}
        try:
            fn = self.target(step["call"])
            args = [self.resolve(r) for r in step.get("args", [])]
            kwargs = {k: self.resolve(r) for k, r in step.get("kwargs", {}).items()}
            value = fn(*args, **kwargs)
            if "save" in step:
                self.saved[step["save"]] = value
            if "pick" in step:
                if not isinstance(value, tuple) or len(value) <= step["pick"]:
                    return {"ok": False, "failure": {"pick": type(value).__name__,
                                                     "length": len(value) if isinstance(value, tuple) else None}}, {}
                value = value[step["pick"]]
            return {"ok": True, "value": encode(value, arrays) if step.get("report") else None}, arrays
        except Unencodable as error:
            return {"ok": False, "failure": {"unencodable": str(error)}}, {}
        except Exception as error:  # the student's exception: report it, go on with the next step
            return {"ok": False, "failure": failure(error, self.task["student_dir"])}, {}

    def answer(self, command):
        """The reply to ``command`` (the import, or a step), and the arrays it carries."""
        return (self.import_module(), {}) if command.get("import") else self.run_step(command["step"])

    def import_module(self):
        import importlib
        try:
            self.module = importlib.import_module(self.task["module"])
            return {"ok": True}
        except BaseException as error:  # noqa: B902 - a failed import is a result, whatever it raised
            return {"ok": False, "failure": failure(error, self.task["student_dir"])}

    def main(self):
        if self.task.get("forbidden"):
            sys.meta_path.insert(0, Placeholders(tuple(self.task["forbidden"])))
        for command, self.arrays in self.commands:
            started = time.perf_counter()
            reply, arrays = self.answer(command)
            self.arrays = {}
            self.send(dict(reply, nonce=command["nonce"], seconds=time.perf_counter() - started), arrays)


def failure(error, student_dir):
    """The exception's type and message, and the last frame of the student's files that it passed through, taken
    from the traceback object (the grader checks the place against the submission before showing it)."""
    where = {}
    tb = error.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename.startswith(student_dir + os.sep):
            where = {"file": os.path.basename(code.co_filename), "line": tb.tb_lineno, "function": code.co_name}
        tb = tb.tb_next
    message = str(error)
    if isinstance(error, SyntaxError):   # its place is the error's own, not a frame's
        message = error.msg or ""
        if isinstance(error.filename, str) and error.filename.startswith(student_dir + os.sep):
            where = {"file": os.path.basename(error.filename), "line": error.lineno, "function": "<module>"}
    return {"type": type(error).__name__, "message": message[:1000], **where}


def main(argv):
    task_path, command_fd, reply_fd, arguments_fd = argv[1], int(argv[2]), int(argv[3]), int(argv[4])
    with open(task_path) as f:
        task = json.load(f)
    # --- confinement (confine.py, beside this file): the kernel's limits, before any student code runs ---
    import importlib.util
    spec = importlib.util.spec_from_file_location("confine", os.path.join(os.path.dirname(task_path), "confine.py"))
    confine = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(confine)
    confine.confine(task["kind"], os.path.dirname(task_path), os.getcwd())
    # --- end of confinement ---
    sys.path.insert(0, task["student_dir"])
    Runner(task, commands(command_fd, arguments_fd), reply_fd).main()


if __name__ == "__main__":
    main(sys.argv)
