"""The CSV files a regrade writes (scores.csv, similarity.csv), every cell inert: a TA opens them in a spreadsheet,
and a cell that starts like a formula would run there. Names, emails and folder names are the students' own."""
import csv

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def inert(cell):
    """``cell`` as a spreadsheet shows it, never runs it: text that starts like a formula gets a quote first.
    Numbers are left as they are (a negative one is no formula, and stays a number)."""
    return f"'{cell}" if isinstance(cell, str) and cell.startswith(FORMULA_START) else cell


def write(path, header, rows):
    """Write ``rows`` (sequences of cells) under ``header`` to the CSV file ``path``, every cell inert."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        for row in [header, *rows]:
            writer.writerow([inert(cell) for cell in row])
