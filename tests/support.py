"""Helpers shared by the project's tests."""
import importlib.util
import io
import os
import pickle
import shutil
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from grader import paths

REPO = paths.REPO


def load_module(path, name=None):
    """Import the Python file at ``path`` as a fresh module (not cached in sys.modules)."""
    path = Path(path)
    spec = importlib.util.spec_from_file_location(name or f"_convlab_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def solution(name, assignment="cnn"):
    """The reference solution module ``solutions/<assignment>/<name>.py``."""
    return load_module(paths.solutions_dir(assignment) / f"{name}.py", f"solution_{name}")


def handout_copy(tmp_path, with_solutions=(), assignment="cnn"):
    """A copy of the handout in ``tmp_path``, with the named solution files dropped in over the stubs."""
    target = Path(tmp_path) / assignment
    shutil.copytree(paths.assignments_dir(assignment), target,
                    ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    for name in with_solutions:
        shutil.copy(paths.solutions_dir(assignment) / name, target / name)
    return target


def run_pytest(folder, *args, timeout=600):
    """Run pytest in ``folder`` (a handout) in a child process; return the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", *args],
                          cwd=folder, capture_output=True, text=True, timeout=timeout)


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
    ones: load it with CONVLAB_DATA_UNVERIFIED=1. ``test_labels`` fixes the test set's labels."""
    rng = np.random.default_rng(seed)
    files = {}
    for i in range(1, 6):
        labels = rng.integers(0, 10, per_batch)
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


def constant_state(arch="resnet20", label=3):
    """The state_dict of a solution network that answers ``label`` whatever the image (its fc weights zero, its
    bias one-hot): its accuracy is the share of ``label`` in the test set, exactly, and it costs a full forward."""
    import torch

    state = getattr(solution("resnet"), arch)().state_dict()
    state["fc.weight"] = torch.zeros_like(state["fc.weight"])
    state["fc.bias"] = torch.nn.functional.one_hot(torch.tensor(label), 10).float() * 5
    return state


needs_cgroup = pytest.mark.skipif(os.geteuid() != 0 or not Path("/sys/fs/cgroup/memory").is_dir(),
                                  reason="needs root and a cgroup-v1 memory hierarchy")


def in_container(memory_mb, code, env=()):
    """Run Python ``code`` in a fresh memory cgroup of ``memory_mb`` (a container of that size), with ``env``
    added to the environment; its stdout."""
    group = Path("/sys/fs/cgroup/memory") / f"convlab-test-{os.getpid()}-{time.monotonic_ns()}"
    group.mkdir()
    try:
        (group / "memory.limit_in_bytes").write_text(str(memory_mb << 20))
        swap = group / "memory.memsw.limit_in_bytes"
        if swap.exists():
            swap.write_text(str(memory_mb << 20))
        completed = subprocess.run(["sh", "-c", f'echo $$ > {group}/cgroup.procs && exec "$0" -c "$1"',
                                    sys.executable, textwrap.dedent(code)], cwd=REPO,
                                   env=dict(os.environ, PYTHONPATH=str(REPO), **dict(env)), capture_output=True, text=True,
                                   timeout=300)
        assert completed.returncode == 0, completed.stderr[-2000:]
        return completed.stdout
    finally:
        for _ in range(50):   # the cgroup goes once its last process has been reaped
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.1)
