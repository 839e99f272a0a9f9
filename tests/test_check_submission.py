"""The handout's pre-upload check (check_submission.py): zero exit on the solutions, and one clear line, with a
non-zero exit, for each way a submission can fail to be gradable."""
import os
import re
import subprocess
import sys

import pytest
import torch

from grader.assignments import get_assignment
from grader.cnn import rules
from support import handout_copy, solution

SOURCES = list(rules.SOURCE_FILES)


def run_check(folder):
    result = subprocess.run([sys.executable, "check_submission.py"], cwd=folder, capture_output=True, text=True,
                            timeout=600)
    lines = result.stdout.splitlines()
    problems = [line for line in lines if not line.endswith(": ok") and "not here yet" not in line
                and not line.startswith("All set") and not re.fullmatch(r"\d+ problem\(s\): .*", line)]
    return result, problems


@pytest.fixture
def submission(tmp_path):
    return handout_copy(tmp_path, with_solutions=SOURCES)


def save_checkpoint(path, arch="resnet20", state=None, **fields):
    model = getattr(solution("resnet"), arch)()
    torch.save({"arch": arch, "num_classes": 10, "state_dict": state or model.state_dict(), **fields}, path)


def test_the_rules_name_the_files_the_grader_grades():
    assert sorted(rules.SOURCE_FILES + (rules.CHECKPOINT,)) == get_assignment("cnn").submission_files


def test_the_solutions_pass_with_and_without_a_checkpoint(submission):
    result, problems = run_check(submission)
    assert result.returncode == 0 and not problems, result.stdout + result.stderr
    assert [line for line in result.stdout.splitlines() if line.endswith(": ok")] == [f"{n}: ok" for n in SOURCES]
    assert "milestone.pt: not here yet" in result.stdout
    save_checkpoint(submission / "milestone.pt", "resnet20")
    result, problems = run_check(submission)
    assert result.returncode == 0 and not problems, result.stdout + result.stderr
    assert "milestone.pt: ok" in result.stdout.splitlines()


def test_numpys_convolve_and_correlate_are_allowed_in_layers(submission):
    # The contract since 2026-11-30: numpy is allowed whole, its 1-D convolve and correlate included.
    _edit(submission, "layers.py", "def conv_forward_naive(x, w, b, conv_param):\n",
          "def conv_forward_naive(x, w, b, conv_param):\n    np.convolve([1], [1])\n    np.correlate([1], [1])\n")
    result, problems = run_check(submission)
    assert result.returncode == 0 and not problems, result.stdout + result.stderr


def test_a_file_may_import_the_given_modules_and_nothing_else_of_its_folder(submission):
    _edit(submission, "layers.py", "import numpy as np\n", "import numpy as np\nfrom gradcheck import rel_error\n")
    result, problems = run_check(submission)
    assert result.returncode == 0 and not problems, result.stdout + result.stderr
    (submission / "helpers.py").write_text("X = 1\n")
    (submission / "quiz.py").write_text((submission / "quiz.py").read_text() + "\nimport helpers\n")
    result, problems = run_check(submission)
    assert result.returncode == 1
    assert problems == ["quiz.py does not import on its own: ModuleNotFoundError: No module named 'helpers' (each "
                        "file must stand alone: it may import the standard library, numpy, torch and the given "
                        "gradcheck.py and cifar10.py, nothing else of yours)"]


def _edit(folder, name, old, new):
    path = folder / name
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def _garbage(folder):
    (folder / "milestone.pt").write_bytes(b"not a checkpoint")


def _renamed_keys(folder):
    model = solution("resnet").resnet20()
    save_checkpoint(folder / "milestone.pt", state={f"_orig_mod.{k}": v for k, v in model.state_dict().items()})


def _oversized(folder):
    with open(folder / "milestone.pt", "wb") as f:
        f.truncate(rules.MAX_CHECKPOINT_BYTES + 1)   # sparse: no disk used


