"""The `unspin rewrite` command through click's CliRunner, with a fake model."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import rewrite.restorer
from rewrite import Restorer, apply_edits
from unspin.cli import cli, main
from tests.rewrite.fakes import SwapBackend, swap_oracle

TEXT = "Rubio mentioned it.\r\n\n  Not less than 15 individuals, he mentioned.\n"


@pytest.fixture
def fake_model(monkeypatch):
    """`Restorer.from_pretrained` gives a restorer with the swapping fake; records the folder asked for."""
    asked = []

    def from_pretrained(path=None, backend="auto", config=None, mode="auto"):
        asked.append(path)
        return Restorer(SwapBackend(probs={"people": 0.4}), config)

    monkeypatch.setattr(Restorer, "from_pretrained", staticmethod(from_pretrained))
    return asked


def run(args, **kwargs):
    return CliRunner().invoke(cli, args, **kwargs)


def test_rewrite_a_file_keeps_its_lines(fake_model, tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes(TEXT.encode())
    result = run(["rewrite", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == swap_oracle(TEXT).encode()
    assert b"\r\n\n" in result.stdout_bytes
    assert fake_model == [None]  # the default model


def test_rewrite_stdin_and_several_files(fake_model, tmp_path):
    assert run(["rewrite"], input=TEXT.encode()).stdout_bytes == swap_oracle(TEXT).encode()
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("he mentioned\n")
    b.write_text("individuals")
    assert run(["rewrite", str(a), str(b)]).stdout == "he said\npeople"
    assert run(["rewrite", str(a), "-"], input="individuals\n").stdout == "he said\npeople\n"


def test_json_gives_text_edits_and_spin_ratio_per_input(fake_model, tmp_path):
    path = tmp_path / "in.txt"
    path.write_text(TEXT)
    result = run(["rewrite", "--json", str(path), "-"], input="nothing to do")
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert [r["input"] for r in records] == [str(path), "<stdin>"]
    first = records[0]
    assert first["text"] == swap_oracle(TEXT)
    assert {e["original"] for e in first["edits"]} == {"mentioned", "individuals"}
    assert set(first["edits"][0]) == {"offset", "length", "original", "replacement", "confidence"}
    assert 0 < first["spin_ratio"] < 1
    assert records[1] == {"input": "<stdin>", "text": "nothing to do", "edits": [], "spin_ratio": 0.0, "flags": []}


def test_json_edits_rebuild_the_text(fake_model):
    record = json.loads(run(["rewrite", "--json"], input=TEXT).stdout)[0]
    from rewrite import Edit

    assert apply_edits(TEXT, [Edit(**e) for e in record["edits"]]) == record["text"]


def test_diff_shows_each_change_coloured_only_on_a_terminal(fake_model):
    plain = run(["rewrite", "--diff"], input="Rubio mentioned it.\n")
    assert plain.stdout == "Rubio [-mentioned-]{+said+} it.\n"
    coloured = run(["rewrite", "--diff"], input="Rubio mentioned it.\n", color=True)
    assert "\x1b[31m[-mentioned-]\x1b[0m" in coloured.stdout
    assert "\x1b[32m{+said+}\x1b[0m" in coloured.stdout


def test_options_reach_the_library(fake_model, tmp_path):
    text = "“individuals mentioned” individuals mentioned\n"
    assert run(["rewrite", "--protect-quotes"], input=text).stdout == "“individuals mentioned” people said\n"
    assert run(["rewrite", "--min-confidence", "0.5"], input=text).stdout == "“individuals said” individuals said\n"
    model_dir = tmp_path / "my-model"
    run(["rewrite", "--model", str(model_dir)], input="x")
    assert fake_model[-1] == model_dir


@pytest.mark.parametrize(
    "args",
    [
        ["rewrite", "--json", "--diff"],
        ["rewrite", "--min-confidence", "2"],
        ["rewrite", "--min-confidence", "high"],
        ["rewrite", "--no-such-option"],
        ["no-such-command"],
    ],
)
def test_usage_errors_exit_1(fake_model, args):
    result = run(args, input="x")
    assert result.exit_code == 1, result.output
    assert "Usage" in result.output or "Error" in result.output


def test_invalid_utf8_names_the_file_and_byte_offset(fake_model, tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("Zürich ok\n".encode() + "Genève".encode("latin-1"))
    result = run(["rewrite", str(path)])
    assert result.exit_code == 2
    assert f"{path} is not valid UTF-8: byte 0xe8 at byte offset 14" in result.output
    stdin = run(["rewrite"], input=b"ab\xff")
    assert stdin.exit_code == 2 and "<stdin> is not valid UTF-8: byte 0xff at byte offset 2" in stdin.output


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be", "utf-32", "utf-8-sig"])
def test_a_file_with_a_byte_order_mark_is_read_as_convert_reads_it(fake_model, tmp_path, codec):
    path = tmp_path / "bom.txt"
    data = TEXT.encode(codec)
    if codec == "utf-16-be":
        data = b"\xfe\xff" + data
    path.write_bytes(data)
    result = run(["rewrite", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == swap_oracle(TEXT).encode()


def test_a_bad_utf16_file_names_the_byte(fake_model, tmp_path):
    path = tmp_path / "odd.txt"
    path.write_bytes(b"\xff\xfeh\x00\x00\xdc")  # a lone low surrogate
    result = run(["rewrite", str(path)])
    assert result.exit_code == 2
    assert f"{path} is not valid UTF-16-LE: byte 0x00 at byte offset 4" in result.output


def test_one_bad_file_does_not_suppress_the_others(fake_model, tmp_path):
    good, bad, other = tmp_path / "good.txt", tmp_path / "bad.txt", tmp_path / "other.txt"
    good.write_text("he mentioned\n")
    bad.write_bytes(b"caf\xe9\n")
    other.write_text("individuals\n")
    result = run(["rewrite", str(good), str(bad), str(other), str(tmp_path / "gone.txt")])
    assert result.exit_code == 2
    assert result.stdout == "he said\npeople\n"
    assert f"Error: {bad} is not valid UTF-8" in result.stderr
    assert "gone.txt" in result.stderr
    records = json.loads(run(["rewrite", "--json", str(good), str(bad)]).stdout)
    assert records[0]["text"] == "he said\n"
    assert records[1]["input"] == str(bad) and "not valid UTF-8" in records[1]["error"]


def test_missing_file_exits_2(fake_model, tmp_path):
    result = run(["rewrite", str(tmp_path / "nope.txt")])
    assert result.exit_code == 2
    assert "cannot read" in result.output and "nope.txt" in result.output


def test_model_errors_exit_2(tiny_model_dir, tmp_path, monkeypatch):
    import shutil

    folder = shutil.copytree(tiny_model_dir, tmp_path / "model")
    (folder / "model.safetensors").unlink()
    result = run(["rewrite", "--model", str(folder)], input="text")
    assert result.exit_code == 2
    assert "has no model.safetensors" in result.output
    monkeypatch.setattr(rewrite.restorer, "DEFAULT_MODEL", tmp_path / "absent")
    result = run(["rewrite"], input="text")
    assert result.exit_code == 2
    assert "the default model is missing" in result.output


def test_empty_and_whitespace_input(fake_model):
    assert run(["rewrite"], input="").stdout == ""
    assert run(["rewrite"], input=" \n\t\n").stdout == " \n\t\n"


def test_main_entry_point_exit_codes(fake_model, monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["unspin", "rewrite", "--json", "--diff"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    monkeypatch.setattr("sys.argv", ["unspin", "--help"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 0
    assert "rewrite" in capsys.readouterr().out


def test_backend_option_reaches_the_library(monkeypatch):
    asked = []

    def from_pretrained(path=None, backend="auto", config=None, mode="auto"):
        asked.append(backend)
        return Restorer(SwapBackend(), config)

    monkeypatch.setattr(Restorer, "from_pretrained", staticmethod(from_pretrained))
    assert run(["rewrite"], input="x").exit_code == 0
    for name in ("torch", "torch-greedy", "ct2", "ct2-float32", "auto"):
        result = run(["rewrite", "--backend", name], input="Rubio mentioned it.")
        assert result.exit_code == 0 and result.stdout == "Rubio said it."
    assert asked == ["auto", "torch", "torch-greedy", "ct2", "ct2-float32", "auto"]
    result = run(["rewrite", "--backend", "tpu"], input="x")
    assert result.exit_code == 1 and "tpu" in result.output


def test_convert_backend_option_reaches_every_worker(monkeypatch, tmp_path):
    import rewrite.convert.cli
    from rewrite.convert import RestorerFactory, Summary

    seen = []

    def convert_files(sources, config, factory):
        seen.append(factory)
        return Summary(total=0)

    monkeypatch.setattr(rewrite.convert.cli, "convert_files", convert_files)
    (tmp_path / "a.txt").write_text("x")
    args = ["convert", str(tmp_path / "a.txt"), "--out", str(tmp_path / "out")]
    assert run(args).exit_code == 0
    assert run(args + ["--backend", "torch"]).exit_code == 0
    assert seen == [RestorerFactory(None, "auto"), RestorerFactory(None, "torch")]
    result = run(args + ["--backend", "tpu"])
    assert result.exit_code == 1 and "tpu" in result.output

    calls = []

    def from_pretrained(path=None, backend="auto", config=None, threads=0, mode="auto"):
        calls.append((path, backend, threads, mode))
        return "restorer"

    monkeypatch.setattr(Restorer, "from_pretrained", staticmethod(from_pretrained))
    assert RestorerFactory("m", "ct2", threads=1)() == "restorer"
    assert RestorerFactory("m")() == "restorer"
    assert RestorerFactory("m", mode="fast")() == "restorer"
    assert calls == [("m", "ct2", 1, "auto"), ("m", "auto", 0, "auto"), ("m", "auto", 0, "fast")]


def test_help_names_the_shipped_models_own_threshold(monkeypatch, tmp_path):
    shipped = json.loads((rewrite.restorer.DEFAULT_MODEL / "finder.json").read_text())["min_confidence"]
    fast = json.loads((rewrite.restorer.DEFAULT_MODEL / "restorer.json").read_text())["min_confidence"]
    assert f"{shipped:g} for the shipped model ({fast:g} with --mode fast)" in " ".join(
        run(["rewrite", "--help"]).output.split())
    # read from the folder when the help is shown, not from a copy made when the code was written
    (tmp_path / "restorer.json").write_text(json.dumps({"min_confidence": 0.37}))
    monkeypatch.setattr(rewrite.restorer, "DEFAULT_MODEL", tmp_path)
    assert "0.37 for the shipped model" in " ".join(run(["rewrite", "--help"]).output.split())
