"""The run survives pytest's INTERNALERROR "AST constructor recursion depth mismatch" (a CPython
3.11 < 3.11.8 race, see tests/pytest_safeguards.py): the failure is reported and the run ends
with its summary."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# The race cannot be staged on demand, so pytest's parse of the failing statement raises its
# SystemError the first TIMES times, as the race makes it do.
CONFTEST = """
import _pytest._code.code as code
from tests.pytest_safeguards import pytest_runtest_makereport  # the hook under test

left = [{times}]
real = code.TracebackEntry.getsource

def racing(self, *args, **kwargs):
    if left[0] > 0:
        left[0] -= 1
        raise SystemError("AST constructor recursion depth mismatch (before=48, after=47)")
    return real(self, *args, **kwargs)

code.TracebackEntry.getsource = racing
"""
TESTS = """
def test_fails():
    assert 1 + 1 == 3

def test_passes():
    pass
"""


def _run(tmp_path: Path, times: int, hook: bool = True) -> str:
    conftest = CONFTEST.format(times=times)
    if not hook:
        conftest = conftest.replace("from tests.pytest_safeguards", "# from tests.pytest_safeguards")
    (tmp_path / "conftest.py").write_text(conftest)
    (tmp_path / "test_racing.py").write_text(TESTS)
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(tmp_path)],
                          cwd=tmp_path, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    return done.stdout + done.stderr


def test_without_the_hook_the_race_ends_the_run_in_internalerror(tmp_path):
    output = _run(tmp_path, times=1, hook=False)
    assert "INTERNALERROR" in output and "1 failed" not in output


def test_a_failure_formatted_during_the_race_is_reported_and_the_run_summarised(tmp_path):
    output = _run(tmp_path, times=1)
    assert "INTERNALERROR" not in output
    assert "assert (1 + 1) == 3" in output  # formatted again, in full
    assert "1 failed, 1 passed" in output


def test_a_race_that_goes_on_still_gives_a_plain_report(tmp_path):
    output = _run(tmp_path, times=100)
    assert "INTERNALERROR" not in output
    assert "AssertionError" in output and "could not format the traceback" in output
    assert "1 failed, 1 passed" in output
