"""`python -m grader gradescope`: the built autograder zip, run in an emulated /autograder on a full-marks, a
broken and an empty submission, writes a results.json that Gradescope's format accepts."""
import json
import os
import shutil
import subprocess
import sys

import jsonschema
import pytest
import torch

from grader import package, paths
from grader.cnn import cifar10, rules
from support import solution, write_cifar

VISIBILITY = {"enum": ["hidden", "after_due_date", "after_published", "visible"]}
OUTPUT_FORMAT = {"enum": ["text", "html", "simple_format", "md", "ansi"]}
# Gradescope's results.json, as its autograder specification documents it; unknown fields are errors here, so
# that a misspelt field (which Gradescope would silently ignore) fails the test.
TEST_SCHEMA = {
    "type": "object",
    "required": ["score", "max_score", "status", "name", "number", "output", "tags", "visibility"],
    "additionalProperties": False,
    "properties": {
        "score": {"type": "number", "minimum": 0},
        "max_score": {"type": "number", "minimum": 0},
        "status": {"enum": ["passed", "failed"]},
        "name": {"type": "string", "minLength": 1},
        "name_format": OUTPUT_FORMAT,
        "number": {"type": "string", "pattern": r"^\d+(\.\d+)*$"},
        "output": {"type": "string"},
        "output_format": OUTPUT_FORMAT,
        "tags": {"type": "array", "items": {"type": "string"}},
        "visibility": VISIBILITY,
        "extra_data": {"type": "object"},
    },
}
RESULTS_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["score", "execution_time", "output", "visibility", "stdout_visibility", "extra_data", "tests"],
    "additionalProperties": False,
    "properties": {
        "score": {"type": "number", "minimum": 0},
        "execution_time": {"type": "number", "minimum": 0},
        "output": {"type": "string"},
        "output_format": OUTPUT_FORMAT,
        "test_output_format": OUTPUT_FORMAT,
        "test_name_format": OUTPUT_FORMAT,
        "visibility": VISIBILITY,
        "stdout_visibility": VISIBILITY,
        "extra_data": {"type": "object"},
        "leaderboard": {"type": "array", "items": {
            "type": "object", "required": ["name", "value"], "additionalProperties": False,
            "properties": {"name": {"type": "string"}, "value": {"type": ["number", "string"]},
                           "order": {"enum": ["asc", "desc"]}}}},
        "tests": {"type": "array", "items": TEST_SCHEMA},
    },
}
CLASS = 3


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory):
    return package.build_autograder("cnn", tmp_path_factory.mktemp("dist"))


@pytest.fixture
def small_cifar(tmp_path, monkeypatch):
    """A small CIFAR-10 whose test images are all of class CLASS, where the grader finds it."""
    write_cifar(tmp_path / "data", per_batch=10, test=20, test_labels=[CLASS] * 20)
    monkeypatch.setenv("CONVLAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("CONVLAB_DATA_UNVERIFIED", "1")


def full_marks(folder):
    """The solutions, and a resnet20 checkpoint that answers CLASS whatever the image: 100 % on ``data``."""
    folder.mkdir()
    for name in rules.SOURCE_FILES:
        shutil.copy(paths.solutions_dir("cnn") / name, folder)
    model = solution("resnet").resnet20()
    with torch.no_grad():
        model.fc.bias[CLASS] = 100.0
    torch.save({"arch": "resnet20", "num_classes": 10, "state_dict": model.state_dict()}, folder / rules.CHECKPOINT)


def broken(folder):
    """A file that does not parse, one that fails on import, and a checkpoint that is not one."""
    full_marks(folder)
    (folder / "layers.py").write_text("def conv_forward_naive(x, w, b, conv_param:\n")
    (folder / "quiz.py").write_text("raise RuntimeError('not finished')\n")
    (folder / "milestone.pt").write_bytes(b"not a checkpoint")


def gradescope(submission, out, *options):
    return subprocess.run([sys.executable, "-m", "grader", "gradescope", str(submission), "--out", str(out),
                           *options], cwd=paths.REPO, capture_output=True, text=True, timeout=600,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})


