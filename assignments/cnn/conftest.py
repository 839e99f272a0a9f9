"""Lets the public tests import your files (layers.py, ...) when you run `pytest` in this folder, and reports a
function you have not written yet in one line, without a traceback."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if call.excinfo is not None and call.excinfo.errisinstance(NotImplementedError):
        # The stub's own message names the function: "conv_forward_naive: not implemented yet (see the docstring)".
        report.longrepr = f"NotImplementedError: {call.excinfo.value}"
