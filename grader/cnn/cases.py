"""Random test cases for the numpy layers, drawn from a Generator: the grader's hidden cases per submission.

Each case is a dict: ``category`` (words a student may see: stride, pad, kernel shape, what makes it awkward;
never values), ``inputs`` (name -> array) and ``params`` (the layer's parameter dict). The scenarios cover
where bugs hide: stride > 1, pad 0, non-square kernels, sizes the stride does not divide, overlapping pooling
windows, ties in max pooling, tiny batches.
"""
import numpy as np

# (stride, pad, square kernel?) per convolution scenario.
CONV_SCENARIOS = [(1, 1, True), (2, 0, False), (2, 1, True), (3, 2, False), (1, 0, False)]
# (pool height, pool width, stride) per pooling scenario: plain, overlapping, non-square overlapping, gaps.
POOL_SCENARIOS = [(2, 2, 2), (3, 3, 2), (2, 3, 1), (2, 2, 3)]
# Batch sizes for batchnorm: tiny ones hide bugs in the 1/N terms.
BN_BATCHES = [2, 3, 8]


def _divides(size, kernel, stride, pad=0):
    return (size + 2 * pad - kernel) % stride == 0


def _size_words(height, width, kernel_h, kernel_w, stride, pad=0):
    fits = _divides(height, kernel_h, stride, pad) and _divides(width, kernel_w, stride, pad)
    return "windows tile the input" if fits else "size does not divide by the stride"


def no_ties(rng, shape):
    """Distinct values (a scaled permutation): central differences are exact only away from ties."""
    return (rng.permutation(int(np.prod(shape))).reshape(shape) - np.prod(shape) / 2) / 10.0


def conv_case(rng, stride, pad, square):
    kernel_h = int(rng.integers(1, 5))
    kernel_w = kernel_h if square else int(rng.choice([k for k in range(1, 5) if k != kernel_h]))
    n, c, f = (int(v) for v in rng.integers(1, 4, size=3))
    height = int(rng.integers(max(kernel_h - 2 * pad, 1) + 1, 9))
    width = int(rng.integers(max(kernel_w - 2 * pad, 1) + 1, 9))
    kind = "square" if square else "non-square"
    return {
        "category": f"stride {stride}, pad {pad}, {kind} {kernel_h}x{kernel_w} kernel, "
                    f"{_size_words(height, width, kernel_h, kernel_w, stride, pad)}",
        "inputs": {"x": rng.standard_normal((n, c, height, width)),
                   "w": rng.standard_normal((f, c, kernel_h, kernel_w)),
                   "b": rng.standard_normal(f)},
        "params": {"stride": stride, "pad": pad},
    }


def pool_case(rng, pool_height, pool_width, stride, ties=False):
    n, c = (int(v) for v in rng.integers(1, 4, size=2))
    # At least two windows per axis: with one, overlapping windows cannot show an overwrite bug.
    height = int(rng.integers(pool_height + stride, 9))
    width = int(rng.integers(pool_width + stride, 9))
    shape = (n, c, height, width)
    overlap = "overlapping windows" if stride < max(pool_height, pool_width) else "no overlap"
    category = f"{pool_height}x{pool_width} window, stride {stride}, {overlap}, " \
               f"{_size_words(height, width, pool_height, pool_width, stride)}"
    if ties:
        x = rng.integers(0, 3, size=shape).astype(np.float64)  # three values: ties in most windows
        category += ", ties"
    else:
        x = no_ties(rng, shape)
    return {"category": category, "inputs": {"x": x},
            "params": {"pool_height": pool_height, "pool_width": pool_width, "stride": stride}}


def batchnorm_case(rng, n, spatial):
    if spatial:
        # Two channels or more and two positions or more: a reshape that forgets the transpose mixes them.
        channels = int(rng.integers(2, 4))
        shape = (n, channels, int(rng.integers(1, 5)), int(rng.integers(2, 5)))
    else:
        channels = int(rng.integers(1, 6))
        shape = (n, channels)
    scale, shift = rng.uniform(0.5, 3.0), rng.uniform(-2.0, 2.0)
    return {
        "category": f"batch of {n}" + (", tiny batch" if n <= 3 else ""),
        "inputs": {"x": scale * rng.standard_normal(shape) + shift,
                   "gamma": rng.uniform(0.5, 2.0, channels), "beta": rng.standard_normal(channels)},
        "params": {"eps": float(rng.choice([1e-5, 1e-3])), "momentum": float(rng.uniform(0.5, 0.95)),
                   "running_mean": rng.standard_normal(channels), "running_var": rng.uniform(0.5, 2.0, channels)},
    }


def conv_cases(rng):
    return [conv_case(rng, *scenario) for scenario in CONV_SCENARIOS]


def pool_cases(rng, ties=False):
    return [pool_case(rng, *scenario, ties=ties) for scenario in POOL_SCENARIOS]


def batchnorm_cases(rng, spatial=False):
    return [batchnorm_case(rng, n, spatial) for n in BN_BATCHES]
