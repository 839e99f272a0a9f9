"""Checker of layers.py: hidden cases per submission against PyTorch float64, plus numerical gradients of the
student's own forward (computed here from forward values the child returns) to say which half is wrong.

One child per function family (conv, max pool, avg pool, batchnorm, spatial batchnorm), so a function that
hangs costs its family's time, not the whole part's.
"""
import numpy as np

from grader.checks import Outcome, blocked
from grader.cnn import behaviours, cases, points, rules
from grader.cnn.given import with_given
from grader.compare import compare
from grader.oracle import Oracle
from grader.plan import Plan, static_violations

FILE = "layers.py"
FORBIDDEN_MODULES = rules.FORBIDDEN_MODULES[FILE]
TOL = 1e-7                 # float64 against PyTorch float64
FLOAT32_TOL = 1e-3         # float32 inputs: single-precision round-off over sums of a few hundred terms
NUMERIC_TOL = 1e-5         # against a numerical gradient (round-off near 1e-10 in absolute terms: floor 1e-5)
H = 1e-5
NUMERIC_POINTS = 6         # coordinates of x per case at which the numerical gradient is taken
# The PyTorch references, run in an oracle child: the grading process never loads torch (grader/oracle.py).
ref = Oracle("grader.cnn.oracles.layers")


NUMBERS = {name: number for number, name, _ in points.PARTS["layers"][1]}


def _label(i, case):
    return f"hidden case {i + 1} ({case['category']})"


# The shape each result must have, in the contract's words: a hidden case's feedback says no number of its own.
SHAPE_WORDS = {"dx": "the shape of x", "dw": "the shape of w", "db": "(F,)", "dgamma": "the shape of gamma",
               "dbeta": "the shape of beta", 'bn_param["running_mean"]': "(D,)", 'bn_param["running_var"]': "(D,)"}
CONV_OUT, POOL_OUT, BATCHNORM_OUT = "(N, F, H', W')", "(N, C, H', W')", "the shape of x"


def _check(what, got, expected, tol=TOL, shape=None, **options):
    ok, message, _ = compare(what, got, expected, tol, show_where=False, shape_words=shape or SHAPE_WORDS.get(what),
                             **options)
    return ok, message


