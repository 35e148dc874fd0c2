"""A runner image that carries its own Python, built from local sources: nothing is pulled.

``torchgrade-runner:local`` (``docker.build_image``) mounts the host's Python into an almost
empty image, and ``ci/Dockerfile`` starts from a CUDA PyTorch base that only a machine with a
registry can pull. This module builds the real thing on any Linux host with root, a Docker
engine and the package sources it already uses:

1. **base** (``torchgrade-runner-base:<recipe>``): a Debian root file system made by
   ``debootstrap --variant=minbase`` from the Debian mirror this machine reaches (the host's
   Debian release, else bookworm) with ``python3`` and ``python3-venv``; in it a venv at
   ``/opt/torchgrade/venv`` holding ``requirements-runner.txt`` (the pinned torch wheels carry
   their CUDA runtime; only the driver comes from the host, through the NVIDIA container
   runtime). pip runs inside the new root (bubblewrap binds it as ``/``), with this host's pip
   configuration and the local wheel folders it names bound in read-only, so the same wheels
   are used and nothing large is downloaded. The tree goes into the engine with
   ``docker import``. The recipe key (this module's version, the Debian release and the
   requirements) names the base: it is built once per machine and reused.
2. **image** (``torchgrade-runner:self`` by default): the base plus the engine
   (``src/torchgrade``) copied into the venv's site-packages, by ``docker create`` /
   ``docker cp`` / ``docker commit`` (no build frontend to pull), labelled with a hash of the
   engine so that an unchanged engine is not copied again.

Workers started from it carry their own Python (label ``torchgrade.runtime=image``): only the
submission is mounted. With ``course=True`` (the CI runner image, ``ci/github/grade.yml``) the
image also holds the course at ``/opt/course`` (graders, references, assignments, examples;
readable by root only, so never by a worker's uid ``nobody``) for a grader that runs in a
container of the same image; otherwise the grader stays on the host with the course.

Runnable from a checkout with the standard library alone (a CI runner before anything is
installed)::

    sudo PYTHONPATH=src python3 -m torchgrade.isolation.runner_image --tag torchgrade-runner:gpu \
        --with-course
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

from torchgrade.isolation.base import SANDBOX_DIR, engine_dir
from torchgrade.isolation.docker import (
    RUNTIME_LABEL,
    DockerUnavailable,
    client_env,
    docker,
    docker_exe,
    engine,
    image_labels,
    image_runtime,
)

RECIPE = "3"  # bump when the steps below change: every machine then builds a new base
SELF_TAG = "torchgrade-runner:self"
BASE_REPO = "torchgrade-runner-base"
VENV = "/opt/torchgrade/venv"
RECIPE_LABEL = "torchgrade.recipe"
ENGINE_LABEL = "torchgrade.engine"
PURELIB_LABEL = "torchgrade.purelib"
MIRROR_ENV = "TORCHGRADE_DEBIAN_MIRROR"
WORK_ENV = "TORCHGRADE_IMAGE_WORK"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("python3", "python3-venv", "ca-certificates", "libgomp1")


class ImageBuildError(DockerUnavailable):
    """The self-contained image cannot be built here: the message says what is missing."""


@dataclasses.dataclass(frozen=True)
class Built:
    tag: str
    image_id: str
    base: str
    base_built: bool  # False when the base was reused
    seconds: float
    size_bytes: int


def requirements_file(root: Path) -> Path:
    path = root / "requirements-runner.txt"
    if not path.is_file():
        raise ImageBuildError(f"{path} is missing: it lists what the runner image installs")
    return path


def debian_suite() -> str:
    """The host's Debian release (its mirror is the one this machine reaches), else bookworm."""
    try:
        fields = dict(line.split("=", 1) for line in
                      Path("/etc/os-release").read_text().splitlines() if "=" in line)
    except OSError:
        return "bookworm"
    if fields.get("ID", "").strip('"') == "debian" and fields.get("VERSION_CODENAME"):
        return fields["VERSION_CODENAME"].strip('"')
    return "bookworm"


def recipe_key(root: Path) -> str:
    h = hashlib.sha256(f"{RECIPE}|{debian_suite()}|{','.join(PACKAGES)}|".encode())
    h.update(requirements_file(root).read_bytes())
    return h.hexdigest()[:16]


