"""Fitting the spin finder (``unspin fit-detector``) on markup, with the tiny T5 and the tiny LM base."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rewrite.channel import FILE as CHANNEL_FILE
from rewrite.channel import Candidate, ChannelTable
from rewrite.choose import FEATURES
from training.detector import (FinderFitConfig, cross_validate, fit_head, merge_real_counts, option_label, predict,
                               read_passage, recall_at_precision, slots_needing_change)
from training.errors import DatasetError

# Team-written passages in the markup of ../shared/eval (never real spun text).
MARKUP = [
    "The senator [[mentioned||said]] the [[struggle||war]] must end.\nOfficials [[mentioned||said]] talks went well.",
    "At least 15 people were [[murdered||killed]] overnight.\nThe mayor [[mentioned||said]] the city is safe.",
    "The [[struggle||war]] in the region goes on.\nShe [[mentioned||said]] it [[in a single day||overnight]].",
    "Prices rose [[towards||toward|towards]] the end of the year.\nThe chief [[mentioned||said]] sales fell.",
]


@pytest.fixture
def markup_dir(tmp_path):
    folder = tmp_path / "markup"
    folder.mkdir()
    for i, text in enumerate(MARKUP):
        (folder / f"p{i}.markup").write_text(text + "\n", encoding="utf-8")
    return folder


def test_read_passage_labels_the_words_of_places_that_need_a_change(markup_dir):
    passage = read_passage(markup_dir / "p3.markup")
    assert passage.sentences == ["Prices rose towards the end of the year.", "The chief mentioned sales fell."]
    assert passage.labels == [[0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 1, 0, 0]]  # "towards" may stay


def test_read_passage_refuses_a_file_without_places(tmp_path):
    path = tmp_path / "plain.markup"
    path.write_text("No places here.\n")
    with pytest.raises(DatasetError, match="not a markup file"):
        read_passage(path)


def test_slots_and_option_labels_match_exact_places_and_alternatives():
    markup = "She [[mentioned||said]] it [[in a single day||overnight]]."
    slots = slots_needing_change(markup)
    assert [(s, e) for s, e, _ in slots] == [(4, 13), (17, 32)]
    assert option_label((4, 13), "Said", slots) == 1
    assert option_label((4, 13), "noted", slots) == 0
    assert option_label((4, 16), "said it", slots) == 0


def test_logistic_head_learns_a_separable_feature_and_cross_validation_holds_groups_out():
    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.3).astype(np.float32)
    X = np.stack([y * 2 + rng.normal(0, 0.5, 400), rng.normal(0, 1, 400)], axis=1).astype(np.float32)
    head = fit_head(X, y, l2=1.0)
    assert abs(head["weight"][0]) > 5 * abs(head["weight"][1])
    oof = cross_validate(X, y, np.arange(400) % 8, folds=4, l2=1.0)
    recall, threshold = recall_at_precision(y, oof, 0.9)
    assert recall > 0.8 and 0 < threshold < 1
    assert ((predict(head, X) > 0.5) == (y > 0.5)).mean() > 0.9


def test_merge_real_counts_adds_to_known_pairs_and_brings_new_ones():
    table = ChannelTable({"mentioned": [Candidate("cited", 2, 0, 3083), Candidate("said", 1, 0, 244)]}, 1)
    from collections import Counter

    merged = merge_real_counts(table, {"mentioned": Counter({"said": 3}), "struggle": Counter({"war": 1})}, top_k=4)
    assert [(c.original, c.real) for c in merged.candidates("mentioned")] == [("said", 3), ("cited", 0)]
    assert [(c.original, c.real, c.support) for c in merged.candidates("struggle")] == [("war", 1, 0)]


def test_fit_config_validates():
    with pytest.raises(DatasetError):
        FinderFitConfig(precision=1.5)
    with pytest.raises(DatasetError):
        FinderFitConfig(top_k=0)


@pytest.mark.slow
def test_fit_detector_writes_a_model_folder_the_restorer_runs_the_finder_from(markup_dir, tiny_model_dir, tiny_lm, tmp_path):
    import shutil

    from click.testing import CliRunner

    from rewrite import Restorer
    from rewrite.edits import apply_edits
    from unspin.cli import cli as main

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    ChannelTable({"mentioned": [Candidate("said", 1, 0, 244), Candidate("cited", 2, 0, 3083)],
                  "struggle": [Candidate("war", 2, 0, 98)]}, 1).write(model / CHANNEL_FILE)
    out = tmp_path / "fitted"
    result = CliRunner().invoke(main, ["fit-detector", str(markup_dir), "--model", str(model), "--out", str(out),
                                       "--layers", "1,2,3", "--chooser-every", "1", "--candidate-threshold", "0.0"])
    assert result.exit_code == 0, result.output
    assert "fitted on 4 files" in result.output
    finder = json.loads((out / "finder.json").read_text())
    assert set(finder["weights"]) == set(FEATURES)
    assert finder["facts"]["chooser_options"] > 0 and [f["name"] for f in finder["facts"]["trained_on"]] == [
        "p0.markup", "p1.markup", "p2.markup", "p3.markup"]
    detector = json.loads((out / "detector" / "detector.json").read_text())
    assert detector["config"]["layers"] == [1, 2, 3] and detector["words"] == 53
    table = ChannelTable.load(out / CHANNEL_FILE)
    assert table.candidates("mentioned")[0].original == "said" and table.candidates("mentioned")[0].real == 5
    assert (out / "config.json").is_file()  # the T5's files came along

    restorer = Restorer.from_pretrained(out)
    assert restorer.finder is not None
    text = "The senator mentioned the struggle must end."
    restored = restorer.restore(text, min_confidence=0.0)
    assert apply_edits(text, restored.edits) == restored.text
    assert Restorer.from_pretrained(out, mode="fast").finder is None

    bad = CliRunner().invoke(main, ["fit-detector", str(markup_dir / "p0.markup"), "--model", str(model),
                                    "--out", str(tmp_path / "x"), "--layers", "1,2,3"])
    assert bad.exit_code == 2 and "at least 2 markup files" in bad.output
