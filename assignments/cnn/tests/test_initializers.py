"""Public tests for initializers.py. Run ``pytest tests/test_initializers.py`` in the handout folder.

The initializers are random, so their tests are statistical. How far may a sample statistic of n independent
draws with std sigma stray from its true value?
  * the sample mean has standard error sigma / sqrt(n);
  * the sample std has standard error about sigma / sqrt(2 n) for normal draws (the sample variance has
    variance 2 sigma^4 / (n - 1); the std is its square root, which halves the relative error). Uniform draws
    have a lighter tail and a smaller error, sigma * sqrt(1/5) / sqrt(n) ~ 0.45 sigma / sqrt(n), so the normal
    bound covers both.
We allow 6 standard errors: a right implementation fails with probability about 2e-9 per check, and every
wrong formula we know of (a missing sqrt, sqrt(2) or gain, the wrong fan) is off by far more than that.
"""
import math

import numpy as np
import pytest

import initializers

SIGMAS = 6  # standard errors allowed in every statistical check

# (shape, fan_in, fan_out): the 2-D shape is the lecture's (Din, Dout); the 4-D one a conv weight (F, C, KH, KW).
SHAPES = [
    ((512, 256), 512, 256),
    ((64, 32, 3, 3), 32 * 9, 64 * 9),
]


def _fan(fan_in, fan_out, mode):
    return {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]


def _check_sample(what, w, shape, std, bound=None):
    """Shape, dtype, mean, std (and for uniform draws the range) of the array ``w``; ``what`` names the case."""
    assert isinstance(w, np.ndarray), f"{what}: expected a numpy array, got {type(w).__name__}"
    assert w.shape == tuple(shape), f"{what}: expected shape {tuple(shape)}, got {w.shape}"
    assert w.dtype == np.float64, f"{what}: expected dtype float64, got {w.dtype}"
    n = w.size
    mean_tol = SIGMAS * std / math.sqrt(n)
    assert abs(w.mean()) <= mean_tol, (
        f"{what}: the mean should be 0; got {w.mean():.4g} (allowed +-{mean_tol:.2g} for {n} draws)")
    rel_tol = SIGMAS / math.sqrt(2 * n)
    got = w.std()
    assert abs(got / std - 1) <= rel_tol, (
        f"{what}: expected std {std:.5g}, got {got:.5g} (ratio {got / std:.4f}; allowed 1 +- {rel_tol:.4f} for "
        f"{n} draws)")
    if bound is not None:
        biggest = np.abs(w).max()
        assert biggest <= bound, f"{what}: values must lie in [-a, a] with a = {bound:.5g}; found {biggest:.5g}"
        # P(all n draws of U(-a, a) stay inside (1 - t) a) = (1 - t)^n ~ exp(-n t); t = 30 / n makes it e^-30.
        assert biggest >= bound * (1 - 30 / n), (
            f"{what}: the values should fill [-a, a] with a = {bound:.5g}; the largest is only {biggest:.5g}")


def _check_rng(name, fn):
    """Same seed -> same array; different seeds -> different arrays; a Generator passed in is used (advances)."""
    shape = (20, 30)
    a, b, c = fn(shape, rng=0), fn(shape, rng=0), fn(shape, rng=1)
    assert np.array_equal(a, b), f"{name}: two calls with rng=0 should return the same array"
    assert not np.array_equal(a, c), f"{name}: rng=0 and rng=1 should return different arrays"
    g = np.random.default_rng(0)
    first, second = fn(shape, rng=g), fn(shape, rng=g)
    assert not np.array_equal(first, second), (
        f"{name}: two calls with the same Generator should return different arrays (draw from the Generator "
        f"you are given, do not make a new one from a fixed seed)")
    none = fn(shape, rng=None)
    assert none.shape == shape, f"{name}: rng=None should work too; got shape {none.shape}"


def test_fan_in_and_fan_out():
    cases = [((3, 5), (3, 5)), ((4096, 1000), (4096, 1000)), ((64, 3, 7, 7), (3 * 49, 64 * 49)),
             ((16, 8, 3, 5), (8 * 15, 16 * 15)), ((10, 4, 1, 1), (4, 10))]
    for shape, expected in cases:
        got = initializers.fan_in_and_fan_out(shape)
        assert tuple(got) == expected, f"fan_in_and_fan_out{shape}: expected (fan_in, fan_out) = {expected}, got {got}"
    for shape in [(5,), (2, 3, 4), (1, 2, 3, 4, 5)]:
        with pytest.raises(ValueError):
            initializers.fan_in_and_fan_out(shape)
            pytest.fail(f"fan_in_and_fan_out{shape}: a rank-{len(shape)} shape should raise ValueError")


