"""Evaluation of a restorer on a built dataset's test split, against two baselines.

    metrics = evaluate(EvalConfig(model="rewrite/models/default", data="data/news"))

Metrics (each for the model, the frequency baseline and doing nothing; also for the frequency
table applied at the known spun spans, a reference that separates finding spins from wording them):

* ``slot_recall``: share of spun spans whose output carries the original wording there;
* ``wrongful_edits_per_100_words``: output words that differ from the input outside spun
  spans (changed or inserted), per 100 input words;
* ``unchanged_rate_unspun``: share of unspun examples that come back exactly as they went in;
* ``exact_match``: share of outputs equal to the original sentence;
* ``chrf``: chrF of outputs against the originals (the do-nothing row is chrF of the spun input).

Word alignment is ``rewrite.align.token_opcodes`` over ``rewrite.text.WORD_RE`` tokens, output against spun input. Also measured: restoration of
``../shared/eval/tortured_phrases.tsv`` (each phrase in neutral carrier sentences; evaluation
only, never training data), and the restored sample article.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import time
from collections import Counter
from pathlib import Path

from rewrite.align import token_opcodes
from rewrite.text import WORD_RE
from seeds import SAMPLE_ARTICLE

from .errors import DatasetError

log = logging.getLogger(__name__)
# Evaluation only, never shipped: measured when the workspace's ../shared/eval is there.
TORTURED = Path(__file__).resolve().parents[2] / "shared" / "eval" / "tortured_phrases.tsv"
SAMPLE = SAMPLE_ARTICLE
CONFIDENCE_SWEEP = (0.3, 0.5, 0.7, 0.9)
CARRIERS = (
    "In this paper we study {} and its applications.",
    "Recent work on {} has grown quickly.",
    "The results show that {} improves the outcome.",
)


@dataclasses.dataclass
class EvalConfig:
    model: str = ""  # model folder ("" = the shipped default)
    data: str = ""  # built dataset folder (test split used)
    split: str = "test"
    max_examples: int | None = 2000
    tortured: str = str(TORTURED)
    tortured_max: int | None = 600
    sample: str = str(SAMPLE)
    seed: int = 13
    batch_size: int = 32


# ---------------------------------------------------------------- scoring


def _words(text: str) -> list[str]:
    return WORD_RE.findall(text)


def spun_spans(edits: list[dict]) -> list[tuple[int, int, str]]:
    """(start, end, original wording) of each swap in *spun* coordinates."""
    out, shift = [], 0
    for ed in sorted(edits, key=lambda e: e["start"]):
        start = ed["start"] + shift
        out.append((start, start + len(ed["replacement"]), ed["original"]))
        shift += len(ed["replacement"]) - (ed["end"] - ed["start"])
    return out


def _regions(opcodes, slots: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge the changed stretches of the spun->output alignment with the spun slots (token
    ranges), so every slot lies wholly inside one region."""
    spans = sorted([(i1, i2) for op, i1, i2, _, _ in opcodes if op != "equal"] + slots)
    merged: list[list[int]] = []
    for a, b in spans:
        if merged and (a < merged[-1][1] or (a == merged[-1][1] and (a == b or merged[-1][0] == merged[-1][1]))):
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged]


def _to_output(opcodes, i: int, end: bool) -> int:
    """Output token index matching spun token boundary ``i``: the leftmost candidate for a
    region's start, the rightmost for its end (so insertions at a boundary fall inside)."""
    found = []
    for op, i1, i2, j1, j2 in opcodes:
        if op == "equal" and i1 <= i <= i2:
            found.append(j1 + (i - i1))
        elif op != "equal" and i in (i1, i2):
            found += [j1] if i == i1 else []
            found += [j2] if i == i2 else []
    return (max(found) if end else min(found)) if found else 0


