"""A regrade's report.html, for the TAs: one file that opens in any browser, offline (its plots are embedded as
PNG data, it loads nothing). The score histogram; per test the mean, the share of full marks and how well it
separates strong submissions from weak ones; for the tests with hidden cases the categories failed most often;
the similar files, grouped by file; the leaderboard; every flagged submission and why, and once, above them, a
flag that holds for the whole run.
"""
import base64
import html
import io
import statistics
from collections import Counter

import matplotlib

matplotlib.use("Agg")   # no display: draw into memory
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from grader.checks import counted  # noqa: E402
from grader.scores import FLAGS, RUN_FLAGS, test_numbers  # noqa: E402
from grader.similarity import THRESHOLD, percent  # noqa: E402

CATEGORY_PARTS = ("layers", "initializers", "resnet")   # the parts whose hidden cases are drawn per category
TOP_CATEGORIES = 5
STYLE = ("body{font-family:sans-serif;max-width:70em;margin:1em auto;padding:0 1em}"
         "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .5em;"
         "text-align:left;vertical-align:top}td.n{text-align:right}img{max-width:100%}")
DISCRIMINATION = (
    "Discrimination: the correlation between a test's score and the rest of the total (the total without that "
    "test), over the graded submissions. Near 1, the submissions that do well elsewhere do well on it; near 0, "
    "it tells strong and weak submissions apart no better than chance; below 0, the weaker ones do better on it. "
    "Blank where every submission scored the same on it, or fewer than 3 were graded.")


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
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))   # submissions come whole
    return _png(figure)


def discrimination(pairs):
    """How well a test separates strong submissions from weak ones: the correlation of its score with the rest
    of the total, over ``pairs`` [(its score, the total without it)]; None where that is undefined (fewer than
    3 submissions, or the same score everywhere)."""
    if len(pairs) < 3:
        return None
    try:
        return statistics.correlation(*zip(*pairs))
    except statistics.StatisticsError:   # one side constant: nothing to correlate
        return None


def _per_test(graded, spec, parts):
    names = {number: name for _, tests in spec.parts.values() for number, name, _ in tests}
    scored = [g.results for g in graded if g.results]
    rows, shares = [], []
    for number in test_numbers(spec, parts):
        tests = [(t, r["score"]) for r in scored for t in r["tests"] if t["number"] == number]
        if not tests:
            continue
        worth = tests[0][0]["max_score"]
        full = sum(t["score"] >= worth - 1e-9 for t, _ in tests) / len(tests)
        mean = statistics.mean(t["score"] for t, _ in tests)
        separates = discrimination([(t["score"], total - t["score"]) for t, total in tests])
        shares.append((number, full))
        rows.append([number, html.escape(names[number]), f"{mean:.2f} / {worth:g}", f"{full:.0%}",
                     "" if separates is None else f"{separates:.2f}"])
    figure, axes = plt.subplots(figsize=(max(6, len(shares) * 0.35), 3))
    axes.bar([n for n, _ in shares], [100 * s for _, s in shares], color="#55a868")
    axes.set(ylabel="full marks (% of submissions)", ylim=(0, 100))
    axes.tick_params(axis="x", rotation=90)
    return (_table(["test", "name", "mean score", "full marks", "discrimination"], rows, numeric=(2, 3, 4))
            + f"<p>{html.escape(DISCRIMINATION, quote=False)}</p>" + _png(figure))


def _categories(graded, spec, parts):
    """Per test of CATEGORY_PARTS, the categories (as its checker names them) that the most submissions failed
    while passing other cases of the test."""
    wanted = {number: name for part, (_, tests) in spec.parts.items() if part in CATEGORY_PARTS
              and (not parts or part in parts) for number, name, _ in tests}
    rows = []
    for number in test_numbers(spec, parts):
        if number not in wanted:
            continue
        graded_on = sum(any(t["number"] == number for t in g.results.get("tests", [])) for g in graded)
        failed, total, submissions = Counter(), Counter(), Counter()
        for g in graded:
            for category, (bad, cases) in g.results.get("extra_data", {}).get("failed_categories", {}) \
                    .get(number, {}).items():
                failed[category] += bad
                total[category] += cases
                submissions[category] += bad > 0
        # Most submissions first; among as many, the category whose cases failed most surely, then most often.
        top = sorted((c for c in failed if failed[c]),
                     key=lambda c: (-submissions[c], -failed[c] / total[c], -failed[c], c))[:TOP_CATEGORIES]
        rows += [[number, html.escape(wanted[number]), html.escape(c),
                  f"{submissions[c] / graded_on:.0%} ({submissions[c]} of {graded_on})",
                  f"{failed[c]} of {counted(total[c], 'case')}"] for c in top]
    if not rows:
        return "<p>No test passed some of its hidden cases and failed others.</p>"
    return ("<p>Per test, the categories of its hidden cases (in the checker's words) that the most submissions "
            "failed while passing other cases of the same test: where a bug hides. A submission that failed every "
            "case of a test is not counted here (see its mean and full marks above).</p>"
            + _table(["test", "name", "category", "submissions failing it", "cases failed"], rows, numeric=(3, 4)))


