"""Does a tree that students get (``student_template/``) hold anything they must not see?

``scan(tree, root)`` walks every file under ``tree`` and reports each finding with its file,
line and what leaked, judged against the course at ``root``:

- a file type outside the allow-list (Python, Markdown, TOML, YAML, text, safetensors,
  .gitignore, and the engine's wheel under ``vendor/``, which may hold only the ``torchgrade``
  package and its metadata, none of it a copy of a solution file);
- a file of ``solutions/`` (same bytes) or a path through a ``solutions`` folder, and a
  ``fixture_cases.py`` (the fixture builder runs against the reference);
- a solution line: each line between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` of a marked
  reference;
- a hidden check's name (as a word), or a line of a hidden check (decorators included) or of
  a module-level helper or constant only hidden checks use (a strategy, a ``catches=`` text);
- a fixture case that no public check names (its inputs and expected values would let a
  student rebuild a hidden check).

Lines are compared whole, after stripping indentation, so findings are exact and cheap. A line
is evidence only when it is telling (``MIN_LINE`` characters or more, not just ``return x``)
and students do not see it anyway (in some stub or public check).
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import io
import json
import re
import struct
import zipfile
from pathlib import Path

from torchgrade.assignment import available, load
from torchgrade.markers import has_markers, split_solution
from torchgrade.public_grader import bound_names, check_visibility, split_grader

ALLOWED_SUFFIXES = frozenset({".py", ".md", ".toml", ".yml", ".yaml", ".txt", ".safetensors"})
ALLOWED_NAMES = frozenset({".gitignore"})
TEXT_SUFFIXES = frozenset({".py", ".md", ".toml", ".yml", ".yaml", ".txt"}) | ALLOWED_NAMES
WHEEL = re.compile(r"vendor/torchgrade-[^/]+-py3-none-any\.whl")  # torchgrade.engine_wheel
MIN_LINE = 16  # shorter lines (`return x`, `)`, `"""`) are everywhere: not evidence of a leak


@dataclasses.dataclass(frozen=True)
class Leak:
    path: str  # relative to the scanned tree
    line: int  # 1-based; 0 for the whole file
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}" if self.line else \
            f"{self.path}: {self.what}"


@dataclasses.dataclass
class _Secrets:
    lines: dict[str, str]  # stripped line -> where it comes from
    hidden_names: dict[str, str]  # hidden check name -> its grader file
    public_strings: dict[str, set[str]]  # assignment -> strings in its public checks
    solution_hashes: dict[str, str]  # sha256 -> solutions/... path


def scan(tree: Path, root: Path) -> list[Leak]:
    secrets = _secrets(root.resolve())
    leaks: list[Leak] = []
    hidden_word = re.compile(r"\b(" + "|".join(map(re.escape, secrets.hidden_names)) + r")\b") \
        if secrets.hidden_names else None
    for path in sorted(p for p in tree.rglob("*") if p.is_file()):
        rel = path.relative_to(tree).as_posix()
        if "__pycache__" in path.parts:
            continue
        if WHEEL.fullmatch(rel):
            leaks += _scan_wheel(rel, path.read_bytes(), secrets)
            continue
        if path.suffix not in ALLOWED_SUFFIXES and path.name not in ALLOWED_NAMES:
            leaks.append(Leak(rel, 0, f"file type not allowed in the template ({path.name})"))
            continue
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest in secrets.solution_hashes:
            leaks.append(Leak(rel, 0, f"a copy of {secrets.solution_hashes[digest]}"))
        if "solutions" in path.relative_to(tree).parts:
            leaks.append(Leak(rel, 0, "a path through a solutions/ folder"))
        if path.name == "fixture_cases.py":
            leaks.append(Leak(rel, 0, "the fixture builder (it runs against the reference)"))
        if path.suffix == ".safetensors":
            leaks += _scan_fixtures(rel, data, secrets)
            continue
        if path.suffix not in TEXT_SUFFIXES and path.name not in ALLOWED_NAMES:
            continue
        leaks += _scan_text(rel, data, secrets, hidden_word)
    return leaks


def _scan_text(rel: str, data: bytes, secrets: _Secrets,
               hidden_word: re.Pattern[str] | None) -> list[Leak]:
    leaks = []
    text = data.decode("utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped in secrets.lines:
            leaks.append(Leak(rel, number, secrets.lines[stripped]))
        if hidden_word is not None:
            for m in hidden_word.finditer(line):
                leaks.append(Leak(rel, number, f"the name of hidden check {m[1]} "
                                  f"({secrets.hidden_names[m[1]]})"))
    return leaks


def _scan_wheel(rel: str, data: bytes, secrets: _Secrets) -> list[Leak]:
    """The engine's wheel: nothing but the torchgrade package and its metadata, and no member
    that is a copy of a solution file. Its text is not read line by line: the engine is the
    same for every course and no secret of one (it shares many a line with the references, and
    ``author new`` writes its scaffold's checks, hidden ones included, from its own source)."""
    try:
        wheel = zipfile.ZipFile(io.BytesIO(data))
        members = [(info.filename, wheel.read(info)) for info in wheel.infolist()]
    except (zipfile.BadZipFile, OSError) as exc:
        return [Leak(rel, 0, f"not a readable wheel ({exc})")]
    leaks = []
    for name, member in members:
        where = f"{rel}!{name}"
        top = name.split("/", 1)[0]
        if top != "torchgrade" and not re.fullmatch(r"torchgrade-[^/]+\.dist-info", top):
            leaks.append(Leak(where, 0, "not part of the torchgrade package"))
            continue
        digest = hashlib.sha256(member).hexdigest()
        if digest in secrets.solution_hashes:
            leaks.append(Leak(where, 0, f"a copy of {secrets.solution_hashes[digest]}"))
    return leaks


def _secrets(root: Path) -> _Secrets:
    lines: dict[str, str] = {}
    shown: set[str] = set()  # lines students see anyway: stubs and public checks, of any
    hidden: dict[str, str] = {}
    strings: dict[str, set[str]] = {}
    hashes = {hashlib.sha256(p.read_bytes()).hexdigest(): p.relative_to(root).as_posix()
              for p in (root / "solutions").rglob("*")
              if p.is_file() and p.name != "handout.md" and "__pycache__" not in p.parts}
    for name in available(root):
        a = load(name, root)
        if a.solution_file.is_file():
            source = a.solution_file.read_text(encoding="utf-8")
            if has_markers(source):
                rel = a.solution_file.relative_to(root).as_posix()
                split = split_solution(source, rel)
                shown |= split.public_lines
                for s in split.secret:
                    if _telling(s.text):
                        lines.setdefault(s.text, f"solution line ({rel}:{s.line})")
        strings[name] = set()
        for grader in sorted(a.grader_dir.glob("test_*.py")):
            rel = grader.relative_to(root).as_posix()
            source = grader.read_text(encoding="utf-8")
            public = split_grader(source, rel, name)
            shown |= {line.strip() for line in public.source.splitlines()}
            src_lines = source.splitlines()
            tree = ast.parse(source)
            for node in tree.body:
                vis = check_visibility(node)
                if vis == "public":
                    strings[name] |= {n.value for n in ast.walk(node)
                                      if isinstance(n, ast.Constant) and isinstance(n.value, str)}
                    continue
                bound = bound_names(node)
                if vis is not None:
                    hidden[node.name] = rel  # type: ignore[attr-defined]
                elif isinstance(node, ast.Import | ast.ImportFrom) or not bound \
                        or bound & public.kept_names:
                    continue  # an import, the docstring, or what the public checks use
                first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list",
                                                                        [])])
                for number in range(first, (node.end_lineno or node.lineno) + 1):
                    text = src_lines[number - 1].strip()
                    if _telling(text):
                        lines.setdefault(text, f"hidden grader line ({rel}:{number})")
    lines = {text: where for text, where in lines.items() if text not in shown}
    return _Secrets(lines, hidden, strings, hashes)


def _telling(line: str) -> bool:
    return len(line) >= MIN_LINE and any(c.isalnum() for c in line)


def _scan_fixtures(rel: str, data: bytes, secrets: _Secrets) -> list[Leak]:
    """Case names of a safetensors file, read from its JSON header (no torch, no code)."""
    parts = Path(rel).parts
    assignment = parts[parts.index("graders") + 1] if "graders" in parts[:-1] else ""
    try:
        (size,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8:8 + size])
        meta = json.loads((header.get("__metadata__") or {}).get("torchgrade.cases", "{}"))
    except (struct.error, ValueError) as exc:
        return [Leak(rel, 0, f"not a readable fixtures file ({exc})")]
    cases = set(meta) | {k.partition("/")[0] for k in header if k != "__metadata__"}
    used = secrets.public_strings.get(assignment)
    if used is None:
        return [Leak(rel, 0, f"fixtures of {assignment or 'no known assignment'}, which has "
                     "no public checks here")]
    return [Leak(rel, 0, f"fixture case {case!r}: no public check of {assignment} names it")
            for case in sorted(cases - used)]
