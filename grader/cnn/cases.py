"""Random test cases for the numpy layers, drawn from a Generator: the grader's hidden cases per submission.

Each case is a dict: ``category`` (words a student may see: stride, pad, kernel shape, what makes it awkward;
never values), ``inputs`` (name -> array) and ``params`` (the layer's parameter dict).

Coverage is stratified, not left to chance: every draw holds at least one case of every stratum in
``STRATA`` (where a bug can hide), while the sizes and values inside each stratum stay random per submission.
``strata(kind, case)`` reads a case's strata off its actual arrays and parameters, so a test can prove the
promise for any seed. Batchnorm's optional parameters left out (eps, momentum, running statistics) are the
checker's fixed "defaults" case, not a drawn one.
"""
import numpy as np

STRATA = {
    "conv": ["square kernel", "tall kernel", "wide kernel", "input taller than wide", "input wider than tall",
             "pad 0", "pad > 0", "stride 1", "stride > 1", "stride divides the size", "stride does not divide the size",
             "batch of 1", "batch > 1", "1 channel", "channels > 1"],
    "pool": ["square window", "tall window", "wide window", "input taller than wide", "input wider than tall",
             "stride below the window", "stride equal to the window", "stride above the window",
             "stride divides the size", "stride does not divide the size",
             "batch of 1", "batch > 1", "1 channel", "channels > 1"],
    "batchnorm": ["batch of 2", "batch of 3", "batch > 3", "1 feature", "features > 1"],
    "spatial_batchnorm": ["batch of 1", "batch of 2", "batch > 2", "1 channel", "channels > 1",
                          "input taller than wide", "input wider than tall"],
}
# (stride, pad) per convolution case; orientation, batch and channels are dealt out to them per draw.
CONV_SCENARIOS = [(1, 1), (2, 0), (2, 1), (3, 2), (1, 0)]
# Per pooling case, the stride against the window; the window equal to the stride is square.
POOL_SCENARIOS = ["equal", "below", "above", "below"]
# Batch sizes for batchnorm: tiny ones hide bugs in the 1/N terms.
BN_BATCHES = [2, 3, 8]
SPATIAL_BATCHES = [1, 2, 5]
MAX_SIZE = 12


def _divides(size, kernel, stride, pad=0):
    return (size + 2 * pad - kernel) % stride == 0


def _orientation(h, w):
    return "square" if h == w else ("tall" if h > w else "wide")


def _deal(rng, values, n):
    """``n`` values, each of ``values`` at least once, the rest drawn from them, in random order."""
    dealt = list(values) + [values[int(i)] for i in rng.integers(len(values), size=n - len(values))]
    return [dealt[int(i)] for i in rng.permutation(n)]


def _counts(rng, ones):
    """A batch size or channel count per case: 1 where ``ones`` says so, else 2 or 3."""
    return [1 if one else int(rng.integers(2, 4)) for one in ones]


def _kernel(rng, shape, low=1, high=4):
    """(height, width) in [low, high] of the given orientation."""
    a = int(rng.integers(low, high + 1))
    if shape == "square":
        return a, a
    a = max(a, low + 1)
    b = int(rng.integers(low, a))
    return (a, b) if shape == "tall" else (b, a)


def _input_size(rng, kernel, stride, pad, taller, divides, least):
    """(H, W) taller or wider as asked, each at least ``least`` (windows that fit); both axes divisible by the
    stride when ``divides`` is True, at least one not when False, anything when None."""
    for _ in range(10_000):
        h, w = (int(v) for v in rng.integers(least, MAX_SIZE + 1, size=2))
        if h == w or (h > w) != taller:
            continue
        fits = _divides(h, kernel[0], stride, pad) and _divides(w, kernel[1], stride, pad)
        if divides is None or fits == divides:
            return h, w
    raise ValueError(f"no input size fits kernel {kernel}, stride {stride}, pad {pad}, divides {divides}")


