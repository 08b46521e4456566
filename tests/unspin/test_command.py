"""The ``unspin`` group: lazy subcommands, the one-line hint for a missing extra, and layering."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from click.testing import CliRunner

import unspin.cli
from unspin.cli import COMMANDS, cli, missing_requirements

ROOT = Path(__file__).resolve().parents[2]


def test_every_command_is_listed_and_loads():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    for name in COMMANDS:
        assert name in result.output
        assert CliRunner().invoke(cli, [name, "--help"]).exit_code == 0


@pytest.mark.parametrize("name, extra", [("serve", "serve"), ("build-dataset", "train"), ("train", "train"), ("evaluate", "train")])
def test_a_missing_extra_exits_2_with_one_line(monkeypatch, name, extra):
    monkeypatch.setattr(unspin.cli, "missing_requirements", lambda wanted: ["somepkg"] if wanted == extra else [])
    for args in ([name], [name, "--help"], [name, "--port", "1", "--whatever"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2, result.output
        assert result.output == f"error: unspin {name} needs the '{extra}' extra (somepkg missing): pip install 'unspin[{extra}]'\n"
    assert f"(needs unspin[{extra}])" in CliRunner().invoke(cli, ["--help"]).output


def test_missing_requirements_reads_the_installed_metadata(monkeypatch):
    import importlib.metadata

    installed = {"fastapi", "uvicorn"}
    monkeypatch.setattr(importlib.metadata, "requires", lambda _: [
        "torch==2.13.0", 'fastapi>=0.115; extra == "serve"', 'uvicorn>=0.30; extra == "serve"',
        'pydantic-settings>=2.3; extra == "serve"', 'unspin[serve,train]; extra == "all"', 'datasets>=4; extra == "train"'])

    def version(name):
        if name not in installed:
            raise importlib.metadata.PackageNotFoundError(name)
        return "1.0"

    monkeypatch.setattr(importlib.metadata, "version", version)
    assert missing_requirements("serve") == ["pydantic-settings"]
    assert missing_requirements("train") == ["datasets"]
    assert missing_requirements("all") == []


def test_the_extras_of_this_install_are_all_there():
    # The test environment installs unspin[all]; the group must not hide a command from it.
    for entry in COMMANDS.values():
        if entry.extra:
            assert missing_requirements(entry.extra) == []


def _imported_packages(folder: Path) -> set[str]:
    """Top-level packages imported anywhere in the .py files of ``folder`` (relative imports excluded)."""
    names = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def test_the_library_imports_neither_the_service_nor_the_training():
    assert not _imported_packages(ROOT / "rewrite") & {"service", "training", "unspin"}
    assert not _imported_packages(ROOT / "service") & {"training", "unspin"}
    assert not _imported_packages(ROOT / "training") & {"service", "unspin"}
