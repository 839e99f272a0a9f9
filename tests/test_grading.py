"""The grader on the reference solutions (full marks), on the stubs (zero, and the run completes), its seeds,
its results.json and its command line."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from grader import paths
from grader.assignments import get_assignment
from grader.grade import grade
from grader.submission import load

SPEC = get_assignment("cnn")
SOLUTIONS = paths.solutions_dir("cnn")
STUBS = paths.assignments_dir("cnn")


@pytest.fixture
def graded_solutions(full_submission, tmp_path_factory):
    """The solutions with a milestone.pt that the handout's train.py trained (on a small data set), graded in a
    process of its own: results.json, and the torch modules that process imported."""
    out = tmp_path_factory.mktemp("solutions") / "results.json"
    code = ("import sys; from grader.grade import grade_to_file; grade_to_file(sys.argv[1], sys.argv[2], "
            "log=lambda m: None); print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))")
    run = subprocess.run([sys.executable, "-c", code, str(full_submission), str(out)], capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(out.read_text()), run.stdout.strip()


def test_the_solutions_score_full_marks_and_the_grading_process_never_imports_torch(graded_solutions):
    data, torch_modules = graded_solutions
    assert torch_modules == "[]"   # its torch work ran in children: the oracles' and the sandbox's
    lost = [(t["number"], t["name"], t.get("output")) for t in data["tests"] if t["score"] < t["max_score"]]
    assert not lost
    assert data["score"] == pytest.approx(100) == sum(points for _, ts in SPEC.parts.values() for _, _, points in ts)
    assert len(data["tests"]) == sum(len(ts) for _, ts in SPEC.parts.values())
    assert data["leaderboard"] == [{"name": "accuracy", "value": 100.0}, {"name": "architecture", "value": "resnet20"}]
    # ...in Gradescope's format
    assert isinstance(data["execution_time"], float)
    assert {"name", "score", "max_score", "status", "number", "visibility"} <= set(data["tests"][0])
    assert data["extra_data"]["seed"].isdigit()
    assert [t["number"] for t in data["tests"]] == sorted((t["number"] for t in data["tests"]),
                                                          key=lambda n: tuple(map(int, n.split("."))))


def test_the_stubs_score_zero_and_every_test_says_not_implemented(tmp_path):
    tests, _ = grade(STUBS, log=lambda m: None)
    assert tests and all(t.score == 0 for t in tests)
    for t in tests:
        if t.number.startswith("5."):   # the handout has no checkpoint until train.py writes one
            assert t.output.startswith("milestone.pt was not submitted"), t.output
        else:
            assert "NotImplementedError" in t.output or "not implemented" in t.output, (t.number, t.output)


def test_a_missing_file_costs_its_part_only(tmp_path):
    shutil.copy(SOLUTIONS / "layers.py", tmp_path)
    tests, _ = grade(tmp_path, log=lambda m: None)
    for t in tests:
        if t.number.startswith("1."):
            assert t.score == t.max_score
        else:
            assert t.score == 0 and "was not submitted" in t.output


def test_seed_depends_on_the_files_and_the_gradescope_submission():
    sub = load(SOLUTIONS, SPEC.submission_files)
    assert sub.seed() == load(SOLUTIONS, SPEC.submission_files).seed()
    assert sub.seed({"id": 1}) != sub.seed({"id": 2}) != sub.seed()
    changed = load(SOLUTIONS, SPEC.submission_files)
    changed.files["layers.py"] += b"\n"
    assert changed.seed() != sub.seed()


def test_nested_and_top_level_files_top_level_wins(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "layers.py").write_text("nested")
    (tmp_path / "sub" / "quiz.py").write_text("nested quiz")
    (tmp_path / "layers.py").write_text("top")
    (tmp_path / "notes.txt").write_text("ignored")
    allowed = ["layers.py", "quiz.py"]
    sub = load(tmp_path, allowed)
    assert sub.files == {"layers.py": b"top", "quiz.py": b"nested quiz"}
    archive = shutil.make_archive(str(tmp_path / "upload"), "zip", tmp_path, "sub")
    assert load(archive, allowed).files == {"layers.py": b"nested", "quiz.py": b"nested quiz"}


def _cli(*args, cwd):
    env = dict(os.environ, PYTHONPATH=str(paths.REPO))
    return subprocess.run([sys.executable, "-m", "grader", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_cli_usage_errors_and_empty_submissions(tmp_path):
    result = _cli("grade", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert result.returncode == 2 and "no such file" in result.stderr
    result = _cli("grade", "--assignment", "nope", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2 and "unknown assignment" in result.stderr
    result = _cli("grade", str(tmp_path), "--part", "lyers", cwd=tmp_path)
    assert result.returncode == 2 and "no part lyers" in result.stderr
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04 this is not a zip")
    for name in ("empty", "bad.zip"):
        out = tmp_path / f"{name}.json"
        result = _cli("grade", name, "--out", str(out), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        data = json.loads(out.read_text())
        assert data["score"] == 0 and data["tests"]
    assert "could not be read" in json.loads((tmp_path / "bad.zip.json").read_text())["output"]
    assert "no gradable file" in json.loads((tmp_path / "empty.json").read_text())["output"]


def test_grade_verbose_states_the_rule_once_and_each_partial_test_its_sum(tmp_path):
    # A stub with conv_output_size done: 4.1 passes its 10 conv and its 1 public conv case (categories) and the 3
    # documented behaviours of conv_output_size's keywords (0.5 each); pool_output_size's 9 + 1 categories and 2
    # behaviours fail. (11 + 1.5) / (21 + 2.5) of 2 points.
    solution, stub = ((folder / "quiz.py").read_text() for folder in (SOLUTIONS, STUBS))
    done = solution[solution.index("def conv_output_size("):solution.index("def pool_output_size(")]
    todo = stub[stub.index("def conv_output_size("):stub.index("def pool_output_size(")]
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "quiz.py").write_text(stub.replace(todo, done))
    result = _cli("grade", "sub", "--part", "quiz", "--verbose", "--out", "r.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    said = " ".join(result.stdout.split())
    assert said.count(" ".join(SPEC.scoring.split())) == 1, result.stdout
    line = ("11 of 21 categories and 3 of 5 documented behaviours passed: 11 x 1 + 3 x 0.5 = 12.5 of 23.5, so 1.06 "
            "of 2 points")
    assert line in said, result.stdout
    test = next(t for t in json.loads((tmp_path / "r.json").read_text())["tests"] if t["number"] == "4.1")
    assert test["score"] == round(2 * 12.5 / 23.5, 4) and test["output"].splitlines()[1] == line


def test_a_hidden_import_of_torch_in_layers_computes_nothing(tmp_path):
    # No import statement shows it, so the static check cannot name it; but torch is out of the layers child's
    # reach: the name is a placeholder, and the function that computes with it fails its cases, in its words.
    source = (SOLUTIONS / "layers.py").read_text()
    hidden = "import numpy as np\n_t = __import__('tor' + 'ch')\n"
    uses = "    N, C, H, W = x.shape\n    x = _t.from_numpy(x).numpy()\n"
    start = source.index("def avg_pool_forward_naive(")
    assert "import numpy as np\n" in source and "    N, C, H, W = x.shape\n" in source[start:]
    source = source.replace("import numpy as np\n", hidden, 1)
    start = source.index("def avg_pool_forward_naive(")
    source = source[:start] + source[start:].replace("    N, C, H, W = x.shape\n", uses, 1)
    (tmp_path / "layers.py").write_text(source)
    tests = {t.number: t for t in grade(tmp_path, parts=["layers"], log=lambda m: None)[0]}
    assert tests["1.5"].score == 0 and "torch may not be used in this file" in tests["1.5"].output, tests["1.5"].output
    assert all(t.score == t.max_score for n, t in tests.items() if n != "1.5"), tests


def test_a_ta_reproduces_hidden_cases_from_the_recorded_seed(tmp_path):
    from grader.plan import recording

    shutil.copy(SOLUTIONS / "quiz.py", tmp_path)

    def dump(seed, folder):
        with recording(tmp_path / folder):
            tests, extra = grade(tmp_path, parts=["quiz"], seed=seed, log=lambda m: None)
        assert extra["extra_data"]["seed"] == str(seed)
        assert all(t.score == t.max_score for t in tests)
        return (tmp_path / folder / "00-quiz.json").read_text()

    _, extra = grade(tmp_path, parts=["quiz"], log=lambda m: None)
    recorded = int(extra["extra_data"]["seed"])
    first = dump(recorded, "first")
    assert dump(recorded, "again") == first
    assert dump(recorded + 1, "other") != first
    assert json.loads(first)["steps"] and (tmp_path / "first" / "00-quiz.npz").exists()
    assert (tmp_path / "first" / "00-quiz.out").read_bytes() == b""   # the solution prints nothing


def test_regrade_an_export_with_the_seeds_gradescope_used(tmp_path):
    from grader.regrade import regrade

    export = tmp_path / "export"
    (export / "submission_11").mkdir(parents=True)
    shutil.copy(SOLUTIONS / "quiz.py", export / "submission_11")
    (export / "submission_12").mkdir()
    shutil.copy(STUBS / "quiz.py", export / "submission_12")
    (export / "submission_13.zip").write_bytes(b"not a zip")
    rows = regrade(export, tmp_path / "out")
    assert [(r["submission"], r["total"]) for r in rows] == [("11", 10), ("12", 0), ("13", 0)]
    _, extra = grade(export / "submission_11", metadata={"id": 11}, log=lambda m: None)
    assert rows[0]["seed"] == extra["extra_data"]["seed"]
    assert (tmp_path / "out" / "scores.csv").read_text().startswith("submission,name,email,sid,total,max_score,")
    assert json.loads((tmp_path / "out" / "submission_12.json").read_text())["score"] == 0


def test_visibility_and_case_detail_follow_the_grading_config(tmp_path, monkeypatch):
    import dataclasses

    import grader.grade

    shutil.copy(STUBS / "quiz.py", tmp_path)
    quiet = dataclasses.replace(SPEC, visibility="after_due_date", visibility_of_test={"4.5": "hidden"},
                                show_cases=False)
    monkeypatch.setattr(grader.grade, "get_assignment", lambda name: quiet)
    tests, _ = grade(tmp_path, parts=["quiz"], log=lambda m: None)
    by_number = {t.number: t for t in tests}
    assert by_number["4.5"].visibility == "hidden" and by_number["4.2"].visibility == "after_due_date"
    assert all("hidden case" not in t.output for t in tests)   # only how many cases passed


# The default points per part (the milestone's 15 are tested in test_check_milestone.py).
POINTS_OF_PART = {"layers": 45, "initializers": 10, "resnet": 20, "quiz": 10}


@pytest.mark.parametrize("part", POINTS_OF_PART)
def test_each_part_alone_full_marks_for_the_solution_zero_for_the_stub(part, tmp_path):
    file, config = SPEC.parts[part]
    names = [name for _, name, _ in config]
    for source, folder in ((SOLUTIONS, "solution"), (STUBS, "stub")):
        (tmp_path / folder).mkdir()
        shutil.copy(source / file, tmp_path / folder)
        tests, _ = grade(tmp_path / folder, parts=[part], log=lambda m: None)
        assert [t.name for t in tests] == names and sum(t.max_score for t in tests) == POINTS_OF_PART[part]
        if folder == "solution":
            assert all(t.score == t.max_score for t in tests), [(t.name, t.output) for t in tests if t.score < t.max_score]
        else:
            assert all(t.score == 0 and "NotImplementedError" in t.output for t in tests), [t.output for t in tests]
