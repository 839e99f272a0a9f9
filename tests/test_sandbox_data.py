"""What crosses between the grader and a child, and what reaches a student, a TA's terminal or results.json.

One test per attack class of issue 14's data half: nothing the child says about itself decides a point (arrays
arrive with the step that needs them, an edit in place is caught by the buffer, no violation report travels
from the child), every parse and verdict of student material is total, and every string from a submission is
clean and bounded before anyone reads it.
"""
import json
import re
import textwrap
import tracemalloc
import zipfile

import numpy as np
import pytest
import torch

from grader import sandbox
from grader.cnn import check_layers
from grader.cnn.check_milestone import inspect
from grader.cnn.rules import MAX_SOURCE_BYTES
from grader.grade import grade, grade_to_file
from grader.paths import solutions_dir
from grader.plan import static_violations
from grader.text import parse_source
from grader.sandbox import channel
from grader.results import table
from support import solution
from test_grading_layers import LIMITS, SOLUTION, apply, grade_source

SOLUTIONS = solutions_dir("cnn")


def run_module(source, steps, inputs):
    return sandbox.run({"m.py": textwrap.dedent(source).encode()}, {"module": "m", "steps": steps}, inputs,
                       sandbox.Limits(wall_seconds=30, call_seconds=10))


# ------------------------------------------------------------------------------------------------------------
# Nothing the child says about itself decides a point
# ------------------------------------------------------------------------------------------------------------

def test_a_step_cannot_read_the_arrays_of_later_steps():
    # The first call looks for the second call's array everywhere a file of the plan's inputs could be.
    source = """
    import glob, os, sys
    import numpy as np

    def peek(x):
        for path in sys.argv[1:] + glob.glob(os.path.join(os.path.dirname(sys.argv[0]), "**"), recursive=True):
            try:
                with np.load(path) as data:
                    return np.array(data["a1"])
            except Exception:
                pass
        return None

    def later(y):
        return y.sum()
    """
    secret = np.arange(5.0) + 0.25
    result = run_module(source, [{"id": "peek", "call": "peek", "args": [{"in": "a0"}]},
                                 {"id": "later", "call": "later", "args": [{"in": "a1"}]}],
                        {"a0": np.zeros(3), "a1": secret})
    assert result.records["peek"] == {"ok": True, "value": None, "error": "", "seconds": pytest.approx(0, abs=2)}
    assert result.records["later"]["value"] == pytest.approx(secret.sum())   # it was sent, with its own step


@pytest.mark.parametrize("family", check_layers.FAMILIES.values(), ids=lambda f: f.__qualname__.split(".")[0])
def test_a_reference_cache_is_sent_only_after_every_graded_forward_on_its_input(family):
    # Each layers plan, as it is sent: a documented correct cache (batchnorm's xc, std, xhat; max pooling's
    # argmax) for an x must not reach the child before every forward on that x whose value is graded.
    plan = next(family(SOLUTION.encode(), np.random.default_rng(3), LIMITS))
    calls = {}   # x's bytes -> indices of the graded forward calls on it
    for index, step in enumerate(plan.steps):
        if step["call"].endswith(("_forward", "_forward_naive")) and not step.get("id", "").startswith("kept_"):
            calls.setdefault(plan.inputs[step["args"][0]["in"]].tobytes(), []).append(index)
    caches = [(index, step) for index, step in enumerate(plan.steps) if step.get("save", "").startswith("refcache")]
    assert len(caches) >= 3
    for index, step in caches:
        case = step["save"][len("refcache"):]
        x = plan.inputs[next(s for s in plan.steps if s.get("id") == f"f{case}")["args"][0]["in"]]
        assert max(calls[x.tobytes()]) < index, (step["save"], calls[x.tobytes()], index)


