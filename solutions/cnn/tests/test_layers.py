"""Public tests for layers.py: run `pytest` in the handout folder.

Each test checks one function on a few fixed cases. Forward outputs are compared with PyTorch (float64) to a
relative error of 1e-7; each backward is compared with PyTorch *and* with the numerical gradient of your own
forward, so a failure tells you which half is wrong:
- "differs from PyTorch" and "differs from the numerical gradient of your forward": fix the backward;
- the backward matches your forward's numerical gradient but not PyTorch: your forward is wrong too.
The hidden tests on Gradescope use other shapes and values drawn for your submission.
"""
import numpy as np
import pytest

import layers
import torch_reference as ref
from compare import compare
from gradcheck import eval_numerical_gradient_array

TOL = 1e-7


def check(what, got, expected, tol=TOL, floor=1e-8):
    ok, message, _ = compare(what, got, expected, tol, floor=floor)
    assert ok, message


def check_numeric(what, got, numeric):
    """Against a numerical gradient, whose round-off reaches about 1e-10 in absolute terms."""
    check(f"{what} differs from the numerical gradient of your forward;", got, numeric, 1e-5, floor=1e-5)


def untouched(function, *args):
    """``function(*args)``, checking that it leaves its array arguments, and the arrays of a cache it is handed,
    as it found them (see the docstring of layers.py)."""
    names = function.__code__.co_varnames[:len(args)]
    arrays = [(name, a) for name, arg in zip(names, args) for a in (arg if isinstance(arg, tuple) else (arg,))
              if isinstance(a, np.ndarray)]
    before = [a.copy() for _, a in arrays]
    result = function(*args)
    for (name, a), old in zip(arrays, before):
        same = np.array_equal(a, old)
        assert same, f"{function.__name__} changed its input {name} in place: compute on a copy"
    return result


def rng_for(case):
    return np.random.default_rng(sum(map(ord, case)))


def geometry(x_shape, window, stride, pad=None):
    """A case's label, made from its sizes so that it says exactly what the case tests: the window (a conv's
    kernel when ``pad`` is given, a pool's window otherwise), stride, padding and input size; whether windows
    overlap, sit side by side or leave gaps between them; and, for a stride above 1, whether it divides
    H + 2P - K and W + 2P - K (K: the window's side along that axis). Where it does not, the output size rounds
    down and the last rows or columns of the padded input are in no window."""
    (height, width), (kh, kw) = x_shape[-2:], window
    words = f"{kh}x{kw} {'window' if pad is None else 'kernel'}, stride {stride}"
    words += f", {height}x{width} input" if pad is None else f", pad {pad}, {height}x{width} input"
    spacing = ["overlapping windows" if k > stride else "windows side by side" if k == stride else
               "gaps between windows" for k in window]
    words += f"; {spacing[0]}" if spacing[0] == spacing[1] else f"; in height {spacing[0]}, in width {spacing[1]}"
    if stride > 1:
        padding = "" if pad is None else " + 2P"
        spans = [f"{side}{padding} - K" for side in "HW"]
        divides = [(size + 2 * (pad or 0) - k) % stride == 0 for size, k in zip((height, width), window)]
        if all(divides):
            words += f"; the stride divides {spans[0]} and {spans[1]}"
        elif not any(divides):
            words += f"; the stride divides neither {spans[0]} nor {spans[1]}"
        else:
            words += f"; the stride divides {spans[divides.index(True)]}, not {spans[divides.index(False)]}"
    return words


# Each case: (x shape, w shape, stride, pad), under the label its sizes make.
CONV_CASES = {geometry(x_shape, w_shape[2:], stride, pad): (x_shape, w_shape, stride, pad)
              for x_shape, w_shape, stride, pad in [((2, 3, 5, 5), (4, 3, 3, 3), 1, 1),
                                                    ((2, 2, 8, 8), (3, 2, 3, 3), 2, 0),
                                                    ((1, 3, 6, 5), (2, 3, 2, 3), 2, 1),
                                                    ((3, 2, 4, 4), (2, 2, 1, 1), 3, 2)]}


def conv_inputs(case):
    x_shape, w_shape, stride, pad = CONV_CASES[case]
    rng = rng_for(case)
    return (rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0]),
            {"stride": stride, "pad": pad})


