"""Regrade a whole Gradescope export on one machine: one results.json per submission, scores.csv, similarity.csv
and report.html.

A Gradescope export is a zip holding one folder, ``assignment_<id>_export/``, with ``submission_metadata.yml``
(who submitted what) and one folder ``submission_<id>/`` per submission. Its id joins the seed as it did on
Gradescope, so each submission draws the same hidden cases. A plain folder of submissions (folders or zips, no
metadata) is graded too, each entry keyed by its name.

Each submission is graded in a process of its own, as a single grade is: a crash costs its row, not the run.
"""
import json
import multiprocessing
import os
import re
import sys
import tempfile
import time
import traceback
import zipfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from tqdm import tqdm

from grader import submission
from grader.assignments import get_assignment
from grader.text import clean_text

METADATA = "submission_metadata.yml"
SUBMISSION_ID = re.compile(r"submission_(\d+)")
PROGRESS_EVERY = 10   # submissions between two progress lines where no terminal shows a bar


class ExportError(Exception):
    """The export cannot be read: said in one line for the instructor."""


@dataclass
class Entry:
    """One submission of the export."""
    key: str            # Gradescope's submission id, or the entry's name outside an export
    path: Path
    submitters: list    # [{"name", "email", "sid"}], several for a group; [] where the metadata has none
    metadata: dict = None   # what joins the seed: {"id": ...} as Gradescope's submission_metadata.json has it


@dataclass
class Graded:
    entry: Entry
    results: dict = field(default_factory=dict)   # its results.json; {} when the grade failed
    error: str = ""                               # why the grade failed, for staff


def _is_submission(path):
    return (path.is_dir() or path.suffix == ".zip") and not path.name.startswith(("__MACOSX", "."))


def is_export(folder):
    """Whether ``folder`` is an export: its metadata, or submission_<id> folders or zips."""
    return (folder / METADATA).is_file() or any(SUBMISSION_ID.fullmatch(p.stem) and _is_submission(p)
                                                for p in folder.iterdir())


def _unpack(path, scratch):
    """Unpack an export zip, each file keeping its time: of a file uploaded twice, the newer is graded."""
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            target = archive.extract(info, scratch)   # names are made safe: nothing lands outside scratch
            if not info.is_dir():
                when = time.mktime(info.date_time + (0, 0, -1))
                os.utime(target, (when, when))


def find_export(path, scratch):
    """The export folder in ``path``: a Gradescope export zip (unpacked into ``scratch``), its folder, or the
    folder one level above it."""
    path = Path(path)
    if path.is_file():
        try:
            _unpack(path, scratch)
        except (zipfile.BadZipFile, OSError) as error:
            raise ExportError(f"{path} is not a readable zip ({error})") from None
        path = Path(scratch)
    if not path.is_dir():
        raise ExportError(f"no such export (a zip or a folder): {path}")
    if is_export(path):
        return path
    inner = [p for p in sorted(path.iterdir()) if _is_submission(p) and p.is_dir() and is_export(p)]
    if len(inner) > 1:
        raise ExportError(f"{path} holds several exports ({', '.join(p.name for p in inner)}): regrade one")
    return inner[0] if inner else path


def _field(record, key):
    """A field of the metadata; Gradescope writes its keys as Ruby symbols (":name")."""
    return record.get(f":{key}", record.get(key)) if isinstance(record, dict) else None


