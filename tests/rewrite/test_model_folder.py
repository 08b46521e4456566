"""The shared model-folder helpers, and the shape of the package's imports."""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

import pytest

from rewrite.model_folder import cache_root, file_sha256, folder_written

PACKAGE = Path(__file__).resolve().parents[2] / "rewrite"


def test_file_sha256_is_the_sha256_of_the_bytes(tmp_path):
    data = bytes(range(256)) * 5000  # more than one read block
    (tmp_path / "f").write_bytes(data)
    assert file_sha256(tmp_path / "f") == hashlib.sha256(data).hexdigest()


def test_cache_root_follows_unspin_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("UNSPIN_CACHE", str(tmp_path))
    assert cache_root() == tmp_path
    monkeypatch.setenv("UNSPIN_CACHE", "")
    assert cache_root() == Path.home() / ".cache" / "unspin"


def _imports(path: Path) -> set[str]:
    """Modules of the rewrite package that ``path`` imports anywhere (inside functions too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                names.update([node.module] if node.module else [a.name for a in node.names])
            elif node.level == 0 and (node.module or "").startswith("rewrite."):
                names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[1] for a in node.names if a.name.startswith("rewrite."))
    return {name.split(".")[0] for name in names}


def test_no_import_loops_in_the_library():
    graph = {p.stem: _imports(p) - {p.stem} for p in PACKAGE.glob("*.py")}
    graph = {name: {m for m in deps if m in graph} for name, deps in graph.items()}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(dep == goal or (dep not in seen and reaches(dep, goal, seen | {dep})) for dep in graph[start])

    loops = sorted(name for name in graph if name != "__init__" and reaches(name, name, {name}))
    assert loops == []


def test_folder_written_replaces_a_folder_whole_and_leaves_nothing_beside_it(tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    (out / "old.bin").write_text("old")
    with folder_written(out) as tmp:
        assert tmp.parent == tmp_path and tmp != out and list(tmp.iterdir()) == []
        (tmp / "new.bin").write_text("new")
        assert (out / "old.bin").read_text() == "old"  # the old folder stays until the block ends
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    assert [p.name for p in out.iterdir()] == ["new.bin"]


def test_folder_written_keeps_the_old_folder_when_the_block_fails(tmp_path):
    out = tmp_path / "sub" / "model"
    with folder_written(out) as tmp:  # the parent is made, and a first write needs no old folder
        (tmp / "a").write_text("1")
    with pytest.raises(OSError, match="disk full"):
        with folder_written(out) as tmp:
            (tmp / "a").write_text("half")
            raise OSError("disk full")
    assert [p.name for p in out.parent.iterdir()] == ["model"]
    assert (out / "a").read_text() == "1"


def test_the_model_libraries_developer_warnings_stay_off_a_users_terminal():
    import logging
    import warnings

    from transformers import AutoTokenizer

    from rewrite.model_folder import hide_developer_warnings
    from rewrite.restorer import DEFAULT_MODEL

    # Records as transformers' own handler would get them (it writes to the stderr of the moment
    # transformers was first imported, so the test listens on the logger itself).
    records: list[logging.LogRecord] = []
    listener = logging.Handler()
    listener.emit = records.append
    tokenizer_log = logging.getLogger("transformers.tokenization_utils_base")
    tokenizer_log.addHandler(listener)
    long_text = "word " * 1000  # over the tokenizer's 512 tokens
    try:
        AutoTokenizer.from_pretrained(DEFAULT_MODEL)(long_text)
        assert any("Token indices sequence length is longer" in r.getMessage() for r in records)  # what users saw
        records.clear()
        with warnings.catch_warnings(record=True) as shown:
            warnings.simplefilter("always")
            hide_developer_warnings()
            AutoTokenizer.from_pretrained(DEFAULT_MODEL)(long_text)
            warnings.warn_explicit("a deprecation for developers", FutureWarning, "x.py", 1, module="transformers.x")
    finally:
        tokenizer_log.removeHandler(listener)
    assert records == [] and shown == []
