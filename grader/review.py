"""For the TA, not for points: the introspection a submission's Python files use, and what a checker found
implausible (a milestone accuracy the network did not earn: check_milestone.py).

Reading frames, the garbage collector, dynamic code or foreign calls is how a submission would try to get around
the sandbox's rules (and sometimes an honest student's curiosity): a TA reviews the list before trusting a grade.
Found by reading the source in the grader's own process, where the student's code cannot reach.
"""
import ast

from grader.text import parse_source

# name used (as an identifier, an attribute or an imported module) -> what to call it
WATCHED = {"exec": "exec", "eval": "eval", "compile": "compile", "__import__": "__import__",
           "importlib": "importlib", "_imp": "importlib", "gc": "gc", "_getframe": "sys._getframe",
           "f_back": "frame objects", "f_globals": "frame objects", "f_locals": "frame objects",
           "ctypes": "ctypes", "__builtins__": "__builtins__",
           "__closure__": "function internals", "__defaults__": "function internals",
           "__code__": "function internals", "cell_contents": "function internals", "addaudithook": "audit hooks"}


def introspection(source):
    """Sorted kinds of introspection ``source`` uses (none when it does not parse: it cannot run either)."""
    tree = parse_source(source)
    if tree is None:
        return []
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Name):
            names = [node.id]
        elif isinstance(node, ast.Attribute):
            # model.eval() and torch.compile() are no dynamic code: the builtins count only by their own name
            builtin = node.attr in ("exec", "eval", "compile") and not (
                isinstance(node.value, ast.Name) and node.value.id in ("builtins", "__builtins__"))
            names = [] if builtin else [node.attr]
            if node.attr in ("modules", "meta_path", "path_hooks") and isinstance(node.value, ast.Name) \
                    and node.value.id == "sys":   # not a model's .modules()
                found.add(f"sys.{node.attr}")
        elif isinstance(node, ast.Import):
            names = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [(node.module or "").split(".")[0]] + [a.name for a in node.names]
        found.update(WATCHED[n] for n in names if n in WATCHED)
    return sorted(found)


def review(files, findings=None):
    """{file name: [introspection used]} for the submission's Python files that use any, and ``findings``
    ({file name: [what a checker found, in words]}) added."""
    found = {name: introspection(data.decode("utf-8", "replace") if isinstance(data, bytes) else data)
             for name, data in sorted(files.items()) if name.endswith(".py")}
    for name, said in (findings or {}).items():
        found[name] = found.get(name, []) + said
    return {name: kinds for name, kinds in found.items() if kinds}


def lines(found):
    """The review as a person reads it, a line per file: "layers.py: exec, gc"."""
    return [f"{name}: {', '.join(kinds)}" for name, kinds in found.items()]
