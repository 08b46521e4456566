"""Fixtures for the service tests (helpers live in service_fakes.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.service.service_fakes import CHROMIUM, CHROMIUM_ARGS, FakeRestorer, running_app


@pytest.fixture(autouse=True)
def _clean_unspin_env(monkeypatch):
    """No UNSPIN_* variable from the developer's shell leaks into Settings() in these tests."""
    for name in list(os.environ):
        if name.startswith("UNSPIN_") and name != "UNSPIN_CACHE":
            monkeypatch.delenv(name)


@pytest.fixture
def fake() -> FakeRestorer:
    return FakeRestorer()


@pytest.fixture
def client(fake) -> Iterator[TestClient]:
    with running_app(fake) as client:
        yield client


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium driven by Playwright (no browser download)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing; install Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
