"""The regrade's report opened in a real browser (headless Chromium through Playwright), offline: its plots load,
and its parts read as a TA reads them (the flag of the whole run, discrimination, categories, similar files
grouped by file, each pair's page one click away).

Skips, saying why, where no Chromium is installed (Debian: `apt-get install chromium`; .ci/run installs it)."""
from pathlib import Path

import pytest

from grader import report, scores
from grader.assignments import get_assignment
from grader.cnn.check_milestone import NO_TEST_SET
from grader.regrade import Entry, Graded
from grader.similarity import Pair

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
PARTS = ["layers", "milestone"]


def _browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright's Python package is not installed (pip install playwright)")
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    return sync_playwright


def _graded(key, name, conv, categories):
    """A submission scored ``conv`` of 6 on 1.1 and 2 of 2 on 1.2, its milestone not graded (no test set)."""
    tests = [{"number": n, "score": s, "max_score": m, "output": o}
             for n, s, m, o in (("1.1", conv, 6, ""), ("1.2", 2, 2, ""), ("5.1", 0, 5, NO_TEST_SET))]
    return Graded(Entry(key, Path(key), [{"name": name, "email": "", "sid": ""}]),
                  {"score": conv + 2, "tests": tests, "extra_data": {"failed_categories": {"1.1": categories}}})


def test_the_report_opens_offline_with_its_parts_readable(tmp_path):
    sync_playwright = _browser()
    spec = get_assignment("cnn")
    graded = [_graded("1", "Ada", 6, {}), _graded("2", "Alan", 3, {"tall kernel": [2, 2], "stride 1": [0, 2]}),
              _graded("3", "Grace", 4, {"tall kernel": [1, 2]}), _graded("4", "Edsger", 0, {})]
    rows = scores.rows(graded, spec, PARTS)
    page = tmp_path / "similarity" / "layers.py-1-3.html"
    page.parent.mkdir()
    page.write_text("<!DOCTYPE html><html><head><title>side</title></head><body><h1>layers.py: similarity "
                    "99.9 %</h1></body></html>")
    pairs = [Pair("1", "3", "layers.py", 0.9996, "similarity/layers.py-1-3.html"),
             Pair("2", "4", "quiz.py", 0.85, "similarity/quiz.py-2-4.html")]
    path = tmp_path / "report.html"
    report.write(path, graded, rows, pairs, spec, 1.0, parts=PARTS)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            tab = browser.new_page()
            requests = []
            tab.on("request", lambda r: requests.append(r.url))
            tab.goto(path.as_uri())
            widths = tab.eval_on_selector_all("img", "images => images.map(i => i.complete && i.naturalWidth)")
            headings = tab.eval_on_selector_all("h2", "hs => hs.map(h => h.textContent)")
            run_wide = tab.inner_text("body > p:nth-of-type(2)")
            tests = tab.eval_on_selector_all("#tests tr", "rs => rs.map(r => [...r.cells].map(c => c.innerText))")
            categories = tab.eval_on_selector_all("#hidden-case tr",
                                                  "rs => rs.map(r => [...r.cells].map(c => c.innerText))")
            files = tab.eval_on_selector_all("#similarity h3", "hs => hs.map(h => h.textContent)")
            summaries = tab.eval_on_selector_all("#similarity h3 + p", "ps => ps.map(p => p.textContent)")
            flagged = tab.inner_text("#flagged")
            tab.click("#similarity a[href='similarity/layers.py-1-3.html']")
            opened = tab.inner_text("h1")
        finally:
            browser.close()
    assert len(widths) == 2 and all(w and w > 100 for w in widths), widths
    assert headings == ["Scores", "Tests", "Hidden-case categories failed most often", "Similarity", "Leaderboard",
                        "Flagged for review"]
    assert run_wide == "Milestone not graded in this whole run: no CIFAR-10 test set on this machine " \
                       "(4 submissions; not repeated below)."
    assert tests[0] == ["test", "name", "mean score", "full marks", "discrimination"]
    # 1.1's scores 6, 3, 4, 0 against the rest 2, 2, 2, 2: the rest is constant, nothing to correlate.
    assert tests[1] == ["1.1", "conv_forward_naive", "3.25 / 6", "25%", ""]
    assert categories[1:] == [["1.1", "conv_forward_naive", "tall kernel", "50% (2 of 4)", "3 of 4 cases"]]
    assert files == ["layers.py", "quiz.py"]
    assert summaries == ["1 pair among 2 submissions, the highest 99.9 %.",
                         "1 pair among 2 submissions, the highest 85.0 %."]
    assert "no CIFAR-10 test set" not in flagged and "layers.py 99.9 % like 3" in flagged
    assert opened == "layers.py: similarity 99.9 %"
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []   # nothing from the network