def score_pair(spun: str, output: str, edits: list[dict]) -> dict:
    """Slots restored, slots, wrongful edits and word count for one example.

    The output is aligned to the *spun* input; each stretch where they differ (widened to whole
    slots) is then aligned to what the original has there. A slot (a swapped span) is restored
    when the output has the original wording in its place; any other difference is a wrongful
    edit (a changed or inserted word outside every slot). Doing nothing scores 0 and 0."""
    s_spans = [m.span() for m in WORD_RE.finditer(spun)]
    s_toks = [spun[a:b] for a, b in s_spans]
    out = _words(output)
    slots = []  # (first token, end token, original tokens)
    sources = []  # lexicon source of each slot
    ordered = sorted(edits, key=lambda e: e["start"])
    for ed, (start, end, original) in zip(ordered, spun_spans(edits)):
        inside = [k for k, (a, b) in enumerate(s_spans) if a >= start and b <= end]
        if inside:
            slots.append((inside[0], inside[-1] + 1, _words(original)))
            sources.append(ed.get("source", "?"))
    opcodes = token_opcodes(s_toks, out)
    wrongful = 0
    slot_ok = [False] * len(slots)
    for a, b in _regions(opcodes, [(x, y) for x, y, _ in slots]):
        expected: list[tuple[str, int]] = []  # (token, slot number or -1)
        k = a
        inner = sorted(n for n, slot in enumerate(slots) if a <= slot[0] and slot[1] <= b)
        for n in inner:
            x, y, original = slots[n]
            expected += [(t, -1) for t in s_toks[k:x]] + [(t, n) for t in original]
            k = y
        expected += [(t, -1) for t in s_toks[k:b]]
        got = out[_to_output(opcodes, a, False) : _to_output(opcodes, b, True)]
        ok = dict.fromkeys(inner, True)
        tokens = [t for t, _ in expected]
        for op, e1, e2, g1, g2 in token_opcodes(tokens, got):
            if op == "equal":
                continue
            owners = {expected[e][1] for e in range(e1, e2)}
            if e1 == e2:  # an insertion on a slot's edge is part of that slot's (failed) rewrite
                owners = {expected[e1 - 1][1] if e1 > 0 else -1, expected[e1][1] if e1 < len(expected) else -1}
                wrongful += 0 if owners - {-1} else g2 - g1
            else:
                wrongful += sum(1 for e in range(e1, e2) if expected[e][1] < 0)
            for n in owners - {-1}:
                ok[n] = False
        for n, good in ok.items():
            slot_ok[n] = good
    words = sum(1 for t in s_toks if t[0].isalnum())
    return {"slots": len(slots), "restored": sum(slot_ok), "wrongful": wrongful, "words": words,
            "by_source": list(zip(sources, slot_ok))}


def score_system(spun: list[str], originals: list[str], outputs: list[str], edits: list[list[dict]]) -> dict:
    from sacrebleu.metrics import CHRF

    slots = restored = wrongful = words = 0
    unspun = unspun_same = exact = 0
    by_source: dict[str, list[int]] = {}
    for source, original, output, eds in zip(spun, originals, outputs, edits):
        s = score_pair(source, output, eds)
        for lexicon, good in s["by_source"]:
            tally = by_source.setdefault(lexicon, [0, 0])
            tally[0] += good
            tally[1] += 1
        slots += s["slots"]
        restored += s["restored"]
        wrongful += s["wrongful"]
        words += s["words"]
        exact += output == original
        if not eds:
            unspun += 1
            unspun_same += output == original
    chrf = CHRF().corpus_score(outputs, [originals]).score if outputs else 0.0
    return {
        "slot_recall": round(restored / max(slots, 1), 4),
        "wrongful_edits_per_100_words": round(100 * wrongful / max(words, 1), 3),
        "unchanged_rate_unspun": round(unspun_same / max(unspun, 1), 4),
        "exact_match": round(exact / max(len(outputs), 1), 4),
        "chrf": round(chrf, 2),
        "examples": len(outputs),
        "spun_slots": slots,
        "unspun_examples": unspun,
        "slot_recall_by_source": {
            k: {"recall": round(r / n, 4), "slots": n} for k, (r, n) in sorted(by_source.items())
        },
    }


