"""What a backend returns for one sentence: the restored text, each output token's span in it and
its probability (``Generated``), and how generated token ids become one (``to_generated``)."""

from __future__ import annotations

import dataclasses
import os

from .errors import ModelError


@dataclasses.dataclass(frozen=True)
class Generated:
    """One restored sentence and, for each output token, its span in ``text`` and its probability.

    Tokens that only complete part of a character (byte pieces) share the span of the token that
    completes it; the end-of-sentence token, when present, has the empty span at ``len(text)``.
    ``complete`` is False when decoding stopped at the length limit before end-of-sentence.
    """

    text: str
    token_spans: list[tuple[int, int]]
    token_probs: list[float]
    complete: bool = True

    def __post_init__(self) -> None:
        if len(self.token_spans) != len(self.token_probs):
            raise ModelError(
                f"backend gave {len(self.token_spans)} token spans but {len(self.token_probs)} probabilities"
            )

    def confidence(self, start: int, end: int) -> float:
        """Least probability among the tokens that wrote ``text[start:end]`` and the token right
        after them (it decided where the span ends). An empty span uses its two neighbours."""
        probs: list[float] = []
        before: float | None = None
        after: float | None = None
        for (s, e), p in zip(self.token_spans, self.token_probs):
            if s < end and e > start:
                probs.append(p)
            elif e <= start and s < e:
                before = p
            elif s >= end and after is None and (s < e or s == len(self.text)):
                after = p
        if start == end and before is not None:
            probs.append(before)
        if after is not None:
            probs.append(after)
        return min(probs) if probs else 0.0


def to_generated(tokenizer, eos_id: int, ids: list[int], probs: list[float]) -> Generated:
    """Generated ids (no decoder start token, cut after end-of-sentence) -> text and token spans."""
    complete = eos_id in ids
    if complete:
        cut = ids.index(eos_id)
        ids, probs, eos_prob = ids[:cut], probs[:cut], probs[cut]
    text = tokenizer.batch_decode([ids], skip_special_tokens=True)[0]
    spans = token_spans(tokenizer, ids, text)
    if complete:
        spans, probs = spans + [(len(text), len(text))], probs + [eos_prob]
    return Generated(text, spans, [float(p) for p in probs], complete)


def token_spans(tokenizer, ids: list[int], text: str) -> list[tuple[int, int]]:
    """Character span in ``text`` of each id: where decoding the prefix up to it stops matching.

    A byte piece that leaves a character unfinished decodes to U+FFFD, so it extends the match
    by nothing; it then shares the span of the piece that completes the character.
    """
    prefixes = tokenizer.batch_decode([ids[: k + 1] for k in range(len(ids))], skip_special_tokens=True)
    spans: list[tuple[int, int]] = []
    start = reached = 0
    pending = 0  # ids waiting for a span
    for k, prefix in enumerate(prefixes):
        reached = max(reached, len(os.path.commonprefix([prefix, text])))
        pending += 1
        if reached > start or k == len(ids) - 1:
            spans.extend([(start, reached)] * pending)
            start, pending = reached, 0
    return spans
