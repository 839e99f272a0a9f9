"""grader/results.py and grader/checks.py: what a student reads of a test's result."""
from grader.checks import Kind, Outcome, student_words, to_result
from grader.results import TestResult as Result, results_json, shorten, table


def test_long_output_is_cut_at_a_line_boundary_with_what_was_left_out():
    output = "\n".join(f"  FAIL hidden case {i} (stride 2, pad 0): out is off in kaiming_uniform" for i in range(200))
    cut = shorten(output, 4000)
    lines = cut.splitlines()
    assert len(cut) <= 4000 + 40 and output.startswith("\n".join(lines[:-1]))
    assert lines[-2] in output.splitlines()   # a whole line, not a piece of one
    assert lines[-1] == f"[... {200 - (len(lines) - 1)} more lines left out]"
    assert shorten("short", 4000) == "short"
    assert shorten("one long line of words", 12) == "one long [... 14 more characters left out]"


def test_results_json_carries_the_cut_output():
    result = Result("1.1", "conv_forward_naive", 6, 0, "\n".join(["a line of feedback"] * 500))
    output = results_json([result])["tests"][0]["output"]
    assert output.rstrip().endswith("more lines left out]") and "a line of feedback\n[..." in output


def test_the_table_shows_whole_names():
    name = "conv_output_size and pool_output_size"
    lines = table([Result("4.1", name, 2, 1, "1 of 2 cases passed"),
                   Result("1.1", "conv_forward_naive", 6, 6, "all 7 cases passed")]).splitlines()
    assert any(f"4.1    {name} " in line for line in lines), lines


def test_a_stub_says_not_implemented_yet():
    error = "NotImplementedError: conv_forward_naive: not implemented yet (see the docstring) (line 82 of " \
            "layers.py, in conv_forward_naive)"
    assert student_words(error) == "not implemented yet (NotImplementedError in conv_forward_naive)"
    assert student_words("ValueError: bad shape (line 3 of layers.py, in f)") == \
        "ValueError: bad shape (line 3 of layers.py, in f)"


def test_a_failure_shared_by_several_cases_is_said_once_with_their_count():
    outcome = Outcome()
    for i in range(1, 6):
        outcome.add(f"hidden case {i}", i == 2, "" if i == 2 else ("dx is off" if i != 5 else "db is off"))
    lines = to_result("1.2", "conv_backward_naive", 8, outcome).output.splitlines()
    assert lines == ["1 of 5 cases passed",
                     "1 of 5 categories passed: 1 x 1 = 1 of 5, so 1.60 of 8 points",
                     "  FAIL 3 cases: dx is off",
                     "       hidden case 1",
                     "       hidden case 3",
                     "       hidden case 4",
                     "  ok   hidden case 2",
                     "  FAIL hidden case 5: db is off"]


def test_a_stub_class_is_named_by_its_own_message():
    error = "not run: it needs the result of builtin:construct, which failed (NotImplementedError: " \
            "BasicBlock.__init__: not implemented yet (see the docstring) (line 3 of resnet.py, in __init__))"
    assert student_words(error) == "not implemented yet (NotImplementedError in BasicBlock.__init__)"


def test_where_no_case_passed_each_failure_is_one_line():
    outcome = Outcome()
    for i in range(1, 5):
        outcome.add(f"hidden case {i}", False, "not implemented yet (NotImplementedError in conv_output_size)"
                    if i % 2 else "not implemented yet (NotImplementedError in pool_output_size)")
    assert to_result("4.1", "conv_output_size and pool_output_size", 2, outcome).output.splitlines() == [
        "0 of 4 cases passed",
        "  FAIL 2 cases: not implemented yet (NotImplementedError in conv_output_size)",
        "  FAIL 2 cases: not implemented yet (NotImplementedError in pool_output_size)"]


def test_case_counts_are_worded_for_one_case_too():
    one = Outcome()
    one.add("milestone.pt loads", True)
    assert to_result("5.1", "milestone checkpoint", 3, one).output.splitlines()[0] == "its one case passed"
    one.cases[0].ok = False
    assert to_result("5.1", "milestone checkpoint", 3, one).output.splitlines()[0] == "0 of 1 case passed"


def test_the_verbose_table_shows_every_line_of_feedback_wrapped():
    feedback = "1 of 2 cases passed\n  FAIL hidden case 2 (stride 2, pad 0): " + "out differs " * 12
    plain = table([Result("1.1", "conv_forward_naive", 6, 3, feedback)], width=60)
    assert "FAIL" not in plain
    lines = table([Result("1.1", "conv_forward_naive", 6, 3, feedback)], width=60, verbose=True).splitlines()
    assert lines[2].rstrip().endswith("3.00 / 6") and lines[3] == "    1 of 2 cases passed"
    assert lines[4].startswith("      FAIL hidden case 2 (stride 2, pad 0): out differs")
    assert all(len(line) <= 60 for line in lines[3:-2]) and lines[5].startswith("      ")
    assert " ".join(line.strip() for line in lines[4:-2]).endswith("out differs " * 11 + "out differs")