class Family:
    """The calls and verdicts for one forward / backward pair over its cases."""

    def __init__(self, forward, backward, rng):
        self.forward, self.backward, self.rng = forward, backward, rng
        self.backwards = [backward]
        self.plan = Plan("layers")
        self.numeric = {}   # case index -> (flat indices, id of the forward values at x +- h)

    def plan_untouched(self, args, params, dout, reference_cache):
        """Call the forward once on read-only arrays, and each backward on a read-only dout with the documented
        correct cache, read-only too, and with its forward's own cache: an edit in place raises there (numpy
        refuses to write into them), and nothing needs to be read back from the child."""
        plan = self.plan
        plan.call(self.forward, *(plan.array(a, read_only=True) for a in args), *params, save="kept_r", id="kept_f",
                  pick=0)
        for backward in self.backwards:
            plan.call("builtin:tuple", *(plan.array(a, read_only=True) if isinstance(a, np.ndarray) else {"v": a}
                                         for a in reference_cache), save=f"kept_cache_{backward}")
            for source, cache in (("ref", {"var": f"kept_cache_{backward}"}), ("own", {"var": "kept_r", "at": [1]})):
                plan.call(backward, plan.array(dout, read_only=True), cache, id=f"kept_{source}_{backward}")

    def untouched_verdicts(self, outcomes):
        """A case for each function: passed when it left its array arguments (and the cache it was given) as it
        found them; failed when it raised, or wrote into one: they are read-only, so the write raised, and the
        case names the array by the student's own name for it."""
        label = "array arguments left as they were found"
        ok, error = self.plan.answer("kept_f")
        name = self.plan.in_place("kept_f")
        if name is not None:
            error = f"{self.forward} changed its input {name or 'arrays'} in place: compute on a copy"
        behaviours.add_gated(outcomes[self.forward], label, ok, "" if ok else error)
        for backward in self.backwards:
            calls = [f"kept_{source}_{backward}" for source in ("ref", "own")]
            name = next((n for n in map(self.plan.in_place, calls) if n is not None), None)
            answers = [self.plan.answer(call) for call in calls]
            ok = name is None and any(answer[0] for answer in answers)
            if name in ("dout", ""):
                error = f"{backward} changed its input {name or 'arrays'} in place: compute on a copy"
            elif name is not None:
                error = f"{backward} changed the cache it was given in place ({name}): the cache belongs to the " \
                        "forward pass; compute on a copy"
            else:
                error = answers[0][1]   # on the documented cache, its own error is said
            behaviours.add_gated(outcomes[backward], label, ok, "" if ok else error)

    def plan_reference_cache(self, i, dout, cache):
        """The backwards called again on the cache a correct forward would store in the documented layout, so
        they can be graded on their own when the student's forward fails this case."""
        plan = self.plan
        refs = [plan.array(a) if isinstance(a, np.ndarray) else {"v": a} for a in cache]
        plan.call("builtin:tuple", *refs, save=f"refcache{i}")
        for backward in self.backwards:
            plan.call(backward, plan.array(dout), {"var": f"refcache{i}"}, id=f"ref_{backward}{i}")

    def backward_verdict(self, backward, i, forward_ok, expected, names, dout):
        """(ok, message) for one backward case. Where the student's forward passes this case, the backward is
        judged on the cache that forward stored; where it fails, on the documented correct cache, so a right
        backward gets its credit and a wrong one is told whose fault the failure is."""
        ok_own, own = self.plan.answer(f"{backward}{i}")
        if forward_ok:
            return _grads_verdict(ok_own, own, expected, names, lambda dx: self.numeric_verdict(i, dx, dout, True))
        ok, grads = self.plan.answer(f"ref_{backward}{i}")
        good, message = _grads_verdict(ok, grads, expected, names)
        if good or (not ok and "NotImplementedError" in message):
            return good, message
        own_dx = (own[0] if isinstance(own, tuple) and own else own) if ok_own else None
        note = self.numeric_verdict(i, own_dx, dout, False)
        # Off or raising on a correct cache: a bug of the backward's own (or a cache layout of the student's own).
        return False, f"{message} (given a correct cache, in the documented layout).{note} Also, your " \
                      f"{self.forward} fails this case (test {NUMBERS[self.forward]}): its cache is what this " \
                      "backward gets, so fix the forward first."

    def plan_numeric(self, i, args, dout_shape):
        """Ask for the forward at x +- h e_j for a few coordinates j of x (args[0]), no ties assumed."""
        x = args[0]
        flat = self.rng.choice(x.size, size=min(NUMERIC_POINTS, x.size), replace=False)
        points = []
        for j in flat:
            for sign in (1, -1):
                p = x.copy()
                p.flat[j] += sign * H
                points.append(p)
        refs = [self.plan.array(a) if isinstance(a, np.ndarray) else {"v": a} for a in args]
        id = self.plan.call("builtin:forward_at", {"fn": self.forward}, {"list": refs}, {"v": 0},
                            self.plan.array(np.stack(points)), id=f"numeric{i}", timeout_factor=4)
        self.numeric[i] = (flat, id)

    def numeric_verdict(self, i, dx, dout, forward_ok):
        """A sentence saying whether the backward agrees with the student's own forward, or ''."""
        if i not in self.numeric or not isinstance(dx, np.ndarray):
            return ""
        flat, id = self.numeric[i]
        ok, values = self.plan.answer(id)
        if not ok or not isinstance(values, np.ndarray) or values.shape[0] != 2 * len(flat) \
                or values.shape[1:] != dout.shape or dx.size <= int(flat.max()):
            return ""
        numeric = np.array([np.sum((values[2 * k] - values[2 * k + 1]) * dout) / (2 * H) for k in range(len(flat))])
        agrees, _ = _check("dx", dx.reshape(-1)[flat].astype(np.float64), numeric, NUMERIC_TOL, floor=1e-5, dtype=None)
        if agrees and not forward_ok:
            return " Your backward agrees with the numerical gradient of your forward, but the forward is wrong: " \
                   "fix the forward first."
        if not agrees and forward_ok:
            return " Your forward is right, and your backward does not match its numerical gradient: the " \
                   "backward is at fault."
        if not agrees:
            return " Your backward does not match the numerical gradient of your own forward either."
        return ""


