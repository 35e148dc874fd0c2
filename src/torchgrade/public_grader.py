"""The public half of a grader file, for the student template.

A grader file (``graders/<name>/test_<name>.py``) holds public and hidden checks side by side.
Students get only the checks marked ``@check(..., visibility="public")`` and the module-level
names those need, found on the syntax tree: imports, constants and helpers referenced
transitively from the public checks (decorators and defaults included). Every other check, and
every name only hidden checks use, stays behind. A public check that needs a hidden check, or a
module-level statement the split cannot judge, is refused with a ``GraderSplitError``.
"""

from __future__ import annotations

import ast
import dataclasses
import sys
from pathlib import Path
from typing import Any

from torchgrade.markers import bound_alias


class GraderSplitError(ValueError):
    """A grader file whose public checks cannot be separated from its hidden ones."""


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    visibility: str
    lines: tuple[int, int]  # first (decorators included) and last line, 1-based
    points: float
    profiles: tuple[str, ...]
    fixtures: tuple[str, ...]  # the fixtures (arguments) it asks for: student, budget, ...


@dataclasses.dataclass(frozen=True)
class PublicGrader:
    source: str  # the public-only grader file
    public: tuple[Check, ...]
    hidden: tuple[Check, ...]
    kept_names: frozenset[str]  # module-level names the public file keeps


def check_visibility(node: ast.AST) -> str | None:
    """``"public"``/``"hidden"`` for a function decorated with ``@check(...)``, else None."""
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return None
    for dec in node.decorator_list:
        if isinstance(dec, ast.Call) and _name(dec.func) == "check":
            for kw in dec.keywords:
                if kw.arg == "visibility":
                    if not isinstance(kw.value, ast.Constant):
                        raise GraderSplitError(f"line {node.lineno}: {node.name}'s visibility "
                                               "must be a literal string")
                    return str(kw.value.value)
            return "hidden"  # @check's default
    return None


def check_arguments(node: ast.AST) -> dict[str, Any] | None:
    """The literal keyword arguments of a function's ``@check(...)`` decorator (one computed
    from names, such as ``catches=`` built from constants, is left out), or None when the
    node is not a check. Read from the syntax tree: nothing of the grader runs."""
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return None
    for dec in node.decorator_list:
        if isinstance(dec, ast.Call) and _name(dec.func) == "check":
            out = {}
            for kw in dec.keywords:
                try:
                    out[kw.arg] = ast.literal_eval(kw.value)
                except ValueError:
                    continue
            return out
    return None


def declared_checks(grader_dir: Path) -> list[tuple[ast.FunctionDef, dict[str, Any]]]:
    """Every check of the grader files ``grader_dir/test_*.py``, in file order, with the
    literal arguments of its ``@check`` (:func:`check_arguments`)."""
    found = []
    for path in sorted(grader_dir.glob("test_*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8"), str(path)).body:
            args = check_arguments(node)
            if args is not None:
                found.append((node, args))
    return found


