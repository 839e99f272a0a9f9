"""The layers grader against realistic buggy submissions.

Each submission is the reference solution with one bug put in by a text substitution (checked to have
happened). The targeted tests must lose points, every other layers test must keep full marks, and the feedback
must say what a student needs (which half is wrong, the case's category) and nothing it must not (input values).
"""
import re

import numpy as np
import pytest

from grader.cnn import check_layers

from grader.grade import grade
from grader.paths import solutions_dir
from grader.sandbox import Limits

SOLUTION = (solutions_dir("cnn") / "layers.py").read_text()
LIMITS = Limits(wall_seconds=30, call_seconds=5, cpu_seconds=30)
LAYERS_TESTS = {"1.1", "1.2", "1.3", "1.4", "1.5", "1.6", "1.7", "1.8", "1.9", "1.10", "1.11"}
BATCHNORM_TESTS = {"1.7", "1.8", "1.9", "1.10", "1.11"}


def mutate(source, function, old, new, count=1):
    """``source`` with ``old`` replaced by ``new`` in the code of ``function`` (after its docstring) only,
    ``count`` times (checked)."""
    start = source.index(f"\ndef {function}(")
    start = source.index('"""', source.index('"""', start) + 3) + 3
    end = source.find("\ndef ", start)
    end = len(source) if end < 0 else end
    body = source[start:end]
    assert body.count(old) == count, f"{old!r} occurs {body.count(old)} times in {function}, expected {count}"
    return source[:start] + body.replace(old, new) + source[end:]


def apply(edits, source=SOLUTION):
    for function, old, new in edits:
        source = mutate(source, function, old, new)
    return source


def grade_source(tmp_path, source, limits=LIMITS):
    folder = tmp_path / "submission"
    folder.mkdir(parents=True)
    (folder / "layers.py").write_text(source)
    tests, _ = grade(folder, parts=["layers"], limits=limits, log=lambda message: None)
    by_number = {t.number: t for t in tests}
    assert set(by_number) == LAYERS_TESTS
    return by_number


def assert_only(results, losing):
    """Every test in ``losing`` lost points; every other one kept full marks."""
    lost = {n for n, r in results.items() if r.score < r.max_score - 1e-9}
    report = "\n".join(f"{n} {r.name} {r.score:g}/{r.max_score:g}\n{r.output}" for n, r in sorted(results.items())
                       if n in lost ^ losing)
    assert lost == set(losing), report


# The two spatial functions call batchnorm_forward / batchnorm_backward, so bugs there reach them too.
STRIDE_SHAPE = '    S, P = conv_param["stride"], conv_param["pad"]\n'
BN_VAR = "var = (xc ** 2).mean(axis=0)"
RUNNING_MEAN = "running_mean = momentum * running_mean + (1 - momentum) * mu"
RUNNING_VAR = "running_var = momentum * running_var + (1 - momentum) * var"
AVG_BACKWARD_ADD = "+= dout[:, :, i, j, None, None] / (PH * PW)"

