"""The restoring pipeline with fake backends: edits rebuild the output, nothing else moves."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.rewrite.fakes import SWAPS, FunctionBackend, SwapBackend, swap_oracle

from rewrite import Edit, GuardConfig, InputError, Restoration, Restorer, RestorerConfig, apply_edits
from rewrite.text import WORD_RE

# Permissive limits, so that these tests see the alignment alone (the guard has its own tests).
OPEN_GUARD = GuardConfig(
    max_span_words=10_000, max_word_shift=10_000, min_length_ratio=0.01, max_length_ratio=100.0, max_changed_share=1.0
)
OPEN = RestorerConfig(max_words=10_000, guard=OPEN_GUARD)

FILLERS = [
    "the", "war", "Rubio", "15", "3.5", "1,000", "don’t", "O'Neill", "Zürich", "東京", "北京大学", "😀", "👩‍👩‍👧",
    "<b>", "</b>", "*", "#", "&amp;", "—", "“", "”", '"', "'", "‘", "’", ",", ".", "?", "!", "(", ")", "[", "]",
    "…", "-", "_", "@", "e.g.", "U.S.", "café", "naïve", "ﬁ", "\u0301",
]  # fmt: skip
SEPARATORS = [" ", " ", " ", "  ", "\t", "\n", "\r\n", "\n\n", "\u00a0", "\u3000", "", ". ", "! ", " \n "]
HSPACE = [" ", "  ", "\t", "\u00a0", " \t "]


@st.composite
def spun_texts(draw) -> str:
    """Texts mixing spun phrases (odd spacing inside them), fillers, markup, emoji and CJK.

    A filler follows every phrase: two phrases side by side would be one edit whose inner
    spacing is the model's, which the oracle (phrase by phrase) does not predict.
    """
    pieces = []
    for _ in range(draw(st.integers(0, 40))):
        if draw(st.integers(0, 3)) == 0:
            words = draw(st.sampled_from(sorted(SWAPS))).split()
            phrase = words[0]
            for word in words[1:]:
                phrase += draw(st.sampled_from(HSPACE)) + word
            pieces += [phrase, draw(st.sampled_from(SEPARATORS))]
        pieces += [draw(st.sampled_from(FILLERS)), draw(st.sampled_from(SEPARATORS))]
    return "".join(pieces)


def check_edits(text: str, result: Restoration) -> None:
    """Edits are sorted, disjoint, match the input, and rebuild the output."""
    at = 0
    for edit in result.edits:
        assert edit.offset >= at
        assert text[edit.offset : edit.offset + edit.length] == edit.original
        assert 0.0 <= edit.confidence <= 1.0
        at = edit.offset + edit.length
    assert apply_edits(text, result.edits) == result.text


def test_an_edit_inside_a_word_joined_by_a_typographic_apostrophe_keeps_it():
    # Found by the property test below: the model reads ’ as ' and rewrote the whole word
    # "the’acknowledged" as "the'admitted", changing the apostrophe outside the swap.
    text = "the’acknowledged the "
    result = Restorer(SwapBackend(), OPEN).restore(text)
    assert result.text == swap_oracle(text) == "the’admitted the "
    check_edits(text, result)


@settings(max_examples=200, deadline=None)
@given(spun_texts())
def test_swaps_restore_exactly_and_edits_rebuild_output(text):
    result = Restorer(SwapBackend(), OPEN).restore(text)
    assert result.text == swap_oracle(text)
    check_edits(text, result)
    assert 0.0 <= result.spin_ratio <= 1.0
    assert (result.spin_ratio > 0) == bool(result.edits)


@settings(max_examples=100, deadline=None)
@given(spun_texts(), st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.booleans())
def test_filters_keep_a_consistent_subset(text, p_said, threshold, protect_quotes):
    restorer = Restorer(SwapBackend(probs={"said": p_said, "people": 0.5}), OPEN)
    full = restorer.restore(text)
    filtered = restorer.restore(text, min_confidence=threshold, protect_quotes=protect_quotes)
    check_edits(text, filtered)
    assert set(filtered.edits) <= set(full.edits)
    assert all(edit.confidence >= threshold for edit in filtered.edits)
    dropped = set(full.edits) - set(filtered.edits)
    assert protect_quotes or all(edit.confidence < threshold for edit in dropped)
    assert filtered.spin_ratio <= full.spin_ratio


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_any_text_with_an_identity_model_comes_back_unchanged(text):
    result = Restorer(FunctionBackend(lambda s: s), OPEN).restore(text)
    assert result == Restoration(text, [], 0.0)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=120), st.text(max_size=120))
def test_any_model_output_gives_edits_that_rebuild_the_restoration(text, junk):
    """Whatever the model writes, guarded or not, the reported edits rebuild the returned text."""
    for config in (OPEN, RestorerConfig()):
        result = Restorer(FunctionBackend(lambda s: s[: len(s) // 2] + junk), config).restore(text)
        check_edits(text, result)


def test_markup_quotes_and_whitespace_outside_edits_survive_byte_for_byte():
    text = (
        "<p>“Individuals  mentioned\tit,” she said.</p>\r\n"
        "\u00a0 *Not less than* 15 — ‘quoted’ — and   &amp; in a single day!\n\n\n"
        "  # heading with trailing spaces   \n"
        "end without newline: he mentioned"
    )
    restorer = Restorer(SwapBackend(), OPEN)
    result = restorer.restore(text)
    expected = text.replace("mentioned", "said").replace("in a single day", "overnight")
    assert result.text == expected
    assert result.text.encode("utf-8") == expected.encode("utf-8")
    assert [e.original for e in result.edits] == ["mentioned", "in a single day", "mentioned"]
    check_edits(text, result)


def test_edit_fields_and_spin_ratio():
    text = "Rubio mentioned that not less than 15 individuals died."
    result = Restorer(SwapBackend(probs={"said": 0.8, "least": 0.6}), OPEN).restore(text)
    assert result.text == "Rubio said that at least 15 people died."
    first = result.edits[0]
    assert first == Edit(offset=6, length=9, original="mentioned", replacement="said", confidence=pytest.approx(0.8))
    assert result.edits[1].original == "not less than"
    assert result.edits[1].confidence == pytest.approx(0.6)
    # mentioned + not less than + individuals = 5 of 9 words (punctuation is not a word).
    assert result.spin_ratio == pytest.approx(5 / 9)
    assert result.to_dict()["edits"][0] == {
        "offset": 6, "length": 9, "original": "mentioned", "replacement": "said", "confidence": pytest.approx(0.8),
    }  # fmt: skip


def test_insertion_and_deletion_become_replacements_of_a_neighbour():
    # (the guard lets a filler go, "actually", where it would keep "that": no spinner adds it)
    backend = FunctionBackend(lambda s: s.replace("stated actually", "stated").replace("a war", "a long war"))
    restorer = Restorer(backend, OPEN)
    text = "He stated actually  a war began."
    result = restorer.restore(text)
    assert result.text == "He stated  a long war began."
    assert [(e.original, e.replacement) for e in result.edits] == [("stated actually", "stated"), ("a", "a long")]


def test_offsets_count_code_points_with_emoji_and_cjk():
    text = "😀👩‍👩‍👧 東京の individuals 🙂 mentioned 北京."
    result = Restorer(SwapBackend(), OPEN).restore(text)
    assert result.text == "😀👩‍👩‍👧 東京の people 🙂 said 北京."
    for edit, word in zip(result.edits, ["individuals", "mentioned"]):
        assert edit.offset == text.index(word)
        assert len(text[: edit.offset].encode("utf-16-le")) // 2 != edit.offset  # not UTF-16 units
        assert edit.length == len(word)


FOREIGN = {
    "Japanese": "東京都は月曜日、新しい政策を発表した。少なくとも十五人が負傷した。",
    "Russian": "Правительство объявило в понедельник о новых мерах. По меньшей мере 15 человек пострадали.",
    "emoji": "😀👩‍👩‍👧 🎉🎉 👍🏽 🇯🇵 2024 — 15 %",
}


@pytest.mark.parametrize("language", FOREIGN)
def test_text_without_an_english_word_never_reaches_the_model(language):
    backend = SwapBackend()
    text = "\n\n".join([FOREIGN[language]] * 20)
    result = Restorer(backend, OPEN).restore(text)
    assert (result.text, result.edits, backend.batches) == (text, [], [])


def test_only_the_english_lines_of_a_mixed_text_reach_the_model():
    backend = SwapBackend()
    text = "\n".join([FOREIGN["Japanese"], "Rubio mentioned it.", FOREIGN["Russian"], FOREIGN["emoji"], "They mentioned it."])
    result = Restorer(backend, OPEN).restore(text)
    assert sorted(backend.inputs) == ["Rubio mentioned it.", "They mentioned it."]
    assert result.text == text.replace("mentioned", "said")


def test_a_500_word_sentence_is_split_and_every_word_restored():
    words = [("mentioned" if k % 7 == 0 else "individuals" if k % 11 == 0 else f"w{k}") for k in range(500)]
    text = "Start " + " ".join(words) + " end."
    backend = SwapBackend()
    result = Restorer(backend, RestorerConfig(max_words=64)).restore(text)
    assert result.text == swap_oracle(text)
    assert len(backend.inputs) > 1
    assert all(len(WORD_RE.findall(s)) <= 64 for s in backend.inputs)
    sent = [tok for s in backend.inputs for tok in WORD_RE.findall(s)]
    assert sorted(sent) == sorted(WORD_RE.findall(text))  # every token sent exactly once, nothing cut
    check_edits(text, result)


def test_long_document_many_paragraphs():
    paragraph = "Rubio mentioned the talks. Not less than 15 individuals were hurt in a single day."
    text = "\n".join([paragraph] * 300)
    backend = SwapBackend()
    result = Restorer(backend, RestorerConfig(batch_size=4)).restore(text)
    assert result.text == swap_oracle(text)
    assert result.text.count("\n") == 299
    assert len(backend.inputs) == 2  # identical sentences are sent once
    assert len(result.edits) == 300 * 3


def test_batches_hold_sentences_of_similar_length():
    backend = FunctionBackend(lambda s: s)
    sentences = [("word " * n).strip() + "." for n in (9, 1, 5, 2, 8, 3)]
    Restorer(backend, RestorerConfig(batch_size=2)).restore(" ".join(s.capitalize() for s in sentences))
    lengths = [[len(s) for s in batch] for batch in backend.batches]
    assert [n for batch in lengths for n in batch] == sorted(n for batch in lengths for n in batch)
    assert all(len(batch) <= 2 for batch in backend.batches)


def test_protect_quotes_leaves_quoted_speech_alone():
    text = "“Individuals mentioned it,” Rubio mentioned. He said \"individuals mentioned\n“unclosed individuals"
    restorer = Restorer(SwapBackend(), OPEN)
    assert restorer.restore(text, protect_quotes=True).text == (
        "“Individuals mentioned it,” Rubio said. He said \"individuals mentioned\n“unclosed individuals"
    )
    assert restorer.restore(text).text == swap_oracle(text)


def test_restore_many_matches_restore():
    restorer = Restorer(SwapBackend(), OPEN)
    texts = ["Rubio mentioned it.", "", "Individuals\nmentioned", "   "]
    assert restorer.restore_many(texts) == [restorer.restore(t) for t in texts]


def test_incomplete_model_output_is_ignored(caplog):
    class Truncating(SwapBackend):
        def generate(self, sentences):
            from dataclasses import replace

            return [replace(g, complete=False) for g in super().generate(sentences)]

    with caplog.at_level(logging.INFO, logger="rewrite"):
        result = Restorer(Truncating(), OPEN).restore("Rubio mentioned it.")
    assert result.text == "Rubio mentioned it."
    assert "length limit" in caplog.text


# Bad input ------------------------------------------------------------------------------------


def test_empty_text_gives_an_empty_restoration_without_calling_the_model():
    backend = SwapBackend()
    assert Restorer(backend).restore("") == Restoration("", [], 0.0)
    assert backend.batches == []


@pytest.mark.parametrize("text", [" ", "\n", "\t \r\n \u00a0\u3000 \n\n"])
def test_whitespace_only_text_comes_back_unchanged(text):
    assert Restorer(SwapBackend()).restore(text) == Restoration(text, [], 0.0)


@pytest.mark.parametrize("text", [b"bytes", None, 3])
def test_non_text_input_is_an_input_error(text):
    with pytest.raises(InputError, match="must be a str"):
        Restorer(SwapBackend()).restore(text)


def test_unpaired_surrogate_is_an_input_error():
    with pytest.raises(InputError, match="surrogate at code point 4"):
        Restorer(SwapBackend()).restore("abc \udcff")


def test_restore_many_refuses_a_bare_string():
    with pytest.raises(InputError, match="list of texts"):
        Restorer(SwapBackend()).restore_many("Rubio mentioned it.")


@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_min_confidence_out_of_range(value):
    with pytest.raises(InputError, match="min_confidence"):
        Restorer(SwapBackend()).restore("x", min_confidence=value)


def test_config_is_validated():
    with pytest.raises(InputError):
        RestorerConfig(max_words=1)
    with pytest.raises(InputError):
        GuardConfig(max_changed_share=0)


def test_apply_edits_refuses_edits_for_another_text():
    edit = Edit(offset=0, length=3, original="abc", replacement="x", confidence=1.0)
    assert apply_edits("abcd", [edit]) == "xd"
    with pytest.raises(InputError, match="does not match"):
        apply_edits("abd", [edit])
    with pytest.raises(InputError, match="overlaps"):
        apply_edits("abcd", [edit, Edit(2, 1, "c", "y", 1.0)])


def test_a_backend_returning_too_few_outputs_is_a_model_error():
    from rewrite import ModelError

    class Lossy(SwapBackend):
        def generate(self, sentences):
            return super().generate(sentences)[:-1]

    with pytest.raises(ModelError, match="returned 0 outputs for 1"):
        Restorer(Lossy()).restore("Rubio mentioned it.")


def test_whitespace_the_model_writes_inside_a_replacement_is_a_single_space():
    backend = FunctionBackend(lambda s: s.replace("not less than", "at\nleast"))
    result = Restorer(backend, OPEN).restore("not less than 15")
    assert result.text == "at least 15"



@pytest.mark.timing
def test_sentences_of_a_long_single_line_are_found_in_linear_time():
    # split_sentences sliced the rest of the line at every sentence: quadratic (2 MB on one line
    # took 40 s, now 0.6 s). Four times the line must cost about four times as long, not sixteen.
    import time

    from rewrite.text import split_sentences

    def seconds(sentences: int) -> float:
        text = "Officials met on Monday. " * sentences  # one line
        started = time.monotonic()
        spans = split_sentences(text)
        assert len(spans) == sentences and spans[1] == (25, 49)
        return time.monotonic() - started

    # The best of three of each: a busy machine only ever adds time, so the minimum is the cost.
    small, large = (min(seconds(n) for _ in range(3)) for n in (20_000, 80_000))
    assert large < 8 * small + 0.5
