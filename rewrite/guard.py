"""Faithfulness guard: which of the model's changes may reach the user.

A restorer may swap a spun phrase for the standard one; it may not rewrite the sentence. Two
checks, both returning the reason for a refusal (``None`` when the output passes):

``check_sentence``: the model's output for one sentence as a whole. It fails when its length is
far from the input's, when it changes too large a share of the words, or when words one change
removes turn up in another (a clause moved); the sentence then stays as it was.

``check_change``: one change. It passes only if it writes nothing but text: no U+FFFD (byte
pieces of the model that do not form valid UTF-8 decode to it) and no character that is neither
in the input sentence nor ordinary text (``ordinary_character``: Latin letters and the usual
digits, punctuation and symbols), and it is a local substitution (at most
``max_span_words`` words on each side, the word count moving by at most ``max_word_shift``) that

- keeps every fact (``rewrite.facts``): numbers by value ("3" -> "three" keeps one, "two" ->
  "three" or "million" -> "billion" does not), negations, pronouns' person and number, units,
  dates (a unit or date may change only where the change undoes an entry of the team's phrase
  table: "in a single day" -> "overnight"); "both" is not written before another number;
- keeps every clause mark (``, ; : ( ) . ! ?`` and dashes, so no clause is dropped);
- invents, drops or replaces no name (a capitalised word; a sentence's first word only when it is
  no common word) unless it undoes a known spin of a name ("Home" -> "House");
- does not repeat three words the sentence already has elsewhere (a duplicated clause);
- is more than a contraction expanded or made ("do not" <-> "don't" is wording, not spin), and
  more than a word's tense or number changed ("held" -> "hold");
- writes only English words (the shipped word list) or words of the input ("pping" is refused);
- drops only words a spinner adds: fillers ("really", "just") and the phrase table's insertions
  that clean text hardly has ("court docket" -> "court"); "data points" -> "data" is refused.

For example ``"not less than 15"`` -> ``"at least 15"`` passes, ``"at least 15"`` -> ``"at least
16"`` is refused with ``'changes a number (15 -> 16)'``. The restorer logs every refusal with its
reason; a detector-based restorer routes its edits through ``check_change`` the same way.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections import Counter
from collections.abc import Sequence

from . import facts
from .align import Change
from .errors import InputError
from .text import WORD_RE, is_word

CLAUSE_MARKS = frozenset({",", ";", ":", "(", ")", "[", "]", ".", "!", "?", "—", "–", "…"})
REPLACEMENT_CHARACTER = "\ufffd"  # what undecodable bytes become; never text the model may write


@dataclasses.dataclass(frozen=True)
class GuardConfig:
    """Limits on what the model may change. Validated on creation."""

    max_span_words: int = dataclasses.field(
        default=6, metadata={"help": "Most words one change may remove and most it may write."}
    )
    max_word_shift: int = dataclasses.field(
        default=3, metadata={"help": "Most words one change may add or remove in net."}
    )
    min_length_ratio: float = dataclasses.field(
        default=0.5, metadata={"help": "Smallest output/input word-count ratio a sentence may have."}
    )
    max_length_ratio: float = dataclasses.field(
        default=1.5, metadata={"help": "Largest output/input word-count ratio a sentence may have."}
    )
    sentence_min_words: int = dataclasses.field(
        default=5, metadata={"help": "Whole-sentence checks apply to sentences of at least this many words."}
    )
    max_changed_share: float = dataclasses.field(
        default=0.5, metadata={"help": "Largest share of a sentence's words the model may change."}
    )
    max_moved_words: int = dataclasses.field(
        default=1, metadata={"help": "Most words one change may remove and another write elsewhere."}
    )

    def __post_init__(self) -> None:
        if self.max_span_words < 1 or self.sentence_min_words < 1 or min(self.max_word_shift, self.max_moved_words) < 0:
            raise InputError(
                "max_span_words and sentence_min_words must be >= 1, max_word_shift and max_moved_words >= 0"
            )
        if not 0 < self.min_length_ratio <= 1 <= self.max_length_ratio:
            raise InputError("length ratios must satisfy 0 < min_length_ratio <= 1 <= max_length_ratio")
        if not 0 < self.max_changed_share <= 1:
            raise InputError("max_changed_share must be in (0, 1]")


def check_sentence(
    config: GuardConfig, source_tokens: Sequence[str], target_tokens: Sequence[str], changes: Sequence[Change]
) -> str | None:
    """Why the output for a whole sentence must be refused, or ``None`` when it may be used."""
    moved = _moved_words(changes)
    if len(moved) > config.max_moved_words:
        return f"output moves words ({' '.join(moved)})"
    n_source = sum(map(is_word, source_tokens))
    n_target = sum(map(is_word, target_tokens))
    if n_source < config.sentence_min_words:
        return None
    ratio = n_target / n_source
    if not config.min_length_ratio <= ratio <= config.max_length_ratio:
        return f"output has {n_target} words for {n_source} (ratio {ratio:.2f})"
    changed = sum(change.changed_words for change in changes)
    if changed / n_source > config.max_changed_share:
        return f"output changes {changed} of {n_source} words"
    return None


def check_change(
    config: GuardConfig, change: Change, source_tokens: Sequence[str], sentence: str | None = None
) -> str | None:
    """Why ``change`` must be refused, or ``None`` when it is a faithful local substitution.

    ``source_tokens``: the ``WORD_RE`` tokens of the sentence the change is in; ``sentence``: its
    text (``change.source_span`` counts in it), which tells a capital that only starts the sentence
    from a name. Without it, a change at offset 0 starts the sentence."""
    old, new = change.source_tokens, change.target_tokens
    foreign = _foreign_characters(new, source_tokens)
    if foreign:
        return f"writes characters that are not text here ({', '.join(f'U+{ord(ch):04X}' for ch in foreign)})"
    old_words, new_words = [t for t in old if is_word(t)], [t for t in new if is_word(t)]
    if max(len(old_words), len(new_words)) > config.max_span_words:
        return f"not local ({len(old_words)} -> {len(new_words)} words)"
    if abs(len(old_words) - len(new_words)) > config.max_word_shift:
        return f"adds or drops too much ({len(old_words)} -> {len(new_words)} words)"
    known = facts.known_spin(old_words, new_words)  # undoes an entry of the team's phrase table
    reason = _changed_fact(old, new, known) or _both_before_a_number(old_words, new_words, change, sentence)
    if reason:
        return reason
    if _marks(old) != _marks(new):
        return "adds or drops a clause mark"
    reason = _changed_name(old_words, new_words, source_tokens, _starts_sentence(change, source_tokens, sentence))
    if reason:
        return reason
    if _repeats(old_words, new_words, [t for t in source_tokens if is_word(t)]):
        return "duplicates words the sentence already has"
    if old_words and _expand_contractions(old) == _expand_contractions(new):
        return "only expands or contracts (don't <-> do not): wording, not spin"
    inflected = _inflection_only(old_words, new_words)
    if inflected:
        return f"changes only a word's tense or number ({inflected})"
    present = {t.lower() for t in source_tokens}
    # capitalised words are names, and the name rule has judged them
    invented = [t for t in new_words if t.lower() not in present and not facts.is_capitalised(t)
                and not facts.is_english_word(t)]
    if invented:
        return f"writes a word that is not English ({' '.join(invented)})"
    dropped = _dropped_words(old_words, new_words, source_tokens)
    if dropped:
        return f"drops words no spinner adds ({' '.join(dropped)})"
    return None


def _changed_fact(old: Sequence[str], new: Sequence[str], known: bool = False) -> str | None:
    """Why the tokens ``old`` -> ``new`` change a fact (``rewrite.facts``), or None. A ``known``
    spin (the phrase table's "overnight" -> "in a single day") may change a unit or a date."""
    (numbers_before, units_before), (numbers_after, units_after) = facts.measures(old), facts.measures(new)
    compared = [("number", numbers_before, numbers_after)]
    if not known:
        compared += [("unit", units_before, units_after), ("date", facts.dates(old), facts.dates(new))]
    for name, before, after in compared:
        if before != after:
            shown = (" ".join(sorted(side.elements())) or "-" for side in (before, after))
            return f"changes a {name} ({' -> '.join(shown)})"
    if facts.negations(old) != facts.negations(new):
        return f"changes a negation ({facts.negations(old)} -> {facts.negations(new)} negations)"
    if facts.pronouns(old) != facts.pronouns(new):
        shown = (" ".join(t.lower() for t in side if facts.pronouns([t])) or "-" for side in (old, new))
        return f"changes a pronoun's person or number ({' -> '.join(shown)})"
    return None


def _both_before_a_number(old_words: list[str], new_words: list[str], change: Change, sentence: str | None) -> str | None:
    """"both" written before another number: "each of the six states" -> "both the six states"."""
    if sentence is None or "both" not in {w.lower() for w in new_words} - {w.lower() for w in old_words}:
        return None
    following = [t for t in WORD_RE.findall(sentence[change.source_span[1] :]) if is_word(t)][:3]
    other = set(facts.numbers(following)) - {"2"}
    return f"changes a number (both, before {' '.join(sorted(other))})" if other else None


def _starts_sentence(change: Change, source_tokens: Sequence[str], sentence: str | None) -> bool:
    """True when no word of the sentence comes before ``change``."""
    start = change.source_span[0]
    if sentence is None:
        return start == 0
    return not any(is_word(t) for t in WORD_RE.findall(sentence[:start]))


def _names(words: Sequence[str], initial: bool) -> list[str]:
    """The capitalised words of a change, but a sentence's first word when it is a common word, and
    month and weekday names (``facts.dates`` compares those: "Jan" -> "January" keeps the date)."""
    return [w for k, w in enumerate(words) if facts.is_capitalised(w) and not facts.dates([w])  # dates: their own rule
            and not (initial and k == 0 and facts.is_english_word(w.lower()))]


def _changed_name(old_words: list[str], new_words: list[str], source_tokens: Sequence[str], initial: bool) -> str | None:
    """Why the change invents, drops or replaces a name, or None: it may only where it undoes a
    known spin of a name (``facts.name_spins``, ``facts.insertions``: "Home" -> "House")."""
    before, after = Counter(_names(old_words, initial)), Counter(_names(new_words, initial))
    gained, lost = after - before, before - after
    if not gained and not lost:
        return None
    pair = (" ".join(w.lower() for w in old_words), " ".join(w.lower() for w in new_words))
    swapped = (" ".join(w.lower() for w in lost.elements()), " ".join(w.lower() for w in gained.elements()))
    if pair in facts.name_spins() or swapped in facts.name_spins() or _known_insertion(old_words, new_words, source_tokens):
        return None
    if not lost:
        return f"introduces a name ({' '.join(gained.elements())})"
    if not gained:
        return f"drops a name ({' '.join(lost.elements())})"
    return f"replaces a name ({' '.join(lost.elements())} -> {' '.join(gained.elements())})"


def _inflection_only(old_words: list[str], new_words: list[str]) -> str | None:
    """``"held -> hold"`` when the change only inflects its words differently, else None."""
    if not old_words or len(old_words) != len(new_words):
        return None
    pairs = [(a, b) for a, b in zip(old_words, new_words) if a.lower() != b.lower()]
    if pairs and all(facts.same_lemma(a, b) for a, b in pairs):
        return ", ".join(f"{a} -> {b}" for a, b in pairs)
    return None


def _dropped_words(old_words: list[str], new_words: list[str], sentence: Sequence[str]) -> list[str]:
    """Words a change drops without writing anything new, unless a spinner adds them: a filler
    ("are just" -> "are") or the words the phrase table's insertions add where clean text hardly
    has them ("court docket" -> "court"); "data points" -> "data" and "most of the" -> "most" may
    not drop theirs."""
    before = Counter(w.lower() for w in old_words)
    after = Counter(w.lower() for w in new_words)
    if after - before:
        return []  # a substitution: it writes something new in place of what it drops
    lowered = [t.lower() for t in sentence if is_word(t)]
    doubled = {a for a, b in zip(lowered, lowered[1:]) if a == b}  # "in in" -> "in": a stutter
    dropped = [w for w in (before - after).elements() if w not in facts.DROPPABLE_FILLERS and w not in doubled]
    if not dropped or _known_insertion(old_words, new_words, sentence):
        return []
    return dropped


def _known_insertion(old_words: Sequence[str], new_words: Sequence[str], sentence: Sequence[str]) -> bool:
    """True when the words ``old`` has and ``new`` lacks are what one of the phrase table's
    insertions (``facts.insertions``) adds, and the sentence holds that insertion's spun form
    ("docket" where the sentence has "court docket")."""
    remaining = Counter(w.lower() for w in new_words)
    dropped = []  # in order
    for word in (w.lower() for w in old_words):
        if remaining[word]:
            remaining[word] -= 1
        else:
            dropped.append(word)
    if not dropped:
        return False
    text = " " + " ".join(t.lower() for t in sentence if is_word(t)) + " "
    return any(extra == " ".join(dropped) and f" {spun} " in text for extra, _, spun in facts.inserted_words())


def ordinary_character(ch: str) -> bool:
    """True for a character English prose may hold without it being in the input: ASCII, Latin
    letters and their accents, and the punctuation, symbols and digits of Latin-1, General
    Punctuation and Currency Symbols (``’``, ``—``, ``€``, ``…``). Never U+FFFD, a control, a
    private-use or an unassigned code point.

        >>> [ordinary_character(c) for c in "aé’€"], [ordinary_character(c) for c in "\ufffd東ｗ\x07"]
        ([True, True, True, True], [False, False, False, False])
    """
    if ch == REPLACEMENT_CHARACTER:
        return False
    if ch.isascii():
        return ch.isprintable()
    category = unicodedata.category(ch)
    if category[0] in "LM":
        return unicodedata.name(ch, "").startswith(("LATIN ", "COMBINING "))
    if category[0] in "PSNZ":
        return ord(ch) < 0x250 or 0x2000 <= ord(ch) <= 0x20CF
    return False  # Cc, Cf, Cs, Co, Cn


def _foreign_characters(new: Sequence[str], source_tokens: Sequence[str]) -> list[str]:
    """Characters of ``new`` that are U+FFFD, or neither in the sentence nor ordinary text."""
    written = set("".join(new))
    if not written:
        return []
    present = set("".join(source_tokens)) - {REPLACEMENT_CHARACTER}
    return sorted(ch for ch in written if ch not in present and not ordinary_character(ch))


_CONTRACTIONS = (("won't", "will not"), ("can't", "cannot"), ("n't", " not"), ("'re", " are"), ("'ll", " will"),
                 ("'ve", " have"), ("'m", " am"), ("'d", " would"), ("'s", " is"),
                 ("can not", "cannot"))


def _expand_contractions(tokens: Sequence[str]) -> str:
    text = " ".join(tokens).lower().translate(str.maketrans({"’": "'", "‘": "'"}))
    for short, full in _CONTRACTIONS:
        text = text.replace(short, full)
    return " ".join(text.split())


def _moved_words(changes: Sequence[Change]) -> list[str]:
    """Words (lower-cased) that one change removes and another change writes."""
    removed, added = [], []
    for change in changes:
        old = Counter(t.lower() for t in change.source_tokens if is_word(t))
        new = Counter(t.lower() for t in change.target_tokens if is_word(t))
        removed.append(old - new)
        added.append(new - old)
    moved: Counter = Counter()
    for k, gone in enumerate(removed):
        elsewhere = sum((words for j, words in enumerate(added) if j != k), Counter())
        moved |= gone & elsewhere
    return sorted(moved.elements())


def _marks(tokens: Sequence[str]) -> Counter:
    return Counter(t for t in tokens if t in CLAUSE_MARKS)


def _repeats(old_words: list[str], new_words: list[str], sentence_words: list[str]) -> bool:
    """True when the change writes a three-word run that it did not have but the sentence has."""
    added = _trigrams(new_words) - _trigrams(old_words)
    return bool(added & _trigrams(sentence_words))


def _trigrams(words: list[str]) -> set[tuple[str, ...]]:
    lowered = [w.lower() for w in words]
    return {tuple(lowered[k : k + 3]) for k in range(len(lowered) - 2)}
