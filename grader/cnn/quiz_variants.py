"""Per-student cases for quiz.py, and the grader's own closed-form answers to them.

``draw_quiz_cases(rng)`` draws the hidden cases of each calculator of quiz.py: a fixed layout of scenarios, the
same in every grade, covering the cases where bugs hide (strides that do not divide ``size + 2*pad - kernel``,
so ``/`` and ``//`` differ; padding; bias on and off; 1x1 kernels; pooling windows that overlap, tile the input
or leave gaps; a window covering the whole input), with sizes and channels drawn per seed among the values that
show the same slips: a bug costs the same cases in every grade. Every draw is valid: the output is at least
1x1, a conv's pad is less than its kernel, a pool's pad is at most ``kernel // 2`` (as PyTorch requires).

Each case is a dict:
    kind: the quiz function to call ("conv_output_size", "pool_output_size", "conv_layer", "pool_layer",
        "fc_layer");
    args: its keyword arguments (plain Python ints and bools);
    category: a description the grader may show without the values, e.g.
        "conv, 3x3 kernel, stride 2, pad 1, size not divisible by the stride, no bias";
    tags: the same facts as short machine-readable strings ("stride>1", "pad>0", "not divisible", ...).

``expected(case)`` is the oracle: the lecture's closed forms, written here again on purpose, independent of
solutions/ (nothing is imported from there).
"""
import functools
import operator

import numpy as np

from grader.cnn import size_rule

KINDS = ("conv_output_size", "pool_output_size", "conv_layer", "pool_layer", "fc_layer")
BYTES_PER_ELEMENT = 4
BYTES_PER_KB = 1024
MAX_SIZE = 96

# ------------------------------------------------------------------------------------------------------------
# The oracle
# ------------------------------------------------------------------------------------------------------------


def output_size(size, kernel, stride, pad):
    """``(size + 2*pad - kernel) // stride + 1``: PyTorch's floor rule, for convolution and pooling alike."""
    return (size + 2 * pad - kernel) // stride + 1


def _row(c_out, size_out, params, flops):
    elements = c_out * (size_out * size_out if size_out is not None else 1)
    return {"c_out": c_out, "size_out": size_out, "memory_kb": elements * BYTES_PER_ELEMENT / BYTES_PER_KB,
            "params": params, "flops": flops}


def expected(case):
    """The right answer to ``case``: an int for the output sizes, a dict (quiz.py's keys) for the layers."""
    kind, a = case["kind"], case["args"]
    if kind in ("conv_output_size", "pool_output_size"):
        return output_size(a["size"], a["kernel"], a["stride"], a["pad"])
    if kind == "conv_layer":
        s = output_size(a["size"], a["kernel"], a["stride"], a["pad"])
        window = a["c_in"] * a["kernel"] ** 2
        return _row(a["filters"], s, a["filters"] * window + (a["filters"] if a["bias"] else 0),
                    a["filters"] * s * s * window)
    if kind == "pool_layer":
        s = output_size(a["size"], a["kernel"], a["stride"], a["pad"])
        return _row(a["c_in"], s, 0, a["c_in"] * s * s * a["kernel"] ** 2)
    if kind == "fc_layer":
        return _row(a["d_out"], None, a["d_in"] * a["d_out"] + a["d_out"], a["d_in"] * a["d_out"])
    raise ValueError(f"unknown quiz case kind {kind!r}")


# The lecture's AlexNet (227 x 227 RGB input): (name, kind, configuration); each layer sees the previous output.
ALEXNET_INPUT = (3, 227)
ALEXNET = [
    ("conv1", "conv", dict(filters=64, kernel=11, stride=4, pad=2)),
    ("pool1", "pool", dict(kernel=3, stride=2)),
    ("conv2", "conv", dict(filters=192, kernel=5, stride=1, pad=2)),
    ("pool2", "pool", dict(kernel=3, stride=2)),
    ("conv3", "conv", dict(filters=384, kernel=3, stride=1, pad=1)),
    ("conv4", "conv", dict(filters=256, kernel=3, stride=1, pad=1)),
    ("conv5", "conv", dict(filters=256, kernel=3, stride=1, pad=1)),
    ("pool5", "pool", dict(kernel=3, stride=2)),
    ("flatten", "flatten", {}),
    ("fc6", "fc", dict(d_out=4096)),
    ("fc7", "fc", dict(d_out=4096)),
    ("fc8", "fc", dict(d_out=1000)),
]


