"""The hidden cases for the numpy layers: a fixed layout of categories, values drawn per submission.

Each function's cases are the categories of a layout below, in order, the same in every grade: a category
fixes everything a bug can hinge on (stride, pad, the kernel's shape, which way the input is longer, whether
the stride divides the size, a batch or channel count of 1), and the seed draws only what no bug can hinge
on (the input's size within those rules, counts above 1, the array values). So a bug that fails a category
fails it on every seed and costs the same points in every grade, while no two submissions share inputs.

Values are drawn so that they cannot hide a bug either: inputs are never square and both sides exceed 1, so
are the outputs (a height/width mix-up always shows); where the stride divides the size it divides both, where
it does not it divides neither; the batch, channel and filter counts of a case differ from one another; eps
and momentum stay away from their defaults; max pooling's tie cases always hold a window of equal maxima.
Every relation of the sizes that an implementation's arrays can hinge on is fixed by the category, so it holds
on every draw: the output size, the padded input, and the windows the stride leaves out (between windows, and
past the last one: only padding, or also the input's last rows and columns, which a gradient buffer sized to
the windows' extent misses).

Each case is a dict: ``category`` (words a student may see: stride, pad, kernel shape, what makes it awkward;
never values), ``inputs`` (name -> array) and ``params`` (the layer's parameter dict). ``strata(kind, case)``
reads the strata of ``STRATA`` off a case's arrays, so a test can prove that the layout covers them all.
"""
import functools
import operator
from dataclasses import dataclass

import numpy as np

from grader.cnn import size_rule

STRATA = {
    "conv": ["square kernel", "tall kernel", "wide kernel", "input taller than wide", "input wider than tall",
             "pad 0", "pad > 0", "pad at least the kernel", "the last window reaches the far padding", "stride 1",
             "stride > 1", "stride divides the size", "stride does not divide the size",
             "the input's last row and column in no window", "batch of 1", "batch > 1", "1 channel",
             "channels > 1"],
    "pool": ["square window", "tall window", "wide window", "input taller than wide", "input wider than tall",
             "stride below the window", "stride equal to the window", "stride above the window",
             "stride divides the size", "stride does not divide the size",
             "batch of 1", "batch > 1", "1 channel", "channels > 1"],
    "batchnorm": ["batch of 2", "batch of 3", "batch > 3", "1 feature", "features > 1"],
    "spatial_batchnorm": ["batch of 1", "batch of 2", "batch > 2", "1 channel", "channels > 1",
                          "input taller than wide", "input wider than tall"],
}
MAX_SIZE = 12
COUNTS = (2, 3, 4)          # a batch, channel or filter count above 1
EPS = (1e-3, 1e-2)          # eps drawn log-uniformly in this range: far from the default 1e-5
MOMENTUM = (0.5, 0.8)       # momentum drawn in this range: far from the default 0.9


@dataclass(frozen=True)
class Window:
    """One category of a convolution or pooling case. ``divides``: whether the stride divides both sides'
    spans (None with stride 1); ``one_batch``/``one_channel``: a count of 1 rather than above 1."""
    stride: int
    pad: int
    kernel: tuple
    taller: bool
    divides: bool
    one_batch: bool
    one_channel: bool


CONV_LAYOUT = [
    Window(1, 1, (3, 3), True, None, False, False),
    Window(2, 0, (3, 2), False, False, True, False),   # rows overlap, columns side by side; pad 0, so the
                                                       # input's last row and column are in no window
    Window(2, 1, (2, 3), True, False, False, True),
    Window(3, 2, (2, 2), False, False, False, False),  # pad at least the kernel; gaps between windows
    Window(1, 0, (2, 3), False, None, True, False),
    Window(2, 3, (3, 2), True, True, False, True),     # pad at least the kernel on both axes
]
CONV_FLOAT32 = Window(1, 1, (3, 3), True, None, False, False)
POOL_LAYOUT = [
    Window(2, 0, (2, 2), True, True, False, False),    # windows side by side
    Window(1, 0, (3, 2), False, None, True, False),    # overlapping on both axes
    Window(2, 0, (2, 3), True, False, False, True),    # overlapping along the width only
    Window(3, 0, (2, 2), False, False, False, False),  # gaps
]
POOL_TIES = POOL_LAYOUT[:2]
POOL_FLOAT32 = POOL_LAYOUT[0]
# (batch, 1 feature or channel?, taller input?); a batch given as a range is drawn in it.
BN_LAYOUT = [(2, False, None), (3, True, None), ((4, 8), False, None)]
SPATIAL_LAYOUT = [(1, False, True), (2, True, False), ((3, 6), False, True)]


def _span_divides(size, kernel, stride, pad=0):
    return (size + 2 * pad - kernel) % stride == 0


def _out(size, kernel, stride, pad=0):
    return 1 + (size + 2 * pad - kernel) // stride