BROKEN = {
    "missing file": (lambda f: (f / "quiz.py").unlink(), "quiz.py is missing"),
    "misnamed file": (lambda f: (f / "quiz.py").rename(f / "quiz (1).py"), "but quiz (1).py is here: rename it"),
    "syntax error": (lambda f: _edit(f, "initializers.py", "def calculate_gain(", "def calculate_gain(:"),
                     "initializers.py, line"),
    "forbidden import": (lambda f: _edit(f, "layers.py", "import numpy as np\n", "import numpy as np\nimport torch\n"),
                         "uses torch, which layers.py may not use"),
    "too deeply nested to parse": (lambda f: _edit(f, "quiz.py", "\ndef conv_output_size(",
                                                   "\nX = " + "+".join(["1"] * 6000) + "\n\n\ndef conv_output_size("),
                                   "quiz.py is nested too deeply for Python to read"),
    "does not stand alone": (lambda f: _edit(f, "quiz.py", "\ndef conv_output_size(",
                                             "\nimport layers\n\n\ndef conv_output_size("),
                             "quiz.py does not import on its own: ModuleNotFoundError: No module named 'layers'"),
    "wrong signature": (lambda f: _edit(f, "layers.py", "def max_pool_forward_naive(x, pool_param):",
                                        "def max_pool_forward_naive(x, pool):"),
                        "max_pool_forward_naive(x, pool) should be max_pool_forward_naive(x, pool_param)"),
    "wrong default": (lambda f: _edit(f, "initializers.py", "def xavier_normal(shape, gain=1.0, mode=\"fan_avg\"",
                                      "def xavier_normal(shape, gain=1.0, mode=\"fan_in\""),
                      "xavier_normal(shape, gain=1.0, mode='fan_in', rng=None) should be"),
    "missing function": (lambda f: _edit(f, "quiz.py", "def alexnet_table(", "def alex_table("),
                         "alexnet_table is missing"),
    "unreadable checkpoint": (_garbage, "milestone.pt: it cannot be read with torch.load(weights_only=True)"),
    "checkpoint with renamed keys": (_renamed_keys, "does not load strictly into resnet.resnet20(): Missing key"),
    "checkpoint of an unknown arch": (lambda f: save_checkpoint(f / "milestone.pt", "resnet34"),
                                      "names the architecture 'resnet34'; it must be one of resnet20"),
    "checkpoint over the cap": (_oversized, "milestone.pt is 100.0 MB, over the 100 MB limit"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_a_broken_submission_gets_one_clear_line(submission, case):
    breaking, expected = BROKEN[case]
    breaking(submission)
    result, problems = run_check(submission)
    assert result.returncode == 1, result.stdout + result.stderr
    assert len(problems) == 1, result.stdout
    assert expected in problems[0], problems[0]
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "1 problem(s): fix them before you upload."


def test_a_folder_that_does_not_exist_is_a_usage_error(tmp_path):
    result = subprocess.run([sys.executable, "check_submission.py", str(tmp_path / "nowhere")],
                            cwd=handout_copy(tmp_path), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "not a folder" in result.stderr.splitlines()[-1]
    assert os.path.basename(str(tmp_path / "nowhere")) in result.stderr



def test_functions_still_raising_not_implemented_error_are_listed_with_their_own_exit_status(tmp_path):
    submission = handout_copy(tmp_path, with_solutions=["layers.py", "initializers.py", "resnet.py"])
    result = subprocess.run([sys.executable, "check_submission.py"], cwd=submission, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 3, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "quiz.py: gradable, but these still raise NotImplementedError (their tests would score zero): " \
           "conv_output_size, pool_output_size, conv_layer, pool_layer, fc_layer, alexnet_table" in lines
    assert lines[-1] == "6 functions not implemented yet: upload when you are done, or now for the points of the rest."
    assert "layers.py: ok" in lines
