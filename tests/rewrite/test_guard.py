"""The faithfulness guard: a model that rewrites more than a local phrase changes nothing."""

from __future__ import annotations

import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.rewrite.fakes import FunctionBackend, SwapBackend

from rewrite import GuardConfig, Restorer, RestorerConfig, apply_edits
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
