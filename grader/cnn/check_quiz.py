"""Checker of quiz.py: fresh layer configurations per submission (grader/cnn/quiz_variants.py) against the
lecture's closed forms, and the AlexNet table against the same closed forms applied to the lecture's network.

Types follow the contract and the public tests: sizes, channels, params and flops must be ints (Python or
numpy integers; not bools, and not floats even when integral: a float there almost always comes from ``/``
where the rule floors, so it is reported as such); ``memory_kb`` may be any real number (int or float) within
1e-9 relative; ``size_out`` is None for fc layers. Extra keys in a row are ignored.

Hidden cases are labelled with their category (kernel, stride, pad, divisibility, bias: never the sizes or
channels) and their messages name the key that is off and, where the value matches a known slip (ceil for
floor, bytes for KB, a forgotten bias or c_in...), which slip; they never print the expected value. Four
public cases leave the defaults out (stride 1, pad 0, bias True), and the AlexNet table is the lecture's: their
messages show the numbers.

One child runs the whole part: the calculators are pure arithmetic.
"""
import math

from grader.checks import CATEGORY, Outcome, blocked
from grader.cnn import behaviours
from grader.cnn import quiz_variants as qv
from grader.cnn.given import with_given
from grader.plan import Plan

FILE = "quiz.py"
MODULE = "quiz"
KEYS = ("c_out", "size_out", "memory_kb", "params", "flops")
MEMORY_TOL = 1e-9

SIZE_TEST = "conv_output_size and pool_output_size"
TEST_OF_KIND = {"conv_output_size": SIZE_TEST, "pool_output_size": SIZE_TEST, "conv_layer": "conv_layer",
                "pool_layer": "pool_layer", "fc_layer": "fc_layer"}

# ------------------------------------------------------------------------------------------------------------
# Expected values: quiz_variants' closed forms (its ``expected`` and ``alexnet_rows``)
# ------------------------------------------------------------------------------------------------------------

def _defaults_cases():
    """Cases that leave the defaults out (stride 1, pad 0, bias True), with the arguments actually passed."""
    return [
        ({"kind": "conv_output_size", "args": dict(size=32, kernel=3, stride=1, pad=0),
          "category": "conv_output_size(32, 3): stride 1 and pad 0 by default"}, (32, 3)),
        ({"kind": "pool_output_size", "args": dict(size=56, kernel=3, stride=2, pad=0),
          "category": "pool_output_size(56, 3, 2): pad 0 by default"}, (56, 3, 2)),
        ({"kind": "conv_layer", "args": dict(c_in=3, size=32, filters=10, kernel=5, stride=1, pad=0, bias=True),
          "category": "conv_layer(3, 32, 10, 5): stride 1, pad 0, bias by default"}, (3, 32, 10, 5)),
        ({"kind": "pool_layer", "args": dict(c_in=64, size=56, kernel=3, stride=2, pad=0),
          "category": "pool_layer(64, 56, 3, 2): pad 0 by default"}, (64, 56, 3, 2)),
    ]


# ------------------------------------------------------------------------------------------------------------
# Verdicts
# ------------------------------------------------------------------------------------------------------------

def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _type_problem(key, value, expected, show=False):
    """Why ``value`` has the wrong type for ``key`` (or ''); ``show``: the value may be printed (public cases)."""
    if expected is None:
        return "" if value is None else f"{key} should be None (a fully connected layer's output has no height)"
    if key == "memory_kb":
        if not _is_real(value):
            return f"{key} is a {type(value).__name__}, expected a float (KB, unrounded)"
        return ""
    if _is_int(value):
        return ""
    if isinstance(value, float):
        return f"{key} is a float{f' ({value!r})' if show else ''}, expected an int (use floor division //, not /)"
    return f"{key} is a {type(value).__name__}, expected an int"


def _size_hint(a, got):
    """A known slip (quiz_variants.SIZE_SLIPS) that gives ``got`` as the output size, or ''."""
    args = a["size"], a["kernel"], a["stride"], a["pad"]
    exact = qv.output_size(*args)
    for slip, hint in qv.SIZE_SLIPS:
        if slip(*args) == got != exact:
            return hint
    return ""


