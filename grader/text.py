"""Text that came from a submission: made safe to show (one helper for every place it reaches a student, a TA's
terminal or results.json), and parsed without letting it end the run.

Anything the submission chose (an exception's message, a returned type's name, a file or folder name, a zip
member's name, a checkpoint's ``arch`` or state_dict key) may be huge, may not be valid UTF-8 (a folder name
read from disk carries lone surrogates), and may carry terminal escapes or markup. ``clean_text`` cuts it
first (so no per-character work is done on more than ``limit`` characters), then makes it valid UTF-8 without
escapes or control characters. Its words and numbers are kept as written (``downsample.0.weight``,
``[Errno 2]``): hidden inputs are drawn per submission, so a value that leaves through a message is worth
nothing on the next upload (docs/threat-model.md).
"""
import ast
import functools
import re
import unicodedata

ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")


def clean_text(text, limit=300, lines=False):
    """``text`` cut to ``limit`` characters, as valid UTF-8 without escapes or control characters, on one line
    (``lines``: newlines kept)."""
    text = str(text)
    if len(text) <= limit and text.isascii() and text.isprintable():   # most text (no escape, no control)
        return text
    cut = len(text) > limit
    text = text[:limit].encode("utf-8", "replace").decode("utf-8", "replace")
    text = ANSI.sub("", text)
    keep = "\n" if lines else ""
    text = "".join(c if c in keep or c not in "\n\r\t" else " " for c in text
                   if c in "\n\r\t" or unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Co"))
    return text + "..." if cut else text


# A dotted name of more than 32 parts (``a.b.c...``, spaces and line continuations allowed between them). Python's
# parser rebuilds an import's dotted name at every dot: memory grows with the square of its length (50,000
# parts, 100 KB of source, took 2.7 GB), so such a file is not parsed here. No module path comes near 32 parts.
_NAME_GAP = r"[ \t\f]*(?:\\\r?\n[ \t\f]*)*"
LONG_DOTTED = r"(?<![\w.])\w+(?:" + _NAME_GAP + r"\." + _NAME_GAP + r"\w+){32}"
_LONG_DOTTED = {str: re.compile(LONG_DOTTED), bytes: re.compile(LONG_DOTTED.encode())}


# A file is parsed once, however many of its calls fail (treat the tree as read-only); the last file's tree only
# (as bytes and as text), since a tree takes hundreds of bytes a node.
@functools.lru_cache(maxsize=2)
def parse_source(source):
    """The AST of a student's file, or None where it cannot be had (a syntax error, or code nested so deeply
    that the parser runs out of stack or memory, or with a dotted name too long to parse safely: the student's
    problem, never the grader's)."""
    if _LONG_DOTTED[type(source)].search(source):
        return None
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
