"""The handout's train.py: a real (small) run learns and writes the contract's checkpoint and a per-epoch log;
the GPU's mixed-precision paths run on the CPU; bad input is one line, not a traceback."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import data_env
from support import REPO, load_module, solution


def test_a_run_learns_and_writes_the_contracts_checkpoint_and_log(trained):
    log = json.loads(trained.log.read_text())
    assert log["arch"] == "resnet20" and log["device"] == "cpu" and log["amp"] == "off"
    epochs = log["epochs"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3, 4, 5, 6]
    assert epochs[-1]["val_acc"] >= 0.9 and epochs[-1]["train_loss"] < epochs[0]["train_loss"]
    assert all(e["images_per_second"] > 0 and 0 <= e["lr"] <= 0.05 for e in epochs)
    data = torch.load(trained.checkpoint, weights_only=True)
    assert set(data) == {"arch", "num_classes", "state_dict"} and data["arch"] == "resnet20"
    model = solution("resnet").resnet20()
    model.load_state_dict(data["state_dict"], strict=True)
    assert "upload milestone.pt to Gradescope" in trained.run.stdout


@pytest.mark.parametrize("amp", ["fp16", "bf16"])
def test_mixed_precision_paths_run_on_the_cpu(trained, tmp_path, amp):
    (tmp_path / "m.pt").write_bytes(b"an earlier run's")
    run = subprocess.run([sys.executable, "train.py", "--epochs", "1", "--train-subset", "32", "--batch-size", "16",
                          "--amp", amp, "--out", str(tmp_path / "m.pt"), "--log", str(tmp_path / "log.json")],
                         cwd=trained.folder, capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, OMP_NUM_THREADS="1", **data_env(trained.data)))
    assert run.returncode == 0, run.stderr[-2000:]
    log = json.loads((tmp_path / "log.json").read_text())
    assert log["amp"] == {"fp16": "float16", "bf16": "bfloat16"}[amp]
    state = torch.load(tmp_path / "m.pt", weights_only=True)["state_dict"]
    assert all(v.dtype in (torch.float32, torch.int64) for v in state.values())   # the weights stay float32
    out = tmp_path / "m.pt"
    assert run.stdout.startswith(f"{out} exists already: this run replaces it after its first epoch")
    assert run.stdout.rstrip().endswith(f"Gradescope grades only a file named milestone.pt: rename {out} to "
                                        "milestone.pt before you upload it")


def test_bad_input_is_one_line(trained, tmp_path):
    def run(*args, **env):
        return subprocess.run([sys.executable, "train.py", *args], cwd=trained.folder, capture_output=True,
                              text=True, timeout=300, env=dict(os.environ, **env))

    missing = run("--epochs", "1", CONVLAB_DATA=str(tmp_path / "none"))
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert missing.stderr.startswith("train.py: could not download https://www.cs.toronto.edu/~kriz/cifar-10-python")
    assert missing.stderr.count("\n") == 1 and f"put cifar-10-python.tar.gz in {tmp_path / 'none'}" in missing.stderr
    unknown = run("--arch", "vgg16")
    assert unknown.returncode == 2 and "invalid choice: 'vgg16'" in unknown.stderr
    stub = subprocess.run([sys.executable, "train.py", "--epochs", "1"], cwd=REPO / "assignments" / "cnn",
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, **data_env(trained.data)))
    assert stub.returncode == 1 and "Traceback" not in stub.stderr
    assert stub.stderr.startswith("train.py: your resnet.py is not finished (")


@pytest.fixture(scope="module")
def train_module():
    import sys as _sys
    _sys.path.insert(0, str(REPO / "assignments" / "cnn"))
    try:
        yield load_module(REPO / "solutions" / "cnn" / "train.py", "train_under_test")
    finally:
        _sys.path.remove(str(REPO / "assignments" / "cnn"))


def test_augmentation_is_a_padded_crop_and_a_flip_of_each_image(train_module):
    images = torch.randint(1, 256, (24, 3, 32, 32), dtype=torch.uint8)   # no zeros: the padding shows
    out = train_module.augment(images, torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(images, (4, 4, 4, 4))
    kinds = set()
    for i in range(len(images)):
        found = [(flip, dy, dx) for flip in (False, True) for dy in range(9) for dx in range(9)
                 if torch.equal(out[i], (padded[i, :, dy:dy + 32, dx:dx + 32].flip(2) if flip
                                         else padded[i, :, dy:dy + 32, dx:dx + 32]))]
        assert found, i
        kinds.add(found[0][0])
    assert kinds == {False, True}


def test_normalisation_uses_the_contracts_mean_and_std(train_module):
    images = torch.full((1, 3, 32, 32), 255, dtype=torch.uint8)
    x = train_module.normalize(images)
    want = [(1 - m) / s for m, s in zip((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))]
    np.testing.assert_allclose(x[0, :, 0, 0].numpy(), want, rtol=1e-6)
    assert x.is_contiguous(memory_format=torch.channels_last)


def test_the_schedule_warms_up_then_anneals_to_zero(train_module):
    lr = [train_module.learning_rate(step, 100, 10, 0.2) for step in range(100)]
    assert lr[0] == pytest.approx(0.02) and lr[9] == pytest.approx(0.2)
    assert lr[10] == pytest.approx(0.2) and lr[55] == pytest.approx(0.1) and lr[-1] < 1e-3
    assert all(a >= b for a, b in zip(lr[9:], lr[10:]))


def test_no_weight_decay_on_batchnorm_or_biases(train_module):
    model = solution("resnet").resnet20()
    decay, no_decay = train_module.parameter_groups(model, 5e-4)
    names = {id(p): n for n, p in model.named_parameters()}
    assert decay["weight_decay"] == 5e-4 and no_decay["weight_decay"] == 0
    assert all("conv" in names[id(p)] or "downsample.0" in names[id(p)] or names[id(p)] == "fc.weight"
               for p in decay["params"])
    assert all(names[id(p)].endswith("bias") or "bn" in names[id(p)] or "downsample.1" in names[id(p)]
               for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))
    assert math.isclose(sum(p.numel() for p in decay["params"]) + sum(p.numel() for p in no_decay["params"]), 272_474)
