"""The spin finder's steps on fakes: candidates at detected words, the choice, the document as
evidence, flags; the channel table's file format; the detector head's file format and maths."""

from __future__ import annotations

import gzip
import math

import numpy as np
import pytest

from rewrite.channel import Candidate, ChannelTable
from rewrite.detector import DetectorConfig, SpinDetector, read_config, read_head, write_head
from rewrite.edits import Edit, apply_edits
from rewrite.errors import ModelError
from rewrite.finder import FinderConfig, SpinFinder


class FakeDetector:
    """Word probabilities from a dict keyed by the word (default 0.0)."""

    def __init__(self, probs: dict[str, float], threshold: float = 0.5):
        self.probs = probs
        self.config = DetectorConfig(threshold=threshold)

    def word_probs(self, sentences, cancel=None):
        import re

        return [[(m.start(), m.end(), self.probs.get(m.group().strip(".,"), 0.0)) for m in re.finditer(r"\S+", s)]
                for s in sentences]


class FakeScorer:
    """Log-probability: minus 5 for each word in ``bad``; everything else costs 1 a word."""

    def __init__(self, bad: set[str]):
        self.bad = bad
        self.calls = 0

    def logprobs(self, texts, cancel=None):
        self.calls += len(texts)
        return [-sum(5.0 if w.strip(".,").lower() in self.bad else 1.0 for w in t.split()) for t in texts]


class Seg:
    def __init__(self, doc, start, text):
        self.doc, self.start, self.text = doc, start, text


def _segments(texts):
    from rewrite.text import split_sentences

    return [Seg(d, a, t[a:b]) for d, t in enumerate(texts) for a, b in split_sentences(t)]


def _table():
    return ChannelTable({"mentioned": [Candidate("said", 1, 35, 244), Candidate("cited", 2, 0, 3083)],
                         "struggle": [Candidate("war", 2, 0, 98)]}, longest=1)


WEIGHTS = {"gain": 1.0, "log_real": 0.5, "bias": -1.0}


def _finder(probs, bad=frozenset({"mentioned", "cited", "struggle"}), **config):
    return SpinFinder(FakeDetector(probs), _table(), FinderConfig(weights=WEIGHTS, **config), scorer=FakeScorer(set(bad)))


def test_a_detected_word_is_restored_from_the_channel_with_alternatives():
    text = "Rubio mentioned the plan."
    finder = _finder({"mentioned": 0.9})
    edits, flags = finder.find([text], _segments([text]), [[]])
    (edit, words), = edits[0]
    assert (edit.original, edit.replacement, words) == ("mentioned", "said", 1)
    assert edit.confidence > 0.5
    assert [a["value"] for a in edit.alternatives] == ["cited"]
    assert apply_edits(text, [edit]) == "Rubio said the plan."
    assert flags == [[]]


def test_an_undetected_word_gets_no_candidates_and_costs_no_scoring():
    text = "Rubio mentioned the plan."
    finder = _finder({"mentioned": 0.1})
    edits, _ = finder.find([text], _segments([text]), [[]])
    assert edits == [[]]
    assert finder.scorer.calls == 0


def test_keep_as_is_wins_when_no_candidate_scores_above_zero():
    text = "Rubio mentioned the plan."
    finder = _finder({"mentioned": 0.9}, bad={"said", "cited"})  # the LM prefers the spun word
    edits, flags = finder.find([text], _segments([text]), [[]])
    assert edits == [[]]
    assert [(f.text, f.probability) for f in flags[0]] == [("mentioned", 0.9)]


def test_a_t5_edit_is_a_candidate_like_the_channels():
    text = "The struggle ended."
    t5 = [Edit(4, 8, "struggle", "fight", 0.3)]
    finder = SpinFinder(FakeDetector({"struggle": 0.8}), ChannelTable({}, 1),
                        FinderConfig(weights={"gain": 1.0, "t5": 1.0, "bias": -1.0}), scorer=FakeScorer({"struggle"}))
    edits, _ = finder.find([text], _segments([text]), [t5])
    assert [(e.original, e.replacement) for e, _ in edits[0]] == [("struggle", "fight")]


class BySentence(FakeDetector):
    """Probabilities by sentence: ``probs[i]`` for sentence i (missing: all 0)."""

    def __init__(self, probs: list[dict[str, float]], threshold: float = 0.5):
        super().__init__({}, threshold)
        self.by_sentence = probs

    def word_probs(self, sentences, cancel=None):
        rows = []
        for i, s in enumerate(sentences):
            self.probs = self.by_sentence[i] if i < len(self.by_sentence) else {}
            rows += super().word_probs([s])
        return rows


