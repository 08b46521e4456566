import json

import pytest

from rewrite.edits import Edit, apply_edits
from training.build import BuildConfig, align_edits, build_dataset, edit_row, load_dataset_dir, row_edit, split_of
from training.corpus import read_corpus
from training.errors import ConfigError, CorpusError, DatasetError
from training.lexicon import LexiconConfig
from training.spinner import SpinnerConfig


def config(corpus, out, seed_table, **kw):
    from training.spinner import EngineConfig

    return BuildConfig(corpus=[str(corpus)], out=str(out), workers=1, validation_fraction=0.15, test_fraction=0.15,
                       lexicon=LexiconConfig(sources=("seed",), seed_table=str(seed_table)),
                       spinner=SpinnerConfig(engines=[EngineConfig("seed", {"seed": 1.0}, 0.2, 0.5)]), **kw)


def test_readers_understand_shared_layouts(corpus_dir):
    docs = list(read_corpus(corpus_dir))
    sources = {d.source for d in docs}
    assert sources == {"news", "wiki", "speeches"}
    news = [d for d in docs if d.source == "news"]
    assert len(news) == 28 and all(len(d.paragraphs) == 3 for d in news)  # one document per date
    assert len([d for d in docs if d.source == "wiki"]) == 30  # blank line separates articles
    assert len([d for d in docs if d.source == "speeches"]) == 1


def test_table_readers(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"body": "One doc here. Second sentence."}\n{"body": "Another."}\n')
    (tmp_path / "b.csv").write_text("id,body\n1,Text of the csv row.\n")
    docs = list(read_corpus(tmp_path, text_column="body"))
    assert [d.paragraphs for d in docs] == [["One doc here. Second sentence."], ["Another."], ["Text of the csv row."]]
    with pytest.raises(CorpusError, match="no column 'text'"):
        list(read_corpus(tmp_path / "a.jsonl"))


def test_build_roundtrip_splits_and_manifest(corpus_dir, tmp_path, seed_table):
    out = tmp_path / "ds"
    manifest = build_dataset(config(corpus_dir, out, seed_table, weights={"news": 2}), progress=False)
    ds = load_dataset_dir(out)
    assert set(ds) == {"train", "validation", "test"}
    docs = {split: set(ds[split]["doc_id"]) for split in ds}
    assert not docs["train"] & docs["test"] and not docs["train"] & docs["validation"]
    for split in ds:
        for row in ds[split]:
            assert apply_edits(row["original"], [row_edit(e) for e in row["edits"]]) == row["spun"]
    train_news = [r for r in ds["train"] if r["source"] == "news"]
    assert len(train_news) == 2 * len({r["original"] for r in train_news})  # weight 2 -> two copies
    saved = json.loads((out / "manifest.json").read_text())
    assert saved["config"]["seed"] == 13 and saved["corpus_files"] and saved["lexicon_sizes"]["seed"]["phrases"] == 10
    assert (out / "parquet" / "train.parquet").is_file()
    assert manifest["stats"]["dropped_roundtrip"] == 0
    assert not list(tmp_path.glob("ds.tmp*"))


def test_build_is_deterministic(corpus_dir, tmp_path, seed_table):
    build_dataset(config(corpus_dir, tmp_path / "a", seed_table), progress=False)
    build_dataset(config(corpus_dir, tmp_path / "b", seed_table), progress=False)
    a, b = load_dataset_dir(tmp_path / "a"), load_dataset_dir(tmp_path / "b")
    assert a["train"]["spun"] == b["train"]["spun"]


def test_split_by_document_is_seeded():
    assert split_of("doc-1", 1, 0.3, 0.3) == split_of("doc-1", 1, 0.3, 0.3)
    splits = {split_of(f"d{i}", 7, 0.1, 0.1) for i in range(200)}
    assert splits == {"train", "validation", "test"}


