# %% [markdown]
# # Milestone: training your ResNet on CIFAR-10
#
# This notebook trains a network built by *your* `resnet.py` on CIFAR-10 with the handout's `train.py`, plots
# how the training went, and checks the checkpoint it writes, `milestone.pt`, before you upload it.
#
# Training needs a GPU: an epoch of resnet20 takes seconds on one and many minutes on a laptop's CPU.
#
# **On Colab** (it has PyTorch already):
# 1. Runtime > Change runtime type > a GPU (a T4 is enough).
# 2. Upload `cnn-handout.zip` with your finished `resnet.py` inside it (the folder icon on the left, then the
#    upload button), and this notebook (File > Upload notebook).
# 3. In a new cell, run `!unzip -q cnn-handout.zip` and then `%cd cnn`.
# 4. When training is done, download `cnn/milestone.pt` from the file pane: a Colab session's files are gone
#    once it ends.
#
# **On a lab machine with a GPU**: open this notebook from the handout's `notebooks/` folder, or run
# `python train.py --arch resnet20` in a terminal; it does the same.
#
# The first run downloads CIFAR-10 (163 MB) into `datasets/` and checks it; later runs read it from there.
# Each section runs on its own: while `resnet.py` is unfinished, the network and the training say so in a line
# each (`ResNet.__init__: not implemented yet, skipped`), and the check at the end still runs.

# %%
import json
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import torch

HANDOUT = Path.cwd().parent if (Path.cwd().parent / "train.py").exists() else Path.cwd()
sys.path.insert(0, str(HANDOUT))

import resnet
import train
from sections import section

if torch.cuda.is_available():
    print("GPU:", torch.cuda.get_device_name(0))
else:
    print("No GPU: training runs on the CPU, fine for a quick try with a few hundred images, not for the milestone.")

# %% tags=["parameters"]
ARCH = "resnet20"     # or resnet32, resnet56, resnet18, preact_resnet18
EPOCHS = None         # None: the recipe's (train.RECIPES)
BATCH_SIZE = None     # None: the recipe's
TRAIN_SUBSET = None   # e.g. 512 for a quick try on the CPU; None: the whole training set
DEVICE = "auto"       # a GPU when there is one

# %% [markdown]
# ## The network
#
# Built by your `resnet.py`: if this cell fails, finish `resnet.py` first (`pytest tests/test_resnet.py`).

# %%
with section():
    model = getattr(resnet, ARCH)()
    print(f"{ARCH}: {sum(p.numel() for p in model.parameters()):,} parameters")

# %% [markdown]
# ## Training
#
# `train.py`'s docstring explains the recipe: data augmentation on the GPU, mixed precision, SGD with Nesterov
# momentum, a learning rate that warms up for an epoch and then follows a cosine down to zero. After every
# epoch it measures the accuracy on a validation split (5,000 training images it never trains on) and writes
# `milestone.pt` and `train_log.json` into the handout folder, so a session that dies loses one epoch at most.
# A `milestone.pt` already there is replaced after the first epoch (the first line printed says so): rename it
# before you run the cell if you want to keep it.

# %%
options = ["--arch", ARCH, "--device", DEVICE, "--out", str(HANDOUT / "milestone.pt"),
           "--log", str(HANDOUT / "train_log.json")]
for flag, value in [("--epochs", EPOCHS), ("--batch-size", BATCH_SIZE), ("--train-subset", TRAIN_SUBSET)]:
    if value is not None:
        options += [flag, str(value)]
with section():
    train.train(train.parse_args(options))

# %% [markdown]
# ## How it went
#
# The log holds one entry per epoch. The training loss is measured on augmented images with label smoothing,
# while the network's weights change during the epoch; the validation loss on plain images, after the epoch.
# Falling together, they say the network is learning; a training loss that keeps falling while the validation
# loss rises says it is memorising the training set (overfitting). The plot is of the last training's log,
# `train_log.json`: the one above, or an earlier one if that stopped before its first epoch.

# %%
if not (HANDOUT / "train_log.json").exists():
    print("train_log.json: not written yet (no training has finished an epoch), nothing to plot")
else:
    log = json.loads((HANDOUT / "train_log.json").read_text())
    epochs = [e["epoch"] for e in log["epochs"]]
    print(f"epochs logged: {len(epochs)}; {log['arch']} on {log['device']}")
    fig, (loss_ax, acc_ax, lr_ax) = plt.subplots(1, 3, figsize=(14, 3.6))
    for split in ("train", "val"):
        loss_ax.plot(epochs, [e[f"{split}_loss"] for e in log["epochs"]], marker="o", label=split)
        acc_ax.plot(epochs, [100 * e[f"{split}_acc"] for e in log["epochs"]], marker="o", label=split)
    lr_ax.plot(epochs, [e["lr"] for e in log["epochs"]], marker="o")
    for ax, title in [(loss_ax, "loss"), (acc_ax, "accuracy (%)"), (lr_ax, "learning rate at the epoch's end")]:
        ax.set_title(title)
        ax.set_xlabel("epoch")
    loss_ax.legend()
    acc_ax.legend()
    plt.show()
    last = log["epochs"][-1]
    print(f"final validation accuracy {100 * last['val_acc']:.1f} %, {last['images_per_second']:.0f} images a "
          "second")

# %% [markdown]
# The autograder measures the accuracy on CIFAR-10's *test* set, which training never looks at; full credit
# from 90 %. Expect it a little below the validation accuracy.
#
# ## Before you upload
#
# `check_submission.py` checks every file you will upload, `milestone.pt` included: that it loads into the
# network it names, built from your `resnet.py`, as the autograder will load it.

# %%
check = subprocess.run([sys.executable, "check_submission.py"], cwd=HANDOUT, capture_output=True, text=True)
print(check.stdout + check.stderr)
