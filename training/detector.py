"""Fit the spin detector's head (``rewrite.detector``) on annotated real spun text.

    markup files -> sentences, their words and labels (1: inside a place the spinner changed)
                 -> FeatureReader vectors (frozen SmolLM2)
                 -> logistic head (L2, fitted with L-BFGS), cross-validated by file
                 -> head.safetensors + detector.json (config, threshold, files and their hashes)

A word is whitespace-separated, as ``../shared/eval/score.py detect`` counts them; the labels
come from the markup's places (``[[spun||original]]`` where the spun wording is not among the
alternatives). Cross-validation holds out whole files, so a passage never scores itself.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from pathlib import Path

from rewrite.detector import DetectorConfig, FeatureReader, word_spans
from rewrite.text import split_sentences

from .errors import DatasetError
from .flags import setting
from .markup import SLOT

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Passage:
    """One markup file cut into sentences: ``sentences[i]`` with ``labels[i]`` (one a word)."""

    name: str
    sentences: list[str]
    labels: list[list[int]]


def places(markup: str) -> list[tuple[int, int]]:
    """Code-point spans, in the spun text, of the places that need a change."""
    from .channel import norm

    out, pos, at = [], 0, 0
    for m in SLOT.finditer(markup):
        at += m.start() - pos
        spun, alts = m.group(1), [a.strip() for a in m.group(2).split("|")]
        if norm(spun) not in {norm(a) for a in alts}:
            out.append((at, at + len(spun)))
        at += len(spun)
        pos = m.end()
    return out


def read_passage(path: Path) -> Passage:
    """Sentences of a markup file's spun text with a 0/1 label for each of their words."""
    markup = path.read_text(encoding="utf-8")
    if "[[" not in markup:
        raise DatasetError(f"{path} has no [[spun||original]] place: not a markup file")
    spun = SLOT.sub(r"\1", markup)
    spans = places(markup)
    sentences, labels, line_start = [], [], 0
    for line in spun.split("\n"):
        for a, b in split_sentences(line):
            sentence = line[a:b]
            offset = line_start + a
            sentences.append(sentence)
            labels.append([int(any(offset + s < pe and ps < offset + e for ps, pe in spans))
                           for s, e in word_spans(sentence)])
        line_start += len(line) + 1
    return Passage(path.name, sentences, labels)


def read_features(passages: list[Passage], reader: FeatureReader):
    """``(X, y, groups)``: one row a word, ``groups`` the passage's index."""
    import numpy as np

    sentences = [s for p in passages for s in p.sentences]
    feats = reader.read(sentences)
    X = np.concatenate(feats) if feats else np.zeros((0, reader.width), np.float32)
    y = np.array([label for p in passages for labels in p.labels for label in labels], np.float32)
    groups = np.array([i for i, p in enumerate(passages) for labels in p.labels for _ in labels])
    return X, y, groups


