"""The Docker executor (``--sandbox docker``), tested against a real Docker engine.

The module starts its own ``dockerd`` (no bridge, no iptables, its exec root and socket under a
temporary folder; the ``vfs`` storage driver when overlay fails) on a data root kept per
machine (``/var/tmp/torchgrade-test-docker``, one test run at a time holds it), builds both
worker images from local files, nothing pulled: ``torchgrade-runner:local`` (the host's Python
mounted) and the self-contained ``torchgrade-runner:self`` (its own Debian, Python, pinned
requirements and engine: ``torchgrade.isolation.runner_image``; minutes the first time on a
machine, then reused while the requirements are the same). It grades the toy course's honest
reference, an example mistake and a few faults and attacks in ONE batch with every worker in a
container of the self-contained image, and stops the daemon at the end. Where no engine can
start (no ``dockerd``, not root, no cgroups...) or the image cannot be built (no debootstrap)
every engine test skips and says why; the tests of the CLI without an engine and of the CI
workflow always run.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from torchgrade.assignment import load
from torchgrade.batch import grade_batch
from torchgrade.cli import _parser
from torchgrade.isolation import Limits, WorkerSpec, runner_image
from torchgrade.isolation import docker as docker_exec
from torchgrade.report import Report
from torchgrade.runner import Options

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
COURSE = HERE / "toy_course"
FAULTS = HERE / "submissions" / "faults"
ATTACKS = HERE / "submissions" / "attacks"
WORKFLOW = ROOT / "ci" / "github" / "grade.yml"

# Prints what the worker sees from inside its container; its maths is right (10/10).
PROBE = '''
import os, socket, sys, torch

def _read(path):
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError as exc:
        return f"unreadable ({type(exc).__name__})"

def _writable(path):
    try:
        with open(os.path.join(path, "probe.txt"), "w") as fh:
            fh.write("x")
        return "yes"
    except OSError as exc:
        return f"no ({exc.strerror})"

print("probe: python", sys.executable, torch.__version__)
print("probe: uid", os.getuid())
print("probe: hostname", socket.gethostname())
print("probe: memory.limit_in_bytes", _read("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
      _read("/sys/fs/cgroup/memory.max"))
print("probe: pids.max", _read("/sys/fs/cgroup/pids/pids.max"), _read("/sys/fs/cgroup/pids.max"))
print("probe: interfaces", sorted(line.split(":")[0].strip()
                                   for line in _read("/proc/net/dev").splitlines()[2:]))
print("probe: sandbox", sorted(os.listdir(".")))
print("probe: grader visible", os.path.exists(GRADERS))
print("probe: root writable", _writable("/"))
print("probe: tmp writable", _writable("/tmp"))

def scale(x, s):
    if not torch.isfinite(torch.tensor(s)):
        raise ValueError("s must be finite")
    return x * s

def total(x):
    return x.sum()
'''

# Hangs in the public check's call (s == 2.5) only: that check times out, the next ones are
# graded on a fresh container.
HANG_ONCE = '''
import torch

def scale(x, s):
    while s == 2.5:
        pass
    if not torch.isfinite(torch.tensor(s)):
        raise ValueError("s must be finite")
    return x * s

def total(x):
    return x.sum()
'''


@dataclasses.dataclass
class Engine:
    host: str  # the DOCKER_HOST of the daemon this module started
    storage: str
    start_s: float  # dockerd start until it answers
    image_s: float  # building torchgrade-runner:local
    built: runner_image.Built | None  # torchgrade-runner:self, built or reused
    why_not_built: str = ""  # when it could not be built here (no debootstrap, no mirror...)


KEEP = Path(os.environ.get("TORCHGRADE_TEST_DOCKER", "/var/tmp/torchgrade-test-docker"))


def _wait_answering(env: dict[str, str], proc: subprocess.Popen, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        ok = subprocess.run([docker_exec.docker_exe(), "version"], env=env,
                            capture_output=True, timeout=30).returncode == 0
        if ok:
            return True
        time.sleep(0.3)
    return False


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _start_dockerd(base: Path, keep: Path) -> tuple[subprocess.Popen, str, str, float]:
    """Start a private dockerd under ``base``: (process, DOCKER_HOST, storage driver, seconds);
    pytest.skip with the reason where none can start."""
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        pytest.skip("no Docker engine could start here: dockerd is not installed "
                    "(apt-get install docker.io; `make install` tries)")
    if os.geteuid() != 0:
        pytest.skip("no Docker engine could start here: dockerd needs root")
    try:
        docker_exec.docker_exe()
    except docker_exec.DockerUnavailable as exc:
        pytest.skip(f"no Docker engine could start here: {exc}")
    host = f"unix://{base}/docker.sock"
    env = {**docker_exec.client_env(), "DOCKER_HOST": host}
    why = ""
    for storage in ("", "vfs"):  # the default (overlay2) first
        data = keep / f"data{storage}"  # kept: the images built here are reused
        argv = [dockerd, "--bridge=none", "--iptables=false", "--ip6tables=false",
                "--data-root", str(data), "--exec-root", str(base / "exec"),
                "--host", host, "--pidfile", str(base / "d.pid"), "--log-level", "warn"]
        if storage:
            argv += ["--storage-driver", storage]
        log = base / f"dockerd{storage}.log"
        started = time.monotonic()
        with log.open("wb") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                    start_new_session=True)
        if _wait_answering(env, proc, 45):
            return proc, host, storage or "default", time.monotonic() - started
        _stop(proc)
        why = log.read_text(errors="replace").strip().splitlines()[-3:]
    pytest.skip(f"no Docker engine could start here: dockerd did not answer ({' | '.join(why)})")


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    # A short path: the daemon's unix sockets live under it (108 bytes at most).
    base = Path(tempfile.mkdtemp(prefix="tgdocker-", dir="/tmp"))
    old = {k: os.environ.get(k) for k in ("DOCKER_HOST", docker_exec.IMAGE_ENV)}
    proc = None
    KEEP.mkdir(parents=True, exist_ok=True)
    lock = (KEEP / "lock").open("w")
    fcntl.flock(lock, fcntl.LOCK_EX)  # one daemon on this data root at a time
    try:
        proc, host, storage, start_s = _start_dockerd(base, KEEP)
        os.environ["DOCKER_HOST"] = host  # the grader processes inherit it
        os.environ.pop(docker_exec.IMAGE_ENV, None)
        docker_exec.engine.cache_clear()
        docker_exec.image_runtime.cache_clear()
        for name in docker_exec.containers():  # left by a run that was killed
            docker_exec.remove_container(name)
        started = time.monotonic()
        docker_exec.build_image()
        image_s = time.monotonic() - started
        built, why = None, ""
        if storage == "vfs":
            why = ("the engine runs on the vfs storage driver here, which copies the 6 GiB "
                   "self-contained image per layer")
        else:
            try:
                built = runner_image.build(ROOT, log=lambda line: None)
            except runner_image.ImageBuildError as exc:
                why = str(exc)
        # Without the self-contained image the batch below grades with torchgrade-runner:local
        # (the host's Python mounted): everything but the image's own tests still runs.
        yield Engine(host, storage, start_s, image_s, built, why)
    finally:
        if proc is not None:
            for name in docker_exec.containers():  # only after a failed test
                docker_exec.remove_container(name)
            _stop(proc)
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        docker_exec.engine.cache_clear()
        docker_exec.image_runtime.cache_clear()
        subprocess.run(["umount", "-R", str(base / "exec")], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


class TcpTrap:
    """A TCP server on the host's 127.0.0.1 that records every connection."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.seen: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self.sock.accept()
            except OSError:
                continue
            self.seen.append(f"tcp from {peer}")
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@dataclasses.dataclass
class Graded:
    engine: Engine
    reports: dict[str, Report]  # in containers
    bwrap: dict[str, Report]  # the same two submissions with the default sandbox
    trap: TcpTrap
    wall_s: float
    out_dir: Path


