"""The spinner's own rules: swaps that come from how spinners treat English, not from a lexicon.

They form the lexicon source ``rules`` (built here, in code, from general knowledge of English:
nothing in it is read off spun text):

- number words become digits (``four`` -> ``4``, ``twenty-one`` -> ``21``) and ``percent``
  becomes ``%``; digits never become words;
- contractions are created and expanded (``he is`` <-> ``he's``, ``could not`` <-> ``couldn't``),
  and a contraction is now and then split the way a tokeniser splits it (``doesn't`` ->
  ``does n't``);
- a filler word is inserted after an auxiliary (``had`` -> ``had actually``);
- a function word is swapped, sense-blind, for another of its closed class: modals
  (``would`` -> ``might``), demonstratives (``those`` -> ``these``), prepositions of place and
  time (``at`` -> ``on``).

Two more rules need the sentence and live in ``spinner.py``: short reorders (``in and out`` ->
``out and in``) and a filler before a swapped verb (``provided`` -> ``actually offered``).

    >>> rule_table()["four"]
    [Variant(text='4', source='rules', kind='number', pos='')]
"""

from __future__ import annotations

from rewrite.facts import FILLERS, SMALL, TENS

from .variant import Variant

SOURCE = "rules"

_UNITS = list(SMALL)  # "zero" .. "nineteen", in order
_TENS = {n: word for word, n in TENS.items()}

# subject + auxiliary -> contraction
_SUBJECTS = ("i", "you", "we", "they", "he", "she", "it", "that", "there", "who", "what", "where", "here")
_AUX_CLITIC = {"am": "'m", "is": "'s", "are": "'re", "will": "'ll", "would": "'d", "have": "'ve", "has": "'s", "had": "'d"}
_VALID = {
    "'m": {"i"},
    "'re": {"you", "we", "they", "who", "what"},
    "'ve": {"i", "you", "we", "they", "who"},
    "'s": {"he", "she", "it", "that", "there", "who", "what", "where", "here"},
    "'ll": {"i", "you", "we", "they", "he", "she", "it", "that", "there", "who"},
    "'d": {"i", "you", "we", "they", "he", "she", "it", "that", "there", "who"},
}
# auxiliary + not -> contraction
_NEGATIONS = {
    "do": "don't", "does": "doesn't", "did": "didn't", "is": "isn't", "are": "aren't", "was": "wasn't",
    "were": "weren't", "has": "hasn't", "have": "haven't", "had": "hadn't", "will": "won't",
    "would": "wouldn't", "can": "can't", "could": "couldn't", "should": "shouldn't", "must": "mustn't",
    "need": "needn't", "might": "mightn't",
}
# Closed classes of English whose members spinners swap for one another regardless of sense.
FUNCTION_CLASSES = (
    ("can", "could", "may", "might", "will", "would", "should", "must"),
    ("this", "that", "these", "those"),
    ("at", "on", "in", "within", "by", "through", "during", "throughout", "over", "across", "upon"),
)
_AUXILIARIES = ("have", "has", "had", "is", "are", "was", "were", "will", "would", "can", "could", "should", "may",
                "might", "must", "do", "does", "did")


def number_words() -> dict[str, str]:
    """``{"four": "4", "twenty-one": "21", ...}`` for 0-99, and the round hundreds and thousands."""
    out = {word: str(n) for n, word in enumerate(_UNITS)}
    for n, word in _TENS.items():
        out[word] = str(n)
        for unit in range(1, 10):
            out[f"{word}-{_UNITS[unit]}"] = str(n + unit)
    for n in range(1, 10):
        out[f"{_UNITS[n]} hundred"] = str(n * 100)
        out[f"{_UNITS[n]} thousand"] = f"{n},000"
    return out


def contractions() -> list[tuple[str, str]]:
    """(full, contracted) pairs, straight apostrophe: ``("he is", "he's")``, ``("could not", "couldn't")``."""
    pairs = []
    for subject in _SUBJECTS:
        for aux, clitic in _AUX_CLITIC.items():
            if subject in _VALID[clitic]:
                pairs.append((f"{subject} {aux}", subject + clitic))
    pairs += [(f"{aux} not", short) for aux, short in _NEGATIONS.items()]
    pairs.append(("cannot", "can't"))
    return pairs


def _split(contracted: str) -> str:
    """How a tokeniser splits a negative contraction: ``doesn't`` -> ``does n't``."""
    return contracted[:-3] + " " + contracted[-3:] if contracted.endswith("n't") else contracted


def rule_table() -> dict[str, list[Variant]]:
    """The ``rules`` source: lexicon keys (``phrase_key`` form) -> variants, both apostrophes."""
    table: dict[str, list[Variant]] = {}

    def add(key: str, text: str, kind: str) -> None:
        if text != key:
            table.setdefault(key, []).append(Variant(text, SOURCE, kind, ""))

    for word, digits in number_words().items():
        add(word.replace("-", " - "), digits, "number")  # keys are tokens: "twenty - one"
    add("percent", "%", "number")
    add("per cent", "%", "number")
    for full, short in contractions():
        for apostrophe in ("'", "’"):
            contracted = short.replace("'", apostrophe)
            add(full, contracted, "contraction")
            add(contracted, full, "contraction")
            if contracted.endswith(f"n{apostrophe}t"):
                add(contracted, _split(short).replace("'", apostrophe), "contraction")
    for aux in _AUXILIARIES:
        for filler in FILLERS:
            add(aux, f"{aux} {filler}", "word")
    for members in FUNCTION_CLASSES:
        for word in members:
            for other in members:
                add(word, other, "word")
    return table
