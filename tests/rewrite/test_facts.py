"""The facts module: what no rewrite may change, defined once (rewrite/facts.py)."""

from __future__ import annotations

import pytest

from rewrite import facts
from rewrite.text import WORD_RE


def toks(text: str) -> list[str]:
    return WORD_RE.findall(text)


@pytest.mark.parametrize(
    ("a", "b"),
    [("three", "3"), ("twenty-one", "21"), ("four thousand", "4,000"), ("two million", "2 million"),
     ("2,000,000", "two million"), ("a million", "1 million"), ("one hundred and five", "105"),
     ("third", "3rd"), ("twenty-first", "21st"), ("twice", "two"), ("3.50", "3.5")],
)
def test_one_value_in_two_spellings(a, b):
    assert facts.numbers(toks(a)) == facts.numbers(toks(b)) != {}


@pytest.mark.parametrize(
    ("a", "b"),
    [("three", "four"), ("million", "billion"), ("first", "second"), ("15", "16"), ("six", "sixty"),
     ("2020 15", "2035"), ("dozens", "hundreds"), ("twice", "thrice")],
)
def test_different_values(a, b):
    assert facts.numbers(toks(a)) != facts.numbers(toks(b))


def test_negations_pronouns_units_and_dates():
    assert [facts.negations(toks(t)) for t in ("did not go", "didn't go", "does n't go", "never", "nobody came",
                                                "not less than 15", "no more than", "not only that", "went")] == [
        1, 1, 1, 1, 1, 0, 0, 0, 0]
    assert facts.pronouns(toks("he told him")) == {("3", "sg", "m"): 2}
    assert facts.pronouns(toks("the US and us")) == {("1", "pl", ""): 1}  # "US" is a country
    assert facts.pronouns(toks("when it comes to its")) == {("3", "sg", "n"): 1}  # a bare "it" is no one
    assert facts.unit_counts(toks("5 % and 6 per cent, $ 3, 2 days daily")) == {
        "percent": 2, "dollar": 1, "day": 2}
    assert facts.measures(toks("12 months")) == facts.measures(toks("a year"))
    assert facts.dates(toks("On Monday in May we may go today, Jan 5")) == {"monday": 1, "may": 1, "today": 1,
                                                                             "january": 1}


def test_inflections_words_and_names():
    assert facts.same_lemma("held", "hold") and facts.same_lemma("children", "child")
    assert facts.same_lemma("stopped", "stops") and facts.same_lemma("was", "is")
    assert not facts.same_lemma("said", "stated") and not facts.same_lemma("hold", "hold")
    assert [facts.is_english_word(w) for w in ("huge", "don't", "Biden's", "can't", "15", ",", "pping", "aboutly")] \
        == [True, True, True, True, True, True, False, False]
    assert "paris" not in facts.english_words() and "house" in facts.english_words()  # names are not words
    assert ("home", "house") in facts.name_spins() and ("legislature", "congress") not in facts.name_spins()
    assert ("court docket", "court") in facts.insertions()
    assert ("calendar year", "year") in facts.seed_insertions() - facts.insertions()  # English, not a spin
    assert facts.known_spin(["in", "a", "single", "day"], ["overnight"])


@pytest.mark.parametrize("text", ["", "?", "東京の 3 人", "😀 two 👩‍👩‍👧", "-", "- - one"])
def test_every_measure_takes_odd_text(text):
    tokens = toks(text)
    for measure in (facts.numbers, facts.unit_counts, facts.dates, facts.pronouns, facts.negations):
        measure(tokens)
    assert facts.numbers(tokens) == facts.numbers(list(tokens))


def test_the_spinner_and_the_guard_share_one_home_for_facts():
    from training import rules, spinner

    assert spinner.units is facts.units and spinner.persons is facts.persons
    assert spinner.quantity_words is facts.quantity_words and rules.FILLERS is facts.FILLERS
    assert spinner.CALENDAR is facts.CALENDAR and spinner.TITLES is facts.TITLES
