"""Text segmentation shared by the dataset builder and the restorer.

Everything here returns *spans* into the caller's string (code-point offsets), never rewritten
text, so that callers can put back every character outside an edit exactly as it was.

    >>> split_sentences("He left. Dr. Smith stayed.")
    [(0, 8), (9, 26)]
    >>> [m for m in word_spans("don't stop-now")]
    [(0, 5), (6, 10), (10, 11), (11, 14)]
"""

from __future__ import annotations

import re

# A word: letters/digits with inner apostrophes (don't, O'Neill, Shuja'iyya) and inner dots or
# commas between digits (3.5, 1,000); any other non-space character is a token of its own.
WORD_RE = re.compile(r"\w+(?:(?:['’]|(?<=\d)[.,](?=\d))\w+)*|[^\w\s]", re.UNICODE)

# Abbreviations after which a full stop does not end a sentence.
_ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof sr jr st mt ft gen col lt sgt capt cmdr adm gov sen rep rev hon pres
    inc ltd co corp bros no nos vol vols fig figs approx est dept univ assn ave blvd rd
    jan feb mar apr jun jul aug sep sept oct nov dec vs etc al e.g i.e u.s u.k u.n u.s.a""".split()
)
_SENTENCE_END_RE = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s+)")
_NEXT_START_RE = re.compile(r"\s+[\"'“‘(\[]*[A-Z0-9À-ÖØ-Þ]")
_SPACES_RE = re.compile(r"\s*")
# Quoted speech: “…”, «…» or "…" within one line; an unclosed quote runs to the end of the line.
_QUOTE_RE = re.compile(r"“[^”\r\n]*(?:”|(?=[\r\n]|\Z))|«[^»\r\n]*(?:»|(?=[\r\n]|\Z))|\"[^\"\r\n]*(?:\"|(?=[\r\n]|\Z))")


def word_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every word and punctuation token in ``text``."""
    return [m.span() for m in WORD_RE.finditer(text)]


def is_word(token: str) -> bool:
    """True for a word token (letters or digits), False for punctuation."""
    return any(ch.isalnum() or ch == "_" for ch in token)


def count_words(text: str) -> int:
    """Words of ``text``: its ``WORD_RE`` tokens that are words. The one word count of the
    project (spin ratios of the restorer and the converter, the builder's length filter).

        >>> count_words("Dr. Smith paid $3.5 million, didn't he?")
        7
    """
    return sum(1 for token in WORD_RE.findall(text) if is_word(token))


def _ends_with_abbreviation(text: str, dot: int) -> bool:
    """True when the full stop at ``dot`` closes an abbreviation or an initial ("J. Smith")."""
    start = dot
    while start > 0 and (text[start - 1].isalpha() or text[start - 1] == "."):
        start -= 1
    token = text[start:dot].lower()
    if not token:
        return False
    if token in _ABBREVIATIONS:
        return True
    # Single capital initials ("J.", "U.S.") and dotted acronyms.
    return len(token.replace(".", "")) <= 1 or "." in token


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans of one paragraph, leading/trailing whitespace excluded.

    A sentence ends at ``.``, ``!``, ``?`` or ``…`` (plus closing quotes/brackets) followed by
    whitespace and a capital letter, digit or opening quote, unless the stop ends an abbreviation.
    """
    spans: list[tuple[int, int]] = []
    # Whitespace is skipped by matching at a position: slicing the rest of a long line at every
    # sentence made a 5 MB single-line file quadratic (minutes).
    start = _SPACES_RE.match(text).end()
    for match in _SENTENCE_END_RE.finditer(text):
        end = match.end()
        if end <= start:
            continue
        if not _NEXT_START_RE.match(text, end):
            continue
        if text[match.start()] == "." and match.end() - match.start() == 1:
            if _ends_with_abbreviation(text, match.start()):
                continue
        spans.append((start, end))
        start = _SPACES_RE.match(text, end).end()
    tail_end = len(text.rstrip())
    if tail_end > start:
        spans.append((start, tail_end))
    return spans


def split_long(text: str, max_words: int) -> list[tuple[int, int]]:
    """Split one sentence into spans of at most ``max_words`` word tokens, cutting after a
    comma/semicolon where possible. Spans cover the text without gaps except whitespace."""
    spans = word_spans(text)
    if len(spans) <= max_words:
        return [(0, len(text))] if text.strip() else []
    pieces: list[tuple[int, int]] = []
    first = 0
    while first < len(spans):
        last = min(first + max_words, len(spans))
        if last < len(spans):
            for k in range(last - 1, first + max_words // 2, -1):
                if text[spans[k][0] : spans[k][1]] in {",", ";", ":", "—", "–"}:
                    last = k + 1
                    break
        pieces.append((spans[first][0], spans[last - 1][1]))
        first = last
    return pieces


def normalise_whitespace(text: str) -> str:
    """Collapse runs of whitespace to one space and strip the ends; nothing else changes."""
    return " ".join(text.split())


def quote_spans(text: str) -> list[tuple[int, int]]:
    """Spans of quoted speech (quotation marks included): what ``protect_quotes`` leaves alone,
    in the restorer and in the training spinner alike.

        >>> quote_spans('He said "no more" and «basta».')
        [(8, 17), (22, 29)]
    """
    return [m.span() for m in _QUOTE_RE.finditer(text)]


# A letter of the Latin script (Basic Latin, Latin-1, Latin Extended-A/B): the model reads
# English, so a segment without one (CJK, Cyrillic, emoji, numbers) is never sent to it.
_LATIN_LETTER_RE = re.compile(r"[A-Za-zÀ-ÖØ-öø-ɏ]")
# Characters the model's tokenizer reads as English text costs (Latin script, general
# punctuation such as curly quotes and dashes); any other character becomes byte tokens.
_NON_LATIN_RE = re.compile(r"[^\x00-ɏ\u2000-\u206f]+")
_LINES_RE = re.compile(r"[^\r\n]+")
# One byte token costs the model about as much as this many characters of English (the shipped
# tokenizer: 0.24 tokens a character of English news; 3.0 for Japanese, 1.85 for Russian, 4.0 for
# emoji, each one token per UTF-8 byte).
BYTE_TOKEN_CHARS = 4


def has_english_word(text: str) -> bool:
    """True when ``text`` holds a word in the Latin script, something the model could restore.

        >>> has_english_word("Rubio mentioned it."), has_english_word("東京都は発表した。 2024 😀")
        (True, False)
    """
    return _LATIN_LETTER_RE.search(text) is not None


def model_cost(text: str) -> int:
    """Estimated model work for ``text`` in characters of English: 0 for the lines the restorer
    never sends (no English word), else one a character, and ``BYTE_TOKEN_CHARS`` a UTF-8 byte
    for characters outside the Latin script (a CJK character is three byte tokens). Admission
    and batching in the service plan with it; counting characters made 4,000 characters of
    Japanese look as cheap as 4,000 of English.

        >>> model_cost("said it"), model_cost("東京"), model_cost("Tokyo 東京")
        (7, 0, 30)
    """
    cost = 0
    for line in _LINES_RE.findall(text):
        if not has_english_word(line):
            continue
        foreign = "".join(_NON_LATIN_RE.findall(line))
        cost += len(line) - len(foreign) + BYTE_TOKEN_CHARS * len(foreign.encode("utf-8", "surrogatepass"))
    return cost