@pytest.mark.parametrize("kind", ["full", "broken", "empty"])
def test_the_built_zip_writes_schema_valid_results(kind, tmp_path, small_cifar, autograder_zip):
    submission = tmp_path / "submission"
    {"full": full_marks, "broken": broken, "empty": lambda folder: folder.mkdir()}[kind](submission)
    out = tmp_path / "kept" / "results.json"
    result = gradescope(submission, out, "--zip", str(autograder_zip))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert f"results.json kept as {out} (" in result.stdout
    # the log names the emulated tree as Gradescope's would, never the temporary folder that held it
    assert "results written to /autograder/results/results.json" in result.stdout
    assert "autograder-" not in result.stdout
    data = json.loads(out.read_text())
    jsonschema.validate(data, RESULTS_SCHEMA)
    scores = {t["number"]: t["score"] for t in data["tests"]}
    assert len(scores) == 30 and sum(t["max_score"] for t in data["tests"]) == 100
    assert "total" in result.stdout and "1.1    conv_forward_naive" in result.stdout   # the table was printed
    if kind == "full":
        assert data["score"] == 100 and all(t["status"] == "passed" for t in data["tests"])
        assert {"name": "accuracy", "value": 100.0} in data["leaderboard"]
    elif kind == "broken":
        lost = {n for n, score in scores.items() if score == 0}
        assert lost == {n for n in scores if n.split(".")[0] in ("1", "4", "5")}
        assert data["score"] == 30   # initializers (10) and resnet (20) only
    else:
        assert data["score"] == 0 and "no gradable file found" in data["output"]
        assert "leaderboard" not in data


def test_without_a_zip_it_builds_one_from_the_checkout(tmp_path, small_cifar):
    (tmp_path / "submission").mkdir()
    shutil.copy(paths.solutions_dir("cnn") / "quiz.py", tmp_path / "submission")
    shutil.make_archive(str(tmp_path / "submission"), "zip", tmp_path / "submission")
    result = gradescope(tmp_path / "submission.zip", tmp_path / "results.json")
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads((tmp_path / "results.json").read_text())
    jsonschema.validate(data, RESULTS_SCHEMA)
    assert {t["tags"][0] for t in data["tests"] if t["score"] > 0} == {"quiz"}
    assert data["score"] == 10


def test_without_cifar_it_says_where_to_fetch_it_for_the_next_run(tmp_path, monkeypatch, autograder_zip):
    """The hint names the data folder the run used ($CONVLAB_DATA here, else the checkout's datasets/), which
    outlives the run, and a command that works from where the TA typed it."""
    empty = tmp_path / "data"
    empty.mkdir()
    monkeypatch.setenv("CONVLAB_DATA", str(empty))
    submission = tmp_path / "submission"
    full_marks(submission)
    result = gradescope(submission, tmp_path / "results.json", "--zip", str(autograder_zip))
    assert result.returncode == 0, result.stdout[-2000:]
    monkeypatch.chdir(paths.REPO)   # where gradescope() runs it
    fetch = cifar10.fetch_command(empty)
    assert result.stdout.splitlines()[-1] == (
        f"the milestone was not graded: no CIFAR-10 test set in {empty} (this checkout's datasets/, or "
        f"$CONVLAB_DATA). Fetch it once with `{fetch}`, or set CONVLAB_DATA to a folder that has it, then run again.")
    assert "autograder-" not in result.stdout


def test_a_missing_submission_or_zip_is_a_usage_error(tmp_path):
    result = gradescope(tmp_path / "nowhere", tmp_path / "results.json")
    assert result.returncode == 2 and "no such file or folder" in result.stderr
    result = gradescope(tmp_path, tmp_path / "results.json", "--zip", str(tmp_path / "no.zip"))
    assert result.returncode == 2 and "no such autograder zip" in result.stderr
    assert not (tmp_path / "results.json").exists()
