"""The grader refuses to grade where its sandbox cannot start a child: one line for the instructor, a non-zero
exit and no results, never a results.json of zeros that blames the student: from grade, regrade and the
autograder zip's run_autograder. It refuses too where its oracle child cannot run torch, and where a child cannot
be contained (no seccomp) unless the instructor passes --unconfined; and it says in one line what protects the
run."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

from grader import package, paths
from support import venv_checkout

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox drops to another uid only as root")


@pytest.fixture
def closed_checkout(tmp_path):
    """A checkout and its virtual environment in a folder of mode 700, as under /root: the grader (root) can
    run there, the sandbox user cannot even reach the interpreter."""
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    python, checkout, _ = venv_checkout(closed)
    return python, checkout


@pytest.fixture
def checkout_without_seccomp():
    """A checkout every user can read whose interpreter finds no pyseccomp (as where libseccomp is missing)."""
    folder = Path(tempfile.mkdtemp(prefix="convlab-no-seccomp-"))
    folder.chmod(0o755)
    python, checkout, site = venv_checkout(folder)
    (site / "pyseccomp.py").write_text("raise ImportError('no libseccomp here')\n")
    yield python, checkout
    shutil.rmtree(folder)


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
    assert "TA" not in line   # the instructor or TA reads it: the fix is theirs


@as_root
def test_grade_from_a_checkout_the_sandbox_user_cannot_enter_stops_with_the_instructors_error(closed_checkout,
                                                                                                tmp_path):
    python, checkout = closed_checkout
    out = tmp_path / "results.json"
    result = _run(python, checkout, "grade", str(paths.solutions_dir("cnn")), "--out", str(out))
    _assert_refused(result, python)
    assert not out.exists()


@as_root
def test_regrade_refuses_too_and_writes_no_scores(closed_checkout, tmp_path):
    python, checkout = closed_checkout
    export = tmp_path / "export"
    shutil.copytree(paths.solutions_dir("cnn"), export / "submission_1", ignore=shutil.ignore_patterns("tests"))
    result = _run(python, checkout, "regrade", str(export), "--out", str(tmp_path / "regrade"))
    _assert_refused(result, python)
    assert not (tmp_path / "regrade").exists()


@as_root
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


def test_grade_refuses_where_children_cannot_be_confined_unless_told_to_accept_the_risk(checkout_without_seccomp,
                                                                                         tmp_path):
    python, checkout = checkout_without_seccomp
    submission = tmp_path / "submission"
    submission.mkdir()
    shutil.copy(paths.solutions_dir("cnn") / "quiz.py", submission)
    out = tmp_path / "results.json"
    refused = _run(python, checkout, "grade", str(submission), "--part", "quiz", "--out", str(out))
    assert refused.returncode == 1, refused.stdout + refused.stderr
    line, = refused.stderr.strip().splitlines()
    assert "no seccomp" in line and "--unconfined" in line and "Nothing was graded" in line, line
    assert not out.exists()
    accepted = _run(python, checkout, "grade", str(submission), "--part", "quiz", "--out", str(out), "--unconfined")
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.splitlines()[0].startswith("containment: NO seccomp, "), accepted.stdout
    assert json.loads(out.read_text())["score"] > 0


@pytest.fixture
def torch_that_fails():
    """A checkout and a virtual environment whose own site-packages shadow torch with a package whose import fails
    (as in a fresh venv where torch was never installed, or its install broke): (its python, the checkout)."""
    folder = Path(tempfile.mkdtemp(prefix="convlab-broken-torch-"))
    folder.chmod(0o755)
    python, checkout, site = venv_checkout(folder)
    (site / "torch").mkdir()
    (site / "torch" / "__init__.py").write_text("raise ImportError('torch is broken in this environment')\n")
    yield python, checkout
    shutil.rmtree(folder)


def test_the_oracle_probe_answers_where_torch_works_and_names_the_fix_where_it_does_not(torch_that_fails,
                                                                                        monkeypatch):
    from grader import oracle, preflight
    from grader.sandbox import runner

    assert preflight.oracle_problem() == ""
    oracle.close_all()   # the child that answered stays for the grade: the next check starts a fresh one
    python, _ = torch_that_fails
    monkeypatch.setattr(sys, "executable", str(python))
    try:
        problem = preflight.oracle_problem()
    finally:
        runner.close_templates()
    assert problem.startswith("the grader's PyTorch references cannot run here (the sandbox's torch template could "
                              "not start (ImportError: torch is broken in this environment)): its oracle child "
                              f"runs {python}, which must import torch")
    assert f"`{python} -m pip install --index-url https://download.pytorch.org/whl/cpu torch`" in problem
    assert problem.endswith("Nothing was graded.") and "\n" not in problem and "TA" not in problem


def test_grade_without_a_working_torch_grades_nothing_and_says_why_in_one_line(torch_that_fails, tmp_path):
    """A correct layers.py would score 0 of 45, each test "an internal error" of the grader: the run stops."""
    python, checkout = torch_that_fails
    out = tmp_path / "results.json"
    result = _run(python, checkout, "grade", str(paths.solutions_dir("cnn")), "--out", str(out))
    assert result.returncode == 1, result.stdout + result.stderr
    line, = result.stderr.strip().splitlines()
    assert line.startswith("convlab grade: error: the grader's PyTorch references cannot run here (the sandbox's "
                           "torch template could not start (ImportError: torch is broken in this environment)")
    assert "pip install" in line and line.endswith("Nothing was graded.")
    assert not out.exists() and result.stdout == ""


def test_grade_says_what_confines_its_children():
    from grader import preflight
    from grader.sandbox import confine, policy

    found = preflight.check()
    assert found.problem == "" and found.seccomp
    assert found.landlock == confine.landlock_abi()
    assert found.own_uid == (os.geteuid() == 0)
    sizes = ", ".join(f"{kind} {len(policy.allowed(kind))}" for kind in policy.KINDS)
    assert found.line().startswith(f"containment: seccomp allow-lists (calls: {sizes}), "
                                   f"landlock ABI {found.landlock}, ")
