"""A small CIFAR-10 in the official format, for trying the milestone without the real data (163 MB):

    python -m grader small-cifar DIR        # then train and grade with the commands it prints

Each class is a colour plus noise, so a resnet20 learns it in a few CPU epochs; ``seconds_per_step`` measures
how long one takes here. Its md5s are not the official ones: the loader takes it only with
CONVLAB_DATA_UNVERIFIED=1, which the printed commands set. The project's tests write their data sets with the
same function.
"""
import io
import pickle
import statistics
import tarfile
import time
from pathlib import Path

import numpy as np

# Ten well-separated colours: a class of the small CIFAR-10 archives below is its colour plus noise, so a small
# network learns it in a few epochs on the CPU.
PALETTE = np.array([[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
                    [145, 30, 180], [70, 240, 240], [240, 50, 230], [128, 128, 0], [0, 0, 128]], dtype=np.float64)


def cifar_like(labels, rng):
    """uint8 images (N, 3, 32, 32): each the colour of its label, plus noise."""
    images = PALETTE[labels][:, :, None, None] + rng.normal(0, 25, (len(labels), 3, 32, 32))
    return np.clip(images, 0, 255).astype(np.uint8)


def cifar_batch_bytes(images, labels, name):
    """One batch file as the official archive has it: a pickled dict with ``data`` uint8 (N, 3072) and
    ``labels`` (a list of ints)."""
    batch = {"batch_label": name, "labels": [int(v) for v in labels],
             "data": images.reshape(len(images), -1), "filenames": [f"{name}_{i}.png" for i in range(len(labels))]}
    return pickle.dumps(batch, protocol=2)


def write_cifar(root, per_batch=40, test=60, test_labels=None, seed=0, archive=True):
    """Write a small CIFAR-10 in the official layout into ``root``: ``cifar-10-python.tar.gz`` (``archive``)
    or the unpacked ``cifar-10-batches-py/``. Returns ``{file name: bytes}``. The md5s are not the official
    ones: load it with CONVLAB_DATA_UNVERIFIED=1. ``test_labels`` fixes the test set's labels, and the training
    labels are drawn from them: a network's accuracy is alike on both splits, as on CIFAR-10 (the grader
    compares them)."""
    rng = np.random.default_rng(seed)
    files = {}
    for i in range(1, 6):
        labels = rng.integers(0, 10, per_batch) if test_labels is None else rng.choice(test_labels, per_batch)
        files[f"data_batch_{i}"] = cifar_batch_bytes(cifar_like(labels, rng), labels, f"data_batch_{i}")
    labels = np.asarray(test_labels) if test_labels is not None else rng.integers(0, 10, test)
    files["test_batch"] = cifar_batch_bytes(cifar_like(labels, rng), labels, "test_batch")
    files["batches.meta"] = pickle.dumps({"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog",
                                                          "frog", "horse", "ship", "truck"],
                                          "num_cases_per_batch": per_batch, "num_vis": 3072}, protocol=2)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if archive:
        with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    else:
        (root / "cifar-10-batches-py").mkdir(exist_ok=True)
        for name, data in files.items():
            (root / "cifar-10-batches-py" / name).write_bytes(data)
    return files


def seconds_per_step(arch="resnet20", batch_size=16, steps=3):
    """Seconds one training step (forward, cross-entropy, backward; float32) of ``arch`` on a batch of
    ``batch_size`` takes on this machine's CPU, with torch's default threads as train.py has them: the median of
    ``steps`` after one that warms up. The network is the grader's functional reference
    (grader/cnn/oracles/resnet.py: the convolutions and batchnorms of resnet.py's), with random weights."""
    import torch
    import torch.nn.functional as F

    from grader.cnn.oracles import resnet

    spec = resnet.arch(arch)
    params = {key: torch.rand(shape, requires_grad=not resnet.is_buffer(key))
              for key, shape in resnet.state_dict_shapes(spec).items() if not key.endswith("num_batches_tracked")}
    x, labels = torch.randn(batch_size, 3, 32, 32), torch.randint(0, 10, (batch_size,))
    times = []
    for _ in range(steps + 1):
        started = time.perf_counter()
        F.cross_entropy(resnet.resnet_forward(params, spec, x, training=True), labels).backward()
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])