def _max_pool_argmax(x, pool_height, pool_width, stride):
    """The documented cache's argmax: each window's first maximum, flattened row-major within the window."""
    windows = np.lib.stride_tricks.sliding_window_view(x, (pool_height, pool_width), axis=(2, 3))
    windows = windows[:, :, ::stride, ::stride]
    return windows.reshape(*windows.shape[:4], -1).argmax(axis=-1)


def _batchnorm_cache(x, gamma, eps, spatial):
    """The documented cache of batchnorm_forward, (xc, std, xhat, gamma); spatial: that of the (N*H*W, C) view."""
    if spatial:
        x = x.transpose(0, 2, 3, 1).reshape(-1, x.shape[1])
    xc = x - x.mean(axis=0)
    std = np.sqrt((xc ** 2).mean(axis=0) + eps)
    return xc, std, xc / std, gamma


def _conv(source, rng, limits):
    fam = Family("conv_forward_naive", "conv_backward_naive", rng)
    plan, outcome_f, outcome_b = fam.plan, Outcome(), Outcome()
    drawn = cases.conv_cases(rng)
    x32 = cases.conv_case(rng, cases.CONV_FLOAT32)
    for i, case in enumerate(drawn + [x32]):
        x, w, b = (case["inputs"][k] for k in "xwb")
        if i == len(drawn):
            x, w, b = (a.astype(np.float32) for a in (x, w, b))
        params = {"v": case["params"]}
        plan.call(fam.forward, plan.array(x), plan.array(w), plan.array(b), params, id=f"f{i}", save=f"r{i}", pick=0)
        if i < len(drawn):
            s, p = case["params"]["stride"], case["params"]["pad"]
            out_shape = ref.conv_forward(x, w, b, s, p).shape
            case["dout"] = rng.standard_normal(out_shape)
            plan.call(fam.backward, plan.array(case["dout"]), {"var": f"r{i}", "at": [1]}, id=f"{fam.backward}{i}")
            fam.plan_reference_cache(i, case["dout"], (x, w, b, case["params"]))
            fam.plan_numeric(i, [x, w, b, case["params"]], out_shape)
    first = drawn[0]
    fam.plan_untouched([first["inputs"][k] for k in "xwb"], [{"v": first["params"]}], first["dout"],
                       [*(first["inputs"][k] for k in "xwb"), first["params"]])
    yield plan
    for i, case in enumerate(drawn):
        x, w, b = (case["inputs"][k] for k in "xwb")
        s, p = case["params"]["stride"], case["params"]["pad"]
        label = _label(i, case)
        ok, out = plan.answer(f"f{i}")
        forward_ok, message = _check("out", out, ref.conv_forward(x, w, b, s, p), shape=CONV_OUT) if ok \
            else (False, out)
        outcome_f.add(label, forward_ok, message)
        expected = ref.conv_backward(x, w, b, s, p, case["dout"])
        outcome_b.add(label, *fam.backward_verdict(fam.backward, i, forward_ok, expected, ("dx", "dw", "db"),
                                                   case["dout"]))
    x, w, b = (x32["inputs"][k] for k in "xwb")
    ok, out = plan.answer(f"f{len(drawn)}")
    outcome_f.add("float32 input (float32 tolerance)", *(
        _check("out", out, ref.conv_forward(x, w, b, 1, 1), FLOAT32_TOL, CONV_OUT, dtype=None, floor=1e-3) if ok
        else (False, out)))
    outcomes = {fam.forward: outcome_f, fam.backward: outcome_b}
    fam.untouched_verdicts(outcomes)
    yield outcomes


