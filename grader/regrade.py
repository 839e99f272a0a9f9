"""Regrade a whole export of submissions on one machine: one results.json each, and a scores.csv.

Each entry of the export folder (a folder or a zip) is one submission. A Gradescope export names them
``submission_<id>``: that id joins the seed as it did on Gradescope, so the hidden cases are the same.
"""
import csv
import re
from pathlib import Path

from tqdm import tqdm

from grader.grade import grade_to_file

SUBMISSION_ID = re.compile(r"submission_(\d+)")


def submissions_in(export):
    """``(name, path, metadata)`` for every folder or zip in ``export``, in name order."""
    for path in sorted(Path(export).iterdir()):
        if path.is_dir() or path.suffix == ".zip":
            match = SUBMISSION_ID.fullmatch(path.stem)
            yield path.stem, path, ({"id": int(match.group(1))} if match else None)


def regrade(export, out_dir, assignment="cnn", limits=None, log=lambda message: None):
    """Grade every submission of ``export`` into ``out_dir``; return the rows of scores.csv."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, path, metadata in tqdm(list(submissions_in(export)), desc="regrading", unit="submission",
                                     disable=None):
        tests, extra = grade_to_file(path, out_dir / f"{name}.json", assignment, limits, metadata, log=log)
        rows.append({"submission": name, "score": round(sum(t.score for t in tests), 4),
                     "max_score": sum(t.max_score for t in tests), "seed": extra["extra_data"]["seed"]})
    with open(out_dir / "scores.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["submission", "score", "max_score", "seed"])
        writer.writeheader()
        writer.writerows(rows)
    return rows
