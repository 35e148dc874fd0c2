"""Inside the worker template: the process that forks student workers (``template.py`` is
the grader's and the batch's side of it).

The template runs inside bubblewrap, like any worker, but with no submission in it. It imports
torch, numpy, the worker code and the rubric's ``preload`` modules (:func:`serve`), and never
runs student code. It never reads a submission either: the grader hands it the file as an open
descriptor, which only the child reads. So the template's memory, which every later worker
inherits, holds nothing of any student.

Each worker is a fork of the template that, before any student code runs, gives itself what
bubblewrap gives a fresh worker, and more:

- new user, mount, pid, IPC, UTS, network and cgroup namespaces of its own;
- fresh, sized tmpfs ``/tmp``, ``/dev/shm`` and working directory (``/sandbox``) holding only
  its own submission;
- its own ``/proc``, where it is pid 1 and sees no other worker, with ``/proc/sys`` and the
  other writable kernel knobs read-only, as bubblewrap does;
- every capability dropped (bounding, ambient, effective, permitted, inheritable),
  ``no_new_privs``, a new session, and the same rlimits and cgroup (the grader moves it into
  its cgroup before it sends the first request) as a fresh worker.

Two workers of one batch therefore share nothing writable and cannot see each other's
processes, exactly as two bubblewrap sandboxes. A grader's connection is its worker's lease:
when the grader is gone, the template kills its worker. The template first forks a probe
through all of the above, and says why where the host cannot nest the namespaces.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from torchgrade.forkserver import preload_modules, reaped
from torchgrade.isolation.base import SANDBOX_DIR, WORKER_ENV, Unavailable

PRELOAD = ("torch", "numpy", "torchgrade.worker", "torchgrade.protocol", "torchgrade.nbcode")

CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS = 0x00020000, 0x02000000, 0x04000000
CLONE_NEWIPC, CLONE_NEWUSER = 0x08000000, 0x10000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 0x20, 0x1000, 0x4000, 0x40000
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 24, 38
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
# What bubblewrap's --proc makes read-only: knobs a uid mapped to the host's root could write.
PROC_COVERED = ("sys", "sysrq-trigger", "irq", "bus")


# Read-only binds of the template's sandbox that lie under /tmp (set by serve()).
_KEEP_UNDER_TMP: list[str] = []


class TemplateUnavailable(Unavailable):
    """The template cannot start this worker: the grader starts it afresh instead."""


# -- the sandbox a forked worker gives itself ----------------------------------------------------
_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:
    def enc(text: str | None) -> bytes | None:
        return text.encode() if text is not None else None

    _check(_libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags),
                       enc(data)), f"mount {target}")


def _enter_namespaces(tmpfs_bytes: int) -> None:
    """In the forked child (still the template's code): private namespaces and fresh tmpfs
    mounts. Its children are in the new pid namespace."""
    uid, gid = os.getuid(), os.getgid()
    _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC
                         | CLONE_NEWUTS | CLONE_NEWNET | CLONE_NEWCGROUP), "unshare")
    Path("/proc/self/setgroups").write_text("deny")
    Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
    Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    for target in (SANDBOX_DIR, "/dev/shm"):
        _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV,
               f"size={tmpfs_bytes},mode=0755")
    # The interpreter, the venv or the engine may live under /tmp (a checkout there), bound
    # read-only into the template's /tmp: the fresh /tmp gets those binds again, and nothing
    # else of the template's /tmp.
    stage = f"{SANDBOX_DIR}/.template-tmp"
    if _KEEP_UNDER_TMP:
        os.mkdir(stage)
        _mount("/tmp", stage, None, MS_BIND | MS_REC)
    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={tmpfs_bytes},mode=0755")
    if _KEEP_UNDER_TMP:
        for path in _KEEP_UNDER_TMP:
            os.makedirs(path, exist_ok=True)
            _mount(stage + path[len("/tmp"):], path, None, MS_BIND | MS_REC)
        _check(_libc.umount2(stage.encode(), MNT_DETACH), "umount the template's /tmp")
        os.rmdir(stage)


def _seal() -> None:
    """In the worker (pid 1 of its namespace): its own /proc, then no capability left."""
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for name in PROC_COVERED:
        path = f"/proc/{name}"
        if os.path.exists(path):
            _mount(path, path, None, MS_BIND | MS_REC)
            _mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV
                   | MS_NOEXEC)
    _check(_libc.sethostname(b"sandbox", 7), "sethostname")
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "pdeathsig")
    _drop_capabilities()
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    os.setsid()


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def _drop_capabilities() -> None:
    cap = 0
    while _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0:  # EINVAL past the last one
        cap += 1
    _check(_libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "ambient")
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3: two 32-bit words
    data = (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(header), data), "capset")


def _copy_submission(fd: int, name: str) -> str:
    """The submission, read from the grader's descriptor into the worker's own tmpfs."""
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"bad submission file name {name!r}")
    path = f"{SANDBOX_DIR}/{name}"
    dst = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        while chunk := os.read(fd, 1 << 20):
            os.write(dst, chunk)
    finally:
        os.close(dst)
        os.close(fd)
    return path


def _close_other_fds(keep: set[int]) -> None:
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _worker(req: dict[str, Any], rx: int, tx: int, out: int, sub: int, pid_w: int) -> int:
    """In the forked child: set up the sandbox and fork the worker into it, say the worker's
    pid (or why it failed) on ``pid_w``, then wait and exit with the worker's status, as
    bubblewrap does. Returns that status."""
    try:
        _close_other_fds({rx, tx, out, sub, pid_w})
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        _enter_namespaces(int(req["tmpfs_bytes"]))
        module_file = _copy_submission(sub, str(req["file_name"]))
        sealed_r, sealed_w = os.pipe()
    except Exception as exc:  # noqa: BLE001 - said to the template, which tells the grader
        os.write(pid_w, f"!{type(exc).__name__}: {exc}".encode()[:500])
        return 70
    pid = os.fork()
    if pid == 0:
        code = 71
        try:
            os.close(pid_w)
            os.close(sealed_r)
            try:
                _seal()
            except Exception as exc:  # noqa: BLE001
                os.write(sealed_w, f"!{type(exc).__name__}: {exc}".encode()[:500])
                return code
            os.write(sealed_w, b"1")
            os.close(sealed_w)
            null = os.open(os.devnull, os.O_RDONLY)  # fd 0 (the template's stdin is closed)
            if null != 0:
                os.dup2(null, 0)
                os.close(null)
            os.dup2(out, 1)
            os.dup2(out, 2)
            os.close(out)
            os.chdir(SANDBOX_DIR)
            os.environ.clear()
            os.environ.update(WORKER_ENV)  # as a fresh worker's
            if req.get("cuda_devices"):  # this grading's GPU; CUDA is not initialised yet
                os.environ["CUDA_VISIBLE_DEVICES"] = str(req["cuda_devices"])
            if req.get("probe"):
                code = 0
                return code
            from torchgrade.worker import run

            run(str(req["module_name"]), module_file, rx, tx, int(req["threads"]),
                dict(req["limits"]))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # noqa: BLE001 - student code's escape: said on its output
            import traceback

            traceback.print_exc()
            code = 1
        finally:
            for stream in (sys.stdout, sys.stderr):  # perhaps replaced by student code
                try:
                    stream.flush()
                except BaseException:  # noqa: BLE001, S110 - exiting regardless
                    pass
            os._exit(code)
    os.close(sealed_w)
    for fd in (rx, tx, out):
        os.close(fd)
    sealed = os.read(sealed_r, 500)
    os.close(sealed_r)
    os.write(pid_w, str(pid).encode() if sealed == b"1" else sealed or b"!the worker died")
    os.close(pid_w)
    _, status = os.waitpid(pid, 0)
    return _as_bwrap_says(os.waitstatus_to_exitcode(status))


def _as_bwrap_says(code: int) -> int:
    """An exit code as bubblewrap reports its command's: killed by signal N is 128 + N."""
    return 128 - code if code < 0 else code


# -- the template process ------------------------------------------------------------------------
def _fork_worker(req: dict[str, Any], fds: list[int]) -> tuple[int, int]:
    """Fork one worker (this takes ``fds``: rx, tx, out, submission); returns the forked
    child's pid and the worker's (pid 1 of its namespace), both as this process sees them.
    The child closes every other descriptor of the template first (``_close_other_fds``)."""
    pid_r, pid_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 70
        try:
            code = _worker(req, *fds, pid_w)
        finally:
            os._exit(code)
    os.close(pid_w)
    for fd in fds:
        os.close(fd)
    try:
        ready, _, _ = select.select([pid_r], [], [], 30)
        said = os.read(pid_r, 500).decode(errors="replace") if ready else ""
    finally:
        os.close(pid_r)
    if not said.isdigit():
        _kill(pid)
        raise TemplateUnavailable("the worker's sandbox could not be set up: "
                                  + (said.lstrip("!") or "no answer in 30 s"))
    return pid, int(said)


def _probe() -> str:
    """Fork one worker through the whole set-up; why it failed, or '' if it did not."""
    fds = [os.open(os.devnull, os.O_RDONLY) for _ in range(4)]
    try:
        pid, _ = _fork_worker({"probe": True, "tmpfs_bytes": 1 << 20, "file_name": "probe.py"},
                              fds)
    except TemplateUnavailable as exc:
        os.wait()
        return str(exc)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return "" if code == 0 else f"the probe worker exited with status {code}"


def serve(listen_fd: int, preload: list[str], keep: list[str] = ()) -> None:
    """The template: import, probe, then fork a worker per connection until stdin closes.
    ``keep``: its read-only binds under /tmp, which each worker binds again."""
    _KEEP_UNDER_TMP[:] = list(keep)
    for name in PRELOAD:
        __import__(name)
    preload_modules(preload)
    status = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    why = _probe()
    status.write(json.dumps({"ready": not why, "why": why}) + "\n")
    if why:
        return
    listener = socket.socket(fileno=listen_fd)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    leases: dict[int, socket.socket] = {}  # forked child's pid -> its grader's connection
    stdin = sys.stdin.fileno()
    try:
        while True:
            watched = [listener.fileno(), wake_r, stdin, *(c.fileno() for c in leases.values())]
            ready, _, _ = select.select(watched, [], [])
            if wake_r in ready:
                os.read(wake_r, 4096)
                _reap(leases)
            if stdin in ready and not os.read(stdin, 4096):
                return  # the batch is gone
            for pid, conn in list(leases.items()):
                if conn.fileno() in ready and not _still_leased(conn):
                    _kill(pid)  # its grader is gone; nobody to tell when it ends
                    del leases[pid]
                    conn.close()
            if listener.fileno() in ready:
                conn, _ = listener.accept()
                pid = _answer(conn)
                if pid:
                    leases[pid] = conn
                else:
                    conn.close()
    finally:
        for pid in leases:
            _kill(pid)


def _still_leased(conn: socket.socket) -> bool:
    try:
        return bool(conn.recv(64, socket.MSG_DONTWAIT))
    except BlockingIOError:
        return True
    except OSError:
        return False


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)  # its worker has PDEATHSIG: the namespace dies with it
    except ProcessLookupError:
        pass


