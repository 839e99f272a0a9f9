"""Issue 9: the sandbox against a determined student who has the grader's code in hand.

Most tests drive ``sandbox.run`` with a tiny module, so each attack class costs a second or two; the regrade test
grades two whole submissions, one of which tries to harm the other.
"""
import io
import json
import os
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from grader import sandbox
from grader.paths import REPO
from grader.regrade import regrade
from grader.sandbox import channel, confine, identity
from support import in_container, needs_cgroup

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox drops privileges only when the grader is root")
LIMITS = sandbox.Limits(wall_seconds=20, call_seconds=2)


def run_module(source, steps, inputs=None, limits=LIMITS, forbidden=()):
    task = {"module": "m", "steps": steps, "forbidden": list(forbidden)}
    return sandbox.run({"m.py": textwrap.dedent(source).encode()}, task, inputs or {}, limits)


# ------------------------------------------------------------------------------------------------------------
# 2. Only answers to calls the grader asked for count
# ------------------------------------------------------------------------------------------------------------

def test_answers_written_at_import_time_earn_nothing():
    # The student's code writes answers for every call before any is asked: framed into every open fd (the
    # reply pipe among them), as JSON lines into every file it was handed, and through the driver itself.
    source = """
    import json, os, struct, sys
    for fd in range(3, 256):
        for nonce in ["", "0" * 32]:
            data = json.dumps({"nonce": nonce, "ok": True, "value": {"__int__": "42"}}).encode()
            try:
                os.write(fd, struct.pack(">I", len(data)) + data)
            except OSError:
                pass
    for path in sys.argv[1:]:
        try:
            with open(path, "a") as out:
                for id in ("a", "b"):
                    out.write(json.dumps({"id": id, "ok": True, "value": {"__int__": "42"}}) + "\\n")
        except OSError:
            pass
    frame = sys._getframe()   # and through the driver's own reporting method, found up the stack
    while frame is not None:
        driver = frame.f_locals.get("self")
        for method in ("report", "send"):
            for id in ("a", "b"):
                try:
                    getattr(driver, method)({"id": id, "nonce": id, "ok": True, "value": {"__int__": "42"},
                                             "violations": []})
                except Exception:
                    pass
        frame = frame.f_back
    def f():
        return 7
    """
    result = run_module(source, [{"id": "a", "call": "f"}, {"id": "b", "call": "f"}])
    assert result.records["a"]["value"] == 7 and result.records["b"]["value"] == 7, result.records


def test_garbage_in_the_channel_costs_the_call_and_the_grader_goes_on():
    body = """
    for fd in range(3, 256):
        try:
            os.write(fd, b"\\xff\\xff\\xff\\xff" + b"x" * 100)
        except OSError:
            pass
    return 1
    """
    assert_costs_its_call_only(body, LIMITS, "not a result")


# ------------------------------------------------------------------------------------------------------------
# 4. The grader reads only bounded, regular data
# ------------------------------------------------------------------------------------------------------------

def npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def test_an_npy_that_is_really_a_zip_is_refused_before_anything_is_read():
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("x.npy", npy(np.zeros(3)))
    for data in (archive.getvalue(), b"PK\x03\x04" + npy(np.zeros(3))):
        with pytest.raises(channel.Malformed):
            channel.load_npy(data)


def test_an_npy_header_claiming_more_than_its_bytes_is_refused_before_allocation():
    with pytest.raises(channel.Malformed):
        channel.load_npy(npy(np.zeros(2))[:-16])   # the header of 2 float64, without their data
    big = io.BytesIO()
    np.lib.format.write_array_header_1_0(big, {"descr": "<f8", "fortran_order": False, "shape": (10 ** 15,)})
    with pytest.raises(channel.Malformed):
        channel.load_npy(big.getvalue() + b"\0" * 64)
    with pytest.raises(channel.Malformed):
        channel.load_npy(npy(np.array(["a"])))      # not numbers
    assert np.array_equal(channel.load_npy(npy(np.arange(6.0).reshape(2, 3))), np.arange(6.0).reshape(2, 3))