def _row_hints(case, key, got, want):
    """A known slip that explains a wrong ``key`` of a layer row, or ''."""
    kind, a = case["kind"], case["args"]
    if key == "size_out":
        return _size_hint(a, got)
    if key == "memory_kb":
        for factor, hint in ((1024, "it looks like bytes, not KB"),
                             (256, "it looks like the number of elements, not KB (4 bytes an element)"),
                             (1 / 4, "it looks like 1 byte an element; a float32 takes 4"),
                             (1 / 1024, "it looks like MB, not KB"),
                             (1.024, "it looks like KB of 1000 bytes; a KB here is 1024 bytes")):
            if math.isclose(got, want * factor, rel_tol=MEMORY_TOL):
                return hint
        if got == round(want) or got == math.floor(want) or got == math.ceil(want):
            return "it looks rounded; return it unrounded"
        return ""
    if kind == "conv_layer":
        c_out = a["filters"]
        s = qv.output_size(a["size"], a["kernel"], a["stride"], a["pad"])
        window = a["c_in"] * a["kernel"] ** 2
        if key == "params":
            if a["bias"] and got == want - c_out:
                return "it looks like the bias is left out (one per filter)"
            if not a["bias"] and got == want + c_out:
                return "it counts a bias, but bias=False"
            if got == c_out * a["kernel"] ** 2 + (c_out if a["bias"] else 0):
                return "it looks like c_in is left out"
        if key == "flops":
            if got == want // a["c_in"] and a["c_in"] > 1:
                return "it looks like c_in is left out (each output is a dot product over c_in x K x K)"
            if got == 2 * want:
                return "it counts a multiply and an add as two; a flop here is one multiply-add"
            if got == want + c_out * s * s:
                return "it counts the bias additions; by the lecture's count the bias costs no flops"
            if got == c_out * window:
                return "it looks like the number of output positions is left out"
    if kind == "pool_layer":
        if key == "params":
            return "a pooling layer has nothing to learn"
        s = qv.output_size(a["size"], a["kernel"], a["stride"], a["pad"])
        if key == "flops" and got == a["c_in"] * s * s:
            return "it looks like the window size (kernel x kernel) is left out"
        if key == "flops" and got == 0:
            return "the lecture counts a window's cost: outputs x kernel^2"
    if kind == "fc_layer":
        if key == "params" and got == a["d_in"] * a["d_out"]:
            return "it looks like the bias is left out (d_out biases)"
        if key == "flops" and got == want + a["d_out"]:
            return "it counts the bias additions; by the lecture's count the bias costs no flops"
        if key == "flops" and got == 2 * want:
            return "it counts a multiply and an add as two; a flop here is one multiply-add"
    return ""


def _value_verdict(key, got, want, hint, show):
    """(ok, message) for one value already of the right type."""
    if want is None:
        return True, ""
    if key == "memory_kb":
        ok = math.isclose(got, want, rel_tol=MEMORY_TOL, abs_tol=0.0)
    else:
        ok = got == want
    if ok:
        return True, ""
    if show:
        message = f"{key} is {got:,}, expected {want:,}"
    else:
        message = f"{key} is wrong ({'too large' if got > want else 'too small'})"
    return False, message + (f": {hint}" if hint else "")


def _row_verdict(case, value, want, show=False):
    """(ok, message) for a layer dict ``value`` against ``want``."""
    if not isinstance(value, dict):
        return False, f"returned a {type(value).__name__}, expected a dict with keys {', '.join(KEYS)}"
    missing = [key for key in KEYS if key not in value]
    if missing:
        return False, f"the dict lacks the key{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
    problems = []
    for key in KEYS:
        got = value[key]
        problem = _type_problem(key, got, want[key], show)
        if problem:
            problems.append(problem)
            continue
        if want[key] is None:
            continue
        hint = _row_hints(case, key, got, want[key]) if case is not None else ""
        ok, message = _value_verdict(key, got, want[key], hint, show)
        if not ok:
            problems.append(message)
    return (False, "; ".join(problems)) if problems else (True, "")


def _size_verdict(case, value, want, show=False):
    problem = _type_problem("the output size", value, want, show)
    if problem:
        return False, problem[0].upper() + problem[1:]
    ok, message = _value_verdict("the output size", value, want, _size_hint(case["args"], value), show)
    return ok, message[0].upper() + message[1:] if message else message


