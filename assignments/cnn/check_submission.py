"""Check your files before you upload them to Gradescope:

    python check_submission.py            # the files in this folder
    python check_submission.py FOLDER     # the files in FOLDER

It looks for what would stop the autograder from grading a file at all, and says so in one line per problem:
a missing or misnamed file, a file that does not import on its own, a forbidden import in layers.py, a graded
function whose name or parameters differ from the assignment's, and a milestone.pt that does not load into
the network it names. It also lists the functions that still raise NotImplementedError, as the stubs do
(they would score zero, but the rest of the file is graded).

Exit status: 0 when every file is fine, 1 when a file has a problem, 3 when the files are fine but some
functions are not implemented yet (2 is a wrong command line).

It grades nothing and runs no test: `pytest` runs the public tests, and the autograder its hidden ones. The
rules it checks are the autograder's own (``submission_rules.py``).
"""
import argparse
import ast
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import submission_rules as rules

IMPORT_SECONDS = 120   # importing torch the first time on a laptop can take a while
LOOKALIKE_SUFFIXES = {".py": (".py", ".txt"), ".pt": (".pt", ".pth", ".tar", ".ckpt", ".bin")}

# Runs in a fresh interpreter, in a folder holding the one file under test (as on the autograder, where
# each file is imported alone): import it, then report each name's parameters as JSON.
SIGNATURE_PROBE = """
import inspect, json, sys
folder, module, names, out = sys.argv[1:5]
sys.path.insert(0, folder)
mod = __import__(module)
found = {}
for name in json.loads(names):
    obj = getattr(mod, name, None)
    try:
        parameters = inspect.signature(obj).parameters.values() if callable(obj) else None
    except (TypeError, ValueError):
        parameters = None
    found[name] = None if parameters is None else [
        [p.name, p.kind.name, None if p.default is p.empty else repr(p.default)] for p in parameters]
with open(out, "w") as f:
    json.dump(found, f)
"""

# Loads milestone.pt as the autograder does (weights_only=True) and builds the architecture it names from
# the resnet.py beside it; prints one line: "ok ..." or what is wrong.
CHECKPOINT_PROBE = """
import sys
folder, checkpoint, allowed = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
sys.path.insert(0, folder)
import torch
try:
    data = torch.load(checkpoint, map_location="cpu", weights_only=True)
except Exception as error:
    lines = str(error).strip().splitlines() or [type(error).__name__]
    sys.exit(f"it cannot be read with torch.load(weights_only=True): {lines[0][:200]}")
if not isinstance(data, dict) or not isinstance(data.get("state_dict"), dict):
    sys.exit("it must hold a dict {'arch': NAME, 'num_classes': 10, 'state_dict': model.state_dict()}, "
             "as train.py saves it")
arch = data.get("arch")
if arch not in allowed:
    sys.exit(f"it names the architecture {arch!r}; it must be one of {', '.join(allowed)}")
if data.get("num_classes") != 10:
    sys.exit(f"it says num_classes is {data.get('num_classes')!r}; CIFAR-10 has 10")
try:
    import resnet
    model = getattr(resnet, arch)()
except Exception as error:
    sys.exit(f"resnet.{arch}() from your resnet.py fails ({type(error).__name__}: {error}), so the "
             "checkpoint cannot be checked")
try:
    model.load_state_dict(data["state_dict"], strict=True)
except Exception as error:
    details = [line.strip() for line in str(error).splitlines()[1:] if line.strip()] or [str(error)]
    sys.exit(f"its state_dict does not load strictly into resnet.{arch}(): {details[0][:300]} (save "
             f"model.state_dict() of the model resnet.{arch}() built; torch.compile adds '_orig_mod.' to "
             "every key, nn.DataParallel 'module.')")
broken = [k for k, v in data["state_dict"].items() if v.is_floating_point() and not torch.isfinite(v).all()]
if broken:
    sys.exit(f"{broken[0]} holds NaN or infinite values: the training diverged (try a lower learning rate)")
print(f"ok: {arch}, loads strictly into your resnet.{arch}()")
"""


def parameters(text):
    """[(name, default)] of a parameter list written as in ``def f(...)``; default is ``...`` when absent."""
    arguments = ast.parse(f"def f({text}): pass").body[0].args
    defaults = [...] * (len(arguments.args) - len(arguments.defaults))
    defaults += [ast.literal_eval(d) for d in arguments.defaults]
    return [(a.arg, d) for a, d in zip(arguments.args, defaults)]