def _grads_verdict(ok, grads, expected, names, numeric_note=None):
    """(ok, message) for a backward's tuple of gradients (or one gradient, when ``names`` has one name)."""
    if not ok:
        return False, grads
    if len(names) == 1:
        grads, expected = (grads,), (expected,)
    elif not isinstance(grads, tuple) or len(grads) != len(names):
        what = "a tuple of another length" if isinstance(grads, tuple) else f"a {type(grads).__name__}"
        return False, f"returned {what}, expected a tuple ({', '.join(names)})"
    for name, got, exp in zip(names, grads, expected):
        good, message = _check(name, got, exp)
        if not good:
            return False, message + ("." + numeric_note(grads[0]) if numeric_note and name == names[0] else "")
    return True, ""


def _pool(kind):
    def family(source, rng, limits):
        fam = Family(f"{kind}_pool_forward_naive", f"{kind}_pool_backward_naive", rng)
        plan, outcome_f, outcome_b = fam.plan, Outcome(), Outcome()
        drawn = cases.pool_cases(rng) + (cases.pool_cases(rng, ties=True)[:2] if kind == "max" else [])
        x32 = cases.pool_case(rng, cases.POOL_FLOAT32)
        for i, case in enumerate(drawn + [x32]):
            x = case["inputs"]["x"]
            if i == len(drawn):
                x = x.astype(np.float32)
            plan.call(fam.forward, plan.array(x), {"v": case["params"]}, id=f"f{i}", save=f"r{i}", pick=0)
            if i < len(drawn):
                p = case["params"]
                args = (x, p["pool_height"], p["pool_width"], p["stride"])
                out_shape = ref.pool_forward(kind, *args).shape
                case["dout"] = rng.standard_normal(out_shape)
                case["cache"] = (x, p, _max_pool_argmax(*args)) if kind == "max" else (x, p)
                plan.call(fam.backward, plan.array(case["dout"]), {"var": f"r{i}", "at": [1]}, id=f"{fam.backward}{i}")
                fam.plan_reference_cache(i, case["dout"], case["cache"])
                if "ties" not in case["category"]:
                    fam.plan_numeric(i, [x, p], out_shape)
        first = drawn[0]
        fam.plan_untouched([first["inputs"]["x"]], [{"v": first["params"]}], first["dout"], first["cache"])
        yield plan
        for i, case in enumerate(drawn):
            x, p = case["inputs"]["x"], case["params"]
            args = (x, p["pool_height"], p["pool_width"], p["stride"])
            label = _label(i, case)
            ok, out = plan.answer(f"f{i}")
            forward_ok, message = _check("out", out, ref.pool_forward(kind, *args), shape=POOL_OUT) if ok \
                else (False, out)
            outcome_f.add(label, forward_ok, message)
            expected = ref.pool_backward(kind, *args, case["dout"])
            outcome_b.add(label, *fam.backward_verdict(fam.backward, i, forward_ok, expected, ("dx",), case["dout"]))
        x, p = x32["inputs"]["x"], x32["params"]
        ok, out = plan.answer(f"f{len(drawn)}")
        outcome_f.add("float32 input (float32 tolerance)", *(
            _check("out", out, ref.pool_forward(kind, x, p["pool_height"], p["pool_width"], p["stride"]),
                   FLOAT32_TOL, POOL_OUT, dtype=None, floor=1e-3) if ok else (False, out)))
        outcomes = {fam.forward: outcome_f, fam.backward: outcome_b}
        fam.untouched_verdicts(outcomes)
        yield outcomes
    return family