# ---------------------------------------------------------------- frequency baseline


class FrequencyBaseline:
    """Each spun phrase seen in training replaced by its most frequent original."""

    def __init__(self, train_rows, min_count: int = 2):
        counts: dict[str, Counter] = {}
        for edits in train_rows:
            for ed in edits:
                key = " ".join(_words(ed["replacement"].lower()))
                counts.setdefault(key, Counter())[ed["original"]] += 1
        self.table = {
            spun: c.most_common(1)[0][0]
            for spun, c in counts.items()
            if sum(c.values()) >= min_count
        }
        self.max_tokens = max((len(_words(k)) for k in self.table), default=1)

    def restore_at(self, text: str, edits: list[dict]) -> str:
        """Only the spun spans (``edits``) looked up: the table's wording with the locations known,
        a reference for how much of the task is finding the spins and how much is wording them."""
        out, last = [], 0
        for start, end, _ in spun_spans(edits):
            spun = text[start:end]
            out.append(text[last:start] + _cased(self.table.get(" ".join(_words(spun.lower())), spun), spun))
            last = end
        out.append(text[last:])
        return "".join(out)

    def restore(self, text: str) -> str:
        spans = [m.span() for m in WORD_RE.finditer(text)]
        out, last, i = [], 0, 0
        while i < len(spans):
            for n in range(min(self.max_tokens, len(spans) - i), 0, -1):
                s, e = spans[i][0], spans[i + n - 1][1]
                key = " ".join(text[a:b] for a, b in spans[i : i + n]).lower()
                if key in self.table:
                    out.append(text[last:s] + _cased(self.table[key], text[s:e]))
                    last, i = e, i + n
                    break
            else:
                i += 1
        out.append(text[last:])
        return "".join(out)


def _cased(replacement: str, spun: str) -> str:
    """``replacement`` capitalised when the spun wording it replaces starts with a capital."""
    return replacement[:1].upper() + replacement[1:] if spun[:1].isupper() else replacement


# ---------------------------------------------------------------- running


def load_restorer(model: str):
    from rewrite import Restorer

    return Restorer.from_pretrained(model or None)


def restore_all(restorer, texts: list[str], batch_size: int) -> list:
    """Restorations (with every edit, whatever its confidence) of ``texts``."""
    out = []
    for i in range(0, len(texts), batch_size):
        out.extend(restorer.restore_many(texts[i : i + batch_size], min_confidence=0.0))
    return out


def restore_texts(restorer, texts: list[str], batch_size: int) -> list[str]:
    return [r.text for r in restore_all(restorer, texts, batch_size)]


def at_confidence(texts: list[str], restorations: list, threshold: float) -> list[str]:
    """The outputs a user gets with ``min_confidence=threshold``."""
    from rewrite import apply_edits

    return [apply_edits(t, [e for e in r.edits if e.confidence >= threshold]) for t, r in zip(texts, restorations)]


def tortured_rate(restorer, path: str, limit: int | None, seed: int, batch_size: int) -> dict:
    """Share of real tortured phrases restored to their standard term inside carrier sentences."""
    rows = []
    with open(path, encoding="utf-8") as f:
        next(f)
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 2 and parts[0] and parts[1]:
                rows.append((parts[0], parts[1]))
    rng = random.Random(seed)
    if limit and len(rows) > limit:
        rows = rng.sample(rows, limit)
    inputs, targets = [], []
    for k, (spun, standard) in enumerate(rows):
        carrier = CARRIERS[k % len(CARRIERS)]
        inputs.append(carrier.format(spun))
        targets.append(carrier.format(standard))
    outputs = restore_texts(restorer, inputs, batch_size)
    restored = sum(o.lower() == t.lower() for o, t in zip(outputs, targets))
    touched = sum(o != i for o, i in zip(outputs, inputs))
    examples = [{"input": i, "output": o, "target": t} for i, o, t in list(zip(inputs, outputs, targets))[:10]]
    return {"phrases": len(rows), "restore_rate": round(restored / max(len(rows), 1), 4),
            "changed_rate": round(touched / max(len(rows), 1), 4), "examples": examples}


