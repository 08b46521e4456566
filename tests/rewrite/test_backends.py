"""Backend mechanics with the tiny random model (its outputs are garbage; the plumbing is not)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from rewrite import InputError, ModelError, Restorer, apply_edits
from rewrite.backends import BACKENDS, Generated, load_backend
from rewrite import t5
from rewrite.t5 import Ct2Backend, TorchBackend
from rewrite.generated import token_spans
from rewrite.decoding import generate_ids

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


@pytest.mark.parametrize("method", ["greedy", "guided"])
def test_decoded_ids_are_argmax_and_probabilities_match_a_forward_pass(backend, method):
    batch = backend.tokenizer(SENTENCES, padding=True, return_tensors="pt")
    sequences, probs = generate_ids(backend.model, batch["input_ids"], batch["attention_mask"], 12, method=method)
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
    spans = token_spans(tokenizer, ids, text)
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


# --- choosing a backend --------------------------------------------------------------------------

CT2_NAMES = ("ct2", "ct2-float32")


@pytest.fixture(scope="module")
def writing_model_dir(tiny_model_dir, tmp_path_factory):
    """The tiny model with its <pad> row zeroed (so it writes visible tokens), saved as a model folder."""
    from transformers import T5ForConditionalGeneration

    folder = tmp_path_factory.mktemp("writing-model")
    shutil.copytree(tiny_model_dir, folder, dirs_exist_ok=True)
    model = T5ForConditionalGeneration.from_pretrained(tiny_model_dir, dtype=torch.float32)
    with torch.no_grad():
        model.shared.weight[model.config.pad_token_id] = 0
    model.save_pretrained(folder)
    return folder


def needs_ct2(name: str) -> None:
    if name in CT2_NAMES:
        pytest.importorskip("ctranslate2")


@pytest.mark.parametrize("name", [b for b in BACKENDS if b != "auto"])
def test_each_backend_name_loads_its_decoder(writing_model_dir, name):
    needs_ct2(name)
    backend = load_backend(writing_model_dir, name, threads=1)
    assert backend.name == name
    assert isinstance(backend, Ct2Backend if name in CT2_NAMES else TorchBackend)
    if name.startswith("torch"):
        assert backend.method == ("greedy" if name == "torch-greedy" else "guided")
        assert backend.word_starts and backend.tokenizer.eos_token_id in backend.word_starts
    restorer = Restorer.from_pretrained(writing_model_dir, backend=name, threads=1)
    assert restorer.backend.name == name and restorer.model_info["backend"] == name


@pytest.mark.parametrize("name", [b for b in BACKENDS if b not in ("auto", "torch-greedy")])
def test_backends_agree_with_plain_greedy(writing_model_dir, name):
    needs_ct2(name)
    reference = load_backend(writing_model_dir, "torch-greedy", threads=1)
    backend = load_backend(writing_model_dir, name, threads=1)
    reference.max_new_tokens = backend.max_new_tokens = 12
    want, got = reference.generate(SENTENCES), backend.generate(SENTENCES)
    assert len(got) == len(SENTENCES) and all(type(g) is Generated for g in got)
    assert any(g.text for g in want), "the model writes something"
    for w, g in zip(want, got):
        assert all(0.0 <= p <= 1.0 for p in g.token_probs)
        assert not g.token_spans or g.token_spans[-1][1] == len(g.text)
        if name == "ct2":  # int8 weights: close to greedy, not always equal (random weights even less)
            continue
        assert (g.text, g.token_spans, g.complete) == (w.text, w.token_spans, w.complete)
        assert g.token_probs == pytest.approx(w.token_probs, abs=1e-4)
    assert backend.generate([]) == []


def test_auto_picks_the_fast_exact_backend_when_ctranslate2_is_installed(writing_model_dir, monkeypatch):
    from rewrite import backends

    pytest.importorskip("ctranslate2")
    assert backends.resolve_auto() == t5.AUTO_BACKEND
    restorer = Restorer.from_pretrained(writing_model_dir, threads=1)
    assert restorer.backend.name == t5.AUTO_BACKEND
    monkeypatch.setattr(backends, "ct2_installed", lambda: False)
    assert backends.resolve_auto() == "torch"
    restorer = Restorer.from_pretrained(writing_model_dir, backend="auto", threads=1)
    assert restorer.backend.name == "torch" and restorer.model_info["backend"] == "torch"


def test_auto_falls_back_to_torch_when_the_model_does_not_convert(writing_model_dir, monkeypatch, caplog):
    from rewrite import backends, ct2

    def broken(model_dir, write_source=None):
        raise ModelError(f"cannot convert {model_dir} for CTranslate2 (disk full); use backend='torch'")

    monkeypatch.setattr(backends, "ct2_installed", lambda: True)
    monkeypatch.setattr(t5, "AUTO_BACKEND", "ct2")
    monkeypatch.setattr(ct2, "converted_dir", broken)
    with caplog.at_level("WARNING", logger="rewrite.backends"):
        assert load_backend(writing_model_dir, "auto", threads=1).name == "torch"
    assert "the ct2 backend is unavailable" in caplog.text and "disk full" in caplog.text
    with pytest.raises(ModelError, match="disk full"):
        load_backend(writing_model_dir, "ct2")


def test_ct2_without_ctranslate2_says_what_to_install(writing_model_dir, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ctranslate2(name, *args, **kwargs):
        if name == "ctranslate2":
            raise ImportError("No module named 'ctranslate2'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ctranslate2)
    with pytest.raises(ModelError, match=r"pip install 'unspin\[fast\]'"):
        Restorer.from_pretrained(writing_model_dir, backend="ct2")


def test_threads_reach_torch_and_are_validated(writing_model_dir):
    before = torch.get_num_threads()
    try:
        Restorer.from_pretrained(writing_model_dir, backend="torch", threads=1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(InputError, match="threads"):
        Restorer.from_pretrained(writing_model_dir, backend="torch", threads=-1)


def test_an_unwritable_cache_falls_back_to_torch(writing_model_dir, monkeypatch, tmp_path):
    from rewrite import backends

    pytest.importorskip("ctranslate2")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("UNSPIN_CACHE", str(blocker / "cache"))  # mkdir under a file: OSError
    monkeypatch.setattr(t5, "AUTO_BACKEND", "ct2")
    assert load_backend(writing_model_dir, "auto", threads=1).name == "torch"
    with pytest.raises(ModelError, match="UNSPIN_CACHE"):
        load_backend(writing_model_dir, "ct2", threads=1)
