"""The training-free baseline: the pretrained language model choosing among the channel's inverse
candidates, the number every trained restorer must beat on real spun text.

No training at all. The builder's lexicon (the channel the models learn to undo) is read
backwards: each wording it renders a common wording as, directly or through its lemma with
inflection, points back to that wording (``InverseChannel``). Spun text is then scanned for
wordings that point back to something; the pretrained SmolLM2 (``rewrite.lm``, the base weights,
not a fine-tune) scores each place kept as it is and with candidates put back, over a window of
context (up to ``prefix_tokens`` tokens before the place and ``context_words`` tokens after it).
A candidate that makes the window more likely by at least ``margin`` nats becomes an edit;
overlapping edits go to the larger gain. Confidence is ``1 - exp(-gain / 3)``, so
``min_confidence`` picks a margin: 0.5 is a gain of 2.1 nats, 0.7 is 3.6, 0.9 is 6.9.

    >>> restorer = LmBaselineRestorer.build(corpus=["../shared/corpora"])
    >>> restorer.restore_many(["Rubio mentioned on Wednesday that not less than 15 individuals "
    ...                        "were useless after the struggle."])[0].text
    'Rubio said on Wednesday that at least 15 people were dead after the battle.'

``python -m research.rerank evaluate --markup FILES --corpus C`` scores it like any model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
from collections import Counter
from pathlib import Path

from rewrite.edits import Edit, apply_edits
from rewrite.model_folder import cache_root
from rewrite.restorer import Restoration
from rewrite.text import WORD_RE, count_words

from training.corpus import corpus_files, read_corpus
from training.errors import ConfigError
from training.lexicon import Variant
from training.spinner import OWN_SOURCES, inflect_variant, keeps_quantities, lemma_readings

log = logging.getLogger(__name__)

MAX_SPUN_TOKENS = 4  # longest spun wording looked up
# Meteor's pivot paraphrases ("mentioned" -> "which we have in") swamp the thesauri when read
# backwards; the baseline reads the others.
SOURCES = ("seed", "moby", "mythes", "ppdb", "rules")
GAIN_SCALE = 3.0  # confidence = 1 - exp(-gain / GAIN_SCALE)


@dataclasses.dataclass(frozen=True)
class BaselineConfig:
    """Settings of the baseline; ``vocab_size`` most common corpus words are the originals it may
    put back (spinners swap common words), ``top_k`` candidates of a place (best supported, then
    most common) go to the first-token filter, and at most ``keep`` of those within
    ``first_token_slack`` nats of the spun wording's first token are scored in full."""

    vocab_size: int = 30_000
    top_k: int = 8
    keep: int = 2
    first_token_slack: float = 1.0
    margin: float = 0.5  # least gain in nats for an edit at all
    prefix_tokens: int = 16
    context_words: int = 3
    batch_size: int = 64

    def __post_init__(self) -> None:
        if min(self.vocab_size, self.top_k, self.keep, self.prefix_tokens) < 1 or self.context_words < 0:
            raise ConfigError("vocab_size, top_k, keep and prefix_tokens must be >= 1 and context_words >= 0")
        if self.margin < 0:
            raise ConfigError("margin is a gain in nats: give a number >= 0")


def word_counts(corpus: list[str]) -> Counter:
    """Lower-cased word counts of the corpus files, cached by their names, sizes and mtimes."""
    files = sorted(f for path in corpus for f in corpus_files(path))
    key = hashlib.sha256(json.dumps([(str(f), f.stat().st_size, f.stat().st_mtime) for f in files]).encode())
    cache = cache_root() / "wordfreq" / f"{key.hexdigest()[:16]}.json"
    if cache.is_file():
        return Counter(json.loads(cache.read_text()))
    counts: Counter = Counter()
    for path in corpus:
        for doc in read_corpus(path):
            for paragraph in doc.paragraphs:
                counts.update(t.lower() for t in WORD_RE.findall(paragraph) if t[0].isalpha())
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps(dict(counts)))
    tmp.replace(cache)
    return counts


