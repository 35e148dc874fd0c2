"""Can a student install the template with its one documented command, from its own files and
PyPI only, and check their work from there?

``torchgrade author build`` vendors the engine's wheel into ``student_template/vendor/`` and
writes a ``requirements.txt`` naming it. The test writes the template exactly as ``author
build`` generates it now, creates a fresh virtual environment, runs the README's install command
in the template's folder (adapted only in where wheels come from: ``--no-index``, with the heavy
dependencies, torch and the rest, already in the new environment as hard links to this
checkout's ``.venv``, as a warm wheel cache would give them: nothing is downloaded), then runs
``torchgrade check`` from that environment: the stub gets 0, the reference (copied into the
template, as a student's finished file) full public marks.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from torchgrade import engine_wheel
from torchgrade.author import TEMPLATE, VENDOR, plan
from torchgrade.isolation import bwrap_available
from torchgrade.leaks import scan

REPO = Path(__file__).resolve().parents[1]
# What the new environment must not see: torchgrade comes only from the template's wheel.
NOT_SHARED = ("torchgrade", "__editable__")

pytestmark = pytest.mark.slow


def _write_template(root: Path) -> Path:
    """student_template/ as `author build` generates it now, written under ``root``."""
    template = root / "coursework"
    prefix = f"{TEMPLATE}/"
    for rel, data in plan(REPO).files.items():
        if rel.startswith(prefix):
            path = template / rel[len(prefix):]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    return template


def _fresh_venv(path: Path) -> Path:
    """A new virtual environment with this checkout's dependencies and pip hard-linked in
    (not torchgrade); its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True,
                   timeout=300)
    python = path / "bin" / "python"
    site = Path(subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True).stdout.strip())
    ours = Path(sysconfig.get_paths()["purelib"])
    shared = [str(p) for p in sorted(ours.iterdir()) if not p.name.startswith(NOT_SHARED)]
    subprocess.run(["cp", "-al", *shared, str(site)], check=True, timeout=300)
    return python


def _check(venv: Path, template: Path, assignment: str, report: Path) -> tuple[int, dict, str]:
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(report.parent),
           "LANG": "C.UTF-8", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([str(venv / "bin" / "torchgrade"), "check", assignment, "--json",
                           str(report)], cwd=template, env=env, capture_output=True, text=True,
                          timeout=600)
    assert report.is_file(), done.stdout + done.stderr
    return done.returncode, json.loads(report.read_text()), done.stdout


def test_a_student_installs_the_template_with_one_command_and_checks_their_work(tmp_path):
    ours = Path(sysconfig.get_paths()["purelib"])
    if sys.platform != "linux" or os.stat(ours).st_dev != os.stat(tmp_path).st_dev:
        pytest.skip("hard-linking this checkout's dependencies needs Linux and the venv on "
                    "the temporary folder's file system")
    template = _write_template(tmp_path)
    readme = (template / "README.md").read_text(encoding="utf-8")
    assert "\npip install -r requirements.txt " in readme  # the one documented command
    requirements = (template / "requirements.txt").read_text(encoding="utf-8")
    wheel = f"./{VENDOR}/{engine_wheel.file_name()}"
    assert [line for line in requirements.splitlines() if line and not line.startswith("#")] \
        == ["--extra-index-url https://download.pytorch.org/whl/cpu", wheel]
    venv = tmp_path / "venv"
    try:
        python = _fresh_venv(venv)
        install = subprocess.run(
            [str(python), "-m", "pip", "install", "--no-index", "-r", "requirements.txt"],
            cwd=template, capture_output=True, text=True, timeout=600,
            env={k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")})
        assert install.returncode == 0, install.stdout + install.stderr
        assert "Successfully installed torchgrade-" in install.stdout, install.stdout
        where = subprocess.run([str(python), "-c", "import torchgrade; print(torchgrade.__file__)"],
                               cwd=tmp_path, capture_output=True, text=True, check=True)
        assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout  # not this checkout

        code, stub, said = _check(venv, template, "nt_xent", tmp_path / "stub.json")
        assert code == 1 and stub["score"] == 0 and stub["checks"], said
        assert all(c["visibility"] == "public" for c in stub["checks"])
        assert any("NotImplementedError" in c["feedback"] for c in stub["checks"])
        assert sum(line.startswith("isolation:") for line in said.splitlines()) == 1
        assert stub["sandbox"].startswith("bwrap") or not bwrap_available(), stub["sandbox"]

        mine = template / "assignments" / "nt_xent" / "nt_xent.py"
        shutil.copyfile(REPO / "solutions" / "nt_xent" / "nt_xent.py", mine)
        code, done, said = _check(venv, template, "nt_xent", tmp_path / "done.json")
        assert code == 0 and done["score"] == done["max_score"] == stub["max_score"] > 0, said
    finally:
        shutil.rmtree(venv, ignore_errors=True)  # tens of thousands of links: not kept


def test_the_vendored_wheel_is_the_engine_and_nothing_else():
    """The wheel holds the torchgrade package (its course data included) and its metadata, with
    the console script and the dependencies of pyproject.toml; built twice, the same bytes."""
    name, data = engine_wheel.build()
    assert (name, data) == engine_wheel.build()
    members = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert {m.split("/")[0] for m in members} == {"torchgrade", "torchgrade-0.1.0.dist-info"}
    assert "torchgrade/cli.py" in members and "torchgrade/isolation/base.py" in members
    assert "torchgrade/course/clip_model/model.safetensors" in members
    assert not [m for m in members if "__pycache__" in m or m.endswith(".pyc")]
    wheel = zipfile.ZipFile(io.BytesIO(data))
    meta = wheel.read("torchgrade-0.1.0.dist-info/METADATA").decode()
    assert "Requires-Dist: torch>=" in meta
    assert "torchgrade = torchgrade.cli:main" in wheel.read(
        "torchgrade-0.1.0.dist-info/entry_points.txt").decode()
    assert len(data) < 4 * 1024 * 1024


def test_the_leak_scan_reads_inside_the_wheel(tmp_path):
    """A wheel that carries anything but the engine, or a copy of a reference, is a leak."""
    template = _write_template(tmp_path)
    assert [str(x) for x in scan(template, REPO) if "vendor/" in x.path] == []
    path = template / VENDOR / engine_wheel.file_name()
    reference = (REPO / "solutions" / "nt_xent" / "nt_xent.py").read_bytes()
    with zipfile.ZipFile(path, "a") as wheel:
        wheel.writestr("solutions/notes.md", "# how the graders work\n")
        wheel.writestr("torchgrade/course/answers.py", reference)
    found = [str(x) for x in scan(template, REPO) if "vendor/" in x.path]
    assert any("solutions/notes.md: not part of the torchgrade package" in f for f in found)
    assert any("answers.py: a copy of solutions/nt_xent/nt_xent.py" in f for f in found), found


def test_the_course_chooses_where_students_get_pytorch(tmp_path):
    """PyTorch's CPU index by default; `[student] torch_index` in course.toml picks another, or
    "" for PyPI's own build (with CUDA on Linux)."""
    from torchgrade.author import CPU_TORCH, torch_index

    assert torch_index(tmp_path) == CPU_TORCH
    (tmp_path / "course.toml").write_text('[student]\ntorch_index = ""\n', encoding="utf-8")
    assert torch_index(tmp_path) == ""
