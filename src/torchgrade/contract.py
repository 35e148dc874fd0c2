"""The student's contract: one set of rules, stated alike in the handout and the stub, each pinned
by a check.

A student works from three things: the handout (``assignments/<name>/README.md``), the stub's
signatures and docstrings, and the public checks. When they disagree the student cannot know
which is right, so ``torchgrade author build`` holds them to one contract:

- **Rule ids.** Every rule is tagged where it is stated with an id in square brackets,
  lower-case words joined by dots and hyphens, at least one dot: ``[loss.no-removed]``. The
  handout source (``solutions/<name>/handout.md``) and the stub's docstrings carry the same
  tags: a rule stated in one and missing from the other is a build error, and so is a sentence
  saying "must" or "raise" that carries no tag (a rule without an id).
- **The API reference is generated.** The ``<!-- torchgrade:api -->`` line of the handout
  source becomes the stub's signatures and defaults, its constants, and for each function the
  errors its docstring's ``Raises:`` section lists (one tag per case), so the handout and the
  stub cannot drift there. A signature quoted in a handout table (``name(arg, kw=default)``)
  must use the stub's parameter names and defaults.
- **Checks name the rules they pin**: ``@check(..., rules=("loss.no-removed",))``, read here
  from the grader's syntax tree. A check naming a rule the handout does not state is a build
  error; a rule no check names is a problem of ``torchgrade audit`` (:func:`rule_table`).
- **Local feedback for everything graded**: every function, class and method the stub leaves
  to the student (its body raises ``NotImplementedError``) is called by at least one public
  check, or the build fails.

The stub's docstrings are Google-style for errors::

    Raises:
        ValueError: ``x`` is not 3-D [masking.x-rank]; ``mask_ratio`` is not in [0, 1)
            [masking.ratio-range].
        RuntimeError: the index is empty [search.empty-index].

Each ``;``-separated case carries its tag.
"""

from __future__ import annotations

import ast
import dataclasses
import re
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from torchgrade.public_grader import declared_checks, split_grader

if TYPE_CHECKING:
    from torchgrade.assignment import Assignment

RULE = re.compile(r"\[([a-z][a-z0-9-]*(?:\.[a-z0-9-]+)+)\]")
API_MARKER = "<!-- torchgrade:api -->"
# Put on the line before a ```python block of a handout that is deliberately not runnable on
# its own (tests/test_handout_snippets.py runs every other one against the reference).
FRAGMENT_MARKER = "<!-- torchgrade:fragment -->"
# Words that make a sentence a rule: such a sentence must carry a rule id. An exception's
# name counts ("ValueError naming the argument"), so that no error escapes the API reference.
RULE_WORDS = re.compile(r"\b((?i:must|raises?|raising)|[A-Z]\w*Error)\b")
# Methods that need no public check of their own: the class's being built and called is one.
_IMPLIED = frozenset({"__init__", "forward", "__call__"})

Where = Literal["handout", "stub"]


@dataclasses.dataclass(frozen=True)
class Rule:
    id: str
    text: str  # the sentence that states it, tags removed
    where: Where  # where it is stated first: the handout, or (an error case) only the stub


@dataclasses.dataclass(frozen=True)
class Raises:
    exception: str  # "ValueError"
    text: str  # the docstring's cases, tags included


@dataclasses.dataclass(frozen=True)
class StubDef:
    """A function, class or method of the stub."""

    name: str  # "patchify", "Critic", "CLIPImageSearchEngine.build_index"
    kind: Literal["function", "class", "method"]
    signature: str  # "patchify(imgs: Tensor, patch_size: int) -> Tensor"
    summary: str  # the docstring's first paragraph
    raises: tuple[Raises, ...]
    written: bool  # the student writes it: the stub raises NotImplementedError in it
    params: tuple[tuple[str, str | None], ...]  # (name, default source) without self
    bases: str = ""  # a class's base classes, as written


@dataclasses.dataclass(frozen=True)
class Constant:
    name: str
    value: str  # its source
    comment: str  # the comment on its line


@dataclasses.dataclass(frozen=True)
class Api:
    module_doc: str
    defs: tuple[StubDef, ...]
    constants: tuple[Constant, ...]
    docstrings: tuple[tuple[str, str], ...]  # (where, docstring) of the module and every def


