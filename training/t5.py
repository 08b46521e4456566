"""The T5 family on the training side: a T5 trained from scratch here (or fine-tuned with --init).

One of the families of ``training.families`` (``unspin train --arch t5``, the default); the
inference side is ``rewrite.t5``. The hooks ``training.train`` calls, in the order it calls them:

    preflight(config)                         --init must be a T5 model folder with spiece.model
    tokenizer_folder(config)                  init's, --tokenizer's, or one trained on the data
    load_tokenizer(folder)                    the SentencePiece tokenizer (training.tokenizer)
    tokenize_split(dataset, tokenizer, n)     {"src", "src_off", "tgt", "tgt_off"} arrays
    token_data(arrays, tokenizer)             a TokenData: encoder input = spun, labels = original
    build(config, tokenizer_dir)              a T5ForConditionalGeneration (preset or --init)
    batch_tokens(batch)                       tokens a batch counts for tokens/s: encoder + decoder
    export_files(model, tokenizer_dir, tmp)   bf16 safetensors, config.json and the tokenizer
"""

from __future__ import annotations

import logging
import random
import shutil
from pathlib import Path

from typing import TYPE_CHECKING

import torch

from .data import TokenData
from .data import tokenize_split as tokenize_split
from .errors import ConfigError, TrainingError
from .modeling import ModelConfig, build_model
from .tokenizer import load_tokenizer as load_tokenizer

if TYPE_CHECKING:
    from .config import TrainConfig

log = logging.getLogger(__name__)

TOKENIZER_FILES = ("spiece.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def preflight(config: TrainConfig) -> None:
    """``--init`` must be a model folder this family exports (it has ``spiece.model``)."""
    from rewrite.errors import ModelError
    from rewrite.model_folder import check_model_folder

    if not config.init:
        return
    try:
        folder = check_model_folder(config.init)
        if not (folder / "spiece.model").is_file():  # the tokenizer a fine-tune exports again
            raise ModelError(f"model folder {folder} has no spiece.model")
    except ModelError as exc:
        raise ConfigError(f"--init {config.init} is not a model folder ({exc}); give a folder written "
                          "by `unspin train` (its model/) or rewrite/models/default") from exc


def tokenizer_folder(config: TrainConfig) -> Path:
    """The tokenizer folder to use: init's, the given one, or a new one trained on the data."""
    from .tokenizer import train_tokenizer

    if config.init:
        return Path(config.init)
    if config.tokenizer:
        return Path(config.tokenizer)
    folder = Path(config.out) / "tokenizer"
    if (folder / "tokenizer.json").is_file():
        return folder
    from .build import load_dataset_dir

    train = load_dataset_dir(config.dataset)["train"]
    rng = random.Random(config.seed)
    n = min(len(train), config.tokenizer_sentences // 2)
    rows = train.select(sorted(rng.sample(range(len(train)), n)))
    texts = [t for pair in zip(rows["original"], rows["spun"]) for t in pair]
    log.info("training a %d-piece tokenizer on %d sentences", config.vocab_size, len(texts))
    return train_tokenizer(texts, folder, vocab_size=config.vocab_size, seed=config.seed)


def token_data(arrays, tokenizer) -> TokenData:
    """A tokenised split batched for the encoder-decoder."""
    return TokenData(arrays)


def build(config: TrainConfig, tokenizer_dir: Path):
    """A fresh T5 of ``config.preset``, or ``config.init``'s; its vocabulary must be the tokenizer's."""
    from transformers import T5ForConditionalGeneration

    vocab = len(load_tokenizer(tokenizer_dir))
    if config.init:
        model = T5ForConditionalGeneration.from_pretrained(config.init, dtype=torch.float32)
    else:
        model = build_model(ModelConfig.preset(config.preset), vocab_size=vocab)
    if model.config.vocab_size != vocab:
        raise TrainingError(
            f"model vocab {model.config.vocab_size} != tokenizer length {vocab}; "
            "use the model's own tokenizer (drop --tokenizer) or start from scratch"
        )
    return model


def batch_tokens(batch: dict) -> int:
    """The tokens one batch trains on: the encoder's, and the decoder's on top of them."""
    return int(batch["attention_mask"].sum()) + int((batch["labels"] != -100).sum())


def export_files(model, tokenizer_dir: Path, tmp: Path) -> None:
    """The model-folder files of a T5 (``rewrite.t5`` loads them): bf16 weights and the tokenizer."""
    model = model.to("cpu").to(torch.bfloat16)
    model.save_pretrained(tmp)
    for name in TOKENIZER_FILES:
        shutil.copy(tokenizer_dir / name, tmp / name)
