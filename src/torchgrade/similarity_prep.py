"""What the similarity pass leaves out of a submission before it is fingerprinted.

``copydetect`` (the fingerprinting library :mod:`torchgrade.similarity` uses) already sees
through renaming (its pygments tokenizer turns every identifier into one letter), comments and
whitespace (dropped) and the order of functions (winnowed fingerprints do not depend on where
code sits). Two disguises get past it, and measurably (``benchmarks/RESULTS.md``, "Similarity
report"): **docstrings** are kept as one string token each, so a copy whose docstrings were
deleted or added differs from its source there; and **dead code** sprinkled between the copied
statements breaks every fingerprint that spans it, so a copy with an unused statement after
every line shares almost no fingerprint with its source.

So, before fingerprinting, :func:`blank` replaces with spaces (keeping every newline, so that
positions in the text still point into the original and the pair pages can highlight the
original code):

- docstrings, and any other statement that is a bare constant or name (``"..."``, ``42``, ``x``);
- ``pass``;
- statements after a ``return``, ``raise``, ``continue`` or ``break`` in the same block;
- ``if``/``while`` blocks whose condition is a false constant (``if False:``, ``if 0:``);
- assignments to plain names that nothing in the module ever reads;
- functions and classes that nothing in the module refers to, except the contract's names
  (the stub's top-level names, passed as ``keep``) and methods (called by frameworks:
  ``forward``);

repeatedly, until nothing more is dead (an unused value computed from another unused value
goes too). All of it is decided from the syntax tree of the text (:mod:`ast`), never by running
anything. Honest code loses little to this (a leftover unused variable); code that does not
parse (a notebook cell with IPython syntax that slipped through) is compared as it is.

Not seen through, and said so in the report's method note: dead code made to look live (an
unused value folded into a live one, ``x = x + 0 * unused``), statements reordered inside a
function, and code rewritten by hand (a loop for a comprehension, another formula).
"""

from __future__ import annotations

import ast
import io
import tokenize
from collections.abc import Iterable

# Statements after which the rest of their block never runs.
_JUMPS = (ast.Return, ast.Raise, ast.Continue, ast.Break)


def _false_constant(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and not node.value


def _assigned_names(stmt: ast.stmt) -> list[str] | None:
    """The plain names an assignment binds, or None when it binds anything else (an attribute,
    a subscript: those have effects outside the name)."""
    if isinstance(stmt, ast.Assign):
        targets = stmt.targets
    elif isinstance(stmt, ast.AnnAssign | ast.AugAssign):
        targets = [stmt.target]
    else:
        return None
    names: list[str] = []
    for target in targets:
        parts = target.elts if isinstance(target, ast.Tuple | ast.List) else [target]
        for part in parts:
            if not isinstance(part, ast.Name):
                return None
            names.append(part.id)
    return names


def _bodies(node: ast.AST) -> Iterable[list[ast.stmt]]:
    for field in ("body", "orelse", "finalbody"):
        value = getattr(node, field, None)
        if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
            yield value
    for handler in getattr(node, "handlers", ()) or ():
        yield handler.body
    for case in getattr(node, "cases", ()) or ():
        yield case.body


class _Dead:
    """One round of finding dead statements, given those already found."""

    def __init__(self, tree: ast.Module, keep: frozenset[str], dead: set[int]):
        self.keep = keep
        self.dead = dead  # id() of statements already left out
        self.loads: set[str] = set()
        self.attributes: set[str] = set()
        self._collect(tree)

    def _collect(self, node: ast.AST) -> None:
        """Every name read, and every attribute name used, outside the dead statements."""
        if id(node) in self.dead:
            return
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Store):
            self.loads.add(node.id)
        elif isinstance(node, ast.Attribute):
            self.attributes.add(node.attr)
        elif isinstance(node, ast.Global | ast.Nonlocal):
            self.loads.update(node.names)  # shared with another scope: assume it is read
        for child in ast.iter_child_nodes(node):
            self._collect(child)

    def used(self, name: str) -> bool:
        return (name in self.loads or name in self.keep or name in self.attributes
                or name.startswith("__"))

    def statements(self, body: list[ast.stmt], in_class: bool) -> list[ast.stmt]:
        """Statements of ``body`` that are dead now."""
        found: list[ast.stmt] = []
        for i, stmt in enumerate(body):
            if id(stmt) in self.dead:
                continue
            if i and isinstance(body[i - 1], _JUMPS):
                found.extend(s for s in body[i:] if id(s) not in self.dead)
                break
            if self._dead(stmt, in_class):
                found.append(stmt)
        return found

    def _dead(self, stmt: ast.stmt, in_class: bool) -> bool:
        if isinstance(stmt, ast.Pass):
            return True
        if isinstance(stmt, ast.Expr):
            return isinstance(stmt.value, ast.Constant | ast.Name)
        if isinstance(stmt, ast.If | ast.While):
            return _false_constant(stmt.test) and not stmt.orelse
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            return not in_class and not stmt.decorator_list and not self.used(stmt.name)
        names = _assigned_names(stmt)
        if names is None or in_class:
            return False
        return not any(self.used(n) for n in names)


