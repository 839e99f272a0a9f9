"""Submissions that attack the grader instead of solving the assignment.

Design principle 2: student code runs only in sandboxed children, and a crash, hang, exit, monkeypatch, forged
results file or anything else it does costs the student points, never the grader its run. Each test grades a
hostile layers.py (mostly the reference solution, or a solution with a known bug, plus a malicious prefix,
suffix or function body) and checks that:
- the run completes (in bounded time) and writes a valid results.json;
- the score is no higher than the honest score of the code underneath;
- where the attack aims at something (the grader's files, the machine, the student's feedback), it missed.

Several attacks only fail because the sandbox drops to an unprivileged uid, which it does when the grader runs
as root (as on Gradescope); those tests are skipped otherwise, where the attack would reach the test run itself.
"""
import base64
import io
import json
import os
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
import zipfile
from pathlib import Path

import numpy as np
import pytest

from grader.grade import grade_to_file
from grader.paths import REPO
from grader.sandbox import Limits
from test_grading_layers import LAYERS_TESTS, SOLUTION, mutate

LIMITS = Limits(wall_seconds=15, call_seconds=3, cpu_seconds=20)
FULL = 45
# Without its bias every conv forward case is wrong whatever the seed: 1.1 scores 0, everything else full.
BUGGY = mutate(SOLUTION, "conv_forward_naive", "    out += b.reshape(1, F, 1, 1)\n", "")
BUGGY_HONEST = FULL - 6
GRADED = ["conv_forward_naive", "conv_backward_naive", "max_pool_forward_naive", "max_pool_backward_naive",
          "avg_pool_forward_naive", "avg_pool_backward_naive", "batchnorm_forward", "batchnorm_backward",
          "batchnorm_backward_alt", "spatial_batchnorm_forward", "spatial_batchnorm_backward"]
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox drops privileges only when the grader is root")


def at_start(source, function, code):
    """``source`` with ``code`` put first in ``function``'s body (after its docstring)."""
    start = source.index(f"\ndef {function}(")
    end_of_docstring = source.index('"""', source.index('"""', start) + 3) + 3
    return source[:end_of_docstring] + "\n" + textwrap.indent(textwrap.dedent(code).strip("\n"), "    ") \
        + source[end_of_docstring:]


def grade_source(tmp_path, source, limits=LIMITS):
    """Grade ``source`` as layers.py; return ({number: TestResult}, results.json as a dict, seconds)."""
    folder = tmp_path / "submission"
    folder.mkdir()
    (folder / "layers.py").write_text(source)
    out = tmp_path / "out" / "results.json"
    started = time.monotonic()
    tests, _ = grade_to_file(folder, out, parts=["layers"], limits=limits, log=lambda message: None)
    elapsed = time.monotonic() - started
    data = valid_results(out)
    results = {t.number: t for t in tests}
    assert set(results) == LAYERS_TESTS
    # results.json rounds each test's score and the total to 4 decimals (weighted cases make long fractions)
    assert data["score"] == pytest.approx(sum(t.score for t in tests), abs=5e-5 * (len(tests) + 1))
    return results, data, elapsed


def valid_results(path):
    """results.json as Gradescope reads it: every layers test once, scores within bounds, a total."""
    data = json.loads(Path(path).read_text())
    tests = data["tests"]
    assert sorted(t["number"] for t in tests) == sorted(LAYERS_TESTS)
    assert sum(t["max_score"] for t in tests) == FULL
    for t in tests:
        assert 0 <= t["score"] <= t["max_score"], t
        assert isinstance(t["output"], str) and isinstance(t["name"], str)
    assert data["score"] == pytest.approx(sum(t["score"] for t in tests))
    assert isinstance(data["execution_time"], (int, float))
    return data


def total(results):
    return sum(r.score for r in results.values())


def lost(results):
    return {n for n, r in results.items() if r.score < r.max_score - 1e-9}


def all_output(results):
    return "\n".join(r.output for r in results.values())


def test_the_honest_score_of_the_buggy_solution(tmp_path):
    results, _, _ = grade_source(tmp_path, BUGGY)
    assert lost(results) == {"1.1"} and results["1.1"].score == 0
    assert total(results) == BUGGY_HONEST


# ------------------------------------------------------------------------------------------------------------
# Writing where it must not
# ------------------------------------------------------------------------------------------------------------