def test_a_frame_over_the_cap_or_with_too_many_items_is_refused():
    buffer = bytearray(channel.HEADER.pack(100 << 20) + b"[")
    with pytest.raises(channel.Malformed):
        channel.frames(buffer, 64 << 20)
    with pytest.raises(channel.Malformed):
        channel.parse(b'{"v": [' + b"[0,0]," * 60_000 + b"0]}")
    with pytest.raises(channel.Malformed):
        channel.decode(json.loads('{"__list__": [' * 40 + "]}" * 40))


def assert_costs_its_call_only(body, limits, message):
    """A function ``f`` with ``body`` fails with ``message``; the function called after it still answers."""
    source = "import os, time\nimport numpy as np\ndef f():\n" + textwrap.indent(textwrap.dedent(body), "    ") \
        + "\ndef g():\n    return 3\n"
    result = run_module(source, [{"id": "a", "call": "f"}, {"id": "b", "call": "g"}], limits=limits)
    assert message in result.records["a"]["error"], result.records["a"]
    assert result.records["b"]["value"] == 3, result.records["b"]


def test_a_result_too_large_to_hand_back_costs_its_call_only():
    assert_costs_its_call_only("return np.ones((1000, 1000, 8))",
                               sandbox.Limits(wall_seconds=20, call_seconds=5, file_mb=32), "larger than 32 MB")


def test_a_fifo_in_place_of_the_graders_files_blocks_nothing(tmp_path):
    # Every path the child was given (its argv) and every file in its folder is replaced by a FIFO.
    source = """
    import os, sys
    for path in sys.argv[1:3] + os.listdir("."):
        try:
            os.unlink(path)
        except OSError:
            pass
        try:
            os.mkfifo(path)
        except OSError:
            pass
    def f():
        return 5
    """
    started = time.monotonic()
    result = run_module(source, [{"id": "a", "call": "f"}])
    assert time.monotonic() - started < 15
    assert result.records["a"]["value"] == 5


# ------------------------------------------------------------------------------------------------------------
# 5. Time is enforced from outside; a crash costs its own function
# ------------------------------------------------------------------------------------------------------------

def test_a_function_blocking_with_signals_ignored_costs_its_budget_and_its_siblings_still_run():
    source = """
    import signal, time
    for s in (signal.SIGALRM, signal.SIGTERM, signal.SIGINT, signal.SIGVTALRM):
        signal.signal(s, signal.SIG_IGN)
    def hang():
        time.sleep(1000)
    def crash():
        import os
        os._exit(3)
    def fine(x):
        return x + 1
    """
    steps = [{"id": "h", "call": "hang"}, {"id": "a", "call": "fine", "args": [{"v": 1}]},
             {"id": "c", "call": "crash"}, {"id": "b", "call": "fine", "args": [{"v": 2}]},
             {"id": "h2", "call": "hang"}]
    started = time.monotonic()
    result = run_module(source, steps, limits=sandbox.Limits(wall_seconds=30, call_seconds=1))
    assert time.monotonic() - started < 10
    records = result.records
    assert records["h"]["error"] == "timed out after 1 s"
    assert records["a"]["value"] == 2 and records["b"]["value"] == 3
    assert "exited" in records["c"]["error"]
    assert records["h2"]["error"] == "not run: hang timed out on an earlier call"


def test_a_step_that_needs_a_lost_result_names_the_students_class_not_a_builtin():
    source = """
    class Net:
        def __init__(self):
            raise ValueError("no")
    """
    steps = [{"call": "builtin:construct", "args": [{"fn": "Net"}], "save": "m"},
             {"id": "d", "call": "builtin:describe", "args": [{"var": "m"}]}]
    error = run_module(source, steps).records["d"]["error"]
    assert "Net" in error and "builtin" not in error, error


# ------------------------------------------------------------------------------------------------------------
# 6. Student text: valid, one line, no escapes, numbers masked, places from the traceback
# ------------------------------------------------------------------------------------------------------------

def test_exception_text_is_valid_utf8_without_escapes_and_its_place_comes_from_the_traceback():
    source = """
    def f():
        raise ValueError("\\ud800 \\x1b[31mred\\x1b[0m\\nnext (line 1234 of m.py, in secret_99) timed out after 0.5 s")
    """
    error = run_module(source, [{"id": "a", "call": "f"}]).records["a"]["error"]
    error.encode("utf-8")   # no lone surrogate left
    assert "\x1b" not in error and "\n" not in error and "1234" not in error and "0.5" not in error, error
    assert error.endswith("(line 3 of m.py, in f)"), error


