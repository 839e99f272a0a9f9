"""The regrade's report opened in a real browser (headless Chromium through Playwright), offline: its plots load.

Skips, saying why, where no Chromium is installed (Debian: `apt-get install chromium`; .ci/run installs it)."""
from pathlib import Path

import pytest

from grader import report
from grader.assignments import get_assignment
from grader.regrade import Entry, Graded

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


def _browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright's Python package is not installed (pip install playwright)")
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    return sync_playwright


def _graded(key, name, scores):
    tests = [{"number": n, "score": s, "max_score": m, "output": ""} for n, s, m in scores]
    return Graded(Entry(key, Path(key), [{"name": name, "email": "", "sid": ""}]),
                  {"score": sum(s for _, s, _ in scores), "tests": tests, "extra_data": {}})


def test_the_report_opens_offline_with_its_plots_loaded(tmp_path):
    sync_playwright = _browser()
    spec = get_assignment("cnn")
    graded = [_graded("1", "Ada", [("4.1", 2, 2), ("4.2", 3, 3)]), _graded("2", "Alan", [("4.1", 1, 2), ("4.2", 0, 3)])]
    rows = [{"submission": g.entry.key, "milestone_not_graded": "", "review": "", "out_of_memory": "",
             "grader_error": ""} for g in graded]
    path = tmp_path / "report.html"
    report.write(path, graded, rows, [], spec, 1.0, parts=["quiz"])
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            page = browser.new_page()
            requests = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(path.as_uri())
            widths = page.eval_on_selector_all("img", "images => images.map(i => i.complete && i.naturalWidth)")
            headings = page.eval_on_selector_all("h2", "hs => hs.map(h => h.textContent)")
        finally:
            browser.close()
    assert len(widths) == 2 and all(w and w > 100 for w in widths), widths
    assert headings == ["Scores", "Tests", "Hidden-case categories failed most often", "Leaderboard",
                        "Flagged for review"]
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []   # nothing from the network
