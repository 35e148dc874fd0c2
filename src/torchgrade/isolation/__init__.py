"""How a student worker is run: the strongest isolation the host allows, said plainly.

One interface for the rest of the engine: :func:`launch_worker` takes a :class:`WorkerSpec`
(the submission's folder, the worker's pipes, its :class:`Limits`, torch threads, GPU or not)
and a :data:`Mode`, picks a backend and returns a :class:`Launch` (the process, its CPU
``meter``, the ``level`` written into every report, ``kill()``). Each backend is a module with
the same ``launch(spec) -> Launch``:

- ``template`` (``template.py``, ``template_server.py``): with bubblewrap, the worker is
  forked from the batch's worker template (a bubblewrap sandbox that imported torch once) and
  gives itself new namespaces, fresh tmpfs mounts, its own ``/proc`` and no capabilities before
  any student code runs. Level ``bwrap+template+...``.
- ``bwrap`` (``bwrap.py``): bubblewrap with fresh user, pid, network, IPC, UTS and mount
  namespaces, started afresh: where there is no template, or it cannot start this worker.
- ``docker`` (``docker.py``): the worker in a container instead: no network, memory and pid
  limits, read-only root, uid ``nobody``, plus the worker's rlimits.
- ``rlimits`` (``rlimits.py``): no namespaces (no bubblewrap: a macOS laptop, a container
  without user namespaces; or ``--sandbox none``). The worker is a separate process with its
  rlimits (CPU time, address space, file size, open files, processes, no core dumps) and, as
  root, drops to ``nobody`` (``uid``).

Besides these, ``cgroups.py`` gives a worker started on this host a cgroup (v1) where cgroups
are writable: process count and memory capped, every process killable at once, and its CPU time
counted (``cpuacct``) for the budgets of ``torchgrade.cputime`` (without it, the worker's process
tree in ``/proc`` is read instead; without ``/proc``, the wall clock). The shared pieces (limits,
the worker's environment and paths, the Launch) live in ``base.py``, which the backends import;
nothing here imports this package's ``__init__``. Checks, points and feedback do not depend on
the backend: only the report's ``sandbox`` says which ran.
"""

from __future__ import annotations

from torchgrade.isolation import bwrap, docker, rlimits, template
from torchgrade.isolation.base import (
    TEMPLATE_ENV,
    Launch,
    Limits,
    Mode,
    Unavailable,
    WorkerSpec,
    submission_file_name,
)

__all__ = ["TEMPLATE_ENV", "Launch", "Limits", "Mode", "Unavailable", "WorkerSpec",
           "bwrap_available", "describe", "launch_worker", "submission_file_name"]


def bwrap_available() -> bool:
    """True when bubblewrap exists and can create its namespaces on this host."""
    return bwrap.available()


def launch_worker(spec: WorkerSpec, mode: Mode = "auto") -> Launch:
    """Start the worker ``spec`` describes, isolated as ``mode`` says: ``auto`` (bubblewrap
    where it works, forked from the grading's worker template where there is one, else
    rlimits only), ``bwrap`` (bubblewrap or an error), ``docker`` or ``none`` (rlimits)."""
    if mode == "docker":
        return docker.launch(spec)
    use_bwrap = mode == "bwrap" or (mode == "auto" and bwrap.available())
    if not use_bwrap:
        return rlimits.launch(spec)
    if mode == "bwrap" and not bwrap.available():
        raise Unavailable("--sandbox bwrap was asked for but bubblewrap cannot run here "
                          "(install the 'bubblewrap' package)")
    try:
        return template.launch(spec)
    except template.TemplateUnavailable:
        return bwrap.launch(spec)  # no template for this grading, or it cannot: afresh


def describe(mode: Mode = "auto") -> str:
    """One line saying which isolation workers get here under ``mode``, and why not more."""
    if mode == "docker":
        return "isolation: a Docker container per worker (--sandbox docker)"
    if mode == "none":
        return "isolation: a separate process with resource limits (--sandbox none)"
    why = bwrap.why_not()
    if not why:
        return "isolation: bubblewrap (namespaces of its own: no network, no other files)"
    if mode == "bwrap":
        return f"isolation: none possible with --sandbox bwrap: {why}"
    return (f"isolation: resource limits only ({why}): your code runs in a process of its "
            "own, and the checks, points and feedback are the same as with bubblewrap")
