"""grader/cnn/check_initializers.py: the reference initializers.py scores full marks, the stub zero, and
realistic slips lose points in the tests they touch and only there, with messages that name the slip.

Each variant is graded in full (five sandbox children, about a second each), so the variants are few and
chosen to cover every test."""
import math

import numpy as np
import pytest

from grader import paths
from grader.checks import to_result
from grader.cnn import check_initializers as ci
from grader.cnn.points import PARTS
from grader.sandbox import Limits

LIMITS = Limits(wall_seconds=30, call_seconds=10)
FILE, TESTS = PARTS["initializers"]
NAMES = [name for _, name, _ in TESTS]
SOLUTION = (paths.solutions_dir("cnn") / FILE).read_text()
FANS, GAIN, XN, XU, KN, KU, ACT = NAMES


def run(source, seed=0):
    return ci.check({FILE: source.encode()}, np.random.default_rng(seed), LIMITS, NAMES)


def variant(*replacements):
    """The solution with each (old, new) applied; every ``old`` must appear exactly once."""
    source = SOLUTION
    for old, new in replacements:
        assert source.count(old) == 1, f"{old!r} appears {source.count(old)} times in the solution, expected once"
        source = source.replace(old, new)
    return source


# (name, replacements, {test: phrase some failed case's message contains}); every other test keeps its points.
VARIANTS = [
    ("kaiming std from the slide's typo 2 / sqrt(fan)",
     [("std = calculate_gain(nonlinearity) / np.sqrt(_fan(shape, mode))", "std = 2 / np.sqrt(_fan(shape, mode))")],
     {KN: "slide's typo"}),
    ("fan_avg without the / 2",
     [('"fan_avg": (fan_in + fan_out) / 2}', '"fan_avg": fan_in + fan_out}')],
     {XN: "fan_avg is their mean", XU: "fan_avg is their mean", KN: "fan_avg is their mean",
      KU: "fan_avg is their mean"}),
    ("xavier uniform bound sqrt(1 / fan)",
     [("bound = gain * np.sqrt(3.0 / _fan(shape, mode))", "bound = gain * np.sqrt(1.0 / _fan(shape, mode))")],
     {XU: "gain * sqrt(3 / fan)"}),
    ("conv fan_out forgets the kernel size",
     [("return c * kh * kw, f * kh * kw", "return c * kh * kw, f")],
     {FANS: "fan_out is wrong", XN: "kernel size", XU: "kernel size", KN: "kernel size", KU: "kernel size"}),
    ("activation_stds makes a new Generator per layer",
     [("w = init((d_in, d_out), rng=g)", "w = init((d_in, d_out), rng=_as_generator(rng))")],
     {ACT: "right trend"}),
    ("leaky_relu slope 0 taken as the default",
     [("slope = 0.01 if param is None else float(param)", "slope = float(param or 0.01)")],
     {GAIN: "param is None"}),
    ("xavier_normal draws a uniform of the right std",
     [("std = gain / np.sqrt(_fan(shape, mode))\n    return _as_generator(rng).normal(0.0, std, size=tuple(shape))",
       "std = gain / np.sqrt(_fan(shape, mode))\n"
       "    return _as_generator(rng).uniform(-std * 3 ** 0.5, std * 3 ** 0.5, size=tuple(shape))")],
     {XN: "normally distributed"}),
    ("kaiming_uniform returns float32 and ignores a Generator it is given",
     [("bound = calculate_gain(nonlinearity) * np.sqrt(3.0 / _fan(shape, mode))\n"
       "    return _as_generator(rng).uniform(-bound, bound, size=tuple(shape))",
       "bound = calculate_gain(nonlinearity) * np.sqrt(3.0 / _fan(shape, mode))\n"
       "    rng = rng if isinstance(rng, int) else 0\n"
       "    return _as_generator(rng).uniform(-bound, bound, size=tuple(shape)).astype(np.float32)")],
     {KU: "float64"}),
]
# Beyond the phrase above, these cases (by label prefix) must fail, and no other case of that test.
EXACT_FAILURES = {
    "activation_stds makes a new Generator per layer": {ACT: ("hidden case",)},
    "leaky_relu slope 0 taken as the default": {GAIN: ("case 7 (leaky_relu, param given as 0.0",)},
}


def test_a_wrong_everyday_default_weighs_like_a_category():
    # fan_in as xavier_normal's default mode: the large sample drawn with every default and the case leaving the
    # mode out fail. The call activation_stds documents leaves the mode out, so that case weighs 1 as the 13 layout
    # categories do, not 0.5 as the 7 other documented behaviours: 1.5 x (12 + 0 + 3.5) / (13 + 1 + 3.5) points.
    outcomes = run(variant(('def xavier_normal(shape, gain=1.0, mode="fan_avg", rng=None):',
                            'def xavier_normal(shape, gain=1.0, mode="fan_in", rng=None):')))
    assert all(outcomes[name].fraction == 1 for name in NAMES if name != XN)
    result = to_result("2.3", XN, 1.5, outcomes[XN])
    assert abs(result.score - 1.5 * 15.5 / 17.5) < 1e-12
    assert result.output.splitlines()[:2] == [
        "19 of 21 cases passed",
        "12 of 13 categories, 0 of 1 everyday default and 7 of 7 documented behaviours passed: 12 x 1 + 0 x 1 + 7 x "
        "0.5 = 15.5 of 17.5, so 1.33 of 1.5 points"]


