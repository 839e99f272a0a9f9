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
import stat
import sys
import tempfile
import threading
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
# Gradescope writes about 250 bytes a submission: 1 MB is a class of 4,000, and libyaml parses it in under a second.
METADATA_LIMIT = 1_000_000
SUBMISSION_ID = re.compile(r"submission_(\d+)")
PROGRESS_EVERY = 10   # submissions between two progress lines where no terminal shows a bar
SHOWN = 3   # ignored metadata fields named in the log; the rest are counted


class ExportError(Exception):
    """The export cannot be read: said in one line for the instructor."""


@dataclass
class Entry:
    """One submission of the export."""
    key: str            # Gradescope's submission id, or the entry's name outside an export; unique in a regrade
    path: Path
    submitters: list    # [{"name", "email", "sid"}], several for a group; [] where the metadata has none
    metadata: dict = None   # what joins the seed: {"id": ...} as Gradescope's submission_metadata.json has it

    @property
    def name(self):
        """The name of its results and its log (``<name>.json``, ``logs/<name>.log``): unique, as its key is."""
        return f"submission_{self.key}" if self.metadata else self.key


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


def _say(message):
    """A line of the regrade's log (its standard error), for the TA running it."""
    print(f"regrade: {message}", file=sys.stderr, flush=True)


def _field(record, key):
    """A field of the metadata; Gradescope writes its keys as Ruby symbols (":name")."""
    return record.get(f":{key}", record.get(key)) if isinstance(record, dict) else None


def _metadata_text(path):
    """The text of the metadata file at ``path``; None where there is none. Refused unread where it is not a
    regular file (a pipe or a device would never end) or is over METADATA_LIMIT."""
    try:
        found = path.stat()
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(found.st_mode):
        raise ExportError(f"{path} is not a regular file: refused unread")
    with open(path, "rb") as f:
        data = f.read(METADATA_LIMIT + 1)   # no more, whatever the size said: the file may have grown since
    if len(data) > METADATA_LIMIT:
        raise ExportError(f"{path} is over {METADATA_LIMIT // 1_000_000} MB, far more than Gradescope writes for a "
                          "class: refused unread")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ExportError(f"{path} is not UTF-8 text: refused") from None


def _parsed(text, path):
    """The YAML document ``text``, anchors and aliases refused before anything is built: Gradescope writes
    neither, and a few hundred bytes of nested aliases stand for gigabytes once a field is made a string."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)   # libyaml where there is one: ten times faster
    try:
        for event in yaml.parse(text, Loader=loader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise ExportError(f"{path} uses YAML anchors or aliases (line {event.start_mark.line + 1}), which "
                                  "Gradescope's metadata never does: refused unread")
        return yaml.load(text, Loader=loader)
    # A YAML error, a number past Python's digit limit or a date that does not exist (ValueError), nesting
    # deeper than the pure-Python parser's stack (RecursionError): the file is broken either way.
    except (yaml.YAMLError, ValueError, RecursionError) as error:
        raise ExportError(f"{path} cannot be read ({' '.join(str(error).split())[:300]})") from None


def _plain(value):
    """A submitter's field as text; None where it is not a plain value (a list, a mapping, a date...)."""
    if value is None:
        return ""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return clean_text(value, 200)
    return None


def read_submitters(export):
    """{entry name: [{"name", "email", "sid"}]} from the export's submission_metadata.yml ({} without one).

    A file that cannot be used (too large, not YAML, anchors or aliases, not a mapping) stops the regrade with
    one line: graded without it, scores.csv would have no name to put the scores under. A field that is not
    plain text (a list where a name should be) is left empty and said in the log; the rest is kept."""
    path = export / METADATA
    text = _metadata_text(path)
    if text is None:
        return {}
    data = _parsed(text, path)
    if not isinstance(data, dict):
        raise ExportError(f"{path} is not Gradescope's submission metadata (a mapping of submissions)")
    found, ignored = {}, []
    for name, record in data.items():
        people = _field(record, "submitters")
        if not isinstance(people, list):
            if people is not None:
                ignored.append(f"{name}: its submitters")
            people = []
        found[str(name)] = []
        for i, person in enumerate(people):
            if not isinstance(person, dict):
                ignored.append(f"{name}: submitter {i + 1}")
                continue
            fields = {key: _plain(_field(person, key)) for key in ("name", "email", "sid")}
            ignored += [f"{name}: submitter {i + 1}'s {key}" for key, value in fields.items() if value is None]
            found[str(name)].append({key: value or "" for key, value in fields.items()})
    if ignored:
        more = f" and {len(ignored) - SHOWN} more" if len(ignored) > SHOWN else ""
        _say(f"{METADATA}: {len(ignored)} field(s) that are not plain text left empty "
             f"({clean_text('; '.join(ignored[:SHOWN]), 300)}{more})")
    return found


def _distinct(found):
    """Give every entry a key of its own. Two entries whose names clean to the same key (a folder ``x`` and
    ``x.zip``, names that differ only in bytes that are not text) would share a row and a results file: the
    first by name keeps the key, the others get ``-2``, ``-3``, ..., said in the log."""
    taken = {e.key for e in found}
    groups = {}
    for entry in sorted(found, key=lambda e: os.fsencode(e.path.name)):
        groups.setdefault(entry.key, []).append(entry)
    for key, group in groups.items():
        if len(group) < 2:
            continue
        for entry in group[1:]:
            n = 2
            while f"{key}-{n}" in taken:
                n += 1
            entry.key = f"{key}-{n}"
            taken.add(entry.key)
        names = " and ".join(clean_text(e.path.name, 100) for e in group)
        _say(f"{names} have the same key ({key}): graded as {' and '.join(e.key for e in group)}")


