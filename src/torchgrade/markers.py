"""Solution markers: one source file gives both the hidden reference and the student's stub.

The reference in ``solutions/<name>/<module>.py`` carries comment lines that say what the stub
keeps; being comments, they leave the reference's behaviour and syntax tree untouched (the
audit mutates it by function name, the public fixtures are computed from it). Three markers,
each a whole line (any indentation) with nothing else on it::

    # BEGIN SOLUTION      everything up to the matching END SOLUTION is left out of the stub
    # END SOLUTION
    # BEGIN STUB          every line up to END STUB is a comment ("# text" or "#") in the
    # END STUB            reference; the stub has it uncommented, at the marker's indentation
    # STUB: <code>        one line: <code> in the stub, at the marker's indentation

A typical function keeps its signature and swaps its body::

    def nt_xent_loss(z_i: Tensor, z_j: Tensor, temperature: float = 0.5) -> Tensor:
        # BEGIN SOLUTION
        \"\"\"The reference's docstring.\"\"\"
        ...
        # END SOLUTION
        # BEGIN STUB
        # \"\"\"The student's docstring.\"\"\"
        # END STUB
        # STUB: raise NotImplementedError("nt_xent_loss: not written yet")

Blocks do not nest, END closes the BEGIN of the same kind at the same indentation, and a
line that starts like a marker but is not one is refused: each mistake is a
``MarkerError`` naming ``file:line``. Imports that the stub no longer uses are dropped from
it (so the reference may import what it likes; an import line with a ``# noqa``
comment stays), and runs of blank lines left by removed
blocks are shortened to two.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

_MARKER = re.compile(r"^(?P<indent>[ \t]*)#\s*(?P<word>BEGIN|END|STUB)\b(?P<rest>.*)$")
_BLOCK = re.compile(r"^(BEGIN|END) (SOLUTION|STUB)$")


class MarkerError(ValueError):
    """A malformed solution marker: the message starts with ``file:line:``."""


@dataclasses.dataclass(frozen=True)
class SecretLine:
    """A line of the reference inside a SOLUTION block (what must never reach students)."""

    line: int  # 1-based, in the solution file
    text: str  # stripped


@dataclasses.dataclass(frozen=True)
class Split:
    """What one marked solution file gives: the stub's text and the reference-only lines."""

    stub: str
    secret: tuple[SecretLine, ...]
    public_lines: frozenset[str]  # stripped lines the stub shows (not secrets, even if equal)


def has_markers(source: str) -> bool:
    return any(_parse_marker(line) is not None for line in source.splitlines())


def _parse_marker(line: str) -> tuple[str, str] | None:
    m = _MARKER.match(line)
    if m is None:
        return None
    word, rest = m["word"], m["rest"]
    if word == "STUB" and rest.startswith(":"):
        return ("STUB:", rest[1:].strip())
    text = f"{word}{rest}".strip()
    b = _BLOCK.match(text)
    return (b[1], b[2]) if b else None


