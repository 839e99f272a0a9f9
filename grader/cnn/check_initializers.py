"""Checker of initializers.py: fans and gains against closed forms, the four initializers by the statistics of
large samples, and the activation experiment against the grader's own replay of the contract's procedure.

Statistical checks are grader/stats.py's: 6 standard errors, each derived from the sample size. Per
initializer: 12 hidden cases (a 2-D and a 4-D shape drawn per submission x 3 modes x 2 gains or nonlinearities) of 15k to 60k
values, where the std's tolerance is 2 to 3.5%, and one all-defaults case of 200k to 570k values (under 1%).
Every wrong formula we know of is off by far more: the hidden shapes keep the larger fan 1.5-1.8 or 2.3-2.7
times the smaller, so the three modes give stds at least 9% apart, and no mode mix-up is off by exactly the
sqrt(2) or sqrt(3) of another slip (the messages name the slip a wrong std matches).

Arrays cross back raw; the grader computes every statistic. One child for the fans, gains and the activation
experiment, and one per initializer (about 1.3 million float64 values each: about 10 MB of results, well
under the sandbox's caps), so a slow or hanging initializer costs its own test only.

Fans may come back as a tuple, list or 1-D array of two numbers equal to the closed form (as the public test's
``tuple(got) == expected`` accepts); gains as any real number within 1e-12 relative.

The activation experiment runs with init callables the grader owns (``builtin:normal_init`` of the driver):
the same seed must give the same numbers as the grader's replay (1e-9 relative), so the student's
activation_stds is graded on its own, not on their initializers. When the numbers differ, the message says
whether the trend (the std falling, holding or growing layer after layer) is right, which points at the
procedure (the order of draws, one Generator) rather than the arithmetic.
"""
import math

import numpy as np

from grader import stats
from grader.checks import CATEGORY, Outcome, blocked
from grader.cnn import behaviours
from grader.cnn.given import with_given
from grader.plan import Plan
from grader.sandbox.driver import builtin_normal_init

FILE = "initializers.py"
MODULE = "initializers"
GAIN_TOL = 1e-12
STDS_TOL = 1e-9
MODES = ("fan_in", "fan_out", "fan_avg")
SCHEMES = {   # name: (family, uniform?)
    "xavier_normal": ("xavier", False),
    "xavier_uniform": ("xavier", True),
    "kaiming_normal": ("kaiming", False),
    "kaiming_uniform": ("kaiming", True),
}
GAINS = {"linear": 1.0, "sigmoid": 1.0, "relu": math.sqrt(2.0), "tanh": 5.0 / 3.0}
# Both sides above 1 (the 1x1 case aside): on a 1xK kernel a wrong fan such as c / kh * kw equals c * kh * kw.
# Both odd: with F + C odd, the fans' sum is odd, so a fan_avg floored by // is off.
KERNELS = [(3, 3), (5, 5), (7, 7), (3, 5), (5, 3), (3, 7), (7, 3)]
# Kaiming's nonlinearity given, per mode: each gain far from relu's (leaky_relu's is within 0.005 % of it).
OTHER_NONLINEARITIES = {"fan_in": "tanh", "fan_out": "linear", "fan_avg": "sigmoid"}
# The 4-D weight of each initializer's cases: a tall or a wide kernel (a square one would hide a KH/KW slip).
KERNEL_OF = {"xavier_normal": "tall", "xavier_uniform": "wide", "kaiming_normal": "wide", "kaiming_uniform": "tall"}
XAVIER_GAINS = (1.5, 2.5)   # a gain given, drawn here: far from the default 1


def gain_of(nonlinearity, param=None):
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1.0 + slope ** 2))
    return GAINS[nonlinearity]


def fans(shape):
    if len(shape) == 2:
        return shape[0], shape[1]
    f, c, kh, kw = shape
    return c * kh * kw, f * kh * kw


def fan_of(shape, mode):
    fan_in, fan_out = fans(shape)
    return {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]


# ------------------------------------------------------------------------------------------------------------
# Drawing the hidden shapes
# ------------------------------------------------------------------------------------------------------------

def _ratio(rng):
    """How many times the larger fan exceeds the smaller: 1.5 to 1.8 or 2.3 to 2.7, so the three modes give
    distinct stds, and none of them is off by the sqrt(2) or sqrt(3) of another slip."""
    return float(rng.uniform(1.5, 1.8) if rng.integers(2) else rng.uniform(2.3, 2.7))


