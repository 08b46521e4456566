"""Facts a faithful rewrite keeps, defined once: numbers, units, dates, pronouns, negation, names;
and what counts as an English word, a filler and an inflection of a word.

Used by the restorer's guard (``rewrite/guard.py``: no edit may change one) and by the synthetic
spinner's own guards (``training/spinner.py``: no swap may change one). Two views of a quantity:

- ``numbers(tokens)``: the values in running text, a number word and its digits alike
  (``["twenty", "-", "one"]`` and ``["21"]`` both give ``Counter({"21": 1})``, ``"2.5 million"``
  is ``"2500000"``, ``"third"`` is ``"#3"``): what the restorer's guard compares;
- ``quantity_words(phrase)``: the quantity words of a lexicon phrase, as digits where they are
  numbers (``"twice a day"`` -> ``{"2"}``, ``"two million"`` -> ``{"2", "million"}``): what the
  spinner compares between a lexicon entry and its variant.

    >>> numbers("at least four thousand".split()) == numbers(["4,000"])
    True
    >>> negations("he did n't go".split()), negations("not less than 15".split())
    (1, 0)
    >>> sorted(pronouns("they told him".split()).elements())
    [('3', 'pl', ''), ('3', 'sg', 'm')]
    >>> same_lemma("held", "hold"), same_lemma("points", "point"), same_lemma("said", "stated")
    (True, True, False)

Nothing here needs more than the standard library (a base install imports it); the word list and
the irregular forms ship beside it in ``rewrite/data/`` (see its README for their sources).
"""

from __future__ import annotations

import gzip
import re
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
WORDS_FILE = DATA / "english_words.txt.gz"
IRREGULAR_FILE = DATA / "irregular_forms.tsv"
INSERTIONS_FILE = DATA / "insertions.tsv"
RARE_IN_CLEAN_TEXT = 10  # a spun form seen fewer times than this in the corpora is a spinner's

# ---------------------------------------------------------------- numbers

