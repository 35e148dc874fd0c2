"""``torchgrade grade --executor ray``: each submission graded as a task on a Ray cluster.

For a course whose grading does not fit one machine: Ray (an existing cluster engine, not a
home-made scheduler) places each grading on a node with a free CPU, or a free GPU under the
gpu profile (one GPU per task). Everything else stays as on one machine:

- the batch (``batch.grade_batch``) still decides who is graded (the cache, ``--shard``), and
  writes every report, atomically, on the machine that started it, so a killed batch resumes;
- a task receives the submission's bytes (nodes need no shared file system for submissions),
  grades it with :func:`torchgrade.runner.grade_submission` in the node's own sandbox, and
  returns the report as plain JSON data;
- each node must hold the course (graders/ and solutions/): the GPU runner image of ``ci/``
  bakes it in at ``/opt/torchgrade`` and sets ``$TORCHGRADE_ROOT`` to it. A task looks for it
  at ``$TORCHGRADE_ROOT`` on the node, else at the path the batch used. A node without it
  fails that task, and the batch writes that student a report saying so.

``--ray-address`` joins an existing cluster (``ray start --head`` on one machine, ``ray start
--address=HEAD:PORT`` on the others); without it a local cluster is started for the batch.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Any

from torchgrade.assignment import load
from torchgrade.report import Report
from torchgrade.runner import Options


class RayUnavailable(RuntimeError):
    """Ray is not installed or the cluster cannot be reached."""


def _grade_task(root: str, assignment: str, student: str, file_name: str | None,
                data: bytes | None, options: dict[str, Any]) -> dict[str, Any]:
    """Runs on a Ray worker: grade one submission in this node's sandbox."""
    from torchgrade.runner import grade_submission

    course = Path(os.environ.get("TORCHGRADE_ROOT") or root)
    a = load(assignment, course)
    opts = Options(**{**options, "skip_kinds": tuple(options.get("skip_kinds", ()))})
    with tempfile.TemporaryDirectory(prefix="torchgrade-ray-") as tmp:
        submission = None
        if file_name is not None and data is not None:
            submission = Path(tmp) / file_name
            submission.write_bytes(data)
        report = grade_submission(a, submission, student, opts)
    extra = {**report.extra, "executor": f"ray:{_node_name()}"}
    return dataclasses.replace(report, extra=extra).to_json()


def _node_name() -> str:
    import socket

    return socket.gethostname()


class RayExecutor:
    """Submits gradings as Ray tasks; :meth:`grade` has the signature of
    ``runner.grade_submission``, so ``batch.grade_one`` uses it unchanged."""

    def __init__(self, address: str | None = None, *, gpu: bool = False,
                 local_cpus: int | None = None) -> None:
        try:
            import ray
        except ImportError as exc:
            raise RayUnavailable("--executor ray needs Ray: pip install ray==2.60.0 "
                                 "(requirements.txt has it)") from exc
        self.ray = ray
        kwargs: dict[str, Any] = {"logging_level": "WARNING", "log_to_driver": False,
                                  "include_dashboard": False, "ignore_reinit_error": True}
        if address:
            kwargs["address"] = address
        else:
            kwargs["num_cpus"] = local_cpus
            kwargs["object_store_memory"] = 200 * 1024 * 1024
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        try:
            ray.init(**kwargs)
        except Exception as exc:  # noqa: BLE001 - ray raises many kinds; say what to fix
            where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
            raise RayUnavailable(f"cannot connect to {where}: {exc}") from exc
        resources = {"num_cpus": 1, "num_gpus": 1 if gpu else 0}
        self.task = ray.remote(**resources)(_grade_task)

    def grade(self, assignment: Any, submission: Path | None, student: str,
              options: Options) -> Report:
        file_name = data = None
        if submission is not None and submission.is_file():
            file_name, data = submission.name, submission.read_bytes()
        ref = self.task.remote(str(assignment.root), assignment.name, student, file_name, data,
                               dataclasses.asdict(options))
        return Report.from_json(self.ray.get(ref))

    def cluster(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.ray.cluster_resources().items()
                if k in ("CPU", "GPU")}

    def close(self) -> None:
        self.ray.shutdown()
