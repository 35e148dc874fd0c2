"""Planted copies: an honest submission under each of the usual disguises.

Each disguise is a function from a submission's source to a copy of it that still runs
(deterministic, standard library only, plus ``ruff format`` for the reformatting). They are
what a student who copied would do to hide it; ``tests/test_similarity.py`` checks that the
similarity pass flags every one against its source, and ``benchmarks/similarity_scale.py``
uses them to make a class of 300.

- ``renamed``: every local variable, loop variable, helper function and helper parameter gets
  another name (the contract's names and keyword arguments stay: the grader calls them);
- ``reordered``: the functions and classes of every run of definitions in reverse order, and
  the methods of every class too (``__init__`` first);
- ``recommented``: every comment deleted, every docstring rewritten, new comments added;
- ``reformatted``: ``ruff format`` at 50 columns with single quotes (calls exploded over
  several lines with trailing commas, other line breaks and quotes);
- ``dead_code``: unused helper functions between the definitions and an unused statement
  after every statement of every function;
- ``everything``: all of the above, one after the other.
"""

from __future__ import annotations

import ast
import builtins
import io
import keyword
import re
import shutil
import subprocess
import sys
import tokenize
from pathlib import Path

_WORDS = ("val", "tmp", "item", "buf", "acc", "res", "cur", "aux", "part", "thing", "obj",
          "elem", "data", "blob", "out", "q", "w", "u")


# -- renamed -----------------------------------------------------------------------------------
def _renameable(tree: ast.Module, keep: frozenset[str]) -> list[str]:
    keywords = {k.arg for k in ast.walk(tree) if isinstance(k, ast.keyword) and k.arg}
    imported = {(a.asname or a.name).split(".")[0] for n in ast.walk(tree)
                if isinstance(n, ast.Import | ast.ImportFrom) for a in n.names}
    contract_params: set[str] = set()
    methods: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            methods.update(n.name for n in node.body if isinstance(n, ast.FunctionDef))
            for n in node.body:  # a class's attributes (dataclass fields) are its contract
                if isinstance(n, ast.AnnAssign | ast.Assign):
                    contract_params.update(
                        t.id for t in ast.walk(n) if isinstance(t, ast.Name))
        if isinstance(node, ast.FunctionDef) and (node.name in keep or node.name in methods):
            contract_params.update(a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg))
    bound: dict[str, None] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.setdefault(node.id)
        elif isinstance(node, ast.arg):
            bound.setdefault(node.arg)
        elif isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name.startswith("_") \
                and not node.name.startswith("__"):
            bound.setdefault(node.name)
    skip = (keep | keywords | imported | contract_params | methods | set(dir(builtins))
            | {"self", "cls"} | set(keyword.kwlist))
    return [n for n in bound if n not in skip and not n.startswith("__")]


def renamed(source: str, keep: frozenset[str]) -> str:
    tree = ast.parse(source)
    names = _renameable(tree, keep)
    mapping = {n: f"{_WORDS[i % len(_WORDS)]}{i}" for i, n in enumerate(names)}
    out: list[str] = []
    prev = None
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        text = tok.string
        if tok.type == tokenize.NAME and text in mapping and not (
                prev is not None and prev.type == tokenize.OP and prev.string == "."):
            text = mapping[text]
        elif tok.type == tokenize.STRING and re.match(r"(?i)[rb]*f", text):
            text = re.sub(r"\{([^{}]*)\}", lambda m: "{" + _rename_field(m[1], mapping) + "}",
                          text)
        out.append((tok.type, text, tok.start, tok.end, tok.line))
        if tok.type not in (tokenize.NL, tokenize.COMMENT, tokenize.NEWLINE):
            prev = tok
    return _untokenize(source, out)


def _rename_field(field: str, mapping: dict[str, str]) -> str:
    """An f-string replacement field with its names renamed (not its !r or :format part)."""
    cut = re.search(r"[!:]", field)
    expr, rest = (field[:cut.start()], field[cut.start():]) if cut else (field, "")
    expr = re.sub(r"(?<![.\w])([A-Za-z_]\w*)", lambda n: mapping.get(n[1], n[1]), expr)
    return expr + rest


def _untokenize(source: str, tokens: list) -> str:
    """The source with each token's text replaced, everything between tokens kept."""
    lines = source.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    pieces, at = [], 0
    for _type, text, (srow, scol), (erow, ecol), _line in tokens:
        if srow > len(lines):
            continue
        begin = starts[srow - 1] + scol
        end = starts[erow - 1] + ecol if erow <= len(lines) else len(source)
        pieces.append(source[at:begin])
        pieces.append(text)
        at = end
    pieces.append(source[at:])
    return "".join(pieces)


# -- reordered ---------------------------------------------------------------------------------
def _span(node: ast.stmt, lines: list[str]) -> tuple[int, int]:
    """0-based line range of a definition with its decorators and the comments just above."""
    first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))]) - 1
    while first > 0 and lines[first - 1].strip().startswith("#"):
        first -= 1
    return first, node.end_lineno


