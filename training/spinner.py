"""The synthetic spinner: sense-blind synonym and phrase swaps, like the article spinners of
content farms, with every swap recorded as an edit.

    >>> spinner = Spinner(lexicon, SpinnerConfig(seed=1))
    >>> spinner.spin("The war killed at least 15 people.", random.Random(0), rate=0.5)
    ('The struggle murdered not less than 15 individuals.',
     [Edit(4, 7, 'war', 'struggle'), Edit(8, 14, 'killed', 'murdered'), ...])

How a sentence is spun:
1. tokenise (``rewrite.text.WORD_RE``) and find, at every token, the longest lexicon phrase that
   starts there (inflected forms included: "came ahead of" matches "come ahead of");
2. shuffle the candidates (seeded) and take non-overlapping ones until ``rate`` of the words
   are covered;
3. for each, pick a source by the engine's weights, then a variant, inflect it to the matched
   form with ``lemminflect``, copy the capitalisation of the first letter, and splice it in.
Grammar is not repaired afterwards ("a" before a vowel stays "a"), quotes are spun unless
``protect_quotes`` is set, ALL-CAPS words and words with digits are left alone (digits are
spun only by the seed table's number entries).
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import re
from functools import lru_cache

import lemminflect

from rewrite.text import WORD_RE

from .errors import ConfigError
from .lexicon import Lexicon, Variant

MAX_PHRASE_TOKENS = 5
THESAURI = frozenset({"moby", "mythes", "ppdb"})
# Function words the word thesauri must not touch ("a" -> "amp", "in" -> "inch" is noise no
# spinner produces); the seed table's phrase entries cover function-word phrases instead.
STOPWORDS = frozenset(
    """a an the and or but nor so yet if then than that this these those there here of in on at
    to for from by with without into onto upon about as is am are was were be been being has have
    had do does did will would shall should can could may might must not no it its it's he him his
    she her hers they them their theirs we us our you your i me my mine who whom whose which what
    when where why how all any each every some such own same other only just also very too up down
    out off over under again once both few more most""".split()
)
_SENTENCE_OPENERS = frozenset({".", "!", "?", "“", '"', ":", "(", "‘"})
_QUOTED = re.compile(r"“[^”]*”|\"[^\"]*\"")


@dataclasses.dataclass(frozen=True)
class SpinEdit:
    """One swap: ``original[start:end]`` became ``replacement``."""

    start: int
    end: int
    original: str
    replacement: str
    source: str = ""

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class EngineConfig:
    """One spinner 'engine': a mix of lexicon sources and a spread of spin rates."""

    name: str = "mixed"
    weights: dict[str, float] = dataclasses.field(
        default_factory=lambda: {"seed": 3.0, "moby": 1.0, "mythes": 1.0, "meteor": 1.0, "ppdb": 1.0}
    )
    rate_min: float = 0.05
    rate_max: float = 0.30
    name_spin_prob: float = 0.05  # chance a capitalised word inside a name may be spun word by word

    def __post_init__(self) -> None:
        if not 0 <= self.rate_min <= self.rate_max <= 1:
            raise ConfigError(f"engine {self.name}: need 0 <= rate_min <= rate_max <= 1")
        if not self.weights or min(self.weights.values()) < 0 or sum(self.weights.values()) <= 0:
            raise ConfigError(f"engine {self.name}: weights must be non-negative with a positive sum")


def default_engines() -> list[EngineConfig]:
    """Three channels: a balanced mix, a thesaurus-heavy word spinner, a phrase-heavy one."""
    return [
        EngineConfig("mixed"),
        EngineConfig("thesaurus", {"seed": 1.0, "moby": 2.0, "mythes": 2.0, "ppdb": 2.0}, 0.08, 0.35, 0.1),
        EngineConfig("phrasal", {"seed": 4.0, "meteor": 3.0, "mythes": 0.5}, 0.05, 0.25, 0.03),
    ]


@dataclasses.dataclass
class SpinnerConfig:
    """Spinner settings; ``seed`` makes every example's spin reproducible."""

    engines: list[EngineConfig] = dataclasses.field(default_factory=default_engines)
    unspun_share: float = 0.15
    protect_quotes: bool = False
    seed: int = 13

    def __post_init__(self) -> None:
        self.engines = [e if isinstance(e, EngineConfig) else EngineConfig(**e) for e in self.engines]
        if not self.engines:
            raise ConfigError("configure at least one spinner engine")
        if not 0 <= self.unspun_share <= 1:
            raise ConfigError("unspun_share must lie in [0, 1]")