@as_root
def test_writes_into_the_graders_folders_change_nothing(tmp_path):
    token = uuid.uuid4().hex
    out = tmp_path / "out" / "results.json"
    out.parent.mkdir()
    forged_beside = out.parent / "forged.json"
    appended = REPO / "grader" / "paths.py"                       # appending a comment: harmless if it worked
    created = [REPO / "grader" / "cnn" / f"_tampered_{token}.py", REPO / "grader" / f"_tampered_{token}.json",
               *(Path(p) / f"_tampered_{token}.pth" for p in site.getsitepackages())]
    forged = json.dumps({"score": 1000, "tests": [{"number": "1.1", "score": 1000, "max_score": 6}]})
    prefix = f"""
import os as _os, sys as _sys
_TARGETS = {[str(out), str(forged_beside)]!r}
_CREATED = {[str(p) for p in created]!r}
for _path in _TARGETS + _CREATED:
    try:
        with open(_path, "w") as _f:
            _f.write({forged!r})
    except OSError:
        pass
try:
    with open({str(appended)!r}, "a") as _f:
        _f.write("\\n# TAMPERED {token}\\n")
except OSError:
    pass
# The sandbox's own files: its driver and task (read by nobody after this run, but it must not be able to).
for _path in (_sys.argv[0], _sys.argv[1]):
    try:
        with open(_path, "a") as _f:
            _f.write("# {token}")
    except OSError:
        pass
"""
    folder = tmp_path / "submission"
    folder.mkdir()
    (folder / "layers.py").write_text(prefix + SOLUTION)
    tests, _ = grade_to_file(folder, out, parts=["layers"], limits=LIMITS, log=lambda message: None)
    data = valid_results(out)
    assert sum(t.score for t in tests) == FULL            # the attempts failed quietly: the honest score
    assert data["score"] == FULL
    assert not forged_beside.exists()
    assert token not in appended.read_text()
    for path in created:
        assert not path.exists(), path


# ------------------------------------------------------------------------------------------------------------
# Monkeypatching the libraries the grader's verdicts come from
# ------------------------------------------------------------------------------------------------------------

PATCHES = {
    "numpy": """
import numpy as _np
import numpy.testing as _npt
_np.allclose = lambda *a, **k: True
_np.array_equal = lambda *a, **k: True
_np.isclose = lambda a, b, *r, **k: _np.ones(_np.broadcast(a, b).shape, dtype=bool)
_np.max = lambda *a, **k: 0.0
_np.amax = lambda *a, **k: 0.0
_np.linalg.norm = lambda *a, **k: 0.0
_npt.assert_allclose = lambda *a, **k: None
_npt.assert_array_equal = lambda *a, **k: None
_npt.assert_array_almost_equal = lambda *a, **k: None
""",
    "unittest and gradescope_utils": """
import unittest as _ut
for _name in dir(_ut.TestCase):
    if _name.startswith("assert"):
        setattr(_ut.TestCase, _name, lambda *a, **k: None)
_ut.TestResult.addFailure = lambda self, test, err: self.addSuccess(test)
try:
    from gradescope_utils.autograder_utils import decorators as _dec, json_test_runner as _jtr
    _dec.weight = lambda w: (lambda f: f)
    _jtr.JSONTestResult.addFailure = lambda self, test, err: self.addSuccess(test)
    _jtr.JSONTestResult.getScore = lambda self, test: 1000
except Exception:
    pass
""",
    "the driver": """
import __main__ as _driver
if hasattr(_driver, "Runner"):
    _send = _driver.Runner.send

    def _lying_send(self, message, *rest):
        message = dict(message, ok=True, passed=True, score=1000)
        message.pop("failure", None)
        _send(self, message, *rest)
    _driver.Runner.send = _lying_send
    _driver.failure = lambda error, folder: {"type": "passed"}
""",
}


@pytest.mark.parametrize("target", list(PATCHES))
def test_monkeypatches_in_the_child_do_not_lift_the_score(tmp_path, target):
    results, data, _ = grade_source(tmp_path, PATCHES[target] + BUGGY)
    assert results["1.1"].score == 0, all_output(results)
    # A lie can only cost the liar: a driver that answers "ok" for every exception fails the cases where a
    # documented error must be raised (batchnorm's unknown mode), and lifts nothing.
    expected_lost = {"1.1", "1.7", "1.10"} if target == "the driver" else {"1.1"}
    assert lost(results) == expected_lost, all_output(results)
    assert total(results) <= BUGGY_HONEST and data["score"] == pytest.approx(total(results), abs=1e-3)


# ------------------------------------------------------------------------------------------------------------
# Leaving early, hanging, exhausting the machine
# ------------------------------------------------------------------------------------------------------------

EXITS = {
    "os._exit": "import os\nos._exit(0)\n",
    "sys.exit": "import sys\nsys.exit(0)\n",
    "SystemExit caught nowhere": "raise SystemExit('done')\n",
    "SIGKILL to itself": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
}