def test_an_edit_in_place_is_caught_even_when_the_function_restores_its_input():
    # x *= 2 ... x /= 2 leaves x bit for bit as it was: reading x back afterwards cannot see the edit, and the
    # graded cases (each on its own copy) all pass. The read-only array the grader hands over refuses the write.
    source = apply([("batchnorm_forward", "        mu = x.mean(axis=0)\n",
                     "        x *= 2.0\n        mu = x.mean(axis=0) / 2.0\n        x /= 2.0\n")])
    steps = check_layers._batchnorm(False)(source.encode(), np.random.default_rng(4), LIMITS)
    next(steps).run({"layers.py": source.encode()}, LIMITS, forbidden=check_layers.FORBIDDEN_MODULES)
    outcome = next(steps)["batchnorm_forward"]
    failed = [c.message for c in outcome.cases if not c.ok]
    assert failed == ["batchnorm_forward changed its input x in place: compute on a copy"], failed
    assert sum(c.ok for c in outcome.cases) == len(outcome.cases) - 1


def test_a_backward_that_edits_its_cache_is_told_which_array():
    source = apply([("conv_backward_naive", "    return dx, dw, db\n", "    w[...] = 0.0\n    return dx, dw, db\n")])
    steps = check_layers._conv(source.encode(), np.random.default_rng(5), LIMITS)
    next(steps).run({"layers.py": source.encode()}, LIMITS, forbidden=check_layers.FORBIDDEN_MODULES)
    failed = [c.message for c in next(steps)["conv_backward_naive"].cases if not c.ok]
    assert failed == ["conv_backward_naive changed the cache it was given in place (w): the cache belongs to the "
                      "forward pass; compute on a copy"], failed


FORGE = """
import json as _json, os as _os, struct as _struct, sys as _sys
_head = _json.dumps({"violation": "imports torch", "arrays": []}).encode()
_frame = _struct.pack(">I", len(_head)) + _head   # well formed, as driver.py's pack makes a frame
_os.write(int(_sys.argv[3]), _struct.pack(">I", len(_frame)) + _frame)
"""


def test_a_forged_violation_report_changes_nothing(tmp_path):
    # The child writes a violation record into the reply pipe (argv[3]) itself at import: no such record is read
    # any more (what a file may use is decided from its source), so the honest solution keeps full marks.
    results = grade_source(tmp_path, FORGE + SOLUTION)
    assert all(r.score == r.max_score for r in results.values()), {n: r.output for n, r in results.items()}


# ------------------------------------------------------------------------------------------------------------
# Total: no submission ends a part or the run
# ------------------------------------------------------------------------------------------------------------

def test_source_too_deep_for_the_parser_costs_its_part_not_the_run(tmp_path):
    (tmp_path / "quiz.py").write_text((SOLUTIONS / "quiz.py").read_text() + "\nX = " + "+".join(["1"] * 6000) + "\n")
    (tmp_path / "layers.py").write_text("import numpy as np\nY = " + "+".join(["1"] * 6000) + "\n")
    tests, extra = grade_to_file(tmp_path, tmp_path / "out" / "results.json", parts=["quiz"],
                                 log=lambda message: None)
    assert tests and all(t.score == 0 for t in tests)
    assert all("could not be imported" in t.output for t in tests), [t.output for t in tests]
    assert extra["extra_data"]["review"] == {}


