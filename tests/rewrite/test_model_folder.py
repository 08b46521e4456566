"""The shared model-folder helpers, and the shape of the package's imports."""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

from rewrite.model_folder import cache_root, file_sha256

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
