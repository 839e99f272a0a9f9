"""The registry of assignments: each is a subpackage ``grader.<name>`` exposing ``ASSIGNMENT``."""
import importlib
from dataclasses import dataclass, field

DEFAULT = "cnn"


@dataclass(frozen=True)
class Assignment:
    name: str
    title: str
    # Handout path -> repository path of a grader-owned file that students get a copy of.
    handout_extras: dict = field(default_factory=dict)
    # Part -> (submitted file, [(number, test name, points), ...]); see grader/<name>/points.py.
    parts: dict = field(default_factory=dict)
    # Part -> module with ``check(files, rng, limits, names) -> {test name: Outcome}``.
    checkers: dict = field(default_factory=dict)
    visibility: str = "visible"
    visibility_of_test: dict = field(default_factory=dict)   # test number -> visibility, where not the default
    show_cases: bool = True
    scoring: str = ""   # how a test's cases make its points, said once (the handout's README, ``grade --verbose``)

    def visibility_of(self, number):
        return self.visibility_of_test.get(number, self.visibility)

    @property
    def submission_files(self):
        return sorted({file for file, _ in self.parts.values()})


def get_assignment(name: str) -> Assignment:
    if not name.isidentifier():
        raise LookupError(f"unknown assignment {name!r}")
    try:
        module = importlib.import_module(f"grader.{name}")
    except ModuleNotFoundError:
        raise LookupError(f"unknown assignment {name!r}") from None
    assignment = getattr(module, "ASSIGNMENT", None)
    if not isinstance(assignment, Assignment):
        raise LookupError(f"unknown assignment {name!r}")
    return assignment
