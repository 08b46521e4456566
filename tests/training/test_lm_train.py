"""Fine-tuning the language-model restorer: batches, frozen layers, checkpoints, export."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.training.test_train import dataset  # noqa: F401  (the small built dataset fixture)


def test_batches_put_the_loss_on_the_original_only():
    from training.lm import LmTokenData

    arrays = {"src": np.array([5, 6, 7, 8], dtype=np.int32), "src_off": np.array([0, 3, 4]),
              "tgt": np.array([5, 9, 2, 8, 2], dtype=np.int32), "tgt_off": np.array([0, 3, 5])}
    batch = LmTokenData(arrays, start=1, end=2).collate(np.array([0, 1]))
    assert batch["input_ids"][0].tolist() == [1, 5, 6, 7, 2, 1, 5, 9, 2]
    # position 5 (the second START) predicts 5, then 9, then END; the rest carries no loss
    assert batch["labels"][0].tolist() == [-100, -100, -100, -100, -100, 5, 9, 2, -100]
    assert batch["input_ids"][1].tolist()[:6] == [1, 8, 2, 1, 8, 2]
    assert batch["labels"][1].tolist() == [-100, -100, -100, 8, 2, -100, -100, -100, -100]
    assert batch["attention_mask"][1].tolist() == [1] * 6 + [0] * 3
    # the labels are the next input token wherever they count
    ids, labels = batch["input_ids"][0], batch["labels"][0]
    at = labels != -100
    assert torch.equal(labels[at][:-1], ids[1:][at[:-1]][: int(at.sum()) - 1])


def test_tokenised_targets_end_in_end(tiny_lm_base):
    from transformers import AutoTokenizer

    from training.lm import tokenize_split

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_lm_base))
    arrays = tokenize_split({"spun": ["People mentioned it."], "original": ["People said it."]}, tokenizer, 64)
    assert arrays["tgt"][arrays["tgt_off"][1] - 1] == 2
    assert tokenizer.decode(arrays["src"].tolist()) == "People mentioned it."


def test_training_rows_begin_with_the_prompt_the_restorer_decodes_from():
    """One prompt for training and inference: ``rewrite.lm.prompt_ids``."""
    from rewrite.lm import prompt_ids
    from training.lm import LmTokenData

    arrays = {"src": np.array([5, 6, 7], dtype=np.int32), "src_off": np.array([0, 3]),
              "tgt": np.array([5, 9, 2], dtype=np.int32), "tgt_off": np.array([0, 3])}
    row = LmTokenData(arrays, start=1, end=2).collate(np.array([0]))["input_ids"][0].tolist()
    prompt = prompt_ids([5, 6, 7], 1, 2)
    assert row[: len(prompt)] == prompt and row[len(prompt):] == [5, 9, 2]


def test_every_family_gives_the_hooks_training_calls():
    from training.families import ARCHES, family

    hooks = ("preflight", "tokenizer_folder", "load_tokenizer", "tokenize_split", "token_data", "build",
             "batch_tokens", "export_files")
    for arch in ARCHES:
        assert all(callable(getattr(family(arch), hook, None)) for hook in hooks), arch
    with pytest.raises(Exception, match="unknown arch"):
        family("rnn")


def test_only_the_top_layers_train_and_are_saved(tiny_lm, tmp_path):
    from training.config import TrainConfig
    from training.lm import LmRestorer, build

    config = TrainConfig(dataset="unused", arch="lm", freeze_layers=3)
    model = build(config)
    trainable = {n for n, p in model.model.named_parameters() if p.requires_grad}
    assert trainable == {n for n, _ in model.model.named_parameters()
                         if n.startswith("model.layers.3.") or n == "model.norm.weight"}
    model.save_pretrained(tmp_path / "ckpt")
    other = build(config)
    with torch.no_grad():
        for p in model.model.model.layers[3].parameters():
            p.add_(1.0)
    from safetensors.torch import load_file

    saved = load_file(tmp_path / "ckpt" / "model.safetensors")
    assert set(saved) == trainable
    other.load_state_dict(saved)
    assert not torch.equal(other.model.model.layers[3].mlp.up_proj.weight, model.model.model.layers[3].mlp.up_proj.weight)
    with pytest.raises(Exception, match="freeze_layers must be between"):
        LmRestorer(model.model, freeze_layers=4)


@pytest.mark.slow
def test_train_lm_then_restore(tiny_lm, tmp_path, dataset):  # noqa: F811
    """`unspin train --arch lm` end to end on the tiny base: a model folder the restorer loads, and
    a resumed run continues from its checkpoint."""
    from rewrite import Restorer
    from rewrite.lm import BASE_CARD, is_lm_folder
    from training.train import TrainConfig, train

    config = TrainConfig(dataset=str(dataset), out=str(tmp_path / "run"), arch="lm", freeze_layers=2, max_steps=3,
                         batch_tokens=512, lr=1e-3, warmup_steps=1, eval_every=2, eval_batches=1, save_every=1,
                         bf16=False)
    folder = train(config)
    assert is_lm_folder(folder)
    assert json.loads((folder / BASE_CARD).read_text())["tuned_from_layer"] == 2
    summary = json.loads((folder / "training_summary.json").read_text())
    assert summary["steps"] == 3 and summary["tokens_seen"] > 0
    restorer = Restorer.from_pretrained(folder, backend="torch")
    assert restorer.restore("Officials say at least 3 people died.").text
    resumed = train(TrainConfig(**{**config.__dict__, "max_steps": 4}))
    assert json.loads((resumed / "training_summary.json").read_text())["steps"] == 4


def test_a_subset_of_lm_data_keeps_the_lm_batches():
    """`--max-train-samples` with `--arch lm` used to batch the subset as T5 data (no prompt)."""
    from training.lm import LmTokenData
    from training.train import subset

    arrays = {"src": np.array([5, 6, 7, 8], dtype=np.int32), "src_off": np.array([0, 3, 4]),
              "tgt": np.array([5, 9, 2, 8, 2], dtype=np.int32), "tgt_off": np.array([0, 3, 5])}
    part = subset(LmTokenData(arrays, start=1, end=2), 1)
    assert len(part) == 1
    assert part.collate(np.array([0]))["input_ids"][0].tolist() == [1, 5, 6, 7, 2, 1, 5, 9, 2]
