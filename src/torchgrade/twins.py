"""Degenerate twins of a stub: submissions that answer without answering.

A check whose property any constant satisfies (a symmetric loss, an invariance, inputs left
unmodified, a round trip) passes for a function that returns garbage, unless the check first
asks for evidence of a real answer. The untouched stub cannot expose such a check: it raises,
and every check fails. Its degenerate twins can. Each twin is the stub with the body of every
top-level function (public and private) replaced by one ``return`` of the same kind:

- ``none``: ``return None``;
- ``nan``: ``return torch.full((2,), float('nan'))``, a tensor of the wrong shape, all NaN;
- ``zero``: ``return torch.tensor(0.0)``, a 0-dim zero (a plausible loss that depends on
  nothing);
- ``identity``: the first positional argument handed back unchanged (``None`` for a function
  without one): an "identity patchify", a sampler returning its model.

Classes keep the stub's behaviour (their methods are left alone), and so do the stub's
imports and module constants, so that a twin imports exactly as the stub does. Docstrings and
signatures stay; decorators stay. ``torchgrade audit`` grades the four twins as students
``twin-<kind>`` and calls any point they earn a problem: the design's "Fairness: not a
non-answer".
"""

from __future__ import annotations

import ast
import dataclasses

KINDS = ("none", "nan", "zero", "identity")
# The NaN and zero twins build tensors through their own import, so that a stub that imports
# only ``from torch import Tensor`` (or binds ``torch`` to something else) still works.
_TORCH = "_twin_torch"
_RETURNS: dict[str, str] = {
    "none": "None",
    "nan": f"{_TORCH}.full((2,), float('nan'))",
    "zero": f"{_TORCH}.tensor(0.0)",
}


@dataclasses.dataclass(frozen=True)
class Twin:
    """One degenerate copy of the stub."""

    kind: str  # one of KINDS
    student: str  # "twin-<kind>", the student name the audit grades it under
    rewritten: tuple[str, ...]  # the top-level functions whose body was replaced, in order
    description: str  # e.g. "every top-level function returns None (f, g)"
    source: str  # the whole twin module


_DESCRIPTIONS = {
    "none": "returns None",
    "nan": "returns torch.full((2,), nan)",
    "zero": "returns torch.tensor(0.0)",
    "identity": "returns its first positional argument unchanged",
}


def _first_positional(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    positional = [*node.args.posonlyargs, *node.args.args]
    return positional[0].arg if positional else None


def _body(node: ast.FunctionDef | ast.AsyncFunctionDef, kind: str) -> list[ast.stmt]:
    """The docstring (if any) and a single ``return`` of ``kind``."""
    if kind == "identity":
        value = _first_positional(node) or "None"
    else:
        value = _RETURNS[kind]
    keep: list[ast.stmt] = []
    if ast.get_docstring(node, clean=False) is not None:
        keep.append(node.body[0])
    return [*keep, ast.parse(f"return {value}").body[0]]


def _import_position(tree: ast.Module) -> int:
    """Where the twin's own ``import torch`` goes: after the module docstring and any
    ``from __future__`` import (which must come first)."""
    position = 0
    for i, node in enumerate(tree.body):
        is_doc = i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) \
            and isinstance(node.value.value, str)
        is_future = isinstance(node, ast.ImportFrom) and node.module == "__future__"
        if is_doc or is_future:
            position = i + 1
    return position


def make_twin(source: str, kind: str) -> Twin:
    """The ``kind`` twin of the stub ``source``; raises ValueError for an unknown kind, a
    source that does not parse, or a twin that would not compile."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ValueError(f"the stub does not parse: {exc}") from exc
    rewritten = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            node.body = _body(node, kind)
            rewritten.append(node.name)
    if _TORCH in _RETURNS.get(kind, "") and rewritten:  # nan, zero: their own torch import
        tree.body.insert(_import_position(tree), ast.parse(f"import torch as {_TORCH}").body[0])
    text = ast.unparse(ast.fix_missing_locations(tree))
    try:
        compile(text, f"<twin-{kind}>", "exec")
    except (SyntaxError, ValueError) as exc:  # not expected from a stub that parsed
        raise ValueError(f"the {kind} twin does not compile: {exc}") from exc
    names = ", ".join(rewritten) or "no top-level function"
    return Twin(kind=kind, student=f"twin-{kind}", rewritten=tuple(rewritten),
                description=f"every top-level function {_DESCRIPTIONS[kind]} ({names})",
                source=text)


def generate_twins(source: str, kinds: tuple[str, ...] = KINDS) -> list[Twin]:
    """The twins of the stub ``source``, one per kind, in the order given."""
    return [make_twin(source, kind) for kind in kinds]
