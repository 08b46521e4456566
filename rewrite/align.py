"""Word-level alignment of a model output to its input.

The model rewrites a whole sentence; we only want the places where its words differ. Both texts
are cut into ``WORD_RE`` tokens, ``difflib`` finds the matching runs, and every stretch between
two matching runs becomes a ``Change``:

    >>> [(c.source_tokens, c.target_tokens) for c in align("Rubio mentioned it.", "Rubio said it.")]
    [(('mentioned',), ('said',))]

A run of n words replaced by n words is n one-word changes (each kept or refused on its own,
and the input's spacing between them stays). A pure insertion or deletion is widened by one
neighbouring word so that it replaces something with something (``"stated that X"`` ->
``"stated X"`` becomes ``"stated that"`` -> ``"stated"``): the whitespace around it then stays
the input's own. Spans are code-point offsets.
"""

from __future__ import annotations

import dataclasses
from difflib import SequenceMatcher

from .text import is_word, word_spans

# Typographic and straight quotes/apostrophes compare equal: a model that writes ' for ’ has not
# changed a word, and the input's character is kept.
_FOLD = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"'})


# What the model reads: typographic apostrophes and double quotes made straight, as in the
# training text. "‘" stays: as "'" it would join the words around it into one token.
_MODEL_FOLD = str.maketrans({"’": "'", "“": '"', "”": '"'})


def fold_quotes(text: str) -> str:
    """``text`` with ’ “ ” made straight (same length, same tokens, so offsets hold)."""
    return text.translate(_MODEL_FOLD)


def typographic_like(original: str, replacement: str) -> str:
    """``replacement`` with the apostrophes the model wrote straight put back as the input's ’,
    when the input's span writes them so (the model reads ’ as ', see ``fold_quotes``)."""
    if "’" in original and "'" not in original:
        return replacement.replace("'", "’")
    return replacement


@dataclasses.dataclass(frozen=True)
class Change:
    """Source tokens ``source_tokens`` (at ``source_span``) became ``target_tokens`` (at ``target_span``)."""

    source_span: tuple[int, int]
    target_span: tuple[int, int]
    source_tokens: tuple[str, ...]
    target_tokens: tuple[str, ...]
    changed_words: int  # source words rewritten or removed; an insertion counts as one


def align(source: str, target: str) -> list[Change]:
    """The word-level differences between ``source`` and ``target``, in order, non-overlapping."""
    source_spans, target_spans = word_spans(source), word_spans(target)
    a = [source[s:e].translate(_FOLD) for s, e in source_spans]
    b = [target[s:e].translate(_FOLD) for s, e in target_spans]
    ranges: list[list[int]] = []  # [i1, i2, j1, j2, changed_words]
    for i1, i2, j1, j2 in _differences(a, b):
        changed = sum(is_word(t) for t in a[i1:i2]) or 1
        if i1 == i2 or j1 == j2:
            # Widen by the matched token before (or, at the very start, after) the change.
            if i1 > 0:
                i1, j1 = i1 - 1, j1 - 1
            elif i2 < len(a):
                i2, j2 = i2 + 1, j2 + 1
        if ranges and i1 < ranges[-1][1]:  # widening overlapped the previous change: merge
            prev = ranges[-1]
            prev[1], prev[3], prev[4] = max(prev[1], i2), max(prev[3], j2), prev[4] + changed
        else:
            ranges.append([i1, i2, j1, j2, changed])
    return [
        Change(
            source_span=_cover(source_spans, i1, i2),
            target_span=_cover(target_spans, j1, j2),
            source_tokens=tuple(source[s:e] for s, e in source_spans[i1:i2]),
            target_tokens=tuple(target[s:e] for s, e in target_spans[j1:j2]),
            changed_words=changed,
        )
        for i1, i2, j1, j2, changed in ranges
    ]


def token_opcodes(a: list[str], b: list[str]) -> list[tuple[str, int, int, int, int]]:
    """How token list ``a`` becomes ``b``: ``difflib`` opcodes ``(tag, i1, i2, j1, j2)``, no
    junk heuristics. The one word aligner under the restorer, the dataset builder's real pairs
    and the evaluation.

        >>> token_opcodes(["Rubio", "mentioned", "it"], ["Rubio", "said", "it"])
        [('equal', 0, 1, 0, 1), ('replace', 1, 2, 1, 2), ('equal', 2, 3, 2, 3)]
    """
    return SequenceMatcher(None, a, b, autojunk=False).get_opcodes()


def _differences(a: list[str], b: list[str]) -> list[tuple[int, int, int, int]]:
    """Token ranges ``a[i1:i2]`` -> ``b[j1:j2]`` that differ; equal-length runs word by word."""
    out = []
    for tag, i1, i2, j1, j2 in token_opcodes(a, b):
        if tag == "equal":
            continue
        if i2 - i1 == j2 - j1 > 1:
            out += [(i1 + k, i1 + k + 1, j1 + k, j1 + k + 1) for k in range(i2 - i1) if a[i1 + k] != b[j1 + k]]
        else:
            out.append((i1, i2, j1, j2))
    return out


def _cover(spans: list[tuple[int, int]], first: int, last: int) -> tuple[int, int]:
    """Character span from token ``first`` up to token ``last`` (exclusive); empty where none."""
    if last > first:
        return spans[first][0], spans[last - 1][1]
    at = spans[first - 1][1] if first > 0 else 0
    return at, at