def shape_2d(rng, low=100, high=150):
    """(Din, Dout): the smaller in [low, high], the larger ``_ratio`` times it, either way round; their sum
    odd, so that a fan_avg floored by ``//`` is off."""
    small = int(rng.integers(low, high + 1))
    large = round(small * _ratio(rng))
    large += (small + large + 1) % 2
    return (small, large) if rng.integers(2) else (large, small)


def shape_4d(rng, kernel=None, elements=(20_000, 60_000)):
    """(F, C, KH, KW) of about ``elements`` values, F / C a ``_ratio`` either way round; F + C odd, so that
    the fans' sum is odd wherever the kernel's size is."""
    kh, kw = kernel or KERNELS[int(rng.integers(len(KERNELS)))]
    r = _ratio(rng) if rng.integers(2) else 1 / _ratio(rng)
    target = float(rng.uniform(*elements))
    c = max(1, round(math.sqrt(target / (kh * kw * r))))
    f = max(1, round(c * r))
    return f + (f + c + 1) % 2, c, kh, kw


def _shape_words(shape):
    if len(shape) == 2:
        return "2-D (Din, Dout) weight"
    kh, kw = shape[2:]
    kind = "1x1" if kh == kw == 1 else ("square" if kh == kw else ("tall" if kh > kw else "wide"))
    return f"4-D conv weight, {kind} kernel"


# ------------------------------------------------------------------------------------------------------------
# Verdicts
# ------------------------------------------------------------------------------------------------------------

def _array_problem(w, shape, dtype=True):
    """What is wrong with the array ``w`` (or ''); ``dtype=False`` leaves the dtype to the statistical cases."""
    if not isinstance(w, np.ndarray):
        return f"returned a {type(w).__name__}, expected a numpy array"
    if w.shape != tuple(shape):   # the hidden shape stays hidden
        if w.shape == tuple(shape)[::-1]:
            return "returned the shape reversed (transposed); return an array of exactly the shape asked for"
        return f"returned an array of another shape than the {len(shape)}-D shape asked for"
    if dtype and w.dtype != np.float64:
        return f"returned dtype {w.dtype}, expected float64"
    if not np.all(np.isfinite(w)):
        return "returned non-finite values (nan or inf)"
    return ""


def _std_diagnosis(got, shape, mode, gain, family, uniform):
    """Which slip gives the std ``got`` (or ''), from the std each slip would give."""
    fan_in, fan_out = fans(shape)
    fan = fan_of(shape, mode)
    std = gain / math.sqrt(fan)
    candidates = []
    for other in MODES:
        if other != mode:
            candidates.append((gain / math.sqrt(fan_of(shape, other)),
                               f"it matches mode {other!r}; this case asked for mode {mode!r}"))
    candidates.append((gain / math.sqrt(fan_in + fan_out),
                       "it looks like fan_avg = fan_in + fan_out; fan_avg is their mean, (fan_in + fan_out) / 2"))
    if len(shape) == 2:
        swapped = {"fan_in": fan_out, "fan_out": fan_in, "fan_avg": fan}[mode]
        candidates.append((gain / math.sqrt(swapped), "it looks like fan_in and fan_out are swapped: the lecture's "
                                                      "W is (Din, Dout), so fan_in = shape[0]"))
    else:
        f, c, kh, kw = shape
        bare = {"fan_in": c, "fan_out": f, "fan_avg": (c + f) / 2}[mode]
        candidates.append((gain / math.sqrt(bare), "it looks like the kernel size (KH * KW) is left out of the fan"))
        if mode != "fan_in":
            part = {"fan_out": f, "fan_avg": (c * kh * kw + f) / 2}[mode]
            candidates.append((gain / math.sqrt(part), "it looks like fan_out leaves out the kernel size: "
                                                       "fan_out = F * KH * KW"))
    if family == "kaiming" and math.isclose(gain, math.sqrt(2)):
        candidates.append((2 / math.sqrt(fan), "it looks like the slide's typo std = 2 / sqrt(fan); the right "
                                               "std is sqrt(2 / fan)"))
    if gain != 1.0:
        candidates.append((1 / math.sqrt(fan), "it looks like the gain is left out"))
        candidates.append((gain ** 2 / math.sqrt(fan), "it looks like the gain is squared"))
    if uniform:
        candidates.append((std / math.sqrt(3), "it looks like the bound is gain * sqrt(1 / fan); U(-a, a) has std "
                                               "a / sqrt(3), so a = gain * sqrt(3 / fan)"))
    candidates.append((gain / fan, "it looks like the std is gain / fan (a missing square root)"))
    candidates.append((gain ** 2 / fan, "it looks like the variance was used where the std belongs"))
    matches = []
    for value, words in candidates:
        if abs(value / std - 1) > 1e-6 and abs(got / value - 1) < 0.02 and words not in matches:
            matches.append(words)
    return "; or ".join(matches[:2])


