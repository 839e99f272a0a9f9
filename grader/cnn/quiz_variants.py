"""Per-student cases for quiz.py, and the grader's own closed-form answers to them.

``draw_quiz_cases(rng)`` draws fresh layer configurations for each calculator of quiz.py. The draws are biased
towards the cases where bugs hide: strides that do not divide ``size + 2*pad - kernel`` (so ``/`` and ``//``
differ), padding, bias on and off, 1x1 kernels, pooling windows that overlap (stride < kernel), tile the input
(stride == kernel) or leave gaps (stride > kernel), a window covering the whole input. Every draw is valid:
the output is at least 1x1, a conv's pad is less than its kernel, a pool's pad is at most ``kernel // 2`` (as
PyTorch requires).

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
import numpy as np

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

# Convolution scenarios: (stride choices, pad rule, divisible?). Pad rules: "zero", "same" ((k-1)//2 with an odd
# kernel), "some" (1..k-1). divisible: True, False, or None (stride 1 always divides).
CONV_SCENARIOS = [
    ((1,), "zero", None),
    ((1,), "same", None),
    ((1,), "some", None),
    ((2,), "zero", True),
    ((2,), "zero", False),
    ((2,), "same", False),
    ((2, 3, 4), "some", True),
    ((2, 3, 4), "some", False),
    ((3, 4, 5), "zero", False),
    ("1x1", "zero", None),   # a 1x1 kernel (stride 1 or 2, as in ResNet's shortcuts)
]
# Pooling scenarios: (window relation, pad?, divisible?). "overlap": stride < kernel; "tile": stride == kernel;
# "gap": stride > kernel; "global": kernel == size, stride 1 (one output).
POOL_SCENARIOS = [
    ("overlap", False, False),   # AlexNet's 3x3 stride 2 on 56: floor(27.5)
    ("overlap", False, True),
    ("overlap", True, None),     # GoogLeNet's 3x3 stride 2 pad 1
    ("stride1", True, None),     # 3x3 stride 1 pad 1 keeps the size
    ("tile", False, True),       # VGG's 2x2 stride 2 on an even size
    ("tile", False, False),      # 2x2 stride 2 on an odd size
    ("tile", True, None),
    ("gap", False, None),
    ("global", False, None),
]
FC_SCENARIOS = ["narrowing", "widening", "square", "single output", "flattened map"]
KERNELS = (2, 3, 3, 3, 4, 5, 5, 7, 11)
ODD_KERNELS = (3, 3, 5, 7, 11)
CHANNELS = (1, 3, 16, 32, 48, 64, 96, 128, 192, 256, 384, 512)


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def _sizes(kernel, stride, pad, divisible, low=1):
    """Sizes in [low, MAX_SIZE] giving an output of at least 1 and the wanted divisibility."""
    out = []
    for size in range(max(low, kernel - 2 * pad, 1), MAX_SIZE + 1):
        span = size + 2 * pad - kernel
        if divisible is None or (span % stride == 0) == divisible:
            out.append(size)
    return out


def _conv_geometry(rng, scenario):
    strides, pad_rule, divisible = scenario
    while True:
        if strides == "1x1":
            kernel, stride = 1, int(_pick(rng, (1, 2)))
        else:
            kernel = int(_pick(rng, ODD_KERNELS if pad_rule == "same" else KERNELS))
            stride = int(_pick(rng, strides))
        if pad_rule == "zero":
            pad = 0
        elif pad_rule == "same":
            pad = (kernel - 1) // 2
        else:
            if kernel < 2:
                continue
            pad = int(rng.integers(1, kernel))
        want = divisible if stride > 1 else None
        sizes = _sizes(kernel, stride, pad, want, low=2)
        if sizes:
            return int(_pick(rng, sizes)), kernel, stride, pad


def _pool_geometry(rng, scenario):
    relation, padded, divisible = scenario
    while True:
        if relation == "global":
            size = int(rng.integers(2, 15))
            return size, size, 1, 0
        if relation == "overlap":
            kernel = int(_pick(rng, (2, 3, 3, 3, 4, 5)))
            stride = int(rng.integers(2, kernel)) if kernel > 2 else None
            if stride is None:
                continue
        elif relation == "stride1":
            kernel, stride = int(_pick(rng, (3, 3, 5))), 1
        elif relation == "tile":
            kernel = int(_pick(rng, (2, 2, 2, 3, 4)))
            stride = kernel
        else:  # gap
            kernel = int(_pick(rng, (1, 1, 2, 2, 3)))
            stride = kernel + int(rng.integers(1, 3))
        if relation == "stride1":
            pad = kernel // 2
        elif padded:
            if kernel // 2 < 1:
                continue
            pad = int(rng.integers(1, kernel // 2 + 1))
        else:
            pad = 0
        want = divisible if stride > 1 else None
        sizes = _sizes(kernel, stride, pad, want, low=2)
        if sizes:
            return int(_pick(rng, sizes)), kernel, stride, pad


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


def _draw_conv(rng, kind, scenario, bias):
    size, kernel, stride, pad = _conv_geometry(rng, scenario)
    words, tags = _describe_geometry("conv", size, kernel, stride, pad)
    args = {"size": size, "kernel": kernel, "stride": stride, "pad": pad}
    if kind == "conv_layer":
        args = {"c_in": int(_pick(rng, CHANNELS)), **args, "filters": int(_pick(rng, CHANNELS[1:])), "bias": bias}
        args = {key: args[key] for key in ("c_in", "size", "filters", "kernel", "stride", "pad", "bias")}
        words.append("bias" if bias else "no bias")
        tags.append("bias" if bias else "no bias")
    return _case(kind, args, words, tags)


def _draw_pool(rng, kind, scenario):
    size, kernel, stride, pad = _pool_geometry(rng, scenario)
    words, tags = _describe_geometry("pool", size, kernel, stride, pad)
    args = {"size": size, "kernel": kernel, "stride": stride, "pad": pad}
    if kind == "pool_layer":
        args = {"c_in": int(_pick(rng, CHANNELS)), **args}
    return _case(kind, args, words, tags)


def _draw_fc(rng, scenario):
    small, large = int(rng.integers(2, 512)), int(rng.integers(512, 10_000))
    if scenario == "narrowing":
        d_in, d_out = large, small
    elif scenario == "widening":
        d_in, d_out = small, large
    elif scenario == "square":
        d_in = d_out = int(_pick(rng, (64, 128, 256, 512, 1000, 1024, 4096)))
    elif scenario == "single output":
        d_in, d_out = large, 1
    else:
        c, s = int(_pick(rng, CHANNELS[1:])), int(rng.integers(1, 8))
        d_in, d_out = c * s * s, int(_pick(rng, (10, 100, 1000, 4096)))
    return _case("fc_layer", {"d_in": d_in, "d_out": d_out}, [scenario], [scenario])


def _scenario_order(rng, scenarios, n):
    """``n`` scenarios: every one once (in a random order) before any repeats."""
    order = []
    while len(order) < n:
        order += [scenarios[i] for i in rng.permutation(len(scenarios))]
    return order[:n]


def draw_quiz_cases(rng=None, n_per_kind=10):
    """``n_per_kind`` fresh cases for each of ``KINDS`` (in that order), drawn from ``rng`` (a numpy Generator,
    an int seed or None). With ``n_per_kind`` at least 10 every scenario of each kind appears; conv layers
    alternate bias on and off."""
    rng = np.random.default_rng(rng)
    cases = []
    for kind in KINDS:
        if kind in ("conv_output_size", "conv_layer"):
            first_bias = bool(rng.integers(2))
            for i, scenario in enumerate(_scenario_order(rng, CONV_SCENARIOS, n_per_kind)):
                cases.append(_draw_conv(rng, kind, scenario, bias=(i % 2 == 0) == first_bias))
        elif kind in ("pool_output_size", "pool_layer"):
            for scenario in _scenario_order(rng, POOL_SCENARIOS, n_per_kind):
                cases.append(_draw_pool(rng, kind, scenario))
        else:
            for scenario in _scenario_order(rng, FC_SCENARIOS, n_per_kind):
                cases.append(_draw_fc(rng, scenario))
    for case in cases:
        if not is_valid(case):   # a bug in the drawing, never the student's fault
            raise AssertionError(f"drew an invalid quiz case: {case}")
    return cases