def test_failed_categories_count_the_cases_of_a_test_that_passed_some():
    from grader.checks import categories, failed_categories

    assert categories("hidden case 3 (stride 2, pad 0, tall 3x2 kernel, batch of 1), train mode") == \
        ["batch of 1", "pad 0", "stride 2", "tall kernel", "train mode"]
    # A layout's words in brackets stay whole; a 1x1 kernel is no orientation's size.
    assert categories("hidden case 2 (2-D (Din, Dout) weight, mode fan_in, gain left out (default 1.0))") == \
        ["2-D (Din, Dout) weight", "gain left out (default 1.0)", "mode fan_in"]
    assert categories("hidden case 7 (4-D conv weight, 1x1 kernel)") == ["1x1 kernel", "4-D conv weight"]
    # Any other label is a behaviour or a configuration, named whole: never cut at its commas or brackets.
    for label in ("rng left out twice (None: fresh entropy, the two calls differ)",
                  "resnet20(), num_classes left out (default 10): parameter names, shapes and count",
                  "ResNet(BasicBlock, [1, 1, 1, 1], num_classes=5): widths left out (default (64, 128, 256, 512)), "
                  "parameter names and shapes", "case 1 (unpaired", "case 1 (a) and (b)"):
        assert categories(label) == [label]
    named = Outcome()
    named.add("BasicBlock 8->16, stride 2, channels widened (projection), eval mode", False, "off",
              named=("stride 2, channels widened", "eval mode"))
    named.add("resnet20 forward, eval mode", True)
    assert failed_categories(named) == {"stride 2, channels widened": [1, 1], "eval mode": [1, 1],
                                        "resnet20 forward, eval mode": [0, 1]}
    outcome = Outcome()
    outcome.add("hidden case 1 (stride 1, square 3x3 kernel)", True)
    outcome.add("hidden case 2 (stride 2, tall 3x2 kernel)", False, "out is off")
    outcome.add("hidden case 3 (stride 2, square 2x2 kernel)", True)
    assert failed_categories(outcome) == {"stride 1": [0, 1], "stride 2": [1, 2], "square kernel": [0, 2],
                                          "tall kernel": [1, 1]}
    outcome.cases[1].ok = True
    assert failed_categories(outcome) is None   # all passed: nothing to tell


def test_a_partial_score_shows_how_its_cases_weigh():
    # The example: 5 of 7 categories (1 each) and 2 of 4 documented behaviours (0.5 each) of a 10-point
    # test: (5 + 1) / 9 of 10 points.
    behaviour = Kind("documented behaviour", "documented behaviours", 0.5)
    outcome = Outcome()
    for i in range(7):
        outcome.add(f"hidden case {i + 1}", i < 5, "" if i < 5 else "out is off")
    for i in range(4):
        outcome.add(f"behaviour {i + 1}", i < 2, "" if i < 2 else "expected ValueError", behaviour)
    result = to_result("1.1", "conv_forward_naive", 10, outcome)
    assert result.output.splitlines()[:2] == [
        "7 of 11 cases passed",
        "5 of 7 categories and 2 of 4 documented behaviours passed: 5 x 1 + 2 x 0.5 = 6 of 9, so 6.67 of 10 points"]
    assert abs(result.score - 60 / 9) < 1e-12


def test_a_cap_lowers_a_score_above_it_and_says_why():
    step = Kind("training step", "training steps", 2)
    outcome = Outcome(cap=(0.5, "BasicBlock cannot be trained"))
    for i in range(3):
        outcome.add(f"shape {i + 1}, eval mode", True)
    outcome.add("shape 1, training step", False, "loss.backward() fails", step)
    result = to_result("3.1", "BasicBlock", 1, outcome)
    # 3 of 5 passed by weight, 0.6 of the point, but at most half of it.
    assert result.score == 0.5
    assert result.output.splitlines()[1] == (
        "3 of 3 categories and 0 of 1 training step passed: 3 x 1 + 0 x 2 = 3 of 5, so 0.60 of 1 point; but "
        "BasicBlock cannot be trained, which caps this test at 50%: 0.50 of 1 point")
    outcome.cases[1].ok = outcome.cases[2].ok = False   # 1 of 5: below the cap, which then says nothing
    result = to_result("3.1", "BasicBlock", 1, outcome)
    assert result.score == 0.2 and result.output.splitlines()[1] == (
        "1 of 3 categories and 0 of 1 training step passed: 1 x 1 + 0 x 2 = 1 of 5, so 0.20 of 1 point")


def test_a_full_score_and_a_zero_need_no_sum():
    outcome = Outcome()
    outcome.add("hidden case 1", True)
    outcome.add("hidden case 2", True)
    assert to_result("4.4", "fc_layer", 2, outcome).output == "all 2 cases passed\n  ok   hidden case 1\n  ok   " \
                                                               "hidden case 2"
