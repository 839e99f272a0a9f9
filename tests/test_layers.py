"""The reference layers (solutions/cnn/layers.py) against PyTorch float64 on randomized cases, the course's
published fixtures, and the contract's closed form for batchnorm's running statistics."""
import numpy as np
import pytest

from grader.cnn import cases
from grader.cnn.oracles import layers as ref
from support import solution

layers = solution("layers")
TOL = 1e-7
SEEDS = range(20)


def rel_error(got, expected):
    assert got.shape == expected.shape, (got.shape, expected.shape)
    assert got.dtype == np.float64, got.dtype
    return float(np.max(np.abs(got - expected) / np.maximum(1e-8, np.abs(got) + np.abs(expected))))


def assert_all_close(got, expected, tol=TOL):
    for g, e in zip(got, expected):
        assert rel_error(g, e) <= tol


@pytest.mark.parametrize("seed", SEEDS)
def test_conv_against_pytorch(seed):
    for case in cases.conv_cases(np.random.default_rng(seed)):
        x, w, b = case["inputs"].values()
        s, p = case["params"]["stride"], case["params"]["pad"]
        out, cache = layers.conv_forward_naive(x, w, b, case["params"])
        assert_all_close([out], [ref.conv_forward(x, w, b, s, p)])
        dout = np.random.default_rng(seed).standard_normal(out.shape)
        assert_all_close(layers.conv_backward_naive(dout, cache), ref.conv_backward(x, w, b, s, p, dout))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("ties", [False, True])
def test_pooling_against_pytorch(seed, kind, ties):
    forward = getattr(layers, f"{kind}_pool_forward_naive")
    backward = getattr(layers, f"{kind}_pool_backward_naive")
    for case in cases.pool_cases(np.random.default_rng(seed), ties=ties):
        x, p = case["inputs"]["x"], case["params"]
        args = (x, p["pool_height"], p["pool_width"], p["stride"])
        out, cache = forward(x, p)
        assert_all_close([out], [ref.pool_forward(kind, *args)])
        dout = np.random.default_rng(seed).standard_normal(out.shape)
        assert_all_close([backward(dout, cache)], [ref.pool_backward(kind, *args, dout)])


