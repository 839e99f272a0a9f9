"""The handout's given modules, which a submitted file may import (the contract): every sandboxed child gets the
grader's copies beside the student's file (a student cannot submit their own: only the graded files are read)."""
from grader import paths
from grader.cnn import ASSIGNMENT, rules


def with_given(files):
    """``files`` ({name: bytes}) and the given modules, the student's files winning any clash of names."""
    given = {name: (paths.REPO / ASSIGNMENT.handout_extras[name]).read_bytes() for name in rules.GIVEN_MODULES}
    return {**given, **files}
