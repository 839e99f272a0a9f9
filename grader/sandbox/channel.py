"""The channel from a child to the grader, and reading it without trusting it.

The child answers over a pipe, one frame per message: 4 bytes of length (big-endian), then that much JSON.
The grader reads only what it can bound: a frame longer than ``cap`` ends the child; JSON is parsed only under
caps on length and on items, and decoded only to a bounded depth; arrays arrive as ``.npy`` bytes whose magic
and header are checked, and whose element count is checked against their length before anything is allocated
(no zip, no pickle, no lazy archive).

Text from the child is the student's: it is made valid UTF-8, stripped of control characters and terminal
escapes, cut short, and every number in it masked (hidden input values must not leave through an error message).
"""
import ast
import base64
import json
import re
import struct
import unicodedata

import numpy as np

HEADER = struct.Struct(">I")
MAX_ITEMS = 100_000        # JSON values in one frame (arrays travel as one string each)
MAX_DEPTH = 16             # nesting of decoded values (the driver encodes at most 6 levels of containers)
MAX_ELEMENTS = 1 << 25     # elements of one array (256 MB of float64; the frame cap bites first)
NPY_MAGIC = b"\x93NUMPY"
ALLOWED_KINDS = "biuf"     # bool, ints, floats: no objects, no structured or string dtypes

NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?!\w)")
ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")


class Malformed(ValueError):
    """What the child sent cannot be a result: the call it answers fails."""


def clean_text(text, limit=300):
    """``text`` as valid UTF-8 without escapes or control characters, on one line, at most ``limit`` long."""
    text = str(text).encode("utf-8", "replace").decode("utf-8", "replace")
    text = ANSI.sub("", text)
    text = "".join(" " if c in "\n\r\t" else c for c in text
                   if c in "\n\r\t" or unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Co"))
    return text if len(text) <= limit else text[:limit] + "..."


def mask_numbers(text):
    """Every number in student text replaced by <number>: no phrase of theirs is exempt."""
    return NUMBER.sub("<number>", text)


def student_text(text, limit=300):
    return mask_numbers(clean_text(text, limit))


def frames(buffer, cap):
    """Split complete frames off ``buffer`` (a bytearray, consumed); raises Malformed for one over ``cap``."""
    out = []
    while len(buffer) >= HEADER.size:
        (length,) = HEADER.unpack_from(buffer)
        if length > cap:
            raise Malformed(f"a result larger than {cap >> 20} MB")
        if len(buffer) < HEADER.size + length:
            break
        out.append(bytes(buffer[HEADER.size:HEADER.size + length]))
        del buffer[:HEADER.size + length]
    return out


def parse(frame):
    """A frame's JSON object, parsed only when its item count is bounded."""
    items = frame.count(b",") + frame.count(b"[") + frame.count(b"{") + frame.count(b":")
    if items > MAX_ITEMS:
        raise Malformed("too many items")
    try:
        value = json.loads(frame)
    except (ValueError, RecursionError) as error:
        raise Malformed("not JSON") from error
    if not isinstance(value, dict):
        raise Malformed("not an object")
    return value


def load_npy(data):
    """An ndarray from ``.npy`` bytes: checked magic, version and header; plain numeric dtype; the element count
    matches the bytes that follow (so nothing is allocated for a header claiming petabytes)."""
    if not data.startswith(NPY_MAGIC) or len(data) < 10:
        raise Malformed("not an .npy array")
    major = data[6]
    if major == 1:
        (size,), start = struct.unpack_from("<H", data, 8), 10
    elif major in (2, 3):
        if len(data) < 12:
            raise Malformed("not an .npy array")
        (size,), start = struct.unpack_from("<I", data, 8), 12
    else:
        raise Malformed("not an .npy array")
    if size > 4096 or start + size > len(data):
        raise Malformed("a bad .npy header")
    try:
        header = ast.literal_eval(data[start:start + size].decode("latin1"))
        dtype = np.dtype(header["descr"])
        shape, fortran = tuple(int(n) for n in header["shape"]), header["fortran_order"]
    except (ValueError, SyntaxError, KeyError, TypeError, MemoryError, RecursionError) as error:
        raise Malformed("a bad .npy header") from error
    if dtype.kind not in ALLOWED_KINDS or dtype.fields is not None or dtype.subdtype is not None \
            or any(n < 0 for n in shape) or len(shape) > 32 or not isinstance(fortran, bool):
        raise Malformed("an array that is not plain numbers")
    count = 1
    for n in shape:
        count *= n
    body = data[start + size:]
    if count > MAX_ELEMENTS or count * dtype.itemsize != len(body):
        raise Malformed("an array whose size does not match its header")
    return np.frombuffer(body, dtype=dtype).reshape(shape, order="F" if fortran else "C").copy()


def decode(value, depth=0):
    """The inverse of the driver's ``encode``; builds only plain data (ndarray, tuple, list, dict, numbers)."""
    if depth > MAX_DEPTH:
        raise Malformed("nested too deeply")
    if isinstance(value, str):
        return clean_text(value, 10_000)
    if not isinstance(value, dict):
        if isinstance(value, list):
            raise Malformed("a bare list")
        return value
    if "__ndarray__" in value:
        try:
            return load_npy(base64.b64decode(value["__ndarray__"], validate=True))
        except (ValueError, TypeError) as error:
            raise Malformed("a bad array") from error
    if "__int__" in value:
        text = value["__int__"]
        if not isinstance(text, str) or len(text) > 4300 or not re.fullmatch(r"-?\d+", text):
            raise Malformed("a bad int")
        return int(text)
    if "__float__" in value:
        try:
            return float(value["__float__"])
        except (TypeError, ValueError) as error:
            raise Malformed("a bad float") from error
    if isinstance(value.get("__tuple__"), list):
        return tuple(decode(v, depth + 1) for v in value["__tuple__"])
    if isinstance(value.get("__list__"), list):
        return [decode(v, depth + 1) for v in value["__list__"]]
    if isinstance(value.get("__dict__"), list):
        pairs = value["__dict__"]
        if not all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) for p in pairs):
            raise Malformed("a bad dict")
        return {clean_text(k, 200): decode(v, depth + 1) for k, v in pairs}
    raise Malformed("unknown encoding")


def _source_names(source):
    """Names defined in the student's file (functions, classes, methods, lambdas' home): the only function names
    a location may carry out."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return {"<module>"}
    return {"<module>", "<lambda>"} | {n.name for n in ast.walk(tree)
                                       if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def location(failure, files):
    """" (line N of F, in G)" from the traceback fields the driver took, checked against the submission: F one
    of its files, N a line that exists in it, G a name defined in it; '' when any of them is not."""
    name, line, function = failure.get("file"), failure.get("line"), failure.get("function")
    if not isinstance(name, str) or name not in files or type(line) is not int:
        return ""
    source = files[name]
    text = source.decode("utf-8", "replace") if isinstance(source, bytes) else source
    if not 1 <= line <= len(text.splitlines()):
        return ""
    where = f"line {line} of {name}"
    if isinstance(function, str) and function in _source_names(text):
        where += f", in {function}"
    return f" ({where})"


def describe_failure(failure, files):
    """A student's exception, as they can read it: type, masked message, checked location."""
    kind = failure.get("type")
    kind = clean_text(kind, 60) if isinstance(kind, str) and kind else "Exception"
    message = student_text(failure.get("message", ""))
    return f"{mask_numbers(kind)}{': ' + message if message else ''}{location(failure, files)}"