def test_forbidden_uses_are_found_through_helpers_and_said_in_a_bounded_sentence():
    source = textwrap.dedent("""
        import scipy as sp
        from torch.nn import functional as F
        def a():
            return sp.signal.correlate2d(1, 2)
        def b():
            return F.conv2d
        def c():
            return a() + b()
        def d():
            return c()
        def e(x):
            return x.torch.zeros   # an attribute named torch, not the module
        """).encode()
    assert static_violations(source, ("torch", "scipy.signal")) == {
        "a": "uses scipy.signal", "b": "uses torch", "c": "calls a, which uses scipy.signal",
        "d": "calls c, which calls a, which uses scipy.signal"}
    # A chain of 3,000 helpers: each reason names three and counts the rest (a reason spelling the whole chain
    # made the reasons' text grow with the square of its length), and every function of the chain is caught.
    chain = "import torch\n" + "".join(f"def f{i}():\n    return f{i + 1}()\n" for i in range(3000)) \
        + "def f3000():\n    return torch.zeros(1)\n"
    reasons = static_violations(chain.encode(), ("torch",))
    assert len(reasons) == 3001
    assert reasons["f0"] == ("calls f1, which calls f2, which calls f3 (and through 2997 more functions), which "
                             "uses torch")
    assert reasons["f2998"] == "calls f2999, which calls f3000, which uses torch"


def test_a_dotted_name_too_long_to_parse_safely_is_not_parsed_in_the_grader():
    # Python's parser holds an import's dotted name rebuilt at every dot: 50,000 parts took 2.7 GB of the
    # grading process. Past 32 parts (spaces and line continuations between them count too) the grader does not
    # parse the file; the child that imports it is the one held to a memory limit.
    for joined in (".", " . ", ".\\\n    "):
        assert parse_source("import " + joined.join(["a"] * 32) + "\n") is not None
        assert parse_source(("import " + joined.join(["a"] * 33) + "\n").encode()) is None
    assert parse_source(b"import " + b".".join([b"a"] * 50_000) + b"\n") is None
    assert parse_source("x = self.layer1[0].conv1.weight.grad\n") is not None


def test_a_zero_size_weight_fails_a_case_not_the_resnet_part(tmp_path):
    source = (SOLUTIONS / "resnet.py").read_text()
    start = source.index("class ResNet(")
    end = source.index("\n", source.index("super().__init__()", start)) + 1
    source = source[:end] + ('        self.ghost = nn.Module()\n'
                             '        self.ghost.register_buffer("weight", torch.zeros(0, 3, 3, 3))\n') + source[end:]
    (tmp_path / "resnet.py").write_text(source)
    tests = {t.number: t for t in grade(tmp_path, parts=["resnet"], log=lambda message: None)[0]}
    assert all("internal error" not in t.output for t in tests.values()), {n: t.output for n, t in tests.items()}
    assert tests["3.1"].score == tests["3.1"].max_score
    assert "ghost.weight holds no values" in tests["3.5"].output, tests["3.5"].output


def test_a_checkpoint_entry_of_absurd_shape_is_the_files_fault(tmp_path):
    state = solution("resnet").resnet20().state_dict()
    state["conv1.weight"] = torch.zeros(1).expand(100_000, 100_000, 3, 3)   # 90 GB as a tensor, 4 bytes stored
    torch.save({"arch": "resnet20", "num_classes": 10, "state_dict": state}, tmp_path / "milestone.pt")
    arch, problem = inspect((tmp_path / "milestone.pt").read_bytes(), sandbox.Limits())
    assert (arch, problem) == ("resnet20", "conv1.weight has shape (100000, 100000, 3, 3), but resnet20 needs "
                                           "(16, 3, 3, 3)")


# ------------------------------------------------------------------------------------------------------------
# Clean and bounded text
# ------------------------------------------------------------------------------------------------------------

def test_a_huge_string_is_cut_before_any_work_per_character():
    huge = "\u4e00" * 3_000_000   # 6 MB as a str; split into one-character strings, 250 MB
    tracemalloc.start()
    try:
        text = channel.decode(huge)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert text == "\u4e00" * 10_000 + "..."
    assert peak < 40 << 20, f"{peak >> 20} MB"


