# %% [markdown]
# # Layers: checking gradients, and seeing what a filter does
#
# This notebook runs *your* `layers.py`. Work through it once your convolution, pooling and batchnorm layers
# are written: it checks each backward pass against a numerical gradient, then applies a convolution to a
# picture so that you can see what a filter computes.
#
# Run it from the `notebooks/` folder of the handout (Jupyter does this when you open it there). After you
# edit `layers.py`, restart the kernel (Kernel > Restart) so that the new version is imported. Each section
# runs on its own: one whose function you have not written yet prints a line saying so
# (`max_pool_forward_naive: not implemented yet, skipped`) and the next one runs, so you can write the layers
# in any order.

# %%
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

# Your files sit one folder up (or here, when you run the notebook from the handout's top folder).
HANDOUT = Path.cwd().parent if (Path.cwd().parent / "layers.py").exists() else Path.cwd()
sys.path.insert(0, str(HANDOUT))

from gradcheck import eval_numerical_gradient_array, rel_error
from layers import (avg_pool_backward_naive, avg_pool_forward_naive, batchnorm_backward, batchnorm_backward_alt,
                    batchnorm_forward, conv_backward_naive, conv_forward_naive, max_pool_backward_naive,
                    max_pool_forward_naive, spatial_batchnorm_backward, spatial_batchnorm_forward)
from sections import section

rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. Gradient checks
#
# A backward pass computes `dL/dx` from the upstream gradient `dout = dL/dout`. The numerical gradient
# estimates the same thing with central differences,
#
# $$\frac{\partial L}{\partial x_i} \approx \frac{L(x + h e_i) - L(x - h e_i)}{2h}, \qquad
#   L(x) = \sum \mathrm{forward}(x) \cdot \mathrm{dout},$$
#
# one input coordinate at a time. `rel_error` compares the two: around `1e-8` or below means the backward is
# right; `1e-2` or above means it has a bug. The shapes below are small, because the numerical gradient calls
# the forward twice per input coordinate.
#
# ### Convolution
#
# Stride 2 and padding 1, with a 3x3 kernel on a 7x7 image: the output is
# `1 + (7 + 2*1 - 3) // 2 = 4` pixels on a side.

# %%
x = rng.standard_normal((2, 3, 7, 7))
w = rng.standard_normal((4, 3, 3, 3))
b = rng.standard_normal(4)
conv_param = {"stride": 2, "pad": 1}

with section():
    out, cache = conv_forward_naive(x, w, b, conv_param)
    print("output shape:", out.shape)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = conv_backward_naive(dout, cache)

    dx_num = eval_numerical_gradient_array(lambda x: conv_forward_naive(x, w, b, conv_param)[0], x, dout)
    dw_num = eval_numerical_gradient_array(lambda w: conv_forward_naive(x, w, b, conv_param)[0], w, dout)
    db_num = eval_numerical_gradient_array(lambda b: conv_forward_naive(x, w, b, conv_param)[0], b, dout)
    print(f"dx relative error: {rel_error(dx, dx_num):.2e}")
    print(f"dw relative error: {rel_error(dw, dw_num):.2e}")
    print(f"db relative error: {rel_error(db, db_num):.2e}")

# %% [markdown]
# ### Pooling
#
# Max pooling passes each window's gradient to the position of its maximum; average pooling spreads it
# evenly. With a 3x3 window and stride 2 the windows overlap, so gradients from two windows can land on the
# same input pixel and must add up. (The input comes from a permutation, so no window holds a tie: central
# differences cannot tell which of two equal maxima should get the gradient.)

# %%
x = rng.permutation(2 * 3 * 9 * 9).reshape(2, 3, 9, 9) / 10.0
pool_param = {"pool_height": 3, "pool_width": 3, "stride": 2}
for name, forward, backward in [("max", max_pool_forward_naive, max_pool_backward_naive),
                                ("average", avg_pool_forward_naive, avg_pool_backward_naive)]:
    with section():
        out, cache = forward(x, pool_param)
        dout = rng.standard_normal(out.shape)
        dx = backward(dout, cache)
        dx_num = eval_numerical_gradient_array(lambda x: forward(x, pool_param)[0], x, dout)
        print(f"{name} pooling: output {out.shape}, dx relative error {rel_error(dx, dx_num):.2e}")

# %% [markdown]
# ### Batch normalization
#
# In train mode each feature is normalised with the batch's own mean and (biased) variance, so every output
# depends on every input of its column: the backward has to account for that. Both of your backward versions
# should agree with the numerical gradient and with each other.

# %%
x = 3 * rng.standard_normal((8, 5)) + 2
gamma, beta = rng.standard_normal(5), rng.standard_normal(5)
with section():
    out, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    # Normalised, then scaled by gamma and shifted by beta: each output column has mean beta and std |gamma|.
    print("mean - beta:   ", np.round(out.mean(axis=0) - beta, 6))
    print("std / |gamma|: ", np.round(out.std(axis=0) / np.abs(gamma), 4))

    dout = rng.standard_normal(out.shape)
    dx_num = eval_numerical_gradient_array(lambda x: batchnorm_forward(x, gamma, beta, {"mode": "train"})[0], x,
                                           dout)
    for name, backward in [("batchnorm_backward", batchnorm_backward),
                           ("batchnorm_backward_alt", batchnorm_backward_alt)]:
        with section():
            dx, _, _ = backward(dout, cache)
            print(f"{name}: dx relative error {rel_error(dx, dx_num):.2e}")

