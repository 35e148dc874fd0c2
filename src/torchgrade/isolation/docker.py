"""The Docker backend: student workers in containers, ``--sandbox docker``.

The trust boundary is the same as with bubblewrap: the grader (pytest + the plugin, trusted)
stays a process on the host, and only the student *worker* runs in a container, one container
per worker, started with ``docker run --rm -i``:

- **channel**: file descriptors cannot be passed into a container, so the container's stdin
  is the request pipe, its stdout the reply pipe and its stderr the student's output. The
  docker CLI is started with exactly those pipes as its stdin/stdout/stderr and relays them;
  inside, the worker (``--rx 0 --tx 1``) moves the channel to fresh fds and points fd 1 at fd 2
  before any student code runs, so a student's ``print`` lands in the capped output, never in
  the reply stream. Only the protocol's plain data crosses, as with every other mode.
- **limits**: ``--network none``, ``--memory`` (no swap), ``--pids-limit``, ``--cap-drop ALL``,
  ``--security-opt no-new-privileges``, ``--read-only`` root with sized tmpfs ``/tmp``,
  ``/sandbox`` (the working directory) and ``/dev/shm``, uid ``nobody``, ``--init`` (reaps a
  fork bomb's children and passes the worker's death by a signal on as 128+N),
  ``--log-driver none`` (replies and prints are never written to the engine's logs), and the
  worker's own rlimits. ``--gpus all`` is added under the gpu profile when the engine has an
  NVIDIA runtime (or ``TORCHGRADE_DOCKER_GPUS=all`` says so).
- **image**: nothing can be pulled where torchgrade is tested, so the default image
  ``torchgrade-runner:local`` is built from local files by ``torchgrade docker build-image``
  (``docker import`` of a near-empty root file system: ``/etc/passwd``, ``/tmp``, ``/sandbox``
  and the host's ``/bin``-style links), labelled ``torchgrade.runtime=host``: the host's Python,
  venv and the engine are bind-mounted read-only at their own paths, as bubblewrap does. Any
  other image (``TORCHGRADE_DOCKER_IMAGE``, e.g. the GPU runner image ``ci/Dockerfile``)
  carries its own Python, torch and torchgrade, and only the submission is mounted.
- **cleanup**: each container has a name chosen here and the label ``torchgrade.run=<id>`` of
  its grading; stopping a worker runs ``docker rm -f NAME`` (killing the CLI alone would leave
  the container running), and the runner removes whatever still carries its grading's label
  when the grader exits, even when it had to be killed for time.

The docker CLI is ``TORCHGRADE_DOCKER`` or ``docker`` on PATH; it reaches the engine the usual
way (``DOCKER_HOST``, ``DOCKER_CONTEXT``...). Every call to it has a time limit: without a
reachable engine torchgrade fails at once with a message saying how to start one.
"""

from __future__ import annotations

import functools
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from torchgrade.cputime import TreeMeter
from torchgrade.isolation.base import (
    NOBODY,
    SANDBOX_DIR,
    Launch,
    Limits,
    Unavailable,
    WorkerSpec,
    engine_dir,
    worker_code,
)

DEFAULT_IMAGE = "torchgrade-runner:local"
IMAGE_ENV = "TORCHGRADE_DOCKER_IMAGE"
RUN_ENV = "TORCHGRADE_DOCKER_RUN"  # the label value shared by one grading's containers
GPUS_ENV = "TORCHGRADE_DOCKER_GPUS"  # "all" or "none": overrides the NVIDIA-runtime probe
RUNTIME_LABEL = "torchgrade.runtime"  # "host": bind-mount the host's Python into the image
WORKER_LABEL = "torchgrade.worker"
RUN_LABEL = "torchgrade.run"
HOW_TO_START = (
    "start a Docker engine and point DOCKER_HOST at its socket if it is not the default, e.g. "
    "`sudo apt-get install docker.io && sudo systemctl start docker`, or without systemd "
    "`sudo dockerd --bridge=none --iptables=false &`; then build the worker image once with "
    "`torchgrade docker build-image`")


class DockerUnavailable(Unavailable):
    """No Docker engine answers, or the worker image is missing: the message says what to do."""


def docker_exe() -> str:
    exe = os.environ.get("TORCHGRADE_DOCKER") or shutil.which("docker")
    if not exe:
        raise DockerUnavailable(f"--sandbox docker needs the docker command, which is not "
                                f"installed here: {HOW_TO_START}")
    return exe