@pytest.fixture(scope="module")
def graded(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Graded]:
    root = tmp_path_factory.mktemp("docker")
    subs = root / "submissions"
    trap = TcpTrap()
    sources = {
        "honest": (COURSE / "solutions" / "toy" / "toy.py").read_text(),
        "wrong_factor": (COURSE / "examples" / "toy" / "wrong_factor" / "toy.py").read_text(),
        "probe": PROBE.replace("GRADERS", repr(str(COURSE / "graders"))),
        "network": (ATTACKS / "network.py").read_text().replace(
            "PORT = 47123", f"PORT = {trap.port}"),
    }
    sources["hang_once"] = HANG_ONCE
    for fault in ("fork_bomb", "memory_bomb", "segfault"):
        sources[fault] = (FAULTS / f"{fault}.py").read_text()
    for name, text in sources.items():
        (subs / name).mkdir(parents=True)
        (subs / name / "toy.py").write_text(text)
    assignment = load("toy", COURSE)
    started = time.monotonic()
    os.environ[docker_exec.IMAGE_ENV] = (  # the graders inherit it
        engine.built.tag if engine.built else docker_exec.DEFAULT_IMAGE)
    try:
        batch = grade_batch(assignment, subs, root / "reports",
                            options=Options(sandbox="docker"), jobs=2, students=sorted(sources),
                            use_cache=False)
    finally:
        os.environ.pop(docker_exec.IMAGE_ENV, None)
    wall = time.monotonic() - started
    same = grade_batch(assignment, subs, root / "reports-default", options=Options(), jobs=2,
                       students=["honest", "wrong_factor"], use_cache=False)
    yield Graded(engine, {r.student: r for r in batch.reports},
                 {r.student: r for r in same.reports}, trap, wall, root / "reports")
    trap.close()


