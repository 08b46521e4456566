"""The synthetic spinner: sense-blind synonym and phrase swaps, like the article spinners of
content farms, with every swap recorded as an edit.

    >>> spinner = Spinner(lexicon, SpinnerConfig(seed=1))
    >>> spinner.spin("The war killed at least 15 people.", random.Random(0), rate=0.5)
    ('The struggle murdered not less than 15 individuals.',
     [Edit(offset=4, length=3, original='war', replacement='struggle', confidence=1.0), ...])  # .source 'seed'

How a sentence is spun:
1. tokenise (``rewrite.text.WORD_RE``) and find, at every token, the longest lexicon phrase that
   starts there (inflected forms included: "came ahead of" matches "come ahead of");
2. shuffle the candidates (seeded) and take non-overlapping ones until ``rate`` of the words
   are covered;
3. for each, pick a source by the engine's weights, then a variant, inflect it to the matched
   form with ``lemminflect``, copy the capitalisation of the first letter, and splice it in
   (each swap is a ``rewrite.edits.Edit`` with confidence 1 and its lexicon source, and the spun
   text is ``rewrite.edits.apply_edits`` of them).
Grammar is not repaired afterwards ("a" before a vowel stays "a"), quotes are spun unless
``protect_quotes`` is set, ALL-CAPS words and words with digits are left alone (digits are
spun only by the seed table's number entries).
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from bisect import bisect
from functools import lru_cache
from itertools import accumulate, groupby
from operator import attrgetter

import lemminflect

from rewrite.edits import Edit, apply_edits
from rewrite.facts import CALENDAR, FILLERS, TENS, TITLES, persons, quantity_words, units
from rewrite.text import WORD_RE, quote_spans

from .errors import ConfigError
from .flags import setting
from .lexicon import Lexicon, Variant
from .rules import SOURCE as RULES

MAX_PHRASE_TOKENS = 5
THESAURI = frozenset({"moby", "mythes", "ppdb"})
# The sources the team wrote (seeds/spin_phrases.tsv and training/rules.py): their entries carry
# their own part of speech and names, so the checks meant for borrowed lexicons pass them.
OWN_SOURCES = frozenset({"seed", RULES})
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
# Function words a thesaurus may put in place of a function word (closed classes of English:
# prepositions, conjunctions, connective adverbs, modals, determiners, pronouns).
FUNCTION_WORDS = STOPWORDS | frozenset(
    """within inside outside across along alongside among amongst around before after behind below
    beneath beside besides between beyond during except inside like near past since through
    throughout till toward towards until upon via whether while whilst although though unless
    whereas because however nevertheless nonetheless still yet therefore thus hence moreover
    furthermore besides otherwise instead rather even perhaps maybe already likewise anyway
    indeed certainly surely quite fairly pretty rather almost nearly merely simply just only
    several many much little less least enough either neither someone something anyone
    anything everyone everything nobody nothing one ones another whoever whatever""".split()
)
_CONJUNCTIONS = frozenset({"and", "or"})
# The facts no swap may change are defined in rewrite/facts.py, shared with the restorer's guard:
# quantities ("million" -> "billion"; only the rules' number swaps, "four" -> "4", touch them),
# personal pronouns ("he can" -> "it can"), units ("15 days" -> "15 years"), dates and names.


def keeps_facts(original: str, variant: Variant) -> bool:
    """``keeps_quantities``, the same personal pronouns on both sides, and no name or unit brought in."""
    return (keeps_quantities(original, variant) and persons(original) == persons(variant.text)
            and not adds_names(original, variant) and not adds_units(original, variant))


def adds_units(original: str, variant: Variant) -> bool:
    """True for a variant from a lexicon we did not write with a unit the original lacks
    ("year" -> "hour", "months" -> "fiscal years"). The seed table's are ours ("year" -> "12 months")."""
    return variant.source not in OWN_SOURCES and not units(variant.text) <= units(original)