BUGS = {
    # Convolution.
    "conv backward ignores the stride when locating windows": (
        [("conv_backward_naive", STRIDE_SHAPE, '    S, P = 1, conv_param["pad"]\n')], {"1.2"}),
    "conv forward without bias": (
        [("conv_forward_naive", "    out += b.reshape(1, F, 1, 1)\n", "")], {"1.1"}),
    # Sizes computed for the padding it applied, so it returns a wrongly shaped output rather than crashing.
    "conv forward pads only the top and left": (
        [("conv_forward_naive", "((0, 0), (0, 0), (P, P), (P, P))", "((0, 0), (0, 0), (P, 0), (P, 0))"),
         ("conv_forward_naive", "H_out = 1 + (H + 2 * P - HH) // S", "H_out = 1 + (H + P - HH) // S"),
         ("conv_forward_naive", "W_out = 1 + (W + 2 * P - WW) // S", "W_out = 1 + (W + P - WW) // S")], {"1.1"}),
    "conv backward assigns into overlapping windows": (
        [("conv_backward_naive", "j * S:j * S + WW] += np.tensordot(d, w", "j * S:j * S + WW] = np.tensordot(d, w")],
        {"1.2"}),
    "conv forward flips the kernel (convolution, not cross-correlation)": (
        [("conv_forward_naive", "np.tensordot(window, w, axes", "np.tensordot(window, w[:, :, ::-1, ::-1], axes")],
        {"1.1"}),
    # Max pooling.
    "max pool backward overwrites across overlapping windows": (
        [("max_pool_backward_naive", "j * S + l] += dout[:, :, i, j]", "j * S + l] = dout[:, :, i, j]")], {"1.4"}),
    "max pool routes a tie to the last maximum": (
        [("max_pool_forward_naive", "argmax[:, :, i, j] = window.argmax(axis=2)",
          "argmax[:, :, i, j] = PH * PW - 1 - window[:, :, ::-1].argmax(axis=2)")], {"1.4"}),
    # Its argmax is wrong too; the backward, graded on the documented correct cache, keeps its points.
    "max pool forward uses the stride as the window size": (
        [("max_pool_forward_naive", "window = x[:, :, i * S:i * S + PH, j * S:j * S + PW].reshape(N, C, PH * PW)",
          "window = x[:, :, i * S:i * S + S, j * S:j * S + S].reshape(N, C, S * S)")], {"1.3"}),
    # Average pooling.
    "avg pool backward does not divide by the window area": (
        [("avg_pool_backward_naive", AVG_BACKWARD_ADD, "+= dout[:, :, i, j, None, None]")], {"1.6"}),
    # Batchnorm.
    # The backwards are right: graded on the documented correct cache, they keep their points.
    "batchnorm normalises with the unbiased variance": (
        [("batchnorm_forward", BN_VAR, "var = (xc ** 2).sum(axis=0) / (x.shape[0] - 1)")], {"1.7", "1.10"}),
    "batchnorm running statistics with the momentum swapped": (
        [("batchnorm_forward", RUNNING_MEAN, "running_mean = (1 - momentum) * running_mean + momentum * mu"),
         ("batchnorm_forward", RUNNING_VAR, "running_var = (1 - momentum) * running_var + momentum * var")],
        {"1.7", "1.10"}),
    "batchnorm running variance unbiased": (
        [("batchnorm_forward", RUNNING_VAR,
          "running_var = momentum * running_var + (1 - momentum) * var * x.shape[0] / (x.shape[0] - 1)")],
        {"1.7", "1.10"}),
    "batchnorm test mode updates the running statistics": (
        [("batchnorm_forward", "        cache = None\n",
          "        cache = None\n"
          "        running_mean = momentum * running_mean + (1 - momentum) * x.mean(axis=0)\n"
          "        running_var = momentum * running_var + (1 - momentum) * x.var(axis=0)\n")], {"1.7", "1.10"}),
    "batchnorm backward misses the path through the variance": (
        [("batchnorm_backward", "    dxc += 2.0 * xc * dvar / N\n", "")], {"1.8", "1.11"}),
    "batchnorm backward alt misses the xhat * dgamma term": (
        [("batchnorm_backward_alt", "(N * dout - dbeta - xhat * dgamma)", "(N * dout - dbeta)")], {"1.9"}),
    "spatial batchnorm reshapes without transposing": (
        [("spatial_batchnorm_forward", "x.transpose(0, 2, 3, 1).reshape(-1, C)", "x.reshape(-1, C)"),
         ("spatial_batchnorm_forward", "flat.reshape(N, H, W, C).transpose(0, 3, 1, 2)", "flat.reshape(N, C, H, W)"),
         ("spatial_batchnorm_backward", "dout.transpose(0, 2, 3, 1).reshape(-1, C)", "dout.reshape(-1, C)"),
         ("spatial_batchnorm_backward", "dflat.reshape(N, H, W, C).transpose(0, 3, 1, 2)",
          "dflat.reshape(N, C, H, W)")], {"1.10", "1.11"}),
    "batchnorm ignores the bn_param defaults": (
        [("batchnorm_forward", 'eps = bn_param.get("eps", 1e-5)', 'eps = bn_param["eps"]')], {"1.7", "1.10"}),
}


@pytest.mark.parametrize("bug", list(BUGS))
def test_a_bug_costs_its_tests_and_nothing_else(tmp_path, bug):
    edits, losing = BUGS[bug]
    results = grade_source(tmp_path, apply(edits))
    assert_only(results, losing)


def failing_lines(result):
    return [line for line in result.output.splitlines() if line.lstrip().startswith("FAIL")]


def test_missing_defaults_fail_only_the_cases_that_rely_on_them(tmp_path):
    edits, _ = BUGS["batchnorm ignores the bn_param defaults"]
    results = grade_source(tmp_path, apply(edits))
    for number in ("1.7", "1.10"):
        lines = results[number].output.splitlines()
        # The defaults case, the float32 case and the case leaving eps out pass no eps; every other case passes
        # it. They fail alike, so the failure is said once, with the three cases under it.
        failing, = failing_lines(results[number])
        assert failing.startswith("  FAIL 3 cases: KeyError") and "eps" in failing, results[number].output
        at = lines.index(failing)
        assert lines[at + 1:at + 4] == ["       bn_param with only a mode (the defaults)",
                                        "       eps left out (default 1e-05)",
                                        "       float32 input (float32 tolerance)"], results[number].output