def _similarity(graded, pairs, threshold):
    """The pairs of similar files, grouped by file, each file's group under a line that sums it up."""
    if not pairs:
        return f"<p>No two submissions share {percent(threshold)} or more of a file.</p>"
    by_key = {g.entry.key: g.entry for g in graded}
    out = [f"<p>A pair is listed when {percent(threshold)} or more of one file's code (after tokenising: names "
           "and literals do not matter; the handout's stub left out) is found in the other's. 100.0 % means all "
           "of it.</p>"]
    for name in sorted({p.file for p in pairs}):
        group = sorted((p for p in pairs if p.file == name), key=lambda p: (-p.score, p.a, p.b))
        involved = {key for p in group for key in (p.a, p.b)}
        out.append(f"<h3>{html.escape(name)}</h3><p>{counted(len(group), 'pair')} among "
                   f"{counted(len(involved), 'submission')}, the highest {percent(group[0].score)}.</p>")
        out.append(_table(["submission", "submission", "similarity", ""],
                          [[_who(by_key[p.a]), _who(by_key[p.b]), percent(p.score),
                            f"<a href='{html.escape(p.page)}'>side by side</a>"] for p in group], numeric=(2,)))
    return "".join(out)


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


def _run_flags(rows):
    """The flags that speak of the run rather than of a submission (RUN_FLAGS), each said once."""
    found = {}   # (flag, what it says) -> the submissions it was raised on
    for row in rows:
        for flag in RUN_FLAGS:
            if row[flag]:
                found.setdefault((flag, row[flag]), set()).add(row["submission"])
    return "".join(f"<p><b>{flag.replace('_', ' ').capitalize()} in this whole run</b>: {html.escape(str(words))} "
                   f"({counted(len(keys), 'submission')}; not repeated below).</p>"
                   for (flag, words), keys in found.items())


def _flagged(graded, rows, pairs):
    reasons = {}   # submission key -> {flag: [what it says, ...]}
    for row in rows:
        for flag in FLAGS:
            if row[flag] and flag not in RUN_FLAGS:
                reasons.setdefault(row["submission"], {})[flag.replace("_", " ")] = [html.escape(str(row[flag]))]
    for p in pairs:
        for key, other in ((p.a, p.b), (p.b, p.a)):
            reasons.setdefault(key, {}).setdefault("similarity", []).append(
                f"{html.escape(p.file)} {percent(p.score)} like {html.escape(other)} "
                f"(<a href='{html.escape(p.page)}'>side by side</a>)")
    by_key = {g.entry.key: g.entry for g in graded}
    lines = [[_who(by_key[key]), "<br>".join(f"<b>{flag}</b>: {'<br>'.join(said)}" for flag, said in found.items())]
             for key, found in reasons.items()]
    return _table(["submission", "why"], lines) if lines else "<p>No submission is flagged.</p>"


def write(path, graded, rows, pairs, spec, seconds, parts=None, threshold=THRESHOLD):
    """report.html at ``path``. ``threshold``: the similarity at which the regrade listed a pair."""
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
                ("Similarity", _similarity(graded, pairs, threshold)),
                ("Leaderboard", _leaderboard(graded)),
                ("Flagged for review", _flagged(graded, rows, pairs))]
    body = "".join(f"<section id='{title.split()[0].lower()}'><h2>{title}</h2>{content}</section>"
                   for title, content in sections)
    path.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(spec.title)}: regrade"
                    f"</title><style>{STYLE}</style></head><body><h1>{html.escape(spec.title)}: regrade</h1>"
                    f"<p>{html.escape(summary)}</p>{_run_flags(rows)}{body}</body></html>\n", encoding="utf-8")