def sample_verdict(w, shape, std, bound=None, diagnose=None):
    """(ok, message) for the sample ``w``: shape, dtype, then the statistics of grader/stats.py."""
    problem = _array_problem(w, shape)
    if problem:
        return False, problem
    return stats.sample_verdict(w, std, bound, diagnose)


def _fan_verdict(value, expected):
    if isinstance(value, np.ndarray) and value.ndim == 1:
        value = value.tolist()
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        return False, f"returned a {type(value).__name__}" + (" of another length" if isinstance(value, (tuple, list))
                                                               else "") + ", expected a tuple (fan_in, fan_out)"
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value):
        return False, "expected two numbers (fan_in, fan_out)"
    wrong = [name for name, v, e in zip(("fan_in", "fan_out"), value, expected) if v != e]
    if not wrong:
        return True, ""
    got_in, got_out = value
    e_in, e_out = expected
    if (got_in, got_out) == (e_out, e_in):
        return False, "fan_in and fan_out are swapped (the lecture's W is (Din, Dout): fan_in = shape[0])"
    return False, f"{' and '.join(wrong)} {'is' if len(wrong) == 1 else 'are'} wrong"


def _real(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# ------------------------------------------------------------------------------------------------------------
# Child 1: fans, gains, the activation experiment
# ------------------------------------------------------------------------------------------------------------

class Shapes:
    """Shape tuples built in the child (JSON literals arrive as lists)."""

    def __init__(self, plan):
        self.plan, self.names = plan, {}

    def __call__(self, shape):
        shape = tuple(int(s) for s in shape)
        if shape not in self.names:
            self.names[shape] = f"shape{len(self.names)}"
            self.plan.call("builtin:tuple", *({"v": s} for s in shape), save=self.names[shape])
        return {"var": self.names[shape]}


def _kernels(rng, orientation):
    """A kernel of KERNELS that is "square" (1x1 aside), "tall" or "wide"."""
    fits = [k for k in KERNELS if k != (1, 1) and
            {"square": k[0] == k[1], "tall": k[0] > k[1], "wide": k[0] < k[1]}[orientation]]
    return fits[int(rng.integers(len(fits)))]


def fan_cases(rng):
    """[(shape, words)]: 2-D weights, 4-D ones with a square, a tall, a wide and a 1x1 kernel, and bad ranks."""
    cases = [(shape_2d(rng, 10, 300), "2-D (Din, Dout) weight") for _ in range(3)]
    for kernel in [_kernels(rng, "square"), _kernels(rng, "tall"), _kernels(rng, "wide"), (1, 1)]:
        shape = shape_4d(rng, kernel, elements=(500, 50_000))
        cases.append((shape, _shape_words(shape)))
    for rank in (1, 3, 5):
        cases.append((tuple(int(rng.integers(2, 9)) for _ in range(rank)),
                      f"rank {rank}, {behaviours.ERRORS['fan_in_and_fan_out']['rank']}"))
    return cases


def _plan_fans(plan, shapes, rng):
    cases = fan_cases(rng)
    for i, (shape, words) in enumerate(cases):
        plan.call("fan_in_and_fan_out", shapes(shape), id=f"fan{i}")

    def verdicts(outcome):
        for i, (shape, words) in enumerate(cases):
            ok, value = plan.answer(f"fan{i}")
            label = f"hidden case {i + 1} ({words})"
            if len(shape) in (2, 4):
                outcome.add(label, *(_fan_verdict(value, fans(shape)) if ok else (False, value)))
            else:
                behaviours.add_error(outcome, label, (ok, value))
    return verdicts


# Names calculate_gain does not know: one sorts before every known name, one after, so a comparison other than
# == cannot let them through.
UNKNOWN = ("elu", "tanhshrink")


def _plan_gains(plan, rng):
    slope = round(float(rng.uniform(0.05, 0.5)), 6)
    param, = behaviours.KEYWORDS["calculate_gain"]
    cases = [(("linear",), "linear"), (("sigmoid",), "sigmoid"), (("relu",), "relu"), (("tanh",), "tanh"),
             (("leaky_relu",), f"leaky_relu, {param.left_out()}"), (("leaky_relu", slope), "leaky_relu, slope given"),
             *((("leaky_relu", value), f"leaky_relu, {param.edge(value)}") for value in param.edges),
             *(((name,), behaviours.ERRORS["calculate_gain"]["nonlinearity"]) for name in UNKNOWN)]
    for i, (args, _) in enumerate(cases):
        plan.call("calculate_gain", *({"v": a} for a in args), id=f"gain{i}")

    def verdicts(outcome):
        for i, (args, words) in enumerate(cases):
            ok, value = plan.answer(f"gain{i}")
            label = f"case {i + 1} ({words})"
            if args[0] in UNKNOWN:
                behaviours.add_error(outcome, label, (ok, value))
            elif not ok:
                outcome.add(label, False, value)
            elif not _real(value):
                outcome.add(label, False, f"returned a {type(value).__name__}, expected a float")
            else:
                expected = gain_of(*args)
                good = math.isclose(value, expected, rel_tol=GAIN_TOL)
                if good:
                    message = ""
                elif len(args) > 1 and args[1] != 0.0:   # the hidden slope stays hidden
                    message = f"the gain is {'too large' if value > expected else 'too small'}: " \
                              "sqrt(2 / (1 + slope ** 2)) with slope = param"
                else:
                    message = f"returned {value:.6g}, expected {expected:.6g}"
                if not good and args[1:] == (0.0,) and math.isclose(value, gain_of("leaky_relu"), rel_tol=GAIN_TOL):
                    message += " (a slope of 0 is a value, not 'no slope given': test `param is None`)"
                outcome.add(label, good, message)
    return verdicts


def replay(scale, per_sqrt_fan_in, nonlinearity, dims, batch, generator):
    """The contract's procedure, with the same init callable the child gets."""
    init = builtin_normal_init(scale, per_sqrt_fan_in)
    f = np.tanh if nonlinearity == "tanh" else (lambda z: np.maximum(0.0, z))
    x = generator.standard_normal((batch, dims[0]))
    stds = []
    for d_in, d_out in zip(dims[:-1], dims[1:]):
        x = f(x @ init((d_in, d_out), rng=generator))
        stds.append(float(x.std()))
    return stds


def _trend(stds):
    ratio = stds[-1] / stds[0] if stds[0] > 0 else float("inf")
    return "falls" if ratio < 0.8 else ("grows" if ratio > 1.25 else "holds steady")


def stds_verdict(value, expected, batch, dims):
    """(ok, message) for a list of per-layer stds against the replay's."""
    if isinstance(value, np.ndarray) and value.ndim == 1:
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        return False, f"returned a {type(value).__name__}, expected a list of floats"
    if len(value) != len(expected):
        return False, f"returned another number of stds than one per layer ({len(expected)})"
    if not all(_real(v) for v in value):
        return False, "expected a list of floats"
    got = np.array(value, dtype=np.float64)
    exp = np.array(expected)
    if not np.all(np.isfinite(got)):
        return False, "returned non-finite stds"
    error = float(np.max(np.abs(got - exp) / np.maximum(1e-300, np.abs(exp))))
    if error <= STDS_TOL:
        return True, ""
    message = f"the stds differ from the contract's procedure (max relative error {error:.1e})"
    n = batch * np.array(dims[1:])
    if np.allclose(got / exp, np.sqrt(n / (n - 1)), rtol=1e-9):
        return False, message + ": it looks like ddof=1; the std is over all elements with ddof 0 (x.std())"
    if _trend(got) == _trend(exp) and np.all(np.abs(got / exp - 1) < 0.25):
        return False, message + (f". Your numbers follow the right trend (the std {_trend(exp)} layer after "
                                 "layer) but not the exact procedure: make one Generator g from rng, once; draw "
                                 "x = g.standard_normal((batch, dims[0])) first; then for each layer W = "
                                 "init((Din, Dout), rng=g) and x = f(x @ W); record x.std()")
    return False, message + f"; the trend is off too (the std {_trend(exp)} layer after layer; yours {_trend(got)})"


def _plan_activations(plan, rng):
    def dims():
        return tuple(int(d) for d in rng.integers(256, 513, size=int(rng.integers(4, 7))))  # 3 to 5 layers

    experiments = []   # (words, scale, per_sqrt_fan_in, nonlinearity, dims, batch or None)
    for words, kind, nonlinearity in [
            ("tanh, small fixed-scale normal init: the activations collapse", "small", "tanh"),
            ("tanh, large fixed-scale normal init: tanh saturates", "large", "tanh"),
            ("relu, fixed-scale normal init", "small", "relu"),
            ("tanh, Xavier-style init", 1.0, "tanh"),
            ("tanh, Xavier-style init with gain 5/3", 5 / 3, "tanh"),
            ("relu, Kaiming-style init", math.sqrt(2), "relu"),
            ("relu, the slide's 2 / sqrt(Din)", 2.0, "relu")]:
        d = dims()
        if kind == "small":
            scale, per = float(rng.uniform(0.3, 0.7)) / math.sqrt(np.mean(d)), False
        elif kind == "large":
            scale, per = float(rng.uniform(2.0, 4.0)) / math.sqrt(np.mean(d)), False
        else:
            scale, per = float(kind), True
        experiments.append((words, scale, per, nonlinearity, d, int(rng.integers(16, 65))))
    experiments.append(("relu, Kaiming-style init, batch left out (default 16)", math.sqrt(2), True, "relu",
                        dims(), None))
    seeds = [int(s) for s in rng.integers(2 ** 31, size=len(experiments) + 1)]
    for i, (words, scale, per, nonlinearity, d, batch) in enumerate(experiments):
        plan.call("builtin:normal_init", {"v": scale}, {"v": per}, save=f"init{i}")
        kwargs = {"dims": {"v": list(d)}, "rng": {"v": seeds[i]}}
        if batch is not None:
            kwargs["batch"] = {"v": batch}
        plan.call("activation_stds", {"var": f"init{i}"}, {"v": nonlinearity}, id=f"act{i}", **kwargs)
    # A Generator passed in is used as it is: two calls with it continue one stream.
    g_dims, g_batch = dims(), int(rng.integers(16, 65))
    plan.call("builtin:normal_init", {"v": 1.0}, {"v": True}, save="init_g")
    plan.call("builtin:rng", {"v": seeds[-1]}, save="g")
    for k in range(2):
        plan.call("activation_stds", {"var": "init_g"}, {"v": "tanh"}, dims={"v": list(g_dims)},
                  batch={"v": g_batch}, rng={"var": "g"}, id=f"actg{k}")
    for k in range(2):   # rng left out: fresh entropy, two calls differ
        plan.call("activation_stds", {"var": "init_g"}, {"v": "relu"}, dims={"v": [32, 32]}, id=f"actnone{k}")
    plan.call("activation_stds", {"var": "init_g"}, {"v": "gelu"}, dims={"v": [8, 8]}, rng={"v": 0}, id="actbad")

    def verdicts(outcome):
        for i, (words, scale, per, nonlinearity, d, batch) in enumerate(experiments):
            ok, value = plan.answer(f"act{i}")
            b = 16 if batch is None else batch
            expected = replay(scale, per, nonlinearity, d, b, np.random.default_rng(seeds[i]))
            outcome.add(f"hidden case {i + 1} ({words})",
                        *(stds_verdict(value, expected, b, d) if ok else (False, value)))
        generator = np.random.default_rng(seeds[-1])
        problems = []
        for k in range(2):
            ok, value = plan.answer(f"actg{k}")
            expected = replay(1.0, True, "tanh", g_dims, g_batch, generator)
            good, message = stds_verdict(value, expected, g_batch, g_dims) if ok else (False, value)
            if not good:
                problems.append(f"call {k + 1}: {message}")
        hint = " (use the Generator you are given as it is: np.random.default_rng(g) returns g itself)" \
            if len(problems) == 1 and problems[0].startswith("call 2") else ""
        promises = behaviours.PROMISES["activation_stds"]
        outcome.add(promises["generator"], not problems, "; ".join(problems) + hint)
        (ok0, first), (ok1, second) = plan.answer("actnone0"), plan.answer("actnone1")
        problem = first if not ok0 else (second if not ok1 else "")
        if not problem and np.array_equal(first, second):
            problem = "two calls without rng returned the same stds: rng=None means fresh entropy"
        behaviours.add_gated(outcome, promises["none"], not problem, problem)
        behaviours.add_error(outcome, behaviours.ERRORS["activation_stds"]["nonlinearity"], plan.answer("actbad"))
    return verdicts


# ------------------------------------------------------------------------------------------------------------
# One child per initializer
# ------------------------------------------------------------------------------------------------------------

def _plan_scheme(name, rng):
    family, uniform = SCHEMES[name]
    plan = Plan(MODULE)
    shapes = Shapes(plan)
    seeds = iter(int(s) for s in rng.integers(2 ** 31, size=64))
    keywords = {kw.name: kw for kw in behaviours.KEYWORDS[name]}
    cases = []   # (label, shape, mode, gain, kwargs, what it weighs as)
    weights = [shape_2d(rng), shape_4d(rng, _kernels(rng, KERNEL_OF[name]))]
    for shape in weights:
        for mode in MODES:
            if family == "xavier":
                gain = round(float(rng.uniform(*XAVIER_GAINS)), 6)
                variants = [({}, 1.0, keywords["gain"].left_out()), ({"gain": {"v": gain}}, gain, "gain given")]
            else:
                other = OTHER_NONLINEARITIES[mode]
                variants = [({}, gain_of("relu"), keywords["nonlinearity"].left_out()),
                             ({"nonlinearity": {"v": other}}, gain_of(other), f"nonlinearity {other}")]
            for kwargs, gain_value, words in variants:
                cases.append((f"hidden case {len(cases) + 1} ({_shape_words(shape)}, mode {mode}, {words})", shape,
                              mode, gain_value, dict(kwargs, mode={"v": mode}), CATEGORY))
    big = shape_2d(rng, 360, 460)
    default_mode = keywords["mode"].default
    default_gain = 1.0 if family == "xavier" else gain_of(keywords["nonlinearity"].default)
    cases.append((f"hidden case {len(cases) + 1} (large 2-D sample, all defaults (mode {default_mode}, "
                  f"{'gain 1' if family == 'xavier' else 'relu'}))", big, default_mode, default_gain, {}, CATEGORY))
    # The mode left out alone, the other keyword given away from its default.
    if family == "xavier":
        gain = round(float(rng.uniform(*XAVIER_GAINS)), 6)
        given, gain_value = {"gain": {"v": gain}}, gain
    else:
        given, gain_value = {"nonlinearity": {"v": "tanh"}}, gain_of("tanh")
    cases.append((f"{keywords['mode'].left_out()}, 2-D weight", shape_2d(rng), default_mode, gain_value, given,
                  keywords["mode"].left_out_kind))
    for i, (label, shape, mode, gain, kwargs, _) in enumerate(cases):
        plan.call(name, shapes(shape), id=f"s{i}", rng={"v": next(seeds)}, **kwargs)

    small = (int(rng.integers(20, 41)), int(rng.integers(20, 41)))
    seed = next(seeds)
    plan.call(name, shapes(small), rng={"v": seed}, id="same0")
    plan.call(name, shapes(small), rng={"v": seed}, id="same1")
    plan.call(name, shapes(small), rng={"v": seed + 1}, id="other")
    plan.call("builtin:rng", {"v": next(seeds)}, save="g")
    plan.call(name, shapes(small), rng={"var": "g"}, id="gen0")
    plan.call(name, shapes(small), rng={"var": "g"}, id="gen1")
    plan.call(name, shapes(small), id="none0")
    plan.call(name, shapes(small), id="none1")
    edges = [(keywords["gain"].edge(value), value) for value in keywords["gain"].edges] if family == "xavier" else []
    for k, (_, value) in enumerate(edges):   # gain 0: every weight 0
        plan.call(name, shapes(small), gain={"v": value}, rng={"v": next(seeds)}, id=f"edge{k}")
    plan.call(name, shapes(small), mode={"v": "fan_sum"}, rng={"v": 0}, id="badmode")
    plan.call(name, shapes((10, 10, 10)), rng={"v": 0}, id="badrank")
    if family == "kaiming":
        plan.call(name, shapes(small), nonlinearity={"v": "swish"}, rng={"v": 0}, id="badgain")

    def verdicts():
        outcome = Outcome()
        for i, (label, shape, mode, gain, kwargs, weighs) in enumerate(cases):
            std = gain / math.sqrt(fan_of(shape, mode))
            ok, w = plan.answer(f"s{i}")

            def diagnose(got, shape=shape, mode=mode, gain=gain):
                return _std_diagnosis(got, shape, mode, gain, family, uniform)
            outcome.add(label, *(sample_verdict(w, shape, std, std * math.sqrt(3) if uniform else None, diagnose)
                                 if ok else (False, w)), weighs)
        answers = {k: plan.answer(k) for k in ("same0", "same1", "other", "gen0", "gen1", "none0", "none1")}

        def pair(a, b, equal, words):
            (ok_a, x), (ok_b, y) = answers[a], answers[b]
            for ok, v in ((ok_a, x), (ok_b, y)):
                if not ok:
                    return False, v
                problem = _array_problem(v, small, dtype=False)
                if problem:
                    return False, problem
            same = np.array_equal(x, y)
            return (True, "") if same == equal else (False, words)
        promises = behaviours.PROMISES[name]
        behaviours.add_gated(outcome, promises["same seed"], *pair(
            "same0", "same1", True, "two calls with the same int seed returned different arrays (make the "
                                    "Generator from rng: np.random.default_rng(rng))"))
        behaviours.add_gated(outcome, promises["other seed"], *pair(
            "same0", "other", False, "two different seeds returned the same array"))
        behaviours.add_gated(outcome, promises["generator"], *pair(
            "gen0", "gen1", False, "two calls with the same Generator returned the same array: draw from the "
                                   "Generator you are given, it advances"))
        behaviours.add_gated(outcome, promises["none"], *pair(
            "none0", "none1", False, "two calls without rng returned the same array: rng=None means fresh "
                                     "entropy (np.random.default_rng(None))"))
        for k, (label, value) in enumerate(edges):
            ok, w = plan.answer(f"edge{k}")
            problem = (_array_problem(w, small) or ("" if np.all(w == 0) else "expected every weight to be 0 "
                                                    f"(std = gain / sqrt(fan) with gain {value})")) if ok else w
            behaviours.add_gated(outcome, label, not problem, problem)
        errors = behaviours.ERRORS[name]
        behaviours.add_error(outcome, errors["mode"], plan.answer("badmode"))
        behaviours.add_error(outcome, errors["rank"], plan.answer("badrank"))
        if family == "kaiming":
            behaviours.add_error(outcome, errors["nonlinearity"], plan.answer("badgain"))
        return outcome
    return plan, verdicts


# ------------------------------------------------------------------------------------------------------------

def check(files, rng, limits, names):
    """{test name: Outcome} for the tests in ``names``."""
    if FILE not in files:
        return blocked(names, f"{FILE} was not submitted")
    source = with_given({FILE: files[FILE]})
    plan = Plan(MODULE)
    shapes = Shapes(plan)
    fan_verdicts = _plan_fans(plan, shapes, rng)
    gain_verdicts = _plan_gains(plan, rng)
    activation_verdicts = _plan_activations(plan, rng)
    schemes = {name: _plan_scheme(name, rng) for name in SCHEMES}   # drawn before any child runs
    plan.run(source, limits)
    error = plan.import_error()
    if error:
        return blocked(names, f"{FILE} could not be imported: {error}")
    outcomes = {name: Outcome() for name in ("fan_in_and_fan_out", "calculate_gain", "activation_stds")}
    fan_verdicts(outcomes["fan_in_and_fan_out"])
    gain_verdicts(outcomes["calculate_gain"])
    activation_verdicts(outcomes["activation_stds"])
    for name, (scheme_plan, verdicts) in schemes.items():
        if name not in names:
            continue
        scheme_plan.run(source, limits)
        outcomes[name] = verdicts()
    return {name: outcomes.get(name) for name in names}