def test_max_pool_tie_goes_to_first_maximum_and_overlaps_add():
    x = np.array([[[[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]]])
    out, cache = layers.max_pool_forward_naive(x, {"pool_height": 2, "pool_width": 2, "stride": 1})
    dx = layers.max_pool_backward_naive(np.ones_like(out), cache)
    # Windows at (0,0), (0,1), (1,0) have their first maximum at x[0,0], x[0,1], x[1,0]; window (1,1) at x[1,1].
    np.testing.assert_array_equal(dx[0, 0], [[1, 1, 0], [1, 1, 0], [0, 0, 0]])
    out, cache = layers.max_pool_forward_naive(np.zeros((1, 1, 3, 3)), {"pool_height": 2, "pool_width": 2,
                                                                          "stride": 1})
    dx = layers.max_pool_backward_naive(np.ones_like(out), cache)
    np.testing.assert_array_equal(dx[0, 0], [[1, 1, 0], [1, 1, 0], [0, 0, 0]])


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("spatial", [False, True])
def test_batchnorm_against_pytorch_and_closed_form(seed, spatial):
    prefix = "spatial_" if spatial else ""
    forward = getattr(layers, f"{prefix}batchnorm_forward")
    backwards = [getattr(layers, f"{prefix}batchnorm_backward")] + ([] if spatial else [layers.batchnorm_backward_alt])
    for case in cases.batchnorm_cases(np.random.default_rng(seed), spatial=spatial):
        x, gamma, beta = case["inputs"].values()
        p = case["params"]
        bn_param = dict(p, mode="train", running_mean=p["running_mean"].copy(), running_var=p["running_var"].copy())
        out, cache = forward(x, gamma, beta, bn_param)
        assert_all_close([out], [ref.batchnorm_forward(x, gamma, beta, p["eps"])])
        expected_stats = ref.batchnorm_running_stats(x, p["running_mean"], p["running_var"], p["momentum"])
        assert_all_close([bn_param["running_mean"], bn_param["running_var"]], expected_stats)
        dout = np.random.default_rng(seed).standard_normal(out.shape)
        expected = ref.batchnorm_backward(x, gamma, beta, dout, p["eps"])
        for backward in backwards:
            assert_all_close(backward(dout, cache), expected)
        test_param = dict(bn_param, mode="test")
        out, _ = forward(x, gamma, beta, test_param)
        assert_all_close([out], [ref.batchnorm_test_forward(x, gamma, beta, *expected_stats, p["eps"])])
        np.testing.assert_array_equal(test_param["running_mean"], bn_param["running_mean"])
        np.testing.assert_array_equal(test_param["running_var"], bn_param["running_var"])


def test_batchnorm_defaults_and_closed_form_by_hand():
    x = np.array([[1.0, 2.0], [3.0, 6.0]])
    bn_param = {"mode": "train"}
    out, _ = layers.batchnorm_forward(x, np.ones(2), np.zeros(2), bn_param)
    # mean (2, 4), biased variance (1, 4); running = 0.9 * 0 + 0.1 * batch.
    np.testing.assert_allclose(bn_param["running_mean"], [0.2, 0.4])
    np.testing.assert_allclose(bn_param["running_var"], [0.1, 0.4])
    np.testing.assert_allclose(out, [[-1 / np.sqrt(1 + 1e-5), -2 / np.sqrt(4 + 1e-5)],
                                     [1 / np.sqrt(1 + 1e-5), 2 / np.sqrt(4 + 1e-5)]])
    with pytest.raises(ValueError, match="mode"):
        layers.batchnorm_forward(x, np.ones(2), np.zeros(2), {"mode": "eval"})


def test_course_fixtures():
    # Printed to 8 decimals by CS231n / EECS 498 / CS7643, hence 5e-8.
    x = np.linspace(-0.1, 0.5, num=2 * 3 * 4 * 4).reshape(2, 3, 4, 4)
    w = np.linspace(-0.2, 0.3, num=3 * 3 * 4 * 4).reshape(3, 3, 4, 4)
    b = np.linspace(-0.1, 0.2, num=3)
    out, _ = layers.conv_forward_naive(x, w, b, {"stride": 2, "pad": 1})
    assert out.shape == (2, 3, 2, 2)
    expected = np.array([[[[-0.08759809, -0.10987781], [-0.18387192, -0.2109216]],
                          [[0.21027089, 0.21661097], [0.22847626, 0.23004637]],
                          [[0.50813986, 0.54309974], [0.64082444, 0.67101435]]],
                         [[[-0.98053589, -1.03143541], [-1.19128892, -1.24695841]],
                          [[0.69108355, 0.66880383], [0.59480972, 0.56776003]],
                          [[2.36270298, 2.36904306], [2.38090835, 2.38247847]]]])
    np.testing.assert_allclose(out, expected, atol=5e-8)
    x = np.linspace(-0.3, 0.4, num=2 * 3 * 4 * 4).reshape(2, 3, 4, 4)
    out, _ = layers.max_pool_forward_naive(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    expected = np.array([[[[-0.26315789, -0.24842105], [-0.20421053, -0.18947368]],
                          [[-0.14526316, -0.13052632], [-0.08631579, -0.07157895]],
                          [[-0.02736842, -0.01263158], [0.03157895, 0.04631579]]],
                         [[[0.09052632, 0.10526316], [0.14947368, 0.16421053]],
                          [[0.20842105, 0.22315789], [0.26736842, 0.28210526]],
                          [[0.32631579, 0.34105263], [0.38526316, 0.4]]]])
    np.testing.assert_allclose(out, expected, atol=5e-8)


def test_float32_inputs_give_finite_outputs_of_the_right_shape():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    out, _ = layers.conv_forward_naive(x, w, np.zeros(4, np.float32), {"stride": 1, "pad": 1})
    assert out.shape == (2, 4, 6, 6) and np.all(np.isfinite(out))
    np.testing.assert_allclose(out, ref.conv_forward(x, w, np.zeros(4), 1, 1), rtol=1e-4, atol=1e-4)
