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

import hashlib
import json
import logging
from collections import Counter, defaultdict
from pathlib import Path

from rewrite.channel import Candidate, ChannelTable
from rewrite.model_folder import cache_root
from rewrite.text import WORD_RE

from .corpus import corpus_files, read_corpus
from .lexicon import Variant
from .markup import SLOT
from .spinner import OWN_SOURCES, inflect_variant, keeps_quantities, lemma_readings

log = logging.getLogger(__name__)

MAX_TOKENS = 4
MAX_SPUN_TOKENS = 4  # longest spun wording looked up
# Meteor's pivot paraphrases ("mentioned" -> "which we have in") swamp the thesauri when read
# backwards; the baseline reads the others.
SOURCES = ("seed", "moby", "mythes", "ppdb", "rules")


def word_counts(corpus: list[str]) -> Counter:
    """Lower-cased word counts of the corpus files, cached by their names, sizes and mtimes."""
    files = sorted(f for path in corpus for f in corpus_files(path))
    key = hashlib.sha256(json.dumps([(str(f), f.stat().st_size, f.stat().st_mtime) for f in files]).encode())
    cache = cache_root() / "wordfreq" / f"{key.hexdigest()[:16]}.json"
    if cache.is_file():
        return Counter(json.loads(cache.read_text()))
    counts: Counter = Counter()
    for path in corpus:
        for doc in read_corpus(path):
            for paragraph in doc.paragraphs:
                counts.update(t.lower() for t in WORD_RE.findall(paragraph) if t[0].isalpha())
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps(dict(counts)))
    tmp.replace(cache)
    return counts


class InverseChannel:
    """The lexicon read backwards: spun wording (lower-cased tokens joined by one space) -> the
    common wordings it renders, each with its *support* (how many sources list the pair).
    ``exact`` holds renderings as the lexicon writes them; ``lemmas`` holds one-word renderings of
    one-word wordings, so an inflected spun word finds its original through its lemma, inflected
    back ("mentioned" -> "mention" -> "say" -> "said"). ``rank`` orders words by commonness."""

    def __init__(self, exact: dict[str, dict[str, int]], lemmas: dict[str, dict[tuple[str, str], int]],
                 rank: dict[str, int]):
        self.exact, self.lemmas, self.rank = exact, lemmas, rank

    @classmethod
    def build(cls, lexicon, counts: Counter, vocab_size: int, sources: tuple[str, ...] = SOURCES) -> "InverseChannel":
        rank = {w: i for i, (w, _) in enumerate(counts.most_common(vocab_size))}
        exact: dict[str, dict[str, int]] = {}
        lemmas: dict[str, dict[tuple[str, str], int]] = {}
        for source, table in lexicon.entries.items():
            if source not in sources:
                continue
            for key, variants in table.items():
                words = key.split(" ")
                if not all(w in rank for w in words):
                    continue  # spinners swap common wordings; a rare one is not worth putting back
                for v in {v.text.lower(): v for v in variants}.values():
                    spun = " ".join(WORD_RE.findall(v.text.lower()))
                    if (v.kind == "number" or spun == key or spun.count(" ") >= MAX_SPUN_TOKENS
                            or not keeps_quantities(key, v)):
                        continue
                    row = exact.setdefault(spun, {})
                    row[key] = row.get(key, 0) + 1
                    if len(words) == 1 and " " not in spun and v.kind == "word" and source not in OWN_SOURCES:
                        row = lemmas.setdefault(spun, {})
                        row[key, v.pos] = row.get((key, v.pos), 0) + 1
        return cls(exact, lemmas, rank)

    def _commonness(self, phrase: str) -> int:  # a phrase is as common as its rarest word
        return max(self.rank.get(t, len(self.rank)) for t in phrase.split(" "))

    def originals(self, spun: str) -> list[str]:
        """The wordings ``spun`` (lower-cased, tokens joined by one space) may stand for, best
        supported first, then most common."""
        return [original for original, _ in self.supported(spun)]

    def supported(self, spun: str) -> list[tuple[str, int]]:
        """``originals(spun)`` with each one's support (how many sources list the pair)."""
        found = dict(self.exact.get(spun, {}))
        if " " not in spun:
            for upos, lemma, tag in lemma_readings(spun):
                for (key, pos), support in self.lemmas.get(lemma, {}).items():
                    if pos in ("", upos):
                        form = inflect_variant(Variant(key, "", "word", upos), tag, upos)
                        if form and form != spun:
                            found[form] = max(found.get(form, 0), support)
        return sorted(found.items(), key=lambda o: (-o[1], self._commonness(o[0]), o[0]))

    def places(self, text: str, top_k: int, spans: list[tuple[int, int]] | None = None
               ) -> list[tuple[int, int, list[tuple[str, int]]]]:
        """``(start, end, candidates)`` of every wording in ``text`` that points back to something,
        each candidate with its support (``spans``: the text's ``WORD_RE`` token spans, when the
        caller has them)."""
        spans = [m.span() for m in WORD_RE.finditer(text)] if spans is None else spans
        lower = [text[s:e].lower() for s, e in spans]
        found = []
        for i in range(len(spans)):
            if not lower[i][0].isalpha():
                continue
            for n in range(1, min(MAX_SPUN_TOKENS, len(spans) - i) + 1):
                originals = self.supported(" ".join(lower[i : i + n]))
                if originals:
                    found.append((spans[i][0], spans[i + n - 1][1], originals[:top_k]))
        return found


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
    """Merge an ``InverseChannel`` with real pair counts."""
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


def main(argv: list[str] | None = None) -> int:
    """``python -m training.channel --out channel.tsv.gz [--corpus DIR] [--markup DIR]``: the
    table from the lexicons (cached after the first build, minutes), with the real swaps of the
    markup files counted in when given (``unspin fit-detector`` counts them itself)."""
    import argparse

    from .lexicon import LexiconConfig, load_lexicon

    parser = argparse.ArgumentParser(prog="python -m training.channel", description="Build the inverse-channel table (channel.tsv.gz) from the lexicons and, optionally, markup files.")
    parser.add_argument("--out", required=True, help="The table to write (channel.tsv.gz).")
    parser.add_argument("--corpus", action="append", default=None,
                        help="Clean corpus whose common words may be originals (default: ../shared/corpora).")
    parser.add_argument("--markup", nargs="*", default=[], help="Markup files or folders whose swaps to count in.")
    parser.add_argument("--vocab-size", type=int, default=30_000, help="Most common corpus words that may be originals.")
    parser.add_argument("--top-k", type=int, default=8, help="Originals kept for each spun wording.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from pathlib import Path

    from .markup import markup_files

    corpus = args.corpus or [str(Path(__file__).resolve().parents[2] / "shared" / "corpora")]
    channel = InverseChannel.build(load_lexicon(LexiconConfig(sources=SOURCES)), word_counts(corpus), args.vocab_size)
    pairs = real_pairs(markup_files(args.markup)) if args.markup else {}
    build_table(channel, pairs, args.top_k).write(args.out)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
