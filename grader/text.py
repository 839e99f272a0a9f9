"""Text that came from a submission: made safe to show (one helper for every place it reaches a student, a TA's
terminal or results.json), and parsed without letting it end the run.

Anything the submission chose (an exception's message, a returned type's name, a file or folder name, a zip
member's name, a checkpoint's ``arch`` or state_dict key) may be huge, may not be valid UTF-8 (a folder name
read from disk carries lone surrogates), and may carry terminal escapes or markup. ``clean_text`` cuts it
first (so no per-character work is done on more than ``limit`` characters), then makes it valid UTF-8 without
escapes or control characters. ``student_text`` also masks every number, in digits or in words: hidden input
values must not leave through what the student's code says.
"""
import ast
import re
import unicodedata

ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_UNITS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
          "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand "
          "million billion trillion dozen").split()
_ORDINALS = ("third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth fourteenth fifteenth "
             "sixteenth seventeenth eighteenth nineteenth twentieth thirtieth fortieth fiftieth sixtieth "
             "seventieth eightieth ninetieth hundredth thousandth millionth").split()
# A number in digits (in any script, inside a name too: "n_5", "0x1f", "1_000" each carry one), or in words.
NUMBER = re.compile(r"[-+]?(?:0[xXoObB][0-9a-fA-F_]+|\d[\d_]*(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+)"
                    r"|(?i:\b(?:" + "|".join(_UNITS + _ORDINALS) + r")(?:s|ths?)?\b)")


def clean_text(text, limit=300, lines=False):
    """``text`` cut to ``limit`` characters, as valid UTF-8 without escapes or control characters, on one line
    (``lines``: newlines kept)."""
    text = str(text)
    cut = len(text) > limit
    text = text[:limit].encode("utf-8", "replace").decode("utf-8", "replace")
    text = ANSI.sub("", text)
    keep = "\n" if lines else ""
    text = "".join(c if c in keep or c not in "\n\r\t" else " " for c in text
                   if c in "\n\r\t" or unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Co"))
    return text + "..." if cut else text


def mask_numbers(text):
    """Every number in student text replaced by <number>: no phrase of theirs is exempt."""
    return NUMBER.sub("<number>", text)


def student_text(text, limit=300):
    return mask_numbers(clean_text(text, limit))


def parse_source(source):
    """The AST of a student's file, or None where it cannot be had (a syntax error, or code nested so deeply
    that the parser runs out of stack or memory: the student's problem, never the grader's)."""
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
