"""The T5 family on the inference side: a ``T5ForConditionalGeneration`` restorer and its backends.

One of the families of ``rewrite.families`` (the default one: a model folder no other family
claims is a T5; the shipped model is one). ``training.t5`` is its training side. The folder is the
one ``T5ForConditionalGeneration.save_pretrained`` writes plus a Hugging Face tokenizer
(``tokenizer.json``, ``tokenizer_config.json``):

    TORCH_BACKEND  TorchBackend: PyTorch, input-guided (``rewrite.decoding``) or plain greedy search
    CT2_BACKEND    Ct2Backend: CTranslate2 greedy search (``rewrite.ct2.Ct2Model``)
    AUTO_BACKEND   what ``"auto"`` stands for when CTranslate2 is installed

The encoder reads the spun sentence as the tokenizer encodes it (with ``</s>``); the decoder
writes the original: a T5 needs no prompt.
"""

from __future__ import annotations

import os
from pathlib import Path

from .ct2 import ct2_name, ct2_threads
from .errors import InputError, ModelError
from .generated import Generated, to_generated
from .model_folder import check_model_folder, quiet_transformers, read_json

NAME = "t5"
# What "auto" picks when CTranslate2 is installed. Measured with the default model on 304 spun
# test sentences (benchmarks/backend_agreement.py): int8 gives greedy's exact output for 96.7% of
# them (97.3% identical edits), float32 for 100%. "auto" must keep greedy's output (>= 99%), and
# of the exact backends float32 CTranslate2 is the faster in the Restorer on 2 cores
# (benchmarks/decode_bench.py: a 100-word paragraph in 197 ms p95 against 328 ms for torch,
# 951 against 769 words/s at batch 32, about equal one sentence at a time), loads in half the
# time and uses 120 MB less memory. Without CTranslate2, torch (input-guided) is the fallback.
AUTO_BACKEND = "ct2-float32"


