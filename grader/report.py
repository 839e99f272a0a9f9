"""A regrade's report.html, for the TAs: one file that opens in any browser, offline (its plots are embedded as
PNG data, it loads nothing). The score histogram; per test the mean and the share of full marks, and for the
tests with hidden cases the categories failed most often; the leaderboard; every flagged submission and why.
"""
import base64
import html
import io
import statistics
from collections import Counter

import matplotlib

matplotlib.use("Agg")   # no display: draw into memory
import matplotlib.pyplot as plt  # noqa: E402

from grader.checks import counted  # noqa: E402
from grader.scores import FLAGS, test_numbers  # noqa: E402

CATEGORY_PARTS = ("layers", "initializers", "resnet")   # the parts whose hidden cases are drawn per category
TOP_CATEGORIES = 5
STYLE = ("body{font-family:sans-serif;max-width:70em;margin:1em auto;padding:0 1em}"
         "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .5em;"
         "text-align:left;vertical-align:top}td.n{text-align:right}img{max-width:100%}")


def _png(figure):
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    return f"<img alt='' src='data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}'>"


def _table(header, rows, numeric=()):
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td class='n'>{cell}</td>" if i in numeric else f"<td>{cell}</td>"
                                    for i, cell in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _who(entry):
    names = ", ".join(p["name"] or p["sid"] or p["email"] for p in entry.submitters)
    return html.escape(f"{entry.key} ({names})" if names else entry.key)


def _histogram(totals, possible):
    figure, axes = plt.subplots(figsize=(7, 3))
    axes.hist(totals, bins=20, range=(0, possible or 1), color="#4c72b0", edgecolor="white")
    axes.set(xlabel=f"total score (of {possible:g})", ylabel="submissions")
    return _png(figure)


def _per_test(graded, spec, parts):
    names = {number: name for _, tests in spec.parts.values() for number, name, _ in tests}
    scored = [g.results for g in graded if g.results]
    rows, shares = [], []
    for number in test_numbers(spec, parts):
        tests = [t for r in scored for t in r["tests"] if t["number"] == number]
        if not tests:
            continue
        full = sum(t["score"] >= t["max_score"] - 1e-9 for t in tests) / len(tests)
        mean = sum(t["score"] for t in tests) / len(tests)
        shares.append((number, full))
        rows.append([number, html.escape(names[number]), f"{mean:.2f} / {tests[0]['max_score']:g}", f"{full:.0%}"])
    figure, axes = plt.subplots(figsize=(max(6, len(shares) * 0.35), 3))
    axes.bar([n for n, _ in shares], [100 * s for _, s in shares], color="#55a868")
    axes.set(ylabel="full marks (% of submissions)", ylim=(0, 100))
    axes.tick_params(axis="x", rotation=90)
    return _table(["test", "name", "mean score", "full marks"], rows, numeric=(2, 3)) + _png(figure)


def _categories(graded, spec, parts):
    """Per test of CATEGORY_PARTS, the categories whose cases failed most often where others passed."""
    wanted = {number: name for part, (_, tests) in spec.parts.items() if part in CATEGORY_PARTS
              and (not parts or part in parts) for number, name, _ in tests}
    rows = []
    for number in test_numbers(spec, parts):
        if number not in wanted:
            continue
        failed, total, submissions = Counter(), Counter(), Counter()
        for g in graded:
            for category, (bad, cases) in g.results.get("extra_data", {}).get("failed_categories", {}) \
                    .get(number, {}).items():
                failed[category] += bad
                total[category] += cases
                submissions[category] += bad > 0
        top = sorted(failed, key=lambda c: (-failed[c] / total[c], -failed[c], c))[:TOP_CATEGORIES]
        if top:
            rows.append([number, html.escape(wanted[number]), "<br>".join(
                f"{html.escape(c)}: {failed[c]} of {counted(total[c], 'case')} failed "
                f"({counted(submissions[c], 'submission')})" for c in top if failed[c])])
    if not rows:
        return "<p>No test passed some of its hidden cases and failed others.</p>"
    return ("<p>Counted over the submissions that passed some of a test's cases and failed others: where a "
            "bug hides.</p>" + _table(["test", "name", "categories failed most often"], rows))


def _leaderboard(graded):
    board = []
    for g in graded:
        entries = {e["name"]: e["value"] for e in g.results.get("leaderboard", [])}
        if entries:
            board.append((g, entries))
    if not board:
        return "<p>No leaderboard entry (no milestone graded).</p>"
    columns = sorted({name for _, entries in board for name in entries}, key=lambda n: n != "accuracy")
    board.sort(key=lambda item: -float(item[1].get(columns[0], 0) or 0))
    return _table(["rank", "submission", *columns],
                  [[i + 1, _who(g.entry), *(html.escape(str(e.get(c, ""))) for c in columns)]
                   for i, (g, e) in enumerate(board)], numeric=(0,))


def _flagged(graded, rows, pairs):
    reasons = {}   # submission key -> {flag: [what it says, ...]}
    for row in rows:
        for flag in FLAGS:
            if row[flag]:
                reasons.setdefault(row["submission"], {})[flag.replace("_", " ")] = [html.escape(str(row[flag]))]
    for p in pairs:
        for key, other in ((p.a, p.b), (p.b, p.a)):
            reasons.setdefault(key, {}).setdefault("similarity", []).append(
                f"{html.escape(p.file)} {p.score:.0%} like {html.escape(other)} "
                f"(<a href='{html.escape(p.page)}'>side by side</a>)")
    by_key = {g.entry.key: g.entry for g in graded}
    lines = [[_who(by_key[key]), "<br>".join(f"<b>{flag}</b>: {'<br>'.join(said)}" for flag, said in found.items())]
             for key, found in reasons.items()]
    return _table(["submission", "why"], lines) if lines else "<p>No submission is flagged.</p>"


def write(path, graded, rows, pairs, spec, seconds, parts=None):
    totals = [g.results["score"] for g in graded if g.results]
    possible = max((sum(t["max_score"] for t in g.results["tests"]) for g in graded if g.results), default=0)
    failed = len(graded) - len(totals)
    students = sum(max(1, len(g.entry.submitters)) for g in graded)
    summary = (f"{counted(len(graded), 'submission')} ({counted(students, 'student')}) graded in {seconds:.0f} s"
               + (f"; {failed} could not be graded (see below)" if failed else "")
               + (f"; mean {statistics.mean(totals):.1f}, median {statistics.median(totals):.1f} of "
                  f"{possible:g}" if totals else ""))
    sections = [("Scores", _histogram(totals, possible) if totals else "<p>No submission was graded.</p>"),
                ("Tests", _per_test(graded, spec, parts)),
                ("Hidden-case categories failed most often", _categories(graded, spec, parts)),
                ("Leaderboard", _leaderboard(graded)),
                ("Flagged for review", _flagged(graded, rows, pairs))]
    body = "".join(f"<section id='{title.split()[0].lower()}'><h2>{title}</h2>{content}</section>"
                   for title, content in sections)
    path.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(spec.title)}: regrade"
                    f"</title><style>{STYLE}</style></head><body><h1>{html.escape(spec.title)}: regrade</h1>"
                    f"<p>{html.escape(summary)}</p>{body}</body></html>\n", encoding="utf-8")
