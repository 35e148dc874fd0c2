"""The worker template (torchgrade.isolation.template): workers forked from a sandboxed process
that imported torch once. Does a forked worker get everything a fresh bubblewrap worker gets,
and does nothing of one student's worker reach the next?

Each test starts real workers from a real template and runs real Python in them; what a
worker sees is printed by its own code and read back from its output pipe.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from torchgrade import protocol
from torchgrade.assignment import load
from torchgrade.isolation import (
    TEMPLATE_ENV,
    Launch,
    Limits,
    WorkerSpec,
    bwrap_available,
    launch_worker,
)
from torchgrade.isolation import template as worker_template
from torchgrade.isolation.bwrap import argv as _bwrap_argv
from torchgrade.runner import Options, grade_submission

HERE = Path(__file__).resolve().parent
COURSE = HERE / "toy_course"

pytestmark = pytest.mark.skipif(not bwrap_available(),
                                reason="bubblewrap cannot create its namespaces here")


@pytest.fixture(scope="module")
def template() -> str:
    path = worker_template.socket_for(False, ())
    if not path or worker_template.unavailable_why():
        pytest.skip(f"the worker template cannot run here: {worker_template.unavailable_why()}")
    return path


class Worker:
    """One worker from the template, serving a module made of ``source``."""

    def __init__(self, path: str, source: str, name: str = "probe") -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="tg-wt-test-"))
        file = self.folder / f"{name}.py"
        file.write_text(source)
        req_r, self.req_w = os.pipe()
        self.rep_r, rep_w = os.pipe()
        self.out_r, out_w = os.pipe()
        try:
            self.proc = worker_template.request_worker(
                path, module_name=name, file=file, rx=req_r, tx=rep_w, out=out_w,
                tmpfs_bytes=64 << 20, threads=1, limits={"cpu_s": 120, "memory_mb": 6144})
        finally:
            for fd in (req_r, rep_w, out_w):
                os.close(fd)
        self.tx = os.fdopen(self.req_w, "wb")
        self.rx = os.fdopen(self.rep_r, "rb")

    def hello(self) -> dict:
        protocol.write_frame(self.tx, {"op": "hello"}, None)
        return protocol.read_frame(self.rx, None, None)

    def finish(self, timeout: float = 30) -> tuple[int, str]:
        """Close the request pipe (the worker ends), then its exit status and output."""
        self.tx.close()
        code = self.proc.wait(timeout)
        chunks = []
        while chunk := os.read(self.out_r, 1 << 16):
            chunks.append(chunk)
        os.close(self.out_r)
        self.rx.close()
        self.proc.close()
        return code, b"".join(chunks).decode(errors="replace")


def _said(output: str, tag: str) -> dict:
    line = next(line for line in output.splitlines() if line.startswith(tag + " "))
    return json.loads(line[len(tag) + 1:])


FACTS = r'''
import json, os, socket
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return line.split()[1]
facts = {
    "pid": os.getpid(), "procs": sorted(p for p in os.listdir("/proc") if p.isdigit()),
    "uid": os.getuid(), "hostname": socket.gethostname(), "cwd": os.getcwd(),
    "here": sorted(os.listdir(".")), "tmp": os.listdir("/tmp"), "shm": os.listdir("/dev/shm"),
    "cap_eff": status("CapEff"), "cap_prm": status("CapPrm"), "cap_bnd": status("CapBnd"),
    "cap_amb": status("CapAmb"), "no_new_privs": status("NoNewPrivs"),
    "graders_visible": os.path.exists(%(graders)r), "stdin": os.read(0, 10).decode(),
}
import sys
for name in ("/proc/sys/kernel/hostname", "/proc/sysrq-trigger", sys.prefix + "/tg-probe",
             os.path.dirname(os.__file__) + "/tg-probe"):
    try:
        with open(name, "w") as f:
            f.write("x")
        facts[name] = "written"
    except OSError as exc:
        facts[name] = type(exc).__name__
try:
    socket.create_connection(("127.0.0.1", 22), timeout=2)
    facts["network"] = "connected"
except OSError as exc:
    facts["network"] = type(exc).__name__
print("FACTS " + json.dumps(facts), flush=True)
'''


def test_a_forked_worker_has_its_own_sandbox(template: str) -> None:
    """pid 1 of its own pid namespace, no capability, uid nobody, empty fresh /tmp and
    /dev/shm, only its submission in its folder, kernel knobs read-only, no network, no
    grader files, an empty stdin."""
    worker = Worker(template, FACTS % {"graders": str(HERE.parent / "graders")})
    reply = worker.hello()
    code, output = worker.finish()
    assert reply["ok"], reply
    facts = _said(output, "FACTS")
    assert facts["pid"] == 1 and facts["procs"] == ["1"], facts
    assert facts["uid"] == 65534 and facts["hostname"] == "sandbox"
    assert facts["cwd"] == "/sandbox" and facts["here"] == ["probe.py"]
    # /tmp holds only the mount points of the Python install, when that lies under /tmp
    # (a checkout there), exactly as a fresh bubblewrap worker's /tmp.
    expected = {Path(p).parts[2] for p in
                worker_template.keep_under_tmp(_bwrap_argv(HERE, Limits(), False))}
    assert set(facts["tmp"]) == expected and facts["shm"] == [], (facts["tmp"], expected)
    for name, said in facts.items():
        if name.endswith("tg-probe"):
            assert said != "written", name
    for cap in ("cap_eff", "cap_prm", "cap_bnd", "cap_amb"):
        assert int(facts[cap], 16) == 0, (cap, facts[cap])
    assert facts["no_new_privs"] == "1"
    assert facts["/proc/sys/kernel/hostname"] != "written"
    assert facts["/proc/sysrq-trigger"] != "written"
    assert facts["network"] != "connected"
    assert facts["graders_visible"] is False and facts["stdin"] == ""
    assert code == 0


LEAVER = r'''
import os, time
TOKEN = %(token)r
for folder in ("/tmp", "/dev/shm", "."):
    with open(os.path.join(folder, "left-" + TOKEN), "w") as f:
        f.write(TOKEN)
KEEP = [TOKEN * 4 for _ in range(100)]
print("LEFT " + str(len(KEEP)), flush=True)
'''

SNOOPER = r'''
import json, os, re
PREFIX = "TGLEAK" + "-"
found = set()
for folder in ("/tmp", "/dev/shm", ".", "/"):
    for name in os.listdir(folder):
        if PREFIX in name:
            found.add(name)
for pid in os.listdir("/proc"):
    if pid.isdigit():
        for what in ("cmdline", "environ"):
            try:
                text = open(f"/proc/{pid}/{what}", errors="replace").read()
                found.update(re.findall(PREFIX + "[0-9a-f]{32}", text))
            except OSError:
                pass
# Its own memory, inherited from the template: anonymous and heap mappings.
scanned = 0
with open("/proc/self/maps") as maps, open("/proc/self/mem", "rb", 0) as mem:
    for line in maps:
        fields = line.split()
        lo, hi = (int(x, 16) for x in fields[0].split("-"))
        anonymous = len(fields) < 6 or fields[5] in ("[heap]", "[stack]")
        if "r" not in fields[1] or not anonymous or hi - lo > 256 << 20:
            continue
        try:
            mem.seek(lo)
            data = mem.read(hi - lo)
        except OSError:
            continue
        scanned += len(data)
        found.update(m.decode() for m in re.findall(PREFIX.encode() + rb"[0-9a-f]{32}", data))
print("SNOOPED " + json.dumps({"found": sorted(found), "scanned": scanned}), flush=True)
'''


def test_nothing_of_one_worker_reaches_the_next(template: str) -> None:
    """A worker leaves a token in /tmp, /dev/shm, its folder and its memory, and stays alive;
    a second worker, forked while the first runs and again after it ended, looks in its own
    files, in every process it can see and in its own memory (inherited from the template):
    it finds nothing. The grader never hands the template a submission's text, only a
    descriptor the forked child reads, so not even the template's freed memory held it."""
    token = "TGLEAK-" + secrets.token_hex(16)
    leaver = Worker(template, LEAVER % {"token": token}, name="leaver")
    assert leaver.hello()["ok"]
    during = Worker(template, SNOOPER, name="snooper")
    assert during.hello()["ok"]
    _, during_out = during.finish()
    _, leaver_out = leaver.finish()
    after = Worker(template, SNOOPER, name="snooper")
    assert after.hello()["ok"]
    _, after_out = after.finish()
    assert "LEFT 100" in leaver_out
    for output in (during_out, after_out):
        snooped = _said(output, "SNOOPED")
        assert token not in snooped["found"], snooped
        assert snooped["scanned"] > 1 << 20  # it did read its memory
    # The snooper does find a token where there is one: its own, in its own memory.
    own = "TGLEAK-" + secrets.token_hex(16)
    selfcheck = Worker(template, f"MINE = {own!r} * 3\n" + SNOOPER, name="snooper")
    assert selfcheck.hello()["ok"]
    assert own in _said(selfcheck.finish()[1], "SNOOPED")["found"]


