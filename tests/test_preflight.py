"""The grader refuses to grade where its sandbox cannot start a child: one line for the instructor, a non-zero
exit and no results, never a results.json of zeros that blames the student: from grade, regrade and the
autograder zip's run_autograder."""
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from grader import package, paths

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox drops to another uid only as root")


@pytest.fixture
def closed_checkout(tmp_path):
    """A checkout and its virtual environment in a folder of mode 700, as under /root: the grader (root) can
    run there, the sandbox user cannot even reach the interpreter."""
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    base = Path(sys.base_prefix, "bin", "python3")
    subprocess.run([str(base), "-m", "venv", "--without-pip", str(closed / "venv")], check=True)
    python = closed / "venv" / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # The project's packages (numpy, torch, ...) without copying them: the grader process sees them, and that
    # the child cannot start is decided by the interpreter's folder alone.
    Path(site, "project.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    shutil.copytree(paths.REPO / "grader", closed / "checkout" / "grader",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return python, closed / "checkout"


def _run(python, checkout, *args):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([str(python), "-m", "grader", *args], cwd=checkout, env=env, capture_output=True,
                          text=True, timeout=300)


def _assert_refused(result, python):
    assert result.returncode == 1, result.stdout + result.stderr
    line, = result.stderr.strip().splitlines()
    assert line.startswith("convlab ")
    assert "the sandbox cannot run a trivial child here" in line and "Permission denied" in line
    assert str(python) in line and "chmod o+rx" in line and "Nothing was graded" in line


def test_grade_from_a_checkout_the_sandbox_user_cannot_enter_stops_with_the_instructors_error(closed_checkout,
                                                                                                tmp_path):
    python, checkout = closed_checkout
    out = tmp_path / "results.json"
    result = _run(python, checkout, "grade", str(paths.solutions_dir("cnn")), "--out", str(out))
    _assert_refused(result, python)
    assert not out.exists()


def test_regrade_refuses_too_and_writes_no_scores(closed_checkout, tmp_path):
    python, checkout = closed_checkout
    export = tmp_path / "export"
    shutil.copytree(paths.solutions_dir("cnn"), export / "submission_1", ignore=shutil.ignore_patterns("tests"))
    result = _run(python, checkout, "regrade", str(export), "--out", str(tmp_path / "regrade"))
    _assert_refused(result, python)
    assert not (tmp_path / "regrade").exists()


def test_run_autograder_refuses_where_its_venv_is_out_of_the_sandbox_users_reach(closed_checkout, tmp_path):
    """Gradescope's layout with /autograder/venv in a folder of mode 700: no results.json, a failed run."""
    python, _ = closed_checkout
    root = python.parent.parent.parent   # the closed folder holds venv/: it is the emulated /autograder
    with zipfile.ZipFile(package.build_autograder("cnn", tmp_path)) as archive:
        archive.extractall(root / "source")
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    shutil.copytree(paths.solutions_dir("cnn"), root / "submission", ignore=shutil.ignore_patterns("tests"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(["bash", str(root / "run_autograder")], env=dict(env, AUTOGRADER_ROOT=str(root)),
                            capture_output=True, text=True, timeout=300)
    _assert_refused(result, python)
    assert not (root / "results" / "results.json").exists()