def adds_names(original: str, variant: Variant) -> bool:
    """True for a variant from a lexicon we did not write that holds a capitalised word the
    original lacks. MyThes lists people under their surnames and states under their official names
    ("morrison" -> "Jim Morrison", "nigeria" -> "Federal Republic of Nigeria"): a swap to one
    invents a given name, which the restorer would then learn to delete. The seed table's names
    ("United States" -> "Joined States") are ours and keep theirs."""
    if variant.source in OWN_SOURCES or variant.text.islower():  # most variants: a fast exit
        return False
    have = original.lower().split()
    return any(w[:1].isupper() and w.lower() not in have for w in variant.text.split())


def keeps_quantities(original: str, variant: Variant) -> bool:
    """False for a swap that adds, drops or changes a quantity (rules' number swaps aside):
    "twice" -> "two times" keeps one, "twice" -> "three times" or "million" -> "billion" does not."""
    if variant.kind == "number":
        return True
    return quantity_words(original) == quantity_words(variant.text)


_SENTENCE_OPENERS = frozenset({".", "!", "?", "“", '"', ":", "(", "‘"})


# Source weights of the "mixed" engine: the chance that a draw from each source, where it offers
# a swap, is the swap real spinning sites made (`unspin channel-coverage --json`, key
# "source_weights", on ../shared/eval/real_dev: rules 0.72, seed 0.197, ppdb 0.073, mythes 0.027,
# meteor 0.0135, moby 0.0087). Only these six numbers are kept, none of the swaps.
LEARNED_WEIGHTS = {"rules": 1.0, "seed": 0.27, "ppdb": 0.10, "mythes": 0.038, "meteor": 0.019, "moby": 0.012}


@dataclasses.dataclass
class EngineConfig:
    """One spinner 'engine': a mix of lexicon sources and a spread of spin rates."""

    name: str = "mixed"
    weights: dict[str, float] = dataclasses.field(
        default_factory=lambda: dict(LEARNED_WEIGHTS)
    )
    rate_min: float = 0.05
    rate_max: float = 0.30
    name_spin_prob: float = 0.5  # chance a capitalised word inside a name (not a person's) is spun
    shorter_match_prob: float = 0.25  # chance a shorter match is taken where a longer one starts
    reorder_prob: float = 0.1  # chance "A and B" may become "B and A" where it occurs
    filler_prob: float = 0.03  # chance a swapped verb gets a filler before it ("actually offered")

    def __post_init__(self) -> None:
        if not 0 <= self.rate_min <= self.rate_max <= 1:
            raise ConfigError(f"engine {self.name}: need 0 <= rate_min <= rate_max <= 1")
        for field in ("name_spin_prob", "shorter_match_prob", "reorder_prob", "filler_prob"):
            if not 0 <= getattr(self, field) <= 1:
                raise ConfigError(f"engine {self.name}: {field} must lie in [0, 1]")
        if not self.weights or min(self.weights.values()) < 0 or sum(self.weights.values()) <= 0:
            raise ConfigError(f"engine {self.name}: weights must be non-negative with a positive sum")


def default_engines() -> list[EngineConfig]:
    """Three channels: the mix real spinners make (learned weights), a thesaurus-heavy word
    spinner, a phrase-heavy one."""
    return [
        EngineConfig("mixed", dict(LEARNED_WEIGHTS)),
        EngineConfig("thesaurus", {"seed": 1.0, "moby": 2.0, "mythes": 2.0, "ppdb": 2.0, "rules": 0.5}, 0.08, 0.35, 0.5),
        EngineConfig("phrasal", {"seed": 4.0, "meteor": 3.0, "mythes": 0.5, "rules": 1.0}, 0.05, 0.25, 0.3),
    ]


