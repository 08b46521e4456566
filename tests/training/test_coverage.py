"""Channel coverage on small synthetic markup written here (never real spun text)."""

import json

import pytest
from click.testing import CliRunner

from training.coverage import channel_coverage, kind_of
from training.markup import parse_markup
from training.errors import CorpusError
from training.spinner import EngineConfig, Spinner, SpinnerConfig

MARKUP = (
    "Officials [[mentioned||said]] the [[struggles||wars]] ended.\n"
    "They [[not less than||at least]] tried, [[at least||no fewer than]] once.\n"
    "The [[banana||war]] is over and [[fine||good|fine]] now.\n"
)


@pytest.fixture
def spinner(small_lexicon):
    return Spinner(small_lexicon, SpinnerConfig(engines=[EngineConfig("seed", {"seed": 1.0}, 0.1, 0.3, 0.0)]))


def write(tmp_path, text, name="a.markup"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_counts_producible_places_with_inflection(tmp_path, spinner):
    report = channel_coverage([write(tmp_path, MARKUP)], spinner)
    # places needing a change: mentioned, struggles, not less than, at least, banana ("fine" may stay)
    assert report["places"] == 5
    assert report["covered"] == 3  # said->mentioned, wars->struggles (inflected), at least->not less than
    assert report["coverage"] == 0.6
    assert report["per_source"] == {"seed": 0.6}
    missed = {m["spun"] for m in report["misses"]}
    assert missed == {"at least", "banana"}  # no reverse entry; no such swap


def test_no_swap_means_a_miss(tmp_path, spinner):
    # "at" alone is no lexicon phrase, so "at" -> "not less" cannot be produced
    text = "He saw [[not less||at]] than ten.\n"
    assert channel_coverage([write(tmp_path, text)], spinner)["coverage"] == 0.0


def test_phrase_straddling_context_is_found(tmp_path, small_lexicon):
    from training.lexicon import Variant

    small_lexicon.entries["seed"]["as long as"] = [Variant("so long as", "seed", "phrase", "")]
    spinner = Spinner(small_lexicon, SpinnerConfig(engines=[EngineConfig("seed", {"seed": 1.0}, 0.1, 0.3, 0.0)]))
    text = "Stay [[so||as]] long as you like.\n"
    assert channel_coverage([write(tmp_path, text)], spinner)["coverage"] == 1.0


def test_malformed_markup_names_file_and_line(tmp_path, spinner):
    path = write(tmp_path, "fine line\nbroken [[slot||here\n")
    with pytest.raises(CorpusError, match=r"a.markup:2"):
        channel_coverage([path], spinner)
    with pytest.raises(CorpusError, match="cannot read"):
        channel_coverage([tmp_path / "missing.markup"], spinner)


def test_parse_markup_segments():
    (line,) = parse_markup("A [[b||c|d]] e")
    assert line.segments == ["A ", ("b", ["c", "d"]), " e"]


@pytest.mark.parametrize(
    "original, spun, initial, kind",
    [
        ("said", "mentioned", False, "word"),
        ("at least", "not less than", False, "phrase"),
        ("House", "Home", False, "name"),
        ("But", "However", True, "word"),
        ("four", "4", False, "number"),
        ("percent", "%", False, "number"),
        ("he is", "he’s", False, "contraction"),
        ("doesn’t", "does n’t", False, "contraction"),
        ("party’s", "celebration’s", False, "word"),
        ("dinner-party", "meal-celebration", False, "phrase"),
        ("in and out", "out and in", False, "other"),
        ("had", "", False, "other"),
    ],
)
def test_kind_of(original, spun, initial, kind):
    assert kind_of(original, spun, initial) == kind


def test_cli_json_and_text(tmp_path, monkeypatch):
    from unspin.cli import cli

    monkeypatch.setenv("UNSPIN_CACHE", str(tmp_path / "cache"))
    path = write(tmp_path, MARKUP)
    only_seed = ["--no-source", "moby", "--no-source", "mythes", "--no-source", "meteor", "--no-source", "ppdb"]
    result = CliRunner().invoke(cli, ["channel-coverage", str(path), *only_seed, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["places"] == 5 and 0 < report["coverage"] <= 1
    assert set(report) >= {"coverage", "places", "per_source", "per_kind", "misses"}
    text = CliRunner().invoke(cli, ["channel-coverage", str(path), *only_seed])
    assert text.exit_code == 0 and text.output.startswith("channel coverage: ")
    bad = write(tmp_path, "x [[y||z\n", "bad.markup")
    failed = CliRunner().invoke(cli, ["channel-coverage", str(bad), *only_seed])
    assert failed.exit_code == 2 and "bad.markup:1" in failed.output


def test_source_weights_are_the_chance_a_draw_is_right(tmp_path, small_lexicon):
    from training.lexicon import Variant

    small_lexicon.entries["seed"]["say"].append(Variant("state", "seed", "word", "VERB"))
    small_lexicon.entries["other"] = {"war": [Variant("struggle", "other"), Variant("fight", "other"),
                                             Variant("battle", "other"), Variant("clash", "other")]}
    engine = EngineConfig("e", {"seed": 1.0, "other": 1.0}, 0.1, 0.3, 0.0)
    spinner = Spinner(small_lexicon, SpinnerConfig(engines=[engine]))
    text = "Officials [[mentioned||said]] the [[struggle||war]] ended.\n"
    weights = channel_coverage([write(tmp_path, text)], spinner)["source_weights"]
    # seed: "said" has 2 variants, 1 right (0.5); "war" has 1 seed variant, right (1.0) -> mean 0.75
    # other: offers only at "war": 1 of 4 right -> 0.25
    assert weights["seed"] == {"places": 2, "precision": 0.75, "weight": 1.0}
    assert weights["other"] == {"places": 1, "precision": 0.25, "weight": 0.333}
