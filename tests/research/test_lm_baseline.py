"""The training-free baseline: the inverse channel, the scorer and the restorer built on them."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from click.testing import CliRunner

from rewrite.edits import apply_edits
from rewrite.text import WORD_RE
from training.lexicon import Lexicon, Variant
from research.lm_baseline import BaselineConfig, InverseChannel, LmBaselineRestorer, LmScorer

COUNTS = Counter({"the": 90, "at": 50, "said": 40, "say": 30, "least": 20, "people": 20, "war": 15, "utter": 0})


def tiny_lexicon() -> Lexicon:
    return Lexicon({
        "moby": {"say": [Variant("mention", "moby"), Variant("utter", "moby")],
                 "people": [Variant("individuals", "moby")],
                 "war": [Variant("struggle", "moby")]},
        "mythes": {"war": [Variant("struggle", "mythes")], "people": [Variant("persons", "mythes")]},
        "seed": {"at least": [Variant("not less than", "seed", "phrase")],
                 "utter": [Variant("mention", "seed")]},
    }, files={})


def test_inverse_channel_inflects_back_and_keeps_to_common_words():
    channel = InverseChannel.build(tiny_lexicon(), COUNTS, vocab_size=7)
    assert channel.originals("mentioned") == ["said"]  # mention <- say, inflected to the past
    assert "says" in channel.originals("mentions")  # (and "say", read as a plural noun)
    assert channel.originals("not less than") == ["at least"]
    assert channel.originals("struggle") == ["war"]
    # "utter" is the 8th word: too rare to be put back, though the seed table maps it
    assert "utter" not in channel.originals("mention")
    assert channel.originals("unknown") == []


def test_inverse_channel_ranks_by_support_then_commonness():
    lexicon = tiny_lexicon()
    lexicon.entries["mythes"]["say"] = [Variant("individuals", "mythes")]
    channel = InverseChannel.build(lexicon, COUNTS, vocab_size=7)
    assert channel.originals("individuals") == ["say", "people"]  # one source each: the commoner first
    lexicon.entries["ppdb"] = {"people": [Variant("individuals", "ppdb")]}
    channel = InverseChannel.build(lexicon, COUNTS, vocab_size=7)
    assert channel.originals("individuals") == ["people", "say"]  # two sources list it now


def test_places_cover_words_and_phrases():
    channel = InverseChannel.build(tiny_lexicon(), COUNTS, vocab_size=7)
    text = "Rubio mentioned that not less than 15 individuals came."
    found = {text[s:e]: [c for c, _ in cands] for s, e, cands in channel.places(text, top_k=5)}
    assert found == {"mentioned": ["said"], "not less than": ["at least"], "individuals": ["people"]}


@pytest.fixture
def scorer(tiny_lm):
    from rewrite.lm import load_model

    model, tokenizer = load_model()
    return LmScorer(model, tokenizer, batch_size=3)


def test_scorer_batches_give_the_sums_of_single_sequences(scorer):
    tok = scorer.tokenizer
    rows = [(scorer.start + tok.encode(p, add_special_tokens=False), tok.encode(b, add_special_tokens=False))
            for p, b in [("the cat", " sat on the mat"), ("a", " dog"), ("the long day of the", " week ended")]]
    batched = scorer.score(rows)
    for (head, body), got in zip(rows, batched):
        logp = scorer.next_token_logprobs(head + body)
        want = sum(float(logp[len(head) - 1 + k, t]) for k, t in enumerate(body))
        assert got == pytest.approx(want, abs=1e-4)


def test_restorer_edits_are_the_scored_gains(scorer):
    channel = InverseChannel.build(tiny_lexicon(), COUNTS, vocab_size=7)
    # every candidate scored in full
    every = dict(top_k=5, keep=5, first_token_slack=math.inf)
    restorer = LmBaselineRestorer(channel, scorer, BaselineConfig(margin=0.0, **every))
    text = "Rubio mentioned it.\nThe struggle went on for 15 years and not less than 20 individuals came."
    (result,) = restorer.restore_many([text])
    assert result.text == apply_edits(text, result.edits)
    assert "15" in result.text and "20" in result.text and "Rubio" in result.text
    tok = scorer.tokenizer
    for edit in result.edits:
        assert text[edit.offset : edit.offset + edit.length] == edit.original
        assert edit.original in ("mentioned", "struggle", "not less than", "individuals")
        line_start = text.rfind("\n", 0, edit.offset) + 1
        line = text[line_start : text.find("\n", edit.offset) if "\n" in text[edit.offset :] else len(text)]
        start = edit.offset - line_start
        prefix = line[:start].rstrip()
        lead = line[len(prefix) : start]
        rest = line[start + edit.length :]
        after = [m.end() for m in WORD_RE.finditer(rest)][:3]  # the next 3 tokens, punctuation too
        tail = rest[: after[-1]] if after else ""
        head = scorer.start + tok.encode(prefix, add_special_tokens=False)[-16:]
        keep, new = scorer.score([(head, tok.encode(lead + edit.original + tail, add_special_tokens=False)),
                                  (head, tok.encode(lead + edit.replacement + tail, add_special_tokens=False))])
        assert new > keep
        assert edit.confidence == pytest.approx(1 - math.exp(-(new - keep) / 3), abs=1e-3)
    # with a margin no gain reaches, nothing changes
    restorer.config = BaselineConfig(margin=1e9, **every)
    assert restorer.restore_many([text])[0].edits == []


def test_evaluate_baseline_cli(tiny_lm, tmp_path, monkeypatch):
    from research.rerank import cli_group
    from training import lexicon as lexicon_module

    main = cli_group()

    monkeypatch.setattr(lexicon_module, "load_lexicon", lambda *a, **k: tiny_lexicon())
    monkeypatch.setenv("UNSPIN_CACHE", str(tmp_path / "cache"))
    (tmp_path / "corpus.txt").write_text("People said the war was over.\nAt least they say so.\n")
    (tmp_path / "a.markup").write_text("Rubio [[mentioned||said]] it.\n")
    runner = CliRunner()
    result = runner.invoke(main, ["evaluate", "--markup", str(tmp_path / "a.markup"),
                                  "--corpus", str(tmp_path / "corpus.txt")])
    assert result.exit_code == 0, result.output
    assert "baseline lm" in result.output and "| 0.00 |" in result.output
    missing = runner.invoke(main, ["evaluate", "--markup", str(tmp_path / "a.markup")])
    assert missing.exit_code == 2 and "--corpus" in missing.output  # a usage error (click's own status)
