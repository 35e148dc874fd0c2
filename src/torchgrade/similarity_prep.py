"""What the similarity pass leaves out of a submission before it is fingerprinted.

``copydetect`` (the fingerprinting library :mod:`torchgrade.similarity` uses) already sees
through renaming (its pygments tokenizer turns every identifier into one letter), comments and
whitespace (dropped) and the order of functions (winnowed fingerprints do not depend on where
code sits). Two disguises get past it, measurably (``benchmarks/RESULTS.md``, "Similarity
report"): **dead code** sprinkled between the copied statements breaks every fingerprint that
spans it (copydetect alone flags none of the planted copies with an unused statement after
each line), and **reformatting** by a formatter adds the parentheses and trailing commas it uses
to break long lines (copydetect alone: 0.78-0.93 instead of 1). Docstrings are one string
token each to copydetect: a rewritten one still matches, a deleted or added one breaks the
fingerprints around it; leaving them out costs nothing.

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
- parentheses that only group (not a call's, a definition's or a subscript's) and commas just
  before a closing bracket;

the dead code repeatedly, until nothing more is dead (an unused value computed from another
unused value goes too). All of it is decided from the syntax tree and the tokens of the text
(:mod:`ast`, :mod:`tokenize`), never by running anything. Honest code loses little to this (a
leftover unused variable); code that does not parse (a notebook cell with IPython syntax that
slipped through) is compared as it is.

Not seen through, and said so on the report's pages: dead code made to look live (an unused
value folded into a live one, ``x = x + 0 * unused``), statements reordered inside a function,
and code rewritten by hand (a loop for a comprehension, another formula).
"""

from __future__ import annotations

import ast
import io
import keyword
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


def _own_names(stmt: ast.stmt) -> tuple[set[str], set[str]]:
    """The names a statement reads and the attribute names it uses, itself, without the
    statements nested in its blocks (they have their own)."""
    loads: set[str] = set()
    attributes: set[str] = set()
    if isinstance(stmt, ast.Global | ast.Nonlocal):
        loads.update(stmt.names)  # shared with another scope: assume it is read
    todo = [c for c in ast.iter_child_nodes(stmt) if not isinstance(c, ast.stmt)]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Store):
            loads.add(node.id)
        elif isinstance(node, ast.Attribute):
            attributes.add(node.attr)
        todo.extend(c for c in ast.iter_child_nodes(node) if not isinstance(c, ast.stmt))
    return loads, attributes


class _Dead:
    """Finds dead statements round after round: what a round leaves out may make more dead."""

    def __init__(self, tree: ast.Module, keep: frozenset[str]):
        self.keep = keep
        self.bodies: list[tuple[list[ast.stmt], bool]] = []  # (block, in a class body)
        for node in ast.walk(tree):
            for body in _bodies(node):
                self.bodies.append((body, isinstance(node, ast.ClassDef)))
        self.statements = [s for body, _ in self.bodies for s in body]
        self.names = {id(s): _own_names(s) for s in self.statements}
        self.dead: set[int] = set()
        self.loads: set[str] = set()
        self.attributes: set[str] = set()

    def run(self) -> list[ast.stmt]:
        found: list[ast.stmt] = []
        for _ in range(100):  # each round removes at least one statement
            live = [self.names[id(s)] for s in self.statements if id(s) not in self.dead]
            self.loads = set().union(*(loads for loads, _ in live))
            self.attributes = set().union(*(attributes for _, attributes in live))
            new = [s for body, in_class in self.bodies if not self._gone(body)
                   for s in self._dead_in(body, in_class)]
            if not new:
                break
            for stmt in new:  # and every statement nested in it
                self.dead.update(id(n) for n in ast.walk(stmt) if isinstance(n, ast.stmt))
            found.extend(new)
        return found

    def _gone(self, body: list[ast.stmt]) -> bool:
        return id(body[0]) in self.dead and all(id(s) in self.dead for s in body)

    def used(self, name: str) -> bool:
        return (name in self.loads or name in self.keep or name in self.attributes
                or name.startswith("__"))

    def _dead_in(self, body: list[ast.stmt], in_class: bool) -> list[ast.stmt]:
        """Statements of ``body`` that are dead now and were not before."""
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
    """Every statement :func:`blank` leaves out as dead (see the module docstring), found
    round after round until a round finds nothing new."""
    return _Dead(tree, keep).run()


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


def _formatting(text: str) -> list[int]:
    """Offsets of the tokens a formatter adds or drops when it breaks long lines: parentheses
    that only group (``x = (a\n - b)``, ``return (y)``: an opening one after an operator, a
    keyword or the start of a statement, never a call's or a definition's), and commas just
    before a closing bracket (``f(a, b,)``). One tokenize pass; nothing is run."""
    starts = _offsets(text)
    found: list[int] = []
    stack: list[int | None] = []  # per open bracket: its offset if it only groups
    prev = None
    skip = (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT)
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type in skip:
                continue
            at = starts[tok.start[0]] + tok.start[1]
            if tok.type == tokenize.OP and tok.string in "([{":
                groups = tok.string == "(" and not (
                    prev is not None and (prev.type in (tokenize.STRING, tokenize.NUMBER)
                                          or prev.string in ")]}" or (
                        prev.type == tokenize.NAME and not keyword.iskeyword(prev.string))))
                stack.append(at if groups else None)
            elif tok.type == tokenize.OP and tok.string in ")]}":
                if prev is not None and prev.string == ",":
                    found.append(starts[prev.start[0]] + prev.start[1])
                opened = stack.pop() if stack else None
                if opened is not None:
                    found += [opened, at]
            prev = tok
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return []
    return found


def blank(text: str, keep: Iterable[str] = (), *, dead_code: bool = True) -> str:
    """``text`` with docstrings, dead code and formatting-only tokens (grouping parentheses,
    trailing commas) replaced by spaces, newlines kept: the result has the same length and
    every position means the same place. ``text`` itself when it is not Python that parses.
    ``dead_code=False`` keeps the dead code (a handout's snippet is "dead" on its own: it
    assigns names that only the student's code around it reads)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return text
    lines = text.splitlines(keepends=True)
    starts = _offsets(text)
    out = list(text)
    for i in _formatting(text):
        out[i] = " "
    dead = dead_statements(tree, frozenset(keep)) if dead_code else []
    for stmt in _docstring_nodes(tree) + dead:
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
