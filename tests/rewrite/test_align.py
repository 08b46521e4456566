"""Word-level alignment: the differences between a sentence and the model's output."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rewrite.align import align

TOKENS = "a b c d , . x y".split()


def pairs(source, target):
    return [(source[slice(*c.source_span)], target[slice(*c.target_span)]) for c in align(source, target)]


def test_replacement_deletion_and_insertion():
    assert pairs("Rubio mentioned it.", "Rubio said it.") == [("mentioned", "said")]
    assert pairs("not less than 15", "at least 15") == [("not less than", "at least")]
    assert pairs("He stated that it ended.", "He stated it ended.") == [("stated that", "stated")]
    assert pairs("that it ended.", "it ended.") == [("that it", "it")]  # at the start: widened right
    assert pairs("war began", "long war began") == [("war", "long war")]


def test_equal_length_runs_become_one_word_changes_keeping_the_spacing_between():
    source, target = "power  patrons\tlike India", "energy buyers like India"
    assert pairs(source, target) == [("power", "energy"), ("patrons", "buyers")]


def test_widening_that_meets_the_previous_change_merges_them():
    changes = align("a b c", "x b")  # a->x, then c deleted: widened onto b, next to a->x
    assert [(c.source_tokens, c.target_tokens) for c in changes] == [(("a",), ("x",)), (("b", "c"), ("b",))]
    merged = align("a b c", "b x c d")  # a deleted (widened right onto b), x inserted after b (widened onto b)
    assert [(c.source_tokens, c.target_tokens, c.changed_words) for c in merged] == [
        (("a", "b"), ("b", "x"), 2),
        (("c",), ("c", "d"), 1),
    ]


def test_typographic_and_straight_quotes_are_the_same_word():
    assert align("“I don’t,” he said.", "\"I don't,\" he said.") == []


def test_empty_sides():
    assert align("", "") == []
    assert pairs("", "new words") == [("", "new words")]
    assert pairs("old words", "") == [("old words", "")]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=12), st.lists(st.sampled_from(TOKENS), max_size=12))
def test_changes_are_ordered_disjoint_and_rebuild_the_target_tokens(a, b):
    source, target = " ".join(a), " ".join(b)
    changes = align(source, target)
    rebuilt, at = [], 0
    for change in changes:
        start, end = change.source_span
        assert start >= at
        rebuilt += source[at:start].split() + list(change.target_tokens)
        at = end
    rebuilt += source[at:].split()
    assert rebuilt == b


def test_fold_quotes_keeps_length_and_tokens():
    from rewrite.align import fold_quotes
    from rewrite.text import word_spans

    for text in ["“He’s here,” she said.", "acknowledged‘the", "it’s ‘quoted’ — “x”"]:
        folded = fold_quotes(text)
        assert len(folded) == len(text)
        assert word_spans(folded) == word_spans(text)
        assert "’" not in folded and "“" not in folded
