"""Input-guided decoding gives exactly the greedy output; the CTranslate2 backend agrees with it.

A random model never copies its input, so most tests use a tiny model trained for a few seconds
to copy token ids with a handful of rewrites (``RULES``): its outputs follow the input for long
stretches and then diverge, which exercises long accepted drafts and re-synchronisation.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest
import torch

from rewrite.decoding import generate_ids, resync, word_start_ids

# Rewrites the copy model learns, source ids -> target ids: same length, 2->1, 1->3, deletion.
RULES = [((10,), (20,)), ((11, 12), (21,)), ((13,), (22, 23, 24)), ((14,), ())]
WORDS = range(30, 130)  # plain ids, copied unchanged
TOKENIZER_FILES = ("spiece.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def copy_pair(rng: random.Random) -> tuple[list[int], list[int]]:
    """(source, target) ids, eos-terminated: 3-14 distinct words with 0-2 rewrites spliced in.

    >>> copy_pair(rng)   # e.g. source [57, 13, 88, 1] -> target [57, 22, 23, 24, 88, 1]
    """
    words = rng.sample(WORDS, rng.randint(3, 14))
    spots = {rng.randint(0, len(words)): rng.choice(RULES) for _ in range(rng.randint(0, 2))}
    source: list[int] = []
    target: list[int] = []
    for k in range(len(words) + 1):
        if k in spots:
            source += spots[k][0]
            target += spots[k][1]
        if k < len(words):
            source.append(words[k])
            target.append(words[k])
    return source + [1], target + [1]


def pad_batch(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ``input_ids`` and ``attention_mask``, as the tokenizer returns them."""
    width = max(len(r) for r in rows)
    ids = torch.tensor([r + [0] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    return ids, mask


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """The models here are tiny: threads only add overhead (and stall on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def copy_model_dir(tiny_model_dir, tmp_path_factory):
    """A model folder (tiny tokenizer, vocab 340) whose T5 learned to copy with ``RULES``.

    Head 0 of the encoder starts out looking one token back, which lets the model learn copying
    ("find the input position after the token I just wrote") in ~300 steps (200 were enough with the libraries of November 2026; today's copy 116 passes for 313 tokens).
    """
    from training.modeling import ModelConfig, build_model

    torch.manual_seed(0)
    config = ModelConfig(d_model=64, num_layers=2, num_decoder_layers=2, num_heads=2, d_ff=128, dropout_rate=0.0)
    model = build_model(config, vocab_size=340)
    with torch.no_grad():
        bias = model.encoder.block[0].layer[0].SelfAttention.relative_attention_bias.weight  # [buckets, heads]
        bias[:, 0] = 0.0
        bias[1, 0] = 8.0  # bucket 1: the previous token
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    warmup = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / 30))
    rng = random.Random(0)
    model.train()
    for _ in range(300):
        pairs = [copy_pair(rng) for _ in range(32)]
        ids, mask = pad_batch([s for s, _ in pairs])
        labels, label_mask = pad_batch([t for _, t in pairs])
        loss = model(input_ids=ids, attention_mask=mask, labels=labels.masked_fill(label_mask == 0, -100)).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        warmup.step()
    folder = tmp_path_factory.mktemp("copy-model")
    model.save_pretrained(folder)
    for name in TOKENIZER_FILES:
        shutil.copy(tiny_model_dir / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def copy_model(copy_model_dir):
    from transformers import T5ForConditionalGeneration

    return T5ForConditionalGeneration.from_pretrained(copy_model_dir, dtype=torch.float32).eval()


@pytest.fixture(scope="module")
def sources():
    rng = random.Random(1)
    return [copy_pair(rng)[0] for _ in range(96)]


class PassCounter:
    """Counts decoder forward passes of a model."""

    def __init__(self, model):
        self.calls = 0
        self.handle = model.get_decoder().register_forward_hook(self._hook)

    def _hook(self, *_):
        self.calls += 1


def assert_same(expected, got, tolerance=1e-5):
    (want_ids, want_probs), (got_ids, got_probs) = expected, got
    assert got_ids == want_ids
    for want, have in zip(want_probs, got_probs):
        assert have == pytest.approx(want, abs=tolerance)


def test_copy_model_copies(copy_model, sources):
    """Guards the fixture: the model must mostly copy, or the guided tests below prove little."""
    ids, mask = pad_batch(sources[:32])
    out, _ = generate_ids(copy_model, ids, mask, 40, method="greedy")
    copied = sum(sum(a == b for a, b in zip(o, s)) for o, s in zip(out, sources)) / sum(len(s) for s in sources[:32])
    assert copied > 0.5


def test_guided_equals_greedy_one_at_a_time(copy_model, sources):
    for source in sources[:40]:
        ids, mask = pad_batch([source])
        assert_same(generate_ids(copy_model, ids, mask, 40, method="greedy"), generate_ids(copy_model, ids, mask, 40))


@pytest.mark.parametrize("batch_size", [2, 7, 32])
def test_guided_equals_greedy_batched(copy_model, sources, batch_size):
    for start in range(0, len(sources), batch_size):
        ids, mask = pad_batch(sources[start : start + batch_size])
        assert_same(generate_ids(copy_model, ids, mask, 40, method="greedy"), generate_ids(copy_model, ids, mask, 40))


@pytest.mark.parametrize("max_new_tokens", [1, 2, 5, 9])
def test_guided_equals_greedy_when_cut_off(copy_model, sources, max_new_tokens):
    ids, mask = pad_batch(sources[:16])
    greedy = generate_ids(copy_model, ids, mask, max_new_tokens, method="greedy")
    guided = generate_ids(copy_model, ids, mask, max_new_tokens)
    assert_same(greedy, guided)
    assert all(len(row) <= max_new_tokens for row in guided[0])
    assert any(1 not in row for row in guided[0])  # some rows were cut off before eos


@pytest.mark.parametrize("draft_len", [1, 3, 64])
def test_draft_length_does_not_change_the_output(copy_model, sources, draft_len):
    ids, mask = pad_batch(sources[:24])
    greedy = generate_ids(copy_model, ids, mask, 40, method="greedy")
    assert_same(greedy, generate_ids(copy_model, ids, mask, 40, draft_len=draft_len))


def test_word_starts_do_not_change_the_output(copy_model, sources):
    ids, mask = pad_batch(sources[:24])
    starts = set(range(30, 130, 3)) | {1}  # any set: it only moves guesses, never the output
    greedy = generate_ids(copy_model, ids, mask, 40, method="greedy")
    assert_same(greedy, generate_ids(copy_model, ids, mask, 40, word_starts=starts))


def test_word_start_ids(tiny_model_dir):
    from training.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(tiny_model_dir)
    starts = word_start_ids(tokenizer)
    pieces = tokenizer.convert_ids_to_tokens(tokenizer("The president said, Zürich").input_ids)
    flags = [tokenizer.convert_tokens_to_ids(p) in starts for p in pieces]
    assert flags[0] and flags[-1]  # "▁..." opens the sentence; "</s>" ends it
    inside = [p for p, f in zip(pieces, flags) if not f]  # pieces that continue a word
    assert inside and not any(p.startswith("▁") for p in inside)
    assert tokenizer.convert_tokens_to_ids(",") in starts


def test_guided_needs_far_fewer_decoder_passes(copy_model, sources):
    counter = PassCounter(copy_model)
    try:
        guided_passes = []
        tokens = 0
        for source in sources[:30]:
            ids, mask = pad_batch([source])
            counter.calls = 0
            out, _ = generate_ids(copy_model, ids, mask, 40)
            guided_passes.append(counter.calls)
            tokens += len(out[0])
    finally:
        counter.handle.remove()
    # greedy makes one pass per output token; a pure copy needs one pass, each rewrite a few more
    assert sum(guided_passes) < tokens / 3
    assert min(guided_passes) == 1


def test_resync_after_rewrites(copy_model):
    """An edit in the middle, then a long copied tail: the tail is taken in one pass."""
    head, tail = list(range(40, 48)), list(range(60, 72))
    checked = 0
    for rule_source, rule_target in RULES:
        source = head + list(rule_source) + tail + [1]
        ids, mask = pad_batch([source])
        counter = PassCounter(copy_model)
        try:
            out, _ = generate_ids(copy_model, ids, mask, 60)
        finally:
            counter.handle.remove()
        if out[0] != head + list(rule_target) + tail + [1]:
            continue  # the tiny model got this one wrong; equality with greedy is tested elsewhere
        # one pass for the head, one per target token the draft cannot know, at most one to re-sync
        assert counter.calls <= len(rule_target) + 2, (rule_source, counter.calls)
        checked += 1
    assert checked >= 2, "the copy model should get most rewrites right"


def test_resync_finds_the_input_position():
    source = [5, 6, 7, 8, 9, 6, 7, 1]
    assert resync(source, out=[5, 4, 7], hint=2) == 3           # 4 replaced 6; "7" is source[2]
    assert resync(source, out=[9, 6, 7], hint=2) == 7           # the longest tail wins over the hint
    assert resync(source, out=[3], hint=4) == 4                 # nothing matches: keep the hint
    assert resync(source, out=[3], hint=99) == len(source)


def test_random_model_and_degenerate_inputs(tiny_model_dir):
    from transformers import T5ForConditionalGeneration

    model = T5ForConditionalGeneration.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    rows = [[1], [50, 1], [7, 8, 9, 10, 11, 12, 1]]
    ids, mask = pad_batch(rows)
    assert_same(generate_ids(model, ids, mask, 12, method="greedy"), generate_ids(model, ids, mask, 12))
    assert generate_ids(model, ids[:0], mask[:0], 12) == ([], [])


def test_bad_arguments(copy_model):
    ids, mask = pad_batch([[40, 1]])
    with pytest.raises(ValueError, match="method"):
        generate_ids(copy_model, ids, mask, 5, method="beam")
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate_ids(copy_model, ids, mask, 0)


# --- CTranslate2 ---------------------------------------------------------------------------------


@pytest.fixture
def ct2_lib():
    return pytest.importorskip("ctranslate2")


@pytest.fixture(scope="module")
def ct2_cache(tmp_path_factory):
    """One cache for the agreement tests, so the copy model is converted once."""
    return tmp_path_factory.mktemp("ct2-cache")


@pytest.mark.parametrize("compute_type, min_agreement", [("float32", 1.0), ("int8", 0.85)])
def test_ct2_agrees_with_greedy(
    ct2_lib, copy_model, copy_model_dir, sources, ct2_cache, monkeypatch, compute_type, min_agreement
):
    from rewrite.ct2 import Ct2Model

    monkeypatch.setenv("UNSPIN_CACHE", str(ct2_cache))
    model = Ct2Model.load(copy_model_dir, compute_type=compute_type, threads=1)
    ids, mask = pad_batch(sources)
    greedy_ids, greedy_probs = generate_ids(copy_model, ids, mask, 40, method="greedy")
    ct2_ids, ct2_probs = model.generate_ids(ids, mask, 40)
    agreement = sum(a == b for a, b in zip(greedy_ids, ct2_ids)) / len(greedy_ids)
    assert agreement >= min_agreement, f"{compute_type}: {agreement:.0%} of outputs identical to greedy"
    assert all(len(i) == len(p) and all(0.0 < x <= 1.0 for x in p) for i, p in zip(ct2_ids, ct2_probs))
    if compute_type == "float32":
        assert_same((greedy_ids, greedy_probs), (ct2_ids, ct2_probs), tolerance=1e-4)
        assert model.generate_ids(ids, mask, 3)[0] == [row[:3] for row in greedy_ids]


def test_ct2_converts_once_into_the_cache(ct2_lib, copy_model_dir, tmp_path, monkeypatch):
    from rewrite import ct2

    monkeypatch.setenv("UNSPIN_CACHE", str(tmp_path))
    folder = ct2.converted_dir(copy_model_dir)
    assert folder == tmp_path / "ct2" / ct2.model_hash(copy_model_dir)
    assert (folder / "model.bin").is_file()

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted twice")

    monkeypatch.setattr(ct2_lib.converters, "TransformersConverter", no_conversion)
    assert ct2.converted_dir(copy_model_dir) == folder
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no temporary folders left
    import shutil

    other = shutil.copytree(copy_model_dir, tmp_path / "other")
    assert ct2.model_hash(other) == ct2.model_hash(copy_model_dir)
    (other / "config.json").write_text((other / "config.json").read_text() + "\n")
    assert ct2.model_hash(other) != ct2.model_hash(copy_model_dir)  # same weights, another config


def test_ct2_failed_conversion_leaves_nothing(ct2_lib, copy_model_dir, tmp_path, monkeypatch):
    from rewrite import ct2
    from rewrite.errors import ModelError

    class BrokenConverter:
        def __init__(self, *args, **kwargs):
            pass

        def convert(self, output_dir, **kwargs):
            Path(output_dir).mkdir(parents=True)
            (Path(output_dir) / "model.bin").write_bytes(b"half a model")
            raise RuntimeError("disk full")

    monkeypatch.setenv("UNSPIN_CACHE", str(tmp_path))
    monkeypatch.setattr(ct2_lib.converters, "TransformersConverter", BrokenConverter)
    with pytest.raises(ModelError, match="disk full"):
        ct2.converted_dir(copy_model_dir)
    assert list((tmp_path / "ct2").iterdir()) == []


# --- the benchmark -------------------------------------------------------------------------------


@pytest.mark.slow  # runs the benchmark
def test_decode_bench_measures_a_method(tiny_model_dir):
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "decode_bench.py"
    spec = importlib.util.spec_from_file_location("decode_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    paragraphs = ["Rubio mentioned the plan. At least 15 individuals were killed in a single day.", "Talks went on."]
    result = bench.measure("guided", str(tiny_model_dir), paragraphs, [1, 4], 2, 1)
    assert result["words"] == 17 and len(result["outputs"]) == 3  # three sentences
    assert result["batch1"]["words_per_second"] > 0 and result["latency_ms"]["p95"] >= result["latency_ms"]["p50"]
    assert "| guided |" in bench.table([result], [1, 4])


@pytest.mark.slow  # runs the benchmark
def test_decode_bench_measures_the_restorer_with_a_named_backend(tiny_model_dir):
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "decode_bench.py"
    spec = importlib.util.spec_from_file_location("decode_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    paragraphs = ["Rubio mentioned the plan. Talks went on."]
    greedy = bench.measure("restorer:torch-greedy", str(tiny_model_dir), paragraphs, [1], 1, 1)
    guided = bench.measure("restorer:torch", str(tiny_model_dir), paragraphs, [1], 1, 1)
    assert (greedy["backend"], guided["method"]) == ("torch-greedy", "restorer (torch)")
    assert guided["outputs"] == greedy["outputs"] and len(guided["outputs"]) == 1
    assert bench.baseline(guided, [greedy, guided]) is greedy
    assert "| restorer (torch) |" in bench.table([greedy, guided], [1])