def entries(export):
    """Every submission of ``export`` (folders and zips), in the order of their ids, then names."""
    submitters = read_submitters(export)
    found = []
    for path in export.iterdir():
        if not _is_submission(path):
            continue
        name = path.name if path.is_dir() else path.stem   # a folder's name whole: "j.doe" is no file type
        match = SUBMISSION_ID.fullmatch(name)
        # a folder's name may be anything (not UTF-8, escapes): it reaches scores.csv and the report cleaned
        key = match.group(1) if match else clean_text(name, 100)
        found.append(Entry(key or "?", path, submitters.get(name, []), {"id": int(key)} if match else None))
    _distinct(found)
    return sorted(found, key=lambda e: (not e.key.isdigit(), int(e.key) if e.key.isdigit() else 0, e.key))


def _grade_one(path, out_path, log_path, assignment, metadata, parts, containment):
    """In a fresh process: grade one submission as ``grade`` does, its log (what confined it, timings, internal
    errors) to a file."""
    from grader.grade import grade_to_file

    with open(log_path, "w") as log, redirect_stdout(log), redirect_stderr(log):
        try:
            if containment:
                print(containment, flush=True)
            grade_to_file(path, out_path, assignment, metadata=metadata, parts=parts, containment=containment,
                          log=lambda message: print(message, flush=True))
        except BaseException:
            traceback.print_exc()
            raise SystemExit(1)


def _serve(connection):
    """A worker's loop: grade each job it is sent, as ``_grade_one``, and say when it is done; its sandbox's
    templates stay from one submission to the next (they hold nothing of any submission)."""
    from grader.sandbox import runner

    runner.keep_templates(True)
    while (job := connection.recv()) is not None:
        try:
            _grade_one(*job)
        except SystemExit:   # said in the submission's log
            pass
        connection.send("done")


class _Worker:
    """A grading process (spawned: the same imports, memory and uid blocks as a single grade) that grades
    submissions one after another; one that ends mid-grade costs that submission only, and is replaced."""

    def __init__(self):
        context = multiprocessing.get_context("spawn")
        self.connection, theirs = context.Pipe()
        self.proc = context.Process(target=_serve, args=(theirs,), daemon=True)
        self.proc.start()
        theirs.close()

    def grade(self, job):
        """Whether the job was done; False where the process ended first (it is then spent: joined, so that
        ``proc.is_alive()`` says so at once)."""
        try:
            self.connection.send(job)
            while not self.connection.poll(0.2):
                if not self.proc.is_alive():
                    break
            else:
                if self.connection.recv() == "done":
                    return True
        except (EOFError, OSError):
            pass
        self.proc.kill()
        self.proc.join()
        return False

    def close(self):
        try:
            self.connection.send(None)
        except OSError:
            pass
        self.proc.join(timeout=30)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()


def _run_one(entry, out_dir, assignment, parts, containment, worker):
    out_path, log_path = out_dir / f"{entry.name}.json", out_dir / "logs" / f"{entry.name}.log"
    if out_path.is_file():
        out_path.unlink()   # a result left from an earlier run must not stand in for this one
    grader = worker()
    grader.grade((entry.path, out_path, log_path, assignment, entry.metadata, parts, containment))
    try:
        return Graded(entry, json.loads(out_path.read_text()))
    except (OSError, ValueError):
        said = log_path.read_text(errors="replace").strip().splitlines() if log_path.exists() else []
        why = said[-1] if said else f"the grading process ended with status {grader.proc.exitcode}"
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


def grade_all(items, out_dir, assignment="cnn", parts=None, jobs=None, containment=""):
    """Grade every entry, ``jobs`` at a time; the Graded records in the entries' order. ``containment``: the
    preflight's line, written into every log and results.json."""
    (out_dir / "logs").mkdir(parents=True, exist_ok=True)
    progress = _Progress(len(items))
    local, workers = threading.local(), []

    def worker():   # each thread of the pool drives one worker process, replaced when it ends
        if getattr(local, "worker", None) is None or not local.worker.proc.is_alive():
            local.worker = _Worker()
            workers.append(local.worker)
        return local.worker

    try:
        with ThreadPoolExecutor(max_workers=jobs or default_jobs()) as pool:
            futures = [pool.submit(_run_one, entry, out_dir, assignment, parts, containment, worker)
                       for entry in items]
            for future in as_completed(futures):
                progress.update(future.result())
    finally:
        for each in workers:
            each.close()
    progress.close()
    return [future.result() for future in futures]


def regrade(export, out_dir, assignment="cnn", parts=None, jobs=None, threshold=None, containment=""):
    """Regrade the export at ``export`` (a zip or a folder) into ``out_dir``; return the rows of scores.csv.
    ``threshold``: the similarity at which a pair of files is listed (default similarity.THRESHOLD);
    ``containment``: the preflight's line on what confines the children, for every log and results.json."""
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
        graded = grade_all(items, out_dir, assignment, parts, jobs, containment)
        seconds = time.monotonic() - started
        graded_files = {file for part, (file, _) in spec.parts.items() if not parts or part in parts}
        sources = {e.key: {name: data for name, data in submission.load(e.path, graded_files).files.items()
                           if name.endswith(".py")} for e in items}
    threshold = similarity.THRESHOLD if threshold is None else threshold
    pairs = similarity.compare(sources, similarity.boilerplate(assignment), out_dir / "similarity", threshold)
    similarity.write_csv(pairs, out_dir / "similarity.csv")
    rows = scores.rows(graded, spec, parts)
    scores.write_csv(rows, out_dir / "scores.csv")
    report.write(out_dir / "report.html", graded, rows, pairs, spec, seconds, parts, threshold)
    return rows
