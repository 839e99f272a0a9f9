"""grader/cnn/check_quiz.py: the reference quiz.py scores full marks, the stub zero, and realistic slips lose
points in the tests they touch and only there, with messages that name the slip."""
import re

import numpy as np
import pytest

from grader import paths
from grader.cnn import check_quiz
from grader.cnn import quiz_variants as qv
from grader.cnn.points import PARTS
from grader.sandbox import Limits

LIMITS = Limits(wall_seconds=30, call_seconds=10)
FILE, TESTS = PARTS["quiz"]
NAMES = [name for _, name, _ in TESTS]
SOLUTION = (paths.solutions_dir("cnn") / FILE).read_text()
SIZES, CONV, POOL, FC, ALEXNET = NAMES


def run(source, seed=0):
    return check_quiz.check({FILE: source.encode()}, np.random.default_rng(seed), LIMITS, NAMES)


def variant(old, new, occurrence=None):
    """The solution with ``old`` (unique, or its ``occurrence``-th appearance, from 1) replaced by ``new``."""
    count = SOLUTION.count(old)
    if occurrence is None:
        assert count == 1, f"{old!r} appears {count} times in the solution, expected once"
        occurrence = 1
    assert count >= occurrence, f"the solution no longer contains {old!r} {occurrence} times"
    start = -1
    for _ in range(occurrence):
        start = SOLUTION.index(old, start + 1)
    return SOLUTION[:start] + new + SOLUTION[start + len(old):]


def test_the_solution_passes_every_case_on_other_seeds():
    for seed in (1, 2):
        outcomes = run(SOLUTION, seed)
        assert all(o.fraction == 1 for o in outcomes.values()), {n: (o.blocker, [c for c in o.cases if not c.ok]) for n, o in outcomes.items()}


def test_hidden_cases_show_categories_not_values():
    outcomes = run(variant("return (size - kernel + 2 * pad) // stride + 1",
                           "return (size - kernel + 2 * pad) // stride", occurrence=1))
    hidden = [c for c in outcomes[SIZES].cases if c.label.startswith("hidden case")]
    conv = [c for c in hidden if "(conv output size" in c.label]
    assert len(hidden) == 19 and len(conv) == 10 and not any(c.ok for c in conv)
    for c in hidden:   # no sizes or expected values; the only numbers are the formula's ("+ 1", "2 * pad")
        assert set(re.findall(r"\d+", c.message)) <= {"1", "2"}, c.message
    assert sum("the + 1 is missing" in c.message for c in conv) >= 5   # some coincide with another slip
    assert all(c.ok for c in hidden if c not in conv)


# (name, old text, new text, occurrence, {test: phrase its messages must contain}); every other test keeps its points.
VARIANTS = [
    ("conv flops forget c_in", "outputs * c_in * kernel * kernel", "outputs * kernel * kernel", None,
     {CONV: "c_in is left out", ALEXNET: "flops is"}),
    ("memory in bytes, not KB", "BYTES_PER_KB = 1024", "BYTES_PER_KB = 1", None,
     {CONV: "bytes, not KB", POOL: "bytes, not KB", FC: "bytes, not KB", ALEXNET: "memory_kb is"}),
    ("conv memory as the number of elements", "outputs * BYTES_PER_ELEMENT / BYTES_PER_KB", "outputs", 1,
     {CONV: "number of elements, not KB", ALEXNET: "memory_kb is"}),
    ("pool output size rounds up", "return (size - kernel + 2 * pad) // stride + 1",
     "return -(-(size - kernel + 2 * pad) // stride) + 1", 2,
     {SIZES: "rounded up (ceil)", POOL: "rounded up (ceil)", ALEXNET: "size_out is"}),
    ("fc params without the bias", '"params": d_in * d_out + d_out,', '"params": d_in * d_out,', None,
     {FC: "bias is left out", ALEXNET: "params is"}),
    ("conv params ignore bias=False", '"params": weights + (filters if bias else 0),', '"params": weights + filters,',
     None, {CONV: "counts a bias, but bias=False"}),
    ("conv output size with true division", "return (size - kernel + 2 * pad) // stride + 1",
     "return (size - kernel + 2 * pad) / stride + 1", 1,
     {SIZES: "use floor division", CONV: "use floor division", ALEXNET: "expected an int"}),
    ("flatten row missing", '("flatten", "flatten", {}),\n', "", None, {ALEXNET: "returned 11 rows"}),
]