# The output-size rule as size_rule reads it: size_rule.shown gives its variants that show on a size.
RULE = (operator.add, operator.add, operator.mul, operator.sub, operator.floordiv)


def _rule(ops, size, kernel, stride, pad):
    add_one, add_pad, twice, less_kernel, per_stride = ops
    return add_one(1, per_stride(less_kernel(add_pad(size, twice(2, pad)), kernel), stride))


def _crops_shown(size, pad):
    """Which operators in place of the ``+`` of the crop ``dxp[P:P + size]`` (a backward taking dx out of the
    padded gradient) keep some other length than ``size`` here."""
    return tuple(len(range(size + 2 * pad)[pad:op(pad, size)]) != size
                 for op in size_rule.OPERATORS if op is not operator.add and op is not operator.truediv)


def _orientation(h, w):
    return "square" if h == w else ("tall" if h > w else "wide")


def _distinct_counts(rng, ones, n, avoid=()):
    """``n`` counts, pairwise different: 1 where ``ones`` says so, the others drawn from COUNTS less ``avoid``."""
    others = [int(v) for v in rng.permutation([count for count in COUNTS if count not in avoid])]
    return [1 if one else others.pop() for one in ones[:n]]


def _input_size(rng, window):
    """(H, W) for a case of ``window``: one of ``_sizes(window)``, drawn."""
    fits = _sizes(window)
    return fits[int(rng.integers(len(fits)))]


@functools.lru_cache(maxsize=None)   # a pure function of the window, asked once per case
def _sizes(window):
    """(H, W) of the window's orientation, both above 1, each giving at least three output positions (with two,
    ``i & 1`` for ``i * 1`` goes unseen), and both spans divisible by the stride or neither (``window.divides``).
    The two output sizes differ, and either side put in place of the other changes them (a mix-up of H and W
    always shows)."""
    (kh, kw), s, p = window.kernel, window.stride, window.pad
    fits = []
    for h in range(2, MAX_SIZE + 1):
        for w in range(2, MAX_SIZE + 1):
            if h == w or (h > w) != window.taller or min(_out(h, kh, s, p), _out(w, kw, s, p)) < 3 \
                    or _out(h, kh, s, p) == _out(w, kw, s, p) \
                    or _out(h, kh, s, p) == _out(w, kh, s, p) or _out(w, kw, s, p) == _out(h, kw, s, p):
                continue
            if window.divides is not None and \
                    not (_span_divides(h, kh, s, p) == _span_divides(w, kw, s, p) == window.divides):
                continue
            fits.append((h, w))
    if not fits:
        raise ValueError(f"no input size fits {window}")
    # Whether the last window reaches the padding at the far end (bottom, right) depends on the size: of the
    # sizes that fit, only those where it does as often as it can, on the same axes.
    best = max(_far_padding(h, w, window) for h, w in fits)
    fits = [(h, w) for h, w in fits if _far_padding(h, w, window) == best]
    # And of those, the ones where the variants of the output-size rule show as often as they can, the same ones.
    shown = {(h, w): size_rule.shown(_rule, RULE, h, kh, s, p) + size_rule.shown(_rule, RULE, w, kw, s, p)
             + _crops_shown(h, p) + _crops_shown(w, p) for h, w in fits}
    best = max(shown.values(), key=lambda found: (sum(found), found))
    return [size for size in fits if shown[size] == best]


def _far_padding(h, w, window):
    """Per axis, whether the last window covers some of the padding after the input (a bug padding one side
    only shows there)."""
    (kh, kw), s, p = window.kernel, window.stride, window.pad
    return tuple((_out(size, k, s, p) - 1) * s + k > size + p for size, k in ((h, kh), (w, kw)))


def _size_words(window):
    if window.divides is None:
        return ""
    return ", windows tile the input" if window.divides else ", size does not divide by the stride"


def _count(value, noun):
    """A count as its category ("1 channel", "channels > 1"): never the value drawn above 1."""
    return f"1 {noun}" if value == 1 else f"{noun}s > 1"


def _shape_words(n, c, h, w):
    return f"{_orientation(h, w)} input, {'batch of 1' if n == 1 else 'batch > 1'}, {_count(c, 'channel')}"


def no_ties(rng, shape):
    """Distinct values (a scaled permutation): central differences are exact only away from ties."""
    return (rng.permutation(int(np.prod(shape))).reshape(shape) - np.prod(shape) / 2) / 10.0


