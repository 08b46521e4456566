"""Choosing the original at a detected place: score each candidate and "keep as is" in context.

For a place in a sentence, each candidate is put in the place and a window around it (a few words
before and after) is scored by the language model; a candidate's *gain* is its window's
log-probability (nats) minus the spun window's (``rewrite.finder.SpinFinder.score_places``). The
gain, the channel's evidence (``rewrite.channel.Candidate.features``), the detector's probability
and the T5's vote are weighed by a linear model fitted on annotated real spun text
(``training/detector.py``); a place's best candidate becomes an edit whose confidence is the
logistic of its score, kept when it clears the restorer's ``min_confidence``.

    >>> scorer = LmScorer(model, tokenizer)
    >>> scorer.logprobs(["Rubio said it.", "Rubio mentioned it."])
    [-14.2, -17.9]
"""

from __future__ import annotations

import threading

from .errors import Cancelled

FEATURES = ("gain", "log_support", "log_real", "log_rank", "t5", "t5_confidence", "detector", "bias")


class LmScorer:
    """Sentence log-probabilities under a causal LM, batched; the first token is scored after a
    newline so that a candidate at the start of a sentence counts like one anywhere else."""

    def __init__(self, model, tokenizer, batch_size: int = 32, lock: threading.Lock | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.lock = lock or threading.Lock()
        self.prefix = tokenizer("\n", add_special_tokens=False)["input_ids"]

    def logprobs(self, texts: list[str], cancel: threading.Event | None = None) -> list[float]:
        import torch

        tok = self.tokenizer
        encoded = [self.prefix + tok(t, add_special_tokens=False)["input_ids"] for t in texts]
        order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))
        out = [0.0] * len(texts)
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        for first in range(0, len(order), self.batch_size):
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"scoring stopped on request after {first} of {len(order)} sentences")
            batch = order[first : first + self.batch_size]
            width = max(len(encoded[i]) for i in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                ids[row, : len(encoded[i])] = torch.tensor(encoded[i])
                mask[row, : len(encoded[i])] = 1
            with self.lock, torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
                logits = self.model(input_ids=ids, attention_mask=mask).logits
            logp = torch.log_softmax(logits.float(), -1)
            taken = logp[:, :-1].gather(2, ids[:, 1:, None])[:, :, 0] * mask[:, 1:]
            for row, i in enumerate(batch):
                out[i] = float(taken[row].sum())
        return out


def score(weights: dict[str, float], features: dict[str, float]) -> float:
    """The linear score of a candidate's named features (``FEATURES``; ``bias`` is 1)."""
    return sum(weights.get(name, 0.0) * features.get(name, 1.0 if name == "bias" else 0.0) for name in FEATURES)