def test_conv_forward_naive():
    # The fixture CS231n, EECS 498 and CS7643 all print (to 8 decimals), then cases PyTorch checks.
    x = np.linspace(-0.1, 0.5, num=2 * 3 * 4 * 4).reshape(2, 3, 4, 4)
    w = np.linspace(-0.2, 0.3, num=3 * 3 * 4 * 4).reshape(3, 3, 4, 4)
    b = np.linspace(-0.1, 0.2, num=3)
    out, _ = layers.conv_forward_naive(x, w, b, {"stride": 2, "pad": 1})
    check("out (the course fixture)", out, ref.conv_forward(x, w, b, 2, 1))
    assert abs(out[0, 0, 0, 0] - (-0.08759809)) < 5e-8, f"out[0, 0, 0, 0] = {out[0, 0, 0, 0]}, expected -0.08759809"
    for case in CONV_CASES:
        x, w, b, conv_param = conv_inputs(case)
        out, _ = untouched(layers.conv_forward_naive, x, w, b, conv_param)
        check(f"case '{case}': out", out, ref.conv_forward(x, w, b, conv_param["stride"], conv_param["pad"]))


def test_conv_backward_naive():
    for case in CONV_CASES:
        x, w, b, conv_param = conv_inputs(case)
        out, cache = layers.conv_forward_naive(x, w, b, conv_param)
        dout = rng_for(case + "dout").standard_normal(out.shape)
        dx, dw, db = untouched(layers.conv_backward_naive, dout, cache)
        expected = ref.conv_backward(x, w, b, conv_param["stride"], conv_param["pad"], dout)
        numeric = (
            eval_numerical_gradient_array(lambda v: layers.conv_forward_naive(v, w, b, conv_param)[0], x.copy(), dout),
            eval_numerical_gradient_array(lambda v: layers.conv_forward_naive(x, v, b, conv_param)[0], w.copy(), dout),
            eval_numerical_gradient_array(lambda v: layers.conv_forward_naive(x, w, v, conv_param)[0], b.copy(), dout),
        )
        for name, got, exp, num in zip(("dx", "dw", "db"), (dx, dw, db), expected, numeric):
            check_numeric(f"case '{case}': {name}", got, num)
            check(f"case '{case}': {name} differs from PyTorch;", got, exp)


# Each case: (x shape, pool height, pool width, stride), under the label its sizes make.
POOL_CASES = {geometry(x_shape, (ph, pw), stride): (x_shape, ph, pw, stride)
              for x_shape, ph, pw, stride in [((2, 3, 4, 4), 2, 2, 2), ((2, 2, 8, 8), 3, 3, 2),
                                               ((1, 2, 5, 6), 2, 3, 1), ((2, 1, 8, 8), 2, 2, 3)]}


def pool_inputs(case):
    x_shape, ph, pw, stride = POOL_CASES[case]
    # A permutation has no ties, so the numerical gradient is well defined (see the contract).
    x = rng_for(case).permutation(int(np.prod(x_shape))).reshape(x_shape) / 10.0
    return x, {"pool_height": ph, "pool_width": pw, "stride": stride}


def _pool_forward_test(kind, forward):
    for case in POOL_CASES:
        x, p = pool_inputs(case)
        out, _ = untouched(forward, x, p)
        check(f"case '{case}': out", out, ref.pool_forward(kind, x, p["pool_height"], p["pool_width"], p["stride"]))


def _pool_backward_test(kind, forward, backward):
    for case in POOL_CASES:
        x, p = pool_inputs(case)
        out, cache = forward(x, p)
        dout = rng_for(case + "dout").standard_normal(out.shape)
        dx = untouched(backward, dout, cache)
        numeric = eval_numerical_gradient_array(lambda v: forward(v, p)[0], x.copy(), dout)
        check_numeric(f"case '{case}': dx", dx, numeric)
        expected = ref.pool_backward(kind, x, p["pool_height"], p["pool_width"], p["stride"], dout)
        check(f"case '{case}': dx differs from PyTorch;", dx, expected)