def conv_case(rng, window):
    kh, kw = window.kernel
    n, c, f = _distinct_counts(rng, [window.one_batch, window.one_channel, False], 3)
    h, w = _input_size(rng, window)
    kernel = _orientation(kh, kw)
    wide_pad = ", pad at least the kernel" if window.pad >= min(kh, kw) else ""
    # Past the last window, more than the padding: the input's own last row and column (the layout makes it hold
    # on both axes or neither, on every draw).
    missed = ", its last row and column in no window" if (h + 2 * window.pad - kh) % window.stride > window.pad \
        else ""
    return {
        "category": f"stride {window.stride}, pad {window.pad}{wide_pad}, {kernel} {kh}x{kw} kernel"
                    f"{_size_words(window)}{missed}, {_shape_words(n, c, h, w)}",
        "inputs": {"x": rng.standard_normal((n, c, h, w)),
                   "w": rng.standard_normal((f, c, kh, kw)),
                   "b": rng.standard_normal(f)},
        "params": {"stride": window.stride, "pad": window.pad},
    }


def pool_case(rng, window, ties=False):
    ph, pw = window.kernel
    # No count equal to the window's size: an argmax over the channels would then fit where the window's belongs.
    n, c = _distinct_counts(rng, [window.one_batch, window.one_channel], 2, avoid=(ph * pw,))
    h, w = _input_size(rng, window)
    shape, size, s = (n, c, h, w), max(ph, pw), window.stride
    overlap = "overlapping windows" if s < size else ("windows side by side" if s == size else "gaps")
    category = f"{_orientation(ph, pw)} {ph}x{pw} window, stride {s}, {overlap}{_size_words(window)}, " \
               f"{_shape_words(*shape)}"
    if ties:
        x = rng.integers(0, 3, size=shape).astype(np.float64)  # three values: ties in most windows
        top, left = (_out(h, ph, s) - 1) * s, (_out(w, pw, s) - 1) * s
        x[:, :, top:top + ph, left:left + pw] = 2.0   # and always one: the last window's maxima are all equal
        category += ", ties"
    else:
        x = no_ties(rng, shape)
    if s < size:   # overlapping windows: two of them share their maximum, where they meet
        row, column = (s if s < ph else 0), (s if s < pw else 0)
        x[:, :, row, column] = x.max() + 1 + np.arange(n * c).reshape(n, c) / 10
    return {"category": category, "inputs": {"x": x},
            "params": {"pool_height": ph, "pool_width": pw, "stride": s}}


def batchnorm_case(rng, batch, one, spatial, taller=True):
    """A batch of ``batch`` (or drawn in that range), one feature (channel) or several, never as many as the
    batch, its eps and momentum away from the defaults."""
    n = int(rng.integers(batch[0], batch[1] + 1)) if isinstance(batch, tuple) else batch
    channels = 1 if one else int(rng.choice([v for v in COUNTS + (5,) if v != n]))
    batch_words = f"batch > {batch[0] - 1}" if isinstance(batch, tuple) else f"batch of {n}"
    if spatial:
        h, w = (int(v) for v in rng.choice(np.arange(2, 6), size=2, replace=False))
        h, w = (max(h, w), min(h, w)) if taller else (min(h, w), max(h, w))
        shape = (n, channels, h, w)
        words = f"{batch_words}, {_count(channels, 'channel')}, {_orientation(h, w)} input"
    else:
        shape = (n, channels)
        words = f"{batch_words}, {_count(channels, 'feature')}"
    scale, shift = rng.uniform(0.5, 3.0), rng.uniform(-2.0, 2.0)
    return {
        "category": words + (", tiny batch" if not isinstance(batch, tuple) else ""),
        "inputs": {"x": scale * rng.standard_normal(shape) + shift,
                   "gamma": rng.uniform(0.5, 2.0, channels), "beta": rng.standard_normal(channels)},
        "params": {"eps": float(np.exp(rng.uniform(*np.log(EPS)))), "momentum": float(rng.uniform(*MOMENTUM)),
                   "running_mean": rng.standard_normal(channels), "running_var": rng.uniform(0.5, 2.0, channels)},
    }


def conv_cases(rng):
    return [conv_case(rng, window) for window in CONV_LAYOUT]


def pool_cases(rng, ties=False):
    return [pool_case(rng, window, ties) for window in (POOL_TIES if ties else POOL_LAYOUT)]


def batchnorm_cases(rng, spatial=False):
    return [batchnorm_case(rng, n, one, spatial, taller) for n, one, taller in
            (SPATIAL_LAYOUT if spatial else BN_LAYOUT)]


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
            found.add("stride divides the size" if _span_divides(h, kh, s, pad) and _span_divides(w, kw, s, pad)
                      else "stride does not divide the size")
    if kind == "conv":
        found.add("pad 0" if p["pad"] == 0 else "pad > 0")
        if p["pad"] >= min(kh, kw):
            found.add("pad at least the kernel")
        if any((_out(size, k, s, pad) - 1) * s + k > size + pad for size, k in ((h, kh), (w, kw))):
            found.add("the last window reaches the far padding")
        if all((size + 2 * pad - k) % s > pad for size, k in ((h, kh), (w, kw))):
            found.add("the input's last row and column in no window")
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
