"""Backends turn a batch of sentences into restored sentences with per-token probabilities.

A backend is any object with ``generate(sentences: list[str]) -> list[Generated]`` (one batch in,
one ``Generated`` per sentence out, same order). ``load_backend(folder, name)`` builds one by name:

    torch         PyTorch, input-guided decoding (``rewrite.decoding``): exactly the greedy output
    torch-greedy  PyTorch, plain ``model.generate`` greedy search: the slow baseline, same output
    ct2           CTranslate2 greedy search, int8 weights (``pip install 'unspin[fast]'``): the
                  fastest; about 3 sentences in 100 come out different from greedy
    ct2-float32   CTranslate2 greedy search, float32: greedy's output (measured, not guaranteed)
    auto          ``AUTO_BACKEND`` (ct2-float32) when CTranslate2 is installed and converts the
                  model, else torch; for a language-model folder ``AUTO_LM_BACKEND``

A language-model folder (``rewrite.lm``: ``base_model.json`` beside the tuned layers) gets the same
names: ``LmBackend`` (torch, torch-greedy) or ``Ct2LmBackend`` (ct2, ct2-float32).

    >>> backend = load_backend("rewrite/models/default", "torch")
    >>> g = backend.generate(["Rubio mentioned it."])[0]
    >>> g.text, g.token_spans[:2], g.token_probs[:2]
    ('Rubio said it.', [(0, 5), (5, 10)], [0.99, 0.97])

The model folder layout is the one ``T5ForConditionalGeneration.save_pretrained`` writes plus a
Hugging Face tokenizer (``tokenizer.json``, ``tokenizer_config.json``);
``rewrite.model_folder.check_model_folder`` names the first file that is missing.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

from .ct2 import CT2_COMPUTE_TYPES, ct2_name, ct2_threads
from .errors import InputError, ModelError
from .generated import Generated, to_generated
from .model_folder import check_model_folder, quiet_transformers, read_json

logger = logging.getLogger(__name__)


BACKENDS = ("auto", "torch", "torch-greedy", "ct2", "ct2-float32")
# What "auto" picks when CTranslate2 is installed. Measured with the default model on 304 spun
# test sentences (benchmarks/backend_agreement.py): int8 gives greedy's exact output for 96.7% of
# them (97.3% identical edits), float32 for 100%. "auto" must keep greedy's output (>= 99%), and
# of the exact backends float32 CTranslate2 is the faster in the Restorer on 2 cores
# (benchmarks/decode_bench.py: a 100-word paragraph in 197 ms p95 against 328 ms for torch,
# 951 against 769 words/s at batch 32, about equal one sentence at a time), loads in half the
# time and uses 120 MB less memory. Without CTranslate2, torch (input-guided) is the fallback.
AUTO_BACKEND = "ct2-float32"
# What "auto" picks for a language-model folder (rewrite.lm): to be set from measurements.
AUTO_LM_BACKEND = "torch"


def load_backend(folder: str | os.PathLike, name: str = "auto", threads: int = 0):
    """The backend ``name`` (one of ``BACKENDS``) for the model folder ``folder``.

    ``threads`` > 0 caps the threads the backend computes with (for torch: the process-wide
    ``torch.set_num_threads``); 0 keeps the library's default. ``"auto"`` picks ``AUTO_BACKEND``
    (``AUTO_LM_BACKEND`` for a language-model folder) when CTranslate2 is importable and falls
    back to ``torch`` (logging why) when it is not or when the model does not convert.
    """
    if name not in BACKENDS:
        raise InputError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if threads < 0:
        raise InputError(f"threads must be 0 (the library default) or more, got {threads}")
    folder = check_model_folder(folder)
    from .lm import Ct2LmBackend, LmBackend, is_lm_folder

    lm = is_lm_folder(folder)  # a fine-tune of the pretrained LM (rewrite.lm), else a T5
    torch_backend, ct2_backend = (LmBackend, Ct2LmBackend) if lm else (TorchBackend, Ct2Backend)
    if name == "auto":
        name = resolve_auto(lm)
        if name in CT2_COMPUTE_TYPES:
            try:
                return ct2_backend.load(folder, CT2_COMPUTE_TYPES[name], threads=threads)
            except ModelError as exc:
                logger.warning("the %s backend is unavailable (%s); using torch", name, exc)
                name = "torch"
    if name in CT2_COMPUTE_TYPES:
        return ct2_backend.load(folder, CT2_COMPUTE_TYPES[name], threads=threads)
    return torch_backend.load(folder, method="greedy" if name == "torch-greedy" else "guided", threads=threads)


def resolve_auto(lm: bool = False) -> str:
    """The backend ``"auto"`` stands for here: ``AUTO_BACKEND`` (``AUTO_LM_BACKEND`` for a
    language-model folder), or torch without CTranslate2."""
    choice = AUTO_LM_BACKEND if lm else AUTO_BACKEND
    if choice in CT2_COMPUTE_TYPES and not ct2_installed():
        return "torch"
    return choice


def ct2_installed() -> bool:
    """Whether CTranslate2 (the ``fast`` extra) can be imported."""
    return importlib.util.find_spec("ctranslate2") is not None


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
        """The backend's name in ``BACKENDS``."""
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
        """The backend's name in ``BACKENDS`` (``ct2:TYPE`` for a compute type none names)."""
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