def test_a_confident_pair_is_repeated_where_the_detector_is_unsure():
    text = "Rubio mentioned it. Later he mentioned more. Cruz Mentioned nothing."
    finder = _finder({}, confirm_score=1.0, repeat_threshold=0.1)
    finder.detector = BySentence([{"mentioned": 0.9}, {"mentioned": 0.15}, {"Mentioned": 0.15}])
    edits, _ = finder.find([text], _segments([text]), [[]])
    got = sorted((e.offset, e.replacement) for e, _ in edits[0])
    assert got == [(6, "said"), (29, "said"), (50, "Said")]
    assert apply_edits(text, [e for e, _ in edits[0]]) == "Rubio said it. Later he said more. Cruz Said nothing."


def test_repeats_skip_places_the_detector_calls_clean():
    text = "Rubio mentioned it. He mentioned more."
    finder = _finder({}, confirm_score=1.0, repeat_threshold=0.5)
    finder.detector = BySentence([{"mentioned": 0.9}, {"mentioned": 0.2}])
    edits, _ = finder.find([text], _segments([text]), [[]])
    assert [e.offset for e, _ in edits[0]] == [6]

def test_flags_join_adjacent_words_and_skip_restored_ones():
    text = "Rubio mentioned counterfeit consciousness today."
    finder = _finder({"mentioned": 0.9, "counterfeit": 0.8, "consciousness": 0.7})
    edits, flags = finder.find([text], _segments([text]), [[]])
    assert [e.original for e, _ in edits[0]] == ["mentioned"]
    assert [(f.text, f.probability) for f in flags[0]] == [("counterfeit consciousness", 0.8)]
    assert text[flags[0][0].offset : flags[0][0].offset + flags[0][0].length] == "counterfeit consciousness"


def test_finder_config_refuses_unknown_features_and_bad_thresholds():
    with pytest.raises(ModelError, match="unknown chooser features"):
        FinderConfig(weights={"vibes": 1.0})
    with pytest.raises(ModelError, match="candidate_threshold"):
        FinderConfig(candidate_threshold=1.5)


def test_channel_table_round_trips_and_refuses_other_files(tmp_path):
    table = _table()
    path = tmp_path / "channel.tsv.gz"
    table.write(path)
    again = ChannelTable.load(path)
    assert again.candidates("mentioned") == table.candidates("mentioned")
    assert again.candidates("unknown") == []
    bad = tmp_path / "bad.tsv.gz"
    with gzip.open(bad, "wt") as f:
        f.write("spun\toriginal\n")
    with pytest.raises(ModelError, match="not an unspin channel table"):
        ChannelTable.load(bad)
    with pytest.raises(ModelError, match="missing"):
        ChannelTable.load(tmp_path / "none.tsv.gz")


def test_candidate_features_are_logs_of_the_evidence():
    assert Candidate("said", 1, 35, 244).features() == [math.log1p(1), math.log1p(35), math.log1p(244)]


class FakeReader:
    """Features: one column, the word's length."""

    width = 1

    def read(self, sentences, cancel=None):
        import re

        return [np.array([[len(m.group())] for m in re.finditer(r"\S+", s)], np.float32).reshape(-1, 1)
                for s in sentences]


def test_detector_head_file_round_trips_and_scores_like_a_logistic(tmp_path):
    head = {"mean": np.array([4.0]), "scale": np.array([2.0]), "weight": np.array([3.0]), "bias": np.array([-1.0])}
    config = DetectorConfig(layers=(6, 12, 18), threshold=0.6)
    write_head(tmp_path, head, config, {"words": 10})
    assert read_config(tmp_path) == config
    assert set(read_head(tmp_path)) == {"mean", "scale", "weight", "bias"}
    detector = SpinDetector.load(tmp_path, reader=FakeReader())
    (row,) = detector.word_probs(["ab abcdefgh"])
    expected = [1 / (1 + math.exp(-(3.0 * (n - 4.0) / 2.0 - 1.0))) for n in (2, 8)]
    assert [(s, e) for s, e, _ in row] == [(0, 2), (3, 11)]
    assert [p for _, _, p in row] == pytest.approx(expected, rel=1e-5)


