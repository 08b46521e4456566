"""Fixtures of the rewrite tests."""

from __future__ import annotations

from pathlib import Path

import pytest

SAMPLE = Path(__file__).resolve().parents[2] / "seeds" / "sample_spun_article.txt"


@pytest.fixture(scope="session")
def sample_text() -> str:
    """The spun sample article shipped in seeds/."""
    return SAMPLE.read_text(encoding="utf-8")