@dataclasses.dataclass(frozen=True)
class CheckRules:
    name: str
    visibility: str
    kind: str
    profiles: tuple[str, ...]
    rules: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class RuleRow:
    """One row of the audit's rule table: a rule and the checks that pin it."""

    id: str
    text: str
    where: Where
    checks: tuple[str, ...]  # every check naming it, in grader order
    public: bool  # a public check pins it (students get local feedback on it)


# -- the stub --------------------------------------------------------------------------------
def stub_api(source: str) -> Api:
    """The stub's constants, functions, classes and methods, with their docstrings parsed."""
    tree = ast.parse(source)
    lines = source.splitlines()
    defs: list[StubDef] = []
    constants: list[Constant] = []
    docstrings: list[tuple[str, str]] = [("module", ast.get_docstring(tree) or "")]
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            if len(names) == 1 and names[0].isupper() and not names[0].startswith("_") \
                    and node.value is not None:
                line = lines[node.lineno - 1]
                comment = line.split("#", 1)[1].strip() if "#" in line[
                    (node.value.end_col_offset or 0):] else ""
                constants.append(Constant(names[0], ast.get_source_segment(source, node.value)
                                          or "", comment))
        elif isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            defs.append(_def(node, node.name, "function", source))
            docstrings.append((node.name, ast.get_docstring(node) or ""))
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            class_defs, class_docs = _class(node, source)
            defs += class_defs
            docstrings += class_docs
    return Api(ast.get_docstring(tree) or "", tuple(defs), tuple(constants), tuple(docstrings))


def _class(node: ast.ClassDef, source: str
           ) -> tuple[list[StubDef], list[tuple[str, str]]]:
    """A class (its constructor's signature and errors) and its public methods, with the
    docstrings of all of them (``__init__``'s included)."""
    nodes = [m for m in node.body if isinstance(m, ast.FunctionDef)
             and (not m.name.startswith("_") or m.name == "__init__")]
    methods = [_def(m, f"{node.name}.{m.name}", "method", source) for m in nodes]
    init = next((m for m in methods if m.name.endswith(".__init__")), None)
    init_node = next((n for n in nodes if n.name == "__init__"), None)
    doc = ast.get_docstring(node) or ""
    params = _arglist(init_node.args, source, method=True) if init_node is not None else \
        _fields(node)
    cls = StubDef(name=node.name, kind="class", signature=f"{node.name}({params})",
                  summary=_summary(doc),
                  raises=_raises(doc) + (init.raises if init is not None else ()),
                  written=any(m.written for m in methods),
                  params=init.params if init is not None else (),
                  bases=", ".join(ast.unparse(b) for b in node.bases))
    docs = [(node.name, doc)] + [(m.name, ast.get_docstring(n) or "")
                                 for m, n in zip(methods, nodes, strict=True)]
    return [cls] + [m for m in methods if not m.name.endswith(".__init__")], docs


def _fields(node: ast.ClassDef) -> str:
    """A dataclass's constructor parameters: its annotated fields (``rank: int, path: str``)."""
    if not any("dataclass" in ast.unparse(d) for d in node.decorator_list):
        return ""
    return ", ".join(f"{f.target.id}: {ast.unparse(f.annotation)}" + (
        f" = {ast.unparse(f.value)}" if f.value is not None else "") for f in node.body
        if isinstance(f, ast.AnnAssign) and isinstance(f.target, ast.Name))


def _arglist(args: ast.arguments, source: str, *, method: bool) -> str:
    """The parameters as written: ``x: Tensor, lr: float = 1e-4, *, steps: int``."""
    def one(a: ast.arg, default: ast.expr | None) -> str:
        text = a.arg + (f": {ast.unparse(a.annotation)}" if a.annotation is not None else "")
        if default is not None:
            value = ast.get_source_segment(source, default) or ast.unparse(default)
            text += f" = {value}" if a.annotation is not None else f"={value}"
        return text

    positional = [*args.posonlyargs, *args.args]
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    parts = [one(a, d) for a, d in zip(positional, defaults, strict=True)]
    if method and parts and positional[0].arg == "self":
        parts = parts[1:]
    if args.vararg is not None:
        parts.append(f"*{args.vararg.arg}")
    elif args.kwonlyargs:
        parts.append("*")
    parts += [one(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)]
    if args.kwarg is not None:
        parts.append(f"**{args.kwarg.arg}")
    return ", ".join(parts)