def example_rng(seed: int, *key: object) -> random.Random:
    """A generator seeded by ``(seed, *key)``: stable across processes and runs."""
    digest = hashlib.blake2b(repr((seed, *key)).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "little"))


_DEGREE_TAGS = frozenset({"JJR", "JJS", "RBR", "RBS"})


@lru_cache(maxsize=200_000)
def _inflect(word: str, tag: str) -> str | None:
    """``word`` inflected to ``tag``; None for a comparison form the word does not have
    (no "subjectest" from "subject")."""
    forms = lemminflect.getInflection(word, tag=tag, inflect_oov=tag not in _DEGREE_TAGS)
    return forms[0] if forms else None


def inflect_variant(variant: Variant, tag: str | None, upos: str) -> str | None:
    """Inflect the head of ``variant`` (first token of a verb phrase, last of a noun phrase)."""
    if not tag:
        return variant.text
    words = variant.text.split(" ")
    head = 0 if upos == "VERB" else len(words) - 1
    form = _inflect(words[head], tag)
    if form is None:
        return None
    words[head] = form
    return " ".join(words)


@lru_cache(maxsize=400_000)
def _lemma_tags(word: str) -> tuple[tuple[str, str, str], ...]:
    """(upos, lemma, tag) readings of an inflected word: 'said' -> (('VERB', 'say', 'VBD'), ...)."""
    readings = []
    for upos, lemmas in lemminflect.getAllLemmas(word).items():
        for lemma in lemmas:
            if lemma == word:
                continue
            for tag, forms in lemminflect.getAllInflections(lemma, upos=upos).items():
                if word in forms:
                    readings.append((upos, lemma, tag))
                    break
    return tuple(readings)


