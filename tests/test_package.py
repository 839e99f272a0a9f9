"""Both zips build; the autograder zip carries no solution source and, unpacked into an emulated /autograder,
grades a submission into results/results.json as Gradescope would run it."""
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from grader import package, paths, release


def test_build_writes_both_zips_without_solution_code(tmp_path):
    handout, autograder = package.build("cnn", tmp_path)
    with zipfile.ZipFile(handout) as archive:
        names = set(archive.namelist())
        assert "cnn/layers.py" in names and "cnn/tests/test_layers.py" in names
        assert "raise NotImplementedError" in archive.read("cnn/layers.py").decode()
    with zipfile.ZipFile(autograder) as archive:
        names = set(archive.namelist())
        assert {"setup.sh", "run_autograder", "requirements.txt", "grader/__main__.py"} <= names
        assert not any(n.startswith("solutions/") for n in names)
        shipped = [archive.read(n).decode("utf-8", "replace") for n in names]
        squeezed = "\n".join("".join(text.split()) for text in shipped)
        for path in paths.solutions_dir("cnn").glob("*.py"):
            assert path.read_text() not in shipped, path.name
            # A whole solution region (whitespace aside) must not appear; single lines may coincide with the
            # grader's own independent code (a dict literal, a loop header).
            _, regions = release.split_regions(path.read_text(), path.name)
            for _, name, lines in regions:
                body = "".join("".join(lines).split())
                assert len(lines) < 3 or body not in squeezed, (path.name, name)
    again = package.build("cnn", tmp_path / "again")
    assert again[1].read_bytes() == autograder.read_bytes()  # reproducible


def test_run_autograder_in_an_emulated_gradescope_root(tmp_path):
    _, autograder = package.build("cnn", tmp_path / "dist")
    root = tmp_path / "autograder"
    (root / "source").mkdir(parents=True)
    with zipfile.ZipFile(autograder) as archive:
        archive.extractall(root / "source")
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    (root / "submission" / "nested").mkdir(parents=True)
    shutil.copy(paths.solutions_dir("cnn") / "layers.py", root / "submission" / "nested")
    (root / "submission_metadata.json").write_text(json.dumps({"id": 42, "assignment": {"id": 7}}))
    env = dict(os.environ, AUTOGRADER_ROOT=str(root),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    env.pop("PYTHONPATH", None)
    result = subprocess.run(["bash", str(root / "run_autograder")], env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads((root / "results" / "results.json").read_text())
    layers = [t for t in data["tests"] if t["number"].startswith("1.")]
    assert layers and all(t["score"] == t["max_score"] for t in layers)
    assert all(t["score"] == 0 for t in data["tests"] if not t["number"].startswith("1."))
    if os.geteuid() == 0:
        assert (root / "source").stat().st_mode & 0o077 == 0  # the sandbox user cannot read the grader
