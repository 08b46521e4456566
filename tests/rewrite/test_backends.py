"""TorchBackend mechanics with the tiny random model (its outputs are garbage; the plumbing is not)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from rewrite import ModelError, Restorer, apply_edits
from rewrite.backends import Generated, TorchBackend, _token_spans, greedy_ids

SENTENCES = ["Rubio mentioned it.", "Zürich, 東京 😀 and “quoted” words — ß🙂 here.", "x"]


@pytest.fixture(scope="module")
def backend(tiny_model_dir):
    torch.set_num_threads(1)
    backend = TorchBackend.load(tiny_model_dir)
    # The random model only ever writes <pad>; silence that row so it writes visible tokens.
    with torch.no_grad():
        backend.model.shared.weight[backend.tokenizer.pad_token_id] = 0
    backend.max_new_tokens = 12
    return backend


def test_greedy_ids_are_argmax_and_probabilities_match_a_forward_pass(backend):
    batch = backend.tokenizer(SENTENCES, padding=True, return_tensors="pt")
    sequences, probs = greedy_ids(backend.model, batch["input_ids"], batch["attention_mask"], 12)
    assert len(sequences) == len(probs) == len(SENTENCES)
    for row, (ids, row_probs) in enumerate(zip(sequences, probs)):
        assert 0 < len(ids) == len(row_probs) <= 12
        decoder_input = torch.tensor([[backend.model.config.decoder_start_token_id] + ids[:-1]])
        with torch.no_grad():
            logits = backend.model(
                input_ids=batch["input_ids"][row : row + 1],
                attention_mask=batch["attention_mask"][row : row + 1],
                decoder_input_ids=decoder_input,
            ).logits[0]
        expected = logits.softmax(-1)
        assert ids == expected.argmax(-1).tolist()
        assert row_probs == pytest.approx(expected[range(len(ids)), ids].tolist(), abs=1e-4)


def test_generated_spans_cover_the_decoded_text(backend):
    outputs = backend.generate(SENTENCES)
    assert [type(g) for g in outputs] == [Generated] * 3
    for g in outputs:
        assert g.text, "the model writes something"
        assert len(g.token_spans) == len(g.token_probs) > 0
        assert all(0.0 <= p <= 1.0 for p in g.token_probs)
        assert g.token_spans[0][0] == 0 and g.token_spans[-1][1] == len(g.text)
        assert all(s <= e for s, e in g.token_spans)
        assert all(a[1] <= b[0] or a == b for a, b in zip(g.token_spans, g.token_spans[1:]))
        assert 0.0 <= g.confidence(0, len(g.text)) <= 1.0
    assert backend.generate([]) == []


def test_token_spans_of_byte_pieces(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    text = "ß🙂 x  y\tz"
    ids = tokenizer(text, add_special_tokens=False).input_ids
    assert any(tokenizer.convert_ids_to_tokens(i).startswith("<0x") for i in ids)  # byte fallback used
    spans = _token_spans(tokenizer, ids, text)
    assert len(spans) == len(ids)
    assert "".join(text[s:e] for s, e in dict.fromkeys(spans)) == text
    # The two bytes of ß share the span of ß; the four of 🙂 share the span of 🙂.
    assert text[slice(*spans[ids.index(tokenizer.convert_tokens_to_ids("<0xC3>"))])] == "ß"
    assert text[slice(*spans[ids.index(tokenizer.convert_tokens_to_ids("<0xF0>"))])] == "🙂"


def test_confidence_uses_the_span_and_the_next_token():
    g = Generated("ab cd ef", [(0, 2), (3, 5), (6, 8), (8, 8)], [0.9, 0.5, 0.7, 0.8])
    assert g.confidence(3, 5) == 0.5
    assert g.confidence(0, 2) == 0.5  # the next token decided where "ab" ends
    assert g.confidence(6, 8) == 0.7  # then end-of-sentence
    assert g.confidence(5, 5) == 0.5  # empty span: its neighbours
    with pytest.raises(ModelError):
        Generated("x", [(0, 1)], [])


def test_restorer_on_the_tiny_model(tiny_model_dir, sample_text):
    restorer = Restorer.from_pretrained(tiny_model_dir)
    restorer.backend.max_new_tokens = 8  # random weights never write end-of-sentence
    result = restorer.restore(sample_text)
    assert apply_edits(sample_text, result.edits) == result.text
    assert result.text.count("\n") == sample_text.count("\n")
    info = restorer.model_info
    assert info["name"] == tiny_model_dir.name
    assert len(info["version"]) == 12 and info["vocab_size"] == 340
    assert info["metrics"] is None


def test_default_model_is_the_package_folder(tiny_model_dir, monkeypatch, tmp_path):
    import rewrite.restorer

    monkeypatch.setattr(rewrite.restorer, "DEFAULT_MODEL", tmp_path / "missing")
    with pytest.raises(ModelError, match="the default model is missing"):
        Restorer.from_pretrained()
    monkeypatch.setattr(rewrite.restorer, "DEFAULT_MODEL", tiny_model_dir)
    assert Restorer.from_pretrained(None).model_folder == tiny_model_dir


@pytest.mark.parametrize("missing", ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"])
def test_a_model_folder_missing_a_file_names_it(tiny_model_dir, tmp_path, missing):
    folder = shutil.copytree(tiny_model_dir, tmp_path / "model")
    (folder / missing).unlink()
    with pytest.raises(ModelError, match=f"has no {missing}"):
        Restorer.from_pretrained(folder)


def test_missing_folder_and_broken_files(tiny_model_dir, tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        Restorer.from_pretrained(tmp_path / "nowhere")
    folder = shutil.copytree(tiny_model_dir, tmp_path / "model")
    (folder / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelError, match="cannot load the model"):
        Restorer.from_pretrained(folder)
    shutil.copy(tiny_model_dir / "model.safetensors", folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "vocab_size": 300}))
    with pytest.raises(ModelError):
        Restorer.from_pretrained(folder)


def test_unknown_backend_name(tiny_model_dir):
    from rewrite import InputError

    with pytest.raises(InputError, match="unknown backend"):
        Restorer.from_pretrained(tiny_model_dir, backend="tpu")


@pytest.mark.slow
def test_default_model_restores_the_sample_article(sample_text):
    import rewrite.restorer

    if not rewrite.restorer.DEFAULT_MODEL.is_dir():
        pytest.skip("the default model has not been trained into rewrite/models/default yet")
    torch.set_num_threads(1)
    result = Restorer.from_pretrained().restore(sample_text)
    assert result.edits, "the sample article is spun; the default model finds something"
    assert apply_edits(sample_text, result.edits) == result.text
    assert len(result.text.splitlines()) == len(sample_text.splitlines())
