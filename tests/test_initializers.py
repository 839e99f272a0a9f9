"""The reference initializers.py: statistics of every scheme, rng handling, errors, and the lecture's experiment.

Statistical checks: grader/stats.py (6 standard errors, derived from the sample size).
"""
import math

import numpy as np
import pytest

from grader import stats
from tests.support import solution

init = solution("initializers")

SCHEMES = {
    "xavier_normal": (init.xavier_normal, "normal"),
    "xavier_uniform": (init.xavier_uniform, "uniform"),
    "kaiming_normal": (init.kaiming_normal, "normal"),
    "kaiming_uniform": (init.kaiming_uniform, "uniform"),
}
# Large samples: 2-D (Din, Dout) with Din != Dout, and a conv weight (F, C, KH, KW) with a non-square kernel.
SHAPES = {(1024, 512): (1024, 512), (96, 64, 5, 3): (64 * 15, 96 * 15)}


def expected_std(scheme, fan_in, fan_out, mode, gain=None, nonlinearity="relu"):
    fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    if scheme.startswith("xavier"):
        g = 1.0 if gain is None else gain
    else:
        g = {"relu": math.sqrt(2), "tanh": 5 / 3, "linear": 1.0, "sigmoid": 1.0,
             "leaky_relu": math.sqrt(2 / (1 + 0.01 ** 2))}[nonlinearity]
    return g / math.sqrt(fan)


def check_sample(what, w, shape, std, kind):
    assert isinstance(w, np.ndarray) and w.shape == tuple(shape) and w.dtype == np.float64, (
        f"{what}: expected a float64 array of shape {shape}, got {type(w).__name__} {getattr(w, 'shape', None)} "
        f"{getattr(w, 'dtype', None)}")
    ok, message = stats.sample_verdict(w, std, bound=std * math.sqrt(3) if kind == "uniform" else None)
    assert ok, f"{what}: {message}"


def test_fan_in_and_fan_out():
    cases = [((3, 5), (3, 5)), ((4096, 1000), (4096, 1000)), ((64, 3, 7, 7), (147, 3136)),
             ((16, 8, 3, 5), (120, 240)), ((10, 4, 1, 1), (4, 10)), ([7, 2], (7, 2)), (np.zeros((6, 9)).shape, (6, 9))]
    for shape, expected in cases:
        got = init.fan_in_and_fan_out(shape)
        assert tuple(got) == expected, (shape, got)
        assert all(isinstance(v, int) for v in got), f"fans should be ints, got {got!r}"
    for shape in [(), (5,), (2, 3, 4), (1, 2, 3, 4, 5)]:
        with pytest.raises(ValueError, match="shape|rank"):
            init.fan_in_and_fan_out(shape)


def test_calculate_gain():
    assert init.calculate_gain("linear") == 1.0
    assert init.calculate_gain("sigmoid") == 1.0
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2), rel=1e-15)
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3, rel=1e-15)
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / 1.0001), rel=1e-15)
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04), rel=1e-15)
    assert init.calculate_gain("leaky_relu", 0) == pytest.approx(math.sqrt(2), rel=1e-15)
    assert init.calculate_gain("leaky_relu", 1) == pytest.approx(1.0, rel=1e-15)
    for bad in ("gelu", "ReLU", "", None):
        with pytest.raises(ValueError, match="nonlinearity"):
            init.calculate_gain(bad)