def _def(node: ast.FunctionDef, name: str, kind: Literal["function", "method"],
         source: str) -> StubDef:
    args = node.args
    params: list[tuple[str, str | None]] = []
    positional = [*args.posonlyargs, *args.args]
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    for a, d in zip(positional, defaults, strict=True):
        params.append((a.arg, ast.unparse(d) if d is not None else None))
    for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        params.append((a.arg, ast.unparse(d) if d is not None else None))
    if kind == "method" and params and params[0][0] == "self":
        params = params[1:]
    arglist = _arglist(node.args, source, method=kind == "method")
    signature = f"{name.rsplit('.', 1)[-1]}({arglist})" + (
        f" -> {ast.unparse(node.returns)}" if node.returns is not None else "")
    written = any(isinstance(n, ast.Raise) and n.exc is not None and "NotImplementedError" in
                  ast.unparse(n.exc) for n in ast.walk(node))
    doc = ast.get_docstring(node) or ""
    return StubDef(name, kind, signature, _summary(doc), _raises(doc), written, tuple(params))


def _summary(doc: str) -> str:
    return " ".join(doc.strip().split("\n\n", 1)[0].split())


def _raises(doc: str) -> tuple[Raises, ...]:
    """The entries of a docstring's ``Raises:`` section."""
    out: list[Raises] = []
    lines = doc.splitlines()
    for i, line in enumerate(lines):
        if line.strip() != "Raises:":
            continue
        base = len(line) - len(line.lstrip())
        entry: list[str] = []
        exc = ""
        for follow in lines[i + 1:]:
            indent = len(follow) - len(follow.lstrip())
            if not follow.strip() or indent <= base:
                break
            m = re.match(r"^\s*([A-Z]\w*(?:Error|Exception|Warning)):\s*(.*)$", follow)
            if m and (not entry or indent <= _first_indent(lines, i)):
                if exc:
                    out.append(Raises(exc, " ".join(entry)))
                exc, entry = m[1], [m[2].strip()]
            else:
                entry.append(follow.strip())
        if exc:
            out.append(Raises(exc, " ".join(entry)))
    return tuple(out)


def _malformed_raises(doc: str) -> list[str]:
    """The entries of ``Raises:`` sections not written ``SomeError: the cases [ids]``."""
    bad = []
    lines = doc.splitlines()
    for i, line in enumerate(lines):
        if line.strip() != "Raises:":
            continue
        first = _first_indent(lines, i)
        for follow in lines[i + 1:]:
            indent = len(follow) - len(follow.lstrip())
            if not follow.strip() or indent <= len(line) - len(line.lstrip()):
                break
            if indent == first and not re.match(
                    r"^\s*[A-Z]\w*(?:Error|Exception|Warning):\s", follow):
                bad.append(follow.strip())
    return bad


def _first_indent(lines: list[str], header: int) -> int:
    nxt = lines[header + 1] if header + 1 < len(lines) else ""
    return len(nxt) - len(nxt.lstrip())


def _without_raises(doc: str) -> str:
    """The docstring with its ``Raises:`` section left out."""
    lines = doc.splitlines()
    out: list[str] = []
    skipping, base = False, 0
    for line in lines:
        if line.strip() == "Raises:":
            skipping, base = True, len(line) - len(line.lstrip())
            continue
        if skipping and line.strip() and len(line) - len(line.lstrip()) > base:
            continue
        skipping = False
        out.append(line)
    return "\n".join(out)


# -- the handout -----------------------------------------------------------------------------
def api_reference(a: Assignment, api: Api) -> str:
    """The handout's generated API reference (markdown)."""
    out = ["## API reference", "", textwrap.fill(
        f"Generated from the stub `{a.module}.py` by `torchgrade author build`: its signatures "
        "and defaults, its constants, and every error each function raises, with the id of "
        "each rule (the checks name the rules they pin).", width=95)]
    if api.constants:
        out += ["", "Constants:", ""]
        out += [f"- `{c.name} = {c.value}`" + (f": {c.comment}" if c.comment else "")
                for c in api.constants]
    for d in api.defs:
        if d.kind == "method":
            out += ["", _fill(f"- `{_wrap_signature(d.signature, 4)}`"
                              + (f": {d.summary}" if d.summary else ""), "  ")]
            out += [_fill(f"- raises `{r.exception}`: {r.text}", "    ", "  ") for r in d.raises]
            continue
        kind = f" (class, a subclass of `{d.bases}`)" if d.bases else \
            " (class)" if d.kind == "class" else ""
        out += ["", f"### `{d.name}`{kind}", "", f"`{_wrap_signature(d.signature, 1)}`"]
        if d.summary:
            out += ["", _fill(d.summary)]
        out += [line for r in d.raises
                for line in ("", _fill(f"Raises `{r.exception}`: {r.text}"))]
        if d.kind == "class" and any(m.name.startswith(f"{d.name}.") for m in api.defs):
            out += ["", "Methods:"]
    return "\n".join(out).rstrip() + "\n"


