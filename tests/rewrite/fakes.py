"""Fake backends with controlled outputs, so alignment, edits and the guard can be tested exactly.

    >>> SwapBackend({"mentioned": "said"}).generate(["Rubio mentioned it."])[0].text
    'Rubio said it.'
"""

from __future__ import annotations

import re
from collections.abc import Callable

from rewrite.backends import Generated
from rewrite.text import WORD_RE

SWAPS = {
    "mentioned": "said",
    "individuals": "people",
    "not less than": "at least",
    "in a single day": "overnight",
    "making ready": "preparing",
    "acknowledged": "admitted",
}


def phrase_pattern(phrases, gap: str = " ") -> re.Pattern:
    """Matches any of ``phrases`` as whole words; ``gap`` is the regex between their words."""
    alternatives = sorted(phrases, key=len, reverse=True)
    body = "|".join(gap.join(map(re.escape, p.split())) for p in alternatives)
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)")


def generated(text: str, probs: dict[str, float] | None = None, default: float = 0.9) -> Generated:
    """A ``Generated`` with one token per word token of ``text`` plus end-of-sentence; a token's
    probability is ``probs[word]`` when given, else ``default``."""
    probs = probs or {}
    spans = [m.span() for m in WORD_RE.finditer(text)] + [(len(text), len(text))]
    token_probs = [probs.get(text[s:e], default) for s, e in spans[:-1]] + [default]
    return Generated(text, spans, token_probs)


class FunctionBackend:
    """Output = ``rewrite(sentence)``; records every batch it was given."""

    def __init__(self, rewrite: Callable[[str], str], probs: dict[str, float] | None = None):
        self.rewrite = rewrite
        self.probs = probs
        self.batches: list[list[str]] = []

    def generate(self, sentences: list[str]) -> list[Generated]:
        self.batches.append(list(sentences))
        return [generated(self.rewrite(s), self.probs) for s in sentences]

    @property
    def inputs(self) -> list[str]:
        return [s for batch in self.batches for s in batch]


class SwapBackend(FunctionBackend):
    """A 'model' that replaces known spun phrases by their standard form and changes nothing else."""

    def __init__(self, swaps: dict[str, str] = SWAPS, probs: dict[str, float] | None = None):
        pattern = phrase_pattern(swaps)
        super().__init__(lambda s: pattern.sub(lambda m: swaps[m.group()], s), probs)
        self.swaps = swaps


def swap_oracle(text: str, swaps: dict[str, str] = SWAPS) -> str:
    """What restoring ``text`` with ``SwapBackend(swaps)`` must give, computed on the raw text:
    phrases may have any run of spaces/tabs between their words, never a line break."""
    pattern = phrase_pattern(swaps, gap=r"[^\S\r\n]+")
    return pattern.sub(lambda m: swaps[" ".join(m.group().split())], text)