@pytest.mark.parametrize("name", sorted(SCHEMES))
@pytest.mark.parametrize("shape", list(SHAPES), ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg"])
def test_statistics(name, shape, mode):
    fn, kind = SCHEMES[name]
    fan_in, fan_out = SHAPES[shape]
    variants = ([{}, {"gain": 5 / 3}, {"gain": 0.5}] if name.startswith("xavier")
                else [{}, {"nonlinearity": "tanh"}, {"nonlinearity": "linear"}, {"nonlinearity": "leaky_relu"}])
    for seed, kwargs in enumerate(variants):
        w = fn(shape, mode=mode, rng=seed, **kwargs)
        std = expected_std(name, fan_in, fan_out, mode, **kwargs)
        check_sample(f"{name}{shape} mode={mode} {kwargs}", w, shape, std, kind)


def test_defaults_and_lecture_formulas():
    # Xavier defaults to fan_avg (Glorot); kaiming defaults to fan_in and relu: std sqrt(2 / Din).
    shape = (2048, 512)
    check_sample("xavier_normal default", init.xavier_normal(shape, rng=1), shape, math.sqrt(2 / 2560), "normal")
    check_sample("xavier_uniform default", init.xavier_uniform(shape, rng=1), shape, math.sqrt(2 / 2560), "uniform")
    check_sample("kaiming_normal default", init.kaiming_normal(shape, rng=1), shape, math.sqrt(2 / 2048), "normal")
    check_sample("kaiming_uniform default", init.kaiming_uniform(shape, rng=1), shape, math.sqrt(2 / 2048), "uniform")
    # The lecture's code, draw for draw: randn(Din, Dout) / sqrt(Din) and (corrected MSRA) * sqrt(2 / Din).
    z = np.random.default_rng(3).standard_normal((300, 200))
    np.testing.assert_allclose(init.xavier_normal((300, 200), mode="fan_in", rng=3), z / math.sqrt(300), rtol=1e-13)
    np.testing.assert_allclose(init.kaiming_normal((300, 200), rng=3), z * math.sqrt(2 / 300), rtol=1e-13)


@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_rng_handling(name):
    fn, _ = SCHEMES[name]
    shape = (40, 30)
    a = fn(shape, rng=0)
    assert np.array_equal(a, fn(shape, rng=0)), "same seed, same array"
    assert not np.array_equal(a, fn(shape, rng=1)), "different seeds, different arrays"
    np.testing.assert_array_equal(fn(shape, rng=np.random.default_rng(0)), a)  # a Generator seeded 0 == seed 0
    g = np.random.default_rng(0)
    first = fn(shape, rng=g)
    second = fn(shape, rng=g)
    np.testing.assert_array_equal(first, a)
    assert not np.array_equal(first, second), "a passed Generator must advance"
    reference = np.random.default_rng(0)
    fn(shape, rng=reference)
    fn(shape, rng=reference)
    assert g.bit_generator.state == reference.bit_generator.state, "the Generator is used as is, not copied"
    assert not np.array_equal(fn(shape), fn(shape)), "rng=None: fresh entropy each call"
    assert np.array_equal(fn(shape, rng=np.int64(5)), fn(shape, rng=5)), "numpy integer seeds work"


@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_errors(name):
    fn, _ = SCHEMES[name]
    for mode in ("fan_sum", "FAN_IN", "", None):
        with pytest.raises(ValueError, match="mode"):
            fn((10, 10), mode=mode, rng=0)
    for shape in [(10,), (10, 10, 10), (2, 2, 2, 2, 2)]:
        with pytest.raises(ValueError, match="shape|rank"):
            fn(shape, rng=0)
    if name.startswith("kaiming"):
        with pytest.raises(ValueError, match="nonlinearity"):
            fn((10, 10), nonlinearity="swish", rng=0)


# ----------------------------------------------------------------------------------------------------------
# activation_stds
# ----------------------------------------------------------------------------------------------------------

def test_activation_stds_procedure():
    dims, batch = (40, 30, 20, 10, 5), 6
    for nonlinearity, f in (("tanh", np.tanh), ("relu", lambda z: np.maximum(0, z))):
        calls = []

        def scheme(shape, rng):
            calls.append((shape, rng))
            return init.xavier_uniform(shape, rng=rng)

        got = init.activation_stds(scheme, nonlinearity, dims=dims, batch=batch, rng=11)
        g = np.random.default_rng(11)
        x = g.standard_normal((batch, dims[0]))
        expected = []
        for d_in, d_out in zip(dims[:-1], dims[1:]):
            x = f(x @ init.xavier_uniform((d_in, d_out), rng=g))
            expected.append(x.std())
        assert got == expected  # bit for bit: the same operations in the same order
        assert type(got) is list and all(type(v) is float for v in got)
        assert [s for s, _ in calls] == list(zip(dims[:-1], dims[1:]))
        assert len({id(r) for _, r in calls}) == 1 and isinstance(calls[0][1], np.random.Generator)
    # A Generator passed in is the one used; an int seed is the same as a Generator made from it.
    g = np.random.default_rng(11)
    by_generator = init.activation_stds(lambda s, rng: init.kaiming_normal(s, rng=rng), "relu", dims=dims, rng=g)
    assert by_generator == init.activation_stds(lambda s, rng: init.kaiming_normal(s, rng=rng), "relu", dims=dims, rng=11)
    assert by_generator != init.activation_stds(lambda s, rng: init.kaiming_normal(s, rng=rng), "relu", dims=dims, rng=g)
    assert len(init.activation_stds(lambda s, rng: rng.standard_normal(s), "tanh", dims=(3, 3), rng=None)) == 1
    with pytest.raises(ValueError, match="nonlinearity"):
        init.activation_stds(lambda s, rng: rng.standard_normal(s), "sigmoid", dims=(3, 3), rng=0)


def mean_field(weight_var_times_din, nonlinearity, layers=6):
    """The large-width limit of the experiment: each pre-activation is N(0, q) with q = Var(W) * Din * E[x^2].

    relu: closed form, E[relu(z)^2] = q / 2, E[relu(z)] = sqrt(q / (2 pi)). tanh: Gauss-Hermite quadrature.
    """
    nodes, weights = np.polynomial.hermite_e.hermegauss(120)
    weights = weights / weights.sum()
    second_moment, stds = 1.0, []
    for _ in range(layers):
        q = weight_var_times_din * second_moment
        if nonlinearity == "relu":
            second_moment, mean = q / 2, math.sqrt(q / (2 * math.pi))
        else:
            t = np.tanh(math.sqrt(q) * nodes)
            second_moment, mean = float(weights @ t ** 2), 0.0
        stds.append(math.sqrt(second_moment - mean ** 2))
    return stds


# (description, init, nonlinearity, Var(W) * Din, the figures measured for the brief: layer 1, layer 6)
LECTURE = [
    ("0.01 * randn, tanh", lambda s, rng: 0.01 * rng.standard_normal(s), "tanh", 1e-4 * 4096, 0.49, 0.046),
    ("Xavier, tanh", lambda s, rng: init.xavier_normal(s, mode="fan_in", rng=rng), "tanh", 1.0, 0.63, 0.29),
    ("Xavier gain 5/3, tanh", lambda s, rng: init.xavier_normal(s, gain=5 / 3, mode="fan_in", rng=rng), "tanh",
     25 / 9, 0.76, 0.65),
    ("Kaiming, relu", lambda s, rng: init.kaiming_normal(s, rng=rng), "relu", 2.0, 0.82, 0.82),
    ("slide's 2 / sqrt(Din), relu", lambda s, rng: 2 / math.sqrt(s[0]) * rng.standard_normal(s), "relu", 4.0,
     1.16, 6.5),
    ("slide's code 1 / sqrt(Din), relu", lambda s, rng: rng.standard_normal(s) / math.sqrt(s[0]), "relu", 1.0,
     0.58, 0.10),
]


@pytest.mark.parametrize("case", LECTURE, ids=[c[0] for c in LECTURE])
def test_activation_stds_lecture_figures(case):
    # The default experiment, 6 layers of 4096 with batch 16. Across seeds the layer-6 figure varies by about
    # 1% (finite width and batch); 5% is the band around the large-width limit, and the brief's two-digit
    # figures must match to their rounding (plus the same 5%).
    what, scheme, nonlinearity, gain2, first, last = case
    stds = init.activation_stds(scheme, nonlinearity, rng=0)
    assert len(stds) == 6
    np.testing.assert_allclose(stds, mean_field(gain2, nonlinearity), rtol=0.05, err_msg=what)
    assert stds[0] == pytest.approx(first, rel=0.05, abs=0.005), (what, stds)
    assert stds[-1] == pytest.approx(last, rel=0.05, abs=0.005), (what, stds)