def evaluate(config: EvalConfig) -> dict:
    """Score the model and the baselines; write ``metrics.json`` beside the model."""
    from .build import load_dataset_dir

    dataset = load_dataset_dir(config.data)
    if config.split not in dataset or len(dataset[config.split]) == 0:
        raise DatasetError(f"{config.data} has no {config.split!r} examples to evaluate on")
    test = dataset[config.split]
    if config.max_examples and len(test) > config.max_examples:
        test = test.shuffle(seed=config.seed).select(range(config.max_examples))
    spun, originals, edits = list(test["spun"]), list(test["original"]), list(test["edits"])
    restorer = load_restorer(config.model)
    started = time.time()
    restorations = restore_all(restorer, spun, config.batch_size)
    outputs = [r.text for r in restorations]
    seconds = time.time() - started
    baseline = FrequencyBaseline(dataset["train"]["edits"])
    results = {
        "model": score_system(spun, originals, outputs, edits),
        "frequency_baseline": score_system(spun, originals, [baseline.restore(s) for s in spun], edits),
        "do_nothing": score_system(spun, originals, spun, edits),
        "frequency_at_known_spans": score_system(
            spun, originals, [baseline.restore_at(s, e) for s, e in zip(spun, edits)], edits),
        "by_min_confidence": {
            str(t): score_system(spun, originals, at_confidence(spun, restorations, t), edits)
            for t in sorted({*CONFIDENCE_SWEEP, restorer.config.min_confidence})
        },
        "restore_seconds": round(seconds, 1),
        "dataset": str(config.data),
        "split": config.split,
    }
    if config.tortured and Path(config.tortured).is_file():
        results["tortured_phrases"] = tortured_rate(restorer, config.tortured, config.tortured_max, config.seed, config.batch_size)
    if config.sample and Path(config.sample).is_file():
        results["sample_article"] = restorer.restore(Path(config.sample).read_text(encoding="utf-8")).text
    worst = [
        {"spun": s, "output": o, "original": g}
        for s, o, g in zip(spun, outputs, originals) if o != g
    ][:5]
    best = [
        {"spun": s, "output": o, "original": g}
        for s, o, g, e in zip(spun, outputs, originals, edits) if o == g and e
    ][:5]
    results["examples"] = {"restored": best, "wrong": worst}
    model_dir = Path(getattr(restorer, "model_folder", None) or config.model or "")
    if model_dir.is_dir():
        (model_dir / "metrics.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    return results


def format_table(results: dict) -> str:
    """Markdown table: model vs baseline vs do-nothing."""
    keys = ["slot_recall", "wrongful_edits_per_100_words", "unchanged_rate_unspun", "exact_match", "chrf"]
    rows = ["| system | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name in ("model", "frequency_baseline", "do_nothing"):
        rows.append(f"| {name} | " + " | ".join(str(results[name][k]) for k in keys) + " |")
    for threshold, scores in results.get("by_min_confidence", {}).items():
        rows.append(f"| model, min_confidence {threshold} | " + " | ".join(str(scores[k]) for k in keys) + " |")
    if "frequency_at_known_spans" in results:
        scores = results["frequency_at_known_spans"]
        rows.append("| reference: frequency table at the known spun spans | "
                    + " | ".join(str(scores[k]) for k in keys) + " |")
    by_source = results["model"].get("slot_recall_by_source", {})
    if by_source:
        rows.append("\nmodel slot recall by lexicon source: " + ", ".join(
            f"{k} {v['recall']} ({v['slots']} slots)" for k, v in by_source.items()))
    if "tortured_phrases" in results:
        t = results["tortured_phrases"]
        rows.append(f"\ntortured phrases: restore rate {t['restore_rate']} over {t['phrases']} phrases "
                    f"(changed {t['changed_rate']})")
    return "\n".join(rows)
