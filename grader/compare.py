"""Compare an array a student produced with the expected one, and say in words what differs.

Shared by the grader and the handout's public tests (the release copies this file into the handout), so a
student sees the same verdicts locally as on Gradescope. numpy only.
"""
import numpy as np


def rel_error_array(got, expected, floor=1e-8):
    """Elementwise ``|got - expected| / max(floor, |got| + |expected|)``; ``gradcheck.rel_error`` with 1e-8."""
    return np.abs(got - expected) / np.maximum(floor, np.abs(got) + np.abs(expected))


def compare(what, got, expected, tol, dtype=np.float64, show_where=True, floor=1e-8, shape_words=None):
    """Check ``got`` against ``expected``: type, shape, dtype, finiteness, then max relative error <= tol.

    Returns ``(ok, message, error)``: ``message`` says what is off (or the error reached when ok), ``error``
    is the max relative error (``inf`` where the comparison could not be made). ``show_where=False`` is for
    hidden cases, whose inputs stay hidden: the message then holds no number the student's code made (no
    index, value, shape or count; the expected shape in ``shape_words``, e.g. "(N, F, H', W')"). ``floor``
    bounds the denominator from below: numerical gradients carry an absolute error near 1e-10, so comparisons
    with them use a floor of 1e-5, or a true gradient of 1e-7 would fail on round-off alone.
    """
    expected = np.asarray(expected)
    if not isinstance(got, np.ndarray):   # one of the few plain types a child's answer can be
        return False, f"{what} is a {type(got).__name__}, expected a numpy array", float("inf")
    if got.shape != expected.shape:
        if show_where:
            return False, f"{what} has shape {got.shape}, expected {expected.shape}", float("inf")
        return False, f"{what} has the wrong shape: expected {shape_words or 'the shape the contract gives'}", \
            float("inf")
    if dtype is not None and got.dtype != dtype:
        return False, f"{what} has {'dtype ' + str(got.dtype) if show_where else 'the wrong dtype'}, expected " \
                      f"{np.dtype(dtype)}", float("inf")
    if not np.issubdtype(got.dtype, np.number) or np.issubdtype(got.dtype, np.complexfloating):
        held = f"dtype {got.dtype} values" if show_where else "values"
        return False, f"{what} holds {held} that are not real numbers", float("inf")
    finite = np.isfinite(got)
    if not finite.all():
        count = f"{int(finite.size - finite.sum())} " if show_where else ""
        return False, f"{what} holds {count}non-finite values (nan or inf)", float("inf")
    if got.size == 0:
        return True, f"{what}: empty, as expected", 0.0
    errors = rel_error_array(got.astype(np.float64), expected.astype(np.float64), floor)
    worst = float(errors.max())
    if worst <= tol:
        return True, f"{what}: max relative error {worst:.1e}", worst
    if not show_where:
        return False, f"{what} is off: max relative error over the tolerance ({tol:.0e})", worst
    index = np.unravel_index(int(errors.argmax()), errors.shape)
    return False, (f"{what} is off: max relative error {worst:.1e} (tolerance {tol:.0e}), worst at index "
                   f"{tuple(int(i) for i in index)}: got {got[index]:.6g}, expected {expected[index]:.6g}; "
                   f"{int(np.sum(errors > tol))} of {errors.size} elements differ"), worst
