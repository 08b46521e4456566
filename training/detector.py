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
import logging
from pathlib import Path

from rewrite.detector import DetectorConfig, FeatureReader, word_spans
from rewrite.text import split_sentences

from .errors import DatasetError
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