def alexnet_rows():
    """The contract's AlexNet rows from the closed forms above: [(name, expected dict)]."""
    c, size = ALEXNET_INPUT
    rows = []
    for name, kind, config in ALEXNET:
        if kind == "conv":
            row = expected({"kind": "conv_layer", "args": dict(c_in=c, size=size, bias=True, **config)})
        elif kind == "pool":
            row = expected({"kind": "pool_layer", "args": dict(c_in=c, size=size, pad=0, **config)})
        elif kind == "fc":
            row = expected({"kind": "fc_layer", "args": dict(d_in=c, **config)})
        else:   # flatten: C x H x W elements in one vector, nothing to learn or compute
            row = _row(c * size * size, None, 0, 0)
        rows.append((name, row))
        c, size = row["c_out"], row["size_out"]
    return rows


def is_valid(case):
    """Whether the case's arithmetic is defined (and PyTorch would accept the layer)."""
    kind, a = case["kind"], case["args"]
    if kind == "fc_layer":
        return a["d_in"] >= 1 and a["d_out"] >= 1
    k, s, p = a["kernel"], a["stride"], a["pad"]
    if min(k, s, a["size"]) < 1 or p < 0:
        return False
    if kind in ("conv_output_size", "conv_layer"):
        ok = p < k
    else:
        ok = p <= k // 2
    if kind in ("conv_layer", "pool_layer"):
        ok = ok and a["c_in"] >= 1 and a.get("filters", 1) >= 1
    return ok and a["size"] + 2 * p >= k and output_size(a["size"], k, s, p) >= 1


# ------------------------------------------------------------------------------------------------------------
# Drawing
# ------------------------------------------------------------------------------------------------------------

# The layout: one case per scenario, in this order, in every grade. A scenario fixes the window (kernel, stride,
# pad) and whether the stride divides ``size + 2*pad - kernel`` (None: stride 1); the seed draws the size, among
# the sizes that show every slip of SIZE_SLIPS the geometry can show, and the channels.
CONV_SCENARIOS = [   # (kernel, stride, pad, divisible)
    (3, 1, 0, None),
    (3, 1, 1, None),     # "same" padding
    (4, 1, 2, None),
    (3, 2, 0, True),
    (3, 2, 0, False),
    (5, 2, 2, False),    # "same" padding, stride 2
    (5, 3, 1, False),
    (4, 3, 2, True),
    (7, 4, 0, False),
    (1, 2, 0, False),    # a 1x1 kernel at stride 2, as in ResNet's shortcuts
]
POOL_SCENARIOS = [   # (kernel, stride, pad, divisible); kernel None: a window covering the whole input, stride 1
    (3, 2, 0, False),    # AlexNet's 3x3 stride 2 on 56: floor(27.5)
    (3, 2, 0, True),
    (3, 2, 1, True),     # GoogLeNet's 3x3 stride 2 pad 1
    (3, 1, 1, None),     # 3x3 stride 1 pad 1 keeps the size
    (2, 2, 0, True),     # VGG's 2x2 stride 2 on an even size
    (2, 2, 0, False),    # 2x2 stride 2 on an odd size
    (3, 3, 1, False),
    (2, 3, 0, False),    # gaps between windows
    (None, 1, 0, None),
]
# The window of the cases that leave a keyword out or give it at its edge (grader/cnn/behaviours.py): every
# keyword away from its default, and valid with any of them back at its default.
KEYWORD_SCENARIO = (3, 2, 1, False)
FC_SCENARIOS = ["narrowing", "widening", "square", "single output", "flattened map"]
CHANNELS = (3, 16, 32, 48, 64, 96, 128, 192, 256, 384, 512)   # above 1: a forgotten c_in always shows