def _points_profiles(node: ast.AST) -> tuple[float, tuple[str, ...]]:
    """``points=`` and ``profiles=`` of a check's decorator (literals; defaults as @check's)."""
    args = check_arguments(node) or {}
    return float(args.get("points", 0.0)), tuple(args.get("profiles", ("cpu", "gpu")))


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def bound_names(node: ast.stmt) -> set[str]:
    """The module-level names a statement binds (none for an expression)."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {node.name}
    if isinstance(node, ast.Import | ast.ImportFrom):
        return {bound_alias(a) for a in node.names}
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, ast.AnnAssign | ast.AugAssign):
        targets = [node.target]
    return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}


def _uses(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def split_grader(source: str, path: Path | str = "<grader>", title: str = "") -> PublicGrader:
    tree = ast.parse(source)
    lines = source.splitlines()
    binders: dict[str, list[int]] = {}  # name -> indices of the statements binding it
    checks: dict[int, Check] = {}
    for i, node in enumerate(tree.body):
        if i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the module docstring: replaced
        if not isinstance(node, ast.Import | ast.ImportFrom | ast.FunctionDef |
                          ast.AsyncFunctionDef | ast.ClassDef | ast.Assign | ast.AnnAssign):
            raise GraderSplitError(f"{path}:{node.lineno}: a module-level "
                                   f"{type(node).__name__} statement: the public grader cannot "
                                   "tell whether public checks need it (move it into a "
                                   "function or a constant)")
        for name in bound_names(node):
            binders.setdefault(name, []).append(i)
        vis = check_visibility(node)
        if vis is not None:
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])  # type: ignore[attr-defined]
            checks[i] = Check(node.name, vis, (first, node.end_lineno or node.lineno),  # type: ignore[attr-defined]
                              *_points_profiles(node),
                              tuple(a.arg for a in node.args.args))  # type: ignore[attr-defined]
    public = [i for i, c in checks.items() if c.visibility == "public"]
    hidden = {i for i, c in checks.items() if c.visibility != "public"}
    keep: set[int] = set()
    todo = list(public)
    while todo:
        i = todo.pop()
        if i in keep:
            continue
        keep.add(i)
        node = tree.body[i]
        for name in sorted(_uses(node) - bound_names(node) if not isinstance(
                node, ast.Import | ast.ImportFrom) else set()):
            for j in binders.get(name, []):
                if j in hidden:
                    raise GraderSplitError(
                        f"{path}:{node.lineno}: {getattr(node, 'name', 'this statement')} "
                        f"(needed by a public check) uses {name!r}, which is a hidden check: "
                        "move what they share into a helper function")
                todo.append(j)
    keep |= {i for i, node in enumerate(tree.body)
             if isinstance(node, ast.ImportFrom) and node.module == "__future__"}
    kept_names: set[str] = set()
    parts: list[str] = []
    for i in sorted(keep):
        node = tree.body[i]
        if isinstance(node, ast.Import | ast.ImportFrom) and not _is_future(node):
            needed = [a for a in node.names if bound_alias(a) in _needed_by(tree, keep, i)]
            if not needed:
                continue
            node.names = needed
            parts.append(_unparse_import(node))
            kept_names |= {bound_alias(a) for a in needed}
            continue
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        parts.append("\n".join(lines[first - 1:node.end_lineno]))
        kept_names |= bound_names(node)
    name = title or Path(path).stem.removeprefix("test_")
    header = (f'"""Public checks of {name}: the ones `torchgrade check {name}` runs.\n\n'
              "Generated by `torchgrade author build` from the course's grader. The hidden "
              'checks that\nalso grade your work are not here.\n"""')
    text = header + "\n\n" + _join(parts) + "\n"
    return PublicGrader(
        source=text, public=tuple(checks[i] for i in sorted(public)),
        hidden=tuple(checks[i] for i in sorted(hidden)), kept_names=frozenset(kept_names))


def _unparse_import(node: ast.Import | ast.ImportFrom) -> str:
    """One line when it fits in 100 characters, else one name per line (isort's style)."""
    line = ast.unparse(node)
    if len(line) <= 100 or isinstance(node, ast.Import):
        return line
    names = [ast.unparse(a) for a in node.names]
    return f"from {node.module} import (\n" + "".join(f"    {n},\n" for n in names) + ")"


def _is_future(node: ast.stmt) -> bool:
    return isinstance(node, ast.ImportFrom) and node.module == "__future__"


def _needed_by(tree: ast.Module, keep: set[int], skip: int) -> set[str]:
    used: set[str] = set()
    for i in keep:
        node = tree.body[i]
        if i != skip and not isinstance(node, ast.Import | ast.ImportFrom):
            used |= _uses(node)
    return used


def _join(parts: list[str]) -> str:
    """Imports in one block, grouped into isort's sections; two blank lines around each
    definition, one between constants, like the grader files themselves."""
    out: list[str] = []
    previous = ""
    for part in parts:
        kind = _kind(part)
        if previous:
            if kind == previous == "import":
                out.append("\n\n" if _section(out[-1]) != _section(part) else "\n")
            elif kind == previous == "const":
                out.append("\n")
            elif previous == "import" and kind == "const":
                out.append("\n\n")
            else:
                out.append("\n\n\n")
        out.append(part)
        previous = kind
    return "".join(out)


def _kind(part: str) -> str:
    if part.startswith(("import ", "from ")):
        return "import"
    if part.startswith(("def ", "async def ", "class ", "@")):
        return "def"
    return "const"


def _section(import_line: str) -> int:
    """isort's sections: __future__, the standard library, third party, first party."""
    module = import_line.split()[1].split(".")[0]
    if module == "__future__":
        return 0
    if module in sys.stdlib_module_names:
        return 1
    return 3 if module == "torchgrade" else 2
