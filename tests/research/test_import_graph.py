"""The import drawing of research/import_graph.py: it finds circles, and the packages have none."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _import_graph():
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "research" / "import_graph.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_product_packages_import_in_no_circle():
    tool = _import_graph()
    graph = tool.import_graph()
    assert "rewrite.restorer" in graph and "training.train" in graph["training.cli"]
    assert tool.cycles(graph) == []


def test_rewrite_imports_neither_training_nor_service():
    graph = _import_graph().import_graph()
    reached = {dep for module, deps in graph.items() if module.startswith("rewrite") for dep in deps}
    assert not {d for d in reached if d.split(".")[0] in ("training", "service")}


def test_cycles_are_found_through_relative_and_lazy_imports(tmp_path):
    tool = _import_graph()
    (tmp_path / "rewrite").mkdir()
    (tmp_path / "rewrite" / "__init__.py").write_text("")
    (tmp_path / "rewrite" / "a.py").write_text("from .b import thing\n")
    (tmp_path / "rewrite" / "b.py").write_text("def f():\n    from rewrite import c\n")
    (tmp_path / "rewrite" / "c.py").write_text("import rewrite.a\n")
    (tmp_path / "rewrite" / "d.py").write_text("from . import a\n")  # reaches the circle, is not in it
    for package in ("training", "service", "unspin"):
        (tmp_path / package).mkdir()
    tool.ROOT = tmp_path
    graph = tool.import_graph(tmp_path)
    assert graph["rewrite.d"] == {"rewrite.a"}
    assert tool.cycles(graph) == [["rewrite.a", "rewrite.b", "rewrite.c"]]