class TorchBackend:
    """A PyTorch ``T5ForConditionalGeneration`` and its tokenizer, decoding greedily.

    ``method`` is a ``rewrite.decoding`` method: ``"guided"`` (input-guided, the default) or
    ``"greedy"`` (``model.generate``); both give the same tokens.
    """

    def __init__(self, model, tokenizer, max_new_tokens: int | None = None, method: str = "guided"):
        from .decoding import METHODS, word_start_ids

        if method not in METHODS:
            raise InputError(f"unknown decoding method {method!r}; choose from {METHODS}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens  # None: twice the longest input plus 16
        self.method = method
        self.eos_id = model.config.eos_token_id
        self.word_starts = word_start_ids(tokenizer)  # sharpens the draft after a rewrite

    @property
    def name(self) -> str:
        """The backend's name in ``rewrite.backends.BACKENDS``."""
        return "torch-greedy" if self.method == "greedy" else "torch"

    @classmethod
    def load(cls, folder: str | os.PathLike, method: str = "guided", threads: int = 0) -> "TorchBackend":
        """Load the model and tokenizer of a model folder; ``ModelError`` names what is wrong."""
        import torch
        from transformers import T5ForConditionalGeneration

        folder = check_model_folder(folder)
        if threads:
            torch.set_num_threads(threads)
        tokenizer = _load_tokenizer(folder)
        try:
            with quiet_transformers():
                model = T5ForConditionalGeneration.from_pretrained(folder, dtype=torch.float32)
        except Exception as exc:  # any failure here means the folder's files are damaged
            raise _damaged(folder, exc) from exc
        _check_vocabulary(folder, tokenizer, model.config.vocab_size)
        return cls(model, tokenizer, method=method)

    def generate(self, sentences: list[str]) -> list[Generated]:
        """Restore one batch of sentences (padded together; pass sentences of similar length)."""
        from .decoding import generate_ids

        if not sentences:
            return []
        batch = self.tokenizer(sentences, padding=True, return_tensors="pt").to(self.model.device)
        max_new_tokens = self.max_new_tokens or _length_limit(batch["attention_mask"])
        sequences, token_probs = generate_ids(
            self.model,
            batch["input_ids"],
            batch["attention_mask"],
            max_new_tokens,
            method=self.method,
            word_starts=self.word_starts,
        )
        return [to_generated(self.tokenizer, self.eos_id, ids, probs) for ids, probs in zip(sequences, token_probs)]


class Ct2Backend:
    """CTranslate2 greedy decoding (``rewrite.ct2.Ct2Model``) with the model folder's tokenizer.

    The model is converted on first use into the user's cache (keyed by the weights' hash) and
    quantized when loaded with ``compute_type``: ``"int8"`` (the fastest on CPU; a few sentences
    in a hundred differ from greedy) or ``"float32"`` (greedy's output).
    """

    def __init__(self, model, tokenizer, max_new_tokens: int | None = None, compute_type: str = "int8"):
        self.model = model  # a rewrite.ct2.Ct2Model
        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens  # None: twice the longest input plus 16
        self.compute_type = compute_type
        self.eos_id = model.eos_id

    @property
    def name(self) -> str:
        """The backend's name in ``rewrite.backends.BACKENDS`` (``ct2:TYPE`` for a compute type none names)."""
        return ct2_name(self.compute_type)

    @classmethod
    def load(cls, folder: str | os.PathLike, compute_type: str = "int8", threads: int = 0) -> "Ct2Backend":
        """Load (converting on first use) a model folder; ``ModelError`` when CTranslate2 is
        missing or the folder does not convert. ``threads`` 0: ``ct2_threads(compute_type)``."""
        from .ct2 import Ct2Model

        folder = check_model_folder(folder)
        tokenizer = _load_tokenizer(folder)
        model = Ct2Model.load(folder, compute_type=compute_type, threads=threads or ct2_threads(compute_type))
        vocab_size = read_json(folder / "config.json").get("vocab_size")
        if vocab_size is not None and vocab_size != len(model.vocabulary):
            raise ModelError(
                f"{folder}: config.json says vocab_size {vocab_size} but the weights have "
                f"{len(model.vocabulary)} rows; config.json and model.safetensors come from different models"
            )
        _check_vocabulary(folder, tokenizer, len(model.vocabulary))
        return cls(model, tokenizer, compute_type=compute_type)

    def generate(self, sentences: list[str]) -> list[Generated]:
        """Restore one batch of sentences (padded together; pass sentences of similar length)."""
        if not sentences:
            return []
        batch = self.tokenizer(sentences, padding=True, return_tensors="pt")
        max_new_tokens = self.max_new_tokens or _length_limit(batch["attention_mask"])
        sequences, token_probs = self.model.generate_ids(batch["input_ids"], batch["attention_mask"], max_new_tokens)
        return [to_generated(self.tokenizer, self.eos_id, ids, probs) for ids, probs in zip(sequences, token_probs)]


def _length_limit(attention_mask) -> int:
    """Most new tokens for a batch: twice its longest input plus 16 (a rewrite may grow a sentence)."""
    return 2 * int(attention_mask.sum(dim=1).max()) + 16


def _load_tokenizer(folder: Path):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(folder))
    except Exception as exc:  # any failure here means the tokenizer files are damaged
        raise _damaged(folder, exc) from exc


def _damaged(folder: Path, exc: Exception) -> ModelError:
    reason = str(exc).strip().rstrip(".")
    return ModelError(f"cannot load the model in {folder}: {reason}; re-export or re-download the folder")


def _check_vocabulary(folder: Path, tokenizer, model_vocab_size: int) -> None:
    if len(tokenizer) > model_vocab_size:
        raise ModelError(
            f"{folder}: the tokenizer has {len(tokenizer)} tokens but the model expects "
            f"{model_vocab_size}; tokenizer.json and model.safetensors come from different models"
        )


def holds(folder: Path) -> bool:
    """Whether ``folder`` is a T5 model folder: any folder no other family claims."""
    return True


TORCH_BACKEND = TorchBackend
CT2_BACKEND = Ct2Backend
