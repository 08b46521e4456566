"""``Variant``: one spun rendering of a standard phrase, what every lexicon source yields
(``training.lexicon`` reads the file sources, ``training.rules`` builds the ``rules`` source)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Variant:
    """One spun rendering of a standard phrase.

    ``pos`` names the part of speech of the inflecting head (first token for VERB, last for
    NOUN, the only token for ADJ/ADV); empty for invariant renderings.
    """

    text: str
    source: str
    kind: str = "word"
    pos: str = ""
