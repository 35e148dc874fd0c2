"""The engine as a wheel, so that the student template installs it from its own files.

Students get ``torchgrade check`` by installing ``student_template/``, whose
``requirements.txt`` names ``vendor/torchgrade-<version>-py3-none-any.whl``: no package index
serves torchgrade (its repository holds the solutions), and no server of the course's is needed.
``torchgrade author build`` writes that wheel like every other generated file, from the engine
it runs (this package) and its metadata (``pyproject.toml`` in a source checkout, else the
installed distribution's).

The wheel is reproducible, so ``author build --check`` can compare it byte for byte: entries in
sorted order, one fixed timestamp and mode, stored uncompressed (zlib versions differ between
machines; git compresses the file anyway, and unchanged modules stay identical bytes between two
versions of it). Left out: ``__pycache__``, compiled files and hidden files.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import importlib.metadata
import io
import tomllib
import zipfile
from pathlib import Path

import torchgrade

DIST = "torchgrade"
STAMP = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip file can hold


@dataclasses.dataclass(frozen=True)
class Metadata:
    """What the wheel says about the distribution (core metadata 2.1)."""

    version: str
    summary: str
    requires_python: str
    requires: tuple[str, ...]
    scripts: tuple[tuple[str, str], ...]  # console script name -> "module:function"


def file_name(version: str | None = None) -> str:
    return f"{DIST}-{version or torchgrade.__version__}-py3-none-any.whl"


def metadata(package_dir: Path | None = None) -> Metadata:
    """The engine's metadata: from the source checkout's pyproject.toml where the package is
    one (``src/torchgrade`` beside it), else from the installed distribution."""
    package_dir = package_dir or Path(torchgrade.__file__).resolve().parent
    pyproject = package_dir.parent.parent / "pyproject.toml"
    if pyproject.is_file():
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
        if project.get("name") == DIST:
            return Metadata(
                version=str(project["version"]), summary=str(project.get("description", "")),
                requires_python=str(project.get("requires-python", "")),
                requires=tuple(project.get("dependencies", ())),
                scripts=tuple(sorted(project.get("scripts", {}).items())))
    meta = importlib.metadata.metadata(DIST)
    scripts = importlib.metadata.distribution(DIST).entry_points.select(group="console_scripts")
    return Metadata(version=meta["Version"], summary=meta.get("Summary", ""),
                    requires_python=meta.get("Requires-Python", ""),
                    requires=tuple(meta.get_all("Requires-Dist") or ()),
                    scripts=tuple(sorted((e.name, e.value) for e in scripts)))


def package_files(package_dir: Path) -> dict[str, bytes]:
    """Every file of the package (path in the wheel -> bytes), sorted."""
    out = {}
    for path in sorted(package_dir.rglob("*")):
        rel = path.relative_to(package_dir)
        if not path.is_file() or path.suffix in (".pyc", ".pyo") or any(
                part == "__pycache__" or part.startswith(".") for part in rel.parts):
            continue
        out[f"{DIST}/{rel.as_posix()}"] = path.read_bytes()
    return out


def build(package_dir: Path | None = None) -> tuple[str, bytes]:
    """The engine's wheel: its file name and bytes (the same bytes for the same sources)."""
    package_dir = package_dir or Path(torchgrade.__file__).resolve().parent
    meta = metadata(package_dir)
    info = f"{DIST}-{meta.version}.dist-info"
    lines = ["Metadata-Version: 2.1", f"Name: {DIST}", f"Version: {meta.version}"]
    lines += [f"Summary: {meta.summary}"] if meta.summary else []
    lines += [f"Requires-Python: {meta.requires_python}"] if meta.requires_python else []
    lines += [f"Requires-Dist: {req}" for req in meta.requires]
    files = package_files(package_dir)
    files[f"{info}/METADATA"] = ("\n".join(lines) + "\n").encode()
    files[f"{info}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: torchgrade author build\n"
                              b"Root-Is-Purelib: true\nTag: py3-none-any\n")
    if meta.scripts:
        files[f"{info}/entry_points.txt"] = ("[console_scripts]\n" + "".join(
            f"{name} = {target}\n" for name, target in meta.scripts)).encode()
    files[f"{info}/top_level.txt"] = f"{DIST}\n".encode()
    record = [f"{name},sha256={_digest(data)},{len(data)}" for name, data in files.items()]
    files[f"{info}/RECORD"] = ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as wheel:
        for name, data in files.items():
            entry = zipfile.ZipInfo(name, date_time=STAMP)
            entry.external_attr = 0o100644 << 16  # a regular file, rw-r--r--
            entry.create_system = 3  # unix, so that the mode is read
            wheel.writestr(entry, data)
    return file_name(meta.version), buf.getvalue()


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