def _written(found):
    """A function's parameters as reported by the probe, written as in its ``def`` line."""
    pieces = []
    for name, kind, default in found:
        prefix = {"VAR_POSITIONAL": "*", "VAR_KEYWORD": "**"}.get(kind, "")
        pieces.append(f"{prefix}{name}" + (f"={default}" if default is not None else ""))
    return ", ".join(pieces)


def signature_problem(name, expected, found):
    """Why the probe's report ``found`` of function ``name`` differs from the contract's ``expected``, or None."""
    if found is None:
        return f"{name} is missing (or is not a function or class)"
    want = parameters(expected)
    ok = [p[0] for p in found] == [w[0] for w in want] and all(kind == "POSITIONAL_OR_KEYWORD" for _, kind, _ in found)
    for (_, _, default), (_, wanted) in zip(found, want):
        try:
            ok = ok and (wanted is ... or (default is not None and ast.literal_eval(default) == wanted))
        except (ValueError, SyntaxError):
            ok = False
    if ok:
        return None
    return f"{name}({_written(found)}) should be {name}({expected}), as the assignment defines it"


def lookalikes(name, present):
    """Files in ``present`` that look like a misnamed ``name`` (Layers.py, layers (1).py, milestone.pth)."""
    stem, suffix = name.rsplit(".", 1)[0], "." + name.rsplit(".", 1)[1]
    squeeze = lambda text: "".join(c for c in text.lower() if c.isalnum())  # noqa: E731
    return sorted(p for p in present if p != name and squeeze(p.split(".")[0]).startswith(squeeze(stem))
                  and Path(p).suffix.lower() in LOOKALIKE_SUFFIXES[suffix])


def _child(arguments, work):
    """Run a fresh interpreter (isolated from this folder's other files) in ``work``; (status, last line)."""
    try:
        result = subprocess.run([sys.executable, "-I", *arguments], cwd=work, capture_output=True, text=True,
                                timeout=IMPORT_SECONDS)
    except subprocess.TimeoutExpired:
        return 1, f"it took over {IMPORT_SECONDS} s (does it run long code at the top level, outside functions?)"
    lines = [line for line in (result.stderr if result.returncode else result.stdout).splitlines() if line.strip()]
    return result.returncode, (lines[-1].strip() if lines else f"exit status {result.returncode}")


def check_source(path, work):
    """The problems of one .py file: size, syntax, forbidden imports, importing alone, signatures."""
    name = path.name
    if path.stat().st_size > rules.MAX_SOURCE_BYTES:
        return [f"{name} is over {rules.MAX_SOURCE_BYTES >> 10} KB: the autograder will not read it"]
    source = path.read_text(encoding="utf-8", errors="replace")
    try:
        tree = ast.parse(source, filename=name)
    except SyntaxError as error:
        return [f"{name}, line {error.lineno}: syntax error ({error.msg}): the whole part would score zero"]
    except (RecursionError, MemoryError):
        return [f"{name} is nested too deeply for Python to read (an expression of thousands of terms?): the whole "
                "part would score zero"]
    problems = forbidden_uses(name, tree)
    folder = Path(work) / name.rsplit(".", 1)[0]
    folder.mkdir()
    shutil.copy(path, folder / name)
    for given in rules.GIVEN_MODULES:   # the grader runs each file beside its copies of these
        shutil.copy(Path(__file__).with_name(given), folder / given)
    out = Path(work) / f"{name}.json"
    names = list(rules.SIGNATURES[name])
    status, last = _child(["-c", SIGNATURE_PROBE, str(folder), name[:-3], json.dumps(names), str(out)], work)
    if status:
        return problems + [f"{name} does not import on its own: {last} (each file must stand alone: it may "
                           "import the standard library, numpy, torch and the given "
                           f"{' and '.join(rules.GIVEN_MODULES)}, nothing else of yours)"]
    if not out.is_file():
        return problems + [f"{name} stops the interpreter while it is imported (sys.exit or os._exit at the top "
                           "level?): the autograder could not grade it"]
    found = json.loads(out.read_text())
    problems += [f"{name}: {p}" for function, expected in rules.SIGNATURES[name].items()
                 if (p := signature_problem(function, expected, found[function]))]
    return problems


