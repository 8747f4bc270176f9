"""Dependencies flow one way. The import graph of the package is read from its source (module-level
and function-level imports alike: a lazy import is still a dependency) and must have no circle, and
no module may import a layer above its own."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "src" / "cotdistill"

# Lowest first. A module may import its own layer or any below it; the first matching prefix wins.
LAYERS: list[tuple[str, ...]] = [
    ("cotdistill", "errors", "registry", "io", "dist", "hub", "packaged", "settings", "progress"),
    ("tasks", "segments", "hf"),
    ("students",),
    ("methods", "teachers", "curate", "evaluate"),
    ("config",),
    ("checks", "runs", "report"),
    ("pipeline",),
    ("serve", "unseen", "cli"),
]


def modules(root: Path = ROOT) -> dict[str, tuple[Path, bool]]:
    """{dotted name: (file, is package)} of every module under `root`."""
    out = {}
    for f in root.rglob("*.py"):
        parts = list(f.relative_to(root.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (f, is_pkg)
    return out


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """{module: modules of the package it imports}. `from . import x` depends on the submodule x
    (not on the package's __init__); `from . import name` on the module that defines the name.
    The parent packages Python runs first are not counted: every submodule has them."""
    mods = modules(root)

    def known(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for mod, (path, is_pkg) in mods.items():
        deps: set[str | None] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                deps |= {known(a.name) for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
                if node.level:
                    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    prefix = ".".join(base[:len(base) - node.level + 1] + ([node.module] if node.module else []))
                else:
                    prefix = node.module or ""
                deps |= {known(f"{prefix}.{a.name}") if f"{prefix}.{a.name}" in mods else known(prefix)
                         for a in node.names}
        graph[mod] = {d for d in deps if d and d != mod}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        found.append(sorted(comp))
    return found


def layer_of(module: str) -> int:
    name = module.removeprefix("cotdistill.") if module != "cotdistill" else "cotdistill"
    for i, prefixes in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return i
    raise AssertionError(f"{module} is in no layer of tests/unit/test_architecture.py: add it to LAYERS")


def test_the_package_has_no_import_circle():
    found = circles(import_graph())
    assert not found, "import circles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_no_module_imports_a_layer_above_its_own():
    graph = import_graph()
    upward = sorted(f"{m} (layer {layer_of(m)}) imports {d} (layer {layer_of(d)})"
                    for m, deps in graph.items() for d in deps if layer_of(d) > layer_of(m))
    assert not upward, "\n".join(upward)


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "cotdistill"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.mark.parametrize("files, circle", [
    # a function-level import closes a circle as much as a module-level one
    ({"__init__.py": "", "a.py": "from .b import x\n", "b.py": "def f():\n    from .a import y\n"},
     ["cotdistill.a", "cotdistill.b"]),
    # a submodule importing a name its package's __init__ defines, while the __init__ imports it
    ({"__init__.py": "", "t/__init__.py": "from .m import g\ndef helper(): ...\n", "t/m.py": "from . import helper\n"},
     ["cotdistill.t", "cotdistill.t.m"]),
    # an absolute import across three modules
    ({"__init__.py": "", "a.py": "import cotdistill.b\n", "b.py": "from cotdistill import c\n", "c.py": "from .a import z\n"},
     ["cotdistill.a", "cotdistill.b", "cotdistill.c"]),
])
def test_the_circle_finder_finds_circles(tmp_path, files, circle):
    assert circles(import_graph(_package(tmp_path, files))) == [circle]


def test_the_circle_finder_accepts_a_submodule_imported_by_its_package(tmp_path):
    root = _package(tmp_path, {"__init__.py": "", "t/__init__.py": "from .m import g\n",
                               "t/m.py": "from . import k\n", "t/k.py": "x = 1\n"})
    assert circles(import_graph(root)) == []
    assert import_graph(root)["cotdistill.t.m"] == {"cotdistill.t.k"}
