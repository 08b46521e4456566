"""Scoring restorations of annotated spun text (`unspin evaluate --markup`)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from training.errors import DatasetError
from training.markup import (choose_threshold, evaluate_markup, format_curve, markup_files, original_text, score,
                             score_text, spun_text)

MARKUP = ("The [[Home||House]] handed the [[invoice||bill]], Rubio [[mentioned||said]] on Wednesday.\n"
          "At least 15 [[individuals||people]] were [[towards||toward|towards]] the [[in a single day||overnight]] line.\n")


def test_spun_text_and_a_perfect_restoration():
    assert spun_text(MARKUP).startswith("The Home handed the invoice, Rubio mentioned")
    restored = ("The House handed the bill, Rubio said on Wednesday.\n"
                "At least 15 people were towards the overnight line.\n")
    r = score_text(MARKUP, restored)
    assert (r["restored"], r["slots_to_restore"], r["wrongful_edits"]) == (5, 5, 0)
    assert r["ambiguous_slots"] == 1 and r["ambiguous_ok"] == 1
    assert r["recall"] == 1.0 and r["words"] == len(spun_text(MARKUP).split())


def test_misses_and_wrongful_edits_are_counted():
    output = ("The Home handed the bill, Rubio stated on Thursday.\n"
              "At least 16 persons were toward the in one day line today.\n")
    r = score_text(MARKUP, output)
    assert r["restored"] == 1  # only "invoice" -> "bill"
    assert r["slots_to_restore"] == 5
    # "Wednesday" -> "Thursday", "15" -> "16", "today" added; the places' wrong words are misses, not wrongful
    assert r["wrongful_edits"] == 3
    assert any("'mentioned' -> 'stated'" in m for m in r["misses"])


def test_unchanged_output_restores_nothing_and_harms_nothing():
    r = score(MARKUP.splitlines()[0], spun_text(MARKUP.splitlines()[0]))
    assert (r["restored"], r["wrongful_edits"]) == (0, 0)


def test_markup_files_and_bad_input(tmp_path):
    (tmp_path / "a.markup").write_text(MARKUP, encoding="utf-8")
    (tmp_path / "b.txt").write_text("not markup", encoding="utf-8")
    assert markup_files([tmp_path]) == [tmp_path / "a.markup"]
    with pytest.raises(DatasetError, match="does not exist"):
        markup_files([tmp_path / "missing"])
    plain = tmp_path / "plain.markup"
    plain.write_text("no places here", encoding="utf-8")
    with pytest.raises(DatasetError, match="no \\[\\[spun"):
        evaluate_markup([plain], restorer=None)


def test_confidence_curve_keeps_edits_above_each_threshold(tmp_path):
    from rewrite.restorer import Edit, Restoration

    (tmp_path / "a.markup").write_text(MARKUP, encoding="utf-8")
    text = spun_text(MARKUP)

    class Restorer:
        """Gives a confident right edit, an unsure right edit and an unsure wrong one."""

        def restore_many(self, texts, min_confidence):
            assert min_confidence == 0.0
            if texts != [text]:  # the original, clean text: left alone
                return [Restoration(t, [], 0.0) for t in texts]
            edits = []
            for word, new, conf in (("invoice", "bill", 0.9), ("mentioned", "said", 0.6), ("Wednesday", "Monday", 0.4)):
                at = text.index(word)
                edits.append(Edit(at, len(word), word, new, conf))
            return [Restoration(text, edits, 0.0)]

    result = evaluate_markup([tmp_path / "a.markup"], Restorer(), thresholds=(0.0, 0.5, 0.95))
    curve = {row["min_confidence"]: row for row in result["curve"]}
    assert (curve[0.0]["restored"], curve[0.0]["wrongful_edits"]) == (2, 1)
    assert (curve[0.5]["restored"], curve[0.5]["wrongful_edits"]) == (2, 0)
    assert (curve[0.95]["restored"], curve[0.95]["edits"]) == (0, 0)
    words = len(text.split())
    assert curve[0.0]["wrongful_per_100_words"] == pytest.approx(100 / words)


def test_clean_text_is_measured_beside_spun_text(tmp_path):
    """The markup's original (each place as its first alternative) and --clean text are restored
    too; every edit of them counts, per 100 words, at each threshold."""
    from rewrite.restorer import Edit, Restoration

    (tmp_path / "a.markup").write_text(MARKUP, encoding="utf-8")
    original = original_text(MARKUP)
    assert original.startswith("The House handed the bill, Rubio said on Wednesday.\nAt least 15 people were toward")
    clean = {"news:1": "The bill passed on Monday after a long debate in the House."}

    class Restorer:
        """Rewrites one word of any text it gets, confidently or not."""

        def restore_many(self, texts, min_confidence):
            out = []
            for t in texts:
                word, conf = ("said", 0.9) if t == original else ("long", 0.4) if t in clean.values() else ("Home", 0.9)
                at = t.index(word)
                out.append(Restoration(t, [Edit(at, len(word), word, "x", conf)], 0.0))
            return out

    result = evaluate_markup([tmp_path / "a.markup"], Restorer(), thresholds=(0.0, 0.5, 0.95), clean=clean)
    curve = {row["min_confidence"]: row for row in result["curve"]}
    words = len(original.split())
    assert (curve[0.5]["clean_edits"], curve[0.5]["clean_words"]) == (1, words)
    assert curve[0.5]["clean_edits_per_100_words"] == pytest.approx(100 / words)
    assert curve[0.95]["clean_edits"] == 0
    assert (curve[0.0]["heldout_clean_edits"], curve[0.5]["heldout_clean_edits"]) == (1, 0)
    assert curve[0.0]["heldout_clean_words"] == len(clean["news:1"].split())
    assert {e["file"] for e in result["clean_edits"]} == {"a.markup", "news:1"}
    table = format_curve(result)
    assert "clean edits /100 words" in table and "held-out clean" in table


def _result(per_file: dict[str, dict[float, int]], words: int = 100) -> dict:
    """An evaluate_markup result from wrongful-edit counts per file and threshold (recall = threshold)."""
    files = {name: {t: {"wrongful_edits": w, "words": words, "restored": 0, "slots_to_restore": 1}
                    for t, w in by_t.items()} for name, by_t in per_file.items()}
    thresholds = sorted(next(iter(per_file.values())))
    curve = [{"min_confidence": t, "recall": t,
              "wrongful_per_100_words": 100 * sum(f[t]["wrongful_edits"] for f in files.values()) / (words * len(files))}
             for t in thresholds]
    return {"files": files, "curve": curve}


def test_the_shipped_threshold_is_the_lowest_that_fits_across_a_bootstrap_over_files():
    even = {f"f{i}": {0.3: 2, 0.5: 1, 0.7: 0} for i in range(10)}  # 2, 1 and 0 wrongful per 100 words
    assert choose_threshold(_result(even))["min_confidence"] == 0.5
    # One file holds all of 0.5's wrongful edits: 0.9 per 100 words pooled fits the limit, but
    # a resample that draws that file twice does not, so the bootstrap moves up to 0.7.
    lumpy = {f"f{i}": {0.3: 20, 0.5: 0, 0.7: 0} for i in range(10)}
    lumpy["f0"] = {0.3: 20, 0.5: 9, 0.7: 0}
    assert _result(lumpy)["curve"][1]["wrongful_per_100_words"] == pytest.approx(0.9)
    chosen = choose_threshold(_result(lumpy))
    assert chosen["min_confidence"] == 0.7 and chosen["wrongful_per_100_words_p95"] == 0
    assert choose_threshold(_result({"f": {0.5: 3, 0.9: 2}})) is None


def test_the_shipped_threshold_bounds_edits_of_clean_text_too():
    even = {f"f{i}": {0.3: 0, 0.5: 0, 0.7: 0} for i in range(10)}  # no wrongful edits anywhere
    result = _result(even)
    assert choose_threshold(result)["min_confidence"] == 0.3
    for name, by_t in result["files"].items():  # clean text: 2, 1 and 0.2 edits per 100 words
        for t, clean in {0.3: 2, 0.5: 1, 0.7: 0.2}.items():
            by_t[t].update(clean_edits=clean, clean_words=100)
    for row in result["curve"]:
        row["clean_edits_per_100_words"] = {0.3: 2, 0.5: 1, 0.7: 0.2}[row["min_confidence"]]
    chosen = choose_threshold(result, max_clean=0.5)
    assert chosen["min_confidence"] == 0.7 and chosen["clean_edits_per_100_words_p95"] == pytest.approx(0.2)
    assert "edits per 100 words of the files' originals stay <= 0.5" in chosen["rule"]
    assert choose_threshold(result, max_clean=1.0)["min_confidence"] == 0.5


@pytest.mark.slow
def test_evaluate_markup_cli(tmp_path, tiny_model_dir):
    from training.cli import evaluate_cmd

    (tmp_path / "a.markup").write_text(MARKUP, encoding="utf-8")
    result = CliRunner().invoke(evaluate_cmd, ["--markup", str(tmp_path), "--model", str(tiny_model_dir),
                                               "--backend", "torch"])
    assert result.exit_code == 0, result.output
    assert "| 0.70 |" in result.output and "1 markup files" in result.output
    assert "threshold for <= 1.0 wrongful edits" in result.output and "clean edits /100 words" in result.output
    clean = tmp_path / "clean.txt"
    clean.write_text("The bill passed on Monday.\n\nIt goes to the Senate next.\n", encoding="utf-8")
    with_clean = CliRunner().invoke(evaluate_cmd, ["--markup", str(tmp_path / "a.markup"), "--model", str(tiny_model_dir),
                                                   "--backend", "torch", "--clean", str(clean)])
    assert with_clean.exit_code == 0, with_clean.output
    assert "held-out clean edits /100 words" in with_clean.output
    alone = CliRunner().invoke(evaluate_cmd, ["--clean", str(clean)])
    assert alone.exit_code == 2 and "--markup" in alone.output
    missing = CliRunner().invoke(evaluate_cmd, ["--markup", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    neither = CliRunner().invoke(evaluate_cmd, [])
    assert neither.exit_code != 0 and "--markup" in neither.output


def test_model_card_shows_the_real_text_curve_and_the_chosen_threshold(tmp_path):
    import json

    from training.card import write_card

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "t5"}))
    result = _result({f"f{i}": {0.3: 2, 0.5: 1, 0.7: 0} for i in range(10)})
    for row in result["curve"]:
        row.update(restored=int(row["recall"] * 100), slots_to_restore=100, wrongful_edits=0, edits=1)
    (tmp_path / "markup_metrics.json").write_text(json.dumps(
        {"source": "real", "files_scored": 10, "curve": result["curve"], "recommended": choose_threshold(result)}))
    card = write_card(tmp_path).read_text()
    assert "| 0.50 | 0.500 | 1.00 |" in card
    assert "Threshold chosen on this text: 0.5 (recall 0.500 at 1.00 wrongful edits per 100 words" in card


def test_model_card_names_the_averaging_and_the_lexicons_of_every_stage(tmp_path):
    import json

    from training.card import write_card

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "t5"}))
    (tmp_path / "averaging.json").write_text(json.dumps({"weight": 0.5, "base": {}, "tuned": {}}))
    (tmp_path / "data_manifest.json").write_text(json.dumps({
        "lexicon_sizes": {"seed": {}, "rules": {}},
        "init_model_data_manifest": {"lexicon_sizes": {"seed": {}, "meteor": {}}}}))
    card = write_card(tmp_path).read_text()
    assert "weight-averaged with the model the last run started from" in card and "0.5 x that model" in card
    assert "Meteor 1.5" in card and "training/rules.py" in card and card.count("seeds/spin_phrases.tsv") == 1