# Slips of the output-size rule, as a student makes them (a wrong size, the hint that names it).
SIZE_SLIPS = [
    (lambda size, k, s, p: -(-(size + 2 * p - k) // s) + 1, "it looks rounded up (ceil); the rule floors"),
    (lambda size, k, s, p: round((size + 2 * p - k) / s) + 1, "it looks rounded to the nearest; the rule floors"),
    (lambda size, k, s, p: (size - k) // s + 1, "it looks like the padding is left out"),
    (lambda size, k, s, p: (size + p - k) // s + 1, "it looks like the padding is counted on one side only "
                                                    "(2 * pad)"),
    (lambda size, k, s, p: (size + 2 * p - k) // s, "it looks like the + 1 is missing"),
    (lambda size, k, s, p: (size - 2 * p - k) // s + 1, "it looks like the padding is subtracted"),
    (lambda size, k, s, p: (size + 2 * p - k + 1) // s, "check the order of operations: (W - K + 2P) // S + 1"),
]
# The rule as quiz.py's solution writes it, for size_rule: its variants (an operator replaced) show too.
RULE = (operator.sub, operator.add, operator.mul, operator.floordiv, operator.add)


def _rule(ops, size, kernel, stride, pad):
    less_kernel, add_pad, twice, per_stride, add_one = ops
    return add_one(per_stride(add_pad(less_kernel(size, kernel), twice(2, pad)), stride), 1)


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def _shown(size, kernel, stride, pad):
    """Which slips of SIZE_SLIPS, and which variants of the rule, give a wrong size here."""
    exact = output_size(size, kernel, stride, pad)
    return tuple(slip(size, kernel, stride, pad) != exact for slip, _ in SIZE_SLIPS) \
        + size_rule.shown(_rule, RULE, size, kernel, stride, pad)


def whole_kb(elements):
    """Whether ``elements`` float32 values make a whole number of KB: there ``//`` for ``/`` gives the right
    memory, so no hidden case has that many."""
    return elements * BYTES_PER_ELEMENT % BYTES_PER_KB == 0


@functools.lru_cache(maxsize=None)   # a pure function of the scenario, asked once per case
def sizes(kernel, stride, pad, divisible):
    """The sizes up to MAX_SIZE with the wanted divisibility that show the most slips, all the same ones:
    whichever is drawn, a slip shows on it or on none of them. Their output has three positions at least (on 2,
    ``s ** s`` equals ``s * s``), and not a multiple of 16 (its square is 256 elements, a whole KB, times any
    channel count)."""
    fits = [size for size in range(max(2, kernel - 2 * pad), MAX_SIZE + 1)
            if output_size(size, kernel, stride, pad) >= 3 and output_size(size, kernel, stride, pad) % 16
            and (divisible is None or ((size + 2 * pad - kernel) % stride == 0) == divisible)]
    shown = {size: _shown(size, kernel, stride, pad) for size in fits}
    best = max(shown.values(), key=lambda slips: (sum(slips), slips))
    return [size for size in fits if shown[size] == best]


def _describe_geometry(layer, size, kernel, stride, pad):
    """(words, tags) for a window geometry; none of the words give away the size."""
    noun = "kernel" if layer == "conv" else "window"
    # A window as large as the padded input would give its size away: name it without numbers.
    shape = f"a {noun} covering the whole input" if kernel == size + 2 * pad else f"{kernel}x{kernel} {noun}"
    words, tags = [shape, f"stride {stride}", f"pad {pad}"], []
    tags.append("stride 1" if stride == 1 else "stride>1")
    tags.append("pad>0" if pad else "pad 0")
    if kernel == 1:
        tags.append("1x1 kernel")
    if stride > 1:
        if (size + 2 * pad - kernel) % stride:
            words.append("size not divisible by the stride")
            tags.append("not divisible")
        else:
            words.append("size divisible by the stride")
            tags.append("divisible")
    single = output_size(size, kernel, stride, pad) == 1
    if layer == "pool" and not single:
        if stride < kernel:
            words.append("overlapping windows")
            tags.append("overlapping")
        elif stride == kernel:
            words.append("windows tile the input")
            tags.append("non-overlapping")
        else:
            words.append("gaps between windows")
            tags += ["non-overlapping", "gaps"]
    if single:
        words.append("a single output position")
        tags.append("output 1x1")
    return words, tags


def _case(kind, args, words, tags):
    prefix = {"conv_output_size": "conv output size", "pool_output_size": "pool output size",
              "conv_layer": "conv", "pool_layer": "pool", "fc_layer": "fc"}[kind]
    return {"kind": kind, "args": args, "category": ", ".join([prefix, *words]), "tags": tags}


def draw_window(rng, kind, scenario, bias=None, keywords=False):
    """One case of ``scenario``. ``keywords``: the case is also asked with stride and pad at their defaults (1,
    0; check_quiz's keyword cases), so its memory is no whole number of KB in any of those geometries either."""
    kernel, stride, pad, divisible = scenario
    geometries = [(s, p) for s in (stride, 1) for p in (pad, 0)] if keywords else [(stride, pad)]
    if kernel is None:   # global pooling
        size = int(rng.integers(2, 15))
        kernel = size
    else:
        fits = sizes(kernel, stride, pad, divisible)
        if keywords:
            fits = [n for n in fits if all(output_size(n, kernel, s, p) % 16 for s, p in geometries)]
        size = int(_pick(rng, fits))
    # Channel counts whose memory is not a whole number of KB (whole_kb).
    channels = [c for c in CHANNELS
                if not any(whole_kb(c * output_size(size, kernel, s, p) ** 2) for s, p in geometries)]
    layer = "conv" if kind.startswith("conv") else "pool"
    words, tags = _describe_geometry(layer, size, kernel, stride, pad)
    args = {"size": size, "kernel": kernel, "stride": stride, "pad": pad}
    if kind == "conv_layer":
        filters = int(_pick(rng, channels))
        c_in = int(_pick(rng, [c for c in CHANNELS if c != filters]))
        args = {"c_in": c_in, **args, "filters": filters, "bias": bias}
        args = {key: args[key] for key in ("c_in", "size", "filters", "kernel", "stride", "pad", "bias")}
        words.append("bias" if bias else "no bias")
        tags.append("bias" if bias else "no bias")
    elif kind == "pool_layer":
        args = {"c_in": int(_pick(rng, channels)), **args}
    return _case(kind, args, words, tags)


def _draw_fc(rng, scenario):
    # Output widths never a whole number of KB (whole_kb); input widths odd, so that the weights' count d_in *
    # d_out has d_out's lowest bit: a | or ^ for the + of the bias never gives the right count.
    small, large = (int(_pick(rng, [d for d in range(low, high) if not whole_kb(d)])) for low, high in
                    ((2, 512), (512, 10_000)))
    odd_small, odd_large = small | 1, large | 1
    if scenario == "narrowing":
        d_in, d_out = odd_large, small
    elif scenario == "widening":
        d_in, d_out = odd_small, large
    elif scenario == "square":
        d_in = d_out = int(_pick(rng, (63, 99, 127, 255, 501, 999, 2047)))
    elif scenario == "single output":
        d_in, d_out = odd_large, 1
    else:
        c, s = int(_pick(rng, [c for c in CHANNELS if c % 2])), int(rng.integers(2, 8)) | 1
        d_in, d_out = c * s * s, int(_pick(rng, (10, 100, 1000, 2000)))
    return _case("fc_layer", {"d_in": d_in, "d_out": d_out}, [scenario], [scenario])


def draw_quiz_cases(rng=None):
    """The hidden cases of every calculator of quiz.py (``KINDS``, in that order), one per scenario of the
    layout, their values drawn from ``rng`` (a numpy Generator, an int seed or None). Conv layers alternate
    bias on and off, starting with bias."""
    rng = np.random.default_rng(rng)
    cases = []
    for kind in KINDS:
        if kind in ("conv_output_size", "conv_layer"):
            for i, scenario in enumerate(CONV_SCENARIOS):
                cases.append(draw_window(rng, kind, scenario, bias=i % 2 == 0))
        elif kind in ("pool_output_size", "pool_layer"):
            cases += [draw_window(rng, kind, scenario) for scenario in POOL_SCENARIOS]
        else:
            cases += [_draw_fc(rng, scenario) for scenario in FC_SCENARIOS]
    for case in cases:
        if not is_valid(case):   # a bug in the drawing, never the student's fault
            raise AssertionError(f"drew an invalid quiz case: {case}")
    return cases