def read_submitters(export):
    """{entry name: [{"name", "email", "sid"}]} from the export's submission_metadata.yml ({} without one)."""
    try:
        data = yaml.safe_load((export / METADATA).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ExportError(f"{export / METADATA} cannot be read ({' '.join(str(error).split())})") from None
    if not isinstance(data, dict):
        raise ExportError(f"{export / METADATA} is not Gradescope's submission metadata (a mapping of submissions)")
    found = {}
    for name, record in data.items():
        people = _field(record, "submitters") or []
        found[str(name)] = [{key: str(_field(person, key) or "") for key in ("name", "email", "sid")}
                            for person in people if isinstance(person, dict)]
    return found


def entries(export):
    """Every submission of ``export`` (folders and zips), in the order of their ids, then names."""
    submitters = read_submitters(export)
    found = []
    for path in export.iterdir():
        if not _is_submission(path):
            continue
        match = SUBMISSION_ID.fullmatch(path.stem)
        # a folder's name may be anything (not UTF-8, escapes): it reaches scores.csv and the report cleaned
        key = match.group(1) if match else clean_text(path.stem, 100)
        found.append(Entry(key, path, submitters.get(path.stem, []), {"id": int(key)} if match else None))
    return sorted(found, key=lambda e: (not e.key.isdigit(), int(e.key) if e.key.isdigit() else 0, e.key))


def _grade_one(path, out_path, log_path, assignment, metadata, parts):
    """In a fresh process: grade one submission as ``grade`` does, its log (timings, internal errors) to a file."""
    from grader.grade import grade_to_file

    with open(log_path, "w") as log, redirect_stdout(log), redirect_stderr(log):
        try:
            grade_to_file(path, out_path, assignment, metadata=metadata, parts=parts,
                          log=lambda message: print(message, flush=True))
        except BaseException:
            traceback.print_exc()
            raise SystemExit(1)


def _run_one(entry, out_dir, assignment, parts):
    out_path, log_path = out_dir / f"{entry.path.stem}.json", out_dir / "logs" / f"{entry.path.stem}.log"
    if out_path.is_file():
        out_path.unlink()   # a result left from an earlier run must not stand in for this one
    child = multiprocessing.get_context("spawn").Process(
        target=_grade_one, args=(entry.path, out_path, log_path, assignment, entry.metadata, parts))
    child.start()
    child.join()
    try:
        return Graded(entry, json.loads(out_path.read_text()))
    except (OSError, ValueError):
        said = log_path.read_text(errors="replace").strip().splitlines() if log_path.exists() else []
        why = said[-1] if said else f"the grading process ended with status {child.exitcode}"
        return Graded(entry, error=f"the grade failed: {why} (log: logs/{log_path.name})")


class _Progress:
    """A bar on a terminal; elsewhere (a log, CI) a line every PROGRESS_EVERY submissions and at the end."""

    def __init__(self, total):
        self.total, self.done, self.failed = total, 0, 0
        self.bar = tqdm(total=total, desc="regrading", unit="submission", file=sys.stderr) \
            if sys.stderr.isatty() else None

    def update(self, graded):
        self.done += 1
        self.failed += bool(graded.error)
        if self.bar:
            self.bar.update()
        elif self.done % PROGRESS_EVERY == 0 or self.done == self.total:
            failed = f" ({self.failed} could not be graded)" if self.failed else ""
            print(f"regrade: {self.done} of {self.total} submissions graded{failed}", file=sys.stderr, flush=True)

    def close(self):
        if self.bar:
            self.bar.close()


def default_jobs():
    """The cores this process may run on (a container's or taskset's share, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def grade_all(items, out_dir, assignment="cnn", parts=None, jobs=None):
    """Grade every entry, ``jobs`` at a time; the Graded records in the entries' order."""
    (out_dir / "logs").mkdir(parents=True, exist_ok=True)
    progress = _Progress(len(items))
    with ThreadPoolExecutor(max_workers=jobs or default_jobs()) as pool:
        futures = [pool.submit(_run_one, entry, out_dir, assignment, parts) for entry in items]
        for future in as_completed(futures):
            progress.update(future.result())
    progress.close()
    return [future.result() for future in futures]


def regrade(export, out_dir, assignment="cnn", parts=None, jobs=None, threshold=None):
    """Regrade the export at ``export`` (a zip or a folder) into ``out_dir``; return the rows of scores.csv.
    ``threshold``: the similarity at which a pair of files is listed (default similarity.THRESHOLD)."""
    # Imported here, not at the top: each grading process imports this module, and needs none of them.
    from grader import report, scores, similarity

    spec = get_assignment(assignment)
    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="convlab-export-") as scratch:
        items = entries(find_export(export, scratch))
        if not items:
            raise ExportError(f"no submission in {export}: a Gradescope export holds submission_<id> folders")
        out_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        graded = grade_all(items, out_dir, assignment, parts, jobs)
        seconds = time.monotonic() - started
        graded_files = {file for part, (file, _) in spec.parts.items() if not parts or part in parts}
        sources = {e.key: {name: data for name, data in submission.load(e.path, graded_files).files.items()
                           if name.endswith(".py")} for e in items}
    pairs = similarity.compare(sources, similarity.boilerplate(assignment), out_dir / "similarity",
                               similarity.THRESHOLD if threshold is None else threshold)
    similarity.write_csv(pairs, out_dir / "similarity.csv")
    rows = scores.rows(graded, spec, parts)
    scores.write_csv(rows, out_dir / "scores.csv")
    report.write(out_dir / "report.html", graded, rows, pairs, spec, seconds, parts)
    return rows
