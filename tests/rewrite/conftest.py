"""Fixtures of the rewrite tests."""

from __future__ import annotations

from pathlib import Path

import pytest

SAMPLE = Path(__file__).resolve().parents[2] / "seeds" / "sample_spun_article.txt"


@pytest.fixture(scope="session")
def sample_text() -> str:
    """The spun sample article shipped in seeds/."""
    return SAMPLE.read_text(encoding="utf-8")


@pytest.hookimpl(tryfirst=True)  # before -m "not slow" deselects
def pytest_collection_modifyitems(items):
    """Tests on the copying model (``test_decoding.copy_model_dir``, a 200-step training run) are slow."""
    for item in items:
        if "copy_model_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