@pytest.mark.parametrize("how", list(EXITS))
def test_leaving_at_import_scores_zero_and_the_run_goes_on(tmp_path, how):
    results, data, _ = grade_source(tmp_path, EXITS[how] + SOLUTION)
    assert total(results) == 0 and data["score"] == 0
    assert all("could not be imported" in r.output for r in results.values()), all_output(results)


def test_os_exit_in_one_function_costs_its_family_only(tmp_path):
    source = at_start(SOLUTION, "avg_pool_backward_naive", "import os\nos._exit(0)")
    results, _, _ = grade_source(tmp_path, source)
    assert results["1.6"].score == 0
    assert lost(results) <= {"1.5", "1.6"}, all_output(results)
    assert "exited" in results["1.6"].output, results["1.6"].output


def test_infinite_loops_everywhere_end_in_bounded_time(tmp_path):
    source = SOLUTION
    for function in GRADED:
        source = at_start(source, function, "while True:\n    pass")
    # One family also ignores signals and blocks in a sleep: the grader times each call from outside.
    source = at_start(source, "conv_forward_naive", "import signal, time\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)"
                                                    "\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(1000)")
    limits = Limits(wall_seconds=20, call_seconds=2, cpu_seconds=60)
    results, data, elapsed = grade_source(tmp_path, source, limits)
    assert total(results) == 0 and data["score"] == 0
    # A hung function costs one call budget, then is not called again: 11 functions, 2 s each, plus restarts.
    assert elapsed < 60, elapsed
    assert "timed out after 2 s" in results["1.1"].output, results["1.1"].output
    assert "timed out" in results["1.3"].output, results["1.3"].output


def test_a_memory_bomb_is_stopped_and_costs_its_family_only(tmp_path):
    source = at_start(SOLUTION, "avg_pool_backward_naive", "hog = np.ones(2 ** 28)  # 2 GB, every page touched")
    results, _, elapsed = grade_source(tmp_path, source)
    assert results["1.6"].score == 0
    assert lost(results) <= {"1.5", "1.6"}, all_output(results)
    assert "memory" in results["1.6"].output, results["1.6"].output
    assert elapsed < 60


def test_an_output_too_large_to_hand_back_costs_its_family_only(tmp_path):
    # About 60 MB of float64 is 80 MB of base64: over the child's file-size limit for its results.
    source = at_start(SOLUTION, "conv_forward_naive", "return np.ones((1000, 1000, 8)), None")
    results, _, _ = grade_source(tmp_path, source, Limits(wall_seconds=15, call_seconds=3, cpu_seconds=20,
                                                          file_mb=32))
    assert results["1.1"].score == 0
    assert lost(results) <= {"1.1", "1.2"}, all_output(results)


def world_writable_folder():
    folder = Path(tempfile.mkdtemp(prefix="convlab-pids-"))
    folder.chmod(0o1777)
    return folder


def alive(pid):
    """True if ``pid`` runs (a zombie waiting for its reaper counts as dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def assert_all_dead(folder):
    pids = [int(p.name) for p in folder.iterdir() if p.name.isdigit()]
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = [pid for pid in pids if alive(pid)]
    for pid in survivors:  # leave the machine clean even when the test fails
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    assert not survivors
    return pids


@as_root
def test_a_fork_bomb_at_import_is_contained(tmp_path):
    pids = world_writable_folder()
    # Bounded for safety: at most 2000 forks a process; the sandbox's process limit is what actually stops it.
    prefix = f"""
import os as _os, time as _time
for _ in range(2000):
    try:
        _pid = _os.fork()
    except OSError:
        continue
    if _pid == 0:
        try:
            open(_os.path.join({str(pids)!r}, str(_os.getpid())), "w").close()
        except OSError:
            pass
        for _ in range(2000):
            try:
                _os.fork()
            except OSError:
                pass
        _time.sleep(120)
        _os._exit(0)
"""
    try:
        started = time.monotonic()
        results, _, elapsed = grade_source(tmp_path, prefix + SOLUTION)
        assert total(results) <= FULL
        assert elapsed < 5 * LIMITS.wall_seconds + 20
        assert time.monotonic() - started < 120
        assert assert_all_dead(pids) == []   # the kernel refuses every fork (seccomp)
    finally:
        shutil.rmtree(pids, ignore_errors=True)


@as_root
def test_a_process_that_leaves_the_session_does_not_outlive_the_run(tmp_path):
    pids = world_writable_folder()
    prefix = f"""
