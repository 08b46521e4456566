"""Optional CTranslate2 backend: the same greedy decoding, int8 on CPU (``pip install unspin[fast]``).

The model folder is converted once, on first use, into ``$UNSPIN_CACHE/ct2/<hash>/`` (the cache
defaults to ``~/.cache/unspin``; the hash is the first 16 hex digits of the SHA-256 of the files
the conversion reads: weights, ``config.json`` and the tokenizer, so a retrained model or a changed
vocabulary gets a fresh conversion). The conversion keeps float32
weights; CTranslate2 quantizes them to int8 when it loads them with ``compute_type="int8"``, and
``compute_type="float32"`` decodes exactly like PyTorch.

    >>> model = Ct2Model.load("rewrite/models/default")             # int8, converts if needed
    >>> seqs, probs = model.generate_ids(enc.input_ids, enc.attention_mask, max_new_tokens=128)

``generate_ids`` returns what ``rewrite.decoding.generate_ids`` returns: per row, the generated ids
up to and including eos (none when cut off at ``max_new_tokens``) and each id's probability.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
from pathlib import Path

from .errors import InputError, ModelError
from .model_folder import cache_root, file_sha256, quiet_transformers

logger = logging.getLogger(__name__)

COMPUTE_TYPES = ("int8", "int8_float32", "float32")


HASHED_FILES = ("model.safetensors", "config.json", "spiece.model", "tokenizer.json")


def model_hash(model_dir: str | os.PathLike) -> str:
    """First 16 hex digits of the SHA-256 over the folder's weights, config and tokenizer files."""
    if not (Path(model_dir) / "model.safetensors").is_file():
        raise ModelError(f"{model_dir} has no model.safetensors; pass a complete model folder")
    digest = hashlib.sha256()
    for name in HASHED_FILES:
        path = Path(model_dir) / name
        digest.update(f"{name}:{file_sha256(path) if path.is_file() else '-'};".encode())
    return digest.hexdigest()[:16]


def _import_ctranslate2():
    try:
        import ctranslate2
    except ImportError as exc:
        raise ModelError("the ct2 backend needs CTranslate2: pip install 'unspin[fast]'") from exc
    return ctranslate2


def converted_dir(model_dir: str | os.PathLike) -> Path:
    """The CTranslate2 conversion of ``model_dir``, converting it now if the cache lacks it.

    Converts into a temporary folder beside the target and renames it into place, so an
    interrupted conversion never leaves a half-written model where the next run would load it.
    """
    target = cache_root() / "ct2" / model_hash(model_dir)
    if (target / "model.bin").is_file():
        return target
    ctranslate2 = _import_ctranslate2()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        logger.info("converting %s for CTranslate2 into %s", model_dir, target)
        converter = ctranslate2.converters.TransformersConverter(str(model_dir))
        with quiet_transformers():  # the converter loads the model with transformers
            converter.convert(str(tmp / "model"), force=True)
        (tmp / "model" / "source.json").write_text(
            json.dumps({"model_dir": str(Path(model_dir).resolve()), "ctranslate2": ctranslate2.__version__}, indent=2)
            + "\n"
        )
        if target.exists() and not (target / "model.bin").is_file():  # a leftover: nothing in it is usable
            shutil.rmtree(target)
        try:
            os.rename(tmp / "model", target)
        except OSError:
            if not (target / "model.bin").is_file():  # not a concurrent conversion that won the race
                raise
    except ModelError:
        raise
    except Exception as exc:  # the converter raises many types; all mean "this folder did not convert"
        raise ModelError(f"cannot convert {model_dir} for CTranslate2 ({exc}); use backend='torch'") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


class Ct2Model:
    """A converted model and its vocabulary, decoding token ids like ``generate_ids``."""

    def __init__(self, translator, vocabulary: list[str], eos_id: int = 1):
        self.translator = translator
        self.vocabulary = vocabulary  # id -> token string, as CTranslate2 stores it
        self.eos_id = eos_id

    @classmethod
    def load(cls, model_dir: str | os.PathLike, compute_type: str = "int8", threads: int = 0) -> "Ct2Model":
        """Load (converting on first use) ``model_dir``; ``threads`` 0 lets CTranslate2 choose."""
        if compute_type not in COMPUTE_TYPES:
            raise InputError(f"compute_type must be one of {COMPUTE_TYPES}, got {compute_type!r}")
        ctranslate2 = _import_ctranslate2()
        folder = converted_dir(model_dir)
        try:
            translator = ctranslate2.Translator(
                str(folder), device="cpu", compute_type=compute_type, intra_threads=threads
            )
            vocabulary = json.loads((folder / "shared_vocabulary.json").read_text(encoding="utf-8"))
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelError(
                f"cannot load the CTranslate2 model in {folder} ({exc}); delete that folder to reconvert"
            ) from exc
        config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
        return cls(translator, vocabulary, eos_id=int(config.get("eos_token_id", 1)))

    def generate_ids(self, input_ids, attention_mask, max_new_tokens: int) -> tuple[list[list[int]], list[list[float]]]:
        """Greedy-decode a padded batch (``[batch, src_len]`` tensors or nested lists)."""
        if max_new_tokens < 1:
            raise InputError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
        ids = input_ids.tolist() if hasattr(input_ids, "tolist") else input_ids
        mask = attention_mask.tolist() if hasattr(attention_mask, "tolist") else attention_mask
        source = [[self.vocabulary[i] for i, m in zip(row, row_mask) if m] for row, row_mask in zip(ids, mask)]
        if not source:
            return [], []
        steps: dict[int, list[tuple[int, float]]] = {b: [] for b in range(len(source))}

        def record(step) -> bool:  # called for every generated token (greedy search only)
            steps[step.batch_id].append((step.token_id, step.log_prob))
            return False

        self.translator.translate_batch(
            source,
            beam_size=1,
            max_decoding_length=max_new_tokens,
            min_decoding_length=0,
            max_input_length=0,
            return_scores=True,  # makes the callback carry each token's log probability
            callback=record,
        )
        sequences, token_probs = [], []
        for b in range(len(source)):
            row = steps[b]
            tokens = [t for t, _ in row]
            end = tokens.index(self.eos_id) + 1 if self.eos_id in tokens else len(tokens)
            sequences.append(tokens[:end])
            token_probs.append([math.exp(lp) for _, lp in row[:end]])
        return sequences, token_probs
