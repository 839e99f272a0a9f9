"""Each stratum of grader/cnn/cases.py catches a realistic bug that shows only there, in the same cases on every
seed: the same bug costs the same points in every grade.

The bug is the reference solution with one text substitution. For 20 seeds, the hidden cases are drawn as the
grader draws them, the buggy function runs on them, and the cases that differ from the PyTorch oracle beyond
the grader's tolerance (or raise) must be the same categories every time, at least one, all in the stratum.
"""
import numpy as np
import pytest

from grader.cnn import cases
from grader.cnn.check_layers import TOL
from grader.cnn.oracles import layers as ref
from support import load_module
from test_grading_layers import apply

CONV_SIZES = ('    H_out = 1 + (H + 2 * P - HH) // S\n', '    W_out = 1 + (W + 2 * P - WW) // S\n')
BACKWARD_KERNEL = "    F, _, HH, WW = w.shape\n"
POOL_KERNEL = '    PH, PW, S = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]\n'

# stratum: (function graded, edits)
BUGS = {
    "wide kernel": ("conv_backward_naive", [("conv_backward_naive", BACKWARD_KERNEL,
                    "    F, _ = w.shape[:2]\n    HH, WW = sorted(w.shape[2:], reverse=True)\n")]),
    "tall kernel": ("conv_backward_naive", [("conv_backward_naive", BACKWARD_KERNEL,
                    "    F, _ = w.shape[:2]\n    HH, WW = sorted(w.shape[2:])\n")]),
    # Sizes computed as if every image were square.
    "input wider than tall": ("conv_forward_naive", [("conv_forward_naive", CONV_SIZES[1],
                              "    W_out = 1 + (min(H, W) + 2 * P - WW) // S\n")]),
    "input taller than wide": ("conv_forward_naive", [("conv_forward_naive", CONV_SIZES[0],
                               "    H_out = 1 + (min(H, W) + 2 * P - HH) // S\n")]),
    "pad 0": ("conv_backward_naive", [("conv_backward_naive", "dx = dxp[:, :, P:P + H, P:P + W]",
                                       "dx = dxp[:, :, P:-P, P:-P]")]),
    "pad > 0": ("conv_backward_naive", [("conv_backward_naive", "xp = np.pad(x, ((0, 0), (0, 0), (P, P), (P, P)))",
                                         "xp = x")]),
    # Padded on one side only, with the output size that padding gives.
    "the last window reaches the far padding": ("conv_forward_naive", [
        ("conv_forward_naive", "((0, 0), (0, 0), (P, P), (P, P))", "((0, 0), (0, 0), (P, 0), (P, 0))"),
        ("conv_forward_naive", CONV_SIZES[0], "    H_out = 1 + (H + P - HH) // S\n"),
        ("conv_forward_naive", CONV_SIZES[1], "    W_out = 1 + (W + P - WW) // S\n")]),
    "stride > 1": ("conv_backward_naive", [("conv_backward_naive", '    S, P = conv_param["stride"], conv_param["pad"]\n',
                                            '    S, P = 1, conv_param["pad"]\n')]),
    # Ceiling instead of floor division: the same wherever the stride divides.
    "stride does not divide the size": ("conv_forward_naive", [
        ("conv_forward_naive", CONV_SIZES[0], "    H_out = 1 - (-(H + 2 * P - HH) // S)\n"),
        ("conv_forward_naive", CONV_SIZES[1], "    W_out = 1 - (-(W + 2 * P - WW) // S)\n")]),
    # The gradient buffer sized to the windows' extent rather than the padded input: right while only padding
    # lies past the last window, too short once the input's own last row and column do.
    "the input's last row and column in no window": ("conv_backward_naive", [
        ("conv_backward_naive", "    dxp = np.zeros_like(xp)\n",
         "    dxp = np.zeros((N, C, (H_out - 1) * S + HH, (W_out - 1) * S + WW))\n")]),
    "stride below the window": ("max_pool_backward_naive", [
        ("max_pool_backward_naive", "j * S + l] += dout[:, :, i, j]", "j * S + l] = dout[:, :, i, j]")]),
    "tall window": ("avg_pool_forward_naive", [("avg_pool_forward_naive", POOL_KERNEL,
                    POOL_KERNEL + "    PH, PW = sorted((PH, PW))\n")]),
    "wide window": ("avg_pool_forward_naive", [("avg_pool_forward_naive", POOL_KERNEL,
                    POOL_KERNEL + "    PH, PW = sorted((PH, PW), reverse=True)\n")]),
    # The stride taken as the window's step only when they overlap: windows side by side or with gaps go wrong.
    "stride above the window": ("avg_pool_forward_naive", [("avg_pool_forward_naive", POOL_KERNEL,
                                POOL_KERNEL + "    S = min(S, PH, PW)\n")]),
}


def _run(layers, function, case):
    """The buggy function's results on ``case`` against the oracle's: True when they differ (or it raised)."""
    x = case["inputs"]["x"]
    p = case["params"]
    try:
        if function.startswith("conv"):
            w, b = case["inputs"]["w"], case["inputs"]["b"]
            out, cache = layers.conv_forward_naive(x, w, b, p)
            if function == "conv_forward_naive":
                return _differs([out], [ref.conv_forward(x, w, b, p["stride"], p["pad"])])
            dout = np.ones(ref.conv_forward(x, w, b, p["stride"], p["pad"]).shape)
            return _differs(layers.conv_backward_naive(dout, cache),
                            ref.conv_backward(x, w, b, p["stride"], p["pad"], dout))
        kind = function.split("_")[0]
        args = (x, p["pool_height"], p["pool_width"], p["stride"])
        out, cache = getattr(layers, f"{kind}_pool_forward_naive")(x, p)
        if function.endswith("forward_naive"):
            return _differs([out], [ref.pool_forward(kind, *args)])
        dout = np.arange(1.0, out.size + 1).reshape(out.shape)
        return _differs([getattr(layers, function)(dout, cache)], [ref.pool_backward(kind, *args, dout)])
    except Exception:   # the grader records the exception as the case's failure
        return True


def _differs(got, expected):
    return any(g.shape != e.shape or np.max(np.abs(g - e) / np.maximum(1e-8, np.abs(g) + np.abs(e))) > TOL
               for g, e in zip(got, expected))


@pytest.mark.parametrize("stratum", list(BUGS))
def test_each_strata_bug_is_caught_on_every_seed(tmp_path, stratum):
    function, edits = BUGS[stratum]
    path = tmp_path / "layers.py"
    path.write_text(apply(edits))
    layers = load_module(path)
    kind = "conv" if function.startswith("conv") else "pool"
    assert stratum in cases.STRATA[kind]
    draw = cases.conv_cases if kind == "conv" else cases.pool_cases
    caught_on = set()
    for seed in range(20):
        drawn = draw(np.random.default_rng([seed, 5]))
        caught = [case for case in drawn if _run(layers, function, case)]
        assert caught, f"seed {seed}: the {stratum} bug passes every case"
        # It shows only in its stratum, so the layout had to hold one.
        assert all(stratum in cases.strata(kind, case) for case in caught), \
            [case["category"] for case in caught if stratum not in cases.strata(kind, case)]
        caught_on.add(tuple(case["category"] for case in caught))
    assert len(caught_on) == 1, f"the {stratum} bug fails different categories on different seeds: {caught_on}"