def _batchnorm(spatial):
    prefix = "spatial_" if spatial else ""

    def family(source, rng, limits):
        fam = Family(f"{prefix}batchnorm_forward", f"{prefix}batchnorm_backward", rng)
        fam.backwards += [] if spatial else ["batchnorm_backward_alt"]
        plan = fam.plan
        drawn = cases.batchnorm_cases(rng, spatial=spatial)
        # The calls on the first case's x with the defaults, in float32 and for the documented behaviours go
        # first: the documented cache of that x (its xhat) is only sent after them.
        first = drawn[0]["inputs"]
        plan.call("builtin:dict", mode={"v": "train"}, save="defaults")
        plan.call(fam.forward, *(plan.array(first[k]) for k in ("x", "gamma", "beta")), {"var": "defaults"},
                  id="d", pick=0)
        for key in ("running_mean", "running_var"):
            plan.call("builtin:lookup", {"var": "defaults"}, {"v": key}, id=f"d{key}")
        plan.call(fam.forward, *(plan.array(first[k].astype(np.float32)) for k in ("x", "gamma", "beta")),
                  {"v": {"mode": "train"}}, id="f32", pick=0)
        promises = _plan_bn_behaviours(plan, fam.forward, drawn[0])
        for i, case in enumerate(drawn):
            x, gamma, beta = (plan.array(case["inputs"][k]) for k in ("x", "gamma", "beta"))
            p = case["params"]
            stats = {k: plan.array(p[k]) for k in ("running_mean", "running_var")}
            plan.call("builtin:dict", mode={"v": "train"}, eps={"v": p["eps"]}, momentum={"v": p["momentum"]},
                      **stats, save=f"bn{i}")
            plan.call(fam.forward, x, gamma, beta, {"var": f"bn{i}"}, id=f"f{i}", save=f"r{i}", pick=0)
            for key in ("running_mean", "running_var"):
                plan.call("builtin:lookup", {"var": f"bn{i}"}, {"v": key}, id=f"{key}{i}")
            # Test mode with the case's running statistics: normalise with them, leave them alone (before this
            # x's documented cache is sent).
            plan.call("builtin:dict", mode={"v": "test"}, eps={"v": p["eps"]}, **stats, save=f"bt{i}")
            plan.call(fam.forward, x, gamma, beta, {"var": f"bt{i}"}, id=f"t{i}", pick=0)
            for key in ("running_mean", "running_var"):
                plan.call("builtin:lookup", {"var": f"bt{i}"}, {"v": key}, id=f"t{key}{i}")
            case["dout"] = rng.standard_normal(case["inputs"]["x"].shape)
            case["cache"] = _batchnorm_cache(case["inputs"]["x"], case["inputs"]["gamma"], p["eps"], spatial)
            for backward in fam.backwards:
                plan.call(backward, plan.array(case["dout"]), {"var": f"r{i}", "at": [1]}, id=f"{backward}{i}")
            fam.plan_reference_cache(i, case["dout"], case["cache"])
            fam.plan_numeric(i, [case["inputs"]["x"], case["inputs"]["gamma"], case["inputs"]["beta"],
                                 {"mode": "train", "eps": p["eps"]}], case["dout"].shape)
        fam.plan_untouched([first[k] for k in ("x", "gamma", "beta")],
                           [{"v": {"mode": "train", "eps": drawn[0]["params"]["eps"]}}], drawn[0]["dout"],
                           drawn[0]["cache"])
        yield plan

        outcomes = {name: Outcome() for name in [fam.forward] + fam.backwards}
        forward = outcomes[fam.forward]
        for i, case in enumerate(drawn):
            x, gamma, beta = (case["inputs"][k] for k in ("x", "gamma", "beta"))
            p = case["params"]
            label = _label(i, case)
            ok, out = plan.answer(f"f{i}")
            forward_ok, message = _check("out", out, ref.batchnorm_forward(x, gamma, beta, p["eps"]),
                                         shape=BATCHNORM_OUT) if ok \
                else (False, out)
            forward.add(f"{label}, train mode", forward_ok, message)
            expected_stats = ref.batchnorm_running_stats(x, p["running_mean"], p["running_var"], p["momentum"])
            forward.add(f"{label}, running statistics after a train step",
                        *(_stats_verdict(plan, [f"running_mean{i}", f"running_var{i}"], expected_stats,
                                         "(momentum * old + (1 - momentum) * batch, biased variance)") if ok
                          else (False, out)))
            ok, out = plan.answer(f"t{i}")
            expected = ref.batchnorm_test_forward(x, gamma, beta, p["running_mean"], p["running_var"], p["eps"])
            good, message = _check("out", out, expected, shape=BATCHNORM_OUT) if ok else (False, out)
            if good:
                good, message = _stats_verdict(plan, [f"trunning_mean{i}", f"trunning_var{i}"],
                                               (p["running_mean"], p["running_var"]), "must not change in test mode")
            forward.add(f"{label}, test mode", good, message)
            expected = ref.batchnorm_backward(x, gamma, beta, case["dout"], p["eps"])
            for backward in fam.backwards:
                outcomes[backward].add(label, *fam.backward_verdict(backward, i, forward_ok, expected,
                                                                    ("dx", "dgamma", "dbeta"), case["dout"]))
        first = drawn[0]["inputs"]
        channels = first["gamma"].shape[0]
        defaults = ref.batchnorm_running_stats(first["x"], np.zeros(channels), np.zeros(channels), 0.9)
        ok, out = plan.answer("d")
        good, message = _check("out", out, ref.batchnorm_forward(first["x"], first["gamma"], first["beta"]),
                               shape=BATCHNORM_OUT) if ok \
            else (False, out)
        if good:
            good, message = _stats_verdict(plan, ["drunning_mean", "drunning_var"], defaults,
                                           "(defaults: eps 1e-5, momentum 0.9, running statistics zeros)")
        forward.add("bn_param with only a mode (the defaults)", good, message)
        promises(forward)
        ok, out = plan.answer("f32")
        forward.add(behaviours.PROMISES[fam.forward]["float32"], *(
            _check("out", out, ref.batchnorm_forward(first["x"], first["gamma"], first["beta"]), FLOAT32_TOL,
                   BATCHNORM_OUT,
                   dtype=None, floor=1e-3) if ok else (False, out)))
        fam.untouched_verdicts(outcomes)
        yield outcomes
    return family