def _fill(text: str, indent: str = "", first: str = "") -> str:
    return textwrap.fill(text, width=95, initial_indent=first, subsequent_indent=indent,
                         break_on_hyphens=False, break_long_words=False)


def _wrap_signature(signature: str, indent: int) -> str:
    """A long signature broken after commas (a code span may span lines in markdown)."""
    if len(signature) + indent + 2 <= 95:
        return signature
    lines, current = [], ""
    for part in _split_args_keep(signature):
        if current and len(current) + len(part) + indent + 2 > 95:
            lines.append(current.rstrip())
            current = "    "
        current += part
    lines.append(current)
    return "\n".join(lines)


def _split_args_keep(text: str) -> list[str]:
    """``text`` cut after each top-level comma (the commas and spaces kept)."""
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += ch in "([{"
        depth -= ch in ")]}"
        current += ch
        if ch == "," and depth == 1:
            parts.append(current + " ")
            current = ""
        elif ch == " " and current == " ":
            current = ""
    parts.append(current)
    return parts


def render(a: Assignment, text: str, stub: str) -> str:
    """The handout source with the generated API reference in place of :data:`API_MARKER`."""
    if API_MARKER not in text:
        return text
    return text.replace(API_MARKER, api_reference(a, stub_api(stub)).rstrip())


def handout(a: Assignment, stub: str | None = None) -> str:
    """The handout students get, from its source: the table of training-check budgets
    (``torchgrade.budgets``) and the API reference put in place of their markers."""
    from torchgrade import budgets

    text = budgets.render_handout(a, handout_source(a).read_text(encoding="utf-8"))
    return render(a, text, stub if stub is not None else stub_text(a))


def _prose(markdown: str) -> list[tuple[str, str]]:
    """``(section heading, block)`` for every paragraph, list item and table row outside
    code fences and HTML comments."""
    text = re.sub(r"<!--.*?-->", "", markdown, flags=re.DOTALL)
    blocks: list[tuple[str, str]] = []
    heading, current, fenced = "", [], False

    def flush() -> None:
        if current:
            blocks.append((heading, " ".join(s.strip() for s in current)))
            current.clear()

    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            flush()
            fenced = not fenced
            continue
        if fenced:
            continue
        if line.startswith("#"):
            flush()
            heading = line.lstrip("#").strip()
            continue
        if not line.strip():
            flush()
            continue
        if re.match(r"^\s*([-*]|\d+\.)\s", line) or line.lstrip().startswith("|"):
            flush()
        current.append(line)
    flush()
    return blocks