class InverseChannel:
    """The lexicon read backwards: spun wording (lower-cased tokens joined by one space) -> the
    common wordings it renders, each with its *support* (how many sources list the pair).
    ``exact`` holds renderings as the lexicon writes them; ``lemmas`` holds one-word renderings of
    one-word wordings, so an inflected spun word finds its original through its lemma, inflected
    back ("mentioned" -> "mention" -> "say" -> "said"). ``rank`` orders words by commonness."""

    def __init__(self, exact: dict[str, dict[str, int]], lemmas: dict[str, dict[tuple[str, str], int]],
                 rank: dict[str, int]):
        self.exact, self.lemmas, self.rank = exact, lemmas, rank

    @classmethod
    def build(cls, lexicon, counts: Counter, vocab_size: int, sources: tuple[str, ...] = SOURCES) -> "InverseChannel":
        rank = {w: i for i, (w, _) in enumerate(counts.most_common(vocab_size))}
        exact: dict[str, dict[str, int]] = {}
        lemmas: dict[str, dict[tuple[str, str], int]] = {}
        for source, table in lexicon.entries.items():
            if source not in sources:
                continue
            for key, variants in table.items():
                words = key.split(" ")
                if not all(w in rank for w in words):
                    continue  # spinners swap common wordings; a rare one is not worth putting back
                for v in {v.text.lower(): v for v in variants}.values():
                    spun = " ".join(WORD_RE.findall(v.text.lower()))
                    if (v.kind == "number" or spun == key or spun.count(" ") >= MAX_SPUN_TOKENS
                            or not keeps_quantities(key, v)):
                        continue
                    row = exact.setdefault(spun, {})
                    row[key] = row.get(key, 0) + 1
                    if len(words) == 1 and " " not in spun and v.kind == "word" and source not in OWN_SOURCES:
                        row = lemmas.setdefault(spun, {})
                        row[key, v.pos] = row.get((key, v.pos), 0) + 1
        return cls(exact, lemmas, rank)

    def _commonness(self, phrase: str) -> int:  # a phrase is as common as its rarest word
        return max(self.rank.get(t, len(self.rank)) for t in phrase.split(" "))

    def originals(self, spun: str) -> list[str]:
        """The wordings ``spun`` (lower-cased, tokens joined by one space) may stand for, best
        supported first, then most common."""
        return [original for original, _ in self.supported(spun)]

    def supported(self, spun: str) -> list[tuple[str, int]]:
        """``originals(spun)`` with each one's support (how many sources list the pair)."""
        found = dict(self.exact.get(spun, {}))
        if " " not in spun:
            for upos, lemma, tag in lemma_readings(spun):
                for (key, pos), support in self.lemmas.get(lemma, {}).items():
                    if pos in ("", upos):
                        form = inflect_variant(Variant(key, "", "word", upos), tag, upos)
                        if form and form != spun:
                            found[form] = max(found.get(form, 0), support)
        return sorted(found.items(), key=lambda o: (-o[1], self._commonness(o[0]), o[0]))

    def places(self, text: str, top_k: int, spans: list[tuple[int, int]] | None = None
               ) -> list[tuple[int, int, list[tuple[str, int]]]]:
        """``(start, end, candidates)`` of every wording in ``text`` that points back to something,
        each candidate with its support (``spans``: the text's ``WORD_RE`` token spans, when the
        caller has them)."""
        spans = [m.span() for m in WORD_RE.finditer(text)] if spans is None else spans
        lower = [text[s:e].lower() for s, e in spans]
        found = []
        for i in range(len(spans)):
            if not lower[i][0].isalpha():
                continue
            for n in range(1, min(MAX_SPUN_TOKENS, len(spans) - i) + 1):
                originals = self.supported(" ".join(lower[i : i + n]))
                if originals:
                    found.append((spans[i][0], spans[i + n - 1][1], originals[:top_k]))
        return found


