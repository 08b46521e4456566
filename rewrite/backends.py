"""Backends turn a batch of sentences into restored sentences with per-token probabilities.

A backend is any object with ``generate(sentences: list[str]) -> list[Generated]`` (one batch in,
one ``Generated`` per sentence out, same order). ``TorchBackend`` runs a saved
``T5ForConditionalGeneration`` with greedy decoding:

    >>> backend = TorchBackend.load("rewrite/models/default")
    >>> g = backend.generate(["Rubio mentioned it."])[0]
    >>> g.text, g.token_spans[:2], g.token_probs[:2]
    ('Rubio said it.', [(0, 5), (5, 10)], [0.99, 0.97])

The model folder layout is the one ``T5ForConditionalGeneration.save_pretrained`` writes plus a
Hugging Face tokenizer (``tokenizer.json``, ``tokenizer_config.json``); ``check_model_folder``
names the first file that is missing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
from pathlib import Path

from .errors import ModelError

logger = logging.getLogger(__name__)

REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
CARD_FILES = ("training_config.json", "data_manifest.json", "metrics.json")


@dataclasses.dataclass(frozen=True)
class Generated:
    """One restored sentence and, for each output token, its span in ``text`` and its probability.

    Tokens that only complete part of a character (byte pieces) share the span of the token that
    completes it; the end-of-sentence token, when present, has the empty span at ``len(text)``.
    ``complete`` is False when decoding stopped at the length limit before end-of-sentence.
    """

    text: str
    token_spans: list[tuple[int, int]]
    token_probs: list[float]
    complete: bool = True

    def __post_init__(self) -> None:
        if len(self.token_spans) != len(self.token_probs):
            raise ModelError(
                f"backend gave {len(self.token_spans)} token spans but {len(self.token_probs)} probabilities"
            )

    def confidence(self, start: int, end: int) -> float:
        """Least probability among the tokens that wrote ``text[start:end]`` and the token right
        after them (it decided where the span ends). An empty span uses its two neighbours."""
        probs: list[float] = []
        before: float | None = None
        after: float | None = None
        for (s, e), p in zip(self.token_spans, self.token_probs):
            if s < end and e > start:
                probs.append(p)
            elif e <= start and s < e:
                before = p
            elif s >= end and after is None and (s < e or s == len(self.text)):
                after = p
        if start == end and before is not None:
            probs.append(before)
        if after is not None:
            probs.append(after)
        return min(probs) if probs else 0.0


class TorchBackend:
    """Greedy decoding with a PyTorch ``T5ForConditionalGeneration`` and its tokenizer."""

    def __init__(self, model, tokenizer, max_new_tokens: int | None = None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens  # None: twice the longest input plus 16
        self.eos_id = model.config.eos_token_id
        self.special_ids = {tokenizer.pad_token_id, self.eos_id, tokenizer.unk_token_id}

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "TorchBackend":
        """Load the model and tokenizer of a model folder; ``ModelError`` names what is wrong."""
        import torch
        from transformers import AutoTokenizer, T5ForConditionalGeneration

        folder = check_model_folder(folder)
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(folder))
            with _quiet_transformers():
                model = T5ForConditionalGeneration.from_pretrained(folder, dtype=torch.float32)
        except Exception as exc:  # any failure here means the folder's files are damaged
            reason = str(exc).strip().rstrip(".")
            raise ModelError(
                f"cannot load the model in {folder}: {reason}; re-export or re-download the folder"
            ) from exc
        if len(tokenizer) > model.config.vocab_size:
            raise ModelError(
                f"{folder}: the tokenizer has {len(tokenizer)} tokens but the model expects "
                f"{model.config.vocab_size}; tokenizer.json and model.safetensors come from different models"
            )
        return cls(model, tokenizer)

    def generate(self, sentences: list[str]) -> list[Generated]:
        """Restore one batch of sentences (padded together; pass sentences of similar length)."""
        if not sentences:
            return []
        batch = self.tokenizer(sentences, padding=True, return_tensors="pt").to(self.model.device)
        longest = int(batch["attention_mask"].sum(dim=1).max())
        max_new_tokens = self.max_new_tokens or 2 * longest + 16
        # The one call to swap for rewrite.decoding.generate_ids(..., method="guided").
        sequences, token_probs = greedy_ids(self.model, batch["input_ids"], batch["attention_mask"], max_new_tokens)
        return [self._to_generated(ids, probs) for ids, probs in zip(sequences, token_probs)]

    def _to_generated(self, ids: list[int], probs: list[float]) -> Generated:
        """Generated ids (no decoder start token, cut after end-of-sentence) -> text and token spans."""
        complete = self.eos_id in ids
        if complete:
            cut = ids.index(self.eos_id)
            ids, probs, eos_prob = ids[:cut], probs[:cut], probs[cut]
        text = self.tokenizer.batch_decode([ids], skip_special_tokens=True)[0]
        spans = _token_spans(self.tokenizer, ids, text)
        if complete:
            spans, probs = spans + [(len(text), len(text))], probs + [eos_prob]
        return Generated(text, spans, [float(p) for p in probs], complete)


def greedy_ids(model, input_ids, attention_mask, max_new_tokens: int) -> tuple[list[list[int]], list[list[float]]]:
    """Greedy decoding with ``model.generate``.

    input_ids, attention_mask: (batch, source_len) tensors. Returns, per row, the generated ids
    without the decoder start token, up to and including end-of-sentence (when reached), and the
    model's probability of each of those ids (softmax of the raw logits at its step).
    """
    import torch

    with torch.inference_mode():
        out = model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            output_logits=True,
            return_dict_in_generate=True,
        )
        steps = out.sequences[:, 1:]  # (batch, steps)
        logits = torch.stack(out.logits, dim=1).float()  # (batch, steps, vocab)
        probs = logits.softmax(dim=-1).gather(-1, steps.unsqueeze(-1)).squeeze(-1)  # (batch, steps)
    eos = model.config.eos_token_id
    sequences, token_probs = [], []
    for row, row_probs in zip(steps.tolist(), probs.tolist()):
        n = row.index(eos) + 1 if eos in row else len(row)
        sequences.append(row[:n])
        token_probs.append(row_probs[:n])
    return sequences, token_probs


def _token_spans(tokenizer, ids: list[int], text: str) -> list[tuple[int, int]]:
    """Character span in ``text`` of each id: where decoding the prefix up to it stops matching.

    A byte piece that leaves a character unfinished decodes to U+FFFD, so it extends the match
    by nothing; it then shares the span of the piece that completes the character.
    """
    prefixes = tokenizer.batch_decode([ids[: k + 1] for k in range(len(ids))], skip_special_tokens=True)
    spans: list[tuple[int, int]] = []
    start = reached = 0
    pending = 0  # ids waiting for a span
    for k, prefix in enumerate(prefixes):
        reached = max(reached, len(os.path.commonprefix([prefix, text])))
        pending += 1
        if reached > start or k == len(ids) - 1:
            spans.extend([(start, reached)] * pending)
            start, pending = reached, 0
    return spans


def check_model_folder(folder: str | os.PathLike) -> Path:
    """``folder`` as a Path if it holds every file a model needs; otherwise ``ModelError``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(f"model folder {folder} does not exist; pass the folder a training run wrote")
    for name in REQUIRED_FILES:
        if not (folder / name).is_file():
            raise ModelError(f"model folder {folder} has no {name}; copy the complete folder a training run wrote")
    return folder


def describe_model(folder: Path) -> dict:
    """Facts about a model folder for ``Restorer.model_info``: name, version (weights hash),
    parameter count, and whatever training config, data manifest and metrics it carries."""
    digest = hashlib.sha256()
    with open(folder / "model.safetensors", "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    sha256 = digest.hexdigest()
    info: dict = {"name": folder.name, "path": str(folder), "version": sha256[:12], "sha256": sha256}
    config = _read_json(folder / "config.json")
    info["vocab_size"] = config.get("vocab_size")
    info["d_model"] = config.get("d_model")
    for name in CARD_FILES:
        path = folder / name
        info[path.stem] = _read_json(path) if path.is_file() else None
    return info


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path} is not readable JSON ({exc}); restore it from the training run") from exc


@contextlib.contextmanager
def _quiet_transformers():
    """No weight-loading progress bar: loading a small model takes a moment, and the bar
    would land in the middle of the CLI's output."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