def _keyword_cases(rng):
    """Cases for each keyword of behaviours.KEYWORDS: left out once (the others given as keywords, away from
    their defaults) and given at its edges. [(kind, label, the case the call means, the call's keywords, what the
    case weighs as)]"""
    cases = []
    for kind in ("conv_output_size", "pool_output_size", "conv_layer", "pool_layer"):
        base = qv.draw_window(rng, kind, qv.KEYWORD_SCENARIO, bias=False, keywords=True)
        keywords = behaviours.KEYWORDS[kind]
        given = {kw.name: base["args"][kw.name] for kw in keywords}
        for kw in keywords:
            variants = [(kw.left_out(), kw.default, {k: v for k, v in given.items() if k != kw.name},
                         kw.left_out_kind)]
            variants += [(kw.edge(value), value, {**given, kw.name: value}, behaviours.BEHAVIOUR)
                         for value in kw.edges]
            for words, value, kwargs, weighs in variants:
                meant = {**base, "args": {**base["args"], kw.name: value}}
                cases.append((kind, f"{kind}: {words}", meant, kwargs, weighs))
    return cases


def _guarded(verdict, *args):
    """``verdict(*args)``, or a failed case when the student's value cannot even be compared (an int too large
    for a float, say): a verdict for that case, never an error of the whole part."""
    try:
        return verdict(*args)
    except (OverflowError, ValueError, TypeError):
        return False, "returned a value that cannot be compared with the expected one (too large, or not a number)"


def _alexnet(plan, outcome):
    rows = qv.alexnet_rows()
    ok, table = plan.answer("alexnet")
    if not ok:
        problem = table
    elif not isinstance(table, (list, tuple)):
        problem = f"returned a {type(table).__name__}, expected a list of {len(rows)} dicts"
    elif len(table) != len(rows):
        problem = f"returned {len(table)} rows, expected {len(rows)} (conv1 to fc8, flatten included)"
    else:
        problem = ""
    for i, (name, want) in enumerate(rows):
        label = f"row {name}"
        if problem:
            outcome.add(label, False, problem)
            continue
        row = table[i]
        if not isinstance(row, dict):
            outcome.add(label, False, f"row {i + 1} is a {type(row).__name__}, expected a dict")
            continue
        if row.get("name") != name:
            outcome.add(label, False, f"row {i + 1} should have name {name!r}, has {row.get('name')!r}")
            continue
        outcome.add(label, *_guarded(_row_verdict, None, row, want, True))


# ------------------------------------------------------------------------------------------------------------

def check(files, rng, limits, names):
    """{test name: Outcome} for the tests in ``names``."""
    if FILE not in files:
        return blocked(names, f"{FILE} was not submitted")
    drawn = qv.draw_quiz_cases(rng)
    plan = Plan(MODULE)
    checked, counts = [], {}   # (test, label, case, id, show values, what it weighs as); numbered per test
    for i, case in enumerate(drawn):
        id = plan.call(case["kind"], *({"v": v} for v in case["args"].values()), id=f"c{i}")
        test = TEST_OF_KIND[case["kind"]]
        counts[test] = counts.get(test, 0) + 1
        checked.append((test, f"hidden case {counts[test]} ({case['category']})", case, id, False, CATEGORY))
    for i, (case, args) in enumerate(_defaults_cases()):
        id = plan.call(case["kind"], *({"v": v} for v in args), id=f"d{i}")
        checked.append((TEST_OF_KIND[case["kind"]], case["category"], case, id, True, CATEGORY))   # public values
    for i, (kind, label, case, kwargs, weighs) in enumerate(_keyword_cases(rng)):
        required = [v for k, v in case["args"].items() if k not in kwargs and
                    k not in {kw.name for kw in behaviours.KEYWORDS[kind]}]
        id = plan.call(kind, *({"v": v} for v in required), id=f"k{i}", **{k: {"v": v} for k, v in kwargs.items()})
        checked.append((TEST_OF_KIND[kind], label, case, id, False, weighs))
    plan.call("alexnet_table", id="alexnet")
    plan.run(with_given({FILE: files[FILE]}), limits)
    error = plan.import_error()
    if error:
        return blocked(names, f"{FILE} could not be imported: {error}")

    outcomes = {name: Outcome() for name in list(dict.fromkeys(TEST_OF_KIND.values())) + ["alexnet_table"]}
    for test, label, case, id, show, weighs in checked:
        ok, value = plan.answer(id)
        want = qv.expected(case)
        if not ok:
            outcomes[test].add(label, False, value, weighs)
        elif case["kind"].endswith("_size"):
            outcomes[test].add(label, *_guarded(_size_verdict, case, value, want, show), weighs)
        else:
            outcomes[test].add(label, *_guarded(_row_verdict, case, value, want, show), weighs)
    _alexnet(plan, outcomes["alexnet_table"])
    return {name: outcomes.get(name) for name in names}
