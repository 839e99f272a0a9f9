"""A whole Gradescope export regraded: identities, every test's score as a single grade gives it, the flags, the
report and the similarity of a copied solution. Graded on two parts (layers and quiz) to keep it quick."""
import base64
import csv
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import zipfile

import pytest

from grader import paths
from grader.grade import grade
from grader.regrade import ExportError, entries, find_export

SOLUTIONS = paths.solutions_dir("cnn")
STUBS = paths.assignments_dir("cnn")
PARTS = ["layers", "quiz"]
METADATA = """\
submission_101:
  :submitters:
  - :name: Ada Lovelace
    :sid: '1001'
    :email: ada@example.edu
  :created_at: 2026-04-26 17:34:00.861687000 Z
  :score: 80.0
submission_102:
  :submitters:
  - :name: Alan Turing
    :sid: '1002'
    :email: alan@example.edu
  - :name: Grace Hopper
    :sid: '1003'
    :email: grace@example.edu
submission_103:
  :submitters:
  - :name: Copy Cat
    :sid: '1004'
    :email: cat@example.edu
submission_104:
  :submitters:
  - :name: Messy Uploader
    :sid: '1005'
submission_105:
  :submitters:
  - :name: Syntax Slip
    :sid: '1006'
    :email: slip@example.edu
submission_106:
  :submitters:
  - :name: Crash Test
    :sid: '1007'
    :email: crash@example.edu
submission_107:
  :submitters:
  - :name: Stub Only
    :sid: '1008'
    :email: stub@example.edu
submission_108:
  :submitters:
  - :name: Zip Upload
    :sid: '1009'
    :email: zip@example.edu
"""


def renamed(source):
    """A copy that hides itself: every local name of the solution's layers renamed."""
    for old, new in (("xp", "padded"), ("window", "patch"), ("H_out", "rows_out"), ("W_out", "cols_out"),
                     ("out", "result"), ("cache", "memo"), ("dout", "upstream")):
        source = re.sub(rf"\b{old}\b", new, source)
    return source


def write(folder, name, text, when=None):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if when is not None:
        os.utime(path, (when, when))


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """``(zip, folder)``: a Gradescope-shaped export of eight submissions, and the same unpacked."""
    root = tmp_path_factory.mktemp("export")
    folder = root / "assignment_42_export"
    layers, quiz = (SOLUTIONS / "layers.py").read_text(), (SOLUTIONS / "quiz.py").read_text()
    stub_layers, stub_quiz = (STUBS / "layers.py").read_text(), (STUBS / "quiz.py").read_text()
    write(folder, "submission_metadata.yml", METADATA)
    write(folder, "submission_101/layers.py", layers)
    write(folder, "submission_101/quiz.py", quiz)
    # The group's conv uses the kernel's height for the output's width: square kernels pass, the others fail.
    write(folder, "submission_102/layers.py", layers.replace("W_out = 1 + (W + 2 * P - WW) // S",
                                                             "W_out = 1 + (W + 2 * P - HH) // S"))
    write(folder, "submission_103/layers.py", renamed(layers))
    write(folder, "submission_104/old/quiz.py", stub_quiz, when=time.time() - 86400)   # the stub, then the work
    write(folder, "submission_104/final/quiz.py", quiz, when=time.time() - 3600)
    write(folder, "submission_104/work/cnn/layers.py", layers)
    write(folder, "submission_105/layers.py", layers + "\ndef broken(:\n    pass\n")
    write(folder, "submission_105/quiz.py", quiz)
    write(folder, "submission_106/quiz.py", quiz)
    write(folder, "submission_107/layers.py", stub_layers)
    write(folder, "submission_107/quiz.py", stub_quiz)
    (folder / "submission_108").mkdir()
    with zipfile.ZipFile(folder / "submission_108" / "upload.zip", "w") as upload:
        upload.writestr("quiz.py", quiz)
    archive = root / "export.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(folder.rglob("*")):
            z.write(path, path.relative_to(root))
    return archive, folder


