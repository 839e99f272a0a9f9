"""Read a submission (a folder or a zip) into memory: only the allowed files, never extracted to disk.

Files may sit at the top level or one folder deep (Gradescope uploads often are); the top-level one counts
when both exist. Anything else in the submission is ignored. Each file's size is capped before it is read,
so a zip bomb or a huge upload costs nothing but its own points.
"""
import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

# The caps students' check_submission.py applies too (one source).
from grader.cnn.rules import MAX_CHECKPOINT_BYTES, MAX_SOURCE_BYTES
from grader.text import clean_text


@dataclass
class Submission:
    files: dict = field(default_factory=dict)   # name -> bytes
    notes: list = field(default_factory=list)   # what went wrong reading it, in words for the student
    skipped: dict = field(default_factory=dict)   # name -> why a file that was there was not read

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


def _pick(candidates, allowed):
    """``candidates``: (relative posix path, size, reader). Top level wins over one folder deep."""
    chosen, skipped = {}, {}
    for depth in (1, 2):
        for path, size, read in candidates:
            parts = PurePosixPath(path).parts
            if len(parts) != depth or parts[-1] not in allowed or parts[-1] in chosen:
                continue
            if any(p.startswith(("__MACOSX", ".")) for p in parts):
                continue
            if size > _limit(parts[-1]):
                skipped[parts[-1]] = (f"{clean_text(path, 100)} is {size / 2**20:.1f} MB, over the "
                                      f"{_limit(parts[-1]) / 2**20:.0f} MB limit: not graded")
                chosen[parts[-1]] = None
                continue
            chosen[parts[-1]] = read()
    return {k: v for k, v in chosen.items() if v is not None}, skipped


def _from_folder(folder, allowed):
    candidates = []
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        if len(rel.parts) <= 2 and path.is_file() and not path.is_symlink():
            candidates.append((rel.as_posix(), path.stat().st_size, path.read_bytes))
    return _pick(candidates, allowed)


def _from_zip(path, allowed):
    with zipfile.ZipFile(path) as archive:
        candidates = []
        for info in archive.infolist():
            if info.is_dir():
                continue
            name = info.filename.replace("\\", "/").strip("/")
            candidates.append((name, info.file_size, lambda info=info: _read_member(archive, info)))
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
            files, skipped = _from_folder(path, allowed)
            if not files and len(zips) == 1:  # a zip uploaded as the only file
                files, skipped = _from_zip(zips[0], allowed)
        else:
            files, skipped = _from_zip(path, allowed)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as error:
        submission.notes.append(f"the submission could not be read ({clean_text(error, 200)}): graded as empty")
        return submission
    submission.files, submission.skipped = files, skipped
    return submission