def _statuses(report: Report) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


def _check(report: Report, name: str):
    return next(c for c in report.checks if c.name == name)


def _processes_named(comm: str) -> list[int]:
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if (proc / "comm").read_text().strip() == comm:
                pids.append(int(proc.name))
        except OSError:
            pass
    return pids


# -- grading in containers ----------------------------------------------------------------------
def test_same_scores_as_the_default_sandbox(graded: Graded) -> None:
    """Do the reference and an example mistake get, check for check, the same result in a
    container as with the default sandbox, and does the report say docker and its limits?"""
    for name in ("honest", "wrong_factor"):
        report = graded.reports[name]
        assert _statuses(report) == _statuses(graded.bwrap[name]), name
        assert report.score == graded.bwrap[name].score
        assert report.sandbox.startswith("docker[net=none,mem=6144MB,pids=128,"), report.sandbox
    assert graded.reports["honest"].score == 10
    assert graded.reports["wrong_factor"].score < 10


def test_workers_carry_their_own_python(graded: Graded) -> None:
    """Built here from Debian packages and this machine's wheels, nothing pulled: does the
    self-contained image run the worker on its own Python, torch and engine (nothing of the
    host mounted), and say so in its labels?"""
    if graded.engine.built is None:
        pytest.skip(f"the self-contained image could not be built: {graded.engine.why_not_built}")
    out = graded.reports["probe"].student_output
    assert f"probe: python {runner_image.VENV}/bin/python" in out, out
    assert "2.14.1" in out
    labels = docker_exec.image_labels(graded.engine.built.tag)
    assert labels is not None and labels[docker_exec.RUNTIME_LABEL] == "image"
    assert labels[runner_image.ENGINE_LABEL] == runner_image.engine_key()
    print(f"\nself-contained image: {graded.engine.built.size_bytes / 2**30:.2f} GiB, "
          f"{'built' if graded.engine.built.base_built else 'reused'} in "
          f"{graded.engine.built.seconds:.0f} s")