@dataclasses.dataclass
class SpinnerConfig:
    """Spinner settings; ``seed`` makes every example's spin reproducible."""

    engines: list[EngineConfig] = dataclasses.field(default_factory=default_engines)
    unspun_share: float = setting(0.15, "Share of examples left unspun.")
    protect_quotes: bool = setting(False, "Never spin inside quotation marks (overrides --quote-spin-share).")
    quote_spin_share: float = setting(0.5, "Share of documents spun inside quotation marks too (as real "
                                      "spinning sites do).")
    seed: int = 13  # set by the dataset builder (its seed, or spin_seed)

    def __post_init__(self) -> None:
        self.engines = [e if isinstance(e, EngineConfig) else EngineConfig(**e) for e in self.engines]
        if not self.engines:
            raise ConfigError("configure at least one spinner engine")
        if not 0 <= self.unspun_share <= 1:
            raise ConfigError("unspun_share must lie in [0, 1]")
        if not 0 <= self.quote_spin_share <= 1:
            raise ConfigError("quote_spin_share must lie in [0, 1]")


def example_rng(seed: int, *key: object) -> random.Random:
    """A generator seeded by ``(seed, *key)``: stable across processes and runs."""
    digest = hashlib.blake2b(repr((seed, *key)).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "little"))


_SOURCE = attrgetter("source")
_LEMMA_KINDS = frozenset({"word", "compound", "idiom"})
_DEGREE_TAGS = frozenset({"JJR", "JJS", "RBR", "RBS"})


@lru_cache(maxsize=200_000)
def _inflect(word: str, tag: str) -> str | None:
    """``word`` inflected to ``tag``; None for a comparison form the word does not have
    (no "subjectest" from "subject")."""
    forms = lemminflect.getInflection(word, tag=tag, inflect_oov=tag not in _DEGREE_TAGS)
    return forms[0] if forms else None


@lru_cache(maxsize=200_000)
def _lemma(word: str, upos: str) -> str:
    """The lemma a variant is inflected from: a thesaurus may list an inflected form ("deepened"),
    which inflected again gives "deepenedded"."""
    lemmas = lemminflect.getLemma(word, upos=upos, lemmatize_oov=False) if upos else ()
    return lemmas[0] if lemmas else word


def inflect_variant(variant: Variant, tag: str | None, upos: str) -> str | None:
    """Inflect the head of ``variant`` (first token of a verb phrase, last of a noun phrase)."""
    if not tag:
        return variant.text
    words = variant.text.split(" ")
    head = 0 if upos == "VERB" else len(words) - 1
    form = _inflect(_lemma(words[head], upos), tag)
    if form is None:
        return None
    words[head] = form
    return " ".join(words)


def _load_lemminflect() -> None:
    """Load lemminflect's tables now (it reads them on first use): a spinner made before the
    builder forks its workers then shares them instead of each worker reading them again."""
    lemminflect.getAllLemmas("said")
    lemminflect.getInflection("say", tag="VBD")
    lemminflect.getInflection("blorfed", tag="VBD", inflect_oov=True)


@lru_cache(maxsize=100_000)
def _inflections(lemma: str, upos: str) -> dict[str, tuple[str, ...]]:
    """``lemminflect.getAllInflections`` (which deep-copies its tables on every call), once per lemma."""
    return lemminflect.getAllInflections(lemma, upos=upos)


@lru_cache(maxsize=400_000)
def lemma_readings(word: str) -> tuple[tuple[str, str, str], ...]:
    """(upos, lemma, tag) readings of an inflected word: 'said' -> (('VERB', 'say', 'VBD'), ...)."""
    readings = []
    for upos, lemmas in lemminflect.getAllLemmas(word).items():
        for lemma in lemmas:
            if lemma == word:
                continue
            for tag, forms in _inflections(lemma, upos).items():
                if word in forms:
                    readings.append((upos, lemma, tag))
                    break
    return tuple(readings)


