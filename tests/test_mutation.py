"""scripts/mutation.py and scripts/grade_part.py stay alive: a fixed handful of cosmic-ray's mutants of quiz.py,
each graded by the grader on its part, is killed, and the reference solution survives the same test."""
import sys

import pytest

from grader import paths

sys.path.insert(0, str(paths.REPO / "scripts"))
import mutation  # noqa: E402
from grade_part import lost  # noqa: E402

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
def test_a_sampled_mutant_is_killed(operator, occurrence):
    result = mutation.test(_spec(operator, occurrence), seed=0)
    assert result.diff and result.test_outcome == "killed", result.output


def test_the_given_code_is_left_out():
    from cosmic_ray.commands.init import _all_work_items
    items = list(_all_work_items([paths.REPO / "solutions/cnn/layers.py"], {}))
    kept = mutation.chosen(items, ["layers"], None)["layers"]
    assert kept and len(kept) < len(items)
    assert not {item.mutations[0].definition_name for item in kept} & mutation.NOT_GRADED["layers"]