def _size_words(height, width, kernel_h, kernel_w, stride, pad=0):
    fits = _divides(height, kernel_h, stride, pad) and _divides(width, kernel_w, stride, pad)
    return "windows tile the input" if fits else "size does not divide by the stride"


def _shape_words(n, c, h, w):
    return f"{_orientation(h, w)} input, batch of {n}, {c} channel{'s' * (c > 1)}"


def no_ties(rng, shape):
    """Distinct values (a scaled permutation): central differences are exact only away from ties."""
    return (rng.permutation(int(np.prod(shape))).reshape(shape) - np.prod(shape) / 2) / 10.0


def conv_case(rng, stride, pad, kernel="square", taller=True, divides=None, n=None, c=None):
    kernel_h, kernel_w = _kernel(rng, kernel)
    n = n or int(rng.integers(1, 4))
    c = c or int(rng.integers(1, 4))
    f = int(rng.integers(1, 4))
    least = max(kernel_h, kernel_w) - 2 * pad + 1   # at least two output positions when the stride is 1
    height, width = _input_size(rng, (kernel_h, kernel_w), stride, pad, taller, divides, max(least, 2))
    return {
        "category": f"stride {stride}, pad {pad}, {kernel} {kernel_h}x{kernel_w} kernel, "
                    f"{_size_words(height, width, kernel_h, kernel_w, stride, pad)}, {_shape_words(n, c, height, width)}",
        "inputs": {"x": rng.standard_normal((n, c, height, width)),
                   "w": rng.standard_normal((f, c, kernel_h, kernel_w)),
                   "b": rng.standard_normal(f)},
        "params": {"stride": stride, "pad": pad},
    }


def pool_case(rng, relation, window="square", taller=True, divides=None, n=None, c=None, ties=False):
    """``relation``: the stride "below", "equal" to (square windows) or "above" the window's larger side."""
    pool_height, pool_width = _kernel(rng, window, 1 if relation == "above" else 2, 3)
    size = max(pool_height, pool_width)
    if relation == "below":
        stride = int(rng.integers(1, size))
    else:
        stride = size + (int(rng.integers(1, 5 - size)) if relation == "above" else 0)
    n = n or int(rng.integers(1, 4))
    c = c or int(rng.integers(1, 4))
    # At least two windows per axis: with one, overlapping windows cannot show an overwrite bug.
    height, width = _input_size(rng, (pool_height, pool_width), stride, 0, taller, divides, size + stride)
    shape = (n, c, height, width)
    overlap = "overlapping windows" if stride < size else ("windows side by side" if stride == size else "gaps")
    category = f"{window} {pool_height}x{pool_width} window, stride {stride}, {overlap}, " \
               f"{_size_words(height, width, pool_height, pool_width, stride)}, {_shape_words(*shape)}"
    if ties:
        x = rng.integers(0, 3, size=shape).astype(np.float64)  # three values: ties in most windows
        category += ", ties"
    else:
        x = no_ties(rng, shape)
    return {"category": category, "inputs": {"x": x},
            "params": {"pool_height": pool_height, "pool_width": pool_width, "stride": stride}}


def batchnorm_case(rng, n, spatial, channels=None, taller=True):
    if spatial:
        channels = channels or int(rng.integers(2, 4))
        h, w = (int(v) for v in rng.choice(np.arange(1, 6), size=2, replace=False))
        h, w = (max(h, w), min(h, w)) if taller else (min(h, w), max(h, w))
        shape = (n, channels, h, w)
        words = f"batch of {n}, {channels} channel{'s' * (channels > 1)}, {_orientation(h, w)} input"
    else:
        channels = channels or int(rng.integers(2, 6))
        shape = (n, channels)
        words = f"batch of {n}, {channels} feature{'s' * (channels > 1)}"
    scale, shift = rng.uniform(0.5, 3.0), rng.uniform(-2.0, 2.0)
    return {
        "category": words + (", tiny batch" if n <= 3 else ""),
        "inputs": {"x": scale * rng.standard_normal(shape) + shift,
                   "gamma": rng.uniform(0.5, 2.0, channels), "beta": rng.standard_normal(channels)},
        "params": {"eps": float(rng.choice([1e-5, 1e-3])), "momentum": float(rng.uniform(0.5, 0.95)),
                   "running_mean": rng.standard_normal(channels), "running_var": rng.uniform(0.5, 2.0, channels)},
    }