def test_a_syntax_error_shows_its_real_line():
    result = run_module("x = 1\n\ndef f(:\n    pass\n", [])
    assert result.import_error() == "SyntaxError: invalid syntax (line 3 of m.py, in <module>)", result.import_error()


def test_a_forged_location_outside_the_file_is_not_shown():
    files = {"m.py": b"a = 1\nb = 2\n"}
    assert channel.location({"file": "m.py", "line": 2, "function": "g"}, files) == " (line 2 of m.py)"
    assert channel.location({"file": "m.py", "line": 31415, "function": "<module>"}, files) == ""
    assert channel.location({"file": "other.py", "line": 1}, files) == ""


# ------------------------------------------------------------------------------------------------------------
# 3. Nothing outlives a child; no two share a uid
# ------------------------------------------------------------------------------------------------------------

@as_root
def test_a_process_that_fights_the_sweep_is_never_started_and_its_files_everywhere_are_removed(tmp_path):
    marker = f"convlab-left-{os.getpid()}"
    source = f"""
    import os, signal, time
    home = os.getcwd()
    for _ in range(3000):
        os.mkdir("d")
        os.chdir("d")
    os.chdir(home)
    for folder in ("/tmp", "/dev/shm"):
        try:
            with open(os.path.join(folder, "{marker}"), "wb") as f:
                f.write(b"x" * 1000)
        except PermissionError:
            pass
    try:
        forked = os.fork()
    except PermissionError:
        forked = None
    if forked == 0:
        os.setsid()
        for s in range(1, 32):
            try:
                signal.signal(s, signal.SIG_IGN)
            except (OSError, ValueError):
                pass
        while True:
            time.sleep(0.001)
    def f():
        return [os.getuid(), forked is None]
    """
    first = run_module(source, [{"id": "a", "call": "f"}])
    uid, refused = first.records["a"]["value"]
    assert refused
    assert identity.processes_of(uid) == []
    assert not Path("/tmp", marker).exists() and not Path("/dev/shm", marker).exists()
    second = run_module(source, [{"id": "a", "call": "f"}])
    assert second.records["a"]["value"][0] != uid


@as_root
def test_memory_in_dev_shm_is_refused_or_counts_against_the_child():
    body = """
    for i in range(40):
        with open(f"/dev/shm/convlab-hog-{os.getuid()}-{i}", "wb") as out:
            out.write(b"x" * (16 << 20))
    time.sleep(5)
    """
    refused = "PermissionError" if confine.landlock_abi() else "more than 300 MB"
    assert_costs_its_call_only(body, sandbox.Limits(wall_seconds=30, call_seconds=10, memory_mb=300), refused)
    assert not [p for p in os.listdir("/dev/shm") if p.startswith("convlab-hog-")]


@as_root
def test_in_a_regrade_one_submission_cannot_harm_the_next(tmp_path):
    export = tmp_path / "export"
    solution = (REPO / "solutions" / "cnn" / "layers.py").read_text()
    stolen = tmp_path / "stolen"
    stolen.mkdir()
    stolen.chmod(0o1777)
    # The first submission leaves a process that waits for the next grade's children, kills them and copies
    # their files.
    attacker = textwrap.dedent(f"""
    import os, signal, shutil, time
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            deadline = time.time() + 120
            while time.time() < deadline:
                try:
                    os.kill(-1, signal.SIGKILL)
                except OSError:
                    pass
                for pid in os.listdir("/proc"):
                    try:
                        cwd = os.readlink(f"/proc/{{pid}}/cwd")
                        shutil.copytree(os.path.join(cwd, "..", "student"), "{stolen}/" + pid)
                    except OSError:
                        pass
                time.sleep(0.01)
        os._exit(0)
    """) + solution
    for name, source in (("submission_1", attacker), ("submission_2", solution)):
        (export / name).mkdir(parents=True)
        (export / name / "layers.py").write_text(source)
    rows = regrade(export, tmp_path / "out")
    scores = {row["submission"]: row["score"] for row in rows}
    assert scores["submission_2"] == 45, scores   # layers alone: the rest is not submitted
    assert list(stolen.iterdir()) == []


# ------------------------------------------------------------------------------------------------------------
# 1. The forbidden libraries are out of reach of the layers child
# ------------------------------------------------------------------------------------------------------------