def forbidden_uses(name, tree):
    """One line per import of a module ``name`` may not use."""
    modules = rules.FORBIDDEN_MODULES.get(name, ())
    problems = []
    for node in ast.walk(tree):
        imported = []
        if isinstance(node, ast.Import):
            imported = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            imported = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for full in imported:
            if any(full == m or full.startswith(m + ".") for m in modules):
                problems.append(f"{name}, line {node.lineno}: uses {full}, which {name} may not use "
                                "(see the README's rules): a function that uses it scores zero")
                break
    return problems


def check_checkpoint(path, folder, work):
    """The problems of milestone.pt: its size, and whether it loads into its network from your resnet.py."""
    size = path.stat().st_size
    if size > rules.MAX_CHECKPOINT_BYTES:
        return [f"{path.name} is {size / 2**20:.1f} MB, over the {rules.MAX_CHECKPOINT_BYTES >> 20} MB limit: "
                "save the model's state_dict alone, in float32"]
    if not (folder / "resnet.py").is_file():
        return [f"{path.name} cannot be checked without resnet.py: it is built from your resnet.py"]
    model_folder = Path(work) / "milestone"
    model_folder.mkdir()
    shutil.copy(folder / "resnet.py", model_folder / "resnet.py")
    status, last = _child(["-c", CHECKPOINT_PROBE, str(model_folder), str(path.resolve()),
                           ",".join(rules.MILESTONE_ARCHS)], work)
    return [] if status == 0 else [f"{path.name}: {last}"]


def _raises_not_implemented(function):
    for node in ast.walk(function):
        if isinstance(node, ast.Raise) and node.exc is not None:
            raised = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(raised, ast.Name) and raised.id == "NotImplementedError":
                return True
    return False


def unfinished(path):
    """The functions and methods of the Python file at ``path`` that still raise NotImplementedError."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
    except SyntaxError:
        return []   # check() says so
    found = []
    for node in tree.body:
        methods = [(f"{node.name}.", m) for m in node.body] if isinstance(node, ast.ClassDef) else [("", node)]
        found += [prefix + m.name for prefix, m in methods
                  if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)) and _raises_not_implemented(m)]
    return found


def check(folder):
    """[(file, problems)] for every file of a submission in ``folder``, in the assignment's order."""
    present = sorted(p.name for p in folder.iterdir() if p.is_file())
    report = []
    with tempfile.TemporaryDirectory(prefix="check-submission-") as work:
        for name in rules.SOURCE_FILES + (rules.CHECKPOINT,):
            path = folder / name
            if path.is_file():
                problems = check_source(path, work) if name.endswith(".py") else check_checkpoint(path, folder, work)
            elif lookalikes(name, present):
                problems = [f"{name} is missing, but {lookalikes(name, present)[0]} is here: rename it to {name} "
                            "(the autograder looks for the exact name)"]
            elif name == rules.CHECKPOINT:
                problems = None   # not trained yet: the other parts are graded without it
            else:
                problems = [f"{name} is missing: that part would score zero"]
            report.append((name, problems))
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description="Check a submission's files before uploading them.")
    parser.add_argument("folder", nargs="?", default=Path(__file__).resolve().parent, type=Path,
                        help="the folder holding your files (default: this one)")
    folder = parser.parse_args(argv).folder
    if not folder.is_dir():
        parser.error(f"not a folder: {folder}")
    count, todo = 0, 0
    for name, problems in check(folder):
        if problems is None:
            print(f"{name}: not here yet (train it with train.py); you can upload the other files without it")
        elif problems:
            print("\n".join(problems))
            count += len(problems)
        elif name.endswith(".py") and (functions := unfinished(folder / name)):
            print(f"{name}: gradable, but these still raise NotImplementedError (their tests would score zero): "
                  f"{', '.join(functions)}")
            todo += len(functions)
        else:
            print(f"{name}: ok")
    if count:
        print(f"{count} problem(s): fix them before you upload.")
        return 1
    if todo:
        print(f"{todo} function{'s' * (todo != 1)} not implemented yet: upload when you are done, or now for the "
              "points of the rest.")
        return 3
    print("All set: upload these files to Gradescope (loose, or in one folder).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
