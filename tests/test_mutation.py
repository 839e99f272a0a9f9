"""scripts/mutation.py, scripts/in_process.py and scripts/grade_part.py stay alive: a fixed handful of cosmic-ray's
mutants of quiz.py, each graded by the grader on its part, is killed on every seed tried, and the reference
solution survives the same test; the fast in-process grade gives a mutant the sandboxed grade's scores."""
import json
import sys

import pytest

from grader import paths

sys.path.insert(0, str(paths.REPO / "scripts"))
import mutation  # noqa: E402
from grade_part import lost  # noqa: E402
from in_process import grade_once  # noqa: E402

QUIZ = "solutions/cnn/quiz.py"
# (operator, occurrence in quiz.py): "//" made "/" in conv_output_size, fc_layer's bias subtracted, conv_layer's
# bias test negated, conv_layer's bias off by default.
SAMPLE = [("core/ReplaceBinaryOperator_FloorDiv_Div", 0), ("core/ReplaceBinaryOperator_Add_Sub", 5),
          ("core/AddNot", 0), ("core/ReplaceTrueWithFalse", 0)]


def _spec(operator, occurrence):
    from cosmic_ray.work_item import MutationSpec
    return MutationSpec(module_path=QUIZ, operator_name=operator, occurrence=occurrence, start_pos=(1, 0),
                        end_pos=(1, 1))


def test_the_reference_solution_keeps_full_marks():
    assert lost(paths.solutions_dir("cnn"), ["quiz"]) == []


@pytest.mark.parametrize("operator, occurrence", SAMPLE)
def test_a_sampled_mutant_is_killed_on_every_seed(operator, occurrence):
    result = mutation.test(_spec(operator, occurrence), seeds=(0, 1, 2))
    assert result.diff and result.test_outcome == "killed", result.output
    scores = json.loads(result.output)["scores"]
    assert len(scores) == 3 and max(scores) < 10 and len(set(scores)) == 1, scores


@pytest.mark.parametrize("operator, occurrence", SAMPLE[:2])
def test_the_in_process_grade_gives_the_sandboxed_grades_scores(operator, occurrence, tmp_path):
    from grader.grade import grade

    spec = _spec(operator, occurrence)
    (tmp_path / "quiz.py").write_text(mutation.mutant(spec))
    tests, _ = grade(tmp_path, parts=["quiz"], seed=5, log=lambda message: None)
    fast = grade_once(("quiz", "quiz.py", mutation.mutant(spec), 5, None))
    assert fast == {t.number: t.score for t in tests} and sum(fast.values()) < 10, fast


def test_the_in_process_grade_times_out_a_call_that_hangs(monkeypatch):
    import in_process

    monkeypatch.setattr(in_process, "CALL_SECONDS", 0.5)
    source = paths.solutions_dir("cnn").joinpath("quiz.py").read_text().replace(
        "def conv_output_size(size, kernel, stride=1, pad=0):\n",
        "def conv_output_size(size, kernel, stride=1, pad=0):\n    while True:\n        pass\n", 1)
    scores = grade_once(("quiz", "quiz.py", source, 0, None))
    assert 0 < sum(scores.values()) < 10, scores


def test_the_given_code_is_left_out():
    from cosmic_ray.commands.init import _all_work_items
    items = list(_all_work_items([paths.REPO / "solutions/cnn/layers.py"], {}))
    kept = mutation.chosen(items, ["layers"], None)["layers"]
    assert kept and len(kept) < len(items)
    assert not {item.mutations[0].definition_name for item in kept} & mutation.NOT_GRADED["layers"]


# Generated mutants that cost different points on different seeds until the layouts were closed around them
# (docs/grader-strength.md): (part, file, old, new), ``old`` first met in the solution.
ONCE_MOVING = [
    ("layers", "layers.py", "H_out = 1 + (H + 2 * P - HH) // S", "H_out = 1 + (H + 2 * P - HH) - S"),
    ("layers", "layers.py", "dx = dxp[:, :, P:P + H, P:P + W]", "dx = dxp[:, :, P:P + H, P:P - W]"),
    ("layers", "layers.py", "window.argmax(axis=2)", "window.argmax(axis=1)"),
    ("quiz", "quiz.py", "outputs * BYTES_PER_ELEMENT / BYTES_PER_KB", "outputs * BYTES_PER_ELEMENT // BYTES_PER_KB"),
    ("initializers", "initializers.py", "return c * kh * kw, f * kh * kw", "return c / kh * kw, f * kh * kw"),
]


@pytest.mark.parametrize("part, file, old, new", ONCE_MOVING)
def test_a_once_moving_mutant_costs_the_same_on_every_seed(part, file, old, new):
    source = paths.solutions_dir("cnn").joinpath(file).read_text()
    assert old in source
    totals = {round(sum(grade_once((part, file, source.replace(old, new, 1), seed, None)).values()), 6)
              for seed in range(5)}
    assert len(totals) == 1 and totals.pop() < mutation._points(part), totals