def test_real_pairs_are_aligned(corpus_dir, tmp_path, seed_table):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"spun": "Rubio mentioned it in a single day.", "original": "Rubio said it overnight."}) + "\n")
    build_dataset(config(corpus_dir, tmp_path / "ds", seed_table, pairs=[str(pairs)]), progress=False)
    ds = load_dataset_dir(tmp_path / "ds")
    rows = [r for split in ds for r in ds[split] if r["source"] == "pairs"]
    assert rows and rows[0]["spun"] == "Rubio mentioned it in a single day."
    assert sorted((e["original"], e["replacement"]) for e in rows[0]["edits"]) == [
        ("overnight", "in a single day"), ("said", "mentioned")]


def test_align_edits_insertions_and_deletions():
    for original, spun in [("a b c", "a x y c"), ("a b c d", "a d"), ("x", "x y"), ("x y", "y"), ("", "q")]:
        assert apply_edits(original, align_edits(original, spun)) == spun


def test_edit_rows_keep_the_dataset_format_and_round_trip():
    edit = Edit(4, 3, "war", "struggle", 1.0, "seed")
    assert edit_row(edit) == {"start": 4, "end": 7, "original": "war", "replacement": "struggle", "source": "seed"}
    assert list(edit_row(edit)) == ["start", "end", "original", "replacement", "source"]  # column order on disk
    assert row_edit(edit_row(edit)) == edit


def test_verify_drops_pairs_whose_edits_do_not_fit_their_original():
    from training.build import verify

    good = dict(original="The war ended.", spun="The struggle ended.",
                edits=[edit_row(Edit(4, 3, "war", "struggle", 1.0, "seed"))])
    stale = dict(good, edits=[edit_row(Edit(4, 3, "cat", "struggle", 1.0, "seed"))])  # original not in the text
    overlapping = dict(good, spun="The strugglear ended.", edits=[
        edit_row(Edit(4, 3, "war", "struggle", 1.0, "seed")), edit_row(Edit(5, 2, "ar", "ar", 1.0, "seed"))])
    stats = {}
    assert verify([good, stale, overlapping], stats) == [good]
    assert stats["dropped_roundtrip"] == 2


@pytest.mark.parametrize("content,match", [
    (b"\x00\x01binary", "binary"),
    (b"caf\xe9 au lait\n", "not UTF-8 at byte 3"),
])
def test_bad_files_are_named(tmp_path, seed_table, content, match):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(content)
    with pytest.raises(CorpusError, match=match):
        build_dataset(config(bad, tmp_path / "out", seed_table), progress=False)
    assert not (tmp_path / "out").exists()


def test_empty_corpus_and_missing_path(tmp_path, seed_table):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(CorpusError, match="no sentences"):
        build_dataset(config(empty, tmp_path / "out", seed_table), progress=False)
    with pytest.raises(CorpusError, match="does not exist"):
        build_dataset(config(tmp_path / "nope", tmp_path / "out", seed_table), progress=False)
    with pytest.raises(ConfigError):
        BuildConfig(corpus=[])
    with pytest.raises(DatasetError):
        load_dataset_dir(tmp_path)