def dead_statements(tree: ast.Module, keep: frozenset[str]) -> list[ast.stmt]:
    """Every statement :func:`blank` leaves out (see the module docstring), found round after
    round until a round finds nothing new."""
    dead: set[int] = set()
    found: list[ast.stmt] = []
    for _ in range(50):  # each round removes at least one statement; real code needs a few
        finder = _Dead(tree, keep, dead)
        new: list[ast.stmt] = []
        for node in ast.walk(tree):
            if id(node) in dead:
                continue
            for body in _bodies(node):
                new.extend(finder.statements(body, isinstance(node, ast.ClassDef)))
        new = [s for s in new if id(s) not in dead]
        if not new:
            break
        for stmt in new:
            dead.add(id(stmt))
            dead.update(id(n) for n in ast.walk(stmt))
        found.extend(new)
    return found


def _docstring_nodes(tree: ast.Module) -> list[ast.stmt]:
    out = []
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) \
                and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            out.append(body[0])
    return out


def _offsets(text: str) -> list[int]:
    """Character offset where each line starts (line numbers are 1-based: index 0 unused)."""
    starts = [0, 0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    return starts


def _char(lines: list[str], starts: list[int], lineno: int, col_bytes: int) -> int:
    """ast positions count UTF-8 bytes within a line; offsets into ``text`` count characters."""
    line = lines[lineno - 1] if lineno - 1 < len(lines) else ""
    return starts[lineno] + len(line.encode("utf-8")[:col_bytes].decode("utf-8", "ignore"))


def _grouping_parens(tree: ast.Module, text: str, lines: list[str],
                     starts: list[int]) -> list[int]:
    """Offsets of parentheses that only group (``x = (a\n - b)``, ``return (y)``): a
    formatter adds or drops them when it breaks long lines. A call's own parentheses stay."""
    parents = {id(c): n for n in ast.walk(tree) for c in ast.iter_child_nodes(n)}
    found: list[int] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.expr) or getattr(node, "end_lineno", None) is None:
            continue
        parent = parents.get(id(node))
        if isinstance(parent, ast.Call) and node is not parent.func \
                or isinstance(parent, ast.ClassDef):
            continue  # f(x): the parentheses are the call's
        start = _char(lines, starts, node.lineno, node.col_offset)
        end = _char(lines, starts, node.end_lineno, node.end_col_offset)
        while True:
            before, after = _skip_space(text, start - 1, -1), _skip_space(text, end, 1)
            if not (0 <= before and after < len(text) and text[before] == "("
                    and text[after] == ")"):
                break
            found += [before, after]
            start, end = before, after + 1
    return found


def _skip_space(text: str, i: int, step: int) -> int:
    while 0 <= i < len(text) and text[i] in " \t\r\n\\":
        i += step
    return i


def _trailing_commas(text: str) -> list[int]:
    """Offsets of commas just before a closing bracket (``f(a, b,)``), which a formatter adds
    when it puts one argument per line."""
    found: list[int] = []
    starts = _offsets(text)
    try:
        tokens = [t for t in tokenize.generate_tokens(io.StringIO(text).readline)
                  if t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT,
                                    tokenize.INDENT, tokenize.DEDENT)]
    except (tokenize.TokenError, SyntaxError):
        return found
    for tok, nxt in zip(tokens, tokens[1:], strict=False):
        if tok.string == "," and nxt.string in ")]}":
            found.append(starts[tok.start[0]] + tok.start[1])
    return found


def blank(text: str, keep: Iterable[str] = ()) -> str:
    """``text`` with docstrings, dead code and formatting-only tokens (grouping parentheses,
    trailing commas) replaced by spaces, newlines kept: the result has the same length and
    every position means the same place. ``text`` itself when it is not Python that parses."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return text
    lines = text.splitlines(keepends=True)
    starts = _offsets(text)
    out = list(text)
    for i in _grouping_parens(tree, text, lines, starts) + _trailing_commas(text):
        out[i] = " "
    for stmt in _docstring_nodes(tree) + dead_statements(tree, frozenset(keep)):
        first = min([stmt, *getattr(stmt, "decorator_list", [])], key=lambda n: n.lineno)
        start = _char(lines, starts, first.lineno, first.col_offset)
        end = _char(lines, starts, stmt.end_lineno or stmt.lineno, stmt.end_col_offset or 0)
        for i in range(start, min(end, len(out))):
            if out[i] not in "\r\n":
                out[i] = " "
    return "".join(out)


def contract_names(stub_text: str) -> frozenset[str]:
    """The names a submission must define (the stub's top-level functions, classes and
    assignments): never dead, though nothing in the submission calls them."""
    try:
        tree = ast.parse(stub_text)
    except SyntaxError:
        return frozenset()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif (bound := _assigned_names(node)) is not None:
            names.update(bound)
    return frozenset(names)
