"""The grader's torch computations, run in a child process of their own: the grading process never imports torch
(a container counts every process's memory, and torch costs a process about 250 MB).

``Oracle("grader.cnn.oracles.layers")`` stands for that module: ``oracle.conv_forward(x, w, b, 1, 1)`` runs the
function in this process's oracle child, started at the first call of any module, and returns its value: one
child serves every module (the preflight's probe, the layers' and the ResNet's references), so a grade starts
torch there once. The child is the grader's own interpreter running trusted grader code on plain values
(``grader.oracle`` run as a module), forked from the sandbox's torch template (so torch starts once a grade),
under rlimits and its kind's seccomp allow-list (policy.py), on one thread (its tensors are small: more threads
would only wait on each other). Arguments and values are numbers, strings, None, lists, tuples, dicts with string
keys and numeric arrays, exchanged in the sandbox's frames (driver.py's ``pack``: JSON, then the arrays' raw bytes
under a listed numeric dtype): nothing is ever unpickled.

``close()`` (or ``close_all()``) ends the child: a checker whose student child loads torch too (resnet) closes it
before running that child, so at most one torch process lives at a time, and grade.py closes it when the grade
ends. ``memoise()`` makes this process keep every answer by its call's bytes, for tools that grade many variants
of one submission on the same cases (scripts/in_process.py): an answer already known costs no child.
"""
import importlib
import os
import sys
import traceback
from pathlib import Path

import numpy as np

from grader.sandbox import confine, driver, policy
from grader.sandbox.limits import ADDRESS_SPACE

CPU_SECONDS = 600         # a runaway oracle ends; a whole grade's oracles take a few seconds
_memo = {}          # {call's bytes: packed value}, kept while memoise() is on
_memoising = False


class OracleError(RuntimeError):
    """The oracle child failed or ended: the grader's fault, never a student's."""


def _encode(value, arrays):
    """``value`` as JSON-able data, its arrays moved into ``arrays`` and referenced by key."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise TypeError(f"an oracle exchanges numeric arrays only, not {value.dtype}")
        arrays[f"a{len(arrays)}"] = value
        return {"a": f"a{len(arrays) - 1}"}
    if isinstance(value, list):
        return [_encode(v, arrays) for v in value]
    if isinstance(value, tuple):
        return {"t": [_encode(v, arrays) for v in value]}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"d": {k: _encode(v, arrays) for k, v in value.items()}}
    raise TypeError(f"an oracle cannot exchange a {type(value).__name__}")


def _decode(data, arrays):
    if isinstance(data, list):
        return [_decode(v, arrays) for v in data]
    if isinstance(data, dict):
        if "a" in data:
            return arrays[data["a"]]
        if "t" in data:
            return tuple(_decode(v, arrays) for v in data["t"])
        return {k: _decode(v, arrays) for k, v in data["d"].items()}
    return data


def pack(value):
    """``value`` as one frame: its structure as JSON, its arrays' bytes after it."""
    arrays = {}
    return driver.pack({"tree": _encode(value, arrays)}, arrays)


def unpack(frame):
    """The value of a frame ``pack`` made (its length cut off); its arrays are the receiver's own, writable."""
    message, arrays = driver.unpack(frame)
    return _decode(message["tree"], {key: array.copy() for key, array in arrays.items()})


def _send(stream, value):
    stream.write(pack(value))
    stream.flush()


def _receive(stream):
    """The next frame's value, or None at the end of the stream."""
    header = stream.read(driver.LENGTH.size)
    if len(header) < driver.LENGTH.size:
        return None
    (size,) = driver.LENGTH.unpack(header)
    data = stream.read(size)
    return unpack(data) if len(data) == size else None


