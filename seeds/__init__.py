"""Data that ships with unspin as package data (see ``README.md`` here for the formats).

``SPIN_PHRASES``: our phrase table, read by ``training.lexicon`` (the ``seed`` source).
``SAMPLE_ARTICLE``: a spun news article, the README's demo input and ``unspin evaluate``'s sample.
"""

from pathlib import Path

HERE = Path(__file__).resolve().parent
SPIN_PHRASES = HERE / "spin_phrases.tsv"
SAMPLE_ARTICLE = HERE / "sample_spun_article.txt"