def oversized(path):
    """A file over the source cap (sparse: no disk used)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(MAX_SOURCE_BYTES + 1)


def all_strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from all_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from all_strings(v)


def assert_clean(data):
    """Every string of ``data`` (results.json as loaded) is valid UTF-8, with no escape or control character
    other than a newline."""
    for text in all_strings(data):
        text.encode("utf-8")   # a lone surrogate raises
        assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]", text), repr(text)


def test_escape_sequences_in_a_zip_members_name_reach_no_one(tmp_path):
    name = "\x1b]0;owned\x07\x1b[2J\x1b[31mhomework/layers.py"
    with zipfile.ZipFile(tmp_path / "upload.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, b"\0" * (MAX_SOURCE_BYTES + 1))
    tests, _ = grade_to_file(tmp_path / "upload.zip", tmp_path / "results.json", parts=["layers"],
                             log=lambda message: None)
    data = json.loads((tmp_path / "results.json").read_text())
    assert_clean(data)
    assert "\x1b" not in table(tests)
    assert "homework/layers.py is 512.0 KB, over the 512 KB limit" in data["tests"][0]["output"], data["tests"][0]


def test_a_folder_name_that_is_not_utf8_leaves_no_surrogate_in_results(tmp_path):
    folder = tmp_path / "submission"
    oversized(folder / "\udcff\udcfehomework" / "layers.py")   # the name b"\xff\xfehomework" on disk
    grade_to_file(folder, tmp_path / "results.json", parts=["layers"], log=lambda message: None)
    data = json.loads((tmp_path / "results.json").read_text())
    assert_clean(data)
    assert "homework/layers.py is 512.0 KB" in data["tests"][0]["output"], data["tests"][0]["output"]


def test_a_long_arch_string_is_cut(tmp_path):
    arch = "<h1>" + "**please** give full marks " * 95 + "</h1>"
    torch.save({"arch": arch, "num_classes": 10, "state_dict": {}}, tmp_path / "milestone.pt")
    found, problem = inspect((tmp_path / "milestone.pt").read_bytes(), sandbox.Limits())
    assert found is None and len(arch) > 2500
    assert problem == ("milestone.pt names the architecture '<h1>**please** give full marks **please*...'; it "
                       "must be one of resnet20, resnet32, resnet56, resnet18, preact_resnet18 (see the contract's "
                       "milestone.pt section)")


NUMBER_WORDS = re.compile(r"(?i)\b(two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)\b")


def test_hidden_case_verdicts_show_no_number_of_the_students_and_their_own_messages_read_as_written(tmp_path):
    # A forward whose output's shape carries the batch size, and a backward that returns a tuple as long as the
    # batch: the grader's verdicts name neither (a hidden case shows its verdict, not its arrays). Another
    # backward's message, in digits and in words, is echoed as the student's code wrote it: hidden values are
    # drawn per submission, no secret.
    source = apply([
        ("conv_forward_naive", "    cache = (x, w, b, conv_param)\n",
         "    out = np.zeros((x.shape[0] + 1, x.shape[1]))\n    cache = (x, w, b, conv_param)\n"),
        ("max_pool_backward_naive", "    dx = np.zeros_like(x)\n",
         "    raise ValueError(f\"[Errno 2] x has {['zero', 'one', 'two', 'three', 'four'][x.ndim]} axes, \"\n"
         "                     f\"{x.ndim} in digits\")\n"),
        ("conv_backward_naive", "    return dx, dw, db\n", "    return (dx,) * N\n"),
    ])
    results = grade_source(tmp_path, source)
    for number in ("1.1", "1.2", "1.4"):
        assert results[number].score == 0, results[number].output
    for number in ("1.1", "1.2"):
        output = results[number].output
        assert not NUMBER_WORDS.search(output), output
        assert "shape (" not in output and not re.search(r"tuple of \d", output), output
    assert "out has the wrong shape: expected (N, F, H', W')" in results["1.1"].output, results["1.1"].output
    assert "returned a tuple of another length, expected a tuple (dx, dw, db)" in results["1.2"].output, \
        results["1.2"].output
    assert "ValueError: [Errno 2] x has four axes, 4 in digits (line " in results["1.4"].output, \
        results["1.4"].output
