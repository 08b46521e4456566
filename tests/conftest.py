"""Shared fixtures: a tiny tokenizer + model folder built once per session, user paths in tmp."""

from __future__ import annotations

import pytest

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
