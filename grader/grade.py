"""Grade one submission: read it, draw its hidden cases, run each part's checker, score, report.

Every part is checked on its own: a missing or broken file costs that part only, and an internal error of a
checker costs that part a message, never the run. This process never imports torch: the checkers' torch
computations run in children (grader/oracle.py, the sandbox), one torch process at a time.
"""
import dataclasses
import importlib
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
from tqdm import tqdm

import grader
from grader import oracle, results, submission
from grader.review import review
from grader.assignments import get_assignment
from grader.checks import blocked, failed_categories, to_result
from grader.sandbox import Limits, Spent
from grader.sandbox.runner import close_templates

# What a test says when the grader itself failed on it (a regrade flags it for staff).
INTERNAL_ERROR = "the grader failed on this part (an internal error, not your code): please tell your TA"


def gradescope_metadata(path):
    """The ids from Gradescope's submission_metadata.json (they join the seed), or None when unreadable."""
    try:
        data = json.loads(Path(path).read_text())
        return {"id": data["id"]}  # the submission id alone: a regrade of an export knows it too
    except (OSError, ValueError, KeyError, TypeError):
        return None


def part_rng(seed, part):
    """One independent stream per part, so adding a part never changes another's hidden cases."""
    return np.random.default_rng([seed, *part.encode()])


def grade(path, assignment="cnn", limits=None, metadata=None, parts=None, log=print, seed=None):
    """Grade the submission at ``path``; return ``(test results, extra fields for results.json)``.

    ``seed`` replaces the one derived from the submission (a TA reproducing a regrade request).
    """
    spec = get_assignment(assignment)
    limits = limits or Limits()
    sub = submission.load(path, spec.submission_files)
    seed = sub.seed(metadata) if seed is None else seed
    out, leaderboard, categories, findings = [], {}, {}, {}
    chosen = [(part, entry) for part, entry in spec.parts.items() if not parts or part in parts]
    progress = tqdm(chosen, desc="grading", unit="part", file=sys.stderr, disable=None, leave=False)
    try:
        for part, (file, tests) in progress:
            progress.set_postfix_str(part)
            names = [name for _, name, _ in tests]
            started = time.monotonic()
            if file not in sub.files:
                why = sub.skipped.get(file, f"{file} was not submitted")
                outcomes = blocked(names, why + ": no points for this part")
            else:
                try:
                    checker = importlib.import_module(spec.checkers[part])
                    # One budget for hung calls per part, shared by its plans.
                    outcomes = checker.check(sub.files, part_rng(seed, part),
                                             dataclasses.replace(limits, spent=Spent()), names)
                except Exception:  # the grader's own bug: this part gets a message, the run goes on
                    log(f"internal error while checking {part}:\n{traceback.format_exc()}")
                    outcomes = blocked(names, INTERNAL_ERROR)
            log(f"{part}: checked in {time.monotonic() - started:.1f} s")
            for outcome in outcomes.values():
                leaderboard.update(outcome.leaderboard if outcome else {})
                if outcome and outcome.review:
                    findings.setdefault(file, []).append(outcome.review)
            checked = [to_result(number, name, points, outcomes.get(name), spec.show_cases, spec.visibility_of(number),
                                 tags=(part,))
                       for number, name, points in tests]
            if file in sub.file_notes:   # the file was uploaded more than once: each of its tests says which was graded
                checked = [dataclasses.replace(r, output=f"{r.output}\n{sub.file_notes[file]}") for r in checked]
            out += checked
            categories.update({number: found for number, name, _ in tests
                               if (found := failed_categories(outcomes.get(name)))})
    finally:   # the grade's oracle child and templates (one of each for every part) end with it
        oracle.close_all()
        close_templates()
    notes = list(sub.notes)
    if not sub.files:
        notes.append("no gradable file found: submit " + ", ".join(spec.submission_files)
                     + " (at the top level of the upload or one folder deep)")
    # The autograder's log (its stdout: timings, internal errors) is for staff; students see the tests.
    # extra_data is for staff too (Gradescope does not show it to students): the review list (introspection, and
    # what a checker found implausible) is for a TA.
    extra = {"output": "\n".join(notes + [f"convlab grader {grader.__version__}; hidden-case seed {seed}"]),
             "visibility": spec.visibility, "stdout_visibility": "hidden",
             "extra_data": {"version": grader.__version__, "seed": str(seed), "files": sorted(sub.files),
                            "review": review(sub.files, findings), "failed_categories": categories}}
    if leaderboard:
        extra["leaderboard"] = [{"name": name, "value": value} for name, value in leaderboard.items()]
    return out, extra


def grade_to_file(path, out_path, assignment="cnn", limits=None, metadata=None, parts=None, log=print, seed=None,
                  containment=""):
    """Grade and write results.json; always writes a valid file, whatever happened. ``containment``: the
    preflight's line on what confined the children (results.json's ``extra_data.containment``)."""
    started = time.monotonic()
    tests, extra = grade(path, assignment, limits, metadata, parts, log, seed)
    if containment:
        extra["extra_data"]["containment"] = containment
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    # A name nobody can guess or plant beforehand (mkstemp: O_EXCL, mode 600), then an atomic rename.
    fd, tmp = tempfile.mkstemp(prefix=".results-", suffix=".tmp", dir=Path(out_path).parent)
    os.close(fd)
    try:
        results.write(tests, tmp, extra, started)
        os.replace(tmp, out_path)
    except BaseException:
        os.unlink(tmp)
        raise
    return tests, extra
