"""Parquet files and ``datasets`` folders through ``unspin convert`` and ``map_dataset``: the same
format back with the restored column beside the original, loadable with ``datasets``, resumable."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

datasets = pytest.importorskip("datasets")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from rewrite import apply_edits  # noqa: E402
from rewrite.convert import ConvertConfig, convert_files, map_dataset  # noqa: E402
from rewrite.convert.cli import convert as convert_command  # noqa: E402
from rewrite.convert.tables import PARTS_DIR  # noqa: E402
from rewrite.edits import Edit  # noqa: E402
from rewrite.errors import InputError  # noqa: E402

from .convert_fakes import FakeRestorer, make_fake, use_fake  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TEXTS = [
    "They mentioned it.",
    None,
    "Not all individuals: not less than 5\nmentioned 😀 it, see https://example.com/mentioned.",
    "",
    "Nothing to change here.",
    "个人 mentioned 说",
    "individuals",
]
RESTORED = [
    "They said it.",
    None,
    "Not all people: at least 5\nsaid 😀 it, see https://example.com/mentioned.",
    "",
    "Nothing to change here.",
    "个人 said 说",
    "people",
]


@pytest.fixture(autouse=True)
def _fake_model(monkeypatch):
    use_fake(monkeypatch)


def rows(n_copies: int = 1) -> dict:
    texts = TEXTS * n_copies
    return {"id": list(range(len(texts))), "text": texts, "score": [k / 2 for k in range(len(texts))]}


def check_rows(records: list[dict], n_copies: int = 1) -> None:
    """Every input column kept; the restored text is the input with its recorded edits applied."""
    assert [r["id"] for r in records] == list(range(len(TEXTS) * n_copies))
    assert [r["text"] for r in records] == TEXTS * n_copies
    assert [r["text_restored"] for r in records] == RESTORED * n_copies
    for r in records:
        if r["text"] is None:
            assert r["text_edits"] is None and r["spin_ratio"] is None
            continue
        edits = [Edit(**e) for e in json.loads(r["text_edits"])]
        assert apply_edits(r["text"], edits) == r["text_restored"]
        assert (r["spin_ratio"] > 0) == bool(edits)


def test_a_parquet_file_round_trips_through_the_cli_and_loads_with_datasets(tmp_path):
    table = pa.table(rows()).replace_schema_metadata({b"owner": b"kept"})
    pq.write_table(table, tmp_path / "in.parquet")
    result = CliRunner().invoke(convert_command, [str(tmp_path / "in.parquet"), "--column", "text", "--out",
                                                  str(tmp_path / "out"), "--report", str(tmp_path / "r.jsonl")])
    assert result.exit_code == 0, result.output
    assert "1 file: 1 ok" in result.output
    out = tmp_path / "out" / "in.parquet"
    written = pq.read_table(out)
    assert written.column_names == ["id", "text", "score", "text_restored", "text_edits", "spin_ratio"]
    assert written.schema.metadata[b"owner"] == b"kept"
    check_rows(written.to_pylist())
    loaded = datasets.load_dataset("parquet", data_files=str(out), split="train", cache_dir=str(tmp_path / "cache"))
    assert loaded.features["spin_ratio"] == datasets.Value("float64") and loaded.num_rows == len(TEXTS)
    check_rows(list(loaded))
    report = json.loads((tmp_path / "r.jsonl").read_text())
    assert (report["path"], report["status"], report["rows"], report["edit_count"]) == ("in.parquet", "ok", 7, 6)
    assert not (tmp_path / "out" / PARTS_DIR).exists()  # parts are removed once the manifest has the row
    again = CliRunner().invoke(convert_command, [str(tmp_path / "in.parquet"), "--out", str(tmp_path / "out")])
    assert again.exit_code == 0 and "unchanged since an earlier run" in again.output
    pq.write_table(table.slice(0, 0), tmp_path / "empty.parquet")
    result = CliRunner().invoke(convert_command, [str(tmp_path / "empty.parquet"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    empty = pq.read_table(tmp_path / "out" / "empty.parquet")
    assert empty.num_rows == 0 and empty.column_names[-3:] == ["text_restored", "text_edits", "spin_ratio"]


def test_save_to_disk_folders_round_trip_through_the_cli(tmp_path):
    source = datasets.Dataset.from_dict(rows(), features=datasets.Features(
        {"id": datasets.Value("int32"), "text": datasets.Value("string"), "score": datasets.Value("float32")}))
    source.save_to_disk(str(tmp_path / "src" / "single"))
    datasets.DatasetDict({"train": source, "test": source.select([0, 1])}).save_to_disk(str(tmp_path / "src" / "splits"))
    (tmp_path / "src" / "notes.txt").write_text("They mentioned it.\n")
    (tmp_path / "src" / "deep").mkdir()
    pq.write_table(pa.table(rows()), tmp_path / "src" / "deep" / "t.parquet")
    result = CliRunner().invoke(convert_command, [str(tmp_path / "src"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "4 files: 4 ok" in result.output  # a walked folder: documents, datasets folders, Parquet files
    assert (tmp_path / "out" / "notes.txt").read_text() == "They said it.\n"
    check_rows(pq.read_table(tmp_path / "out" / "deep" / "t.parquet").to_pylist())
    single = datasets.load_from_disk(str(tmp_path / "out" / "single"))
    assert single.features["id"] == datasets.Value("int32")  # the input's features are kept
    check_rows(list(single))
    splits = datasets.load_from_disk(str(tmp_path / "out" / "splits"))
    assert set(splits) == {"train", "test"}
    check_rows(list(splits["train"]))
    assert splits["test"]["text_restored"] == RESTORED[:2]

    # Named directly, a datasets folder maps to OUT/ITS_NAME, like a file.
    result = CliRunner().invoke(convert_command, [str(tmp_path / "src" / "single"), "--out", str(tmp_path / "out2")])
    assert result.exit_code == 0, result.output
    check_rows(list(datasets.load_from_disk(str(tmp_path / "out2" / "single"))))


class StopAfter(FakeRestorer):
    """Stops the run (like Ctrl-C) on its ``calls``-th batch."""

    def __init__(self, calls: int):
        super().__init__()
        self.stop_at = calls

    def restore_many(self, texts, min_confidence=0.0, protect_quotes=False):
        if len(self.calls) + 1 >= self.stop_at:
            raise KeyboardInterrupt
        return super().restore_many(texts, min_confidence, protect_quotes)


@pytest.mark.parametrize("kind", ["parquet", "datasets"])
def test_an_interrupted_table_run_resumes_where_it_stopped(tmp_path, kind):
    data = rows(n_copies=4)  # 28 rows: 7 batches of 4
    if kind == "parquet":
        pq.write_table(pa.table(data), tmp_path / "t.parquet")
        source = tmp_path / "t.parquet"
    else:
        datasets.Dataset.from_dict(data).save_to_disk(str(tmp_path / "t"))
        source = tmp_path / "t"

    def run(restorer, out):
        config = ConvertConfig(out=str(out), batch_rows=4, progress=False)
        return convert_files([source], config, lambda: restorer)

    with pytest.raises(KeyboardInterrupt):
        run(StopAfter(4), tmp_path / "out")
    assert not (tmp_path / "out" / source.name).exists()
    assert len(list((tmp_path / "out" / PARTS_DIR).rglob("*.arrow"))) == 3
    second = FakeRestorer()
    summary = run(second, tmp_path / "out")
    assert (summary.ok, summary.edits) == (1, 24)
    assert len(second.calls) == 4  # only the batches without a part
    whole = run(FakeRestorer(), tmp_path / "whole")
    if kind == "parquet":
        resumed, uninterrupted = pq.read_table(tmp_path / "out" / source.name), pq.read_table(tmp_path / "whole" / source.name)
    else:
        resumed = datasets.load_from_disk(str(tmp_path / "out" / source.name)).data.table
        uninterrupted = datasets.load_from_disk(str(tmp_path / "whole" / source.name)).data.table
    assert resumed.equals(uninterrupted) and (summary.words, summary.edits) == (whole.words, whole.edits)
    check_rows(resumed.to_pylist(), n_copies=4)
    assert not (tmp_path / "out" / PARTS_DIR).exists()


def test_a_bad_column_is_named_with_the_columns_there_are(tmp_path):
    pq.write_table(pa.table(rows()), tmp_path / "in.parquet")
    result = CliRunner().invoke(convert_command, [str(tmp_path / "in.parquet"), "--column", "body", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "no column 'body'; its columns: id, text, score. Name the text column with --column" in result.output
    result = CliRunner().invoke(convert_command, [str(tmp_path / "in.parquet"), "--column", "id", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "column 'id' holds int64, not text" in result.output
    pq.write_table(pa.table({"text": ["x"], "text_restored": ["x"]}), tmp_path / "done.parquet")
    result = CliRunner().invoke(convert_command, [str(tmp_path / "done.parquet"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "already has text_restored" in result.output
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"body": ["x"]})}).save_to_disk(str(tmp_path / "dd"))
    result = CliRunner().invoke(convert_command, [str(tmp_path / "dd"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "no column 'text' (split 'train'); its columns: body" in result.output


def test_map_dataset_adds_the_three_columns_in_batches():
    restorer = FakeRestorer()
    dataset = datasets.Dataset.from_dict(rows(n_copies=2))
    mapped = map_dataset(restorer, dataset, "text", batch_size=5)
    check_rows(list(mapped), n_copies=2)
    assert restorer.calls == [3, 4, 3]  # 14 rows in batches of 5; None and "" are not sent
    both = map_dataset(FakeRestorer(), datasets.DatasetDict({"a": dataset, "b": dataset.select([0])}), "text")
    assert both["b"]["text_restored"] == ["They said it."] and both["a"].num_rows == 14
    with pytest.raises(InputError, match="no column 'body'; its columns: id, text, score"):
        map_dataset(restorer, dataset, "body")


def test_a_cell_the_restorer_fails_on_fails_alone(tmp_path):
    class Picky(FakeRestorer):
        def restore_many(self, texts, min_confidence=0.0, protect_quotes=False):
            if any("explode" in t for t in texts):
                raise RuntimeError("boom")
            return super().restore_many(texts, min_confidence, protect_quotes)

    pq.write_table(pa.table({"text": ["They mentioned it.", "explode", "individuals"]}), tmp_path / "in.parquet")
    summary = convert_files([tmp_path / "in.parquet"], ConvertConfig(out=str(tmp_path / "out"), progress=False,
                                                                     report=str(tmp_path / "r.jsonl")), Picky)
    assert (summary.partial, summary.any_failed) == (1, True)
    assert pq.read_table(tmp_path / "out" / "in.parquet").column("text_restored").to_pylist() == ["They said it.", None, "people"]
    report = json.loads((tmp_path / "r.jsonl").read_text())
    assert report["errors"] == [{"row": 1, "reason": "conversion error: boom"}]


def test_a_base_install_imports_the_converter_without_pyarrow_or_datasets(tmp_path):
    """Without the extra, documents convert and a table fails with the extra's name."""
    block = ("import sys\nclass Block:\n    def find_spec(self, name, path=None, target=None):\n"
             "        if name.split('.')[0] in ('pyarrow', 'datasets'):\n            raise ImportError(name=name)\n"
             "sys.meta_path.insert(0, Block())\n")
    pq.write_table(pa.table({"text": ["They mentioned it."]}), tmp_path / "t.parquet")
    code = block + (
        "from rewrite.convert import ConvertConfig, convert_files\n"
        "from tests.rewrite.convert_fakes import make_fake\n"
        f"s = convert_files([{str(tmp_path / 't.parquet')!r}], ConvertConfig(out={str(tmp_path / 'out')!r}, progress=False), make_fake)\n"
        "print(s.failures[0][1])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "need pyarrow and datasets" in result.stdout and "pip install 'unspin[convert]'" in result.stdout
    # Not recorded as done: with the extra installed, the same command converts it.
    summary = convert_files([tmp_path / "t.parquet"], ConvertConfig(out=str(tmp_path / "out"), progress=False), make_fake)
    assert (summary.ok, summary.cached) == (1, 0)
    assert pq.read_table(tmp_path / "out" / "t.parquet").column("text_restored").to_pylist() == ["They said it."]


@pytest.mark.slow  # a process pool: results come back out of order
def test_two_workers_give_the_same_table(tmp_path):
    pq.write_table(pa.table(rows(n_copies=6)), tmp_path / "in.parquet")
    for name, workers in (("one", 1), ("two", 2)):
        convert_files([tmp_path / "in.parquet"], ConvertConfig(out=str(tmp_path / name), workers=workers, batch_rows=3,
                                                               progress=False), make_fake)
    assert pq.read_table(tmp_path / "one" / "in.parquet").equals(pq.read_table(tmp_path / "two" / "in.parquet"))


def test_the_real_restorer_on_a_parquet_file_and_through_map_dataset(tiny_model_dir, tmp_path):
    """The shipped pipeline with the tiny random model: mechanics (columns, edits that rebuild the
    restored text, the same answer from the CLI path and from map_dataset), not quality."""
    from rewrite import Restorer
    from rewrite.convert import RestorerFactory

    texts = ["The president mentioned on Wednesday that the war must end.", None, "At least 15 people were killed."]
    pq.write_table(pa.table({"text": texts}), tmp_path / "in.parquet")
    summary = convert_files([tmp_path / "in.parquet"], ConvertConfig(out=str(tmp_path / "out"), progress=False),
                            RestorerFactory(str(tiny_model_dir), threads=1))
    assert (summary.ok, summary.failed) == (1, 0)
    converted = pq.read_table(tmp_path / "out" / "in.parquet").to_pylist()
    for row in converted:
        if row["text"] is not None:
            assert apply_edits(row["text"], [Edit(**e) for e in json.loads(row["text_edits"])]) == row["text_restored"]
    mapped = map_dataset(Restorer.from_pretrained(str(tiny_model_dir), threads=1), datasets.Dataset.from_dict({"text": texts}), "text")
    assert [{k: r[k] for k in ("text_restored", "text_edits", "spin_ratio")} for r in mapped] == \
        [{k: r[k] for k in ("text_restored", "text_edits", "spin_ratio")} for r in converted]