def test_the_ci_image_holds_the_course_for_root_only(engine: Engine) -> None:
    """The CI runner image (``--with-course``): built on the reused base, does it hold the
    course for a grader running as root, and keep it from a worker's uid nobody, who still
    runs the image's Python and engine?"""
    if engine.built is None:
        pytest.skip(f"the self-contained image could not be built: {engine.why_not_built}")
    built = runner_image.build(ROOT, "torchgrade-runner:ci-test", log=lambda line: None,
                               course=True)
    assert not built.base_built
    try:
        def run(user: str, *cmd: str) -> subprocess.CompletedProcess:
            return subprocess.run([docker_exec.docker_exe(), "run", "--rm", "--network",
                                   "none", "--user", user, built.tag, *cmd],
                                  capture_output=True, text=True, timeout=120,
                                  env=docker_exec.client_env())
        listed = run("0", "ls", f"{runner_image.COURSE_DIR}/graders")
        assert listed.returncode == 0 and "nt_xent" in listed.stdout, listed.stderr
        denied = run("65534", "ls", runner_image.COURSE_DIR)
        assert denied.returncode != 0 and "Permission denied" in denied.stderr
        engine_ok = run("65534", "python", "-c", "import torchgrade.worker, torch; print('ok')")
        assert engine_ok.returncode == 0 and "ok" in engine_ok.stdout, engine_ok.stderr
    finally:
        docker_exec.docker("rmi", "--force", built.tag, timeout=120)


def test_the_container_is_locked_down(graded: Graded) -> None:
    """Inside: uid nobody, the limits in its cgroups, only a loopback interface, only the
    submission in its working directory, no grader, a read-only root, a writable /tmp. And
    nothing it printed reached the reply channel (its maths still scores 10/10)."""
    report = graded.reports["probe"]
    assert report.score == 10, _statuses(report)
    said = {line.split(" ", 2)[1]: line.split(" ", 2)[2]
            for line in report.student_output.splitlines() if line.startswith("probe: ")}
    assert said["uid"] == "65534"
    assert said["hostname"] == "sandbox"
    assert str(6144 * 1024 * 1024) in said["memory.limit_in_bytes"]
    assert "128" in said["pids.max"]
    assert said["interfaces"] == "['lo']"
    assert said["sandbox"] == "['toy.py']"
    assert said["grader"] == "visible False"
    assert said["root"].startswith("writable no (Read-only file system)")
    assert said["tmp"] == "writable yes"


def test_no_network(graded: Graded) -> None:
    """Can a submission in a container reach a server on the host's 127.0.0.1?"""
    report = graded.reports["network"]
    assert report.score == 0
    assert graded.trap.seen == []
    assert "CONNECTED" not in report.student_output
    assert "network: tcp" in report.student_output  # it did try


def test_fork_bomb_is_contained(graded: Graded) -> None:
    """Does --pids-limit stop a fork bomb, with the error reported, the next check passing and
    no bomb process left on the host?"""
    report = graded.reports["fork_bomb"]
    check = _check(report, "test_scale_public")
    assert check.status == "error", check.feedback
    born = int(re.search(r"fork bomb: (\d+) children", check.feedback).group(1))
    assert born < Limits().nproc and born < 128
    assert _check(report, "test_total_scalar").status == "passed"
    assert _processes_named("tgforkbomb") == []


def test_memory_bomb_is_an_error_in_its_own_report(graded: Graded) -> None:
    """Does a 100 GB allocation (and an endless one) fail inside the container's limits, as an
    error in that report only?"""
    report = graded.reports["memory_bomb"]
    for name in ("test_scale_public", "test_total_scalar"):
        check = _check(report, name)
        assert check.status == "error", (name, check.feedback)
        assert "memory" in check.feedback.lower()


def test_segfault_is_reported_and_a_fresh_container_serves_the_next_check(
        graded: Graded) -> None:
    report = graded.reports["segfault"]
    check = _check(report, "test_scale_public")
    assert check.status == "error" and "SIGSEGV" in check.feedback, check.feedback
    assert report.score == 8
    assert report.extra["worker_starts"] == 2