class Spinner:
    """Spins sentences with a merged ``Lexicon`` according to a ``SpinnerConfig``."""

    def __init__(self, lexicon: Lexicon, config: SpinnerConfig | None = None):
        self.lexicon = lexicon
        self.config = config or SpinnerConfig()
        self.max_tokens = 1
        # key -> [(variant, tag, upos)], per source, for multiword keys incl. inflected forms
        self._phrases: dict[str, list[tuple[Variant, str | None, str]]] = {}
        self._build_phrase_index()
        self._starts = {key.split(" ", 1)[0].lower() for key in self._phrases}
        self._word_cache: dict[str, list[tuple[Variant, str | None, str]]] = {}
        self._engine_cache: dict[str, dict] = {}

    # ------------------------------------------------------------ indexing
    def _build_phrase_index(self) -> None:
        for table in self.lexicon.entries.values():
            for key, variants in table.items():
                n = key.count(" ") + 1
                if n == 1 or n > MAX_PHRASE_TOKENS:
                    continue
                self.max_tokens = max(self.max_tokens, n)
                for v in variants:
                    self._phrases.setdefault(key, []).append((v, None, v.pos))
                    if v.pos in ("VERB", "NOUN"):
                        self._index_inflections(key, v)

    def _index_inflections(self, key: str, variant: Variant) -> None:
        words = key.split(" ")
        head = 0 if variant.pos == "VERB" else len(words) - 1
        for tag, forms in lemminflect.getAllInflections(words[head], upos=variant.pos).items():
            for form in forms:
                if form != words[head]:
                    inflected = " ".join(words[:head] + [form] + words[head + 1 :])
                    self._phrases.setdefault(inflected, []).append((variant, tag, variant.pos))

    def _word_options(self, word: str) -> list[tuple[Variant, str | None, str]]:
        """Variants for one lower-cased word: direct entries, then entries of its lemma."""
        cached = self._word_cache.get(word)
        if cached is not None:
            return cached
        options: list[tuple[Variant, str | None, str]] = []
        for source, table in self.lexicon.entries.items():
            if source in THESAURI and word in STOPWORDS:
                continue
            for v in table.get(word, ()):
                options.append((v, None, v.pos))
        for upos, lemma, tag in _lemma_tags(word) if word not in STOPWORDS else ():
            for table in self.lexicon.entries.values():
                for v in table.get(lemma, ()):
                    # seed entries without a pos match their exact form only
                    if v.source == "seed" and not v.pos:
                        continue
                    if v.kind in ("word", "compound", "idiom") and (not v.pos or v.pos == upos):
                        options.append((v, tag, upos))
        self._word_cache[word] = options
        return options

    # ------------------------------------------------------------ spinning
    def _grouped(self, engine: EngineConfig, cache_key: tuple, options) -> tuple | None:
        """Options of one match, filtered to the engine's sources and grouped by source:
        ``(sources, weights, {source: [(variant, tag, upos)]})``, cached per engine."""
        cache = self._engine_cache.setdefault(engine.name, {})
        if cache_key in cache:
            return cache[cache_key]
        by_source: dict[str, list] = {}
        for o in options:
            if engine.weights.get(o[0].source, 0) > 0:
                by_source.setdefault(o[0].source, []).append(o)
        grouped = None
        if by_source:
            sources = sorted(by_source)
            grouped = (sources, [engine.weights[src] for src in sources], by_source)
        cache[cache_key] = grouped
        return grouped

    def match(self, text: str, tokens, lower: list[str], i: int, engine: EngineConfig,
              rng: random.Random | None, protected: set[int], spin_names: bool | None = None):
        """``(n_tokens, grouped_options)`` of the longest lexicon match starting at token ``i``.

        A capitalised word inside a sentence is spun word by word only now and then (chance
        ``engine.name_spin_prob``, drawn from ``rng``); ``spin_names`` fixes that draw instead."""
        longest = min(self.max_tokens, len(tokens) - i) if lower[i] in self._starts else 1
        for n in range(longest, 1, -1):
            if protected and any(j in protected for j in range(i, i + n)):
                continue
            key = " ".join(lower[i : i + n])
            cased = " ".join(text[a:b] for a, b in tokens[i : i + n])
            if cased.isupper():
                continue
            options = self._phrases.get(key, [])
            if cased != key:  # names are indexed with their capitals
                options = options + self._phrases.get(cased, [])
            grouped = self._grouped(engine, ("p", cased), options) if options else None
            if grouped:
                return n, grouped
        word = text[tokens[i][0] : tokens[i][1]]
        if not word[0].isalpha() or (len(word) > 1 and word.isupper()):
            numbers = [o for o in self._phrases_exact(word) if o[0].kind == "number"]
            return (1, self._grouped(engine, ("n", word), numbers)) if numbers else None
        initial = i == 0 or lower[i - 1] in _SENTENCE_OPENERS
        if spin_names is None and word[0].isupper() and not initial:
            spin_names = rng.random() < engine.name_spin_prob
        if word[0].isupper() and not initial and not spin_names:
            names = [o for o in self._phrases_exact(word, cased=True) if o[0].kind == "name"]
            grouped = self._grouped(engine, ("c", word), names) if names else None  # names: only now and then word by word
        else:
            grouped = self._grouped(engine, ("w", word), self._word_options(lower[i]) + [
                o for o in self._phrases_exact(word, cased=True) if o[0].kind == "name"])
        return (1, grouped) if grouped else None

    def _phrases_exact(self, word: str, cased: bool = False):
        seed = self.lexicon.entries.get("seed", {})
        return [(v, None, v.pos) for v in seed.get(word if cased else word.lower(), ())]

    @staticmethod
    def _protected_tokens(text: str, tokens: list[tuple[int, int]]) -> set[int]:
        spans = [m.span() for m in _QUOTED.finditer(text)]
        return {i for i, (s, e) in enumerate(tokens) if any(a <= s and e <= b for a, b in spans)}

    def spin(self, text: str, rng: random.Random, rate: float, engine: EngineConfig | None = None):
        """Spin about ``rate`` of the words of ``text``. Returns ``(spun, edits)``.

        Positions are visited in a seeded random order; at each, the longest match is taken
        unless it overlaps an earlier swap; this stops once ``rate`` of the words are covered."""
        engine = engine or self.config.engines[0]
        tokens = [m.span() for m in WORD_RE.finditer(text)]
        lower = [text[s:e].lower() for s, e in tokens]
        n_words = sum(1 for s, e in tokens if text[s].isalnum())
        target = max(1, round(rate * n_words)) if n_words else 0
        protected = self._protected_tokens(text, tokens) if self.config.protect_quotes else set()
        order = list(range(len(tokens)))
        rng.shuffle(order)
        used = bytearray(len(tokens))
        taken: list[SpinEdit] = []
        covered = 0
        for i in order:
            if covered >= target:
                break
            if used[i] or i in protected:
                continue
            found = self.match(text, tokens, lower, i, engine, rng, protected)
            if not found:
                continue
            n, grouped = found
            if any(used[i : i + n]):
                continue
            start, end = tokens[i][0], tokens[i + n - 1][1]
            original = text[start:end]
            replacement, source = self._choose(original, grouped, rng)
            if replacement is None:
                continue
            used[i : i + n] = b"\x01" * n
            covered += n
            taken.append(SpinEdit(start, end, original, replacement, source))
        taken.sort(key=lambda ed: ed.start)
        return apply_edits(text, taken), taken

    def _choose(self, original: str, grouped, rng: random.Random):
        sources, weights, by_source = grouped
        source = rng.choices(sources, weights)[0] if len(sources) > 1 else sources[0]
        return render(original, *rng.choice(by_source[source])), source

    def candidates(self, text: str, tokens, lower: list[str], i: int, engine: EngineConfig):
        """Every swap the spinner could make at token ``i`` with ``engine`` (whatever the random
        draws): ``{(n_tokens, replacement, source)}``. The channel-coverage measure uses it."""
        found = set()
        for spin_names in (False, True):
            match = self.match(text, tokens, lower, i, engine, None, set(), spin_names)
            if not match:
                continue
            n, (_, _, by_source) = match
            original = text[tokens[i][0] : tokens[i + n - 1][1]]
            for source, options in by_source.items():
                for option in options:
                    replacement = render(original, *option)
                    if replacement is not None:
                        found.add((n, replacement, source))
        return found

    def spin_example(self, text: str, *key: object):
        """Spin one corpus sentence reproducibly. Returns ``(spun, edits, engine_name, rate)``;
        a share ``unspun_share`` of examples comes back unchanged (engine ``"none"``)."""
        rng = example_rng(self.config.seed, *key)
        if rng.random() < self.config.unspun_share:
            return text, [], "none", 0.0
        engine = rng.choice(self.config.engines)
        rate = rng.uniform(engine.rate_min, engine.rate_max)
        spun, edits = self.spin(text, rng, rate, engine)
        return spun, edits, engine.name, rate


def render(original: str, variant: Variant, tag: str | None, upos: str) -> str | None:
    """The text that replaces ``original``: ``variant`` inflected to ``tag``, with the first
    letter's capital copied; None when it cannot be inflected or would change nothing."""
    replacement = inflect_variant(variant, tag, upos)
    if replacement is None:
        return None
    if original[:1].isupper() and replacement[:1].islower():
        replacement = replacement[:1].upper() + replacement[1:]
    if replacement == original or not replacement.strip():
        return None
    return replacement


def apply_edits(text: str, edits: list[SpinEdit]) -> str:
    """Splice sorted, non-overlapping ``edits`` into ``text``."""
    out, last = [], 0
    for ed in edits:
        out.append(text[last : ed.start])
        out.append(ed.replacement)
        last = ed.end
    out.append(text[last:])
    return "".join(out)