def test_detector_folder_errors_say_what_to_do(tmp_path):
    with pytest.raises(ModelError, match="not a detector folder"):
        read_config(tmp_path)
    (tmp_path / "detector.json").write_text('{"format": 99}')
    with pytest.raises(ModelError, match="format 99"):
        read_config(tmp_path)
    write_head(tmp_path, {"mean": np.zeros(2), "scale": np.ones(2), "weight": np.ones(2), "bias": np.zeros(1)},
               DetectorConfig(), {})
    with pytest.raises(ModelError, match="expects 2 features"):
        SpinDetector.load(tmp_path, reader=FakeReader())


def test_the_guard_refuses_a_candidate_that_changes_a_fact_before_it_is_scored():
    text = "Rubio mentioned two bills."
    table = ChannelTable({"two": [Candidate("three", 3, 9, 10)], "mentioned": [Candidate("said", 1, 35, 244)]}, 1)
    scorer = FakeScorer({"two", "mentioned"})
    finder = SpinFinder(FakeDetector({"two": 0.9, "mentioned": 0.9}), table, FinderConfig(weights=WEIGHTS), scorer=scorer)
    edits, _ = finder.find([text], _segments([text]), [[]])
    assert [(e.original, e.replacement) for e, _ in edits[0]] == [("mentioned", "said")]
    assert scorer.calls == 2  # the window with "mentioned" and with "said"; "three" was never scored


def test_a_name_spin_real_spinners_made_often_may_be_undone_but_not_a_rare_one():
    text = "Sales of Bud Gentle fell. Sales of Bud Mild fell."
    table = ChannelTable({"gentle": [Candidate("light", 1, 5, 900)], "mild": [Candidate("light", 1, 1, 900)]}, 1)
    finder = SpinFinder(FakeDetector({"Gentle": 0.9, "Mild": 0.9}), table, FinderConfig(weights=WEIGHTS),
                        scorer=FakeScorer({"gentle", "mild"}))
    edits, _ = finder.find([text], _segments([text]), [[]])
    assert [(e.original, e.replacement) for e, _ in edits[0]] == [("Gentle", "Light")]


def test_lm_options_limits_lm_scoring_to_the_best_options_by_the_rest_of_the_score():
    text = "Rubio mentioned the plan."
    finder = _finder({"mentioned": 0.9}, lm_options=1)
    edits, _ = finder.find([text], _segments([text]), [[]])
    (edit, _), = edits[0]
    assert edit.replacement == "said" and edit.alternatives == ()  # "cited" (no real count) was never scored
    assert finder.scorer.calls == 2


def test_auto_mode_falls_back_to_the_t5_alone_without_the_base_lm_and_find_mode_refuses(tiny_model_dir, tmp_path,
                                                                                       monkeypatch, caplog):
    import json
    import shutil

    from rewrite import Restorer, lm

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    write_head(folder / "detector", {"mean": np.zeros(1), "scale": np.ones(1), "weight": np.ones(1), "bias": np.zeros(1)},
               DetectorConfig(layers=(1,)), {})
    _table().write(folder / "channel.tsv.gz")
    (folder / "finder.json").write_text(json.dumps({"weights": WEIGHTS, "min_confidence": 0.3}))

    def missing():
        raise ModelError(f"the base language model is not installed; {lm.INSTALL_HINT}")

    monkeypatch.setattr(lm, "base_folder", missing)
    restorer = Restorer.from_pretrained(folder)
    assert restorer.finder is None
    assert "restoring with the T5 alone" in caplog.text
    with pytest.raises(ModelError, match="base language model is not installed"):
        Restorer.from_pretrained(folder, mode="find")
    with pytest.raises(ModelError, match="has no spin finder"):
        Restorer.from_pretrained(tiny_model_dir, mode="find")


def test_a_sure_t5_edit_stands_where_the_finder_is_less_sure():
    text = "Not less than 15 died. The struggle went on."
    t5 = [Edit(0, 13, "Not less than", "At least", 0.95), Edit(27, 8, "struggle", "battle", 0.6)]
    finder = SpinFinder(FakeDetector({"struggle": 0.9}), _table(), FinderConfig(weights=WEIGHTS, t5_keep=0.8),
                        scorer=FakeScorer({"struggle", "not"}))
    edits, _ = finder.find([text], _segments([text]), [t5])
    got = sorted((e.original, e.replacement) for e, _ in edits[0])
    assert ("Not less than", "At least") in got  # kept at its own confidence
    assert ("struggle", "battle") not in got  # below t5_keep: a candidate like any other, and "war" won