def test_endless_loop_times_out(graded: Graded) -> None:
    """Is a container whose worker hangs stopped at the check's limit (and removed: see
    below), with the next checks graded on a fresh one?"""
    report = graded.reports["hang_once"]
    check = _check(report, "test_scale_public")
    assert check.status == "timeout", check.feedback
    assert report.score == 8, _statuses(report)
    assert report.extra["worker_starts"] == 2


def test_no_container_is_left_behind(graded: Graded) -> None:
    """After a batch with timeouts, crashes and bombs, is every worker container gone?"""
    assert graded.reports  # graded
    deadline = time.monotonic() + 10
    while docker_exec.containers() and time.monotonic() < deadline:
        time.sleep(0.3)
    assert docker_exec.containers() == []


def _wait_for(container: str, run_id: str) -> None:
    deadline = time.monotonic() + 30
    while container not in docker_exec.containers(run_id):
        assert time.monotonic() < deadline, f"{container} never started"
        time.sleep(0.2)


def test_stopped_or_orphaned_workers_leave_no_container(engine: Engine, tmp_path: Path) -> None:
    """A worker stopped by the grader (a timeout, a crash, the end of grading) has its container
    removed at once. When instead the process that started it dies (a grader killed for
    time), the container outlives its docker CLI, and the runner's clean-up by label removes
    it."""
    workdir = tmp_path / "w"
    workdir.mkdir()
    (workdir / "toy.py").write_text("x = 1\n")
    run_id = f"test-{os.getpid()}"
    os.environ[docker_exec.RUN_ENV] = run_id
    fds = [os.pipe() for _ in range(6)]  # kept open: each worker waits for its requests
    try:
        stopped, orphaned = (docker_exec.launch(WorkerSpec(
            module_name="toy", workdir=workdir, rx=fds[i][0], tx=fds[i + 1][1],
            out=fds[i + 2][1], limits=Limits())) for i in (0, 3))
        _wait_for(stopped.container, run_id)
        _wait_for(orphaned.container, run_id)
        stopped.kill()  # what WorkerClient.stop() does
        assert stopped.process.poll() is not None
        assert docker_exec.containers(run_id) == [orphaned.container]
        orphaned.process.kill()  # the CLI dies ...
        orphaned.process.wait()
        time.sleep(1.0)
        assert docker_exec.containers(run_id) == [orphaned.container]  # ... its container not
        assert docker_exec.remove_containers(run_id) == [orphaned.container]
        assert docker_exec.containers(run_id) == []
    finally:
        os.environ.pop(docker_exec.RUN_ENV, None)
        for r, w in fds:
            os.close(r)
            os.close(w)


