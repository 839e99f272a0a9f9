"""The channel between the grader and a child, and reading the child's side without trusting it.

Both ways a message is one frame, as driver.py's ``pack`` makes it: 4 bytes of length (big-endian), 4 bytes of
its JSON's length, the JSON object listing the arrays it carries ([key, dtype, shape]), then their raw bytes.
The grader reads only what it can bound: a frame longer than ``cap`` ends the child; JSON is parsed only under
caps on length and on items, and decoded only to a bounded depth; an array is read only where the value refers to
it, and only once the listing is plain numbers (no object, structured or string dtype) whose sizes add up to the
bytes that follow: nothing is allocated for a listing claiming petabytes, nothing is unpickled or unzipped.

Text from the child is the student's: it goes through ``grader.text`` (cut short, valid UTF-8, no control
characters or terminal escapes) and otherwise reads as written.
"""
import ast
import functools
import json
import re

import numpy as np

from grader.sandbox.driver import LENGTH
from grader.text import clean_text, parse_source

MAX_ITEMS = 100_000        # JSON values in one frame (an array is one item of its value and three of its listing)
MAX_DEPTH = 16             # nesting of decoded values (the driver encodes at most 6 levels of containers)
MAX_ELEMENTS = 1 << 25     # elements of one array (256 MB of float64; the frame cap bites first)
MAX_DIMENSIONS = 32        # numpy's own limit
ALLOWED_KINDS = "biuf"     # bool, ints, floats: no objects, no structured or string dtypes


class Malformed(ValueError):
    """What the child sent cannot be a result: the call it answers fails."""


def type_words(name):
    """A type's name the student's code chose, in a sentence: "a list", "a Foo"."""
    name = (clean_text(name, 60) if isinstance(name, str) else "") or "value"   # a name of escapes cleans to ""
    return f"{'an' if name[0] in 'aeiouAEIOU' else 'a'} {name}"


def frames(buffer, cap):
    """Split complete frames off ``buffer`` (a bytearray, consumed); raises Malformed for one over ``cap``."""
    out = []
    while len(buffer) >= LENGTH.size:
        (length,) = LENGTH.unpack_from(buffer)
        if length > cap:
            raise Malformed(f"a result larger than {cap >> 20} MB")
        if len(buffer) < LENGTH.size + length:
            break
        with memoryview(buffer) as view:   # one copy of a frame of up to ``cap``, not two
            out.append(bytes(view[LENGTH.size:LENGTH.size + length]))
        del buffer[:LENGTH.size + length]
    return out


def parse(frame):
    """A frame's JSON object, parsed only when it is ASCII (as the driver's JSON is: text that is not would take
    Python four bytes a character) and its item count is bounded. Its "arrays" is replaced by an ``Arrays`` over
    the bytes that follow the JSON, for ``decode``, and its "size" by the frame's length."""
    if len(frame) < LENGTH.size:
        raise Malformed("not a result")
    (size,) = LENGTH.unpack_from(frame)
    head = frame[LENGTH.size:LENGTH.size + size]
    if len(head) < size or not head.isascii():
        raise Malformed("not a result")
    if sum(head.count(c) for c in (b",", b"[", b"{", b":")) > MAX_ITEMS:
        raise Malformed("too many items")
    try:
        value = json.loads(head)
    except (ValueError, RecursionError) as error:
        raise Malformed("not JSON") from error
    if not isinstance(value, dict):
        raise Malformed("not an object")
    value["arrays"], value["size"] = Arrays(value.get("arrays"), memoryview(frame)[LENGTH.size + size:]), len(frame)
    return value


class Arrays:
    """The arrays a frame carries: its listing ([key, dtype, shape] each) over the bytes after its JSON, checked
    as a whole at the first array asked for (plain numbers, sizes that add up to the bytes exactly). Each is read
    once: the driver sends an array for every place a value holds one, so a key referred to twice is forged (and
    would copy its bytes as often as the value names it)."""

    def __init__(self, listing, body):
        self.listing, self.body, self.places = listing, body, None

    def __getitem__(self, key):
        if self.places is None:
            self.places = self._places()
        if not isinstance(key, str) or key not in self.places:
            raise Malformed("an array it did not send, or the same one twice")
        dtype, shape, offset, count = self.places.pop(key)
        return np.frombuffer(self.body, dtype, count, offset).reshape(shape).copy()

    def _places(self):
        """{key: (dtype, shape, offset, count)}; raises Malformed unless every entry is plain and the sizes add
        up."""
        if not isinstance(self.listing, list):
            raise Malformed("no list of its arrays")
        places, offset = {}, 0
        for entry in self.listing:
            if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str)
                    and isinstance(entry[1], str) and len(entry[1]) < 8 and isinstance(entry[2], list)
                    and len(entry[2]) <= MAX_DIMENSIONS
                    and all(type(n) is int and 0 <= n <= MAX_ELEMENTS for n in entry[2])):
                raise Malformed("an array that is not plain numbers")
            key, descr, shape = entry
            try:
                dtype = np.dtype(descr)
            except TypeError as error:
                raise Malformed("an array that is not plain numbers") from error
            if dtype.kind not in ALLOWED_KINDS or dtype.fields is not None or dtype.subdtype is not None:
                raise Malformed("an array that is not plain numbers")
            count = 1
            for n in shape:
                count *= n
                if count > MAX_ELEMENTS:
                    raise Malformed("an array larger than the grader reads")
            places[key] = (dtype, tuple(shape), offset, count)
            offset += count * dtype.itemsize
        if offset != len(self.body):
            raise Malformed("arrays whose sizes do not match their bytes")
        return places