def test_max_pool_forward_naive():
    x = np.linspace(-0.3, 0.4, num=2 * 3 * 4 * 4).reshape(2, 3, 4, 4)
    out, _ = layers.max_pool_forward_naive(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    assert abs(out[0, 0, 0, 0] - (-0.26315789)) < 5e-8, f"out[0, 0, 0, 0] = {out[0, 0, 0, 0]}, expected -0.26315789"
    _pool_forward_test("max", layers.max_pool_forward_naive)


def test_max_pool_backward_naive():
    _pool_backward_test("max", layers.max_pool_forward_naive, layers.max_pool_backward_naive)
    # Ties: the whole gradient of a window goes to its first maximum in row-major order, as in PyTorch.
    x = np.zeros((1, 1, 3, 3))
    p = {"pool_height": 2, "pool_width": 2, "stride": 1}
    out, cache = layers.max_pool_forward_naive(x, p)
    dout = np.arange(1.0, 5.0).reshape(1, 1, 2, 2)
    check("all-equal input (ties): dx", layers.max_pool_backward_naive(dout, cache),
          ref.pool_backward("max", x, 2, 2, 1, dout))


def test_avg_pool_forward_naive():
    _pool_forward_test("avg", layers.avg_pool_forward_naive)


def test_avg_pool_backward_naive():
    _pool_backward_test("avg", layers.avg_pool_forward_naive, layers.avg_pool_backward_naive)


BN_CASES = {
    # name: shape of x; batchnorm takes (N, D), spatial batchnorm (N, C, H, W)
    "N=4, D=5": (4, 5),
    "tiny batch N=2, D=3": (2, 3),
    "N=10, D=1": (10, 1),
}
SPATIAL_CASES = {"N=2, C=3, 4x5": (2, 3, 4, 5), "N=1, C=2, 3x3": (1, 2, 3, 3)}


def bn_inputs(case, shape):
    rng = rng_for(case)
    channels = shape[1]
    x = 3.0 * rng.standard_normal(shape) + 2.0
    return x, rng.uniform(0.5, 2.0, channels), rng.standard_normal(channels)


def _bn_forward_test(forward, cases):
    for case, shape in cases.items():
        x, gamma, beta = bn_inputs(case, shape)
        channels = shape[1]
        old_mean, old_var = np.full(channels, 0.5), np.full(channels, 2.0)
        bn_param = {"mode": "train", "eps": 1e-5, "momentum": 0.8,
                    "running_mean": old_mean.copy(), "running_var": old_var.copy()}
        out, _ = untouched(forward, x, gamma, beta, bn_param)
        check(f"case '{case}', train mode: out", out, ref.batchnorm_forward(x, gamma, beta))
        mean, var = ref.batchnorm_running_stats(x, old_mean, old_var, momentum=0.8)
        check(f"case '{case}': running_mean after a train step", bn_param["running_mean"], mean)
        check(f"case '{case}': running_var after a train step (biased batch variance)", bn_param["running_var"], var)

        test_param = {"mode": "test", "running_mean": mean.copy(), "running_var": var.copy()}
        out, _ = forward(x, gamma, beta, test_param)
        check(f"case '{case}', test mode: out", out, ref.batchnorm_test_forward(x, gamma, beta, mean, var))
        check(f"case '{case}', test mode: running_mean must not change", test_param["running_mean"], mean)

        defaults = {"mode": "train"}
        forward(x, gamma, beta, defaults)
        zeros = np.zeros(channels)
        mean, var = ref.batchnorm_running_stats(x, zeros, zeros, momentum=0.9)
        assert "running_mean" in defaults and "running_var" in defaults, \
            "bn_param without running statistics: store them in bn_param after the call"
        check(f"case '{case}', bn_param defaults (momentum 0.9, zeros): running_mean", defaults["running_mean"], mean)
        check(f"case '{case}', bn_param defaults (momentum 0.9, zeros): running_var", defaults["running_var"], var)


def _bn_backward_test(forward, backward, cases):
    for case, shape in cases.items():
        x, gamma, beta = bn_inputs(case, shape)
        out, cache = forward(x, gamma, beta, {"mode": "train"})
        dout = rng_for(case + "dout").standard_normal(out.shape)
        got = untouched(backward, dout, cache)
        assert isinstance(got, tuple) and len(got) == 3, "return (dx, dgamma, dbeta)"
        expected = ref.batchnorm_backward(x, gamma, beta, dout)

        def f(which):
            def run(v):
                args = [x, gamma, beta]
                args[which] = v
                return forward(*args, {"mode": "train"})[0]
            return run

        for i, name in enumerate(("dx", "dgamma", "dbeta")):
            numeric = eval_numerical_gradient_array(f(i), [x, gamma, beta][i].copy(), dout)
            check_numeric(f"case '{case}': {name}", got[i], numeric)
            check(f"case '{case}': {name} differs from PyTorch;", got[i], expected[i])


def test_batchnorm_forward():
    _bn_forward_test(layers.batchnorm_forward, BN_CASES)


def test_batchnorm_backward():
    _bn_backward_test(layers.batchnorm_forward, layers.batchnorm_backward, BN_CASES)


def test_batchnorm_backward_alt():
    _bn_backward_test(layers.batchnorm_forward, layers.batchnorm_backward_alt, BN_CASES)


def test_spatial_batchnorm_forward():
    _bn_forward_test(layers.spatial_batchnorm_forward, SPATIAL_CASES)


def test_spatial_batchnorm_backward():
    _bn_backward_test(layers.spatial_batchnorm_forward, layers.spatial_batchnorm_backward, SPATIAL_CASES)


@pytest.mark.parametrize("given", ["affine", "relu"])
def test_given_layers_still_work(given):
    # affine and ReLU are given; this guards against accidental edits.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 2))
    if given == "affine":
        w, b = rng.standard_normal((4, 5)), rng.standard_normal(5)
        out, cache = layers.affine_forward(x, w, b)
        check("affine out", out, x.reshape(3, 4) @ w + b)
    else:
        out, cache = layers.relu_forward(x)
        check("relu out", out, np.where(x > 0, x, 0.0))