def split_solution(source: str, path: Path | str = "<solution>") -> Split:
    """The stub and the secret lines of a marked reference; MarkerError when malformed."""
    out: list[str] = []
    secret: list[SecretLine] = []
    open_kind: str | None = None
    open_indent = ""
    open_line = 0
    for number, line in enumerate(source.splitlines(), start=1):
        m = _MARKER.match(line)
        marker = _parse_marker(line) if m else None
        if m and marker is None and _looks_like_marker(m):
            raise MarkerError(f"{path}:{number}: malformed marker {line.strip()!r}; the markers "
                              "are '# BEGIN SOLUTION', '# END SOLUTION', '# BEGIN STUB', "
                              "'# END STUB' and '# STUB: <code>'")
        indent = m["indent"] if m else ""
        if marker is not None and marker[0] == "BEGIN":
            if open_kind is not None:
                raise MarkerError(f"{path}:{number}: '# BEGIN {marker[1]}' inside the "
                                  f"{open_kind} block opened at line {open_line}: blocks do "
                                  "not nest (close it with '# END " + open_kind + "' first)")
            open_kind, open_indent, open_line = marker[1], indent, number
            continue
        if marker is not None and marker[0] == "END":
            if open_kind is None:
                raise MarkerError(f"{path}:{number}: '# END {marker[1]}' without a "
                                  f"'# BEGIN {marker[1]}' before it")
            if marker[1] != open_kind:
                raise MarkerError(f"{path}:{number}: '# END {marker[1]}' closes the "
                                  f"{open_kind} block opened at line {open_line}")
            if indent != open_indent:
                raise MarkerError(f"{path}:{number}: '# END {marker[1]}' is not indented like "
                                  f"its '# BEGIN {open_kind}' (line {open_line})")
            open_kind = None
            continue
        if marker is not None:  # STUB: <code>
            if open_kind is not None:
                raise MarkerError(f"{path}:{number}: '# STUB:' inside the {open_kind} block "
                                  f"opened at line {open_line}")
            if not marker[1]:
                raise MarkerError(f"{path}:{number}: '# STUB:' needs the code the stub has "
                                  "here, e.g. '# STUB: raise NotImplementedError(\"...\")'")
            out.append(indent + marker[1])
            continue
        if open_kind == "SOLUTION":
            if line.strip():
                secret.append(SecretLine(number, line.strip()))
            continue
        if open_kind == "STUB":
            out.append(_uncomment(line, open_indent, path, number))
            continue
        out.append(line)
    if open_kind is not None:
        raise MarkerError(f"{path}:{open_line}: '# BEGIN {open_kind}' is never closed "
                          f"(expected '# END {open_kind}')")
    stub = _tidy("\n".join(out))
    try:
        stub = _drop_unused_imports(stub)
    except SyntaxError as exc:
        raise MarkerError(f"{path}: the stub made from it is not valid Python (stub line "
                          f"{exc.lineno}: {exc.msg}); check the markers' indentation") from None
    public = frozenset(s.strip() for s in stub.splitlines() if s.strip())
    return Split(stub=stub, secret=tuple(secret), public_lines=public)


def _looks_like_marker(m: re.Match) -> bool:
    """``# BEGIN SOLUTIONS``, ``#END STUB`` or ``# STUB raise ...``: a typo, not prose."""
    rest = m["rest"]
    return m["word"] == "STUB" or bool(re.match(r"^\s*(SOLUTION|STUB)", rest.upper()))


def _uncomment(line: str, indent: str, path: Path | str, number: int) -> str:
    if not line.strip():
        return ""
    if not line.startswith(indent) or not line[len(indent):].startswith("#"):
        raise MarkerError(f"{path}:{number}: a line inside a STUB block must be a comment "
                          f"starting at the block's indentation ({len(indent)} spaces), like "
                          "'# raise NotImplementedError(...)'")
    body = line[len(indent) + 1:]
    if body and not body.startswith(" "):
        raise MarkerError(f"{path}:{number}: write '# text' (one space after '#') inside a "
                          "STUB block")
    return indent + body[1:] if body else ""


def _tidy(text: str) -> str:
    """At most two blank lines in a row, none at the end, one newline at the end."""
    lines = [line.rstrip() for line in text.splitlines()]
    out: list[str] = []
    blank = 0
    for line in lines:
        blank = blank + 1 if not line else 0
        if blank <= 2:
            out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out) + "\n"


def _drop_unused_imports(source: str) -> str:
    """Remove top-level imported names the module never uses (``__future__`` stays)."""
    tree = ast.parse(source)
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    lines = source.splitlines()
    edits: list[tuple[int, int, list[str]]] = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            continue
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        keep = [a for a in node.names if bound_alias(a) in used]
        if len(keep) == len(node.names) or "# noqa" in lines[node.lineno - 1]:
            continue
        start, end = node.lineno - 1, node.end_lineno or node.lineno
        if not keep:
            # A lone import between blank lines takes one of them along (isort's layout).
            alone = 0 < start and end < len(lines) and not lines[start - 1].strip() \
                and not lines[end].strip()
            edits.append((start, end + alone, []))
            continue
        node.names = keep
        indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
        edits.append((start, end, [indent + ast.unparse(node)]))
    for start, end, new in reversed(edits):
        lines[start:end] = new
    return _tidy("\n".join(lines))


def bound_alias(alias: ast.alias) -> str:
    """The name an import binds: ``import a.b`` binds ``a``, ``import a as b`` binds ``b``."""
    return alias.asname or alias.name.split(".")[0]
