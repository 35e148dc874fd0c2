"""Mutants of a reference solution: small, plausible mistakes made on purpose.

A grader is sharp when it fails wrong work. The examples in ``examples/<name>/`` are the
mistakes course staff thought of; mutation analysis adds the ones nobody thought of. Each
mutant is the reference with exactly one edit of the kinds students make:

- ``binop``: an arithmetic operator flipped (``+``/``-``, ``*``/``/``, ``**``/``*``);
- ``compare``: a comparison off by its boundary or negated (``<``/``<=``, ``==``/``!=``);
- ``off_by_one``: an integer constant plus one (indices, dims, ``range`` bounds);
- ``swap_args``: the first two positional arguments of a call swapped;
- ``drop_term``: ``a + b`` or ``a - b`` replaced by ``a``;
- ``negate``: a unary minus dropped;
- ``detach``: ``.detach()`` added to what a function annotated to return a Tensor returns.

Docstrings, annotations, f-strings and ``raise`` statements are never mutated: an edit there
changes only a message or nothing at all. Mutants are drawn deterministically (a seeded
shuffle, round-robin over the operators so that one frequent operator does not crowd out the
rest) and each one compiles. A mutant that survives every check is not necessarily a gap: it
may be equivalent to the reference (an edit in dead code, or in a value that cancels out), so
the audit lists survivors for a person to judge.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import random
from collections.abc import Collection, Iterator

OPERATORS = ("binop", "compare", "off_by_one", "swap_args", "drop_term", "negate", "detach")

_BINOP_FLIP: dict[type, type] = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
    ast.Pow: ast.Mult, ast.FloorDiv: ast.Mult,
}
_COMPARE_FLIP: dict[type, type] = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
    ast.In: ast.NotIn, ast.NotIn: ast.In,
}
_SYMBOL: dict[type, str] = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**", ast.FloorDiv: "//",
    ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
    ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in",
}


@dataclasses.dataclass(frozen=True)
class Mutant:
    """One edited copy of the reference."""

    id: str  # "m03"
    operator: str  # one of OPERATORS
    line: int  # line of the edit in the original source
    function: str  # the enclosing function or class ("<module>" at top level)
    description: str  # e.g. "line 88 in nt_xent_loss: `a + b` -> `a - b`"
    source: str  # the whole mutated module


@dataclasses.dataclass(frozen=True)
class _Site:
    operator: str
    index: int  # the index-th site of this operator in walk order
    top: str = ""  # the top-level function or class holding it ("<module>" outside any)


class _Mutator(ast.NodeTransformer):
    """Walks a module in a fixed order, counting the sites of every operator; when ``target``
    is given, applies that one edit and records what it did."""

    def __init__(self, target: _Site | None = None) -> None:
        self.target = target
        self.counts: dict[str, int] = dict.fromkeys(OPERATORS, 0)
        self.done: tuple[int, str, str] | None = None  # (line, function, what)
        self.found: list[_Site] = []  # every site, in walk order (when counting)
        self._scope: list[str] = []
        self._tensor_return: list[bool] = []

    # -- places never mutated ------------------------------------------------------------
    def visit_Raise(self, node: ast.Raise) -> ast.AST:
        return node

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        if node.value is not None:
            node.value = self.visit(node.value)
        return node

    def visit_Expr(self, node: ast.Expr) -> ast.AST:
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return node  # a docstring
        return self.generic_visit(node)

    def _visit_scope(self, node: ast.AST, name: str, tensor_return: bool) -> ast.AST:
        self._scope.append(name)
        self._tensor_return.append(tensor_return)
        for field in ("body", "decorator_list"):  # not args/returns: defaults aside, annotations
            setattr(node, field, [self.visit(n) for n in getattr(node, field)])
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            node.args.defaults = [self.visit(d) for d in node.args.defaults]
        self._scope.pop()
        self._tensor_return.pop()
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        returns = ast.unparse(node.returns) if node.returns is not None else ""
        return self._visit_scope(node, node.name, "Tensor" in returns and "|" not in returns
                                 and "tuple" not in returns)

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        return self._visit_scope(node, node.name, False)

    # -- sites ---------------------------------------------------------------------------------
    def _hit(self, operator: str) -> bool:
        index = self.counts[operator]
        self.counts[operator] += 1
        if self.target is None:
            self.found.append(_Site(operator, index, self._scope[0] if self._scope else
                                    "<module>"))
            return False
        return self.done is None and (self.target.operator, self.target.index) == (
            operator, index)

    def _record(self, node: ast.AST, what: str) -> None:
        where = self._scope[-1] if self._scope else "<module>"
        self.done = (getattr(node, "lineno", 0), where, what)

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        before = ast.unparse(node)
        if type(node.op) in _BINOP_FLIP and self._hit("binop"):
            new = _BINOP_FLIP[type(node.op)]
            self._record(node, f"`{_SYMBOL[type(node.op)]}` -> `{_SYMBOL[new]}` in `{before}`")
            node.op = new()
            return node
        if isinstance(node.op, ast.Add | ast.Sub) and self._hit("drop_term"):
            self._record(node, f"`{before}` -> `{ast.unparse(node.left)}`")
            return node.left
        return self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        before = ast.unparse(node)
        for i, op in enumerate(node.ops):
            if type(op) in _COMPARE_FLIP and self._hit("compare"):
                new = _COMPARE_FLIP[type(op)]
                self._record(node, f"`{_SYMBOL[type(op)]}` -> `{_SYMBOL[new]}` in `{before}`")
                node.ops[i] = new()
                return node
        return self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        value = node.value
        if type(value) is int and self._hit("off_by_one"):
            self._record(node, f"`{value}` -> `{value + 1}`")
            return ast.copy_location(ast.Constant(value + 1), node)
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        positional = [a for a in node.args if not isinstance(a, ast.Starred)]
        if len(positional) >= 2 and len(positional) == len(node.args) and \
                ast.dump(node.args[0]) != ast.dump(node.args[1]) and self._hit("swap_args"):
            before = ast.unparse(node)
            node.args[0], node.args[1] = node.args[1], node.args[0]
            self._record(node, f"`{before}` -> `{ast.unparse(node)}`")
            return node
        return self.generic_visit(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        if isinstance(node.op, ast.USub) and self._hit("negate"):
            self._record(node, f"`{ast.unparse(node)}` -> `{ast.unparse(node.operand)}`")
            return node.operand
        return self.generic_visit(node)

    def visit_Return(self, node: ast.Return) -> ast.AST:
        if node.value is not None and self._tensor_return and self._tensor_return[-1] and \
                self._hit("detach"):
            before = ast.unparse(node.value)
            node.value = ast.Call(ast.Attribute(node.value, "detach", ast.Load()), [], [])
            self._record(node, f"`return {before}` -> `return ({before}).detach()`")
            return ast.fix_missing_locations(node)
        return self.generic_visit(node)


def _sites(tree: ast.Module) -> list[_Site]:
    counter = _Mutator()
    counter.visit(copy.deepcopy(tree))
    return counter.found


def _apply(tree: ast.Module, site: _Site) -> tuple[str, tuple[int, str, str]] | None:
    mutator = _Mutator(site)
    mutated = ast.fix_missing_locations(mutator.visit(copy.deepcopy(tree)))
    if mutator.done is None:
        return None
    source = ast.unparse(mutated)
    try:
        compile(source, "<mutant>", "exec")
    except (SyntaxError, ValueError):
        return None
    return source, mutator.done


def _round_robin(sites: list[_Site], seed: int) -> Iterator[_Site]:
    """Every operator's sites shuffled, then taken one operator at a time in turn."""
    rng = random.Random(seed)
    queues = {op: [s for s in sites if s.operator == op] for op in OPERATORS}
    for queue in queues.values():
        rng.shuffle(queue)
    order = [op for op in OPERATORS if queues[op]]
    rng.shuffle(order)
    while any(queues[op] for op in order):
        for op in order:
            if queues[op]:
                yield queues[op].pop()


