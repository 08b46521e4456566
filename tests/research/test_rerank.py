"""The noisy-channel reranker: features, labels from the builder's edits, the fit, the restorer."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from rewrite.edits import apply_edits
from training.errors import ConfigError
from research.lm_baseline import BaselineConfig, Candidate, InverseChannel, LmBaselineRestorer, LmScorer
from research.rerank import (FEATURES, RerankedRestorer, features, fit_logistic, gold_spans, label, proposals,
                             sigmoid)

from .test_lm_baseline import COUNTS, tiny_lexicon


def test_gold_spans_are_the_builders_edits_in_spun_offsets():
    original = "At least 15 people said the war ended."
    edits = [{"start": 0, "end": 8, "original": "At least", "replacement": "Not less than"},
             {"start": 12, "end": 18, "original": "people", "replacement": "individuals"},
             {"start": 28, "end": 31, "original": "war", "replacement": "struggle"}]
    spun = "Not less than 15 individuals said the struggle ended."
    gold = gold_spans(spun, edits)
    assert {spun[s:e]: o for (s, e), o in gold.items()} == {"Not less than": "At least", "individuals": "people",
                                                              "struggle": "war"}
    at = spun.index("struggle")
    assert label(Candidate(at, at + 8, "War", 1.0, 1, 0), gold) == 1  # case does not matter
    assert label(Candidate(at, at + 8, "battle", 1.0, 1, 0), gold) == 0
    assert label(Candidate(at, at + 3, "war", 1.0, 1, 0), gold) == 0  # another span


def test_features_say_what_the_t5_and_the_channel_proposed():
    t5 = [(6, 15, "said", 0.8)]
    same = features(Candidate(6, 15, "Said", 2.0, 2, 0), t5)
    other = features(Candidate(6, 15, "told", -1.0, 1, 1), t5)
    alone = features(Candidate(20, 25, "people", 20.0, 0, -1), t5, unscored=True)
    row = lambda f: dict(zip(FEATURES, f))  # noqa: E731
    assert row(same)["t5"] == 0.8 and row(same)["t5_proposed"] == 1 and row(same)["t5_other"] == 0
    assert row(other)["t5"] == 0 and row(other)["t5_other"] == 1 and row(other)["gain_positive"] == 0
    assert row(same)["channel_first"] == 1 and row(other)["channel_first"] == 0
    assert row(alone)["gain"] == 2.0 and row(alone)["channel"] == 0 and row(alone)["unscored"] == 1  # clipped to 8/4


def test_fit_logistic_separates_and_refuses_one_class():
    x = [[1.0, v] for v in (-2, -1, -0.5, 0.5, 1, 2)]
    y = [0, 0, 1, 0, 1, 1]
    w = fit_logistic(x, y)
    assert w[1] > 0
    probs = [sigmoid(w[0] + w[1] * v) for _, v in x]
    assert probs == sorted(probs) and probs[0] < 0.5 < probs[-1]
    with pytest.raises(ConfigError, match="right and wrong"):
        fit_logistic(x, [0] * 6)


@pytest.fixture
def systems(tiny_lm, tiny_model_dir):
    from rewrite import Restorer
    from rewrite.lm import load_model

    model, tokenizer = load_model()
    every = dict(top_k=5, keep=5, first_token_slack=math.inf)
    baseline = LmBaselineRestorer(InverseChannel.build(tiny_lexicon(), COUNTS, vocab_size=7),
                                  LmScorer(model, tokenizer, batch_size=4), BaselineConfig(margin=0.0, **every))
    return Restorer.from_pretrained(tiny_model_dir, backend="torch"), baseline


def test_proposals_score_the_channel_and_the_t5_with_the_same_lm(systems):
    t5, baseline = systems
    lines = ["Rubio mentioned that not less than 15 individuals came.", "Nothing here."]
    found = proposals(lines, t5, baseline)
    assert len(found) == 2
    texts = {(lines[0][c.start : c.end], c.text) for c, _ in found[0]}
    assert {("mentioned", "said"), ("not less than", "at least"), ("individuals", "people")} <= texts
    # the gains are the baseline's own: the same candidates, the same numbers
    gains = {(c.start, c.end, c.text): c.gain for c in baseline.line_candidates(lines[0])}
    for c, feats in found[0]:
        if (c.start, c.end, c.text) in gains:
            assert c.gain == pytest.approx(gains[c.start, c.end, c.text])
            assert feats[FEATURES.index("channel")] == 1


def test_reranked_restorer_keeps_the_likelier_of_overlapping_proposals(systems):
    t5, baseline = systems
    text = "Rubio mentioned that not less than 15 individuals came.\nThe struggle went on."
    weights = [0.0] * len(FEATURES)
    weights[FEATURES.index("gain")] = 3.0
    restorer = RerankedRestorer(t5, baseline, weights)
    (result,) = restorer.restore_many([text])
    assert result.text == apply_edits(text, result.edits)
    assert "15" in result.text and "Rubio" in result.text
    spans = [(e.offset, e.offset + e.length) for e in result.edits]
    assert all(b <= c for (_, b), (c, _) in zip(spans, spans[1:]))  # no overlaps, in order
    for e in result.edits:  # the confidence is the logistic model's probability of the gain
        start = text.rfind("\n", 0, e.offset) + 1
        line = text[start:].split("\n")[0]
        (c,) = [c for c, _ in proposals([line], t5, baseline)[0]
                if (c.start, c.end, c.text) == (e.offset - start, e.offset - start + e.length, e.replacement)]
        assert e.confidence == pytest.approx(sigmoid(3.0 * max(-8, min(8, c.gain)) / 4), abs=1e-4)
    high = restorer.restore_many([text], min_confidence=0.999)[0]
    assert all(e.confidence >= 0.999 for e in high.edits)
    with pytest.raises(ConfigError, match="weights"):
        RerankedRestorer(t5, baseline, [1.0])


def test_evaluate_markup_with_the_reranker_cli(tiny_lm, tiny_model_dir, tmp_path, monkeypatch):
    from research.rerank import cli_group
    from training import lexicon as lexicon_module

    main = cli_group()

    monkeypatch.setattr(lexicon_module, "load_lexicon", lambda *a, **k: tiny_lexicon())
    monkeypatch.setenv("UNSPIN_CACHE", str(tmp_path / "cache"))
    (tmp_path / "corpus.txt").write_text("People said the war was over.\nAt least they say so.\n")
    (tmp_path / "a.markup").write_text("Rubio [[mentioned||said]] it.\n")
    weights = tmp_path / "reranker.json"
    weights.write_text(json.dumps({"features": list(FEATURES), "weights": [0.5] * len(FEATURES)}))
    runner = CliRunner()
    args = ["evaluate", "--markup", str(tmp_path / "a.markup"), "--model", str(tiny_model_dir),
            "--backend", "torch", "--corpus", str(tmp_path / "corpus.txt")]
    result = runner.invoke(main, args + ["--rerank", str(weights)])
    assert result.exit_code == 0, result.output
    assert "reranked" in result.output and "| 0.00 |" in result.output
    assert "baseline lm" in runner.invoke(main, args).output  # without --rerank: the baseline alone
    weights.write_text(json.dumps({"features": ["bias"], "weights": [0.5]}))
    stale = runner.invoke(main, args + ["--rerank", str(weights)])
    assert stale.exit_code == 2 and "refit" in stale.output


def test_fit_writes_weights_and_the_proposals_it_was_fitted_on(tiny_lm, tiny_model_dir, tmp_path, monkeypatch):
    import datasets

    from training import lexicon as lexicon_module
    from research.rerank import fit

    monkeypatch.setattr(lexicon_module, "load_lexicon", lambda *a, **k: tiny_lexicon())
    (tmp_path / "corpus.txt").write_text("People said the war was over.\nAt least they say so.\n")
    spun_said = {"spun": "Rubio mentioned it.", "original": "Rubio said it.",
                 "edits": [{"start": 6, "end": 10, "original": "said", "replacement": "mentioned", "source": "moby"}]}
    left = {"spun": "Rubio mentioned it.", "original": "Rubio mentioned it.", "edits": []}  # not spun: wrong to touch
    rows = [spun_said, left] * 6
    split = datasets.Dataset.from_list([{**r, "edits": r["edits"] or [{"start": 0, "end": 0, "original": "",
                                                                         "replacement": "", "source": ""}]}
                                        for r in rows])
    split = split.map(lambda r: {"edits": [e for e in r["edits"] if e["source"]]})
    data = tmp_path / "data"
    datasets.DatasetDict({"validation": split}).save_to_disk(str(data))
    (data / "manifest.json").write_text("{}")
    card = fit(str(data), [str(tmp_path / "corpus.txt")], tmp_path / "out", model=str(tiny_model_dir), max_examples=12)
    assert card["fitted_on"]["pairs"] == 12 and len(card["weights"]) == len(FEATURES)
    saved = json.loads((tmp_path / "out" / "proposals.json").read_text())
    labels = [y for pair in saved["pairs"] for _, y in pair]
    assert card["fitted_on"]["right"] == sum(labels) == 6  # "said" put back where it was spun, and only there
    assert json.loads((tmp_path / "out" / "reranker.json").read_text())["weights"] == card["weights"]
    with pytest.raises(ConfigError, match="no 'test'"):
        fit(str(data), [str(tmp_path / "corpus.txt")], tmp_path / "out", model=str(tiny_model_dir), split="test")