def client_env() -> dict[str, str]:
    """The docker CLI's environment: how to reach the engine, nothing else of ours."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
           "HOME": os.environ.get("HOME", "/tmp")}
    for key in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "DOCKER_TLS_VERIFY",
                "DOCKER_CERT_PATH", "DOCKER_API_VERSION"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def docker(*args: str, timeout: float = 30, stdin: bytes | None = None,
           ) -> subprocess.CompletedProcess[bytes]:
    """Run one docker CLI command with a time limit (never hangs on a dead engine)."""
    try:
        return subprocess.run([docker_exe(), *args], input=stdin, capture_output=True,
                              env=client_env(), timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise DockerUnavailable(f"`docker {args[0]}` did not answer within {timeout:g} s: is "
                                f"the engine at {_where()} stuck? {HOW_TO_START}") from None
    except OSError as exc:
        raise DockerUnavailable(f"the docker command cannot run ({exc}): {HOW_TO_START}"
                                ) from None


def _where() -> str:
    return os.environ.get("DOCKER_HOST") or "the default socket"


def _text(proc: subprocess.CompletedProcess[bytes]) -> str:
    return (proc.stderr or proc.stdout).decode(errors="replace").strip()[-500:]


def image_name() -> str:
    return os.environ.get(IMAGE_ENV) or DEFAULT_IMAGE


@functools.cache
def engine() -> dict[str, object]:
    """The engine's version and runtimes; raises DockerUnavailable when none answers."""
    proc = docker("info", "--format", "{{json .}}", timeout=20)
    if proc.returncode != 0:
        raise DockerUnavailable(f"no Docker engine answers at {_where()} ({_text(proc)}): "
                                f"{HOW_TO_START}")
    try:
        info = json.loads(proc.stdout)
    except json.JSONDecodeError:
        info = {}
    if info.get("ServerErrors") or not info.get("ServerVersion"):
        raise DockerUnavailable(f"no Docker engine answers at {_where()} "
                                f"({'; '.join(info.get('ServerErrors') or [])}): {HOW_TO_START}")
    return {"version": info.get("ServerVersion", "?"),
            "runtimes": sorted((info.get("Runtimes") or {}).keys())}


@functools.cache
def image_runtime(image: str) -> str:
    """``host`` for an image built by ``build_image`` (the host's Python is mounted in),
    ``image`` for one that carries its own Python and torchgrade."""
    engine()
    labels = image_labels(image)
    if labels is None:
        how = ("build it with `torchgrade docker build-image`" if image == DEFAULT_IMAGE else
               f"build or load it (e.g. `docker build -t {image} -f ci/Dockerfile .`), or "
               f"unset {IMAGE_ENV} to use {DEFAULT_IMAGE}")
        raise DockerUnavailable(f"the worker image {image} is not in the engine at {_where()}: "
                                f"{how}")
    return "host" if labels.get(RUNTIME_LABEL) == "host" else "image"


def image_labels(image: str) -> dict[str, str] | None:
    """The image's labels, or None when the engine does not have it."""
    proc = docker("image", "inspect", "--format", "{{json .Config.Labels}}", image, timeout=30)
    if proc.returncode != 0:
        return None
    try:
        return json.loads(proc.stdout) or {}
    except json.JSONDecodeError:
        return {}


def preflight(image: str | None = None) -> str:
    """Check that the engine answers and has the worker image; a line saying what was found."""
    image = image or image_name()
    runtime = image_runtime(image)
    info = engine()
    gpus = "with" if gpus_available() else "without"
    return (f"Docker engine {info['version']} at {_where()}, image {image} "
            f"({'host Python mounted' if runtime == 'host' else 'own Python'}), "
            f"{gpus} an NVIDIA runtime")


def gpus_available() -> bool:
    wanted = os.environ.get(GPUS_ENV, "").strip().lower()
    if wanted in ("all", "none"):
        return wanted == "all"
    try:
        return "nvidia" in engine()["runtimes"]  # type: ignore[operator]
    except DockerUnavailable:
        return False


