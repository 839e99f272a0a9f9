"""What a part's checker reports, and how it becomes points.

A checker returns, per test name, an Outcome: a list of Cases (each passed or not, with a message a student
can read) or a blocker (the file is missing, does not import, uses a forbidden module...) that zeroes the test.
Points are the test's weight times the weighted share of cases passed: partial credit per case, each case
weighing by its Kind. An Outcome may be capped (a module that cannot be trained): it then scores at most that
share. The feedback says how each partial score is made, so that a TA can rebuild it (``score_line``).
"""
import re
from dataclasses import dataclass, field

from grader.results import TestResult
from grader.text import clean_text


@dataclass(frozen=True)
class Kind:
    """What a case checks. It fixes the case's weight against the test's other cases (per kind, never per draw:
    a bug costs the same points whatever was drawn) and the words the feedback counts it in."""
    noun: str
    plural: str
    weight: float

    def count(self, n):
        return f"{n} {self.noun if n == 1 else self.plural}"


# A case of a test's fixed layout: a category of drawn values (a shape, a stride, a mode...) or a fixed check.
CATEGORY = Kind("category", "categories", 1)


@dataclass
class Case:
    label: str          # e.g. "hidden case 3 (stride 2, pad 0, non-square 2x3 kernel)": never input values
    ok: bool
    message: str = ""   # what differed, or the error reached when ok
    kind: Kind = CATEGORY
    named: tuple = ()   # the categories it counts in where its label cannot name them (drawn sizes in it)

    @property
    def weight(self):
        """Its share of the test, against the other cases'."""
        return self.kind.weight


@dataclass
class Outcome:
    cases: list = field(default_factory=list)
    blocker: str = ""   # zero for the whole test, and why
    notes: list = field(default_factory=list)   # diagnosis shown under the cases
    share: float = None   # credit measured rather than counted (an accuracy): overrides the cases' share
    leaderboard: dict = field(default_factory=dict)   # name -> value, for Gradescope's leaderboard
    review: str = ""   # what a TA should look at (extra_data.review), under the part's file: no points
    cap: tuple = None   # (share, why): the most its cases may earn, e.g. (0.5, "BasicBlock cannot be trained")

    def add(self, label, ok, message="", kind=CATEGORY, named=()):
        self.cases.append(Case(label, ok, student_words(message), kind, tuple(named)))

    @property
    def weighed(self):
        """The weighted share of the cases passed (0 without cases)."""
        total = sum(c.weight for c in self.cases)
        return sum(c.weight for c in self.cases if c.ok) / total if total else 0.0

    @property
    def fraction(self):
        if self.blocker:
            return 0.0
        if self.share is not None:
            return self.share
        return min(self.weighed, self.cap[0]) if self.cap else self.weighed


# A stub's NotImplementedError as the sandbox reports it, its own message naming the function when it is the
# handout's ("BasicBlock.__init__: not implemented yet"), else the frame's: "(line 3 of resnet.py, in __init__)".
STUB = re.compile(r"NotImplementedError:(?:\s*([\w.]+): not implemented yet)?.*?(?:, in ([\w.<>]+)\)+)?$", re.S)


def student_words(message):
    """``message`` as a student reads it: a NotImplementedError, raised by a stub, is "not implemented yet"."""
    found = STUB.search(message)
    if not found:
        return message
    where = found.group(1) or found.group(2)
    return "not implemented yet" + (f" (NotImplementedError in {where})" if where else "")


def blocked(names, reason):
    """The same blocker for every test of a part (a missing file, an import error)."""
    return {name: Outcome(blocker=reason) for name in names}


def _case_lines(cases):
    """One line per case, but a failure shared by several cases is said once, with their count and (where some
    case passed, so that they tell the student something) their labels."""
    labels, first = {}, {}
    for i, c in enumerate(cases):
        if not c.ok:
            labels.setdefault(c.message, []).append(c.label)
            first.setdefault(c.message, i)
    lines = []
    for i, c in enumerate(cases):
        if c.ok:
            lines.append(f"  ok   {c.label}")
        elif len(labels[c.message]) == 1:
            lines.append(f"  FAIL {c.label}" + (f": {c.message}" if c.message else ""))
        elif first[c.message] == i:
            lines.append(f"  FAIL {len(labels[c.message])} cases" + (f": {c.message}" if c.message else ""))
            if any(c.ok for c in cases):
                lines += [f"       {label}" for label in labels[c.message]]
    return lines


# What a test says that its checker did not report on (the grader's bug; a regrade flags it for staff).
NOT_CHECKED = "not checked (an internal error of the grader: please tell your TA)"


