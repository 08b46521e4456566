"""Draw the import graph of the product packages and report its cycles.

    $ python research/import_graph.py                 # cycles (none: exit 0), one line each
    $ python research/import_graph.py --dot > g.dot   # the graph for Graphviz: dot -Tsvg g.dot

Every ``import`` and ``from ... import`` in ``rewrite``, ``training``, ``service`` and ``unspin``
counts, also those inside functions (a lazy import is still a dependency a reader must follow);
an edge joins two modules of these packages. A cycle is a strongly connected component of more
than one module (Tarjan's algorithm), printed as its modules in order.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rewrite", "training", "service", "unspin")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The modules of ``modules`` that the file at ``path`` imports (absolute or relative)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # "rewrite.lm.load_model" -> "rewrite.lm"
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """``{module: modules it imports}`` over the product packages."""
    files = [p for pkg in PACKAGES for p in sorted((root / pkg).rglob("*.py"))]
    modules = {module_name(p) for p in files}
    graph = {module_name(p): imports_of(p, modules) for p in files}
    for module, deps in graph.items():  # importing a.b.c runs a and a.b first: not a cycle of ours
        parents = {module.rsplit(".", k)[0] for k in range(1, module.count(".") + 1)}
        deps -= parents
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dot", action="store_true", help="print the graph in Graphviz's dot language")
    args = parser.parse_args()
    graph = import_graph()
    if args.dot:
        print("digraph imports {\n  rankdir=LR;")
        for module in sorted(graph):
            for dep in sorted(graph[module]):
                print(f'  "{module}" -> "{dep}";')
        print("}")
    found = cycles(graph)
    edges = sum(len(d) for d in graph.values())
    print(f"{len(graph)} modules, {edges} imports, {len(found)} cycles", file=sys.stderr)
    for component in found:
        print("cycle: " + " <-> ".join(component), file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
