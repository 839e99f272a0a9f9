"""Helpers shared by the project's tests."""
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

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
