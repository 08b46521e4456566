"""The faithfulness guard: a model that rewrites more than a local phrase changes nothing."""

from __future__ import annotations

import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.rewrite.fakes import FunctionBackend, SwapBackend

from rewrite import GuardConfig, Restorer, RestorerConfig, apply_edits, facts
from rewrite.align import align
from rewrite.guard import check_change, ordinary_character
from rewrite.text import WORD_RE

SENTENCE = "The talks ended on Monday, however no progress was made, and 15 people were hurt in the city."


def restore_with(rewrite, text=SENTENCE):
    return Restorer(FunctionBackend(rewrite)).restore(text)


@pytest.mark.parametrize(
    "rewrite",
    [
        pytest.param(lambda s: s.replace(", however no progress was made", ""), id="drops-clause"),
        pytest.param(lambda s: s.replace("however no progress was made, ", ""), id="drops-clause-keeps-comma"),
        pytest.param(lambda s: s.replace("15", "16"), id="changes-number"),
        pytest.param(lambda s: s.replace("15 people", "people"), id="removes-number"),
        pytest.param(lambda s: s.replace("in the city", "in the city 3 times"), id="adds-number"),
        pytest.param(lambda s: s.replace("the city", "Kyiv"), id="invents-name"),
        pytest.param(lambda s: s.replace("were hurt", "were hurt were hurt in the city"), id="duplicates-clause"),
        pytest.param(lambda s: s.replace("the city.", "the city, and the talks ended on Monday."), id="repeats-clause"),
        pytest.param(lambda s: s + " " + s, id="duplicates-sentence"),
        pytest.param(lambda s: "The talks ended.", id="drops-most"),
        pytest.param(lambda s: "Officials met at the venue on Monday but could not agree on a deal.", id="rewrites"),
        pytest.param(lambda s: s.replace("The talks ended on Monday", "On Monday the talks ended"), id="reorders"),
    ],
)
def test_unfaithful_output_changes_nothing(rewrite, caplog):
    with caplog.at_level(logging.INFO, logger="rewrite"):
        result = restore_with(rewrite)
    assert result.text == SENTENCE
    assert result.edits == []
    assert caplog.records, "a refusal is logged"


def test_a_bad_change_is_refused_and_a_good_one_in_the_same_sentence_kept():
    text = "Rubio mentioned that 15 of the individuals were hurt in a single day in the capital city."
    result = restore_with(lambda s: SwapBackend().rewrite(s).replace("15", "16"), text)
    assert result.text == "Rubio said that 15 of the people were hurt overnight in the capital city."


def test_a_capitalised_word_may_replace_a_capitalised_word():
    text = "Individuals gathered in the main square of the old town."
    result = restore_with(lambda s: s.replace("Individuals", "People"), text)
    assert result.text == "People gathered in the main square of the old town."


def test_a_sentence_changing_too_many_words_is_kept_whole(caplog):
    text = "individuals mentioned acknowledged individuals mentioned today."
    with caplog.at_level(logging.INFO, logger="rewrite"):
        result = Restorer(SwapBackend()).restore(text)
    assert result.text == text
    assert "changes 5 of 6 words" in caplog.text


def test_limits_come_from_the_config():
    text = "The talks ended on Monday in the main hall of the old palace."
    rewrite = lambda s: s.replace("in the main hall of the old palace", "there")  # noqa: E731
    assert restore_with(rewrite, text).text == text
    loose = GuardConfig(max_span_words=10, max_word_shift=10, min_length_ratio=0.1, max_changed_share=1.0)
    restorer = Restorer(FunctionBackend(rewrite), config=RestorerConfig(guard=loose))
    assert restorer.restore(text).text == "The talks ended on Monday there."


@pytest.mark.parametrize(
    ("before", "after", "reason"),
    [
        ("at least 15 people", "at least 16 people", "changes a number (15 -> 16)"),
        ("a b c d e f g h", "z y x w v u t", "not local (8 -> 7 words)"),
        ("one, two", "one two", "clause mark"),
        ("the city", "Paris", "introduces a name (Paris)"),
    ],
)
def test_check_change_reasons(before, after, reason):
    change = align(before, after)
    assert len(change) == 1
    assert reason in check_change(GuardConfig(), change[0], WORD_RE.findall(before))


def test_check_change_passes_a_local_swap():
    (change,) = align("not less than 15 individuals", "at least 15 people")[:1]
    assert check_change(GuardConfig(), change, WORD_RE.findall("not less than 15 individuals")) is None


# --- only text reaches an edit: no U+FFFD, no character from nowhere ---------------------------

ISSUE_TEXT = "Café owners mentioned that not less than 15 individuals were useless. ﬁnally Ｆｕｌｌ ｗｉｄｔｈ\n"