def _top_level_names(tree: ast.Module) -> set[str]:
    return {n.name for n in tree.body
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)}


def count_sites(source: str) -> dict[str, int]:
    """How many places each operator could edit in ``source``."""
    counter = _Mutator()
    counter.visit(ast.parse(source))
    return dict(counter.counts)


def generate_mutants(source: str, budget: int, seed: int = 0,
                     only: Collection[str] = ()) -> list[Mutant]:
    """Up to ``budget`` distinct compiling mutants of ``source``, the same ones for the same
    source, budget and seed. ``only``: names of top-level functions/classes to mutate (the
    code whose exact behaviour the checks pin); empty for the whole module."""
    if budget < 0:
        raise ValueError(f"budget must be >= 0, got {budget}")
    tree = ast.parse(source)
    sites = _sites(tree)
    if only:
        missing = set(only) - {s.top for s in sites} - _top_level_names(tree)
        if missing:
            raise ValueError(f"nothing named {sorted(missing)} at the top level of the source")
        sites = [s for s in sites if s.top in set(only)]
    original = ast.unparse(tree)
    mutants: list[Mutant] = []
    seen = {original}
    for site in _round_robin(sites, seed):
        if len(mutants) >= budget:
            break
        applied = _apply(tree, site)
        if applied is None or applied[0] in seen:
            continue
        text, (line, function, what) = applied
        seen.add(text)
        mutants.append(Mutant(
            id=f"m{len(mutants) + 1:02d}", operator=site.operator, line=line,
            function=function, description=f"line {line} in {function}: {what}", source=text))
    return mutants