def _host_processes_with(word: str) -> list[int]:
    pids = []
    for pid in os.listdir("/proc"):
        try:
            if pid.isdigit() and word in Path(f"/proc/{pid}/cmdline").read_text():
                pids.append(int(pid))
        except OSError:
            pass
    return pids


CHILDREN = r'''
import subprocess
subprocess.Popen(["/bin/sh", "-c", "exec sleep %(seconds)s"], start_new_session=True)
print("SPAWNED {}", flush=True)
'''


@pytest.mark.parametrize("how", ["kill", "grader_gone"])
def test_killing_or_leaving_a_worker_ends_it_and_its_children(template: str, how: str) -> None:
    """``kill``: the grader kills the worker through its pidfds (a timeout). ``grader_gone``:
    the grader's socket closes with the worker still running (the grader died), and the
    template kills the worker. Either way its whole pid namespace ends, a daemon child
    included."""
    seconds = f"{time.time() % 1000 + 1000:.3f}"  # a unique argument to find it by
    worker = Worker(template, CHILDREN % {"seconds": seconds})
    assert worker.hello()["ok"]
    deadline = time.monotonic() + 10
    while not _host_processes_with(seconds) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _host_processes_with(seconds), "the worker's child never started"
    if how == "kill":
        worker.proc.kill()
        code = worker.proc.wait(10)
        assert code == 128 + 9
    else:
        worker.proc.conn.close()
    deadline = time.monotonic() + 10
    while _host_processes_with(seconds) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _host_processes_with(seconds) == []