@pytest.mark.parametrize("name, replacements, losses", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_a_slip_costs_its_tests_only(name, replacements, losses):
    outcomes = run(variant(*replacements))
    for test in NAMES:
        outcome = outcomes[test]
        assert not outcome.blocker, (test, outcome.blocker)
        failed = [c for c in outcome.cases if not c.ok]
        if test in losses:
            assert failed, f"{name}: {test} should lose points"
            assert any(losses[test] in c.message for c in failed), (test, [c.message for c in failed])
            prefixes = EXACT_FAILURES.get(name, {}).get(test)
            if prefixes:
                assert all(c.label.startswith(prefixes) for c in failed), (test, [c.label for c in failed])
                assert all(any(c.label.startswith(p) for c in failed) for p in prefixes), (test, failed)
        else:
            assert not failed, (name, test, [(c.label, c.message) for c in failed])


# ---------------------------------------------------------------------------------------------------------------
# The statistics themselves, without a sandbox: right samples pass, wrong ones fail, tolerances follow n.
# ---------------------------------------------------------------------------------------------------------------

def test_sample_verdict_accepts_right_draws_and_rejects_wrong_ones():
    rng = np.random.default_rng(0)
    shape, std = (300, 500), 0.05
    a = std * math.sqrt(3)
    assert ci.sample_verdict(rng.normal(0, std, shape), shape, std) == (True, "")
    assert ci.sample_verdict(rng.uniform(-a, a, shape), shape, std, bound=a) == (True, "")
    ok, message = ci.sample_verdict(rng.normal(0, std * 1.05, shape), shape, std)
    assert not ok and "factor 1.05" in message
    ok, message = ci.sample_verdict(rng.uniform(-a, a, shape), shape, std)
    assert not ok and "normally distributed" in message
    ok, message = ci.sample_verdict(rng.normal(0, std, shape), shape, std, bound=a)
    assert not ok and "stays within [-a, a]" in message
    ok, message = ci.sample_verdict(rng.normal(0, std, shape) + 0.05 * std, shape, std)
    assert not ok and "mean" in message
    ok, message = ci.sample_verdict(rng.normal(0, std, shape).astype(np.float32), shape, std)
    assert not ok and "float64" in message
    ok, message = ci.sample_verdict(rng.normal(0, std, (500, 300)), shape, std)
    assert not ok and "shape" in message


def test_a_right_sampler_passes_the_statistical_checks_on_many_draws():
    rng = np.random.default_rng(1)
    for _ in range(100):
        shape = ci.shape_4d(rng) if rng.integers(2) else ci.shape_2d(rng)
        std = float(rng.uniform(0.01, 1))
        assert ci.sample_verdict(rng.normal(0, std, shape), shape, std)[0]
        a = std * math.sqrt(3)
        assert ci.sample_verdict(rng.uniform(-a, a, shape), shape, std, bound=a)[0]


def test_hidden_shapes_keep_the_modes_apart():
    rng = np.random.default_rng(2)
    for _ in range(200):
        for shape in (ci.shape_2d(rng), ci.shape_4d(rng)):
            fan_in, fan_out = ci.fans(shape)
            assert max(fan_in, fan_out) / min(fan_in, fan_out) >= 1.45
            assert 15_000 <= np.prod(shape) <= 70_000


def test_activation_replay_matches_the_contracts_procedure():
    dims, batch, seed = (300, 260, 280, 270), 20, 5
    g = np.random.default_rng(seed)
    x = g.standard_normal((batch, dims[0]))
    expected = []
    for d_in, d_out in zip(dims[:-1], dims[1:]):
        x = np.tanh(x @ (g.standard_normal((d_in, d_out)) / math.sqrt(d_in)))
        expected.append(x.std())
    got = ci.replay(1.0, True, "tanh", dims, batch, np.random.default_rng(seed))
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    ok, message = ci.stds_verdict([v * math.sqrt(batch * d / (batch * d - 1)) for v, d in zip(got, dims[1:])],
                                  got, batch, dims)
    assert not ok and "ddof=1" in message


def test_every_draw_has_square_tall_wide_and_1x1_kernels_for_the_fans():
    for seed in range(200):
        kernels = [shape[2:] for shape, _ in ci.fan_cases(np.random.default_rng(seed)) if len(shape) == 4]
        kinds = {"1x1" if k == (1, 1) else "square" if k[0] == k[1] else "tall" if k[0] > k[1] else "wide"
                 for k in kernels}
        assert kinds == {"1x1", "square", "tall", "wide"}, (seed, kernels)
        # Only the 1x1 case has a side of 1: on 1xK, c / kh * kw (a mutation tool's) is the right fan.
        assert all(min(k) > 1 for k in kernels if k != (1, 1)), (seed, kernels)


@pytest.mark.parametrize("name", list(ci.SCHEMES))
def test_every_grade_makes_the_same_calls_only_values_differ(name):
    def layout(seed):
        plan, _ = ci._plan_scheme(name, np.random.default_rng(seed))
        return [(step["call"], sorted(step["kwargs"]), step["kwargs"].get("mode"), step["kwargs"].get("nonlinearity"))
                for step in plan.steps if not step["call"].startswith("builtin:")]
    first = layout(0)
    assert all(layout(seed) == first for seed in range(1, 20))
    # The gain given to xavier is drawn, but always far from the default 1.
    gains = [step["kwargs"]["gain"]["v"] for seed in range(20) for step in ci._plan_scheme(
        name, np.random.default_rng(seed))[0].steps if "gain" in step["kwargs"]]
    assert all(v == 0.0 or 1.5 <= v <= 2.5 for v in gains)


def test_hidden_shapes_have_odd_fan_sums():
    rng = np.random.default_rng(3)
    for _ in range(200):
        for shape in (ci.shape_2d(rng), ci.shape_4d(rng, (3, 5))):
            assert sum(ci.fans(shape)) % 2 == 1, shape