def test_a_backward_only_bug_is_blamed_on_the_backward(tmp_path):
    edits, _ = BUGS["avg pool backward does not divide by the window area"]
    results = grade_source(tmp_path, apply(edits))
    output = results["1.6"].output
    assert results["1.6"].score == 0
    assert "forward is right" in output and "the backward is at fault" in output, output
    assert "dx is off: max relative error" in output
    assert results["1.5"].output.startswith("all ")


def test_a_forward_bug_its_backward_follows_says_fix_the_forward_first(tmp_path):
    # Sum instead of average in the forward, and a backward that is the exact gradient of that sum.
    source = apply([("avg_pool_forward_naive", ".mean(axis=(2, 3))", ".sum(axis=(2, 3))"),
                    ("avg_pool_backward_naive", AVG_BACKWARD_ADD, "+= dout[:, :, i, j, None, None]")])
    results = grade_source(tmp_path, source)
    assert_only(results, {"1.5", "1.6"})
    assert results["1.5"].score == 0 and results["1.6"].score == 0
    output = results["1.6"].output
    assert "agrees with the numerical gradient of your forward, but the forward is wrong" in output, output
    assert "fix the forward first" in output


def test_the_variance_path_bug_names_the_backward(tmp_path):
    edits, _ = BUGS["batchnorm backward misses the path through the variance"]
    results = grade_source(tmp_path, apply(edits))
    assert "the backward is at fault" in results["1.8"].output, results["1.8"].output
    assert "dx is off" in results["1.8"].output


NUMBER = re.compile(r"\d*\.\d+")
# "max relative error 3.2e-01 (tolerance 1e-07)", and test numbers ("your conv_forward_naive fails (test 1.1)")
ERROR_FORMAT = re.compile(r"\d\.\de[-+]\d+|\d+e[-+]\d+|test \d+\.\d+")


def test_hidden_cases_show_their_category_and_the_grader_shows_no_input_values(tmp_path):
    # A forward that is wrong on every case, and a backward that raises with its weights' shape in its message.
    source = apply([("conv_forward_naive", "    out += b.reshape(1, F, 1, 1)\n", ""),
                    ("conv_backward_naive", "    xp = np.pad(",
                     '    raise ValueError(f"w of shape {w.shape}")\n'
                     "    xp = np.pad(")])
    results = grade_source(tmp_path, source)
    assert_only(results, {"1.1", "1.2"})
    forward, backward = results["1.1"].output, results["1.2"].output
    # Every drawn case of the forward fails alike (and so does the case of its arguments, credited only beside a
    # passed case): the message once. The backward's messages differ (each carries its case's shape, as the
    # student's code wrote it), so each case shows with its category, and its kernel is the label's.
    assert "\n  FAIL 7 cases: out is off: max relative error" in forward, forward
    shown = re.findall(r"\n  FAIL hidden case \d \(stride \d, pad \d, [^)]*?\b(\d)x(\d) kernel[^)]*\): "
                       r"ValueError: w of shape \(\d+, \d+, (\d+), (\d+)\)", backward)
    assert len(shown) >= 2 and all((kh, kw) == (h, w) for kh, kw, h, w in shown), backward
    assert "worst at index" not in forward and "got " not in forward
    assert "line " in backward and "conv_backward_naive" in backward  # where it happened
    for output in (forward, backward):
        leftover = NUMBER.findall(ERROR_FORMAT.sub("", output))
        assert not leftover, f"decimal values in the feedback: {leftover}\n{output}"


def test_numpy_correlate_and_convolve_keep_full_marks(tmp_path):
    # The contract since 2026-11-30: numpy is allowed whole. A correct forward whose inner products go through
    # np.correlate, and np.convolve used on the side, lose nothing.
    source = mutate(SOLUTION, "conv_forward_naive",
                    "            out[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3]))\n",
                    "            for n in range(N):\n"
                    "                for f in range(F):\n"
                    "                    out[n, f, i, j] = np.correlate(window[n].ravel(), w[f].ravel())[0]\n"
                    "            np.convolve(np.ones(2), np.ones(3))\n")
    assert "np.correlate(" in source and "np.convolve(" in source
    results = grade_source(tmp_path, source)
    assert_only(results, set())