def test_cli_docker_check(engine: Engine) -> None:
    """`torchgrade docker check` names the engine and the image."""
    proc = subprocess.run([sys.executable, "-m", "torchgrade", "docker", "check"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "torchgrade-runner:local (host Python mounted)" in proc.stdout


# -- without an engine --------------------------------------------------------------------------
def test_without_an_engine_grade_fails_fast_saying_how_to_start_one(tmp_path: Path) -> None:
    """`torchgrade grade ... --sandbox docker` with no engine: exit 2 at once, with a message
    saying how to start one, and no report blaming a student."""
    (tmp_path / "subs" / "ann").mkdir(parents=True)
    shutil.copyfile(COURSE / "solutions" / "toy" / "toy.py", tmp_path / "subs" / "ann" / "toy.py")
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "torchgrade", "--root", str(COURSE), "grade", "toy",
         str(tmp_path / "subs"), "--out", str(tmp_path / "out"), "--sandbox", "docker"],
        capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2, proc.stderr
    assert time.monotonic() - started < 60
    assert "no Docker engine answers" in proc.stderr or "not installed" in proc.stderr
    assert "dockerd" in proc.stderr and "torchgrade docker build-image" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_help_teaches_the_docker_sandbox(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["grade", "--help"], ["docker", "--help"]):
        with pytest.raises(SystemExit):
            _parser().parse_args(argv)
    text = capsys.readouterr().out
    assert "--sandbox {auto,bwrap,docker,none}" in text and "--docker-image" in text
    assert "torchgrade docker build-image" in text


# -- the CI workflow ----------------------------------------------------------------------------
def test_merging_shards_gives_one_csv_of_everyone(graded: Graded, tmp_path: Path) -> None:
    """Does ci/merge_shards.py merge two shards' --out folders into one folder and one CSV?"""
    students = sorted(graded.reports)
    for i, student in enumerate(students):
        shutil.copytree(graded.out_dir / student, tmp_path / f"shard{i % 2}" / student)
    proc = subprocess.run([sys.executable, str(ROOT / "ci" / "merge_shards.py"), "toy",
                           str(tmp_path / "shard0"), str(tmp_path / "shard1"), "--out",
                           str(tmp_path / "merged")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = (tmp_path / "merged" / "toy.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == students
    assert (tmp_path / "merged" / "toy-summary.html").is_file()
    assert (tmp_path / "merged" / "honest" / "toy.json").is_file()


def _expand(line: str, shard: str = "2", total: str = "4") -> str:
    values = {"matrix.shard": shard, "strategy.job-total": total}
    return re.sub(r"\$\{\{\s*([^}]+?)\s*\}\}", lambda m: values.get(m[1], "X"), line)


def _torchgrade_commands(text: str) -> list[list[str]]:
    """Every `torchgrade ...` command line of the workflow (with \\ continuations joined)."""
    joined = re.sub(r"\\\n\s*", " ", text)
    commands = []
    for line in joined.splitlines():
        match = re.search(r"(?:^|\s)torchgrade\s+(--root\s+\S+\s+)?"
                          r"(grade|check|audit|docker|list)\b.*", line)
        if match:
            commands.append(shlex.split(_expand(match[0].strip()))[1:])
    return commands


def test_workflow_commands_use_the_clis_real_flags() -> None:
    """Does every torchgrade command in ci/github/grade.yml parse with the real CLI, grading a
    shard `--shard ${{ matrix.shard }}/${{ strategy.job-total }}` into the uploaded --out?"""
    text = WORKFLOW.read_text()
    commands = _torchgrade_commands(text)
    grades = [c for c in commands if "grade" in c[:3]]
    assert grades, commands
    for argv in commands:
        _parser().parse_args(argv)  # SystemExit on an unknown flag
    args = _parser().parse_args(grades[0])
    assert args.shard == "2/4"
    assert args.sandbox == "docker" and args.profile == "gpu" and args.out is not None
    assert args.root == Path(runner_image.COURSE_DIR)
    assert "--shard ${{ matrix.shard }}/${{ strategy.job-total }}" in text
    # The runner image is built with the self-contained recipe, as the tests above grade with.
    assert "python3 -m torchgrade.isolation.runner_image" in text and "--with-course" in text
    helped = subprocess.run([sys.executable, "-m", "torchgrade.isolation.runner_image",
                             "--help"], capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and "--with-course" in helped.stdout
    assert "actions/upload-artifact" in text and "actions/download-artifact" in text


def test_workflow_matrix_of_shards_on_a_self_hosted_gpu_runner() -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed: the structure of the "
                               "workflow is not parsed (its commands are, by the test above)")
    flow = yaml.safe_load(WORKFLOW.read_text())
    jobs = flow["jobs"]
    grade = jobs["grade"]
    assert grade["runs-on"] == ["self-hosted", "gpu"]
    shards = grade["strategy"]["matrix"]["shard"]
    assert shards == list(range(1, len(shards) + 1)) and len(shards) >= 2
    assert grade["strategy"]["fail-fast"] is False
    merge = jobs["merge"]
    assert merge["needs"] == "grade" or merge["needs"] == ["grade"]
    on = flow.get("on", flow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert "push" not in on and "pull_request" not in on  # runs when asked, not on every push
