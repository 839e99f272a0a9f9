"""The handout's README tells a student what to install: exactly the packages the handout uses, with a route
to a CPU-only torch for a laptop without a GPU; and how a test's cases make its points."""
import ast
import sys

import nbformat

from grader.cnn.points import SCORING
from support import handout_copy


def _third_party_imports(folder):
    """Top-level modules the handout's Python files and notebooks import that are neither the standard library
    nor the handout's own."""
    own = {p.stem for p in folder.rglob("*.py")}
    sources = [p.read_text() for p in folder.rglob("*.py")]
    for path in folder.rglob("*.ipynb"):
        sources += [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    found = set()
    for source in sources:
        for node in ast.walk(ast.parse(source)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            found |= {n.split(".")[0] for n in names}
    return found - set(sys.stdlib_module_names) - own


def test_the_handout_readme_installs_exactly_what_the_handout_uses(tmp_path):
    folder = handout_copy(tmp_path)
    readme = (folder / "README.md").read_text()
    installs = [line.split()[2:] for line in readme.splitlines() if line.strip().startswith("pip install")]
    full, = [words for words in installs if "--index-url" not in words and "torch" in words]
    # jupyter runs the notebooks; nothing imports it.
    assert set(full) == _third_party_imports(folder) | {"jupyter"} == {"numpy", "torch", "pytest", "tqdm",
                                                                       "matplotlib", "jupyter"}
    cpu = [words for words in installs if "--index-url" in words]
    assert cpu == [["torch", "--index-url", "https://download.pytorch.org/whl/cpu"]]
    rest, = [words for words in installs if words not in cpu and words != full]
    assert set(rest) | {"torch"} == set(full), "the CPU route must install the same packages"
    assert "Colab" in readme and "python check_submission.py" in readme


def test_the_handout_readme_states_how_points_are_made(tmp_path):
    # The rule `grade --verbose` prints and each test's sum follows, said once, as the grader words it.
    readme = " ".join((handout_copy(tmp_path) / "README.md").read_text().split())
    assert readme.count(" ".join(SCORING.split())) == 1
    assert "weighs 0.5, and a ResNet training step 2" in SCORING and "at most 50% of its test's points" in SCORING