def test_calculate_gain():
    cases = [(("linear",), 1.0), (("sigmoid",), 1.0), (("relu",), math.sqrt(2)), (("tanh",), 5 / 3),
             (("leaky_relu",), math.sqrt(2 / (1 + 0.01 ** 2))), (("leaky_relu", 0.2), math.sqrt(2 / (1 + 0.04))),
             (("leaky_relu", 0.0), math.sqrt(2))]
    for args, expected in cases:
        got = initializers.calculate_gain(*args)
        assert got == pytest.approx(expected, rel=1e-12), f"calculate_gain{args}: expected {expected:.6g}, got {got}"
    with pytest.raises(ValueError):
        initializers.calculate_gain("softplus")
        pytest.fail("calculate_gain('softplus') should raise ValueError")


def _test_scheme(name, fn, uniform, gains):
    """``gains``: list of (keyword arguments, gain) for the scheme."""
    for shape, fan_in, fan_out in SHAPES:
        for mode in ("fan_in", "fan_out", "fan_avg"):
            for kwargs, gain in gains:
                std = gain / math.sqrt(_fan(fan_in, fan_out, mode))
                what = f"{name}({shape}, mode={mode!r}{''.join(f', {k}={v!r}' for k, v in kwargs.items())})"
                w = fn(shape, mode=mode, rng=0, **kwargs)
                _check_sample(what, w, shape, std, bound=std * math.sqrt(3) if uniform else None)
    _check_rng(name, fn)
    for bad in ({"mode": "fan_sum"}, {"mode": "in"}):
        with pytest.raises(ValueError):
            fn((10, 10), rng=0, **bad)
            pytest.fail(f"{name}((10, 10), mode={bad['mode']!r}) should raise ValueError")
    with pytest.raises(ValueError):
        fn((10, 10, 10), rng=0)
        pytest.fail(f"{name}((10, 10, 10)) should raise ValueError: rank 3 is neither (Din, Dout) nor a conv")


def test_xavier_normal():
    fn = initializers.xavier_normal
    _test_scheme("xavier_normal", fn, uniform=False, gains=[({}, 1.0), ({"gain": 5 / 3}, 5 / 3)])
    # The lecture's Xavier: randn(Din, Dout) / sqrt(Din) is mode="fan_in"; the default mode is "fan_avg".
    w = fn((600, 200), rng=0)
    _check_sample("xavier_normal((600, 200)) with the default mode fan_avg", w, (600, 200), math.sqrt(2 / 800))


def test_xavier_uniform():
    fn = initializers.xavier_uniform
    _test_scheme("xavier_uniform", fn, uniform=True, gains=[({}, 1.0), ({"gain": 5 / 3}, 5 / 3)])
    w = fn((600, 200), rng=0)
    _check_sample("xavier_uniform((600, 200)) with the default mode fan_avg", w, (600, 200),
                  math.sqrt(2 / 800), bound=math.sqrt(6 / 800))


def test_kaiming_normal():
    fn = initializers.kaiming_normal
    _test_scheme("kaiming_normal", fn, uniform=False,
                 gains=[({}, math.sqrt(2)), ({"nonlinearity": "tanh"}, 5 / 3), ({"nonlinearity": "linear"}, 1.0)])
    # Defaults: mode fan_in, relu: std = sqrt(2 / Din) (not the slide's 2 / sqrt(Din)).
    w = fn((600, 200), rng=0)
    _check_sample("kaiming_normal((600, 200)) with the defaults (fan_in, relu)", w, (600, 200), math.sqrt(2 / 600))
    with pytest.raises(ValueError):
        fn((10, 10), nonlinearity="swish", rng=0)
        pytest.fail("kaiming_normal(..., nonlinearity='swish') should raise ValueError")


def test_kaiming_uniform():
    fn = initializers.kaiming_uniform
    _test_scheme("kaiming_uniform", fn, uniform=True,
                 gains=[({}, math.sqrt(2)), ({"nonlinearity": "tanh"}, 5 / 3), ({"nonlinearity": "linear"}, 1.0)])
    w = fn((600, 200), rng=0)
    _check_sample("kaiming_uniform((600, 200)) with the defaults (fan_in, relu)", w, (600, 200),
                  math.sqrt(2 / 600), bound=math.sqrt(6 / 600))
    with pytest.raises(ValueError):
        fn((10, 10), nonlinearity="swish", rng=0)
        pytest.fail("kaiming_uniform(..., nonlinearity='swish') should raise ValueError")


