"""Where things live in a checkout of the repository."""
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def solutions_dir(assignment: str) -> Path:
    return REPO / "solutions" / assignment


def assignments_dir(assignment: str) -> Path:
    return REPO / "assignments" / assignment