class _Child:
    """The one oracle child of this process: serves every oracle module. It is forked from the torch template
    (grader/sandbox/template.py), which the ResNet and milestone children fork from too: torch starts once."""
    proc = requests = replies = None

    @classmethod
    def start(cls):
        from grader.sandbox import runner

        command_r, command_w = os.pipe()
        reply_r, reply_w = os.pipe()
        spec = {"run": {"module": "grader.oracle", "path": str(Path(__file__).parent.parent)},
                "argv": ["grader.oracle"], "name": "oracle", "fds": [[0], [1], [2]], "env": runner.child_env(),
                "cwd": os.getcwd(), "limits": {"cpu": CPU_SECONDS, "as": ADDRESS_SPACE}}
        try:
            cls.proc = runner.template(sys.executable, "torch").fork(spec, (command_r, reply_w, 2))
        except OSError as error:
            for fd in (command_w, reply_r):
                os.close(fd)
            raise OracleError(str(error)) from None
        finally:
            for fd in (command_r, reply_w):
                os.close(fd)
        cls.requests, cls.replies = os.fdopen(command_w, "wb"), os.fdopen(reply_r, "rb")

    @classmethod
    def ask(cls, request, what):
        if cls.proc is None:
            cls.start()
        try:
            _send(cls.requests, request)
            reply = _receive(cls.replies)
        except BrokenPipeError:
            reply = None
        if reply is None:
            cls.close()
            raise OracleError(f"the oracle child ended during {what}")
        return reply

    @classmethod
    def close(cls):
        if cls.proc is not None:
            cls.requests.close()
            if cls.proc.wait(timeout=10) is None:
                cls.proc.kill()
                cls.proc.wait()
            cls.replies.close()
            cls.proc = None


class Oracle:
    """The functions of ``module``, run in this process's oracle child (started at the first call of any
    module, and kept until ``close``: the preflight's, the layers' and the ResNet's references share one)."""

    def __init__(self, module):
        self.module = module

    @property
    def proc(self):
        """The oracle child's process (None while none runs)."""
        return _Child.proc

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args, **kwargs: self.call(name, *args, **kwargs)

    def call(self, function, *args, **kwargs):
        request = [self.module, function, list(args), kwargs]
        key = _memoising and pack(request)
        if key and key in _memo:
            return unpack(_memo[key][driver.LENGTH.size:])
        reply = _Child.ask(request, f"{self.module}.{function}")
        if "error" in reply:
            raise OracleError(f"{self.module}.{function} failed in the oracle child:\n{reply['error']}")
        if key:
            _memo[key] = pack(reply["value"])   # stored packed: a caller may change the value it is given
        return reply["value"]

    def close(self):
        """End the oracle child (every module's): before a torch child of the student's starts, so that one torch
        process at a time is alive."""
        _Child.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def close_all():
    """End the oracle child, if one is running."""
    _Child.close()


def memoise(on=True):
    """Keep (and reuse) every oracle answer in this process while on, by its call's bytes (oracles are
    deterministic); answers kept stay for the next time it is on. Returns whether it was on."""
    global _memoising
    was, _memoising = _memoising, on
    return was


def probe():
    """What the preflight asks a fresh oracle child (``Oracle("grader.oracle").probe()``): that torch imports here
    and computes as the references do, a float64 convolution and its gradient by autograd. The 4x4 input's 2x2
    blocks summed, and the gradient of their sum (every input in one window: ones)."""
    import torch

    x = torch.arange(16, dtype=torch.float64).reshape(1, 1, 4, 4).requires_grad_()
    out = torch.nn.functional.conv2d(x, torch.ones(1, 1, 2, 2, dtype=torch.float64), stride=2)
    out.sum().backward()
    return out.detach().numpy(), x.grad.numpy()


def serve():
    """The child's loop: read a call, answer its value (or the traceback), until the grader closes the pipe."""
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)   # a print in a module goes to stderr, never into the frames
    # Trusted code on plain values, but the kernel holds it to its kind's allow-list all the same: whatever a
    # value could make torch do, this child starts nothing, writes no file and reaches no other process.
    confine.confine(policy.ORACLE)
    calls = sys.stdin.buffer
    while (request := _receive(calls)) is not None:
        module, function, args, kwargs = request
        try:
            reply = {"value": getattr(importlib.import_module(module), function)(*args, **kwargs)}
        except Exception:  # noqa: BLE001 - the grader's own bug, told to the grader
            reply = {"error": traceback.format_exc()}
        _send(replies, reply)


if __name__ == "__main__":
    serve()
