# %% [markdown]
# # Initialization: watching activations layer by layer
#
# This notebook runs *your* `initializers.py` through the lecture's experiment: push a batch of random inputs
# through a deep fully connected network, and look at the distribution of each layer's activations. A good
# initialization keeps them at the same scale from the first layer to the last; a bad one lets them die out
# (every gradient vanishes) or saturate (tanh's local gradients are all zero) or blow up.
#
# Run it from the `notebooks/` folder of the handout. After you edit `initializers.py`, restart the kernel.
# Each section runs on its own: one that needs a function you have not written yet says so in a line, and the
# next one runs.

# %%
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

HANDOUT = Path.cwd().parent if (Path.cwd().parent / "initializers.py").exists() else Path.cwd()
sys.path.insert(0, str(HANDOUT))

from initializers import activation_stds, calculate_gain, fan_in_and_fan_out, kaiming_normal, xavier_normal
from sections import section

# %% tags=["parameters"]
DIMS = [4096] * 7   # the lecture's network: 6 layers of 4096 units (each experiment takes a few seconds)
BATCH = 16
SEED = 0

# %% [markdown]
# ## Fans and gains
#
# A weight's *fan-in* is how many inputs each output adds up; its *fan-out*, how many outputs each input
# feeds. For the lecture's `W = randn(Din, Dout)` they are `Din` and `Dout`. For a convolution of shape
# `(F, C, KH, KW)` each output pixel sums `C * KH * KW` inputs. The *gain* makes up for what the nonlinearity
# does to the variance: ReLU zeroes half of its inputs, so it needs `sqrt(2)`.

# %%
with section():
    print("fans of a (4096, 1000) weight:       ", fan_in_and_fan_out((4096, 1000)))
    print("fans of a (64, 3, 3, 3) conv weight: ", fan_in_and_fan_out((64, 3, 3, 3)))
with section():
    for nonlinearity in ["linear", "relu", "tanh"]:
        print(f"gain for {nonlinearity:<7}{calculate_gain(nonlinearity):.4f}")

# %% [markdown]
# ## The experiment
#
# `activations` below follows the procedure in `activation_stds`'s docstring step by step, but keeps every
# layer's output instead of its standard deviation alone, so that we can draw histograms. Both start from
# the same seed, so their standard deviations must agree exactly: the notebook checks that too.
#
# Four ways to draw `W`, as in the slides:
#
# | name | std of W | from |
# | --- | --- | --- |
# | fixed small | 0.01 | the lecture's first try |
# | fixed large | 0.05 | its second |
# | Xavier | `1 / sqrt(Din)` | `xavier_normal(shape, mode="fan_in")` |
# | Kaiming | `sqrt(2 / Din)` | `kaiming_normal(shape)` (ReLU's gain, fan-in) |

# %%
INITS = {
    "fixed small (0.01)": lambda shape, rng: 0.01 * rng.standard_normal(shape),
    "fixed large (0.05)": lambda shape, rng: 0.05 * rng.standard_normal(shape),
    "Xavier": lambda shape, rng: xavier_normal(shape, mode="fan_in", rng=rng),
    "Kaiming": lambda shape, rng: kaiming_normal(shape, rng=rng),
}
NONLINEARITIES = {"tanh": np.tanh, "relu": lambda z: np.maximum(0.0, z)}


def activations(init, nonlinearity, dims=DIMS, batch=BATCH, seed=SEED):
    """Every layer's output, drawn exactly as activation_stds draws them."""
    g = np.random.default_rng(seed)
    x = g.standard_normal((batch, dims[0]))
    outputs = []
    for d_in, d_out in zip(dims[:-1], dims[1:]):
        x = NONLINEARITIES[nonlinearity](x @ init((d_in, d_out), rng=g))
        outputs.append(x)
    return outputs


def draw(nonlinearity):
    # Every initializer's activations first, so that a function not written yet stops the section before any
    # figure is drawn.
    drawn = {name: (activations(init, nonlinearity),
                    activation_stds(init, nonlinearity, dims=DIMS, batch=BATCH, rng=SEED))
             for name, init in INITS.items()}
    layers = len(DIMS) - 1
    fig, axes = plt.subplots(len(INITS), layers, figsize=(2.2 * layers, 2.0 * len(INITS)), squeeze=False)
    for row, (name, (outs, stds)) in zip(axes, drawn.items()):
        agrees = np.allclose([out.std() for out in outs], stds, rtol=1e-9, atol=0)
        print(f"{nonlinearity}, {name:<19} stds by layer: {np.array2string(np.array(stds), precision=3)}; "
              f"agrees with activation_stds: {agrees}")
        for k, (ax, out) in enumerate(zip(row, outs), 1):
            ax.hist(out.ravel(), bins=40, color="tab:blue")
            ax.set_title(f"layer {k}\nmean {out.mean():.2g}, std {out.std():.2g}", fontsize=8)
            ax.tick_params(labelsize=6)
            ax.set_yticks([])
        row[0].set_ylabel(name, fontsize=9)
    fig.suptitle(f"{nonlinearity}: activations of each layer, {BATCH} inputs, width {DIMS[1]}")
    fig.tight_layout()
    plt.show()


with section():
    draw("tanh")

# %% [markdown]
# With **tanh**: the fixed small weights shrink the activations layer after layer towards zero (then the
# gradients with respect to the weights, which are proportional to them, vanish too). The fixed large ones
# push almost every unit to -1 or +1, where tanh is flat: its local gradient is zero, and nothing learns.
# Xavier keeps a healthy spread in every layer: the variance of `x @ W` is `Din * var(x) * var(W)`, and
# `var(W) = 1 / Din` cancels `Din`. (tanh itself shrinks its inputs a little, so the spread still narrows
# slowly: a gain of 5/3 makes up for it.)

# %%
with section():
    draw("relu")

# %% [markdown]
# With **ReLU**, half of every layer's inputs are zeroed, which halves the variance: Xavier's activations
# now shrink by `sqrt(2)` a layer, collapsing towards zero. Kaiming's `sqrt(2 / Din)` doubles the variance
# of the weights to make up for it, and the activations keep their scale in every layer. The fixed scales fare
# worse still: with 0.01 the activations die out even faster than with tanh, and with 0.05 their spread more
# than doubles every layer (`0.05 * sqrt(4096 / 2)` is about 2.3), so that deep layers blow up.
#
# ## Errata: the MSRA slide
#
# The slide on Kaiming (MSRA) initialization prints `std = 2 / sqrt(Din)`, and the code on it divides by
# `sqrt(Din)` alone. Neither is the right value, `std = sqrt(2 / Din)`. Your `activation_stds` shows what each
# does in a ReLU network:

# %%
SLIDE_VERSIONS = {
    "2 / sqrt(Din), as printed": lambda shape, rng: 2 / np.sqrt(shape[0]) * rng.standard_normal(shape),
    "1 / sqrt(Din), as coded": lambda shape, rng: 1 / np.sqrt(shape[0]) * rng.standard_normal(shape),
    "sqrt(2 / Din), right": lambda shape, rng: np.sqrt(2 / shape[0]) * rng.standard_normal(shape),
}
with section():
    for name, init in SLIDE_VERSIONS.items():
        stds = activation_stds(init, "relu", dims=DIMS, batch=BATCH, rng=SEED)
        print(f"{name:<27}", "  ".join(f"{s:7.3f}" for s in stds))

# %% [markdown]
# The printed version grows by `sqrt(2)` a layer (after 50 layers, by a factor of 2^25), the coded one shrinks
# by as much, and only `sqrt(2 / Din)` holds steady.
