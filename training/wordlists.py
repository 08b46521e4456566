"""Writes the word lists the faithfulness guard ships (``rewrite/data/``; see its README).

    python -m training.wordlists ../shared/corpora rewrite/data

- ``english_words.txt.gz``: every word (letters, inner apostrophes) seen in lower case at least
  ``MIN_COUNT`` times in the corpora (a name, always capitalised, is not one) (``SHORT_MIN_COUNT`` for words of up to three letters,
  where fragments and abbreviations crowd), and every word of the team's phrase table;
- ``insertions.tsv``: the team's phrase table's insertions (``rewrite.facts.seed_insertions``:
  "court" -> "court docket") with how often each spun form occurs in the corpora; the guard lets a
  restoration drop the added words only where the spun form is rare in clean text;
- ``irregular_forms.tsv``: inflected forms of those words whose lemma the guard's suffix rules
  (``rewrite.facts.suffix_lemmas``) do not reach (``held`` -> ``hold``), from lemminflect's tables
  (MIT licence), plus the forms of ``be``, ``have`` and ``do``.

Needs the train extra (lemminflect). The corpora are Wikipedia text (CC BY-SA) and State of the
Union addresses (public domain): the word list credits them in its header.
"""

from __future__ import annotations

import argparse
import gzip
import re
from collections import Counter
from pathlib import Path

MIN_COUNT = 3
SHORT_MIN_COUNT = 20
LEMMA_MIN_COUNT = 20  # words whose inflections are looked up
_WORD = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)*")
_AUXILIARIES = {"be": "am is are was were been being", "have": "has had having", "do": "does did done doing"}
HEADER = ("# English words for the unspin faithfulness guard (rewrite/facts.py), one a line, lower case.\n"
          "# Derived from word counts of ../shared/corpora: Wikipedia text (CC BY-SA 4.0, Wikipedia contributors)\n"
          "# and U.S. State of the Union addresses (public domain); and the words of seeds/spin_phrases.tsv.\n"
          "# Written by `python -m training.wordlists ../shared/corpora rewrite/data`. Licence: CC BY-SA 4.0.\n")


def count_words(corpus: Path) -> Counter:
    counts: Counter = Counter()
    for file in sorted(corpus.rglob("*.txt")):
        with open(file, encoding="utf-8", errors="replace") as f:
            for line in f:
                counts.update(w.replace("’", "'") for w in _WORD.findall(line) if w.islower())
    return counts


def word_list(counts: Counter) -> list[str]:
    from rewrite.facts import seed_entries

    words = {w for w, n in counts.items() if n >= (SHORT_MIN_COUNT if len(w) <= 3 else MIN_COUNT)}
    for standard, variant, _ in seed_entries():
        words.update(w.replace("’", "'") for w in _WORD.findall(f"{standard} {variant}") if w.islower())
    return sorted(words)


def phrase_counts(corpus: Path, phrases: set[tuple[str, ...]]) -> Counter:
    """How often each phrase (lower-cased words) occurs in the corpora's running text."""
    longest = max(map(len, phrases), default=0)
    token = re.compile(r"[a-z]+(?:'[a-z]+)*|\d+")
    counts: Counter = Counter()
    for file in sorted(corpus.rglob("*.txt")):
        with open(file, encoding="utf-8", errors="replace") as f:
            for line in f:
                words = token.findall(line.lower().replace("’", "'"))
                for i in range(len(words)):
                    for n in range(1, longest + 1):
                        key = tuple(words[i : i + n])
                        if key in phrases:
                            counts[key] += 1
    return counts


def irregular_forms(counts: Counter) -> list[tuple[str, str]]:
    import lemminflect

    from rewrite.facts import suffix_lemmas

    rows = {(form, lemma) for lemma, forms in _AUXILIARIES.items() for form in forms.split()}
    for lemma in sorted(w for w, n in counts.items() if n >= LEMMA_MIN_COUNT and w.isalpha()):
        for upos in ("VERB", "NOUN"):
            for forms in lemminflect.getAllInflections(lemma, upos=upos).values():
                for form in forms:
                    if form != lemma and form.isalpha() and lemma not in suffix_lemmas(form):
                        rows.add((form, lemma))
    return sorted(r for r in rows if r[0].isalpha())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    counts = count_words(args.corpus)
    words = word_list(counts)
    with gzip.GzipFile(args.out / "english_words.txt.gz", "wb", mtime=0) as f:
        f.write((HEADER + "\n".join(words) + "\n").encode("utf-8"))
    from rewrite.facts import seed_insertions

    inserted = sorted(seed_insertions())
    seen = phrase_counts(args.corpus, {tuple(spun.split()) for spun, _ in inserted})
    (args.out / "insertions.tsv").write_text(
        "# spun<TAB>original<TAB>times the spun form occurs in ../shared/corpora: the phrase table's insertions\n"
        "# (seeds/spin_phrases.tsv), for the unspin guard (rewrite/facts.py). Written by\n"
        "# `python -m training.wordlists ../shared/corpora rewrite/data`.\n"
        + "".join(f"{spun}\t{original}\t{seen[tuple(spun.split())]}\n" for spun, original in inserted),
        encoding="utf-8")
    rows = irregular_forms(counts)
    (args.out / "irregular_forms.tsv").write_text(
        "# inflected form<TAB>lemma: irregular forms for the unspin guard (rewrite/facts.py). From lemminflect's\n"
        "# tables (MIT licence) for words seen >= 20 times in ../shared/corpora, and the forms of be/have/do.\n"
        "# Written by `python -m training.wordlists ../shared/corpora rewrite/data`.\n"
        + "".join(f"{form}\t{lemma}\n" for form, lemma in rows), encoding="utf-8")
    print(f"{len(words)} words, {len(rows)} irregular forms -> {args.out}")


if __name__ == "__main__":
    main()
