"""Compare an array a student produced with the expected one, and say in words what differs.

Shared by the grader and the handout's public tests (the release copies this file into the handout), so a
student sees the same verdicts locally as on Gradescope. numpy only.
"""
import numpy as np


def rel_error_array(got, expected, floor=1e-8):
    """Elementwise ``|got - expected| / max(floor, |got| + |expected|)``; ``gradcheck.rel_error`` with 1e-8."""
    return np.abs(got - expected) / np.maximum(floor, np.abs(got) + np.abs(expected))


def compare(what, got, expected, tol, dtype=np.float64, show_where=True, floor=1e-8):
    """Check ``got`` against ``expected``: type, shape, dtype, finiteness, then max relative error <= tol.

    Returns ``(ok, message, error)``: ``message`` says what is off (or the error reached when ok), ``error``
    is the max relative error (``inf`` where the comparison could not be made). ``show_where=False`` leaves
    out the index of the worst element (for hidden cases, whose inputs stay hidden). ``floor`` bounds the
    denominator from below: numerical gradients carry an absolute error near 1e-10, so comparisons with them
    use a floor of 1e-5, or a true gradient of 1e-7 would fail on round-off alone.
    """
    expected = np.asarray(expected)
    if not isinstance(got, np.ndarray):
        return False, f"{what} is a {type(got).__name__}, expected a numpy array", float("inf")
    if got.shape != expected.shape:
        return False, f"{what} has shape {got.shape}, expected {expected.shape}", float("inf")
    if dtype is not None and got.dtype != dtype:
        return False, f"{what} has dtype {got.dtype}, expected {np.dtype(dtype)}", float("inf")
    if not np.issubdtype(got.dtype, np.number) or np.issubdtype(got.dtype, np.complexfloating):
        return False, f"{what} has dtype {got.dtype}, expected real numbers", float("inf")
    if not np.all(np.isfinite(got)):
        return False, f"{what} holds {int(np.sum(~np.isfinite(got)))} non-finite values (nan or inf)", float("inf")
    if got.size == 0:
        return True, f"{what}: empty, as expected", 0.0
    errors = rel_error_array(got.astype(np.float64), expected.astype(np.float64), floor)
    worst = float(errors.max())
    if worst <= tol:
        return True, f"{what}: max relative error {worst:.1e}", worst
    message = f"{what} is off: max relative error {worst:.1e} (tolerance {tol:.0e})"
    if show_where:
        index = np.unravel_index(int(errors.argmax()), errors.shape)
        message += (f", worst at index {tuple(int(i) for i in index)}: got {got[index]:.6g}, "
                    f"expected {expected[index]:.6g}")
        message += f"; {int(np.sum(errors > tol))} of {errors.size} elements differ"
    return False, message, worst
