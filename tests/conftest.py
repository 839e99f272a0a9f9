"""Fixtures shared by the project's tests."""
import os
import shutil
import subprocess
import sys
from types import SimpleNamespace

import pytest

from support import handout_copy, write_cifar

# The handout's train.py on a small CIFAR-10 in the official format (ten colour classes): after 6 epochs of 450
# images the solution's resnet20 gets every test image right. About 25 s of CPU.
TRAIN_ARGS = ["--arch", "resnet20", "--epochs", "6", "--batch-size", "16", "--lr", "0.05", "--amp", "off"]


def data_env(root):
    """The environment that points the loader (and the grader) at a small data set of the tests'."""
    return {"CONVLAB_DATA": str(root), "CONVLAB_DATA_UNVERIFIED": "1"}


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """A handout with the solution's resnet.py, trained by its own train.py: ``folder``, ``data`` (the data
    folder), ``checkpoint`` and ``log`` paths, and the ``run`` (CompletedProcess)."""
    root = tmp_path_factory.mktemp("trained")
    os.chmod(root, 0o755)   # the grader's sandbox user reads the data and the checkpoint's copies
    write_cifar(root / "data", per_batch=100, test=100)
    folder = handout_copy(root, with_solutions=("resnet.py",))
    run = subprocess.run([sys.executable, "train.py", *TRAIN_ARGS], cwd=folder, capture_output=True, text=True,
                         timeout=900, env=dict(os.environ, OMP_NUM_THREADS="1", **data_env(root / "data")))
    assert run.returncode == 0, run.stderr[-3000:]
    return SimpleNamespace(folder=folder, data=root / "data", checkpoint=folder / "milestone.pt",
                           log=folder / "train_log.json", run=run)


@pytest.fixture
def full_submission(tmp_path, trained, monkeypatch):
    """The four solution files and the trained milestone.pt, with the grader pointed at the small data set."""
    from grader import paths

    for name in ("layers.py", "initializers.py", "resnet.py", "quiz.py"):
        shutil.copy(paths.solutions_dir("cnn") / name, tmp_path)
    shutil.copy(trained.checkpoint, tmp_path)
    for key, value in data_env(trained.data).items():
        monkeypatch.setenv(key, value)
    return tmp_path