@lru_cache(maxsize=100_000)
def _common_word(word: str) -> bool:
    """``word`` is a common English word (lemminflect has a lemma for it): "leader" is, "friedrich" is not."""
    return bool(lemminflect.getAllLemmas(word))


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
        self._word_cache: dict[str, dict[str, list[tuple[Variant, str | None, str]]]] = {}
        self._lemma_cache: dict[tuple[str, str], dict[str, list[Variant]]] = {}
        self._engine_cache: dict[str, dict] = {}
        self._source_groups: dict[tuple, dict[str, list]] = {}
        self._known_cache: dict[str, bool] = {}
        self._quote_draws: dict[tuple, bool] = {}
        self._last_text: tuple | None = None
        _load_lemminflect()

    # ------------------------------------------------------------ indexing
    def _build_phrase_index(self) -> None:
        for table in self.lexicon.entries.values():
            for key, variants in table.items():
                n = key.count(" ") + 1
                if n == 1 or n > MAX_PHRASE_TOKENS:
                    continue
                self.max_tokens = max(self.max_tokens, n)
                for v in variants:
                    if not keeps_facts(key, v):
                        continue
                    self._phrases.setdefault(key, []).append((v, None, v.pos))
                    if v.pos in ("VERB", "NOUN"):
                        self._index_inflections(key, v)

    def _index_inflections(self, key: str, variant: Variant) -> None:
        words = key.split(" ")
        head = 0 if variant.pos == "VERB" else len(words) - 1
        for tag, forms in _inflections(words[head], variant.pos).items():
            for form in forms:
                if form != words[head]:
                    inflected = " ".join(words[:head] + [form] + words[head + 1 :])
                    self._phrases.setdefault(inflected, []).append((variant, tag, variant.pos))

    def _word_options(self, word: str) -> dict[str, list[tuple[Variant, str | None, str]]]:
        """Variants for one lower-cased word, by source: ``{source: [(variant, tag, upos)]}``, in
        each source the direct entries first, then the entries of its lemmas (reading by reading).

        Cached per word; the entries of a lemma are filtered once for all its forms ("said",
        "says" and "saying" share the lemma "say" and its hundreds of thesaurus variants)."""
        cached = self._word_cache.get(word)
        if cached is not None:
            return cached
        options: dict[str, list[tuple[Variant, str | None, str]]] = {}
        stop = word in STOPWORDS
        for source, table in self.lexicon.entries.items():
            variants = table.get(word)
            if not variants:
                continue
            # a thesaurus may swap a function word only for function words ("but" -> "however")
            function_only = stop and source in THESAURI
            kept = [v for v in variants
                    if not (function_only and not _function_words(v.text)) and keeps_facts(word, v)]
            for source_of, run in groupby(kept, _SOURCE):  # one run: a table holds its own source
                options.setdefault(source_of, []).extend([(v, None, v.pos) for v in run])
        for upos, lemma, tag in lemma_readings(word) if not stop else ():
            for source, variants in self._lemma_variants(lemma, upos).items():
                options.setdefault(source, []).extend([(v, tag, upos) for v in variants])
        self._word_cache[word] = options
        return options

    def _lemma_variants(self, lemma: str, upos: str) -> dict[str, list[Variant]]:
        """The variants a form of ``lemma`` read as ``upos`` may take, by source (cached)."""
        cached = self._lemma_cache.get((lemma, upos))
        if cached is not None:
            return cached
        kept: dict[str, list[Variant]] = {}
        for table in self.lexicon.entries.values():
            # seed entries without a pos match their exact form only
            variants = [v for v in table.get(lemma, ()) if v.kind in _LEMMA_KINDS and (
                v.pos == upos if v.pos else v.source not in OWN_SOURCES) and keeps_facts(lemma, v)]
            for source, run in groupby(variants, _SOURCE):
                kept.setdefault(source, []).extend(run)
        self._lemma_cache[(lemma, upos)] = kept
        return kept

    # ------------------------------------------------------------ spinning
    def _grouped(self, engine: EngineConfig, cache_key: tuple, make_groups) -> tuple | None:
        """Options of one match, filtered to the engine's sources and grouped by source:
        ``(sources, cumulative weights, {source: [(variant, tag, upos)]})``, cached per engine
        under ``cache_key``; ``make_groups()`` gives every option by source (called only when
        not cached; ``_by_source`` groups a list)."""
        cache = self._engine_cache.get(engine.name)
        if cache is None:
            cache = self._engine_cache[engine.name] = {}
        elif cache_key in cache:
            return cache[cache_key]
        # the options grouped by source once for every engine; an engine keeps its sources' groups
        everything = self._source_groups.get(cache_key)
        if everything is None:
            everything = self._source_groups[cache_key] = make_groups()
        by_source = {src: group for src, group in everything.items() if engine.weights.get(src, 0) > 0}
        grouped = None
        if by_source:
            sources = sorted(by_source)
            # what random.choices(sources, weights) accumulates on every call
            grouped = (sources, list(accumulate(engine.weights[src] for src in sources)), by_source)
        cache[cache_key] = grouped
        return grouped

    def match(self, text: str, tokens, lower: list[str], i: int, engine: EngineConfig,
              rng: random.Random, protected: set[int], words: list[str] | None = None):
        """``(n_tokens, grouped_options)`` of the match taken at token ``i``: the longest, or now
        and then (``engine.shorter_match_prob``) a shorter one inside it ("in seeking" ->
        "in in search of" swaps a phrase inside a longer one)."""
        capital = tokens[i][1] > tokens[i][0] and text[tokens[i][0]].isupper()
        spin_names = capital and rng.random() < engine.name_spin_prob
        reorder = i + 2 < len(lower) and lower[i + 1] in _CONJUNCTIONS and rng.random() < engine.reorder_prob
        shorter = rng.random() < engine.shorter_match_prob
        found = self.matches(text, tokens, lower, i, engine, protected, spin_names, reorder, first_only=not shorter,
                             words=words)
        if shorter and len(found) > 1:
            return rng.choice(found[1:])
        return found[0] if found else None

    def matches(self, text: str, tokens, lower: list[str], i: int, engine: EngineConfig,
                protected: set[int], spin_names: bool, reorder: bool,
                first_only: bool = False, words: list[str] | None = None) -> list[tuple[int, tuple]]:
        """Every ``(n_tokens, grouped_options)`` starting at token ``i``, longest first (only the
        longest with ``first_only``). ``words``: the tokens' text (``text[a:b]`` of each token
        span), when the caller has them.

        ``spin_names``: a capitalised word inside a sentence may be spun word by word (never one
        that looks like part of a person's name); ``reorder``: "A and B" may become "B and A"."""
        found = []
        longest = min(self.max_tokens, len(tokens) - i) if lower[i] in self._starts else 1
        if longest > 1 and words is None:
            words = [text[a:b] for a, b in tokens]
        for n in range(longest, 1, -1):
            if protected and not protected.isdisjoint(range(i, i + n)):
                continue
            key = " ".join(lower[i : i + n])
            cased = " ".join(words[i : i + n])
            if cased.isupper():
                continue
            if key not in self._phrases and cased not in self._phrases:
                continue
            # names are indexed with their capitals
            grouped = self._grouped(engine, ("p", cased), lambda: _by_source(_keeping_names(
                cased, self._phrases.get(key, []) + (self._phrases.get(cased, []) if cased != key else []))))
            if grouped:
                found.append((n, grouped))
                if first_only:
                    break
        if reorder:
            grouped = self._reorder(text, tokens, lower, i, engine, protected)
            if grouped:
                found.append((3, grouped))
                found.sort(key=lambda m: -m[0])
        if first_only and found:
            return found[:1]
        word = text[tokens[i][0] : tokens[i][1]]
        if i > 1 and lower[i - 1] == "-" and lower[i - 2] in TENS:
            return found  # "one" in "twenty-one" is spun with the whole number only
        if not word[0].isalpha() or (len(word) > 1 and word.isupper()):
            grouped = self._grouped(engine, ("n", word), lambda: _by_source(
                o for o in self._phrases_exact(word) if o[0].kind == "number"))
        elif word[0].isupper() and (
            lower[i] in CALENDAR
            or not _sentence_initial(lower, i) and (not spin_names or self._personal_name(text, tokens, lower, i))
        ):
            grouped = self._grouped(engine, ("c", word), lambda: _by_source(
                o for o in self._phrases_exact(word, cased=True) if o[0].kind == "name"))
        else:
            grouped = self._grouped(engine, ("w", word), lambda: _merged(self._word_options(lower[i]), [
                o for o in self._phrases_exact(word, cased=True) if o[0].kind == "name"]))
            if grouped is None and lower[i][-2:] in ("'s", "’s") and len(word) > 2:
                grouped = self._possessive(engine, word)
        if grouped:
            found.append((1, grouped))
        return found

    def _reorder(self, text, tokens, lower, i, engine, protected):
        """"in and out" -> "out and in": two plain lower-case words around "and"/"or"."""
        if engine.weights.get(RULES, 0) <= 0 or any(j in protected for j in (i, i + 1, i + 2)):
            return None
        a, b = lower[i], lower[i + 2]
        words = (text[tokens[i][0] : tokens[i][1]], text[tokens[i + 2][0] : tokens[i + 2][1]])
        if a == b or not all(w.isalpha() and w.islower() for w in words) or a in STOPWORDS or b in STOPWORDS:
            return None
        swapped = f"{words[1]} {text[tokens[i + 1][0] : tokens[i + 1][1]]} {words[0]}"
        variant = Variant(swapped, RULES, "phrase", "")
        return [RULES], [engine.weights[RULES]], {RULES: [(variant, None, "")]}

    def _possessive(self, engine: EngineConfig, word: str):
        """"party's" -> "celebration's", "court's" -> "court docket's": the invariant swaps of the
        word before the "'s", a multiword one taking the "'s" on its last word."""
        stem, suffix = word[:-2], word[-2:]
        return self._grouped(engine, ("s", word), lambda: _by_source(
            (Variant(v.text + suffix, v.source, v.kind, v.pos), None, "")
            for group in self._word_options(stem.lower()).values() for v, tag, _ in group if tag is None))

    def _personal_name(self, text: str, tokens, lower: list[str], i: int) -> bool:
        """A capitalised word that belongs to a person's name, kept as it is: after a title
        ("President Trump", "Dr. Rice"), after a capitalised word no lexicon knows, a given
        name ("Condoleezza Rice"), or, when it is no common English word itself, before one, a
        surname ("Friedrich Dotzauer" never becomes "Frederick Dotzauer"). "Minority Leader Kevin
        McCarthy" still spins "Leader", a common word."""
        if i > 0 and lower[i - 1] in TITLES:
            return True
        if i > 1 and lower[i - 1] == "." and lower[i - 2] in TITLES:
            return True
        if i > 0 and self._unknown_capitalised(text, tokens, lower, i - 1):
            return True
        return i + 1 < len(tokens) and not _common_word(lower[i]) and self._unknown_capitalised(text, tokens, lower, i + 1)

    def _unknown_capitalised(self, text: str, tokens, lower: list[str], j: int) -> bool:
        """Token ``j`` is a capitalised word no lexicon knows (a given name or a surname)."""
        word = text[tokens[j][0] : tokens[j][1]]
        return word[0].isupper() and word.isalpha() and lower[j] not in FUNCTION_WORDS and not self._known(lower[j])

    def _known(self, word: str) -> bool:
        known = self._known_cache.get(word)
        if known is None:
            known = any(word in table for table in self.lexicon.entries.values()) or bool(lemma_readings(word))
            self._known_cache[word] = known
        return known

    def _phrases_exact(self, word: str, cased: bool = False):
        seed = self.lexicon.entries.get("seed", {})
        return [(v, None, v.pos) for v in seed.get(word if cased else word.lower(), ())]

    def _tokenised(self, text: str) -> tuple:
        """``(token spans, token texts, lower-cased, number of words)`` of ``text``; the last
        text's are kept, as the builder spins each sentence's copies in a row. Callers only read
        them."""
        if self._last_text is not None and self._last_text[0] == text:
            return self._last_text[1]
        tokens = [m.span() for m in WORD_RE.finditer(text)]
        words = [text[s:e] for s, e in tokens]
        tokenised = (tokens, words, [w.lower() for w in words], sum(1 for w in words if w[0].isalnum()))
        self._last_text = (text, tokenised)
        return tokenised

    @staticmethod
    def _protected_tokens(text: str, tokens: list[tuple[int, int]]) -> set[int]:
        spans = quote_spans(text)
        if not spans:
            return set()
        return {i for i, (s, e) in enumerate(tokens) if any(a <= s and e <= b for a, b in spans)}

    def spin(self, text: str, rng: random.Random, rate: float, engine: EngineConfig | None = None,
             protect_quotes: bool | None = None):
        """Spin about ``rate`` of the words of ``text``. Returns ``(spun, edits)``.

        Positions are visited in a seeded random order; at each, a match is taken unless it
        overlaps an earlier swap; this stops once ``rate`` of the words are covered. Quotes are
        left alone when ``protect_quotes`` (default: the config's ``protect_quotes``)."""
        engine = engine or self.config.engines[0]
        protect = self.config.protect_quotes if protect_quotes is None else protect_quotes
        tokens, words, lower, n_words = self._tokenised(text)
        target = max(1, round(rate * n_words)) if n_words else 0
        protected = self._protected_tokens(text, tokens) if protect else set()
        order = list(range(len(tokens)))
        rng.shuffle(order)
        used = bytearray(len(tokens))
        taken: list[Edit] = []
        covered = 0
        for i in order:
            if covered >= target:
                break
            if used[i] or i in protected:
                continue
            found = self.match(text, tokens, lower, i, engine, rng, protected, words)
            if not found:
                continue
            n, grouped = found
            if any(used[i : i + n]):
                continue
            start, end = tokens[i][0], tokens[i + n - 1][1]
            original = text[start:end]
            replacement, source = self._choose(original, grouped, rng, engine)
            if replacement is None:
                continue
            used[i : i + n] = b"\x01" * n
            covered += n
            taken.append(Edit(start, end - start, original, replacement, 1.0, source))
        taken.sort(key=lambda ed: ed.offset)
        return apply_edits(text, taken), taken

    def _choose(self, original: str, grouped, rng: random.Random, engine: EngineConfig):
        sources, cumulative, by_source = grouped
        # rng.choices(sources, weights)[0], the same draw, without accumulating the weights again
        source = sources[bisect(cumulative, rng.random() * cumulative[-1], 0, len(sources) - 1)] if len(
            sources) > 1 else sources[0]
        option = rng.choice(by_source[source])
        replacement = render(original, *option)
        if replacement and option[2] == "VERB" and original[:1].islower() and rng.random() < engine.filler_prob:
            replacement = f"{rng.choice(FILLERS)} {replacement}"
        return replacement, source

    def candidates(self, text: str, tokens, lower: list[str], i: int, engine: EngineConfig):
        """Every swap the spinner could make at token ``i`` with ``engine`` (whatever the random
        draws): ``{(n_tokens, replacement, source, plain)}``; ``plain`` is False for a verb swap
        with a filler put before it. The channel-coverage measure uses it. (Spinning names word
        by word only adds options, so the draw that allows it covers both.)"""
        found = set()
        reorder = i + 2 < len(lower) and lower[i + 1] in _CONJUNCTIONS
        for n, (_, _, by_source) in self.matches(text, tokens, lower, i, engine, set(), True, reorder):
            original = text[tokens[i][0] : tokens[i + n - 1][1]]
            fillers = original[:1].islower() and engine.filler_prob > 0
            for source, options in by_source.items():
                for option in options:
                    replacement = render(original, *option)
                    if replacement is None:
                        continue
                    found.add((n, replacement, source, True))
                    if fillers and option[2] == "VERB":
                        found.update((n, f"{filler} {replacement}", source, False) for filler in FILLERS)
        return found

    def any_engine(self) -> EngineConfig:
        """One engine that can make every swap any configured engine can (all their sources,
        the highest of each probability): what the coverage measure walks with."""
        engines = self.config.engines
        weights = {src: 1.0 for e in engines for src, w in e.weights.items() if w > 0}
        probs = {f: max(getattr(e, f) for e in engines)
                 for f in ("name_spin_prob", "shorter_match_prob", "reorder_prob", "filler_prob")}
        return EngineConfig("any", weights, 0.0, 1.0, **probs)

    def spin_example(self, text: str, *key: object):
        """Spin one corpus sentence reproducibly. Returns ``(spun, edits, engine_name, rate)``;
        a share ``unspun_share`` of examples comes back unchanged (engine ``"none"``). Whether
        quotes are spun is drawn once per document (the first part of ``key``)."""
        rng = example_rng(self.config.seed, *key)
        if rng.random() < self.config.unspun_share:
            return text, [], "none", 0.0
        engine = rng.choice(self.config.engines)
        rate = rng.uniform(engine.rate_min, engine.rate_max)
        protect = self.config.protect_quotes or self._quotes_protected(key[:1])
        spun, edits = self.spin(text, rng, rate, engine, protect)
        return spun, edits, engine.name, rate


    def _quotes_protected(self, document: tuple) -> bool:
        """Whether this document's quotes are left alone (a seeded draw, kept per document)."""
        key = (self.config.seed, self.config.quote_spin_share, document)
        protect = self._quote_draws.get(key)
        if protect is None:
            protect = self._quote_draws[key] = (
                example_rng(self.config.seed, "quotes", document).random() >= self.config.quote_spin_share)
        return protect


