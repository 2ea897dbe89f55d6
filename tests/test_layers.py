"""Layers only point down (infra -> encoders -> heads -> evaluation -> app), no head imports
another head, and no module imports one that imports it back (directly or in a longer cycle).

The graph is read from the source (``ast``), every ``import`` counted, also those inside
functions: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ROOTS = {"embedsuite": REPO / "core", "embedsuite.app": REPO / "apps"}

#: rank of each part; an import may only go to the same or a lower rank
RANKS = {
    "embedsuite.app": 4,
    "embedsuite.evaluation": 3,
    "embedsuite.heads": 2,
    "embedsuite.bias": 2,  # probes over encoders and heads' data
    "embedsuite.explain": 2,
    "embedsuite.encoders": 1,
    "embedsuite.index": 1,
    "embedsuite.shards": 1,
    "embedsuite.scale": 1,
    "embedsuite.testing": 1,
}
HEAD_PACKAGES = ("qa", "recommend", "sentiment", "translation")


def _modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for prefix, root in ROOTS.items():
        for f in root.rglob("*.py"):
            rel = f.relative_to(root).with_suffix("").parts
            if prefix == "embedsuite" and rel[:1] == ("app",):
                continue
            name = ".".join((prefix, *rel)).removesuffix(".__init__")
            mods[name] = f
    return mods


def _resolve(name: str, mods: dict[str, Path]) -> str | None:
    while name:
        if name in mods:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph() -> dict[str, set[str]]:
    """Module -> the embedsuite modules it imports (anywhere in its body)."""
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        deps: set[str] = set()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base
                                                                              else []))
                targets = [f"{base}.{a.name}" for a in node.names] + [base]
            for t in targets:
                if t.startswith("embedsuite"):
                    hit = _resolve(t, mods)
                    if hit and hit != name:
                        deps.add(hit)
        graph[name] = deps
    return graph


def _rank(module: str) -> int:
    best = ("", 0)
    for prefix, r in RANKS.items():
        if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best[0]):
            best = (prefix, r)
    return best[1]


def _head_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[:2] == ["embedsuite", "heads"] and len(parts) > 2 and parts[2] in HEAD_PACKAGES:
        return parts[2]
    return None


GRAPH = import_graph()


def test_the_graph_sees_the_packages() -> None:
    assert {"embedsuite.heads.base", "embedsuite.app.cli", "embedsuite.evaluation.harness"} \
        <= set(GRAPH)
    assert "embedsuite.heads.base" in GRAPH["embedsuite.heads.qa.head"]


def test_imports_only_point_down() -> None:
    up = sorted(f"{a} ({_rank(a)}) -> {b} ({_rank(b)})" for a, deps in GRAPH.items()
                for b in deps if _rank(b) > _rank(a))
    assert not up, "imports that point up a layer:\n" + "\n".join(up)


def test_no_head_imports_another_head_or_the_evaluation() -> None:
    bad = sorted(f"{a} -> {b}" for a, deps in GRAPH.items() for b in deps
                 if _head_of(a) and ((_head_of(b) and _head_of(b) != _head_of(a))
                                     or b.startswith("embedsuite.evaluation")))
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("module", ["embedsuite.heads.base", "embedsuite.encoders.base"])
def test_base_modules_do_not_import_their_own_package(module: str) -> None:
    pkg = module.rpartition(".")[0]
    assert pkg not in GRAPH[module]


def test_no_import_cycles() -> None:
    """Tarjan's strongly connected components: every component is a single module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(GRAPH.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)
