"""A pytest hook that keeps one CPython bug from ending a whole run (imported by conftest.py).

CPython 3.11 before 3.11.8 keeps the depth counter of ``ast.parse``'s AST constructor in state
shared by all threads (python/cpython#106905, fixed by #113035), so a parse that overlaps
another thread's (Python 3.11's traceback module parses each frame's line for its carets: a
server thread logging an exception is enough) may raise ``SystemError: AST constructor
recursion depth mismatch``. When that hits pytest while it formats a failure (it parses the
test's source to show the failing statement), the run ends in INTERNALERROR without a summary;
a busy machine, where a slow test fails while a server thread still logs, made it happen. Here
the report is formatted again (the other thread's parse is over by then), and after three tries
with a plain traceback that parses nothing.
"""

from __future__ import annotations

import traceback

import pytest
from _pytest.reports import TestReport

AST_RACE = "AST constructor recursion depth mismatch"
TRIES = 3


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    try:
        return (yield)
    except SystemError as error:
        if AST_RACE not in str(error):
            raise
    for _ in range(TRIES):
        try:
            return TestReport.from_item_and_call(item, call)
        except SystemError as error:
            if AST_RACE not in str(error):
                raise
    report = TestReport.from_item_and_call(item, pytest.CallInfo.from_call(lambda: None, call.when))
    excinfo = call.excinfo
    report.outcome = "failed"
    report.longrepr = (
        "".join(traceback.format_exception_only(excinfo.type, excinfo.value))
        + f"(pytest could not format the traceback: {AST_RACE}, a CPython < 3.11.8 bug)"
    )
    return report
