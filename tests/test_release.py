"""The handout is generated from the solutions, in sync, free of solution code, and its public tests pass on
the solutions and fail cleanly, one test per function, on the stubs."""
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from grader import paths, release
from support import handout_copy, run_pytest

ASSIGNMENT = "cnn"
STUDENT_FILES = sorted(p.name for p in paths.solutions_dir(ASSIGNMENT).glob("*.py")
                       if release.BEGIN in p.read_text())


def test_handout_is_in_sync_with_the_solutions():
    target = paths.assignments_dir(ASSIGNMENT)
    expected = release.handout_files(ASSIGNMENT)
    present = {p.relative_to(target).as_posix() for p in release._source_files(target)}
    assert present == set(expected), "run `python -m grader release`: the handout's file list is stale"
    stale = [rel for rel, text in expected.items() if (target / rel).read_text() != text]
    assert not stale, f"run `python -m grader release`: stale files {stale}"


def test_no_solution_code_in_the_handout():
    for name in STUDENT_FILES:
        source = (paths.solutions_dir(ASSIGNMENT) / name).read_text()
        needles = release.solution_lines(source, name)
        assert needles, f"{name} has solution regions but no solution-only lines"
        handout = {line.strip() for line in (paths.assignments_dir(ASSIGNMENT) / name).read_text().splitlines()}
        leaked = needles & handout
        assert not leaked, f"{name}: solution lines in the handout: {sorted(leaked)[:5]}"


def test_strip_solutions_keeps_everything_outside_the_regions():
    text = ("def f(x):\n    \"\"\"Doc.\"\"\"\n    # TODO: hint\n    # BEGIN SOLUTION\n    y = x + 1\n"
            "    # END SOLUTION\n    return y\n")
    assert release.strip_solutions(text) == (
        "def f(x):\n    \"\"\"Doc.\"\"\"\n    # TODO: hint\n"
        "    raise NotImplementedError(\"f: not implemented yet (see the docstring)\")\n    return y\n")
    assert release.solution_lines(text) == {"y = x + 1"}


@pytest.mark.parametrize("text, problem", [
    ("# BEGIN SOLUTION\n# BEGIN SOLUTION\n", "inside another"),
    ("# END SOLUTION\n", "without"),
    ("# BEGIN SOLUTION\nx = 1\n", "never closed"),
])
def test_malformed_markers_are_reported_with_their_place(text, problem):
    with pytest.raises(release.ReleaseError, match=problem):
        release.strip_solutions(text, "bad.py")


def _outcomes(folder, tmp_path):
    report = tmp_path / "report.xml"
    result = run_pytest(folder, f"--junitxml={report}")
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        name = case.get("name").split("[")[0]
        outcomes.setdefault(name, []).append(None if problem is None else problem.get("message", ""))
    return result, outcomes


def test_public_tests_pass_on_the_solutions(tmp_path):
    folder = handout_copy(tmp_path, with_solutions=STUDENT_FILES)
    result, outcomes = _outcomes(folder, tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    assert len(outcomes) >= len(STUDENT_FILES)


def test_public_tests_fail_cleanly_on_the_stubs(tmp_path):
    folder = handout_copy(tmp_path)
    result, outcomes = _outcomes(folder, tmp_path)
    assert result.returncode == 1, result.stdout[-3000:]  # 1: tests failed; 2+: collection or usage errors
    failed = {name: messages for name, messages in outcomes.items() if any(m is not None for m in messages)}
    assert failed, "no public test failed on the stubs"
    for name, messages in failed.items():
        assert len(messages) == 1, f"{name} fails {len(messages)} times: one failure per function"
        assert "NotImplementedError" in messages[0], f"{name} failed for another reason: {messages[0]}"


def test_the_stub_run_says_one_short_line_per_function(tmp_path):
    folder = handout_copy(tmp_path)
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider"], cwd=folder,
                            capture_output=True, text=True, timeout=600)
    lines = result.stdout.splitlines()
    assert len(lines) < 100, f"{len(lines)} lines:\n{result.stdout}"
    assert "Traceback" not in result.stdout and '"""' not in result.stdout, result.stdout
    messages = [line for line in lines if "not implemented yet" in line]
    failed = [line for line in lines if line.startswith("_") and " test_" in line]
    assert len(messages) == len(failed) >= 20, result.stdout   # one line under each failed test's name
    assert all(len(line) <= 100 for line in messages), messages


def test_notebook_cells_are_stripped_and_their_outputs_cleared():
    import nbformat

    notebook = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell("w = 1\n# BEGIN SOLUTION\nanswer = w * 42\n# END SOLUTION\n", execution_count=3)
    code.outputs = [nbformat.v4.new_output("stream", text="42\n")]
    notebook.cells = [nbformat.v4.new_markdown_cell("# BEGIN SOLUTION stays in prose"), code]
    stripped = nbformat.reads(release._strip_notebook(nbformat.writes(notebook), "demo.ipynb"), as_version=4)
    prose, cell = stripped.cells
    assert prose.source == "# BEGIN SOLUTION stays in prose"
    assert cell.source == 'w = 1\nraise NotImplementedError("not implemented yet (see the docstring)")\n'
    assert cell.outputs == [] and cell.execution_count is None
