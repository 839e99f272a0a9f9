# %% [markdown]
# # Quiz: what each layer of AlexNet costs
#
# This notebook prints the lecture's AlexNet table from *your* calculators in `quiz.py`, beside the figures
# the lecture printed, and marks the two places where the lecture's table is wrong.
#
# Run it from the `notebooks/` folder of the handout. After you edit `quiz.py`, restart the kernel. Each
# section runs on its own: one that needs a function you have not written yet says so in a line, and the next
# one runs.

# %%
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

HANDOUT = Path.cwd().parent if (Path.cwd().parent / "quiz.py").exists() else Path.cwd()
sys.path.insert(0, str(HANDOUT))

from quiz import alexnet_table, conv_output_size, pool_output_size
from sections import section

# %% [markdown]
# ## Output sizes
#
# The lecture's formula for the output width of a convolution with kernel `K`, stride `S` and padding `P` is
# `W' = (W - K + 2P) / S + 1`. When `S` does not divide `W - K + 2P`, the division rounds down: the last
# window that would stick out past the padded edge is dropped. AlexNet's first layer and first pooling layer:

# %%
with section():
    print("conv1: (227 - 11 + 2*2) / 4 + 1 =", conv_output_size(227, kernel=11, stride=4, pad=2))
with section():
    print("pool1: (56 - 3) / 2 + 1         =", pool_output_size(56, kernel=3, stride=2), "(26.5 rounded down, + 1)")

# %% [markdown]
# ## The table
#
# Memory is a layer's output for one image, at 4 bytes an element, in KB of 1024 bytes; params are in
# thousands; a flop is one multiply-add, in millions. Each figure is printed as *yours / the lecture's*,
# rounded as the lecture rounds. Where the two differ, the last column says why: an **erratum** is a mistake
# in the slides (your number is the right one), anything else is a bug to find in `quiz.py`.

# %%
# The lecture's table, as printed: memory (KB), params (k), flop (M).
LECTURE = {
    "conv1": (784, 23, 73), "pool1": (182, 0, 0), "conv2": (547, 307, 224), "pool2": (127, 0, 0),
    "conv3": (254, 664, 112), "conv4": (169, 885, 145), "conv5": (169, 590, 100), "pool5": (36, 0, 0),
    "flatten": (36, 0, 0), "fc6": (16, 37749, 38), "fc7": (16, 16777, 17), "fc8": (4, 4096, 4),
}
ERRATA = {
    ("conv4", "flop"): "erratum: (256*13*13) * (384*3*3) = 149,520,384, so 150 M; the table prints 145",
    ("fc6", "params"): "erratum: the table leaves out the 4,096 biases (9216*4096 + 4096 = 37,752,832)",
    ("fc7", "params"): "erratum: the table leaves out the 4,096 biases (4096*4096 + 4096)",
    ("fc8", "params"): "erratum: the table leaves out the 1,000 biases (4096*1000 + 1000)",
}

with section():
    rows = alexnet_table()
    print(f"{'layer':<8}{'output':>14}{'memory KB':>16}{'params k':>18}{'MFLOP':>14}   note")
    for row in rows:
        name = row["name"]
        shape = f"{row['c_out']} x {row['size_out']} x {row['size_out']}" if row["size_out"] else str(row["c_out"])
        yours = (round(row["memory_kb"]), round(row["params"] / 1e3), round(row["flops"] / 1e6))
        notes = []
        for column, mine, printed in zip(("memory", "params", "flop"), yours, LECTURE[name]):
            if mine != printed:
                notes.append(ERRATA.get((name, column), f"{column} differs from the lecture: check quiz.py"))
        cells = [f"{mine:,} / {printed:,}" for mine, printed in zip(yours, LECTURE[name])]
        print(f"{name:<8}{shape:>14}{cells[0]:>16}{cells[1]:>18}{cells[2]:>14}   {'; '.join(notes)}")

    total_params = sum(row["params"] for row in rows)
    print(f"\ntotal: {total_params:,} parameters ({total_params * 4 / 2**20:.0f} MB in float32), "
          f"{sum(row['flops'] for row in rows) / 1e9:.2f} GFLOP per image")

# %% [markdown]
# (The slide that works out fc6's parameters with the formula also slips in its sum: it prints 37,725,832.)
#
# ## Where the costs sit
#
# Plotted side by side, each as a share of its total, the three columns tell the lecture's story: the memory
# is spent in the early convolutions (large images), the parameters in the fully connected layers (fc6 alone
# holds most of them), and the compute in the convolutions.

# %%
with section():
    rows = alexnet_table()
    names = [row["name"] for row in rows]
    shares = {column: np.array([row[key] for row in rows], dtype=float) for column, key in
              [("memory", "memory_kb"), ("params", "params"), ("flop", "flops")]}
    positions = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(10, 3.5))
    for offset, (column, values) in zip((-0.27, 0, 0.27), shares.items()):
        ax.bar(positions + offset, 100 * values / values.sum(), width=0.27, label=column)
    ax.set_xticks(positions, names)
    ax.set_ylabel("% of the network's total")
    ax.legend()
    ax.set_title("AlexNet, layer by layer")
    plt.show()