SMALL = {w: n for n, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen".split())}
TENS = {w: 10 * n for n, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), 2)}
SCALES = {"hundred": 100, "thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}
ORDINALS = {w: n for n, w in enumerate(
    "zeroth first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth "
    "fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth".split())} | {
    w: 10 * n for n, w in enumerate("twentieth thirtieth fortieth fiftieth sixtieth seventieth eightieth "
                                    "ninetieth".split(), 2)} | {
    "hundredth": 100, "thousandth": 10**3, "millionth": 10**6, "billionth": 10**9}
# Words that carry a quantity of their own: "twice" is "two times" ("once" is left out: it is also
# a conjunction, "once he left" -> "when he left").
MULTIPLES = {"twice": 2, "thrice": 3}
# Counted quantities without a value: "dozens of", "hundreds of"; "dozen" is twelve.
VAGUE_QUANTITIES = frozenset("dozens hundreds thousands millions billions trillions".split())
QUANTITIES = frozenset(SMALL) | frozenset(TENS) | frozenset(SCALES) | VAGUE_QUANTITIES | {"dozen"}
_QUANTITY_OF = {w: str(n) for w, n in {**SMALL, **TENS, **MULTIPLES}.items()}
_QUANTITY_WORDS = QUANTITIES | _QUANTITY_OF.keys()
_NO_QUANTITY: frozenset[str] = frozenset()
_DIGITS_RE = re.compile(r"\d+(?:[.,]\d+)*")
_ORDINAL_DIGITS_RE = re.compile(r"(\d+)(?:st|nd|rd|th)")


@lru_cache(maxsize=None)  # a word's options repeat the same variants thousands of times
def quantity_words(text: str) -> frozenset[str]:
    """The quantity words of a phrase, as digits where they are numbers: ``"twice a day"`` ->
    ``{"2"}``, ``"two million"`` -> ``{"2", "million"}`` (digits themselves are facts no thesaurus
    entry holds, and are not counted). The spinner's check of a lexicon variant."""
    tokens = text.lower().split()
    if _QUANTITY_WORDS.isdisjoint(tokens):  # most phrases: the spinner asks for every variant it sees
        return _NO_QUANTITY
    return frozenset(_QUANTITY_OF.get(t, t) for t in tokens if t in _QUANTITY_WORDS)


def _digits_value(token: str) -> Decimal | None:
    if not _DIGITS_RE.fullmatch(token):
        return None
    try:
        return Decimal(token.replace(",", ""))
    except InvalidOperation:
        return None


def numbers(tokens: Sequence[str]) -> Counter:
    """The numbers of ``WORD_RE`` tokens, by value: a run of number words and digits is one value
    (``"two million"``, ``"2 million"`` and ``"2,000,000"`` are all ``"2000000"``; ``"a million"``
    is a million), an ordinal is ``"#N"`` (``"third"``, ``"3rd"``), ``"twice"`` is ``"2"``,
    ``"dozens"`` counts as itself, and any other token with a digit (``"2020s"``) as itself."""
    low = [t.lower() for t in tokens]
    out: Counter = Counter()
    i = 0
    while i < len(low):
        value, i = _number_at(low, i)
        if value is not None:
            out[value] += 1
    return out


def _number_at(low: list[str], i: int) -> tuple[str | None, int]:
    """The number starting at token ``i`` (or None) and the token after it."""
    t = low[i]
    if t in ORDINALS:
        return f"#{ORDINALS[t]}", i + 1
    ordinal = _ORDINAL_DIGITS_RE.fullmatch(t)
    if ordinal:
        return f"#{int(ordinal.group(1))}", i + 1
    if t in MULTIPLES:
        return str(MULTIPLES[t]), i + 1
    if t in VAGUE_QUANTITIES:
        return t, i + 1
    if t == "dozen":
        return "12", i + 1
    first = _digits_value(t)
    if first is None and t not in SMALL and t not in TENS and t not in SCALES:
        return (t if any(ch.isdigit() for ch in t) else None), i + 1
    total, current = Decimal(0), Decimal(0)
    last = None  # "digits", "word", "tens" or "scale": what the run ended with
    j = i
    while j < len(low):
        t = low[j]
        digits = _digits_value(t)
        if t in SCALES:
            scale = SCALES[t]
            current = current or Decimal(1)
            if scale == 100:
                current *= 100
            else:
                total, current = total + current * scale, Decimal(0)
            last = "scale"
        elif last is None and digits is not None:
            current, last = digits, "digits"
        elif t in TENS and last in (None, "scale"):
            current, last = current + TENS[t], "tens"
        elif t in SMALL and (last in (None, "scale") or last == "tens" and 0 < SMALL[t] < 10):
            current, last = current + SMALL[t], "word"
        elif t == "-" and last == "tens" and j + 1 < len(low) and (0 < SMALL.get(low[j + 1], 0) < 10
                                                                    or low[j + 1] in ORDINALS):
            pass
        elif t in ORDINALS and last == "tens" and 0 < ORDINALS[t] < 10:  # "twenty-first"
            return f"#{int(total + current + ORDINALS[t])}", j + 1
        elif t == "and" and last == "scale" and j + 1 < len(low) and (low[j + 1] in SMALL or low[j + 1] in TENS):
            pass
        else:
            break
        j += 1
    return format((total + current).normalize(), "f"), j


# ---------------------------------------------------------------- units and dates

# "stays of up to 15 days" must not come out "15 years".
UNITS = frozenset(
    """second minute hour day week fortnight month year decade century millennium inch foot yard
    mile meter kilometer centimeter millimeter gram kilogram pound ounce ton liter gallon acre
    hectare percent dollar cent euro""".split()
)
UNIT_FORMS = {form: unit for unit in UNITS for form in (unit, unit + "s")} | {
    "centuries": "century", "millennia": "millennium", "feet": "foot", "inches": "inch", "metre": "meter",
    "metres": "meter", "kilometre": "kilometer", "kilometres": "kilometer", "centimetre": "centimeter",
    "centimetres": "centimeter", "millimetre": "millimeter", "millimetres": "millimeter", "litre": "liter",
    "litres": "liter", "tonne": "ton", "tonnes": "ton", "hourly": "hour", "daily": "day", "weekly": "week",
    "monthly": "month", "yearly": "year", "annual": "year", "annually": "year",  # "daily" -> "day by day"
}
UNIT_SYMBOLS = {"%": "percent", "$": "dollar", "€": "euro", "£": "pound"}


@lru_cache(maxsize=None)  # as for quantity_words: the same variants come up thousands of times
def units(text: str) -> frozenset[str]:
    """The units of a lexicon phrase, singular: ``"twenty-four hour periods"`` -> ``{"hour"}``."""
    return frozenset(UNIT_FORMS[t] for t in text.lower().replace("-", " ").split() if t in UNIT_FORMS)


# Durations one unit holds: "12 months" is a year (spinners write "this 12 months" for "this year").
DURATIONS = {("12", "month"): "year", ("24", "hour"): "day", ("7", "day"): "week", ("60", "minute"): "hour",
             ("60", "second"): "minute", ("10", "year"): "decade", ("100", "year"): "century", ("2", "week"): "fortnight"}


def measures(tokens: Sequence[str]) -> tuple[Counter, Counter]:
    """``(numbers(tokens), unit_counts(tokens))`` with a number and the unit after it that make one
    larger unit counted as that unit: ``"12 months"`` and ``"twelve months"`` are a ``year``, as
    ``"a year"`` is. Dates aside, the facts of quantity the guard compares."""
    values, units_ = numbers(tokens), unit_counts(tokens)
    low = [t.lower() for t in tokens]
    for k in range(len(low) - 1):
        for n in (1, 2):  # "twelve months", "twenty - four hours" are one number before the unit
            number = numbers(low[k : k + n])
            unit = UNIT_FORMS.get(low[k + n]) if k + n < len(low) else None
            if len(number) == 1 and unit and (next(iter(number)), unit) in DURATIONS and values[next(iter(number))]:
                whole = DURATIONS[(next(iter(number)), unit)]
                values[next(iter(number))] -= 1
                units_[unit] -= 1
                units_[whole] += 1
                break
    return +values, +units_


def unit_counts(tokens: Sequence[str]) -> Counter:
    """The units of ``WORD_RE`` tokens, counted: ``"%"`` and ``"per cent"`` are ``percent``, ``"$"`` a dollar."""
    low = [t.lower() for t in tokens]
    out: Counter = Counter()
    for k, t in enumerate(low):
        if t == "per" and k + 1 < len(low) and low[k + 1] in ("cent", "cents"):
            out["percent"] += 1
        elif t in ("cent", "cents") and k > 0 and low[k - 1] == "per":
            continue
        elif t in UNIT_FORMS or t in UNIT_SYMBOLS:
            out[UNIT_FORMS.get(t) or UNIT_SYMBOLS[t]] += 1
    return out


MONTHS = frozenset("january february march april may june july august september october november december".split())
WEEKDAYS = frozenset("monday tuesday wednesday thursday friday saturday sunday".split())
# Capitalised, these name a date too ("Sept. 3", "Wed.").
DATE_ABBREVIATIONS = {name[:3]: name for name in (*MONTHS, *WEEKDAYS) if name != "may"} | {
    "sept": "september", "tues": "tuesday", "thur": "thursday", "thurs": "thursday"}
RELATIVE_DAYS = frozenset("yesterday today tomorrow tonight".split())
CALENDAR = MONTHS | WEEKDAYS


def dates(tokens: Sequence[str]) -> Counter:
    """Month and weekday names (capitalised; "may" and "march" are words too) and the relative
    days (``today``, ``yesterday``, ...) of ``WORD_RE`` tokens. Years and days of the month are
    digits: ``numbers`` keeps them."""
    out: Counter = Counter()
    for t in tokens:
        low = t.lower()
        if low in RELATIVE_DAYS or t[:1].isupper() and (low in CALENDAR or low in DATE_ABBREVIATIONS):
            out[DATE_ABBREVIATIONS.get(low, low)] += 1  # "Jan" is "January"
    return out


# ---------------------------------------------------------------- who: pronouns

# Personal pronouns by (person, number, gender); a contraction counts by its pronoun ("he'll" is
# "he"). A bare "it" is left out: idioms add or drop it without naming anyone ("when it comes to").
_PRONOUN_GROUPS = {
    ("1", "sg", ""): "i me my mine myself",
    ("1", "pl", ""): "we us our ours ourselves",
    ("2", "", ""): "you your yours yourself",
    ("2", "pl", ""): "yourselves",
    ("3", "sg", "m"): "he him his himself",
    ("3", "sg", "f"): "she her hers herself",
    ("3", "sg", "n"): "its itself",
    ("3", "pl", ""): "they them their theirs themselves",
}
PRONOUN_FEATURES = {word: features for features, words in _PRONOUN_GROUPS.items() for word in words.split()}
PERSONS = frozenset(PRONOUN_FEATURES)


def _pronoun(token: str) -> str | None:
    if len(token) > 1 and token.isupper():  # "US" is a country, not "us"
        return None
    word = token.lower().replace("’", "'").split("'", 1)[0]
    return word if word in PRONOUN_FEATURES else None


def persons(text: str) -> frozenset[str]:
    """The personal pronouns of a phrase, a contraction by its pronoun: ``"he'll pay them"`` ->
    ``{"he", "them"}``. Not cached: the spinner's phrase index asks once for each of millions of variants."""
    return PERSONS.intersection(t.split("'", 1)[0] for t in text.lower().replace("’", "'").split())


def pronouns(tokens: Sequence[str]) -> Counter:
    """``(person, number, gender)`` of each personal pronoun of ``WORD_RE`` tokens: "he" -> "him"
    keeps them, "he" -> "they" or "we" -> "I" does not."""
    return Counter(PRONOUN_FEATURES[w] for w in map(_pronoun, tokens) if w)


# ---------------------------------------------------------------- negation

NEGATIONS = frozenset("not no never nor neither none nobody nothing nowhere cannot".split())
# "not" or "no" before these bounds a quantity ("not less than 15" is "at least 15") or adds
# ("not only"): no negation of the sentence.
_NOT_NEGATING = frozenset("less more fewer greater later earlier only least".split())


def negations(tokens: Sequence[str]) -> int:
    """How many negations ``WORD_RE`` tokens hold: ``not``, ``no``, ``never``, ``n't`` (``didn't``,
    ``does n't``), ``nobody``, ... (``"not less than"``, ``"no more than"``, ``"not only"`` bound
    or add, and do not count)."""
    low = [t.lower().replace("’", "'") for t in tokens]
    count = 0
    for k, t in enumerate(low):
        if t in ("not", "no") and k + 1 < len(low) and low[k + 1] in _NOT_NEGATING:
            continue
        count += t in NEGATIONS or t.endswith("n't")
    return count


# ---------------------------------------------------------------- names

# Titles before a person's name ("President Trump", "Dr. Rice").
TITLES = frozenset(
    """mr mrs ms miss dr sir dame lord lady president vice senator sen rep representative gov
    governor mayor judge justice minister secretary chancellor king queen prince princess pope
    saint st general gen colonel col captain capt sergeant professor prof rev reverend father
    sister brother uncle aunt""".split()
)


def is_capitalised(token: str) -> bool:
    """A capitalised word (a name, unless it only starts a sentence); "I" and "I've" are not one."""
    return token[:1].isupper() and token != "I" and not token.startswith(("I'", "I’"))


@lru_cache(maxsize=1)
def name_spins() -> frozenset[tuple[str, str]]:
    """``(spun, original)`` word runs, lower-cased, that a spinner makes of a part of a name: from
    the multiword ``name`` entries of the team's phrase table (``seeds/spin_phrases.tsv``), the
    words that differ where the rest of the name stays ("White House" -> "White Home" gives
    ``("home", "house")``, "Supreme Court" -> "Supreme Courtroom" ``("courtroom", "court")``).
    A one-word name swapped whole ("Congress" -> "Legislature") is not one: both are names."""
    from difflib import SequenceMatcher

    pairs = set()
    for standard, variant, kind in seed_entries():
        words, spun = standard.lower().split(), variant.lower().split()
        if kind != "name" or len(words) < 2:
            continue
        matcher = SequenceMatcher(a=spun, b=words, autojunk=False)
        if not any(op == "equal" for op, *_ in matcher.get_opcodes()):
            continue
        for op, a1, a2, b1, b2 in matcher.get_opcodes():
            if op == "replace":
                pairs.add((" ".join(spun[a1:a2]), " ".join(words[b1:b2])))
    return frozenset(pairs)


# ---------------------------------------------------------------- what spinners add

# Words spinners put in without meaning anything (training/rules.py inserts the first four after
# an auxiliary or before a verb); dropping one is a restoration, never a loss of content.
FILLERS = ("actually", "really", "truly", "just")
DROPPABLE_FILLERS = frozenset(FILLERS) | frozenset("very quite simply basically certainly definitely indeed".split())
@lru_cache(maxsize=1)
def seed_entries() -> tuple[tuple[str, str, str], ...]:
    """``(standard, variant, kind)`` of every entry of the team's phrase table; none without ``seeds``."""
    try:
        from seeds import SPIN_PHRASES
        lines = SPIN_PHRASES.read_text(encoding="utf-8").splitlines()
    except (ImportError, OSError):
        return ()
    entries = []
    for line in lines:
        parts = line.split("\t")
        if line.startswith("#") or len(parts) < 3:
            continue
        entries += [(parts[0], variant, parts[2]) for variant in parts[1].split("|") if variant]
    return tuple(entries)


@lru_cache(maxsize=1)
def _seed_spins() -> frozenset[tuple[str, str]]:
    return frozenset((variant.lower(), standard.lower()) for standard, variant, kind in seed_entries() if kind != "name")


def known_spin(spun_words: Sequence[str], original_words: Sequence[str]) -> bool:
    """True when ``spun_words`` -> ``original_words`` undoes an entry of the team's phrase table
    that is not a name ("in a single day" -> "overnight", "12 months" -> "year"): entries written
    and checked by hand, whose facts may differ in form. Names have ``name_spins``."""
    return (" ".join(spun_words).lower(), " ".join(original_words).lower()) in _seed_spins()


@lru_cache(maxsize=1)
def seed_insertions() -> frozenset[tuple[str, str]]:
    """``(spun, original)`` phrases, lower-cased, where the team's phrase table has a spinner add
    words to the original and keep it ("court" -> "court docket", "year" -> "calendar year")."""
    pairs = set()
    for standard, variant, _ in seed_entries():
        words, spun = standard.lower().split(), variant.lower().split()
        rest = iter(spun)
        if len(spun) > len(words) and all(w in rest for w in words):
            pairs.add((" ".join(spun), " ".join(words)))
    return frozenset(pairs)


@lru_cache(maxsize=1)
def inserted_words() -> frozenset[tuple[str, str, str]]:
    """``(added words, original, spun)`` of each of ``insertions``: ``("docket", "court", "court docket")``."""
    out = set()
    for spun, standard in insertions():
        remaining = standard.split()
        extra = []
        for word in spun.split():
            if remaining and word == remaining[0]:
                remaining.pop(0)
            else:
                extra.append(word)
        out.add((" ".join(extra), standard, spun))
    return frozenset(out)


@lru_cache(maxsize=1)
def insertions() -> frozenset[tuple[str, str]]:
    """The ``seed_insertions`` whose spun form clean text hardly has (seen fewer than
    ``RARE_IN_CLEAN_TEXT`` times in the ~10M words of ../shared/corpora; ``rewrite/data/insertions.tsv``):
    "court docket" (0) is a spinner's, "calendar year" (45) is English. The one place a
    restoration may drop a content word."""
    rows = (line.split("\t") for line in INSERTIONS_FILE.read_text(encoding="utf-8").splitlines()
            if line and not line.startswith("#"))
    return frozenset((spun, original) for spun, original, seen in rows if int(seen) < RARE_IN_CLEAN_TEXT)


# ---------------------------------------------------------------- words and their inflections


@lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """The shipped English word list, ``rewrite/data/english_words.txt.gz``: words seen in lower
    case in clean text ("paris" is not one; "house" is)."""
    with gzip.open(WORDS_FILE, "rt", encoding="utf-8") as f:
        return frozenset(line.strip() for line in f if line.strip() and not line.startswith("#"))


_CLITICS = frozenset({"s", "re", "ll", "ve", "m", "d"})


def is_english_word(token: str) -> bool:
    """True for a word of the shipped list (any case; ``"don't"``, ``"Biden's"`` by their parts), a
    token with a digit, or punctuation; False for a fragment such as ``"pping"``."""
    if not any(ch.isalpha() for ch in token) or any(ch.isdigit() for ch in token):
        return True
    word = token.lower().replace("’", "'")
    words = english_words()
    if word in words:
        return True
    if word.endswith("n't"):
        return word[:-3] in words or word[:-3] in ("ca", "wo", "sha")
    first, *rest = word.split("'")
    return bool(rest) and (first in words or first[:1].isalpha() and token[:1].isupper()) and all(
        part in words or part in _CLITICS for part in rest)


@lru_cache(maxsize=1)
def irregular_lemmas() -> dict[str, frozenset[str]]:
    """Irregular inflected form -> its lemmas (``"held"`` -> ``{"hold"}``, ``"children"`` ->
    ``{"child"}``), ``rewrite/data/irregular_forms.tsv``."""
    table: dict[str, set[str]] = {}
    for line in IRREGULAR_FILE.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            form, lemma = line.split("\t")[:2]
            table.setdefault(form, set()).add(lemma)
    return {form: frozenset(lemmas) for form, lemmas in table.items()}


def suffix_lemmas(word: str) -> frozenset[str]:
    """The words ``word`` may be an inflection of by the regular English suffixes (``-s``, ``-es``,
    ``-ies``, ``-ed``, ``-ing``, a doubled consonant, a dropped ``e``), itself included:
    ``"stopped"`` -> ``{"stopped", "stop", "stopp", ...}``. Over-generates on purpose: two words
    are one lemma when their sets meet."""
    w = word.lower()
    stems = []
    if w.endswith("ies") or w.endswith("ied"):
        stems.append(w[:-3] + "y")
    if w.endswith("es"):
        stems.append(w[:-2])
    if w.endswith("s") and not w.endswith("ss"):
        stems.append(w[:-1])
    if w.endswith("ed"):
        stems += [w[:-2], w[:-1]]
    if w.endswith("ing"):
        stems += [w[:-3], w[:-3] + "e"]
    for stem in list(stems):
        if len(stem) > 2 and stem[-1] == stem[-2] and stem[-1] not in "aeiouls":
            stems.append(stem[:-1])  # "stopped" -> "stopp" -> "stop"
    return frozenset({w} | {s for s in stems if len(s) >= 3})


@lru_cache(maxsize=50_000)
def lemmas(word: str) -> frozenset[str]:
    """``suffix_lemmas`` and the irregular table's lemmas of each (``"held"`` -> ``{"held", "hold"}``)."""
    out = set(suffix_lemmas(word))
    irregular = irregular_lemmas()
    for form in list(out):
        out |= irregular.get(form, frozenset())
    return frozenset(out)


def same_lemma(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` differ (in lower case) and are forms of one word: ``"held"`` and
    ``"hold"``, ``"points"`` and ``"point"``, ``"was"`` and ``"is"``."""
    a, b = a.lower(), b.lower()
    return a != b and a.isalpha() and b.isalpha() and not lemmas(a).isdisjoint(lemmas(b))