# -- the local image ----------------------------------------------------------------------------
def rootfs_tar() -> bytes:
    """A near-empty root file system: mount points, users, and the host's top-level links
    (``/lib -> usr/lib``...) so that the bind-mounted host Python finds its libraries."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        def add(name: str, kind: bytes, mode: int, data: bytes = b"", link: str = "") -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = kind, mode, 0
            info.linkname, info.size = link, len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)

        for d in ("etc", "usr", "proc", "dev", "sys", "run", "var", "sbin", "root", "home",
                  SANDBOX_DIR.strip("/")):
            add(d, tarfile.DIRTYPE, 0o755)
        add("tmp", tarfile.DIRTYPE, 0o1777)
        # /sbin stays a real directory: the engine mounts its init at /sbin/docker-init.
        for name in ("bin", "lib", "lib32", "lib64", "libx32"):
            host = Path("/") / name
            if host.is_symlink():
                add(name, tarfile.SYMTYPE, 0o777, link=os.readlink(host))
            elif host.is_dir():
                add(name, tarfile.DIRTYPE, 0o755)
        add("etc/passwd", tarfile.REGTYPE, 0o644,
            b"root:x:0:0:root:/root:/bin/sh\n"
            b"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
        add("etc/group", tarfile.REGTYPE, 0o644, b"root:x:0:\nnogroup:x:65534:\n")
        add("etc/hosts", tarfile.REGTYPE, 0o644, b"127.0.0.1 localhost sandbox\n")
    return buf.getvalue()


def build_image(tag: str = DEFAULT_IMAGE) -> str:
    """Build the local worker image from local files (no registry): returns its id."""
    engine()
    proc = docker("import", "--change", f"LABEL {RUNTIME_LABEL}=host",
                  "--change", f"WORKDIR {SANDBOX_DIR}", "--message", "torchgrade worker image",
                  "-", tag, stdin=rootfs_tar(), timeout=120)
    if proc.returncode != 0:
        raise DockerUnavailable(f"`docker import` failed: {_text(proc)}")
    image_runtime.cache_clear()
    return proc.stdout.decode().strip()


# -- workers ------------------------------------------------------------------------------------
def level(limits: Limits, gpu: bool) -> str:
    """The isolation written into reports, e.g. ``docker[net=none,mem=6144MB,pids=128]``."""
    parts = ["net=none", f"mem={limits.memory_mb}MB", f"pids={limits.nproc}", "uid=nobody",
             "ro-root", "cap-drop=ALL"]
    if gpu:
        parts.append("gpus=all")
    return f"docker[{','.join(parts)}]+rlimits"


def _host_runtime_mounts() -> list[str]:
    """Read-only binds of the host's Python and engine at their own paths (as bubblewrap)."""
    binds: list[Path] = [Path("/usr")]
    for name in ("bin", "lib", "lib32", "lib64", "libx32"):
        host = Path("/") / name
        if host.is_dir() and not host.is_symlink():
            binds.append(host)
    for etc in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
                "/etc/alternatives", "/etc/fonts"):
        if Path(etc).exists():
            binds.append(Path(etc))
    roots = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), engine_dir(),
             Path(sys.executable).resolve().parent.parent, Path(sys.executable).parent.parent}
    for root in sorted(roots):
        if not any(root == b or b in root.parents for b in binds):
            binds.append(root)
    out: list[str] = []
    for b in binds:
        out += ["--mount", f"type=bind,source={b},target={b},readonly"]
    return out