def counted(n, noun):
    """"1 case", "2 cases": ``n`` and a regular ``noun``, plural where it should be."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


LAYOUT_CASE = re.compile(r"(?:hidden )?case \d+ \(")
# A kernel's or window's sizes after its orientation: "tall 3x2 kernel" is in the layout's "tall kernel".
ORIENTED_SIZE = re.compile(r"\b(square|tall|wide) \d+x\d+\b")


def _phrases(text):
    """``text`` cut at its commas outside brackets: "mode fan_in, gain left out (default 1.0)" is two phrases;
    None where its brackets do not pair."""
    phrases, depth, start = [], 0, 0
    for i, c in enumerate(text):
        depth += (c in "([") - (c in ")]")
        if depth < 0:
            return None
        if c == "," and depth == 0:
            phrases.append(text[start:i].strip())
            start = i + 1
    return None if depth else [*phrases, text[start:].strip()]


def categories(label):
    """The categories a case's label names, in the checker's words. A case of a layout, "hidden case 3 (stride 2,
    pad 0, tall 3x2 kernel)" or "case 2 (...), test mode", is in each category its parentheses list ("stride 2",
    "pad 0", "tall kernel": ORIENTED_SIZE) and in what follows them ("test mode"). Any other label (a documented
    behaviour, a configuration) is one category, named whole. Neither holds a drawn value: a checker whose labels
    do names its cases' categories itself (``Case.named``)."""
    found = LAYOUT_CASE.match(label)
    phrases = _phrases(label[found.end() - 1:]) if found else None   # "(stride 2, ...)", "test mode"
    listed = _phrases(phrases[0][1:-1]) if phrases and phrases[0][0] + phrases[0][-1] == "()" else None
    if listed is None:
        return [label]
    return sorted({ORIENTED_SIZE.sub(r"\1", phrase) for phrase in [*listed, *phrases[1:]] if phrase}) or [label]


def failed_categories(outcome):
    """{category: [cases failed, cases]} where some of a test's cases passed and others failed: the categories
    where bugs hide. Staff only (results.json's extra_data); None where it tells nothing."""
    if outcome is None or outcome.blocker or outcome.share is not None or \
            all(c.ok for c in outcome.cases) or not any(c.ok for c in outcome.cases):
        return None
    found = {}
    for case in outcome.cases:
        for category in case.named or categories(case.label):
            counts = found.setdefault(category, [0, 0])
            counts[0] += not case.ok
            counts[1] += 1
    return found


def _number(value):
    """A weight, or a sum of weights, as the feedback writes it: 2, 0.5, 17.5."""
    return f"{round(value, 4):g}"


def joined(items):
    """"a", "a and b", "a, b and c"."""
    return ", ".join(items[:-1]) + f" and {items[-1]}" if len(items) > 1 else items[0]


def score_line(outcome, points):
    """How the weights of a test's cases make its score, for a student or TA to rebuild: "12 of 13 categories and 5
    of 8 documented behaviours passed: 12 x 1 + 5 x 0.5 = 14.5 of 17, so 1.28 of 1.5 points", then the cap where it
    lowers that."""
    kinds = list(dict.fromkeys(c.kind for c in outcome.cases))   # in the order of the cases
    passed = {kind: sum(c.ok for c in outcome.cases if c.kind == kind) for kind in kinds}
    total = {kind: sum(c.kind == kind for c in outcome.cases) for kind in kinds}
    earned, possible = (sum(n[kind] * kind.weight for kind in kinds) for n in (passed, total))
    of_points = f"of {_number(points)} point{'' if points == 1 else 's'}"
    line = (f"{joined([f'{passed[kind]} of {kind.count(total[kind])}' for kind in kinds])} passed: "
            f"{' + '.join(f'{passed[kind]} x {_number(kind.weight)}' for kind in kinds)} = {_number(earned)} of "
            f"{_number(possible)}, so {points * outcome.weighed:.2f} {of_points}")
    if outcome.cap and outcome.cap[0] < outcome.weighed:
        share, why = outcome.cap
        line += f"; but {why}, which caps this test at {share:.0%}: {points * share:.2f} {of_points}"
    return line


def to_result(number, name, points, outcome, show_cases=True, visibility="visible", tags=()):
    if outcome is None:
        outcome = Outcome(blocker=NOT_CHECKED)
    score = points * outcome.fraction
    if outcome.blocker:
        lines = [outcome.blocker]
    elif outcome.share is not None:
        lines = list(outcome.notes)
    else:
        passed = sum(c.ok for c in outcome.cases)
        total = len(outcome.cases)
        lines = [f"{passed} of {counted(total, 'case')} passed" if passed < total
                 else (f"all {total} cases passed" if total > 1 else "its one case passed")]
        failures = {c.message for c in outcome.cases if not c.ok}
        one_reason = len(failures) == 1 and passed == 0 and total > 1
        if one_reason:
            lines[0] += f": {failures.pop()}"  # one reason for every case: say it once
        if 0 < passed < total:   # a full score and a zero need no sum
            lines.append(score_line(outcome, points))
        if show_cases and not one_reason:
            lines += _case_lines(outcome.cases)
        lines += outcome.notes
    # Every line may carry the submission's text: made safe once more here, where all of it meets.
    output = clean_text("\n".join(lines), 200_000, lines=True)
    return TestResult(number=number, name=name, max_score=points, score=score, output=output,
                      visibility=visibility, tags=tags)