@as_root
@pytest.mark.parametrize("how", ["import", "importlib after removing the placeholder", "exec", "file read"])
def test_torch_cannot_be_reached_from_a_child_that_may_not_use_it(how):
    code = {
        "import": "import torch\nreturn torch.ones(2).numpy()",
        "importlib after removing the placeholder": (
            "import sys, importlib\nsys.meta_path[:] = [f for f in sys.meta_path if 'Placeholder' not in "
            "type(f).__name__]\nfor k in [k for k in sys.modules if k.startswith('torch')]:\n    del sys.modules[k]\n"
            "return importlib.import_module('torch').ones(2).numpy()"),
        "exec": "ns = {}\nexec('import torch as t', ns)\nreturn ns['t'].ones(2).numpy()",
        "file read": f"return len(open({str(Path(__import__('torch').__file__))!r}, 'rb').read(10))",
    }[how]
    source = "def f():\n" + textwrap.indent(code, "    ") + "\n"
    result = sandbox.run({"m.py": source.encode()}, {"module": "m", "steps": [{"id": "a", "call": "f"}],
                                                     "forbidden": ["torch"]}, {}, LIMITS)
    assert not result.records["a"]["ok"], result.records["a"]
    # The same code where torch is allowed (the ResNet child) works: the mechanism is the group, not luck.
    if how != "importlib after removing the placeholder":
        allowed = sandbox.run({"m.py": source.encode()}, {"module": "m", "steps": [{"id": "a", "call": "f"}]},
                              {}, sandbox.Limits(wall_seconds=60, call_seconds=30))
        assert allowed.records["a"]["ok"], allowed.records["a"]


def test_numpy_correlate_is_reported_even_when_taken_from_the_tripwire_or_numpy_internals():
    source = """
    import numpy as np
    def f(a):
        # The original, wherever it might still be: the tripwire's defaults and closure, numpy's internals.
        fn = np.correlate
        found = (fn.__defaults__ or ()) + tuple(c.cell_contents for c in (fn.__closure__ or ()))
        found += (np._core.multiarray.correlate2, np._core._multiarray_umath.correlate)
        for candidate in found:
            if getattr(candidate, "__name__", "") in ("correlate", "correlate2"):
                fn = candidate
        return fn(a, a)
    """
    result = run_module(source, [{"id": "a", "call": "f", "args": [{"in": "a"}]}], {"a": np.arange(4.0)},
                        forbidden=["torch"])
    record = result.records["a"]
    assert record["violations"] == ["calls numpy.correlate"], record
    assert np.allclose(record["value"], [14.0]), record   # the tripwire still computes its value


def test_the_cli_writes_valid_results_for_hostile_text(tmp_path):
    submission = tmp_path / "submission"
    submission.mkdir()
    (submission / "quiz.py").write_text('raise ValueError("\\ud800\\x1b[2J" * 3)\n')
    out = tmp_path / "results.json"
    completed = subprocess.run([sys.executable, "-m", "grader", "grade", str(submission), "--part", "quiz",
                                "--out", str(out)], cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
                               capture_output=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    data = json.loads(out.read_bytes().decode("utf-8"))
    assert "\x1b" not in json.dumps(data, ensure_ascii=False) and b"\x1b" not in completed.stdout
    assert all("\\ud800" not in json.dumps(t) for t in data["tests"])
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".results-")]


def test_the_ta_review_lists_introspection_and_nothing_for_the_solutions():
    from grader.review import review

    source = ("import gc, sys, ctypes\nimport importlib as il\n"
              "def f():\n    exec('x = 1')\n    return sys._getframe(1).f_back, gc.get_objects(), sys.modules\n")
    assert review({"layers.py": source.encode(), "notes.txt": b"exec"}) == {
        "layers.py": ["ctypes", "exec", "frame objects", "gc", "importlib", "sys._getframe", "sys.modules"]}
    solutions = {p.name: p.read_bytes() for p in (REPO / "solutions" / "cnn").glob("*.py")}
    assert review(solutions) == {}


# ------------------------------------------------------------------------------------------------------------
# 7. Any value a student returns gets a verdict for its case
# ------------------------------------------------------------------------------------------------------------