import os as _os, time as _time
try:
    if _os.fork() == 0:
        _os.setsid()
        if _os.fork() == 0:
            open(_os.path.join({str(pids)!r}, str(_os.getpid())), "w").close()
            _time.sleep(300)
        _os._exit(0)
except PermissionError:   # the kernel refuses the fork (seccomp): the file imports all the same
    pass
_time.sleep(0.2)
"""
    try:
        results, _, _ = grade_source(tmp_path, prefix + SOLUTION)
        assert total(results) == FULL
        assert assert_all_dead(pids) == []
    finally:
        shutil.rmtree(pids, ignore_errors=True)


@as_root
@pytest.mark.parametrize("target", ["the grader (its parent)", "every process it may signal"])
def test_killing_other_processes_reaches_only_the_sandbox(tmp_path, target):
    call = "_os.kill(_os.getppid(), _signal.SIGKILL)" if "parent" in target else "_os.kill(-1, _signal.SIGKILL)"
    prefix = f"import os as _os, signal as _signal\ntry:\n    {call}\nexcept OSError:\n    pass\n"
    results, _, _ = grade_source(tmp_path, prefix + SOLUTION)  # this test process is still alive to check
    assert total(results) <= FULL


def test_fifty_megabytes_of_output_are_dropped_not_echoed(tmp_path):
    marker = f"PRINTED-{uuid.uuid4().hex}"
    prefix = f"""
import sys as _sys
print({marker!r})
_line = "x" * 1023 + "\\n"
for _ in range(50 * 1024):
    _sys.stdout.write(_line)
_sys.stderr.write({marker!r} * 1000)
"""
    results, data, elapsed = grade_source(tmp_path, prefix + SOLUTION)
    assert total(results) == FULL
    assert marker not in json.dumps(data)
    assert elapsed < 60


# ------------------------------------------------------------------------------------------------------------
# Reading what it must not, lying about what it returns, forging results
# ------------------------------------------------------------------------------------------------------------

@as_root
def test_reading_the_graders_secrets_fails_and_the_score_does_not_rise(tmp_path):
    secret = f"SECRET-{uuid.uuid4().hex}"
    secret_file = tmp_path / "grader-only.txt"     # like the grader's files on Gradescope: root's, mode 600
    secret_file.write_text(secret)
    secret_file.chmod(0o600)
    grader_file = REPO / "grader" / "cnn" / "check_layers.py"
    prefix = f"""
def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError as error:
        return type(error).__name__
_STOLEN = _read({str(secret_file)!r}) + " | " + _read({str(grader_file)!r})[:200]
"""
    source = at_start(prefix + SOLUTION, "conv_forward_naive", "raise ValueError(_STOLEN)")
    results, data, _ = grade_source(tmp_path, source)
    # The backward keeps its points: graded on the documented correct cache where the forward fails.
    assert results["1.1"].score == 0 and lost(results) == {"1.1"}
    assert secret not in json.dumps(data) and secret not in all_output(results)
    assert "ValueError: PermissionError" in results["1.1"].output, results["1.1"].output
    # Not asserted: the grader's own source. It is out of reach on Gradescope, where run_autograder makes the
    # source folder mode 700; in a checkout (world-readable) the child can read it like any other user.


LIAR_ARRAYS = """
class _Liar(np.ndarray):
    def __eq__(self, other):
        return np.ones(np.shape(self), dtype=bool)

    def __ne__(self, other):
        return np.zeros(np.shape(self), dtype=bool)

    def __sub__(self, other):
        return np.zeros(np.shape(self))

    __rsub__ = __sub__

    def __abs__(self):
        return np.zeros(np.shape(self))

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return np.zeros(np.broadcast_shapes(*(np.shape(i) for i in inputs)))


def _lie(fn):
    def wrapper(*args, **kwargs):
        result = fn(*args, **kwargs)
        if isinstance(result, tuple):
            return tuple(r.view(_Liar) if type(r) is np.ndarray else r for r in result)
        return result.view(_Liar) if type(result) is np.ndarray else result
    return wrapper


for _name in GRADED:
    globals()[_name] = _lie(globals()[_name])
"""

LIAR_OBJECT = """

class _AlwaysEqual:
    def __init__(self, value):
        self.value = value
        self.shape, self.dtype = value.shape, value.dtype

    def __eq__(self, other):
        return True

    def __array__(self, dtype=None, copy=None):
        return self.value

    def __getattr__(self, name):
        return getattr(self.value, name)


_avg = avg_pool_forward_naive


def avg_pool_forward_naive(x, pool_param):
    out, cache = _avg(x, pool_param)
    return _AlwaysEqual(out * 0), cache
