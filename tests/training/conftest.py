"""Fixtures for the training tests: a small seed table and corpus written to tmp."""

from __future__ import annotations

import pytest

SEED_TABLE = """# standard\tvariants\tkind\tpos
say\tmention\tword\tVERB
war\tstruggle\tword\tNOUN
person\tindividual\tword\tNOUN
people\tindividuals\tword\t
dead\tuseless\tword\tADJ
at least\tnot less than\tphrase\t
come ahead of\tget here forward of\tidiom\tVERB
overnight\tin a single day\tcompound\t
Security Council\tSafety Council\tname\t
fifteen\t15\tnumber\t
"""


@pytest.fixture
def seed_table(tmp_path):
    path = tmp_path / "spin_phrases.tsv"
    path.write_text(SEED_TABLE, encoding="utf-8")
    return path


@pytest.fixture
def small_lexicon(seed_table):
    from training.lexicon import LexiconConfig, load_lexicon

    return load_lexicon(LexiconConfig(sources=("seed",), seed_table=str(seed_table)), use_cache=False)


@pytest.fixture
def seed_only_engine():
    from training.spinner import EngineConfig

    return EngineConfig("seed", {"seed": 1.0}, 1.0, 1.0, 0.0)


@pytest.fixture
def corpus_dir(tmp_path):
    """A corpus folder in the shared layouts: dated news items, blank-line articles, one speech."""
    root = tmp_path / "corpus"
    (root / "news").mkdir(parents=True)
    (root / "wiki").mkdir()
    (root / "speeches").mkdir()
    news = []
    for day in range(1, 29):
        for k in range(3):
            news.append(f"2025-01-{day:02d}\tOfficials say at least {k + day} people died in the war overnight number {day}-{k}.")
    (root / "news" / "items.txt").write_text("\n".join(news) + "\n", encoding="utf-8")
    articles = []
    for a in range(30):
        articles.append(f"Article {a} is about a town. The people of town {a} say it is old.\nIt has a river number {a}.")
    (root / "wiki" / "slice.txt").write_text("\n\n".join(articles) + "\n", encoding="utf-8")
    (root / "speeches" / "1990_speech.txt").write_text(
        "Mr. Speaker, the war is over. We say that people came ahead of the deadline. "
        "The Security Council met at least twice.", encoding="utf-8")
    return root