def test_hostile_quiz_values_give_verdicts_not_an_internal_error(tmp_path):
    from grader.grade import grade

    solution = (REPO / "solutions" / "cnn" / "quiz.py").read_text()
    # Every function of the quiz returns, by turns, a huge int, NaN, a wrong type or a deep structure in its fields.
    hostile = solution + textwrap.dedent("""
    import itertools as _it
    _values = _it.cycle([10 ** 400, float("nan"), "many", [[[[[1]]]]], -10 ** 400, float("inf")])
    def _poison(fn):
        def wrapper(*args, **kwargs):
            out = fn(*args, **kwargs)
            if isinstance(out, dict):
                return {k: next(_values) for k in out}
            if isinstance(out, list):
                return [{k: next(_values) for k in row} for row in out]
            return next(_values)
        return wrapper
    for _name in ("conv_output_size", "pool_output_size", "conv_layer", "pool_layer", "fc_layer", "alexnet_table"):
        globals()[_name] = _poison(globals()[_name])
    """)
    folder = tmp_path / "submission"
    folder.mkdir()
    (folder / "quiz.py").write_text(hostile)
    logged = []
    tests, _ = grade(folder, parts=["quiz"], log=logged.append)
    assert not [m for m in logged if "internal error" in m], logged
    assert sum(t.score for t in tests) == 0
    assert all("internal error" not in t.output and "cases passed" in t.output for t in tests), \
        [t.output for t in tests]


@needs_cgroup
def test_a_child_killed_by_the_containers_oom_killer_is_not_the_students_fault():
    # The "container" (300 MB) runs out before the grader's own watcher (4 GB) would act.
    stdout = in_container(300, """
        import json
        from grader import sandbox
        source = b"import numpy as np\\ndef f():\\n    return float(np.ones(2 ** 27).sum())\\ndef g():\\n    return 1\\n"
        result = sandbox.run({"m.py": source}, {"module": "m", "steps": [{"id": "a", "call": "f"},
                             {"id": "b", "call": "f"}, {"id": "c", "call": "g"}]}, {},
                             sandbox.Limits(wall_seconds=60, call_seconds=30, memory_mb=4000))
        print(json.dumps({k: r.get("error") or r.get("value") for k, r in result.records.items()}))
        """)
    records = json.loads(stdout.splitlines()[-1])
    assert "the grading machine ran out of memory: tell your TA" in records["a"], records
    assert records["c"] == 1


def test_results_are_not_written_through_a_link_planted_at_a_guessable_name(tmp_path):
    from grader.grade import grade_to_file

    submission = tmp_path / "submission"
    submission.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out" / "results.json"
    out.parent.mkdir()
    for guess in (f"{out}.tmp{os.getpid()}", f"{out}.tmp", f"{out}.part"):   # names a grader might pick
        os.symlink(victim, guess)
    grade_to_file(submission, out, parts=["quiz"], log=lambda message: None)
    assert victim.read_text() == "precious"
    assert json.loads(out.read_text())["score"] == 0


def test_a_submission_hanging_in_every_function_of_every_file_grades_in_under_a_minute(tmp_path):
    import ast

    from grader.grade import grade

    folder = tmp_path / "submission"
    folder.mkdir()
    for name in ("layers.py", "initializers.py", "resnet.py", "quiz.py"):
        source = (REPO / "solutions" / "cnn" / name).read_text()
        lines = source.splitlines(keepends=True)
        firsts = [node.body[0] for node in ast.walk(ast.parse(source)) if isinstance(node, ast.FunctionDef)]
        for first in sorted(firsts, key=lambda n: n.lineno, reverse=True):
            pad = " " * first.col_offset   # sleeps in C with every signal ignored
            lines.insert(first.lineno - 1, f"{pad}import signal as _s, time as _t\n{pad}for _n in (_s.SIGALRM, "
                                           f"_s.SIGTERM, _s.SIGINT):\n{pad}    _s.signal(_n, _s.SIG_IGN)\n"
                                           f"{pad}_t.sleep(10 ** 6)\n")
        (folder / name).write_text("".join(lines))
    started = time.monotonic()
    tests, _ = grade(folder, log=lambda message: None)
    elapsed = time.monotonic() - started
    assert elapsed < 60, elapsed
    assert sum(t.score for t in tests) == 0 and len(tests) > 20
    assert any("timed out" in t.output for t in tests)
