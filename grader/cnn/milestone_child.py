"""The milestone's evaluation, run inside a sandboxed child (never imported by the grader's own process).

The sandbox gets three files: the submitted ``milestone.pt``, this module, and the grader's functional ResNet
(``grader/cnn/oracles/resnet.py``) as ``resnet_reference.py``: the network that runs is the grader's own copy
of the named architecture, never the student's resnet.py. The checkpoint is read with
``torch.load(weights_only=True)``, which builds tensors and plain containers only: a pickle that would run
code is refused, not run. The child never sees a label: it returns predictions, and the grader counts.
"""
import re
from pathlib import Path

import numpy as np
import torch

import resnet_reference as ref

CHECKPOINT = Path(__file__).with_name("milestone.pt")
MAX_ENTRIES = 2000   # resnet56 has 341; a file with more is judged on its count alone
MAX_DIMS = 8         # a shape with more is reported as it is, never expanded
torch.set_flush_denormal(True)   # weights full of denormal numbers would otherwise slow every conv 100-fold


class Unreadable(Exception):
    """The checkpoint is not what the contract asks for; the message says why, in the student's terms."""


def _checkpoint():
    try:
        data = torch.load(CHECKPOINT, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch's many ways of refusing a file, in the student's terms
        # torch words it "Unsupported global: GLOBAL m.f" or "unsupported GLOBAL m.f", by version
        unsafe = re.search(r"(?i)unsupported global:?\s+(?:global\s+)?([\w.]+)", str(error))
        if unsafe:
            raise Unreadable(f"it holds a Python object ({unsafe.group(1)}) that is not a tensor, a number or a "
                             "plain container: save only the dict the contract shows, of tensors from "
                             "model.state_dict()") from None
        raise Unreadable("it is not a file torch.save wrote (or it was damaged on the way)") from None
    if not isinstance(data, dict) or not isinstance(data.get("state_dict"), dict):
        raise Unreadable("it is not a dict with a 'state_dict' (save it as the contract says: "
                         "{'arch': ..., 'num_classes': 10, 'state_dict': model.state_dict()})")
    return data


def describe():
    """What the checkpoint holds, as plain data for the grader to judge: its arch and num_classes, per
    state_dict entry its name, shape, dtype and count of non-finite values, and the layout the grader's copy
    of that arch expects (None for an arch the contract does not name); or ``{"problem": why}`` when the file
    cannot be read as a checkpoint.

    Nothing is computed on an entry before its shape is known to be the one the arch expects: an entry
    claiming an absurd shape over a small storage (``expand``) is reported by its shape, never materialised."""
    try:
        data = _checkpoint()
    except Unreadable as error:
        return {"problem": str(error)}
    state = data["state_dict"]
    if len(state) > MAX_ENTRIES:
        return {"problem": f"its state_dict has {len(state)} entries, far more than any of the architectures "
                           "the contract names: save model.state_dict() of the model you trained"}
    arch, classes = data.get("arch"), data.get("num_classes")
    arch = arch[:100] if isinstance(arch, str) else type(arch).__name__
    expected = {k: tuple(s) for k, s in ref.state_dict_shapes(ref.arch(arch)).items()} \
        if arch in ref.ARCH_NAMES else {}
    rows = []
    for key, value in state.items():
        key = str(key)[:200]
        if not isinstance(value, torch.Tensor):
            rows.append([key, None, type(value).__name__, 0])
            continue
        shape = tuple(value.shape) if value.dim() <= MAX_DIMS else None
        bad = int((~torch.isfinite(value)).sum()) if value.is_floating_point() and shape == expected.get(key) \
            else 0
        rows.append([key, list(shape) if shape is not None else None, str(value.dtype)[6:], bad])
    return {"arch": arch, "num_classes": classes if type(classes) is int and abs(classes) < 10 ** 6 else None,
            "entries": rows, "expected": [[k, list(s)] for k, s in expected.items()] or None}


def build(threads=1):
    """(spec, float32 eval-mode weights, BatchNorms folded into their convs, in channels_last) for the grader's
    copy of the checkpoint's architecture, run on ``threads`` threads (the CPUs the grader's container grants)."""
    torch.set_num_threads(threads)
    data = _checkpoint()
    spec = ref.arch(data["arch"], num_classes=10)
    # Each entry is let go as its float copy is made, and each conv as it is folded: one network held, not two.
    params = {key: data["state_dict"].pop(key) for key in ref.state_dict_shapes(spec)}
    params = {key: value.float() if value.is_floating_point() else value for key, value in params.items()}
    params = ref.fold_batchnorm(params, spec)
    for key, value in params.items():
        if value.ndim == 4:
            params[key] = value.contiguous(memory_format=torch.channels_last)
    return spec, params


def predict(model, images, mean, std):
    """Class predictions (int64) for uint8 images ``(N, 3, 32, 32)``, normalised as the handout's loader
    does; eval mode (running statistics), float32, channels_last."""
    spec, params = model
    mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    with torch.inference_mode():
        x = ((torch.from_numpy(images).float() / 255 - mean) / std).contiguous(memory_format=torch.channels_last)
        logits = ref.resnet_forward(params, spec, x, training=False)
    return logits.argmax(1).numpy().astype(np.int64)
