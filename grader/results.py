"""Gradescope's results.json (written through gradescope-utils) and the terminal table.

The checks have already run (in child processes) and been scored by the grader when this module is reached:
each TestResult becomes one generated unittest method that replays its score, decorated with
gradescope-utils' weight / number / visibility / partial credit. The known traps are avoided by design: no
subTest, no skips, no setUpClass, so no result can vanish and no failure can abort the run.
"""
import io
import json
import textwrap
import time
import unittest
from dataclasses import dataclass

from gradescope_utils.autograder_utils.decorators import number, partial_credit, tags, visibility
from gradescope_utils.autograder_utils.json_test_runner import JSONTestRunner

MAX_OUTPUT = 4000  # characters of feedback per test


@dataclass
class TestResult:
    number: str
    name: str
    max_score: float
    score: float
    output: str
    visibility: str = "visible"
    tags: tuple = ()   # the part it belongs to ("layers", ...): Gradescope groups and filters tests by tag

    @property
    def passed(self):
        return self.score >= self.max_score - 1e-9


def _method(result):
    @number(result.number)
    @tags(*result.tags)
    @visibility(result.visibility)
    @partial_credit(result.max_score)
    def test(self, set_score=None):
        set_score(round(result.score, 4))
        output = shorten(result.output)
        if not result.passed:
            raise AssertionError(output)
        print(output)
    test.__doc__ = f"{result.number} {result.name}"
    return test


def shorten(output, limit=MAX_OUTPUT):
    """``output`` cut after its last whole line within ``limit`` characters, saying how much was left out."""
    if len(output) <= limit:
        return output
    head = output[:limit]
    if "\n" not in head:  # one long line: cut between words
        kept = head.rsplit(" ", 1)[0]
        return f"{kept} [... {len(output) - len(kept)} more characters left out]"
    kept = head.rsplit("\n", 1)[0]
    left = output[len(kept):].strip("\n").count("\n") + 1
    return f"{kept}\n[... {left} more line{'s' if left > 1 else ''} left out]"


def _test_key(result):
    return tuple(int(p) for p in result.number.split("."))


def results_json(results, extra=None, started=None):
    """Gradescope's results dict for ``results``, with ``extra`` top-level fields (seed, version, output)."""
    methods = {f"test_{i:03d}": _method(r) for i, r in enumerate(sorted(results, key=_test_key))}
    case = type("Results", (unittest.TestCase,), methods)
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(case)
    stream = io.StringIO()

    def finish(data):
        data["execution_time"] = round(time.monotonic() - started, 2) if started else float(data["execution_time"])
        data["score"] = round(data["score"], 4)
        data.update(extra or {})
        if not data.get("leaderboard"):
            data.pop("leaderboard", None)

    JSONTestRunner(stream=stream, failure_prefix="", post_processor=finish).run(suite)
    return json.loads(stream.getvalue())


def write(results, path, extra=None, started=None):
    data = results_json(results, extra, started)
    with open(path, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    return data


def table(results, width=100, verbose=False):
    """One line per test: number, whole name, points, and the first line of its verdict; then the total.
    ``verbose`` (for staff): each test's whole feedback under its line, wrapped to ``width``."""
    name_width = max([len(r.name) for r in results] + [5])
    lines = [f"{'test':<6} {'name':<{name_width}} {'points':>13}  verdict", "-" * width]
    for r in sorted(results, key=_test_key):
        said = r.output.strip().splitlines()
        room = max(width - name_width - 24, 20)
        verdict = "" if verbose or not said else (said[0] if len(said[0]) <= room else said[0][: room - 3] + "...")
        lines.append(f"{r.number:<6} {r.name:<{name_width}} {r.score:6.2f} / {r.max_score:<5g} {verdict}".rstrip())
        if verbose:
            lines += [wrapped for line in said
                      for wrapped in textwrap.wrap(line, width, initial_indent="    ",
                                                   subsequent_indent="    " + " " * (len(line) - len(line.lstrip())))]
    total, possible = sum(r.score for r in results), sum(r.max_score for r in results)
    lines += ["-" * width, f"{'':<6} {'total':<{name_width}} {total:6.2f} / {possible:<5g}"]
    return "\n".join(lines)
