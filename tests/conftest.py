"""Shared fixtures: a tiny tokenizer + model folder built once per session, user paths in tmp."""

from __future__ import annotations

import pytest

from tests.pytest_safeguards import pytest_runtest_makereport  # noqa: F401  (a hook: see its module)

TINY_TEXT = [
    "The president said on Wednesday that the war in the region must end.",
    "At least 15 people were killed overnight in attacks on the capital.",
    "Officials announced new sanctions because of the invasion.",
    "Zürich, 東京 and São Paulo host talks 😀 with “quoted” words — and dashes.",
    "The government is preparing for escalation if talks collapse.",
    "Rubio mentioned the administration is making ready for a bigger battle.",
] * 40


@pytest.fixture(autouse=True)
def _user_paths(tmp_path_factory, monkeypatch):
    """Point every user cache at a temporary folder so tests never touch ~/.cache."""
    monkeypatch.setenv("UNSPIN_CACHE", str(tmp_path_factory.getbasetemp() / "unspin-cache"))


@pytest.fixture(autouse=True)
def _library_log_levels():
    """Log levels of the model libraries (and TRANSFORMERS_VERBOSITY) as they were, after a test
    that ran the CLI: it hides their developer warnings for the rest of its process."""
    import logging
    import os

    from rewrite.model_folder import LIBRARY_LOGGERS

    levels = {name: logging.getLogger(name).level for name in LIBRARY_LOGGERS}
    verbosity = os.environ.get("TRANSFORMERS_VERBOSITY")
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    if verbosity is None:
        os.environ.pop("TRANSFORMERS_VERBOSITY", None)
    else:
        os.environ["TRANSFORMERS_VERBOSITY"] = verbosity


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A model folder (tokenizer + randomly initialised tiny T5) in the shipped layout."""
    import torch

    from training.modeling import ModelConfig, build_model
    from training.tokenizer import load_tokenizer, train_tokenizer

    folder = tmp_path_factory.mktemp("tiny-model")
    train_tokenizer(TINY_TEXT, folder, vocab_size=340)
    tokenizer = load_tokenizer(folder)
    torch.manual_seed(0)
    model = build_model(ModelConfig.preset("tiny"), vocab_size=len(tokenizer))
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_lm_base(tmp_path_factory):
    """A stand-in for the dequantized SmolLM2 base folder (``rewrite.lm.base_folder``): a
    byte-level BPE tokenizer with SmolLM2's special tokens and a randomly initialised tiny
    ``LlamaForCausalLM`` of 4 layers."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-lm-base")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(TINY_TEXT, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                        unk_token="<|endoftext|>", pad_token="<|im_end|>",
                                        clean_up_tokenization_spaces=False)
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=2)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


@pytest.fixture
def tiny_lm(tiny_lm_base, monkeypatch):
    """``rewrite.lm`` pointed at the tiny base; yields the base folder."""
    from rewrite import lm

    monkeypatch.setattr(lm, "base_folder", lambda: tiny_lm_base)
    monkeypatch.setattr(lm, "base_gguf", lambda: tiny_lm_base / "model.safetensors")
    return tiny_lm_base
