"""The handout's notebooks: built from their plain-text sources, clean (no outputs, no local metadata, valid
nbformat), free of solution code; run green against the solutions on the CPU, and, on a handout where only
pooling is written, run to the end in the order a student works: each section that needs a stub says so in one
line and the next one runs."""
import ast
import re

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from grader import paths, release
from support import handout_copy, write_cifar

SOURCES = sorted((paths.solutions_dir("cnn") / release.NOTEBOOKS).glob("*.py"))
NAMES = [p.stem for p in SOURCES]
STUDENT_FILES = ["layers.py", "initializers.py", "resnet.py", "quiz.py"]
# What a test sets in place of each notebook's parameters cell: the CPU and small sizes, so that all of them
# run in a minute or two.
QUICK = {"initializers": "DIMS = [512] * 7",
         "milestone": "ARCH, EPOCHS, BATCH_SIZE, TRAIN_SUBSET, DEVICE = 'resnet20', 2, 64, 256, 'cpu'"}
# On a handout whose layers.py has its pooling functions written and nothing else (the other files the stubs):
# the function each skipped section names, in order. Every other section runs.
SKIPPED = {"layers": ["conv_forward_naive", "batchnorm_forward", "spatial_batchnorm_forward", "edge_filters",
                      "edge_filters"],
           "initializers": ["fan_in_and_fan_out", "calculate_gain", "activation_stds", "activation_stds",
                            "activation_stds"],
           "quiz": ["conv_output_size", "pool_output_size", "alexnet_table", "alexnet_table"],
           "milestone": ["ResNet.__init__", "ResNet.__init__"]}
SKIP_LINE = re.compile(r"^(\S+): not implemented yet, skipped$", re.M)


def test_every_notebook_has_its_expectations():
    assert set(NAMES) == {"layers", "initializers", "quiz", "milestone"} == set(SKIPPED)


@pytest.mark.parametrize("name", NAMES)
def test_the_handout_notebook_is_clean_and_valid(name):
    path = paths.assignments_dir("cnn") / release.NOTEBOOKS / f"{name}.ipynb"
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata == release.NOTEBOOK_METADATA
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert all(set(cell.metadata) <= {"tags"} for cell in notebook.cells)
    source = (paths.solutions_dir("cnn") / release.NOTEBOOKS / f"{name}.py").read_text()
    leaked = release.solution_lines(source, name) & {line.strip() for line in path.read_text().splitlines()}
    assert not leaked


def test_cell_markers_make_cells():
    text = ('# %% [markdown]\n# # Title\n#\n# Some *prose*.\n\n# %% tags=["parameters"]\nN = 3\n\n'
            '# %%\nprint(N)\n')
    notebook = nbformat.reads(release.build_notebook(text, "demo.py"), as_version=4)
    assert [(c.cell_type, c.source) for c in notebook.cells] == [
        ("markdown", "# Title\n\nSome *prose*."), ("code", "N = 3"), ("code", "print(N)")]
    assert notebook.cells[1].metadata == {"tags": ["parameters"]} and notebook.cells[2].metadata == {}
    assert [c.id for c in notebook.cells] == ["demo-0", "demo-1", "demo-2"]
    with pytest.raises(release.ReleaseError, match="demo.py:1: text before the first cell marker"):
        release.build_notebook("x = 1\n", "demo.py")


def execute(folder, name, notebook):
    """Run ``notebook`` in ``folder/notebooks`` as a student would, with its parameters made QUICK."""
    for i, cell in enumerate(notebook.cells):
        if "parameters" in cell.metadata.get("tags", []) and name in QUICK:
            notebook.cells.insert(i + 1, nbformat.v4.new_code_cell(QUICK[name]))
            break
    else:
        assert name not in QUICK, f"{name} has no cell tagged 'parameters'"
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(folder / release.NOTEBOOKS)}})
    client.execute()
    return notebook


@pytest.fixture
def small_cifar(tmp_path, monkeypatch):
    write_cifar(tmp_path / "data", per_batch=60, test=20)
    monkeypatch.setenv("CONVLAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("CONVLAB_DATA_UNVERIFIED", "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")


@pytest.mark.parametrize("name", NAMES)
def test_the_notebook_runs_on_the_solutions(name, tmp_path, small_cifar):
    folder = handout_copy(tmp_path, with_solutions=STUDENT_FILES)
    source = paths.solutions_dir("cnn") / release.NOTEBOOKS / f"{name}.py"
    notebook = nbformat.reads(release.build_notebook(source.read_text(), source.name), as_version=4)
    ran = execute(folder, name, notebook)
    outputs = [o for cell in ran.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any(o.output_type == "display_data" and "image/png" in o.data for o in outputs), "no figure drawn"
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert not SKIP_LINE.findall(text), text
    check_outputs(name, text, folder)


def check_outputs(name, text, folder):
    """What each notebook must show on the solutions, read from its printed output."""
    if name == "layers":
        errors = [float(e) for line in text.splitlines() if "relative error" in line
                  for e in re.findall(r"\d\.\d\de[-+]\d+", line)]
        assert len(errors) == 8 and max(errors) < 1e-6, text
        assert "output shape: (1, 3, 128, 128)" in text and "stride 2: (1, 1, 64, 64)" in text
    elif name == "initializers":
        assert "agrees with activation_stds: True" in text and text.count("agrees") == 8, text
    elif name == "quiz":
        assert "conv4" in text and "erratum" in text and "differs" not in text, text
    elif name == "milestone":
        assert (folder / "milestone.pt").is_file() and (folder / "train_log.json").is_file()
        assert "epochs logged: 2" in text and "milestone.pt: ok" in text and "All set" in text, text


def pooling_only(folder):
    """Write the solution's pooling functions into the layers.py of the handout at ``folder``, in place of their
    stubs: layers.py as a student who began with pooling has it."""
    def pooling(text):
        return {node.name: node for node in ast.parse(text).body
                if isinstance(node, ast.FunctionDef) and "_pool_" in node.name}

    solution = (paths.solutions_dir("cnn") / "layers.py").read_text()
    written = {name: ast.get_source_segment(solution, node) + "\n" for name, node in pooling(solution).items()}
    stub = (folder / "layers.py").read_text()
    lines = stub.splitlines(keepends=True)
    stubs = sorted(pooling(stub).values(), key=lambda node: node.lineno, reverse=True)
    assert len(stubs) == len(written) == 4
    for node in stubs:   # from the last, so that the line numbers of those above still hold
        lines[node.lineno - 1:node.end_lineno] = [written[node.name]]
    (folder / "layers.py").write_text("".join(lines))


@pytest.mark.parametrize("name", NAMES)
def test_with_only_pooling_written_each_section_runs_or_says_in_one_line_which_stub_it_skipped(name, tmp_path,
                                                                                            small_cifar):
    folder = handout_copy(tmp_path)
    pooling_only(folder)
    ran = execute(folder, name, nbformat.read(folder / release.NOTEBOOKS / f"{name}.ipynb", as_version=4))
    outputs = [o for cell in ran.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert SKIP_LINE.findall(text) == SKIPPED[name], text
    if name == "layers":   # the pooling section ran, and found the written functions right
        errors = [float(e) for e in re.findall(r"pooling: output \(2, 3, 4, 4\), dx relative error (\S+)", text)]
        assert len(errors) == 2 and max(errors) < 1e-6, text
    elif name == "milestone":
        assert "train_log.json: not written yet" in text and "All set" not in text, text
