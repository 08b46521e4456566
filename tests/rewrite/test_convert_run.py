"""Whole runs: discovery, output tree, report, manifest, resume, reprocessing, errors, CLI."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from rewrite.convert import MANIFEST_NAME, ConvertConfig, Manifest, convert_files, discover
from rewrite.convert.cli import convert as convert_command
from rewrite.errors import InputError

from .convert_fakes import FakeRestorer, make_exploding, make_fake, use_fake


@pytest.fixture(autouse=True)
def _fake_model(monkeypatch):
    """``unspin convert`` restores with the fake (tests that want a model pass a factory)."""
    use_fake(monkeypatch)


def make_tree(root: Path) -> dict[str, bytes]:
    files = {
        "a.txt": b"They mentioned it.\n",
        "notes/b.md": b"# Individuals\n\nHe mentioned `mentioned`.\n",
        "notes/deep/c.html": b'<p title="mentioned">mentioned</p>\n',
        "data/d.jsonl": b'{"text": "not less than 5", "id": 1}\n',
        "data/e.csv": b"id,text\n1,individuals mentioned\n",
        "clean.txt": b"Nothing to change here.\r\n",
        "image.png": b"\x89PNG\r\n\x1a\n\x00\x00",
        ".hidden/x.txt": b"mentioned\n",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` except the manifest, by relative path."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.startswith(MANIFEST_NAME)
    }


def run(src, out, factory=make_fake, **kwargs):
    return convert_files([src], ConvertConfig(out=str(out), progress=False, **kwargs), factory)


def read_report(path: Path) -> dict[str, dict]:
    return {line["path"]: line for line in map(json.loads, path.read_text().splitlines())}


def test_run_mirrors_the_tree_and_writes_report_and_manifest(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    make_tree(src)
    summary = run(src, out, report=str(tmp_path / "report.jsonl"))
    assert tree(out) == {
        "a.txt": b"They said it.\n",
        "notes/b.md": b"# Individuals\n\nHe said `mentioned`.\n",
        "notes/deep/c.html": b'<p title="mentioned">said</p>\n',
        "data/d.jsonl": b'{"text": "at least 5", "id": 1}\n',
        "data/e.csv": b"id,text\n1,people said\n",
        "clean.txt": b"Nothing to change here.\r\n",
    }
    assert (summary.total, summary.ok, summary.failed, summary.ignored, summary.edits) == (6, 6, 0, 1, 6)
    assert not summary.any_failed and summary.words > 0
    report = read_report(tmp_path / "report.jsonl")
    assert set(report) == set(tree(out))
    assert report["a.txt"]["edits"] == [
        {"line": 1, "offset": 5, "length": 9, "original": "mentioned", "replacement": "said", "confidence": 0.9}
    ]
    assert report["a.txt"]["spin_ratio"] == pytest.approx(1 / 3, abs=1e-4)
    rows = sqlite3.connect(out / MANIFEST_NAME).execute("SELECT path, model_id, status FROM files ORDER BY path").fetchall()
    assert rows == [(p, "fake-1", "ok") for p in sorted(report)]


def test_rerun_skips_finished_files_and_redoes_changed_ones(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    make_tree(src)
    run(src, out)
    first = tree(out)
    restorer = FakeRestorer()
    summary = run(src, out, factory=lambda: restorer, report=str(tmp_path / "r.jsonl"))
    assert restorer.calls == [] and summary.cached == 6 and tree(out) == first
    assert all(line["cached"] for line in read_report(tmp_path / "r.jsonl").values())

    (src / "a.txt").write_bytes(b"Individuals mentioned more.\n")
    summary = run(src, out, factory=lambda: restorer, report=str(tmp_path / "r.jsonl"))
    assert summary.cached == 5 and restorer.calls == [1]
    assert (out / "a.txt").read_bytes() == b"Individuals said more.\n"
    report = read_report(tmp_path / "r.jsonl")
    assert not report["a.txt"]["cached"] and report["clean.txt"]["cached"]


def test_a_new_model_or_new_settings_redo_everything(tmp_path, monkeypatch):
    src, out = tmp_path / "src", tmp_path / "out"
    make_tree(src)
    run(src, out)
    monkeypatch.setenv("UNSPIN_FAKE_MODEL_ID", "fake-2")
    assert run(src, out).cached == 0
    assert run(src, out).cached == 6
    summary = run(src, out, min_confidence=0.75)
    assert summary.cached == 0
    assert (out / "data/d.jsonl").read_bytes() == b'{"text": "not less than 5", "id": 1}\n'


def test_resume_redoes_files_without_a_manifest_row_and_removes_temp_files(tmp_path):
    """The state a kill between a rename and its manifest row (or mid-write) leaves behind."""
    src, out = tmp_path / "src", tmp_path / "out"
    make_tree(src)
    run(src, out)
    clean = tree(out)
    db = sqlite3.connect(out / MANIFEST_NAME)
    db.execute("DELETE FROM files WHERE path IN ('a.txt', 'notes/b.md')")
    db.commit()
    db.close()
    (out / "notes/b.md").write_bytes(b"half a fi")  # as if an older, broken run had written it
    (out / "notes/.b.md.unspin-tmp-123").write_bytes(b"partial")
    restorer = FakeRestorer()
    summary = run(src, out, factory=lambda: restorer)
    assert summary.cached == 4 and sum(restorer.calls) > 0
    assert tree(out) == clean


def test_deleted_output_is_rebuilt(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    make_tree(src)
    run(src, out)
    clean = tree(out)
    (out / "data/e.csv").unlink()
    assert run(src, out).cached == 5
    assert tree(out) == clean


def test_errors_are_reported_and_the_rest_goes_on(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    (src / "good.txt").write_bytes(b"mentioned\n")
    (src / "binary.txt").write_bytes(b"\x00\x01\x02")
    (src / "latin.txt").write_bytes(b"caf\xe9\n")
    (src / "rows.jsonl").write_bytes(b'{"text": "mentioned"}\n{broken\n')
    (src / "rows.csv").write_bytes(b'text,n\nmentioned,1\n"open,2\n')
    (src / "gone.txt").symlink_to(src / "missing-target.txt")  # unreadable
    summary = run(src, out, report=str(tmp_path / "r.jsonl"))
    report = read_report(tmp_path / "r.jsonl")
    statuses = {path: line["status"] for path, line in report.items()}
    assert statuses == {
        "good.txt": "ok", "binary.txt": "failed", "latin.txt": "failed", "rows.jsonl": "partial",
        "rows.csv": "partial", "gone.txt": "failed",
    }
    assert "binary" in report["binary.txt"]["errors"][0]["reason"]
    assert "not valid utf-8" in report["latin.txt"]["errors"][0]["reason"]
    assert report["rows.jsonl"]["errors"][0]["line"] == 2
    assert report["rows.csv"]["errors"][0]["row"] == 3
    assert "unreadable" in report["gone.txt"]["errors"][0]["reason"]
    assert (summary.ok, summary.partial, summary.failed) == (1, 2, 3) and summary.any_failed
    assert sorted(tree(out)) == ["good.txt", "rows.csv", "rows.jsonl"]
    assert (out / "rows.jsonl").read_bytes() == b'{"text": "said"}\n{broken\n'
    # A rerun reports the same failures from the manifest (the unreadable file is retried).
    again = run(src, out)
    assert (again.ok, again.partial, again.failed, again.cached) == (1, 2, 3, 5)


def test_input_that_became_broken_removes_its_stale_output(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    (src / "a.txt").write_bytes(b"mentioned\n")
    run(src, out)
    (src / "a.txt").write_bytes(b"\xff\xfe\x00broken")
    assert run(src, out).failed == 1
    assert not (out / "a.txt").exists()


def test_a_batch_the_restorer_chokes_on_fails_only_the_file_at_fault(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    for k in range(3):
        (src / f"{k}.txt").write_bytes(b"mentioned\n")
    (src / "bad.txt").write_bytes(b"explode mentioned\n")
    summary = run(src, out, factory=make_exploding, report=str(tmp_path / "r.jsonl"))
    assert (summary.ok, summary.failed) == (3, 1)
    assert "boom" in read_report(tmp_path / "r.jsonl")["bad.txt"]["errors"][0]["reason"]
    rows = sqlite3.connect(out / MANIFEST_NAME).execute("SELECT path FROM files").fetchall()
    assert ("bad.txt",) not in rows  # not cached: a rerun tries again


def test_glob_filters_and_explicit_files(tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    plan = discover([src], ("*.md", "data/*.csv"))
    assert [rel for _, rel in plan.files] == ["data/e.csv", "notes/b.md"]
    plan = discover([src / "a.txt", src / "notes"])
    assert [rel for _, rel in plan.files] == ["a.txt", "notes/b.md", "notes/deep/c.html"]
    plan = discover([src / "notes", src / "data"])
    assert [rel for _, rel in plan.files] == ["data/d.jsonl", "data/e.csv", "notes/b.md", "notes/deep/c.html"]
    with pytest.raises(InputError, match="does not exist"):
        discover([tmp_path / "nope"])


def test_output_folder_inside_the_source_is_not_read_back(tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    run(src, src / "out", report=str(src / "out" / "report.jsonl"))
    summary = run(src, src / "out", report=str(src / "out" / "report.jsonl"))
    assert summary.total == 6 and summary.cached == 6
    with pytest.raises(InputError, match="inside --out"):
        run(src / "notes", src)


@pytest.mark.parametrize(
    ("report", "says"),
    [
        ("src/a.txt", "among the inputs"),  # an input: the report would replace it
        ("src/new-report.jsonl", "among the inputs"),  # inside a source folder: the next run reads it
        ("src/notes/../a.txt", "among the inputs"),
        ("link-to-a.txt", "among the inputs"),  # a link to an input
        ("out/a.txt", "an output of this run"),
        ("out/.unspin-manifest.sqlite", "an output of this run"),
    ],
)
def test_a_report_path_that_is_or_could_be_an_input_or_output_is_refused(tmp_path, report, says):
    src, out = tmp_path / "src", tmp_path / "out"
    files = make_tree(src)
    (tmp_path / "link-to-a.txt").symlink_to(src / "a.txt")
    with pytest.raises(InputError, match=says):
        run(src, out, report=str(tmp_path / report))
    assert tree(src) == files
    assert not out.exists()


def test_a_report_naming_an_input_file_given_directly_is_refused(tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    runner = CliRunner()
    args = [str(src / "a.txt"), "--out", str(tmp_path / "out"), "--report", str(src / "a.txt")]
    result = runner.invoke(convert_command, args)
    assert result.exit_code == 1 and "among the inputs" in result.output
    assert (src / "a.txt").read_bytes() == b"They mentioned it.\n"


def test_fifos_and_other_non_regular_files_are_reported_and_skipped_unopened(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    (src / "a.txt").write_bytes(b"They mentioned it.\n")
    os.mkfifo(src / "pipe.txt")  # opening it for reading would block until a writer came
    (src / "z.txt").write_bytes(b"individuals\n")
    summary = run(src, out, report=str(tmp_path / "r.jsonl"))
    assert tree(out) == {"a.txt": b"They said it.\n", "z.txt": b"people\n"}
    report = read_report(tmp_path / "r.jsonl")
    assert report["pipe.txt"]["status"] == "skipped"
    assert "named pipe (FIFO)" in report["pipe.txt"]["errors"][0]["reason"]
    assert (summary.total, summary.ok, summary.skipped, summary.failed, summary.any_failed) == (3, 2, 1, 0, False)
    assert "1 skipped (not regular files)" in summary.describe()
    # Named directly, too; and the CLI exits 0 (nothing failed) but names it.
    result = CliRunner().invoke(
        convert_command, [str(src / "pipe.txt"), str(src / "a.txt"), "--out", str(tmp_path / "o2")]
    )
    assert result.exit_code == 0, result.output
    assert "pipe.txt" in result.output and "1 skipped" in result.output


def test_a_file_replaced_by_a_fifo_after_discovery_is_skipped(tmp_path, monkeypatch):
    import rewrite.convert.run as convert_module

    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    (src / "a.txt").write_bytes(b"mentioned\n")
    real_discover = convert_module.discover

    def discover_then_swap(*args, **kwargs):
        plan = real_discover(*args, **kwargs)
        (src / "a.txt").unlink()
        os.mkfifo(src / "a.txt")
        return plan

    monkeypatch.setattr(convert_module, "discover", discover_then_swap)
    summary = run(src, out)
    assert (summary.skipped, summary.ok) == (1, 0)


def test_a_second_run_on_the_same_output_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    manifest = Manifest(out)
    try:
        with pytest.raises(InputError, match="another 'unspin convert'"):
            Manifest(out)
    finally:
        manifest.close()


def test_config_is_validated():
    with pytest.raises(InputError, match="--out"):
        ConvertConfig()
    with pytest.raises(InputError, match="workers"):
        ConvertConfig(out="x", workers=0)
    with pytest.raises(InputError, match="address"):
        ConvertConfig(out="x", address="auto")


@pytest.mark.slow  # a process pool
def test_two_worker_processes_give_the_same_outputs(tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    for k in range(6):
        (src / f"more/{k}.txt").parent.mkdir(exist_ok=True)
        (src / f"more/{k}.txt").write_bytes(b"individuals mentioned %d\n" % k)
    one = run(src, tmp_path / "one", batch_files=2, report=str(tmp_path / "one.jsonl"))
    two = run(src, tmp_path / "two", workers=2, batch_files=2, report=str(tmp_path / "two.jsonl"))
    assert tree(tmp_path / "one") == tree(tmp_path / "two")
    assert (one.ok, one.edits, one.words) == (two.ok, two.edits, two.words)
    assert read_report(tmp_path / "one.jsonl") == read_report(tmp_path / "two.jsonl")


def test_cli_exit_codes_summary_and_report(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    make_tree(src)
    runner = CliRunner()
    args = [str(src), "--out", str(out), "--report", str(tmp_path / "r.jsonl")]
    result = runner.invoke(convert_command, args)
    assert result.exit_code == 0, result.output
    assert "6 files: 6 ok, 0 partial, 0 failed" in result.output
    (src / "broken.jsonl").write_bytes(b"{nope\n")
    result = runner.invoke(convert_command, args)
    assert result.exit_code == 2
    assert "broken.jsonl" in result.output
    result = runner.invoke(convert_command, [str(src), "--out", str(out), "--restorer-factory", "tests.x:y"])
    assert result.exit_code == 2 and "No such option" in result.output  # no hidden hook imports modules
    for test_only in (["--batch-files", "1"],):  # batching is ConvertConfig's business, not the user's
        result = runner.invoke(convert_command, [str(src), "--out", str(out), *test_only])
        assert result.exit_code == 2 and "No such option" in result.output


def test_cli_field_and_column_options(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    (src / "a.jsonl").write_bytes(b'{"body": "mentioned"}\n')
    (src / "b.csv").write_bytes(b"body\nmentioned\n")
    result = CliRunner().invoke(
        convert_command, [str(src), "--out", str(out), "--field", "body", "--column", "body"]
    )
    assert result.exit_code == 0, result.output
    assert (out / "a.jsonl").read_bytes() == b'{"body": "said"}\n' and (out / "b.csv").read_bytes() == b"body\nsaid\n"


def test_progress_log_lines_when_not_a_terminal(tmp_path, caplog):
    src = tmp_path / "src"
    make_tree(src)
    with caplog.at_level("INFO", logger="rewrite.convert"):
        run(src, tmp_path / "out", log_every=0.0)
    assert any("converted 6/6 files" in r.message for r in caplog.records)


def test_progress_bar_on_a_terminal(capsys):
    from rewrite.convert.run import _Progress

    progress = _Progress(2, True, 10.0)
    progress.update(100)
    progress.update(50)
    progress.close()
    err = capsys.readouterr().err
    assert "Converting" in err and "2/2" in err


def test_temp_files_never_survive_a_finished_run(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    make_tree(src)
    run(src, out)
    assert not [p for p in out.rglob("*") if ".unspin-tmp-" in p.name]
    assert os.listdir(out)


def apply_report_edits(text: str, edits: list[dict]) -> str:
    out, last = [], 0
    for e in sorted(edits, key=lambda e: e["offset"]):
        out += [text[last : e["offset"]], e["replacement"]]
        last = e["offset"] + e["length"]
    return "".join(out) + text[last:]


def test_real_restorer_from_a_model_folder(tiny_model_dir, tmp_path):
    """The shipped pipeline end to end with the tiny random model: mechanics, not quality."""
    from rewrite.convert import RestorerFactory

    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    text = "The president mentioned on Wednesday that the war must end.\r\nAt least 15 people were killed.\r\n"
    (src / "a.txt").write_text(text, newline="")
    (src / "b.md").write_bytes(b"# Talks\n\nOfficials announced `code` sanctions.\n")
    summary = convert_files([src], ConvertConfig(out=str(out), progress=False, report=str(tmp_path / "r.jsonl")),
                            RestorerFactory(str(tiny_model_dir), threads=1))
    assert (summary.ok, summary.failed) == (2, 0)
    report = read_report(tmp_path / "r.jsonl")
    assert (out / "a.txt").read_bytes().decode() == apply_report_edits(text, report["a.txt"]["edits"])
    assert b"`code`" in (out / "b.md").read_bytes()
    weights = hashlib.sha256((tiny_model_dir / "model.safetensors").read_bytes()).hexdigest()
    rows = sqlite3.connect(out / MANIFEST_NAME).execute("SELECT DISTINCT model_id FROM files").fetchall()
    assert len(rows) == 1 and rows[0][0].startswith(weights + "+")  # weights hash + backend


def _convert_seconds(tmp_path, sentences: int) -> tuple[float, list[dict]]:
    src, out = tmp_path / f"src{sentences}", tmp_path / f"out{sentences}"
    src.mkdir()
    (src / "long.txt").write_bytes(b"They mentioned it. " * sentences + b"\nThe end mentioned.\n")
    started = time.monotonic()
    summary = run(src, out, report=str(tmp_path / f"r{sentences}.jsonl"))
    assert (summary.ok, summary.edits) == (1, sentences + 1)
    return time.monotonic() - started, read_report(tmp_path / f"r{sentences}.jsonl")["long.txt"]["edits"]


@pytest.mark.timing
@pytest.mark.slow
def test_a_long_single_line_file_converts_in_linear_time(tmp_path):
    # The sentence splitter sliced the rest of the line at every sentence and the report counted
    # line breaks from the top for every edit: quadratic (1.9 MB on one line took 165 s, now
    # about 5 s). Four times the line must cost about four times as long, not sixteen.
    small, _ = _convert_seconds(tmp_path, 10_000)
    large, edits = _convert_seconds(tmp_path, 40_000)
    assert large < 8 * small + 1
    assert (edits[0]["line"], edits[-2]["line"], edits[-1]["line"]) == (1, 1, 2)
