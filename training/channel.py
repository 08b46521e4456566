"""Build the shipped inverse-channel table (``rewrite.channel``) from the builder's lexicons and
from real spinners' swaps counted in annotated spun text.

    lexicon (seed, moby, mythes, ppdb, rules) read backwards  --+
    inflected spun forms (lemminflect) of one-word entries    --+--> ChannelTable -> channel.tsv.gz
    (spun, original) counts over markup files (real_train)    --+

Every spun wording keeps its ``top_k`` originals, ordered by real count, then lexicon support,
then commonness. Only pairs of at most ``MAX_TOKENS`` tokens a side are counted from markup: a
swap, never a sentence.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from pathlib import Path

from rewrite.channel import Candidate, ChannelTable
from rewrite.text import WORD_RE

from .markup import SLOT

log = logging.getLogger(__name__)

MAX_TOKENS = 4


def norm(text: str) -> str:
    """Lower-cased ``WORD_RE`` tokens joined by one space, curly apostrophes straightened."""
    return " ".join(WORD_RE.findall(text.lower().replace("’", "'")))


def real_pairs(markup_files: list[Path]) -> dict[str, Counter]:
    """``spun -> Counter(original)`` over the places of markup files (first alternative is the
    original; places whose spun wording is itself acceptable, and long ones, are skipped)."""
    pairs: dict[str, Counter] = defaultdict(Counter)
    for path in markup_files:
        for m in SLOT.finditer(path.read_text(encoding="utf-8")):
            spun = norm(m.group(1))
            alts = [norm(a) for a in m.group(2).split("|")]
            if not spun or spun in alts or not alts[0]:
                continue
            if spun.count(" ") >= MAX_TOKENS or alts[0].count(" ") >= MAX_TOKENS:
                continue
            pairs[spun][alts[0]] += 1
    return pairs


def build_table(channel, pairs: dict[str, Counter], top_k: int = 8) -> ChannelTable:
    """Merge an ``InverseChannel`` (``training.lm_baseline``) with real pair counts."""
    from .spinner import _inflections

    forms = set(channel.exact)
    for lemma in channel.lemmas:  # spun lemmas: their inflected forms find originals inflected alike
        for upos in ("VERB", "NOUN", "ADJ", "ADV"):
            for inflected in _inflections(lemma, upos).values():
                forms.update(inflected)
    forms.update(pairs)
    rows: dict[str, list[Candidate]] = {}
    unknown = len(channel.rank)
    for spun in sorted(forms):
        if not spun or " " in spun and spun not in channel.exact and spun not in pairs:
            continue
        found = dict(channel.supported(spun)) if spun.replace(" ", "").replace("'", "").isalpha() else {}
        real = pairs.get(spun, Counter())
        names = set(found) | set(real)
        if not names:
            continue
        cands = [Candidate(o, found.get(o, 0), real.get(o, 0), min(channel._commonness(o), unknown)) for o in names]
        cands.sort(key=lambda c: (-c.real, -c.support, c.rank, c.original))
        rows[spun] = cands[:top_k]
    log.info("channel table: %d spun wordings, %d rows", len(rows), sum(map(len, rows.values())))
    return ChannelTable(rows, max((k.count(" ") + 1 for k in rows), default=1))