def _reverse_runs(body: list[ast.stmt], lines: list[str], methods: bool) -> list[str]:
    """``lines`` with every run of consecutive definitions in ``body`` reversed."""
    defs = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    runs, run = [], []
    for node in body:
        if isinstance(node, defs):
            run.append(node)
        else:
            if len(run) > 1:
                runs.append(run)
            run = []
    if len(run) > 1:
        runs.append(run)
    for run in reversed(runs):
        spans = [_span(n, lines) for n in run]
        blocks = ["".join(lines[a:b]).rstrip("\n") + "\n" for a, b in spans]
        order = list(reversed(range(len(run))))
        if methods:  # __init__ stays first
            order.sort(key=lambda i: run[i].name != "__init__")
        sep = "\n" if methods else "\n\n"
        text = sep.join(blocks[i] for i in order)
        lines[spans[0][0]:spans[-1][1]] = text.splitlines(keepends=True)
    return lines


def reordered(source: str, keep: frozenset[str] = frozenset()) -> str:
    lines = source.splitlines(keepends=True)
    tree = ast.parse(source)
    classes = sorted((n for n in tree.body if isinstance(n, ast.ClassDef)),
                     key=lambda n: -n.lineno)
    for cls in classes:  # bottom-up, so earlier line numbers stay valid
        lines = _reverse_runs(cls.body, lines, methods=True)
    source = "".join(lines)
    return "".join(_reverse_runs(ast.parse(source).body, source.splitlines(keepends=True),
                                 methods=False))


# -- recommented -------------------------------------------------------------------------------
_DOCS = ("Does the work for this step.", "Helper written for the assignment.",
         "Computes the result as required.", "See the handout for details.")


def recommented(source: str, keep: frozenset[str] = frozenset()) -> str:
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    docs = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef) and node.body \
                and isinstance(node.body[0], ast.Expr) \
                and isinstance(node.body[0].value, ast.Constant) \
                and isinstance(node.body[0].value.value, str):
            docs.append(node.body[0])
    for i, doc in enumerate(sorted(docs, key=lambda d: -d.lineno)):
        indent = lines[doc.lineno - 1][:doc.col_offset]
        lines[doc.lineno - 1:doc.end_lineno] = [f'{indent}"""{_DOCS[i % len(_DOCS)]}"""\n']
    source = "".join(lines)
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            continue
        out.append((tok.type, tok.string, tok.start, tok.end, tok.line))
    stripped = _untokenize(source, out)
    result: list[str] = []
    for line in stripped.splitlines(keepends=True):
        if not line.strip() and result and not result[-1].strip():
            continue  # a comment line removed leaves one blank line at most
        if line.strip().startswith("return "):
            result.append(line[:len(line) - len(line.lstrip())] + "# give back the answer\n")
        result.append(line.rstrip() + "\n" if line.strip() else "\n")
    return "".join(result)


# -- reformatted -------------------------------------------------------------------------------
def ruff() -> str | None:
    here = Path(sys.executable).parent / "ruff"
    return str(here) if here.is_file() else shutil.which("ruff")


def reformatted(source: str, keep: frozenset[str] = frozenset()) -> str:
    proc = subprocess.run(
        [ruff(), "format", "--isolated", "--line-length", "50", "--config",
         "format.quote-style='single'", "--stdin-filename", "copy.py", "-"],
        input=source, capture_output=True, text=True, check=True)
    return proc.stdout


# -- dead_code ---------------------------------------------------------------------------------
_DEAD_HELPER = '''

def _debug_summary{i}(values, limit={i}):
    total = 0
    for index, value in enumerate(values):
        if index > limit:
            break
        total += len(str(value))
    return total
'''


def _dead_line(i: int) -> str:
    forms = (f"unused_{i} = {i} * 2 + 1", f"_scratch{i} = [j for j in range({i % 5})]",
             f"note_{i} = str({i}).zfill(3)", f"if False:\n    print('debug', {i})")
    return forms[i % len(forms)]


def dead_code(source: str, keep: frozenset[str] = frozenset()) -> str:
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    inserts: dict[int, list[str]] = {}  # after 1-based line -> lines to insert
    count = 0
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef):
            continue
        for sub in ast.walk(node):
            for field in ("body", "orelse"):
                body = getattr(sub, field, None)
                if not (isinstance(body, list) and body and isinstance(body[0], ast.stmt)):
                    continue
                for stmt in body:
                    if stmt.lineno == sub.lineno:  # `if x: return y` on one line
                        continue
                    indent = " " * stmt.col_offset
                    text = _dead_line(count)
                    inserts.setdefault(stmt.end_lineno, []).append(
                        "".join(indent + part + "\n" for part in text.split("\n")))
                    count += 1
    top = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    for j, node in enumerate(top[::2]):
        inserts.setdefault(node.end_lineno, []).append(_DEAD_HELPER.format(i=j) + "\n")
    out = []
    for number, line in enumerate(lines, start=1):
        out.append(line if line.endswith("\n") else line + "\n")
        # the innermost block's line first: a shallower one closes that block
        out.extend(sorted(inserts.get(number, []), key=lambda t: -(len(t) - len(t.lstrip()))))
    return "".join(out)


def everything(source: str, keep: frozenset[str]) -> str:
    for step in (renamed, reordered, recommented, dead_code, reformatted):
        source = step(source, keep)
    return source


DISGUISES = {"renamed": renamed, "reordered": reordered, "recommented": recommented,
             "reformatted": reformatted, "dead_code": dead_code, "everything": everything}
