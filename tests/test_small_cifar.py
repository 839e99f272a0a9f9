"""`python -m grader small-cifar DIR`: a small CIFAR-10 in the official format that the loader reads (with the
unverified switch it prints), for an instructor to try the milestone without the real data."""
import re
import subprocess
import sys

import numpy as np

from grader.cnn import cifar10
from support import REPO


def test_the_command_writes_a_data_set_the_loader_reads_and_says_how_to_use_it(tmp_path, monkeypatch):
    run = subprocess.run([sys.executable, "-m", "grader", "small-cifar", str(tmp_path / "data"), "--per-batch", "30",
                          "--test", "40"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    env = f"CONVLAB_DATA={tmp_path / 'data'} CONVLAB_DATA_UNVERIFIED=1"
    assert f"{env} python train.py --arch resnet20" in run.stdout
    assert f"{env} python -m grader grade SUBMISSION" in run.stdout
    # train.py's epoch: 150 images less the validation split's 15, in batches of 16; measured, not guessed
    assert re.search(r"measured on this machine's CPU, an epoch of 9 steps takes about \d+ s, the 6 epochs "
                     r"\d+\.\d min", run.stdout), run.stdout
    assert "with that on training images only: the check against the best accuracy published for its architecture " \
           "is off, as it holds for the official CIFAR-10 alone" in run.stdout
    monkeypatch.setenv("CONVLAB_DATA_UNVERIFIED", "1")
    x, y = cifar10.load("test", tmp_path / "data", download=False, progress=False)
    assert x.shape == (40, 3, 32, 32) and x.dtype == np.uint8 and set(y) <= set(range(10))
    train_x, _ = cifar10.load("train", tmp_path / "data", download=False, progress=False)
    assert len(train_x) == 150 - 15   # five batches of 30, less the validation split's tenth