def _cased_like(source: str, text: str) -> str:
    """``text`` with the first letter's case of ``source`` ("Mentioned" -> "Said")."""
    if source[:1].isupper() and text[:1].islower():
        return text[:1].upper() + text[1:]
    return text


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A wording that may be put back at ``text[start:end]`` of a line: ``gain`` is how many nats
    more likely the language model finds the window with it; ``support`` is how many lexicon
    sources list the pair and ``rank`` its place in the channel's list (0 = best; -1 and support
    0: not the channel's, another system's edit)."""

    start: int
    end: int
    text: str
    gain: float
    support: int
    rank: int


class LmScorer:
    """Log-likelihoods of token windows after token prefixes, under a causal language model."""

    def __init__(self, model, tokenizer, batch_size: int):
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size
        self.start = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []

    def next_token_logprobs(self, ids: list[int]):
        """``[len(ids), vocab]`` log-probabilities of the token after each prefix of ``ids``."""
        import torch

        with torch.inference_mode():
            logits = self.model(input_ids=torch.tensor([ids])).logits[0].float()
        return torch.log_softmax(logits, dim=-1)

    def score(self, rows: list[tuple[list[int], list[int]]]) -> list[float]:
        """``sum log P(body | head)`` in nats for each ``(head_ids, body_ids)``; heads start with
        the model's first token."""
        import torch

        order = sorted(range(len(rows)), key=lambda r: len(rows[r][0]) + len(rows[r][1]))
        scores = [0.0] * len(rows)
        pad = self.tokenizer.pad_token_id or 0
        for b in range(0, len(order), self.batch_size):
            batch = order[b : b + self.batch_size]
            width = max(len(rows[r][0]) + len(rows[r][1]) for r in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for k, r in enumerate(batch):
                seq = rows[r][0] + rows[r][1]
                ids[k, : len(seq)] = torch.tensor(seq)
                mask[k, : len(seq)] = 1
            with torch.inference_mode():
                logp = torch.log_softmax(self.model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)
            for k, r in enumerate(batch):
                head, body = rows[r]
                positions = torch.arange(len(head) - 1, len(head) + len(body) - 1)
                scores[r] = float(logp[k, positions, torch.tensor(body)].sum())
        return scores


class LmBaselineRestorer:
    """Restores text with an ``InverseChannel`` and an ``LmScorer`` (see the module's docstring);
    ``restore_many`` answers like ``rewrite.Restorer.restore_many``.

    Two passes a line: one forward pass over the spun line gives, at every place, how likely the
    model finds the first token of the spun wording and of each candidate; candidates no more
    than ``config.first_token_slack`` nats below the spun wording's first token (at most
    ``config.keep`` of them) are then scored over the whole window."""

    def __init__(self, channel: InverseChannel, scorer: LmScorer, config: BaselineConfig):
        self.channel, self.scorer, self.config = channel, scorer, config
        self.model_folder = None

    @classmethod
    def build(cls, corpus: list[str], lexicon=None, config: BaselineConfig | None = None,
              model=None, tokenizer=None) -> "LmBaselineRestorer":
        """The channel from ``lexicon`` (default: the builder's) and the common words of ``corpus``;
        the scorer from ``model``/``tokenizer`` (default: SmolLM2's base weights, ``rewrite.lm``)."""
        config = config or BaselineConfig()
        if lexicon is None:
            from training.lexicon import load_lexicon

            lexicon = load_lexicon()
        channel = InverseChannel.build(lexicon, word_counts(corpus), config.vocab_size)
        log.info("inverse channel: %d spun wordings, %d lemmas", len(channel.exact), len(channel.lemmas))
        if model is None:
            from rewrite.lm import load_model

            model, tokenizer = load_model()
        return cls(channel, LmScorer(model, tokenizer, config.batch_size), config)

    def line_candidates(self, text: str, extra: list[tuple[int, int, str]] = ()) -> list[Candidate]:
        """Every candidate of ``text`` (one line) with its gain in nats over keeping the spun
        wording: the channel's candidates that pass the first-token filter, and ``extra``
        ``(start, end, replacement)`` wordings (another system's edits) scored in the same window
        without the filter. A place that starts inside a token is not scored."""
        words = [m.span() for m in WORD_RE.finditer(text)]
        places = self.channel.places(text, self.config.top_k, words) if self.channel is not None else []
        wanted: dict[tuple[int, int], dict[str, tuple[int, int]]] = {}  # span -> candidate -> (support, rank)
        for start, end, originals in places:
            for rank, (original, support) in enumerate(originals):
                wanted.setdefault((start, end), {})[_cased_like(text[start:end], original)] = (support, rank)
        extras = {(start, end): replacement for start, end, replacement in extra}
        if not wanted and not extras:
            return []
        tokenizer = self.scorer.tokenizer
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets = self.scorer.start + enc["input_ids"], [(0, 0)] * len(self.scorer.start) + enc["offset_mapping"]
        first = self.scorer.next_token_logprobs(ids)
        rows, owners = [], []
        for start, end in sorted({*wanted, *extras}):
            # the token that starts the place, with the space before it ("Rubio| mentioned")
            j = next((k for k in range(len(self.scorer.start), len(ids)) if offsets[k][1] > start), None)
            if j is None or j == 0 or text[offsets[j][0] : start].strip():
                continue  # the place starts inside a token ("re-|elected"): not comparable
            lead = text[offsets[j][0] : start]
            after = [w for w in words if w[0] >= end][: self.config.context_words]
            tail = text[end : after[-1][1]] if after else ""
            spun = text[start:end]
            keep_first = float(first[j - 1, ids[j]])
            options = []
            for candidate, (support, rank) in wanted.get((start, end), {}).items():
                body = tokenizer.encode(lead + candidate + tail, add_special_tokens=False)
                lp = float(first[j - 1, body[0]])
                if lp >= keep_first - self.config.first_token_slack:
                    options.append((lp, candidate, body, support, rank))
            options = sorted(options, key=lambda o: -o[0])[: self.config.keep]
            if (start, end) in extras and extras[start, end] not in {o[1] for o in options}:
                candidate = extras[start, end]
                support, rank = wanted.get((start, end), {}).get(candidate, (0, -1))
                options.append((0.0, candidate, tokenizer.encode(lead + candidate + tail, add_special_tokens=False),
                                support, rank))
            if not options:
                continue
            head = ids[:j][-self.config.prefix_tokens :]
            if head[: len(self.scorer.start)] != self.scorer.start:
                head = self.scorer.start + head
            rows.append((head, tokenizer.encode(lead + spun + tail, add_special_tokens=False)))
            owners.append(None)
            for _, candidate, body, support, rank in options:
                rows.append((head, body))
                owners.append(Candidate(start, end, candidate, 0.0, support, rank))
        scores = self.scorer.score(rows)
        found, kept = [], 0.0
        for owner, score in zip(owners, scores):
            if owner is None:
                kept = score
            else:
                found.append(dataclasses.replace(owner, gain=score - kept))
        return found

    def _line_edits(self, text: str) -> list[Edit]:
        best: dict[tuple[int, int], Candidate] = {}
        for c in self.line_candidates(text):
            if (c.start, c.end) not in best or c.gain > best[c.start, c.end].gain:
                best[c.start, c.end] = c
        ranked = sorted(best.values(), key=lambda c: (c.gain, (c.start, c.end), c.text), reverse=True)
        return non_overlapping(text, [(c, round(1 - math.exp(-c.gain / GAIN_SCALE), 4))
                                      for c in ranked if c.gain >= self.config.margin])

    def restore_many(self, texts: list[str], min_confidence: float = 0.0) -> list[Restoration]:
        return restore_by_line(texts, lambda lines: [self._line_edits(line) for line in lines], min_confidence)


def non_overlapping(line: str, ranked: list[tuple[Candidate, float]]) -> list[Edit]:
    """Edits of ``line`` from ``(candidate, confidence)`` pairs, best first: a candidate that
    overlaps one taken before it is skipped."""
    edits, taken = [], []
    for c, confidence in ranked:
        if any(c.start < b and a < c.end for a, b in taken):
            continue
        taken.append((c.start, c.end))
        edits.append(Edit(c.start, c.end - c.start, line[c.start : c.end], c.text, confidence))
    return edits


def restore_by_line(texts: list[str], line_edits, min_confidence: float = 0.0) -> list[Restoration]:
    """Restorations of ``texts`` from ``line_edits(lines)``, which gives each line's edits (offsets
    within the line); edits below ``min_confidence`` are dropped."""
    results = []
    for text in texts:
        lines = text.split("\n")
        edits, at = [], 0
        for line, found in zip(lines, line_edits(lines)):
            edits += [dataclasses.replace(e, offset=e.offset + at) for e in found if e.confidence >= min_confidence]
            at += len(line) + 1
        edits.sort(key=lambda e: e.offset)
        words = count_words(text)
        changed = sum(count_words(e.original) for e in edits)
        results.append(Restoration(apply_edits(text, edits), edits, changed / words if words else 0.0))
    return results