def test_without_a_template_a_worker_starts_afresh(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A template that is gone (its socket path dead) costs nothing but the attempt: the
    worker is started afresh by bubblewrap, and its level says so."""
    workdir = tmp_path / "w"
    workdir.mkdir()
    (workdir / "probe.py").write_text("X = 1\n")
    monkeypatch.setenv(TEMPLATE_ENV, str(tmp_path / "no-such-socket"))
    fds = [os.pipe() for _ in range(3)]
    launch: Launch = launch_worker(WorkerSpec(module_name="probe", workdir=workdir,
                                              rx=fds[0][0], tx=fds[1][1], out=fds[2][1],
                                              limits=Limits()))
    try:
        assert launch.level.startswith("bwrap+") and "template" not in launch.level
    finally:
        for _, w in fds:
            os.close(w)
        launch.kill()
        for r, _ in fds:
            os.close(r)


def test_grading_is_the_same_with_and_without_the_template() -> None:
    """The toy reference and a wrong toy submission get the same checks, points and feedback
    from forked and fresh workers; the report names the level that ran."""
    assignment = load("toy", COURSE)
    wrong = HERE / "submissions" / "attacks" / "monkeypatch_compare.py"
    for submission in (COURSE / "solutions" / "toy" / "toy.py", wrong):
        forked = grade_submission(assignment, submission, "s", Options())
        fresh = grade_submission(assignment, submission, "s", Options(worker_template=False))
        assert "+template+" in forked.sandbox and "template" not in fresh.sandbox
        assert [(c.name, c.status, c.points, c.feedback) for c in forked.checks] == \
            [(c.name, c.status, c.points, c.feedback) for c in fresh.checks]
    assert forked.score < forked.max_score


def _descendants(root: int) -> set[int]:
    parents: dict[int, int] = {}
    for pid in os.listdir("/proc"):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if pid.isdigit():
            parents[int(pid)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {root}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def test_the_template_exits_with_its_batch(tmp_path: Path) -> None:
    """A batch killed with SIGKILL leaves no template (nor its workers) behind: the template
    sees its stdin close."""
    script = tmp_path / "batch.py"
    script.write_text(
        "import sys, time\n"
        f"sys.path.insert(0, {str(Path(worker_template.__file__).parents[2])!r})\n"
        "from torchgrade.isolation import template as worker_template\n"
        "path = worker_template.socket_for(False, ())\n"
        "print(path if not worker_template.unavailable_why() else '', flush=True)\n"
        "time.sleep(600)\n")
    batch = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert batch.stdout is not None
    assert batch.stdout.readline().strip()
    template = _descendants(batch.pid)
    assert len(template) >= 2  # bubblewrap and the template in it
    batch.kill()
    batch.wait()
    deadline = time.monotonic() + 15
    while any(Path(f"/proc/{p}").exists() for p in template) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [p for p in template if Path(f"/proc/{p}").exists()] == []


def test_a_template_that_died_is_replaced(tmp_path: Path) -> None:
    """A template killed under a running batch: the next grading's request fails over to a
    fresh worker (same grades), and the batch's next lookup starts a new template."""
    assignment = load("toy", COURSE)
    solution = COURSE / "solutions" / "toy" / "toy.py"
    first = worker_template.socket_for(False, ())
    assert first and not worker_template.unavailable_why()
    tpl = next(t for t in worker_template._TEMPLATES.values() if t.path == first)
    for pid in _descendants(tpl.proc.pid):  # a crash of the template inside bubblewrap
        os.kill(pid, 9)
    tpl.proc.wait(10)
    with pytest.raises(worker_template.TemplateUnavailable):
        Worker(first, "X = 1\n")
    second = worker_template.socket_for(False, ())
    assert second and second != first
    report = grade_submission(assignment, solution, "s", Options())
    assert report.score == report.max_score and "+template+" in report.sandbox