def test_undecodable_bytes_never_become_an_edit(caplog):
    # What the shipped model did: byte pieces that are not UTF-8 decode to U+FFFD.
    backend = FunctionBackend(lambda s: SwapBackend().rewrite(s).replace("ｗｉｄｔｈ", "\ufffd" * 13))
    with caplog.at_level(logging.INFO, logger="rewrite"):
        result = Restorer(backend).restore(ISSUE_TEXT)
    assert [e.replacement for e in result.edits] == ["said", "at least", "people"]
    assert "writes characters that are not text here (U+FFFD)" in caplog.text


@pytest.mark.parametrize(
    ("before", "after", "refused"),
    [
        ("the width", "the \ufffd", "U+FFFD"),
        ("the \ufffd width", "the \ufffd size", None),  # U+FFFD already there and kept: not written
        ("the \ufffd width", "the \ufffd\ufffd width", "U+FFFD"),
        ("the width", "the 幅", "U+5E45"),
        ("the 幅 is", "the 幅 was", None),
        ("a 幅 width", "a 幅", None),  # a character of the input may be written
        ("the width", "the ｗｉｄｔｈ", "U+FF44"),
        ("the width", "the wid\x07th", "U+0007"),
        ("the width", "the \ue000", "U+E000"),
        ("the cafe", "the café", None),
        ("the price", "the price in €", None),
    ],
)
def test_check_change_refuses_characters_that_are_not_text(before, after, refused):
    changes = align(before, after)
    reasons = [check_change(GuardConfig(max_word_shift=6), c, WORD_RE.findall(before)) for c in changes]
    if refused is None:
        assert reasons and all(r is None or "not text" not in r for r in reasons)
    else:
        assert any(r and "not text here" in r and refused in r for r in reasons)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(min_size=1, max_size=80), garbage=st.text(min_size=1, max_size=8), where=st.integers(0, 30))
def test_no_edit_ever_holds_u_fffd_or_a_character_from_nowhere(text, garbage, where):
    """A model writing anything at all (random Unicode, U+FFFD included) over random input."""

    def rewrite(sentence: str) -> str:
        spans = WORD_RE.findall(sentence)
        if not spans:
            return sentence
        k = where % len(spans)
        return " ".join(spans[:k] + [garbage + "\ufffd" * (where % 2)] + spans[k + 1 :])

    result = Restorer(FunctionBackend(rewrite)).restore(text, min_confidence=0.0)
    for edit in result.edits:
        assert "\ufffd" not in edit.replacement
        assert all(ch.isspace() or ch in text or ordinary_character(ch) for ch in edit.replacement)
    assert apply_edits(text, result.edits) == result.text


# --- issue 25: facts, names, inflections, non-words and dropped words --------------------------


def reason_for(before: str, after: str, sentence: str | None = None) -> str | None:
    """The guard's verdict on the one change between ``before`` and ``after`` (inside ``sentence``
    when given: ``before`` is then found in it, and ``after`` replaces it there)."""
    if sentence is None:
        sentence = f"Officials said {before} on the day."
    changed = sentence.replace(before, after, 1)
    changes = align(sentence, changed)
    assert len(changes) == 1, changes
    return check_change(GuardConfig(), changes[0], WORD_RE.findall(sentence), sentence)


