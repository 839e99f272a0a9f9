"""Numerical gradient checking (given, complete, not graded).

A backward pass is right when it matches the gradient estimated by central differences,
    df/dx_i ~ (f(x + h e_i) - f(x - h e_i)) / (2h),
computed in float64. Compare the two with ``rel_error``: below about 1e-7 is right, around 1e-2 or above is
a bug.
"""
import numpy as np


def eval_numerical_gradient_array(f, x, df, h=1e-5):
    """Numerical gradient of ``sum(f(x) * df)`` with respect to the array ``x``.

    f: a function of one array argument returning an array (e.g. ``lambda x: conv_forward_naive(x, w, b,
    conv_param)[0]``); x: the point, a float64 array, changed during the call and restored afterwards;
    df: the upstream gradient, shaped like ``f(x)``. Returns an array shaped like x.
    """
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        ix = it.multi_index
        old = x[ix]
        x[ix] = old + h
        pos = np.array(f(x), dtype=np.float64, copy=True)
        x[ix] = old - h
        neg = np.array(f(x), dtype=np.float64, copy=True)
        x[ix] = old
        grad[ix] = np.sum((pos - neg) * df) / (2 * h)
        it.iternext()
    return grad


def rel_error(x, y):
    """Largest elementwise relative error, ``max(|x - y| / max(1e-8, |x| + |y|))``."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))
