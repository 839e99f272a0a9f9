"""Read a submission (a folder or a zip) into memory: only the allowed files, never extracted to disk.

Files may sit at the top level or one folder deep (Gradescope uploads often are); the top-level one counts
when both exist, and of several one folder deep (``old/layers.py``, ``final/layers.py``) the newest, by the
zip's time or the file's; the student is told which. A file deeper than that is not graded, and its tests say
where it was found. Anything else in the submission is ignored. Each file's size is capped before it is read,
so a zip bomb or a huge upload costs nothing but its own points.
"""
import hashlib
import json
import os
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

# The caps students' check_submission.py applies too (one source).
from grader.cnn.rules import MAX_CHECKPOINT_BYTES, MAX_SOURCE_BYTES
from grader.text import clean_text

# Where a file may sit in an upload (the reason a deeper one was not graded).
DEPTH_RULE = "only the top level of the upload and one folder deep are graded"


@dataclass
class Submission:
    files: dict = field(default_factory=dict)   # name -> bytes
    notes: list = field(default_factory=list)   # what went wrong reading it, in words for the student
    skipped: dict = field(default_factory=dict)   # name -> why a file that was there was not read
    file_notes: dict = field(default_factory=dict)   # name -> what a student should know about the file graded

    def seed(self, metadata=None):
        """A 64-bit seed from the files' contents (and Gradescope's submission id): a regrade of the same
        submission draws the same hidden cases; two students draw different ones."""
        digest = hashlib.sha256()
        for name in sorted(self.files):
            digest.update(name.encode() + b"\0" + hashlib.sha256(self.files[name]).digest())
        if metadata:
            digest.update(json.dumps(metadata, sort_keys=True).encode())
        return int.from_bytes(digest.digest()[:8], "little")


def _limit(name):
    return MAX_CHECKPOINT_BYTES if name.endswith(".pt") else MAX_SOURCE_BYTES


def _bytes_words(count, digits=0):
    """``count`` bytes in MB, or in KB below one MB: "2.0 MB", "512 KB"."""
    unit, name = (2 ** 20, "MB") if count >= 2 ** 20 else (2 ** 10, "KB")
    return f"{count / unit:.{digits}f} {name}"


def _pick(candidates, allowed):
    """``candidates``: (relative posix path, size, modification time, reader). Of the places a file is found,
    the top level wins, then the newest one folder deep; deeper ones are not graded. Returns the files read,
    why a file that was there was not read, and a note per file found in several places."""
    found = {}
    for path, size, when, read in candidates:
        parts = PurePosixPath(path).parts
        if parts and parts[-1] in allowed and not any(p.startswith(("__MACOSX", ".")) for p in parts):
            # the path reaches the student's feedback and the TA's terminal: cleaned once, here
            found.setdefault(parts[-1], []).append((len(parts), -when, clean_text(path, 100), size, read))
    files, skipped, notes = {}, {}, {}
    for name, places in found.items():
        places.sort(key=lambda place: place[:3])
        graded = [place for place in places if place[0] <= 2]
        deep = [f"{path} ({depth - 1} folders deep)" for depth, _, path, _, _ in places if depth > 2]
        if not graded:
            skipped[name] = (f"{name} was found at {' and '.join(deep)}, where it is not graded ({DEPTH_RULE}: "
                             "upload it at the top level)")
            continue
        depth, _, path, size, read = graded[0]
        others = sorted(p for _, _, p, _, _ in graded[1:])
        if others:
            why = "the top-level one counts" if depth == 1 else "the newest one counts"
            notes[name] = f"note: {name} was uploaded {len(graded)} times ({', '.join([path] + others)}): {why}, " \
                          f"so {path} was graded"
        if deep:
            notes[name] = (f"{notes[name]}; " if others else f"note: {path} was graded; ") + \
                f"{' and '.join(deep)} {'was' if len(deep) == 1 else 'were'} not ({DEPTH_RULE}: to have another " \
                "copy graded, upload it at the top level)"
        if size > _limit(name):
            skipped[name] = (f"{path} is {_bytes_words(size, 1)}, over the {_bytes_words(_limit(name))} limit: "
                             "not graded")
        else:
            files[name] = read()
    return files, skipped, notes


def _from_folder(folder, allowed):
    candidates = []
    for where, _, names in os.walk(folder):   # links to folders are not followed
        for name in names:
            path = Path(where, name)
            if name in allowed and path.is_file() and not path.is_symlink():
                info = path.stat()
                candidates.append((path.relative_to(folder).as_posix(), info.st_size, info.st_mtime, path.read_bytes))
    return _pick(candidates, allowed)


def _from_zip(path, allowed):
    with zipfile.ZipFile(path) as archive:
        candidates = []
        for info in archive.infolist():
            if info.is_dir():
                continue
            name = info.filename.replace("\\", "/").strip("/")
            candidates.append((name, info.file_size, time.mktime(info.date_time + (0, 0, -1)),
                               lambda info=info: _read_member(archive, info)))
        return _pick(candidates, allowed)


def _read_member(archive, info):
    with archive.open(info) as member:
        data = member.read(_limit(info.filename) + 1)  # the header's size may lie: read no further
    if len(data) > _limit(info.filename):
        raise zipfile.BadZipFile(f"{info.filename} is larger than its header says")
    return data


def load(path, allowed):
    """Read the allowed files from the folder or zip at ``path`` (which must exist)."""
    path = Path(path)
    submission = Submission()
    try:
        if path.is_dir():
            zips = [p for p in path.iterdir() if p.suffix == ".zip" and p.is_file()]
            picked = _from_folder(path, allowed)
            if not picked[0] and len(zips) == 1:  # a zip uploaded as the only file
                picked = _from_zip(zips[0], allowed)
        else:
            picked = _from_zip(path, allowed)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError) as error:
        submission.notes.append(f"the submission could not be read ({clean_text(error, 200)}): graded as empty")
        return submission
    submission.files, submission.skipped, submission.file_notes = picked
    return submission
