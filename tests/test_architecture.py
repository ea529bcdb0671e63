"""The module structure stays acyclic: no fastgru module imports (at module level or inside a function)
one that imports it back, directly or through others. A cycle makes import order matter and lets
layering rules (kernels below ops below layers; io never importing models) erode unseen."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "fastgru"


def _modules() -> dict[str, Path]:
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = path
    return mods


def _imports(name: str, path: Path, mods: dict) -> set[str]:
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in mods]
            targets = subs + ([target] if len(subs) < len(node.names) else [])
        else:
            continue
        for t in targets:
            while t and t not in mods:
                t = t.rpartition(".")[0]
            if t and t != name and t.startswith("fastgru"):
                found.add(t)
    return found


def _cycles(graph: dict) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
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
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    mods = _modules()
    graph = {name: _imports(name, path, mods) for name, path in mods.items()}
    assert _cycles(graph) == []


def test_io_imports_no_concrete_layer_or_model_module():
    """io finds layers through the registry and models through the registry's model classes."""
    mods = _modules()
    concrete = {m for m in mods if m.startswith("fastgru.layers.") and m not in
                ("fastgru.layers.base", "fastgru.layers.registry", "fastgru.layers.build_settings")} | {
        "fastgru.models", "fastgru.functional"}  # (build_settings: the thread settings of a build, no layer)
    for name, path in mods.items():
        if name.startswith("fastgru.io"):
            assert not (_imports(name, path, mods) & concrete), name


def test_kernels_import_nothing_above_them():
    mods = _modules()
    for name, path in mods.items():
        if name.startswith("fastgru._kernels"):
            assert all(t.startswith("fastgru._kernels") for t in _imports(name, path, mods)), name
