"""Channel coverage: how many of the places real spinners changed could our spinner produce?

A markup file (the format of ``../shared/eval``) is spun text with every changed place written
``[[spun||original|alternative...]]``. A place *needs a change* when its spun wording is not
one of its alternatives. It is *covered* when, starting from one of its alternatives in its
sentence, the builder's spinner (its default settings unless told otherwise) has a sequence of
swaps that turns that wording into the spun wording (any engine, any lexicon source, any random
draw, with inflection), comparing tokens without case:

    >>> report = channel_coverage([Path("a.markup")], Spinner(load_lexicon()))
    >>> report["coverage"], report["per_source"]["seed"]
    (0.62, 0.48)

How a place is checked (``covers``): the original sentence is rebuilt with the alternative in
place, the window of tokens is the place plus up to ``CONTEXT`` unchanged tokens on each side
(a swap may straddle the annotated span: ``as long as`` -> ``so long as`` annotated on one
word), and a dynamic programme walks original and spun tokens together, each step either an
unchanged token or one of ``Spinner.candidates`` at that token. ``per_source`` repeats the walk
with one source's swaps only (plus the spinner's own rules, which belong to no lexicon).

Misses are sorted by kind (``kind_of``): number, contraction, name, other (insertions,
deletions, punctuation, reorders), word (one word each side), phrase.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from rewrite import facts
from rewrite.text import WORD_RE

from .errors import CorpusError
from .markup import MarkupLine, fold, parse_markup
from .spinner import Spinner

log = logging.getLogger(__name__)

CONTEXT = 3  # unchanged tokens each side a swap may reach into
KINDS = ("word", "phrase", "name", "number", "contraction", "other")
RULES = "rules"  # source name of the spinner's own swaps (numbers, contractions, ...)
# a place holding one of these (or a digit) is a number swap: rewrite/facts.py's number words
_NUMBER_WORDS = (frozenset(facts.SMALL) | frozenset(facts.TENS) | frozenset(facts.SCALES) | frozenset(facts.ORDINALS)
                 | {"half", "dozen", "percent", "%"})
_OPENERS = frozenset({".", "!", "?", "“", '"', ":", "(", "‘"})


@dataclasses.dataclass
class Place:
    """One annotated place that needs a change."""

    file: str
    line: int  # 1-based
    spun: str
    alternatives: list[str]
    kind: str = ""
    covered: bool = False
    sources: list[str] = dataclasses.field(default_factory=list)  # sources that cover it alone
    # for a place one swap produces: per source offering that swap's span, the share of its
    # variants there that give the real spun wording (the chance a draw from it is right)
    draws: dict[str, float] = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def kind_of(original: str, spun: str, initial: bool) -> str:
    """The kind of a place: number, contraction, name, other, word or phrase."""
    # hyphens belong to their words here ("dinner-party" -> "meal-celebration" is a word swap)
    a = [t for t in WORD_RE.findall(original) if t != "-"]
    b = [t for t in WORD_RE.findall(spun) if t != "-"]
    both = a + b
    if any(any(c.isdigit() for c in t) or fold(t) in _NUMBER_WORDS for t in both):
        return "number"
    if _clitics(a) != _clitics(b) or any(fold(t) == "n't" for t in both):
        return "contraction"  # a possessive kept on both sides is not one
    if any(t[0].isupper() and t != "I" and not (k == 0 and initial) for k, t in enumerate(a)):
        return "name"
    words_a = [t for t in a if t[0].isalnum()]
    words_b = [t for t in b if t[0].isalnum()]
    if not words_a or not words_b or len(words_a) != len(a) or len(words_b) != len(b):
        return "other"
    if sorted(map(fold, a)) == sorted(map(fold, b)):
        return "other"  # a reorder
    if len(a) == 1 and len(b) == 1:
        return "word"
    return "phrase"


def _clitics(tokens: list[str]) -> list[str]:
    """``["he's", "party's"]`` -> ``["s", "s"]``: what follows the apostrophes, sorted."""
    return sorted(fold(t).split("'", 1)[1] for t in tokens if "'" in fold(t))


class _Walker:
    """Checks whether the spinner can turn a token window of a sentence into given tokens."""

    def __init__(self, spinner: Spinner):
        self.spinner = spinner
        self.engine = spinner.any_engine()

    def edges(self, text: str, tokens, lower, lo: int, hi: int) -> dict[int, list]:
        """At each token in [lo, hi): ``[(n_tokens, folded replacement tokens, source, plain)]``;
        ``plain`` is False for a swap with a filler added (a rare extra, not a draw of its own)."""
        out: dict[int, list] = {}
        for i in range(lo, hi):
            found = self.spinner.candidates(text, tokens, lower, i, self.engine)
            out[i] = [(n, tuple(fold(t) for t in WORD_RE.findall(r)), src, plain)
                      for n, r, src, plain in found if i + n <= hi]
        return out

    @staticmethod
    def walk(orig: list[str], lo: int, hi: int, target: list[str], edges, allow) -> bool:
        """Can tokens ``orig[lo:hi]`` become ``target`` using unchanged tokens and the allowed
        edges? (Breadth over states (token i, target position j).)"""
        frontier, seen = [(lo, 0)], {(lo, 0)}
        while frontier:
            i, j = frontier.pop()
            if i == hi and j == len(target):
                return True
            if i == hi:
                continue
            steps = []
            if j < len(target) and orig[i] == target[j]:
                steps.append((i + 1, j + 1))
            for n, rep, src, _ in edges.get(i, ()):
                if allow(src) and tuple(target[j : j + len(rep)]) == rep:
                    steps.append((i + n, j + len(rep)))
            for state in steps:
                if state not in seen:
                    seen.add(state)
                    frontier.append(state)
        return False


def _window(tokens, span: tuple[int, int], segment_bounds: tuple[int, int]):
    """Token range of ``span`` and how far it may grow into the unchanged text around it."""
    s, e = span
    inside = [k for k, (a, b) in enumerate(tokens) if a < e and b > s] if e > s else []
    if inside:
        first, last = inside[0], inside[-1] + 1
    else:  # an empty span (a deletion): the gap before the next token
        first = last = next((k for k, (a, _) in enumerate(tokens) if a >= s), len(tokens))
    left_limit, right_limit = segment_bounds
    lo = first
    while lo > 0 and first - lo < CONTEXT and tokens[lo - 1][0] >= left_limit:
        lo -= 1
    hi = last
    while hi < len(tokens) and hi - last < CONTEXT and tokens[hi][1] <= right_limit:
        hi += 1
    return first, last, lo, hi


def check_place(walker: _Walker, line: MarkupLine, k: int, alternative: str, sources: tuple[str, ...]):
    """``(covered, sources that cover it alone, initial)`` for slot ``k`` restored to ``alternative``."""
    orig_text, orig_spans = line.text(lambda j, spun, alts: alternative if j == k else alts[0])
    spun_text, spun_spans = line.text(lambda j, spun, alts: spun)
    o_tok = [m.span() for m in WORD_RE.finditer(orig_text)]
    s_tok = [m.span() for m in WORD_RE.finditer(spun_text)]
    # the unchanged text around the slot: up to the neighbouring slots
    o_bounds = (orig_spans[k - 1][1] if k else 0, orig_spans[k + 1][0] if k + 1 < len(orig_spans) else len(orig_text))
    s_bounds = (spun_spans[k - 1][1] if k else 0, spun_spans[k + 1][0] if k + 1 < len(spun_spans) else len(spun_text))
    of, ol, olo, ohi = _window(o_tok, orig_spans[k], o_bounds)
    sf, sl, slo, shi = _window(s_tok, spun_spans[k], s_bounds)
    left = min(of - olo, sf - slo)
    right = min(ohi - ol, shi - sl)
    lo, hi = of - left, ol + right
    target = [fold(spun_text[a:b]) for a, b in s_tok[sf - left : sl + right]]
    lower = [orig_text[a:b].lower() for a, b in o_tok]
    orig = [fold(orig_text[a:b]) for a, b in o_tok]
    edges = walker.edges(orig_text, o_tok, lower, lo, hi)
    covered = walker.walk(orig, lo, hi, target, edges, lambda src: True)
    draws = single_swap_draws(orig, lo, hi, target, edges) if covered else {}
    alone = []
    if covered:
        for source in sources:
            if walker.walk(orig, lo, hi, target, edges, lambda src, s=source: src in (s, RULES)):
                alone.append(source)
    initial = of == 0 or orig[of - 1] in _OPENERS
    return covered, alone, initial, draws


def single_swap_draws(orig: list[str], lo: int, hi: int, target: list[str], edges) -> dict[str, float]:
    """Where one swap at token i over n tokens produces ``target``: per source with options for
    that span, the share of them that produce it. Empty when no single swap does."""
    for i, options in edges.items():
        for n, rep, _, plain in options:
            k = i - lo
            if plain and orig[lo:i] == target[:k] and target[k : k + len(rep)] == list(rep) \
                    and orig[i + n : hi] == target[k + len(rep) :]:
                hits: dict[str, list[int]] = {}
                for n2, rep2, src, plain2 in options:
                    if n2 == n and plain2:
                        row = hits.setdefault(src, [0, 0])
                        row[0] += rep2 == rep
                        row[1] += 1
                return {src: h / total for src, (h, total) in hits.items()}
    return {}


def channel_coverage(files: list[Path], spinner: Spinner) -> dict:
    """Coverage of every place in ``files`` that needs a change (see the module docstring)."""
    sources = tuple(spinner.lexicon.entries)
    walker = _Walker(spinner)
    places: list[Place] = []
    for path in files:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CorpusError(f"cannot read markup file {path}: {exc}") from exc
        for lineno, line in enumerate(parse_markup(text, str(path)), 1):
            slots = [seg for seg in line.segments if not isinstance(seg, str)]
            for k, (spun, alts) in enumerate(slots):
                accepted = {" ".join(map(fold, WORD_RE.findall(a))) for a in alts}
                if " ".join(map(fold, WORD_RE.findall(spun))) in accepted:
                    continue  # the spun wording may stay: nothing to restore
                place = Place(str(path), lineno, spun, alts)
                found: set[str] = set()
                initial = True
                for alt in alts:
                    covered, alone, initial, draws = check_place(walker, line, k, alt, sources)
                    place.covered |= covered
                    found.update(alone)
                    for src, share in draws.items():
                        place.draws[src] = max(share, place.draws.get(src, 0.0))
                place.sources = sorted(found)
                place.kind = kind_of(alts[0], spun, initial)
                places.append(place)
    return summarise(places, sources)


def summarise(places: list[Place], sources: tuple[str, ...]) -> dict:
    """Shares overall, per source, per kind and per file, with every miss."""
    n = len(places)
    share = lambda k, total: round(k / total, 3) if total else 0.0  # noqa: E731
    by_kind = {kind: {"places": 0, "covered": 0, "misses": 0} for kind in KINDS}
    by_file: dict[str, dict] = {}
    for p in places:
        by_kind[p.kind]["places"] += 1
        by_kind[p.kind]["covered" if p.covered else "misses"] += 1
        f = by_file.setdefault(p.file, {"places": 0, "covered": 0})
        f["places"] += 1
        f["covered"] += p.covered
    for row in (*by_kind.values(), *by_file.values()):
        row["coverage"] = share(row["covered"], row["places"])
    covered = sum(p.covered for p in places)
    return {
        "coverage": share(covered, n),
        "places": n,
        "covered": covered,
        "per_source": {s: share(sum(s in p.sources for p in places), n) for s in sources},
        "per_kind": by_kind,
        "per_file": by_file,
        "source_weights": source_weights(places, sources),
        "misses": [p.as_dict() for p in places if not p.covered],
    }


def source_weights(places: list[Place], sources: tuple[str, ...]) -> dict[str, dict]:
    """How often each source's swaps are the ones real spinners make: over the places one swap
    produces, the mean chance that a draw from the source (where it offers that span) gives the
    real wording; ``weight`` scales these so the best source gets 1 (the spinner's engine
    weights are set from them; the places themselves are not kept anywhere)."""
    out = {}
    for src in sources:
        shares = [p.draws[src] for p in places if src in p.draws]
        out[src] = {"places": len(shares), "precision": round(sum(shares) / len(shares), 4) if shares else 0.0}
    best = max((row["precision"] for row in out.values()), default=0.0) or 1.0
    for row in out.values():
        row["weight"] = round(row["precision"] / best, 3)
    return out


def format_report(report: dict, examples: int = 10) -> str:
    """The report as text: shares, then up to ``examples`` misses of each kind."""
    lines = [f"channel coverage: {report['coverage']:.3f} ({report['covered']} of {report['places']} places)"]
    lines.append("per source (covered by that source alone): " + ", ".join(
        f"{s} {v:.3f}" for s, v in report["per_source"].items()))
    lines.append("source weights (chance a draw from the source is the real swap, best = 1): " + ", ".join(
        f"{s} {v['weight']:.3f}" for s, v in report["source_weights"].items()))
    lines.append("per kind: " + ", ".join(
        f"{k} {v['covered']}/{v['places']} ({v['misses']} missed)" for k, v in report["per_kind"].items() if v["places"]))
    by_kind: dict[str, list] = {}
    for miss in report["misses"]:
        by_kind.setdefault(miss["kind"], []).append(miss)
    for kind in KINDS:
        misses = by_kind.get(kind, [])
        if not misses:
            continue
        lines.append(f"\nmisses, {kind} ({len(misses)}):")
        for m in misses[:examples]:
            lines.append(f"  {m['spun']!r} <- {' | '.join(map(repr, m['alternatives']))}  ({Path(m['file']).name}:{m['line']})")
    return "\n".join(lines)
