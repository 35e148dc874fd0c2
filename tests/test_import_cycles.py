"""Do the engine's modules import each other in a circle?

Every ``import`` of a ``torchgrade`` module counts, wherever it stands: at the top, inside a
function (where a circle can hide: it works until someone moves the import up) or under
``if TYPE_CHECKING``. A submodule's own package ``__init__`` is not counted as an import of it
(Python runs it first anyway). The walk reads source with ``ast``; nothing is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def module_names(src: Path, package: str) -> dict[str, Path]:
    """Every module of ``package`` under ``src``: dotted name -> file."""
    out = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports(modules: dict[str, Path], package: str) -> dict[str, set[str]]:
    """Which modules of ``modules`` each one imports (``from a import b`` names the module
    ``a.b`` where there is one, else ``a``)."""

    def known(name: str) -> str:
        while name not in modules and "." in name:
            name = name.rsplit(".", 1)[0]
        return name if name in modules else ""

    graph = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {known(a.name) for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the module's package, up level - 1
                    here = name.split(".") if is_package else name.split(".")[:-1]
                    here = here[:len(here) - node.level + 1]
                    base = ".".join(here + ([base] if base else []))
                if base.split(".")[0] != package:
                    continue
                found |= {known(f"{base}.{a.name}") for a in node.names}
        graph[name] = {m for m in found if m and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_engine_has_no_import_cycle():
    """No torchgrade module reaches itself through its imports, function-level ones too."""
    graph = imports(module_names(SRC, "torchgrade"), "torchgrade")
    assert "torchgrade.isolation.base" in graph  # the walk found the package
    assert cycles(graph) == []


def test_the_isolation_backends_share_only_base():
    """The backends import the shared pieces from ``isolation.base``, never the package's
    interface (``isolation/__init__``) that dispatches to them."""
    graph = imports(module_names(SRC, "torchgrade"), "torchgrade")
    for name, deps in graph.items():
        if name.startswith("torchgrade.isolation."):
            assert "torchgrade.isolation" not in deps, name
    assert graph["torchgrade.isolation.base"] <= {"torchgrade", "torchgrade.cputime",
                                                 "torchgrade.isolation.cgroups"}


def test_a_planted_circle_is_found(tmp_path):
    """Can the walk fail? A circle closed by a function-level import, and a relative one."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg import b\n")
    (pkg / "b.py").write_text("def f():\n    from pkg.a import x\n")
    (pkg / "sub" / "__init__.py").write_text("from . import c\n")
    (pkg / "sub" / "c.py").write_text("from .. import sub\n")
    (pkg / "d.py").write_text("import os\nfrom pkg import a\n")
    graph = imports(module_names(tmp_path, "pkg"), "pkg")
    assert sorted(cycles(graph)) == [["pkg.a", "pkg.b"], ["pkg.sub", "pkg.sub.c"]]