def _reap(leases: dict[int, socket.socket]) -> None:
    for pid, code in reaped():
        conn = leases.pop(pid, None)
        if conn is not None:
            try:
                conn.send(json.dumps({"exited": _as_bwrap_says(code)}).encode())
            except OSError:
                pass
            conn.close()


def _answer(conn: socket.socket) -> int:
    """One grader's request: fork its worker and hand back pidfds. Returns the child's pid
    (0 when refused)."""
    conn.settimeout(30)
    fds: list[int] = []
    pid = 0
    try:
        msg, fds, _, _ = socket.recv_fds(conn, 1 << 16, 4)
        req = json.loads(msg)
        if len(fds) != 4:
            raise TemplateUnavailable(f"expected 4 descriptors, got {len(fds)}")
        given, fds = fds, []
        pid, worker = _fork_worker(req, given)
        pidfds = [os.pidfd_open(pid), os.pidfd_open(worker)]
        try:
            socket.send_fds(conn, [json.dumps({"ok": True}).encode()], pidfds)
        finally:
            for fd in pidfds:
                os.close(fd)
        return pid
    except Exception as exc:  # noqa: BLE001 - told to the grader, which starts afresh
        for fd in fds:
            os.close(fd)
        if pid:
            _kill(pid)  # forked, but its grader cannot have it
        try:
            conn.send(json.dumps({"ok": False, "why": f"{type(exc).__name__}: {exc}"}).encode())
        except OSError:
            pass
        return 0