def fit_head(X, y, l2: float = 1.0, max_iter: int = 300) -> dict:
    """A logistic head over standardised features: ``{mean, scale, weight, bias}`` (numpy).
    ``l2`` is the penalty per example on the squared weights (larger: simpler head)."""
    import numpy as np
    import torch

    X = np.nan_to_num(X)
    mean = X.mean(0)
    scale = X.std(0) + 1e-4
    Z = torch.tensor((X - mean) / scale, dtype=torch.float32)
    target = torch.tensor(y, dtype=torch.float32)
    w = torch.zeros(Z.shape[1], requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(Z @ w + b, target) + l2 * (w * w).sum() / len(target)
        loss.backward()
        return loss

    torch.manual_seed(0)
    opt.step(closure)
    return {"mean": mean.astype(np.float32), "scale": scale.astype(np.float32),
            "weight": w.detach().numpy().astype(np.float32), "bias": b.detach().numpy().astype(np.float32)}


def predict(head: dict, X):
    import numpy as np

    z = (np.nan_to_num(X) - head["mean"]) / head["scale"]
    return 1.0 / (1.0 + np.exp(-np.clip(z @ head["weight"] + head["bias"][0], -30, 30)))


def cross_validate(X, y, groups, folds: int = 5, l2: float = 1.0):
    """Out-of-fold probabilities: each passage scored by a head that never saw it."""
    import numpy as np

    out = np.zeros(len(y))
    fold = groups % folds
    for k in range(folds):
        held = fold == k
        if held.any() and (~held).any():
            out[held] = predict(fit_head(X[~held], y[~held], l2), X[held])
    return out


def recall_at_precision(y, p, precision: float) -> tuple[float, float]:
    """Word recall at the lowest threshold whose word precision is still >= ``precision``, and
    that threshold (1.0 when no threshold reaches it)."""
    import numpy as np

    order = np.argsort(-p)
    hits = np.cumsum(y[order])
    prec = hits / np.arange(1, len(y) + 1)
    ok = np.where(prec >= precision)[0]
    if not len(ok) or y.sum() == 0:
        return 0.0, 1.0
    last = ok[-1]
    return float(hits[last] / y.sum()), float(p[order][last])


def file_facts(paths: list[Path]) -> list[dict]:
    return [{"name": p.name, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()} for p in paths]


def fit_detector(markup_files: list[Path], config: DetectorConfig, l2: float, precision: float,
                 reader: FeatureReader | None = None) -> tuple[dict, DetectorConfig, dict]:
    """Fit the head on every file; the threshold is the one that kept word precision at
    ``precision`` in cross-validation. Returns the head, the config with that threshold, and the
    facts to save beside it (files, cross-validated recall)."""
    if len(markup_files) < 2:
        raise DatasetError("fitting a detector needs at least 2 markup files (cross-validation holds files out)")
    passages = [read_passage(p) for p in markup_files]
    reader = reader or FeatureReader.from_base(config)
    X, y, groups = read_features(passages, reader)
    if y.sum() == 0:
        raise DatasetError("the markup files hold no place to restore: nothing to learn")
    oof = cross_validate(X, y, groups, folds=min(5, len(passages)), l2=l2)
    recall, threshold = recall_at_precision(y, oof, precision)
    log.info("detector: %d words, %d spun; cross-validated word recall %.3f at precision %.2f (threshold %.3f)",
             len(y), int(y.sum()), recall, precision, threshold)
    head = fit_head(X, y, l2)
    config = dataclasses.replace(config, threshold=round(threshold, 4))
    facts = {"trained_on": file_facts(markup_files), "words": int(len(y)), "spun_words": int(y.sum()),
             "l2": l2, "cv_word_recall": round(recall, 4), "cv_precision": precision}
    return head, config, facts


# ---------------------------------------------------------------- the whole finder, one command


@dataclasses.dataclass(frozen=True)
class FinderFitConfig:
    """Settings of ``unspin fit-detector``. Saved in ``finder.json`` beside what they made."""

    # Base-model layers the detector reads (cross-validated on real_train: 6,12,18 beat 15,30 and
    # single layers); a list, so set with --layers 6,12,18.
    layers: tuple[int, ...] = (6, 12, 18)
    l2: float = setting(50.0, "L2 penalty of the detector head (per example).")
    precision: float = setting(0.8, "Word precision at which the detector's flag threshold is set (cross-validated).")
    candidate_threshold: float = setting(0.45, "Detector probability from which a word gets channel candidates.")
    top_k: int = setting(4, "Channel candidates a spun wording brings.")
    chooser_every: int = setting(2, "Fit the chooser on every n-th file (LM scoring is the slow part).")
    chooser_l2: float = setting(1.0, "L2 penalty of the chooser.")
    edit_precision: float = setting(0.8, "Least share of right edits on the training files at the recommended min_confidence.")
    seed: int = setting(0, "Seed (torch) for the fits.")

    def __post_init__(self) -> None:
        if not 0 < self.precision < 1 or not 0 < self.edit_precision < 1:
            raise DatasetError("precision and edit_precision must lie strictly between 0 and 1")
        if self.top_k < 1 or self.chooser_every < 1 or self.l2 < 0 or self.chooser_l2 < 0:
            raise DatasetError("top_k and chooser_every must be >= 1, l2 and chooser_l2 >= 0")


def option_label(place_span: tuple[int, int], replacement: str, slots: list[tuple[int, int, set[str]]]) -> int:
    """1 when the option puts one of a place's alternatives exactly over that place."""
    from .channel import norm

    return int(any((s, e) == place_span and norm(replacement) in alts for s, e, alts in slots))


def slots_needing_change(markup: str) -> list[tuple[int, int, set[str]]]:
    """``(start, end, normalised alternatives)`` of each place, in spun-text code points."""
    from .channel import norm

    out, pos, at = [], 0, 0
    for m in SLOT.finditer(markup):
        at += m.start() - pos
        spun, alts = m.group(1), {norm(a) for a in m.group(2).split("|")}
        if norm(spun) not in alts:
            out.append((at, at + len(spun), alts))
        at += len(spun)
        pos = m.end()
    return out


def merge_real_counts(table, pairs: dict, top_k: int):
    """The table with ``pairs`` (``spun -> Counter(original)``) added to its real counts."""
    from rewrite.channel import Candidate, ChannelTable

    rows = {k: list(v) for k, v in table.rows.items()}
    for spun, originals in pairs.items():
        by_name = {c.original: c for c in rows.get(spun, [])}
        for original, n in originals.items():
            c = by_name.get(original)
            by_name[original] = dataclasses.replace(c, real=c.real + n) if c else Candidate(original, 0, n, 100_000)
        ranked = sorted(by_name.values(), key=lambda c: (-c.real, -c.support, c.rank, c.original))
        rows[spun] = ranked[: max(top_k, len(table.rows.get(spun, [])))]
    return ChannelTable(rows, max((k.count(" ") + 1 for k in rows), default=1))


def fit_chooser(finder, passages_text: list[tuple[str, str]], probs: list[list[tuple[int, int, float]]],
                t5_edits: list[list], l2: float):
    """Chooser weights from LM-scored candidates of spun texts (``(markup, spun)`` pairs): every
    option labelled right or wrong against the markup, a logistic fit on ``rewrite.choose.FEATURES``.
    ``probs``: out-of-fold detector probabilities of each text's sentences, in order."""
    import numpy as np

    from rewrite.choose import FEATURES

    sentences, places, labels_at = [], [], []
    k = 0
    for (markup, spun), edits in zip(passages_text, t5_edits):
        slots = slots_needing_change(markup)
        line_start = 0
        for line in spun.split("\n"):
            for a, b in split_sentences(line):
                start = line_start + a
                sentence = line[a:b]
                local = [dataclasses.replace(e, offset=e.offset - start) for e in edits
                         if start <= e.offset and e.offset + e.length <= start + len(sentence)]
                found = finder.places(len(sentences), sentence, probs[k], local)
                sentences.append(sentence)
                k += 1
                for place in found:
                    if place.options:
                        places.append(place)
                        labels_at.append(([(s - start, e - start, alts) for s, e, alts in slots]))
            line_start += len(line) + 1
    finder.score_places(sentences, places)
    names = [f for f in FEATURES if f != "bias"]
    X, y = [], []
    for place, slots in zip(places, labels_at):
        for replacement, feats in place.options.items():
            X.append([feats.get(n, 0.0) for n in names])
            y.append(option_label((place.start, place.end), replacement, slots))
    X, y = np.array(X, np.float32), np.array(y, np.float32)
    if y.sum() == 0:
        raise DatasetError("no candidate matched an original: the channel table knows none of these swaps")
    head = fit_head(X, y, l2)
    w = head["weight"] / head["scale"]
    weights = {n: round(float(v), 5) for n, v in zip(names, w)}
    weights["bias"] = round(float(head["bias"][0] - (head["mean"] / head["scale"] * head["weight"]).sum()), 5)
    scores = X @ np.array([weights[n] for n in names]) + weights["bias"]
    return weights, scores, y


def recommended_confidence(scores, y, precision: float) -> float:
    """The lowest confidence (sigmoid of a score) at which the options above it are right at least
    ``precision`` of the time (options of a place compete, so this is a floor for edits)."""
    import numpy as np

    conf = 1.0 / (1.0 + np.exp(-np.clip(scores, -30, 30)))
    best = 0.99
    for t in np.arange(0.98, 0.04, -0.01):
        chosen = conf >= t
        if chosen.sum() >= 5 and y[chosen].mean() >= precision:
            best = float(t)
    return round(best, 2)


def fit_finder(markup_files: list[Path], model: Path, out: Path, config: FinderFitConfig,
               channel_file: Path | None = None) -> dict:
    """``unspin fit-detector``: a model folder at ``out`` = ``model``'s files + a detector head fitted
    on ``markup_files`` + the channel table with their swaps counted in + chooser weights fitted on
    them + ``finder.json`` (settings, weights, threshold, files and their hashes). Returns the facts."""
    import shutil

    import torch

    from rewrite import Restorer
    from rewrite.channel import FILE as CHANNEL_FILE
    from rewrite.channel import ChannelTable
    from rewrite.detector import write_head
    from rewrite.finder import DETECTOR_DIR, FINDER_FILE, FinderConfig, SpinFinder
    from rewrite.choose import LmScorer
    from rewrite.model_folder import folder_written

    from .channel import real_pairs

    torch.manual_seed(config.seed)
    if len(markup_files) < 2:
        raise DatasetError("fit-detector needs at least 2 markup files (cross-validation holds files out)")
    channel_file = channel_file or model / CHANNEL_FILE
    if not channel_file.is_file():
        raise DatasetError(f"{channel_file} is missing: give --channel (a channel.tsv.gz, e.g. the shipped model's)")
    texts = [p.read_text(encoding="utf-8") for p in markup_files]
    passages = [read_passage(p) for p in markup_files]
    det_config = DetectorConfig(layers=tuple(config.layers))
    reader = FeatureReader.from_base(det_config)
    X, y, groups = read_features(passages, reader)
    oof = cross_validate(X, y, groups, folds=min(5, len(passages)), l2=config.l2)
    word_recall, threshold = recall_at_precision(y, oof, config.precision)
    head = fit_head(X, y, config.l2)
    log.info("detector: %d words; cross-validated word recall %.3f at precision %.2f", len(y), word_recall, config.precision)

    table = merge_real_counts(ChannelTable.load(channel_file), real_pairs(markup_files), config.top_k)
    finder = SpinFinder(None, table, FinderConfig(candidate_threshold=config.candidate_threshold, top_k=config.top_k),
                        scorer=LmScorer(reader.model, reader.tokenizer))
    fast = Restorer.from_pretrained(model, mode="fast")
    chosen = list(range(0, len(passages), config.chooser_every))
    spun = [SLOT.sub(r"\1", texts[i]) for i in chosen]
    t5 = [[e for e in r.edits] for r in fast.restore_many(spun, min_confidence=0.0)]
    probs, at = [], 0
    for i, p in enumerate(passages):
        rows = []
        for sentence in p.sentences:
            spans = word_spans(sentence)
            rows.append([(s, e, float(q)) for (s, e), q in zip(spans, oof[at : at + len(spans)])])
            at += len(spans)
        if i in chosen:
            probs += rows
    weights, scores, labels = fit_chooser(finder, [(texts[i], s) for i, s in zip(chosen, spun)], probs, t5,
                                          config.chooser_l2)
    min_confidence = recommended_confidence(scores, labels, config.edit_precision)
    facts = {"trained_on": file_facts(markup_files), "words": int(len(y)), "spun_words": int(y.sum()),
             "cv_word_recall": round(word_recall, 4), "cv_precision": config.precision,
             "chooser_files": [markup_files[i].name for i in chosen], "chooser_options": int(len(labels)),
             "chooser_right_options": int(labels.sum()),
             "channel_from": {"file": channel_file.name, "sha256": hashlib.sha256(channel_file.read_bytes()).hexdigest(),
                              "made_by": "python -m training.channel (the lexicons read backwards) or a model's table"},
             "fit_config": {**dataclasses.asdict(config), "layers": list(config.layers)}}
    finder_config = FinderConfig(weights=weights, candidate_threshold=config.candidate_threshold,
                                 top_k=config.top_k, min_confidence=min_confidence)

    with folder_written(out) as tmp:
        for item in model.iterdir():
            if item.is_file() and item.name not in (CHANNEL_FILE, FINDER_FILE):
                shutil.copy2(item, tmp / item.name)
        write_head(tmp / DETECTOR_DIR, head, dataclasses.replace(det_config, threshold=round(threshold, 4)),
                   {k: facts[k] for k in ("trained_on", "words", "spun_words", "cv_word_recall", "cv_precision")})
        table.write(tmp / CHANNEL_FILE)
        body = {**dataclasses.asdict(finder_config), "facts": facts}
        (tmp / FINDER_FILE).write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    return facts