@pytest.mark.parametrize("name, old, new, occurrence, losses", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_a_slip_costs_its_tests_only(name, old, new, occurrence, losses):
    outcomes = run(variant(old, new, occurrence))
    for test in NAMES:
        outcome = outcomes[test]
        assert not outcome.blocker, (test, outcome.blocker)
        if test in losses:
            failed = [c for c in outcome.cases if not c.ok]
            assert failed, f"{name}: {test} should lose points"
            assert any(losses[test] in c.message for c in failed), (test, [c.message for c in failed])
        else:
            assert outcome.fraction == 1, (name, test, [(c.label, c.message) for c in outcome.cases if not c.ok])


def test_int_like_floats_are_refused_with_a_reason():
    broken = variant('"c_out": filters,', '"c_out": float(filters),')
    outcomes = run(broken)
    assert outcomes[CONV].fraction == 0
    assert all("c_out is a float" in c.message and "expected an int" in c.message for c in outcomes[CONV].cases)
    assert outcomes[POOL].fraction == 1


def test_missing_file_and_import_error_block_every_test():
    outcomes = check_quiz.check({}, np.random.default_rng(0), LIMITS, NAMES)
    assert all("not submitted" in o.blocker for o in outcomes.values())
    outcomes = run("import nonexistent_module_xyz\n")
    assert all("could not be imported" in o.blocker and "ModuleNotFoundError" in o.blocker for o in outcomes.values())


def test_alexnet_rows_follow_the_contract():
    rows = dict(qv.alexnet_rows())
    assert list(rows) == ["conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5", "flatten",
                          "fc6", "fc7", "fc8"]
    assert rows["conv1"] == {"c_out": 64, "size_out": 56, "memory_kb": 784.0, "params": 23_296, "flops": 72_855_552}
    assert rows["pool1"]["memory_kb"] == 182.25 and rows["pool1"]["flops"] == 419_904
    assert rows["conv4"]["flops"] == 149_520_384
    assert rows["flatten"] == {"c_out": 9216, "size_out": None, "memory_kb": 36.0, "params": 0, "flops": 0}
    assert rows["fc6"]["params"] == 37_752_832 and rows["fc6"]["flops"] == 37_748_736
    assert sum(r["params"] for r in rows.values()) == 61_100_840


def test_a_slip_costs_the_same_cases_on_every_seed():
    # Padding counted on one side: whether it changes a size depends on the size, so the layout draws sizes
    # where it always does, or never does, per category.
    source = variant("return (size - kernel + 2 * pad) // stride + 1", "return (size - kernel + pad) // stride + 1", 1)
    failed = {seed: [(test, c.label) for test, o in run(source, seed).items() for c in o.cases if not c.ok]
              for seed in range(4)}
    assert failed[0] and all(f == failed[0] for f in failed.values()), failed


def test_each_keyword_is_left_out_once_and_given_at_its_edges():
    # A default taken from ``value or default`` mistakes pad=0 given for pad left out: harmless here, but bias
    # given as False is the edge a ``bias or True`` slip gets wrong.
    outcomes = run(variant('"params": weights + (filters if bias else 0),',
                           '"params": weights + (filters if (bias or True) else 0),'))
    failed = [c.label for c in outcomes[CONV].cases if not c.ok]
    assert "conv_layer: bias given as False" in failed and "conv_layer: bias left out (default True)" not in failed
    labels = [c.label for c in outcomes[CONV].cases]
    assert {"conv_layer: stride left out (default 1)", "conv_layer: pad left out (default 0)",
            "conv_layer: pad given as 0"} <= set(labels)
