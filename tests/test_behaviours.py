"""grader/cnn/behaviours.py, the list of documented behaviours, against the solutions and the checkers: every
default it states is the solution's, and every behaviour it lists is a case of every grade, passed by the
reference solutions."""
import inspect

import numpy as np
import pytest

from grader.cnn import behaviours, check_initializers, check_layers, check_quiz
from grader.cnn.points import PARTS
from grader.grade import part_rng
from grader.paths import solutions_dir
from grader.sandbox import Limits
from support import solution

LIMITS = Limits(wall_seconds=30, call_seconds=10)
CHECKERS = {"layers": check_layers, "initializers": check_initializers, "quiz": check_quiz}
MODULES = {"layers": solution("layers"), "initializers": solution("initializers"), "quiz": solution("quiz")}
BN = ("batchnorm_forward", "spatial_batchnorm_forward")


def _module_of(function):
    return next(m for m in MODULES.values() if hasattr(m, function))


@pytest.mark.parametrize("function", [f for f in behaviours.KEYWORDS if f not in BN])
def test_each_default_is_the_solutions(function):
    parameters = inspect.signature(getattr(_module_of(function), function)).parameters
    for kw in behaviours.KEYWORDS[function]:
        assert parameters[kw.name].default == kw.default, (function, kw.name)


@pytest.mark.parametrize("function", BN)
def test_each_bn_param_default_is_the_solutions(function):
    layers = MODULES["layers"]
    rng = np.random.default_rng(0)
    shape = (4, 3) if function == "batchnorm_forward" else (4, 3, 2, 5)
    x, gamma, beta = rng.standard_normal(shape), rng.uniform(0.5, 2, 3), rng.standard_normal(3)
    for kw in behaviours.KEYWORDS[function]:
        full = {"mode": "train", "eps": 1e-3, "momentum": 0.7, "running_mean": rng.standard_normal(3),
                "running_var": rng.uniform(0.5, 2, 3)}
        default = np.zeros(3) if kw.default == "zeros" else kw.default
        left_out = {k: v for k, v in full.items() if k != kw.name}
        given = {**full, kw.name: default}
        out_left, _ = getattr(layers, function)(x, gamma, beta, left_out)
        out_given, _ = getattr(layers, function)(x, gamma, beta, given)
        np.testing.assert_array_equal(out_left, out_given)
        for key in ("running_mean", "running_var"):
            np.testing.assert_array_equal(left_out[key], given[key])


@pytest.fixture(scope="module")
def outcomes():
    found = {}
    for part, checker in CHECKERS.items():
        file, tests = PARTS[part]
        source = (solutions_dir("cnn") / file).read_bytes()
        found.update(checker.check({file: source}, part_rng(0, part), LIMITS, [name for _, name, _ in tests]))
    return found


def _labels(function):
    """The words of each behaviour of ``function`` that a case label must hold."""
    labels = []
    for kw in behaviours.KEYWORDS.get(function, ()):
        if kw.name == "rng":
            labels.append(behaviours.PROMISES[function]["none"])
        else:
            labels += [kw.left_out()] + [kw.edge(value) for value in kw.edges]
    labels += list(behaviours.ERRORS.get(function, {}).values()) + list(behaviours.PROMISES.get(function, {}).values())
    prefix = f"{function}: " if function in check_quiz.TEST_OF_KIND else ""
    return [prefix + label for label in labels]


FUNCTIONS = sorted(set(behaviours.KEYWORDS) | set(behaviours.ERRORS) | set(behaviours.PROMISES))


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_behaviour_is_a_case_of_every_grade(outcomes, function):
    test = check_quiz.TEST_OF_KIND.get(function, function)
    cases = outcomes[test].cases
    for label in _labels(function):
        matching = [c for c in cases if label in c.label]
        assert matching, f"{test}: no case for {label!r} in {[c.label for c in cases]}"
        assert all(c.ok for c in matching), [(c.label, c.message) for c in matching]
