"""Run an autograder zip on this machine exactly as Gradescope runs it, on one submission.

Gradescope unpacks the autograder zip into ``/autograder/source``, runs its ``setup.sh`` once (which installs
the Python packages into ``/autograder/venv``), then, for each submission, runs the zip's ``run_autograder``
as root in this layout:

    /autograder/
      run_autograder             a copy of the zip's
      source/                    the zip, unpacked: setup.sh, run_autograder, ASSIGNMENT, grader/, ...
      submission/                the student's upload, as uploaded
      submission_metadata.json   Gradescope's record of the submission (its id joins the hidden-case seed)
      results/results.json       what run_autograder writes, and what Gradescope shows the student

Here the same tree is laid out in a temporary folder, ``AUTOGRADER_ROOT`` names it (run_autograder uses it in
place of ``/autograder``), and this checkout's interpreter stands in for ``/autograder/venv``. The log shows that
folder as ``/autograder``, as Gradescope's would: it is removed after the run, and the results.json kept is the
copy at ``out``. The data folder is this checkout's (its ``datasets/``, or ``$CONVLAB_DATA``), where setup.sh's
download would have put CIFAR-10 in Gradescope's image: here it stays there for the next run.
"""
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from grader import package
from grader.cnn import cifar10
from grader.cnn.check_milestone import NO_TEST_SET, data_root


def _metadata(assignment):
    """A stand-in for Gradescope's submission_metadata.json (the fields the grader and most scripts read)."""
    return {"id": 1, "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "assignment": {"id": 1, "title": assignment}, "submission_method": "upload",
            "users": [{"name": "Local Student", "email": "student@example.com", "id": 1}],
            "previous_submissions": []}


def _unpack(zip_path, target):
    """Unpack like Gradescope does, keeping each file's executable bit (zipfile alone drops it)."""
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            path = Path(archive.extract(info, target))
            mode = info.external_attr >> 16
            if mode and not info.is_dir():
                path.chmod(mode & 0o777)


def run(submission, out, assignment="cnn", zip_path=None, metadata=None):
    """Grade ``submission`` (a folder or a zip) with the autograder zip ``zip_path`` (default: one built from
    this checkout) in an emulated /autograder; copy its results.json to ``out``.

    Returns ``(run_autograder's exit status, whether results.json was written)``. Its output (stdout and stderr,
    in order) goes to the terminal, as Gradescope's autograder log would show it.
    """
    with tempfile.TemporaryDirectory(prefix="autograder-") as tmp:
        root = Path(tmp)
        if zip_path is None:
            zip_path = package.build_autograder(assignment, root)
        _unpack(zip_path, root / "source")
        shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")
        submission = Path(submission)
        if submission.is_dir():
            shutil.copytree(submission, root / "submission")
        else:
            (root / "submission").mkdir()
            shutil.copy(submission, root / "submission")
        (root / "results").mkdir()
        (root / "submission_metadata.json").write_text(
            Path(metadata).read_text() if metadata else json.dumps(_metadata(assignment), indent=2))
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        # run_autograder falls back on the first python3 on PATH when /autograder/venv is absent: this one.
        env.update(AUTOGRADER_ROOT=str(root), PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
                   CONVLAB_DATA=str(data_root().resolve()), PYTHONUNBUFFERED="1")
        with subprocess.Popen(["bash", str(root / "run_autograder")], env=env, cwd=root, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, errors="replace") as autograder:
            for line in autograder.stdout:
                print(line.replace(str(root), "/autograder"), end="", flush=True)
        status = autograder.returncode
        results = root / "results" / "results.json"
        if not results.is_file():
            return status, False
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(results, out)
        return status, True


def no_data_hint(results):
    """What to do, in one line, when the run at ``results`` (its results.json) graded no milestone for want of
    CIFAR-10; "" otherwise. Said here, where the fetch command is one that works after the run."""
    if not any(test["output"].startswith(NO_TEST_SET) for test in json.loads(Path(results).read_text())["tests"]):
        return ""
    root = data_root().resolve()
    return (f"the milestone was not graded: no CIFAR-10 test set in {root} (this checkout's datasets/, or "
            f"$CONVLAB_DATA). Fetch it once with `{cifar10.fetch_command(root)}`, or set CONVLAB_DATA to a folder "
            "that has it, then run again.")