@pytest.fixture(scope="module")
def regraded(export, tmp_path_factory):
    """The export's zip regraded by the command line with --jobs 2; submission 106's grade crashes (the place
    of its results is taken by a folder, so the grade cannot write them)."""
    out = tmp_path_factory.mktemp("regrade")
    (out / "submission_106.json").mkdir()
    run = subprocess.run([sys.executable, "-m", "grader", "regrade", str(export[0]), "--out", str(out), "--jobs", "2",
                          *(arg for part in PARTS for arg in ("--part", part))],
                         cwd=paths.REPO, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    with open(out / "scores.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return out, rows, run


def test_the_export_is_found_in_its_zip_its_folder_and_the_folder_above(export, tmp_path):
    archive, folder = export
    assert find_export(folder, tmp_path) == folder
    earlier = folder.parent / "regrade"   # an earlier regrade's output beside it is no export
    earlier.mkdir(exist_ok=True)
    (earlier / "submission_101.json").write_text("{}")
    assert find_export(folder.parent, tmp_path) == folder
    unpacked = find_export(archive, tmp_path / "scratch")
    assert unpacked.name == "assignment_42_export" and (unpacked / "submission_101" / "layers.py").is_file()
    found = entries(folder)
    assert [e.key for e in found] == [str(i) for i in range(101, 109)]
    assert [p["name"] for p in found[1].submitters] == ["Alan Turing", "Grace Hopper"]
    assert found[3].submitters == [{"name": "Messy Uploader", "email": "", "sid": "1005"}]
    assert found[0].metadata == {"id": 101}


def test_a_broken_metadata_file_is_one_clear_error(tmp_path):
    (tmp_path / "submission_1").mkdir()
    (tmp_path / "submission_metadata.yml").write_text("submission_1: [unclosed\n")
    with pytest.raises(ExportError, match="submission_metadata.yml cannot be read"):
        entries(tmp_path)


def test_scores_have_every_submitter_and_every_test_as_a_single_grade_gives_them(export, regraded):
    _, folder = export
    out, rows, run = regraded
    assert [(r["submission"], r["name"], r["sid"]) for r in rows][:3] == [
        ("101", "Ada Lovelace", "1001"), ("102", "Alan Turing", "1002"), ("102", "Grace Hopper", "1003")]
    assert rows[2]["email"] == "grace@example.edu" and len(rows) == 9
    numbers = ["1.1", "1.2", "1.3", "1.4", "1.5", "1.6", "1.7", "1.8", "1.9", "1.10", "1.11",
               "4.1", "4.2", "4.3", "4.4", "4.5"]
    assert list(rows[0])[:6] == ["submission", "name", "email", "sid", "total", "max_score"]
    assert list(rows[0])[6:22] == numbers
    by_id = {r["submission"]: r for r in rows}
    for key in ("101", "102", "103", "104", "105", "107", "108"):
        tests, extra = grade(folder / f"submission_{key}", metadata={"id": int(key)}, parts=PARTS,
                             log=lambda m: None)
        single = {t.number: t.score for t in tests}
        assert {n: float(by_id[key][n]) for n in numbers} == pytest.approx(single, abs=1e-4), key
        assert by_id[key]["seed"] == extra["extra_data"]["seed"]
        assert float(by_id[key]["total"]) == pytest.approx(sum(single.values()))
    assert float(by_id["101"]["total"]) == 55 and float(by_id["107"]["total"]) == 0
    assert 0 < float(by_id["102"]["1.1"]) < 6   # square kernels pass
    assert float(by_id["104"]["4.5"]) == 1 and float(by_id["104"]["1.1"]) == 0   # the newer quiz.py; layers too deep
    assert float(by_id["105"]["1.1"]) == 0 and float(by_id["105"]["4.1"]) == 2
    assert float(by_id["108"]["total"]) == 10
    assert "regrade: 8 of 8 submissions graded (1 could not be graded)" in run.stderr


def test_a_crashed_grade_is_a_row_with_its_error_and_the_others_are_graded(regraded):
    out, rows, _ = regraded
    crashed = [r for r in rows if r["submission"] == "106"]
    assert len(crashed) == 1 and crashed[0]["total"] == "" and crashed[0]["name"] == "Crash Test"
    assert crashed[0]["grader_error"].startswith("the grade failed: IsADirectoryError")
    assert "logs/submission_106.log" in crashed[0]["grader_error"]
    assert [r["grader_error"] for r in rows if r["submission"] != "106"] == [""] * 8
    assert (out / "logs" / "submission_106.log").read_text().count("Traceback") == 1


def test_messy_uploads_say_which_file_was_graded(regraded):
    out, _, _ = regraded
    tests = {t["number"]: t["output"] for t in json.loads((out / "submission_104.json").read_text())["tests"]}
    note = "note: quiz.py was uploaded 2 times (final/quiz.py, old/quiz.py): the newest one counts, so " \
           "final/quiz.py was graded"
    assert all(tests[n].rstrip().endswith(note) for n in ("4.1", "4.2", "4.3", "4.4", "4.5"))
    assert tests["1.1"].startswith("layers.py was found at work/cnn/layers.py (2 folders deep), where it is not "
                                   "graded (only the top level of the upload and one folder deep are graded: upload "
                                   "it at the top level)")


def test_the_copied_solution_is_paired_and_the_stubs_are_not(regraded):
    out, _, _ = regraded
    with open(out / "similarity.csv", newline="") as f:
        pairs = list(csv.DictReader(f))
    assert list(pairs[0]) == ["submission_a", "submission_b", "file", "score"]
    copied = [p for p in pairs if (p["submission_a"], p["submission_b"], p["file"]) == ("101", "103", "layers.py")]
    assert len(copied) == 1 and float(copied[0]["score"]) > 0.95
    assert not [p for p in pairs if "107" in (p["submission_a"], p["submission_b"])]   # stubs are boilerplate
    page = out / "similarity" / "layers.py-101-103.html"
    assert "padded" in page.read_text() and "<mark" in page.read_text()


def test_the_report_has_its_sections_its_plots_and_the_flags(regraded):
    out, rows, _ = regraded
    report = (out / "report.html").read_text()
    for section in ("scores", "tests", "hidden-case", "similarity", "leaderboard", "flagged"):
        assert f"<section id='{section}'>" in report
    images = re.findall(r"src='data:image/png;base64,([^']+)'", report)
    assert len(images) == 2 and all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert "http" not in report.replace("side by side</a>", "")   # nothing to fetch
    # Per test, its discrimination: the correlation of its score with the rest of the total.
    graded = {r["submission"]: r for r in rows if r["total"] != ""}
    scores = [(float(r["1.1"]), float(r["total"]) - float(r["1.1"])) for r in graded.values()]
    mean, full = statistics.mean(s for s, _ in scores), sum(s == 6 for s, _ in scores) / len(scores)
    assert f"<td>1.1</td><td>conv_forward_naive</td><td class='n'>{mean:.2f} / 6</td><td class='n'>{full:.0%}</td>" \
           f"<td class='n'>{statistics.correlation(*zip(*scores)):.2f}</td>" in report, scores
    assert "Discrimination: the correlation between a test's score and the rest of the total" in report
    # The group's conv takes the kernel's height for the output's width: square kernels pass, wide ones fail, and
    # a tall one passes where the stride floors both widths alike. The categories of those cases, named as the
    # layout names them, each with the share of the 7 submissions graded that failed it, the surest first.
    categories = report[report.index("<section id='hidden-case'>"):report.index("<section id='similarity'>")]
    listed = re.findall(r"<tr><td>1\.1</td><td>conv_forward_naive</td><td>([^<]+)</td><td class='n'>14% \(1 of 7\)"
                        r"</td><td class='n'>(\d+) of (\d+) cases?</td></tr>", categories)
    found = json.loads((out / "submission_102.json").read_text())["extra_data"]["failed_categories"]["1.1"]
    assert found["square kernel"] == [0, 2] and found["wide kernel"] == [2, 2] and found["tall kernel"][0] >= 1
    assert len(listed) == 5 and ("wide kernel", "2", "2") in listed
    assert all(found[name] == [int(failed), int(cases)] for name, failed, cases in listed), (listed, found)
    # Similar files grouped by file, each group under its summary; one decimal.
    similar = report[report.index("<section id='similarity'>"):report.index("<section id='leaderboard'>")]
    assert similar.count("<h3>") == 2 and "<h3>layers.py</h3><p>6 pairs among 4 submissions, the highest " \
                                          "100.0 %.</p>" in similar
    assert "<td>101 (Ada Lovelace)</td><td>103 (Copy Cat)</td><td class='n'>100.0 %</td><td><a " \
           "href='similarity/layers.py-101-103.html'>side by side</a></td>" in similar
    flagged = report[report.index("<section id='flagged'>"):]
    assert "106 (Crash Test)" in flagged and "the grade failed: IsADirectoryError" in flagged
    assert "layers.py 100.0 % like 103 (<a href='similarity/layers.py-101-103.html'>" in flagged
    assert "8 submissions (9 students)" in report


def test_in_a_zip_the_newer_copy_by_its_zip_time_counts_and_a_deep_file_is_named(tmp_path):
    from grader.submission import load

    upload = tmp_path / "upload.zip"
    with zipfile.ZipFile(upload, "w") as z:
        z.writestr(zipfile.ZipInfo("final/quiz.py", date_time=(2026, 11, 2, 9, 0, 0)), "new = 1\n")
        z.writestr(zipfile.ZipInfo("old/quiz.py", date_time=(2026, 11, 1, 9, 0, 0)), "old = 1\n")
        z.writestr(zipfile.ZipInfo("a/b/c/layers.py", date_time=(2026, 11, 3, 9, 0, 0)), "x = 1\n")
    sub = load(upload, ["quiz.py", "layers.py"])
    assert sub.files == {"quiz.py": b"new = 1\n"}
    assert sub.file_notes["quiz.py"] == ("note: quiz.py was uploaded 2 times (final/quiz.py, old/quiz.py): the "
                                         "newest one counts, so final/quiz.py was graded")
    assert sub.skipped["layers.py"] == ("layers.py was found at a/b/c/layers.py (3 folders deep), where it is not "
                                        "graded (only the top level of the upload and one folder deep are graded: "
                                        "upload it at the top level)")
    with zipfile.ZipFile(upload, "a") as z:
        z.writestr("quiz.py", "top = 1\n")
        z.writestr(zipfile.ZipInfo("cnn/layers.py", date_time=(2026, 11, 1, 9, 0, 0)), "y = 1\n")
    sub = load(upload, ["quiz.py", "layers.py"])
    assert sub.files == {"quiz.py": b"top = 1\n", "layers.py": b"y = 1\n"}
    assert "the top-level one counts, so quiz.py was graded" in sub.file_notes["quiz.py"]
    # the deeper copy is newer, yet it was not one of the copies that could be graded: the note says why
    assert sub.file_notes["layers.py"] == ("note: cnn/layers.py was graded; a/b/c/layers.py (3 folders deep) was not "
                                           "(only the top level of the upload and one folder deep are graded: to have "
                                           "another copy graded, upload it at the top level)")


def test_a_grade_loads_none_of_the_packages_only_a_regrade_needs(tmp_path):
    """Gradescope's autograder installs the grader's runtime requirements alone: no PyYAML, copydetect or
    matplotlib."""
    code = ("import sys\nfrom grader.cli import main\n"
            f"main(['grade', {str(STUBS)!r}, '--part', 'quiz', '--out', {str(tmp_path / 'r.json')!r}])\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'yaml', 'copydetect', 'matplotlib'}))")
    run = subprocess.run([sys.executable, "-c", code], cwd=paths.REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.splitlines()[-1] == "[]"


def test_a_name_that_looks_like_a_formula_stays_text_in_scores_csv(tmp_path):
    from pathlib import Path

    from grader.assignments import get_assignment
    from grader.regrade import Entry, Graded
    from grader.scores import rows, write_csv

    person = {"name": "=HYPERLINK(\"http://x\")", "email": "@x", "sid": "-1"}
    graded = Graded(Entry("7", Path("submission_7"), [person]), error="the grade failed: boom")
    [row] = rows([graded], get_assignment("cnn"), ["quiz"])
    assert row["grader_error"] == "the grade failed: boom" and row["total"] == "" and row["4.1"] == ""
    write_csv([row], tmp_path / "scores.csv")
    with open(tmp_path / "scores.csv", newline="") as f:
        [written] = list(csv.DictReader(f))
    assert (written["name"], written["email"], written["sid"]) == ("'=HYPERLINK(\"http://x\")", "'@x", "'-1")


def test_a_folder_named_in_no_encoding_is_keyed_by_a_clean_name(tmp_path):
    """A folder of a plain export may be named anything: its key reaches scores.csv (UTF-8) and the report."""
    export = tmp_path / "export"
    folder = os.fsencode(export) + b"/caf\xe9\x1b[31m"
    os.makedirs(folder)
    [entry] = entries(export)
    assert entry.key == "caf?"   # the lone byte replaced, the escape sequence dropped whole
    entry.key.encode("utf-8")   # no lone surrogate left


def scored(key, tests):
    """A Graded submission from [(number, score, max_score, output)]."""
    from pathlib import Path

    from grader.regrade import Entry, Graded

    return Graded(Entry(key, Path(key), [{"name": f"Student {key}", "email": "", "sid": ""}]),
                  {"score": sum(t[1] for t in tests), "extra_data": {},
                   "tests": [{"number": n, "score": s, "max_score": m, "output": o} for n, s, m, o in tests]})


def test_a_flag_of_the_whole_run_is_said_once(tmp_path):
    from grader import report, scores
    from grader.assignments import get_assignment
    from grader.cnn.check_milestone import NO_TEST_SET

    spec = get_assignment("cnn")
    graded = [scored(key, [("5.1", 0, 5, NO_TEST_SET), ("5.2", 0, 10, NO_TEST_SET)]) for key in ("1", "2")]
    graded.append(scored("3", [("5.1", 0, 5, "milestone.pt was not submitted"), ("5.2", 0, 10, "")]))
    rows = scores.rows(graded, spec, ["milestone"])
    assert [r["milestone_not_graded"] for r in rows] == ["no CIFAR-10 test set on this machine"] * 2 + [""]
    report.write(tmp_path / "report.html", graded, rows, [], spec, 1.0, ["milestone"])
    written = (tmp_path / "report.html").read_text()
    assert written.count("no CIFAR-10 test set") == 1
    assert "<p><b>Milestone not graded in this whole run</b>: no CIFAR-10 test set on this machine (2 submissions; " \
           "not repeated below).</p>" in written
    assert written.split("<section id='flagged'>")[1].startswith("<h2>Flagged for review</h2><p>No submission is "
                                                                 "flagged.</p>")


def test_the_histogram_counts_whole_submissions(monkeypatch):
    import matplotlib.pyplot as plt

    from grader import report

    monkeypatch.setattr(report, "_png", lambda figure: figure)   # the figure itself, not its picture
    figure = report._histogram([3, 5, 5, 7], 10)   # 2 submissions at most in a bin: ticks would be 0.25 apart
    ticks = figure.axes[0].get_yticks()
    plt.close(figure)
    assert len(ticks) > 1 and all(tick == int(tick) for tick in ticks), ticks


def test_discrimination_is_the_correlation_with_the_rest_of_the_total():
    from grader.report import discrimination

    assert discrimination([(0, 10), (1, 30), (2, 50)]) == pytest.approx(1)
    assert discrimination([(2, 10), (1, 30), (0, 50)]) == pytest.approx(-1)
    assert discrimination([(1, 10), (0, 30), (1, 50), (0, 70)]) == pytest.approx(-0.4472, abs=1e-4)
    assert discrimination([(1, 10), (1, 30), (1, 50)]) is None   # everyone scored the same on it
    assert discrimination([(0, 10), (1, 30)]) is None   # too few to tell


def test_a_worker_that_ends_mid_grade_costs_that_row_only_and_is_replaced(tmp_path):
    import multiprocessing
    import signal
    import threading

    from grader.regrade import grade_all

    export = tmp_path / "export"
    layers = (paths.solutions_dir("cnn") / "layers.py").read_text()
    for key in ("1", "2", "3"):
        (export / f"submission_{key}").mkdir(parents=True)
        # The first imports slowly: its grade is surely under way when its worker is killed.
        (export / f"submission_{key}" / "layers.py").write_text(("import time\ntime.sleep(5)\n" if key == "1" else "")
                                                               + layers)
    items, out, done = entries(export), tmp_path / "out", []
    grading = threading.Thread(target=lambda: done.append(grade_all(items, out, parts=["layers"], jobs=1)))
    grading.start()
    deadline = time.monotonic() + 120
    while not (out / "logs" / "submission_1.log").exists():   # the first submission's grade has begun
        assert time.monotonic() < deadline
        time.sleep(0.05)
    workers = multiprocessing.active_children()
    assert len(workers) == 1, workers
    os.kill(workers[0].pid, signal.SIGKILL)
    grading.join(timeout=600)
    first, second, third = done[0]
    assert first.error.startswith("the grade failed: ") and not first.results, first
    assert second.results.get("score") == third.results.get("score") == 45, (second.error, third.error)
