"""Optional CTranslate2 backend: the same greedy decoding, int8 on CPU (``pip install unspin[fast]``).

The model folder is converted once, on first use, into ``$UNSPIN_CACHE/ct2/<hash>/`` (the cache
defaults to ``~/.cache/unspin``; the hash is the first 16 hex digits of the SHA-256 of the files
the conversion reads: weights, ``config.json``, the tokenizer and, for a language-model folder,
``base_model.json``, so a retrained model or a changed vocabulary gets a fresh conversion). The
conversion keeps float32 weights; CTranslate2 quantizes them to int8 when it loads them with
``compute_type="int8"``, and ``compute_type="float32"`` decodes exactly like PyTorch.

A T5 folder becomes a ``ctranslate2.Translator`` (``Ct2Model``). A language-model folder
(``rewrite.lm``) holds only its tuned layers, so its conversion is given ``write_source``
(``rewrite.lm.save_merged``), which writes the whole model (the base with the tuned tensors put in)
into the temporary folder; that is converted into a ``ctranslate2.Generator`` (``Ct2Generator``).

    >>> model = Ct2Model.load("rewrite/models/default")             # int8, converts if needed
    >>> seqs, probs = model.generate_ids(enc.input_ids, enc.attention_mask, max_new_tokens=128)
    >>> lm = Ct2Generator.load("runs/lm/model", compute_type="float32", write_source=save_merged)
    >>> seqs, probs = lm.generate_ids([[1, 504, 3543, 2, 1]], eos_id=2, max_new_tokens=16)

``generate_ids`` returns what ``rewrite.decoding.generate_ids`` (and ``greedy_lm``) return: per
row, the generated ids up to and including eos (none when cut off at ``max_new_tokens``) and each
id's probability.
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
from .model_folder import available_cpus, cache_root, file_sha256, quiet_transformers

logger = logging.getLogger(__name__)

COMPUTE_TYPES = ("int8", "int8_float32", "float32")
CT2_COMPUTE_TYPES = {"ct2": "int8", "ct2-float32": "float32"}  # backend name -> compute type


HASHED_FILES = ("model.safetensors", "config.json", "spiece.model", "tokenizer.json")
LM_CARD = "base_model.json"  # rewrite.lm.BASE_CARD: hashed only where present (T5 hashes stay as they were)


def model_hash(model_dir: str | os.PathLike) -> str:
    """First 16 hex digits of the SHA-256 over the folder's weights, config and tokenizer files
    (and a language-model folder's ``base_model.json``: which base the tuned layers go over)."""
    if not (Path(model_dir) / "model.safetensors").is_file():
        raise ModelError(f"{model_dir} has no model.safetensors; pass a complete model folder")
    digest = hashlib.sha256()
    names = HASHED_FILES + ((LM_CARD,) if (Path(model_dir) / LM_CARD).is_file() else ())
    for name in names:
        path = Path(model_dir) / name
        digest.update(f"{name}:{file_sha256(path) if path.is_file() else '-'};".encode())
    return digest.hexdigest()[:16]


def _import_ctranslate2():
    try:
        import ctranslate2
    except ImportError as exc:
        raise ModelError("the ct2 backend needs CTranslate2: pip install 'unspin[fast]'") from exc
    return ctranslate2


def converted_dir(model_dir: str | os.PathLike, write_source=None) -> Path:
    """The CTranslate2 conversion of ``model_dir``, converting it now if the cache lacks it.

    Converts into a temporary folder beside the target and renames it into place, so an
    interrupted conversion never leaves a half-written model where the next run would load it.
    ``write_source(model_dir, folder)``, when given, writes the Hugging Face model to convert into
    ``folder`` (inside the temporary one), for a model folder that does not hold it whole.
    """
    target = cache_root() / "ct2" / model_hash(model_dir)
    if (target / "model.bin").is_file():
        return target
    ctranslate2 = _import_ctranslate2()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        logger.info("converting %s for CTranslate2 into %s", model_dir, target)
        source = Path(model_dir)
        if write_source is not None:
            source = tmp / "merged"
            write_source(model_dir, source)
        converter = ctranslate2.converters.TransformersConverter(str(source))
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
        translator, vocabulary = _open("Translator", "shared_vocabulary.json", model_dir, compute_type, threads)
        config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
        return cls(translator, vocabulary, eos_id=int(config.get("eos_token_id", 1)))

    def generate_ids(self, input_ids, attention_mask, max_new_tokens: int) -> tuple[list[list[int]], list[list[float]]]:
        """Greedy-decode a padded batch (``[batch, src_len]`` tensors or nested lists)."""
        if max_new_tokens < 1:
            raise InputError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
        ids = input_ids.tolist() if hasattr(input_ids, "tolist") else input_ids
        mask = attention_mask.tolist() if hasattr(attention_mask, "tolist") else attention_mask
        source = [[self.vocabulary[i] for i, m in zip(row, row_mask) if m] for row, row_mask in zip(ids, mask)]
        return _greedy_steps(
            len(source),
            self.eos_id,
            lambda record: self.translator.translate_batch(
                source,
                beam_size=1,
                max_decoding_length=max_new_tokens,
                min_decoding_length=0,
                max_input_length=0,
                return_scores=True,  # makes the callback carry each token's log probability
                callback=record,
            ),
        )


class Ct2Generator:
    """A converted decoder-only model (``rewrite.lm``) continuing prompts greedily, like ``greedy_lm``."""

    def __init__(self, generator, vocabulary: list[str]):
        self.generator = generator
        self.vocabulary = vocabulary  # id -> token string, as CTranslate2 stores it

    @classmethod
    def load(
        cls, model_dir: str | os.PathLike, compute_type: str = "float32", threads: int = 0, write_source=None
    ) -> "Ct2Generator":
        """Load (converting on first use, see ``converted_dir``) a language-model folder;
        ``threads`` 0 lets CTranslate2 choose."""
        return cls(*_open("Generator", "vocabulary.json", model_dir, compute_type, threads, write_source))

    def generate_ids(self, prompts: list[list[int]], eos_id: int, max_new_tokens: int):
        """Greedy continuations of ``prompts`` (token ids, of any lengths), stopping at ``eos_id``.

        The prompts are fed to the model at once (``include_prompt_in_result=False``); the
        callback sees only the generated tokens, each with its log probability."""
        if max_new_tokens < 1:
            raise InputError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
        source = [[self.vocabulary[i] for i in prompt] for prompt in prompts]
        return _greedy_steps(
            len(source),
            eos_id,
            lambda record: self.generator.generate_batch(
                source,
                beam_size=1,
                max_length=max_new_tokens,  # generated tokens, the prompt not counted
                include_prompt_in_result=False,
                end_token=[eos_id],
                return_end_token=True,
                return_scores=True,
                callback=record,
            ),
        )


def ct2_name(compute_type: str) -> str:
    """The backend name (``rewrite.backends.BACKENDS``) of CTranslate2 with ``compute_type``
    (``ct2:TYPE`` for one no name stands for)."""
    names = {compute_type: name for name, compute_type in CT2_COMPUTE_TYPES.items()}
    return names.get(compute_type, f"ct2:{compute_type}")


def ct2_threads(compute_type: str) -> int:
    """Default CTranslate2 threads: 1 for int8, else one per CPU this process may use, at most 4.

    Measured on 2 cores (benchmarks/decode_bench.py, notes/issue7): int8 restored a 100-word
    paragraph in 120 ms with 1 thread and 330 ms with 2; float32 in 340 ms with 1 and 190 ms
    with 2. CTranslate2's own default (4) would oversubscribe a small machine.
    """
    if compute_type.startswith("int8"):
        return 1
    return max(1, min(4, available_cpus()))


def _open(kind: str, vocabulary_file: str, model_dir, compute_type: str, threads: int, write_source=None):
    """``(ctranslate2.<kind>, vocabulary)`` for ``model_dir``'s conversion (made now if missing)."""
    if compute_type not in COMPUTE_TYPES:
        raise InputError(f"compute_type must be one of {COMPUTE_TYPES}, got {compute_type!r}")
    ctranslate2 = _import_ctranslate2()
    try:
        folder = converted_dir(model_dir, write_source)
    except OSError as exc:  # the cache folder cannot be written
        raise ModelError(
            f"cannot prepare the CTranslate2 model of {model_dir} ({exc}); set UNSPIN_CACHE to a "
            "writable folder or use backend='torch'"
        ) from exc
    try:
        model = getattr(ctranslate2, kind)(str(folder), device="cpu", compute_type=compute_type, intra_threads=threads)
        vocabulary = json.loads((folder / vocabulary_file).read_text(encoding="utf-8"))
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelError(
            f"cannot load the CTranslate2 model in {folder} ({exc}); delete that folder to reconvert"
        ) from exc
    return model, vocabulary


def _greedy_steps(rows: int, eos_id: int, run) -> tuple[list[list[int]], list[list[float]]]:
    """Run ``run(callback)`` (a greedy search that calls ``callback`` with every generated token)
    and collect, per row, the ids up to and including ``eos_id`` and their probabilities."""
    if not rows:
        return [], []
    steps: dict[int, list[tuple[int, float]]] = {b: [] for b in range(rows)}

    def record(step) -> bool:
        steps[step.batch_id].append((step.token_id, step.log_prob))
        return False

    run(record)
    sequences, token_probs = [], []
    for b in range(rows):
        row = steps[b]
        tokens = [t for t, _ in row]
        end = tokens.index(eos_id) + 1 if eos_id in tokens else len(tokens)
        sequences.append(tokens[:end])
        token_probs.append([math.exp(lp) for _, lp in row[:end]])
    return sequences, token_probs