def conv_cases(rng):
    count = len(CONV_SCENARIOS)
    kernels = _deal(rng, ["square", "tall", "wide"], count)
    taller = _deal(rng, [True, False], count)
    batches = _counts(rng, _deal(rng, [True, False], count))
    channels = _counts(rng, _deal(rng, [True, False], count))
    # Stride 2 twice: once on sizes it divides, once not.
    divides = iter(_deal(rng, [True, False], 2))
    return [conv_case(rng, s, p, kernels[i], taller[i], next(divides) if s == 2 else None, batches[i], channels[i])
            for i, (s, p) in enumerate(CONV_SCENARIOS)]


def pool_cases(rng, ties=False):
    count = len(POOL_SCENARIOS)
    # The square window goes with the equal stride; the others are dealt tall, wide and one more.
    windows = ["square"] + _deal(rng, ["tall", "wide", "square"], count - 1)
    taller = _deal(rng, [True, False], count)
    batches = _counts(rng, _deal(rng, [True, False], count))
    channels = _counts(rng, _deal(rng, [True, False], count))
    # The equal and the above stride are 2 or more: one of them on sizes it divides, the other not.
    divides = iter(_deal(rng, [True, False], 2))
    return [pool_case(rng, relation, windows[i], taller[i], next(divides) if relation != "below" else None,
                      batches[i], channels[i], ties)
            for i, relation in enumerate(POOL_SCENARIOS)]


def batchnorm_cases(rng, spatial=False):
    batches = SPATIAL_BATCHES if spatial else BN_BATCHES
    ones = _deal(rng, [True, False], len(batches))
    taller = _deal(rng, [True, False], len(batches))
    return [batchnorm_case(rng, n, spatial, 1 if one else None, tall)
            for n, one, tall in zip(batches, ones, taller)]


def strata(kind, case):
    """The strata of ``STRATA[kind]`` that ``case`` falls in, read off its arrays and parameters."""
    x, p = case["inputs"]["x"], case["params"]
    n, c = x.shape[:2]
    found = set()
    if kind in ("conv", "pool", "spatial_batchnorm"):
        h, w = x.shape[2:]
        if h != w:
            found.add("input taller than wide" if h > w else "input wider than tall")
        found.add("1 channel" if c == 1 else "channels > 1")
    if kind in ("conv", "pool"):
        kh, kw = case["inputs"]["w"].shape[2:] if kind == "conv" else (p["pool_height"], p["pool_width"])
        s, pad = p["stride"], p.get("pad", 0)
        noun = "kernel" if kind == "conv" else "window"
        found.add(f"{_orientation(kh, kw)} {noun}")
        found.add("batch of 1" if n == 1 else "batch > 1")
        if s > 1:
            found.add("stride divides the size" if _divides(h, kh, s, pad) and _divides(w, kw, s, pad)
                      else "stride does not divide the size")
    if kind == "conv":
        found.add("pad 0" if p["pad"] == 0 else "pad > 0")
        found.add("stride 1" if p["stride"] == 1 else "stride > 1")
    if kind == "pool":
        size = max(kh, kw)
        found.add("stride below the window" if s < size else
                  ("stride above the window" if s > size else "stride equal to the window"))
    if kind == "batchnorm":
        found.add(f"batch of {n}" if n <= 3 else "batch > 3")
        found.add("1 feature" if c == 1 else "features > 1")
    if kind == "spatial_batchnorm":
        found.add(f"batch of {n}" if n <= 2 else "batch > 2")
    return found
