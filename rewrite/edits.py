"""An edit, and the one function that applies edits to a text.

    >>> text = "Rubio mentioned it."
    >>> apply_edits(text, [Edit(offset=6, length=9, original="mentioned", replacement="said", confidence=0.97)])
    'Rubio said it.'

Offsets and lengths count Unicode code points. The restorer reports its changes as ``Edit``s;
the converter splices them into files with ``apply_edits``, and ``unspin rewrite --diff``
renders them with it. The training spinner records its swaps as ``Edit``s too (confidence 1,
``source`` naming the lexicon the swap came from), and the dataset builder checks every pair
with ``apply_edits``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from .errors import InputError


@dataclasses.dataclass(frozen=True)
class Edit:
    """Replace ``length`` code points of the input at ``offset`` (``original``) by ``replacement``."""

    offset: int
    length: int
    original: str
    replacement: str
    confidence: float
    # Where a training edit came from: a lexicon source ("seed", "ppdb", ...) or "pairs" for a
    # real pair; empty for the restorer's edits, and then left out of ``to_dict`` (never in repr).
    source: str = dataclasses.field(default="", repr=False)
    # Other wordings the restorer weighed for the place, best first: ({"value", "score"}, ...).
    alternatives: tuple = dataclasses.field(default=(), repr=False, compare=False)

    def to_dict(self) -> dict:
        """JSON-ready: offset, length, original, replacement, confidence (and source and
        alternatives when set)."""
        out = dataclasses.asdict(self)
        if not self.source:
            del out["source"]
        if self.alternatives:
            out["alternatives"] = [dict(a) for a in self.alternatives]
        else:
            del out["alternatives"]
        return out


def apply_edits(text: str, edits: Iterable[Edit]) -> str:
    """``text`` with every edit applied. Edits must match the text and must not overlap."""
    parts, at = [], 0
    for edit in sorted(edits, key=lambda e: (e.offset, e.length)):
        if edit.offset < at or text[edit.offset : edit.offset + edit.length] != edit.original:
            raise InputError(
                f"edit at offset {edit.offset} ({edit.original!r}) does not match the text or overlaps "
                "another edit; apply edits only to the text they were made for"
            )
        parts += [text[at : edit.offset], edit.replacement]
        at = edit.offset + edit.length
    parts.append(text[at:])
    return "".join(parts)