def _plan_bn_behaviours(plan, forward, case):
    """Calls for each documented behaviour of ``forward`` (behaviours.py) on ``case``'s arrays: each optional
    key of bn_param left out once (the others given, away from their defaults), given at its edges, a bad
    mode, and test mode without running statistics. Returns a function adding their verdicts to an Outcome."""
    inputs, drawn = case["inputs"], case["params"]
    x, gamma, beta = (inputs[k] for k in ("x", "gamma", "beta"))
    channels = gamma.shape[0]
    full = {"eps": drawn["eps"], "momentum": drawn["momentum"], "running_mean": drawn["running_mean"],
            "running_var": drawn["running_var"]}
    checked = []   # (label, what it weighs as, id, mode, the bn_param the call means: every key given, hint)

    def call(label, kind, mode, given, hint="(the documented defaults: eps 1e-5, momentum 0.9, running statistics "
                                            "zeros)"):
        id = f"b{len(checked)}"
        plan.call("builtin:dict", mode={"v": mode},
                          **{k: plan.array(v) if isinstance(v, np.ndarray) else {"v": v} for k, v in given.items()},
                          save=f"{id}_param")
        plan.call(forward, *(plan.array(a) for a in (x, gamma, beta)), {"var": f"{id}_param"}, id=id, pick=0)
        for key in ("running_mean", "running_var"):
            plan.call("builtin:lookup", {"var": f"{id}_param"}, {"v": key}, id=f"{id}{key}")
        meant = {k: np.zeros(channels) if v == "zeros" else v for k, v in
                 ((kw.name, kw.default) for kw in behaviours.BN_KEYWORDS)}
        checked.append((label, kind, id, mode, {**meant, **given}, hint))

    for kw in behaviours.KEYWORDS[forward]:
        call(kw.left_out(), kw.left_out_kind, "train", {k: v for k, v in full.items() if k != kw.name})
        for value in kw.edges:
            call(kw.edge(value), behaviours.BEHAVIOUR, "train", {**full, kw.name: value},
                 f"(a {kw.name} given is used, {value!r} included: bn_param.get(key, default), not `or`)")
    call(behaviours.PROMISES[forward]["test without statistics"], behaviours.BEHAVIOUR, "test", {"eps": full["eps"]})
    # "validation": it sorts after "train" and "test", so a comparison other than == lets it through.
    plan.call("builtin:dict", mode={"v": "validation"}, **{k: plan.array(v) if isinstance(v, np.ndarray) else {"v": v}
                                                     for k, v in full.items()}, save="badmode_param")
    plan.call(forward, *(plan.array(a) for a in (x, gamma, beta)), {"var": "badmode_param"}, id="badmode", pick=0)

    def verdicts(outcome):
        for label, kind, id, mode, p, hint in checked:
            ok, out = plan.answer(id)
            if mode == "train":   # normalised with the batch statistics (PyTorch trains with eps > 0 only)
                batch = ref.batchnorm_running_stats(x, np.zeros(channels), np.zeros(channels), 0.0)
                expected = ref.batchnorm_test_forward(x, gamma, beta, *batch, p["eps"])
                stats = ref.batchnorm_running_stats(x, p["running_mean"], p["running_var"], p["momentum"])
            else:
                expected = ref.batchnorm_test_forward(x, gamma, beta, p["running_mean"], p["running_var"], p["eps"])
                stats = (p["running_mean"], p["running_var"])
            good, message = _check("out", out, expected) if ok else (False, out)
            if good:
                good, message = _stats_verdict(plan, [f"{id}running_mean", f"{id}running_var"], stats, hint)
            elif ok:
                message += f" {hint}"
            outcome.add(label, good, message, kind)
        behaviours.add_error(outcome, behaviours.ERRORS[forward]["mode"], plan.answer("badmode"))
    return verdicts


