"""Code similarity between the submissions of a regrade, for staff to review (never for points).

Every graded .py file is compared with the same file of every other submission by copydetect, which tokenises
the code (so renamed variables still match) and compares winnowed fingerprints, as MOSS does. The handout's
stubs are given as boilerplate: the starter code everyone shares does not count. A pair's score is the larger
of its two shares of copied tokens (a short file wholly inside a long one scores 1). Each pair at or above the
threshold gets a page of its own with the two files side by side, the shared code highlighted.
"""
import html
import io
import itertools
import math
import re
import warnings
from dataclasses import dataclass

from grader import paths, spreadsheet
from grader.assignments import get_assignment

THRESHOLD = 0.8   # the share of a file's (non-boilerplate) code found in the other's: the default of --similarity
NOISE = 25        # copydetect's defaults: matches shorter than this many characters of filtered code are noise,
GUARANTEE = 25    # and a match this long is always found


@dataclass
class Pair:
    a: str        # submission keys, a before b
    b: str
    file: str
    score: float  # as copydetect measured it, unrounded: 1 only where all of one file is found in the other
    page: str     # the side-by-side page, relative to the regrade's folder


def rounded_down(score):
    """A score to 3 decimals, rounded down (past float round-off): 0.9996 is 0.999, never 1."""
    return math.floor(score * 1000 + 1e-9) / 1000


def percent(score):
    """A score as a TA reads it, to one decimal and rounded down: 99.96 % is "99.9 %", and only a file found
    whole in the other reads "100.0 %"."""
    return f"{100 * rounded_down(score):.1f} %"


def boilerplate(assignment):
    """{file name: source} of the handout's stubs for the graded Python files."""
    handout = paths.assignments_dir(assignment)
    return {name: (handout / name).read_text() for name in get_assignment(assignment).submission_files
            if name.endswith(".py") and (handout / name).is_file()}


def _text(data):
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data


def compare(sources, stubs, out_dir, threshold=THRESHOLD):
    """The Pairs at or above ``threshold`` among ``sources`` ({submission key: {file name: bytes}}), highest
    first; their pages are written in ``out_dir``."""
    # Imported here: copydetect loads matplotlib, and only a regrade needs it (the CLI's other commands do not).
    from copydetect import CodeFingerprint, compare_files

    pairs = []
    for name in sorted({name for files in sources.values() for name in files}):
        ignore = CodeFingerprint(name, NOISE, 1, fp=io.StringIO(stubs[name])).hashes if name in stubs else []
        prints = {key: CodeFingerprint(name, NOISE, GUARANTEE - NOISE + 1, boilerplate=list(ignore),
                                       fp=io.StringIO(_text(files[name])))
                  for key, files in sources.items() if name in files}
        for a, b in itertools.combinations(sorted(prints), 2):
            _, shares, slices = compare_files(prints[a], prints[b])
            score = float(max(shares))
            if score >= threshold:
                page = _page(out_dir, f"{_safe(name)}-{_safe(a)}-{_safe(b)}", {p.page for p in pairs})
                _write_page(page, name, (a, b), (prints[a], prints[b]), slices, score)
                pairs.append(Pair(a, b, name, score, f"{out_dir.name}/{page.name}"))
    return sorted(pairs, key=lambda p: (-p.score, p.file, p.a, p.b))


def _safe(text):
    return re.sub(r"[^\w.-]", "_", text)


def _page(out_dir, stem, taken):
    """The path of a pair's page: ``stem``.html, or -2, -3, ... after it where keys made safe for a file name
    meet (``a b`` and ``a_b``) and another pair's page has it."""
    page, n = out_dir / f"{stem}.html", 2
    while f"{out_dir.name}/{page.name}" in taken:
        page, n = out_dir / f"{stem}-{n}.html", n + 1
    return page


def _write_page(path, name, keys, prints, slices, score):
    from copydetect.utils import highlight_overlap

    columns = []
    for key, fingerprint, cut, colour in zip(keys, prints, slices, ("#f8c6c6", "#c6f0c6")):
        with warnings.catch_warnings():   # no overlap at all is no error here
            warnings.simplefilter("ignore")
            code, _ = highlight_overlap(fingerprint.raw_code, cut, f"<mark style='background:{colour}'>",
                                        "</mark>", escape_html=True)
        columns.append(f"<div><h2>submission {html.escape(key)}</h2><pre>{code}</pre></div>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(name)}: {html.escape(keys[0])} and {html.escape(keys[1])}</title>"
        "<style>body{font-family:sans-serif;margin:1em}"
        "main{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:1em}pre{font-size:12px;overflow-x:auto;border:1px solid #ccc;padding:.5em}</style></head><body>"
        f"<h1>{html.escape(name)}: similarity {percent(score)}</h1><p>Highlighted: code found in both files "
        "(after tokenising: names and literals do not matter), the handout's stub left out.</p>"
        f"<main>{''.join(columns)}</main></body></html>\n", encoding="utf-8")


def write_csv(pairs, path):
    """similarity.csv: a pair a row, its score a share to 3 decimals, rounded down (1 only where it is 1)."""
    spreadsheet.write(path, ["submission_a", "submission_b", "file", "score"],
                      ([p.a, p.b, p.file, rounded_down(p.score)] for p in pairs))