def docker_argv(name: str, workdir: Path, limits: Limits, threads: int, gpu: bool,
                image: str, run_id: str) -> list[str]:
    """``docker run`` up to the image name (the worker's command follows)."""
    tmpfs = f"size={limits.tmpfs_mb}m"
    argv = [docker_exe(), "run", "--rm", "-i", "--init", "--name", name,
            "--label", f"{WORKER_LABEL}=1", "--label", f"{RUN_LABEL}={run_id or 'none'}",
            "--network", "none", "--hostname", "sandbox", "--log-driver", "none",
            "--memory", f"{limits.memory_mb}m", "--memory-swap", f"{limits.memory_mb}m",
            "--pids-limit", str(limits.nproc), "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges", "--read-only",
            "--user", f"{NOBODY}:{NOBODY}", "--ipc", "private",
            "--tmpfs", f"/tmp:rw,nosuid,nodev,{tmpfs},mode=1777",
            "--tmpfs", f"{SANDBOX_DIR}:rw,nosuid,nodev,{tmpfs},mode=1777",
            "--shm-size", f"{limits.tmpfs_mb}m", "--workdir", SANDBOX_DIR,
            "--env", "HOME=/tmp", "--env", "TMPDIR=/tmp", "--env", "LANG=C.UTF-8",
            "--env", f"OMP_NUM_THREADS={threads}", "--env", f"MKL_NUM_THREADS={threads}"]
    if gpu and gpus_available():
        # The GPU the batch gave this grading (batch.gpu_slots), else every GPU.
        devices = os.environ.get("CUDA_VISIBLE_DEVICES", "")
        argv += ["--gpus", f'"device={devices}"' if devices else "all"]
    if image_runtime(image) == "host":
        argv += ["--env", "PATH=/usr/bin:/bin"] + _host_runtime_mounts()
    for entry in sorted(workdir.iterdir()):
        argv += ["--mount",
                 f"type=bind,source={entry.resolve()},target={SANDBOX_DIR}/{entry.name},readonly"]
    return argv + [image]


def launch(spec: WorkerSpec) -> Launch:
    """Start ``spec``'s worker in a container; its ``rx``/``tx``/``out`` become the container's
    stdin/stdout/stderr."""
    image = image_name()
    name = f"torchgrade-{uuid.uuid4().hex[:16]}"
    argv = docker_argv(name, spec.workdir, spec.limits, spec.threads, spec.gpu, image,
                       os.environ.get(RUN_ENV, ""))
    if image_runtime(image) == "host":
        python, code = sys.executable, worker_code()
    else:
        python, code = "python3", "from torchgrade.worker import main; main()"
    argv += [python, "-I", "-u", "-c", code, "--module-name", spec.module_name,
             "--module-file", f"{SANDBOX_DIR}/{spec.file_name}", "--rx", "0", "--tx", "1",
             "--threads", str(spec.threads), "--limits", json.dumps(spec.worker_limits())]
    proc = subprocess.Popen(argv, stdin=spec.rx, stdout=spec.tx, stderr=spec.out,
                            env=client_env(), cwd=str(spec.workdir), start_new_session=True)
    # Killing the docker CLI alone would leave the container running: stopping removes it.
    return Launch(proc, level(spec.limits, spec.gpu and gpus_available()), [], container=name,
                  meter=TreeMeter(_container_pid(name)),
                  stop=functools.partial(remove_container, name))


def _container_pid(name: str) -> Callable[[], int | None]:
    """The host pid of the container's first process (its process tree is the worker), asked
    of the engine once it runs; None until then, or where the engine's processes are not
    visible here (a remote engine: budgets then wait for that answer)."""
    found: list[int] = []
    asked = [0.0]

    def pid() -> int | None:
        if not found and time.monotonic() - asked[0] > 1.0:
            asked[0] = time.monotonic()
            try:
                out = docker("inspect", "--format", "{{.State.Pid}}", name, timeout=10)
            except DockerUnavailable:
                return None
            text = out.stdout.decode().strip()
            if out.returncode == 0 and text.isdigit() and int(text) > 0 \
                    and Path(f"/proc/{text}").is_dir():
                found.append(int(text))
        return found[0] if found else None

    return pid


def remove_container(name: str) -> None:
    """Kill and remove one worker's container (no error when it is already gone)."""
    try:
        docker("rm", "--force", name, timeout=30)
    except DockerUnavailable:
        pass


def containers(run_id: str | None = None) -> list[str]:
    """Names of torchgrade worker containers (of one grading when ``run_id`` is given)."""
    label = f"{RUN_LABEL}={run_id}" if run_id else WORKER_LABEL
    proc = docker("ps", "--all", "--filter", f"label={label}",
                  "--format", "{{.Names}}", timeout=30)
    return proc.stdout.decode().split() if proc.returncode == 0 else []


def remove_containers(run_id: str) -> list[str]:
    """Remove every container left by one grading (a grader killed for time leaves its
    worker's container running: the CLI died, the container did not)."""
    try:
        left = containers(run_id)
        if left:
            docker("rm", "--force", *left, timeout=60)
    except DockerUnavailable:
        return []
    return left


def wait_gone(names: list[str], timeout: float = 10.0) -> list[str]:
    """The given containers still present after up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        alive = set(containers())
        left = [n for n in names if n in alive]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)