def _stats_verdict(plan, ids, expected, hint):
    for id, exp, name in zip(ids, expected, ("running_mean", "running_var")):
        ok, got = plan.answer(id)
        if not ok:
            return False, f'bn_param["{name}"] could not be read after the call: {got}'
        good, message = _check(f'bn_param["{name}"]', got, exp)
        if not good:
            return False, f"{message} {hint}"
    return True, ""


# Each family, by the functions it grades.
FAMILIES = {
    ("conv_forward_naive", "conv_backward_naive"): _conv,
    ("max_pool_forward_naive", "max_pool_backward_naive"): _pool("max"),
    ("avg_pool_forward_naive", "avg_pool_backward_naive"): _pool("avg"),
    ("batchnorm_forward", "batchnorm_backward", "batchnorm_backward_alt"): _batchnorm(False),
    ("spatial_batchnorm_forward", "spatial_batchnorm_backward"): _batchnorm(True),
}


def check(files, rng, limits, names):
    """{test name: Outcome} for the functions in ``names``."""
    if FILE not in files:
        return blocked(names, f"{FILE} was not submitted")
    source = files[FILE]
    static = static_violations(source, FORBIDDEN_MODULES)
    outcomes = {}
    # One stream per family, drawn before any is skipped: a grade of some tests only (a mutation run) draws
    # the same cases for them as a whole grade.
    streams = [np.random.default_rng(seed) for seed in rng.integers(2 ** 63, size=len(FAMILIES))]
    for (functions, family), stream in zip(FAMILIES.items(), streams):
        if not set(functions) & set(names):
            continue
        steps = family(source, stream, limits)
        plan = next(steps)
        plan.run(with_given({FILE: source}), limits, forbidden=FORBIDDEN_MODULES)
        error = plan.import_error()
        if error:
            return blocked(names, f"{FILE} could not be imported: {error}")
        outcomes.update(next(steps))
    for function, reason in static.items():
        if function in outcomes:
            outcomes[function] = Outcome(blocker=f"{function} {reason}, which layers.py may not use (see the "
                                                 "contract): no points for this function")
    return {name: outcomes.get(name) for name in names}
