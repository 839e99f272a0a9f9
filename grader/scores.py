"""A regrade's scores.csv: one row per submitter, every test's score in a column of its own, and the flags
staff must look at (no milestone data, the review list, out of memory, the grader's own errors)."""
from grader import spreadsheet
from grader.checks import NOT_CHECKED
from grader.cnn.check_milestone import NO_TEST_SET
from grader.grade import INTERNAL_ERROR
from grader.review import lines as review_lines
from grader.sandbox.runner import OUT_OF_MEMORY

IDENTITY = ["submission", "name", "email", "sid"]
FLAGS = ["milestone_not_graded", "review", "out_of_memory", "grader_error"]
# Flags that speak of the machine, not of the submission: the report says them once, above the others.
RUN_FLAGS = ["milestone_not_graded"]


def test_numbers(spec, parts=None):
    """The numbers of the tests graded, in their order ("1.1", "1.2", ..., "5.2")."""
    numbers = [number for part, (_, tests) in spec.parts.items() if not parts or part in parts
               for number, _, _ in tests]
    return sorted(numbers, key=lambda n: tuple(int(p) for p in n.split(".")))


def flags(graded):
    """{flag: words} for one Graded submission; a flag it does not raise is absent."""
    if graded.error:
        return {"grader_error": graded.error}
    tests = graded.results.get("tests", [])

    def saying(words):
        return [t["number"] for t in tests if words in t.get("output", "")]

    found = {}
    if saying(NO_TEST_SET):
        found["milestone_not_graded"] = "no CIFAR-10 test set on this machine"
    review = graded.results.get("extra_data", {}).get("review", {})
    if review:
        found["review"] = "; ".join(review_lines(review))
    if saying(OUT_OF_MEMORY):
        found["out_of_memory"] = "tests " + ", ".join(saying(OUT_OF_MEMORY))
    if saying(INTERNAL_ERROR) or saying(NOT_CHECKED):
        found["grader_error"] = "internal error in tests " + ", ".join(saying(INTERNAL_ERROR) + saying(NOT_CHECKED))
    return found


def rows(graded, spec, parts=None):
    """The rows of scores.csv: one per submitter (a group's share its scores), one for a submission without
    metadata."""
    numbers = test_numbers(spec, parts)
    out = []
    for g in graded:
        by_number = {t["number"]: t["score"] for t in g.results.get("tests", [])}
        scored = {"total": g.results.get("score", ""),
                  "max_score": sum(t["max_score"] for t in g.results.get("tests", [])) if g.results else "",
                  **{n: by_number.get(n, "") for n in numbers},
                  "seed": g.results.get("extra_data", {}).get("seed", ""),
                  **{flag: "" for flag in FLAGS}, **flags(g)}
        for person in g.entry.submitters or [{}]:
            out.append({"submission": g.entry.key, **{k: person.get(k, "") for k in IDENTITY[1:]}, **scored})
    return out


def write_csv(rows, path):
    header = list(rows[0]) if rows else IDENTITY
    spreadsheet.write(path, header, ([row[column] for column in header] for row in rows))