NO_ARRAYS = Arrays([], b"")


def decode(value, arrays=NO_ARRAYS):
    """The inverse of the driver's ``encode`` (``arrays``: the frame's, from ``parse``); builds only plain data
    (ndarray, tuple, list, dict, numbers). Total: whatever the child sent, the grader gets a value or Malformed
    (an array listed with a shape of 1e999, a float of 400 digits), never another exception."""
    try:
        return _decode(value, arrays, 0)
    except Malformed:
        raise
    except Exception as error:  # noqa: BLE001 - the child's bytes, not the grader's bug
        raise Malformed(f"something unreadable ({type(error).__name__})") from error


def _decode(value, arrays, depth):
    if depth > MAX_DEPTH:
        raise Malformed("nested too deeply")
    if isinstance(value, str):
        return clean_text(value, 10_000)
    if not isinstance(value, dict):
        if isinstance(value, list):
            raise Malformed("a bare list")
        return value
    if "__ndarray__" in value:
        return arrays[value["__ndarray__"]]
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
        return tuple(_decode(v, arrays, depth + 1) for v in value["__tuple__"])
    if isinstance(value.get("__list__"), list):
        return [_decode(v, arrays, depth + 1) for v in value["__list__"]]
    if isinstance(value.get("__dict__"), list):
        pairs = value["__dict__"]
        if not all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) for p in pairs):
            raise Malformed("a bad dict")
        return {clean_text(k, 200): _decode(v, arrays, depth + 1) for k, v in pairs}
    raise Malformed("unknown encoding")


@functools.lru_cache(maxsize=8)
def _source_names(source):
    """Names defined in the student's file (functions, classes, methods, lambdas' home): the only function names
    a location may carry out."""
    tree = parse_source(source)
    if tree is None:
        return {"<module>"}
    return {"<module>", "<lambda>"} | {n.name for n in ast.walk(tree)
                                       if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def _checked_place(failure, files):
    """(file name, line, its source text) of a failure, when the file is one of the submission's and the line
    exists in it; else None."""
    name, line = failure.get("file"), failure.get("line")
    if not isinstance(name, str) or name not in files or type(line) is not int:
        return None
    text, lines = _text(files[name])
    return (name, line, text) if 1 <= line <= lines else None


@functools.lru_cache(maxsize=8)
def _text(source):
    """A submitted file's text and its number of lines, worked out once however many of its calls fail."""
    text = source.decode("utf-8", "replace") if isinstance(source, bytes) else source
    return text, text.count("\n") + 1


READ_ONLY = re.compile(r"read-only|WRITEABLE")
MUTATING_METHODS = ("sort", "fill", "put", "partition", "setflags", "itemset")
MUTATING_FUNCTIONS = ("copyto", "put", "place", "putmask", "put_along_axis", "fill_diagonal")


def _written(node):
    """The expressions ``node`` writes into in place: ``x`` in ``x -= 1``, ``x[i] = 0``, ``x.sort()``,
    ``np.add(a, b, out=x)``, ``np.copyto(x, a)``."""
    if isinstance(node, ast.AugAssign):
        return [node.target]
    if isinstance(node, ast.Assign):
        return [t for t in node.targets if isinstance(t, (ast.Subscript, ast.Attribute))]
    if not isinstance(node, ast.Call):
        return []
    written = [k.value for k in node.keywords if k.arg == "out"]
    if isinstance(node.func, ast.Attribute):
        owner = node.func.value
        if node.func.attr in MUTATING_FUNCTIONS and isinstance(owner, ast.Name) and owner.id in ("np", "numpy"):
            written += node.args[:1]
        elif node.func.attr in MUTATING_METHODS:
            written.append(owner)
    return written


def in_place_edit(failure, files):
    """For a failure that is a write into a read-only array the grader handed over (an edit in place): the name
    the student's line wrote through ("x" for ``x -= mu``), "" when it cannot be told; None for any other
    failure."""
    if not isinstance(failure, dict) or failure.get("type") != "ValueError" \
            or not READ_ONLY.search(str(failure.get("message", ""))[:200]):
        return None
    place = _checked_place(failure, files)
    if place is None:
        return ""
    return next((name for first, last, name in _writes(place[2]) if first <= place[1] <= last), "")


@functools.lru_cache(maxsize=8)
def _writes(text):
    """(first line, last line, name written through) of every in-place write in a file, in ``ast.walk``'s order:
    worked out once a file, however many of its calls fail."""
    tree = parse_source(text)
    found = []
    for node in ast.walk(tree) if tree is not None else ():
        for target in _written(node):
            while isinstance(target, (ast.Subscript, ast.Attribute)):
                target = target.value
            if isinstance(target, ast.Name):
                found.append((node.lineno, node.end_lineno or 0, target.id[:40]))
                break
    return found


def location(failure, files):
    """" (line N of F, in G)" from the traceback fields the driver took, checked against the submission: F one
    of its files, N a line that exists in it, G a name defined in it; '' when any of them is not."""
    place = _checked_place(failure, files)
    if place is None:
        return ""
    name, line, text = place
    function = failure.get("function")
    where = f"line {line} of {name}"
    if isinstance(function, str) and function in _source_names(text):
        where += f", in {function}"
    return f" ({where})"


def describe_failure(failure, files):
    """A student's exception, as they can read it: type, message, checked location."""
    kind = failure.get("type")
    kind = (clean_text(kind, 60) if isinstance(kind, str) else "") or "Exception"
    message = clean_text(failure.get("message", ""))
    return f"{kind}{': ' + message if message else ''}{location(failure, files)}"
