"""Weight initialization schemes, in numpy, and the lecture's activation-statistics experiment.

Why the scale of the initial weights matters (the lecture's "Weight Initialization" slides): take one layer
``y = x @ W`` with ``x`` of shape (N, Din) and ``W`` of shape (Din, Dout), all entries independent with mean 0.
Each output is a sum of Din products, so

    Var(y_j) = Din * Var(x_i) * Var(W_ij).

If ``std(W) = 0.01`` and Din = 4096, every layer multiplies the variance by 4096 * 1e-4 = 0.41: after a few
layers of tanh the activations collapse to zero. With 0.05 the variance grows by 10 a layer and tanh
saturates at +-1. Either way the gradients vanish and nothing learns.

* **Xavier** (Glorot and Bengio, 2010): pick ``Var(W) = 1 / Din`` so that ``Var(y) = Var(x)``, that is
  ``std = 1 / sqrt(Din)``. For a convolution, Din is the number of inputs each output sees,
  ``kernel_size**2 * input_channels``. Glorot's paper averages the forward and backward conditions,
  ``Var(W) = 2 / (Din + Dout)``: that is ``mode="fan_avg"``.
* **MSRA / Kaiming** (He et al., 2015): ReLU zeroes half of a symmetric input, which halves the second
  moment, so the variance must be doubled to make up for it: ``Var(W) = 2 / Din``, ``std = sqrt(2 / Din)``.

  Errata in the lecture: the MSRA slide prints ``std = 2 / sqrt(Din)``, which is too large by a factor
  sqrt(2) (activations grow by sqrt(2) a layer), and the code on the same slide divides by ``sqrt(Din)``
  alone, which is Xavier (activations shrink by sqrt(2) a layer under ReLU). The right value is
  ``sqrt(2 / Din)``.

Both schemes are ``std = gain / sqrt(fan)`` with a *gain* that depends on the nonlinearity that follows
(1 for none, sqrt(2) for ReLU, 5/3 for tanh: see ``calculate_gain``) and a *fan* chosen by ``mode``. The
uniform versions draw from ``U(-a, a)`` with the same std: a uniform on (-a, a) has variance a**2 / 3, so
``a = gain * sqrt(3 / fan)``.

Shapes follow the lecture: a fully connected weight is ``(Din, Dout)`` as in ``W = randn(Din, Dout)``, so
``fan_in = shape[0]``. (PyTorch's ``nn.Linear`` stores its weight the other way round, ``(out, in)``.)
A convolution weight is ``(F, C, KH, KW)`` as in PyTorch.

Randomness: every function takes ``rng``, which may be a ``numpy.random.Generator`` (used as it is, so it
advances), an int seed, or None (fresh entropy). ``_as_generator`` turns any of them into a Generator. Every
function returns a float64 array of the requested shape.
"""
import numpy as np

MODES = ("fan_in", "fan_out", "fan_avg")


def _as_generator(rng):
    """A ``numpy.random.Generator`` from a Generator (returned as it is), an int seed or None."""
    return np.random.default_rng(rng)


def fan_in_and_fan_out(shape):
    """The number of inputs (fan_in) and outputs (fan_out) each weight connects, from the weight's shape.

    * 2-D ``(Din, Dout)`` (the lecture's ``W = randn(Din, Dout)``): fan_in = Din, fan_out = Dout.
    * 4-D convolution ``(F, C, KH, KW)``: each output pixel sees ``C * KH * KW`` inputs, so
      fan_in = C * KH * KW; each input pixel feeds ``F * KH * KW`` outputs, so fan_out = F * KH * KW.

    Returns a tuple of two ints. Any other rank raises ValueError (with a message naming the shape).
    """
    # BEGIN SOLUTION
    shape = tuple(int(s) for s in shape)
    if len(shape) == 2:
        return shape[0], shape[1]
    if len(shape) == 4:
        f, c, kh, kw = shape
        return c * kh * kw, f * kh * kw
    raise ValueError(f"fan_in_and_fan_out: expected a 2-D (Din, Dout) or 4-D (F, C, KH, KW) shape, "
                     f"got {shape} (rank {len(shape)})")
    # END SOLUTION


def calculate_gain(nonlinearity, param=None):
    """The gain to multiply the std by, for a layer followed by ``nonlinearity``.

    * "linear" and "sigmoid": 1.
    * "relu": sqrt(2) (ReLU halves the second moment; the gain puts it back).
    * "tanh": 5/3 (tanh squashes; this is PyTorch's empirical value).
    * "leaky_relu": sqrt(2 / (1 + slope**2)) with ``slope = param`` (0.01 when param is None).

    Returns a float. Any other name raises ValueError listing the names accepted.
    """
    # BEGIN SOLUTION
    if nonlinearity in ("linear", "sigmoid"):
        return 1.0
    if nonlinearity == "relu":
        return float(np.sqrt(2.0))
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return float(np.sqrt(2.0 / (1.0 + slope ** 2)))
    raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}; expected one of "
                     f"'linear', 'sigmoid', 'relu', 'tanh', 'leaky_relu'")
    # END SOLUTION


