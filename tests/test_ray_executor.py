"""``torchgrade grade --executor ray`` on a real local Ray cluster (``ray start --head``).

Toy submissions are graded as Ray tasks on the cluster and, for comparison, by the local
executor: the reports must agree check by check, say which executor graded them, and a second
run must reuse every report without submitting a task.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from torchgrade.assignment import load
from torchgrade.batch import grade_batch
from torchgrade.cli import main
from torchgrade.runner import Options

ray = pytest.importorskip("ray", reason="Ray is not installed (requirements.txt has it)")

pytestmark = pytest.mark.slow

COURSE = Path(__file__).resolve().parent / "toy_course"
RAY = Path(sys.executable).parent / "ray"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A one-node Ray cluster started with the ray CLI, as on a real head node."""
    # Ray's socket paths must stay short: a folder right under /tmp, not pytest's tmp_path.
    temp = tempfile.mkdtemp(prefix="tgray-", dir="/tmp")
    port = _free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    start = subprocess.run(
        [str(RAY), "start", "--head", f"--port={port}", "--num-cpus=2",
         "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}",
         "--object-store-memory=100000000"],
        capture_output=True, text=True, env=env, timeout=240)
    if start.returncode != 0:
        shutil.rmtree(temp, ignore_errors=True)
        pytest.skip(f"a local Ray cluster cannot start here:\n{start.stdout}{start.stderr}")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(RAY), "stop", "--force"], capture_output=True, env=env, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)


def test_ray_executor_grades_like_the_local_one_and_resumes_from_cache(cluster, tmp_path,
                                                                       capsys):
    submissions = tmp_path / "submissions"
    for name in ("correct", "wrong_factor"):
        (submissions / name).mkdir(parents=True)
        shutil.copyfile(COURSE / "examples" / "toy" / name / "toy.py",
                        submissions / name / "toy.py")
    (submissions / "nothing").mkdir()  # no submission: a report saying so, from Ray too
    args = ["--root", str(COURSE), "grade", "toy", str(submissions), "--out",
            str(tmp_path / "ray"), "--executor", "ray", "--ray-address", cluster]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "on Ray" in err and "'CPU': 2.0" in err

    local = grade_batch(load("toy", COURSE), submissions, tmp_path / "local",
                        options=Options(), jobs=2, use_cache=False)
    for report in local.reports:
        remote = json.loads((tmp_path / "ray" / report.student / "toy.json").read_text())
        assert remote["extra"]["executor"].startswith("ray:")
        assert remote["score"] == report.score, report.student
        assert [(c["name"], c["status"], c["points"]) for c in remote["checks"]] == \
            [(c.name, c.status, c.points) for c in report.checks]
    scores = {r.student: r.score for r in local.reports}
    assert scores["correct"] == 10 and 0 < scores["wrong_factor"] < 10
    assert scores["nothing"] == 0

    # The batch resumes from its reports: nothing changed, so no task is submitted.
    assert main(args) == 0
    assert capsys.readouterr().err.count("(unchanged, report reused)") == 3


def test_ray_address_without_ray_executor_is_refused(tmp_path, capsys):
    (tmp_path / "s" / "a").mkdir(parents=True)
    code = main(["--root", str(COURSE), "grade", "toy", str(tmp_path / "s"), "--out",
                 str(tmp_path / "o"), "--ray-address", "127.0.0.1:6379"])
    assert code == 2 and "--ray-address is for --executor ray" in capsys.readouterr().err