def test_cli_build_dataset(corpus_dir, tmp_path):
    from click.testing import CliRunner

    from training.cli import build_dataset_cmd

    result = CliRunner().invoke(build_dataset_cmd, [
        "--corpus", str(corpus_dir), "--out", str(tmp_path / "ds"), "--weight", "news=3",
        "--no-source", "moby", "--no-source", "mythes", "--no-source", "meteor", "--no-source", "ppdb",
        "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "pairs per split" in result.output
    bad = CliRunner().invoke(build_dataset_cmd, ["--corpus", str(corpus_dir), "--out", str(tmp_path / "x"), "--weight", "news"])
    assert bad.exit_code != 0 and "SOURCE=NUMBER" in bad.output


def test_cli_build_dataset_spins_with_only_the_engines_named(corpus_dir, tmp_path):
    import json

    from click.testing import CliRunner

    from training.cli import build_dataset_cmd

    only_seed = ["--no-source", "moby", "--no-source", "mythes", "--no-source", "meteor", "--no-source", "ppdb"]
    out = tmp_path / "ds"
    result = CliRunner().invoke(build_dataset_cmd, [
        "--corpus", str(corpus_dir), "--out", str(out), "--engine", "phrasal", "--workers", "1", *only_seed])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert [e["name"] for e in manifest["config"]["spinner"]["engines"]] == ["phrasal"]
    assert set(manifest["engines"]) <= {"phrasal", "none"} and manifest["engines"]["phrasal"]["pairs"] > 0
    bad = CliRunner().invoke(build_dataset_cmd, [
        "--corpus", str(corpus_dir), "--out", str(tmp_path / "x"), "--engine", "fancy", *only_seed])
    assert bad.exit_code != 0 and "unknown engine fancy" in bad.output and "mixed" in bad.output
    assert not (tmp_path / "x").exists()


def test_a_file_without_document_marks_gives_a_loadable_dataset(tmp_path, seed_table):
    import datasets

    from training.spinner import EngineConfig

    corpus = tmp_path / "news.txt"  # one paragraph a line, no blank lines: each line a document
    corpus.write_text("".join(f"The people said at least {k} towns were hit in the war overnight.\n" for k in range(300)))
    assert len(list(read_corpus(corpus))) == 300
    out = tmp_path / "ds"
    manifest = build_dataset(BuildConfig(corpus=[str(corpus)], out=str(out), workers=1,  # default 1% / 1% splits
                                         lexicon=LexiconConfig(sources=("seed",), seed_table=str(seed_table)),
                                         spinner=SpinnerConfig(engines=[EngineConfig("seed", {"seed": 1.0}, 0.2, 0.5)])),
                             progress=False)
    ds = datasets.load_from_disk(str(out))  # the folder itself is the DatasetDict
    assert {split: len(ds[split]) for split in ds} == manifest["pairs"]
    assert all(manifest["pairs"][split] > 0 for split in ("train", "validation", "test"))
    assert (out / "manifest.json").is_file() and (out / "parquet" / "test.parquet").is_file()


def test_small_corpora_fill_every_split_or_say_why(tmp_path, seed_table):
    three = tmp_path / "three.txt"
    three.write_text("The people said the war was over.\n\nAt least two towns were hit overnight.\n\n"
                     "The person said the talks came ahead of the deadline.\n")
    out = tmp_path / "ds"
    manifest = build_dataset(config(three, out, seed_table), progress=False)
    assert manifest["pairs"] == {"train": 1, "validation": 1, "test": 1}
    assert set(load_dataset_dir(out)["test"]["doc_id"]) != set(load_dataset_dir(out)["validation"]["doc_id"])
    one = tmp_path / "one.txt"  # one line: a single document, whatever its length
    one.write_text("The people said the war was over. At least two towns were hit overnight. The talks came ahead of time.")
    with pytest.raises(CorpusError, match="1 document.*one each"):
        build_dataset(config(one, tmp_path / "one-ds", seed_table), progress=False)
    assert not (tmp_path / "one-ds").exists()


def test_splits_are_filled_deterministically():
    from training.build import assign_splits

    cfg = BuildConfig(corpus=["x"], validation_fraction=0.01, test_fraction=0.01)
    docs = [f"doc-{k}" for k in range(5)]
    splits = assign_splits(docs, cfg)
    assert sorted(splits.values()).count("train") == 3 and set(splits.values()) == {"train", "validation", "test"}
    assert assign_splits(list(reversed(docs)), cfg) == splits
    many = [f"d{k}" for k in range(2000)]
    assert assign_splits(many, cfg) == {d: split_of(d, 13, 0.01, 0.01) for d in many}  # moved nothing


def test_no_empty_split_is_written_and_zero_fractions_are_refused(tmp_path):
    from training.build import write

    row = dict(spun="a b", original="a b", edits=[], source="s", doc_id="d", engine="e", rate=0.0)
    with pytest.raises(CorpusError, match="test split has no pairs"):
        write([{**row, "split": "train"}, {**row, "split": "validation"}], tmp_path / "out", {})
    assert not list(tmp_path.iterdir())
    with pytest.raises(ConfigError, match="above 0"):
        BuildConfig(corpus=["x"], test_fraction=0.0)


def test_a_dataset_in_the_old_hf_layout_still_loads(corpus_dir, tmp_path, seed_table):
    out = tmp_path / "ds"
    build_dataset(config(corpus_dir, out, seed_table), progress=False)
    (out / "hf").mkdir()
    for item in list(out.iterdir()):
        if item.name not in ("hf", "parquet", "manifest.json"):
            item.rename(out / "hf" / item.name)
    assert set(load_dataset_dir(out)) == {"train", "validation", "test"}


def test_build_dataset_flags_come_from_the_config_fields(monkeypatch, tmp_path):
    import dataclasses
    import typing

    from click.testing import CliRunner

    from training import build
    from training.cli import build_dataset_cmd
    from training.spinner import SpinnerConfig

    flags = {p.name for p in build_dataset_cmd.params}
    for cls in (BuildConfig, SpinnerConfig):
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            hint = hints[field.name]
            plain = set(typing.get_args(hint) or (hint,)) <= {int, float, str, bool, type(None)}
            if plain and not (cls is SpinnerConfig and field.name == "seed"):  # the builder sets the spin seed
                assert field.name in flags, f"{cls.__name__}.{field.name} has no build-dataset flag"
    seen = []
    manifest = dict(pairs={}, engines={}, lexicon_sizes={}, edits_per_lexicon_source={}, spin_pairs_per_second=0,
                    seconds=0)
    monkeypatch.setattr(build, "build_dataset", lambda config: seen.append(config) or manifest)
    result = CliRunner().invoke(build_dataset_cmd, ["--corpus", "c", "--out", str(tmp_path / "o"), "--min-words", "6",
                                                    "--spin-seed", "7", "--doc-column", "url", "--protect-quotes",
                                                    "--unspun-share", "0.3", "--validation-fraction", "0.2"])
    assert result.exit_code == 0, result.output
    (config,) = seen
    assert (config.min_words, config.max_words, config.spin_seed, config.seed, config.doc_column) == (6, 80, 7, 13, "url")
    assert (config.validation_fraction, config.spinner.protect_quotes, config.spinner.unspun_share) == (0.2, True, 0.3)
    assert config.spinner.seed == 7  # the spin seed, set by BuildConfig


@pytest.mark.slow  # a process pool
def test_spinning_in_workers_gives_the_same_pairs_and_leaves_the_collector_as_it_was(seed_table):
    """``spin_all`` with forked workers (and the collector frozen meanwhile) spins every row as one
    process does, in order, and unfreezes the collector afterwards."""
    import gc

    from training.build import spin_all
    from training.lexicon import load_lexicon
    from training.spinner import Spinner

    spinner = Spinner(load_lexicon(LexiconConfig(sources=("seed", "rules"), seed_table=str(seed_table)),
                                   use_cache=False))
    texts = ["The war killed at least fifteen people.", "He is here, and they could not stay.",
             "The company said four percent of the people left."]
    rows = [("train", "news", f"doc{i % 50}", i, i % 3, texts[i % 3]) for i in range(4500)]  # 3 chunks
    frozen = gc.get_freeze_count()
    pooled = spin_all(rows, spinner, workers=2, progress=False)
    assert gc.get_freeze_count() == frozen
    assert pooled == spin_all(rows, spinner, workers=1, progress=False)
    assert len(pooled) == 4500 and any(p["spun"] != p["original"] for p in pooled)