"""


def test_arrays_that_lie_about_equality_are_judged_by_their_values(tmp_path):
    source = BUGGY + LIAR_ARRAYS.replace("GRADED", repr(GRADED))
    results, _, _ = grade_source(tmp_path, source)
    assert lost(results) == {"1.1"} and results["1.1"].score == 0, all_output(results)
    assert total(results) == BUGGY_HONEST


def test_an_object_pretending_to_be_an_array_is_not_plain_data(tmp_path):
    results, _, _ = grade_source(tmp_path, BUGGY + LIAR_OBJECT)
    assert results["1.5"].score == 0 and "not plain data" in results["1.5"].output, results["1.5"].output
    assert lost(results) <= {"1.1", "1.5", "1.6"}
    assert total(results) <= BUGGY_HONEST - 2


def npy_header(shape):
    """The base64 .npy header of a float64 array of ``shape``, with no data after it."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f8", "fortran_order": False, "shape": shape})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def forged_lines():
    """What a student could append to the driver's results file before any real record: claims of success for
    every id the layers checker uses, and lines meant to choke the reader."""
    ids = ["__import__", "__done__", "d", "f32", "drunning_mean", "drunning_var"]
    for i in range(12):
        ids += [f"{p}{i}" for p in ("f", "b", "t", "numeric", "running_mean", "running_var", "trunning_mean",
                                    "trunning_var", "batchnorm_backward", "batchnorm_backward_alt",
                                    "spatial_batchnorm_backward")]
    lines = [json.dumps({"id": i, "ok": True, "passed": True, "score": 1000, "value": None, "violations": []})
             for i in ids]
    lines += ['{"id": "f0", "ok": true, "value": ' + '{"__list__": [' * 5000 + "]}" * 5000 + "}",
              "not json at all", '{"id": ["f0"], "ok": true}',
              json.dumps({"id": "f1", "ok": True, "value": {"__ndarray__": npy_header((10 ** 15,))}}),
              json.dumps({"id": "f2", "ok": True, "value": {"__ndarray__": "not base64 at all!"}}),
              json.dumps({"id": "f4", "ok": True, "value": {"__ndarray__": ""}}),
              json.dumps({"id": "f3", "ok": True, "value": {"__int__": "9" * 100_000}})]
    return lines


def test_forged_results_lines_do_not_lift_the_score(tmp_path):
    prefix = f"""
import sys as _sys
with open(_sys.argv[3], "a") as _f:
    for _line in {forged_lines()!r}:
        _f.write(_line + "\\n")
"""
    results, data, _ = grade_source(tmp_path, prefix + BUGGY)
    assert total(results) <= BUGGY_HONEST and data["score"] <= BUGGY_HONEST
    # Forged lines are no results, and none of them makes the grader fail on the part.
    assert "internal error" not in all_output(results), all_output(results)


# ------------------------------------------------------------------------------------------------------------
# Submissions that are not submissions, through the command line
# ------------------------------------------------------------------------------------------------------------

def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "grader", "grade", *args, "--part", "layers"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("kind", ["corrupt zip", "empty folder", "folder holding only a corrupt zip",
                                  "zip of unrelated files"])
def test_unreadable_or_empty_submissions_score_zero_with_exit_status_0(tmp_path, kind):
    if kind == "corrupt zip":
        submission = tmp_path / "submission.zip"
        submission.write_bytes(b"PK\x03\x04" + os.urandom(2000))
    elif kind == "empty folder":
        submission = tmp_path / "submission"
        submission.mkdir()
    elif kind == "folder holding only a corrupt zip":
        submission = tmp_path / "submission"
        submission.mkdir()
        (submission / "upload.zip").write_bytes(b"this is not a zip")
    else:
        submission = tmp_path / "submission.zip"
        with zipfile.ZipFile(submission, "w") as archive:
            archive.writestr("notes.txt", "hello")
            archive.writestr("deep/er/layers.py", SOLUTION)  # two folders deep: not looked at
    out = tmp_path / "results.json"
    completed = run_cli(str(submission), "--out", str(out))
    assert completed.returncode == 0, completed.stderr
    data = valid_results(out)
    assert data["score"] == 0
    assert "layers.py" in data["output"] or all("layers.py" in t["output"] for t in data["tests"])
    if "corrupt" in kind:
        assert "could not be read" in data["output"], data["output"]


def test_a_submission_path_that_does_not_exist_is_a_usage_error(tmp_path):
    out = tmp_path / "results.json"
    completed = run_cli(str(tmp_path / "nowhere"), "--out", str(out))
    assert completed.returncode == 2
    assert "no such file or folder" in completed.stderr
    assert not out.exists()