def _fan(shape, mode):
    """The fan selected by ``mode``: "fan_in", "fan_out", or "fan_avg" = (fan_in + fan_out) / 2.

    Used by the four initializers below. Any other mode raises ValueError listing the three accepted.
    Check the mode before looking at the shape, so that a bad mode is reported as such.
    """
    # BEGIN SOLUTION
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(map(repr, MODES))}")
    fan_in, fan_out = fan_in_and_fan_out(shape)
    return {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    # END SOLUTION


def xavier_normal(shape, gain=1.0, mode="fan_avg", rng=None):
    """Xavier (Glorot) normal initialization: entries drawn from N(0, std**2) with std = gain / sqrt(fan).

    With ``mode="fan_in"`` and gain 1 this is the lecture's ``randn(Din, Dout) / sqrt(Din)``; the default
    "fan_avg" is Glorot's ``std = gain * sqrt(2 / (fan_in + fan_out))``.

    Returns a float64 array of ``shape``. Bad mode or rank: ValueError.

    Hint: ``_as_generator(rng).normal(0.0, std, size=shape)`` draws N(0, std**2).
    """
    # BEGIN SOLUTION
    std = gain / np.sqrt(_fan(shape, mode))
    return _as_generator(rng).normal(0.0, std, size=tuple(shape))
    # END SOLUTION


def xavier_uniform(shape, gain=1.0, mode="fan_avg", rng=None):
    """Xavier (Glorot) uniform initialization: entries drawn from U(-a, a) with a = gain * sqrt(3 / fan).

    U(-a, a) has std a / sqrt(3), so this has the same std as ``xavier_normal``, gain / sqrt(fan).

    Returns a float64 array of ``shape``. Bad mode or rank: ValueError.

    Hint: ``_as_generator(rng).uniform(-a, a, size=shape)``.
    """
    # BEGIN SOLUTION
    bound = gain * np.sqrt(3.0 / _fan(shape, mode))
    return _as_generator(rng).uniform(-bound, bound, size=tuple(shape))
    # END SOLUTION


def kaiming_normal(shape, mode="fan_in", nonlinearity="relu", rng=None):
    """Kaiming (He, "MSRA") normal initialization: N(0, std**2) with std = calculate_gain(nonlinearity) / sqrt(fan).

    With the defaults (fan_in, relu) this is ``std = sqrt(2 / Din)``: not the lecture slide's
    ``2 / sqrt(Din)`` (see the module docstring). ``mode="fan_out"`` preserves the variance of the gradients
    in the backward pass instead of the activations in the forward pass (torchvision's ResNets use it).

    Returns a float64 array of ``shape``. Bad mode, nonlinearity or rank: ValueError.
    """
    # BEGIN SOLUTION
    std = calculate_gain(nonlinearity) / np.sqrt(_fan(shape, mode))
    return _as_generator(rng).normal(0.0, std, size=tuple(shape))
    # END SOLUTION


def kaiming_uniform(shape, mode="fan_in", nonlinearity="relu", rng=None):
    """Kaiming (He) uniform initialization: U(-a, a) with a = calculate_gain(nonlinearity) * sqrt(3 / fan).

    Same std as ``kaiming_normal``. Returns a float64 array of ``shape``. Bad mode, nonlinearity or rank:
    ValueError.
    """
    # BEGIN SOLUTION
    bound = calculate_gain(nonlinearity) * np.sqrt(3.0 / _fan(shape, mode))
    return _as_generator(rng).uniform(-bound, bound, size=tuple(shape))
    # END SOLUTION


def activation_stds(init, nonlinearity, dims=(4096,) * 7, batch=16, rng=None):
    """The lecture's experiment: push a random batch through a deep fully connected net, watch the activations.

    Inputs:
        init: a callable ``init(shape, rng=g)`` returning a weight of ``shape``, e.g.
            ``lambda shape, rng: 0.01 * rng.standard_normal(shape)`` (the lecture's first try) or
            ``lambda shape, rng: kaiming_normal(shape, rng=rng)``.
        nonlinearity: "tanh" or "relu" (anything else: ValueError).
        dims: the layer widths; ``len(dims) - 1`` layers, layer k mapping dims[k] to dims[k+1]. The default is
            the lecture's ``dims = [4096] * 7``: 6 layers of 4096 units.
        batch: the number of examples (16 in the lecture).
        rng: Generator, int seed or None.

    Procedure (follow it exactly, so that a seed gives the same numbers as the tests):
        g = _as_generator(rng)                     # once, for the whole experiment
        x = g.standard_normal((batch, dims[0]))
        for each consecutive pair (Din, Dout) of dims:
            W = init((Din, Dout), rng=g)
            x = f(x @ W)                           # f = np.tanh or ReLU, np.maximum(0, .)
            record x.std()                         # over all batch * Dout elements

    Returns a list of ``len(dims) - 1`` Python floats.

    What you should see (6 layers of 4096, batch 16): 0.01 * randn with tanh falls from about 0.49 to 0.05;
    Xavier with tanh decays slowly (0.63 to 0.29: tanh is contractive); Xavier with gain 5/3 holds up
    (0.76 to 0.65); Kaiming with ReLU stays at about 0.82 in every layer; the slide's 2 / sqrt(Din) with
    ReLU grows by sqrt(2) a layer (1.16 to 6.5).
    """
    # BEGIN SOLUTION
    functions = {"tanh": np.tanh, "relu": lambda z: np.maximum(0.0, z)}
    if nonlinearity not in functions:
        raise ValueError(f"activation_stds: unknown nonlinearity {nonlinearity!r}; expected 'tanh' or 'relu'")
    f = functions[nonlinearity]
    g = _as_generator(rng)
    x = g.standard_normal((batch, dims[0]))
    stds = []
    for d_in, d_out in zip(dims[:-1], dims[1:]):
        w = init((d_in, d_out), rng=g)
        x = f(x @ w)
        stds.append(float(x.std()))
    return stds
    # END SOLUTION