def engine_key() -> str:
    h = hashlib.sha256()
    for path in sorted(_engine_files()):
        h.update(str(path.relative_to(engine_dir())).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def _engine_files() -> list[Path]:
    return [p for p in engine_dir().rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"]


def _preconditions() -> None:
    engine()  # a clear DockerUnavailable when no engine answers
    if os.geteuid() != 0:
        raise ImageBuildError("building the self-contained image needs root (debootstrap and "
                              "a chroot-like root for pip); run it with sudo")
    for tool, package in (("debootstrap", "debootstrap"), ("bwrap", "bubblewrap"),
                          ("tar", "tar")):
        if shutil.which(tool) is None:
            raise ImageBuildError(f"building the self-contained image needs {tool}: "
                                  f"apt-get install {package}")


COURSE_PARTS = ("graders", "solutions", "assignments", "examples")
COURSE_DIR = "/opt/course"  # beside the venv's /opt/torchgrade, which workers must reach


def build(root: Path, tag: str = SELF_TAG, log: Callable[[str], None] = print,
          course: bool = False) -> Built:
    """Build (or reuse) the self-contained runner image for the course at ``root`` (with the
    course itself in it when ``course``)."""
    started = time.monotonic()
    engine()
    key = recipe_key(root)
    base = f"{BASE_REPO}:{key}"
    labels = image_labels(base)
    base_built = labels is None
    if base_built:
        _preconditions()
        _build_base(root, base, key, log)
        labels = image_labels(base) or {}
    else:
        log(f"reusing {base} (same Debian release and requirements)")
    wanted = engine_key() + (f"+course-{_course_key(root)}" if course else "")
    have = image_labels(tag)
    if have is not None and have.get(ENGINE_LABEL) == wanted and have.get(
            RECIPE_LABEL) == key:
        log(f"reusing {tag} (same engine)")
    else:
        _add_engine(base, tag, labels.get(PURELIB_LABEL, ""), key, wanted,
                    root if course else None)
    image_runtime.cache_clear()
    inspect = docker("image", "inspect", "--format", "{{.Id}} {{.Size}}", tag, timeout=30)
    image_id, size = inspect.stdout.decode().split()
    return Built(tag, image_id, base, base_built, time.monotonic() - started, int(size))


def _work_dir() -> Path:
    work = Path(os.environ.get(WORK_ENV) or "/var/tmp/torchgrade-image")
    work.mkdir(parents=True, exist_ok=True)
    return work


def _run(argv: list[str], what: str, timeout: float, env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(argv, capture_output=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).decode(errors="replace").strip()[-1500:]
        raise ImageBuildError(f"{what} failed (exit status {proc.returncode}):\n{tail}")


def _build_base(root: Path, tag: str, key: str, log: Callable[[str], None]) -> None:
    rootfs = _work_dir() / f"rootfs-{key}"
    shutil.rmtree(rootfs, ignore_errors=True)
    mirror = os.environ.get(MIRROR_ENV) or DEFAULT_MIRROR
    suite = debian_suite()
    try:
        log(f"debootstrap {suite} from {mirror} (a minute or two)...")
        _run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", suite,
              str(rootfs), mirror], "debootstrap", timeout=1800)
        log("pip install -r requirements-runner.txt into the image's venv (a minute or "
            "two)...")
        shutil.copyfile(requirements_file(root), rootfs / "tmp" / "requirements.txt")
        inside = _inside(rootfs)
        _run([*inside, "/usr/bin/python3", "-m", "venv", VENV], "creating the venv",
             timeout=300, env=_pip_env())
        _run([*inside, f"{VENV}/bin/python", "-m", "pip", "install", "--no-cache-dir",
              "--disable-pip-version-check", "-q", "-r", "/tmp/requirements.txt"],
             "pip install in the image", timeout=3600, env=_pip_env())
        purelib = subprocess.run(
            [*inside, f"{VENV}/bin/python", "-c",
             "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, timeout=120, env=_pip_env()).stdout.strip()
        _tidy(rootfs)
        log(f"docker import of {_size(rootfs)} (a minute)...")
        _import(rootfs, tag, key, purelib)
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)


def _pip_env() -> dict[str, str]:
    """The environment of pip inside the new root: this host's pip settings (indexes,
    find-links, constraints, certificate bundle), so the same local wheels are used."""
    keep = {k: v for k, v in os.environ.items() if k.startswith("PIP_")}
    env = {"PATH": f"{VENV}/bin:/usr/bin:/bin", "HOME": "/root", "LANG": "C.UTF-8", **keep}
    if Path("/etc/ssl/certs/ca-certificates.crt").is_file():
        env["PIP_CERT"] = env["SSL_CERT_FILE"] = "/run/host-ca.crt"
    return env


def _pip_config_files() -> list[Path]:
    home = Path(os.environ.get("HOME", "/root"))
    found = [Path("/etc/pip.conf"), Path("/etc/xdg/pip/pip.conf"), home / ".pip" / "pip.conf",
             home / ".config" / "pip" / "pip.conf"]
    if os.environ.get("PIP_CONFIG_FILE"):
        found.append(Path(os.environ["PIP_CONFIG_FILE"]))
    return [p for p in found if p.is_file()]


def _local_paths() -> list[Path]:
    """Folders and files this host's pip configuration names (local indexes, find-links,
    constraints): bound read-only into the new root at their own paths."""
    words: list[str] = []
    for path in _pip_config_files():
        words += path.read_text(errors="replace").replace("=", " ").split()
    words += [v for k, v in os.environ.items() if k.startswith("PIP_")]
    out = []
    for word in words:
        for part in word.split():
            candidate = part.removeprefix("file://").rstrip("/")
            if candidate.startswith("/") and Path(candidate).exists():
                path = Path(candidate)
                # A local index's pages link to its files beside "simple/" (../../files/...).
                out.append(path.parent if path.name == "simple" else path)
    return sorted(set(out))


def _inside(rootfs: Path) -> list[str]:
    """A command prefix running inside ``rootfs`` as its root (bubblewrap: no mounts leak
    onto the host, all undone when the command ends)."""
    argv = ["bwrap", "--bind", str(rootfs), "/", "--proc", "/proc", "--dev", "/dev",
            "--tmpfs", "/run", "--die-with-parent"]
    ca = Path("/etc/ssl/certs/ca-certificates.crt")
    if ca.is_file():
        argv += ["--ro-bind", str(ca), "/run/host-ca.crt"]
    home = Path(os.environ.get("HOME", "/root"))
    for path in _pip_config_files():
        target = path
        if path.is_relative_to(home):  # the new root's root user has its own home
            target = Path("/root") / path.relative_to(home)
        argv += ["--ro-bind", str(path), str(target)]
    for path in _local_paths():
        argv += ["--ro-bind", str(path), str(path)]
    if Path("/etc/resolv.conf").is_file():
        argv += ["--ro-bind", "/etc/resolv.conf", "/etc/resolv.conf"]
    return argv


def _tidy(rootfs: Path) -> None:
    for junk in ("var/cache/apt/archives", "var/lib/apt/lists", "root/.cache", "tmp"):
        shutil.rmtree(rootfs / junk, ignore_errors=True)
    (rootfs / "tmp").mkdir(mode=0o1777, exist_ok=True)
    os.chmod(rootfs / "tmp", 0o1777)
    (rootfs / SANDBOX_DIR.strip("/")).mkdir(mode=0o755, exist_ok=True)


def _size(path: Path) -> str:
    total = sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    return f"{total / 2**30:.1f} GiB"


def _import(rootfs: Path, tag: str, key: str, purelib: str) -> None:
    changes = [f"ENV PATH={VENV}/bin:/usr/local/bin:/usr/bin:/bin", f"WORKDIR {SANDBOX_DIR}",
               f"LABEL {RUNTIME_LABEL}=image {RECIPE_LABEL}={key} {PURELIB_LABEL}={purelib}"]
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."],
                           stdout=subprocess.PIPE)
    argv = [docker_exe(), "import"]
    for change in changes:
        argv += ["--change", change]
    argv += ["--message", "torchgrade runner base", "-", tag]
    try:
        imp = subprocess.run(argv, stdin=tar.stdout, capture_output=True, env=client_env(),
                             timeout=3600)
    finally:
        if tar.stdout is not None:
            tar.stdout.close()
        tar.wait()
    if imp.returncode != 0 or tar.returncode != 0:
        raise ImageBuildError(f"`docker import` failed: "
                              f"{imp.stderr.decode(errors='replace').strip()[-500:]}")


def _course_files(root: Path) -> list[Path]:
    return sorted(p for part in COURSE_PARTS for p in (root / part).rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


def _course_key(root: Path) -> str:
    h = hashlib.sha256()
    for path in _course_files(root):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def _tar(files: list[tuple[Path, str]], mode: int, dirs: list[str] = (),
         dir_mode: int = 0o755) -> bytes:
    """``files`` (path, name in the tar) as a tar owned by root with ``mode``, no times."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in dirs:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, dir_mode, 0
            tar.addfile(info)
        for path, name in files:
            info = tar.gettarinfo(str(path), name)
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mode, info.mtime = mode, 0
            with path.open("rb") as fh:
                tar.addfile(info, fh)
    return buf.getvalue()


def _engine_tar() -> bytes:
    """``torchgrade/`` as a tar: world-readable, owned by root, no byte code."""
    return _tar([(p, f"torchgrade/{p.relative_to(engine_dir())}") for p in _engine_files()],
                0o644)


def _course_tar(root: Path) -> bytes:
    """The course for a grader in the image, as ``course/...``: root only (workers run as
    nobody, and only their submission is mounted into their own containers)."""
    files = _course_files(root)
    top = Path(COURSE_DIR).name
    dirs = sorted({f"{top}/{parent.relative_to(root)}".rstrip("/.") for p in files
                   for parent in p.parents if parent == root or root in parent.parents})
    return _tar([(p, f"{top}/{p.relative_to(root)}") for p in files], 0o600, dirs, 0o700)


def _add_engine(base: str, tag: str, purelib: str, key: str, wanted: str,
                course: Path | None) -> None:
    if not purelib:
        raise ImageBuildError(f"{base} does not say where its site-packages are: delete it "
                              f"(`docker rmi {base}`) and build again")
    made = docker("create", base, "/bin/true", timeout=120)
    if made.returncode != 0:
        raise ImageBuildError(f"`docker create {base}` failed: {made.stderr.decode()[-500:]}")
    container = made.stdout.decode().strip()
    try:
        copied = docker("cp", "-", f"{container}:{purelib}", stdin=_engine_tar(), timeout=300)
        if copied.returncode != 0:
            raise ImageBuildError(f"`docker cp` of the engine failed: "
                                  f"{copied.stderr.decode()[-500:]}")
        changes = ["--change", f"LABEL {RUNTIME_LABEL}=image {RECIPE_LABEL}={key} "
                   f"{ENGINE_LABEL}={wanted} {PURELIB_LABEL}={purelib}", "--change", "CMD []"]
        if course is not None:
            copied = docker("cp", "-", f"{container}:{Path(COURSE_DIR).parent}",
                            stdin=_course_tar(course), timeout=600)
            if copied.returncode != 0:
                raise ImageBuildError(f"`docker cp` of the course failed: "
                                      f"{copied.stderr.decode()[-500:]}")
            changes += ["--change", f"ENV TORCHGRADE_ROOT={COURSE_DIR} HF_HUB_OFFLINE=1"]
        committed = docker("commit", *changes, "--message", "torchgrade engine", container,
                           tag, timeout=600)
        if committed.returncode != 0:
            raise ImageBuildError(f"`docker commit` failed: {committed.stderr.decode()[-500:]}")
    finally:
        docker("rm", "--force", container, timeout=60)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="python3 -m torchgrade.isolation.runner_image",
        description="Build the self-contained runner image from local sources (the same as "
        "`torchgrade docker build-image --self-contained`, with the standard library alone).")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the course checkout "
                        "(default: the current folder)")
    parser.add_argument("--tag", default=SELF_TAG, help=f"the image's tag (default {SELF_TAG})")
    parser.add_argument("--with-course", action="store_true", help="also put the course "
                        f"(graders, references...) into the image at {COURSE_DIR}, root only, "
                        "for a grader running in a container of it")
    args = parser.parse_args(argv)
    try:
        built = build(args.root.resolve(), args.tag, log=lambda line: print(line, flush=True),
                      course=args.with_course)
    except DockerUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{built.tag} {built.image_id[:19]} {built.size_bytes / 2**30:.1f} GiB "
          f"({built.seconds:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
