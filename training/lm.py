"""The LM family on the training side (``unspin train --arch lm``; ``training.families``): a
fine-tune of the pretrained SmolLM2 (``rewrite.lm`` is the inference side): data, the trainable
model, export. It gives the hooks ``training.train`` calls, as ``training.t5`` does.

The base model's embeddings and lower ``freeze_layers`` layers stay frozen; the layers above them
and the final norm are trained, and only they are saved. The loss is on the original only, and
the output projection (49k rows) runs only at target positions.

Tokenised data reuses ``training.data``'s arrays: ``src`` holds the spun ids, ``tgt`` the
original ids followed by ``END``. A batch row is the prompt (``rewrite.lm.prompt_ids``: ``START src END START``)
then ``tgt``, and ``labels`` holds, at each position, the token to predict there (-100 outside
the target):

    input   START  A  B  END  START  A'  B'   END
    labels  -100  -100 -100 -100  A'  B'   END  -100
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from rewrite.lm import load_tokenizer as load_tokenizer
from rewrite.lm import prompt_ids, special_ids

from .data import TokenData, flatten
from .errors import ConfigError, TrainingError

if TYPE_CHECKING:
    from .config import TrainConfig


def preflight(config: TrainConfig) -> None:
    """The base model must be at hand (its GGUF file, or the dequantized base a GPU machine gets),
    and ``--init`` must be a folder of this family."""
    from rewrite.errors import ModelError
    from rewrite.lm import base_gguf, has_cached_base, read_card
    from rewrite.model_folder import check_model_folder

    try:
        if not has_cached_base():  # a GPU machine gets the dequantized base, not the GGUF
            base_gguf()
        if config.init:
            read_card(check_model_folder(config.init))
    except ModelError as exc:
        raise ConfigError(f"cannot fine-tune the language model: {exc}") from exc


def tokenize_split(dataset, tokenizer, max_len: int) -> dict[str, np.ndarray]:
    """``{"src", "src_off", "tgt", "tgt_off"}`` for one split, in the LM's tokens."""
    _, end = special_ids(tokenizer)
    arrays = {}
    for side, column, suffix in (("src", "spun", []), ("tgt", "original", [end])):
        ids: list[list[int]] = []
        texts = list(dataset[column])
        for i in range(0, len(texts), 10_000):
            batch = tokenizer(texts[i : i + 10_000], add_special_tokens=False).input_ids
            ids.extend(x[: max_len - len(suffix)] + suffix for x in batch)
        arrays[side], arrays[f"{side}_off"] = flatten(ids, np.int32)
    return arrays


class LmTokenData(TokenData):
    """A tokenised split batched for the decoder-only model."""

    def __init__(self, arrays: dict[str, np.ndarray], start: int, end: int):
        super().__init__(arrays)
        self.start, self.end = start, end

    def collate(self, idx: np.ndarray, pad_id: int = 0):
        rows = []
        for i in idx:
            src = self.src[self.src_off[i] : self.src_off[i + 1]].tolist()
            tgt = self.tgt[self.tgt_off[i] : self.tgt_off[i + 1]].tolist()
            rows.append((prompt_ids(src, self.start, self.end), tgt))
        width = max(len(p) + len(t) for p, t in rows)
        input_ids = np.full((len(rows), width), self.end, dtype=np.int64)
        labels = np.full((len(rows), width), -100, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for r, (prompt, tgt) in enumerate(rows):
            seq = [*prompt, *tgt]
            input_ids[r, : len(seq)] = seq
            mask[r, : len(seq)] = 1
            first = len(prompt) - 1  # the prompt's last token predicts tgt[0]
            labels[r, first : first + len(tgt)] = tgt
        return {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(mask),
                "labels": torch.from_numpy(labels)}


@dataclasses.dataclass
class LmOutput:
    loss: torch.Tensor
    logits: torch.Tensor  # [n_target_tokens, vocab]
    labels: torch.Tensor  # [n_target_tokens]


class LmRestorer(torch.nn.Module):
    """``LlamaForCausalLM`` with its lower layers frozen; saves and loads only the tuned tensors."""

    def __init__(self, model, freeze_layers: int):
        super().__init__()
        n_layers = model.config.num_hidden_layers
        if not 0 <= freeze_layers < n_layers:
            raise TrainingError(f"freeze_layers must be between 0 and {n_layers - 1}, got {freeze_layers}")
        self.model = model
        self.freeze_layers = freeze_layers
        for name, param in model.named_parameters():
            param.requires_grad = self._tuned(name)
        self.config = model.config

    def _tuned(self, name: str) -> bool:
        """Whether a ``LlamaForCausalLM`` parameter is trained (and saved)."""
        if name.startswith("model.layers."):
            return int(name.split(".")[2]) >= self.freeze_layers
        return name == "model.norm.weight"

    def forward(self, input_ids, attention_mask, labels) -> LmOutput:
        hidden = self.model.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        at = labels != -100
        logits = self.model.lm_head(hidden[at])
        loss = torch.nn.functional.cross_entropy(logits.float(), labels[at])
        return LmOutput(loss, logits, labels[at])

    def tuned_state(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.model.state_dict().items() if self._tuned(k)}

    def save_pretrained(self, folder, dtype=None) -> None:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: (v.to(dtype) if dtype else v).contiguous() for k, v in self.tuned_state().items()}
        save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
        self.model.config.to_json_file(folder / "config.json")

    def load_state_dict(self, state, strict: bool = True, assign: bool = False):
        """Load tuned tensors saved by ``save_pretrained``; every one must match."""
        own = self.model.state_dict()
        bad = [k for k in state if k not in own or own[k].shape != state[k].shape]
        if bad:
            raise TrainingError(f"checkpoint tensors do not fit the model: {bad[:3]}")
        return self.model.load_state_dict(state, strict=False)

    def tie_weights(self) -> None:
        """The tied embeddings are frozen; nothing to re-tie."""


def token_data(arrays: dict[str, np.ndarray], tokenizer) -> LmTokenData:
    """A tokenised split batched for the decoder-only model."""
    start, end = special_ids(tokenizer)
    return LmTokenData(arrays, start, end)


def build(config: TrainConfig, tokenizer_dir: Path | None = None) -> LmRestorer:
    """The base model (with ``config.init``'s tuned tensors when given), ready to train."""
    from rewrite.lm import load_model

    model, _ = load_model(config.init)
    return LmRestorer(model.float(), config.freeze_layers)


def tokenizer_folder(config: TrainConfig) -> Path:
    """Where the tokenizer comes from: the ``init`` folder or the cached base model."""
    from rewrite.lm import base_folder

    return Path(config.init) if config.init else base_folder()


def batch_tokens(batch: dict) -> int:
    """The tokens one batch trains on: every token of its rows (prompt and target)."""
    return int(batch["attention_mask"].sum())


def export_files(module: LmRestorer, tokenizer_dir: Path, tmp: Path) -> None:
    """The model-folder files specific to the LM restorer (see ``rewrite.lm``)."""
    from rewrite.lm import BASE_CARD, BASE_DIST, BASE_FILE, BASE_SHA256

    module.save_pretrained(tmp, dtype=torch.bfloat16)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tokenizer_dir / name, tmp / name)
    card = {"package": BASE_DIST, "file": BASE_FILE, "sha256": BASE_SHA256, "tuned_from_layer": module.freeze_layers,
            "format": 1}
    (tmp / BASE_CARD).write_text(json.dumps(card, indent=2) + "\n")
