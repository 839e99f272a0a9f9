"""Helpers shared by the project's tests."""
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import time
from pathlib import Path

import pytest

from grader import paths
from grader.cnn.small_cifar import write_cifar  # noqa: F401 (the tests' data sets, written as an instructor's are)

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


def venv_checkout(folder):
    """A virtual environment and a copy of the grader in ``folder``: (its python, the checkout, its site-packages).
    The venv reaches the project's packages (numpy, torch, ...) through a .pth file, after its own."""
    base = Path(sys.base_prefix, "bin", "python3")
    subprocess.run([str(base), "-m", "venv", "--without-pip", str(folder / "venv")], check=True)
    python = folder / "venv" / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "project.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    shutil.copytree(paths.REPO / "grader", folder / "checkout" / "grader",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return python, folder / "checkout", Path(site)
