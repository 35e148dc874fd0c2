"""The grader template (torchgrade.forkserver): graders forked from a process that imported
torch and pytest once. Each question runs a tiny pytest suite as a forked grader, exactly as
``runner.py`` does: is the environment the request's (PYTHONHASHSEED=0 included), is a
module the rubric asks to preload already imported, and is a grader that overruns its time
killed with everything it started?
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from torchgrade.forkserver import run_grader


def _suite(tmp_path: Path, body: str) -> Path:
    (tmp_path / "test_it.py").write_text(body, encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    return tmp_path


def _args(folder: Path) -> list[str]:
    return [str(folder), "-q", "-p", "no:cacheprovider", "-c", str(folder / "pytest.ini"),
            "--rootdir", str(folder)]


def test_forked_grader_gets_the_requests_environment_and_a_fixed_hash_seed(tmp_path):
    expected = subprocess.run([sys.executable, "-c", "print(hash('torchgrade'))"],
                              env={**os.environ, "PYTHONHASHSEED": "0"}, capture_output=True,
                              text=True).stdout.strip()
    folder = _suite(tmp_path, f"""
import os
def test_env():
    assert os.environ["TG_MARK"] == "42" and "TG_LEAK" not in os.environ
    assert os.getcwd() == {str(tmp_path)!r}
def test_hash_seed():
    assert str(hash("torchgrade")) == {expected!r}
""")
    os.environ["TG_LEAK"] = "1"  # the batch's own environment must not reach the grader
    try:
        killed = run_grader(_args(folder), {"TG_MARK": "42", "PATH": os.environ["PATH"]},
                            folder, folder / "log.txt", 120)
    finally:
        del os.environ["TG_LEAK"]
    log = (folder / "log.txt").read_text()
    assert not killed and "2 passed" in log, log


def test_preloaded_modules_are_imported_before_the_grader_starts(tmp_path):
    folder = _suite(tmp_path, """
import sys
def test_preloaded():
    assert "xml.dom.minidom" in sys.modules
""")
    killed = run_grader(_args(folder), {"PATH": os.environ["PATH"]}, folder,
                        folder / "log.txt", 120, preload=("xml.dom.minidom", "no_such_module"))
    log = (folder / "log.txt").read_text()
    assert not killed and "1 passed" in log, log


def test_a_grader_past_its_time_is_killed_with_what_it_started(tmp_path):
    pid_file = tmp_path / "child.pid"
    folder = _suite(tmp_path, f"""
import subprocess, time
def test_hangs():
    child = subprocess.Popen(["sleep", "300"])
    open({str(pid_file)!r}, "w").write(str(child.pid))
    time.sleep(300)
""")
    started = time.monotonic()
    killed = run_grader(_args(folder), {"PATH": os.environ["PATH"]}, folder,
                        folder / "log.txt", 8)
    assert killed and time.monotonic() - started < 60
    deadline = time.monotonic() + 10
    child = int(pid_file.read_text())
    while time.monotonic() < deadline and Path(f"/proc/{child}").exists() and \
            "Z" not in Path(f"/proc/{child}/stat").read_text().split()[2]:
        time.sleep(0.2)
    assert not Path(f"/proc/{child}").exists() or \
        Path(f"/proc/{child}/stat").read_text().split()[2] == "Z"