def test_torch_imported_at_the_top_zeroes_the_function_that_uses_it_not_its_backward(tmp_path):
    source = SOLUTION.replace("import numpy as np\n", "import numpy as np\nimport torch\n", 1)
    assert source != SOLUTION
    source = mutate(source, "avg_pool_forward_naive",
                    "    out = np.empty((N, C, H_out, W_out), dtype=x.dtype)\n",
                    "    out = torch.nn.functional.avg_pool2d(torch.from_numpy(x), (PH, PW), stride=S).numpy()\n"
                    "    return out, (x, pool_param)\n")
    results = grade_source(tmp_path, source, Limits(wall_seconds=60, call_seconds=10, cpu_seconds=60))
    # torch is out of the child's reach: the forward has no output, and its backward, which uses no torch, is
    # graded on the documented correct cache instead, keeping its points.
    assert_only(results, {"1.5"})
    assert results["1.5"].score == 0
    assert "torch" in results["1.5"].output and "may not use" in results["1.5"].output, results["1.5"].output


# One per graded function: an edit of one of its array arguments (or of the cache it is handed) in place.
IN_PLACE = {
    "1.1": [("conv_forward_naive", "    out += b.reshape(1, F, 1, 1)\n",
             "    b.shape = (1, F, 1, 1)\n    out += b\n    b += 0.0\n    b -= b\n")],
    "1.2": [("conv_backward_naive", "    db = dout.sum(axis=(0, 2, 3))\n",
             "    db = dout.sum(axis=(0, 2, 3))\n    dout[dout < 0] = 0.0\n")],
    "1.3": [("max_pool_forward_naive", "    out = np.empty(", "    x -= x.min()\n    out = np.empty(")],
    "1.4": [("max_pool_backward_naive", "    dx = np.zeros_like(x)\n", "    dx = x\n    dx[...] = 0.0\n")],
    "1.5": [("avg_pool_forward_naive", "    out = np.empty(", "    x -= x.mean()\n    out = np.empty(")],
    "1.6": [("avg_pool_backward_naive", "    dx = np.zeros_like(x)\n", "    dx = np.zeros_like(x)\n    dout /= 1.5\n")],
    "1.7": [("batchnorm_forward", "        xc = x - mu\n", "        x -= mu\n        xc = x\n")],
    "1.8": [("batchnorm_backward", "    dxhat = dout * gamma\n", "    dout *= gamma\n    dxhat = dout\n")],
    "1.9": [("batchnorm_backward_alt", "    dbeta = dout.sum(axis=0)\n",
             "    dbeta = dout.sum(axis=0)\n    dout *= N\n")],
    "1.10": [("spatial_batchnorm_forward", "    N, C, H, W = x.shape\n",
              "    N, C, H, W = x.shape\n    x -= x.mean(axis=(0, 2, 3), keepdims=True)\n")],
    "1.11": [("spatial_batchnorm_backward", "    N, C, H, W = dout.shape\n",
              "    N, C, H, W = dout.shape\n    dout -= 1e-3\n")],
}


@pytest.mark.parametrize("number", sorted(IN_PLACE, key=lambda n: int(n.split(".")[1])))
def test_an_in_place_edit_of_an_argument_loses_points(number):
    # Only the function's own family runs (one child, not five): the edit is confined to it.
    (function, *_), = IN_PLACE[number]
    family = next(f for names, f in check_layers.FAMILIES.items() if function in names)
    source = apply(IN_PLACE[number]).encode()
    steps = family(source, np.random.default_rng(int(number.split(".")[1])), LIMITS)
    next(steps).run({"layers.py": source}, LIMITS, forbidden=check_layers.FORBIDDEN_MODULES)
    outcome = next(steps)[function]
    assert outcome.fraction < 1
    failed = [c.message for c in outcome.cases if not c.ok]
    assert any(message.startswith(f"{function} changed ") and message.endswith("in place: compute on a copy")
               or message.startswith(f"{function} changed the cache it was given in place (") for message in failed), \
        failed


INTERNAL = ("builtin:", "kept_", "refcache", "__", "Traceback", "driver.py", "NotImplementedError:")


def test_stubs_and_bugs_read_in_the_students_terms(tmp_path):
    from grader.paths import assignments_dir
    stub = (assignments_dir("cnn") / "layers.py").read_text()
    for k, source in enumerate([stub, apply(BUGS["batchnorm normalises with the unbiased variance"][0]),
                                apply(IN_PLACE["1.7"])]):
        results = grade_source(tmp_path / str(k), source)
        for number, result in results.items():
            for word in INTERNAL:
                assert word not in result.output, f"{number}: {word!r} in\n{result.output}"
            if k == 0:
                assert result.output.startswith("0 of ") and "not implemented yet" in result.output, result.output
                assert result.output.count("\n") == 0, result.output   # said once, not once per case


def test_a_file_importing_a_given_module_keeps_full_marks(tmp_path):
    # The contract: a submitted file may import the handout's given modules; the grader supplies its copies.
    source = SOLUTION.replace("import numpy as np\n", "import numpy as np\nfrom gradcheck import rel_error\n", 1)
    assert source != SOLUTION
    assert_only(grade_source(tmp_path, source), set())