def _sentence_initial(lower: list[str], i: int) -> bool:
    """Token ``i`` starts a sentence (a full stop after a title such as "Dr." does not end one)."""
    if i == 0:
        return True
    return lower[i - 1] in _SENTENCE_OPENERS and not (lower[i - 1] == "." and i > 1 and lower[i - 2] in TITLES)


def _by_source(options) -> dict[str, list]:
    """``[(variant, tag, upos)]`` grouped by the variants' source, each group in the given order."""
    groups: dict[str, list] = {}
    for o in options:
        group = groups.get(o[0].source)
        if group is None:
            groups[o[0].source] = [o]
        else:
            group.append(o)
    return groups


def _merged(groups: dict[str, list], more: list) -> dict[str, list]:
    """``groups`` with the options ``more`` added after each source's own (``groups`` unchanged)."""
    if not more:
        return groups
    merged = dict(groups)
    for source, extra in _by_source(more).items():
        merged[source] = merged.get(source, []) + extra
    return merged


def _keeping_names(cased: str, options: list) -> list:
    """The options of a phrase that keep its names, with their capitals: a capitalised word after
    the first ("on July", "to England") must stay in the rendering ("in July", never "in july" or
    "to Britain"); the seed table's own name entries ("Security Council" -> "Safety Council") may
    change it."""
    names = {w.lower(): w for w in cased.split(" ")[1:] if w[:1].isupper()}
    if not names:
        return options
    kept = []
    for option in options:
        variant = option[0]
        if variant.kind != "name":
            if not names.keys() <= _lower_words(variant.text):
                continue
            text = " ".join(names.get(w.lower(), w) for w in variant.text.split(" "))
            if text != variant.text:
                option = (dataclasses.replace(variant, text=text), option[1], option[2])
        kept.append(option)
    return kept


@lru_cache(maxsize=500_000)  # a phrase's options are checked against every capitalised phrase it follows
def _lower_words(text: str) -> frozenset[str]:
    return frozenset(w.lower() for w in text.split(" "))


def _function_words(text: str) -> bool:
    return all(w in FUNCTION_WORDS for w in text.lower().split())


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
