"""The word lists the guard ships are written from a corpus (training/wordlists.py)."""

from __future__ import annotations

from collections import Counter

from training.wordlists import count_words, irregular_forms, phrase_counts, word_list


def test_words_seen_in_lower_case_often_enough(tmp_path):
    (tmp_path / "a.txt").write_text("The court docket held. " * 3 + "Paris Paris Paris said ab ab ab held.\n")
    counts = count_words(tmp_path)
    assert counts["held"] == 4 and "Paris" not in counts and "paris" not in counts  # names are not words
    words = word_list(counts)
    assert {"court", "docket", "held"} <= set(words) and "ab" not in words  # short words need 20
    assert "overnight" in words  # every lower-case word of the phrase table
    assert ("held", "hold") in irregular_forms(Counter({"hold": 50, "child": 50, "walk": 50}))
    assert ("walked", "walk") not in irregular_forms(Counter({"walk": 50}))  # the suffix rules reach it
    assert phrase_counts(tmp_path, {("court", "docket"), ("calendar", "year")}) == {("court", "docket"): 3}
