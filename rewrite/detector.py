"""Spin detection: for every word of a text, the probability that a spinner changed it.

A frozen SmolLM2 (the base of ``rewrite.lm``) reads each sentence twice, ``"S\\nS"``: in the
second copy every position has already seen the whole sentence, so a word's hidden state there
carries both its left and its right context. A word's feature vector is the mean of its tokens'
hidden states in the second copy at a few layers, plus its surprisal in the first copy (how
unexpected it was from the left). A logistic head, trained on real spun text annotated against
its originals (``training/detector.py``), turns the vector into a probability:

    >>> detector = SpinDetector.load(Path("rewrite/models/default/detector"))
    >>> detector.word_probs(["Rubio mentioned it on Wednesday."])
    [[(0, 5, 0.03), (6, 15, 0.81), (16, 18, 0.02), (19, 21, 0.01), (22, 32, 0.02)]]

Words are whitespace-separated (``\\S+``), as ``../shared/eval/score.py detect`` counts them.
The head is a versioned folder: ``detector.json`` (format, layers, base model hash, the
threshold, what it was trained on) and ``head.safetensors`` (``mean``, ``scale``, ``weight``,
``bias``: shapes ``[d]``, ``[d]``, ``[d]``, ``[1]``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import threading
from pathlib import Path

from .errors import Cancelled, ModelError

logger = logging.getLogger(__name__)

FORMAT = 1
CONFIG_FILE = "detector.json"
HEAD_FILE = "head.safetensors"
WORDS_RE = re.compile(r"\S+")
SURPRISAL_FEATURES = 3  # summed and largest surprisal of the word's tokens (nats), its token count


@dataclasses.dataclass(frozen=True)
class DetectorConfig:
    """How features are read from the base model. Saved as ``detector.json`` with the head."""

    layers: tuple[int, ...] = dataclasses.field(
        default=(15, 30), metadata={"help": "Hidden-state layers (0: embeddings, 30: the last) whose word vectors are concatenated."}
    )
    batch_size: int = dataclasses.field(default=16, metadata={"help": "Sentences per forward pass."})
    max_tokens: int = dataclasses.field(
        default=160, metadata={"help": "Longest sentence (tokens) read whole; a longer one is read in pieces."}
    )
    threshold: float = dataclasses.field(
        default=0.5, metadata={"help": "Probability from which a word counts as spun (chosen on held-out data)."}
    )

    def __post_init__(self) -> None:
        if not self.layers or min(self.layers) < 0:
            raise ModelError("detector layers must be a non-empty list of layer numbers >= 0")
        if self.batch_size < 1 or self.max_tokens < 8:
            raise ModelError("detector batch_size must be >= 1 and max_tokens >= 8")
        if not 0.0 <= self.threshold <= 1.0:
            raise ModelError(f"detector threshold must lie in [0, 1], got {self.threshold}")

    @property
    def deepest(self) -> int:
        return max(self.layers)


def word_spans(sentence: str) -> list[tuple[int, int]]:
    """The whitespace-separated words of a sentence as ``(start, end)`` code-point spans."""
    return [m.span() for m in WORDS_RE.finditer(sentence)]


class FeatureReader:
    """Word feature vectors of sentences from a frozen causal LM (SmolLM2 by default).

    ``read(sentences)`` -> one float32 array ``[words, len(layers) * hidden + 3]`` a sentence.
    Layers above the deepest one used are dropped from the model, so they cost nothing.
    """

    def __init__(self, model, tokenizer, config: DetectorConfig):
        import torch

        self.torch = torch
        self.tokenizer = tokenizer
        self.config = config
        layers = model.model.layers
        if config.deepest > len(layers):
            raise ModelError(f"the detector reads layer {config.deepest}, but the base model has {len(layers)}")
        self.full_depth = len(layers)
        self.model = model
        self._lock = threading.Lock()

    @classmethod
    def from_base(cls, config: DetectorConfig, threads: int = 0) -> "FeatureReader":
        """The reader over the installed SmolLM2 base (``rewrite.lm.base_folder``)."""
        from .lm import base_folder, load_tokenizer, quiet_transformers

        import torch
        from transformers import LlamaForCausalLM

        if threads > 0:
            torch.set_num_threads(threads)
        base = base_folder()
        with quiet_transformers():
            model = LlamaForCausalLM.from_pretrained(base, dtype=torch.float32)
        return cls(model.eval(), load_tokenizer(base), config)

    @property
    def width(self) -> int:
        return len(self.config.layers) * self.model.config.hidden_size + SURPRISAL_FEATURES

    def read(self, sentences: list[str], cancel: threading.Event | None = None) -> list:
        """Feature arrays of ``sentences`` (one row a ``word_spans`` word), batched by length."""
        import numpy as np

        order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
        out: list = [None] * len(sentences)
        size = self.config.batch_size
        for first in range(0, len(order), size):
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"detection stopped on request after {first} of {len(order)} sentences")
            batch = order[first : first + size]
            for i, feats in zip(batch, self._batch([sentences[i] for i in batch])):
                out[i] = feats
        return [o if o is not None else np.zeros((0, self.width), np.float32) for o in out]

    def _batch(self, sentences: list[str]) -> list:
        torch = self.torch
        import numpy as np

        tok = self.tokenizer
        texts = [s + "\n" + s for s in sentences]
        enc = tok(texts, return_offsets_mapping=True, padding=True, truncation=True,
                  max_length=2 * self.config.max_tokens + 1, return_tensors="pt")
        offsets = enc.pop("offset_mapping").tolist()
        with self._lock, torch.no_grad(), _autocast(torch):
            hidden, logits = self._forward(enc["input_ids"], enc["attention_mask"])
        logp = torch.log_softmax(logits.float(), -1)
        ids = enc["input_ids"].tolist()
        mask = enc["attention_mask"].tolist()
        results = []
        for j, sentence in enumerate(sentences):
            second = len(sentence) + 1  # where the second copy starts
            spans = word_spans(sentence)
            tokens = [(k, a, b) for k, (a, b) in enumerate(offsets[j]) if mask[j][k] and b > a]
            rows = []
            for start, end in spans:
                late = [k for k, a, b in tokens if a < second + end and second + start < b]
                early = [k for k, a, b in tokens if b <= second - 1 and a < end and start < b]
                if not late:  # cut by truncation: the word has no vector; it counts as unread
                    rows.append(None)
                    continue
                vec = torch.cat([h[j, late].float().mean(0) for h in hidden]).numpy()
                surprisal = [-logp[j, k - 1, ids[j][k]].item() for k in early if k > 0]
                extra = np.array([sum(surprisal), max(surprisal, default=0.0), len(early)], np.float32)
                rows.append(np.concatenate([vec, extra]))
            width = self.width
            results.append(np.stack([r if r is not None else np.full(width, np.nan, np.float32) for r in rows])
                           if rows else np.zeros((0, width), np.float32))
        return results

    def _forward(self, input_ids, attention_mask):
        """Hidden states at the configured layers (``hidden_states[k]``: the input of layer k, as
        the full model numbers them) and next-token logits, running only the layers needed: up to
        one past the deepest layer read, whose normed output gives the logits (a ranking signal
        for surprisal; the full model's own logits when every layer runs)."""
        model = self.model.model
        run = min(self.config.deepest + 1, self.full_depth)
        if run == self.full_depth:
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
            return [out.hidden_states[layer] for layer in self.config.layers], out.logits
        kept = model.layers
        try:
            model.layers = kept[:run]
            out = model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        finally:
            model.layers = kept
        states = list(out.hidden_states)  # states[run] is normed; the ones read (<= deepest < run) are not
        if len(states) != run + 1:
            raise ModelError(f"the base model gave {len(states)} hidden states for {run} layers; "
                             "transformers' output capturing changed: pin the version unspin was tested with")
        logits = self.model.lm_head(states[-1])
        return [states[layer] for layer in self.config.layers], logits


def _autocast(torch):
    return torch.autocast("cpu", dtype=torch.bfloat16)


class SpinDetector:
    """A logistic head over ``FeatureReader`` vectors: ``word_probs(sentences)`` gives, per
    sentence, ``(start, end, probability)`` for each whitespace-separated word."""

    def __init__(self, reader: FeatureReader, head: dict, config: DetectorConfig, folder: Path | None = None):
        self.reader = reader
        self.head = head  # numpy arrays: mean, scale, weight, bias
        self.config = config
        self.folder = folder

    @classmethod
    def load(cls, folder: str | Path, threads: int = 0, reader: FeatureReader | None = None) -> "SpinDetector":
        folder = Path(folder)
        config = read_config(folder)
        head = read_head(folder)
        reader = reader or FeatureReader.from_base(config, threads=threads)
        width = reader.width
        if head["weight"].shape[0] != width:
            raise ModelError(f"{folder / HEAD_FILE} expects {head['weight'].shape[0]} features, the base model gives "
                             f"{width}; retrain the head with `unspin fit-detector`")
        return cls(reader, head, config, folder)

    def probs(self, features) -> "list[float]":
        """Probabilities for a ``[words, d]`` feature array (a word without features gets 0)."""
        import numpy as np

        if len(features) == 0:
            return []
        z = (np.nan_to_num(features) - self.head["mean"]) / self.head["scale"]
        logits = z @ self.head["weight"] + self.head["bias"][0]
        p = 1.0 / (1.0 + np.exp(-np.clip(logits, -30, 30)))
        p[np.isnan(features).any(axis=1)] = 0.0
        return [float(x) for x in p]

    def word_probs(self, sentences: list[str], cancel: threading.Event | None = None
                   ) -> list[list[tuple[int, int, float]]]:
        feats = self.reader.read(sentences, cancel)
        return [[(s, e, p) for (s, e), p in zip(word_spans(sent), self.probs(f))]
                for sent, f in zip(sentences, feats)]


def read_config(folder: Path) -> DetectorConfig:
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise ModelError(f"{path} is missing: not a detector folder (train one with `unspin fit-detector`)")
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path} is not valid JSON ({exc}); retrain the detector") from exc
    if values.get("format") != FORMAT:
        raise ModelError(f"{path} has format {values.get('format')!r}; this unspin reads format {FORMAT}")
    fields = {f.name for f in dataclasses.fields(DetectorConfig)}
    settings = {k: v for k, v in values.get("config", {}).items() if k in fields}
    if "layers" in settings:
        settings["layers"] = tuple(settings["layers"])
    return DetectorConfig(**settings)


def read_head(folder: Path) -> dict:
    from safetensors.numpy import load_file

    path = folder / HEAD_FILE
    if not path.is_file():
        raise ModelError(f"{path} is missing; retrain the detector with `unspin fit-detector`")
    try:
        head = load_file(str(path))
    except Exception as exc:  # any failure here means the file is damaged
        raise ModelError(f"cannot read {path} ({exc}); retrain the detector") from exc
    missing = {"mean", "scale", "weight", "bias"} - set(head)
    if missing:
        raise ModelError(f"{path} lacks {sorted(missing)}; retrain the detector")
    return head


def write_head(folder: Path, head: dict, config: DetectorConfig, facts: dict) -> None:
    """Write ``detector.json`` and ``head.safetensors`` into ``folder`` (made if needed)."""
    import numpy as np
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in head.items()}, str(folder / HEAD_FILE))
    body = {"format": FORMAT, "config": dataclasses.asdict(config), **facts}
    (folder / CONFIG_FILE).write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