def test_activation_stds():
    # 1. The exact procedure, replayed here step by step on a small net with a seed.
    dims, batch, seed = (50, 40, 30, 20), 8, 123
    for nonlinearity, f in (("tanh", np.tanh), ("relu", lambda z: np.maximum(0, z))):
        calls = []

        def init(shape, rng):
            calls.append((shape, rng))
            return rng.standard_normal(shape) / math.sqrt(shape[0])

        got = initializers.activation_stds(init, nonlinearity, dims=dims, batch=batch, rng=seed)
        g = np.random.default_rng(seed)
        x = g.standard_normal((batch, dims[0]))
        expected = []
        for d_in, d_out in zip(dims[:-1], dims[1:]):
            x = f(x @ (g.standard_normal((d_in, d_out)) / math.sqrt(d_in)))
            expected.append(x.std())
        assert [tuple(s) for s, _ in calls] == list(zip(dims[:-1], dims[1:])), (
            f"activation_stds({nonlinearity!r}): init should be called with the shapes (Din, Dout) "
            f"{list(zip(dims[:-1], dims[1:]))}; it was called with {[s for s, _ in calls]}")
        assert all(isinstance(r, np.random.Generator) for _, r in calls) and len({id(r) for _, r in calls}) == 1, (
            f"activation_stds({nonlinearity!r}): init should get rng=g, the one Generator made from rng at the start")
        assert len(got) == len(expected), (
            f"activation_stds({nonlinearity!r}, dims={dims}): expected {len(expected)} stds (one a layer), got {len(got)}")
        assert np.allclose(got, expected, rtol=1e-10, atol=0), (
            f"activation_stds({nonlinearity!r}, dims={dims}, batch={batch}, rng={seed}): expected "
            f"{np.round(expected, 6).tolist()}, got {np.round(got, 6).tolist()}. Follow the docstring's procedure: "
            f"x = g.standard_normal((batch, dims[0])) first, then W = init((Din, Dout), rng=g), x = f(x @ W)")
    g = np.random.default_rng(7)
    before = g.bit_generator.state
    initializers.activation_stds(lambda shape, rng: rng.standard_normal(shape) * 0.1, "tanh", dims=(5, 5), rng=g)
    assert g.bit_generator.state != before, "activation_stds: a Generator passed as rng should be used (and advance)"
    with pytest.raises(ValueError):
        initializers.activation_stds(lambda shape, rng: rng.standard_normal(shape), "gelu", dims=(5, 5), rng=0)
        pytest.fail("activation_stds(..., 'gelu') should raise ValueError")

    # 2. The lecture's figures, the trends. Width 1024 instead of 4096 (16 times less work): the std-per-layer
    # curves depend on the weights' std times sqrt(Din) only, so 0.02 * randn at 1024 is the lecture's 0.01 at
    # 4096. Each figure is within a few percent of the large-width limit, so 15% is a loose band.
    dims = (1024,) * 7
    experiments = [
        ("0.02 * randn (the lecture's 0.01 at width 4096), tanh", lambda s, rng: 0.02 * rng.standard_normal(s),
         "tanh", 0.49, 0.046),
        ("xavier_normal mode fan_in, tanh", lambda s, rng: initializers.xavier_normal(s, mode="fan_in", rng=rng),
         "tanh", 0.63, 0.29),
        ("xavier_normal gain 5/3 mode fan_in, tanh",
         lambda s, rng: initializers.xavier_normal(s, gain=5 / 3, mode="fan_in", rng=rng), "tanh", 0.76, 0.65),
        ("kaiming_normal, relu", lambda s, rng: initializers.kaiming_normal(s, rng=rng), "relu", 0.83, 0.83),
    ]
    for what, init, nonlinearity, first, last in experiments:
        stds = initializers.activation_stds(init, nonlinearity, dims=dims, rng=0)
        assert len(stds) == 6, f"{what}: 7 dims make 6 layers; got {len(stds)} stds"
        shown = np.round(stds, 3).tolist()
        assert stds[0] == pytest.approx(first, rel=0.15) and stds[-1] == pytest.approx(last, rel=0.15), (
            f"{what}: expected the std to go from about {first} (layer 1) to {last} (layer 6); got {shown}")
        if first > 2 * last:  # the two collapsing curves fall by 10% or more a layer
            assert all(a > b for a, b in zip(stds, stds[1:])), f"{what}: the std should fall layer after layer; got {shown}"