x = rng.standard_normal((2, 3, 4, 5))
gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
with section():
    out, cache = spatial_batchnorm_forward(x, gamma, beta, {"mode": "train"})
    dout = rng.standard_normal(out.shape)
    dx, _, _ = spatial_batchnorm_backward(dout, cache)
    dx_num = eval_numerical_gradient_array(
        lambda x: spatial_batchnorm_forward(x, gamma, beta, {"mode": "train"})[0], x, dout)
    print(f"spatial batchnorm dx relative error: {rel_error(dx, dx_num):.2e}")

# %% [markdown]
# ## 2. What a filter sees
#
# A convolution slides each filter over the image and, at every position, takes the dot product of the
# filter with the patch under it. A filter responds strongly where the patch looks like the filter. To see
# this we need a picture. The one below is drawn with numpy (nothing is downloaded): a sky that darkens
# upwards, a sun, two ranges of hills and a house with a door and windows.

# %%
SIZE = 128
rows, cols = np.mgrid[0:SIZE, 0:SIZE] / SIZE
sky = np.stack([0.35 + 0.4 * rows, 0.55 + 0.35 * rows, 0.95 - 0.1 * rows])
image = sky.copy()
sun = (rows - 0.22) ** 2 + (cols - 0.78) ** 2 < 0.09 ** 2
image[:, sun] = np.array([[1.0], [0.85], [0.3]])
far_hills = rows > 0.55 + 0.08 * np.sin(9 * cols)
image[:, far_hills] = np.array([[0.35], [0.5], [0.4]])
near_hills = rows > 0.7 + 0.05 * np.sin(5 * cols + 1)
image[:, near_hills] = np.array([[0.25], [0.55], [0.2]])
house = (rows > 0.5) & (rows < 0.8) & (cols > 0.15) & (cols < 0.45)
roof = (rows <= 0.5) & (rows > 0.5 - (0.15 - np.abs(cols - 0.3))) & (np.abs(cols - 0.3) < 0.17)
image[:, house] = np.array([[0.85], [0.8], [0.7]])
image[:, roof] = np.array([[0.6], [0.2], [0.15]])
for top, left, height, width in [(0.6, 0.2, 0.07, 0.07), (0.6, 0.33, 0.07, 0.07), (0.66, 0.27, 0.14, 0.06)]:
    window = (rows > top) & (rows < top + height) & (cols > left) & (cols < left + width)
    image[:, window] = np.array([[0.2], [0.2], [0.3]])
image = np.clip(image + 0.02 * rng.standard_normal(image.shape), 0, 1)

plt.figure(figsize=(4, 4))
plt.imshow(image.transpose(1, 2, 0))
plt.axis("off")
plt.title("the input: 3 x 128 x 128")
plt.show()

# %% [markdown]
# Now three filters, each 3x3 and spanning the three colour channels: a blur (the average of the patch), a
# detector of vertical edges (bright on the right, dark on the left) and its transpose for horizontal edges.
# Write the vertical-edge detector in `edge_filters`: a 3x3 kernel whose left column is -1, middle column 0 and
# right column +1 (a Sobel filter weights the middle row twice: `[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]`). The
# horizontal one is its transpose. Each filter sees all three channels, so the kernel is repeated over them,
# and divided by 3 to average them.
#
# With stride 1 and padding 1 the output keeps the image's size: `1 + (128 + 2 - 3) // 1 = 128`.

# %%
def edge_filters():
    """(vertical, horizontal): two (3, 3, 3) kernels, channels first, that detect vertical and horizontal edges."""
    # BEGIN SOLUTION
    sobel = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    vertical = np.repeat(sobel[None], 3, axis=0) / 3
    horizontal = np.repeat(sobel.T[None], 3, axis=0) / 3
    # END SOLUTION
    return vertical, horizontal


with section():
    vertical, horizontal = edge_filters()
    blur = np.ones((3, 3, 3)) / 27
    w = np.stack([blur, vertical, horizontal])   # (F, C, HH, WW) = (3, 3, 3, 3)
    out, _ = conv_forward_naive(image[None], w, np.zeros(3), {"stride": 1, "pad": 1})
    print("output shape:", out.shape)

    fig, axes = plt.subplots(1, 4, figsize=(14, 3.6))
    axes[0].imshow(image.transpose(1, 2, 0))
    axes[0].set_title("input")
    for ax, response, title in zip(axes[1:], out[0], ["blur", "vertical edges", "horizontal edges"]):
        edges = title != "blur"   # signed responses: white is zero, red and blue the two directions of change
        limit = np.abs(response).max()
        shown = ax.imshow(response, cmap="RdBu_r" if edges else "gray", vmin=-limit if edges else None,
                          vmax=limit if edges else None)
        ax.set_title(title)
        fig.colorbar(shown, ax=ax, fraction=0.046)
    for ax in axes:
        ax.axis("off")
    plt.show()

# %% [markdown]
# The vertical-edge filter lights up (red or blue, by the sign of the change) along the walls of the house,
# the window frames and the sides of the sun, and stays near zero on the flat sky and the hillsides; the
# horizontal one picks out the roof line, the tops of the windows and the horizon. A convolutional network
# *learns* filters like these in its first layer, together with the ones that follow. The lines along the
# frame come from the padding: around the image the filter sees zeros, which is a sharp edge against any
# colour.
#
# Stride 2 halves the output: the vertical-edge filter again, sampled every other pixel.

# %%
with section():
    vertical, _ = edge_filters()
    out2, _ = conv_forward_naive(image[None], vertical[None], np.zeros(1), {"stride": 2, "pad": 1})
    print("stride 2:", out2.shape, "= 1 + (128 + 2 - 3) // 2 =", 1 + (128 + 2 - 3) // 2)
    plt.figure(figsize=(3.6, 3.6))
    plt.imshow(out2[0, 0], cmap="RdBu_r")
    plt.axis("off")
    plt.title("vertical edges, stride 2")
    plt.show()
