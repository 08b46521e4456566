"""Find the spins, then restore them: detect -> candidates -> choose -> the document as evidence.

The T5 alone touches about a quarter of real spinners' places: finding them is what fails. The
finder adds what it misses, on top of the T5's edits:

1. **Detect** (``rewrite.detector``): every word gets the probability that a spinner changed it.
2. **Candidates**: at a word at or above ``candidate_threshold``, every wording of 1-4 words that
   starts there and that the channel table knows (``rewrite.channel``) brings its originals; the
   T5's own edit there (any confidence) is one more candidate.
3. **Choose** (``rewrite.choose``): each candidate is put in its sentence and scored by the
   language model; its gain over the spun sentence, the channel's evidence, the detector's
   probability and the T5's vote give a score (weights fitted on annotated real spun text). The
   best candidate of a place is written when its score clears ``min_score``.
4. **The document**: a pair written with a score of at least ``confirm_score`` is repeated at the
   document's other occurrences of the same spun wording where the detector gives at least
   ``repeat_threshold`` (a spinner renders a word the same way throughout).
5. **Flags**: words at or above the detector's own threshold that no edit covers come back as
   flags (offset, length, text, probability): found, but not restored.

    >>> finder = SpinFinder.load(Path("rewrite/models/default"))
    >>> finder.find(sentences, t5_edits)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import threading
from pathlib import Path

from .channel import FILE as CHANNEL_FILE
from .channel import ChannelTable
from .choose import FEATURES, LmScorer, score
from .detector import SpinDetector
from .edits import Edit
from .errors import ModelError
from .guard import GuardConfig

logger = logging.getLogger(__name__)

FINDER_FILE = "finder.json"
KNOWN_NAME_SPIN = 2  # times real spun text showed a name's spun form for the guard to allow undoing it
DETECTOR_DIR = "detector"


@dataclasses.dataclass(frozen=True)
class Flag:
    """A place the detector is sure of that no edit restores."""

    offset: int
    length: int
    text: str
    probability: float

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class FinderConfig:
    """The finder's thresholds and the chooser's weights (``finder.json`` in a model folder)."""

    weights: dict = dataclasses.field(default_factory=dict, metadata={"help": "Chooser weights by feature name."})
    candidate_threshold: float = dataclasses.field(default=0.3, metadata={"help": "Detector probability from which a word gets candidates."})
    min_score: float = dataclasses.field(default=-3.0, metadata={"help": "Least chooser score for an edit to be kept at all (the restorer's min_confidence filters above it)."})
    confirm_score: float = dataclasses.field(default=2.0, metadata={"help": "Score from which a pair is repeated in the document."})
    repeat_threshold: float = dataclasses.field(default=0.1, metadata={"help": "Detector probability a repeat needs."})
    top_k: int = dataclasses.field(default=8, metadata={"help": "Channel candidates a wording brings."})
    t5_keep: float = dataclasses.field(
        default=0.8, metadata={"help": "A T5 edit at or above this confidence is kept, with its own confidence, "
                                       "where the finder writes nothing over it (1: never)."})
    lm_options: int = dataclasses.field(
        default=0, metadata={"help": "Options of a place scored by the LM, the best by the rest of the score first (0: all)."})
    left_words: int = dataclasses.field(default=12, metadata={"help": "Words before a place the LM reads when scoring it."})
    right_words: int = dataclasses.field(default=4, metadata={"help": "Words after a place the LM reads when scoring it."})
    min_confidence: float = dataclasses.field(
        default=0.5, metadata={"help": "The restorer's recommended threshold on an edit's confidence (the sigmoid of its score)."})

    def __post_init__(self) -> None:
        unknown = set(self.weights) - set(FEATURES)
        if unknown:
            raise ModelError(f"{FINDER_FILE}: unknown chooser features {sorted(unknown)}; known: {FEATURES}")
        for name in ("candidate_threshold", "repeat_threshold", "min_confidence", "t5_keep"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ModelError(f"{FINDER_FILE}: {name} must lie in [0, 1]")


def read_finder_config(folder: Path) -> FinderConfig:
    path = folder / FINDER_FILE
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read {path} ({exc}); refit with `unspin fit-detector`") from exc
    fields = {f.name for f in dataclasses.fields(FinderConfig)}
    return FinderConfig(**{k: v for k, v in values.items() if k in fields})


def has_finder(folder: Path) -> bool:
    return (folder / FINDER_FILE).is_file() and (folder / DETECTOR_DIR).is_dir()


@dataclasses.dataclass
class _Place:
    """Candidates for the span ``start:end`` of sentence ``sent``."""

    sent: int
    start: int
    end: int
    options: dict  # replacement -> feature dict


class SpinFinder:
    """Detector, channel table and chooser over one shared language model."""

    def __init__(self, detector: SpinDetector | None, channel: ChannelTable, config: FinderConfig,
                 scorer: LmScorer | None = None):
        self.detector = detector
        self.channel = channel
        self.config = config
        if scorer is None:
            reader = detector.reader
            scorer = LmScorer(reader.model, reader.tokenizer, lock=reader._lock)
        self.scorer = scorer
        self.guard = GuardConfig()  # the restorer sets its own

    @classmethod
    def load(cls, folder: Path, threads: int = 0) -> "SpinFinder":
        detector = SpinDetector.load(folder / DETECTOR_DIR, threads=threads)
        return cls(detector, ChannelTable.load(folder / CHANNEL_FILE), read_finder_config(folder))

    # ------------------------------------------------------------------ the steps

    def places(self, sent: int, sentence: str, words: list[tuple[int, int, float]], t5: list[Edit]) -> list[_Place]:
        """Candidate places of one sentence (offsets within it); ``t5``: the T5's edits there,
        offsets within the sentence too."""
        from .text import WORD_RE

        tokens = [m for m in WORD_RE.finditer(sentence)]
        found: dict[tuple[int, int], _Place] = {}
        for ws, we, p in words:
            if p < self.config.candidate_threshold:
                continue
            starts = [i for i, m in enumerate(tokens) if ws <= m.start() < we]
            for i in starts[:1]:
                for n in range(1, self.channel.longest + 1):
                    if i + n > len(tokens):
                        break
                    start, end = tokens[i].start(), tokens[i + n - 1].end()
                    spun = " ".join(m.group().lower().replace("’", "'") for m in tokens[i : i + n])
                    for c in self.channel.candidates(spun)[: self.config.top_k]:
                        place = found.setdefault((start, end), _Place(sent, start, end, {}))
                        support, real, rank = c.features()
                        place.options[_cased_like(sentence[start:end], c.original)] = {
                            "log_support": support, "log_real": real, "log_rank": rank, "detector": p}
        source_tokens = [m.group() for m in tokens]
        for place in found.values():  # the faithfulness guard, before any option costs LM time
            for replacement in [r for r in place.options if not self._allowed(sentence, source_tokens, place, r)]:
                del place.options[replacement]
        for edit in t5:  # already guarded by the restorer
            p = max((q for ws, we, q in words if ws < edit.offset + edit.length and edit.offset < we), default=0.0)
            place = found.setdefault((edit.offset, edit.offset + edit.length), _Place(sent, edit.offset, edit.offset + edit.length, {}))
            feats = place.options.setdefault(edit.replacement, {"detector": p})
            feats.update(t5=1.0, t5_confidence=edit.confidence)
        return list(found.values())

    def _allowed(self, sentence: str, source_tokens: list[str], place: _Place, replacement: str) -> bool:
        """Whether the guard lets ``replacement`` stand in the place (each refusal is logged). A
        capitalised wording that real spinners were seen to make of a name at least
        ``KNOWN_NAME_SPIN`` times ("Bud Gentle" for "Bud Light") is a known spin of that name."""
        from .align import align
        from .guard import check_change

        changed = sentence[: place.start] + replacement + sentence[place.end :]
        real = round(math.expm1(place.options[replacement].get("log_real", 0.0)))
        for change in align(sentence, changed):
            reason = check_change(self.guard, change, source_tokens, sentence)
            if reason and reason.startswith("replaces a name") and real >= KNOWN_NAME_SPIN:
                continue
            if reason:
                logger.info("refused %r -> %r: %s", sentence[place.start : place.end], replacement, reason)
                return False
        return True

    def score_places(self, sentences: list[str], places: list[_Place], cancel=None) -> None:
        """Fill in each option's ``gain``: the LM log-probability (nats) of a window around the
        place (``left_words`` before it, ``right_words`` after it) with the option in the place,
        minus the same window with the spun wording."""
        if self.config.lm_options:  # only the likeliest options by the rest of the score cost LM time
            for place in places:
                ranked = sorted(place.options, key=lambda r: -score(self.config.weights, {**place.options[r], "gain": 0.0}))
                for replacement in ranked[self.config.lm_options :]:
                    del place.options[replacement]
        texts, keys = [], []
        for place in places:
            left, right = _window(sentences[place.sent], place.start, place.end, self.config.left_words,
                                  self.config.right_words)
            texts.append(left + sentences[place.sent][place.start : place.end] + right)
            keys.append((place, None))
            for replacement in place.options:
                texts.append(left + replacement + right)
                keys.append((place, replacement))
        scores = self.scorer.logprobs(texts, cancel) if texts else []
        base = 0.0
        for (place, replacement), logp in zip(keys, scores):
            if replacement is None:
                base = logp
            else:
                place.options[replacement]["gain"] = logp - base

    def choose(self, places: list[_Place]) -> list[tuple[_Place, str, float]]:
        """The best option of each place whose score clears ``min_score``, without overlaps
        within a sentence (higher scores first)."""
        best = []
        for place in places:
            ranked = sorted(((score(self.config.weights, f), r) for r, f in place.options.items()), reverse=True)
            if ranked and ranked[0][0] >= self.config.min_score:
                best.append((place, ranked[0][1], ranked[0][0]))
        best.sort(key=lambda b: -b[2])
        taken: list[tuple[int, int, int]] = []
        chosen = []
        for place, replacement, s in best:
            if any(place.sent == t and place.start < e and st < place.end for t, st, e in taken):
                continue
            taken.append((place.sent, place.start, place.end))
            chosen.append((place, replacement, s))
        return chosen

    def find(self, texts: list[str], segments: list, t5: list[list[Edit]], cancel: threading.Event | None = None
             ) -> tuple[list[list[tuple[Edit, int]]], list[list[Flag]]]:
        """Edits (each with the words it restores) and flags for each text. ``segments``: the
        restorer's sentence pieces (``doc``, ``start``, ``text``); ``t5``: every edit the T5 made
        in each text, whatever its confidence (they become candidates like the channel's)."""
        from .text import count_words

        sentences = [seg.text for seg in segments]
        words = self.detector.word_probs(sentences, cancel)
        places: list[_Place] = []
        for i, seg in enumerate(segments):
            end = seg.start + len(seg.text)
            local = [dataclasses.replace(e, offset=e.offset - seg.start) for e in t5[seg.doc]
                     if seg.start <= e.offset and e.offset + e.length <= end]
            places += self.places(i, seg.text, words[i], local)
        places = [p for p in places if p.options]
        self.score_places(sentences, places, cancel)
        edits: list[list[tuple[Edit, int]]] = [[] for _ in texts]
        for place, replacement, value in self.choose(places):
            seg = segments[place.sent]
            original = seg.text[place.start : place.end]
            edit = Edit(seg.start + place.start, place.end - place.start, original, replacement, _sigmoid(value),
                        alternatives=tuple(self.alternatives(place, replacement)))
            edits[seg.doc].append((edit, count_words(original)))
        for doc, row in enumerate(t5):  # the T5's sure edits stand where the finder is less sure
            for e in row:
                if e.confidence < self.config.t5_keep:
                    continue
                over = [x for x in edits[doc] if e.offset < x[0].offset + x[0].length and x[0].offset < e.offset + e.length]
                if all(x[0].confidence < e.confidence for x in over):
                    edits[doc] = [x for x in edits[doc] if x not in over] + [(e, count_words(e.original))]
        doc_words: list[list[tuple[int, int, float]]] = [[] for _ in texts]
        for seg, row in zip(segments, words):
            doc_words[seg.doc] += [(seg.start + a, seg.start + b, p) for a, b, p in row]
        for doc, text in enumerate(texts):
            edits[doc] += self._repeats(text, edits[doc], doc_words[doc])
        flags = [self._flags(text, [e for e, _ in edits[doc]], doc_words[doc]) for doc, text in enumerate(texts)]
        return edits, flags

    def _repeats(self, text: str, edits: list[tuple[Edit, int]], words: list[tuple[int, int, float]]
                 ) -> list[tuple[Edit, int]]:
        """The document as evidence: a pair written with a confident score is written again at
        the other places where the same wording stands and the detector is not sure it is clean."""
        from .text import count_words

        confirm = _sigmoid(self.config.confirm_score)
        pairs: dict[str, Edit] = {}
        for edit, _ in sorted(edits, key=lambda e: -e[0].confidence):
            if edit.confidence >= confirm and re.fullmatch(r"[\w' ’-]+", edit.original):
                pairs.setdefault(edit.original.lower(), edit)
        taken = [(e.offset, e.offset + e.length) for e, _ in edits]
        prob = {start: p for start, _, p in words}
        added = []
        for key, source in pairs.items():
            for m in re.finditer(r"(?<!\w)" + re.escape(key) + r"(?!\w)", text, re.IGNORECASE):
                start, end = m.span()
                if any(start < b and a < end for a, b in taken) or prob.get(start, 0.0) < self.config.repeat_threshold:
                    continue
                taken.append((start, end))
                edit = Edit(start, end - start, m.group(), _cased_like(m.group(), source.replacement), source.confidence,
                            alternatives=source.alternatives)
                added.append((edit, count_words(m.group())))
        return added

    def _flags(self, text: str, edits: list[Edit], words: list[tuple[int, int, float]]) -> list[Flag]:
        """Runs of words at or above the detector's threshold that no edit touches."""
        threshold = self.detector.config.threshold
        flags: list[Flag] = []
        for start, end, p in words:
            if p < threshold or any(start < e.offset + e.length and e.offset < end for e in edits):
                continue
            if flags and text[flags[-1].offset + flags[-1].length : start].isspace():
                last = flags[-1]
                flags[-1] = Flag(last.offset, end - last.offset, text[last.offset : end], round(max(last.probability, p), 3))
            else:
                flags.append(Flag(start, end - start, text[start:end], round(p, 3)))
        return flags

    def alternatives(self, place: _Place, chosen: str) -> list[dict]:
        ranked = sorted(((score(self.config.weights, f), r) for r, f in place.options.items()), reverse=True)
        return [{"value": r, "score": round(s, 3)} for s, r in ranked if r != chosen][:3]


def _window(sentence: str, start: int, end: int, left_words: int, right_words: int) -> tuple[str, str]:
    """The text before ``start`` cut to its last ``left_words`` words and after ``end`` cut to its
    first ``right_words`` words (whitespace-separated)."""
    before = sentence[:start]
    cut = [m.start() for m in re.finditer(r"\S+", before)]
    left = before[cut[-left_words]:] if len(cut) > left_words else before
    after = sentence[end:]
    ends = [m.end() for m in re.finditer(r"\S+", after)]
    right = after[: ends[right_words - 1]] if len(ends) > right_words else after
    return left, right


def _sigmoid(x: float) -> float:
    return round(1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, x)))), 4)


def _cased_like(source: str, text: str) -> str:
    """``text`` capitalised like ``source``'s first letter (all caps stays all caps)."""
    if source.isupper() and len(source) > 1:
        return text.upper()
    if source[:1].isupper():
        return text[:1].upper() + text[1:]
    return text