def _sentences(block: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?:])\s+(?=[A-Z`*(\[\"]|\d+\.)", block) if s.strip()]


def _rules_in(text: str) -> list[tuple[str, str]]:
    """``(id, sentence)`` for every tag in a text, in order."""
    found = []
    for heading, block in _prose(text):
        del heading
        for sentence in _sentences(block):
            start = 0
            for m in _tags(sentence):
                part = _clause(sentence[start:m.start()])
                # A tag right after another (or after a stub of a clause) shares its sentence.
                found.append((m[1], _clean(part if len(part) >= 25 else sentence)))
                start = m.end()
    return found


def _tags(text: str) -> list[re.Match]:
    """The rule tags of ``text``, leaving out those inside code spans (a tag quoted as an
    example, like `[area.what]`, states no rule)."""
    spans = [m.span() for m in re.finditer(r"`[^`]*`", text)]
    return [m for m in RULE.finditer(text)
            if not any(a <= m.start() < b for a, b in spans)]


def _clause(text: str) -> str:
    """The words a tag closes: what follows the previous tag, without the joining words."""
    text = re.sub(r"^[\s,;:.)]+", "", text)
    return re.sub(r"^(and|or|then|but)\s+", "", text).strip()


def _clean(sentence: str) -> str:
    text = re.sub(r"\s*" + RULE.pattern, "", sentence).strip()
    text = re.sub(r"^([-*]|\d+\.)\s+", "", text)
    return text if len(text) <= 240 else text[:237].rsplit(" ", 1)[0] + " ..."


def _untagged(text: str, where: str) -> list[str]:
    """Sentences that state a rule ("must", "raises") without an id, and bullets of a
    conventions section without one."""
    out = []
    for heading, block in _prose(text):
        if block.lstrip().startswith("|"):
            continue  # a table row: names and summaries
        bullet = bool(re.match(r"^([-*]|\d+\.)\s", block))
        if bullet and "convention" in heading.lower() and not _tags(block):
            out.append(f"{where}: a convention without a rule id: {_short(block)!r}")
            continue
        for sentence in _sentences(block):
            if RULE_WORDS.search(sentence) and not _tags(sentence):
                out.append(f"{where}: a rule without an id (tag it like [area.what]): "
                           f"{_short(sentence)!r}")
    return out


def _short(text: str) -> str:
    return text if len(text) <= 100 else text[:97] + "..."


def _signature_drift(text: str, api: Api) -> list[str]:
    """Signatures quoted in the handout's tables that the stub does not have."""
    params = {d.name.rsplit(".", 1)[-1]: d.params for d in api.defs}
    params |= {d.name: d.params for d in api.defs}
    out = []
    for heading, block in _prose(text):
        del heading
        if not block.lstrip().startswith("|"):
            continue
        for span in re.findall(r"`([^`]+)`", block):
            m = re.match(r"^([A-Za-z_][\w.]*)\(", span)  # not `class X(Base)`
            inside = _balanced(span[m.end():]) if m is not None else None
            if m is None or inside is None or m[1] not in params:
                continue
            known = dict(params[m[1]])
            for arg in _split_args(inside):
                name, _, default = (p.strip() for p in arg.partition("="))
                name = name.split(":", 1)[0].strip()  # `t: int` names t
                if name in ("*", "…", "...", "") or name.startswith("*"):
                    continue
                if name not in known:
                    out.append(f"handout: `{span}` names a parameter {name!r} the stub's "
                               f"{m[1]} does not have ({', '.join(known) or 'none'})")
                elif default and default not in ("…", "...") and known[name] is not None \
                        and _norm(default) != _norm(known[name]):
                    out.append(f"handout: `{span}` gives {name} the default {default}, the "
                               f"stub {known[name]}")
    return out


def _balanced(text: str) -> str | None:
    """What comes before the parenthesis closing an opened one (None: it never closes)."""
    depth = 1
    for i, ch in enumerate(text):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if depth == 0:
            return text[:i]
    return None


def _split_args(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    # "x [N,L,D]" (a shape after the name) keeps only the name
    return [re.sub(r"\s*\[.*$", "", p).strip() for p in parts if p.strip()]


def _norm(src: str) -> str:
    try:
        return ast.unparse(ast.parse(src, mode="eval"))
    except SyntaxError:
        return src.strip()


# -- the checks ------------------------------------------------------------------------------
def check_rules(a: Assignment) -> list[CheckRules]:
    """Every check of the grader with the rules it names, read from its syntax tree."""
    return [CheckRules(name=node.name, visibility=kw.get("visibility", "hidden"),
                       kind=kw.get("kind", ""), profiles=tuple(kw.get("profiles", ("cpu", "gpu"))),
                       rules=tuple(kw.get("rules", ())))
            for node, kw in declared_checks(a.grader_dir)]


def public_names(a: Assignment) -> set[str]:
    """Attribute names and strings the public checks (and the helpers they use) mention."""
    names: set[str] = set()
    for path in sorted(a.grader_dir.glob("test_*.py")):
        split = split_grader(path.read_text(encoding="utf-8"), path.name, a.name)
        if not split.public:
            continue
        for node in ast.walk(ast.parse(split.source)):
            if isinstance(node, ast.Attribute):
                names.add(node.attr)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names |= {node.value, *node.value.split(".")}  # "Class.method" names both
    return names


# -- the contract ----------------------------------------------------------------------------
def handout_source(a: Assignment) -> Path:
    return a.root / "solutions" / a.name / "handout.md"


def stub_text(a: Assignment) -> str:
    from torchgrade.markers import split_solution

    return split_solution(a.solution_file.read_text(encoding="utf-8"),
                          a.solution_file.relative_to(a.root)).stub


def rules(a: Assignment, handout: str | None = None, stub: str | None = None
          ) -> dict[str, Rule]:
    """Every rule of the assignment by id: the handout's, in order, then the error cases that
    only the stub's ``Raises:`` sections state (they reach the handout as its API reference)."""
    handout = handout if handout is not None else handout_source(a).read_text(encoding="utf-8")
    api = stub_api(stub if stub is not None else stub_text(a))
    out: dict[str, Rule] = {}
    for rid, sentence in _rules_in(handout):
        out.setdefault(rid, Rule(rid, sentence, "handout"))
    for d in api.defs:
        for r in d.raises:
            for case in r.text.split(";"):
                for m in RULE.finditer(case):
                    out.setdefault(m[1], Rule(m[1], f"{d.name} raises {r.exception}: "
                                              f"{_clean(case).rstrip('.')}", "stub"))
    return out


def problems(a: Assignment, handout: str | None = None, stub: str | None = None) -> list[str]:
    """What breaks the contract (empty when nothing does): each a line naming the file."""
    hsrc = handout_source(a)
    where_h = hsrc.relative_to(a.root).as_posix()
    where_s = a.solution_file.relative_to(a.root).as_posix()
    handout = handout if handout is not None else hsrc.read_text(encoding="utf-8")
    stub = stub if stub is not None else stub_text(a)
    api = stub_api(stub)
    out: list[str] = []
    if API_MARKER not in handout:
        out.append(f"{where_h}: no {API_MARKER} line, where `author build` writes the API "
                   "reference generated from the stub")
    out += [f"{where_h}: {p.removeprefix('handout: ')}" for p in _untagged(handout, "handout")]
    out += [f"{where_h}: {p.removeprefix('handout: ')}" for p in _signature_drift(handout, api)]
    in_handout = {rid for rid, _ in _rules_in(handout)}
    in_raises: set[str] = set()
    for d in api.defs:
        for r in d.raises:
            for case in r.text.split(";"):
                tags = RULE.findall(case)
                if not tags:
                    out.append(f"{where_s}: {d.name}'s Raises: case without a rule id: "
                               f"{_short(case.strip())!r}")
                in_raises |= set(tags)
    for where, doc in api.docstrings:
        for entry in _malformed_raises(doc):
            out.append(f"{where_s}: {where}'s Raises: entry is not 'SomeError: the cases "
                       f"[rule.ids]': {_short(entry)!r}")
        body = _without_raises(doc)
        for problem in _untagged(body, f"the stub's {where} docstring"):
            out.append(f"{where_s}: {problem}")
        for rid, _ in _rules_in(body):
            if rid not in in_handout:
                out.append(f"{where_s}: rule [{rid}] is stated in the stub ({where}) but not "
                           f"in the handout {where_h}")
    in_docs = {rid for _, doc in api.docstrings for rid, _ in _rules_in(_without_raises(doc))}
    for rid in sorted(in_handout - in_docs - in_raises):
        out.append(f"{where_h}: rule [{rid}] is stated in the handout but not in the stub's "
                   "docstrings")
    known = rules(a, handout, stub)
    for c in check_rules(a):
        for rid in c.rules:
            if rid not in known:
                out.append(f"graders/{a.name}: {c.name} names rule [{rid}], which neither the "
                           "handout nor the stub states")
    mentioned = public_names(a)
    for d in api.defs:
        short = d.name.rsplit(".", 1)[-1]
        if not d.written or short in _IMPLIED or short in mentioned:
            continue
        what = {"function": "function", "class": "class", "method": "method"}[d.kind]
        out.append(f"graders/{a.name}: no public check calls {d.name} (a {what} students "
                   "write): they get no local feedback on it; add a public check, at least a "
                   "shape or smoke check")
    return out


def rule_table(a: Assignment) -> tuple[tuple[RuleRow, ...], tuple[str, ...]]:
    """The rules with the checks that pin them, and the checks that pin no rule."""
    checks = check_rules(a)
    rows = []
    for rule in rules(a).values():
        pinning = [c for c in checks if rule.id in c.rules]
        rows.append(RuleRow(rule.id, rule.text, rule.where, tuple(c.name for c in pinning),
                            any(c.visibility == "public" for c in pinning)))
    return tuple(rows), tuple(c.name for c in checks if not c.rules)