@pytest.mark.parametrize(
    ("before", "after", "reason"),
    [
        ("two people", "three people", "changes a number (2 -> 3)"),
        ("sixty people", "six people", "changes a number (60 -> 6)"),
        ("a million people", "a billion people", "changes a number (1000000 -> 1000000000)"),
        ("the third round", "the fourth round", "changes a number (#3 -> #4)"),
        ("twice the cost", "the cost", "changes a number (2 -> -)"),
        ("did not go", "did go", "changes a negation (1 -> 0 negations)"),
        ("never went", "went", "changes a negation (1 -> 0 negations)"),
        ("he left", "they left", "changes a pronoun's person or number (he -> they)"),
        ("our plan", "my plan", "changes a pronoun's person or number (our -> my)"),
        ("stays of 15 days", "stays of 15 years", "changes a unit (day -> year)"),
        ("a 5 % rise", "a 5 point rise", "changes a unit (percent -> -)"),
        ("on Monday", "on Tuesday", "changes a date (monday -> tuesday)"),
        ("in March", "in May", "changes a date (march -> may)"),
        ("as the Legislature voted", "as Congress voted", "replaces a name (Legislature -> Congress)"),
        ("the Kremlin", "the Palace", "replaces a name (Kremlin -> Palace)"),
        ("held new talks", "hold new talks", "changes only a word's tense or number (held -> hold)"),
        ("the talks", "the talk", "changes only a word's tense or number (talks -> talk)"),
        ("a whopping rise", "a pping rise", "writes a word that is not English (pping)"),
        ("the data points", "the data", "drops words no spinner adds (points)"),
        ("in a calendar year", "in a year", "drops words no spinner adds (calendar)"),
        ("most of the states", "most states", "drops words no spinner adds (of the)"),
    ],
)
def test_the_guard_refuses_a_change_of_fact_name_inflection_or_content(before, after, reason):
    assert reason_for(before, after) == reason


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("3 people", "three people"),  # one value, two spellings
        ("4,000 people", "four thousand people"),
        ("21 people", "twenty-one people"),
        ("2.5 million people", "2.5 million people and"),  # an insertion outside the number
        ("not less than 15 people", "at least 15 people"),  # a bound, not a negation
        ("12 months", "year"),  # a year is twelve months
        ("the Home of Representatives", "the House of Representatives"),  # a known spin of a name
        ("the Supreme Courtroom", "the Supreme Court"),
        ("the court docket ruled", "the court ruled"),  # the phrase table's insertion, rare in clean text
        ("are really tired", "are tired"),  # a filler a spinner adds
        ("in in search of", "in search of"),  # a stutter
        ("in a single day", "overnight"),  # the phrase table's own spin changes the unit
        ("earlier than Jan 5", "before January 5"),
        ("individuals gathered", "people gathered"),
        ("the whopping rise", "the huge rise"),
    ],
)
def test_the_guard_lets_a_restoration_through(before, after):
    assert reason_for(before, after) is None


def test_a_capital_that_only_starts_the_sentence_is_no_name():
    sentence = "Individuals gathered in the square."
    assert reason_for("Individuals", "People", sentence) is None
    assert reason_for("square", "Kremlin", sentence) == "introduces a name (Kremlin)"


def test_both_is_two_before_a_number_of_the_sentence():
    sentence = "Trump leads in each of the six battleground states."
    assert reason_for("each of", "both", sentence) == "changes a number (both, before 6)"
    assert reason_for("each of", "both", "Trump leads in each of the states he visited.") is None


def test_every_refusal_is_logged_with_its_reason(caplog):
    text = "Officials said the data points were held back in a calendar year by two men."
    rewrite = lambda s: (s.replace("data points", "data").replace("were held", "were hold")  # noqa: E731
                         .replace("a calendar year", "a year").replace("two men", "three men"))
    with caplog.at_level(logging.INFO, logger="rewrite"):
        result = restore_with(rewrite, text)
    assert result.text == text and result.edits == []
    for reason in ("drops words no spinner adds (points)", "changes only a word's tense or number (held -> hold)",
                   "drops words no spinner adds (calendar)", "changes a number (2 -> 3)"):
        assert reason in caplog.text


# A small world of clean sentences: fillers around facts that must never change.
FACT_WORDS = {
    "number": ["two", "three", "six", "twenty", "million", "billion", "first", "third", "4", "15", "2020"],
    "negation": ["not", "never", "no", "didn't"],
    "pronoun": ["he", "she", "they", "we", "I", "him", "their", "our"],
}
PLAIN_WORDS = ["the", "officials", "said", "talks", "ended", "in", "city", "people", "were", "hurt", "at", "least"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    words=st.lists(st.sampled_from(PLAIN_WORDS + sum(FACT_WORDS.values(), [])), min_size=4, max_size=14),
    where=st.integers(0, 20),
    written=st.lists(st.sampled_from(PLAIN_WORDS + sum(FACT_WORDS.values(), []) + ["pping", "xqz"]),
                     min_size=0, max_size=3),
    span=st.integers(1, 3),
)
def test_no_edit_changes_a_number_negation_or_pronoun(words, where, written, span):
    """Random clean sentences, and a model that rewrites a random stretch of each with random words."""
    text = " ".join(words) + "."

    def rewrite(sentence: str) -> str:
        tokens = sentence[:-1].split()
        k = where % len(tokens)
        return " ".join(tokens[:k] + written + tokens[k + span :]) + "."

    result = Restorer(FunctionBackend(rewrite)).restore(text, min_confidence=0.0)
    assert apply_edits(text, result.edits) == result.text
    for edit in result.edits:
        old, new = WORD_RE.findall(edit.original), WORD_RE.findall(edit.replacement)
        assert facts.numbers(old) == facts.numbers(new)
        assert facts.negations(old) == facts.negations(new)
        assert facts.pronouns(old) == facts.pronouns(new)
        assert all(facts.is_english_word(w) or w.lower() in text.lower().split() for w in new)
